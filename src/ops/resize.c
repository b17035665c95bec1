/* Bilinear resize on the device (cl/resize.cl). */
#include "skd/ops/resize.h"

/* align_corners = true: the first and last pixels of input and output line up. */
static float align_scale(int in, int out) { return out > 1 ? (float)(in - 1) / (float)(out - 1) : 0.0f; }

static skd_status resize_check(const skd_tensor *x, const skd_tensor *y, const char *what) {
  if (x->h < 1 || x->w < 1) return skd_error(SKD_EINVAL, "%s: input size (%d, %d) must be >= 1", what, x->h, x->w);
  if (y->h < 1 || y->w < 1)
    return skd_error(SKD_EINVAL, "%s: output size (%d, %d) must be >= 1", what, y->h, y->w);
  if (y->n != x->n || y->c != x->c)
    return skd_error(SKD_EINVAL, "%s: expected shape (%d, %d, OH, OW), got (%d, %d, %d, %d)", what, x->n, x->c,
                     y->n, y->c, y->h, y->w);
  return SKD_OK;
}

/* Both kernels take (h, w, oh, ow, scale_h, scale_w, src, dst) with (h, w)
 * the input's size and (oh, ow) the output's, one work-item per element of dst. */
static skd_status launch(skd_context *ctx, const char *kernel, const skd_tensor *x, const skd_tensor *y,
                         const skd_tensor *src, const skd_tensor *dst) {
  skd_kernel *k;
  skd_status st = skd_kernel_get(ctx, "resize", kernel, &k);
  if (st != SKD_OK) return st;
  skd_args a = skd_args_begin(k);
  skd_arg_int(&a, x->h);
  skd_arg_int(&a, x->w);
  skd_arg_int(&a, y->h);
  skd_arg_int(&a, y->w);
  skd_arg_float(&a, align_scale(x->h, y->h));
  skd_arg_float(&a, align_scale(x->w, y->w));
  skd_arg_tensor(&a, src);
  skd_arg_tensor(&a, dst);
  return skd_launch_planes(ctx, &a, dst->w, dst->h, (size_t)dst->n * (size_t)dst->c);
}

skd_status skd_resize_bilinear_forward(skd_context *ctx, const skd_tensor *x, const skd_tensor *y) {
  skd_status st = resize_check(x, y, "resize_bilinear forward: y");
  if (st != SKD_OK) return st;
  return launch(ctx, "resize_bilinear_fwd", x, y, x, y);
}

skd_status skd_resize_bilinear_backward(skd_context *ctx, const skd_tensor *dy, const skd_tensor *dx) {
  skd_status st = resize_check(dx, dy, "resize_bilinear backward: dy");
  if (st != SKD_OK) return st;
  return launch(ctx, "resize_bilinear_bwd_x", dx, dy, dy, dx);
}
