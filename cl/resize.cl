/* Bilinear resize, align_corners = true. Forward: one work item per output
 * element. Backward: one work item per input element, which gathers the
 * weighted dy of every output that reads it (no atomics) and adds into dx. */

/* The backward recomputes the forward's taps and must find the same ones:
 * no contraction into fma, so every device rounds the same way. */
#pragma OPENCL FP_CONTRACT OFF

/* Output index o along an axis reads input indices i0 and i0 + off with
 * weights l0 and l1 (off = 0 on the last input index). scale is
 * (in - 1) / (out - 1), or 0 when out == 1. */
typedef struct {
  int i0, off;
  float l0, l1;
} tap;

static tap source(const int o, const int in, const float scale) {
  const float src = scale * (float)o;
  tap t;
  t.i0 = (int)src;
  t.off = t.i0 < in - 1 ? 1 : 0;
  t.l1 = clamp(src - (float)t.i0, 0.0f, 1.0f);
  t.l0 = 1.0f - t.l1;
  return t;
}

__kernel void resize_bilinear_fwd(const int h, const int w, const int oh, const int ow,
                                  const float scale_h, const float scale_w, CTENSOR(x), TENSOR(y)) {
  const int ox = get_global_id(0), oy = get_global_id(1), plane = get_global_id(2);
  if (ox >= ow || oy >= oh) return;
  const int i = (plane * oh + oy) * ow + ox;
  __global const float *xp = AT(x) + plane * h * w;
  const tap ty = source(oy, h, scale_h), tx = source(ox, w, scale_w);
  __global const float *r0 = xp + ty.i0 * w, *r1 = xp + (ty.i0 + ty.off) * w;
  const int x0 = tx.i0, x1 = tx.i0 + tx.off;
  AT(y)[i] = ty.l0 * (tx.l0 * r0[x0] + tx.l1 * r0[x1]) + ty.l1 * (tx.l0 * r1[x0] + tx.l1 * r1[x1]);
}

/* Weight with which output o reads input i along one axis. */
static float tap_weight(const tap t, const int i) {
  return (t.i0 == i ? t.l0 : 0.0f) + (t.i0 + t.off == i ? t.l1 : 0.0f);
}

/* The outputs that can read input i: their source lies in (i - 1, i + 1),
 * so o lies in ((i - 1) / scale, (i + 1) / scale). The range taken is two
 * indices wider on each side, against rounding; tap_weight decides exactly.
 * scale == 0 means every output reads input 0. */
static int2 reading_outputs(const int i, const int out, const float scale) {
  if (scale == 0.0f) return (int2)(0, out - 1);
  /* Clamped as floats: (i + 1) / scale may exceed the int range. */
  const float lo = fmax(floor((float)(i - 1) / scale) - 1.0f, 0.0f);
  const float hi = fmin(ceil((float)(i + 1) / scale) + 1.0f, (float)(out - 1));
  return (int2)((int)lo, (int)hi);
}

/* Outputs along x that read input ix, with their weights, listed once per
 * work-item (up to RESIZE_MAX_TAPS; wider ranges, from extreme scales, are
 * walked directly). */
#ifndef RESIZE_MAX_TAPS
#define RESIZE_MAX_TAPS 64
#endif

__kernel void resize_bilinear_bwd_x(const int h, const int w, const int oh, const int ow,
                                    const float scale_h, const float scale_w, CTENSOR(dy), TENSOR(dx)) {
  const int ix = get_global_id(0), iy = get_global_id(1), plane = get_global_id(2);
  if (ix >= w || iy >= h) return;
  const int i = (plane * h + iy) * w + ix;
  __global const float *dyp = AT(dy) + plane * oh * ow;
  const int2 ry = reading_outputs(iy, oh, scale_h), rx = reading_outputs(ix, ow, scale_w);
  int oxs[RESIZE_MAX_TAPS];
  float wxs[RESIZE_MAX_TAPS];
  int nx = 0;
  const int listed = rx.y - rx.x < RESIZE_MAX_TAPS;
  if (listed)
    for (int ox = rx.x; ox <= rx.y; ox++) {
      const float wx = tap_weight(source(ox, w, scale_w), ix);
      if (wx != 0.0f) {
        oxs[nx] = ox;
        wxs[nx++] = wx;
      }
    }
  float acc = 0.0f;
  for (int oy = ry.x; oy <= ry.y; oy++) {
    const float wy = tap_weight(source(oy, h, scale_h), iy);
    if (wy == 0.0f) continue;
    __global const float *row = dyp + oy * ow;
    float racc = 0.0f;
    if (listed)
      for (int t = 0; t < nx; t++) racc += wxs[t] * row[oxs[t]];
    else
      for (int ox = rx.x; ox <= rx.y; ox++) racc += tap_weight(source(ox, w, scale_w), ix) * row[ox];
    acc += wy * racc;
  }
  AT(dx)[i] += acc;
}
