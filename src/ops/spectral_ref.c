/* Plain-C reference for cl/spectral.cl (double accumulators). */
#include <assert.h>
#include <math.h>
#include <stdlib.h>

#include "skd/ops/spectral.h"

static void normalize(float *x, int n) {
  double ss = 0.0;
  for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
  double inv = 1.0 / fmax(sqrt(ss), (double)SKD_SPECTRAL_EPS);
  for (int i = 0; i < n; i++) x[i] = (float)(x[i] * inv);
}

/* s = W v in double */
static void wv(const float *w, int rows, int cols, const float *v, double *s) {
  for (int i = 0; i < rows; i++) {
    double acc = 0.0;
    for (int j = 0; j < cols; j++) acc += (double)w[(size_t)i * cols + j] * v[j];
    s[i] = acc;
  }
}

void skd_ref_spectral_norm_forward(const float *w, int rows, int cols, float *u, float *v, int power_iterations,
                                   float *sigma, float *w_sn) {
  double *s = malloc((size_t)(rows > 0 ? rows : 1) * sizeof(double));
  assert(s != NULL);
  for (int it = 0; it < power_iterations; it++) {
    for (int j = 0; j < cols; j++) {
      double acc = 0.0;
      for (int i = 0; i < rows; i++) acc += (double)w[(size_t)i * cols + j] * u[i];
      v[j] = (float)acc;
    }
    normalize(v, cols);
    wv(w, rows, cols, v, s);
    for (int i = 0; i < rows; i++) u[i] = (float)s[i];
    normalize(u, rows);
  }
  wv(w, rows, cols, v, s);
  double sg = 0.0;
  for (int i = 0; i < rows; i++) sg += (double)u[i] * s[i];
  *sigma = (float)sg;
  for (size_t k = 0; k < (size_t)rows * cols; k++) w_sn[k] = (float)(w[k] / sg);
  free(s);
}

void skd_ref_spectral_norm_backward(const float *w, int rows, int cols, const float *u, const float *v,
                                    float sigma, const float *dw_sn, float *dw) {
  double d = 0.0;
  for (size_t k = 0; k < (size_t)rows * cols; k++) d += (double)dw_sn[k] * w[k];
  double sg = sigma, coef = d / (sg * sg);
  for (int i = 0; i < rows; i++)
    for (int j = 0; j < cols; j++) {
      size_t k = (size_t)i * cols + j;
      dw[k] += (float)(dw_sn[k] / sg - coef * u[i] * v[j]);
    }
}
