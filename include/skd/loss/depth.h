/* Depth as classification over log10 bins (VNL; issue 14). With C bins
 * between d_min and d_max (metres):
 *
 *   w = (log10 d_max - log10 d_min) / C,  centre_i = log10 d_min + w (i + 0.5)
 *
 * A valid depth d (> 0) falls in bin j = floor((log10 d - log10 d_min) / w),
 * clamped to [0, C - 1]; depth 0 (or below, or not finite) is missing.
 *
 * Task loss, per valid pixel: a cross-entropy against the soft target
 *   q_i = exp(-0.2 (i - j)^2) / sum_k exp(-0.2 (k - j)^2)
 * (the target bin weighs 1 before the row is normalised, its neighbours
 * exp(-0.2 (i - j)^2)):
 *
 *   L = 1 / V * sum_{valid p} sum_i -q_i log softmax(z_p)_i     (V: valid pixels)
 *   dL/dz_i = (softmax_i - q_i) / V                              (sum_i q_i = 1)
 *
 * No valid pixel: L = 0 and no gradient.
 *
 * Prediction: depth = 10^(sum_i softmax(z)_i centre_i), and its gradient
 *   d depth / dz_k = depth ln(10) softmax_k (centre_k - sum_i softmax_i centre_i). */
#ifndef SKD_LOSS_DEPTH_H
#define SKD_LOSS_DEPTH_H

#include "skd/tensor.h"

typedef struct skd_depth_bins {
  int bins;    /* C >= 2 */
  float d_min; /* metres, > 0 */
  float d_max; /* metres, > d_min */
} skd_depth_bins;

/* Checks the bins (message names the field). */
skd_status skd_depth_bins_check(const skd_depth_bins *b);
/* centre_i (log10 metres). */
double skd_depth_bin_centre(const skd_depth_bins *b, int i);
/* The target bin of depth d in metres, or -1 when d is missing. */
int skd_depth_bin_of(const skd_depth_bins *b, float d);

/* Computes L (above) and, when dlogits is given, accumulates
 *   dlogits += grad_scale * dL/dz.
 * logits: (N, C, H, W) with C = b->bins; depth: (N, 1, H, W) metres, 0 missing;
 * dlogits: NULL or the shape of logits; loss_out: 1 element. Stays on the
 * device (three kernel passes; the context workspace holds the partials). */
skd_status skd_depth_loss(skd_context *ctx, const skd_depth_bins *b, const skd_tensor *logits,
                          const skd_tensor *depth, float grad_scale, const skd_tensor *dlogits,
                          const skd_tensor *loss_out);

/* depth_out (N, 1, H, W) = 10^(sum_i softmax(logits)_i centre_i), metres. */
skd_status skd_depth_from_bins(skd_context *ctx, const skd_depth_bins *b, const skd_tensor *logits,
                               const skd_tensor *depth_out);
/* dlogits += d(sum depth_out * ddepth)/dlogits, given the forward's depth_out. */
skd_status skd_depth_from_bins_backward(skd_context *ctx, const skd_depth_bins *b, const skd_tensor *logits,
                                        const skd_tensor *depth_out, const skd_tensor *ddepth,
                                        const skd_tensor *dlogits);

/* Plain-C references (double accumulation), NCHW arrays of shape (n, bins, h, w)
 * and (n, 1, h, w). dlogits NULL or accumulated into. */
double skd_ref_depth_loss(const skd_depth_bins *b, int n, int h, int w, const float *logits, const float *depth,
                          float grad_scale, float *dlogits);
void skd_ref_depth_from_bins(const skd_depth_bins *b, int n, int h, int w, const float *logits, float *depth_out);
void skd_ref_depth_from_bins_backward(const skd_depth_bins *b, int n, int h, int w, const float *logits,
                                      const float *ddepth, float *dlogits);

#endif
