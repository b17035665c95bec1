/* Softmax, log-softmax (channels), row softmax (last axis) and
 * cross-entropy with an ignore label: device vs reference, backward vs
 * reference and vs finite differences of the device forward, cross-entropy
 * vs PyTorch, edge cases (all pixels ignored, invalid labels), determinism. */
#include "reference_file.h"
#include "support.h"

enum op { SOFTMAX, LOG_SOFTMAX, ROWS };
static const char *op_names[] = {"softmax", "log_softmax", "softmax_rows"};

struct sm_case {
  enum op op;
  int n, c, h, w;
  float lo, hi; /* range of x */
};

static void dev_forward(enum op op, const skd_tensor *x, const skd_tensor *y) {
  if (op == SOFTMAX) CK_OK(skd_softmax_forward(T, x, y));
  if (op == LOG_SOFTMAX) CK_OK(skd_log_softmax_forward(T, x, y));
  if (op == ROWS) CK_OK(skd_softmax_rows_forward(T, x, y));
}

static void dev_backward(enum op op, const skd_tensor *y, const skd_tensor *dy, const skd_tensor *dx) {
  if (op == SOFTMAX) CK_OK(skd_softmax_backward(T, y, dy, dx));
  if (op == LOG_SOFTMAX) CK_OK(skd_log_softmax_backward(T, y, dy, dx));
  if (op == ROWS) CK_OK(skd_softmax_rows_backward(T, y, dy, dx));
}

static void ref_forward(const struct sm_case *c, const float *x, float *y) {
  int hw = c->h * c->w;
  if (c->op == SOFTMAX) skd_ref_softmax_forward(x, y, c->n, c->c, hw);
  if (c->op == LOG_SOFTMAX) skd_ref_log_softmax_forward(x, y, c->n, c->c, hw);
  if (c->op == ROWS) skd_ref_softmax_rows_forward(x, y, c->n * c->c * c->h, c->w);
}

static void ref_backward(const struct sm_case *c, const float *y, const float *dy, float *dx) {
  int hw = c->h * c->w;
  if (c->op == SOFTMAX) skd_ref_softmax_backward(y, dy, dx, c->n, c->c, hw);
  if (c->op == LOG_SOFTMAX) skd_ref_log_softmax_backward(y, dy, dx, c->n, c->c, hw);
  if (c->op == ROWS) skd_ref_softmax_rows_backward(y, dy, dx, c->n * c->c * c->h, c->w);
}

static void fd_forward(void *user, const float *x, float *y) {
  const struct sm_case *c = user;
  int mark = dev_mark();
  skd_tensor tx = dev_upload(x, c->n, c->c, c->h, c->w);
  skd_tensor ty = dev_tensor(c->n, c->c, c->h, c->w);
  dev_forward(c->op, &tx, &ty);
  dev_download(&ty, y);
  dev_release_to(mark);
}

static void run_case(struct sm_case c) {
  size_t n = (size_t)c.n * c.c * c.h * c.w;
  float *x = host_random(n, c.lo, c.hi);
  float *dy = host_random(n, -1.0f, 1.0f);
  float *dx0 = host_random(n, -1.0f, 1.0f); /* backward accumulates onto this */
  skd_tensor tx = dev_upload(x, c.n, c.c, c.h, c.w);
  skd_tensor ty = dev_tensor(c.n, c.c, c.h, c.w);
  skd_tensor tdy = dev_upload(dy, c.n, c.c, c.h, c.w);
  skd_tensor tdx = dev_upload(dx0, c.n, c.c, c.h, c.w);
  char check[64];

  dev_forward(c.op, &tx, &ty);
  float *y = dev_fetch(&ty);
  float *yref = host_alloc(n);
  ref_forward(&c, x, yref);
  snprintf(check, sizeof check, "fwd vs ref %dx%dx%dx%d", c.n, c.c, c.h, c.w);
  check_error(op_names[c.op], check, rel_error(y, yref, n), 1e-5);

  /* Backward from the device output, so that only the backward differs. */
  dev_backward(c.op, &ty, &tdy, &tdx);
  float *dx = dev_fetch(&tdx);
  float *dxref = host_copy(dx0, n);
  ref_backward(&c, y, dy, dxref);
  snprintf(check, sizeof check, "bwd vs ref %dx%dx%dx%d", c.n, c.c, c.h, c.w);
  check_error(op_names[c.op], check, rel_error(dx, dxref, n), 1e-5);

  if (n <= 200) {
    float *grad = host_alloc(n);
    for (size_t i = 0; i < n; i++) grad[i] = dx[i] - dx0[i];
    snprintf(check, sizeof check, "bwd vs fd %dx%dx%dx%d", c.n, c.c, c.h, c.w);
    check_error(op_names[c.op], check, fd_error(fd_forward, &c, x, n, dy, n, grad, 1e-2f), 5e-3);
  }

  /* In place: y = x. */
  skd_tensor tin = dev_upload(x, c.n, c.c, c.h, c.w);
  dev_forward(c.op, &tin, &tin);
  snprintf(check, sizeof check, "in place %dx%dx%dx%d", c.n, c.c, c.h, c.w);
  check_error(op_names[c.op], check, rel_error(dev_fetch(&tin), y, n), 0.0);
}

START_TEST(channel_softmax) {
  struct sm_case shapes[] = {
      {SOFTMAX, 1, 3, 7, 5, -3.0f, 3.0f},   {SOFTMAX, 2, 19, 9, 13, -5.0f, 5.0f},
      {SOFTMAX, 1, 1, 1, 1, -1.0f, 1.0f},   {SOFTMAX, 3, 1, 4, 3, -1.0f, 1.0f},
      {SOFTMAX, 1, 150, 3, 5, -4.0f, 4.0f}, {SOFTMAX, 2, 5, 3, 4, -2.0f, 2.0f},
      /* Large logits: exp would overflow without the max subtraction. */
      {SOFTMAX, 2, 7, 5, 3, 200.0f, 230.0f},
  };
  for (int op = SOFTMAX; op <= LOG_SOFTMAX; op++)
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
      struct sm_case c = shapes[i];
      c.op = (enum op)op;
      run_case(c);
    }
}
END_TEST

START_TEST(row_softmax) {
  struct sm_case shapes[] = {
      {ROWS, 1, 1, 3, 7, -3.0f, 3.0f},     {ROWS, 1, 2, 3, 1, -1.0f, 1.0f},
      {ROWS, 2, 1, 4, 300, -5.0f, 5.0f},   {ROWS, 1, 1, 2, 257, -5.0f, 5.0f},
      {ROWS, 2, 1, 3, 4096, -8.0f, 8.0f},  {ROWS, 1, 3, 5, 33, -2.0f, 2.0f},
      {ROWS, 2, 1, 64, 64, -10.0f, 10.0f}, {ROWS, 1, 1, 3, 1000, 300.0f, 340.0f},
      {ROWS, 1, 2, 3, 9, -2.0f, 2.0f},
  };
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) run_case(shapes[i]);
}
END_TEST

/* Random labels in [0, c) with about `ignored` of them set to 255. */
static float *random_labels(size_t npix, int c, float ignored) {
  float *u = host_random(npix, 0.0f, 1.0f), *cls = host_random(npix, 0.0f, (float)c);
  float *l = host_alloc(npix);
  for (size_t i = 0; i < npix; i++) {
    l[i] = floorf(cls[i]);
    if (l[i] >= (float)c) l[i] = (float)(c - 1);
    if (u[i] < ignored) l[i] = 255.0f;
  }
  return l;
}

struct ce_case {
  int n, c, h, w;
  const float *labels;
};

static void ce_fd_forward(void *user, const float *x, float *y) {
  const struct ce_case *c = user;
  int mark = dev_mark();
  skd_tensor tx = dev_upload(x, c->n, c->c, c->h, c->w);
  skd_tensor tl = dev_upload(c->labels, c->n, 1, c->h, c->w);
  skd_tensor loss = dev_tensor(1, 1, 1, 1), count = dev_tensor(1, 1, 1, 1);
  CK_OK(skd_cross_entropy_forward(T, &tx, &tl, 255, &loss, &count));
  dev_download(&loss, y);
  dev_release_to(mark);
}

static void run_ce(int n, int c, int h, int w, float ignored) {
  size_t npix = (size_t)n * h * w, numel = npix * c;
  float *x = host_random(numel, -4.0f, 4.0f);
  float *labels = random_labels(npix, c, ignored);
  float *dx0 = host_random(numel, -1.0f, 1.0f);
  const float scale = 0.7f;
  skd_tensor tx = dev_upload(x, n, c, h, w), tl = dev_upload(labels, n, 1, h, w);
  skd_tensor loss = dev_tensor(1, 1, 1, 1), count = dev_tensor(1, 1, 1, 1);
  skd_tensor tdx = dev_upload(dx0, n, c, h, w);
  CK_OK(skd_cross_entropy_forward(T, &tx, &tl, 255, &loss, &count));
  CK_OK(skd_cross_entropy_backward(T, &tx, &tl, 255, &count, scale, &tdx));
  float got[2];
  dev_download(&loss, &got[0]);
  dev_download(&count, &got[1]);
  int ref_count = 0;
  float ref_loss = skd_ref_cross_entropy_forward(x, labels, n, c, h * w, 255, &ref_count);
  char check[64];
  snprintf(check, sizeof check, "loss vs ref %dx%dx%dx%d", n, c, h, w);
  check_error("cross_entropy", check, rel_error(&got[0], &ref_loss, 1), 1e-5);
  ck_assert_msg(got[1] == (float)ref_count, "count %g, expected %d", got[1], ref_count);
  float *dx = dev_fetch(&tdx), *dxref = host_copy(dx0, numel);
  skd_ref_cross_entropy_backward(x, labels, n, c, h * w, 255, scale, dxref);
  snprintf(check, sizeof check, "bwd vs ref %dx%dx%dx%d", n, c, h, w);
  check_error("cross_entropy", check, rel_error(dx, dxref, numel), 1e-5);

  /* Same inputs, same bits. */
  skd_tensor loss2 = dev_tensor(1, 1, 1, 1), count2 = dev_tensor(1, 1, 1, 1);
  CK_OK(skd_cross_entropy_forward(T, &tx, &tl, 255, &loss2, &count2));
  float again;
  dev_download(&loss2, &again);
  ck_assert_msg(memcmp(&again, &got[0], sizeof again) == 0, "loss not reproducible: %.9g vs %.9g", again, got[0]);

  if (numel <= 200) {
    float *grad = host_alloc(numel);
    for (size_t i = 0; i < numel; i++) grad[i] = (dx[i] - dx0[i]) / scale;
    struct ce_case cc = {n, c, h, w, labels};
    float one = 1.0f;
    snprintf(check, sizeof check, "bwd vs fd %dx%dx%dx%d", n, c, h, w);
    check_error("cross_entropy", check, fd_error(ce_fd_forward, &cc, x, numel, &one, 1, grad, 1e-2f), 5e-3);
  }
}

START_TEST(cross_entropy_shapes) {
  run_ce(1, 3, 7, 5, 0.2f);
  run_ce(2, 19, 33, 31, 0.3f);
  run_ce(1, 2, 1, 1, 0.0f);
  run_ce(1, 21, 65, 65, 0.1f);
  run_ce(2, 5, 190, 181, 0.1f); /* more pixels than the first pass's grid (256 x 256) */
  run_ce(2, 4, 5, 3, 0.5f);
  run_ce(2, 40, 6, 7, 0.2f); /* more classes than the kernels keep exps for (CE_MAX_C 32) */
}
END_TEST

START_TEST(cross_entropy_vs_pytorch) {
  ref_file *f = ref_open("softmax_ce.bin");
  const ref_array *logits = ref_get(f, "logits"), *labels = ref_get(f, "labels");
  const ref_array *loss = ref_get(f, "loss"), *count = ref_get(f, "count"), *grad = ref_get(f, "grad");
  const ref_array *sm = ref_get(f, "softmax"), *lsm = ref_get(f, "log_softmax");
  int n = logits->dims[0], c = logits->dims[1], h = logits->dims[2], w = logits->dims[3];
  size_t numel = logits->numel;
  skd_tensor tx = dev_upload(logits->data, n, c, h, w), tl = dev_upload(labels->data, n, 1, h, w);
  skd_tensor tloss = dev_tensor(1, 1, 1, 1), tcount = dev_tensor(1, 1, 1, 1);
  skd_tensor tdx = dev_zeros(n, c, h, w), ty = dev_tensor(n, c, h, w);
  CK_OK(skd_cross_entropy_forward(T, &tx, &tl, 255, &tloss, &tcount));
  CK_OK(skd_cross_entropy_backward(T, &tx, &tl, 255, &tcount, 1.0f, &tdx));
  check_error("cross_entropy", "loss vs pytorch", rel_error(dev_fetch(&tloss), loss->data, 1), 1e-5);
  check_error("cross_entropy", "count vs pytorch", rel_error(dev_fetch(&tcount), count->data, 1), 0.0);
  check_error("cross_entropy", "grad vs pytorch", rel_error(dev_fetch(&tdx), grad->data, numel), 1e-5);
  CK_OK(skd_softmax_forward(T, &tx, &ty));
  check_error("softmax", "fwd vs pytorch", rel_error(dev_fetch(&ty), sm->data, numel), 1e-5);
  CK_OK(skd_log_softmax_forward(T, &tx, &ty));
  check_error("log_softmax", "fwd vs pytorch", rel_error(dev_fetch(&ty), lsm->data, numel), 1e-5);
  ref_close(f);
}
END_TEST

START_TEST(cross_entropy_all_ignored) {
  int n = 2, c = 5, h = 9, w = 11;
  size_t npix = (size_t)n * h * w;
  float *x = host_random(npix * c, -3.0f, 3.0f), *labels = host_alloc(npix);
  for (size_t i = 0; i < npix; i++) labels[i] = 255.0f;
  skd_tensor tx = dev_upload(x, n, c, h, w), tl = dev_upload(labels, n, 1, h, w);
  skd_tensor loss = dev_tensor(1, 1, 1, 1), count = dev_tensor(1, 1, 1, 1), tdx = dev_zeros(n, c, h, w);
  CK_OK(skd_cross_entropy_forward(T, &tx, &tl, 255, &loss, &count));
  CK_OK(skd_cross_entropy_backward(T, &tx, &tl, 255, &count, 1.0f, &tdx));
  float l = *dev_fetch(&loss), k = *dev_fetch(&count);
  ck_assert_msg(l == 0.0f && k == 0.0f, "all ignored: loss %g count %g", l, k);
  float *dx = dev_fetch(&tdx), *zero = host_alloc(npix * c);
  check_error("cross_entropy", "all ignored grad", rel_error(dx, zero, npix * c), 0.0);
}
END_TEST

/* Labels outside [0, C) (and NaN): no out-of-bounds read (guards), NaN
 * loss, zero gradient at those pixels, and the valid pixels unaffected. */
START_TEST(cross_entropy_invalid_labels) {
  int n = 1, c = 4, h = 3, w = 5;
  size_t npix = (size_t)n * h * w, numel = npix * c;
  float *x = host_random(numel, -3.0f, 3.0f);
  float *labels = random_labels(npix, c, 0.2f);
  labels[1] = 4.0f;
  labels[6] = -1.0f;
  labels[9] = 1e30f;
  labels[12] = NAN;
  skd_tensor tx = dev_upload(x, n, c, h, w), tl = dev_upload(labels, n, 1, h, w);
  skd_tensor loss = dev_tensor(1, 1, 1, 1), count = dev_tensor(1, 1, 1, 1), tdx = dev_zeros(n, c, h, w);
  CK_OK(skd_cross_entropy_forward(T, &tx, &tl, 255, &loss, &count));
  CK_OK(skd_cross_entropy_backward(T, &tx, &tl, 255, &count, 1.0f, &tdx));
  int ref_count = 0;
  skd_ref_cross_entropy_forward(x, labels, n, c, h * w, 255, &ref_count);
  float l = *dev_fetch(&loss), k = *dev_fetch(&count);
  ck_assert_msg(isnan(l), "invalid labels must make the loss NaN, got %g", l);
  ck_assert_msg(k == (float)ref_count, "count %g, expected %d", k, ref_count);
  float *dx = dev_fetch(&tdx), *dxref = host_alloc(numel);
  skd_ref_cross_entropy_backward(x, labels, n, c, h * w, 255, 1.0f, dxref);
  check_error("cross_entropy", "invalid labels grad vs ref", rel_error(dx, dxref, numel), 1e-5);
  for (int k2 = 0; k2 < c; k2++) ck_assert(dx[1 + k2 * h * w] == 0.0f && dx[12 + k2 * h * w] == 0.0f);
}
END_TEST

START_TEST(shape_mismatch) {
  skd_tensor a = dev_zeros(1, 3, 4, 4), b = dev_zeros(1, 3, 4, 5), one = dev_zeros(1, 1, 1, 1);
  ck_assert_int_eq(skd_softmax_forward(T, &a, &b), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "softmax: y") != NULL, "message: %s", skd_error_last());
  ck_assert_int_eq(skd_log_softmax_backward(T, &a, &a, &b), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "log_softmax: dx") != NULL, "message: %s", skd_error_last());
  ck_assert_int_eq(skd_softmax_rows_backward(T, &a, &b, &a), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "softmax_rows: dy") != NULL, "message: %s", skd_error_last());
  skd_tensor labels = dev_zeros(1, 1, 4, 5);
  ck_assert_int_eq(skd_cross_entropy_forward(T, &a, &labels, 255, &one, &one), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "cross_entropy: labels") != NULL, "message: %s", skd_error_last());
  skd_tensor good = dev_zeros(1, 1, 4, 4);
  ck_assert_int_eq(skd_cross_entropy_forward(T, &a, &good, 255, &a, &one), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "cross_entropy: loss") != NULL, "message: %s", skd_error_last());
  ck_assert_int_eq(skd_cross_entropy_backward(T, &a, &good, 255, &one, 1.0f, &b), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "cross_entropy: dlogits") != NULL, "message: %s", skd_error_last());
}
END_TEST

int main(void) {
  Suite *s = suite_create("softmax");
  TCase *tc = support_tcase("softmax");
  tcase_add_test(tc, channel_softmax);
  tcase_add_test(tc, row_softmax);
  tcase_add_test(tc, cross_entropy_shapes);
  tcase_add_test(tc, cross_entropy_vs_pytorch);
  tcase_add_test(tc, cross_entropy_all_ignored);
  tcase_add_test(tc, cross_entropy_invalid_labels);
  tcase_add_test(tc, shape_mismatch);
  suite_add_tcase(s, tc);
  return support_main(s);
}
