/* Depth over log10 bins on the device (cl/depth.cl): the task loss and
 * bins -> depth. */
#include "skd/loss/depth.h"

#include <limits.h>
#include <math.h>

skd_status skd_depth_bins_check(const skd_depth_bins *b) {
  if (b->bins < 2 || b->bins > 1024)
    return skd_error(SKD_EINVAL, "depth bins: bins must be in [2, 1024] (got %d)", b->bins);
  if (!(b->d_min > 0.0f) || !isfinite(b->d_min))
    return skd_error(SKD_EINVAL, "depth bins: depth_min must be a finite number > 0 (got %g)", (double)b->d_min);
  if (!(b->d_max > b->d_min) || !isfinite(b->d_max))
    return skd_error(SKD_EINVAL, "depth bins: depth_max must be finite and > depth_min %g (got %g)",
                     (double)b->d_min, (double)b->d_max);
  return SKD_OK;
}

static double bin_width(const skd_depth_bins *b) {
  return (log10((double)b->d_max) - log10((double)b->d_min)) / b->bins;
}

double skd_depth_bin_centre(const skd_depth_bins *b, int i) {
  return log10((double)b->d_min) + bin_width(b) * (i + 0.5);
}

int skd_depth_bin_of(const skd_depth_bins *b, float d) {
  if (!(d > 0.0f) || !isfinite(d)) return -1;
  double j = floor((log10((double)d) - log10((double)b->d_min)) / bin_width(b));
  if (j < 0) return 0;
  if (j > b->bins - 1) return b->bins - 1;
  return (int)j;
}

static skd_status check_logits(const skd_depth_bins *b, const skd_tensor *z, const char *op) {
  skd_status st = skd_depth_bins_check(b);
  if (st != SKD_OK) return st;
  if (z->c != b->bins || z->n < 1 || z->h < 1 || z->w < 1)
    return skd_error(SKD_EINVAL, "%s: logits: expected (N, %d bins, H, W), got (%d, %d, %d, %d)", op, b->bins,
                     z->n, z->c, z->h, z->w);
  if (skd_tensor_numel(z) > INT_MAX)
    return skd_error(SKD_EINVAL, "%s: logits: %zu elements exceed the int indexing of the kernels", op,
                     skd_tensor_numel(z));
  return SKD_OK;
}

skd_status skd_depth_loss(skd_context *ctx, const skd_depth_bins *b, const skd_tensor *logits,
                          const skd_tensor *depth, float grad_scale, const skd_tensor *dlogits,
                          const skd_tensor *loss_out) {
  const skd_tensor *z = logits;
  skd_status st = check_logits(b, z, "depth loss");
  if (st == SKD_OK) st = skd_tensor_expect(depth, z->n, 1, z->h, z->w, "depth loss: depth (N, 1, H, W of logits)");
  if (st == SKD_OK && dlogits) st = skd_tensor_expect_same(dlogits, z, "depth loss: dlogits (must match logits)");
  if (st == SKD_OK && skd_tensor_numel(loss_out) != 1)
    st = skd_error(SKD_EINVAL, "depth loss: loss_out: expected 1 element");
  if (st != SKD_OK) return st;
  const int hw = z->h * z->w, total = z->n * hw;
  const size_t wg = skd_context_wg(ctx, 256);
  /* The loss kernel's grid: a work-item per 8 positions of a sample's plane,
   * groups of wg_fwd along the plane; each group leaves one partial. */
  const size_t wg_fwd = skd_context_wg(ctx, 64);
  const size_t items = ((size_t)hw + 7) / 8, groups_x = (items + wg_fwd - 1) / wg_fwd;
  const size_t groups = groups_x * (size_t)z->n;
  /* Workspace: the group partials, then the valid count (an int). */
  cl_mem ws;
  skd_kernel *kcount, *kfwd, *ksum;
  st = skd_workspace_get(ctx, (groups + 1) * sizeof(float), &ws);
  if (st == SKD_OK) st = skd_kernel_get(ctx, "depth", "depth_count", &kcount);
  if (st == SKD_OK) st = skd_kernel_get(ctx, "depth", "depth_ce_fwd", &kfwd);
  if (st == SKD_OK) st = skd_kernel_get(ctx, "depth", "depth_ce_sum", &ksum);
  if (st != SKD_OK) return st;
  const int count_off = (int)groups;

  skd_args a = skd_args_begin(kcount);
  skd_arg_int(&a, total);
  skd_arg_tensor(&a, depth);
  skd_arg_mem(&a, ws);
  skd_arg_int(&a, count_off);
  skd_arg_local(&a, wg * sizeof(int));
  st = skd_launch(ctx, &a, 1, &wg, &wg);
  if (st != SKD_OK) return st;

  a = skd_args_begin(kfwd);
  skd_arg_int(&a, z->c);
  skd_arg_int(&a, hw);
  skd_arg_tensor(&a, z);
  skd_arg_tensor(&a, depth);
  skd_arg_float(&a, (float)log10((double)b->d_min));
  skd_arg_float(&a, (float)(1.0 / bin_width(b)));
  skd_arg_mem(&a, ws);
  skd_arg_int(&a, count_off);
  skd_arg_float(&a, grad_scale);
  skd_arg_tensor(&a, dlogits ? dlogits : z); /* placeholder, never written without want_grad */
  skd_arg_int(&a, dlogits != NULL);
  skd_arg_mem(&a, ws);
  skd_arg_int(&a, 0);
  skd_arg_local(&a, wg_fwd * sizeof(float));
  size_t global[2] = {groups_x * wg_fwd, (size_t)z->n}, local[2] = {wg_fwd, 1};
  st = skd_launch(ctx, &a, 2, global, local);
  if (st != SKD_OK) return st;

  a = skd_args_begin(ksum);
  skd_arg_int(&a, (int)groups);
  skd_arg_mem(&a, ws);
  skd_arg_int(&a, 0);
  skd_arg_mem(&a, ws);
  skd_arg_int(&a, count_off);
  skd_arg_tensor(&a, loss_out);
  skd_arg_local(&a, wg * sizeof(float));
  return skd_launch(ctx, &a, 1, &wg, &wg);
}

static skd_status bins_args(skd_context *ctx, const skd_depth_bins *b, const skd_tensor *z, const char *name,
                            skd_args *a, skd_kernel **k) {
  skd_status st = skd_kernel_get(ctx, "depth", name, k);
  if (st != SKD_OK) return st;
  const double log_min = log10((double)b->d_min);
  *a = skd_args_begin(*k);
  skd_arg_int(a, z->n * z->h * z->w);
  skd_arg_int(a, z->c);
  skd_arg_int(a, z->h * z->w);
  skd_arg_tensor(a, z);
  skd_arg_float(a, (float)log_min);
  skd_arg_float(a, (float)bin_width(b));
  return SKD_OK;
}

skd_status skd_depth_from_bins(skd_context *ctx, const skd_depth_bins *b, const skd_tensor *logits,
                               const skd_tensor *depth_out) {
  const skd_tensor *z = logits;
  skd_status st = check_logits(b, z, "depth from bins");
  if (st == SKD_OK)
    st = skd_tensor_expect(depth_out, z->n, 1, z->h, z->w, "depth from bins: depth_out (N, 1, H, W of logits)");
  skd_args a;
  skd_kernel *k;
  if (st == SKD_OK) st = bins_args(ctx, b, z, "depth_from_bins", &a, &k);
  if (st != SKD_OK) return st;
  skd_arg_tensor(&a, depth_out);
  return skd_launch_1d(ctx, &a, (size_t)z->n * z->h * z->w, 0);
}

skd_status skd_depth_from_bins_backward(skd_context *ctx, const skd_depth_bins *b, const skd_tensor *logits,
                                        const skd_tensor *depth_out, const skd_tensor *ddepth,
                                        const skd_tensor *dlogits) {
  const skd_tensor *z = logits;
  skd_status st = check_logits(b, z, "depth from bins backward");
  if (st == SKD_OK) st = skd_tensor_expect(depth_out, z->n, 1, z->h, z->w, "depth from bins backward: depth_out");
  if (st == SKD_OK) st = skd_tensor_expect(ddepth, z->n, 1, z->h, z->w, "depth from bins backward: ddepth");
  if (st == SKD_OK) st = skd_tensor_expect_same(dlogits, z, "depth from bins backward: dlogits (must match logits)");
  skd_args a;
  skd_kernel *k;
  if (st == SKD_OK) st = bins_args(ctx, b, z, "depth_from_bins_bwd", &a, &k);
  if (st != SKD_OK) return st;
  skd_arg_tensor(&a, depth_out);
  skd_arg_tensor(&a, ddepth);
  skd_arg_tensor(&a, dlogits);
  return skd_launch_1d(ctx, &a, (size_t)z->n * z->h * z->w, 0);
}
