/* Element-wise ops over n floats. Backward kernels accumulate into dx. */

__kernel void fill_fwd(const int n, const float value, TENSOR(y)) {
  const int i = get_global_id(0);
  if (i < n) AT(y)[i] = value;
}

/* y = alpha * x + beta * y */
__kernel void axpby_fwd(const int n, const float alpha, CTENSOR(x), const float beta, TENSOR(y)) {
  const int i = get_global_id(0);
  if (i >= n) return;
  /* beta == 0 must not propagate NaN/Inf from an uninitialised y. */
  const float old = beta == 0.0f ? 0.0f : beta * AT(y)[i];
  AT(y)[i] = alpha * AT(x)[i] + old;
}

__kernel void add_fwd(const int n, CTENSOR(a), CTENSOR(b), TENSOR(y)) {
  const int i = get_global_id(0);
  if (i < n) AT(y)[i] = AT(a)[i] + AT(b)[i];
}

__kernel void relu_fwd(const int n, CTENSOR(x), TENSOR(y)) {
  const int i = get_global_id(0);
  if (i < n) AT(y)[i] = fmax(AT(x)[i], 0.0f);
}

/* x may be the input or the output: relu'(x) depends on its sign only. */
__kernel void relu_bwd_x(const int n, CTENSOR(x), CTENSOR(dy), TENSOR(dx)) {
  const int i = get_global_id(0);
  if (i < n && AT(x)[i] > 0.0f) AT(dx)[i] += AT(dy)[i];
}

__kernel void leaky_relu_fwd(const int n, const float slope, CTENSOR(x), TENSOR(y)) {
  const int i = get_global_id(0);
  if (i >= n) return;
  const float v = AT(x)[i];
  AT(y)[i] = v > 0.0f ? v : slope * v;
}

/* With slope > 0 the sign of the output equals the sign of the input, so x
 * may be either. */
__kernel void leaky_relu_bwd_x(const int n, const float slope, CTENSOR(x), CTENSOR(dy), TENSOR(dx)) {
  const int i = get_global_id(0);
  if (i >= n) return;
  AT(dx)[i] += AT(x)[i] > 0.0f ? AT(dy)[i] : slope * AT(dy)[i];
}

__kernel void tanh_fwd(const int n, CTENSOR(x), TENSOR(y)) {
  const int i = get_global_id(0);
  if (i < n) AT(y)[i] = tanh(AT(x)[i]);
}

/* Uses the output y: d tanh = 1 - y^2. */
__kernel void tanh_bwd_x(const int n, CTENSOR(y), CTENSOR(dy), TENSOR(dx)) {
  const int i = get_global_id(0);
  if (i >= n) return;
  const float t = AT(y)[i];
  AT(dx)[i] += AT(dy)[i] * (1.0f - t * t);
}
