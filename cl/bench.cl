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
