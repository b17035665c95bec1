/* Self-attention layer: device forward/backward vs the plain-C reference on
 * awkward shapes (Cq = Ch / 8 rounded down and at least 1, P = 1, odd
 * sizes), backward vs central finite differences of the device forward for
 * the input and every parameter (gamma != 0), gamma = 0, the input-only
 * backward, and bad shapes. */
#include "support.h"
#include "skd/nn/attention.h"

struct layer {
  int n, ch, h, w, cq, p;
  float gamma;
  float *x, *wq, *bq, *wk, *bk, *wv, *bv;
  skd_attention a;
};

static float *params_of(struct layer *L, int i) {
  float *t[7] = {&L->gamma, L->wq, L->bq, L->wk, L->bk, L->wv, L->bv};
  return t[i];
}

static void upload_params(struct layer *L) {
  skd_param *p[7];
  skd_attention_params(&L->a, p);
  for (int i = 0; i < 7; i++) CK_OK(skd_tensor_upload(T, &p[i]->value, params_of(L, i)));
}

/* qk: range of the q, k weights (the softmax's sharpness) */
static void make_layer(struct layer *L, int n, int ch, int h, int w, float gamma, float qk) {
  memset(L, 0, sizeof *L);
  L->n = n;
  L->ch = ch;
  L->h = h;
  L->w = w;
  L->p = h * w;
  L->cq = ch / 8 > 0 ? ch / 8 : 1;
  L->gamma = gamma;
  CK_OK(skd_attention_init(T, &L->a, "attn1", ch, 1));
  ck_assert_int_eq(L->a.qk_channels, L->cq);
  L->x = host_random((size_t)n * ch * L->p, -1.5f, 1.5f);
  L->wq = host_random((size_t)L->cq * ch, -qk, qk);
  L->bq = host_random((size_t)L->cq, -0.5f, 0.5f);
  L->wk = host_random((size_t)L->cq * ch, -qk, qk);
  L->bk = host_random((size_t)L->cq, -0.5f, 0.5f);
  L->wv = host_random((size_t)ch * ch, -0.5f, 0.5f);
  L->bv = host_random((size_t)ch, -0.5f, 0.5f);
  upload_params(L);
}

static skd_arena *new_arena(void) {
  skd_arena *a;
  CK_OK(skd_arena_create(T, &a, (size_t)4 << 20));
  return a;
}

static void check_shape(int n, int ch, int h, int w, float gamma) {
  struct layer L;
  make_layer(&L, n, ch, h, w, gamma, 1.2f); /* a softmax far from uniform */
  const size_t nx = (size_t)n * ch * L.p;
  skd_arena *arena = new_arena();
  skd_tensor x = dev_upload(L.x, n, ch, h, w);
  skd_attention_record rec;
  CK_OK(skd_attention_forward(T, &L.a, arena, &x, &rec));
  float *y = dev_fetch(&rec.y), *attn = dev_fetch(&rec.attn);
  float *yref = host_alloc(nx), *aref = host_alloc((size_t)n * L.p * L.p);
  skd_ref_attention_forward(n, ch, L.cq, L.p, L.x, L.wq, L.bq, L.wk, L.bk, L.wv, L.bv, gamma, yref, aref);
  char check[96];
  snprintf(check, sizeof check, "fwd vs ref %dx%dx%dx%d g=%.1f", n, ch, h, w, (double)gamma);
  check_error("attention", check, rel_error(y, yref, nx), 1e-5);
  snprintf(check, sizeof check, "softmax vs ref %dx%dx%dx%d", n, ch, h, w);
  check_error("attention", check, rel_error(attn, aref, (size_t)n * L.p * L.p), 1e-5);

  /* Backward onto non-zero gradients (it accumulates). */
  float *dy = host_random(nx, -1.0f, 1.0f), *dx0 = host_random(nx, -1.0f, 1.0f);
  skd_tensor tdy = dev_upload(dy, n, ch, h, w), tdx = dev_upload(dx0, n, ch, h, w);
  skd_param *p[7];
  skd_attention_params(&L.a, p);
  float *g0[7], *gref[7];
  for (int i = 0; i < 7; i++) {
    size_t m = skd_tensor_numel(&p[i]->value);
    g0[i] = host_random(m, -1.0f, 1.0f);
    gref[i] = host_copy(g0[i], m);
    CK_OK(skd_tensor_upload(T, &p[i]->grad, g0[i]));
  }
  CK_OK(skd_attention_backward(T, &L.a, arena, &rec, &tdy, &tdx, 1));
  float *dxref = host_copy(dx0, nx);
  skd_ref_attention_backward(n, ch, L.cq, L.p, L.x, L.wq, L.bq, L.wk, L.bk, L.wv, L.bv, gamma, dy, dxref, gref[1],
                             gref[2], gref[3], gref[4], gref[5], gref[6], gref[0]);
  snprintf(check, sizeof check, "bwd dx vs ref %dx%dx%dx%d", n, ch, h, w);
  check_error("attention", check, rel_error(dev_fetch(&tdx), dxref, nx), 1e-5);
  const char *names[7] = {"dgamma", "dwq", "dbq", "dwk", "dbk", "dwv", "dbv"};
  for (int i = 0; i < 7; i++) {
    size_t m = skd_tensor_numel(&p[i]->value);
    float *g = dev_fetch(&p[i]->grad);
    snprintf(check, sizeof check, "bwd %s vs ref %dx%dx%dx%d", names[i], n, ch, h, w);
    if (i != 4) {
      check_error("attention", check, rel_error(g, gref[i], m), 2e-5);
      continue;
    }
    /* The key bias adds a constant to every row of E, which the softmax
     * ignores: its gradient is 0 up to rounding. Measured against the size
     * of the key weights' gradient. */
    double diff = 0.0, scale = 1e-6;
    for (size_t j = 0; j < m; j++) diff = fmax(diff, fabs((double)g[j] - g0[4][j]));
    for (size_t j = 0; j < skd_tensor_numel(&p[3]->value); j++)
      scale = fmax(scale, fabs((double)gref[3][j] - g0[3][j]));
    check_error("attention", check, diff / scale, 2e-5);
  }
  skd_attention_release(&L.a);
  skd_arena_free(arena);
}

START_TEST(forward_backward_vs_reference) {
  check_shape(1, 8, 3, 5, 0.7f);   /* Cq = 1 */
  check_shape(2, 13, 4, 3, -0.6f); /* Cq = 1, odd channels */
  check_shape(2, 24, 5, 7, 0.9f);  /* Cq = 3, P = 35 */
  check_shape(1, 16, 1, 1, 0.5f);  /* P = 1: softmax of one value */
  check_shape(3, 9, 7, 5, 0.8f);
  check_shape(2, 17, 3, 3, 0.0f);  /* gamma = 0: q, k, v get no gradient */
}
END_TEST

/* Finite differences of L = sum(w * y) through the device forward, with
 * respect to x (which = -1) or parameter `which`. */
struct fd_ctx {
  struct layer *L;
  int which;
};

static void fd_forward(void *user, const float *v, float *y) {
  struct fd_ctx *c = user;
  struct layer *L = c->L;
  int mark = dev_mark();
  skd_param *p[7];
  skd_attention_params(&L->a, p);
  if (c->which >= 0) CK_OK(skd_tensor_upload(T, &p[c->which]->value, v));
  skd_tensor x = dev_upload(c->which < 0 ? v : L->x, L->n, L->ch, L->h, L->w);
  skd_arena *arena = new_arena();
  skd_attention_record rec;
  CK_OK(skd_attention_forward(T, &L->a, arena, &x, &rec));
  dev_download(&rec.y, y);
  skd_arena_free(arena);
  dev_release_to(mark);
}

START_TEST(backward_vs_finite_differences) {
  struct layer L;
  make_layer(&L, 2, 9, 2, 3, 0.8f, 0.6f); /* moderate curvature for the differences */
  const size_t nx = (size_t)L.n * L.ch * L.p;
  skd_arena *arena = new_arena();
  skd_tensor x = dev_upload(L.x, L.n, L.ch, L.h, L.w);
  skd_attention_record rec;
  CK_OK(skd_attention_forward(T, &L.a, arena, &x, &rec));
  float *w = host_random(nx, -1.0f, 1.0f);
  skd_tensor tw = dev_upload(w, L.n, L.ch, L.h, L.w), tdx = dev_zeros(L.n, L.ch, L.h, L.w);
  CK_OK(skd_attention_backward(T, &L.a, arena, &rec, &tw, &tdx, 1));
  struct fd_ctx c = {&L, -1};
  check_error("attention", "dx vs fd", fd_error(fd_forward, &c, L.x, nx, w, nx, dev_fetch(&tdx), 1e-2f), 1e-3);
  skd_param *p[7];
  skd_attention_params(&L.a, p);
  const char *names[7] = {"dgamma vs fd", "dwq vs fd", "dbq vs fd", "dwk vs fd", "dbk vs fd", "dwv vs fd",
                          "dbv vs fd"};
  for (int i = 0; i < 7; i++) {
    if (i == 4) continue; /* the key bias: gradient identically 0 (see above) */
    c.which = i;
    size_t m = skd_tensor_numel(&p[i]->value);
    float *g = dev_fetch(&p[i]->grad);
    double gmax = 0.0;
    for (size_t j = 0; j < m; j++) gmax = fmax(gmax, fabs(g[j]));
    ck_assert_msg(gmax > 1e-3, "%s: gradient is ~0 (%g): the check would be vacuous", names[i], gmax);
    check_error("attention", names[i], fd_error(fd_forward, &c, params_of(&L, i), m, w, nx, g, 1e-2f), 1e-3);
    upload_params(&L); /* the device still holds the last perturbed value */
  }
  skd_attention_release(&L.a);
  skd_arena_free(arena);
}
END_TEST

START_TEST(input_only_and_gamma_zero) {
  struct layer L;
  make_layer(&L, 2, 16, 3, 4, 0.6f, 1.2f);
  const size_t nx = (size_t)L.n * L.ch * L.p;
  skd_arena *arena = new_arena();
  skd_tensor x = dev_upload(L.x, L.n, L.ch, L.h, L.w);
  skd_attention_record rec;
  CK_OK(skd_attention_forward(T, &L.a, arena, &x, &rec));
  float *dy = host_random(nx, -1.0f, 1.0f);
  skd_tensor tdy = dev_upload(dy, L.n, L.ch, L.h, L.w), tdx = dev_zeros(L.n, L.ch, L.h, L.w);
  /* param_grads = 0: grads untouched (NaN sentinels stay NaN), dx as the reference's. */
  skd_param *p[7];
  skd_attention_params(&L.a, p);
  for (int i = 0; i < 7; i++) CK_OK(skd_tensor_fill(T, &p[i]->grad, NAN));
  CK_OK(skd_attention_backward(T, &L.a, arena, &rec, &tdy, &tdx, 0));
  for (int i = 0; i < 7; i++) {
    float *g = dev_fetch(&p[i]->grad);
    for (size_t j = 0; j < skd_tensor_numel(&p[i]->value); j++) ck_assert_msg(isnan(g[j]), "grad %d written", i);
  }
  float *dxref = host_alloc(nx);
  skd_ref_attention_backward(L.n, L.ch, L.cq, L.p, L.x, L.wq, L.bq, L.wk, L.bk, L.wv, L.bv, L.gamma, dy, dxref, NULL,
                             NULL, NULL, NULL, NULL, NULL, NULL);
  check_error("attention", "input-only bwd vs ref", rel_error(dev_fetch(&tdx), dxref, nx), 1e-5);

  /* gamma = 0: y = x exactly, dx = dy, only dgamma is non-zero. */
  L.gamma = 0.0f;
  upload_params(&L);
  for (int i = 0; i < 7; i++) CK_OK(skd_tensor_fill(T, &p[i]->grad, 0.0f));
  CK_OK(skd_attention_forward(T, &L.a, arena, &x, &rec));
  check_error("attention", "gamma=0 y == x", rel_error(dev_fetch(&rec.y), L.x, nx), 0.0);
  CK_OK(skd_tensor_fill(T, &tdx, 0.0f));
  CK_OK(skd_attention_backward(T, &L.a, arena, &rec, &tdy, &tdx, 1));
  check_error("attention", "gamma=0 dx == dy", rel_error(dev_fetch(&tdx), dy, nx), 0.0);
  for (int i = 1; i < 7; i++) {
    float *g = dev_fetch(&p[i]->grad);
    for (size_t j = 0; j < skd_tensor_numel(&p[i]->value); j++) ck_assert_float_eq(g[j], 0.0f);
  }
  ck_assert_float_ne(dev_fetch(&p[0]->grad)[0], 0.0f);
  skd_attention_release(&L.a);
  skd_arena_free(arena);
}
END_TEST

START_TEST(bad_shapes) {
  skd_attention a;
  CK_OK(skd_attention_init(T, &a, "attn2", 16, 1));
  skd_arena *arena = new_arena();
  skd_tensor x = dev_zeros(1, 12, 3, 3);
  skd_attention_record rec;
  ck_assert_int_eq(skd_attention_forward(T, &a, arena, &x, &rec), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "attention forward: x: expected 16 channels") != NULL, "message: %s",
                skd_error_last());
  skd_tensor x2 = dev_zeros(1, 16, 3, 3), dy = dev_zeros(1, 16, 3, 4);
  CK_OK(skd_attention_forward(T, &a, arena, &x2, &rec));
  ck_assert_int_eq(skd_attention_backward(T, &a, arena, &rec, &dy, NULL, 1), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "attention backward: dy") != NULL, "message: %s", skd_error_last());
  skd_attention_release(&a);
  ck_assert_int_eq(skd_attention_init(T, &a, "bad", 0, 1), SKD_EINVAL);
  ck_assert_str_eq(a.gamma.name, "");
  skd_arena_free(arena);
}
END_TEST

START_TEST(names) {
  skd_attention a;
  CK_OK(skd_attention_init(T, &a, "attn1", 32, 0));
  ck_assert_int_eq(a.qk_channels, 4);
  skd_param *p[7];
  skd_attention_params(&a, p);
  const char *want[7] = {"attn1.gamma",         "attn1.query_conv.weight", "attn1.query_conv.bias",
                         "attn1.key_conv.weight", "attn1.key_conv.bias",   "attn1.value_conv.weight",
                         "attn1.value_conv.bias"};
  for (int i = 0; i < 7; i++) {
    ck_assert_str_eq(p[i]->name, want[i]);
    ck_assert_ptr_null(p[i]->grad.mem);
  }
  ck_assert_int_eq(a.query_weight.value.n, 4);
  ck_assert_int_eq(a.query_weight.value.c, 32);
  skd_attention_release(&a);
}
END_TEST

int main(void) {
  Suite *s = suite_create("attention");
  TCase *tc = support_tcase("attention");
  tcase_add_test(tc, forward_backward_vs_reference);
  tcase_add_test(tc, backward_vs_finite_differences);
  tcase_add_test(tc, input_only_and_gamma_zero);
  tcase_add_test(tc, bad_shapes);
  tcase_add_test(tc, names);
  suite_add_tcase(s, tc);
  return support_main(s);
}
