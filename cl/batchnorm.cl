/* BatchNorm2d (include/skd/ops/batchnorm.h). Per-channel reductions run one
 * work-group per channel with a fixed-order tree in local memory, so results
 * are deterministic. The work-group size is the launch's (a power of two);
 * the scratch area is a __local argument of that many floats.
 * Per-channel tensors are (1, C, 1, 1), i.e. C contiguous floats. */

#define BN_ACT_NONE 0
#define BN_ACT_RELU 1
#define BN_ACT_LEAKY_RELU 2

/* Element i of the channel's M = n*hw values, in NCHW. */
int bn_index(const int i, const int ch, const int c, const int hw) {
  const int b = i / hw;
  return (b * c + ch) * hw + (i - b * hw);
}

/* Training statistics of channel get_group_id(0): mean, then the sum of
 * squared deviations (never E[x^2] - E[x]^2, which cancels badly). */
__kernel void batchnorm_stats_fwd(const int n, const int c, const int hw, const float eps, const float momentum,
                                  CTENSOR(x), TENSOR(running_mean), TENSOR(running_var), TENSOR(save_mean),
                                  TENSOR(save_invstd), __local float *scratch) {
  const int ch = get_group_id(0);
  const int lid = get_local_id(0), wg = get_local_size(0);
  const int m = n * hw;
  __global const float *xs = AT(x);
  float acc = 0.0f;
  for (int i = lid; i < m; i += wg) acc += xs[bn_index(i, ch, c, hw)];
  const float mean = group_sum(acc, scratch) / (float)m;
  acc = 0.0f;
  for (int i = lid; i < m; i += wg) {
    const float d = xs[bn_index(i, ch, c, hw)] - mean;
    acc += d * d;
  }
  const float ssd = group_sum(acc, scratch);
  if (lid == 0) {
    const float var = ssd / (float)m;
    AT(save_mean)[ch] = mean;
    AT(save_invstd)[ch] = 1.0f / sqrt(var + eps);
    AT(running_mean)[ch] = (1.0f - momentum) * AT(running_mean)[ch] + momentum * mean;
    AT(running_var)[ch] = (1.0f - momentum) * AT(running_var)[ch] + momentum * (ssd / (float)(m - 1));
  }
}

/* Eval statistics: the running ones, in the form the apply kernel takes. */
__kernel void batchnorm_eval_stats_fwd(const int c, const float eps, CTENSOR(running_mean), CTENSOR(running_var),
                                       TENSOR(save_mean), TENSOR(save_invstd)) {
  const int ch = get_global_id(0);
  if (ch >= c) return;
  AT(save_mean)[ch] = AT(running_mean)[ch];
  AT(save_invstd)[ch] = 1.0f / sqrt(AT(running_var)[ch] + eps);
}

/* y = act((x - mean) * invstd * gamma + beta); y may be x. */
__kernel void batchnorm_apply_fwd(const int total, const int c, const int hw, const int act, const float slope,
                                  CTENSOR(x), CTENSOR(mean), CTENSOR(invstd), CTENSOR(gamma), CTENSOR(beta),
                                  TENSOR(y)) {
  const int i = get_global_id(0);
  if (i >= total) return;
  const int ch = (i / hw) % c;
  float v = (AT(x)[i] - AT(mean)[ch]) * (AT(invstd)[ch] * AT(gamma)[ch]) + AT(beta)[ch];
  if (act == BN_ACT_RELU) v = fmax(v, 0.0f);
  if (act == BN_ACT_LEAKY_RELU && v < 0.0f) v *= slope;
  AT(y)[i] = v;
}

/* Gradient with respect to the pre-activation value. The output's sign is
 * the pre-activation's (slope >= 0), so y gives the mask. */
float bn_pre_grad(const int act, const float slope, const float g, const float y) {
  if (act == BN_ACT_NONE || y > 0.0f) return g;
  return act == BN_ACT_RELU ? 0.0f : slope * g;
}

/* Per channel: sum_g = sum of g, sum_gx = sum of g * xhat (g: gradient of
 * the pre-activation) into sums[ch] and sums[c + ch]; dbeta += sum_g and
 * dgamma += sum_gx when wanted. */
__kernel void batchnorm_bwd_params(const int n, const int c, const int hw, const int act, const float slope,
                                   CTENSOR(x), CTENSOR(y), CTENSOR(mean), CTENSOR(invstd), CTENSOR(dy),
                                   TENSOR(sums), const int want_dgamma, TENSOR(dgamma), const int want_dbeta,
                                   TENSOR(dbeta), __local float *scratch) {
  const int ch = get_group_id(0);
  const int lid = get_local_id(0), wg = get_local_size(0);
  const int m = n * hw;
  const float mu = AT(mean)[ch], is = AT(invstd)[ch];
  float sg = 0.0f, sgx = 0.0f;
  for (int i = lid; i < m; i += wg) {
    const int j = bn_index(i, ch, c, hw);
    const float yv = act == BN_ACT_NONE ? 0.0f : AT(y)[j];
    const float g = bn_pre_grad(act, slope, AT(dy)[j], yv);
    sg += g;
    sgx += g * ((AT(x)[j] - mu) * is);
  }
  sg = group_sum(sg, scratch);
  sgx = group_sum(sgx, scratch);
  if (lid == 0) {
    AT(sums)[ch] = sg;
    AT(sums)[c + ch] = sgx;
    if (want_dbeta) AT(dbeta)[ch] += sg;
    if (want_dgamma) AT(dgamma)[ch] += sgx;
  }
}

/* dx += gamma * invstd * (g - (sum_g + xhat * sum_gx) / M) in training;
 * dx += gamma * invstd * g with frozen statistics. */
__kernel void batchnorm_bwd_x(const int total, const int c, const int hw, const int m, const int training,
                              const int act, const float slope, CTENSOR(x), CTENSOR(y), CTENSOR(mean),
                              CTENSOR(invstd), CTENSOR(gamma), CTENSOR(sums), CTENSOR(dy), TENSOR(dx)) {
  const int i = get_global_id(0);
  if (i >= total) return;
  const int ch = (i / hw) % c;
  const float is = AT(invstd)[ch];
  const float yv = act == BN_ACT_NONE ? 0.0f : AT(y)[i];
  float g = bn_pre_grad(act, slope, AT(dy)[i], yv);
  if (training) {
    const float xhat = (AT(x)[i] - AT(mean)[ch]) * is;
    g -= (AT(sums)[ch] + xhat * AT(sums)[c + ch]) / (float)m;
  }
  AT(dx)[i] += AT(gamma)[ch] * is * g;
}
