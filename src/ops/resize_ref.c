/* Plain-C reference for cl/resize.cl. The backward scatters each output's dy
 * onto its four source pixels (PyTorch's formulation); the device gathers. */
#include "skd/ops/resize.h"

/* Source of output index o along one axis: the pair (i0, i0 + off) with
 * weights (l0, l1), computed exactly as cl/resize.cl does. */
struct tap {
  int i0, off;
  float l0, l1;
};

static struct tap source(int o, int in, int out) {
  float scale = out > 1 ? (float)(in - 1) / (float)(out - 1) : 0.0f;
  float src = scale * (float)o;
  struct tap t;
  t.i0 = (int)src;
  t.off = t.i0 < in - 1 ? 1 : 0;
  float l1 = src - (float)t.i0;
  t.l1 = l1 < 0.0f ? 0.0f : (l1 > 1.0f ? 1.0f : l1);
  t.l0 = 1.0f - t.l1;
  return t;
}

void skd_ref_resize_bilinear_forward(const float *x, float *y, int n, int c, int h, int w, int oh, int ow) {
  for (int plane = 0; plane < n * c; plane++) {
    const float *xp = x + (size_t)plane * h * w;
    for (int oy = 0; oy < oh; oy++) {
      struct tap ty = source(oy, h, oh);
      const float *r0 = xp + ty.i0 * w, *r1 = xp + (ty.i0 + ty.off) * w;
      for (int ox = 0; ox < ow; ox++) {
        struct tap tx = source(ox, w, ow);
        int x0 = tx.i0, x1 = tx.i0 + tx.off;
        y[((size_t)plane * oh + oy) * ow + ox] =
            ty.l0 * (tx.l0 * r0[x0] + tx.l1 * r0[x1]) + ty.l1 * (tx.l0 * r1[x0] + tx.l1 * r1[x1]);
      }
    }
  }
}

void skd_ref_resize_bilinear_backward(const float *dy, float *dx, int n, int c, int h, int w, int oh, int ow) {
  for (int plane = 0; plane < n * c; plane++) {
    float *dxp = dx + (size_t)plane * h * w;
    for (int oy = 0; oy < oh; oy++) {
      struct tap ty = source(oy, h, oh);
      float *r0 = dxp + ty.i0 * w, *r1 = dxp + (ty.i0 + ty.off) * w;
      for (int ox = 0; ox < ow; ox++) {
        struct tap tx = source(ox, w, ow);
        int x0 = tx.i0, x1 = tx.i0 + tx.off;
        float g = dy[((size_t)plane * oh + oy) * ow + ox];
        r0[x0] += ty.l0 * tx.l0 * g;
        r0[x1] += ty.l0 * tx.l1 * g;
        r1[x0] += ty.l1 * tx.l0 * g;
        r1[x1] += ty.l1 * tx.l1 * g;
      }
    }
  }
}
