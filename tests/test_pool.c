/* Max pool (ceil_mode), adaptive average pool and bilinear resize
 * (align_corners): device vs plain-C reference, backward vs reference and
 * vs finite differences of the device forward, both vs PyTorch
 * (tests/reference/gen_pool_resize.py), and bad input. */
#include "reference_file.h"
#include "support.h"

enum op { MAXPOOL, AVGPOOL, RESIZE };
static const char *op_names[] = {"maxpool2d", "adaptive_avgpool2d", "resize_bilinear"};

/* One op on one shape: x is (n, c, h, w); y is (n, c, oh, ow), where a max
 * pool's output size comes from its pool parameters. */
struct pcase {
  enum op op;
  int n, c, h, w;
  int oh, ow;
  skd_pool2d pool;
};

static struct pcase maxpool_case(int n, int c, int h, int w, int k, int s, int p, int ceil_mode) {
  struct pcase pc = {MAXPOOL, n, c, h, w, 0, 0, {k, s, p, ceil_mode}};
  CK_OK(skd_pool2d_output_size(pc.pool, h, &pc.oh));
  CK_OK(skd_pool2d_output_size(pc.pool, w, &pc.ow));
  return pc;
}

static struct pcase sized_case(enum op op, int n, int c, int h, int w, int oh, int ow) {
  struct pcase pc = {op, n, c, h, w, oh, ow, {0, 0, 0, 0}};
  return pc;
}

static void dev_fwd(const struct pcase *pc, const skd_tensor *x, const skd_tensor *y) {
  if (pc->op == MAXPOOL) CK_OK(skd_maxpool2d_forward(T, x, y, pc->pool));
  if (pc->op == AVGPOOL) CK_OK(skd_adaptive_avgpool2d_forward(T, x, y));
  if (pc->op == RESIZE) CK_OK(skd_resize_bilinear_forward(T, x, y));
}

static void dev_bwd(const struct pcase *pc, const skd_tensor *x, const skd_tensor *dy, const skd_tensor *dx) {
  if (pc->op == MAXPOOL) CK_OK(skd_maxpool2d_backward(T, x, dy, dx, pc->pool));
  if (pc->op == AVGPOOL) CK_OK(skd_adaptive_avgpool2d_backward(T, dy, dx));
  if (pc->op == RESIZE) CK_OK(skd_resize_bilinear_backward(T, dy, dx));
}

static void ref_fwd(const struct pcase *pc, const float *x, float *y) {
  if (pc->op == MAXPOOL) skd_ref_maxpool2d_forward(x, y, pc->n, pc->c, pc->h, pc->w, pc->pool);
  if (pc->op == AVGPOOL) skd_ref_adaptive_avgpool2d_forward(x, y, pc->n, pc->c, pc->h, pc->w, pc->oh, pc->ow);
  if (pc->op == RESIZE) skd_ref_resize_bilinear_forward(x, y, pc->n, pc->c, pc->h, pc->w, pc->oh, pc->ow);
}

static void ref_bwd(const struct pcase *pc, const float *x, const float *dy, float *dx) {
  if (pc->op == MAXPOOL) skd_ref_maxpool2d_backward(x, dy, dx, pc->n, pc->c, pc->h, pc->w, pc->pool);
  if (pc->op == AVGPOOL) skd_ref_adaptive_avgpool2d_backward(dy, dx, pc->n, pc->c, pc->h, pc->w, pc->oh, pc->ow);
  if (pc->op == RESIZE) skd_ref_resize_bilinear_backward(dy, dx, pc->n, pc->c, pc->h, pc->w, pc->oh, pc->ow);
}

#define FD_MAX_INPUTS 1200
#define MAXPOOL_GAP 0.01f

/* Distinct values spaced `gap` apart in random order: a max pool has no ties,
 * and a perturbation below gap / 2 never changes a window's argmax. */
static float *distinct_values(size_t n, float gap) {
  float *x = host_alloc(n), *u = host_random(n, 0.0f, 1.0f);
  for (size_t i = 0; i < n; i++) x[i] = ((float)i - (float)n / 2) * gap;
  for (size_t i = n; i > 1; i--) { /* Fisher-Yates */
    size_t j = (size_t)(u[i - 1] * (float)i);
    if (j >= i) j = i - 1;
    float t = x[i - 1];
    x[i - 1] = x[j];
    x[j] = t;
  }
  return x;
}

/* "what NxCxHxW->OHxOW [kKsSpP[c]]" for the error log. */
static void describe(const struct pcase *pc, const char *what, char *out, size_t size) {
  int len = snprintf(out, size, "%s %dx%dx%dx%d->%dx%d", what, pc->n, pc->c, pc->h, pc->w, pc->oh, pc->ow);
  if (pc->op == MAXPOOL && len > 0 && (size_t)len < size)
    snprintf(out + len, size - (size_t)len, " k%ds%dp%d%s", pc->pool.kernel, pc->pool.stride, pc->pool.padding,
             pc->pool.ceil_mode ? "c" : "");
}

/* Finite differences reuse one pair of device tensors: a fresh buffer per
 * evaluation costs milliseconds on PoCL, and there are 2 * nx evaluations. */
struct fd_state {
  const struct pcase *pc;
  skd_tensor x, y;
};

static void fd_forward(void *user, const float *x, float *y) {
  const struct fd_state *fs = user;
  CK_OK(skd_tensor_upload(T, &fs->x, x));
  dev_fwd(fs->pc, &fs->x, &fs->y);
  dev_download(&fs->y, y);
}

/* Backward vs central finite differences of the device forward. Large
 * batches are checked on one image and channel of the same spatial shape
 * (the kernels treat every plane alike). */
static void fd_check(struct pcase pc) {
  size_t nx = (size_t)pc.n * pc.c * pc.h * pc.w;
  if (nx > FD_MAX_INPUTS) pc.n = pc.c = 1, nx = (size_t)pc.h * pc.w;
  if (nx > FD_MAX_INPUTS) return;
  size_t ny = (size_t)pc.n * pc.c * pc.oh * pc.ow;
  float *x = pc.op == MAXPOOL ? distinct_values(nx, MAXPOOL_GAP) : host_random(nx, -2.0f, 2.0f);
  float *dy = host_random(ny, -1.0f, 1.0f);
  struct fd_state fs = {&pc, dev_upload(x, pc.n, pc.c, pc.h, pc.w), dev_tensor(pc.n, pc.c, pc.oh, pc.ow)};
  skd_tensor tdy = dev_upload(dy, pc.n, pc.c, pc.oh, pc.ow), tdx = dev_zeros(pc.n, pc.c, pc.h, pc.w);
  dev_bwd(&pc, &fs.x, &tdy, &tdx);
  /* Max pool is piecewise linear: eps below half the gap keeps every argmax.
   * The other ops are linear, so a large eps only lowers rounding noise. */
  float eps = pc.op == MAXPOOL ? MAXPOOL_GAP / 4 : 0.25f;
  char label[96];
  describe(&pc, "bwd/fd", label, sizeof label);
  check_error(op_names[pc.op], label, fd_error(fd_forward, &fs, x, nx, dy, ny, dev_fetch(&tdx), eps), 1e-3);
}

static void run_case(struct pcase pc) {
  size_t nx = (size_t)pc.n * pc.c * pc.h * pc.w, ny = (size_t)pc.n * pc.c * pc.oh * pc.ow;
  float *x = pc.op == MAXPOOL ? distinct_values(nx, MAXPOOL_GAP) : host_random(nx, -2.0f, 2.0f);
  float *dy = host_random(ny, -1.0f, 1.0f);
  float *dx0 = host_random(nx, -1.0f, 1.0f); /* backward accumulates onto this */
  skd_tensor tx = dev_upload(x, pc.n, pc.c, pc.h, pc.w);
  skd_tensor ty = dev_tensor(pc.n, pc.c, pc.oh, pc.ow);
  skd_tensor tdy = dev_upload(dy, pc.n, pc.c, pc.oh, pc.ow);
  skd_tensor tdx = dev_upload(dx0, pc.n, pc.c, pc.h, pc.w);
  const char *name = op_names[pc.op];
  char label[96];
  dev_fwd(&pc, &tx, &ty);
  float *y = dev_fetch(&ty), *yref = host_alloc(ny);
  ref_fwd(&pc, x, yref);
  describe(&pc, "fwd/ref", label, sizeof label);
  check_error(name, label, rel_error(y, yref, ny), pc.op == MAXPOOL ? 0.0 : 1e-6);

  dev_bwd(&pc, &tx, &tdy, &tdx);
  float *dx = dev_fetch(&tdx), *dxref = host_copy(dx0, nx);
  ref_bwd(&pc, x, dy, dxref);
  describe(&pc, "bwd/ref", label, sizeof label);
  check_error(name, label, rel_error(dx, dxref, nx), 1e-6);

  fd_check(pc);
}

START_TEST(maxpool_shapes) {
  struct pcase cases[] = {
      maxpool_case(1, 3, 7, 5, 3, 2, 1, 1),  /* ResNet stem on odd sizes */
      maxpool_case(2, 5, 13, 9, 3, 2, 1, 1),
      maxpool_case(1, 3, 8, 6, 3, 2, 1, 1),  /* even sizes */
      maxpool_case(1, 3, 7, 5, 2, 2, 0, 1),  /* node pooling, partial last windows */
      maxpool_case(1, 3, 7, 5, 3, 3, 0, 1),
      maxpool_case(2, 5, 13, 9, 2, 2, 0, 1),
      maxpool_case(2, 5, 13, 9, 3, 3, 0, 1),
      maxpool_case(1, 3, 7, 5, 2, 2, 0, 0),  /* floor mode drops the partial windows */
      maxpool_case(1, 3, 7, 5, 3, 3, 1, 1),  /* last window would start in the padding */
      maxpool_case(1, 3, 7, 5, 2, 2, 1, 1),
      maxpool_case(1, 3, 2, 2, 3, 2, 1, 1),  /* smaller than the kernel */
      maxpool_case(2, 3, 31, 45, 3, 2, 1, 1), /* more than one work-group */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(cases[i]);
}
END_TEST

START_TEST(maxpool_output_sizes) {
  /* (in, k, s, p, ceil) -> PyTorch's output size. */
  static const int table[][6] = {{7, 3, 2, 1, 1, 4}, {5, 3, 2, 1, 1, 3}, {7, 2, 2, 0, 1, 4}, {7, 2, 2, 0, 0, 3},
                                 {5, 3, 3, 1, 1, 2}, {7, 2, 2, 1, 1, 4}, {5, 2, 2, 1, 1, 3}, {3, 3, 3, 0, 1, 1},
                                 {1, 3, 2, 1, 1, 1}, {512, 3, 2, 1, 1, 257}, {65, 8, 8, 0, 1, 9}};
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
    skd_pool2d p = {table[i][1], table[i][2], table[i][3], table[i][4]};
    int out = -1;
    CK_OK(skd_pool2d_output_size(p, table[i][0], &out));
    ck_assert_msg(out == table[i][5], "in %d k%d s%d p%d ceil %d: %d, expected %d", table[i][0], p.kernel,
                  p.stride, p.padding, p.ceil_mode, out, table[i][5]);
  }
}
END_TEST

/* The routing rule on ties and the NaN rule: the first maximum takes the
 * gradient; a NaN wins (PyTorch's `val > max || isnan(val)`). */
START_TEST(maxpool_ties_and_nan) {
  struct pcase pc = maxpool_case(1, 1, 3, 3, 3, 3, 0, 1);
  float x[9] = {1, 5, 5, 2, 5, 0, 3, 4, 5};
  float dy = 2.0f;
  float dxref[9] = {0, 2, 0, 0, 0, 0, 0, 0, 0};
  skd_tensor tx = dev_upload(x, 1, 1, 3, 3), ty = dev_tensor(1, 1, 1, 1);
  skd_tensor tdy = dev_upload(&dy, 1, 1, 1, 1), tdx = dev_zeros(1, 1, 3, 3);
  dev_fwd(&pc, &tx, &ty);
  dev_bwd(&pc, &tx, &tdy, &tdx);
  check_error("maxpool2d", "ties: first maximum", rel_error(dev_fetch(&tdx), dxref, 9), 0.0);
  x[4] = NAN;
  CK_OK(skd_tensor_upload(T, &tx, x));
  dev_fwd(&pc, &tx, &ty);
  ck_assert_msg(isnan(dev_fetch(&ty)[0]), "NaN must propagate through max pool");
}
END_TEST

START_TEST(adaptive_avgpool_shapes) {
  static const int shapes[][4] = {{1, 3, 7, 5}, {2, 5, 13, 9}, {1, 3, 4, 4}};
  static const int bins[] = {1, 2, 3, 6};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
    for (size_t b = 0; b < sizeof bins / sizeof bins[0]; b++)
      run_case(sized_case(AVGPOOL, shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], bins[b], bins[b]));
  run_case(sized_case(AVGPOOL, 1, 3, 2, 5, 6, 3));    /* H < bins along one axis only */
  run_case(sized_case(AVGPOOL, 2, 3, 60, 61, 6, 6));  /* PSP-like, large bins */
  run_case(sized_case(AVGPOOL, 1, 2, 7, 5, 7, 5));    /* identity */
}
END_TEST

START_TEST(resize_shapes) {
  run_case(sized_case(RESIZE, 1, 3, 7, 5, 29, 37));   /* up, odd sizes */
  run_case(sized_case(RESIZE, 1, 2, 33, 17, 5, 3));   /* down */
  run_case(sized_case(RESIZE, 2, 3, 33, 17, 5, 3));
  run_case(sized_case(RESIZE, 2, 3, 7, 5, 7, 5));     /* same size */
  run_case(sized_case(RESIZE, 2, 3, 7, 5, 1, 1));     /* to 1x1 */
  run_case(sized_case(RESIZE, 1, 2, 1, 1, 4, 6));     /* from 1x1 */
  run_case(sized_case(RESIZE, 1, 2, 9, 5, 9, 23));    /* one axis only */
  run_case(sized_case(RESIZE, 1, 2, 9, 9, 65, 65));   /* logits 8x to label size */
  run_case(sized_case(RESIZE, 2, 3, 10, 7, 73, 49));  /* 8x, not aligned to the corners' grid */
  run_case(sized_case(RESIZE, 1, 3, 97, 81, 13, 11)); /* image to logit size */
  run_case(sized_case(RESIZE, 1, 2, 3, 2, 3, 70));    /* x reads span more than RESIZE_MAX_TAPS outputs */
  run_case(sized_case(RESIZE, 1, 2, 1, 1, 3, 90));    /* from 1x1, wide: every output reads it */
}
END_TEST

/* Our rules against PyTorch's: device and C reference, forward and backward. */
static void torch_case(const ref_file *f, const char *prefix, struct pcase pc) {
  char key[64], label[96];
  const ref_array *rx, *ry, *rdy, *rdx;
  snprintf(key, sizeof key, "%s_x", prefix);
  rx = ref_get(f, key);
  snprintf(key, sizeof key, "%s_y", prefix);
  ry = ref_get(f, key);
  snprintf(key, sizeof key, "%s_dy", prefix);
  rdy = ref_get(f, key);
  snprintf(key, sizeof key, "%s_dx", prefix);
  rdx = ref_get(f, key);
  pc.n = rx->dims[0], pc.c = rx->dims[1], pc.h = rx->dims[2], pc.w = rx->dims[3];
  if (pc.op == MAXPOOL) {
    CK_OK(skd_pool2d_output_size(pc.pool, pc.h, &pc.oh));
    CK_OK(skd_pool2d_output_size(pc.pool, pc.w, &pc.ow));
  } else {
    pc.oh = ry->dims[2], pc.ow = ry->dims[3];
  }
  ck_assert_msg(ry->dims[2] == pc.oh && ry->dims[3] == pc.ow, "%s: output %dx%d, PyTorch %dx%d", prefix, pc.oh,
                pc.ow, ry->dims[2], ry->dims[3]);
  size_t nx = rx->numel, ny = ry->numel;
  skd_tensor tx = dev_upload(rx->data, pc.n, pc.c, pc.h, pc.w), ty = dev_tensor(pc.n, pc.c, pc.oh, pc.ow);
  skd_tensor tdy = dev_upload(rdy->data, pc.n, pc.c, pc.oh, pc.ow), tdx = dev_zeros(pc.n, pc.c, pc.h, pc.w);
  dev_fwd(&pc, &tx, &ty);
  dev_bwd(&pc, &tx, &tdy, &tdx);
  snprintf(label, sizeof label, "fwd/torch %s", prefix);
  check_error(op_names[pc.op], label, rel_error(dev_fetch(&ty), ry->data, ny), 1e-6);
  snprintf(label, sizeof label, "bwd/torch %s", prefix);
  check_error(op_names[pc.op], label, rel_error(dev_fetch(&tdx), rdx->data, nx), 1e-6);

  float *y = host_alloc(ny), *dx = host_alloc(nx);
  ref_fwd(&pc, rx->data, y);
  ref_bwd(&pc, rx->data, rdy->data, dx);
  snprintf(label, sizeof label, "ref fwd/torch %s", prefix);
  check_error(op_names[pc.op], label, rel_error(y, ry->data, ny), 1e-6);
  snprintf(label, sizeof label, "ref bwd/torch %s", prefix);
  check_error(op_names[pc.op], label, rel_error(dx, rdx->data, nx), 1e-6);
}

START_TEST(vs_pytorch) {
  ref_file *f = ref_open("pool_resize.bin");
  struct pcase mp = {MAXPOOL, 0, 0, 0, 0, 0, 0, {0, 0, 0, 1}};
  static const struct {
    const char *name;
    int k, s, p, ceil_mode;
  } pools[] = {{"mp_k3s2p1", 3, 2, 1, 1}, {"mp_k2s2", 2, 2, 0, 1},   {"mp_k3s3", 3, 3, 0, 1},
               {"mp_k3s3p1", 3, 3, 1, 1}, {"mp_k2s2p1", 2, 2, 1, 1}, {"mp_k2s2_floor", 2, 2, 0, 0},
               {"mp_ties", 3, 2, 1, 1}};
  for (size_t i = 0; i < sizeof pools / sizeof pools[0]; i++) {
    mp.pool = (skd_pool2d){pools[i].k, pools[i].s, pools[i].p, pools[i].ceil_mode};
    torch_case(f, pools[i].name, mp);
  }
  static const char *avg[] = {"ap_7x5_1", "ap_7x5_2", "ap_7x5_3", "ap_7x5_6", "ap_4x4_6"};
  for (size_t i = 0; i < sizeof avg / sizeof avg[0]; i++) torch_case(f, avg[i], sized_case(AVGPOOL, 0, 0, 0, 0, 0, 0));
  static const char *rs[] = {"rs_up", "rs_down", "rs_same", "rs_one"};
  for (size_t i = 0; i < sizeof rs / sizeof rs[0]; i++) torch_case(f, rs[i], sized_case(RESIZE, 0, 0, 0, 0, 0, 0));
  ref_close(f);
}
END_TEST

static void expect_einval(skd_status st, const char *needle) {
  ck_assert_msg(st == SKD_EINVAL, "expected SKD_EINVAL, got %s (%s)", skd_status_name(st), skd_error_last());
  ck_assert_msg(strstr(skd_error_last(), needle) != NULL, "message '%s' lacks '%s'", skd_error_last(), needle);
}

START_TEST(bad_input) {
  skd_tensor x = dev_zeros(1, 3, 7, 5), y = dev_zeros(1, 3, 4, 3), dx = dev_zeros(1, 3, 7, 5);
  skd_pool2d stem = {3, 2, 1, 1};
  CK_OK(skd_maxpool2d_forward(T, &x, &y, stem));
  skd_tensor wrong = dev_zeros(1, 3, 4, 4);
  expect_einval(skd_maxpool2d_forward(T, &x, &wrong, stem), "maxpool2d forward: y: expected shape (1, 3, 4, 3)");
  expect_einval(skd_maxpool2d_backward(T, &x, &wrong, &dx, stem), "maxpool2d backward: dy");
  expect_einval(skd_maxpool2d_backward(T, &x, &y, &wrong, stem), "maxpool2d backward: dx");
  skd_tensor small = dev_zeros(1, 3, 2, 2), one = dev_zeros(1, 3, 1, 1);
  expect_einval(skd_maxpool2d_forward(T, &small, &one, (skd_pool2d){3, 1, 0, 0}), "output size 0 < 1");
  expect_einval(skd_maxpool2d_forward(T, &x, &y, (skd_pool2d){3, 2, 2, 1}), "padding (2) must be at most half");
  expect_einval(skd_maxpool2d_forward(T, &x, &y, (skd_pool2d){3, 0, 1, 1}), "stride (0)");
  int out = 7;
  expect_einval(skd_pool2d_output_size((skd_pool2d){2, 2, 0, 0}, 1, &out), "output size 0 < 1");
  ck_assert_int_eq(out, 0);

  skd_tensor empty = dev_tensor(1, 3, 0, 2), other_c = dev_zeros(1, 4, 2, 2);
  expect_einval(skd_adaptive_avgpool2d_forward(T, &x, &empty), "output size (0, 2) must be >= 1");
  expect_einval(skd_adaptive_avgpool2d_forward(T, &x, &other_c), "adaptive_avgpool2d forward: y: expected shape");
  expect_einval(skd_adaptive_avgpool2d_backward(T, &other_c, &dx), "adaptive_avgpool2d backward: dy");
  expect_einval(skd_resize_bilinear_forward(T, &x, &empty), "resize_bilinear forward: y: output size");
  expect_einval(skd_resize_bilinear_forward(T, &x, &other_c), "expected shape (1, 3, OH, OW)");
  expect_einval(skd_resize_bilinear_backward(T, &other_c, &dx), "resize_bilinear backward: dy");
  expect_einval(skd_resize_bilinear_backward(T, &y, &empty), "input size (0, 2)");
}
END_TEST

/* Same inputs, same bits: the gathers have a fixed summation order. */
START_TEST(deterministic) {
  struct pcase cases[] = {maxpool_case(2, 3, 31, 45, 3, 2, 1, 1), sized_case(AVGPOOL, 2, 3, 31, 45, 6, 6),
                          sized_case(RESIZE, 2, 3, 31, 45, 241, 353)};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const struct pcase *pc = &cases[i];
    size_t nx = (size_t)pc->n * pc->c * pc->h * pc->w;
    float *dy = host_random((size_t)pc->n * pc->c * pc->oh * pc->ow, -1.0f, 1.0f);
    skd_tensor tx = dev_upload(host_random(nx, -1.0f, 1.0f), pc->n, pc->c, pc->h, pc->w);
    skd_tensor tdy = dev_upload(dy, pc->n, pc->c, pc->oh, pc->ow);
    float *runs[2];
    for (int r = 0; r < 2; r++) {
      skd_tensor tdx = dev_zeros(pc->n, pc->c, pc->h, pc->w);
      dev_bwd(pc, &tx, &tdy, &tdx);
      runs[r] = dev_fetch(&tdx);
    }
    ck_assert_msg(memcmp(runs[0], runs[1], nx * sizeof(float)) == 0, "%s backward differs between runs",
                  op_names[pc->op]);
  }
}
END_TEST

int main(void) {
  Suite *s = suite_create("pool");
  TCase *tc = support_tcase("pool");
  tcase_add_test(tc, maxpool_shapes);
  tcase_add_test(tc, maxpool_output_sizes);
  tcase_add_test(tc, maxpool_ties_and_nan);
  tcase_add_test(tc, adaptive_avgpool_shapes);
  tcase_add_test(tc, resize_shapes);
  tcase_add_test(tc, vs_pytorch);
  tcase_add_test(tc, bad_input);
  tcase_add_test(tc, deterministic);
  suite_add_tcase(s, tc);
  return support_main(s);
}
