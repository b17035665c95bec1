/* Dropout2d on the device (cl/dropout.cl). */
#include <string.h>

#include "skd/ops/dropout.h"
#include "skd/ops/elementwise.h"

static skd_status check_p(const char *op, float p) {
  if (!(p >= 0.0f && p <= 1.0f)) return skd_error(SKD_EINVAL, "%s: p must be in [0, 1] (%g)", op, (double)p);
  return SKD_OK;
}

/* Runs kernel over (a, b): y = a * factor or b += a * factor. */
static skd_status launch(skd_context *ctx, const char *kernel, const skd_tensor *a, const skd_tensor *b, float p,
                         uint32_t seed, int row0) {
  skd_kernel *k;
  skd_status st = skd_kernel_get(ctx, "dropout", kernel, &k);
  if (st != SKD_OK) return st;
  int total = (int)skd_tensor_numel(a);
  int seed_bits;
  memcpy(&seed_bits, &seed, sizeof seed_bits); /* the kernel takes it as uint */
  skd_args args = skd_args_begin(k);
  skd_arg_int(&args, total);
  skd_arg_int(&args, a->c);
  skd_arg_int(&args, a->h * a->w);
  skd_arg_int(&args, row0);
  skd_arg_int(&args, seed_bits);
  skd_arg_float(&args, p);
  skd_arg_float(&args, p < 1.0f ? 1.0f / (1.0f - p) : 0.0f);
  skd_arg_tensor(&args, a);
  skd_arg_tensor(&args, b);
  return skd_launch_1d(ctx, &args, (size_t)total, 256);
}

static int same_view(const skd_tensor *a, const skd_tensor *b) { return a->mem == b->mem && a->offset == b->offset; }

skd_status skd_dropout2d_forward(skd_context *ctx, int training, const skd_tensor *x, const skd_tensor *y, float p,
                                 uint32_t seed) {
  return skd_dropout2d_forward_rows(ctx, training, x, y, p, seed, 0);
}

skd_status skd_dropout2d_forward_rows(skd_context *ctx, int training, const skd_tensor *x, const skd_tensor *y,
                                      float p, uint32_t seed, int row0) {
  skd_status st = skd_tensor_expect_same(y, x, "dropout2d forward: y");
  if (st == SKD_OK) st = check_p("dropout2d forward", p);
  if (st != SKD_OK) return st;
  if (!training || p == 0.0f) return same_view(x, y) ? SKD_OK : skd_tensor_copy(ctx, y, x);
  return launch(ctx, "dropout2d_fwd", x, y, p, seed, row0);
}

skd_status skd_dropout2d_backward(skd_context *ctx, int training, const skd_tensor *dy, const skd_tensor *dx,
                                  float p, uint32_t seed) {
  return skd_dropout2d_backward_rows(ctx, training, dy, dx, p, seed, 0);
}

skd_status skd_dropout2d_backward_rows(skd_context *ctx, int training, const skd_tensor *dy, const skd_tensor *dx,
                                       float p, uint32_t seed, int row0) {
  skd_status st = skd_tensor_expect_same(dx, dy, "dropout2d backward: dx");
  if (st == SKD_OK) st = check_p("dropout2d backward", p);
  if (st != SKD_OK) return st;
  if (!training || p == 0.0f) return skd_axpby(ctx, 1.0f, dy, 1.0f, dx);
  return launch(ctx, "dropout2d_bwd_x", dy, dx, p, seed, row0);
}
