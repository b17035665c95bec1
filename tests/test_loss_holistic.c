/* Holistic loss: the wgan-gp D step (terms, every parameter gradient, the
 * state after the step) and the penalty's parameter gradient alone against
 * PyTorch's double backward (with a sweep of the central-difference step),
 * hinge, the G term, no leak of G-pass gradients into the D step, the
 * conditional D step, the mix RNG and bad arguments. */
#include "holistic_fixture.h"

struct inputs {
  skd_tensor s, t, mix, terms;
};

static struct inputs make_inputs(const ref_file *f) {
  const size_t count = (size_t)FIX_N * FIX_C * FIX_H * FIX_W;
  struct inputs in;
  in.t = dev_upload(fix_input(1, count, -4.0, 4.0), FIX_N, FIX_C, FIX_H, FIX_W);
  in.s = dev_upload(fix_input(2, count, -3.0, 5.0), FIX_N, FIX_C, FIX_H, FIX_W);
  in.mix = dev_upload(ref_get(f, "a.mix")->data, FIX_N, 1, 1, 1);
  in.terms = dev_tensor(1, SKD_HOLISTIC_TERMS, 1, 1);
  return in;
}

/* Every trainable parameter's gradient against "<prefix>.<name>", each
 * tensor's error relative to its own largest reference value, floored at
 * 1e-3 of the largest over all tensors: some gradients are 0 in exact
 * arithmetic (the last bias; attn2's value bias, which only shifts the score
 * by the same amount for every input; the key biases, which the softmax
 * ignores), and there only rounding remains on both sides. Returns the
 * largest error; tol <= 0: nothing printed or asserted. */
static double check_grads(const ref_file *f, skd_disc *d, const char *prefix, const char *what, double tol) {
  double global = 0.0, worst = 0.0;
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < d->nstate; i++) {
      skd_param *p = d->state[i];
      if (!p->grad.mem) continue;
      char key[160], check[160];
      snprintf(key, sizeof key, "%s.%s", prefix, p->name);
      const ref_array *r = ref_get(f, key);
      ck_assert_int_eq((int)r->numel, (int)skd_tensor_numel(&p->grad));
      double scale = 0.0, diff = 0.0;
      for (size_t j = 0; j < r->numel; j++) scale = fmax(scale, fabs(r->data[j]));
      if (pass == 0) {
        global = fmax(global, scale);
        continue;
      }
      float *g = dev_fetch(&p->grad);
      for (size_t j = 0; j < r->numel; j++) diff = fmax(diff, fabs((double)g[j] - r->data[j]));
      double e = diff / fmax(scale, 1e-3 * global);
      snprintf(check, sizeof check, "%s d%s", what, p->name);
      if (tol > 0.0) check_error("holistic", check, e, tol);
      worst = fmax(worst, e);
    }
  return worst;
}

START_TEST(d_step_wgan_gp_vs_pytorch) {
  ref_file *f = ref_open("loss_holistic.bin");
  skd_disc *d = fix_disc(f, SKD_DISC_PRE_BN, 0);
  skd_arena *arena = fix_arena();
  struct inputs in = make_inputs(f);
  skd_holistic_config cfg;
  skd_holistic_config_default(&cfg);
  /* Garbage in the gradients: the D step zeroes them. */
  for (int i = 0; i < d->nstate; i++)
    if (d->state[i]->grad.mem) CK_OK(skd_tensor_fill(T, &d->state[i]->grad, 1e3f));
  CK_OK(skd_holistic_d_step(T, &cfg, d, arena, &in.s, &in.t, NULL, &in.mix, &in.terms));
  float *terms = dev_fetch(&in.terms);
  const ref_array *want = ref_get(f, "a.d.terms");
  const char *names[4] = {"L_D", "real", "fake", "penalty"};
  for (int i = 0; i < 4; i++) {
    char check[64];
    snprintf(check, sizeof check, "D step %s vs pytorch", names[i]);
    check_error("holistic", check, rel_error(&terms[i], &want->data[i], 1), 1e-5);
  }
  check_grads(f, d, "a.d.grads", "D step", 5e-3); /* the penalty part is a central difference */
  /* The state the three TRAIN forwards left: u, v, BN running statistics. */
  for (int i = 0; i < d->nstate; i++) {
    skd_param *p = d->state[i];
    if (p->grad.mem) continue;
    char key[160], check[160];
    snprintf(key, sizeof key, "a.d.after.%s", p->name);
    snprintf(check, sizeof check, "after D step %s", p->name);
    check_error("holistic", check, fix_error(&p->value, ref_get(f, key)), 1e-5);
  }
  skd_disc_free(d);
  skd_arena_free(arena);
  ref_close(f);
}
END_TEST

/* The penalty alone, after the D step's first two forwards (so that u, v
 * are where the reference's third forward finds them); its parameter
 * gradient against PyTorch's double backward, per parameter tensor. */
static double penalty_run(const ref_file *f, float step, double tol) {
  skd_disc *d = fix_disc(f, SKD_DISC_PRE_BN, 0);
  skd_arena *arena = fix_arena();
  struct inputs in = make_inputs(f);
  skd_disc_record r;
  CK_OK(skd_disc_forward(T, d, arena, SKD_DISC_TRAIN, NULL, &in.t, NULL, &r));
  CK_OK(skd_disc_forward(T, d, arena, SKD_DISC_TRAIN, NULL, &in.s, NULL, &r));
  CK_OK(skd_disc_zero_grad(T, d));
  skd_holistic_config cfg;
  skd_holistic_config_default(&cfg);
  cfg.hvp_step = step;
  skd_tensor pen = dev_tensor(1, 1, 1, 1), gnorm = dev_tensor(FIX_N, 1, 1, 1);
  CK_OK(skd_holistic_penalty(T, &cfg, d, arena, &in.s, &in.t, NULL, &in.mix, &pen, &gnorm));
  if (tol > 0.0) {
    check_error("holistic", "penalty vs pytorch", rel_error(dev_fetch(&pen), &ref_get(f, "a.d.terms")->data[3], 1),
                1e-5);
    check_error("holistic", "||grad_x D(x_hat)|| vs pytorch", fix_error(&gnorm, ref_get(f, "a.d.gnorm")), 1e-5);
  }
  double worst = check_grads(f, d, "a.d.gp", "penalty (HVP)", tol);
  skd_disc_free(d);
  skd_arena_free(arena);
  return worst;
}

/* Tolerance 5e-3: the worst tensor measured 1.1e-3 on PoCL (attn2's value
 * bias, whose exact value is 0: pure rounding, ~1/c) and 2.2e-3 on rusticl;
 * the others stay below 6.3e-4. A wrong second-order term is off by > 1e-1. */
START_TEST(penalty_gradient_vs_double_backward) {
  ref_file *f = ref_open("loss_holistic.bin");
  double e = penalty_run(f, SKD_HOLISTIC_HVP_STEP, 5e-3);
  check_error("holistic", "penalty dtheta, worst tensor", e, 5e-3);
  /* The step's trade-off (truncation ~ c^2, rounding ~ 1/c), printed for
   * the record (the worst tensor); only the default is asserted. */
  const float steps[] = {3e-2f, 1e-2f, 3e-3f, 1e-3f, 3e-4f, 1e-4f};
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    char check[64];
    snprintf(check, sizeof check, "penalty dtheta, c = %.0e", (double)steps[i]);
    check_error("holistic", check, penalty_run(f, steps[i], 0.0), 1e9);
  }
  ref_close(f);
}
END_TEST

/* Hinge: the terms against PyTorch (last bias shifted so that one real
 * margin is inactive), and the gradient against the discriminator's own
 * backward with the margins' masks. */
START_TEST(d_step_hinge) {
  ref_file *f = ref_open("loss_holistic.bin");
  skd_disc *d = fix_disc(f, SKD_DISC_PRE_BN, 0), *d2 = fix_disc(f, SKD_DISC_PRE_BN, 0);
  const float bias = ref_get(f, "a.h.last_bias")->data[0];
  CK_OK(skd_tensor_fill(T, &d->last_bias.value, bias));
  CK_OK(skd_tensor_fill(T, &d2->last_bias.value, bias));
  skd_arena *arena = fix_arena();
  struct inputs in = make_inputs(f);
  skd_holistic_config cfg;
  skd_holistic_config_default(&cfg);
  cfg.type = SKD_ADV_HINGE;
  CK_OK(skd_holistic_d_step(T, &cfg, d, arena, &in.s, &in.t, NULL, NULL, &in.terms));
  float *terms = dev_fetch(&in.terms);
  const ref_array *want = ref_get(f, "a.h.terms");
  check_error("holistic", "hinge L_D vs pytorch", rel_error(&terms[0], &want->data[0], 1), 1e-5);
  check_error("holistic", "hinge real vs pytorch", rel_error(&terms[1], &want->data[1], 1), 1e-5);
  check_error("holistic", "hinge fake vs pytorch", rel_error(&terms[2], &want->data[2], 1), 1e-5);
  ck_assert_float_eq(terms[3], 0.0f);

  skd_disc_record rt, rs;
  CK_OK(skd_disc_forward(T, d2, arena, SKD_DISC_TRAIN, NULL, &in.t, NULL, &rt));
  CK_OK(skd_disc_forward(T, d2, arena, SKD_DISC_TRAIN, NULL, &in.s, NULL, &rs));
  float *st = dev_fetch(&rt.score), *ss = dev_fetch(&rs.score), dt[FIX_N], ds[FIX_N];
  int inactive = 0;
  for (int n = 0; n < FIX_N; n++) {
    dt[n] = 1.0f - st[n] > 0.0f ? -cfg.lambda_d / FIX_N : 0.0f;
    ds[n] = 1.0f + ss[n] > 0.0f ? cfg.lambda_d / FIX_N : 0.0f;
    inactive += dt[n] == 0.0f;
  }
  ck_assert_int_eq(inactive, 1);
  skd_tensor tdt = dev_upload(dt, FIX_N, 1, 1, 1), tds = dev_upload(ds, FIX_N, 1, 1, 1);
  CK_OK(skd_disc_zero_grad(T, d2));
  CK_OK(skd_disc_backward(T, d2, arena, &rt, &tdt, NULL, 1));
  CK_OK(skd_disc_backward(T, d2, arena, &rs, &tds, NULL, 1));
  for (int i = 0; i < d->nstate; i++) {
    skd_param *p = d->state[i];
    if (!p->grad.mem) continue;
    char check[160];
    snprintf(check, sizeof check, "hinge d%s vs masked backward", p->name);
    check_error("holistic", check, rel_error(dev_fetch(&p->grad), dev_fetch(&d2->state[i]->grad),
                                             skd_tensor_numel(&p->grad)), 0.0);
  }
  skd_disc_free(d);
  skd_disc_free(d2);
  skd_arena_free(arena);
  ref_close(f);
}
END_TEST

/* The G term: value and dQ_S (accumulated, times lambda_d) against
 * PyTorch; D's gradients untouched. */
START_TEST(g_term_vs_pytorch) {
  ref_file *f = ref_open("loss_holistic.bin");
  skd_disc *d = fix_disc(f, SKD_DISC_PRE_BN, 0);
  skd_arena *arena = fix_arena();
  struct inputs in = make_inputs(f);
  skd_holistic_config cfg;
  skd_holistic_config_default(&cfg);
  const size_t count = (size_t)FIX_N * FIX_C * FIX_H * FIX_W;
  float *dq0 = host_random(count, -1.0f, 1.0f);
  skd_tensor dq = dev_upload(dq0, FIX_N, FIX_C, FIX_H, FIX_W), loss = dev_tensor(1, 1, 1, 1);
  for (int i = 0; i < d->nstate; i++)
    if (d->state[i]->grad.mem) CK_OK(skd_tensor_fill(T, &d->state[i]->grad, NAN));
  CK_OK(skd_holistic_g_loss(T, &cfg, d, arena, &in.s, NULL, &dq, &loss));
  check_error("holistic", "G term L_ho vs pytorch", fix_error(&loss, ref_get(f, "a.g.loss")), 1e-5);
  const ref_array *want = ref_get(f, "a.g.dq");
  float *got = dev_fetch(&dq);
  for (size_t i = 0; i < count; i++) got[i] -= dq0[i];
  check_error("holistic", "G term dQ_S vs pytorch", rel_error(got, want->data, count), 1e-5);
  for (int i = 0; i < d->nstate; i++) {
    skd_param *p = d->state[i];
    if (!p->grad.mem) continue;
    float *g = dev_fetch(&p->grad);
    for (size_t j = 0; j < skd_tensor_numel(&p->grad); j++)
      ck_assert_msg(isnan(g[j]), "the G term wrote %s's gradient", p->name);
  }
  skd_disc_free(d);
  skd_arena_free(arena);
  ref_close(f);
}
END_TEST

/* A G pass before the D step changes nothing in the D step's gradients but
 * the state its TRAIN forward advances: compared with a D whose state was
 * advanced by a bare forward, bit for bit. */
START_TEST(no_leak_from_g_pass) {
  ref_file *f = ref_open("loss_holistic.bin");
  skd_disc *d1 = fix_disc(f, SKD_DISC_PRE_BN, 0), *d2 = fix_disc(f, SKD_DISC_PRE_BN, 0);
  skd_arena *arena = fix_arena();
  struct inputs in = make_inputs(f);
  skd_holistic_config cfg;
  skd_holistic_config_default(&cfg);
  skd_tensor dq = dev_zeros(FIX_N, FIX_C, FIX_H, FIX_W), loss = dev_tensor(1, 1, 1, 1);
  skd_tensor terms2 = dev_tensor(1, SKD_HOLISTIC_TERMS, 1, 1);
  CK_OK(skd_holistic_g_loss(T, &cfg, d1, arena, &in.s, NULL, &dq, &loss));
  CK_OK(skd_holistic_d_step(T, &cfg, d1, arena, &in.s, &in.t, NULL, &in.mix, &in.terms));
  skd_disc_record r;
  CK_OK(skd_disc_forward(T, d2, arena, SKD_DISC_TRAIN, NULL, &in.s, NULL, &r));
  CK_OK(skd_holistic_d_step(T, &cfg, d2, arena, &in.s, &in.t, NULL, &in.mix, &terms2));
  check_error("holistic", "no leak: terms", rel_error(dev_fetch(&in.terms), dev_fetch(&terms2), 4), 0.0);
  double worst = 0.0;
  for (int i = 0; i < d1->nstate; i++)
    if (d1->state[i]->grad.mem)
      worst = fmax(worst, rel_error(dev_fetch(&d1->state[i]->grad), dev_fetch(&d2->state[i]->grad),
                                    skd_tensor_numel(&d1->state[i]->grad)));
  check_error("holistic", "no leak: every D gradient", worst, 0.0);
  skd_disc_free(d1);
  skd_disc_free(d2);
  skd_arena_free(arena);
  ref_close(f);
}
END_TEST

/* A conditional discriminator through a whole D step and G term: finite
 * terms, a penalty gradient, and the image left unchanged. */
START_TEST(conditional_d_step) {
  ref_file *f = ref_open("loss_holistic.bin");
  skd_disc *d = fix_disc(f, SKD_DISC_PRE_BN, 1);
  skd_arena *arena = fix_arena();
  struct inputs in = make_inputs(f);
  float *img = fix_input(5, (size_t)FIX_N * 3 * 40 * 72, 0.0, 255.0);
  skd_tensor image = dev_upload(img, FIX_N, 3, 40, 72);
  skd_holistic_config cfg;
  skd_holistic_config_default(&cfg);
  CK_OK(skd_holistic_d_step(T, &cfg, d, arena, &in.s, &in.t, &image, &in.mix, &in.terms));
  float *terms = dev_fetch(&in.terms);
  for (int i = 0; i < 4; i++) ck_assert_msg(isfinite(terms[i]), "term %d = %g", i, terms[i]);
  ck_assert_msg(terms[3] > 0.0f, "penalty %g", terms[3]);
  float *g = dev_fetch(&d->conv[0].weight.grad);
  double gmax = 0.0;
  for (size_t i = 0; i < skd_tensor_numel(&d->conv[0].weight.grad); i++) gmax = fmax(gmax, fabs(g[i]));
  ck_assert_msg(isfinite(gmax) && gmax > 0.0, "l1 gradient %g", gmax);
  skd_tensor dq = dev_zeros(FIX_N, FIX_C, FIX_H, FIX_W), loss = dev_tensor(1, 1, 1, 1);
  CK_OK(skd_holistic_g_loss(T, &cfg, d, arena, &in.s, &image, &dq, &loss));
  ck_assert(isfinite(dev_fetch(&loss)[0]));
  check_error("holistic", "conditional: image unchanged", rel_error(dev_fetch(&image), img, skd_tensor_numel(&image)),
              0.0);
  skd_disc_free(d);
  skd_arena_free(arena);
  ref_close(f);
}
END_TEST

START_TEST(mix_draw) {
  float a[16], b[16], c[16];
  skd_holistic_mix_draw(42, 7, 16, a);
  skd_holistic_mix_draw(42, 7, 16, b);
  skd_holistic_mix_draw(42, 8, 16, c);
  int same = 0;
  double mean = 0.0;
  for (int i = 0; i < 16; i++) {
    ck_assert_float_eq(a[i], b[i]);
    ck_assert(a[i] >= 0.0f && a[i] < 1.0f);
    same += a[i] == c[i];
    mean += a[i] / 16.0;
  }
  ck_assert_int_lt(same, 2);
  ck_assert(mean > 0.2 && mean < 0.8);
}
END_TEST

START_TEST(bad_arguments) {
  ref_file *f = ref_open("loss_holistic.bin");
  skd_disc *d = fix_disc(f, SKD_DISC_PRE_BN, 0);
  skd_arena *arena = fix_arena();
  struct inputs in = make_inputs(f);
  skd_holistic_config cfg;
  skd_holistic_config_default(&cfg);
  skd_tensor wrong = dev_zeros(FIX_N, FIX_C, FIX_H, FIX_W + 1);
  ck_assert_int_eq(skd_holistic_d_step(T, &cfg, d, arena, &in.s, &wrong, NULL, &in.mix, &in.terms), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "holistic D step: q_t / mix: expected shape (2, 5, 16, 32)") != NULL,
                "message: %s", skd_error_last());
  ck_assert_int_eq(skd_holistic_d_step(T, &cfg, d, arena, &in.s, &in.t, NULL, NULL, &in.terms), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "wgan-gp needs mix") != NULL, "message: %s", skd_error_last());
  skd_tensor terms3 = dev_zeros(1, 3, 1, 1);
  ck_assert_int_eq(skd_holistic_d_step(T, &cfg, d, arena, &in.s, &in.t, NULL, &in.mix, &terms3), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "terms") != NULL, "message: %s", skd_error_last());
  cfg.hvp_step = 0.0f;
  ck_assert_int_eq(skd_holistic_d_step(T, &cfg, d, arena, &in.s, &in.t, NULL, &in.mix, &in.terms), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "hvp_step must be in (0, 1)") != NULL, "message: %s", skd_error_last());
  skd_holistic_config_default(&cfg);
  cfg.type = (skd_adv_type)5;
  ck_assert_int_eq(skd_holistic_d_step(T, &cfg, d, arena, &in.s, &in.t, NULL, &in.mix, &in.terms), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "unknown adversarial loss type 5") != NULL, "message: %s",
                skd_error_last());
  skd_holistic_config_default(&cfg);
  skd_tensor loss = dev_tensor(1, 1, 1, 1), small = dev_zeros(1, FIX_C, 12, 12);
  ck_assert_int_eq(skd_holistic_g_loss(T, &cfg, d, arena, &small, NULL, NULL, &loss), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "holistic loss needs logit maps of at least 16x16") != NULL, "message: %s",
                skd_error_last());
  skd_disc_free(d);
  skd_arena_free(arena);
  ref_close(f);
}
END_TEST

int main(void) {
  Suite *s = suite_create("loss_holistic");
  TCase *tc = support_tcase("loss_holistic");
  tcase_add_test(tc, d_step_wgan_gp_vs_pytorch);
  tcase_add_test(tc, penalty_gradient_vs_double_backward);
  tcase_add_test(tc, d_step_hinge);
  tcase_add_test(tc, g_term_vs_pytorch);
  tcase_add_test(tc, no_leak_from_g_pass);
  tcase_add_test(tc, conditional_d_step);
  tcase_add_test(tc, mix_draw);
  tcase_add_test(tc, bad_arguments);
  suite_add_tcase(s, tc);
  return support_main(s);
}
