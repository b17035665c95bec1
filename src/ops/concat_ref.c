/* Plain-C references for cl/concat.cl. */
#include <string.h>

#include "skd/ops/concat.h"

static int total_channels(const int *channels, int count) {
  int c = 0;
  for (int i = 0; i < count; i++) c += channels[i];
  return c;
}

void skd_ref_concat_forward(const float *const *inputs, const int *channels, int count, int n, int hw, float *y) {
  const int c = total_channels(channels, count);
  for (int b = 0; b < n; b++) {
    int first = 0;
    for (int i = 0; i < count; i++) {
      const size_t len = (size_t)channels[i] * hw;
      memcpy(y + ((size_t)b * c + first) * hw, inputs[i] + (size_t)b * len, len * sizeof(float));
      first += channels[i];
    }
  }
}

void skd_ref_concat_backward(const float *dy, float *const *dinputs, const int *channels, int count, int n, int hw) {
  const int c = total_channels(channels, count);
  for (int b = 0; b < n; b++) {
    int first = 0;
    for (int i = 0; i < count; i++) {
      const size_t len = (size_t)channels[i] * hw;
      if (dinputs[i]) {
        const float *src = dy + ((size_t)b * c + first) * hw;
        float *dst = dinputs[i] + (size_t)b * len;
        for (size_t j = 0; j < len; j++) dst[j] += src[j];
      }
      first += channels[i];
    }
  }
}
