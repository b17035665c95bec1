/* Softmax family on the device (cl/softmax.cl). */
#include <stdio.h>

#include "skd/ops/softmax.h"

/* Work-group size wanted for the row and cross-entropy reductions. */
#define SOFTMAX_WG 256
/* Work-groups of the cross-entropy's first pass: fixed, so that the
 * summation order (and the result) is the same on every run. */
#define CE_GROUPS 256

/* One work-item per pixel, looping over the channels. */
static skd_status channel_op(skd_context *ctx, const char *kernel, const skd_tensor *a, const skd_tensor *b,
                             const skd_tensor *c) {
  skd_kernel *k;
  skd_status st = skd_kernel_get(ctx, "softmax", kernel, &k);
  if (st != SKD_OK) return st;
  int hw = a->h * a->w, npix = a->n * hw;
  skd_args args = skd_args_begin(k);
  skd_arg_int(&args, npix);
  skd_arg_int(&args, a->c);
  skd_arg_int(&args, hw);
  skd_arg_tensor(&args, a);
  skd_arg_tensor(&args, b);
  if (c) skd_arg_tensor(&args, c);
  return skd_launch_1d(ctx, &args, (size_t)npix, 256);
}

static skd_status forward(skd_context *ctx, const char *op, const char *kernel, const skd_tensor *x,
                          const skd_tensor *y) {
  char what[64];
  snprintf(what, sizeof what, "%s: y", op);
  skd_status st = skd_tensor_expect_same(y, x, what);
  if (st != SKD_OK) return st;
  return channel_op(ctx, kernel, x, y, NULL);
}

static skd_status backward(skd_context *ctx, const char *op, const char *kernel, const skd_tensor *y,
                           const skd_tensor *dy, const skd_tensor *dx) {
  char what[64];
  snprintf(what, sizeof what, "%s: dy", op);
  skd_status st = skd_tensor_expect_same(dy, y, what);
  snprintf(what, sizeof what, "%s: dx", op);
  if (st == SKD_OK) st = skd_tensor_expect_same(dx, y, what);
  if (st != SKD_OK) return st;
  return channel_op(ctx, kernel, y, dy, dx);
}

skd_status skd_softmax_forward(skd_context *ctx, const skd_tensor *x, const skd_tensor *y) {
  return forward(ctx, "softmax", "softmax_fwd", x, y);
}

skd_status skd_softmax_backward(skd_context *ctx, const skd_tensor *y, const skd_tensor *dy, const skd_tensor *dx) {
  return backward(ctx, "softmax", "softmax_bwd_x", y, dy, dx);
}

skd_status skd_log_softmax_forward(skd_context *ctx, const skd_tensor *x, const skd_tensor *y) {
  return forward(ctx, "log_softmax", "log_softmax_fwd", x, y);
}

skd_status skd_log_softmax_backward(skd_context *ctx, const skd_tensor *y, const skd_tensor *dy,
                                    const skd_tensor *dx) {
  return backward(ctx, "log_softmax", "log_softmax_bwd_x", y, dy, dx);
}

/* The smallest power of two >= n, at most `cap`. */
static size_t pow2_at_least(size_t n, size_t cap) {
  size_t p = 1;
  while (p < n && p < cap) p *= 2;
  return p;
}

static skd_status rows_launch(skd_context *ctx, const char *kernel, const skd_tensor *a, const skd_tensor *b,
                              const skd_tensor *c) {
  skd_kernel *k;
  skd_status st = skd_kernel_get(ctx, "softmax", kernel, &k);
  if (st != SKD_OK) return st;
  int rows = a->n * a->c * a->h, cols = a->w;
  if (rows == 0 || cols == 0) return SKD_OK;
  /* Short rows get a small group rather than 256 mostly idle work-items (a
   * work-item reads float4 groups). CPUs get 4 work-items, each walking
   * nearly contiguous memory: 256 strided ones ran several times slower on
   * PoCL. */
  size_t want = pow2_at_least(((size_t)cols + 3) / 4, SOFTMAX_WG);
  if (!ctx->info.is_gpu && want > 4) want = 4;
  size_t wg = skd_context_wg(ctx, want);
  skd_args args = skd_args_begin(k);
  skd_arg_int(&args, cols);
  skd_arg_tensor(&args, a);
  skd_arg_tensor(&args, b);
  if (c) skd_arg_tensor(&args, c);
  skd_arg_local(&args, wg * sizeof(float));
  size_t global = (size_t)rows * wg;
  return skd_launch(ctx, &args, 1, &global, &wg);
}

skd_status skd_softmax_rows_forward(skd_context *ctx, const skd_tensor *x, const skd_tensor *y) {
  skd_status st = skd_tensor_expect_same(y, x, "softmax_rows: y");
  if (st != SKD_OK) return st;
  return rows_launch(ctx, "softmax_rows_fwd", x, y, NULL);
}

skd_status skd_softmax_rows_backward(skd_context *ctx, const skd_tensor *y, const skd_tensor *dy,
                                     const skd_tensor *dx) {
  skd_status st = skd_tensor_expect_same(dy, y, "softmax_rows: dy");
  if (st == SKD_OK) st = skd_tensor_expect_same(dx, y, "softmax_rows: dx");
  if (st != SKD_OK) return st;
  return rows_launch(ctx, "softmax_rows_bwd_x", y, dy, dx);
}

static skd_status check_ce(const skd_tensor *logits, const skd_tensor *labels, int ignore_label,
                           const skd_tensor *count) {
  skd_status st = skd_tensor_expect(labels, logits->n, 1, logits->h, logits->w, "cross_entropy: labels");
  if (st == SKD_OK && skd_tensor_numel(count) != 1)
    st = skd_tensor_expect(count, 1, 1, 1, 1, "cross_entropy: count");
  /* The label is compared as a float: the ignore label must be exact. */
  if (st == SKD_OK && (ignore_label < -(1 << 24) || ignore_label > (1 << 24)))
    st = skd_error(SKD_EINVAL, "cross_entropy: ignore_label %d is not exact as a float", ignore_label);
  return st;
}

skd_status skd_cross_entropy_forward(skd_context *ctx, const skd_tensor *logits, const skd_tensor *labels,
                                     int ignore_label, const skd_tensor *loss, const skd_tensor *count) {
  skd_status st = check_ce(logits, labels, ignore_label, count);
  if (st == SKD_OK && skd_tensor_numel(loss) != 1) st = skd_tensor_expect(loss, 1, 1, 1, 1, "cross_entropy: loss");
  skd_kernel *kp, *kf;
  if (st == SKD_OK) st = skd_kernel_get(ctx, "softmax", "cross_entropy_fwd_partial", &kp);
  if (st == SKD_OK) st = skd_kernel_get(ctx, "softmax", "cross_entropy_fwd_final", &kf);
  /* Partial loss sums (floats) then partial counts (ints) in one workspace. */
  cl_mem ws = NULL;
  if (st == SKD_OK) st = skd_workspace_get(ctx, 2 * CE_GROUPS * sizeof(float), &ws);
  if (st != SKD_OK) return st;
  int hw = logits->h * logits->w, npix = logits->n * hw;
  /* CPUs: 4 work-items per group, as for the rows above. */
  size_t wg = skd_context_wg(ctx, ctx->info.is_gpu ? SOFTMAX_WG : 4);
  skd_tensor part = skd_tensor_view(ws, 0, 1, 1, 1, CE_GROUPS);

  skd_args a = skd_args_begin(kp);
  skd_arg_int(&a, npix);
  skd_arg_int(&a, logits->c);
  skd_arg_int(&a, hw);
  skd_arg_tensor(&a, logits);
  skd_arg_tensor(&a, labels);
  skd_arg_float(&a, (float)ignore_label);
  skd_arg_tensor(&a, &part);
  skd_arg_mem(&a, ws);
  skd_arg_int(&a, CE_GROUPS);
  skd_arg_local(&a, wg * sizeof(float));
  skd_arg_local(&a, wg * sizeof(int));
  size_t global = CE_GROUPS * wg;
  st = skd_launch(ctx, &a, 1, &global, &wg);
  if (st != SKD_OK) return st;

  size_t wg_final = skd_context_wg(ctx, CE_GROUPS);
  skd_args f = skd_args_begin(kf);
  skd_arg_int(&f, CE_GROUPS);
  skd_arg_tensor(&f, &part);
  skd_arg_mem(&f, ws);
  skd_arg_int(&f, CE_GROUPS);
  skd_arg_tensor(&f, loss);
  skd_arg_tensor(&f, count);
  skd_arg_local(&f, wg_final * sizeof(float));
  skd_arg_local(&f, wg_final * sizeof(int));
  return skd_launch(ctx, &f, 1, &wg_final, &wg_final);
}

skd_status skd_cross_entropy_backward(skd_context *ctx, const skd_tensor *logits, const skd_tensor *labels,
                                      int ignore_label, const skd_tensor *count, float scale,
                                      const skd_tensor *dlogits) {
  skd_status st = check_ce(logits, labels, ignore_label, count);
  if (st == SKD_OK) st = skd_tensor_expect_same(dlogits, logits, "cross_entropy: dlogits");
  skd_kernel *k;
  if (st == SKD_OK) st = skd_kernel_get(ctx, "softmax", "cross_entropy_bwd_x", &k);
  if (st != SKD_OK) return st;
  int hw = logits->h * logits->w, npix = logits->n * hw;
  skd_args a = skd_args_begin(k);
  skd_arg_int(&a, npix);
  skd_arg_int(&a, logits->c);
  skd_arg_int(&a, hw);
  skd_arg_tensor(&a, logits);
  skd_arg_tensor(&a, labels);
  skd_arg_float(&a, (float)ignore_label);
  skd_arg_tensor(&a, count);
  skd_arg_float(&a, scale);
  skd_arg_tensor(&a, dlogits);
  return skd_launch_1d(ctx, &a, (size_t)npix, 256);
}
