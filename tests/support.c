#define _XOPEN_SOURCE 700 /* nftw */
#include "support.h"

#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

skd_context *T = NULL;

#define GUARD 64
#define SENTINEL 1234.5678f
#define MAX_TRACKED 1024

struct guarded {
  cl_mem mem;
  size_t numel;
};

static struct guarded guarded_list[MAX_TRACKED];
static int nguarded;
static void *host_list[4 * MAX_TRACKED];
static int nhost;
static unsigned rng_state = 12345u;

static void setup(void) {
  nguarded = 0;
  nhost = 0;
  rng_state = 12345u;
  skd_status st = skd_context_create(&T, NULL);
  ck_assert_msg(st == SKD_OK, "context: %s", skd_error_last());
}

static void teardown(void) {
  if (T) support_check_guards();
  for (int i = 0; i < nguarded; i++) clReleaseMemObject(guarded_list[i].mem);
  nguarded = 0;
  for (int i = 0; i < nhost; i++) free(host_list[i]);
  nhost = 0;
  skd_context_free(T);
  T = NULL;
}

TCase *support_tcase(const char *name) {
  TCase *tc = tcase_create(name);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 600);
  return tc;
}

static void setup_host(void) {
  nguarded = 0;
  nhost = 0;
  rng_state = 12345u;
}

static void teardown_host(void) {
  for (int i = 0; i < nhost; i++) free(host_list[i]);
  nhost = 0;
}

TCase *support_tcase_host(const char *name) {
  TCase *tc = tcase_create(name);
  tcase_add_checked_fixture(tc, setup_host, teardown_host);
  tcase_set_timeout(tc, 120);
  return tc;
}

static char tmp_dir[256];

static void tmp_setup(void) {
  const char *base = getenv("TMPDIR");
  snprintf(tmp_dir, sizeof tmp_dir, "%s/skd_test_XXXXXX", base && *base ? base : "/tmp");
  ck_assert_msg(mkdtemp(tmp_dir) != NULL, "cannot create a temporary directory under %s", base ? base : "/tmp");
}

static int tmp_remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  return remove(path);
}

static void tmp_teardown(void) {
  if (tmp_dir[0]) nftw(tmp_dir, tmp_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  tmp_dir[0] = '\0';
}

void support_add_tmpdir(TCase *tc) { tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown); }

const char *tmp_path(const char *rel) {
  static char buf[8][512];
  static int k;
  ck_assert_msg(tmp_dir[0], "tmp_path without support_add_tmpdir");
  k = (k + 1) % 8;
  snprintf(buf[k], sizeof buf[k], "%s/%s", tmp_dir, rel);
  return buf[k];
}

/* Probes for a device in a child process so that the parent (which forks
 * every test) never touches OpenCL itself. */
static int device_available(void) {
  pid_t pid = fork();
  if (pid < 0) return 1; /* cannot tell: let the tests speak */
  if (pid == 0) {
    skd_context *ctx = NULL;
    if (skd_context_create(&ctx, NULL) != SKD_OK) {
      fprintf(stderr, "no usable OpenCL device: %s\n", skd_error_last());
      _exit(77);
    }
    skd_context_free(ctx);
    _exit(0);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) return 1;
  return !(WIFEXITED(status) && WEXITSTATUS(status) == 77);
}

int support_main_host(Suite *s) {
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}

int support_main(Suite *s) {
  if (!device_available()) return 77;
  return support_main_host(s);
}

static void *track(void *p) {
  ck_assert_msg(p != NULL, "host allocation failed");
  ck_assert_msg(nhost < (int)(sizeof host_list / sizeof host_list[0]), "too many host arrays in one test");
  host_list[nhost++] = p;
  return p;
}

void host_seed(unsigned seed) { rng_state = seed ? seed : 1u; }

static float uniform(void) {
  rng_state = rng_state * 1664525u + 1013904223u;
  return (float)((rng_state >> 8) & 0xFFFFFF) / 16777216.0f;
}

float *host_alloc(size_t n) { return track(calloc(n ? n : 1, sizeof(float))); }

float *host_random(size_t n, float lo, float hi) {
  float *x = host_alloc(n);
  for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * uniform();
  return x;
}

float *host_random_away_from_zero(size_t n, float lo, float hi, float gap) {
  float *x = host_random(n, lo, hi);
  for (size_t i = 0; i < n; i++)
    if (fabsf(x[i]) < gap) x[i] = x[i] < 0 ? -gap - fabsf(x[i]) : gap + x[i];
  return x;
}

float *host_copy(const float *x, size_t n) {
  float *y = host_alloc(n);
  memcpy(y, x, n * sizeof(float));
  return y;
}

skd_tensor dev_tensor(int n, int c, int h, int w) {
  skd_tensor t = {NULL, GUARD, n, c, h, w};
  size_t numel = skd_tensor_numel(&t);
  size_t total = numel + 2 * GUARD;
  ck_assert_msg(nguarded < MAX_TRACKED, "too many device tensors in one test");
  CK_OK(skd_buffer_create(T, total * sizeof(float), "test tensor", &t.mem));
  float *fill = malloc(total * sizeof(float));
  ck_assert(fill != NULL);
  for (size_t i = 0; i < total; i++) fill[i] = SENTINEL;
  cl_int err = clEnqueueWriteBuffer(T->queue, t.mem, CL_TRUE, 0, total * sizeof(float), fill, 0, NULL, NULL);
  free(fill);
  CK_OK(skd_cl_check(err, "guard fill"));
  guarded_list[nguarded].mem = t.mem;
  guarded_list[nguarded].numel = numel;
  nguarded++;
  return t;
}

skd_tensor dev_upload(const float *host, int n, int c, int h, int w) {
  skd_tensor t = dev_tensor(n, c, h, w);
  CK_OK(skd_tensor_upload(T, &t, host));
  return t;
}

skd_tensor dev_zeros(int n, int c, int h, int w) {
  skd_tensor t = dev_tensor(n, c, h, w);
  CK_OK(skd_tensor_fill(T, &t, 0.0f));
  return t;
}

void dev_download(const skd_tensor *t, float *host) { CK_OK(skd_tensor_download(T, t, host)); }

float *dev_fetch(const skd_tensor *t) {
  float *h = host_alloc(skd_tensor_numel(t));
  dev_download(t, h);
  return h;
}

void support_check_guards(void) {
  float guard[GUARD];
  for (int i = 0; i < nguarded; i++) {
    size_t after = GUARD + guarded_list[i].numel;
    size_t where[2] = {0, after};
    for (int side = 0; side < 2; side++) {
      cl_int err = clEnqueueReadBuffer(T->queue, guarded_list[i].mem, CL_TRUE, where[side] * sizeof(float),
                                       sizeof guard, guard, 0, NULL, NULL);
      CK_OK(skd_cl_check(err, "guard read"));
      for (int j = 0; j < GUARD; j++)
        ck_assert_msg(guard[j] == SENTINEL, "guard region %s tensor %d was written at +%d",
                      side ? "after" : "before", i, j);
    }
  }
}

int dev_mark(void) { return nguarded; }

void dev_release_to(int mark) {
  support_check_guards();
  for (int i = mark; i < nguarded; i++) clReleaseMemObject(guarded_list[i].mem);
  if (mark < nguarded) nguarded = mark;
}

double rel_error(const float *a, const float *b, size_t n) {
  double scale = 1e-6, diff = 0.0;
  for (size_t i = 0; i < n; i++) {
    double m = fabs((double)b[i]);
    if (m > scale) scale = m;
    double d = fabs((double)a[i] - (double)b[i]);
    if (d > diff || isnan(d)) diff = isnan(d) ? INFINITY : d;
  }
  return diff / scale;
}

double fd_error(support_forward_fn f, void *user, float *x, size_t nx, const float *w, size_t ny,
                const float *dx_analytic, float eps) {
  float *y = malloc(ny * sizeof(float));
  float *fd = malloc(nx * sizeof(float));
  ck_assert(y && fd);
  for (size_t j = 0; j < nx; j++) {
    float saved = x[j];
    double l[2];
    for (int s = 0; s < 2; s++) {
      x[j] = saved + (s ? -eps : eps);
      f(user, x, y);
      double acc = 0.0;
      for (size_t i = 0; i < ny; i++) acc += (double)w[i] * (double)y[i];
      l[s] = acc;
    }
    x[j] = saved;
    fd[j] = (float)((l[0] - l[1]) / (2.0 * (double)eps));
  }
  double e = rel_error(dx_analytic, fd, nx);
  free(y);
  free(fd);
  return e;
}

void check_error(const char *op, const char *check, double value, double tolerance) {
  printf("ERROR %-28s %-28s %.3e (tolerance %.1e)\n", op, check, value, tolerance);
  fflush(stdout);
  const char *path = getenv("SKD_TEST_ERRLOG");
  if (path && *path) {
    char line[256];
    int len = snprintf(line, sizeof line, "%s\t%s\t%.6e\n", op, check, value);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd >= 0) {
      if (write(fd, line, (size_t)len) < 0) { /* the log is best effort */ }
      close(fd);
    }
  }
  ck_assert_msg(value <= tolerance, "%s %s: error %.3e above tolerance %.1e", op, check, value, tolerance);
}
