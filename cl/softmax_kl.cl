/* Pixel-wise distillation (METHOD.md section 2): per pixel of an NCHW logit
 * grid, teacher softmax and student log-softmax over the C channels at
 * temperature tau, the cross-entropy -sum_c pT log pS (the reference code's
 * value), the true KL as a diagnostic, and the student's gradient, fused in
 * one pass. The loss is a two-pass reduction: each work-group of the fused
 * kernel reduces its pixels, softmax_kl_sum adds the group partials in one
 * work-group (deterministic; no float atomics).
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

/* The same for eight neighbouring pixels of one sample (explicit float8:
 * AVX-width SIMD on CPUs: 1.5x over float4 on PoCL here; float16 gained
 * nothing more. 32-byte loads on GPUs). */
static void softmax_stats8(__global const float *z, const int c, const int hw, const float tau, float8 *m,
                           float8 *lse) {
  float8 mx = vload8(0, z) / tau;
  for (int k = 1; k < c; k++) mx = fmax(mx, vload8(0, z + k * hw) / tau);
  float8 s = 0.0f;
  for (int k = 0; k < c; k++) s += exp(vload8(0, z + k * hw) / tau - mx);
  *m = mx;
  *lse = log(s);
}

#ifndef KL_MAX_C
#define KL_MAX_C 32 /* classes whose exps stay in private memory; more are recomputed */
#endif

/* softmax_stats8 that also keeps, per class, u_k = z_k / tau - max and
 * e_k = exp(u_k) (c <= KL_MAX_C), and gives 1 / sum_k e_k: the class loop
 * then needs no exp of its own (one exp per logit in all). */
static void softmax_stats8_keep(__global const float *z, const int c, const int hw, const float tau, float8 *u,
                                float8 *e, float8 *lse, float8 *inv_sum) {
  float8 mx = vload8(0, z) / tau;
  u[0] = mx;
  for (int k = 1; k < c; k++) {
    u[k] = vload8(0, z + k * hw) / tau;
    mx = fmax(mx, u[k]);
  }
  float8 s = 0.0f;
  for (int k = 0; k < c; k++) {
    u[k] -= mx;
    e[k] = exp(u[k]);
    s += e[k];
  }
  *lse = log(s);
  *inv_sum = 1.0f / s;
}

/* One pixel (the scalar path): adds tau^2 CE_p / norm and tau^2 KL_p / norm
 * to *ce_sum, *kl_sum and accumulates the gradient when want_grad. */
static void pixel_term(__global const float *zs, __global const float *zt, __global float *ds, const int c,
                       const int hw, const float tau, const float norm, const float grad_scale, const int want_grad,
                       float *ce_sum, float *kl_sum) {
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
    if (want_grad) ds[k * hw] += gcoef * (exp(log_ps) - pt);
  }
  const float scale = tau * tau / norm;
  *ce_sum += scale * ce;
  *kl_sum += scale * kl;
}

/* Grid (work-item per 8 positions of a sample's plane, sample); local size
 * (power of two, 1). The divisor is fixed_norm, or max(valid count, 1) read
 * from the device when use_count (mean over valid pixels: the count is only
 * known there).
 * labels: (n, 1, h, w) float class ids, read only when use_labels; a pixel
 *   whose label equals ignore_label contributes nothing (loss, KL, gradient).
 * Each work-group writes the sum over its pixels of tau^2 CE_p / norm to
 *   part[g] and of tau^2 KL_p / norm to part[groups + g], g its linear group
 *   index (a fixed-order tree: deterministic); softmax_kl_sum adds those.
 * When want_grad, dstudent += grad_scale * tau * (pS - pT) / norm
 *   (d/dz of tau^2 * CE(z / tau) is tau^2 * (pS - pT) / tau). */
__kernel void softmax_kl_fwd(const int n, const int c, const int hw, const float tau, CTENSOR(student),
                             CTENSOR(teacher), CTENSOR(labels), const int use_labels, const float ignore_label,
                             const float fixed_norm, __global const int *count_base, const int count_off,
                             const int use_count, const float grad_scale, TENSOR(dstudent), const int want_grad,
                             __global float *part_base, const int part_off, __local float *scratch) {
  const int pos = 8 * get_global_id(0), b = get_global_id(1);
  float ce = 0.0f, kl = 0.0f;
  /* No early return: every work-item reaches the reduction's barriers. */
  if (pos < hw && b < n) {
    const float norm = use_count ? (float)max(count_base[count_off], 1) : fixed_norm;
    const int base = b * c * hw + pos;
    __global const float *zs = AT(student) + base;
    __global const float *zt = AT(teacher) + base;
    __global float *ds = AT(dstudent) + base;
    __global const float *lab = AT(labels) + b * hw + pos;
    if (pos + 8 <= hw) {
      /* Ignored pixels are computed and then dropped by select (never
       * multiplied: their logits may be anything). */
      const int8 valid = use_labels ? vload8(0, lab) != ignore_label : (int8)(-1);
      float8 mt, lset, ms, lses;
      const float gcoef = grad_scale * tau / norm;
      float8 ce8 = 0.0f, kl8 = 0.0f;
      if (c <= KL_MAX_C) {
        /* pT = e / sum e: the same log-probabilities as below, one exp per
         * logit. No contraction here: pS - pT must be exactly 0 for equal
         * logits, which an fma of one product against the other breaks. */
#pragma OPENCL FP_CONTRACT OFF
        float8 ut[KL_MAX_C], et[KL_MAX_C], us[KL_MAX_C], es[KL_MAX_C], inv_t, inv_s;
        softmax_stats8_keep(zt, c, hw, tau, ut, et, &lset, &inv_t);
        softmax_stats8_keep(zs, c, hw, tau, us, es, &lses, &inv_s);
        for (int k = 0; k < c; k++) {
          const float8 log_pt = ut[k] - lset;
          const float8 log_ps = us[k] - lses;
          const float8 pt = et[k] * inv_t;
          ce8 -= pt * log_ps;
          kl8 += pt * (log_pt - log_ps);
          if (want_grad) {
            const float8 g = select((float8)0.0f, gcoef * (es[k] * inv_s - pt), valid);
            vstore8(vload8(0, ds + k * hw) + g, 0, ds + k * hw);
          }
        }
      } else {
        softmax_stats8(zt, c, hw, tau, &mt, &lset);
        softmax_stats8(zs, c, hw, tau, &ms, &lses);
        for (int k = 0; k < c; k++) {
          const float8 log_pt = vload8(0, zt + k * hw) / tau - mt - lset;
          const float8 log_ps = vload8(0, zs + k * hw) / tau - ms - lses;
          const float8 pt = exp(log_pt);
          ce8 -= pt * log_ps;
          kl8 += pt * (log_pt - log_ps);
          if (want_grad) {
            const float8 g = select((float8)0.0f, gcoef * (exp(log_ps) - pt), valid);
            vstore8(vload8(0, ds + k * hw) + g, 0, ds + k * hw);
          }
        }
      }
      const float scale = tau * tau / norm;
      ce8 = select((float8)0.0f, scale * ce8, valid);
      kl8 = select((float8)0.0f, scale * kl8, valid);
      ce = ((ce8.s0 + ce8.s1) + (ce8.s2 + ce8.s3)) + ((ce8.s4 + ce8.s5) + (ce8.s6 + ce8.s7));
      kl = ((kl8.s0 + kl8.s1) + (kl8.s2 + kl8.s3)) + ((kl8.s4 + kl8.s5) + (kl8.s6 + kl8.s7));
    } else {
      for (int i = 0; i < hw - pos; i++)
        if (!use_labels || lab[i] != ignore_label)
          pixel_term(zs + i, zt + i, ds + i, c, hw, tau, norm, grad_scale, want_grad, &ce, &kl);
    }
  }
  ce = group_sum(ce, scratch);
  kl = group_sum(kl, scratch);
  if (get_local_id(0) == 0) {
    __global float *part = part_base + part_off;
    const int g = get_group_id(1) * get_num_groups(0) + get_group_id(0);
    const int groups = get_num_groups(0) * get_num_groups(1);
    part[g] = ce;
    part[groups + g] = kl;
  }
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

/* loss = sum of the group partials part[0 .. total), kl = sum of part[total
 * .. 2 total) (total: softmax_kl_fwd's group count), in one work-group of a
 * power-of-two size: a fixed order, so every run gives the same bits. */
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
