/* ReLU, LeakyReLU, tanh, add, axpby: device vs reference, backward vs
 * reference and vs finite differences of the device forward. */
#include "support.h"

enum unary_op { RELU, LEAKY, TANH };
static const char *op_names[] = {"relu", "leaky_relu", "tanh"};

struct unary_case {
  enum unary_op op;
  int n, c, h, w;
};

static void dev_forward(enum unary_op op, const skd_tensor *x, const skd_tensor *y) {
  if (op == RELU) CK_OK(skd_relu_forward(T, x, y));
  if (op == LEAKY) CK_OK(skd_leaky_relu_forward(T, x, y, 0.1f));
  if (op == TANH) CK_OK(skd_tanh_forward(T, x, y));
}

static void ref_forward(enum unary_op op, const float *x, float *y, size_t n) {
  if (op == RELU) skd_ref_relu_forward(x, y, n);
  if (op == LEAKY) skd_ref_leaky_relu_forward(x, y, n, 0.1f);
  if (op == TANH) skd_ref_tanh_forward(x, y, n);
}

static void fd_forward(void *user, const float *x, float *y) {
  const struct unary_case *c = user;
  int mark = dev_mark();
  skd_tensor tx = dev_upload(x, c->n, c->c, c->h, c->w);
  skd_tensor ty = dev_tensor(c->n, c->c, c->h, c->w);
  dev_forward(c->op, &tx, &ty);
  dev_download(&ty, y);
  dev_release_to(mark);
}

static void run_unary(struct unary_case c) {
  size_t n = (size_t)c.n * c.c * c.h * c.w;
  /* Away from 0 so that finite differences never straddle a kink. */
  float *x = host_random_away_from_zero(n, -3.0f, 3.0f, 0.05f);
  float *dy = host_random(n, -1.0f, 1.0f);
  float *dx0 = host_random(n, -1.0f, 1.0f); /* backward accumulates onto this */
  skd_tensor tx = dev_upload(x, c.n, c.c, c.h, c.w);
  skd_tensor ty = dev_tensor(c.n, c.c, c.h, c.w);
  skd_tensor tdy = dev_upload(dy, c.n, c.c, c.h, c.w);
  skd_tensor tdx = dev_upload(dx0, c.n, c.c, c.h, c.w);
  dev_forward(c.op, &tx, &ty);
  float *y = dev_fetch(&ty);
  float *yref = host_alloc(n);
  ref_forward(c.op, x, yref, n);
  char check[64];
  snprintf(check, sizeof check, "fwd vs ref %dx%dx%dx%d", c.n, c.c, c.h, c.w);
  check_error(op_names[c.op], check, rel_error(y, yref, n), 1e-6);

  if (c.op == RELU) CK_OK(skd_relu_backward(T, &tx, &tdy, &tdx));
  if (c.op == LEAKY) CK_OK(skd_leaky_relu_backward(T, &tx, &tdy, &tdx, 0.1f));
  if (c.op == TANH) CK_OK(skd_tanh_backward(T, &ty, &tdy, &tdx));
  float *dx = dev_fetch(&tdx);
  float *dxref = host_copy(dx0, n);
  if (c.op == RELU) skd_ref_relu_backward(x, dy, dxref, n);
  if (c.op == LEAKY) skd_ref_leaky_relu_backward(x, dy, dxref, n, 0.1f);
  if (c.op == TANH) skd_ref_tanh_backward(yref, dy, dxref, n);
  snprintf(check, sizeof check, "bwd vs ref %dx%dx%dx%d", c.n, c.c, c.h, c.w);
  check_error(op_names[c.op], check, rel_error(dx, dxref, n), 1e-6);

  /* Finite differences on a small tensor: the gradient alone (dx starts at 0). */
  if (n <= 256) {
    float *grad = host_alloc(n);
    for (size_t i = 0; i < n; i++) grad[i] = dx[i] - dx0[i];
    snprintf(check, sizeof check, "bwd vs fd %dx%dx%dx%d", c.n, c.c, c.h, c.w);
    check_error(op_names[c.op], check, fd_error(fd_forward, &c, x, n, dy, n, grad, 1e-2f), 2e-3);
  }
}

START_TEST(unary_shapes) {
  struct unary_case shapes[] = {{RELU, 1, 3, 7, 5}, {RELU, 2, 13, 17, 9}, {RELU, 1, 1, 1, 1}};
  for (int op = RELU; op <= TANH; op++)
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
      shapes[i].op = (enum unary_op)op;
      run_unary(shapes[i]);
    }
}
END_TEST

START_TEST(in_place) {
  size_t n = 3 * 7 * 5;
  float *x = host_random(n, -2.0f, 2.0f);
  float *yref = host_alloc(n);
  skd_ref_leaky_relu_forward(x, yref, n, 0.2f);
  skd_tensor t = dev_upload(x, 1, 3, 7, 5);
  CK_OK(skd_leaky_relu_forward(T, &t, &t, 0.2f));
  check_error("leaky_relu", "in place vs ref", rel_error(dev_fetch(&t), yref, n), 1e-6);
}
END_TEST

START_TEST(add_and_axpby) {
  size_t n = 2 * 5 * 11 * 3;
  float *a = host_random(n, -1.0f, 1.0f), *b = host_random(n, -1.0f, 1.0f);
  float *ref = host_alloc(n);
  skd_ref_add_forward(a, b, ref, n);
  skd_tensor ta = dev_upload(a, 2, 5, 11, 3), tb = dev_upload(b, 2, 5, 11, 3), ty = dev_tensor(2, 5, 11, 3);
  CK_OK(skd_add_forward(T, &ta, &tb, &ty));
  check_error("add", "fwd vs ref", rel_error(dev_fetch(&ty), ref, n), 1e-6);
  /* y = 2a + 0.5 y */
  CK_OK(skd_axpby(T, 2.0f, &ta, 0.5f, &ty));
  for (size_t i = 0; i < n; i++) ref[i] = 2.0f * a[i] + 0.5f * ref[i];
  check_error("axpby", "vs ref", rel_error(dev_fetch(&ty), ref, n), 1e-6);
  /* beta = 0 ignores NaN in y */
  CK_OK(skd_tensor_fill(T, &ty, NAN));
  CK_OK(skd_axpby(T, 1.0f, &ta, 0.0f, &ty));
  check_error("axpby", "beta=0 over NaN", rel_error(dev_fetch(&ty), a, n), 0.0);
}
END_TEST

START_TEST(shape_mismatch) {
  skd_tensor a = dev_zeros(1, 3, 4, 4), b = dev_zeros(1, 3, 4, 5);
  skd_status st = skd_add_forward(T, &a, &b, &a);
  ck_assert_int_eq(st, SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "add: b") != NULL, "message: %s", skd_error_last());
  ck_assert_int_eq(skd_relu_forward(T, &a, &b), SKD_EINVAL);
}
END_TEST

int main(void) {
  Suite *s = suite_create("elementwise");
  TCase *tc = support_tcase("elementwise");
  tcase_add_test(tc, unary_shapes);
  tcase_add_test(tc, in_place);
  tcase_add_test(tc, add_and_axpby);
  tcase_add_test(tc, shape_mismatch);
  suite_add_tcase(s, tc);
  return support_main(s);
}
