/* Self-attention layer (include/skd/nn/attention.h): the parts around the
 * GEMMs and the row softmax. gamma is a 1-element device tensor, read by the
 * kernels, so a step never waits for the host. */

/* y = gamma * out + x */
__kernel void attn_residual_fwd(const int n, CTENSOR(gamma), CTENSOR(out), CTENSOR(x), TENSOR(y)) {
  const int i = get_global_id(0);
  if (i >= n) return;
  AT(y)[i] = AT(gamma)[0] * AT(out)[i] + AT(x)[i];
}

/* dout = gamma * dy (overwrites: dout is a scratch tensor) */
__kernel void attn_scale_bwd_out(const int n, CTENSOR(gamma), CTENSOR(dy), TENSOR(dout)) {
  const int i = get_global_id(0);
  if (i >= n) return;
  AT(dout)[i] = AT(gamma)[0] * AT(dy)[i];
}

/* dgamma += sum(dy * out), one work-group in a fixed order (deterministic). */
__kernel void attn_gamma_bwd(const int n, CTENSOR(dy), CTENSOR(out), TENSOR(dgamma), __local float *scratch) {
  const int lid = get_local_id(0), wg = get_local_size(0);
  float acc = 0.0f;
  for (int i = lid; i < n; i += wg) acc += AT(dy)[i] * AT(out)[i];
  const float total = group_sum(acc, scratch);
  if (lid == 0) AT(dgamma)[0] += total;
}
