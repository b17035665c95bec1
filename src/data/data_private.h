/* Internals of src/data: a small counter-based random generator.
 * Every random decision is a function of (seed, stream, counter), so a batch
 * or a demo image can be recomputed alone, on any thread, in any order. */
#ifndef SKD_DATA_PRIVATE_H
#define SKD_DATA_PRIVATE_H

#include <stdint.h>

/* Streams keep the draws of different purposes independent. */
enum {
  RNG_AUGMENT = 1,
  RNG_SHUFFLE = 2,
  RNG_DEMO = 3
};

typedef struct rng {
  uint64_t state;
} rng;

static inline uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static inline rng rng_init(uint64_t seed, uint64_t stream, uint64_t counter) {
  uint64_t s = seed;
  uint64_t a = splitmix64(&s);
  s = a ^ (stream * 0xD1B54A32D192ED03ull);
  uint64_t b = splitmix64(&s);
  s = b ^ (counter * 0x8CB92BA72F3D8DD7ull);
  rng r = {splitmix64(&s)};
  return r;
}

static inline uint64_t rng_u64(rng *r) { return splitmix64(&r->state); }

/* Uniform in [0, 1) with 24 bits, exact in float. */
static inline float rng_float(rng *r) { return (float)(rng_u64(r) >> 40) * (1.0f / 16777216.0f); }

/* Uniform integer in [lo, hi] (inclusive); the modulo bias is below 2^-32 for
 * the ranges used here. */
static inline int rng_int(rng *r, int lo, int hi) {
  uint64_t span = (uint64_t)((int64_t)hi - (int64_t)lo + 1);
  return lo + (int)(rng_u64(r) % span);
}

static inline float rng_range(rng *r, float lo, float hi) { return lo + (hi - lo) * rng_float(r); }

#endif
