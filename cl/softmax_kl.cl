/* Pixel-wise distillation (METHOD.md section 2): per pixel of an NCHW logit
 * grid, teacher softmax and student log-softmax over the C channels at
 * temperature tau, the cross-entropy -sum_c pT log pS (the reference code's
 * value), the true KL as a diagnostic, and the student's gradient, fused in
 * one pass. Per-pixel values go to a workspace that softmax_kl_sum reduces
 * in one work-group (deterministic; no float atomics).
 *
 * Pixel p = b * hw + i (b: sample, i: position); its logits sit at
 * b * c * hw + k * hw + i, so neighbouring work-items read neighbouring
 * floats for every class k. */

/* max_k z_k / tau and log sum_k exp(z_k / tau - max) over one pixel.
 * Teacher and student go through this same function, so identical logits
 * give bit-identical log-probabilities (and a zero gradient). */
static void softmax_stats(__global const float *z, const int c, const int hw, const float tau, float *m,
                          float *lse) {
  float mx = z[0] / tau;
  for (int k = 1; k < c; k++) mx = fmax(mx, z[k * hw] / tau);
  float s = 0.0f;
  for (int k = 0; k < c; k++) s += exp(z[k * hw] / tau - mx);
  *m = mx;
  *lse = log(s); /* s >= 1: the max term contributes exp(0) */
}

/* One work-item per pixel (total = n * hw pixels).
 * labels: (n, 1, h, w) float class ids, read only when use_labels; a pixel
 *   whose label equals ignore_label contributes nothing (loss, KL, gradient).
 * The divisor is fixed_norm, or max(valid count, 1) read from the device
 *   when use_count (mean over valid pixels: the count is known only there).
 * Writes pixel[p] = tau^2 * CE_p / norm and pixel[total + p] = tau^2 * KL_p
 *   / norm, and when want_grad accumulates
 *   dstudent += grad_scale * tau * (pS - pT) / norm
 *   (d/dz of tau^2 * CE(z / tau) is tau^2 * (pS - pT) / tau). */
__kernel void softmax_kl_fwd(const int n, const int c, const int hw, const float tau, CTENSOR(student),
                             CTENSOR(teacher), CTENSOR(labels), const int use_labels, const float ignore_label,
                             const float fixed_norm, __global const int *count_base, const int count_off,
                             const int use_count, const float grad_scale, TENSOR(dstudent), const int want_grad,
                             __global float *pixel_base, const int pixel_off) {
  const int p = get_global_id(0);
  const int total = n * hw;
  if (p >= total) return;
  __global float *pixel = pixel_base + pixel_off;
  if (use_labels && AT(labels)[p] == ignore_label) {
    pixel[p] = 0.0f;
    pixel[total + p] = 0.0f;
    return;
  }
  const int b = p / hw;
  const int base = b * c * hw + (p - b * hw);
  __global const float *zs = AT(student) + base;
  __global const float *zt = AT(teacher) + base;
  const float norm = use_count ? (float)max(count_base[count_off], 1) : fixed_norm;

  float mt, lset, ms, lses;
  softmax_stats(zt, c, hw, tau, &mt, &lset);
  softmax_stats(zs, c, hw, tau, &ms, &lses);
  const float gcoef = grad_scale * tau / norm;
  float ce = 0.0f, kl = 0.0f;
  for (int k = 0; k < c; k++) {
    const float log_pt = zt[k * hw] / tau - mt - lset;
    const float log_ps = zs[k * hw] / tau - ms - lses;
    /* Both logs are finite (>= -(range of z / tau) - log C); a pT that
     * underflows to 0 adds exactly 0, never 0 * inf. */
    const float pt = exp(log_pt);
    ce -= pt * log_ps;
    kl += pt * (log_pt - log_ps);
    if (want_grad) AT(dstudent)[base + k * hw] += gcoef * (exp(log_ps) - pt);
  }
  const float scale = tau * tau / norm;
  pixel[p] = scale * ce;
  pixel[total + p] = scale * kl;
}

/* Number of pixels whose label differs from ignore_label, in one work-group
 * (integers: exact and order-independent). */
__kernel void softmax_kl_count(const int total, CTENSOR(labels), const float ignore_label,
                               __global int *count_base, const int count_off, __local int *scratch) {
  const int lid = get_local_id(0);
  const int lsize = get_local_size(0);
  int acc = 0;
  for (int p = lid; p < total; p += lsize) acc += AT(labels)[p] != ignore_label;
  scratch[lid] = acc;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = lsize / 2; s > 0; s >>= 1) {
    if (lid < s) scratch[lid] += scratch[lid + s];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (lid == 0) count_base[count_off] = scratch[0];
}

/* loss = sum of pixel[0 .. total), kl = sum of pixel[total .. 2 total), in
 * one work-group of a power-of-two size: a fixed order, so every run gives
 * the same bits. */
__kernel void softmax_kl_sum(const int total, __global const float *pixel_base, const int pixel_off, TENSOR(loss),
                             TENSOR(kl), const int want_kl, __local float *scratch) {
  const int lid = get_local_id(0);
  const int lsize = get_local_size(0);
  __global const float *pixel = pixel_base + pixel_off;
  float ce = 0.0f, d = 0.0f;
  for (int p = lid; p < total; p += lsize) {
    ce += pixel[p];
    d += pixel[total + p];
  }
  scratch[lid] = ce;
  scratch[lsize + lid] = d;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = lsize / 2; s > 0; s >>= 1) {
    if (lid < s) {
      scratch[lid] += scratch[lid + s];
      scratch[lsize + lid] += scratch[lsize + lid + s];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (lid == 0) {
    AT(loss)[0] = scratch[0];
    if (want_kl) AT(kl)[0] = scratch[lsize];
  }
}
