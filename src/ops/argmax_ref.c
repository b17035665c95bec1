/* Plain-C reference of the per-pixel argmax (rules in skd/ops/argmax.h). */
#include <math.h>

#include "skd/ops/argmax.h"

void skd_ref_argmax_forward(const float *x, float *ids, int n, int c, int h, int w) {
  const size_t hw = (size_t)h * (size_t)w;
  for (int b = 0; b < n; b++) {
    const float *xb = x + (size_t)b * (size_t)c * hw;
    for (size_t i = 0; i < hw; i++) {
      int arg = 0;
      float best = xb[i];
      for (int k = 1; k < c && !isnan(best); k++) {
        float v = xb[(size_t)k * hw + i];
        if (isnan(v) || v > best) {
          best = v;
          arg = k;
        }
      }
      ids[(size_t)b * hw + i] = (float)arg;
    }
  }
}
