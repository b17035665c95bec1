/* Dropout2d (include/skd/ops/dropout.h): the keep mask of channel (n, c) is
 * recomputed from (seed, n, c) by Philox2x32-10, never stored. Must match
 * skd_dropout2d_bits in src/ops/dropout_ref.c bit for bit. */

#define PHILOX_M 0xD256D193u
#define PHILOX_W 0x9E3779B9u

uint dropout_philox(const uint seed, const uint n, const uint c) {
  uint x0 = c, x1 = n, key = seed;
  for (int round = 0; round < 10; round++) {
    const uint hi = mul_hi(PHILOX_M, x0);
    const uint lo = PHILOX_M * x0;
    x0 = hi ^ key ^ x1;
    x1 = lo;
    key += PHILOX_W;
  }
  return x0;
}

/* The factor of element i: 0 when its channel is dropped, else scale. */
/* row0: the tensor's first sample is row row0 of the whole batch (data
 * parallel: a rank's shard draws the masks one process would). */
float dropout_factor(const int i, const int c, const int hw, const int row0, const uint seed, const float p,
                     const float scale) {
  const int nc = i / hw;
  const int n = nc / c;
  const float u = (float)(dropout_philox(seed, (uint)(n + row0), (uint)(nc - n * c)) >> 8) * (1.0f / 16777216.0f);
  return u < p ? 0.0f : scale;
}

/* y = x * factor; y may be x. */
__kernel void dropout2d_fwd(const int total, const int c, const int hw, const int row0, const uint seed,
                            const float p, const float scale, CTENSOR(x), TENSOR(y)) {
  const int i = get_global_id(0);
  if (i >= total) return;
  AT(y)[i] = AT(x)[i] * dropout_factor(i, c, hw, row0, seed, p, scale);
}

__kernel void dropout2d_bwd_x(const int total, const int c, const int hw, const int row0, const uint seed,
                              const float p, const float scale, CTENSOR(dy), TENSOR(dx)) {
  const int i = get_global_id(0);
  if (i >= total) return;
  AT(dx)[i] += AT(dy)[i] * dropout_factor(i, c, hw, row0, seed, p, scale);
}
