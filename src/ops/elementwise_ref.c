/* Plain-C references for cl/elementwise.cl. */
#include <math.h>

#include "skd/ops/elementwise.h"

void skd_ref_relu_forward(const float *x, float *y, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void skd_ref_relu_backward(const float *x, const float *dy, float *dx, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (x[i] > 0.0f) dx[i] += dy[i];
}

void skd_ref_leaky_relu_forward(const float *x, float *y, size_t n, float slope) {
  for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : slope * x[i];
}

void skd_ref_leaky_relu_backward(const float *x, const float *dy, float *dx, size_t n, float slope) {
  for (size_t i = 0; i < n; i++) dx[i] += x[i] > 0.0f ? dy[i] : slope * dy[i];
}

void skd_ref_tanh_forward(const float *x, float *y, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
}

void skd_ref_tanh_backward(const float *y, const float *dy, float *dx, size_t n) {
  for (size_t i = 0; i < n; i++) dx[i] += dy[i] * (1.0f - y[i] * y[i]);
}

void skd_ref_add_forward(const float *a, const float *b, float *y, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}
