/* The scratch pool and the execution state of a pass (see skd/nn/module.h).
 *
 * Why a pool and not only the arena: the arena frees everything at once,
 * which suits what backward keeps, but an eval-mode forward (the teacher)
 * and the activation gradients of backward die one layer later; with the
 * pool their memory is reused, so a deep network costs a handful of
 * activation-sized buffers instead of one per layer. */
#include <string.h>

#include "skd/nn/module.h"

void skd_nn_pool_init(skd_nn_pool *p, skd_context *ctx) {
  memset(p, 0, sizeof *p);
  p->ctx = ctx;
}

void skd_nn_pool_release(skd_nn_pool *p) {
  for (int i = 0; i < SKD_NN_POOL_SLOTS; i++)
    if (p->mem[i]) clReleaseMemObject(p->mem[i]);
  skd_context *ctx = p->ctx;
  skd_nn_pool_init(p, ctx);
}

static size_t in_use_floats(const skd_nn_pool *p) {
  size_t total = 0;
  for (int i = 0; i < SKD_NN_POOL_SLOTS; i++)
    if (p->used[i]) total += p->cap[i];
  return total;
}

skd_status skd_nn_pool_get(skd_nn_pool *p, skd_tensor *t, int n, int c, int h, int w) {
  skd_tensor shape = {NULL, 0, n, c, h, w};
  size_t need = skd_tensor_numel(&shape);
  if (need == 0) need = 1;
  /* Best fit among the free slots; else an unused slot; else grow the
   * largest free one. Requests repeat step after step, so slots settle. */
  int best = -1, empty = -1, largest = -1;
  for (int i = 0; i < SKD_NN_POOL_SLOTS; i++) {
    if (p->used[i]) continue;
    if (!p->mem[i]) {
      if (empty < 0) empty = i;
      continue;
    }
    if (p->cap[i] >= need && (best < 0 || p->cap[i] < p->cap[best])) best = i;
    if (largest < 0 || p->cap[i] > p->cap[largest]) largest = i;
  }
  if (best < 0) {
    best = empty >= 0 ? empty : largest;
    if (best < 0)
      return skd_error(SKD_ENOMEM, "nn pool: all %d scratch slots are in use (tensor (%d, %d, %d, %d))",
                       SKD_NN_POOL_SLOTS, n, c, h, w);
    if (p->mem[best]) clReleaseMemObject(p->mem[best]); /* the queue keeps it alive for pending work */
    p->mem[best] = NULL;
    p->cap[best] = 0;
    skd_status st = skd_buffer_create(p->ctx, need * sizeof(float), "nn scratch slot", &p->mem[best]);
    if (st != SKD_OK) return st;
    p->cap[best] = need;
    p->creations++;
  }
  p->used[best] = 1;
  shape.mem = p->mem[best];
  *t = shape;
  size_t live = in_use_floats(p);
  if (live > p->peak_in_use) p->peak_in_use = live;
  return SKD_OK;
}

skd_status skd_nn_pool_get_zero(skd_nn_pool *p, skd_tensor *t, int n, int c, int h, int w) {
  skd_status st = skd_nn_pool_get(p, t, n, c, h, w);
  if (st == SKD_OK) st = skd_tensor_fill(p->ctx, t, 0.0f);
  if (st != SKD_OK) skd_nn_pool_put(p, t);
  return st;
}

void skd_nn_pool_put(skd_nn_pool *p, const skd_tensor *t) {
  if (t->mem)
    for (int i = 0; i < SKD_NN_POOL_SLOTS; i++)
      if (p->mem[i] == t->mem) p->used[i] = 0;
}

void skd_nn_pool_reset(skd_nn_pool *p) {
  for (int i = 0; i < SKD_NN_POOL_SLOTS; i++) p->used[i] = 0;
}

int skd_nn_pool_in_use(const skd_nn_pool *p) {
  int k = 0;
  for (int i = 0; i < SKD_NN_POOL_SLOTS; i++) k += p->used[i];
  return k;
}

skd_status skd_nn_exec_act(skd_nn_exec *e, skd_tensor *t, int n, int c, int h, int w) {
  if (e->keep) return skd_arena_tensor(e->arena, t, n, c, h, w);
  return skd_nn_pool_get(e->pool, t, n, c, h, w);
}

skd_status skd_nn_exec_tmp(skd_nn_exec *e, skd_tensor *t, int n, int c, int h, int w) {
  return skd_nn_pool_get(e->pool, t, n, c, h, w);
}

void skd_nn_exec_drop(skd_nn_exec *e, const skd_tensor *t) { skd_nn_pool_put(e->pool, t); }
