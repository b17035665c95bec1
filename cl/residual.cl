/* The residual join of ResNet blocks: out = relu(branch + shortcut), and its
 * backward. Fused so that a block's join costs one pass over memory. */

/* y = relu(a + b); y may be a (in place). NaN propagates (PyTorch's relu). */
__kernel void residual_fwd(const int n, CTENSOR(a), CTENSOR(b), TENSOR(y)) {
  const int i = get_global_id(0);
  if (i >= n) return;
  const float v = AT(a)[i] + AT(b)[i];
  AT(y)[i] = v < 0.0f ? 0.0f : v;
}

/* dx = (y > 0) ? dy : 0. It WRITES dx (not +=): the gradient of the join is
 * a fresh tensor that both the branch and the shortcut read. */
__kernel void residual_bwd_x(const int n, CTENSOR(y), CTENSOR(dy), TENSOR(dx)) {
  const int i = get_global_id(0);
  if (i >= n) return;
  AT(dx)[i] = AT(y)[i] > 0.0f ? AT(dy)[i] : 0.0f;
}
