/* Copy kernels of skd-cl bench --kernels: the device's copy bandwidth, the
 * yardstick for the memory-bound kernels (bytes = read + write). */

__kernel void bench_copy_f1(const int n, __global const float *src, __global float *dst) {
  const int i = get_global_id(0);
  if (i < n) dst[i] = src[i];
}

/* n4 float4 elements (the host passes a multiple of 4 floats). */
__kernel void bench_copy_f4(const int n4, __global const float4 *src, __global float4 *dst) {
  const int i = get_global_id(0);
  if (i < n4) dst[i] = src[i];
}

/* Peak FMA throughput, the yardstick for compute-bound kernels. Each
 * work-item runs `iterations` loop trips of 32 fma() on vectors of T (float4,
 * float8, float16: the host times each and keeps the best): 4 rounds of 8
 * independent chains, enough to hide the FMA latency. a = a * mul + add with
 * mul = 1 - add stays near 1 (no overflow, no denormals). Runtime operands
 * and a store taken only when the sum equals `never` (it cannot, but the
 * compiler cannot know) keep every chain alive. Work: 2 flops per lane per
 * fma. */
#define FMA_ROUND                                                                \
  a0 = fma(a0, m, c); a1 = fma(a1, m, c); a2 = fma(a2, m, c); a3 = fma(a3, m, c); \
  a4 = fma(a4, m, c); a5 = fma(a5, m, c); a6 = fma(a6, m, c); a7 = fma(a7, m, c);

#define PEAK_FMA_KERNEL(NAME, T)                                                               \
  __kernel void NAME(const int iterations, const float mul, const float add, const float never, \
                     __global float *out) {                                                     \
    const int gid = get_global_id(0);                                                           \
    const T m = (T)(mul), c = (T)(add);                                                         \
    const T start = (T)(1.0f + 1e-7f * (float)(gid & 1023));                                    \
    T a0 = start, a1 = start + (T)0.01f, a2 = start + (T)0.02f, a3 = start + (T)0.03f;          \
    T a4 = start + (T)0.04f, a5 = start + (T)0.05f, a6 = start + (T)0.06f, a7 = start + (T)0.07f; \
    for (int i = 0; i < iterations; i++) {                                                      \
      FMA_ROUND FMA_ROUND FMA_ROUND FMA_ROUND                                                    \
    }                                                                                           \
    const T sum = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7));                            \
    if (any(isequal(sum, (T)(never)))) out[gid] = sum.s0;                                       \
  }

PEAK_FMA_KERNEL(bench_peak_fma_f4, float4)
PEAK_FMA_KERNEL(bench_peak_fma_f8, float8)
PEAK_FMA_KERNEL(bench_peak_fma_f16, float16)
