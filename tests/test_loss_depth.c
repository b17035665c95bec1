/* Depth over log10 bins (skd_depth_loss, skd_depth_from_bins and its
 * backward): device vs PyTorch (reference/depth.bin from gen_depth.py), the
 * plain-C reference vs PyTorch, device vs the C reference on awkward shapes,
 * finite differences of the device forwards, hand-computed cases and bad
 * arguments. */
#include "support.h"

#include "reference_file.h"
#include "skd/loss/depth.h"

static size_t numel4(int n, int c, int h, int w) { return (size_t)n * c * h * w; }

static double rel1(double a, double ref) { return fabs(a - ref) / fmax(fabs(ref), 1e-6); }

/* Device loss; dz NULL or accumulated into (uploaded and downloaded). */
static float dev_loss(const skd_depth_bins *b, int n, int h, int w, const float *z, const float *depth,
                      float grad_scale, float *dz) {
  int mark = dev_mark();
  skd_tensor tz = dev_upload(z, n, b->bins, h, w), td = dev_upload(depth, n, 1, h, w), tdz = {0};
  if (dz) tdz = dev_upload(dz, n, b->bins, h, w);
  skd_tensor tl = dev_tensor(1, 1, 1, 1);
  CK_OK(skd_depth_loss(T, b, &tz, &td, grad_scale, dz ? &tdz : NULL, &tl));
  float loss;
  dev_download(&tl, &loss);
  if (dz) dev_download(&tdz, dz);
  dev_release_to(mark);
  return loss;
}

/* Device bins -> depth; with ddepth, dz accumulates the backward. */
static void dev_bins(const skd_depth_bins *b, int n, int h, int w, const float *z, float *depth,
                     const float *ddepth, float *dz) {
  int mark = dev_mark();
  skd_tensor tz = dev_upload(z, n, b->bins, h, w), td = dev_tensor(n, 1, h, w);
  CK_OK(skd_depth_from_bins(T, b, &tz, &td));
  if (ddepth) {
    skd_tensor tdd = dev_upload(ddepth, n, 1, h, w), tdz = dev_upload(dz, n, b->bins, h, w);
    CK_OK(skd_depth_from_bins_backward(T, b, &tz, &td, &tdd, &tdz));
    dev_download(&tdz, dz);
  }
  dev_download(&td, depth);
  dev_release_to(mark);
}

START_TEST(vs_pytorch) {
  static const char *cases[] = {"a", "b", "c"};
  ref_file *f = ref_open("depth.bin");
  for (size_t k = 0; k < 3; k++) {
    char name[64], check[96];
#define GET(field) (snprintf(name, sizeof name, "%s." field, cases[k]), ref_get(f, name))
    const float *c = GET("config")->data;
    skd_depth_bins b = {(int)c[0], c[1], c[2]};
    const ref_array *rz = GET("logits"), *rd = GET("depth"), *rg = GET("grad");
    const ref_array *rdd = GET("ddepth"), *rp = GET("pred"), *rpg = GET("pred_grad");
    const double loss_ref = GET("loss")->data[0];
#undef GET
    const int n = rz->dims[0], h = rz->dims[2], w = rz->dims[3];
    ck_assert_int_eq(rz->dims[1], b.bins);
    const size_t nz = rz->numel, np = (size_t)n * h * w;
    /* Loss and gradient (grad_scale 0.5, accumulated onto a small dz0). */
    float *dz0 = host_random(nz, -0.01f, 0.01f), *dz = host_copy(dz0, nz), *want = host_alloc(nz);
    float loss = dev_loss(&b, n, h, w, rz->data, rd->data, 0.5f, dz);
    for (size_t i = 0; i < nz; i++) {
      dz[i] -= dz0[i];
      want[i] = 0.5f * rg->data[i];
    }
    snprintf(check, sizeof check, "%s loss vs torch", cases[k]);
    check_error("depth_loss", check, rel1(loss, loss_ref), 1e-5);
    snprintf(check, sizeof check, "%s grad vs torch", cases[k]);
    check_error("depth_loss", check, rel_error(dz, want, nz), 1e-5);
    float *gref = host_alloc(nz);
    double lr = skd_ref_depth_loss(&b, n, h, w, rz->data, rd->data, 1.0f, gref);
    snprintf(check, sizeof check, "%s C ref vs torch", cases[k]);
    check_error("depth_loss_ref", check, fmax(rel1(lr, loss_ref), rel_error(gref, rg->data, nz)), 1e-6);
    /* Bins -> depth and its backward. */
    float *pred = host_alloc(np), *pdz = host_alloc(nz), *pref = host_alloc(np), *pgref = host_alloc(nz);
    dev_bins(&b, n, h, w, rz->data, pred, rdd->data, pdz);
    snprintf(check, sizeof check, "%s bins->depth vs torch", cases[k]);
    check_error("depth_from_bins", check, rel_error(pred, rp->data, np), 1e-5);
    snprintf(check, sizeof check, "%s bins->depth grad vs torch", cases[k]);
    check_error("depth_from_bins", check, rel_error(pdz, rpg->data, nz), 1e-5);
    skd_ref_depth_from_bins(&b, n, h, w, rz->data, pref);
    skd_ref_depth_from_bins_backward(&b, n, h, w, rz->data, rdd->data, pgref);
    snprintf(check, sizeof check, "%s bins->depth C ref vs torch", cases[k]);
    check_error("depth_from_bins_ref", check, fmax(rel_error(pref, rp->data, np), rel_error(pgref, rpg->data, nz)),
                1e-6);
  }
  ref_close(f);
}
END_TEST

/* Depths at bin centres (never near an edge) with some missing. */
static float *random_depth(const skd_depth_bins *b, size_t n, float missing) {
  float *u = host_random(n, 0.0f, 1.0f), *j = host_random(n, 0.0f, (float)b->bins);
  float *d = host_alloc(n);
  for (size_t i = 0; i < n; i++)
    d[i] = u[i] < missing ? 0.0f : (float)pow(10.0, skd_depth_bin_centre(b, (int)floorf(j[i]) % b->bins));
  return d;
}

START_TEST(vs_reference_awkward) {
  /* More pixels than a work-group, odd planes, one pixel, 150 bins. */
  const int shapes[][3] = {{2, 17, 19}, {1, 1, 1}, {3, 7, 5}, {1, 33, 31}};
  const skd_depth_bins bins[] = {{60, 0.5f, 10.0f}, {150, 0.1f, 10.0f}, {2, 1.0f, 2.0f}};
  for (size_t s = 0; s < 4; s++)
    for (size_t k = 0; k < 3; k++) {
      const skd_depth_bins *b = &bins[k];
      const int n = shapes[s][0], h = shapes[s][1], w = shapes[s][2];
      size_t nz = numel4(n, b->bins, h, w), np = (size_t)n * h * w;
      float *z = host_random(nz, -4.0f, 4.0f), *d = random_depth(b, np, 0.25f);
      d[0] = 3.0f; /* at least one valid pixel */
      float *dz = host_alloc(nz), *dzr = host_alloc(nz);
      float loss = dev_loss(b, n, h, w, z, d, 1.3f, dz);
      double lr = skd_ref_depth_loss(b, n, h, w, z, d, 1.3f, dzr);
      char check[96];
      snprintf(check, sizeof check, "%dx%dx%dx%d loss+grad vs ref", n, b->bins, h, w);
      check_error("depth_loss", check, fmax(rel1(loss, lr), rel_error(dz, dzr, nz)), 1e-5);
      float *dd = host_random(np, -1.0f, 1.0f), *pred = host_alloc(np), *pz = host_alloc(nz);
      float *predr = host_alloc(np), *pzr = host_alloc(nz);
      dev_bins(b, n, h, w, z, pred, dd, pz);
      skd_ref_depth_from_bins(b, n, h, w, z, predr);
      skd_ref_depth_from_bins_backward(b, n, h, w, z, dd, pzr);
      snprintf(check, sizeof check, "%dx%dx%dx%d bins->depth fwd+bwd vs ref", n, b->bins, h, w);
      check_error("depth_from_bins", check, fmax(rel_error(pred, predr, np), rel_error(pz, pzr, nz)), 1e-5);
    }
}
END_TEST

struct fd_case {
  skd_depth_bins b;
  int n, h, w;
  const float *depth, *ddepth;
};

static void fd_loss(void *user, const float *x, float *y) {
  const struct fd_case *c = user;
  *y = dev_loss(&c->b, c->n, c->h, c->w, x, c->depth, 1.0f, NULL);
}

static void fd_bins(void *user, const float *x, float *y) {
  const struct fd_case *c = user;
  dev_bins(&c->b, c->n, c->h, c->w, x, y, NULL, NULL);
}

START_TEST(finite_differences) {
  struct fd_case c = {{7, 0.5f, 10.0f}, 2, 3, 2, NULL, NULL};
  size_t nz = numel4(c.n, c.b.bins, c.h, c.w), np = (size_t)c.n * c.h * c.w;
  float *z = host_random(nz, -2.0f, 2.0f);
  c.depth = random_depth(&c.b, np, 0.3f);
  float *dz = host_alloc(nz), one = 1.0f;
  dev_loss(&c.b, c.n, c.h, c.w, z, c.depth, 1.0f, dz);
  check_error("depth_loss", "dz vs fd 2x7x3x2", fd_error(fd_loss, &c, z, nz, &one, 1, dz, 1e-2f), 1e-3);
  /* bins -> depth: the backward with weights w gives d(sum w depth)/dz. */
  float *wts = host_random(np, -1.0f, 1.0f), *pred = host_alloc(np), *pz = host_alloc(nz);
  dev_bins(&c.b, c.n, c.h, c.w, z, pred, wts, pz);
  check_error("depth_from_bins", "dz vs fd 2x7x3x2", fd_error(fd_bins, &c, z, nz, wts, np, pz, 1e-2f), 1e-3);
}
END_TEST

START_TEST(hand_computed) {
  /* Two bins over [1, 100] m: w = 1, centres 0.5 and 1.5 (log10).
   * Depth 2 m -> bin 0; q = (1, e^-0.2) / (1 + e^-0.2) = (0.549834, 0.450166).
   * Logits (0, 0): softmax (1/2, 1/2), loss = ln 2 = 0.6931472 (sum q = 1),
   * gradient p - q = (-0.049834, 0.049834). Depth 50 m -> bin 1 (mirror).
   * bins -> depth: 10^(0.5 * 0.5 + 0.5 * 1.5) = 10 m. A missing pixel (0)
   * adds nothing and does not count in the mean. */
  const skd_depth_bins b = {2, 1.0f, 100.0f};
  const double q0 = 1.0 / (1.0 + exp(-0.2));
  const float z[] = {0, 0, 5, 0, 0, -5}, d[] = {2.0f, 50.0f, 0.0f};
  float dz[6] = {0}, pred[3];
  float loss = dev_loss(&b, 1, 1, 3, z, d, 1.0f, dz);
  const float want[] = {(float)((0.5 - q0) / 2), (float)((0.5 - (1 - q0)) / 2), 0,
                        (float)((0.5 - (1 - q0)) / 2), (float)((0.5 - q0) / 2), 0};
  check_error("depth_loss", "hand 2 bins loss", rel1(loss, log(2.0)), 1e-6);
  check_error("depth_loss", "hand 2 bins grad", rel_error(dz, want, 6), 3e-6);
  dev_bins(&b, 1, 1, 3, z, pred, NULL, NULL);
  check_error("depth_from_bins", "hand uniform -> 10 m", rel1(pred[0], 10.0), 1e-6);
  /* All missing: loss 0, dz untouched. */
  const float none[] = {0.0f, 0.0f, NAN};
  float dz2[6] = {1, 2, 3, 4, 5, 6};
  loss = dev_loss(&b, 1, 1, 3, z, none, 1.0f, dz2);
  ck_assert_msg(loss == 0.0f && dz2[0] == 1 && dz2[5] == 6, "all missing: loss %g", (double)loss);
  /* Bins of out-of-range depths clamp to the ends; the host helper agrees. */
  ck_assert_int_eq(skd_depth_bin_of(&b, 0.2f), 0);
  ck_assert_int_eq(skd_depth_bin_of(&b, 500.0f), 1);
  ck_assert_int_eq(skd_depth_bin_of(&b, 0.0f), -1);
}
END_TEST

static void expect_einval(skd_status st, const char *a) {
  ck_assert_int_eq(st, SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), a) != NULL, "message: %s", skd_error_last());
}

START_TEST(bad_arguments) {
  skd_depth_bins b = {4, 0.5f, 10.0f};
  skd_tensor z = dev_zeros(2, 4, 3, 3), d = dev_zeros(2, 1, 3, 3), bad_d = dev_zeros(2, 1, 3, 4);
  skd_tensor loss = dev_zeros(1, 1, 1, 1), bad_z = dev_zeros(2, 5, 3, 3);
  expect_einval(skd_depth_loss(T, &b, &bad_z, &d, 1.0f, NULL, &loss), "4 bins");
  expect_einval(skd_depth_loss(T, &b, &z, &bad_d, 1.0f, NULL, &loss), "depth");
  expect_einval(skd_depth_loss(T, &b, &z, &d, 1.0f, &bad_z, &loss), "dlogits");
  expect_einval(skd_depth_from_bins(T, &b, &z, &z), "depth_out");
  b.d_max = 0.4f;
  expect_einval(skd_depth_loss(T, &b, &z, &d, 1.0f, NULL, &loss), "depth_max");
  b.d_max = 10.0f;
  b.d_min = 0.0f;
  expect_einval(skd_depth_from_bins(T, &b, &z, &d), "depth_min");
  b.d_min = 0.5f;
  b.bins = 1;
  expect_einval(skd_depth_from_bins(T, &b, &z, &d), "bins");
}
END_TEST

int main(void) {
  Suite *s = suite_create("loss_depth");
  TCase *tc = support_tcase("loss_depth");
  tcase_add_test(tc, vs_pytorch);
  tcase_add_test(tc, vs_reference_awkward);
  tcase_add_test(tc, finite_differences);
  tcase_add_test(tc, hand_computed);
  tcase_add_test(tc, bad_arguments);
  suite_add_tcase(s, tc);
  return support_main(s);
}
