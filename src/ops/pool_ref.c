/* Plain-C references for cl/pool.cl. The max-pool backward scatters each
 * window's dy onto its argmax, the opposite formulation of the device's
 * gather, so that the tests compare two independent derivations. */
#include <assert.h>
#include <math.h>

#include "skd/ops/pool.h"

/* Index (h * w + w) of the window's first maximum; NaN wins, as in PyTorch. */
static int window_argmax(const float *x, int h, int w, int oy, int ox, skd_pool2d p) {
  int y0 = oy * p.stride - p.padding, x0 = ox * p.stride - p.padding;
  int y1 = y0 + p.kernel < h ? y0 + p.kernel : h, x1 = x0 + p.kernel < w ? x0 + p.kernel : w;
  if (y0 < 0) y0 = 0;
  if (x0 < 0) x0 = 0;
  int best = y0 * w + x0;
  float m = -INFINITY;
  for (int iy = y0; iy < y1; iy++)
    for (int ix = x0; ix < x1; ix++) {
      float v = x[iy * w + ix];
      if (v > m || isnan(v)) {
        m = v;
        best = iy * w + ix;
      }
    }
  return best;
}

void skd_ref_maxpool2d_forward(const float *x, float *y, int n, int c, int h, int w, skd_pool2d p) {
  int oh = 0, ow = 0;
  skd_status st = skd_pool2d_output_size(p, h, &oh);
  if (st == SKD_OK) st = skd_pool2d_output_size(p, w, &ow);
  assert(st == SKD_OK);
  (void)st;
  for (int plane = 0; plane < n * c; plane++) {
    const float *xp = x + (size_t)plane * h * w;
    float *yp = y + (size_t)plane * oh * ow;
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++) yp[oy * ow + ox] = xp[window_argmax(xp, h, w, oy, ox, p)];
  }
}

void skd_ref_maxpool2d_backward(const float *x, const float *dy, float *dx, int n, int c, int h, int w,
                                skd_pool2d p) {
  int oh = 0, ow = 0;
  skd_status st = skd_pool2d_output_size(p, h, &oh);
  if (st == SKD_OK) st = skd_pool2d_output_size(p, w, &ow);
  assert(st == SKD_OK);
  (void)st;
  for (int plane = 0; plane < n * c; plane++) {
    const float *xp = x + (size_t)plane * h * w;
    const float *dyp = dy + (size_t)plane * oh * ow;
    float *dxp = dx + (size_t)plane * h * w;
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++) dxp[window_argmax(xp, h, w, oy, ox, p)] += dyp[oy * ow + ox];
  }
}

/* PyTorch's adaptive bins: [floor(i*in/out), ceil((i+1)*in/out)). */
static int bin_start(int i, int in, int out) { return (int)(((long long)i * in) / out); }
static int bin_end(int i, int in, int out) { return (int)(((long long)(i + 1) * in + out - 1) / out); }

void skd_ref_adaptive_avgpool2d_forward(const float *x, float *y, int n, int c, int h, int w, int bh, int bw) {
  for (int plane = 0; plane < n * c; plane++) {
    const float *xp = x + (size_t)plane * h * w;
    for (int by = 0; by < bh; by++)
      for (int bx = 0; bx < bw; bx++) {
        int y0 = bin_start(by, h, bh), y1 = bin_end(by, h, bh);
        int x0 = bin_start(bx, w, bw), x1 = bin_end(bx, w, bw);
        double sum = 0.0;
        for (int iy = y0; iy < y1; iy++)
          for (int ix = x0; ix < x1; ix++) sum += xp[iy * w + ix];
        y[((size_t)plane * bh + by) * bw + bx] = (float)(sum / ((y1 - y0) * (x1 - x0)));
      }
  }
}

void skd_ref_adaptive_avgpool2d_backward(const float *dy, float *dx, int n, int c, int h, int w, int bh, int bw) {
  for (int plane = 0; plane < n * c; plane++) {
    float *dxp = dx + (size_t)plane * h * w;
    for (int by = 0; by < bh; by++)
      for (int bx = 0; bx < bw; bx++) {
        int y0 = bin_start(by, h, bh), y1 = bin_end(by, h, bh);
        int x0 = bin_start(bx, w, bw), x1 = bin_end(bx, w, bw);
        float g = dy[((size_t)plane * bh + by) * bw + bx] / (float)((y1 - y0) * (x1 - x0));
        for (int iy = y0; iy < y1; iy++)
          for (int ix = x0; ix < x1; ix++) dxp[iy * w + ix] += g;
      }
  }
}
