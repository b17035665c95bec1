/* Plain-C references for cl/batchnorm.cl, computed in double. */
#include <math.h>

#include "skd/ops/batchnorm.h"

static size_t at(int b, int ch, int c, int hw, int s) { return ((size_t)b * c + ch) * (size_t)hw + (size_t)s; }

static double activate(skd_bn_act act, float slope, double v) {
  if (act == SKD_BN_ACT_RELU) return v > 0.0 ? v : 0.0;
  if (act == SKD_BN_ACT_LEAKY_RELU) return v > 0.0 ? v : slope * v;
  return v;
}

skd_status skd_ref_batchnorm_forward(int training, const float *x, int n, int c, int hw, const float *gamma,
                                     const float *beta, float *running_mean, float *running_var, float *save_mean,
                                     float *save_invstd, float *y, float eps, float momentum, skd_bn_act act,
                                     float slope) {
  const int m = n * hw;
  if (training && m <= 1) return skd_error(SKD_EINVAL, "batchnorm reference: 1 value per channel when training");
  for (int ch = 0; ch < c; ch++) {
    double mean, invstd;
    if (training) {
      double sum = 0.0, ssd = 0.0;
      for (int b = 0; b < n; b++)
        for (int s = 0; s < hw; s++) sum += x[at(b, ch, c, hw, s)];
      mean = sum / m;
      for (int b = 0; b < n; b++)
        for (int s = 0; s < hw; s++) {
          double d = x[at(b, ch, c, hw, s)] - mean;
          ssd += d * d;
        }
      invstd = 1.0 / sqrt(ssd / m + (double)eps);
      running_mean[ch] = (float)((1.0 - momentum) * running_mean[ch] + momentum * mean);
      running_var[ch] = (float)((1.0 - momentum) * running_var[ch] + momentum * ssd / (m - 1));
    } else {
      mean = running_mean[ch];
      invstd = 1.0 / sqrt((double)running_var[ch] + (double)eps);
    }
    if (save_mean) save_mean[ch] = (float)mean;
    if (save_invstd) save_invstd[ch] = (float)invstd;
    for (int b = 0; b < n; b++)
      for (int s = 0; s < hw; s++) {
        size_t i = at(b, ch, c, hw, s);
        y[i] = (float)activate(act, slope, (x[i] - mean) * invstd * gamma[ch] + beta[ch]);
      }
  }
  return SKD_OK;
}

void skd_ref_batchnorm_backward(int training, const float *x, const float *y, int n, int c, int hw,
                                const float *gamma, const float *save_mean, const float *save_invstd,
                                const float *dy, float *dx, float *dgamma, float *dbeta, skd_bn_act act,
                                float slope) {
  const int m = n * hw;
  for (int ch = 0; ch < c; ch++) {
    const double mean = save_mean[ch], invstd = save_invstd[ch];
    double sg = 0.0, sgx = 0.0;
    for (int b = 0; b < n; b++)
      for (int s = 0; s < hw; s++) {
        size_t i = at(b, ch, c, hw, s);
        double g = dy[i];
        if (act != SKD_BN_ACT_NONE && !(y[i] > 0.0f)) g = act == SKD_BN_ACT_RELU ? 0.0 : slope * g;
        sg += g;
        sgx += g * (x[i] - mean) * invstd;
      }
    if (dgamma) dgamma[ch] += (float)sgx;
    if (dbeta) dbeta[ch] += (float)sg;
    if (!dx) continue;
    for (int b = 0; b < n; b++)
      for (int s = 0; s < hw; s++) {
        size_t i = at(b, ch, c, hw, s);
        double g = dy[i];
        if (act != SKD_BN_ACT_NONE && !(y[i] > 0.0f)) g = act == SKD_BN_ACT_RELU ? 0.0 : slope * g;
        if (training) g -= (sg + (x[i] - mean) * invstd * sgx) / m;
        dx[i] += (float)(gamma[ch] * invstd * g);
      }
  }
}
