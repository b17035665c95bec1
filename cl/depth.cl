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

/* One work-item per pixel: its cross-entropy against the soft target (left
 * in the group partial, divided by V later), and the gradient
 * grad_scale (softmax - q) / V when want_grad. */
__kernel void depth_ce_fwd(const int total, const int c, const int hw, CTENSOR(z), CTENSOR(depth),
                           const float log_min, const float inv_width, __global const int *count_base,
                           const int count_off, const float grad_scale, TENSOR(dz), const int want_grad,
                           __global float *part_base, const int part_off, __local float *scratch) {
  const int p = get_global_id(0);
  float loss = 0.0f;
  if (p < total && depth_valid(AT(depth)[p])) {
    const int b = p / hw, i = p - b * hw;
    __global const float *zp = AT(z) + b * c * hw + i;
    const int j = depth_bin(AT(depth)[p], log_min, inv_width, c);
    float m = zp[0];
    for (int k = 1; k < c; k++) m = fmax(m, zp[k * hw]);
    float s = 0.0f, qs = 0.0f;
    for (int k = 0; k < c; k++) {
      s += exp(zp[k * hw] - m);
      qs += exp(-0.2f * (float)((k - j) * (k - j)));
    }
    const float lse = m + log(s);
    /* -sum q_k (z_k - lse) = lse - sum q_k z_k, since sum q_k = 1. */
    float qz = 0.0f;
    for (int k = 0; k < c; k++) qz += exp(-0.2f * (float)((k - j) * (k - j))) / qs * zp[k * hw];
    loss = lse - qz;
    if (want_grad) {
      const float g = grad_scale / (float)count_base[count_off];
      __global float *dzp = AT(dz) + b * c * hw + i;
      for (int k = 0; k < c; k++) {
        const float q = exp(-0.2f * (float)((k - j) * (k - j))) / qs;
        dzp[k * hw] += g * (exp(zp[k * hw] - lse) - q);
      }
    }
  }
  loss = group_sum(loss, scratch);
  if (get_local_id(0) == 0) part_base[part_off + get_group_id(0)] = loss;
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
