/* NCHW float32 device tensors, parameters and the per-step activation arena.
 * A tensor is a view: (cl_mem, offset in floats) plus a shape. Kernels take
 * (buffer, offset) pairs instead of sub-buffers, so any offset is legal. */
#ifndef SKD_TENSOR_H
#define SKD_TENSOR_H

#include <stddef.h>

#include "skd/runtime.h"

typedef struct skd_tensor {
  cl_mem mem;
  size_t offset; /* in floats */
  int n, c, h, w;
} skd_tensor;

static inline size_t skd_tensor_numel(const skd_tensor *t) {
  return (size_t)t->n * (size_t)t->c * (size_t)t->h * (size_t)t->w;
}

static inline skd_tensor skd_tensor_view(cl_mem mem, size_t offset, int n, int c, int h, int w) {
  skd_tensor t = {mem, offset, n, c, h, w};
  return t;
}

/* A tensor with its own buffer; release with skd_tensor_release. */
skd_status skd_tensor_alloc(skd_context *ctx, skd_tensor *t, int n, int c, int h, int w);
void skd_tensor_release(skd_tensor *t);

/* Blocking transfers of the whole tensor. */
skd_status skd_tensor_upload(skd_context *ctx, const skd_tensor *t, const float *host);
skd_status skd_tensor_download(skd_context *ctx, const skd_tensor *t, float *host);
/* The download queued behind the work before it; *done completes when host
 * holds the values (release it with clReleaseEvent). host stays untouched
 * by the caller until then. */
skd_status skd_tensor_download_async(skd_context *ctx, const skd_tensor *t, float *host, cl_event *done);
/* The upload queued without waiting: host stays untouched until later work
 * on the queue is known to be done (a blocking call or a finished event). */
skd_status skd_tensor_upload_async(skd_context *ctx, const skd_tensor *t, const float *host);

skd_status skd_tensor_fill(skd_context *ctx, const skd_tensor *t, float value);
skd_status skd_tensor_copy(skd_context *ctx, const skd_tensor *dst, const skd_tensor *src);

int skd_tensor_same_shape(const skd_tensor *a, const skd_tensor *b);
/* Values on their way into or out of a checkpoint: SKD_EFORMAT naming
 * `name` (in `what`, e.g. "checkpoint") at the first NaN or infinity, or the
 * first negative value of a batch-norm variance (a name ending in
 * "running_var"). NaN can hide in a network (ReLU maps it to 0), so it is
 * stopped at the file. */
skd_status skd_values_check(const float *v, size_t n, const char *name, const char *what);

/* SKD_OK when t has shape (n, c, h, w); else SKD_EINVAL naming `what`. */
skd_status skd_tensor_expect(const skd_tensor *t, int n, int c, int h, int w, const char *what);
skd_status skd_tensor_expect_same(const skd_tensor *a, const skd_tensor *b, const char *what);

/* Adds an argument pair (buffer, int offset) to a kernel call. */
void skd_arg_tensor(skd_args *a, const skd_tensor *t);

/* A parameter: value, gradient and optimiser state (state1: momentum or
 * Adam's first moment, state2: Adam's second moment), allocated on demand. */
typedef struct skd_param {
  char name[128];
  skd_tensor value;
  skd_tensor grad;   /* mem == NULL for frozen parameters (teacher) */
  skd_tensor state1;
  skd_tensor state2;
} skd_param;

skd_status skd_param_init(skd_context *ctx, skd_param *p, const char *name, int n, int c, int h, int w,
                          int with_grad);
void skd_param_release(skd_param *p);

/* The activation arena: tensors are carved from large chunks (each within
 * MAX_MEM_ALLOC_SIZE) and all given back by skd_arena_reset. Once a step has
 * run, later steps of the same shapes allocate nothing. */
typedef struct skd_arena skd_arena;

skd_status skd_arena_create(skd_context *ctx, skd_arena **out, size_t chunk_bytes);
skd_status skd_arena_tensor(skd_arena *a, skd_tensor *out, int n, int c, int h, int w);
void skd_arena_reset(skd_arena *a);
size_t skd_arena_capacity_bytes(const skd_arena *a);
size_t skd_arena_peak_bytes(const skd_arena *a);
unsigned long skd_arena_buffer_creations(const skd_arena *a);
void skd_arena_free(skd_arena *a);

#endif
