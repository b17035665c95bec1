/* Shared by the tuning file reader and the searches: CLBlast's constraints
 * on its GEMM parameters, sampling within them, progress and timing. */
#ifndef SKD_TUNE_PRIVATE_H
#define SKD_TUNE_PRIVATE_H

#include <stddef.h>

#include "skd/runtime.h"
#include "skd/tune.h"

/* A progress line through opt->progress (printf-style); nothing without one. */
void skd_tune_say(const skd_tune_options *opt, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Monotonic clock, seconds. */
double skd_tune_now(void);

/* -1 when the Xgemm (XgemmDirect) values v[] satisfy CLBlast's constraints;
 * else the index of a parameter at fault, with the reason in why. */
int skd_tune_xgemm_invalid(const size_t *v, char *why, size_t why_size);
int skd_tune_direct_invalid(const size_t *v, char *why, size_t why_size);

/* 1 when the work-group size and local memory fit the device. */
int skd_tune_xgemm_fits(const size_t *v, const skd_device_info *d);
int skd_tune_direct_fits(const size_t *v, const skd_device_info *d);

/* Draws a valid configuration that fits d (0 when none was found). */
int skd_tune_xgemm_sample(unsigned long long *rng, const skd_device_info *d, size_t *out);
int skd_tune_direct_sample(unsigned long long *rng, const skd_device_info *d, size_t *out);

/* Hand-picked Xgemm starting points tried first (CLBlast's published
 * values for some CPUs): count, and the i-th. */
int skd_tune_xgemm_seed_count(void);
const size_t *skd_tune_xgemm_seed(int i);
int skd_tune_direct_seed_count(void);
const size_t *skd_tune_direct_seed(int i);

#endif
