/* Plain-C reference of the pixel-wise distillation loss (cl/softmax_kl.cl),
 * accumulated in double. */
#include <math.h>

#include "skd/loss/pixel.h"

/* log sum_k exp(z[k * hw] / tau) of one pixel, shifted by the max. */
static double log_sum_exp(const float *z, int c, int hw, double tau) {
  double m = (double)z[0] / tau;
  for (int k = 1; k < c; k++) m = fmax(m, (double)z[(size_t)k * hw] / tau);
  double s = 0.0;
  for (int k = 0; k < c; k++) s += exp((double)z[(size_t)k * hw] / tau - m);
  return m + log(s);
}

double skd_ref_pixel_loss(const skd_pixel_loss_config *cfg, int n, int c, int h, int w, const float *student,
                          const float *teacher, const float *labels, float grad_scale, float *dstudent,
                          double *kl) {
  const int hw = h * w;
  const double tau = cfg->tau;
  const int mask = cfg->mask_ignore && labels;
  const float ignore = (float)cfg->ignore_label;
  double norm = cfg->norm == SKD_PIXEL_NORM_MEAN ? (double)n * hw : (double)hw;
  if (mask && cfg->norm == SKD_PIXEL_NORM_MEAN) {
    long valid = 0;
    for (long p = 0; p < (long)n * hw; p++) valid += labels[p] != ignore;
    norm = valid > 0 ? (double)valid : 1.0;
  }
  double ce_sum = 0.0, kl_sum = 0.0;
  for (int b = 0; b < n; b++)
    for (int i = 0; i < hw; i++) {
      if (mask && labels[(size_t)b * hw + i] == ignore) continue;
      const size_t base = (size_t)b * c * hw + i;
      const double lse_t = log_sum_exp(teacher + base, c, hw, tau);
      const double lse_s = log_sum_exp(student + base, c, hw, tau);
      for (int k = 0; k < c; k++) {
        const size_t at = base + (size_t)k * hw;
        const double log_pt = teacher[at] / tau - lse_t, log_ps = student[at] / tau - lse_s;
        const double pt = exp(log_pt);
        ce_sum -= pt * log_ps;
        kl_sum += pt * (log_pt - log_ps);
        if (dstudent) dstudent[at] += (float)(grad_scale * tau * (exp(log_ps) - pt) / norm);
      }
    }
  if (kl) *kl = tau * tau * kl_sum / norm;
  return tau * tau * ce_sum / norm;
}
