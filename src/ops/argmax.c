/* Per-pixel argmax on the device (cl/argmax.cl). */
#include <limits.h>

#include "skd/ops/argmax.h"

/* Common checks; *pixels = N*H*W. Kernels index with int. */
static skd_status check_input(const skd_tensor *x, const char *op, int *pixels) {
  if (x->n < 1 || x->c < 1 || x->h < 1 || x->w < 1)
    return skd_error(SKD_EINVAL, "%s: x has an empty shape (%d, %d, %d, %d)", op, x->n, x->c, x->h, x->w);
  if (skd_tensor_numel(x) > (size_t)INT_MAX)
    return skd_error(SKD_EINVAL, "%s: x (%d, %d, %d, %d) has more than INT_MAX elements", op, x->n, x->c, x->h,
                     x->w);
  *pixels = x->n * x->h * x->w;
  return SKD_OK;
}

skd_status skd_argmax_forward(skd_context *ctx, const skd_tensor *x, const skd_tensor *ids) {
  int pixels = 0;
  skd_status st = check_input(x, "argmax", &pixels);
  if (st == SKD_OK) st = skd_tensor_expect(ids, x->n, 1, x->h, x->w, "argmax: ids");
  skd_kernel *k;
  if (st == SKD_OK) st = skd_kernel_get(ctx, "argmax", "argmax_fwd", &k);
  if (st != SKD_OK) return st;
  skd_args a = skd_args_begin(k);
  skd_arg_int(&a, pixels);
  skd_arg_int(&a, x->c);
  skd_arg_int(&a, x->h * x->w);
  skd_arg_tensor(&a, x);
  skd_arg_tensor(&a, ids);
  return skd_launch_1d(ctx, &a, (size_t)pixels, 256);
}

skd_status skd_argmax_download_u8(skd_context *ctx, const skd_tensor *x, uint8_t *ids) {
  int pixels = 0;
  skd_status st = check_input(x, "argmax u8", &pixels);
  if (st != SKD_OK) return st;
  if (x->c > 255)
    return skd_error(SKD_EINVAL, "argmax u8: %d channels do not fit in a byte below the ignore label 255", x->c);
  cl_mem bytes;
  skd_kernel *k;
  st = skd_workspace_get(ctx, (size_t)pixels, &bytes);
  if (st == SKD_OK) st = skd_kernel_get(ctx, "argmax", "argmax_u8_fwd", &k);
  if (st != SKD_OK) return st;
  skd_args a = skd_args_begin(k);
  skd_arg_int(&a, pixels);
  skd_arg_int(&a, x->c);
  skd_arg_int(&a, x->h * x->w);
  skd_arg_tensor(&a, x);
  skd_arg_mem(&a, bytes);
  st = skd_launch_1d(ctx, &a, (size_t)pixels, 256);
  if (st != SKD_OK) return st;
  cl_int err = clEnqueueReadBuffer(ctx->queue, bytes, CL_TRUE, 0, (size_t)pixels, ids, 0, NULL, NULL);
  return skd_cl_check(err, "argmax u8: reading the ids");
}
