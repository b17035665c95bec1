/* Channel concatenation: device vs reference on several input lists,
 * backward (accumulating, with a skipped input) vs reference and vs finite
 * differences, and bad shapes. */
#include "support.h"
#include "skd/ops/concat.h"

#define MAX_PARTS 8

static void run_case(int n, int h, int w, const int *channels, int count) {
  const int hw = h * w;
  int c = 0;
  for (int i = 0; i < count; i++) c += channels[i];
  const float *xs[MAX_PARTS];
  float *dxs[MAX_PARTS], *dx0[MAX_PARTS];
  skd_tensor tin[MAX_PARTS], tdin[MAX_PARTS];
  for (int i = 0; i < count; i++) {
    size_t len = (size_t)n * channels[i] * hw;
    xs[i] = host_random(len, -1.0f, 1.0f);
    dx0[i] = host_random(len, -1.0f, 1.0f);
    tin[i] = dev_upload(xs[i], n, channels[i], h, w);
    tdin[i] = dev_upload(dx0[i], n, channels[i], h, w);
    /* The second input needs no gradient: skipped, yet it counts channels. */
    dxs[i] = i == 1 ? NULL : host_copy(dx0[i], len);
    if (i == 1) tdin[i].mem = NULL;
  }
  const size_t numel = (size_t)n * c * hw;
  skd_tensor ty = dev_tensor(n, c, h, w);
  CK_OK(skd_concat_forward(T, tin, count, &ty));
  float *y = host_alloc(numel);
  skd_ref_concat_forward(xs, channels, count, n, hw, y);
  char check[64];
  snprintf(check, sizeof check, "fwd vs ref n%d %dx%d, %d inputs, C=%d", n, h, w, count, c);
  check_error("concat", check, rel_error(dev_fetch(&ty), y, numel), 0.0);

  float *dy = host_random(numel, -1.0f, 1.0f);
  skd_tensor tdy = dev_upload(dy, n, c, h, w);
  CK_OK(skd_concat_backward(T, &tdy, tdin, count));
  skd_ref_concat_backward(dy, dxs, channels, count, n, hw);
  double e = 0.0;
  for (int i = 0; i < count; i++) {
    if (!dxs[i]) continue;
    double ei = rel_error(dev_fetch(&tdin[i]), dxs[i], (size_t)n * channels[i] * hw);
    if (ei > e) e = ei;
  }
  snprintf(check, sizeof check, "bwd vs ref n%d %dx%d, %d inputs, C=%d", n, h, w, count, c);
  check_error("concat", check, e, 1e-7);
}

START_TEST(versus_reference) {
  static const int three[] = {3, 5, 1}, one[] = {7}, many[] = {1, 2, 3, 4, 13}, psp[] = {64, 16, 16, 16, 16};
  static const int pair[] = {2, 1};
  run_case(2, 7, 5, three, 3);
  run_case(1, 3, 7, one, 1);
  run_case(3, 9, 11, many, 5);
  run_case(2, 6, 6, psp, 5);
  run_case(1, 1, 1, pair, 2);
}
END_TEST

/* L = sum w * concat(a, b) with respect to a and to b. */
struct fd_case {
  const float *a, *b;
  int which;
};

static void fd_forward(void *user, const float *v, float *y) {
  const struct fd_case *f = user;
  int mark = dev_mark();
  skd_tensor in[2] = {dev_upload(f->which == 0 ? v : f->a, 2, 2, 3, 3),
                      dev_upload(f->which == 1 ? v : f->b, 2, 3, 3, 3)};
  skd_tensor ty = dev_tensor(2, 5, 3, 3);
  CK_OK(skd_concat_forward(T, in, 2, &ty));
  dev_download(&ty, y);
  dev_release_to(mark);
}

START_TEST(finite_differences) {
  float *a = host_random(2 * 2 * 9, -1.0f, 1.0f), *b = host_random(2 * 3 * 9, -1.0f, 1.0f);
  float *dy = host_random(2 * 5 * 9, -1.0f, 1.0f);
  skd_tensor tdy = dev_upload(dy, 2, 5, 3, 3);
  skd_tensor din[2] = {dev_zeros(2, 2, 3, 3), dev_zeros(2, 3, 3, 3)};
  CK_OK(skd_concat_backward(T, &tdy, din, 2));
  struct fd_case f = {a, b, 0};
  check_error("concat", "bwd vs fd input 0",
              fd_error(fd_forward, &f, host_copy(a, 36), 36, dy, 90, dev_fetch(&din[0]), 1e-2f), 1e-4);
  f.which = 1;
  check_error("concat", "bwd vs fd input 1",
              fd_error(fd_forward, &f, host_copy(b, 54), 54, dy, 90, dev_fetch(&din[1]), 1e-2f), 1e-4);
}
END_TEST

START_TEST(bad_shapes) {
  skd_tensor in[2] = {dev_zeros(2, 3, 4, 4), dev_zeros(2, 2, 4, 5)};
  skd_tensor y = dev_zeros(2, 5, 4, 4);
  ck_assert_int_eq(skd_concat_forward(T, in, 2, &y), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "concat forward: input 1: expected shape (2, C, 4, 4), got (2, 2, 4, 5)"),
                "message: %s", skd_error_last());
  in[1] = dev_zeros(2, 3, 4, 4);
  ck_assert_int_eq(skd_concat_forward(T, in, 2, &y), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "channels add up to 6, but y has shape (2, 5, 4, 4)"), "message: %s",
                skd_error_last());
  ck_assert_int_eq(skd_concat_backward(T, &y, in, 2), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "concat backward"), "message: %s", skd_error_last());
  ck_assert_int_eq(skd_concat_forward(T, in, 0, &y), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "at least one input"), "message: %s", skd_error_last());
  skd_tensor other_n = dev_zeros(1, 2, 4, 4);
  in[1] = other_n;
  ck_assert_int_eq(skd_concat_forward(T, in, 2, &y), SKD_EINVAL);
}
END_TEST

int main(void) {
  Suite *s = suite_create("concat");
  TCase *tc = support_tcase("concat");
  tcase_add_test(tc, versus_reference);
  tcase_add_test(tc, finite_differences);
  tcase_add_test(tc, bad_shapes);
  suite_add_tcase(s, tc);
  return support_main(s);
}
