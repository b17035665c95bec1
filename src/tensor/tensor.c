/* Tensors and parameters. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "skd/tensor.h"

skd_status skd_tensor_alloc(skd_context *ctx, skd_tensor *t, int n, int c, int h, int w) {
  memset(t, 0, sizeof *t);
  if (n < 0 || c < 0 || h < 0 || w < 0)
    return skd_error(SKD_EINVAL, "tensor shape (%d, %d, %d, %d) has a negative dimension", n, c, h, w);
  skd_tensor shape = {NULL, 0, n, c, h, w};
  size_t numel = skd_tensor_numel(&shape);
  if (numel > (size_t)INT_MAX)
    return skd_error(SKD_ENOMEM, "tensor (%d, %d, %d, %d) has more than 2^31 elements", n, c, h, w);
  char what[96];
  snprintf(what, sizeof what, "tensor (%d, %d, %d, %d)", n, c, h, w);
  skd_status st = skd_buffer_create(ctx, numel * sizeof(float), what, &shape.mem);
  if (st != SKD_OK) return st;
  *t = shape;
  return SKD_OK;
}

void skd_tensor_release(skd_tensor *t) {
  if (t->mem) clReleaseMemObject(t->mem);
  memset(t, 0, sizeof *t);
}

skd_status skd_tensor_upload(skd_context *ctx, const skd_tensor *t, const float *host) {
  size_t bytes = skd_tensor_numel(t) * sizeof(float);
  if (bytes == 0) return SKD_OK;
  return skd_cl_check(clEnqueueWriteBuffer(ctx->queue, t->mem, CL_TRUE, t->offset * sizeof(float), bytes,
                                           host, 0, NULL, NULL),
                      "tensor upload (clEnqueueWriteBuffer)");
}

skd_status skd_tensor_download(skd_context *ctx, const skd_tensor *t, float *host) {
  size_t bytes = skd_tensor_numel(t) * sizeof(float);
  if (bytes == 0) return SKD_OK;
  return skd_cl_check(clEnqueueReadBuffer(ctx->queue, t->mem, CL_TRUE, t->offset * sizeof(float), bytes,
                                          host, 0, NULL, NULL),
                      "tensor download (clEnqueueReadBuffer)");
}

skd_status skd_tensor_download_async(skd_context *ctx, const skd_tensor *t, float *host, cl_event *done) {
  size_t bytes = skd_tensor_numel(t) * sizeof(float);
  if (bytes == 0) /* a read of 0 bytes is an error; the event still marks this point of the queue */
    return skd_cl_check(clEnqueueMarkerWithWaitList(ctx->queue, 0, NULL, done), "clEnqueueMarkerWithWaitList");
  return skd_cl_check(clEnqueueReadBuffer(ctx->queue, t->mem, CL_FALSE, t->offset * sizeof(float), bytes, host, 0,
                                          NULL, done),
                      "tensor download (clEnqueueReadBuffer, non-blocking)");
}

skd_status skd_tensor_upload_async(skd_context *ctx, const skd_tensor *t, const float *host) {
  size_t bytes = skd_tensor_numel(t) * sizeof(float);
  if (bytes == 0) return SKD_OK;
  return skd_cl_check(clEnqueueWriteBuffer(ctx->queue, t->mem, CL_FALSE, t->offset * sizeof(float), bytes, host, 0,
                                           NULL, NULL),
                      "tensor upload (clEnqueueWriteBuffer, non-blocking)");
}

skd_status skd_values_check(const float *v, size_t n, const char *name, const char *what) {
  size_t len = strlen(name), suffix = strlen("running_var");
  int variance = len >= suffix && strcmp(name + len - suffix, "running_var") == 0;
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(v[i]))
      return skd_error(SKD_EFORMAT, "%s: tensor '%s' holds %s at element %zu of %zu", what, name,
                       isnan(v[i]) ? "NaN" : "an infinity", i, n);
    if (variance && v[i] < 0.0f)
      return skd_error(SKD_EFORMAT, "%s: tensor '%s' holds a negative variance (%g) at element %zu of %zu", what,
                       name, (double)v[i], i, n);
  }
  return SKD_OK;
}

skd_status skd_tensor_fill(skd_context *ctx, const skd_tensor *t, float value) {
  skd_kernel *k;
  skd_status st = skd_kernel_get(ctx, "elementwise", "fill_fwd", &k);
  if (st != SKD_OK) return st;
  int n = (int)skd_tensor_numel(t);
  skd_args a = skd_args_begin(k);
  skd_arg_int(&a, n);
  skd_arg_float(&a, value);
  skd_arg_tensor(&a, t);
  return skd_launch_1d(ctx, &a, (size_t)n, 256);
}

skd_status skd_tensor_copy(skd_context *ctx, const skd_tensor *dst, const skd_tensor *src) {
  skd_status st = skd_tensor_expect_same(dst, src, "tensor copy");
  size_t bytes = skd_tensor_numel(src) * sizeof(float);
  if (st != SKD_OK || bytes == 0) return st;
  return skd_cl_check(clEnqueueCopyBuffer(ctx->queue, src->mem, dst->mem, src->offset * sizeof(float),
                                          dst->offset * sizeof(float), bytes, 0, NULL, NULL),
                      "tensor copy (clEnqueueCopyBuffer)");
}

int skd_tensor_same_shape(const skd_tensor *a, const skd_tensor *b) {
  return a->n == b->n && a->c == b->c && a->h == b->h && a->w == b->w;
}

skd_status skd_tensor_expect(const skd_tensor *t, int n, int c, int h, int w, const char *what) {
  if (t->n == n && t->c == c && t->h == h && t->w == w) return SKD_OK;
  return skd_error(SKD_EINVAL, "%s: expected shape (%d, %d, %d, %d), got (%d, %d, %d, %d)", what, n, c, h, w,
                   t->n, t->c, t->h, t->w);
}

skd_status skd_tensor_expect_same(const skd_tensor *a, const skd_tensor *b, const char *what) {
  return skd_tensor_expect(a, b->n, b->c, b->h, b->w, what);
}

void skd_arg_tensor(skd_args *a, const skd_tensor *t) {
  skd_arg_mem(a, t->mem);
  skd_arg_int(a, (int)t->offset);
}

skd_status skd_param_init(skd_context *ctx, skd_param *p, const char *name, int n, int c, int h, int w,
                          int with_grad) {
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "%s", name);
  skd_status st = skd_tensor_alloc(ctx, &p->value, n, c, h, w);
  if (st == SKD_OK && with_grad) st = skd_tensor_alloc(ctx, &p->grad, n, c, h, w);
  if (st == SKD_OK && with_grad) st = skd_tensor_fill(ctx, &p->grad, 0.0f);
  if (st != SKD_OK) skd_param_release(p);
  return st;
}

void skd_param_release(skd_param *p) {
  skd_tensor_release(&p->value);
  skd_tensor_release(&p->grad);
  skd_tensor_release(&p->state1);
  skd_tensor_release(&p->state2);
}
