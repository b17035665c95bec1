/* Data-parallel gradient averaging and the start-of-run broadcast, staged
 * through host memory (no MPI library reads OpenCL buffers). */
#include <stdlib.h>
#include <time.h>

#include "skd/dist.h"
#include "train/trainer_private.h"

/* PyTorch DDP's default bucket: 25 MB of gradients. */
#define BUCKET_FLOATS ((size_t)25 * 1000 * 1000 / sizeof(float))

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return 1e3 * (double)ts.tv_sec + 1e-6 * (double)ts.tv_nsec;
}

static size_t total_floats(skd_param *const *p, int n, int grads) {
  size_t total = 0;
  for (int i = 0; i < n; i++) total += skd_tensor_numel(grads ? &p[i]->grad : &p[i]->value);
  return total;
}

static skd_status stage_reserve(struct skd_trainer *t, size_t floats) {
  if (floats <= t->stage_floats) return SKD_OK;
  float *s = realloc(t->stage, floats * sizeof(float));
  if (!s) return skd_error(SKD_ENOMEM, "data parallel: out of host memory for %zu staged floats", floats);
  t->stage = s;
  t->stage_floats = floats;
  return SKD_OK;
}

skd_status dist_broadcast_params(struct skd_trainer *t, skd_param *const *p, int n) {
  if (t->ranks < 2 || n == 0) return SKD_OK;
  skd_status st = stage_reserve(t, total_floats(p, n, 0));
  size_t at = 0;
  for (int i = 0; i < n && st == SKD_OK; i++) {
    st = skd_tensor_download(t->ctx, &p[i]->value, t->stage + at);
    at += skd_tensor_numel(&p[i]->value);
  }
  if (st == SKD_OK) st = skd_dist_broadcast(t->stage, at * sizeof(float), 0);
  at = 0;
  for (int i = 0; i < n && st == SKD_OK; i++) {
    st = skd_tensor_upload(t->ctx, &p[i]->value, t->stage + at);
    skd_context_changed(t->ctx, p[i]->value.mem);
    at += skd_tensor_numel(&p[i]->value);
  }
  return st;
}

/* Reverse order (the last layers' gradients are complete first in a
 * backward pass); a bucket's allreduce starts as soon as it is on the host,
 * so it overlaps the read-back of the next bucket. It does not overlap the
 * backward pass itself: the caller runs this after backward has finished. */
skd_status dist_average_grads(struct skd_trainer *t, skd_param *const *p, int n) {
  if (t->ranks < 2 || n == 0) return SKD_OK;
  double t0 = now_ms();
  skd_status st = stage_reserve(t, total_floats(p, n, 1));
  size_t at = 0, bucket_start = 0;
  for (int i = n - 1; i >= 0 && st == SKD_OK; i--) {
    st = skd_tensor_download(t->ctx, &p[i]->grad, t->stage + at);
    at += skd_tensor_numel(&p[i]->grad);
    if (st == SKD_OK && (at - bucket_start >= BUCKET_FLOATS || i == 0)) {
      st = skd_dist_iallreduce_sum(t->stage + bucket_start, at - bucket_start);
      bucket_start = at;
    }
  }
  skd_status wait = skd_dist_wait_all();
  if (st == SKD_OK) st = wait;
  /* x * (1/N): exact for a power-of-two rank count. */
  const float scale = 1.0f / (float)t->ranks;
  for (size_t k = 0; st == SKD_OK && k < at; k++) t->stage[k] *= scale;
  at = 0;
  for (int i = n - 1; i >= 0 && st == SKD_OK; i--) {
    st = skd_tensor_upload(t->ctx, &p[i]->grad, t->stage + at);
    at += skd_tensor_numel(&p[i]->grad);
  }
  t->allreduce_ms += now_ms() - t0;
  return st;
}
