/* Activation arena: bump allocation from chunks, reset every step. */
#include <stdlib.h>
#include <string.h>

#include "skd/tensor.h"

#define MAX_CHUNKS 64

struct chunk {
  cl_mem mem;
  size_t bytes;
};

struct skd_arena {
  skd_context *ctx;
  size_t chunk_bytes;
  size_t align_bytes;
  struct chunk chunks[MAX_CHUNKS];
  int nchunks;
  int current; /* chunk being carved */
  size_t used; /* bytes used in the current chunk */
  size_t in_use, peak;
  unsigned long creations;
};

skd_status skd_arena_create(skd_context *ctx, skd_arena **out, size_t chunk_bytes) {
  skd_arena *a = calloc(1, sizeof *a);
  if (!a) return skd_error(SKD_ENOMEM, "arena: out of host memory");
  a->ctx = ctx;
  size_t max = (size_t)ctx->info.max_alloc_bytes;
  a->chunk_bytes = chunk_bytes ? chunk_bytes : (size_t)64 << 20;
  if (a->chunk_bytes > max) a->chunk_bytes = max;
  /* Every tensor starts on the device's base-address alignment, which also
   * keeps vector loads aligned. */
  a->align_bytes = ctx->info.base_addr_align_bytes >= 4 ? ctx->info.base_addr_align_bytes : 128;
  *out = a;
  return SKD_OK;
}

static size_t round_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

skd_status skd_arena_tensor(skd_arena *a, skd_tensor *out, int n, int c, int h, int w) {
  skd_tensor t = {NULL, 0, n, c, h, w};
  if (n < 0 || c < 0 || h < 0 || w < 0)
    return skd_error(SKD_EINVAL, "arena tensor (%d, %d, %d, %d) has a negative dimension", n, c, h, w);
  size_t numel = skd_tensor_numel(&t);
  /* Empty tensors still get a distinct, aligned slot. */
  size_t bytes = round_up((numel ? numel : 1) * sizeof(float), a->align_bytes);
  if (bytes > a->ctx->info.max_alloc_bytes)
    return skd_error(SKD_ENOMEM, "arena tensor (%d, %d, %d, %d): %zu bytes exceed the device's largest "
                     "single allocation (%llu bytes)", n, c, h, w, bytes, a->ctx->info.max_alloc_bytes);
  /* Move on to the next chunk that has room, creating one when none does. */
  while (a->current < a->nchunks && a->used + bytes > a->chunks[a->current].bytes) {
    a->current++;
    a->used = 0;
  }
  if (a->current == a->nchunks) {
    if (a->nchunks == MAX_CHUNKS) return skd_error(SKD_ENOMEM, "arena: more than %d chunks", MAX_CHUNKS);
    size_t size = bytes > a->chunk_bytes ? bytes : a->chunk_bytes;
    struct chunk *c0 = &a->chunks[a->nchunks];
    skd_status st = skd_buffer_create(a->ctx, size, "activation arena chunk", &c0->mem);
    if (st != SKD_OK) return st;
    c0->bytes = size;
    a->nchunks++;
    a->creations++;
    a->used = 0;
  }
  t.mem = a->chunks[a->current].mem;
  t.offset = a->used / sizeof(float);
  a->used += bytes;
  a->in_use += bytes;
  if (a->in_use > a->peak) a->peak = a->in_use;
  *out = t;
  return SKD_OK;
}

void skd_arena_reset(skd_arena *a) {
  a->current = 0;
  a->used = 0;
  a->in_use = 0;
}

size_t skd_arena_capacity_bytes(const skd_arena *a) {
  size_t total = 0;
  for (int i = 0; i < a->nchunks; i++) total += a->chunks[i].bytes;
  return total;
}

size_t skd_arena_peak_bytes(const skd_arena *a) { return a->peak; }

unsigned long skd_arena_buffer_creations(const skd_arena *a) { return a->creations; }

void skd_arena_free(skd_arena *a) {
  if (!a) return;
  for (int i = 0; i < a->nchunks; i++) clReleaseMemObject(a->chunks[i].mem);
  free(a);
}
