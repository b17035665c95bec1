/* Shared by test_discriminator.c and test_loss_holistic.c: the inputs of
 * tests/reference/gen_loss_holistic.py (formula_input, reproduced bit for
 * bit) and discriminators loaded with the reference file's weights. */
#ifndef SKD_TEST_HOLISTIC_FIXTURE_H
#define SKD_TEST_HOLISTIC_FIXTURE_H

#include <stdint.h>

#include "reference_file.h"
#include "support.h"
#include "skd/loss/holistic.h"
#include "skd/nn/discriminator.h"

/* Config "a" of the generator. */
#define FIX_N 2
#define FIX_C 5
#define FIX_H 16
#define FIX_W 32
#define FIX_D 2

static inline uint64_t fix_splitmix64(uint64_t x) {
  uint64_t z = x + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Element i: lo + (hi - lo) * ((splitmix64(seed * 2^32 + i) >> 11) * 2^-53),
 * in double, rounded to float (as gen_loss_holistic.py's formula_input). */
static inline float *fix_input(uint64_t seed, size_t count, double lo, double hi) {
  float *x = host_alloc(count);
  for (size_t i = 0; i < count; i++) {
    double u = (double)(fix_splitmix64((seed << 32) + i) >> 11) * (1.0 / 9007199254740992.0);
    x[i] = (float)(lo + (hi - lo) * u);
  }
  return x;
}

static inline skd_arena *fix_arena(void) {
  skd_arena *a;
  CK_OK(skd_arena_create(T, &a, (size_t)8 << 20));
  return a;
}

/* Uploads every tensor of d from "<prefix>.<name>" in f, or, when absent
 * there, from "<fallback>.<name>" (fallback may be NULL). */
static inline void fix_load(skd_disc *d, const ref_file *f, const char *prefix, const char *fallback) {
  for (int i = 0; i < d->nstate; i++) {
    skd_param *p = d->state[i];
    char key[192];
    snprintf(key, sizeof key, "%s.%s", prefix, p->name);
    const ref_array *r = NULL;
    for (int j = 0; j < f->count && !r; j++)
      if (strcmp(f->arrays[j].name, key) == 0) r = &f->arrays[j];
    if (!r && fallback) {
      snprintf(key, sizeof key, "%s.%s", fallback, p->name);
      r = ref_get(f, key);
    }
    ck_assert_msg(r != NULL, "reference file lacks %s.%s", prefix, p->name);
    ck_assert_msg(r->numel == skd_tensor_numel(&p->value), "%s: %zu values in the file, %zu in skd", key, r->numel,
                  skd_tensor_numel(&p->value));
    CK_OK(skd_tensor_upload(T, &p->value, r->data));
  }
}

/* A discriminator of config "a" (or its preprocessing / conditional
 * variants) with the reference weights. */
static inline skd_disc *fix_disc(const ref_file *f, skd_disc_preprocess pre, int conditional) {
  skd_disc_config cfg;
  skd_disc_config_default(&cfg, FIX_C, FIX_H, FIX_W);
  cfg.conv_dim = FIX_D;
  cfg.preprocess = pre;
  cfg.conditional = conditional;
  skd_disc *d;
  CK_OK(skd_disc_create(T, &cfg, 7, &d));
  fix_load(d, f, conditional ? "c" : "a", conditional ? "a" : NULL);
  return d;
}

/* Relative error of a device tensor against a reference array. */
static inline double fix_error(const skd_tensor *t, const ref_array *r) {
  ck_assert_msg(r->numel == skd_tensor_numel(t), "%s: %zu values, tensor has %zu", r->name, r->numel,
                skd_tensor_numel(t));
  return rel_error(dev_fetch(t), r->data, r->numel);
}

/* A parameter gradient against the reference's. The key convolution's bias
 * shifts every row of the attention energy by a constant, which the
 * softmax ignores: its gradient is 0 up to rounding on both sides, so its
 * error is measured against the scale of the key weights' gradient. */
static inline double fix_grad_error(const ref_file *f, skd_disc *d, skd_param *p, const char *key) {
  const ref_array *r = ref_get(f, key);
  const char *suffix = "key_conv.bias";
  size_t len = strlen(p->name), sl = strlen(suffix);
  if (len < sl || strcmp(p->name + len - sl, suffix) != 0) return fix_error(&p->grad, r);
  char wkey[192], wname[128];
  snprintf(wkey, sizeof wkey, "%.*sweight", (int)(strlen(key) - 4), key);
  snprintf(wname, sizeof wname, "%.*sweight", (int)(len - 4), p->name);
  const ref_array *rw = ref_get(f, wkey);
  ck_assert_ptr_nonnull(skd_disc_find(d, wname));
  double scale = 1e-30, diff = 0.0;
  for (size_t i = 0; i < rw->numel; i++) scale = fmax(scale, fabs(rw->data[i]));
  float *g = dev_fetch(&p->grad);
  for (size_t i = 0; i < r->numel; i++) diff = fmax(diff, fabs((double)g[i] - r->data[i]));
  return diff / scale;
}

#endif
