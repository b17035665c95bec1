/* Pooling on the device (cl/pool.cl). */
#include "skd/ops/pool.h"

skd_status skd_pool2d_output_size(skd_pool2d p, int in, int *out) {
  *out = 0;
  if (p.kernel < 1 || p.stride < 1 || p.padding < 0)
    return skd_error(SKD_EINVAL, "maxpool2d: kernel (%d) and stride (%d) must be >= 1 and padding (%d) >= 0",
                     p.kernel, p.stride, p.padding);
  if (p.padding > p.kernel / 2)
    return skd_error(SKD_EINVAL, "maxpool2d: padding (%d) must be at most half the kernel (%d)", p.padding,
                     p.kernel);
  if (in < 1) return skd_error(SKD_EINVAL, "maxpool2d: input size %d must be >= 1", in);
  int span = in + 2 * p.padding - p.kernel + (p.ceil_mode ? p.stride - 1 : 0);
  /* span < 0 means the window does not fit: no output at all. */
  int o = span < 0 ? 0 : span / p.stride + 1;
  /* PyTorch: the last window must start inside the input or the left padding. */
  if (p.ceil_mode && o > 0 && (o - 1) * p.stride >= in + p.padding) o--;
  if (o < 1)
    return skd_error(SKD_EINVAL, "maxpool2d: output size %d < 1 (input %d, kernel %d, stride %d, padding %d)", o,
                     in, p.kernel, p.stride, p.padding);
  *out = o;
  return SKD_OK;
}

/* Checks x against y (or dy) for a max pool: same N and C, y's H and W from
 * the pool rules. */
static skd_status maxpool_check(const skd_tensor *x, const skd_tensor *y, skd_pool2d p, const char *what) {
  int oh, ow;
  skd_status st = skd_pool2d_output_size(p, x->h, &oh);
  if (st == SKD_OK) st = skd_pool2d_output_size(p, x->w, &ow);
  if (st == SKD_OK) st = skd_tensor_expect(y, x->n, x->c, oh, ow, what);
  return st;
}

/* Fetches the kernel and sets the arguments every pool kernel starts with:
 * (h, w, oh, ow[, k, s, p]) where (h, w) is the size of x and (oh, ow) of y.
 * The caller adds the tensors and launches over the elements it writes
 * (launch_over). */
static skd_status pool_begin(skd_context *ctx, const char *kernel, const skd_tensor *x,
                             const skd_tensor *y, const skd_pool2d *p, skd_args *a) {
  skd_kernel *k;
  skd_status st = skd_kernel_get(ctx, "pool", kernel, &k);
  if (st != SKD_OK) return st;
  *a = skd_args_begin(k);
  skd_arg_int(a, x->h);
  skd_arg_int(a, x->w);
  skd_arg_int(a, y->h);
  skd_arg_int(a, y->w);
  if (p) {
    skd_arg_int(a, p->kernel);
    skd_arg_int(a, p->stride);
    skd_arg_int(a, p->padding);
  }
  return SKD_OK;
}

static skd_status launch_over(skd_context *ctx, skd_args *a, const skd_tensor *t) {
  return skd_launch_planes(ctx, a, t->w, t->h, (size_t)t->n * (size_t)t->c);
}

skd_status skd_maxpool2d_forward(skd_context *ctx, const skd_tensor *x, const skd_tensor *y, skd_pool2d p) {
  skd_args a;
  skd_status st = maxpool_check(x, y, p, "maxpool2d forward: y");
  if (st == SKD_OK) st = pool_begin(ctx, "maxpool_fwd", x, y, &p, &a);
  if (st != SKD_OK) return st;
  skd_arg_tensor(&a, x);
  skd_arg_tensor(&a, y);
  return launch_over(ctx, &a, y);
}

skd_status skd_maxpool2d_backward(skd_context *ctx, const skd_tensor *x, const skd_tensor *dy,
                                  const skd_tensor *dx, skd_pool2d p) {
  skd_args a;
  skd_status st = maxpool_check(x, dy, p, "maxpool2d backward: dy");
  if (st == SKD_OK) st = skd_tensor_expect_same(dx, x, "maxpool2d backward: dx");
  /* The windows' argmax (ints) in the workspace, then the gather. */
  size_t windows = skd_tensor_numel(dy);
  cl_mem arg = NULL;
  if (st == SKD_OK) st = skd_workspace_get(ctx, windows * sizeof(int), &arg);
  if (st == SKD_OK) st = pool_begin(ctx, "maxpool_argmax", x, dy, &p, &a);
  if (st != SKD_OK) return st;
  skd_arg_tensor(&a, x);
  skd_arg_mem(&a, arg);
  if ((st = launch_over(ctx, &a, dy)) != SKD_OK) return st;
  if ((st = pool_begin(ctx, "maxpool_bwd_x", x, dy, &p, &a)) != SKD_OK) return st;
  skd_arg_mem(&a, arg);
  skd_arg_tensor(&a, dy);
  skd_arg_tensor(&a, dx);
  return launch_over(ctx, &a, dx);
}

static skd_status adaptive_check(const skd_tensor *x, const skd_tensor *y, const char *op) {
  if (y->h < 1 || y->w < 1)
    return skd_error(SKD_EINVAL, "%s: output size (%d, %d) must be >= 1", op, y->h, y->w);
  if (x->h < 1 || x->w < 1)
    return skd_error(SKD_EINVAL, "%s: input size (%d, %d) must be >= 1", op, x->h, x->w);
  if (y->n != x->n || y->c != x->c)
    return skd_error(SKD_EINVAL, "%s: expected shape (%d, %d, BH, BW), got (%d, %d, %d, %d)", op, x->n,
                     x->c, y->n, y->c, y->h, y->w);
  return SKD_OK;
}

skd_status skd_adaptive_avgpool2d_forward(skd_context *ctx, const skd_tensor *x, const skd_tensor *y) {
  skd_args a;
  skd_status st = adaptive_check(x, y, "adaptive_avgpool2d forward: y");
  if (st == SKD_OK) st = pool_begin(ctx, "adaptive_avgpool_fwd", x, y, NULL, &a);
  if (st != SKD_OK) return st;
  skd_arg_tensor(&a, x);
  skd_arg_tensor(&a, y);
  return launch_over(ctx, &a, y);
}

skd_status skd_adaptive_avgpool2d_backward(skd_context *ctx, const skd_tensor *dy, const skd_tensor *dx) {
  skd_args a;
  skd_status st = adaptive_check(dx, dy, "adaptive_avgpool2d backward: dy");
  if (st == SKD_OK) st = pool_begin(ctx, "adaptive_avgpool_bwd_x", dx, dy, NULL, &a);
  if (st != SKD_OK) return st;
  skd_arg_tensor(&a, dy);
  skd_arg_tensor(&a, dx);
  return launch_over(ctx, &a, dx);
}
