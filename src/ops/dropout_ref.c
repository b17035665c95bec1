/* Plain-C references for cl/dropout.cl, and the host copy of its generator. */
#include "skd/ops/dropout.h"

#define PHILOX_M 0xD256D193u
#define PHILOX_W 0x9E3779B9u

uint32_t skd_dropout2d_bits(uint32_t seed, int n, int c) {
  uint32_t x0 = (uint32_t)c, x1 = (uint32_t)n, key = seed;
  for (int round = 0; round < 10; round++) {
    uint64_t prod = (uint64_t)PHILOX_M * x0;
    x0 = (uint32_t)(prod >> 32) ^ key ^ x1;
    x1 = (uint32_t)prod;
    key += PHILOX_W;
  }
  return x0;
}

int skd_dropout2d_keep(uint32_t seed, int n, int c, float p) {
  float u = (float)(skd_dropout2d_bits(seed, n, c) >> 8) * (1.0f / 16777216.0f);
  return !(u < p);
}

static float factor(int training, uint32_t seed, int b, int ch, float p) {
  if (!training) return 1.0f;
  return skd_dropout2d_keep(seed, b, ch, p) ? (p < 1.0f ? 1.0f / (1.0f - p) : 0.0f) : 0.0f;
}

void skd_ref_dropout2d_forward(int training, const float *x, float *y, int n, int c, int hw, float p, uint32_t seed) {
  for (int b = 0; b < n; b++)
    for (int ch = 0; ch < c; ch++) {
      float f = factor(training, seed, b, ch, p);
      size_t base = ((size_t)b * c + ch) * (size_t)hw;
      for (int s = 0; s < hw; s++) y[base + s] = x[base + s] * f;
    }
}

void skd_ref_dropout2d_backward(int training, const float *dy, float *dx, int n, int c, int hw, float p,
                                uint32_t seed) {
  for (int b = 0; b < n; b++)
    for (int ch = 0; ch < c; ch++) {
      float f = factor(training, seed, b, ch, p);
      size_t base = ((size_t)b * c + ch) * (size_t)hw;
      for (int s = 0; s < hw; s++) dx[base + s] += dy[base + s] * f;
    }
}
