/* Plain-C references for cl/softmax.cl (double accumulators: the reference
 * should be the more accurate side of every comparison). */
#include <math.h>

#include "skd/ops/softmax.h"

/* Max and log-sum-exp of the c values at p[0], p[stride], ... */
static double log_sum_exp(const float *p, int c, int stride) {
  double m = -INFINITY;
  for (int k = 0; k < c; k++) m = fmax(m, (double)p[k * stride]);
  double s = 0.0;
  for (int k = 0; k < c; k++) s += exp((double)p[k * stride] - m);
  return m + log(s);
}

void skd_ref_softmax_forward(const float *x, float *y, int n, int c, int hw) {
  for (int b = 0; b < n; b++)
    for (int s = 0; s < hw; s++) {
      const float *xp = x + (size_t)b * c * hw + s;
      float *yp = y + (size_t)b * c * hw + s;
      double lse = log_sum_exp(xp, c, hw);
      for (int k = 0; k < c; k++) yp[k * hw] = (float)exp((double)xp[k * hw] - lse);
    }
}

void skd_ref_log_softmax_forward(const float *x, float *y, int n, int c, int hw) {
  for (int b = 0; b < n; b++)
    for (int s = 0; s < hw; s++) {
      const float *xp = x + (size_t)b * c * hw + s;
      float *yp = y + (size_t)b * c * hw + s;
      double lse = log_sum_exp(xp, c, hw);
      for (int k = 0; k < c; k++) yp[k * hw] = (float)((double)xp[k * hw] - lse);
    }
}

void skd_ref_softmax_backward(const float *y, const float *dy, float *dx, int n, int c, int hw) {
  for (int b = 0; b < n; b++)
    for (int s = 0; s < hw; s++) {
      size_t base = (size_t)b * c * hw + s;
      double dot = 0.0;
      for (int k = 0; k < c; k++) dot += (double)dy[base + k * hw] * y[base + k * hw];
      for (int k = 0; k < c; k++) dx[base + k * hw] += (float)(y[base + k * hw] * (dy[base + k * hw] - dot));
    }
}

void skd_ref_log_softmax_backward(const float *y, const float *dy, float *dx, int n, int c, int hw) {
  for (int b = 0; b < n; b++)
    for (int s = 0; s < hw; s++) {
      size_t base = (size_t)b * c * hw + s;
      double sum = 0.0;
      for (int k = 0; k < c; k++) sum += dy[base + k * hw];
      for (int k = 0; k < c; k++) dx[base + k * hw] += (float)(dy[base + k * hw] - exp(y[base + k * hw]) * sum);
    }
}

void skd_ref_softmax_rows_forward(const float *x, float *y, int rows, int cols) {
  skd_ref_softmax_forward(x, y, rows, cols, 1);
}

void skd_ref_softmax_rows_backward(const float *y, const float *dy, float *dx, int rows, int cols) {
  skd_ref_softmax_backward(y, dy, dx, rows, cols, 1);
}

/* Same rule as the kernel: -1 ignored, -2 invalid, else the class. */
static int ce_class(float label, int ignore_label, int c) {
  if (label == (float)ignore_label) return -1;
  if (!(label >= 0.0f && label < (float)c)) return -2;
  return (int)label;
}

float skd_ref_cross_entropy_forward(const float *logits, const float *labels, int n, int c, int hw,
                                    int ignore_label, int *count) {
  double sum = 0.0;
  int valid = 0;
  for (int b = 0; b < n; b++)
    for (int s = 0; s < hw; s++) {
      int cls = ce_class(labels[(size_t)b * hw + s], ignore_label, c);
      if (cls == -1) continue;
      if (cls == -2) {
        sum = NAN;
        continue;
      }
      const float *xp = logits + (size_t)b * c * hw + s;
      sum += log_sum_exp(xp, c, hw) - (double)xp[cls * hw];
      valid++;
    }
  *count = valid;
  return (float)(valid > 0 ? sum / valid : sum);
}

void skd_ref_cross_entropy_backward(const float *logits, const float *labels, int n, int c, int hw,
                                    int ignore_label, float scale, float *dlogits) {
  int valid = 0;
  for (size_t i = 0; i < (size_t)n * hw; i++) valid += ce_class(labels[i], ignore_label, c) >= 0;
  double k_scale = (double)scale / (valid > 0 ? valid : 1);
  for (int b = 0; b < n; b++)
    for (int s = 0; s < hw; s++) {
      int cls = ce_class(labels[(size_t)b * hw + s], ignore_label, c);
      if (cls < 0) continue;
      size_t base = (size_t)b * c * hw + s;
      double lse = log_sum_exp(logits + base, c, hw);
      for (int k = 0; k < c; k++) {
        double prob = exp((double)logits[base + k * hw] - lse);
        dlogits[base + k * hw] += (float)(k_scale * (prob - (k == cls)));
      }
    }
}
