/* Spectral normalisation: device vs reference (forward with 0, 1 and 3
 * power iterations, backward), backward vs finite differences of the device
 * forward with u and v fixed, vs torch.nn.utils.spectral_norm, determinism
 * and bad input. */
#include "reference_file.h"
#include "support.h"

/* A random unit vector, as PyTorch initialises u and v. */
static float *random_unit(int n) {
  float *x = host_random((size_t)n, -1.0f, 1.0f);
  double ss = 0.0;
  for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
  for (int i = 0; i < n; i++) x[i] = (float)(x[i] / sqrt(ss));
  return x;
}

static double max3(double a, double b, double c) { return fmax(a, fmax(b, c)); }

static void run_case(int n, int c, int h, int w, int iterations) {
  int rows = n, cols = c * h * w;
  size_t numel = (size_t)rows * cols;
  float *wt = host_random(numel, -1.0f, 1.0f);
  float *u = random_unit(rows), *v = random_unit(cols);
  float *dwsn = host_random(numel, -1.0f, 1.0f), *dw0 = host_random(numel, -1.0f, 1.0f);
  if (iterations == 0) {
    /* Eval mode runs with trained u, v; random ones make sigma = u.Wv an
     * ill-conditioned sum, which measures cancellation, not the op. */
    float sg, *scratch = host_alloc(numel);
    skd_ref_spectral_norm_forward(wt, rows, cols, u, v, 2, &sg, scratch);
  }
  skd_tensor tw = dev_upload(wt, n, c, h, w), tu = dev_upload(u, 1, 1, 1, rows), tv = dev_upload(v, 1, 1, 1, cols);
  skd_tensor tsigma = dev_tensor(1, 1, 1, 1), twsn = dev_tensor(n, c, h, w);
  skd_tensor tdwsn = dev_upload(dwsn, n, c, h, w), tdw = dev_upload(dw0, n, c, h, w);
  CK_OK(skd_spectral_norm_forward(T, &tw, &tu, &tv, iterations, &tsigma, &twsn));
  float sigma;
  float *wsn = host_alloc(numel);
  float *u_before = host_copy(u, rows), *v_before = host_copy(v, cols);
  skd_ref_spectral_norm_forward(wt, rows, cols, u, v, iterations, &sigma, wsn);
  char check[64];
  snprintf(check, sizeof check, "fwd u,v (%d it) %dx%dx%dx%d", iterations, n, c, h, w);
  check_error("spectral_norm", check,
              fmax(rel_error(dev_fetch(&tu), u, rows), rel_error(dev_fetch(&tv), v, cols)), 1e-5);
  if (iterations == 0)
    ck_assert_msg(rel_error(dev_fetch(&tu), u_before, rows) == 0.0 && rel_error(dev_fetch(&tv), v_before, cols) == 0.0,
                  "0 iterations must leave u and v alone");
  snprintf(check, sizeof check, "fwd sigma,w_sn (%d it) %dx%dx%dx%d", iterations, n, c, h, w);
  check_error("spectral_norm", check,
              fmax(rel_error(dev_fetch(&tsigma), &sigma, 1), rel_error(dev_fetch(&twsn), wsn, numel)), 1e-5);

  CK_OK(skd_spectral_norm_backward(T, &tw, &tu, &tv, &tsigma, &tdwsn, &tdw));
  float *dwref = host_copy(dw0, numel);
  /* The device's u, v and sigma, so that only the backward is compared. */
  skd_ref_spectral_norm_backward(wt, rows, cols, dev_fetch(&tu), dev_fetch(&tv), *dev_fetch(&tsigma), dwsn, dwref);
  float *dw = dev_fetch(&tdw);
  snprintf(check, sizeof check, "bwd vs ref %dx%dx%dx%d", n, c, h, w);
  check_error("spectral_norm", check, rel_error(dw, dwref, numel), 1e-5);

  /* Same inputs, same bits (the reductions have a fixed order). */
  skd_tensor da = dev_zeros(n, c, h, w), db = dev_zeros(n, c, h, w);
  CK_OK(skd_spectral_norm_backward(T, &tw, &tu, &tv, &tsigma, &tdwsn, &da));
  CK_OK(skd_spectral_norm_backward(T, &tw, &tu, &tv, &tsigma, &tdwsn, &db));
  ck_assert_msg(memcmp(dev_fetch(&da), dev_fetch(&db), numel * sizeof(float)) == 0, "backward not reproducible");
  float s1 = *dev_fetch(&tsigma);
  CK_OK(skd_spectral_norm_forward(T, &tw, &tu, &tv, 0, &tsigma, &twsn));
  float s2 = *dev_fetch(&tsigma);
  ck_assert_msg(memcmp(&s1, &s2, sizeof s1) == 0, "sigma not reproducible: %.9g vs %.9g", s1, s2);
}

START_TEST(vs_reference) {
  int shapes[][4] = {{5, 3, 3, 3}, {1, 7, 1, 1}, {7, 1, 1, 1}, {33, 130, 1, 1}, {64, 64, 4, 4}, {256, 128, 3, 3}};
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
    for (int it = 0; it <= 3; it += it == 0 ? 1 : 2) run_case(shapes[i][0], shapes[i][1], shapes[i][2], shapes[i][3], it);
}
END_TEST

struct fd_case {
  int n, c, h, w;
  const float *u, *v;
};

/* The device forward with u and v fixed (0 iterations): what the backward
 * differentiates. */
static void fd_forward(void *user, const float *x, float *y) {
  const struct fd_case *c = user;
  int mark = dev_mark();
  int rows = c->n, cols = c->c * c->h * c->w;
  skd_tensor tw = dev_upload(x, c->n, c->c, c->h, c->w);
  skd_tensor tu = dev_upload(c->u, 1, 1, 1, rows), tv = dev_upload(c->v, 1, 1, 1, cols);
  skd_tensor tsigma = dev_tensor(1, 1, 1, 1), twsn = dev_tensor(c->n, c->c, c->h, c->w);
  CK_OK(skd_spectral_norm_forward(T, &tw, &tu, &tv, 0, &tsigma, &twsn));
  dev_download(&twsn, y);
  dev_release_to(mark);
}

START_TEST(vs_finite_differences) {
  int shapes[][4] = {{5, 3, 3, 3}, {4, 2, 2, 1}, {1, 9, 1, 1}};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    int n = shapes[s][0], c = shapes[s][1], h = shapes[s][2], w = shapes[s][3];
    int rows = n, cols = c * h * w;
    size_t numel = (size_t)rows * cols;
    float *wt = host_random(numel, -1.0f, 1.0f), *dwsn = host_random(numel, -1.0f, 1.0f);
    skd_tensor tw = dev_upload(wt, n, c, h, w);
    skd_tensor tu = dev_upload(random_unit(rows), 1, 1, 1, rows), tv = dev_upload(random_unit(cols), 1, 1, 1, cols);
    skd_tensor tsigma = dev_tensor(1, 1, 1, 1), twsn = dev_tensor(n, c, h, w);
    skd_tensor tdwsn = dev_upload(dwsn, n, c, h, w), tdw = dev_zeros(n, c, h, w);
    CK_OK(skd_spectral_norm_forward(T, &tw, &tu, &tv, 1, &tsigma, &twsn));
    CK_OK(skd_spectral_norm_backward(T, &tw, &tu, &tv, &tsigma, &tdwsn, &tdw));
    struct fd_case fc = {n, c, h, w, dev_fetch(&tu), dev_fetch(&tv)};
    char check[64];
    snprintf(check, sizeof check, "bwd vs fd %dx%dx%dx%d", n, c, h, w);
    check_error("spectral_norm", check, fd_error(fd_forward, &fc, wt, numel, dwsn, numel, dev_fetch(&tdw), 1e-3f),
                2e-3);
  }
}
END_TEST

START_TEST(vs_pytorch) {
  ref_file *f = ref_open("spectral.bin");
  const char *cases[] = {"small", "conv"};
  for (int ci = 0; ci < 2; ci++) {
    char name[64];
#define GET(x) (snprintf(name, sizeof name, "%s/%s", cases[ci], x), ref_get(f, name))
    const ref_array *w = GET("w");
    int n = w->dims[0], c = w->dims[1], h = w->dims[2], wd = w->dims[3];
    int rows = n, cols = c * h * wd;
    size_t numel = w->numel;
    skd_tensor tw = dev_upload(w->data, n, c, h, wd);
    skd_tensor tu = dev_upload(GET("u0")->data, 1, 1, 1, rows), tv = dev_upload(GET("v0")->data, 1, 1, 1, cols);
    skd_tensor tsigma = dev_tensor(1, 1, 1, 1), twsn = dev_tensor(n, c, h, wd);
    skd_tensor tdwsn = dev_upload(GET("dwsn")->data, n, c, h, wd), tdw = dev_zeros(n, c, h, wd);
    CK_OK(skd_spectral_norm_forward(T, &tw, &tu, &tv, 1, &tsigma, &twsn));
    char check[64];
    snprintf(check, sizeof check, "%s u,v after 1 call", cases[ci]);
    check_error("spectral_norm pytorch", check,
                fmax(rel_error(dev_fetch(&tu), GET("u1")->data, rows), rel_error(dev_fetch(&tv), GET("v1")->data, cols)),
                1e-5);
    snprintf(check, sizeof check, "%s sigma,w_sn", cases[ci]);
    check_error("spectral_norm pytorch", check,
                fmax(rel_error(dev_fetch(&tsigma), GET("sigma1")->data, 1),
                     rel_error(dev_fetch(&twsn), GET("wsn1")->data, numel)),
                1e-5);
    CK_OK(skd_spectral_norm_backward(T, &tw, &tu, &tv, &tsigma, &tdwsn, &tdw));
    snprintf(check, sizeof check, "%s dw", cases[ci]);
    check_error("spectral_norm pytorch", check, rel_error(dev_fetch(&tdw), GET("dw")->data, numel), 1e-5);
    CK_OK(skd_spectral_norm_forward(T, &tw, &tu, &tv, 1, &tsigma, &twsn));
    snprintf(check, sizeof check, "%s after 2 calls", cases[ci]);
    check_error("spectral_norm pytorch", check,
                max3(rel_error(dev_fetch(&tu), GET("u2")->data, rows), rel_error(dev_fetch(&tv), GET("v2")->data, cols),
                     rel_error(dev_fetch(&twsn), GET("wsn2")->data, numel)),
                1e-5);
#undef GET
  }
  ref_close(f);
}
END_TEST

START_TEST(bad_input) {
  skd_tensor w = dev_zeros(4, 3, 2, 2), u = dev_zeros(1, 1, 1, 4), v = dev_zeros(1, 1, 1, 12);
  skd_tensor bad = dev_zeros(1, 1, 1, 5), sigma = dev_zeros(1, 1, 1, 1), wsn = dev_zeros(4, 3, 2, 2);
  ck_assert_int_eq(skd_spectral_norm_forward(T, &w, &bad, &v, 1, &sigma, &wsn), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "spectral_norm: u: expected 4 values") != NULL, "message: %s",
                skd_error_last());
  ck_assert_int_eq(skd_spectral_norm_forward(T, &w, &u, &bad, 1, &sigma, &wsn), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "spectral_norm: v") != NULL, "message: %s", skd_error_last());
  ck_assert_int_eq(skd_spectral_norm_forward(T, &w, &u, &v, 1, &sigma, &v), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "spectral_norm: w_sn") != NULL, "message: %s", skd_error_last());
  ck_assert_int_eq(skd_spectral_norm_forward(T, &w, &u, &v, -1, &sigma, &wsn), SKD_EINVAL);
  ck_assert_int_eq(skd_spectral_norm_backward(T, &w, &u, &v, &sigma, &wsn, &bad), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "spectral_norm: dw") != NULL, "message: %s", skd_error_last());
}
END_TEST

int main(void) {
  Suite *s = suite_create("spectral");
  TCase *tc = support_tcase("spectral");
  tcase_add_test(tc, vs_reference);
  tcase_add_test(tc, vs_finite_differences);
  tcase_add_test(tc, vs_pytorch);
  tcase_add_test(tc, bad_input);
  suite_add_tcase(s, tc);
  return support_main(s);
}
