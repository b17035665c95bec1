/* skd_gemm / skd_gemm_batched vs the plain-C reference: all four transpose
 * combinations, awkward sizes, padded leading dimensions, offsets and
 * strides, shared A, beta = 0 over NaN, both CLBlast paths (direct and
 * indirect), and the argument checks. */
#include "support.h"

#include "skd/ops/matmul.h"

struct gemm_case {
  skd_trans ta, tb;
  int m, n, k;
  float alpha, beta;
  int batch;
  int share_a;   /* stride_a = 0 */
  int nan_c;     /* C's entries start as NaN (beta must be 0) */
};

/* A stored matrix of rows x cols with padding in every row, `count` of them
 * `stride` apart after `off` leading floats. */
struct stored {
  int rows, cols, ld;
  size_t off, stride, total;
};

static struct stored layout(int rows, int cols, int pad, size_t gap, int count, int shared) {
  struct stored s = {rows, cols, cols + pad, 5, 0, 0};
  size_t one = (size_t)rows * s.ld;
  s.stride = shared ? 0 : one + gap;
  s.total = s.off + (size_t)(count - 1) * s.stride + one;
  return s;
}

static const char *tname(skd_trans t) { return t ? "T" : "N"; }

static void run_gemm(const struct gemm_case *c, const char *path) {
  struct stored a = layout(c->ta ? c->k : c->m, c->ta ? c->m : c->k, 2, 3, c->batch, c->share_a);
  struct stored b = layout(c->tb ? c->n : c->k, c->tb ? c->k : c->n, 1, 1, c->batch, 0);
  struct stored cc = layout(c->m, c->n, 3, 2, c->batch, 0);
  float *ha = host_random(a.total, -1.0f, 1.0f);
  float *hb = host_random(b.total, -1.0f, 1.0f);
  float *hc = host_random(cc.total, -1.0f, 1.0f);
  if (c->nan_c)
    for (int i = 0; i < c->batch; i++)
      for (int r = 0; r < c->m; r++)
        for (int j = 0; j < c->n; j++) hc[cc.off + i * cc.stride + (size_t)r * cc.ld + j] = NAN;
  float *ref = host_copy(hc, cc.total);
  skd_ref_gemm_batched(c->ta, c->tb, c->m, c->n, c->k, c->alpha, ha + a.off, a.ld, a.stride, hb + b.off, b.ld,
                       b.stride, c->beta, ref + cc.off, cc.ld, cc.stride, c->batch);

  skd_tensor da = dev_upload(ha, 1, 1, 1, (int)a.total);
  skd_tensor db = dev_upload(hb, 1, 1, 1, (int)b.total);
  skd_tensor dc = dev_upload(hc, 1, 1, 1, (int)cc.total);
  skd_matrix ma = skd_matrix_of(da.mem, da.offset + a.off, a.ld);
  skd_matrix mb = skd_matrix_of(db.mem, db.offset + b.off, b.ld);
  skd_matrix mc = skd_matrix_of(dc.mem, dc.offset + cc.off, cc.ld);
  if (c->batch == 1)
    CK_OK(skd_gemm(T, c->ta, c->tb, c->m, c->n, c->k, c->alpha, ma, mb, c->beta, mc));
  else
    CK_OK(skd_gemm_batched(T, c->ta, c->tb, c->m, c->n, c->k, c->alpha, ma, a.stride, mb, b.stride, c->beta, mc,
                           cc.stride, c->batch));
  /* The whole C buffer, padding included: padding must be left alone. */
  char check[96];
  snprintf(check, sizeof check, "%s%s %dx%dx%d b%d%s%s %s", tname(c->ta), tname(c->tb), c->m, c->n, c->k, c->batch,
           c->share_a ? " sharedA" : "", c->nan_c ? " beta0/NaN" : "", path);
  check_error(c->batch == 1 ? "gemm" : "gemm_batched", check, rel_error(dev_fetch(&dc), ref, cc.total), 1e-5);
}

static void run_all(const char *path) {
  const int sizes[][3] = {{7, 13, 5}, {33, 17, 65}, {1, 1, 1}};
  for (int t = 0; t < 4; t++)
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
      struct gemm_case c = {(skd_trans)(t >> 1), (skd_trans)(t & 1), sizes[s][0], sizes[s][1], sizes[s][2],
                            0.7f, 0.3f, 1, 0, 0};
      run_gemm(&c, path);
      if (s == 0) {
        c.beta = 0.0f;
        c.nan_c = 1;
        run_gemm(&c, path);
      }
    }
}

static void run_all_batched(const char *path) {
  for (int t = 0; t < 4; t++) {
    struct gemm_case c = {(skd_trans)(t >> 1), (skd_trans)(t & 1), 6, 11, 9, 1.3f, 0.5f, 3, 0, 0};
    run_gemm(&c, path);
    c.share_a = 1; /* the convolution's weight: one A for every product */
    c.beta = 0.0f;
    c.nan_c = 1;
    run_gemm(&c, path);
  }
}

START_TEST(gemm_direct) {
  run_all("direct");
  run_all_batched("direct");
}
END_TEST

/* Threshold 1: every product takes CLBlast's padded "indirect" path, which
 * copies C to a temporary and must also honour beta = 0. */
START_TEST(gemm_indirect) {
  CK_OK(skd_gemm_set_indirect_threshold(T, 1));
  run_all("indirect");
  run_all_batched("indirect");
}
END_TEST

static void expect_einval(skd_status st, const char *fragment) {
  ck_assert_int_eq(st, SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), fragment) != NULL, "message '%s' lacks '%s'", skd_error_last(), fragment);
}

START_TEST(bad_arguments) {
  skd_tensor t = dev_zeros(1, 1, 1, 100);
  skd_matrix a = skd_matrix_of(t.mem, t.offset, 4);
  skd_matrix c = skd_matrix_of(t.mem, t.offset + 50, 4);
  CK_OK(skd_gemm(T, SKD_NO_TRANS, SKD_NO_TRANS, 4, 4, 4, 1.0f, a, a, 0.0f, c));
  expect_einval(skd_gemm(T, SKD_NO_TRANS, SKD_NO_TRANS, 4, 4, 0, 1.0f, a, a, 0.0f, c), "sizes must be positive");
  /* A as 4 x 5 needs ld >= 5 */
  expect_einval(skd_gemm(T, SKD_NO_TRANS, SKD_NO_TRANS, 4, 4, 5, 1.0f, a, c, 0.0f, c), "A: leading dimension 4");
  /* B transposed is stored n x k = 6 x 4 */
  skd_matrix b6 = skd_matrix_of(t.mem, t.offset, 3);
  expect_einval(skd_gemm(T, SKD_NO_TRANS, SKD_TRANS, 4, 6, 4, 1.0f, a, b6, 0.0f, c), "B: leading dimension 3");
  /* C past the end of its buffer (the test buffer has 64-float guards) */
  skd_matrix far = skd_matrix_of(t.mem, t.offset + 170, 4);
  expect_einval(skd_gemm(T, SKD_NO_TRANS, SKD_NO_TRANS, 4, 4, 4, 1.0f, a, a, 0.0f, far), "C: 1 matrices of 4 x 4");
  /* overlapping batched results */
  expect_einval(skd_gemm_batched(T, SKD_NO_TRANS, SKD_NO_TRANS, 2, 2, 2, 1.0f, a, 0, a, 0, 0.0f, c, 4, 2),
                "overlap");
  expect_einval(skd_gemm_batched(T, SKD_NO_TRANS, SKD_NO_TRANS, 2, 2, 2, 1.0f, a, 0, a, 0, 0.0f, c, 8, 0),
                "sizes must be positive");
  skd_matrix none = skd_matrix_of(NULL, 0, 4);
  expect_einval(skd_gemm(T, SKD_NO_TRANS, SKD_NO_TRANS, 4, 4, 4, 1.0f, none, a, 0.0f, c), "A: no buffer");
}
END_TEST

int main(void) {
  Suite *s = suite_create("matmul");
  TCase *tc = support_tcase("matmul");
  tcase_add_test(tc, gemm_direct);
  tcase_add_test(tc, gemm_indirect);
  tcase_add_test(tc, bad_arguments);
  suite_add_tcase(s, tc);
  return support_main(s);
}
