/* Spectral normalisation on the device (cl/spectral.cl). */
#include "skd/ops/spectral.h"

#define SN_WG 256
/* Work-groups of the backward's first reduction pass: fixed, so that the
 * summation order is the same on every run. */
#define SN_GROUPS 256

static skd_status expect_numel(const skd_tensor *t, size_t numel, const char *what, const skd_tensor *w) {
  if (skd_tensor_numel(t) == numel) return SKD_OK;
  return skd_error(SKD_EINVAL,
                   "spectral_norm: %s: expected %zu values for w (%d, %d, %d, %d), got shape (%d, %d, %d, %d)",
                   what, numel, w->n, w->c, w->h, w->w, t->n, t->c, t->h, t->w);
}

static skd_status check_vectors(const skd_tensor *w, const skd_tensor *u, const skd_tensor *v,
                                const skd_tensor *sigma) {
  size_t rows = (size_t)w->n, cols = (size_t)w->c * w->h * w->w;
  skd_status st = expect_numel(u, rows, "u", w);
  if (st == SKD_OK) st = expect_numel(v, cols, "v", w);
  if (st == SKD_OK) st = expect_numel(sigma, 1, "sigma", w);
  return st;
}

/* A kernel on one work-group: (n, x..., local scratch). */
static skd_status one_group(skd_context *ctx, skd_args *a, size_t wg) {
  skd_arg_local(a, wg * sizeof(float));
  return skd_launch(ctx, a, 1, &wg, &wg);
}

skd_status skd_spectral_norm_forward(skd_context *ctx, const skd_tensor *w, const skd_tensor *u,
                                     const skd_tensor *v, int power_iterations, const skd_tensor *sigma,
                                     const skd_tensor *w_sn) {
  skd_status st = check_vectors(w, u, v, sigma);
  if (st == SKD_OK) st = skd_tensor_expect_same(w_sn, w, "spectral_norm: w_sn");
  if (st == SKD_OK && power_iterations < 0)
    st = skd_error(SKD_EINVAL, "spectral_norm: power_iterations must be >= 0 (%d)", power_iterations);
  skd_kernel *k_wtu, *k_norm, *k_wv, *k_sigma, *k_scale;
  if (st == SKD_OK) st = skd_kernel_get(ctx, "spectral", "spectral_wtu_fwd", &k_wtu);
  if (st == SKD_OK) st = skd_kernel_get(ctx, "spectral", "spectral_normalize_fwd", &k_norm);
  if (st == SKD_OK) st = skd_kernel_get(ctx, "spectral", "spectral_wv_fwd", &k_wv);
  if (st == SKD_OK) st = skd_kernel_get(ctx, "spectral", "spectral_sigma_fwd", &k_sigma);
  if (st == SKD_OK) st = skd_kernel_get(ctx, "spectral", "spectral_scale_fwd", &k_scale);
  int rows = w->n, cols = w->c * w->h * w->w;
  cl_mem ws = NULL;
  if (st == SKD_OK) st = skd_workspace_get(ctx, (size_t)rows * sizeof(float), &ws);
  if (st != SKD_OK || rows == 0 || cols == 0) return st;
  skd_tensor s = skd_tensor_view(ws, 0, 1, 1, 1, rows); /* W v */
  size_t wg = skd_context_wg(ctx, SN_WG);

  /* With 0 iterations (eval) only s = W v and sigma are computed. */
  for (int it = 0; it < (power_iterations > 0 ? power_iterations : 1); it++) {
    if (power_iterations > 0) {
      skd_args a = skd_args_begin(k_wtu);
      skd_arg_int(&a, rows);
      skd_arg_int(&a, cols);
      skd_arg_tensor(&a, w);
      skd_arg_tensor(&a, u);
      skd_arg_tensor(&a, v);
      if ((st = skd_launch_1d(ctx, &a, (size_t)cols, 64)) != SKD_OK) return st;
      a = skd_args_begin(k_norm);
      skd_arg_int(&a, cols);
      skd_arg_tensor(&a, v);
      if ((st = one_group(ctx, &a, wg)) != SKD_OK) return st;
    }
    skd_args a = skd_args_begin(k_wv);
    skd_arg_int(&a, cols);
    skd_arg_tensor(&a, w);
    skd_arg_tensor(&a, v);
    skd_arg_tensor(&a, &s);
    skd_arg_local(&a, wg * sizeof(float));
    size_t global = (size_t)rows * wg;
    if ((st = skd_launch(ctx, &a, 1, &global, &wg)) != SKD_OK) return st;
    a = skd_args_begin(k_sigma);
    skd_arg_int(&a, rows);
    skd_arg_tensor(&a, &s);
    skd_arg_tensor(&a, u);
    skd_arg_int(&a, power_iterations > 0);
    skd_arg_tensor(&a, sigma);
    if ((st = one_group(ctx, &a, wg)) != SKD_OK) return st;
  }

  int n = rows * cols;
  skd_args a = skd_args_begin(k_scale);
  skd_arg_int(&a, n);
  skd_arg_tensor(&a, w);
  skd_arg_tensor(&a, sigma);
  skd_arg_tensor(&a, w_sn);
  return skd_launch_1d(ctx, &a, (size_t)n, 256);
}

skd_status skd_spectral_norm_backward(skd_context *ctx, const skd_tensor *w, const skd_tensor *u,
                                      const skd_tensor *v, const skd_tensor *sigma, const skd_tensor *dw_sn,
                                      const skd_tensor *dw) {
  skd_status st = check_vectors(w, u, v, sigma);
  if (st == SKD_OK) st = skd_tensor_expect_same(dw_sn, w, "spectral_norm: dw_sn");
  if (st == SKD_OK) st = skd_tensor_expect_same(dw, w, "spectral_norm: dw");
  skd_kernel *k_part, *k_final, *k_bwd;
  if (st == SKD_OK) st = skd_kernel_get(ctx, "spectral", "spectral_dot_partial", &k_part);
  if (st == SKD_OK) st = skd_kernel_get(ctx, "spectral", "spectral_dot_final", &k_final);
  if (st == SKD_OK) st = skd_kernel_get(ctx, "spectral", "spectral_bwd_w", &k_bwd);
  /* SN_GROUPS partial sums, then the total. */
  cl_mem ws = NULL;
  if (st == SKD_OK) st = skd_workspace_get(ctx, (SN_GROUPS + 1) * sizeof(float), &ws);
  int rows = w->n, cols = w->c * w->h * w->w, n = rows * cols;
  if (st != SKD_OK || n == 0) return st;
  skd_tensor part = skd_tensor_view(ws, 0, 1, 1, 1, SN_GROUPS);
  skd_tensor d = skd_tensor_view(ws, SN_GROUPS, 1, 1, 1, 1);
  /* CPUs: 4 work-items per group, each summing one contiguous chunk; 256
   * strided ones ran several times slower on PoCL. */
  size_t wg = skd_context_wg(ctx, ctx->info.is_gpu ? SN_WG : 4);
  size_t global = SN_GROUPS * wg;
  int chunk = ctx->info.is_gpu ? 0 : (int)(((size_t)n + global - 1) / global);

  skd_args a = skd_args_begin(k_part);
  skd_arg_int(&a, n);
  skd_arg_int(&a, chunk);
  skd_arg_tensor(&a, dw_sn);
  skd_arg_tensor(&a, w);
  skd_arg_tensor(&a, &part);
  skd_arg_local(&a, wg * sizeof(float));
  if ((st = skd_launch(ctx, &a, 1, &global, &wg)) != SKD_OK) return st;

  a = skd_args_begin(k_final);
  skd_arg_int(&a, SN_GROUPS);
  skd_arg_tensor(&a, &part);
  skd_arg_tensor(&a, &d);
  if ((st = one_group(ctx, &a, skd_context_wg(ctx, SN_GROUPS))) != SKD_OK) return st;

  a = skd_args_begin(k_bwd);
  skd_arg_int(&a, rows);
  skd_arg_int(&a, cols);
  skd_arg_tensor(&a, dw_sn);
  skd_arg_tensor(&a, u);
  skd_arg_tensor(&a, v);
  skd_arg_tensor(&a, sigma);
  skd_arg_tensor(&a, &d);
  skd_arg_tensor(&a, dw);
  return skd_launch_planes(ctx, &a, cols, rows, 1);
}
