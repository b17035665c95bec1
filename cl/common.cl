/* Shared by every kernel family (prepended at build time). Tensors arrive as
 * (global pointer, int offset in floats) pairs; TENSOR/AT keep that readable. */
#define TENSOR(name) __global float *name##_base, const int name##_off
#define CTENSOR(name) __global const float *name##_base, const int name##_off
#define AT(name) (name##_base + name##_off)

#ifndef WG_SIZE
#define WG_SIZE 256
#endif
