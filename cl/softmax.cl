/* Softmax family: channel softmax / log-softmax (one work-item per pixel),
 * row softmax (one work-group per row) and cross-entropy with an ignore
 * label (two-pass deterministic reduction). Backward kernels accumulate.
 * Reductions take their local scratch as a kernel argument and use
 * get_local_size(0), which the host keeps a power of two. */

float group_max(float v, __local float *scratch) {
  const int lid = get_local_id(0);
  scratch[lid] = v;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = get_local_size(0) / 2; s > 0; s >>= 1) {
    if (lid < s) scratch[lid] = fmax(scratch[lid], scratch[lid + s]);
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  const float r = scratch[0];
  barrier(CLK_LOCAL_MEM_FENCE);
  return r;
}

/* ---- channel softmax: x (N, C, HW), one work-item per (n, pixel) ---- */

__kernel void softmax_fwd(const int npix, const int c, const int hw, CTENSOR(x), TENSOR(y)) {
  const int p = get_global_id(0);
  if (p >= npix) return;
  const int base = (p / hw) * c * hw + p % hw;
  __global const float *xp = AT(x) + base;
  __global float *yp = AT(y) + base;
  float m = -INFINITY;
  for (int k = 0; k < c; k++) m = fmax(m, xp[k * hw]);
  float s = 0.0f;
  for (int k = 0; k < c; k++) s += exp(xp[k * hw] - m);
  const float inv = 1.0f / s;
  /* Reads x[k] before writing y[k]: in place is safe. */
  for (int k = 0; k < c; k++) yp[k * hw] = exp(xp[k * hw] - m) * inv;
}

__kernel void log_softmax_fwd(const int npix, const int c, const int hw, CTENSOR(x), TENSOR(y)) {
  const int p = get_global_id(0);
  if (p >= npix) return;
  const int base = (p / hw) * c * hw + p % hw;
  __global const float *xp = AT(x) + base;
  __global float *yp = AT(y) + base;
  float m = -INFINITY;
  for (int k = 0; k < c; k++) m = fmax(m, xp[k * hw]);
  float s = 0.0f;
  for (int k = 0; k < c; k++) s += exp(xp[k * hw] - m);
  const float lse = m + log(s);
  for (int k = 0; k < c; k++) yp[k * hw] = xp[k * hw] - lse;
}

/* dx += y * (dy - sum(dy * y)) */
__kernel void softmax_bwd_x(const int npix, const int c, const int hw, CTENSOR(y), CTENSOR(dy), TENSOR(dx)) {
  const int p = get_global_id(0);
  if (p >= npix) return;
  const int base = (p / hw) * c * hw + p % hw;
  __global const float *yp = AT(y) + base;
  __global const float *gp = AT(dy) + base;
  __global float *dp = AT(dx) + base;
  float dot = 0.0f;
  for (int k = 0; k < c; k++) dot += gp[k * hw] * yp[k * hw];
  for (int k = 0; k < c; k++) dp[k * hw] += yp[k * hw] * (gp[k * hw] - dot);
}

/* dx += dy - exp(y) * sum(dy), y = log_softmax(x) */
__kernel void log_softmax_bwd_x(const int npix, const int c, const int hw, CTENSOR(y), CTENSOR(dy),
                                TENSOR(dx)) {
  const int p = get_global_id(0);
  if (p >= npix) return;
  const int base = (p / hw) * c * hw + p % hw;
  __global const float *yp = AT(y) + base;
  __global const float *gp = AT(dy) + base;
  __global float *dp = AT(dx) + base;
  float sum = 0.0f;
  for (int k = 0; k < c; k++) sum += gp[k * hw];
  for (int k = 0; k < c; k++) dp[k * hw] += gp[k * hw] - exp(yp[k * hw]) * sum;
}

/* ---- row softmax: x (rows, cols), one work-group per row ---- */

/* The grid is exactly rows work-groups, so every work-item of a group takes
 * the same path through the barriers. Work-items read float4 groups (SIMD on
 * CPUs); the row's last cols % 4 values go to the first work-items. */
float max4(const float4 v) { return fmax(fmax(v.x, v.y), fmax(v.z, v.w)); }
float sum4(const float4 v) { return (v.x + v.y) + (v.z + v.w); }

__kernel void softmax_rows_fwd(const int cols, CTENSOR(x), TENSOR(y), __local float *scratch) {
  const int row = get_group_id(0);
  const int lid = get_local_id(0), ls = get_local_size(0);
  const int c4 = cols / 4;
  __global const float *xr = AT(x) + row * cols;
  __global float *yr = AT(y) + row * cols;
  float4 m4 = -INFINITY;
  float m = -INFINITY;
  for (int j = lid; j < c4; j += ls) m4 = fmax(m4, vload4(j, xr));
  for (int j = 4 * c4 + lid; j < cols; j += ls) m = fmax(m, xr[j]);
  m = group_max(fmax(m, max4(m4)), scratch);
  /* y = exp(x - m) first, scaled by 1 / sum below: one exp per value. Each
   * work-item reads x[j] before writing y[j], so in place is safe. */
  float4 s4 = 0.0f;
  float s = 0.0f;
  for (int j = lid; j < c4; j += ls) {
    const float4 e = exp(vload4(j, xr) - m);
    vstore4(e, j, yr);
    s4 += e;
  }
  for (int j = 4 * c4 + lid; j < cols; j += ls) {
    const float e = exp(xr[j] - m);
    yr[j] = e;
    s += e;
  }
  s = group_sum(s + sum4(s4), scratch);
  const float inv = 1.0f / s;
  for (int j = lid; j < c4; j += ls) vstore4(vload4(j, yr) * inv, j, yr);
  for (int j = 4 * c4 + lid; j < cols; j += ls) yr[j] *= inv;
}

__kernel void softmax_rows_bwd_x(const int cols, CTENSOR(y), CTENSOR(dy), TENSOR(dx), __local float *scratch) {
  const int row = get_group_id(0);
  const int lid = get_local_id(0), ls = get_local_size(0);
  const int c4 = cols / 4;
  __global const float *yr = AT(y) + row * cols;
  __global const float *gr = AT(dy) + row * cols;
  __global float *dr = AT(dx) + row * cols;
  float4 dot4 = 0.0f;
  float dot = 0.0f;
  for (int j = lid; j < c4; j += ls) dot4 += vload4(j, gr) * vload4(j, yr);
  for (int j = 4 * c4 + lid; j < cols; j += ls) dot += gr[j] * yr[j];
  dot = group_sum(dot + sum4(dot4), scratch);
  for (int j = lid; j < c4; j += ls) {
    const float4 yv = vload4(j, yr);
    vstore4(vload4(j, dr) + yv * (vload4(j, gr) - dot), j, dr);
  }
  for (int j = 4 * c4 + lid; j < cols; j += ls) dr[j] += yr[j] * (gr[j] - dot);
}

/* ---- cross-entropy with an ignore label ---- */

/* The class of a label, -1 when ignored, -2 when invalid. Range-checked as
 * a float first: converting an out-of-range float to int is undefined. */
int ce_class(const float label, const float ignore, const int c) {
  if (label == ignore) return -1;
  if (!(label >= 0.0f && label < (float)c)) return -2; /* NaN lands here too */
  return (int)label;
}

/* Up to CE_MAX_C classes, a pixel's exps are computed once and kept in
 * private memory (exp is what bounds these kernels on CPUs); beyond it they
 * are recomputed. Returns the pixel's max logit; e[k] = exp(x_k - max). */
#ifndef CE_MAX_C
#define CE_MAX_C 32
#endif
float ce_exps(__global const float *xp, const int c, const int hw, float *e) {
  float m = -INFINITY;
  for (int k = 0; k < c; k++) m = fmax(m, xp[k * hw]);
  if (c <= CE_MAX_C)
    for (int k = 0; k < c; k++) e[k] = exp(xp[k * hw] - m);
  return m;
}

/* Pass 1: a fixed grid of work-groups, each work-item strides over pixels
 * in a fixed order; each group writes its partial loss sum and count. */
__kernel void cross_entropy_fwd_partial(const int npix, const int c, const int hw, CTENSOR(x), CTENSOR(label),
                                        const float ignore, TENSOR(part_loss), __global int *part_count_base,
                                        const int part_count_off, __local float *fscratch,
                                        __local int *iscratch) {
  float loss = 0.0f;
  int count = 0;
  for (int p = get_global_id(0); p < npix; p += get_global_size(0)) {
    const int cls = ce_class(AT(label)[p], ignore, c);
    if (cls == -1) continue;
    if (cls == -2) {
      loss += NAN;
      continue;
    }
    __global const float *xp = AT(x) + (p / hw) * c * hw + p % hw;
    float e[CE_MAX_C];
    const float m = ce_exps(xp, c, hw, e);
    float s = 0.0f;
    for (int k = 0; k < c; k++) s += c <= CE_MAX_C ? e[k] : exp(xp[k * hw] - m);
    loss += m + log(s) - xp[cls * hw];
    count++;
  }
  loss = group_sum(loss, fscratch);
  count = group_sum_int(count, iscratch);
  if (get_local_id(0) == 0) {
    AT(part_loss)[get_group_id(0)] = loss;
    part_count_base[part_count_off + get_group_id(0)] = count;
  }
}

/* Pass 2: one work-group sums the partials in a fixed order. */
__kernel void cross_entropy_fwd_final(const int groups, CTENSOR(part_loss), __global const int *part_count_base,
                                      const int part_count_off, TENSOR(loss), TENSOR(count),
                                      __local float *fscratch, __local int *iscratch) {
  float l = 0.0f;
  int n = 0;
  for (int g = get_local_id(0); g < groups; g += get_local_size(0)) {
    l += AT(part_loss)[g];
    n += part_count_base[part_count_off + g];
  }
  l = group_sum(l, fscratch);
  n = group_sum_int(n, iscratch);
  if (get_local_id(0) == 0) {
    /* No valid pixel: l is 0 (or NaN from an invalid label), never 0/0. */
    AT(loss)[0] = n > 0 ? l / (float)n : l;
    AT(count)[0] = (float)n;
  }
}

/* dx += scale * (softmax(x) - onehot(label)) / max(count, 1); one work-item per pixel. */
__kernel void cross_entropy_bwd_x(const int npix, const int c, const int hw, CTENSOR(x), CTENSOR(label),
                                  const float ignore, CTENSOR(count), const float scale, TENSOR(dx)) {
  const int p = get_global_id(0);
  if (p >= npix) return;
  const int cls = ce_class(AT(label)[p], ignore, c);
  if (cls < 0) return;
  const int base = (p / hw) * c * hw + p % hw;
  __global const float *xp = AT(x) + base;
  __global float *dp = AT(dx) + base;
  const float k_scale = scale / fmax(AT(count)[0], 1.0f);
  float e[CE_MAX_C];
  const float m = ce_exps(xp, c, hw, e);
  float s = 0.0f;
  for (int k = 0; k < c; k++) s += c <= CE_MAX_C ? e[k] : exp(xp[k * hw] - m);
  const float inv = 1.0f / s;
  for (int k = 0; k < c; k++) {
    const float prob = (c <= CE_MAX_C ? e[k] : exp(xp[k * hw] - m)) * inv;
    dp[k * hw] += k_scale * (prob - (k == cls ? 1.0f : 0.0f));
  }
}
