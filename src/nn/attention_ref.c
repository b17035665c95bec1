/* Plain-C reference of the self-attention layer (double accumulation). The
 * backward pass recomputes the forward intermediates and scatters, so it is
 * independent of the device's GEMM formulation. */
#include <math.h>
#include <stdlib.h>

#include "skd/nn/attention.h"

/* y (co, p) = w (co, ch) x (ch, p) + b */
static void pointwise(int co, int ch, int p, const float *w, const float *b, const float *x, double *y) {
  for (int o = 0; o < co; o++)
    for (int i = 0; i < p; i++) {
      double acc = b[o];
      for (int c = 0; c < ch; c++) acc += (double)w[o * ch + c] * x[c * p + i];
      y[o * p + i] = acc;
    }
}

/* q, k (cq, p), v (ch, p), a (p, p) of one sample */
static void sample_forward(int ch, int cq, int p, const float *x, const float *wq, const float *bq,
                           const float *wk, const float *bk, const float *wv, const float *bv, double *q, double *k,
                           double *v, double *a) {
  pointwise(cq, ch, p, wq, bq, x, q);
  pointwise(cq, ch, p, wk, bk, x, k);
  pointwise(ch, ch, p, wv, bv, x, v);
  for (int i = 0; i < p; i++) {
    double mx = -INFINITY;
    for (int j = 0; j < p; j++) {
      double e = 0.0;
      for (int c = 0; c < cq; c++) e += q[c * p + i] * k[c * p + j];
      a[i * p + j] = e;
      if (e > mx) mx = e;
    }
    double sum = 0.0;
    for (int j = 0; j < p; j++) sum += (a[i * p + j] = exp(a[i * p + j] - mx));
    for (int j = 0; j < p; j++) a[i * p + j] /= sum;
  }
}

void skd_ref_attention_forward(int n, int ch, int cq, int p, const float *x, const float *wq, const float *bq,
                               const float *wk, const float *bk, const float *wv, const float *bv, float gamma,
                               float *y, float *attn) {
  double *q = malloc(sizeof(double) * (size_t)cq * p), *k = malloc(sizeof(double) * (size_t)cq * p);
  double *v = malloc(sizeof(double) * (size_t)ch * p), *a = malloc(sizeof(double) * (size_t)p * p);
  for (int s = 0; s < n; s++) {
    const float *xs = x + (size_t)s * ch * p;
    sample_forward(ch, cq, p, xs, wq, bq, wk, bk, wv, bv, q, k, v, a);
    for (int c = 0; c < ch; c++)
      for (int i = 0; i < p; i++) {
        double out = 0.0;
        for (int j = 0; j < p; j++) out += v[c * p + j] * a[i * p + j];
        y[(size_t)s * ch * p + c * p + i] = (float)(gamma * out + xs[c * p + i]);
      }
    if (attn)
      for (int i = 0; i < p * p; i++) attn[(size_t)s * p * p + i] = (float)a[i];
  }
  free(q);
  free(k);
  free(v);
  free(a);
}

/* dx += w^T dy; dw += dy x^T; db += rowsum(dy) (any output may be NULL) */
static void pointwise_backward(int co, int ch, int p, const float *w, const float *x, const double *dy, float *dx,
                               float *dw, float *db) {
  for (int o = 0; o < co; o++)
    for (int i = 0; i < p; i++) {
      const double g = dy[o * p + i];
      if (db) db[o] += (float)g;
      for (int c = 0; c < ch; c++) {
        if (dx) dx[c * p + i] += (float)(w[o * ch + c] * g);
        if (dw) dw[o * ch + c] += (float)(g * x[c * p + i]);
      }
    }
}

void skd_ref_attention_backward(int n, int ch, int cq, int p, const float *x, const float *wq, const float *bq,
                                const float *wk, const float *bk, const float *wv, const float *bv, float gamma,
                                const float *dy, float *dx, float *dwq, float *dbq, float *dwk, float *dbk,
                                float *dwv, float *dbv, float *dgamma) {
  double *q = malloc(sizeof(double) * (size_t)cq * p), *k = malloc(sizeof(double) * (size_t)cq * p);
  double *v = malloc(sizeof(double) * (size_t)ch * p), *a = malloc(sizeof(double) * (size_t)p * p);
  double *dq = calloc((size_t)cq * p, sizeof(double)), *dk = calloc((size_t)cq * p, sizeof(double));
  double *dv = calloc((size_t)ch * p, sizeof(double)), *da = calloc((size_t)p * p, sizeof(double));
  double dg = 0.0;
  for (int s = 0; s < n; s++) {
    const float *xs = x + (size_t)s * ch * p, *dys = dy + (size_t)s * ch * p;
    float *dxs = dx ? dx + (size_t)s * ch * p : NULL;
    sample_forward(ch, cq, p, xs, wq, bq, wk, bk, wv, bv, q, k, v, a);
    for (int i = 0; i < cq * p; i++) dq[i] = dk[i] = 0.0;
    for (int i = 0; i < ch * p; i++) dv[i] = 0.0;
    for (int i = 0; i < p * p; i++) da[i] = 0.0;
    /* out[c][i] = sum_j v[c][j] a[i][j]; y = gamma out + x */
    for (int c = 0; c < ch; c++)
      for (int i = 0; i < p; i++) {
        const double g = dys[c * p + i];
        double out = 0.0;
        for (int j = 0; j < p; j++) {
          out += v[c * p + j] * a[i * p + j];
          dv[c * p + j] += gamma * g * a[i * p + j];
          da[i * p + j] += gamma * g * v[c * p + j];
        }
        dg += g * out;
        if (dxs) dxs[c * p + i] += (float)g;
      }
    /* softmax rows: de = a (da - sum_j da a) */
    for (int i = 0; i < p; i++) {
      double dot = 0.0;
      for (int j = 0; j < p; j++) dot += da[i * p + j] * a[i * p + j];
      for (int j = 0; j < p; j++) {
        const double de = a[i * p + j] * (da[i * p + j] - dot);
        for (int c = 0; c < cq; c++) {
          dq[c * p + i] += de * k[c * p + j];
          dk[c * p + j] += de * q[c * p + i];
        }
      }
    }
    pointwise_backward(cq, ch, p, wq, xs, dq, dxs, dwq, dbq);
    pointwise_backward(cq, ch, p, wk, xs, dk, dxs, dwk, dbk);
    pointwise_backward(ch, ch, p, wv, xs, dv, dxs, dwv, dbv);
  }
  if (dgamma) dgamma[0] += (float)dg;
  free(q);
  free(k);
  free(v);
  free(a);
  free(dq);
  free(dk);
  free(dv);
  free(da);
}
