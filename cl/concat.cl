/* Channel concatenation (include/skd/ops/concat.h): one launch per input,
 * which fills (or reads) the channel slice [off, off + C_i) of each sample
 * of y. chw_in = C_i*H*W, chw_out = C*H*W, off = first channel * H*W. */

__kernel void concat_fwd(const int total, const int chw_in, const int chw_out, const int off, CTENSOR(x),
                         TENSOR(y)) {
  const int i = get_global_id(0);
  if (i >= total) return;
  const int b = i / chw_in;
  AT(y)[b * chw_out + off + (i - b * chw_in)] = AT(x)[i];
}

/* Gather form: each element of dx reads its place in dy. */
__kernel void concat_bwd_x(const int total, const int chw_in, const int chw_out, const int off, CTENSOR(dy),
                           TENSOR(dx)) {
  const int i = get_global_id(0);
  if (i >= total) return;
  const int b = i / chw_in;
  AT(dx)[i] += AT(dy)[b * chw_out + off + (i - b * chw_in)];
}
