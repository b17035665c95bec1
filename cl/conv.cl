/* Convolution helpers around CLBlast's GEMM: im2col, col2im in gather form,
 * the bias broadcast and the per-channel bias gradient.
 *
 * Columns of a chunk of samples: col[s][k][p], k = (ci*kh + ky)*kw + kx
 * (K = Cin*kh*kw rows), p = oy*Wo + ox (P = Ho*Wo columns), so that one
 * sample's columns form the row-major K x P matrix of the GEMM.
 * GEOMETRY: kernel size, stride, padding and dilation per axis (the C side
 * passes skd_conv2d_params in this order). */
#define GEOMETRY \
  const int kh, const int kw, const int sh, const int sw, const int ph, const int pw, const int dh, const int dw

/* y[n][co][p] = bias[co]; the GEMM then accumulates onto it (beta = 1). */
__kernel void conv2d_fwd_bias(const int total, const int plane, const int cout, CTENSOR(bias), TENSOR(y)) {
  const int i = get_global_id(0);
  if (i >= total) return;
  AT(y)[i] = AT(bias)[(i / plane) % cout];
}

/* One work-item per column entry of `nb` samples. Padding reads as 0. */
__kernel void conv2d_im2col(const int total, const int cin, const int h, const int w, const int wo,
                            const int plane, GEOMETRY, CTENSOR(x), TENSOR(col)) {
  const int i = get_global_id(0);
  if (i >= total) return;
  const int kk = kh * kw;
  const int p = i % plane;
  const int row = i / plane; /* s*K + k */
  const int k = row % (cin * kk);
  const int s = row / (cin * kk);
  const int ci = k / kk;
  const int ky = (k % kk) / kw;
  const int kx = k % kw;
  const int iy = (p / wo) * sh - ph + ky * dh;
  const int ix = (p % wo) * sw - pw + kx * dw;
  float v = 0.0f;
  if (iy >= 0 && iy < h && ix >= 0 && ix < w) v = AT(x)[((s * cin + ci) * h + iy) * w + ix];
  AT(col)[i] = v;
}

/* dx += col2im(dcol), gathered: input pixel (iy, ix) received tap (ky, kx)
 * of output (oy, ox) when oy*sh - ph + ky*dh == iy, so each work-item sums
 * its own kh*kw candidates in a fixed order (deterministic, no atomics). */
__kernel void conv2d_bwd_x(const int total, const int cin, const int h, const int w, const int ho, const int wo,
                           GEOMETRY, CTENSOR(col), TENSOR(dx)) {
  const int i = get_global_id(0);
  if (i >= total) return;
  const int ix = i % w;
  const int iy = (i / w) % h;
  const int ci = (i / (w * h)) % cin;
  const int s = i / (w * h * cin);
  const int plane = ho * wo;
  const int kk = kh * kw;
  __global const float *c = AT(col) + (s * cin + ci) * kk * plane;
  float acc = 0.0f;
  for (int ky = 0; ky < kh; ky++) {
    const int ty = iy + ph - ky * dh;
    if (ty < 0) break; /* ty only falls as ky grows */
    if (ty % sh != 0) continue;
    const int oy = ty / sh;
    if (oy >= ho) continue;
    for (int kx = 0; kx < kw; kx++) {
      const int tx = ix + pw - kx * dw;
      if (tx < 0) break;
      if (tx % sw != 0) continue;
      const int ox = tx / sw;
      if (ox >= wo) continue;
      acc += c[(ky * kw + kx) * plane + oy * wo + ox];
    }
  }
  AT(dx)[i] += acc;
}

/* dbias[co] += sum over samples and positions of dy[n][co][p]. One
 * work-group per channel; a fixed-shape tree keeps the sum deterministic. */
__kernel void conv2d_bwd_bias(const int n, const int cout, const int plane, CTENSOR(dy), TENSOR(dbias),
                              __local float *scratch) {
  const int co = get_group_id(0);
  const int lid = get_local_id(0);
  const int lsize = get_local_size(0);
  float acc = 0.0f;
  for (int b = 0; b < n; b++) {
    __global const float *d = AT(dy) + (b * cout + co) * plane;
    for (int p = lid; p < plane; p += lsize) acc += d[p];
  }
  scratch[lid] = acc;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int step = lsize / 2; step > 0; step /= 2) {
    if (lid < step) scratch[lid] += scratch[lid + step];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (lid == 0) AT(dbias)[co] += scratch[0];
}
