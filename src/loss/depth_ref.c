/* Plain-C reference of the depth task loss and bins -> depth (cl/depth.cl),
 * accumulated in double. */
#include <math.h>

#include "skd/loss/depth.h"

/* softmax of one pixel's c logits (stride hw) into p[]. */
static void softmax_pixel(const float *z, int c, int hw, double *p) {
  double m = z[0], s = 0.0;
  for (int k = 1; k < c; k++) m = fmax(m, z[(size_t)k * hw]);
  for (int k = 0; k < c; k++) s += p[k] = exp(z[(size_t)k * hw] - m);
  for (int k = 0; k < c; k++) p[k] /= s;
}

double skd_ref_depth_loss(const skd_depth_bins *b, int n, int h, int w, const float *logits, const float *depth,
                          float grad_scale, float *dlogits) {
  const int c = b->bins, hw = h * w;
  long valid = 0;
  for (long p = 0; p < (long)n * hw; p++) valid += skd_depth_bin_of(b, depth[p]) >= 0;
  if (valid == 0) return 0.0;
  double p_k[1024], q[1024], sum = 0.0;
  for (int bi = 0; bi < n; bi++)
    for (int i = 0; i < hw; i++) {
      const int j = skd_depth_bin_of(b, depth[(size_t)bi * hw + i]);
      if (j < 0) continue;
      const float *z = logits + (size_t)bi * c * hw + i;
      softmax_pixel(z, c, hw, p_k);
      double qs = 0.0;
      for (int k = 0; k < c; k++) qs += q[k] = exp(-0.2 * (k - j) * (k - j));
      for (int k = 0; k < c; k++) {
        q[k] /= qs;
        sum -= q[k] * log(p_k[k]);
        if (dlogits) dlogits[(size_t)bi * c * hw + (size_t)k * hw + i] += (float)(grad_scale * (p_k[k] - q[k]) / valid);
      }
    }
  return sum / valid;
}

static double expected_log(const skd_depth_bins *b, const float *z, int hw, double *p) {
  softmax_pixel(z, b->bins, hw, p);
  double e = 0.0;
  for (int k = 0; k < b->bins; k++) e += p[k] * skd_depth_bin_centre(b, k);
  return e;
}

void skd_ref_depth_from_bins(const skd_depth_bins *b, int n, int h, int w, const float *logits, float *depth_out) {
  const int hw = h * w;
  double p[1024];
  for (int bi = 0; bi < n; bi++)
    for (int i = 0; i < hw; i++)
      depth_out[(size_t)bi * hw + i] = (float)pow(10.0, expected_log(b, logits + (size_t)bi * b->bins * hw + i, hw, p));
}

void skd_ref_depth_from_bins_backward(const skd_depth_bins *b, int n, int h, int w, const float *logits,
                                      const float *ddepth, float *dlogits) {
  const int hw = h * w;
  double p[1024];
  for (int bi = 0; bi < n; bi++)
    for (int i = 0; i < hw; i++) {
      const size_t base = (size_t)bi * b->bins * hw + i;
      const double e = expected_log(b, logits + base, hw, p);
      const double g = ddepth[(size_t)bi * hw + i] * pow(10.0, e) * log(10.0);
      for (int k = 0; k < b->bins; k++) dlogits[base + (size_t)k * hw] += (float)(g * p[k] * (skd_depth_bin_centre(b, k) - e));
    }
}
