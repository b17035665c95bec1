/* The discriminator's small element-wise pieces (nn/discriminator.h). */

/* Preprocessing mode 3, in PyTorch's operation order: 2 * (x / 255 - 0.5). */
__kernel void disc_scale_fwd(const int n, CTENSOR(x), TENSOR(y)) {
  const int i = get_global_id(0);
  if (i >= n) return;
  AT(y)[i] = 2.0f * (AT(x)[i] / 255.0f - 0.5f);
}

/* dx += (2 dy) / 255, autograd's order. */
__kernel void disc_scale_bwd_x(const int n, CTENSOR(dy), TENSOR(dx)) {
  const int i = get_global_id(0);
  if (i >= n) return;
  AT(dx)[i] += (2.0f * AT(dy)[i]) / 255.0f;
}

/* LeakyReLU whose slope is chosen by the sign of `mask` (another forward's
 * activation) instead of x's own: the held pieces of a Hessian-vector
 * product. y may be x. */
__kernel void disc_leaky_masked_fwd(const int n, const float slope, CTENSOR(mask), CTENSOR(x), TENSOR(y)) {
  const int i = get_global_id(0);
  if (i >= n) return;
  const float v = AT(x)[i];
  AT(y)[i] = AT(mask)[i] > 0.0f ? v : slope * v;
}
