/* The holistic loss's discriminator: the depth rule, names, forward and
 * backward (input and parameter gradients) against PyTorch with the same
 * weights (tests/reference/gen_loss_holistic.py), finite differences of the
 * device forward, the preprocessing modes, the conditional input, the
 * state rules of TRAIN / HOLD forwards, and bad arguments. */
#include "holistic_fixture.h"

#define LAMBDA_D 0.1f

START_TEST(depth_rule) {
  skd_disc_config cfg;
  skd_disc_geometry g;
  skd_disc_config_default(&cfg, 19, 64, 64);
  CK_OK(skd_disc_geometry_of(&cfg, 64, 64, &g));
  ck_assert_int_eq(g.h[4], 4);
  ck_assert_int_eq(g.kh, 4);
  ck_assert_int_eq(g.kw, 4);
  ck_assert_int_eq(g.out_h, 1);
  ck_assert_int_eq(g.out_w, 1);
  CK_OK(skd_disc_geometry_of(&cfg, 16, 16, &g));
  ck_assert_int_eq(g.h[3], 2);
  ck_assert_int_eq(g.h[4], 1);
  ck_assert_int_eq(g.kh, 1);
  ck_assert_int_eq(g.out_h, 1);
  CK_OK(skd_disc_geometry_of(&cfg, 16, 80, &g)); /* w: 80 40 20 10 5 -> kernel 4 -> 2 positions */
  ck_assert_int_eq(g.kh, 1);
  ck_assert_int_eq(g.kw, 4);
  ck_assert_int_eq(g.out_w, 2);
  CK_OK(skd_disc_geometry_of(&cfg, 65, 65, &g)); /* the reference's 65 x 65: floor halves */
  ck_assert_int_eq(g.h[4], 4);
  ck_assert_int_eq(g.out_h, 1);
  ck_assert_int_eq(skd_disc_geometry_of(&cfg, 15, 15, &g), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "holistic loss needs logit maps of at least 16x16 (crop >= 128 at output "
                                         "stride 8), got 15x15") != NULL,
                "message: %s", skd_error_last());
  ck_assert_int_eq(skd_disc_geometry_of(&cfg, 64, 15, &g), SKD_EINVAL);
  cfg.map_h = 15;
  skd_disc *d = NULL;
  ck_assert_int_eq(skd_disc_create(T, &cfg, 1, &d), SKD_EINVAL);
  ck_assert_ptr_null(d);
  ck_assert_msg(strstr(skd_error_last(), "got 15x64") != NULL, "message: %s", skd_error_last());
}
END_TEST

/* Forwards of a fresh d = 8 discriminator on 16x16 and 64x64 maps, and on a
 * map larger than it was built for (80x80: 2x2 score positions). */
START_TEST(forward_sizes) {
  skd_arena *arena = fix_arena();
  int sizes[3][3] = {{16, 16, 16}, {64, 64, 64}, {64, 80, 80}}; /* built for, run on */
  for (int s = 0; s < 3; s++) {
    skd_disc_config cfg;
    skd_disc_config_default(&cfg, 5, sizes[s][0], sizes[s][0]);
    cfg.conv_dim = 8;
    skd_disc *d;
    CK_OK(skd_disc_create(T, &cfg, 3, &d));
    const int hw = sizes[s][1];
    skd_tensor x = dev_upload(host_random((size_t)2 * 5 * hw * hw, -3.0f, 3.0f), 2, 5, hw, hw);
    skd_disc_record r;
    CK_OK(skd_disc_forward(T, d, arena, SKD_DISC_TRAIN, NULL, &x, NULL, &r));
    ck_assert_int_eq(r.score.n, 2);
    ck_assert_int_eq(r.score.h * r.score.w, 1);
    const int want = s == 2 ? 2 : 1;
    ck_assert_int_eq(r.z.h, want);
    ck_assert_int_eq(r.z.w, want);
    float *score = dev_fetch(&r.score), *z = dev_fetch(&r.z);
    for (int n = 0; n < 2; n++) {
      double mean = 0.0;
      for (int i = 0; i < want * want; i++) mean += z[n * want * want + i];
      mean /= want * want;
      ck_assert_msg(isfinite(score[n]) && fabs(score[n] - mean) < 1e-6, "score %g, mean of z %g", score[n], mean);
    }
    /* 16x16 built for 64x64 is too small for the 4x4 last kernel */
    if (s == 1) {
      skd_tensor small = dev_zeros(1, 5, 32, 32);
      ck_assert_int_eq(skd_disc_forward(T, d, arena, SKD_DISC_TRAIN, NULL, &small, NULL, &r), SKD_EINVAL);
      ck_assert_msg(strstr(skd_error_last(), "smaller than the last kernel 4x4") != NULL, "message: %s",
                    skd_error_last());
    }
    skd_disc_free(d);
  }
  skd_arena_free(arena);
}
END_TEST

START_TEST(names_and_state) {
  skd_disc_config cfg;
  skd_disc_config_default(&cfg, 19, 64, 64);
  cfg.conv_dim = 4;
  skd_disc *d;
  CK_OK(skd_disc_create(T, &cfg, 1, &d));
  ck_assert_int_eq(d->nstate, 36);
  ck_assert_str_eq(d->state[0]->name, "l4.0.module.bias");
  ck_assert_str_eq(d->state[3]->name, "l4.0.module.weight_bar");
  ck_assert_str_eq(d->state[4]->name, "l1.0.module.bias");
  ck_assert_str_eq(d->state[16]->name, "last.0.weight");
  ck_assert_str_eq(d->state[18]->name, "attn1.gamma");
  ck_assert_str_eq(d->state[25]->name, "attn2.gamma");
  ck_assert_str_eq(d->state[35]->name, "preprocess_additional.running_var");
  skd_param *u = skd_disc_find(d, "l2.0.module.weight_u"), *v = skd_disc_find(d, "l2.0.module.weight_v");
  ck_assert_ptr_nonnull(u);
  ck_assert_ptr_null(u->grad.mem);
  ck_assert_int_eq((int)skd_tensor_numel(&u->value), 8);
  ck_assert_int_eq((int)skd_tensor_numel(&v->value), 4 * 16);
  ck_assert_int_eq(skd_disc_find(d, "last.0.weight")->value.h, 4);
  ck_assert_ptr_null(skd_disc_find(d, "nothing"));
  /* u is a unit vector; gamma starts at 0 */
  float *hu = dev_fetch(&u->value);
  double norm = 0.0;
  for (int i = 0; i < 8; i++) norm += (double)hu[i] * hu[i];
  ck_assert_msg(fabs(norm - 1.0) < 1e-5, "|u|^2 = %g", norm);
  ck_assert_float_eq(dev_fetch(&d->attn1.gamma.value)[0], 0.0f);
  skd_disc_free(d);
  cfg.preprocess = SKD_DISC_PRE_TANH;
  CK_OK(skd_disc_create(T, &cfg, 1, &d));
  ck_assert_int_eq(d->nstate, 32);
  ck_assert_ptr_null(skd_disc_find(d, "preprocess_additional.weight"));
  skd_disc_free(d);
}
END_TEST

/* The first two forwards of the reference's D step: D(T) then D(S), the
 * second with the state the first left. */
START_TEST(forward_vs_pytorch) {
  ref_file *f = ref_open("loss_holistic.bin");
  skd_disc *d = fix_disc(f, SKD_DISC_PRE_BN, 0);
  skd_arena *arena = fix_arena();
  const size_t count = (size_t)FIX_N * FIX_C * FIX_H * FIX_W;
  skd_tensor t = dev_upload(fix_input(1, count, -4.0, 4.0), FIX_N, FIX_C, FIX_H, FIX_W);
  skd_tensor s = dev_upload(fix_input(2, count, -3.0, 5.0), FIX_N, FIX_C, FIX_H, FIX_W);
  skd_disc_record rt, rs;
  CK_OK(skd_disc_forward(T, d, arena, SKD_DISC_TRAIN, NULL, &t, NULL, &rt));
  CK_OK(skd_disc_forward(T, d, arena, SKD_DISC_TRAIN, NULL, &s, NULL, &rs));
  check_error("discriminator", "D(T) vs pytorch", fix_error(&rt.score, ref_get(f, "a.d.score_t")), 1e-5);
  check_error("discriminator", "D(S) 2nd fwd vs pytorch", fix_error(&rs.score, ref_get(f, "a.d.score_s")), 1e-5);
  skd_disc_free(d);
  skd_arena_free(arena);
  ref_close(f);
}
END_TEST

/* Backward of dscore = -lambda_d / N (the G term's) on a fresh D: the input
 * gradient and every parameter gradient against autograd. */
START_TEST(backward_vs_pytorch) {
  ref_file *f = ref_open("loss_holistic.bin");
  skd_disc *d = fix_disc(f, SKD_DISC_PRE_BN, 0);
  skd_arena *arena = fix_arena();
  const size_t count = (size_t)FIX_N * FIX_C * FIX_H * FIX_W;
  skd_tensor s = dev_upload(fix_input(2, count, -3.0, 5.0), FIX_N, FIX_C, FIX_H, FIX_W);
  skd_tensor ds = dev_zeros(FIX_N, FIX_C, FIX_H, FIX_W), dscore = dev_tensor(FIX_N, 1, 1, 1);
  CK_OK(skd_tensor_fill(T, &dscore, -LAMBDA_D / FIX_N));
  skd_disc_record r;
  CK_OK(skd_disc_forward(T, d, arena, SKD_DISC_TRAIN, NULL, &s, NULL, &r));
  CK_OK(skd_disc_backward(T, d, arena, &r, &dscore, &ds, 1));
  check_error("discriminator", "dx vs pytorch", fix_error(&ds, ref_get(f, "a.g.dq")), 1e-5);
  for (int i = 0; i < d->nstate; i++) {
    skd_param *p = d->state[i];
    if (!p->grad.mem) continue;
    char key[160], check[160];
    snprintf(key, sizeof key, "a.g.grads.%s", p->name);
    snprintf(check, sizeof check, "d%s vs pytorch", p->name);
    check_error("discriminator", check, fix_grad_error(f, d, p, key), 2e-5);
  }
  skd_disc_free(d);
  skd_arena_free(arena);
  ref_close(f);
}
END_TEST

/* Preprocessing modes 2 (tanh) and 3 (scale) and the conditional input
 * (BN over concat(softmax, resized image)): score and input gradient of the
 * G term, one sample each. */
START_TEST(modes_and_conditional_vs_pytorch) {
  ref_file *f = ref_open("loss_holistic.bin");
  skd_arena *arena = fix_arena();
  const size_t count = (size_t)FIX_C * FIX_H * FIX_W;
  float *x1 = fix_input(3, count, -4.0, 4.0), *xs = host_alloc(count);
  for (size_t i = 0; i < count; i++) xs[i] = x1[i] * 40.0f + 128.0f; /* exact in float, as torch's x1 * 40 + 128 */
  struct {
    const char *key;
    skd_disc_preprocess pre;
    int cond;
    const float *x;
  } cases[3] = {{"t", SKD_DISC_PRE_TANH, 0, x1}, {"s", SKD_DISC_PRE_SCALE, 0, xs}, {"c", SKD_DISC_PRE_BN, 1, x1}};
  skd_tensor image = dev_upload(fix_input(4, (size_t)3 * 20 * 36, 0.0, 255.0), 1, 3, 20, 36);
  for (int k = 0; k < 3; k++) {
    skd_disc *d = fix_disc(f, cases[k].pre, cases[k].cond);
    skd_tensor x = dev_upload(cases[k].x, 1, FIX_C, FIX_H, FIX_W), dx = dev_zeros(1, FIX_C, FIX_H, FIX_W);
    skd_tensor dscore = dev_tensor(1, 1, 1, 1);
    CK_OK(skd_tensor_fill(T, &dscore, -LAMBDA_D));
    skd_disc_record r;
    CK_OK(skd_disc_forward(T, d, arena, SKD_DISC_TRAIN, NULL, &x, cases[k].cond ? &image : NULL, &r));
    CK_OK(skd_disc_backward(T, d, arena, &r, &dscore, &dx, 0));
    char key[32], check[64];
    snprintf(key, sizeof key, "%s.score", cases[k].key);
    snprintf(check, sizeof check, "mode %s score vs pytorch", cases[k].key);
    check_error("discriminator", check, fix_error(&r.score, ref_get(f, key)), 1e-5);
    snprintf(key, sizeof key, "%s.dq", cases[k].key);
    snprintf(check, sizeof check, "mode %s dx vs pytorch", cases[k].key);
    check_error("discriminator", check, fix_error(&dx, ref_get(f, key)), 2e-5);
    skd_disc_free(d);
  }
  skd_arena_free(arena);
  ref_close(f);
}
END_TEST

/* Central differences of L = sum_n w_n D(x)_n through HOLD forwards (state
 * fixed between evaluations) on a subset of inputs and parameter entries.
 * With `hold` (the analytic pass's record) the LeakyReLU masks are frozen,
 * so a step of 1e-2 crosses no kink; the spectral-normalised weights cannot
 * use it (hold reuses W / sigma), and take a small step instead. */
struct fd_case {
  skd_disc *d;
  skd_arena *arena;
  float *x;
  int n;
  const float *w;
  const skd_disc_record *hold;
};

static double fd_loss(struct fd_case *c) {
  int mark = dev_mark();
  skd_tensor x = dev_upload(c->x, c->n, 3, 16, 16);
  skd_disc_record r;
  skd_arena_reset(c->arena);
  CK_OK(skd_disc_forward(T, c->d, c->arena, SKD_DISC_HOLD, c->hold, &x, NULL, &r));
  float score[4];
  dev_download(&r.score, score);
  dev_release_to(mark);
  double l = 0.0;
  for (int i = 0; i < c->n; i++) l += (double)c->w[i] * score[i];
  return l;
}

/* Largest |analytic - fd| / max|analytic| over `count` entries of `v`
 * (host values, uploaded into `t` when t is given, else c->x). */
static double fd_subset(struct fd_case *c, float *v, const skd_tensor *t, const float *analytic, size_t numel,
                        int count, float eps) {
  double worst = 0.0, scale = 1e-6;
  for (size_t i = 0; i < numel; i++) scale = fmax(scale, fabs(analytic[i]));
  for (int j = 0; j < count; j++) {
    size_t i = (size_t)(((unsigned long)j * 2654435761ul) % numel);
    float saved = v[i];
    double l[2];
    for (int s = 0; s < 2; s++) {
      v[i] = saved + (s ? -eps : eps);
      if (t) CK_OK(skd_tensor_upload(T, t, v));
      l[s] = fd_loss(c);
    }
    v[i] = saved;
    if (t) CK_OK(skd_tensor_upload(T, t, v));
    worst = fmax(worst, fabs((l[0] - l[1]) / (2.0 * eps) - analytic[i]) / scale);
  }
  return worst;
}

START_TEST(backward_vs_finite_differences) {
  skd_disc_config cfg;
  skd_disc_config_default(&cfg, 3, 16, 16);
  cfg.conv_dim = 2;
  skd_disc *d;
  CK_OK(skd_disc_create(T, &cfg, 11, &d));
  CK_OK(skd_tensor_fill(T, &d->attn1.gamma.value, 0.8f));
  CK_OK(skd_tensor_fill(T, &d->attn2.gamma.value, -0.6f));
  /* Small q, k weights: the activations after l3 are large (each SN layer
   * keeps a sample's norm on a 4x smaller map), and with the default init
   * the softmax saturates, which leaves q and k without gradient. */
  skd_param *qk[4] = {&d->attn1.query_weight, &d->attn1.key_weight, &d->attn2.query_weight, &d->attn2.key_weight};
  for (int i = 0; i < 4; i++)
    CK_OK(skd_tensor_upload(T, &qk[i]->value, host_random(skd_tensor_numel(&qk[i]->value), -0.03f, 0.03f)));
  skd_arena *arena = fix_arena(), *fd_arena = fix_arena();
  const int n = 2;
  const size_t count = (size_t)n * 3 * 16 * 16;
  float w[2] = {0.7f, -1.3f};
  struct fd_case c = {d, fd_arena, host_random(count, -2.0f, 2.0f), n, w, NULL};
  skd_tensor x = dev_upload(c.x, n, 3, 16, 16), dx = dev_zeros(n, 3, 16, 16), dscore = dev_upload(w, n, 1, 1, 1);
  skd_disc_record r;
  CK_OK(skd_disc_forward(T, d, arena, SKD_DISC_HOLD, NULL, &x, NULL, &r));
  CK_OK(skd_disc_backward(T, d, arena, &r, &dscore, &dx, 1));
  c.hold = &r;
  check_error("discriminator", "dx vs fd (subset)", fd_subset(&c, c.x, NULL, dev_fetch(&dx), count, 40, 1e-2f), 1e-3);
  /* Steps: the SN weight's is small (no frozen masks there); the others are
   * sized to their parameter's scale and gradient. */
  struct {
    const char *name;
    float eps;
  } params[] = {{"l1.0.module.weight_bar", 1e-4f},      {"l3.0.module.bias", 5e-2f},
                {"attn1.query_conv.weight", 1e-4f},     {"attn2.gamma", 2e-1f},
                {"attn2.value_conv.weight", 1e-2f},     {"last.0.weight", 1e-2f},
                {"preprocess_additional.weight", 1e-3f}, {"preprocess_additional.bias", 3e-3f}};
  for (size_t k = 0; k < sizeof params / sizeof params[0]; k++) {
    skd_param *p = skd_disc_find(d, params[k].name);
    size_t m = skd_tensor_numel(&p->value);
    float *v = dev_fetch(&p->value), *g = dev_fetch(&p->grad);
    double gmax = 0.0;
    for (size_t i = 0; i < m; i++) gmax = fmax(gmax, fabs(g[i]));
    ck_assert_msg(gmax > 1e-2, "%s: gradient ~0 (%g): the check would be vacuous", params[k].name, gmax);
    char check[96];
    snprintf(check, sizeof check, "d%s vs fd", params[k].name);
    const int sn = strstr(params[k].name, "weight_bar") != NULL;
    c.hold = sn ? NULL : &r;
    check_error("discriminator", check, fd_subset(&c, v, &p->value, g, m, m < 12 ? (int)m : 12, params[k].eps),
                sn ? 3e-3 : 1e-3);
  }
  skd_disc_free(d);
  skd_arena_free(arena);
  skd_arena_free(fd_arena);
}
END_TEST

/* TRAIN advances u, v and the BN running statistics; HOLD changes neither
 * and, with hold_from, reproduces that forward's score. */
START_TEST(train_and_hold_state) {
  ref_file *f = ref_open("loss_holistic.bin");
  skd_disc *d = fix_disc(f, SKD_DISC_PRE_BN, 0);
  skd_arena *arena = fix_arena();
  const size_t count = (size_t)FIX_N * FIX_C * FIX_H * FIX_W;
  skd_tensor t = dev_upload(fix_input(1, count, -4.0, 4.0), FIX_N, FIX_C, FIX_H, FIX_W);
  const char *watch[3] = {"l2.0.module.weight_u", "l4.0.module.weight_v", "preprocess_additional.running_mean"};
  float *before[3];
  for (int i = 0; i < 3; i++) before[i] = dev_fetch(&skd_disc_find(d, watch[i])->value);
  skd_disc_record r, h;
  CK_OK(skd_disc_forward(T, d, arena, SKD_DISC_HOLD, NULL, &t, NULL, &h));
  for (int i = 0; i < 3; i++) {
    skd_param *p = skd_disc_find(d, watch[i]);
    check_error("discriminator", "HOLD keeps state", rel_error(dev_fetch(&p->value), before[i],
                                                               skd_tensor_numel(&p->value)), 0.0);
  }
  CK_OK(skd_disc_forward(T, d, arena, SKD_DISC_TRAIN, NULL, &t, NULL, &r));
  for (int i = 0; i < 3; i++) {
    skd_param *p = skd_disc_find(d, watch[i]);
    ck_assert_msg(rel_error(dev_fetch(&p->value), before[i], skd_tensor_numel(&p->value)) > 1e-7,
                  "TRAIN did not change %s", watch[i]);
    before[i] = dev_fetch(&p->value);
  }
  CK_OK(skd_disc_forward(T, d, arena, SKD_DISC_HOLD, &r, &t, NULL, &h));
  check_error("discriminator", "HOLD from record == its score", rel_error(dev_fetch(&h.score), dev_fetch(&r.score),
                                                                          FIX_N), 0.0);
  /* On another input, a HOLD from a HOLD record keeps the first record's
   * masks (not the intermediate one's own signs). */
  skd_tensor s = dev_upload(fix_input(2, count, -3.0, 5.0), FIX_N, FIX_C, FIX_H, FIX_W);
  skd_disc_record h1, h2;
  CK_OK(skd_disc_forward(T, d, arena, SKD_DISC_HOLD, &r, &s, NULL, &h1));
  CK_OK(skd_disc_forward(T, d, arena, SKD_DISC_HOLD, &h1, &s, NULL, &h2));
  check_error("discriminator", "HOLD chain keeps the masks", rel_error(dev_fetch(&h2.score), dev_fetch(&h1.score),
                                                                       FIX_N), 0.0);
  CK_OK(skd_disc_forward(T, d, arena, SKD_DISC_HOLD, NULL, &s, NULL, &h2));
  ck_assert_msg(rel_error(dev_fetch(&h2.score), dev_fetch(&h1.score), FIX_N) > 1e-6,
                "own masks and T's masks give the same score on S: the check above is vacuous");
  for (int i = 0; i < 3; i++) {
    skd_param *p = skd_disc_find(d, watch[i]);
    check_error("discriminator", "HOLD keeps state", rel_error(dev_fetch(&p->value), before[i],
                                                               skd_tensor_numel(&p->value)), 0.0);
  }
  skd_disc_free(d);
  skd_arena_free(arena);
  ref_close(f);
}
END_TEST

START_TEST(bad_arguments) {
  skd_disc_config cfg;
  skd_disc_config_default(&cfg, 5, 16, 16);
  cfg.conv_dim = 2;
  skd_disc *d = NULL;
  cfg.preprocess = (skd_disc_preprocess)4;
  ck_assert_int_eq(skd_disc_create(T, &cfg, 1, &d), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "preprocess mode must be 1") != NULL, "message: %s", skd_error_last());
  cfg.preprocess = SKD_DISC_PRE_BN;
  CK_OK(skd_disc_create(T, &cfg, 1, &d));
  skd_arena *arena = fix_arena();
  skd_disc_record r;
  skd_tensor wrong_c = dev_zeros(1, 4, 16, 16), x = dev_zeros(2, 5, 16, 16), img = dev_zeros(2, 3, 8, 8);
  ck_assert_int_eq(skd_disc_forward(T, d, arena, SKD_DISC_TRAIN, NULL, &wrong_c, NULL, &r), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "logits: expected (N >= 1, 5, H', W'), got (1, 4, 16, 16)") != NULL,
                "message: %s", skd_error_last());
  ck_assert_int_eq(skd_disc_forward(T, d, arena, SKD_DISC_TRAIN, NULL, &x, &img, &r), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "image given to an unconditional") != NULL, "message: %s",
                skd_error_last());
  skd_tensor small = dev_zeros(2, 5, 15, 20);
  ck_assert_int_eq(skd_disc_forward(T, d, arena, SKD_DISC_TRAIN, NULL, &small, NULL, &r), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "at least 16x16") != NULL, "message: %s", skd_error_last());
  CK_OK(skd_disc_forward(T, d, arena, SKD_DISC_TRAIN, NULL, &x, NULL, &r));
  skd_disc_record h;
  ck_assert_int_eq(skd_disc_forward(T, d, arena, SKD_DISC_TRAIN, &r, &x, NULL, &h), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "hold_from needs mode SKD_DISC_HOLD") != NULL, "message: %s",
                skd_error_last());
  skd_tensor x1 = dev_zeros(1, 5, 16, 16);
  ck_assert_int_eq(skd_disc_forward(T, d, arena, SKD_DISC_HOLD, &r, &x1, NULL, &h), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "hold_from: its logits are (2, 5, 16, 16)") != NULL, "message: %s",
                skd_error_last());
  skd_tensor dscore = dev_zeros(1, 1, 1, 1), dx_bad = dev_zeros(2, 5, 16, 17);
  ck_assert_int_eq(skd_disc_backward(T, d, arena, &r, &dscore, NULL, 1), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "dscore: expected shape (2, 1, 1, 1)") != NULL, "message: %s",
                skd_error_last());
  skd_tensor dscore2 = dev_zeros(2, 1, 1, 1);
  ck_assert_int_eq(skd_disc_backward(T, d, arena, &r, &dscore2, &dx_bad, 1), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "dlogits") != NULL, "message: %s", skd_error_last());
  skd_disc_free(d);
  cfg.conditional = 1;
  CK_OK(skd_disc_create(T, &cfg, 1, &d));
  ck_assert_int_eq(skd_disc_forward(T, d, arena, SKD_DISC_TRAIN, NULL, &x, NULL, &r), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "conditional: image: expected (2, 3, H, W)") != NULL, "message: %s",
                skd_error_last());
  CK_OK(skd_disc_forward(T, d, arena, SKD_DISC_TRAIN, NULL, &x, &img, &r));
  skd_disc_free(d);
  skd_arena_free(arena);
}
END_TEST

int main(void) {
  Suite *s = suite_create("discriminator");
  TCase *tc = support_tcase("discriminator");
  tcase_add_test(tc, depth_rule);
  tcase_add_test(tc, forward_sizes);
  tcase_add_test(tc, names_and_state);
  tcase_add_test(tc, forward_vs_pytorch);
  tcase_add_test(tc, backward_vs_pytorch);
  tcase_add_test(tc, modes_and_conditional_vs_pytorch);
  tcase_add_test(tc, backward_vs_finite_differences);
  tcase_add_test(tc, train_and_hold_state);
  tcase_add_test(tc, bad_arguments);
  suite_add_tcase(s, tc);
  return support_main(s);
}
