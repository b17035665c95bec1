/* Dropout2d: the generator's known answers, device vs reference, the dropped
 * fraction, seeds, backward with the forward's mask, finite differences, eval
 * mode and bad arguments. */
#include "support.h"
#include "skd/ops/dropout.h"

/* Random123's known-answer vectors for Philox2x32-10 (kat_vectors):
 * counter (x0, x1), key -> first output word. Our counter is (c, n). */
START_TEST(philox_known_answers) {
  ck_assert_uint_eq(skd_dropout2d_bits(0u, 0, 0), 0xff1dae59u);
  ck_assert_uint_eq(skd_dropout2d_bits(0xffffffffu, (int)0xffffffffu, (int)0xffffffffu), 0x2c3f628bu);
  ck_assert_uint_eq(skd_dropout2d_bits(0x13198a2eu, (int)0x85a308d3u, (int)0x243f6a88u), 0xdd7ce038u);
}
END_TEST

static void run_shape(int n, int c, int h, int w, float p, uint32_t seed) {
  const size_t numel = (size_t)n * c * h * w;
  float *x = host_random_away_from_zero(numel, -2.0f, 2.0f, 0.01f);
  float *dy = host_random(numel, -1.0f, 1.0f), *dx0 = host_random(numel, -1.0f, 1.0f);
  skd_tensor tx = dev_upload(x, n, c, h, w), ty = dev_tensor(n, c, h, w);
  skd_tensor tdy = dev_upload(dy, n, c, h, w), tdx = dev_upload(dx0, n, c, h, w);
  CK_OK(skd_dropout2d_forward(T, 1, &tx, &ty, p, seed));
  CK_OK(skd_dropout2d_backward(T, 1, &tdy, &tdx, p, seed));
  float *y = host_alloc(numel), *dx = host_copy(dx0, numel);
  skd_ref_dropout2d_forward(1, x, y, n, c, h * w, p, seed);
  skd_ref_dropout2d_backward(1, dy, dx, n, c, h * w, p, seed);
  char check[64];
  snprintf(check, sizeof check, "fwd vs ref %dx%dx%dx%d p=%.1f", n, c, h, w, (double)p);
  check_error("dropout2d", check, rel_error(dev_fetch(&ty), y, numel), 0.0);
  snprintf(check, sizeof check, "bwd vs ref %dx%dx%dx%d p=%.1f", n, c, h, w, (double)p);
  check_error("dropout2d", check, rel_error(dev_fetch(&tdx), dx, numel), 1e-6); /* FMA or not */
}

START_TEST(versus_reference) {
  run_shape(1, 3, 7, 5, 0.3f, 1234u);
  run_shape(2, 13, 5, 9, 0.5f, 99u);
  run_shape(4, 64, 1, 1, 0.2f, 0xdeadbeefu);
  run_shape(3, 17, 11, 3, 1.0f, 5u);
  run_shape(2, 5, 4, 4, 0.0f, 5u);
}
END_TEST

/* A shard (rows row0.. of a larger batch, data parallel) draws the masks of
 * those rows: the _rows ops on rows 2..3 against the reference over rows
 * 0..3, forward and backward. */
START_TEST(rows_offset) {
  const int n = 4, c = 9, h = 3, w = 5, row0 = 2, rows = 2;
  const size_t numel = (size_t)n * c * h * w, shard = (size_t)rows * c * h * w, first = numel - shard;
  const float p = 0.4f;
  const uint32_t seed = 4242u;
  float *x = host_random(numel, -2.0f, 2.0f), *y_ref = host_alloc(numel), *dx_ref = host_alloc(numel);
  skd_ref_dropout2d_forward(1, x, y_ref, n, c, h * w, p, seed);
  skd_ref_dropout2d_backward(1, x, dx_ref, n, c, h * w, p, seed); /* dy = x, onto zeros */
  skd_tensor tx = dev_upload(x + first, rows, c, h, w), ty = dev_tensor(rows, c, h, w);
  skd_tensor tdx = dev_zeros(rows, c, h, w);
  CK_OK(skd_dropout2d_forward_rows(T, 1, &tx, &ty, p, seed, row0));
  CK_OK(skd_dropout2d_backward_rows(T, 1, &tx, &tdx, p, seed, row0));
  check_error("dropout2d rows", "forward", rel_error(dev_fetch(&ty), y_ref + first, shard), 0.0);
  check_error("dropout2d rows", "backward", rel_error(dev_fetch(&tdx), dx_ref + first, shard), 0.0);
  /* and the masks do depend on the offset */
  CK_OK(skd_dropout2d_forward_rows(T, 1, &tx, &ty, p, seed, 0));
  ck_assert_msg(rel_error(dev_fetch(&ty), y_ref + first, shard) > 0.0, "row0 had no effect");
}
END_TEST

/* Over many channels the dropped fraction is near p, every channel is
 * dropped or kept as a whole, the kept ones are scaled by 1 / (1 - p), and
 * backward drops exactly the channels forward dropped. */
START_TEST(dropped_fraction) {
  const int n = 8, c = 1000, h = 2, w = 3, hw = h * w;
  const size_t numel = (size_t)n * c * hw;
  float *x = host_random_away_from_zero(numel, -2.0f, 2.0f, 0.01f);
  float *ones = host_alloc(numel);
  for (size_t i = 0; i < numel; i++) ones[i] = 1.0f;
  skd_tensor tx = dev_upload(x, n, c, h, w), ty = dev_tensor(n, c, h, w);
  skd_tensor tdy = dev_upload(ones, n, c, h, w), tdx = dev_tensor(n, c, h, w);
  static const float ps[] = {0.1f, 0.5f, 0.9f};
  for (int k = 0; k < 3; k++) {
    const float p = ps[k], scale = 1.0f / (1.0f - p);
    CK_OK(skd_dropout2d_forward(T, 1, &tx, &ty, p, 77u + (uint32_t)k));
    CK_OK(skd_tensor_fill(T, &tdx, 0.0f));
    CK_OK(skd_dropout2d_backward(T, 1, &tdy, &tdx, p, 77u + (uint32_t)k));
    float *y = dev_fetch(&ty), *dx = dev_fetch(&tdx);
    int dropped = 0;
    for (int nc = 0; nc < n * c; nc++) {
      const size_t base = (size_t)nc * hw;
      const int gone = y[base] == 0.0f;
      dropped += gone;
      for (int s = 0; s < hw; s++) {
        const float want = gone ? 0.0f : x[base + s] * scale;
        ck_assert_msg(y[base + s] == want, "channel %d element %d: %g, want %g", nc, s, (double)y[base + s],
                      (double)want);
        ck_assert_msg(dx[base + s] == (gone ? 0.0f : scale), "backward mask differs at channel %d", nc);
      }
    }
    const double frac = (double)dropped / (n * c), sigma = sqrt(p * (1.0 - p) / (n * c));
    char check[64];
    snprintf(check, sizeof check, "|dropped - p| / sigma, p=%.1f", (double)p);
    check_error("dropout2d", check, fabs(frac - p) / sigma, 4.0);
  }
}
END_TEST

START_TEST(seeds) {
  const int n = 4, c = 64, h = 3, w = 3;
  const size_t numel = (size_t)n * c * h * w;
  float *x = host_random_away_from_zero(numel, -1.0f, 1.0f, 0.01f);
  skd_tensor tx = dev_upload(x, n, c, h, w);
  skd_tensor a = dev_tensor(n, c, h, w), b = dev_tensor(n, c, h, w), d = dev_tensor(n, c, h, w);
  CK_OK(skd_dropout2d_forward(T, 1, &tx, &a, 0.5f, 42u));
  CK_OK(skd_dropout2d_forward(T, 1, &tx, &b, 0.5f, 42u));
  CK_OK(skd_dropout2d_forward(T, 1, &tx, &d, 0.5f, 43u));
  float *ya = dev_fetch(&a), *yb = dev_fetch(&b), *yd = dev_fetch(&d);
  ck_assert_msg(memcmp(ya, yb, numel * sizeof(float)) == 0, "same seed, different masks");
  int differ = 0;
  for (int nc = 0; nc < n * c; nc++) differ += (ya[(size_t)nc * h * w] == 0.0f) != (yd[(size_t)nc * h * w] == 0.0f);
  /* Independent masks at p = 0.5 differ on about half of the 256 channels. */
  ck_assert_msg(differ > 64, "seeds 42 and 43 give nearly the same mask (%d channels differ)", differ);
  /* The mask depends on (n, c), not on the position: samples differ too. */
  int same_as_first = 0;
  for (int ch = 0; ch < c; ch++)
    same_as_first += (ya[(size_t)ch * h * w] == 0.0f) == (ya[((size_t)c + ch) * h * w] == 0.0f);
  ck_assert_msg(same_as_first < c, "sample 1 repeats sample 0's mask");
  /* In place gives the same result. */
  CK_OK(skd_dropout2d_forward(T, 1, &tx, &tx, 0.5f, 42u));
  ck_assert_msg(memcmp(dev_fetch(&tx), ya, numel * sizeof(float)) == 0, "in place differs");
}
END_TEST

struct fd_case {
  int n, c, h, w;
  int training;
};

static void fd_forward(void *user, const float *x, float *y) {
  const struct fd_case *f = user;
  int mark = dev_mark();
  skd_tensor tx = dev_upload(x, f->n, f->c, f->h, f->w), ty = dev_tensor(f->n, f->c, f->h, f->w);
  CK_OK(skd_dropout2d_forward(T, f->training, &tx, &ty, 0.5f, 2024u));
  dev_download(&ty, y);
  dev_release_to(mark);
}

START_TEST(finite_differences) {
  for (int training = 1; training >= 0; training--) {
    struct fd_case f = {2, 5, 3, 3, training};
    const size_t numel = 2 * 5 * 3 * 3;
    float *x = host_random(numel, -1.0f, 1.0f), *dy = host_random(numel, -1.0f, 1.0f);
    skd_tensor tdy = dev_upload(dy, 2, 5, 3, 3), tdx = dev_zeros(2, 5, 3, 3);
    CK_OK(skd_dropout2d_backward(T, training, &tdy, &tdx, 0.5f, 2024u));
    check_error("dropout2d", training ? "train bwd vs fd 2x5x3x3" : "eval bwd vs fd 2x5x3x3",
                fd_error(fd_forward, &f, x, numel, dy, numel, dev_fetch(&tdx), 1e-2f), 1e-3);
  }
}
END_TEST

START_TEST(eval_identity) {
  const size_t numel = 2 * 3 * 5 * 7;
  float *x = host_random(numel, -1.0f, 1.0f), *dy = host_random(numel, -1.0f, 1.0f);
  float *dx0 = host_random(numel, -1.0f, 1.0f);
  skd_tensor tx = dev_upload(x, 2, 3, 5, 7), ty = dev_tensor(2, 3, 5, 7);
  skd_tensor tdy = dev_upload(dy, 2, 3, 5, 7), tdx = dev_upload(dx0, 2, 3, 5, 7);
  CK_OK(skd_dropout2d_forward(T, 0, &tx, &ty, 0.7f, 1u));
  check_error("dropout2d", "eval fwd = x", rel_error(dev_fetch(&ty), x, numel), 0.0);
  CK_OK(skd_dropout2d_forward(T, 0, &tx, &tx, 0.7f, 1u));
  check_error("dropout2d", "eval fwd in place = x", rel_error(dev_fetch(&tx), x, numel), 0.0);
  CK_OK(skd_dropout2d_backward(T, 0, &tdy, &tdx, 0.7f, 1u));
  for (size_t i = 0; i < numel; i++) dx0[i] += dy[i];
  check_error("dropout2d", "eval bwd = dx + dy", rel_error(dev_fetch(&tdx), dx0, numel), 0.0);
}
END_TEST

START_TEST(bad_arguments) {
  skd_tensor a = dev_zeros(2, 3, 4, 4), b = dev_zeros(2, 4, 4, 4);
  ck_assert_int_eq(skd_dropout2d_forward(T, 1, &a, &b, 0.5f, 1u), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "dropout2d forward: y: expected shape (2, 3, 4, 4)") != NULL, "message: %s",
                skd_error_last());
  ck_assert_int_eq(skd_dropout2d_backward(T, 1, &a, &b, 0.5f, 1u), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "dropout2d backward: dx") != NULL, "message: %s", skd_error_last());
  ck_assert_int_eq(skd_dropout2d_forward(T, 1, &a, &a, 1.5f, 1u), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "p must be in [0, 1]") != NULL, "message: %s", skd_error_last());
  ck_assert_int_eq(skd_dropout2d_backward(T, 0, &a, &a, NAN, 1u), SKD_EINVAL);
}
END_TEST

int main(void) {
  Suite *s = suite_create("dropout");
  TCase *tc = support_tcase("dropout");
  tcase_add_test(tc, philox_known_answers);
  tcase_add_test(tc, versus_reference);
  tcase_add_test(tc, rows_offset);
  tcase_add_test(tc, dropped_fraction);
  tcase_add_test(tc, seeds);
  tcase_add_test(tc, finite_differences);
  tcase_add_test(tc, eval_identity);
  tcase_add_test(tc, bad_arguments);
  suite_add_tcase(s, tc);
  return support_main(s);
}
