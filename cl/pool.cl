/* Max pooling and adaptive average pooling. One work item per output
 * element in the forward kernels and per input element in the backward
 * kernels, which gather (no atomics) and add into dx (max pooling first
 * stores each window's argmax). Planes are N*C
 * contiguous H x W images. */

/* Offset in the plane of the window's first maximum. The start is the first
 * valid element, so an all -inf window still has an argmax; a NaN wins
 * (PyTorch: `val > max || isnan(val)`). */
static int window_argmax(__global const float *xp, const int h, const int w, const int oy, const int ox,
                         const int k, const int s, const int p) {
  const int y0 = max(oy * s - p, 0), x0 = max(ox * s - p, 0);
  const int y1 = min(oy * s - p + k, h), x1 = min(ox * s - p + k, w);
  int best = y0 * w + x0;
  float m = -INFINITY;
  for (int iy = y0; iy < y1; iy++)
    for (int ix = x0; ix < x1; ix++) {
      const float v = xp[iy * w + ix];
      if (v > m || isnan(v)) {
        m = v;
        best = iy * w + ix;
      }
    }
  return best;
}

__kernel void maxpool_fwd(const int h, const int w, const int oh, const int ow, const int k,
                          const int s, const int p, CTENSOR(x), TENSOR(y)) {
  const int ox = get_global_id(0), oy = get_global_id(1), plane = get_global_id(2);
  if (ox >= ow || oy >= oh) return;
  const int i = (plane * oh + oy) * ow + ox;
  __global const float *xp = AT(x) + plane * h * w;
  AT(y)[i] = xp[window_argmax(xp, h, w, oy, ox, k, s, p)];
}

/* First and last output index (along one axis) whose window covers input
 * index i: o*s - p <= i <= o*s - p + k - 1. */
static int2 covering_windows(const int i, const int n_out, const int k, const int s, const int p) {
  const int lo = i + p - k + 1;
  return (int2)(lo <= 0 ? 0 : (lo + s - 1) / s, min((i + p) / s, n_out - 1));
}

/* Backward, pass 1: each window's argmax (an offset in its plane), so that
 * pass 2 finds each input's windows' winners without recomputing them. */
__kernel void maxpool_argmax(const int h, const int w, const int oh, const int ow, const int k,
                             const int s, const int p, CTENSOR(x), __global int *arg) {
  const int ox = get_global_id(0), oy = get_global_id(1), plane = get_global_id(2);
  if (ox >= ow || oy >= oh) return;
  const int i = (plane * oh + oy) * ow + ox;
  arg[i] = window_argmax(AT(x) + plane * h * w, h, w, oy, ox, k, s, p);
}

/* Pass 2: each input sums dy of the windows whose argmax it is. */
__kernel void maxpool_bwd_x(const int h, const int w, const int oh, const int ow, const int k,
                            const int s, const int p, __global const int *arg, CTENSOR(dy), TENSOR(dx)) {
  const int ix = get_global_id(0), iy = get_global_id(1), plane = get_global_id(2);
  if (ix >= w || iy >= h) return;
  const int i = (plane * h + iy) * w + ix;
  const int self = iy * w + ix;
  __global const int *ap = arg + plane * oh * ow;
  __global const float *dyp = AT(dy) + plane * oh * ow;
  const int2 ry = covering_windows(iy, oh, k, s, p), rx = covering_windows(ix, ow, k, s, p);
  float acc = 0.0f;
  for (int oy = ry.x; oy <= ry.y; oy++)
    for (int ox = rx.x; ox <= rx.y; ox++)
      if (ap[oy * ow + ox] == self) acc += dyp[oy * ow + ox];
  AT(dx)[i] += acc;
}

/* PyTorch's adaptive bins: bin b covers [floor(b*in/out), ceil((b+1)*in/out)). */
static int bin_start(const int b, const int in, const int out) { return (b * in) / out; }
static int bin_end(const int b, const int in, const int out) { return ((b + 1) * in + out - 1) / out; }

__kernel void adaptive_avgpool_fwd(const int h, const int w, const int bh, const int bw,
                                   CTENSOR(x), TENSOR(y)) {
  const int bx = get_global_id(0), by = get_global_id(1), plane = get_global_id(2);
  if (bx >= bw || by >= bh) return;
  const int i = (plane * bh + by) * bw + bx;
  __global const float *xp = AT(x) + plane * h * w;
  const int y0 = bin_start(by, h, bh), y1 = bin_end(by, h, bh);
  const int x0 = bin_start(bx, w, bw), x1 = bin_end(bx, w, bw);
  float sum = 0.0f;
  for (int iy = y0; iy < y1; iy++)
    for (int ix = x0; ix < x1; ix++) sum += xp[iy * w + ix];
  AT(y)[i] = sum / (float)((y1 - y0) * (x1 - x0));
}

/* Bins whose range holds input index i: start(b) <= i < end(b) gives
 * b in [floor(i*out/in), ceil((i+1)*out/in) - 1]. */
static int2 covering_bins(const int i, const int in, const int out) {
  return (int2)((i * out) / in, min(((i + 1) * out + in - 1) / in - 1, out - 1));
}

__kernel void adaptive_avgpool_bwd_x(const int h, const int w, const int bh, const int bw,
                                     CTENSOR(dy), TENSOR(dx)) {
  const int ix = get_global_id(0), iy = get_global_id(1), plane = get_global_id(2);
  if (ix >= w || iy >= h) return;
  const int i = (plane * h + iy) * w + ix;
  __global const float *dyp = AT(dy) + plane * bh * bw;
  const int2 ry = covering_bins(iy, h, bh), rx = covering_bins(ix, w, bw);
  float acc = 0.0f;
  for (int by = ry.x; by <= ry.y; by++) {
    const int ny = bin_end(by, h, bh) - bin_start(by, h, bh);
    for (int bx = rx.x; bx <= rx.y; bx++) {
      const int nx = bin_end(bx, w, bw) - bin_start(bx, w, bw);
      acc += dyp[by * bw + bx] / (float)(ny * nx);
    }
  }
  AT(dx)[i] += acc;
}
