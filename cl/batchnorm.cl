/* BatchNorm2d (include/skd/ops/batchnorm.h). Per-channel reductions run one
 * work-group per channel with a fixed-order tree in local memory, so results
 * are deterministic. The work-group size is the launch's (a power of two);
 * the scratch area is a __local argument of that many floats.
 * Per-channel tensors are (1, C, 1, 1), i.e. C contiguous floats. */

#define BN_ACT_NONE 0
#define BN_ACT_RELU 1
#define BN_ACT_LEAKY_RELU 2

/* Loops run over the samples, then over the plane: no integer division per
 * element (a vectorising CPU compiler such as PoCL's turns one into a scalar
 * divide per lane, which cost more than the memory traffic). */

/* Sum of the four lanes in a fixed order. */
float bn_hsum(const float4 v) { return (v.x + v.y) + (v.z + v.w); }

#ifndef BN_BLOCK
#define BN_BLOCK 256 /* float4 groups per block of the one-pass statistics (4 KiB: stays in L1) */
#endif

/* Merges the statistics (count, mean, sum of squared deviations) of two
 * disjoint sets (Chan et al.): exact in exact arithmetic, and it never
 * subtracts large sums the way E[x^2] - E[x]^2 does. */
void bn_merge(float *cnt, float *mean, float *m2, const float cb, const float mb, const float m2b) {
  if (cb == 0.0f) return;
  const float n = *cnt + cb, delta = mb - *mean;
  *m2 += m2b + delta * delta * (*cnt * cb / n);
  *mean += delta * (cb / n);
  *cnt = n;
}

/* Training statistics of channel get_group_id(0) in one read of x: each
 * work-item walks its float4 groups of every plane in blocks of at most
 * BN_BLOCK, takes each block's mean and squared deviations in two passes
 * over the block (the second from cache) and merges the blocks; the
 * work-items' results are merged in a fixed tree (deterministic). A
 * work-item's groups are a contiguous run of the plane when `runs` (CPUs:
 * each core streams its own memory) or every wg-th group (GPUs: coalesced).
 * The plane's last hw % 4 values go to the first work-items (any group
 * size, 1 included). scratch: 3 wg. */
/* The channel's (mean, sum of squared deviations) into *mu, *ssd on
 * work-item 0 of the group. */
void bn_channel_stats(const int n, const int c, const int hw, const int runs, __global const float *xp,
                      __local float *scratch, float *mu_out, float *ssd_out) {
  const int ch = get_group_id(0);
  const int lid = get_local_id(0), wg = get_local_size(0);
  const int hw4 = hw / 4, tail = hw - 4 * hw4;
  /* this work-item's groups: first + k * step, k < count */
  const int per = (hw4 + wg - 1) / wg;
  const int first = runs ? lid * per : lid, step = runs ? 1 : wg;
  const int count = runs ? clamp(hw4 - lid * per, 0, per) : (hw4 > lid ? (hw4 - lid + wg - 1) / wg : 0);
  /* Statistics of x - shift, shift one of the channel's values: means then
   * sit near 0, where float resolves the block means' spread (around a
   * large common offset it would round it away). */
  const float shift = xp[ch * hw];
  float cnt = 0.0f, mean = 0.0f, m2 = 0.0f;
  for (int b = 0; b < n; b++) {
    __global const float *xs = xp + (b * c + ch) * hw;
    for (int k0 = 0; k0 < count; k0 += BN_BLOCK) {
      const int k1 = min(k0 + BN_BLOCK, count);
      float4 s4 = 0.0f;
      for (int k = k0; k < k1; k++) s4 += vload4(first + k * step, xs) - shift;
      const float cb = (float)(4 * (k1 - k0));
      const float mb = bn_hsum(s4) / cb;
      float4 d4 = 0.0f;
      for (int k = k0; k < k1; k++) {
        const float4 d = (vload4(first + k * step, xs) - shift) - mb;
        d4 += d * d;
      }
      bn_merge(&cnt, &mean, &m2, cb, mb, bn_hsum(d4));
    }
    for (int t = lid; t < tail; t += wg) bn_merge(&cnt, &mean, &m2, 1.0f, xs[4 * hw4 + t] - shift, 0.0f);
  }
  __local float *sc = scratch, *sm = scratch + wg, *sq = scratch + 2 * wg;
  sc[lid] = cnt;
  sm[lid] = mean;
  sq[lid] = m2;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = wg / 2; s > 0; s >>= 1) {
    if (lid < s) {
      float a = sc[lid], am = sm[lid], aq = sq[lid];
      bn_merge(&a, &am, &aq, sc[lid + s], sm[lid + s], sq[lid + s]);
      sc[lid] = a;
      sm[lid] = am;
      sq[lid] = aq;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  *mu_out = shift + sm[0];
  *ssd_out = sq[0];
}

__kernel void batchnorm_stats_fwd(const int n, const int c, const int hw, const int runs, const float eps,
                                  const float momentum, CTENSOR(x), TENSOR(running_mean), TENSOR(running_var),
                                  TENSOR(save_mean), TENSOR(save_invstd), __local float *scratch) {
  const int ch = get_group_id(0), m = n * hw;
  float mu, ssd;
  bn_channel_stats(n, c, hw, runs, AT(x), scratch, &mu, &ssd);
  if (get_local_id(0) == 0) {
    const float var = ssd / (float)m;
    AT(save_mean)[ch] = mu;
    AT(save_invstd)[ch] = 1.0f / sqrt(var + eps);
    AT(running_mean)[ch] = (1.0f - momentum) * AT(running_mean)[ch] + momentum * mu;
    AT(running_var)[ch] = (1.0f - momentum) * AT(running_var)[ch] + momentum * (ssd / (float)(m - 1));
  }
}

/* Synchronised batch norm: this rank's (mean, sum of squared deviations)
 * per channel into part[ch], part[c + ch]; the host merges the ranks'. */
__kernel void batchnorm_stats_part(const int n, const int c, const int hw, const int runs, CTENSOR(x),
                                   TENSOR(part), __local float *scratch) {
  const int ch = get_group_id(0);
  float mu, ssd;
  bn_channel_stats(n, c, hw, runs, AT(x), scratch, &mu, &ssd);
  if (get_local_id(0) == 0) {
    AT(part)[ch] = mu;
    AT(part)[c + ch] = ssd;
  }
}

/* ... and the merged statistics over m values (all ranks) finish as
 * batchnorm_stats_fwd does. */
__kernel void batchnorm_stats_finish(const int c, const int m, const float eps, const float momentum,
                                     CTENSOR(merged), TENSOR(running_mean), TENSOR(running_var),
                                     TENSOR(save_mean), TENSOR(save_invstd)) {
  const int ch = get_global_id(0);
  if (ch >= c) return;
  const float mu = AT(merged)[ch], ssd = AT(merged)[c + ch];
  AT(save_mean)[ch] = mu;
  AT(save_invstd)[ch] = 1.0f / sqrt(ssd / (float)m + eps);
  AT(running_mean)[ch] = (1.0f - momentum) * AT(running_mean)[ch] + momentum * mu;
  AT(running_var)[ch] = (1.0f - momentum) * AT(running_var)[ch] + momentum * (ssd / (float)(m - 1));
}

/* Eval statistics: the running ones, in the form the apply kernel takes. */
__kernel void batchnorm_eval_stats_fwd(const int c, const float eps, CTENSOR(running_mean), CTENSOR(running_var),
                                       TENSOR(save_mean), TENSOR(save_invstd)) {
  const int ch = get_global_id(0);
  if (ch >= c) return;
  AT(save_mean)[ch] = AT(running_mean)[ch];
  AT(save_invstd)[ch] = 1.0f / sqrt(AT(running_var)[ch] + eps);
}

/* y = act((x - mean) * invstd * gamma + beta); y may be x. A 3-D grid
 * (group of 4 * per positions in the plane, channel, sample): no division
 * per element, the channel's values loaded once per work-item, and explicit
 * float4 arithmetic, which a CPU runs as SIMD even where its compiler does
 * not vectorise the work-item loop (about 3x on PoCL); `per` float4 groups
 * per work-item amortise a CPU's per-work-item cost (the host picks 1 for
 * GPUs). The plane's last hw % 4 positions take the scalar path. */
float bn_act(const int act, const float slope, float v) {
  if (act == BN_ACT_RELU) v = fmax(v, 0.0f);
  if (act == BN_ACT_LEAKY_RELU && v < 0.0f) v *= slope;
  return v;
}

__kernel void batchnorm_apply_fwd(const int n, const int c, const int hw, const int per, const int act,
                                  const float slope, CTENSOR(x), CTENSOR(mean), CTENSOR(invstd), CTENSOR(gamma),
                                  CTENSOR(beta), TENSOR(y)) {
  const int pos0 = 4 * per * get_global_id(0), ch = get_global_id(1), b = get_global_id(2);
  if (pos0 >= hw || ch >= c || b >= n) return;
  const float scale = AT(invstd)[ch] * AT(gamma)[ch];
  const float shift = AT(beta)[ch] - AT(mean)[ch] * scale;
  const int plane = (b * c + ch) * hw;
  for (int q = 0, pos = pos0; q < per && pos < hw; q++, pos += 4) {
    const int i = plane + pos;
    if (pos + 4 <= hw) {
      float4 v = vload4(0, AT(x) + i) * scale + shift;
      if (act == BN_ACT_RELU) v = fmax(v, 0.0f);
      if (act == BN_ACT_LEAKY_RELU) v = select(v, v * slope, v < 0.0f);
      vstore4(v, 0, AT(y) + i);
    } else {
      for (int k = 0; k < hw - pos; k++) AT(y)[i + k] = bn_act(act, slope, AT(x)[i + k] * scale + shift);
    }
  }
}

/* Gradient with respect to the pre-activation value. The output's sign is
 * the pre-activation's (slope >= 0), so y gives the mask. */
float bn_pre_grad(const int act, const float slope, const float g, const float y) {
  if (act == BN_ACT_NONE || y > 0.0f) return g;
  return act == BN_ACT_RELU ? 0.0f : slope * g;
}

float4 bn_pre_grad4(const int act, const float slope, const float4 g, const float4 y) {
  if (act == BN_ACT_NONE) return g;
  return select(act == BN_ACT_RELU ? (float4)0.0f : slope * g, g, y > 0.0f);
}

/* Per channel: sum_g = sum of g, sum_gx = sum of g * xhat (g: gradient of
 * the pre-activation) into sums[ch] and sums[c + ch]; dbeta += sum_g and
 * dgamma += sum_gx when wanted. float4 groups, runs, as batchnorm_stats_fwd. */
__kernel void batchnorm_bwd_params(const int n, const int c, const int hw, const int act, const float slope,
                                   CTENSOR(x), CTENSOR(y), CTENSOR(mean), CTENSOR(invstd), CTENSOR(dy),
                                   TENSOR(sums), const int want_dgamma, TENSOR(dgamma), const int want_dbeta,
                                   TENSOR(dbeta), const int runs, __local float *scratch) {
  const int ch = get_group_id(0);
  const int lid = get_local_id(0), wg = get_local_size(0);
  const int hw4 = hw / 4, tail = hw - 4 * hw4;
  /* the work-item's groups as in batchnorm_stats_fwd: first + k * step */
  const int per = (hw4 + wg - 1) / wg;
  const int first = runs ? lid * per : lid, step = runs ? 1 : wg;
  const int count = runs ? clamp(hw4 - lid * per, 0, per) : (hw4 > lid ? (hw4 - lid + wg - 1) / wg : 0);
  const float mu = AT(mean)[ch], is = AT(invstd)[ch];
  float4 sg4 = 0.0f, sgx4 = 0.0f;
  float sg = 0.0f, sgx = 0.0f;
  for (int b = 0; b < n; b++) {
    const int base = (b * c + ch) * hw;
    __global const float *xs = AT(x) + base;
    __global const float *ys = AT(y) + base;
    __global const float *gs = AT(dy) + base;
    for (int k = 0; k < count; k++) {
      const int i = first + k * step;
      const float4 yv = act == BN_ACT_NONE ? (float4)0.0f : vload4(i, ys);
      const float4 g = bn_pre_grad4(act, slope, vload4(i, gs), yv);
      sg4 += g;
      sgx4 += g * ((vload4(i, xs) - mu) * is);
    }
    for (int t = lid; t < tail; t += wg) {
      const int j = 4 * hw4 + t;
      const float yv = act == BN_ACT_NONE ? 0.0f : ys[j];
      const float g = bn_pre_grad(act, slope, gs[j], yv);
      sg += g;
      sgx += g * ((xs[j] - mu) * is);
    }
  }
  sg = group_sum(sg + bn_hsum(sg4), scratch);
  sgx = group_sum(sgx + bn_hsum(sgx4), scratch);
  if (lid == 0) {
    AT(sums)[ch] = sg;
    AT(sums)[c + ch] = sgx;
    if (want_dbeta) AT(dbeta)[ch] += sg;
    if (want_dgamma) AT(dgamma)[ch] += sgx;
  }
}

/* dx += gamma * invstd * (g - (sum_g + xhat * sum_gx) / M) in training;
 * dx += gamma * invstd * g with frozen statistics. The grid of
 * batchnorm_apply_fwd (4 positions per work-item). */
__kernel void batchnorm_bwd_x(const int n, const int c, const int hw, const int per, const int m,
                              const int training, const int act, const float slope, CTENSOR(x), CTENSOR(y),
                              CTENSOR(mean), CTENSOR(invstd), CTENSOR(gamma), CTENSOR(sums), CTENSOR(dy),
                              TENSOR(dx)) {
  const int pos0 = 4 * per * get_global_id(0), ch = get_global_id(1), b = get_global_id(2);
  if (pos0 >= hw || ch >= c || b >= n) return;
  const float is = AT(invstd)[ch], mu = AT(mean)[ch];
  const float k = AT(gamma)[ch] * is;
  /* training: g - (sum_g + xhat sum_gx) / M = g - a - xhat * bcoef */
  const float a = training ? AT(sums)[ch] / (float)m : 0.0f;
  const float bcoef = training ? AT(sums)[c + ch] / (float)m : 0.0f;
  const int plane = (b * c + ch) * hw;
  for (int q = 0, pos = pos0; q < per && pos < hw; q++, pos += 4) {
    const int i = plane + pos;
    if (pos + 4 <= hw) {
      const float4 yv = act == BN_ACT_NONE ? (float4)0.0f : vload4(0, AT(y) + i);
      float4 g = bn_pre_grad4(act, slope, vload4(0, AT(dy) + i), yv);
      if (training) g -= a + ((vload4(0, AT(x) + i) - mu) * is) * bcoef;
      vstore4(vload4(0, AT(dx) + i) + k * g, 0, AT(dx) + i);
    } else {
      for (int j = i; j < i + hw - pos; j++) {
        const float yv = act == BN_ACT_NONE ? 0.0f : AT(y)[j];
        float g = bn_pre_grad(act, slope, AT(dy)[j], yv);
        if (training) g -= a + ((AT(x)[j] - mu) * is) * bcoef;
        AT(dx)[j] += k * g;
      }
    }
  }
}
