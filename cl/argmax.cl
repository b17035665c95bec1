/* Per-pixel argmax over the channels of (N, C, H, W) logits.
 * Ties: the first maximum (lowest channel) wins. NaN: compares greater than
 * every number and the first NaN wins, as numpy.argmax and torch.argmax do,
 * so a network that produced NaN is not silently scored as some class. */

static int argmax_pixel(__global const float *x, const int c, const int hw) {
  float best = x[0];
  if (isnan(best)) return 0;
  int arg = 0;
  for (int k = 1; k < c; k++) {
    const float v = x[k * hw];
    if (isnan(v)) return k;
    if (v > best) {
      best = v;
      arg = k;
    }
  }
  return arg;
}

/* One work-item per pixel p of N*H*W; ids (N, 1, H, W) as floats. */
__kernel void argmax_fwd(const int pixels, const int c, const int hw, CTENSOR(x), TENSOR(ids)) {
  const int p = get_global_id(0);
  if (p >= pixels) return;
  const int n = p / hw, i = p - n * hw;
  AT(ids)[p] = (float)argmax_pixel(AT(x) + n * c * hw + i, c, hw);
}

/* The same into bytes (c <= 255, checked by the host), for the download. */
__kernel void argmax_u8_fwd(const int pixels, const int c, const int hw, CTENSOR(x), __global uchar *ids) {
  const int p = get_global_id(0);
  if (p >= pixels) return;
  const int n = p / hw, i = p - n * hw;
  ids[p] = (uchar)argmax_pixel(AT(x) + n * c * hw + i, c, hw);
}
