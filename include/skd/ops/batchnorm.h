/* BatchNorm2d with PyTorch's semantics, optionally fused with a ReLU or
 * LeakyReLU on its output.
 *
 * Shapes: x, y, dy, dx are (N, C, H, W). Every per-channel tensor (gamma =
 * weight, beta = bias, running_mean, running_var, save_mean, save_invstd,
 * dgamma, dbeta) is (1, C, 1, 1), so that it is an ordinary skd_param value.
 *
 * Training forward: per channel over the M = N*H*W values, mean and biased
 * variance (never E[x^2] - E[x]^2: the device merges blocks' means and sums
 * of squared deviations around a shift in one read of x; the reference takes
 * two passes),
 *   y = act((x - mean) / sqrt(var + eps) * gamma + beta),
 * save_mean = mean, save_invstd = 1 / sqrt(var + eps) (for backward), and
 *   running_mean = (1 - momentum) * running_mean + momentum * mean
 *   running_var  = (1 - momentum) * running_var  + momentum * var * M / (M - 1)
 * (the unbiased variance, as PyTorch). M == 1 is SKD_EINVAL, as in PyTorch.
 * Eval forward: the running statistics take the place of the batch ones;
 * save_mean / save_invstd, when given, receive them, so that the same
 * backward call serves a frozen (eval-mode) BN.
 *
 * Backward accumulates: dx += ..., dgamma += ..., dbeta += ... (any of the
 * three may be NULL when that gradient is not wanted). Training mode uses
 * the full formula with the batch-statistics terms; eval mode treats the
 * statistics as constants (dx = g * gamma * invstd).
 *
 * y may be x (in place) only when backward will not be called: backward
 * needs x. With a fused activation backward also needs the output y, whose
 * sign gives the activation's mask (hence slope >= 0). */
#ifndef SKD_OPS_BATCHNORM_H
#define SKD_OPS_BATCHNORM_H

#include <stddef.h>

#include "skd/tensor.h"

typedef enum skd_bn_act {
  SKD_BN_ACT_NONE = 0,
  SKD_BN_ACT_RELU = 1,
  SKD_BN_ACT_LEAKY_RELU = 2 /* uses slope (>= 0) */
} skd_bn_act;

/* PyTorch's defaults. */
#define SKD_BN_EPS 1e-5f
#define SKD_BN_MOMENTUM 0.1f

/* training != 0: batch statistics, running stats updated, save_* required.
 * training == 0: running statistics, momentum unused, save_* may be NULL. */
skd_status skd_batchnorm_forward(skd_context *ctx, int training, const skd_tensor *x, const skd_tensor *gamma,
                                 const skd_tensor *beta, const skd_tensor *running_mean,
                                 const skd_tensor *running_var, const skd_tensor *save_mean,
                                 const skd_tensor *save_invstd, const skd_tensor *y, float eps, float momentum,
                                 skd_bn_act act, float slope);

/* save_mean / save_invstd: what the forward pass of the same mode wrote.
 * y: the forward output (needed only when act != SKD_BN_ACT_NONE, else may
 * be NULL). dx, dgamma, dbeta: accumulated into; each may be NULL. */
skd_status skd_batchnorm_backward(skd_context *ctx, int training, const skd_tensor *x, const skd_tensor *y,
                                  const skd_tensor *gamma, const skd_tensor *save_mean,
                                  const skd_tensor *save_invstd, const skd_tensor *dy, const skd_tensor *dx,
                                  const skd_tensor *dgamma, const skd_tensor *dbeta, skd_bn_act act, float slope);

/* Synchronised batch norm (data parallel, --sync-bn): while a hook is set
 * for a context, every training-mode forward and backward on it takes its
 * statistics over all ranks' samples. Forward: each rank's per-channel
 * (mean, sum of squared deviations) are gathered and merged on the host in
 * rank order (Chan et al., in double), so every rank normalises with the
 * same statistics over M = sum of the ranks' N*H*W (which must exceed 1;
 * a rank's own count may be 1). Backward: the two per-channel sums of dx
 * are summed over ranks; dgamma and dbeta stay this rank's (the caller
 * averages gradients over ranks). Each BN layer costs a device-to-host
 * round trip and a collective: the hook runs on the calling thread, and
 * every rank must run the same BN calls in the same order. */
typedef struct skd_bn_sync {
  int ranks, rank;
  void *user;
  /* buf[i] = sum over ranks of buf[i] (n floats, in place). */
  skd_status (*sum)(void *user, float *buf, size_t n);
  /* out = every rank's n floats of in, in rank order (ranks * n). */
  skd_status (*gather)(void *user, const float *in, float *out, size_t n);
} skd_bn_sync;
/* sync NULL: off. The hook is kept per thread, for this context only. */
void skd_batchnorm_set_sync(skd_context *ctx, const skd_bn_sync *sync);

/* Plain-C references, same semantics (in double internally; backward
 * accumulates; NULL outputs are skipped). Arrays are NCHW with n, c, hw =
 * H*W; per-channel arrays have c entries. The training forward returns
 * SKD_EINVAL for n * hw == 1. */
skd_status skd_ref_batchnorm_forward(int training, const float *x, int n, int c, int hw, const float *gamma,
                                     const float *beta, float *running_mean, float *running_var, float *save_mean,
                                     float *save_invstd, float *y, float eps, float momentum, skd_bn_act act,
                                     float slope);
void skd_ref_batchnorm_backward(int training, const float *x, const float *y, int n, int c, int hw,
                                const float *gamma, const float *save_mean, const float *save_invstd,
                                const float *dy, float *dx, float *dgamma, float *dbeta, skd_bn_act act,
                                float slope);

#endif
