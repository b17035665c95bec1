/* The parameter spaces of CLBlast's Xgemm and XgemmDirect kernels: the
 * constraints of CLBlast's own tuners (tuning/kernels/xgemm*.hpp), the
 * device limits, and seeded sampling. */
#include <stdarg.h>
#include <stdio.h>

#include "tune/tune_private.h"

/* Xgemm indices (skd_tune_xgemm_names). */
enum { GEMMK, KREG, KWG, KWI, MDIMA, MDIMC, MWG, NDIMB, NDIMC, NWG, SA, SB, STRM, STRN, VWM, VWN };
/* XgemmDirect indices (skd_tune_direct_names). */
enum { KWID, MDIMAD, MDIMCD, NDIMBD, NDIMCD, PADA, PADB, VWMD, VWND, WGD };

static int is_pow2(size_t x) { return x > 0 && (x & (x - 1)) == 0; }

/* x % m == 0 with m > 0; false for m == 0. */
static int multiple(size_t x, size_t m) { return m > 0 && x % m == 0; }

static int fail(char *why, size_t n, int index, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(char *why, size_t n, int index, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, n, fmt, ap);
  va_end(ap);
  return index;
}

int skd_tune_xgemm_invalid(const size_t *v, char *why, size_t n) {
  static const int positive[] = {KREG, KWG, KWI, MDIMA, MDIMC, MWG, NDIMB, NDIMC, NWG, VWM, VWN};
  for (size_t i = 0; i < sizeof positive / sizeof positive[0]; i++)
    if (v[positive[i]] < 1) return fail(why, n, positive[i], "must be >= 1 (is %zu)", v[positive[i]]);
  static const int flags[] = {GEMMK, SA, SB, STRM, STRN};
  for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
    if (v[flags[i]] > 1) return fail(why, n, flags[i], "must be 0 or 1 (is %zu)", v[flags[i]]);
  if (!is_pow2(v[VWM]) || v[VWM] > 16) return fail(why, n, VWM, "must be 1, 2, 4, 8 or 16 (is %zu)", v[VWM]);
  if (!is_pow2(v[VWN]) || v[VWN] > 16) return fail(why, n, VWN, "must be 1, 2, 4, 8 or 16 (is %zu)", v[VWN]);
  if (!multiple(v[KWG], v[KWI])) return fail(why, n, KWG, "must be a multiple of KWI (%zu %% %zu != 0)", v[KWG], v[KWI]);
  if (!multiple(v[MWG], v[MDIMC] * v[VWM]))
    return fail(why, n, MWG, "must be a multiple of MDIMC*VWM (%zu %% %zu != 0)", v[MWG], v[MDIMC] * v[VWM]);
  if (!multiple(v[NWG], v[NDIMC] * v[VWN]))
    return fail(why, n, NWG, "must be a multiple of NDIMC*VWN (%zu %% %zu != 0)", v[NWG], v[NDIMC] * v[VWN]);
  if (!multiple(v[MWG], v[MDIMA] * v[VWM]))
    return fail(why, n, MWG, "must be a multiple of MDIMA*VWM (%zu %% %zu != 0)", v[MWG], v[MDIMA] * v[VWM]);
  if (!multiple(v[NWG], v[NDIMB] * v[VWN]))
    return fail(why, n, NWG, "must be a multiple of NDIMB*VWN (%zu %% %zu != 0)", v[NWG], v[NDIMB] * v[VWN]);
  size_t threads = v[MDIMC] * v[NDIMC];
  if (v[GEMMK] == 0) {
    /* A and B tiles are loaded by all threads: KDIMA = threads/MDIMA rows at a time. */
    if (!multiple(threads, v[MDIMA]) || !multiple(v[KWG], threads / v[MDIMA]))
      return fail(why, n, KWG, "must be a multiple of MDIMC*NDIMC/MDIMA (KWG %zu, MDIMC*NDIMC %zu)", v[KWG], threads);
    if (!multiple(threads, v[NDIMB]) || !multiple(v[KWG], threads / v[NDIMB]))
      return fail(why, n, KWG, "must be a multiple of MDIMC*NDIMC/NDIMB (KWG %zu, MDIMC*NDIMC %zu)", v[KWG], threads);
  } else {
    if (!multiple(v[KREG], v[VWN]))
      return fail(why, n, KREG, "must be a multiple of VWN when GEMMK=1 (%zu %% %zu != 0)", v[KREG], v[VWN]);
    if (v[MDIMA] != v[MDIMC]) return fail(why, n, MDIMA, "must equal MDIMC when GEMMK=1 (%zu != %zu)", v[MDIMA], v[MDIMC]);
    if (v[NDIMB] != v[NDIMC]) return fail(why, n, NDIMB, "must equal NDIMC when GEMMK=1 (%zu != %zu)", v[NDIMB], v[NDIMC]);
  }
  return -1;
}

int skd_tune_direct_invalid(const size_t *v, char *why, size_t n) {
  static const int positive[] = {KWID, MDIMAD, MDIMCD, NDIMBD, NDIMCD, VWMD, VWND, WGD};
  for (size_t i = 0; i < sizeof positive / sizeof positive[0]; i++)
    if (v[positive[i]] < 1) return fail(why, n, positive[i], "must be >= 1 (is %zu)", v[positive[i]]);
  if (v[PADA] > 1) return fail(why, n, PADA, "must be 0 or 1 (is %zu)", v[PADA]);
  if (v[PADB] > 1) return fail(why, n, PADB, "must be 0 or 1 (is %zu)", v[PADB]);
  if (!is_pow2(v[VWMD]) || v[VWMD] > 16) return fail(why, n, VWMD, "must be 1, 2, 4, 8 or 16 (is %zu)", v[VWMD]);
  if (!is_pow2(v[VWND]) || v[VWND] > 16) return fail(why, n, VWND, "must be 1, 2, 4, 8 or 16 (is %zu)", v[VWND]);
  if (!multiple(v[WGD], v[KWID])) return fail(why, n, WGD, "must be a multiple of KWID (%zu %% %zu != 0)", v[WGD], v[KWID]);
  if (!multiple(v[WGD], v[MDIMCD] * v[VWMD]))
    return fail(why, n, WGD, "must be a multiple of MDIMCD*VWMD (%zu %% %zu != 0)", v[WGD], v[MDIMCD] * v[VWMD]);
  if (!multiple(v[WGD], v[NDIMCD] * v[VWND]))
    return fail(why, n, WGD, "must be a multiple of NDIMCD*VWND (%zu %% %zu != 0)", v[WGD], v[NDIMCD] * v[VWND]);
  if (!multiple(v[WGD], v[MDIMAD] * v[VWMD]))
    return fail(why, n, WGD, "must be a multiple of MDIMAD*VWMD (%zu %% %zu != 0)", v[WGD], v[MDIMAD] * v[VWMD]);
  if (!multiple(v[WGD], v[NDIMBD] * v[VWND]))
    return fail(why, n, WGD, "must be a multiple of NDIMBD*VWND (%zu %% %zu != 0)", v[WGD], v[NDIMBD] * v[VWND]);
  size_t threads = v[MDIMCD] * v[NDIMCD];
  if (!multiple(threads, v[MDIMAD]) || !multiple(v[WGD], threads / v[MDIMAD]))
    return fail(why, n, WGD, "must be a multiple of MDIMCD*NDIMCD/MDIMAD (WGD %zu, MDIMCD*NDIMCD %zu)", v[WGD], threads);
  if (!multiple(threads, v[NDIMBD]) || !multiple(v[WGD], threads / v[NDIMBD]))
    return fail(why, n, WGD, "must be a multiple of MDIMCD*NDIMCD/NDIMBD (WGD %zu, MDIMCD*NDIMCD %zu)", v[WGD], threads);
  return -1;
}

int skd_tune_xgemm_fits(const size_t *v, const skd_device_info *d) {
  size_t local = sizeof(float) * (v[SA] * v[KWG] * v[MWG] + v[SB] * v[KWG] * v[NWG]);
  return v[MDIMC] * v[NDIMC] <= d->max_work_group_size && local <= d->local_mem_bytes;
}

int skd_tune_direct_fits(const size_t *v, const skd_device_info *d) {
  size_t local = sizeof(float) * (v[WGD] * (v[WGD] + v[PADA]) + v[WGD] * (v[WGD] + v[PADB]));
  return v[MDIMCD] * v[NDIMCD] <= d->max_work_group_size && local <= d->local_mem_bytes;
}

/* splitmix64: small, seedable, the same sequence on every platform. */
static unsigned long long next(unsigned long long *s) {
  unsigned long long z = (*s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

static size_t pick(unsigned long long *rng, const size_t *values, int n) { return values[next(rng) % (unsigned)n]; }
#define PICK(rng, arr) pick(rng, arr, (int)(sizeof arr / sizeof arr[0]))

/* The sets of CLBlast's random-sampling tuner variation V=2 (GEMMK=0); the
 * GEMMK=1 branch (V=12) is kept for when it can be trusted. */
int skd_tune_xgemm_sample(unsigned long long *rng, const skd_device_info *d, size_t *v) {
  static const size_t wg[] = {16, 32, 64, 128}, kwg[] = {16, 32}, dim[] = {8, 16, 32}, vw[] = {1, 2, 4, 8};
  static const size_t flag[] = {0, 1}, wg1[] = {8, 16, 32, 64, 128}, dim1[] = {2, 4, 8, 16, 32};
  static const size_t kreg1[] = {1, 2, 4, 8, 16};
  char why[160];
  for (int attempt = 0; attempt < 100000; attempt++) {
    /* Only GEMMK=0: on PoCL, GEMMK=1 candidates that meet the tuner's
     * constraints still gave NaNs and then a crash (out-of-bounds writes). */
    int k1 = 0;
    v[GEMMK] = (size_t)k1;
    if (!k1) {
      v[KREG] = 1;
      v[KWG] = PICK(rng, kwg);
      v[KWI] = 2;
      v[MWG] = PICK(rng, wg);
      v[NWG] = PICK(rng, wg);
      v[MDIMC] = PICK(rng, dim);
      v[NDIMC] = PICK(rng, dim);
      v[MDIMA] = PICK(rng, dim);
      v[NDIMB] = PICK(rng, dim);
      v[STRM] = PICK(rng, flag);
      v[STRN] = PICK(rng, flag);
      v[SA] = PICK(rng, flag);
      v[SB] = PICK(rng, flag);
    } else {
      v[KREG] = PICK(rng, kreg1);
      v[KWG] = v[KWI] = 1;
      v[MWG] = PICK(rng, wg1);
      v[NWG] = PICK(rng, wg1);
      v[MDIMC] = v[MDIMA] = PICK(rng, dim1);
      v[NDIMC] = v[NDIMB] = PICK(rng, dim1);
      v[STRM] = v[STRN] = v[SA] = v[SB] = 0;
    }
    v[VWM] = PICK(rng, vw);
    v[VWN] = PICK(rng, vw);
    if (skd_tune_xgemm_invalid(v, why, sizeof why) < 0 && skd_tune_xgemm_fits(v, d)) return 1;
  }
  return 0;
}

/* The sets of CLBlast's XgemmDirect random-sampling tuner (V=2). */
int skd_tune_direct_sample(unsigned long long *rng, const skd_device_info *d, size_t *v) {
  static const size_t wgd[] = {8, 16, 32, 64}, dim[] = {8, 16, 32}, kwid[] = {2, 8, 16}, vw[] = {1, 2, 4, 8};
  static const size_t flag[] = {0, 1};
  char why[160];
  for (int attempt = 0; attempt < 100000; attempt++) {
    v[WGD] = PICK(rng, wgd);
    v[MDIMCD] = PICK(rng, dim);
    v[NDIMCD] = PICK(rng, dim);
    v[MDIMAD] = PICK(rng, dim);
    v[NDIMBD] = PICK(rng, dim);
    v[KWID] = PICK(rng, kwid);
    v[VWMD] = PICK(rng, vw);
    v[VWND] = PICK(rng, vw);
    v[PADA] = PICK(rng, flag);
    v[PADB] = PICK(rng, flag);
    if (skd_tune_direct_invalid(v, why, sizeof why) < 0 && skd_tune_direct_fits(v, d)) return 1;
  }
  return 0;
}

/* GEMMK KREG KWG KWI MDIMA MDIMC MWG NDIMB NDIMC NWG SA SB STRM STRN VWM VWN:
 * CLBlast 1.5's entries for an i7-5930K, an i5-6200U and an i7-3770. */
static const size_t seeds[][16] = {
    {0, 1, 32, 8, 16, 16, 64, 32, 32, 64, 0, 1, 1, 0, 1, 2},
    {0, 1, 32, 8, 32, 32, 64, 32, 16, 64, 1, 1, 1, 0, 2, 2},
    {0, 1, 32, 2, 32, 8, 128, 8, 8, 128, 1, 1, 1, 1, 2, 8},
};

int skd_tune_xgemm_seed_count(void) { return (int)(sizeof seeds / sizeof seeds[0]); }
const size_t *skd_tune_xgemm_seed(int i) { return seeds[i]; }

/* KWID MDIMAD MDIMCD NDIMBD NDIMCD PADA PADB VWMD VWND WGD: a small tile
 * that builds fast and suits narrow products. */
static const size_t direct_seeds[][10] = {
    {2, 16, 16, 16, 16, 1, 1, 1, 1, 16},
};

int skd_tune_direct_seed_count(void) { return (int)(sizeof direct_seeds / sizeof direct_seeds[0]); }
const size_t *skd_tune_direct_seed(int i) { return direct_seeds[i]; }
