/* Pixel-wise distillation loss (skd_pixel_loss): value, KL diagnostic and
 * student gradient vs the authors' PyTorch criterion (reference/loss_pixel.bin
 * from gen_loss_pixel.py), device vs the plain-C reference on awkward shapes,
 * finite differences of the device value, hand-computed cases pinning each
 * normalisation, masking, large logits and bad arguments. */
#include "support.h"

#include "reference_file.h"
#include "skd/loss/pixel.h"

static skd_pixel_loss_config config(float tau, int mask, skd_pixel_norm norm) {
  skd_pixel_loss_config cfg;
  skd_pixel_loss_config_default(&cfg);
  cfg.tau = tau;
  cfg.mask_ignore = mask;
  cfg.norm = norm;
  return cfg;
}

struct shape {
  int n, c, h, w;
};

static size_t numel(struct shape s) { return (size_t)s.n * s.c * s.h * s.w; }

/* Runs the device loss. dz: NULL (no gradient) or the host gradient that is
 * uploaded, accumulated into on the device and downloaded back. */
static void dev_loss(const skd_pixel_loss_config *cfg, struct shape s, const float *student, const float *teacher,
                     const float *labels, float grad_scale, float *dz, float *loss, float *kl) {
  int mark = dev_mark();
  skd_tensor ts = dev_upload(student, s.n, s.c, s.h, s.w);
  skd_tensor tt = dev_upload(teacher, s.n, s.c, s.h, s.w);
  skd_tensor tl = {0}, tdz = {0};
  if (labels) tl = dev_upload(labels, s.n, 1, s.h, s.w);
  if (dz) tdz = dev_upload(dz, s.n, s.c, s.h, s.w);
  skd_tensor tloss = dev_tensor(1, 1, 1, 1), tkl = dev_tensor(1, 1, 1, 1);
  CK_OK(skd_pixel_loss(T, cfg, &ts, &tt, labels ? &tl : NULL, grad_scale, dz ? &tdz : NULL, &tloss,
                       kl ? &tkl : NULL));
  dev_download(&tloss, loss);
  if (kl) dev_download(&tkl, kl);
  if (dz) dev_download(&tdz, dz);
  dev_release_to(mark);
}

/* |a - ref| / max(|ref|, 1e-6), as rel_error for one value, in double. */
static double rel1(double a, double ref) { return fabs(a - ref) / fmax(fabs(ref), 1e-6); }

/* Random class ids in [0, c) with about `ignore_fraction` of them 255. */
static float *random_labels(struct shape s, float ignore_fraction) {
  size_t n = (size_t)s.n * s.h * s.w;
  float *u = host_random(n, 0.0f, 1.0f);
  float *lab = host_random(n, 0.0f, (float)s.c);
  for (size_t i = 0; i < n; i++) lab[i] = u[i] < ignore_fraction ? 255.0f : floorf(lab[i]);
  return lab;
}

START_TEST(vs_pytorch) {
  /* {case, variant} as written by gen_loss_pixel.py; "authors" is their criterion. */
  static const char *cases[][2] = {
      {"a", "authors"}, {"a", "tau2"}, {"b", "authors"}, {"b", "tau3_mean"},
      {"c", "authors"}, {"c", "mean"}, {"c", "mask_ref_tau2"}, {"c", "mask_mean_tau1_5"}};
  ref_file *f = ref_open("loss_pixel.bin");
  const float grad_scale = 0.75f; /* lambda: dz += 0.75 dL/dz */
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    char name[128], check[96];
    snprintf(name, sizeof name, "%s.student", cases[k][0]);
    const ref_array *rs = ref_get(f, name);
    snprintf(name, sizeof name, "%s.teacher", cases[k][0]);
    const ref_array *rt = ref_get(f, name);
    snprintf(name, sizeof name, "%s.%s.config", cases[k][0], cases[k][1]);
    const float *c = ref_get(f, name)->data;
    skd_pixel_norm norm = c[2] != 0.0f ? SKD_PIXEL_NORM_MEAN : SKD_PIXEL_NORM_REFERENCE;
    skd_pixel_loss_config cfg = config(c[0], c[1] != 0.0f, norm);
    const float *labels = NULL;
    if (cfg.mask_ignore) {
      snprintf(name, sizeof name, "%s.labels", cases[k][0]);
      labels = ref_get(f, name)->data;
    }
    snprintf(name, sizeof name, "%s.%s.loss", cases[k][0], cases[k][1]);
    const float loss_ref = ref_get(f, name)->data[0];
    snprintf(name, sizeof name, "%s.%s.kl", cases[k][0], cases[k][1]);
    const float kl_ref = ref_get(f, name)->data[0];
    snprintf(name, sizeof name, "%s.%s.grad", cases[k][0], cases[k][1]);
    const ref_array *rg = ref_get(f, name);
    struct shape s = {rs->dims[0], rs->dims[1], rs->dims[2], rs->dims[3]};
    size_t n = numel(s);
    ck_assert_uint_eq(rg->numel, n);

    float *dz0 = host_random(n, -0.01f, 0.01f);
    float *dz = host_copy(dz0, n), *grad = host_alloc(n), *want = host_alloc(n);
    float loss, kl;
    dev_loss(&cfg, s, rs->data, rt->data, labels, grad_scale, dz, &loss, &kl);
    for (size_t i = 0; i < n; i++) {
      grad[i] = dz[i] - dz0[i];
      want[i] = grad_scale * rg->data[i];
    }
    snprintf(check, sizeof check, "%s.%s loss vs torch", cases[k][0], cases[k][1]);
    check_error("pixel_loss", check, rel1(loss, loss_ref), 2e-6);
    snprintf(check, sizeof check, "%s.%s kl vs torch", cases[k][0], cases[k][1]);
    check_error("pixel_loss", check, rel1(kl, kl_ref), 2e-6);
    snprintf(check, sizeof check, "%s.%s grad vs torch", cases[k][0], cases[k][1]);
    check_error("pixel_loss", check, rel_error(grad, want, n), 2e-6);

    /* The C reference against PyTorch too: the other tests trust it. */
    float *gref = host_alloc(n);
    double klr;
    double lr = skd_ref_pixel_loss(&cfg, s.n, s.c, s.h, s.w, rs->data, rt->data, labels, 1.0f, gref, &klr);
    snprintf(check, sizeof check, "%s.%s C ref vs torch", cases[k][0], cases[k][1]);
    double e = fmax(fmax(rel1(lr, loss_ref), rel1(klr, kl_ref)), rel_error(gref, rg->data, n));
    check_error("pixel_loss_ref", check, e, 1e-6);
  }
  ref_close(f);
}
END_TEST

START_TEST(vs_reference_awkward) {
  /* C = 19 and odd H'W'; more pixels than one work-group; C = 1 (loss 0);
   * many work-groups per sample (512 positions per group) with a plane
   * that is not a multiple of 8 (the scalar tail), and one that is; a tail
   * of 4. */
  const struct shape shapes[] = {{2, 19, 9, 7},   {1, 3, 7, 5},   {3, 19, 33, 17}, {1, 1, 1, 1},
                                 {1, 7, 1, 300},  {2, 4, 1, 1},   {3, 5, 61, 67},  {2, 3, 64, 48},
                                 /* more classes than the kernel keeps exps of (KL_MAX_C 32): recomputed */
                                 {2, 37, 5, 9},   {1, 33, 3, 8},   {1, 6, 4, 13}};
  const skd_pixel_loss_config cfgs[] = {
      config(1.0f, 0, SKD_PIXEL_NORM_REFERENCE), config(2.0f, 1, SKD_PIXEL_NORM_MEAN),
      config(0.5f, 1, SKD_PIXEL_NORM_REFERENCE), config(1.5f, 0, SKD_PIXEL_NORM_MEAN)};
  double worst_loss = 0, worst_kl = 0, worst_grad = 0;
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
    for (size_t j = 0; j < sizeof cfgs / sizeof cfgs[0]; j++) {
      struct shape s = shapes[i];
      size_t n = numel(s);
      float *zs = host_random(n, -6.0f, 6.0f), *zt = host_random(n, -6.0f, 6.0f);
      float *labels = random_labels(s, 0.25f);
      /* The device accumulates onto dz0; the gradients compared are the
       * increments (dz0 is small so that subtracting it loses nothing). */
      float *dz0 = host_random(n, -1e-3f, 1e-3f), *dz = host_copy(dz0, n), *dzref = host_alloc(n);
      float loss, kl;
      double klr;
      dev_loss(&cfgs[j], s, zs, zt, labels, 1.3f, dz, &loss, &kl);
      double lr = skd_ref_pixel_loss(&cfgs[j], s.n, s.c, s.h, s.w, zs, zt, labels, 1.3f, dzref, &klr);
      char check[96];
      snprintf(check, sizeof check, "%dx%dx%dx%d cfg %zu loss", s.n, s.c, s.h, s.w, j);
      double e = rel1(loss, lr);
      ck_assert_msg(e <= 1e-5, "%s: %g (device %.9g, ref %.9g)", check, e, (double)loss, lr);
      worst_loss = fmax(worst_loss, e);
      e = rel1(kl, klr);
      ck_assert_msg(e <= 1e-5, "%s kl: %g (device %.9g, ref %.9g)", check, e, (double)kl, klr);
      worst_kl = fmax(worst_kl, e);
      for (size_t q = 0; q < n; q++) dz[q] -= dz0[q];
      e = rel_error(dz, dzref, n);
      ck_assert_msg(e <= 1e-6, "%s grad: %g", check, e);
      worst_grad = fmax(worst_grad, e);
    }
  check_error("pixel_loss", "loss vs ref (44 shape x cfg)", worst_loss, 1e-5);
  check_error("pixel_loss", "kl vs ref (44 shape x cfg)", worst_kl, 1e-5);
  check_error("pixel_loss", "dz vs ref (44 shape x cfg)", worst_grad, 1e-6);
}
END_TEST

struct fd_case {
  skd_pixel_loss_config cfg;
  struct shape s;
  const float *teacher, *labels;
};

static void fd_forward(void *user, const float *x, float *y) {
  const struct fd_case *c = user;
  dev_loss(&c->cfg, c->s, x, c->teacher, c->labels, 1.0f, NULL, y, NULL);
}

START_TEST(finite_differences) {
  const struct fd_case cases[] = {{config(2.0f, 1, SKD_PIXEL_NORM_MEAN), {1, 5, 3, 2}, NULL, NULL},
                                  {config(1.0f, 0, SKD_PIXEL_NORM_REFERENCE), {2, 4, 3, 1}, NULL, NULL},
                                  {config(0.7f, 1, SKD_PIXEL_NORM_REFERENCE), {2, 3, 2, 3}, NULL, NULL}};
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    struct fd_case c = cases[k];
    size_t n = numel(c.s);
    float *zs = host_random(n, -3.0f, 3.0f);
    c.teacher = host_random(n, -3.0f, 3.0f);
    c.labels = c.cfg.mask_ignore ? random_labels(c.s, 0.3f) : NULL;
    float *dz = host_alloc(n), loss, w = 1.0f;
    dev_loss(&c.cfg, c.s, zs, c.teacher, c.labels, 1.0f, dz, &loss, NULL);
    char check[96];
    snprintf(check, sizeof check, "dz vs fd %dx%dx%dx%d tau %.1f", c.s.n, c.s.c, c.s.h, c.s.w, (double)c.cfg.tau);
    check_error("pixel_loss", check, fd_error(fd_forward, &c, zs, n, &w, 1, dz, 1e-2f), 1e-3);
  }
}
END_TEST

/* One pixel, two classes, tau = 1:
 *   teacher (0, 0)    -> pT = (1/2, 1/2)
 *   student (0, ln 3) -> pS = (1/4, 3/4)
 *   CE = -(1/2 ln(1/4) + 1/2 ln(3/4)) = ln 4 - (1/2) ln 3 = 1.3862944 - 0.5493061 = 0.8369882
 *   KL = CE - H(pT) = 0.8369882 - ln 2 = 0.8369882 - 0.6931472 = 0.1438410
 *   dCE/dzS = pS - pT = (-1/4, +1/4) */
#define HAND_CE 0.8369882
#define HAND_KL 0.1438410
#define LN3 1.0986123f

static void hand_check(const char *what, const skd_pixel_loss_config *cfg, struct shape s, const float *zs,
                       const float *zt, const float *labels, double want_loss, double want_kl,
                       const float *want_grad) {
  size_t n = numel(s);
  float *dz = host_alloc(n), loss, kl;
  dev_loss(cfg, s, zs, zt, labels, 1.0f, dz, &loss, &kl);
  char check[96];
  snprintf(check, sizeof check, "hand %s", what);
  float want[2] = {(float)want_loss, (float)want_kl}, got[2] = {loss, kl};
  double e = fmax(rel_error(got, want, 2), rel_error(dz, want_grad, n));
  ck_assert_msg(e <= 2e-6, "%s: loss %.9g (want %.9g), kl %.9g (want %.9g), dz[0] %.9g (want %.9g)", check,
                (double)loss, want_loss, (double)kl, want_kl, (double)dz[0], (double)want_grad[0]);
  check_error("pixel_loss", check, e, 2e-6);
}

START_TEST(hand_computed) {
  const skd_pixel_loss_config ref = config(1.0f, 0, SKD_PIXEL_NORM_REFERENCE);
  const skd_pixel_loss_config mean = config(1.0f, 0, SKD_PIXEL_NORM_MEAN);
  {
    /* N = 1, one pixel: H'W' = 1 and N H'W' = 1, both norms give CE itself. */
    const float zs[] = {0.0f, LN3}, zt[] = {0.0f, 0.0f}, g[] = {-0.25f, 0.25f};
    hand_check("1 pixel ref", &ref, (struct shape){1, 2, 1, 1}, zs, zt, NULL, HAND_CE, HAND_KL, g);
    hand_check("1 pixel mean", &mean, (struct shape){1, 2, 1, 1}, zs, zt, NULL, HAND_CE, HAND_KL, g);
  }
  {
    /* The same pixel twice (N = 2): the reference norm divides the sum by
     * H'W' = 1, so the loss doubles to 2 * 0.8369882 = 1.6739764 and each
     * sample keeps the gradient (-1/4, 1/4); the mean norm divides by
     * N H'W' = 2: loss 0.8369882, gradient (-1/8, 1/8). */
    const float zs[] = {0.0f, LN3, 0.0f, LN3}, zt[] = {0, 0, 0, 0};
    const float gref[] = {-0.25f, 0.25f, -0.25f, 0.25f}, gmean[] = {-0.125f, 0.125f, -0.125f, 0.125f};
    hand_check("batch 2 ref", &ref, (struct shape){2, 2, 1, 1}, zs, zt, NULL, 2 * HAND_CE, 2 * HAND_KL, gref);
    hand_check("batch 2 mean", &mean, (struct shape){2, 2, 1, 1}, zs, zt, NULL, HAND_CE, HAND_KL, gmean);
  }
  {
    /* tau = 2, student (0, 2 ln 3): zS / tau is the pixel above, so CE is
     * the same; the loss is tau^2 CE = 4 * 0.8369882 = 3.3479528 and the
     * gradient tau^2 (pS - pT) / tau = 2 * (-1/4, 1/4) = (-1/2, 1/2). */
    const skd_pixel_loss_config t2 = config(2.0f, 0, SKD_PIXEL_NORM_REFERENCE);
    const float zs[] = {0.0f, 2.0f * LN3}, zt[] = {0.0f, 0.0f}, g[] = {-0.5f, 0.5f};
    hand_check("tau 2", &t2, (struct shape){1, 2, 1, 1}, zs, zt, NULL, 4 * HAND_CE, 4 * HAND_KL, g);
  }
  {
    /* N = 1, H'W' = 2 (layout: class-major, zs[c * 2 + i]): pixel 0 is the
     * pixel above, pixel 1 (wild logits) is ignored. Reference norm keeps
     * the divisor H'W' = 2: loss 0.8369882 / 2 = 0.4184941, gradient
     * (-1/8, 1/8) at pixel 0; mean norm divides by the 1 valid pixel:
     * loss 0.8369882, gradient (-1/4, 1/4). Pixel 1 gets no gradient. */
    const skd_pixel_loss_config mref = config(1.0f, 1, SKD_PIXEL_NORM_REFERENCE);
    const skd_pixel_loss_config mmean = config(1.0f, 1, SKD_PIXEL_NORM_MEAN);
    const float zs[] = {0.0f, -50.0f, LN3, 50.0f}, zt[] = {0.0f, 50.0f, 0.0f, -50.0f}, labels[] = {1.0f, 255.0f};
    const float gref[] = {-0.125f, 0.0f, 0.125f, 0.0f}, gmean[] = {-0.25f, 0.0f, 0.25f, 0.0f};
    hand_check("mask ref", &mref, (struct shape){1, 2, 1, 2}, zs, zt, labels, HAND_CE / 2, HAND_KL / 2, gref);
    hand_check("mask mean", &mmean, (struct shape){1, 2, 1, 2}, zs, zt, labels, HAND_CE, HAND_KL, gmean);
  }
}
END_TEST

START_TEST(all_ignored) {
  struct shape s = {2, 5, 3, 3};
  size_t n = numel(s);
  float *zs = host_random(n, -4.0f, 4.0f), *zt = host_random(n, -4.0f, 4.0f);
  float *labels = host_alloc((size_t)s.n * s.h * s.w);
  for (int i = 0; i < s.n * s.h * s.w; i++) labels[i] = 255.0f;
  for (int norm = SKD_PIXEL_NORM_REFERENCE; norm <= SKD_PIXEL_NORM_MEAN; norm++) {
    skd_pixel_loss_config cfg = config(1.0f, 1, (skd_pixel_norm)norm);
    float *dz0 = host_random(n, -1.0f, 1.0f), *dz = host_copy(dz0, n), loss = NAN, kl = NAN;
    dev_loss(&cfg, s, zs, zt, labels, 1.0f, dz, &loss, &kl);
    ck_assert_msg(loss == 0.0f && kl == 0.0f, "norm %d: loss %g kl %g", norm, (double)loss, (double)kl);
    check_error("pixel_loss", norm ? "all ignored mean: dz change" : "all ignored ref: dz change",
                rel_error(dz, dz0, n), 0.0);
  }
}
END_TEST

START_TEST(large_logits) {
  struct shape s = {2, 19, 5, 3};
  size_t n = numel(s);
  float *zs = host_random(n, -80.0f, 80.0f), *zt = host_random(n, -80.0f, 80.0f);
  /* One pixel with an extreme one-hot teacher and the student opposite. */
  for (int k = 0; k < s.c; k++) {
    zt[(size_t)k * s.h * s.w] = k == 3 ? 80.0f : -80.0f;
    zs[(size_t)k * s.h * s.w] = k == 3 ? -80.0f : 80.0f;
  }
  const float taus[] = {1.0f, 0.5f};
  for (int j = 0; j < 2; j++) {
    skd_pixel_loss_config cfg = config(taus[j], 0, SKD_PIXEL_NORM_MEAN);
    float *dz = host_alloc(n), *dzref = host_alloc(n), loss, kl;
    double klr;
    dev_loss(&cfg, s, zs, zt, NULL, 1.0f, dz, &loss, &kl);
    double lr = skd_ref_pixel_loss(&cfg, s.n, s.c, s.h, s.w, zs, zt, NULL, 1.0f, dzref, &klr);
    ck_assert_msg(isfinite(loss) && isfinite(kl), "tau %g: loss %g kl %g", (double)taus[j], (double)loss, (double)kl);
    for (size_t i = 0; i < n; i++) ck_assert_msg(isfinite(dz[i]), "dz[%zu] = %g", i, (double)dz[i]);
    char check[96];
    snprintf(check, sizeof check, "|z|<=80 tau %.1f loss+kl vs ref", (double)taus[j]);
    check_error("pixel_loss", check, fmax(rel1(loss, lr), rel1(kl, klr)), 1e-5);
    snprintf(check, sizeof check, "|z|<=80 tau %.1f dz vs ref", (double)taus[j]);
    check_error("pixel_loss", check, rel_error(dz, dzref, n), 1e-6);
  }
}
END_TEST

START_TEST(teacher_equals_student) {
  struct shape s = {2, 7, 5, 3};
  size_t n = numel(s);
  const int hw = s.h * s.w;
  float *z = host_random(n, -5.0f, 5.0f);
  const float taus[] = {1.0f, 2.0f};
  for (int j = 0; j < 2; j++) {
    const double tau = taus[j];
    skd_pixel_loss_config cfg = config(taus[j], 0, SKD_PIXEL_NORM_REFERENCE);
    float *dz = host_alloc(n), loss, kl;
    dev_loss(&cfg, s, z, z, NULL, 1.0f, dz, &loss, &kl);
    /* Expected: tau^2 / (H'W') * sum over pixels of the teacher entropy
     * -sum_c p log p, p = softmax(z / tau). */
    double entropy = 0.0;
    for (int b = 0; b < s.n; b++)
      for (int i = 0; i < hw; i++) {
        const float *zp = z + (size_t)b * s.c * hw + i;
        double m = -INFINITY, sum = 0.0;
        for (int k = 0; k < s.c; k++) m = fmax(m, zp[k * hw] / tau);
        for (int k = 0; k < s.c; k++) sum += exp(zp[k * hw] / tau - m);
        for (int k = 0; k < s.c; k++) {
          double lp = zp[k * hw] / tau - m - log(sum);
          entropy -= exp(lp) * lp;
        }
      }
    char check[96];
    snprintf(check, sizeof check, "T==S tau %.0f loss vs entropy", tau);
    check_error("pixel_loss", check, rel1(loss, tau * tau * entropy / hw), 1e-5);
    /* Same logits through the same code: pS - pT is exactly 0. */
    double gmax = 0.0;
    for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs((double)dz[i]));
    snprintf(check, sizeof check, "T==S tau %.0f max |dz|", tau);
    check_error("pixel_loss", check, gmax, 1e-7);
    snprintf(check, sizeof check, "T==S tau %.0f |kl| / loss", tau);
    check_error("pixel_loss", check, fabs((double)kl) / loss, 1e-6);
  }
}
END_TEST

START_TEST(deterministic_and_value_only) {
  struct shape s = {3, 19, 33, 17};
  size_t n = numel(s);
  float *zs = host_random(n, -5.0f, 5.0f), *zt = host_random(n, -5.0f, 5.0f);
  float *labels = random_labels(s, 0.2f);
  skd_pixel_loss_config cfg = config(1.0f, 1, SKD_PIXEL_NORM_MEAN);
  float l1, l2, l3, k1, k2;
  float *dz = host_alloc(n);
  dev_loss(&cfg, s, zs, zt, labels, 1.0f, dz, &l1, &k1);
  dev_loss(&cfg, s, zs, zt, labels, 1.0f, NULL, &l2, &k2);
  dev_loss(&cfg, s, zs, zt, labels, 1.0f, NULL, &l3, NULL);
  ck_assert_msg(memcmp(&l1, &l2, sizeof l1) == 0 && memcmp(&l1, &l3, sizeof l1) == 0 &&
                    memcmp(&k1, &k2, sizeof k1) == 0,
                "runs differ: %.9g %.9g %.9g / %.9g %.9g", (double)l1, (double)l2, (double)l3, (double)k1,
                (double)k2);
}
END_TEST

static void expect_einval(skd_status st, const char *a, const char *b) {
  ck_assert_int_eq(st, SKD_EINVAL);
  const char *msg = skd_error_last();
  ck_assert_msg(strstr(msg, a) != NULL && (!b || strstr(msg, b) != NULL), "message: %s", msg);
}

START_TEST(bad_arguments) {
  skd_tensor s = dev_zeros(2, 5, 3, 4), t = dev_zeros(2, 5, 4, 3), good_t = dev_zeros(2, 5, 3, 4);
  skd_tensor loss = dev_zeros(1, 1, 1, 1), two = dev_zeros(1, 2, 1, 1);
  skd_tensor labels = dev_zeros(2, 1, 3, 4), bad_labels = dev_zeros(2, 5, 3, 4), bad_dz = dev_zeros(1, 5, 3, 4);
  skd_pixel_loss_config cfg = config(1.0f, 0, SKD_PIXEL_NORM_REFERENCE);
  expect_einval(skd_pixel_loss(T, &cfg, &s, &t, NULL, 1.0f, NULL, &loss, NULL), "teacher_logits", "student_logits");
  expect_einval(skd_pixel_loss(T, &cfg, &s, &good_t, NULL, 1.0f, &bad_dz, &loss, NULL), "dstudent", NULL);
  expect_einval(skd_pixel_loss(T, &cfg, &s, &good_t, NULL, 1.0f, NULL, &two, NULL), "loss_out", NULL);
  expect_einval(skd_pixel_loss(T, &cfg, &s, &good_t, NULL, 1.0f, NULL, &loss, &two), "kl_out", NULL);
  cfg.mask_ignore = 1;
  expect_einval(skd_pixel_loss(T, &cfg, &s, &good_t, NULL, 1.0f, NULL, &loss, NULL), "labels is NULL", NULL);
  expect_einval(skd_pixel_loss(T, &cfg, &s, &good_t, &bad_labels, 1.0f, NULL, &loss, NULL), "labels", "(2, 1, 3, 4)");
  CK_OK(skd_pixel_loss(T, &cfg, &s, &good_t, &labels, 1.0f, NULL, &loss, NULL));
  cfg.tau = 0.0f;
  expect_einval(skd_pixel_loss(T, &cfg, &s, &good_t, &labels, 1.0f, NULL, &loss, NULL), "tau", NULL);
  cfg.tau = 1.0f;
  cfg.norm = (skd_pixel_norm)7;
  expect_einval(skd_pixel_loss(T, &cfg, &s, &good_t, &labels, 1.0f, NULL, &loss, NULL), "norm", NULL);
}
END_TEST

int main(void) {
  Suite *s = suite_create("loss_pixel");
  TCase *tc = support_tcase("loss_pixel");
  tcase_add_test(tc, vs_pytorch);
  tcase_add_test(tc, vs_reference_awkward);
  tcase_add_test(tc, finite_differences);
  tcase_add_test(tc, hand_computed);
  tcase_add_test(tc, all_ignored);
  tcase_add_test(tc, large_logits);
  tcase_add_test(tc, teacher_equals_student);
  tcase_add_test(tc, deterministic_and_value_only);
  tcase_add_test(tc, bad_arguments);
  suite_add_tcase(s, tc);
  return support_main(s);
}
