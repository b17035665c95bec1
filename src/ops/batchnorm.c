/* BatchNorm2d on the device (cl/batchnorm.cl): per-channel statistics with
 * one work-group per channel, then an element-wise apply; backward is a
 * per-channel reduction followed by an element-wise dx. */
#include <stdlib.h>

#include "skd/ops/batchnorm.h"

/* --sync-bn: the hook and the context it applies to (skd_batchnorm_set_sync). */
static _Thread_local const skd_bn_sync *sync_hook;
static _Thread_local const skd_context *sync_ctx;

void skd_batchnorm_set_sync(skd_context *ctx, const skd_bn_sync *sync) {
  sync_hook = sync;
  sync_ctx = sync ? ctx : NULL;
}

static const skd_bn_sync *active_sync(const skd_context *ctx, int training) {
  return training && sync_hook && sync_ctx == ctx && sync_hook->ranks > 1 ? sync_hook : NULL;
}

/* Work-group size of the per-channel reductions (a power of two): wide on
 * GPUs; on CPUs a few work-items, each walking nearly contiguous memory
 * (256 strided work-items ran 5x slower on PoCL). */
static size_t reduce_wg(const skd_context *ctx) { return skd_context_wg(ctx, ctx->info.is_gpu ? 256 : 4); }

/* float4 groups per work-item of the element-wise kernels: one on GPUs,
 * several on CPUs, where each work-item has a fixed cost (PoCL, 8x64x128x128:
 * 32 cut the apply 5-10 % and dx 25 % against 8; 128 was no better). */
static int per_item(const skd_context *ctx) { return ctx->info.is_gpu ? 1 : 32; }

/* The element-wise kernels' 3-D grid: (position in the plane, channel, sample). */
static skd_status launch_planes(skd_context *ctx, skd_args *a, int n, int c, int hw, int per) {
  size_t items = ((size_t)hw + 4 * (size_t)per - 1) / (4 * (size_t)per);
  size_t local[3] = {skd_context_wg(ctx, items >= 256 ? 256 : 64), 1, 1};
  size_t global[3] = {items, (size_t)c, (size_t)n};
  return skd_launch(ctx, a, 3, global, local);
}

static skd_status check_channel(const skd_tensor *t, int c, const char *what) {
  return skd_tensor_expect(t, 1, c, 1, 1, what);
}

static skd_status check_act(const char *op, skd_bn_act act, float slope) {
  if (act != SKD_BN_ACT_NONE && act != SKD_BN_ACT_RELU && act != SKD_BN_ACT_LEAKY_RELU)
    return skd_error(SKD_EINVAL, "%s: unknown activation %d", op, (int)act);
  /* Backward reads the activation's mask from the sign of the output. */
  if (act == SKD_BN_ACT_LEAKY_RELU && !(slope >= 0.0f))
    return skd_error(SKD_EINVAL, "%s: leaky_relu slope must be >= 0 (%g)", op, (double)slope);
  return SKD_OK;
}

static skd_status forward_checks(skd_context *ctx, int training, const skd_tensor *x, const skd_tensor *gamma, const skd_tensor *beta,
                                 const skd_tensor *running_mean, const skd_tensor *running_var,
                                 const skd_tensor *save_mean, const skd_tensor *save_invstd, const skd_tensor *y,
                                 float eps, float momentum, skd_bn_act act, float slope) {
  const int c = x->c;
  skd_status st = skd_tensor_expect_same(y, x, "batchnorm forward: y");
  if (st == SKD_OK) st = check_channel(gamma, c, "batchnorm forward: gamma");
  if (st == SKD_OK) st = check_channel(beta, c, "batchnorm forward: beta");
  if (st == SKD_OK) st = check_channel(running_mean, c, "batchnorm forward: running_mean");
  if (st == SKD_OK) st = check_channel(running_var, c, "batchnorm forward: running_var");
  if (st != SKD_OK) return st;
  if ((save_mean == NULL) != (save_invstd == NULL))
    return skd_error(SKD_EINVAL, "batchnorm forward: save_mean and save_invstd must be both given or both NULL");
  if (training && !save_mean)
    return skd_error(SKD_EINVAL, "batchnorm forward: training needs save_mean and save_invstd");
  if (save_mean) st = check_channel(save_mean, c, "batchnorm forward: save_mean");
  if (st == SKD_OK && save_invstd) st = check_channel(save_invstd, c, "batchnorm forward: save_invstd");
  if (st != SKD_OK) return st;
  if (!(eps > 0.0f)) return skd_error(SKD_EINVAL, "batchnorm forward: eps must be > 0 (%g)", (double)eps);
  if (training && !(momentum >= 0.0f && momentum <= 1.0f))
    return skd_error(SKD_EINVAL, "batchnorm forward: momentum must be in [0, 1] (%g)", (double)momentum);
  /* PyTorch refuses this too: the unbiased variance would divide by zero
   * (synchronised: the count over all ranks, checked after the gather). */
  if (training && !active_sync(ctx, training) && x->n * x->h * x->w <= 1)
    return skd_error(SKD_EINVAL,
                     "batchnorm forward: expected more than 1 value per channel when training, got input of "
                     "shape (%d, %d, %d, %d)",
                     x->n, x->c, x->h, x->w);
  return check_act("batchnorm forward", act, slope);
}

/* Synchronised statistics: this rank's part, the ranks' parts merged on
 * the host in rank order, then finished on the device. */
static skd_status synced_stats(skd_context *ctx, const skd_bn_sync *sync, const skd_tensor *x,
                               const skd_tensor *running_mean, const skd_tensor *running_var,
                               const skd_tensor *mean, const skd_tensor *invstd, float eps, float momentum) {
  const int n = x->n, c = x->c, hw = x->h * x->w;
  const int ranks = sync->ranks;
  cl_mem ws;
  skd_status st = skd_workspace_get(ctx, 2 * (size_t)c * sizeof(float), &ws);
  if (st != SKD_OK) return st;
  skd_tensor part = skd_tensor_view(ws, 0, 1, 2 * c, 1, 1);
  skd_kernel *k;
  st = skd_kernel_get(ctx, "batchnorm", "batchnorm_stats_part", &k);
  if (st != SKD_OK) return st;
  size_t wg = reduce_wg(ctx);
  skd_args a = skd_args_begin(k);
  skd_arg_int(&a, n);
  skd_arg_int(&a, c);
  skd_arg_int(&a, hw);
  skd_arg_int(&a, !ctx->info.is_gpu);
  skd_arg_tensor(&a, x);
  skd_arg_tensor(&a, &part);
  skd_arg_local(&a, 3 * wg * sizeof(float));
  size_t global = (size_t)c * wg;
  st = skd_launch(ctx, &a, 1, &global, &wg);
  /* host: [own count, own (mean, ssd)] -> every rank's */
  const size_t row = 2 * (size_t)c + 1;
  float *own = malloc(row * sizeof(float)), *all = malloc((size_t)ranks * row * sizeof(float));
  if (!own || !all) st = skd_error(SKD_ENOMEM, "batchnorm forward: out of host memory for synchronised statistics");
  if (st == SKD_OK) st = skd_tensor_download(ctx, &part, own + 1);
  if (st == SKD_OK) {
    own[0] = (float)n * (float)hw;
    st = sync->gather(sync->user, own, all, row);
  }
  double total = 0;
  for (int r = 0; st == SKD_OK && r < ranks; r++) total += all[(size_t)r * row];
  if (st == SKD_OK && total <= 1)
    st = skd_error(SKD_EINVAL, "batchnorm forward: expected more than 1 value per channel over all ranks when "
                   "training, got %g", total);
  for (int ch = 0; st == SKD_OK && ch < c; ch++) {
    double cnt = 0, mu = 0, m2 = 0;
    for (int r = 0; r < ranks; r++) { /* Chan's merge, rank order */
      const float *p = all + (size_t)r * row;
      double cb = p[0], mb = p[1 + ch], m2b = p[1 + c + ch];
      if (cb == 0) continue;
      double tot = cnt + cb, delta = mb - mu;
      m2 += m2b + delta * delta * (cnt * cb / tot);
      mu += delta * (cb / tot);
      cnt = tot;
    }
    own[1 + ch] = (float)mu;
    own[1 + c + ch] = (float)m2;
  }
  if (st == SKD_OK) st = skd_tensor_upload(ctx, &part, own + 1);
  free(own);
  free(all);
  if (st != SKD_OK) return st;
  st = skd_kernel_get(ctx, "batchnorm", "batchnorm_stats_finish", &k);
  if (st != SKD_OK) return st;
  a = skd_args_begin(k);
  skd_arg_int(&a, c);
  skd_arg_int(&a, (int)total);
  skd_arg_float(&a, eps);
  skd_arg_float(&a, momentum);
  skd_arg_tensor(&a, &part);
  skd_arg_tensor(&a, running_mean);
  skd_arg_tensor(&a, running_var);
  skd_arg_tensor(&a, mean);
  skd_arg_tensor(&a, invstd);
  return skd_launch_1d(ctx, &a, (size_t)c, 64);
}

skd_status skd_batchnorm_forward(skd_context *ctx, int training, const skd_tensor *x, const skd_tensor *gamma,
                                 const skd_tensor *beta, const skd_tensor *running_mean,
                                 const skd_tensor *running_var, const skd_tensor *save_mean,
                                 const skd_tensor *save_invstd, const skd_tensor *y, float eps, float momentum,
                                 skd_bn_act act, float slope) {
  skd_status st = forward_checks(ctx, training, x, gamma, beta, running_mean, running_var, save_mean, save_invstd, y,
                                 eps, momentum, act, slope);
  if (st != SKD_OK) return st;
  const int n = x->n, c = x->c, hw = x->h * x->w;
  if (skd_tensor_numel(x) == 0) return SKD_OK;

  /* Eval mode without save tensors keeps the statistics in the workspace. */
  skd_tensor mean, invstd;
  if (save_mean) {
    mean = *save_mean;
    invstd = *save_invstd;
  } else {
    cl_mem ws;
    st = skd_workspace_get(ctx, 2 * (size_t)c * sizeof(float), &ws);
    if (st != SKD_OK) return st;
    mean = skd_tensor_view(ws, 0, 1, c, 1, 1);
    invstd = skd_tensor_view(ws, (size_t)c, 1, c, 1, 1);
  }

  skd_kernel *k;
  const skd_bn_sync *sync = active_sync(ctx, training);
  if (sync) {
    st = synced_stats(ctx, sync, x, running_mean, running_var, &mean, &invstd, eps, momentum);
  } else if (training) {
    st = skd_kernel_get(ctx, "batchnorm", "batchnorm_stats_fwd", &k);
    if (st != SKD_OK) return st;
    size_t wg = reduce_wg(ctx);
    skd_args a = skd_args_begin(k);
    skd_arg_int(&a, n);
    skd_arg_int(&a, c);
    skd_arg_int(&a, hw);
    skd_arg_int(&a, !ctx->info.is_gpu); /* contiguous runs per work-item on CPUs */
    skd_arg_float(&a, eps);
    skd_arg_float(&a, momentum);
    skd_arg_tensor(&a, x);
    skd_arg_tensor(&a, running_mean);
    skd_arg_tensor(&a, running_var);
    skd_arg_tensor(&a, &mean);
    skd_arg_tensor(&a, &invstd);
    skd_arg_local(&a, 3 * wg * sizeof(float));
    size_t global = (size_t)c * wg;
    st = skd_launch(ctx, &a, 1, &global, &wg);
  } else {
    st = skd_kernel_get(ctx, "batchnorm", "batchnorm_eval_stats_fwd", &k);
    if (st != SKD_OK) return st;
    skd_args a = skd_args_begin(k);
    skd_arg_int(&a, c);
    skd_arg_float(&a, eps);
    skd_arg_tensor(&a, running_mean);
    skd_arg_tensor(&a, running_var);
    skd_arg_tensor(&a, &mean);
    skd_arg_tensor(&a, &invstd);
    st = skd_launch_1d(ctx, &a, (size_t)c, 64);
  }
  if (st != SKD_OK) return st;

  st = skd_kernel_get(ctx, "batchnorm", "batchnorm_apply_fwd", &k);
  if (st != SKD_OK) return st;
  skd_args a = skd_args_begin(k);
  skd_arg_int(&a, n);
  skd_arg_int(&a, c);
  skd_arg_int(&a, hw);
  skd_arg_int(&a, per_item(ctx));
  skd_arg_int(&a, (int)act);
  skd_arg_float(&a, slope);
  skd_arg_tensor(&a, x);
  skd_arg_tensor(&a, &mean);
  skd_arg_tensor(&a, &invstd);
  skd_arg_tensor(&a, gamma);
  skd_arg_tensor(&a, beta);
  skd_arg_tensor(&a, y);
  return launch_planes(ctx, &a, n, c, hw, per_item(ctx));
}

static skd_status backward_checks(const skd_tensor *x, const skd_tensor *y, const skd_tensor *gamma,
                                  const skd_tensor *save_mean, const skd_tensor *save_invstd, const skd_tensor *dy,
                                  const skd_tensor *dx, const skd_tensor *dgamma, const skd_tensor *dbeta,
                                  skd_bn_act act, float slope) {
  const int c = x->c;
  skd_status st = check_act("batchnorm backward", act, slope);
  if (st != SKD_OK) return st;
  if (act != SKD_BN_ACT_NONE && !y)
    return skd_error(SKD_EINVAL, "batchnorm backward: a fused activation needs the forward output y");
  if (!save_mean || !save_invstd)
    return skd_error(SKD_EINVAL, "batchnorm backward: save_mean and save_invstd are required");
  st = skd_tensor_expect_same(dy, x, "batchnorm backward: dy");
  if (st == SKD_OK && y) st = skd_tensor_expect_same(y, x, "batchnorm backward: y");
  if (st == SKD_OK && dx) st = skd_tensor_expect_same(dx, x, "batchnorm backward: dx");
  if (st == SKD_OK) st = check_channel(gamma, c, "batchnorm backward: gamma");
  if (st == SKD_OK) st = check_channel(save_mean, c, "batchnorm backward: save_mean");
  if (st == SKD_OK) st = check_channel(save_invstd, c, "batchnorm backward: save_invstd");
  if (st == SKD_OK && dgamma) st = check_channel(dgamma, c, "batchnorm backward: dgamma");
  if (st == SKD_OK && dbeta) st = check_channel(dbeta, c, "batchnorm backward: dbeta");
  return st;
}

skd_status skd_batchnorm_backward(skd_context *ctx, int training, const skd_tensor *x, const skd_tensor *y,
                                  const skd_tensor *gamma, const skd_tensor *save_mean,
                                  const skd_tensor *save_invstd, const skd_tensor *dy, const skd_tensor *dx,
                                  const skd_tensor *dgamma, const skd_tensor *dbeta, skd_bn_act act, float slope) {
  skd_status st = backward_checks(x, y, gamma, save_mean, save_invstd, dy, dx, dgamma, dbeta, act, slope);
  if (st != SKD_OK) return st;
  const int n = x->n, c = x->c, hw = x->h * x->w;
  /* dx in training mode needs the per-channel sums; eval mode only for
   * dgamma / dbeta. */
  const int need_sums = (dx && training) || dgamma || dbeta;
  if (skd_tensor_numel(x) == 0 || (!dx && !need_sums)) return SKD_OK;
  if (act == SKD_BN_ACT_NONE) y = x; /* unused by the kernels, but must be a valid buffer */

  cl_mem ws;
  st = skd_workspace_get(ctx, 2 * (size_t)c * sizeof(float), &ws);
  if (st != SKD_OK) return st;
  skd_tensor sums = skd_tensor_view(ws, 0, 1, 2 * c, 1, 1);

  skd_kernel *k;
  if (need_sums) {
    st = skd_kernel_get(ctx, "batchnorm", "batchnorm_bwd_params", &k);
    if (st != SKD_OK) return st;
    size_t wg = reduce_wg(ctx);
    skd_args a = skd_args_begin(k);
    skd_arg_int(&a, n);
    skd_arg_int(&a, c);
    skd_arg_int(&a, hw);
    skd_arg_int(&a, (int)act);
    skd_arg_float(&a, slope);
    skd_arg_tensor(&a, x);
    skd_arg_tensor(&a, y);
    skd_arg_tensor(&a, save_mean);
    skd_arg_tensor(&a, save_invstd);
    skd_arg_tensor(&a, dy);
    skd_arg_tensor(&a, &sums);
    skd_arg_int(&a, dgamma != NULL);
    skd_arg_tensor(&a, dgamma ? dgamma : &sums);
    skd_arg_int(&a, dbeta != NULL);
    skd_arg_tensor(&a, dbeta ? dbeta : &sums);
    skd_arg_int(&a, !ctx->info.is_gpu); /* contiguous runs per work-item on CPUs */
    skd_arg_local(&a, wg * sizeof(float));
    size_t global = (size_t)c * wg;
    st = skd_launch(ctx, &a, 1, &global, &wg);
    if (st != SKD_OK) return st;
  }
  if (!dx) return SKD_OK;
  /* --sync-bn: dx's sums over every rank's samples, and their count. */
  const skd_bn_sync *sync = active_sync(ctx, training);
  int m = n * hw;
  if (sync) {
    float *host = malloc((2 * (size_t)c + 1) * sizeof(float));
    if (!host) return skd_error(SKD_ENOMEM, "batchnorm backward: out of host memory for synchronised sums");
    st = skd_tensor_download(ctx, &sums, host);
    host[2 * c] = (float)m;
    if (st == SKD_OK) st = sync->sum(sync->user, host, 2 * (size_t)c + 1);
    if (st == SKD_OK) st = skd_tensor_upload(ctx, &sums, host);
    m = (int)host[2 * c];
    free(host);
    if (st != SKD_OK) return st;
  }

  st = skd_kernel_get(ctx, "batchnorm", "batchnorm_bwd_x", &k);
  if (st != SKD_OK) return st;
  skd_args a = skd_args_begin(k);
  skd_arg_int(&a, n);
  skd_arg_int(&a, c);
  skd_arg_int(&a, hw);
  skd_arg_int(&a, per_item(ctx));
  skd_arg_int(&a, m);
  skd_arg_int(&a, training != 0);
  skd_arg_int(&a, (int)act);
  skd_arg_float(&a, slope);
  skd_arg_tensor(&a, x);
  skd_arg_tensor(&a, y);
  skd_arg_tensor(&a, save_mean);
  skd_arg_tensor(&a, save_invstd);
  skd_arg_tensor(&a, gamma);
  skd_arg_tensor(&a, &sums);
  skd_arg_tensor(&a, dy);
  skd_arg_tensor(&a, dx);
  return launch_planes(ctx, &a, n, c, hw, per_item(ctx));
}
