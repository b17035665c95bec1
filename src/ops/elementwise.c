/* Element-wise ops on the device (cl/elementwise.cl). */
#include "skd/ops/elementwise.h"

static skd_status unary(skd_context *ctx, const char *kernel, const skd_tensor *x, const skd_tensor *y,
                        const float *slope) {
  skd_status st = skd_tensor_expect_same(y, x, kernel);
  skd_kernel *k;
  if (st == SKD_OK) st = skd_kernel_get(ctx, "elementwise", kernel, &k);
  if (st != SKD_OK) return st;
  int n = (int)skd_tensor_numel(x);
  skd_args a = skd_args_begin(k);
  skd_arg_int(&a, n);
  if (slope) skd_arg_float(&a, *slope);
  skd_arg_tensor(&a, x);
  skd_arg_tensor(&a, y);
  return skd_launch_1d(ctx, &a, (size_t)n, 256);
}

static skd_status unary_backward(skd_context *ctx, const char *kernel, const skd_tensor *x, const skd_tensor *dy,
                                 const skd_tensor *dx, const float *slope) {
  skd_status st = skd_tensor_expect_same(dy, x, kernel);
  if (st == SKD_OK) st = skd_tensor_expect_same(dx, x, kernel);
  skd_kernel *k;
  if (st == SKD_OK) st = skd_kernel_get(ctx, "elementwise", kernel, &k);
  if (st != SKD_OK) return st;
  int n = (int)skd_tensor_numel(x);
  skd_args a = skd_args_begin(k);
  skd_arg_int(&a, n);
  if (slope) skd_arg_float(&a, *slope);
  skd_arg_tensor(&a, x);
  skd_arg_tensor(&a, dy);
  skd_arg_tensor(&a, dx);
  return skd_launch_1d(ctx, &a, (size_t)n, 256);
}

skd_status skd_relu_forward(skd_context *ctx, const skd_tensor *x, const skd_tensor *y) {
  return unary(ctx, "relu_fwd", x, y, NULL);
}

skd_status skd_relu_backward(skd_context *ctx, const skd_tensor *x, const skd_tensor *dy, const skd_tensor *dx) {
  return unary_backward(ctx, "relu_bwd_x", x, dy, dx, NULL);
}

skd_status skd_leaky_relu_forward(skd_context *ctx, const skd_tensor *x, const skd_tensor *y, float slope) {
  return unary(ctx, "leaky_relu_fwd", x, y, &slope);
}

skd_status skd_leaky_relu_backward(skd_context *ctx, const skd_tensor *x, const skd_tensor *dy,
                                   const skd_tensor *dx, float slope) {
  return unary_backward(ctx, "leaky_relu_bwd_x", x, dy, dx, &slope);
}

skd_status skd_tanh_forward(skd_context *ctx, const skd_tensor *x, const skd_tensor *y) {
  return unary(ctx, "tanh_fwd", x, y, NULL);
}

skd_status skd_tanh_backward(skd_context *ctx, const skd_tensor *y, const skd_tensor *dy, const skd_tensor *dx) {
  return unary_backward(ctx, "tanh_bwd_x", y, dy, dx, NULL);
}

skd_status skd_add_forward(skd_context *ctx, const skd_tensor *a, const skd_tensor *b, const skd_tensor *y) {
  skd_status st = skd_tensor_expect_same(b, a, "add: b");
  if (st == SKD_OK) st = skd_tensor_expect_same(y, a, "add: y");
  skd_kernel *k;
  if (st == SKD_OK) st = skd_kernel_get(ctx, "elementwise", "add_fwd", &k);
  if (st != SKD_OK) return st;
  int n = (int)skd_tensor_numel(a);
  skd_args args = skd_args_begin(k);
  skd_arg_int(&args, n);
  skd_arg_tensor(&args, a);
  skd_arg_tensor(&args, b);
  skd_arg_tensor(&args, y);
  return skd_launch_1d(ctx, &args, (size_t)n, 256);
}

skd_status skd_axpby(skd_context *ctx, float alpha, const skd_tensor *x, float beta, const skd_tensor *y) {
  skd_status st = skd_tensor_expect_same(y, x, "axpby: y");
  skd_kernel *k;
  if (st == SKD_OK) st = skd_kernel_get(ctx, "elementwise", "axpby_fwd", &k);
  if (st != SKD_OK) return st;
  int n = (int)skd_tensor_numel(x);
  skd_args a = skd_args_begin(k);
  skd_arg_int(&a, n);
  skd_arg_float(&a, alpha);
  skd_arg_tensor(&a, x);
  skd_arg_float(&a, beta);
  skd_arg_tensor(&a, y);
  return skd_launch_1d(ctx, &a, (size_t)n, 256);
}
