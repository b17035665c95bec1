/* Shared by every kernel family (prepended at build time). Tensors arrive as
 * (global pointer, int offset in floats) pairs; TENSOR/AT keep that readable. */
#define TENSOR(name) __global float *name##_base, const int name##_off
#define CTENSOR(name) __global const float *name##_base, const int name##_off
#define AT(name) (name##_base + name##_off)

#ifndef WG_SIZE
#define WG_SIZE 256
#endif

/* Sum of v over the work-group (its size a power of two, scratch that many
 * elements), in a fixed tree order: deterministic. Every work-item gets the
 * result and every work-item must call it: a barrier inside a branch that
 * only some work-items take is undefined (and corrupts memory on PoCL). */
float group_sum(float v, __local float *scratch) {
  const int lid = get_local_id(0);
  scratch[lid] = v;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = (int)get_local_size(0) / 2; s > 0; s >>= 1) {
    if (lid < s) scratch[lid] += scratch[lid + s];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  const float r = scratch[0];
  barrier(CLK_LOCAL_MEM_FENCE); /* scratch is reused by the next call */
  return r;
}

int group_sum_int(int v, __local int *scratch) {
  const int lid = get_local_id(0);
  scratch[lid] = v;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = (int)get_local_size(0) / 2; s > 0; s >>= 1) {
    if (lid < s) scratch[lid] += scratch[lid + s];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  const int r = scratch[0];
  barrier(CLK_LOCAL_MEM_FENCE);
  return r;
}
