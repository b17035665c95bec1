/* Plain-C reference convolution: direct loops in double, and a scatter-form
 * backward (the device gathers), so the two share no indexing code. */
#include <assert.h>
#include <stdlib.h>

#include "skd/ops/conv2d.h"

static void out_size(const skd_conv2d_params *p, int h, int w, int *ho, int *wo) {
  skd_status st = skd_conv2d_output_shape(p, h, w, ho, wo);
  assert(st == SKD_OK);
  (void)st;
}

/* Input coordinate of output (oy, ox) and kernel tap (ky, kx); 0 if padding. */
static int input_at(const skd_conv2d_params *p, int h, int w, int oy, int ox, int ky, int kx, int *iy, int *ix) {
  *iy = oy * p->stride_h - p->pad_h + ky * p->dilation_h;
  *ix = ox * p->stride_w - p->pad_w + kx * p->dilation_w;
  return *iy >= 0 && *iy < h && *ix >= 0 && *ix < w;
}

void skd_ref_conv2d_forward(const skd_conv2d_params *p, int n, int cin, int h, int w, int cout, const float *x,
                            const float *weight, const float *bias, float *y) {
  int ho, wo;
  out_size(p, h, w, &ho, &wo);
  for (int b = 0; b < n; b++)
    for (int co = 0; co < cout; co++)
      for (int oy = 0; oy < ho; oy++)
        for (int ox = 0; ox < wo; ox++) {
          double acc = bias ? (double)bias[co] : 0.0;
          for (int ci = 0; ci < cin; ci++)
            for (int ky = 0; ky < p->kh; ky++)
              for (int kx = 0; kx < p->kw; kx++) {
                int iy, ix;
                if (!input_at(p, h, w, oy, ox, ky, kx, &iy, &ix)) continue;
                double xv = x[(((size_t)b * cin + ci) * h + iy) * w + ix];
                double wv = weight[(((size_t)co * cin + ci) * p->kh + ky) * p->kw + kx];
                acc += xv * wv;
              }
          y[(((size_t)b * cout + co) * ho + oy) * wo + ox] = (float)acc;
        }
}

void skd_ref_conv2d_backward(const skd_conv2d_params *p, int n, int cin, int h, int w, int cout, const float *x,
                             const float *weight, const float *dy, float *dx, float *dweight, float *dbias) {
  int ho, wo;
  out_size(p, h, w, &ho, &wo);
  size_t nx = (size_t)n * cin * h * w, nw = (size_t)cout * cin * p->kh * p->kw;
  double *gx = calloc(nx, sizeof(double)), *gw = calloc(nw, sizeof(double)), *gb = calloc((size_t)cout, sizeof(double));
  assert(gx && gw && gb);
  for (int b = 0; b < n; b++)
    for (int co = 0; co < cout; co++)
      for (int oy = 0; oy < ho; oy++)
        for (int ox = 0; ox < wo; ox++) {
          double g = dy[(((size_t)b * cout + co) * ho + oy) * wo + ox];
          gb[co] += g;
          for (int ci = 0; ci < cin; ci++)
            for (int ky = 0; ky < p->kh; ky++)
              for (int kx = 0; kx < p->kw; kx++) {
                int iy, ix;
                if (!input_at(p, h, w, oy, ox, ky, kx, &iy, &ix)) continue;
                size_t xi = (((size_t)b * cin + ci) * h + iy) * w + ix;
                size_t wi = (((size_t)co * cin + ci) * p->kh + ky) * p->kw + kx;
                gx[xi] += g * weight[wi];
                gw[wi] += g * x[xi];
              }
        }
  if (dx)
    for (size_t i = 0; i < nx; i++) dx[i] = (float)((double)dx[i] + gx[i]);
  if (dweight)
    for (size_t i = 0; i < nw; i++) dweight[i] = (float)((double)dweight[i] + gw[i]);
  if (dbias)
    for (int i = 0; i < cout; i++) dbias[i] = (float)((double)dbias[i] + gb[i]);
  free(gx);
  free(gw);
  free(gb);
}
