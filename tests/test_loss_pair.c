/* Pair-wise distillation loss: device vs PyTorch (the authors' criterion and
 * variants), device vs the plain-C reference on awkward shapes, finite
 * differences of the device loss, hand-computed normalisations, limits (one
 * node, zero vectors, a window covering the grid), a 16384-node map without
 * an M x M allocation, and bad input. */
#include "support.h"

#include "reference_file.h"
#include "skd/loss/pair.h"

static skd_pair_loss_config make_cfg(int node_size, double scale, skd_pair_pool pool, int radius,
                                     skd_pair_norm norm) {
  skd_pair_loss_config c = {node_size, scale, pool, radius, norm};
  return c;
}

static void cfg_name(const skd_pair_loss_config *c, char *buf, size_t len) {
  snprintf(buf, len, "%s b%d s%.2g r%d %s", c->pool == SKD_PAIR_POOL_MAX ? "max" : "avg", c->node_size,
           c->pool_scale, c->window_radius, c->norm == SKD_PAIR_NORM_EXACT ? "exact" : "detached");
}

/* Runs the device loss; returns the loss and (when dx) accumulates into dx. */
static float dev_loss(const skd_pair_loss_config *cfg, const float *s, int n, int cs, const float *t, int ct, int h,
                      int w, float scale, float *dx) {
  int mark = dev_mark();
  skd_tensor ts = dev_upload(s, n, cs, h, w), tt = dev_upload(t, n, ct, h, w);
  skd_tensor tl = dev_tensor(1, 1, 1, 1);
  skd_tensor tdx = dx ? dev_upload(dx, n, cs, h, w) : tl;
  CK_OK(skd_pair_loss(T, cfg, &ts, &tt, scale, dx ? &tdx : NULL, &tl));
  float loss;
  dev_download(&tl, &loss);
  if (dx) dev_download(&tdx, dx);
  dev_release_to(mark);
  return loss;
}

static double rel1(double a, double b) { return fabs(a - b) / fmax(fabs(b), 1e-30); }

/* --- PyTorch reference file --------------------------------------------- */

START_TEST(vs_pytorch) {
  static const char *cases[][2] = {{"ref9x7", "ref9x7"},       {"exact9x7", "ref9x7"},
                                   {"ref16", "ref16"},         {"scale12x7", "scale12x7"},
                                   {"avg_exact", "avg_exact"}, {"local_r1", "local_r1"},
                                   {"local_r2_det", "local_r2_det"}, {"ties", "ties"}};
  ref_file *f = ref_open("loss_pair.bin");
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char key[64], check[96];
    snprintf(key, sizeof key, "%s.cfg", cases[i][0]);
    const float *p = ref_get(f, key)->data;
    int n = (int)p[0], cs = (int)p[1], ct = (int)p[2], h = (int)p[3], w = (int)p[4];
    skd_pair_loss_config cfg = make_cfg((int)p[5], p[6], (skd_pair_pool)p[7], (int)p[8], (skd_pair_norm)p[9]);
    snprintf(key, sizeof key, "%s.s", cases[i][1]);
    const float *s = ref_get(f, key)->data;
    snprintf(key, sizeof key, "%s.t", cases[i][1]);
    const float *t = ref_get(f, key)->data;
    snprintf(key, sizeof key, "%s.loss", cases[i][0]);
    double want = ref_get(f, key)->data[0];
    snprintf(key, sizeof key, "%s.grad", cases[i][0]);
    const float *gwant = ref_get(f, key)->data;
    size_t ns = (size_t)n * cs * h * w;

    float *dx = host_alloc(ns);
    float loss = dev_loss(&cfg, s, n, cs, t, ct, h, w, 1.0f, dx);
    snprintf(check, sizeof check, "%s value", cases[i][0]);
    /* ref16's nodes are nearly parallel (max over 8x8 patches): its loss is
     * a sum of squared small differences of near-1 cosines, so float
     * rounding of the cosines (~1e-7) shows up relatively larger. */
    check_error("pair vs torch", check, rel1(loss, want), 1e-5);
    snprintf(check, sizeof check, "%s grad", cases[i][0]);
    check_error("pair vs torch", check, rel_error(dx, gwant, ns), 2e-5);

    /* The C reference against the same file. */
    float *rdx = host_alloc(ns);
    double rloss = skd_ref_pair_loss(&cfg, n, h, w, s, cs, t, ct, 1.0f, rdx);
    snprintf(check, sizeof check, "%s ref value", cases[i][0]);
    check_error("pair vs torch", check, rel1(rloss, want), 1e-6);
    snprintf(check, sizeof check, "%s ref grad", cases[i][0]);
    check_error("pair vs torch", check, rel_error(rdx, gwant, ns), 1e-6);
  }
  ref_close(f);
}
END_TEST

/* --- device vs C reference ---------------------------------------------- */

struct shape {
  int n, cs, ct, h, w;
  skd_pair_loss_config cfg;
};

static void run_vs_ref(const struct shape *c, float lo, float hi, double tol_value, double tol_grad) {
  size_t ns = (size_t)c->n * c->cs * c->h * c->w, nt = (size_t)c->n * c->ct * c->h * c->w;
  float *s = host_random(ns, lo, hi), *t = host_random(nt, lo, hi);
  float *dx0 = host_random(ns, -1.0f, 1.0f); /* the gradient accumulates onto this */
  float *dx = host_copy(dx0, ns), *rdx = host_copy(dx0, ns);
  const float scale = 0.7f;
  float loss = dev_loss(&c->cfg, s, c->n, c->cs, t, c->ct, c->h, c->w, scale, dx);
  double rloss = skd_ref_pair_loss(&c->cfg, c->n, c->h, c->w, s, c->cs, t, c->ct, scale, rdx);
  /* Compare the accumulated parts, so that dx0 does not hide errors. */
  for (size_t i = 0; i < ns; i++) {
    dx[i] -= dx0[i];
    rdx[i] -= dx0[i];
  }
  char name[64], check[128];
  cfg_name(&c->cfg, name, sizeof name);
  double big = 0.0; /* a case whose gradient is ~0 would test nothing */
  for (size_t i = 0; i < ns; i++) big = fmax(big, fabs(rdx[i]));
  ck_assert_msg(big > 1e-5, "%s: reference gradient max %g is too small to test", name, big);
  snprintf(check, sizeof check, "value %dx%d/%dx%dx%d %s", c->n, c->cs, c->ct, c->h, c->w, name);
  check_error("pair vs ref", check, rel1(loss, rloss), tol_value);
  snprintf(check, sizeof check, "grad %dx%d/%dx%dx%d %s", c->n, c->cs, c->ct, c->h, c->w, name);
  check_error("pair vs ref", check, rel_error(dx, rdx, ns), tol_grad);

  /* Same inputs, same bits: the reduction is deterministic. */
  float *dx2 = host_copy(dx0, ns);
  float loss2 = dev_loss(&c->cfg, s, c->n, c->cs, t, c->ct, c->h, c->w, scale, dx2);
  for (size_t i = 0; i < ns; i++) dx2[i] -= dx0[i];
  ck_assert_msg(memcmp(&loss, &loss2, sizeof loss) == 0, "loss differs between runs: %.9g %.9g", loss, loss2);
  ck_assert_msg(memcmp(dx, dx2, ns * sizeof(float)) == 0, "gradient differs between runs");
}

START_TEST(vs_reference) {
  const struct shape shapes[] = {
      {1, 3, 7, 7, 5, {2, 0, SKD_PAIR_POOL_MAX, 1, SKD_PAIR_NORM_EXACT}},
      {2, 13, 5, 17, 9, {0, 0.5, SKD_PAIR_POOL_MAX, -1, SKD_PAIR_NORM_DETACHED}},
      {3, 5, 19, 13, 11, {3, 0, SKD_PAIR_POOL_AVG, 2, SKD_PAIR_NORM_EXACT}},
      /* One channel: exact cosines are +-1, constant, so the detached gradient. */
      {2, 1, 2, 9, 14, {1, 0, SKD_PAIR_POOL_AVG, 3, SKD_PAIR_NORM_DETACHED}},
      {1, 16, 33, 31, 29, {4, 0, SKD_PAIR_POOL_MAX, 2, SKD_PAIR_NORM_DETACHED}},
      {2, 6, 4, 12, 7, {0, 0.3, SKD_PAIR_POOL_AVG, -1, SKD_PAIR_NORM_EXACT}},
      {1, 7, 9, 10, 10, {0, 0.7, SKD_PAIR_POOL_AVG, -1, SKD_PAIR_NORM_EXACT}},
      {2, 7, 9, 23, 17, {0, 0.2, SKD_PAIR_POOL_MAX, 1, SKD_PAIR_NORM_EXACT}},
      {2, 11, 3, 5, 23, {2, 0, SKD_PAIR_POOL_MAX, -1, SKD_PAIR_NORM_EXACT}},
      {1, 5, 6, 3, 10, {4, 0, SKD_PAIR_POOL_AVG, 1, SKD_PAIR_NORM_EXACT}}, /* patch taller than the map */
      {2, 5, 6, 3, 10, {4, 0, SKD_PAIR_POOL_MAX, 1, SKD_PAIR_NORM_DETACHED}},
      /* a window row longer than the kernel's row-by-row path (PAIR_MAX_ROW 15) */
      {1, 4, 5, 21, 19, {1, 0, SKD_PAIR_POOL_MAX, 8, SKD_PAIR_NORM_EXACT}},
  };
  /* The gradient is proportional to aS - aT, a difference of cosines that
   * float rounds to ~1e-7 absolute. Max pooling over big patches makes the
   * nodes nearly parallel (cosines near 1, differences ~1e-3), so there the
   * relative error of the gradient grows to ~1e-4; it is float conditioning
   * (PyTorch in float32 has the same), while a wrong term gives O(1). The
   * loss, a sum of squares of those differences, sees ~1e-5 there. */
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) run_vs_ref(&shapes[i], -1.0f, 1.0f, 3e-5, 3e-4);
  /* Post-ReLU-like features (all >= 0): also nearly parallel nodes. */
  struct shape relu = {2, 8, 12, 11, 13, {1, 0, SKD_PAIR_POOL_AVG, 2, SKD_PAIR_NORM_EXACT}};
  run_vs_ref(&relu, 0.0f, 1.0f, 3e-5, 3e-4);
}
END_TEST

START_TEST(pool_scale_rule) {
  /* int(H' * scale) in double as Python: 90 * 0.7 = 62.99999999999999 -> 62
   * (float arithmetic would round to 63). */
  skd_pair_loss_config cfg = make_cfg(0, 0.7, SKD_PAIR_POOL_MAX, -1, SKD_PAIR_NORM_EXACT);
  skd_pair_grid g;
  CK_OK(skd_pair_node_grid(&cfg, 90, 10, &g));
  ck_assert_int_eq(g.kh, 62);
  ck_assert_int_eq(g.kw, 7);
  ck_assert_int_eq(g.hn, 2);
  ck_assert_int_eq(g.wn, 2);
  /* The reference's 9x7 map at 0.5: kernel (4, 3) from (H', W'), 3x3 nodes. */
  cfg.pool_scale = 0.5;
  CK_OK(skd_pair_node_grid(&cfg, 9, 7, &g));
  ck_assert_int_eq(g.kh, 4);
  ck_assert_int_eq(g.kw, 3);
  ck_assert_int_eq(g.m, 9);
  /* A map smaller than 1 / scale: kernel 1 (PyTorch would raise). */
  CK_OK(skd_pair_node_grid(&cfg, 1, 3, &g));
  ck_assert_int_eq(g.kh, 1);
  ck_assert_int_eq(g.kw, 1);
  ck_assert_int_eq(g.m, 3);
}
END_TEST

/* --- finite differences -------------------------------------------------- */

struct fd_case {
  int n, cs, ct, h, w;
  skd_pair_loss_config cfg;
  const float *t;
};

static void fd_forward(void *user, const float *x, float *y) {
  const struct fd_case *c = user;
  y[0] = dev_loss(&c->cfg, x, c->n, c->cs, c->t, c->ct, c->h, c->w, 1.0f, NULL);
}

/* Distinct values at least 2/count apart, shuffled: max pooling's winner
 * never changes under the +-eps perturbations. */
static float *spread_values(size_t count) {
  float *x = host_alloc(count);
  float *r = host_random(count, 0.0f, 1.0f);
  for (size_t i = 0; i < count; i++) x[i] = -1.0f + 2.0f * (float)i / (float)count;
  for (size_t i = count - 1; i > 0; i--) {
    size_t j = (size_t)(r[i] * (float)(i + 1)) % (i + 1);
    float tmp = x[i];
    x[i] = x[j];
    x[j] = tmp;
  }
  return x;
}

START_TEST(finite_differences) {
  const struct fd_case cases[] = {
      {2, 3, 4, 6, 5, {2, 0, SKD_PAIR_POOL_MAX, 1, SKD_PAIR_NORM_EXACT}, NULL},
      {1, 4, 3, 5, 7, {0, 0.5, SKD_PAIR_POOL_AVG, -1, SKD_PAIR_NORM_EXACT}, NULL},
      {2, 3, 5, 4, 4, {1, 0, SKD_PAIR_POOL_MAX, 1, SKD_PAIR_NORM_EXACT}, NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct fd_case c = cases[i];
    size_t ns = (size_t)c.n * c.cs * c.h * c.w, nt = (size_t)c.n * c.ct * c.h * c.w;
    float *s = spread_values(ns);
    c.t = host_random(nt, -1.0f, 1.0f);
    float *dx = host_alloc(ns);
    dev_loss(&c.cfg, s, c.n, c.cs, c.t, c.ct, c.h, c.w, 1.0f, dx);
    float one = 1.0f;
    char name[64], check[96];
    cfg_name(&c.cfg, name, sizeof name);
    snprintf(check, sizeof check, "fd %dx%dx%dx%d %s", c.n, c.cs, c.h, c.w, name);
    check_error("pair", check, fd_error(fd_forward, &c, s, ns, &one, 1, dx, 1e-3f), 1e-2);
  }
}
END_TEST

/* --- hand-computed cases ------------------------------------------------- */

START_TEST(two_nodes_by_hand) {
  /* A 1x2 map, node size 1: M = 2 nodes. Student f0 = (1, 0), f1 = (1, 1);
   * teacher g0 = (1, 0), g1 = (0, 1). aS01 = 1/sqrt2, aT01 = 0, diagonals
   * 1 on both sides, so per sample L_b = 2 aS01^2 / M^2 = 1/4, and with the
   * sample repeated (N = 2) L = (L_0 + L_1) / N = 1/4.
   * dL_b/df = aS01 da01/df:
   *   exact:    da01/df0 = (0, 1) / sqrt2,  da01/df1 = (1, -1) / (2 sqrt2)
   *   detached: da01/df0 = f1 / sqrt2,      da01/df1 = f0 / sqrt2
   * and dL/df = dL_b/df / N. */
  const float s[] = {1, 1, 0, 1, 1, 1, 0, 1}; /* (2, 2, 1, 2) NCHW */
  const float t[] = {1, 0, 0, 1, 1, 0, 0, 1};
  /* dL_b/df in NCHW order (c0: f0 f1, c1: f0 f1) */
  const float want_exact[] = {0.0f, 0.25f, 0.5f, -0.25f};
  const float want_detached[] = {0.5f, 0.5f, 0.5f, 0.0f};
  for (int mode = 0; mode < 2; mode++) {
    skd_pair_loss_config cfg =
        make_cfg(1, 0, SKD_PAIR_POOL_MAX, -1, mode ? SKD_PAIR_NORM_DETACHED : SKD_PAIR_NORM_EXACT);
    float dx[8] = {0};
    float loss = dev_loss(&cfg, s, 2, 2, t, 2, 1, 2, 1.0f, dx);
    check_error("pair", mode ? "two nodes value (detached)" : "two nodes value (exact)", rel1(loss, 0.25), 1e-6);
    const float *want = mode ? want_detached : want_exact;
    float expect[8];
    for (int k = 0; k < 8; k++) expect[k] = want[k % 4] / 2.0f;
    check_error("pair", mode ? "two nodes grad (detached)" : "two nodes grad (exact)", rel_error(dx, expect, 8),
                1e-6);
  }
}
END_TEST

START_TEST(clipped_window_by_hand) {
  /* 1x3 nodes, r = 1: |window| = 2, 3, 2. Student (1,0), (1,1), (0,1);
   * teacher all (1, 0): aT = 1. d01 = d12 = 1/sqrt2 - 1, pair (0,2) outside.
   * L = 1/M [d^2/2 + 2 d^2/3 + d^2/2] = 5 d^2 / 9. */
  const float s[] = {1, 1, 0, 0, 1, 1}, t[] = {1, 1, 1, 0, 0, 0};
  skd_pair_loss_config cfg = make_cfg(1, 0, SKD_PAIR_POOL_AVG, 1, SKD_PAIR_NORM_EXACT);
  double d = 1.0 / sqrt(2.0) - 1.0;
  float loss = dev_loss(&cfg, s, 1, 2, t, 2, 1, 3, 1.0f, NULL);
  check_error("pair", "clipped window value", rel1(loss, 5.0 * d * d / 9.0), 1e-6);
  /* Global: all 9 pairs, aS02 = 0 against 1: L = (4 d^2 + 2) / 9. */
  cfg.window_radius = -1;
  loss = dev_loss(&cfg, s, 1, 2, t, 2, 1, 3, 1.0f, NULL);
  check_error("pair", "global window value", rel1(loss, (4.0 * d * d + 2.0) / 9.0), 1e-6);
}
END_TEST

/* --- limits -------------------------------------------------------------- */

static void all_finite(const float *x, size_t n, const char *what) {
  for (size_t i = 0; i < n; i++) ck_assert_msg(isfinite(x[i]), "%s[%zu] = %g", what, i, (double)x[i]);
}

START_TEST(window_covering_grid_is_global) {
  const int n = 2, cs = 5, ct = 7, h = 11, w = 9;
  size_t ns = (size_t)n * cs * h * w, nt = (size_t)n * ct * h * w;
  float *s = host_random(ns, -1.0f, 1.0f), *t = host_random(nt, -1.0f, 1.0f);
  skd_pair_loss_config cfg = make_cfg(2, 0, SKD_PAIR_POOL_MAX, -1, SKD_PAIR_NORM_EXACT); /* 6x5 nodes */
  float *gdx = host_alloc(ns);
  float gloss = dev_loss(&cfg, s, n, cs, t, ct, h, w, 1.0f, gdx);
  const int radii[] = {5, 6, 1000000000};
  for (int i = 0; i < 3; i++) {
    cfg.window_radius = radii[i];
    float *dx = host_alloc(ns);
    float loss = dev_loss(&cfg, s, n, cs, t, ct, h, w, 1.0f, dx);
    char check[64];
    snprintf(check, sizeof check, "r=%d vs global value", radii[i]);
    check_error("pair", check, rel1(loss, gloss), 1e-6);
    snprintf(check, sizeof check, "r=%d vs global grad", radii[i]);
    check_error("pair", check, rel_error(dx, gdx, ns), 1e-6);
  }
  /* r = 4 does not cover a 6-row grid: it must differ. */
  cfg.window_radius = 4;
  float loss4 = dev_loss(&cfg, s, n, cs, t, ct, h, w, 1.0f, NULL);
  ck_assert_msg(rel1(loss4, gloss) > 1e-3, "r=4 should differ from global: %g vs %g", loss4, gloss);
}
END_TEST

START_TEST(one_node) {
  const int n = 2, cs = 3, ct = 4, h = 3, w = 3;
  size_t ns = (size_t)n * cs * h * w, nt = (size_t)n * ct * h * w;
  float *s = host_random(ns, -1.0f, 1.0f), *t = host_random(nt, -1.0f, 1.0f);
  for (int mode = 0; mode < 2; mode++) {
    skd_pair_loss_config cfg = make_cfg(0, 1.0, mode ? SKD_PAIR_POOL_AVG : SKD_PAIR_POOL_MAX, mode - 1,
                                        SKD_PAIR_NORM_EXACT); /* scale 1: one 3x3 patch */
    float *dx = host_alloc(ns);
    float loss = dev_loss(&cfg, s, n, cs, t, ct, h, w, 1.0f, dx);
    ck_assert_msg(isfinite(loss) && fabsf(loss) < 1e-10f, "one node loss %g", (double)loss);
    all_finite(dx, ns, "one node dx");
    double big = 0.0; /* a_00 is 1 on both sides up to rounding: no gradient to speak of */
    for (size_t i = 0; i < ns; i++) big = fmax(big, fabs(dx[i]));
    check_error("pair", mode ? "one node max|grad| (avg, r=0)" : "one node max|grad| (max, global)", big, 1e-6);
  }
}
END_TEST

START_TEST(zero_vectors) {
  const int n = 2, cs = 4, ct = 3, h = 4, w = 6;
  size_t ns = (size_t)n * cs * h * w, nt = (size_t)n * ct * h * w;
  for (int mode = 0; mode < 2; mode++) {
    skd_pair_norm norm = mode ? SKD_PAIR_NORM_DETACHED : SKD_PAIR_NORM_EXACT;
    /* Entirely zero: loss 0, gradient 0. */
    float *z = host_alloc(ns), *zt = host_alloc(nt), *dx = host_alloc(ns);
    skd_pair_loss_config cfg = make_cfg(2, 0, SKD_PAIR_POOL_MAX, 1, norm);
    float loss = dev_loss(&cfg, z, n, cs, zt, ct, h, w, 1.0f, dx);
    ck_assert_msg(loss == 0.0f, "all-zero loss %g", (double)loss);
    for (size_t i = 0; i < ns; i++) ck_assert_msg(dx[i] == 0.0f, "all-zero dx[%zu] = %g", i, (double)dx[i]);
    /* Some zero nodes in the student and others in the teacher (post-ReLU
     * maps): finite, and as the reference says. */
    float *s = host_random(ns, 0.0f, 1.0f), *t = host_random(nt, 0.0f, 1.0f);
    for (int b = 0; b < n; b++)
      for (int c = 0; c < cs; c++)
        for (int y = 0; y < 2; y++)
          for (int x = 0; x < 2; x++) s[((b * cs + c) * h + y) * w + x] = 0.0f; /* node (0, 0) */
    for (int b = 0; b < n; b++)
      for (int c = 0; c < ct; c++)
        for (int y = 2; y < 4; y++)
          for (int x = 4; x < 6; x++) t[((b * ct + c) * h + y) * w + x] = 0.0f; /* node (1, 2) */
    for (int r = -1; r <= 1; r += 2) {
      cfg.window_radius = r;
      float *ddx = host_alloc(ns), *rdx = host_alloc(ns);
      loss = dev_loss(&cfg, s, n, cs, t, ct, h, w, 1.0f, ddx);
      double rloss = skd_ref_pair_loss(&cfg, n, h, w, s, cs, t, ct, 1.0f, rdx);
      ck_assert_msg(isfinite(loss), "loss %g", (double)loss);
      all_finite(ddx, ns, "zero-node dx");
      char check[64];
      snprintf(check, sizeof check, "zero nodes r=%d %s value", r, mode ? "detached" : "exact");
      check_error("pair", check, rel1(loss, rloss), 1e-5);
      snprintf(check, sizeof check, "zero nodes r=%d %s grad", r, mode ? "detached" : "exact");
      check_error("pair", check, rel_error(ddx, rdx, ns), 1e-5);
    }
  }
}
END_TEST

/* --- memory: 16384 nodes, 7x7 window ------------------------------------- */

START_TEST(local_window_16384_nodes) {
  const int n = 1, cs = 8, ct = 12, h = 128, w = 128, r = 3;
  const size_t m = (size_t)h * w, window = (2 * r + 1) * (2 * r + 1);
  size_t ns = (size_t)n * cs * h * w, nt = (size_t)n * ct * h * w;
  float *s = host_random(ns, -1.0f, 1.0f), *t = host_random(nt, -1.0f, 1.0f);
  skd_pair_loss_config cfg = make_cfg(1, 0, SKD_PAIR_POOL_MAX, r, SKD_PAIR_NORM_EXACT);
  skd_tensor ts = dev_upload(s, n, cs, h, w), tt = dev_upload(t, n, ct, h, w);
  skd_tensor tdx = dev_zeros(n, cs, h, w), tl = dev_tensor(1, 1, 1, 1);
  CK_OK(skd_pair_loss(T, &cfg, &ts, &tt, 1.0f, &tdx, &tl));
  float loss;
  dev_download(&tl, &loss);
  /* The context's workspace after the call is all the scratch the op used
   * (a fresh context per test); asking for 1 byte returns it unchanged. */
  cl_mem ws;
  CK_OK(skd_workspace_get(T, 1, &ws));
  size_t bytes = 0;
  CK_OK(skd_cl_check(clGetMemObjectInfo(ws, CL_MEM_SIZE, sizeof bytes, &bytes, NULL), "CL_MEM_SIZE"));
  size_t planned = skd_pair_loss_workspace_bytes(&cfg, &ts, &tt, 1);
  printf("pair 128x128 r=3: M = %zu nodes, workspace %zu bytes (planned %zu); M x M floats would be %zu\n", m, bytes,
         planned, m * m * 4);
  ck_assert_uint_eq(bytes, planned);
  ck_assert_msg(bytes <= 4 * m * window * sizeof(float), "workspace %zu is not O(M window)", bytes);
  ck_assert_msg(bytes < m * m * sizeof(float) / 100, "workspace %zu is not far below M^2", bytes);
  /* And it is right. */
  float *rdx = host_alloc(ns);
  double rloss = skd_ref_pair_loss(&cfg, n, h, w, s, cs, t, ct, 1.0f, rdx);
  check_error("pair", "128x128 r=3 value", rel1(loss, rloss), 1e-5);
  check_error("pair", "128x128 r=3 grad", rel_error(dev_fetch(&tdx), rdx, ns), 1e-5);
}
END_TEST

/* --- bad input ----------------------------------------------------------- */

static void expect_einval(skd_status st, const char *needle) {
  ck_assert_int_eq(st, SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), needle) != NULL, "message '%s' lacks '%s'", skd_error_last(), needle);
}

START_TEST(bad_input) {
  skd_tensor s = dev_zeros(2, 3, 8, 8), t = dev_zeros(2, 5, 8, 8), l = dev_zeros(1, 1, 1, 1);
  skd_tensor t_n = dev_zeros(1, 5, 8, 8), t_h = dev_zeros(2, 5, 7, 8), t_w = dev_zeros(2, 5, 8, 9);
  skd_tensor ds_bad = dev_zeros(2, 5, 8, 8), l_bad = dev_zeros(1, 2, 1, 1);
  expect_einval(skd_pair_loss(T, NULL, &s, &t_n, 1.0f, NULL, &l), "teacher_feat must match");
  expect_einval(skd_pair_loss(T, NULL, &s, &t_h, 1.0f, NULL, &l), "expected (2, *, 8, 8), got (2, 5, 7, 8)");
  expect_einval(skd_pair_loss(T, NULL, &s, &t_w, 1.0f, NULL, &l), "teacher_feat");
  expect_einval(skd_pair_loss(T, NULL, &s, &t, 1.0f, &ds_bad, &l), "pair_loss: dstudent");
  expect_einval(skd_pair_loss(T, NULL, &s, &t, 1.0f, NULL, &l_bad), "loss_out");
  skd_pair_loss_config cfg;
  skd_pair_loss_config_default(&cfg);
  cfg.pool_scale = 0.0;
  expect_einval(skd_pair_loss(T, &cfg, &s, &t, 1.0f, NULL, &l), "pool_scale");
  skd_pair_loss_config_default(&cfg);
  cfg.node_size = -2;
  expect_einval(skd_pair_loss(T, &cfg, &s, &t, 1.0f, NULL, &l), "node_size");
  skd_pair_loss_config_default(&cfg);
  cfg.pool = (skd_pair_pool)5;
  expect_einval(skd_pair_loss(T, &cfg, &s, &t, 1.0f, NULL, &l), "pool 5");
  ck_assert_uint_eq(skd_pair_loss_workspace_bytes(NULL, &s, &t_h, 1), 0);
  /* The defaults: exact norm; the reference preset: detached. */
  skd_pair_loss_config_default(&cfg);
  ck_assert_int_eq(cfg.norm, SKD_PAIR_NORM_EXACT);
  ck_assert_int_eq(cfg.window_radius, -1);
  skd_pair_loss_config_reference(&cfg);
  ck_assert_int_eq(cfg.norm, SKD_PAIR_NORM_DETACHED);
  ck_assert_int_eq(cfg.pool, SKD_PAIR_POOL_MAX);
}
END_TEST

int main(void) {
  Suite *s = suite_create("loss_pair");
  TCase *tc = support_tcase("loss_pair");
  tcase_add_test(tc, vs_pytorch);
  tcase_add_test(tc, vs_reference);
  tcase_add_test(tc, pool_scale_rule);
  tcase_add_test(tc, finite_differences);
  tcase_add_test(tc, two_nodes_by_hand);
  tcase_add_test(tc, clipped_window_by_hand);
  tcase_add_test(tc, window_covering_grid_is_global);
  tcase_add_test(tc, one_node);
  tcase_add_test(tc, zero_vectors);
  tcase_add_test(tc, local_window_16384_nodes);
  tcase_add_test(tc, bad_input);
  suite_add_tcase(s, tc);
  return support_main(s);
}
