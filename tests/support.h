/* Test support: the OpenCL context of a forked test, guarded device tensors,
 * error measures, finite differences and the error log. */
#ifndef SKD_TEST_SUPPORT_H
#define SKD_TEST_SUPPORT_H

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>

#include "skd/skd.h"

/* The context of the running test; created by the checked fixture, i.e. in
 * the forked child, never in main(). */
extern skd_context *T;

/* A test case with that fixture and a generous timeout. */
TCase *support_tcase(const char *name);

/* Runs the suite; exits 77 (skipped) when no usable OpenCL device exists. */
int support_main(Suite *s);

/* Host-only suites (no OpenCL): a test case whose fixture only resets and
 * frees the host arrays (T stays NULL), and a main that never probes for a
 * device, so the suite runs (and never skips) on a machine without one. */
TCase *support_tcase_host(const char *name);
int support_main_host(Suite *s);

/* Gives every test of tc a fresh temporary directory ($TMPDIR or /tmp),
 * removed with its contents at teardown. tmp_path("a/b.png") is a path in it
 * (static storage: 8 rotating buffers). */
void support_add_tmpdir(TCase *tc);
const char *tmp_path(const char *rel);

/* Fails the test with skd's error message when st != SKD_OK. */
#define CK_OK(expr)                                                                       \
  do {                                                                                    \
    skd_status st_ = (expr);                                                              \
    ck_assert_msg(st_ == SKD_OK, "%s failed: %s: %s", #expr, skd_status_name(st_),       \
                  skd_error_last());                                                      \
  } while (0)

/* Host arrays (freed at the end of the test by support_teardown). */
float *host_alloc(size_t n);
float *host_random(size_t n, float lo, float hi);
/* Random values whose magnitude is at least `gap` (away from kinks at 0). */
float *host_random_away_from_zero(size_t n, float lo, float hi, float gap);
float *host_copy(const float *x, size_t n);
void host_seed(unsigned seed);

/* Device tensors inside buffers with sentinel guard regions before and after
 * (and a non-zero offset); every guard is checked by support_check_guards()
 * and at teardown. */
skd_tensor dev_tensor(int n, int c, int h, int w);
skd_tensor dev_upload(const float *host, int n, int c, int h, int w);
skd_tensor dev_zeros(int n, int c, int h, int w);
void dev_download(const skd_tensor *t, float *host);
float *dev_fetch(const skd_tensor *t); /* host copy, freed at teardown */
void support_check_guards(void);
/* Scoped release for helpers that make tensors in a loop (finite
 * differences): guards are checked, then tensors made after the mark freed. */
int dev_mark(void);
void dev_release_to(int mark);

/* max_i |a_i - b_i| / max(max_i |b_i|, 1e-6): error relative to the scale of b. */
double rel_error(const float *a, const float *b, size_t n);

/* Central finite differences of L(x) = sum_i w_i * f(x)_i against the
 * analytic dL/dx. f writes ny outputs for the input x (nx values; x is
 * perturbed in place and restored). Returns the relative error as above. */
typedef void (*support_forward_fn)(void *user, const float *x, float *y);
double fd_error(support_forward_fn f, void *user, float *x, size_t nx, const float *w, size_t ny,
                const float *dx_analytic, float eps);

/* Prints "ERROR op check value" and appends it to $SKD_TEST_ERRLOG (if set),
 * then asserts value <= tolerance. */
void check_error(const char *op, const char *check, double value, double tolerance);

#endif
