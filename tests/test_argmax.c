/* Per-pixel argmax: device (float ids and host bytes) vs the plain-C
 * reference on awkward shapes, frequent ties, NaN and infinities, and a
 * hand-made case whose answers are written beside it. */
#include "support.h"

#include <stdint.h>

#include "skd/ops/argmax.h"

/* Number of pixels whose ids differ (exact: ids are small integers). */
static double mismatches(const float *a, const float *b, size_t n) {
  double bad = 0;
  for (size_t i = 0; i < n; i++) bad += a[i] != b[i];
  return bad;
}

static void run_case(int n, int c, int h, int w, int quantise, int with_nan) {
  size_t numel = (size_t)n * c * h * w, pixels = (size_t)n * h * w;
  float *x = host_random(numel, -4.0f, 4.0f);
  /* Few distinct values: most pixels have tied maxima. */
  if (quantise)
    for (size_t i = 0; i < numel; i++) x[i] = floorf(x[i] / 4.0f);
  if (with_nan)
    for (size_t i = 0; i < numel; i += 7) x[i] = (i / 7) % 3 == 0 ? NAN : (i / 7) % 3 == 1 ? INFINITY : -INFINITY;
  float *ref = host_alloc(pixels);
  skd_ref_argmax_forward(x, ref, n, c, h, w);

  skd_tensor tx = dev_upload(x, n, c, h, w), ids = dev_tensor(n, 1, h, w);
  CK_OK(skd_argmax_forward(T, &tx, &ids));
  char check[64];
  snprintf(check, sizeof check, "float ids %dx%dx%dx%d%s%s", n, c, h, w, quantise ? " ties" : "",
           with_nan ? " nan" : "");
  check_error("argmax", check, mismatches(dev_fetch(&ids), ref, pixels), 0);

  if (c <= 255) {
    uint8_t *bytes = malloc(pixels);
    ck_assert(bytes != NULL);
    CK_OK(skd_argmax_download_u8(T, &tx, bytes));
    double bad = 0;
    for (size_t i = 0; i < pixels; i++) bad += bytes[i] != (uint8_t)ref[i];
    free(bytes);
    snprintf(check, sizeof check, "u8 ids %dx%dx%dx%d%s%s", n, c, h, w, quantise ? " ties" : "",
             with_nan ? " nan" : "");
    check_error("argmax", check, bad, 0);
  }
}

START_TEST(shapes) {
  run_case(1, 3, 7, 5, 0, 0);
  run_case(2, 19, 13, 17, 0, 0);
  run_case(1, 1, 4, 3, 0, 0);
  run_case(3, 21, 1, 1, 0, 0);
  run_case(1, 255, 5, 3, 0, 0);
  run_case(1, 300, 3, 2, 0, 0); /* float ids only */
  run_case(2, 11, 33, 65, 1, 0);
  run_case(1, 8, 9, 7, 1, 1);
  run_case(2, 5, 6, 11, 0, 1);
}
END_TEST

START_TEST(hand_made) {
  /* 1 x 3 x 1 x 6: six pixels, channel values per pixel (c0, c1, c2):
   *   p0 (1, 1, 0)       tie of c0 and c1 -> 0 (first maximum)
   *   p1 (0, 2, 2)       tie of c1 and c2 -> 1
   *   p2 (5, NaN, 9)     NaN beats numbers -> 1
   *   p3 (NaN, NaN, 1)   first NaN -> 0
   *   p4 (-inf, -inf, -inf) all equal -> 0
   *   p5 (-1, -0.5, +inf) -> 2 */
  const float x[18] = {1, 0, 5, NAN, -INFINITY, -1,              /* c0 */
                       1, 2, NAN, NAN, -INFINITY, -0.5f,         /* c1 */
                       0, 2, 9, 1, -INFINITY, INFINITY};         /* c2 */
  const float expect[6] = {0, 1, 1, 0, 0, 2};
  float ref[6];
  skd_ref_argmax_forward(x, ref, 1, 3, 1, 6);
  check_error("argmax", "hand-made ref", mismatches(ref, expect, 6), 0);
  skd_tensor tx = dev_upload(x, 1, 3, 1, 6), ids = dev_tensor(1, 1, 1, 6);
  CK_OK(skd_argmax_forward(T, &tx, &ids));
  check_error("argmax", "hand-made device", mismatches(dev_fetch(&ids), expect, 6), 0);
  uint8_t bytes[6];
  CK_OK(skd_argmax_download_u8(T, &tx, bytes));
  for (int i = 0; i < 6; i++) ck_assert_int_eq(bytes[i], (int)expect[i]);
}
END_TEST

START_TEST(bad_input) {
  skd_tensor x = dev_zeros(2, 4, 3, 5), wrong = dev_zeros(2, 1, 3, 4);
  ck_assert_int_eq(skd_argmax_forward(T, &x, &wrong), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "argmax: ids") != NULL, "message: %s", skd_error_last());
  skd_tensor two = dev_zeros(2, 2, 3, 5);
  ck_assert_int_eq(skd_argmax_forward(T, &x, &two), SKD_EINVAL);
  skd_tensor wide = dev_zeros(1, 256, 1, 2);
  uint8_t bytes[2];
  ck_assert_int_eq(skd_argmax_download_u8(T, &wide, bytes), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "256 channels") != NULL, "message: %s", skd_error_last());
}
END_TEST

int main(void) {
  Suite *s = suite_create("argmax");
  TCase *tc = support_tcase("argmax");
  tcase_add_test(tc, shapes);
  tcase_add_test(tc, hand_made);
  tcase_add_test(tc, bad_input);
  suite_add_tcase(s, tc);
  return support_main(s);
}
