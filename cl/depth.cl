/* Depth over log10 bins (include/skd/loss/depth.h): the soft-target
 * cross-entropy task loss with its gradient, and bins -> metric depth with
 * its backward. Pixel p = b * hw + i; its logits sit at b * c * hw + k * hw + i.
 * The loss is reduced in fixed order (group partials, then one group):
 * deterministic, no float atomics. */

#define LN10 2.302585093f

/* A depth counts when it is a finite number > 0 (0 marks missing). */
static int depth_valid(const float d) { return d > 0.0f && d < INFINITY; }

/* The target bin of a valid depth, clamped to [0, c - 1]. */
static int depth_bin(const float d, const float log_min, const float inv_width, const int c) {
  const int j = (int)floor((log10(d) - log_min) * inv_width);
  return clamp(j, 0, c - 1);
}

/* Valid pixels of the batch, in one work-group (integers: exact). */
__kernel void depth_count(const int total, CTENSOR(depth), __global int *count_base, const int count_off,
                          __local int *scratch) {
  int acc = 0;
  for (int p = get_local_id(0); p < total; p += get_local_size(0)) acc += depth_valid(AT(depth)[p]);
  const int v = group_sum_int(acc, scratch);
  if (get_local_id(0) == 0) count_base[count_off] = v;
}

/* One pixel (the scalar path): its cross-entropy against the soft target,
 * and dz += gs (softmax - q) when want_grad. */
static float pixel_ce(__global const float *zp, __global float *dzp, const int c, const int hw, const int j,
                      const float gs, const int want_grad) {
  float m = zp[0];
  for (int k = 1; k < c; k++) m = fmax(m, zp[k * hw]);
  float s = 0.0f, qs = 0.0f, qz = 0.0f;
  for (int k = 0; k < c; k++) {
    const float g = exp(-0.2f * (float)((k - j) * (k - j)));
    s += exp(zp[k * hw] - m);
    qs += g;
    qz += g * zp[k * hw];
  }
  const float lse = m + log(s);
  if (want_grad)
    for (int k = 0; k < c; k++)
      dzp[k * hw] += gs * (exp(zp[k * hw] - lse) - exp(-0.2f * (float)((k - j) * (k - j))) / qs);
  /* -sum q_k (z_k - lse) = lse - sum q_k z_k, since sum q_k = 1. */
  return lse - qz / qs;
}

/* Work-item (x, b) takes positions 8x .. 8x + 7 of sample b's plane as one
 * float8 (explicit SIMD: PoCL did not vectorise a one-pixel-per-item
 * version, which was 3.5x slower per call; skd-cl --profile bench --task
 * depth); the last partial run of a plane goes pixel by pixel. Each pixel's
 * cross-entropy is left in the group partial (divided by V later); the
 * gradient is grad_scale (softmax - q) / V. */
__kernel void depth_ce_fwd(const int c, const int hw, CTENSOR(z), CTENSOR(depth), const float log_min,
                           const float inv_width, __global const int *count_base, const int count_off,
                           const float grad_scale, TENSOR(dz), const int want_grad, __global float *part_base,
                           const int part_off, __local float *scratch) {
  const int b = get_global_id(1), pos = 8 * get_global_id(0);
  const float gs = want_grad ? grad_scale / (float)max(count_base[count_off], 1) : 0.0f;
  __global const float *zp = AT(z) + b * c * hw + pos;
  __global float *dzp = AT(dz) + (want_grad ? b * c * hw + pos : 0);
  __global const float *dp = AT(depth) + b * hw + pos;
  float loss = 0.0f;
  if (pos + 8 <= hw) {
    const float8 d = vload8(0, dp);
    const int8 valid = isgreater(d, (float8)0.0f) & isless(d, (float8)INFINITY);
    const float8 safe = select((float8)1.0f, d, valid);
    const int8 j = clamp(convert_int8_rtn((log10(safe) - log_min) * inv_width), 0, c - 1);
    float8 m = vload8(0, zp);
    for (int k = 1; k < c; k++) m = fmax(m, vload8(0, zp + k * hw));
    float8 s = 0.0f, qs = 0.0f, qz = 0.0f;
    for (int k = 0; k < c; k++) {
      const float8 zk = vload8(0, zp + k * hw), o = convert_float8(k - j);
      const float8 g = exp(-0.2f * o * o);
      s += exp(zk - m);
      qs += g;
      qz += g * zk;
    }
    const float8 lse = m + log(s), ce = select((float8)0.0f, lse - qz / qs, valid);
    loss = ((ce.s0 + ce.s1) + (ce.s2 + ce.s3)) + ((ce.s4 + ce.s5) + (ce.s6 + ce.s7));
    if (want_grad)
      for (int k = 0; k < c; k++) {
        const float8 zk = vload8(0, zp + k * hw), o = convert_float8(k - j);
        const float8 g = gs * (exp(zk - lse) - exp(-0.2f * o * o) / qs);
        vstore8(vload8(0, dzp + k * hw) + select((float8)0.0f, g, valid), 0, dzp + k * hw);
      }
  } else {
    for (int i = 0; i < hw - pos; i++)
      if (depth_valid(dp[i]))
        loss += pixel_ce(zp + i, dzp + i, c, hw, depth_bin(dp[i], log_min, inv_width, c), gs, want_grad);
  }
  loss = group_sum(loss, scratch);
  if (get_local_id(0) == 0) {
    const int g = get_group_id(1) * get_num_groups(0) + get_group_id(0);
    part_base[part_off + g] = loss;
  }
}

/* loss = (sum of the group partials) / V, in one work-group; 0 when V = 0. */
__kernel void depth_ce_sum(const int groups, __global const float *part_base, const int part_off,
                           __global const int *count_base, const int count_off, TENSOR(loss),
                           __local float *scratch) {
  float acc = 0.0f;
  for (int g = get_local_id(0); g < groups; g += get_local_size(0)) acc += part_base[part_off + g];
  acc = group_sum(acc, scratch);
  if (get_local_id(0) == 0) {
    const int v = count_base[count_off];
    AT(loss)[0] = v > 0 ? acc / (float)v : 0.0f;
  }
}

/* Expected log10 depth e = sum softmax_k centre_k of one pixel; *m and *lse
 * are the softmax's max and log-sum-exp. */
static float expected_log(__global const float *zp, const int c, const int hw, const float log_min,
                          const float width, float *lse) {
  float m = zp[0];
  for (int k = 1; k < c; k++) m = fmax(m, zp[k * hw]);
  float s = 0.0f, e = 0.0f;
  for (int k = 0; k < c; k++) {
    const float w = exp(zp[k * hw] - m);
    s += w;
    e += w * (log_min + width * ((float)k + 0.5f));
  }
  *lse = m + log(s);
  return e / s;
}

__kernel void depth_from_bins(const int total, const int c, const int hw, CTENSOR(z), const float log_min,
                              const float width, TENSOR(out)) {
  const int p = get_global_id(0);
  if (p >= total) return;
  const int b = p / hw, i = p - b * hw;
  float lse;
  const float e = expected_log(AT(z) + b * c * hw + i, c, hw, log_min, width, &lse);
  AT(out)[p] = exp(LN10 * e);
}

/* dz_k += ddepth * depth * ln10 * softmax_k (centre_k - e). */
__kernel void depth_from_bins_bwd(const int total, const int c, const int hw, CTENSOR(z), const float log_min,
                                  const float width, CTENSOR(depth), CTENSOR(ddepth), TENSOR(dz)) {
  const int p = get_global_id(0);
  if (p >= total) return;
  const int b = p / hw, i = p - b * hw;
  __global const float *zp = AT(z) + b * c * hw + i;
  float lse;
  const float e = expected_log(zp, c, hw, log_min, width, &lse);
  const float g = AT(ddepth)[p] * AT(depth)[p] * LN10;
  __global float *dzp = AT(dz) + b * c * hw + i;
  for (int k = 0; k < c; k++)
    dzp[k * hw] += g * exp(zp[k * hw] - lse) * (log_min + width * ((float)k + 0.5f) - e);
}
