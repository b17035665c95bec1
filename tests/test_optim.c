/* SGD and Adam: device vs PyTorch (tests/reference/gen_optim.py) step by
 * step, device vs the plain-C reference on awkward shapes, lazy state,
 * frozen parameters, bad input and the poly schedule. */
#include "reference_file.h"
#include "support.h"

#define STEPS 4
#define NPARAM 2
static const char *configs[] = {"sgd",       "sgd_poly", "sgd_nesterov", "sgd_dampening",
                                "sgd_plain", "adam",     "adam_wd"};

struct hyper {
  int adam;
  double lr, a, b, c, wd;
  int nesterov;
  double power;
  long max_it;
};

/* The file stores the Python hyperparameters (short decimals such as 0.99)
 * as float32; the shortest decimal that rounds to the float recovers the
 * double PyTorch used. */
static double decimal(float f) {
  char text[32];
  for (int digits = 1; digits <= 9; digits++) {
    snprintf(text, sizeof text, "%.*g", digits, (double)f);
    if ((float)strtod(text, NULL) == f) break;
  }
  return strtod(text, NULL);
}

static struct hyper read_hyper(const ref_file *f, const char *cfg) {
  char name[96];
  snprintf(name, sizeof name, "%s/hyper", cfg);
  const float *h = ref_get(f, name)->data;
  struct hyper r = {h[0] != 0.0f,    decimal(h[1]), decimal(h[2]),  decimal(h[3]), decimal(h[4]),
                    decimal(h[5]),   h[6] != 0.0f,  decimal(h[7]),  (long)h[8]};
  return r;
}

static void init_optim(skd_optim *o, const struct hyper *h) {
  if (h->adam)
    CK_OK(skd_optim_adam_init(o, h->lr, h->a, h->b, h->c, h->wd));
  else
    CK_OK(skd_optim_sgd_init(o, h->lr, h->a, h->b, h->wd, h->nesterov));
}

static double lr_at(const struct hyper *h, long k) {
  return h->power > 0.0 ? skd_poly_lr(h->lr, k, h->max_it, h->power) : h->lr;
}

/* A parameter whose value and gradient are guarded test tensors; the
 * optimiser allocates the state, which release_state frees. */
static skd_param test_param(const float *value, int n, int c, int h, int w) {
  skd_param p;
  memset(&p, 0, sizeof p);
  snprintf(p.name, sizeof p.name, "test.weight");
  p.value = dev_upload(value, n, c, h, w);
  p.grad = dev_zeros(n, c, h, w);
  return p;
}

static void release_state(skd_param *p) {
  skd_tensor_release(&p->state1);
  skd_tensor_release(&p->state2);
}

START_TEST(vs_pytorch) {
  ref_file *f = ref_open("optim.bin");
  for (size_t ci = 0; ci < sizeof configs / sizeof configs[0]; ci++) {
    const char *cfg = configs[ci];
    struct hyper h = read_hyper(f, cfg);
    skd_optim o;
    init_optim(&o, &h);
    skd_param params[NPARAM];
    skd_param *ptrs[NPARAM];
    char name[96];
    for (int i = 0; i < NPARAM; i++) {
      snprintf(name, sizeof name, "p%d/init", i);
      const ref_array *init = ref_get(f, name);
      params[i] = test_param(init->data, init->dims[0], init->dims[1], init->dims[2], init->dims[3]);
      ptrs[i] = &params[i];
    }
    double worst = 0.0;
    for (int k = 0; k < STEPS; k++) {
      o.lr = lr_at(&h, k);
      for (int i = 0; i < NPARAM; i++) {
        snprintf(name, sizeof name, "p%d/grad%d", i, k);
        CK_OK(skd_tensor_upload(T, &params[i].grad, ref_get(f, name)->data));
      }
      CK_OK(skd_optim_step(T, &o, ptrs, NPARAM));
      ck_assert_int_eq(o.step, k + 1);
      for (int i = 0; i < NPARAM; i++) {
        snprintf(name, sizeof name, "%s/p%d/after%d", cfg, i, k);
        const ref_array *want = ref_get(f, name);
        double e = rel_error(dev_fetch(&params[i].value), want->data, want->numel);
        if (e > worst) worst = e;
      }
    }
    check_error(cfg, "values vs pytorch (4 steps)", worst, 1e-6);
    double worst_state = 0.0;
    for (int i = 0; i < NPARAM; i++) {
      int has_state1 = h.adam || h.a != 0.0;
      ck_assert_msg((params[i].state1.mem != NULL) == has_state1, "%s: state1 allocated: %d", cfg,
                    params[i].state1.mem != NULL);
      ck_assert_msg((params[i].state2.mem != NULL) == h.adam, "%s: state2 allocated", cfg);
      for (int s = 1; s <= 2; s++) {
        const skd_tensor *st = s == 1 ? &params[i].state1 : &params[i].state2;
        if (!st->mem) continue;
        snprintf(name, sizeof name, "%s/p%d/state%d", cfg, i, s);
        const ref_array *want = ref_get(f, name);
        double e = rel_error(dev_fetch(st), want->data, want->numel);
        if (e > worst_state) worst_state = e;
      }
      release_state(&params[i]);
    }
    check_error(cfg, "state vs pytorch", worst_state, 1e-6);
  }
  ref_close(f);
}
END_TEST

/* Device vs reference on awkward shapes for every configuration. */
START_TEST(vs_reference) {
  ref_file *f = ref_open("optim.bin");
  int shapes[][4] = {{1, 3, 7, 5}, {2, 13, 17, 9}, {1, 1, 1, 1}, {64, 3, 3, 3}};
  for (size_t ci = 0; ci < sizeof configs / sizeof configs[0]; ci++) {
    struct hyper h = read_hyper(f, configs[ci]);
    double worst = 0.0;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
      int *s = shapes[si];
      size_t n = (size_t)s[0] * s[1] * s[2] * s[3];
      float *p = host_random(n, -2.0f, 2.0f), *m = host_alloc(n), *v = host_alloc(n);
      skd_param prm = test_param(p, s[0], s[1], s[2], s[3]);
      skd_param *ptr = &prm;
      skd_optim o;
      init_optim(&o, &h);
      for (int k = 0; k < 3; k++) {
        float *g = host_random(n, -1.0f, 1.0f);
        CK_OK(skd_tensor_upload(T, &prm.grad, g));
        o.lr = lr_at(&h, k);
        CK_OK(skd_optim_step(T, &o, &ptr, 1));
        if (h.adam)
          skd_ref_adam_update(p, g, m, v, n, o.lr, h.a, h.b, h.c, h.wd, o.step);
        else
          skd_ref_sgd_update(p, g, m, n, o.lr, h.a, h.b, h.wd, h.nesterov, k == 0);
      }
      double e = rel_error(dev_fetch(&prm.value), p, n);
      if (prm.state1.mem && rel_error(dev_fetch(&prm.state1), m, n) > e) e = rel_error(dev_fetch(&prm.state1), m, n);
      if (prm.state2.mem && rel_error(dev_fetch(&prm.state2), v, n) > e) e = rel_error(dev_fetch(&prm.state2), v, n);
      if (e > worst) worst = e;
      release_state(&prm);
    }
    check_error(configs[ci], "device vs ref (3 steps, 4 shapes)", worst, 1e-6);
  }
  ref_close(f);
}
END_TEST

/* A frozen parameter (no gradient) is skipped; state is per parameter. */
START_TEST(frozen_and_lazy_state) {
  size_t n = 3 * 7 * 5;
  float *x = host_random(n, -1.0f, 1.0f);
  skd_param trained = test_param(x, 1, 3, 7, 5);
  skd_param frozen;
  memset(&frozen, 0, sizeof frozen);
  frozen.value = dev_upload(x, 1, 3, 7, 5);
  CK_OK(skd_tensor_fill(T, &trained.grad, 0.5f));
  skd_param *ptrs[] = {&frozen, &trained};
  skd_optim o;
  CK_OK(skd_optim_sgd_init(&o, 0.1, 0.9, 0.0, 0.0, 0));
  ck_assert(trained.state1.mem == NULL);
  CK_OK(skd_optim_step(T, &o, ptrs, 2));
  CK_OK(skd_optim_step(T, &o, ptrs, 2));
  ck_assert(frozen.state1.mem == NULL && trained.state1.mem != NULL);
  check_error("sgd", "frozen param unchanged", rel_error(dev_fetch(&frozen.value), x, n), 0.0);
  /* Two steps of g = 0.5: buf 0.5 then 0.95; p = x - 0.1 * (0.5 + 0.95). */
  float *want = host_alloc(n);
  for (size_t i = 0; i < n; i++) want[i] = (x[i] - 0.1f * 0.5f) - 0.1f * (0.9f * 0.5f + 0.5f);
  check_error("sgd", "two steps by hand", rel_error(dev_fetch(&trained.value), want, n), 1e-6);
  release_state(&trained);
}
END_TEST

START_TEST(bad_input) {
  skd_optim o;
  ck_assert_int_eq(skd_optim_sgd_init(&o, 0.1, 0.9, 0.1, 0.0, 1), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "nesterov") != NULL, "message: %s", skd_error_last());
  ck_assert_int_eq(skd_optim_sgd_init(&o, -0.1, 0.9, 0.0, 0.0, 0), SKD_EINVAL);
  ck_assert_int_eq(skd_optim_adam_init(&o, 1e-3, 1.0, 0.99, 1e-8, 0.0), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "betas") != NULL, "message: %s", skd_error_last());
  float x[12] = {0};
  skd_param p = test_param(x, 1, 3, 2, 2);
  p.grad = dev_zeros(1, 3, 2, 1);
  skd_param *ptr = &p;
  CK_OK(skd_optim_adam_init(&o, 1e-3, 0.9, 0.99, 1e-8, 0.0));
  ck_assert_int_eq(skd_optim_step(T, &o, &ptr, 1), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "optimiser: gradient of test.weight") != NULL, "message: %s",
                skd_error_last());
  /* An update before any step has begun is a usage error. */
  CK_OK(skd_optim_adam_init(&o, 1e-3, 0.9, 0.99, 1e-8, 0.0));
  p.grad = dev_zeros(1, 3, 2, 2);
  ck_assert_int_eq(skd_optim_update(T, &o, &p), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "skd_optim_begin_step") != NULL, "message: %s", skd_error_last());
  release_state(&p);
}
END_TEST

START_TEST(poly_schedule) {
  ck_assert_double_eq(skd_poly_lr(0.01, 0, 100, 0.9), 0.01);
  ck_assert_double_eq(skd_poly_lr(0.01, 100, 100, 0.9), 0.0);
  ck_assert_double_eq(skd_poly_lr(0.01, 250, 100, 0.9), 0.0);
  ck_assert_double_eq(skd_poly_lr(0.01, -5, 100, 0.9), 0.01);
  double want = 0.01 * pow(0.5, 0.9);
  check_error("poly_lr", "half way", fabs(skd_poly_lr(0.01, 50, 100, 0.9) - want) / want, 1e-15);
}
END_TEST

int main(void) {
  Suite *s = suite_create("optim");
  TCase *tc = support_tcase("optim");
  tcase_add_test(tc, vs_pytorch);
  tcase_add_test(tc, vs_reference);
  tcase_add_test(tc, frozen_and_lazy_state);
  tcase_add_test(tc, bad_input);
  tcase_add_test(tc, poly_schedule);
  suite_add_tcase(s, tc);
  return support_main(s);
}
