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

/* One work-item per output row oy of one column row (s, k) of `nb`
 * samples: it decodes (s, ci, ky, kx) once and writes the Wo columns of
 * that row in order. Padding reads as 0. */
__kernel void conv2d_im2col(const int rows, const int cin, const int h, const int w, const int ho, const int wo,
                            GEOMETRY, CTENSOR(x), TENSOR(col)) {
  const int oy = get_global_id(0);
  const int row = get_global_id(1); /* s*K + k */
  if (oy >= ho || row >= rows) return;
  const int kk = kh * kw;
  const int k = row % (cin * kk);
  const int s = row / (cin * kk);
  const int ci = k / kk;
  const int ky = (k % kk) / kw;
  const int kx = k % kw;
  const int iy = oy * sh - ph + ky * dh;
  __global float *dst = AT(col) + (row * ho + oy) * wo;
  if (iy < 0 || iy >= h) {
    for (int ox = 0; ox < wo; ox++) dst[ox] = 0.0f;
    return;
  }
  __global const float *src = AT(x) + ((s * cin + ci) * h + iy) * w;
  for (int ox = 0; ox < wo; ox++) {
    const int ix = ox * sw - pw + kx * dw;
    dst[ox] = (ix >= 0 && ix < w) ? src[ix] : 0.0f;
  }
}

/* dx += col2im(dcol), gathered: input pixel (iy, ix) received tap (ky, kx)
 * of output (oy, ox) when oy*sh - ph + ky*dh == iy, so each input sums its
 * own kh*kw candidates in a fixed order (deterministic, no atomics). One
 * work-item per input row iy of one (sample, channel) plane: the taps valid
 * along y are found once, then the row is walked in order. */
#ifndef CONV_MAX_KH
#define CONV_MAX_KH 16
#endif
__kernel void conv2d_bwd_x(const int planes, const int h, const int w, const int ho, const int wo, GEOMETRY,
                           CTENSOR(col), TENSOR(dx)) {
  const int iy = get_global_id(0);
  const int pl = get_global_id(1); /* s*Cin + ci */
  if (iy >= h || pl >= planes) return;
  const int plane = ho * wo;
  __global const float *c = AT(col) + pl * kh * kw * plane;
  __global float *dst = AT(dx) + (pl * h + iy) * w;
  /* Rows of col this input row reads: (ky, oy) with oy*sh - ph + ky*dh == iy.
   * Kernels taller than CONV_MAX_KH take the slow path below. */
  int rows[CONV_MAX_KH];
  int nrows = 0;
  for (int ky = 0; ky < kh && ky < CONV_MAX_KH; ky++) {
    const int ty = iy + ph - ky * dh;
    if (ty < 0) break; /* ty only falls as ky grows */
    if (ty % sh != 0 || ty / sh >= ho) continue;
    rows[nrows++] = ky * kw * plane + (ty / sh) * wo; /* tap row ky, output row oy */
  }
  for (int ix = 0; ix < w; ix++) {
    float acc = 0.0f;
    for (int r = 0; r < nrows; r++)
      for (int kx = 0; kx < kw; kx++) {
        const int tx = ix + pw - kx * dw;
        if (tx < 0) break;
        if (tx % sw != 0 || tx / sw >= wo) continue;
        acc += c[rows[r] + kx * plane + tx / sw];
      }
    for (int ky = CONV_MAX_KH; ky < kh; ky++) {
      const int ty = iy + ph - ky * dh;
      if (ty < 0) break;
      if (ty % sh != 0 || ty / sh >= ho) continue;
      for (int kx = 0; kx < kw; kx++) {
        const int tx = ix + pw - kx * dw;
        if (tx < 0) break;
        if (tx % sw != 0 || tx / sw >= wo) continue;
        acc += c[(ky * kw + kx) * plane + (ty / sh) * wo + tx / sw];
      }
    }
    dst[ix] += acc;
  }
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

/* Direct forward convolution, no columns: one work-item computes CONV_PXB
 * consecutive output pixels of the flattened Ho x Wo plane, as one vector,
 * for CONV_COB consecutive output channels, so each input vector it loads
 * feeds CONV_COB vector multiply-adds and each weight CONV_PXB. Strips
 * within one row at stride 1 load their inputs as one vector; strips that
 * wrap a row or touch padding gather them. (Strips over the whole plane
 * rather than per row waste no lanes on narrow maps such as 17 x 17.)
 * Channels past Cout compute on a clamped weight row and pixels past the
 * plane on a clamped pixel; neither is stored. y = conv(x) + bias (bias
 * optional: has_bias; accumulate: y += instead, as dx of a stride-1
 * convolution, which is this one on dy with flipped weights). CONV_PXB is a
 * vector width: 2, 4, 8 or 16. */
#ifndef CONV_COB
#define CONV_COB 8
#endif
#ifndef CONV_PXB
#define CONV_PXB 8
#endif
#define CONV_CAT_(a, b) a##b
#define CONV_CAT(a, b) CONV_CAT_(a, b)
#define PXVEC CONV_CAT(float, CONV_PXB)
#define PXLOAD CONV_CAT(vload, CONV_PXB)
#define PXSTORE CONV_CAT(vstore, CONV_PXB)
__kernel void conv2d_direct_fwd(const int cin, const int h, const int w, const int cout, const int ho,
                                const int wo, GEOMETRY, CTENSOR(x), CTENSOR(weight), const int has_bias,
                                CTENSOR(bias), const int accumulate, TENSOR(y)) {
  const int plane = ho * wo;
  const int p0 = get_global_id(0) * CONV_PXB;
  const int co0 = get_global_id(1) * CONV_COB;
  const int s = get_global_id(2);
  if (p0 >= plane) return;
  const int full = p0 + CONV_PXB <= plane;
  const int dense = sw == 1 && full && p0 % wo + CONV_PXB <= wo; /* consecutive inputs */
  int ys0[CONV_PXB], xs0[CONV_PXB];
  for (int q = 0; q < CONV_PXB; q++) {
    const int p = min(p0 + q, plane - 1);
    ys0[q] = (p / wo) * sh - ph;
    xs0[q] = (p % wo) * sw - pw;
  }
  const int taps = cin * kh * kw;
  int wbase[CONV_COB];
  for (int j = 0; j < CONV_COB; j++) wbase[j] = min(co0 + j, cout - 1) * taps;
  PXVEC acc[CONV_COB];
  for (int j = 0; j < CONV_COB; j++) acc[j] = (PXVEC)(0.0f);
  __global const float *xs = AT(x) + s * cin * h * w;
  __global const float *wt = AT(weight);
  int t = 0;
  for (int ci = 0; ci < cin; ci++) {
    __global const float *xc = xs + ci * h * w;
    for (int ky = 0; ky < kh; ky++) {
      const int iy0 = ys0[0] + ky * dh;
      for (int kx = 0; kx < kw; kx++, t++) {
        const int ix0 = xs0[0] + kx * dw;
        PXVEC v;
        if (dense && iy0 >= 0 && iy0 < h && ix0 >= 0 && ix0 + CONV_PXB <= w) {
          v = PXLOAD(0, xc + iy0 * w + ix0);
        } else {
          float gathered[CONV_PXB];
          for (int q = 0; q < CONV_PXB; q++) {
            const int iy = ys0[q] + ky * dh, ix = xs0[q] + kx * dw;
            gathered[q] = (iy >= 0 && iy < h && ix >= 0 && ix < w) ? xc[iy * w + ix] : 0.0f;
          }
          v = PXLOAD(0, gathered);
        }
        for (int j = 0; j < CONV_COB; j++) acc[j] += wt[wbase[j] + t] * v;
      }
    }
  }
  __global float *ys = AT(y) + s * cout * plane + p0;
  for (int j = 0; j < CONV_COB; j++) {
    const int co = co0 + j;
    if (co >= cout) break;
    const PXVEC r = acc[j] + (has_bias ? AT(bias)[co] : 0.0f);
    __global float *dst = ys + co * plane;
    if (full) {
      PXSTORE(accumulate ? PXLOAD(0, dst) + r : r, 0, dst);
    } else {
      float out[CONV_PXB];
      PXSTORE(r, 0, out);
      for (int q = 0; p0 + q < plane; q++) dst[q] = accumulate ? dst[q] + out[q] : out[q];
    }
  }
}

/* wf[ci][co][ky][kx] = w[co][ci][kh-1-ky][kw-1-kx]: the weights of the
 * convolution that maps dy to dx when the stride is 1. */
__kernel void conv2d_flip_weights(const int cin, const int cout, const int kh, const int kw, CTENSOR(w),
                                  TENSOR(wf)) {
  const int t = get_global_id(0), co = get_global_id(1), ci = get_global_id(2);
  if (t >= kh * kw) return;
  const int ky = t / kw, kx = t % kw;
  AT(wf)[((ci * cout + co) * kh + ky) * kw + kx] = AT(w)[((co * cin + ci) * kh + kh - 1 - ky) * kw + kw - 1 - kx];
}

/* dx += the input gradient, directly (no columns), for strides above 1
 * (stride 1 runs the forward kernel on flipped weights): one work-item sums,
 * for CONV_PXB neighbouring input pixels of one row (one vector) and
 * CONV_COB consecutive input channels, every output tap that read them:
 * input (iy, ix) fed tap (ky, kx) of output (oy, ox) when
 * oy*sh - ph + ky*dh == iy (and the same along x). The outputs a tap reaches
 * are worked out once for all output channels. Gather form in a fixed
 * order: deterministic, no atomics. */
__kernel void conv2d_direct_bwd_x(const int cin, const int h, const int w, const int cout, const int ho,
                                  const int wo, GEOMETRY, CTENSOR(dy), CTENSOR(weight), TENSOR(dx)) {
  const int strips = (w + CONV_PXB - 1) / CONV_PXB;
  const int g = get_global_id(0);
  const int ci0 = get_global_id(1) * CONV_COB;
  const int s = get_global_id(2);
  if (g >= h * strips) return;
  const int iy = g / strips, ix0 = (g % strips) * CONV_PXB;
  const int full = ix0 + CONV_PXB <= w;
  const int kk = kh * kw;
  int wci[CONV_COB];
  for (int j = 0; j < CONV_COB; j++) wci[j] = min(ci0 + j, cin - 1) * kk;
  PXVEC acc[CONV_COB];
  for (int j = 0; j < CONV_COB; j++) acc[j] = (PXVEC)(0.0f);
  const int plane = ho * wo;
  __global const float *dys = AT(dy) + s * cout * plane;
  __global const float *wt = AT(weight);
  for (int ky = 0; ky < kh; ky++) {
    const int ty = iy + ph - ky * dh;
    if (ty < 0) break; /* ty only falls as ky grows */
    if (ty % sh != 0 || ty / sh >= ho) continue;
    const int row = (ty / sh) * wo;
    for (int kx = 0; kx < kw; kx++) {
      /* Which output each pixel of the strip reads at this tap (-1: none);
       * worked out once for all output channels. */
      int at[CONV_PXB];
      int hits = 0;
      for (int q = 0; q < CONV_PXB; q++) {
        const int tx = min(ix0 + q, w - 1) + pw - kx * dw;
        const int ok = ix0 + q < w && tx >= 0 && tx % sw == 0 && tx / sw < wo;
        at[q] = ok ? row + tx / sw : -1;
        hits += ok;
      }
      if (hits == 0) continue;
      const int dense = sw == 1 && hits == CONV_PXB; /* consecutive outputs */
      const int tap = ky * kw + kx;
      for (int co = 0; co < cout; co++) {
        __global const float *d = dys + co * plane;
        PXVEC v;
        if (dense) {
          v = PXLOAD(0, d + at[0]);
        } else {
          float gathered[CONV_PXB];
          for (int q = 0; q < CONV_PXB; q++) gathered[q] = at[q] >= 0 ? d[at[q]] : 0.0f;
          v = PXLOAD(0, gathered);
        }
        __global const float *wco = wt + co * cin * kk + tap;
        for (int j = 0; j < CONV_COB; j++) acc[j] += wco[wci[j]] * v;
      }
    }
  }
  __global float *dxs = AT(dx) + (s * cin) * h * w + iy * w + ix0;
  for (int j = 0; j < CONV_COB; j++) {
    const int ci = ci0 + j;
    if (ci >= cin) break;
    __global float *dst = dxs + ci * h * w;
    if (full) {
      PXSTORE(PXLOAD(0, dst) + acc[j], 0, dst);
    } else {
      float out[CONV_PXB];
      PXSTORE(acc[j], 0, out);
      for (int q = 0; ix0 + q < w; q++) dst[q] += out[q];
    }
  }
}

/* dweight += the weight gradient, directly (no columns): one work-item owns
 * CONV_COB output channels x CONV_CIB input channels at one tap (ky, kx) and
 * sums dy * x over every sample and output pixel in a fixed order
 * (deterministic, no atomics). Only the output columns whose input column
 * lies inside the image are visited. Channels past the ends load clamped
 * rows and are not stored. */
#ifndef CONV_CIB
#define CONV_CIB 4
#endif
__kernel void conv2d_direct_bwd_w(const int n, const int cin, const int h, const int w, const int cout,
                                  const int ho, const int wo, GEOMETRY, CTENSOR(x), CTENSOR(dy),
                                  TENSOR(dweight)) {
  const int kk = kh * kw;
  const int ci_blocks = (cin + CONV_CIB - 1) / CONV_CIB;
  const int g = get_global_id(0);
  const int co0 = get_global_id(1) * CONV_COB;
  if (g >= kk * ci_blocks) return;
  const int tap = g % kk, ci0 = (g / kk) * CONV_CIB;
  const int ky = tap / kw, kx = tap % kw;
  /* ox in [ox_lo, ox_hi) keeps ix = ox*sw - pw + kx*dw inside [0, w). */
  const int lead = pw - kx * dw;
  const int ox_lo = lead > 0 ? (lead + sw - 1) / sw : 0;
  const int ox_hi = min(wo, (w - 1 + lead) / sw + 1);
  float acc[CONV_COB][CONV_CIB];
  for (int j = 0; j < CONV_COB; j++)
    for (int i = 0; i < CONV_CIB; i++) acc[j][i] = 0.0f;
  for (int s = 0; s < n; s++) {
    for (int oy = 0; oy < ho; oy++) {
      const int iy = oy * sh - ph + ky * dh;
      if (iy < 0 || iy >= h) continue;
      __global const float *xr[CONV_CIB];
      __global const float *dr[CONV_COB];
      for (int i = 0; i < CONV_CIB; i++) xr[i] = AT(x) + ((s * cin + min(ci0 + i, cin - 1)) * h + iy) * w - lead;
      for (int j = 0; j < CONV_COB; j++) dr[j] = AT(dy) + ((s * cout + min(co0 + j, cout - 1)) * ho + oy) * wo;
      for (int ox = ox_lo; ox < ox_hi; ox++) {
        float xv[CONV_CIB];
        for (int i = 0; i < CONV_CIB; i++) xv[i] = xr[i][ox * sw];
        for (int j = 0; j < CONV_COB; j++) {
          const float d = dr[j][ox];
          for (int i = 0; i < CONV_CIB; i++) acc[j][i] += d * xv[i];
        }
      }
    }
  }
  for (int j = 0; j < CONV_COB; j++) {
    const int co = co0 + j;
    if (co >= cout) break;
    for (int i = 0; i < CONV_CIB; i++)
      if (ci0 + i < cin) AT(dweight)[(co * cin + ci0 + i) * kk + tap] += acc[j][i];
  }
}

/* Direct forward convolution vectorised over output channels, for CPUs (the
 * layout oneDNN's direct kernels use): one work-item computes CONV_CVW
 * consecutive output channels as one vector for CONV_CPX consecutive pixels
 * of all samples' output planes taken as one (N x Ho x Wo) run, one
 * accumulator vector per pixel held in registers. Each tap loads one weight
 * vector from wt, the weights transposed to [tap][co] with co padded to
 * `cpad` (conv2d_transpose_weights), and multiplies it by each pixel's input
 * value broadcast, so the inner loop is CONV_CPX vector FMAs per weight load
 * and nothing else. x is already zero-padded (conv2d_pad_input; ph and pw
 * are 0 here), so every tap of every pixel is in bounds: each pixel keeps
 * the offset of its window's corner, and a strip may wrap to the next row or
 * sample (small planes, such as a discriminator's last 1 x 1, fill the strip
 * from several samples). Channel blocks past Cout compute on the zero
 * padding and are not stored; pixels past the end compute on a clamped
 * pixel and are not stored. y = conv(x) + bias (has_bias), or y += conv(x)
 * (accumulate). Work-item (., ., part) sums only input channels [part *
 * ci_chunk, (part + 1) * ci_chunk) into the part-th y of a stack: layers with
 * many input channels are split so that a chunk's weights stay in cache
 * while the work-items of one channel block run one after another
 * (conv2d_cv_sum_parts adds the parts). CONV_CVW: 4, 8 or 16. */
#ifndef CONV_CVW
#define CONV_CVW 16
#endif
#ifndef CONV_CPX
#define CONV_CPX 8
#endif
#define CVEC CONV_CAT(float, CONV_CVW)
#define CVLOAD CONV_CAT(vload, CONV_CVW)
#define CVSTORE CONV_CAT(vstore, CONV_CVW)
/* The body of the conv2d_cv_fwd kernels: NV channel vectors (NV *
 * CONV_CVW output channels) per work-item, NV a constant after inlining.
 * Each tap then loads NV weight vectors and CONV_CPX broadcast inputs for
 * NV * CONV_CPX FMAs: with NV = 2 the loads no longer bound the FMA rate on
 * a CPU that does two loads and two FMAs a cycle. Every output sums its
 * taps in the same order whatever NV: the same bits. */
static inline void conv2d_cv_fwd_body(const int nv, const int n, const int cin, const int h, const int w,
                                      const int cout, const int ho, const int wo, const int kh, const int kw,
                                      const int sh, const int sw, const int dh, const int dw,
                                      __global const float *x, __global const float *wt, const int cpad,
                                      const int ci_chunk, const int has_bias, __global const float *bias,
                                      const int accumulate, __global float *y) {
  const int plane = ho * wo, total = n * plane;
  const int p0 = get_global_id(0) * CONV_CPX;
  const int co0 = get_global_id(1) * CONV_CVW * nv;
  const int part = get_global_id(2), ci0 = part * ci_chunk, ci1 = min(cin, ci0 + ci_chunk);
  if (p0 >= total) return;
  int corner[CONV_CPX], out_at[CONV_CPX]; /* input window corner; output offset at channel 0 */
  _Pragma("unroll") for (int q = 0; q < CONV_CPX; q++) {
    const int i = min(p0 + q, total - 1), s = i / plane, p = i % plane;
    corner[q] = s * cin * h * w + (p / wo) * sh * w + (p % wo) * sw;
    out_at[q] = s * cout * plane + p;
  }
  CVEC acc[2][CONV_CPX];
  _Pragma("unroll") for (int v = 0; v < nv; v++) _Pragma("unroll") for (int q = 0; q < CONV_CPX; q++) acc[v][q] =
      (CVEC)(0.0f);
  __global const float *xc = x + ci0 * h * w;
  __global const float *wp = wt + ci0 * kh * kw * cpad + co0;
  for (int ci = ci0; ci < ci1; ci++, xc += h * w) {
    for (int ky = 0; ky < kh; ky++) {
      for (int kx = 0; kx < kw; kx++, wp += cpad) {
        CVEC wv[2];
        _Pragma("unroll") for (int v = 0; v < nv; v++) wv[v] = CVLOAD(v, wp);
        __global const float *xt = xc + ky * dh * w + kx * dw;
        _Pragma("unroll") for (int q = 0; q < CONV_CPX; q++) {
          const CVEC xv = (CVEC)(xt[corner[q]]);
          _Pragma("unroll") for (int v = 0; v < nv; v++) acc[v][q] = fma(xv, wv[v], acc[v][q]);
        }
      }
    }
  }
  const int nq = min(CONV_CPX, total - p0);
  for (int v = 0; v < nv; v++) {
    float out[CONV_CPX][CONV_CVW];
    _Pragma("unroll") for (int q = 0; q < CONV_CPX; q++) CVSTORE(acc[v][q], 0, out[q]);
    for (int j = 0; j < CONV_CVW; j++) {
      const int co = co0 + v * CONV_CVW + j;
      if (co >= cout) break;
      const float b = has_bias ? bias[co] : 0.0f;
      __global float *dst = y + part * cout * total + co * plane;
      for (int q = 0; q < nq; q++) dst[out_at[q]] = (accumulate ? dst[out_at[q]] : 0.0f) + out[q][j] + b;
    }
  }
}

/* One channel vector per work-item. */
__kernel void conv2d_cv_fwd(const int n, const int cin, const int h, const int w, const int cout, const int ho,
                            const int wo, GEOMETRY, CTENSOR(x), CTENSOR(wt), const int cpad, const int ci_chunk,
                            const int has_bias, CTENSOR(bias), const int accumulate, TENSOR(y)) {
  conv2d_cv_fwd_body(1, n, cin, h, w, cout, ho, wo, kh, kw, sh, sw, dh, dw, AT(x), AT(wt), cpad, ci_chunk, has_bias,
                     AT(bias), accumulate, AT(y));
}

/* Two channel vectors per work-item (cpad a multiple of 2 * CONV_CVW). */
__kernel void conv2d_cv2_fwd(const int n, const int cin, const int h, const int w, const int cout, const int ho,
                             const int wo, GEOMETRY, CTENSOR(x), CTENSOR(wt), const int cpad, const int ci_chunk,
                             const int has_bias, CTENSOR(bias), const int accumulate, TENSOR(y)) {
  conv2d_cv_fwd_body(2, n, cin, h, w, cout, ho, wo, kh, kw, sh, sw, dh, dw, AT(x), AT(wt), cpad, ci_chunk, has_bias,
                     AT(bias), accumulate, AT(y));
}

/* Two channel vectors per work-item for 1x1 kernels: kh = kw = 1 as
 * constants, so the tap loop is the input-channel loop alone. */
__kernel void conv2d_cv2_fwd_1x1(const int n, const int cin, const int h, const int w, const int cout,
                                 const int ho, const int wo, GEOMETRY, CTENSOR(x), CTENSOR(wt), const int cpad,
                                 const int ci_chunk, const int has_bias, CTENSOR(bias), const int accumulate,
                                 TENSOR(y)) {
  conv2d_cv_fwd_body(2, n, cin, h, w, cout, ho, wo, 1, 1, sh, sw, dh, dw, AT(x), AT(wt), cpad, ci_chunk, has_bias,
                     AT(bias), accumulate, AT(y));
}

/* Two channel vectors per work-item for 3x3 kernels (kh = kw = 3 as
 * constants: the tap loops unroll). */
__kernel void conv2d_cv2_fwd_3x3(const int n, const int cin, const int h, const int w, const int cout,
                                 const int ho, const int wo, GEOMETRY, CTENSOR(x), CTENSOR(wt), const int cpad,
                                 const int ci_chunk, const int has_bias, CTENSOR(bias), const int accumulate,
                                 TENSOR(y)) {
  conv2d_cv_fwd_body(2, n, cin, h, w, cout, ho, wo, 3, 3, sh, sw, dh, dw, AT(x), AT(wt), cpad, ci_chunk, has_bias,
                     AT(bias), accumulate, AT(y));
}

/* y = sum over the parts p of part[p] (+ bias) (y += with accumulate): the
 * partial sums of conv2d_cv_fwd over input-channel chunks, in a fixed order. */
__kernel void conv2d_cv_sum_parts(const int n, const int cout, const int plane, const int parts, CTENSOR(part),
                                  const int has_bias, CTENSOR(bias), const int accumulate, TENSOR(y)) {
  const int p = get_global_id(0), co = get_global_id(1), s = get_global_id(2);
  if (p >= plane || co >= cout) return;
  const int i = (s * cout + co) * plane + p, stride = n * cout * plane;
  float sum = 0.0f;
  for (int k = 0; k < parts; k++) sum += AT(part)[k * stride + i];
  AT(y)[i] = (accumulate ? AT(y)[i] : 0.0f) + sum + (has_bias ? AT(bias)[co] : 0.0f);
}

/* dweight += the weight gradient, vectorised over output channels like
 * conv2d_cv_fwd: one work-item computes CONV_CVW consecutive output channels
 * (one vector) x CONV_CPX consecutive input channels at one tap, summing over
 * every sample and output pixel in a fixed order (deterministic, no
 * atomics). dyt is dy transposed to [n][pixel][co] with co padded to cpad
 * (conv2d_transpose_dy), so each pixel loads one dy vector and multiplies it
 * by each input channel's value broadcast; x is zero-padded
 * (conv2d_pad_input; ph and pw are 0 here), so no read needs a check. Input
 * channels past cin read a clamped channel and are not stored. */
__kernel void conv2d_cv_bwd_w(const int n, const int cin, const int h, const int w, const int cout, const int ho,
                              const int wo, GEOMETRY, CTENSOR(x), CTENSOR(dyt), const int cpad,
                              TENSOR(dweight)) {
  const int tap = get_global_id(0), ci0 = get_global_id(1) * CONV_CPX, co0 = get_global_id(2) * CONV_CVW;
  const int kk = kh * kw;
  if (tap >= kk || ci0 >= cin) return;
  const int ky = tap / kw, kx = tap % kw;
  int chan[CONV_CPX];
  _Pragma("unroll") for (int q = 0; q < CONV_CPX; q++) chan[q] = min(ci0 + q, cin - 1) * h * w;
  CVEC acc[CONV_CPX];
  _Pragma("unroll") for (int q = 0; q < CONV_CPX; q++) acc[q] = (CVEC)(0.0f);
  __global const float *dp = AT(dyt) + co0;
  for (int s = 0; s < n; s++) {
    __global const float *xs = AT(x) + s * cin * h * w + ky * dh * w + kx * dw;
    for (int oy = 0; oy < ho; oy++) {
      __global const float *xr = xs + oy * sh * w;
      for (int ox = 0; ox < wo; ox++, dp += cpad) {
        const CVEC d = CVLOAD(0, dp);
        __global const float *xt = xr + ox * sw;
        _Pragma("unroll") for (int q = 0; q < CONV_CPX; q++) acc[q] = fma((CVEC)(xt[chan[q]]), d, acc[q]);
      }
    }
  }
  float out[CONV_CVW];
  for (int q = 0; q < CONV_CPX && ci0 + q < cin; q++) {
    CVSTORE(acc[q], 0, out);
    for (int j = 0; j < CONV_CVW && co0 + j < cout; j++) AT(dweight)[((co0 + j) * cin + ci0 + q) * kk + tap] += out[j];
  }
}

/* dyt[s][p][c] = dy[s][c][p] for c < cout, 0 up to cpad: the dy of
 * conv2d_cv_bwd_w, one vector of output channels per pixel. */
__kernel void conv2d_transpose_dy(const int cout, const int plane, const int cpad, CTENSOR(dy), TENSOR(dyt)) {
  const int c = get_global_id(0), p = get_global_id(1), s = get_global_id(2);
  if (c >= cpad || p >= plane) return;
  AT(dyt)[(s * plane + p) * cpad + c] = c < cout ? AT(dy)[(s * cout + c) * plane + p] : 0.0f;
}

/* xp[i][top + y][left + x] = x[i][y][x] for the planes i of x (h x w), 0
 * everywhere else in the hp x wp planes of xp: the zero-padded input of the
 * vec kernels. */
__kernel void conv2d_pad_input(const int h, const int w, const int top, const int left, const int hp, const int wp,
                               CTENSOR(x), TENSOR(xp)) {
  const int px = get_global_id(0), py = get_global_id(1), plane = get_global_id(2);
  if (px >= wp || py >= hp) return;
  const int yy = py - top, xx = px - left;
  AT(xp)[(plane * hp + py) * wp + px] = yy >= 0 && yy < h && xx >= 0 && xx < w ? AT(x)[(plane * h + yy) * w + xx] : 0.0f;
}

/* wt[t][co] = w[co][t] for t < taps (t = (ci*kh + ky)*kw + kx), co < cpad,
 * 0 for co >= cout: the weights of conv2d_cv_fwd, one vector per tap. One
 * work-item per tile of 16 taps x 16 channels: rows of w read as vectors. */
__kernel void conv2d_transpose_weights(const int taps, const int cout, const int cpad, CTENSOR(w), TENSOR(wt)) {
  const int t0 = get_global_id(0) * 16, co0 = get_global_id(1) * 16;
  if (t0 >= taps || co0 >= cpad) return;
  const int nt = min(16, taps - t0);
  for (int c = 0; c < 16; c++) {
    const int co = co0 + c;
    float v[16];
    if (co < cout && nt == 16) {
      vstore16(vload16(0, AT(w) + co * taps + t0), 0, v);
    } else {
      for (int j = 0; j < 16; j++) v[j] = co < cout && j < nt ? AT(w)[co * taps + t0 + j] : 0.0f;
    }
    for (int j = 0; j < nt; j++) AT(wt)[(t0 + j) * cpad + co] = v[j];
  }
}
