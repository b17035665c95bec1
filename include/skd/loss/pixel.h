/* Pixel-wise distillation loss (METHOD.md section 2), softmax-KL at logit
 * resolution. For student logits zS and teacher logits zT (N, C, H', W'),
 * per pixel (n, i): pT = softmax(zT / tau), log pS = log_softmax(zS / tau)
 * over the C channels, and
 *
 *   L = tau^2 / norm * sum_{valid (n, i)} sum_c -pT log pS        (cross-entropy form)
 *
 * which is what the authors' CriterionPixelWise computes (tau = 1, no mask,
 * reference norm). It differs from the KL form tau^2 / norm * sum
 * KL(pT || pS) only by the teacher's entropy, a constant for the student:
 * the gradient is the same. The KL value is returned as a diagnostic.
 *
 *   dL/dzS = tau^2 / norm * (pS - pT) / tau = tau * (pS - pT) / norm
 *
 * The teacher never receives a gradient. */
#ifndef SKD_LOSS_PIXEL_H
#define SKD_LOSS_PIXEL_H

#include "skd/tensor.h"

typedef enum skd_pixel_norm {
  /* The reference code: sum over the batch and the pixels, divided by
   * H' W'. It grows with N. With masking the divisor stays H' W' (as if the
   * reference code had masked its sum): ignored pixels only drop out. */
  SKD_PIXEL_NORM_REFERENCE = 0,
  /* Mean over the valid pixels of the batch: N H' W' without masking, the
   * number of non-ignored pixels with it (0 valid pixels: loss 0, no
   * gradient). Independent of N. */
  SKD_PIXEL_NORM_MEAN = 1
} skd_pixel_norm;

typedef struct skd_pixel_loss_config {
  float tau;           /* temperature > 0; 1 = the reference code */
  int mask_ignore;     /* 1: pixels labelled ignore_label contribute nothing (needs labels); default 0 */
  int ignore_label;    /* 255 */
  skd_pixel_norm norm; /* default SKD_PIXEL_NORM_REFERENCE */
} skd_pixel_loss_config;

/* tau 1, no mask, ignore 255, reference norm: the authors' criterion. */
void skd_pixel_loss_config_default(skd_pixel_loss_config *cfg);

/* Computes L (above) and, when dstudent is given, accumulates its gradient:
 *   dstudent += grad_scale * dL/dzS      (grad_scale: the loss weight, lambda_pi)
 * cfg: NULL means the defaults.
 * student_logits, teacher_logits: (N, C, H', W'), the same shape.
 * labels: (N, 1, H', W') class ids stored as floats (already at logit
 *   resolution); a pixel is ignored when its label equals ignore_label.
 *   Read only when cfg->mask_ignore; may be NULL otherwise.
 * dstudent: NULL (value only) or (N, C, H', W'); accumulated into.
 * loss_out: 1 element, overwritten with L (without grad_scale).
 * kl_out: NULL or 1 element, overwritten with tau^2 / norm * sum KL(pT || pS)
 *   over the valid pixels (= L - tau^2 / norm * sum of teacher entropies).
 * Everything stays on the device: two kernel passes (three with masking and
 * the mean norm, which counts the valid pixels first), no host sync. Uses the
 * context workspace (2 floats per work-group of 256 pixels). */
skd_status skd_pixel_loss(skd_context *ctx, const skd_pixel_loss_config *cfg, const skd_tensor *student_logits,
                          const skd_tensor *teacher_logits, const skd_tensor *labels, float grad_scale,
                          const skd_tensor *dstudent, const skd_tensor *loss_out, const skd_tensor *kl_out);

/* Plain-C reference of the same (double accumulation). Arrays are NCHW with
 * shape (n, c, h, w); labels (n, 1, h, w) or NULL when !cfg->mask_ignore;
 * dstudent NULL or accumulated into; kl NULL or set. Returns L. The caller
 * validates cfg (tau > 0). */
double skd_ref_pixel_loss(const skd_pixel_loss_config *cfg, int n, int c, int h, int w, const float *student,
                          const float *teacher, const float *labels, float grad_scale, float *dstudent,
                          double *kl);

#endif
