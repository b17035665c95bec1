/* Window crop / accumulate / average and the horizontal flip on the device vs
 * the plain-C references, and whole sliding-window evaluations with a
 * pointwise "network" (identity, tanh, tanh with flip averaging), which must
 * give back the network applied to the whole image. */
#include "support.h"

#include "skd/eval.h"

static void ref_tanh(const float *x, float *y, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
}

START_TEST(crop_vs_ref) {
  const int shapes[][6] = {/* n, c, H, W, crop_h, crop_w */
                           {2, 3, 13, 17, 7, 9},
                           {1, 3, 5, 4, 8, 8}, /* image smaller than the crop: padded */
                           {1, 19, 6, 11, 6, 4},
                           {1, 1, 1, 1, 3, 2}};
  for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
    const int n = shapes[s][0], c = shapes[s][1], h = shapes[s][2], w = shapes[s][3];
    const int ch = shapes[s][4], cw = shapes[s][5];
    float *img = host_random((size_t)n * c * h * w, -2.0f, 2.0f);
    skd_tensor timg = dev_upload(img, n, c, h, w), crop = dev_tensor(n, c, ch, cw);
    skd_sliding plan;
    CK_OK(skd_sliding_init(&plan, h, w, ch, cw, 0, 0));
    size_t cn = (size_t)n * c * ch * cw;
    float *ref = host_alloc(cn);
    double worst = 0.0;
    for (int i = 0; i < skd_sliding_count(&plan); i++) {
      skd_window win = skd_sliding_window(&plan, i);
      CK_OK(skd_tensor_fill(T, &crop, NAN)); /* the padding must be written too */
      CK_OK(skd_window_crop(T, &timg, &win, &crop));
      skd_ref_window_crop(img, n, c, h, w, &win, ref, ch, cw);
      double e = rel_error(dev_fetch(&crop), ref, cn);
      if (e > worst || isnan(e)) worst = e;
    }
    char check[64];
    snprintf(check, sizeof check, "vs ref %dx%dx%dx%d crop %dx%d", n, c, h, w, ch, cw);
    check_error("window crop", check, worst, 0.0);
  }
}
END_TEST

START_TEST(accumulate_average_vs_ref) {
  const int n = 2, c = 5, h = 11, w = 14, lh = 6, lw = 9;
  const skd_window wins[3] = {{0, 0, 6, 9}, {5, 5, 6, 9}, {3, 2, 4, 7}}; /* the last uses part of the logits */
  size_t numel = (size_t)n * c * h * w, ln = (size_t)n * c * lh * lw;
  float *sum = host_random(numel, -1.0f, 1.0f), *count = host_alloc((size_t)h * w);
  skd_tensor tsum = dev_upload(sum, n, c, h, w), tcount = dev_zeros(1, 1, h, w);
  skd_tensor tsum2 = dev_upload(sum, n, c, h, w);
  for (int i = 0; i < 3; i++) {
    float *logits = host_random(ln, -3.0f, 3.0f);
    skd_tensor tl = dev_upload(logits, n, c, lh, lw);
    CK_OK(skd_window_accumulate(T, &tl, &wins[i], &tsum, &tcount));
    CK_OK(skd_window_accumulate(T, &tl, &wins[i], &tsum2, NULL)); /* no count map */
    skd_ref_window_accumulate(logits, n, c, lh, lw, &wins[i], sum, count, h, w);
  }
  /* One float add per element and window, the same order: exact. */
  check_error("window accumulate", "sum vs ref", rel_error(dev_fetch(&tsum), sum, numel), 0.0);
  check_error("window accumulate", "sum without count vs ref", rel_error(dev_fetch(&tsum2), sum, numel), 0.0);
  check_error("window accumulate", "count vs ref", rel_error(dev_fetch(&tcount), count, (size_t)h * w), 0.0);

  /* Pixel (0, 13) is in no window: count 0 -> NaN. */
  ck_assert(count[13] == 0.0f);
  float *avg = host_alloc(numel);
  skd_ref_window_average(sum, count, avg, n, c, h, w);
  skd_tensor tavg = dev_tensor(n, c, h, w);
  CK_OK(skd_window_average(T, &tsum, &tcount, &tavg));
  float *got = dev_fetch(&tavg);
  size_t nan_pixels = 0, mismatched_nan = 0;
  for (size_t i = 0; i < numel; i++) {
    nan_pixels += isnan(avg[i]);
    mismatched_nan += isnan(avg[i]) != isnan(got[i]);
    if (isnan(avg[i])) avg[i] = got[i] = 0.0f;
  }
  ck_assert_uint_gt(nan_pixels, 0);
  ck_assert_uint_eq(mismatched_nan, 0);
  check_error("window average", "vs ref", rel_error(got, avg, numel), 1e-6);
  /* In place. */
  CK_OK(skd_window_average(T, &tsum, &tcount, &tsum));
  got = dev_fetch(&tsum);
  for (size_t i = 0; i < numel; i++)
    if (isnan(got[i])) got[i] = 0.0f;
  check_error("window average", "in place vs ref", rel_error(got, avg, numel), 1e-6);
}
END_TEST

START_TEST(flip) {
  const int shapes[][4] = {{1, 3, 7, 5}, {2, 19, 9, 16}, {1, 2, 3, 1}, {1, 1, 4, 2}, {3, 5, 1, 33}};
  for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
    const int n = shapes[s][0], c = shapes[s][1], h = shapes[s][2], w = shapes[s][3];
    size_t numel = (size_t)n * c * h * w;
    float *x = host_random(numel, -5.0f, 5.0f), *ref = host_alloc(numel);
    skd_ref_flip_horizontal(x, ref, n, c, h, w);
    skd_tensor tx = dev_upload(x, n, c, h, w), ty = dev_tensor(n, c, h, w);
    CK_OK(skd_flip_horizontal(T, &tx, &ty));
    char check[64];
    snprintf(check, sizeof check, "vs ref %dx%dx%dx%d", n, c, h, w);
    check_error("flip", check, rel_error(dev_fetch(&ty), ref, numel), 0.0);
    /* Twice (the second in place) gives x back. */
    CK_OK(skd_flip_horizontal(T, &ty, &ty));
    snprintf(check, sizeof check, "twice = id %dx%dx%dx%d", n, c, h, w);
    check_error("flip", check, rel_error(dev_fetch(&ty), x, numel), 0.0);
  }
  /* The reference itself: row (1, 2, 3) -> (3, 2, 1). */
  const float row[3] = {1, 2, 3};
  float out[3];
  skd_ref_flip_horizontal(row, out, 1, 1, 1, 3);
  ck_assert(out[0] == 3 && out[1] == 2 && out[2] == 1);
}
END_TEST

enum network { IDENTITY, TANH, TANH_FLIP };
static const char *network_names[] = {"identity", "tanh", "tanh+flip"};

/* The sliding-window evaluation of skd/eval.h with a pointwise network; the
 * result must equal the network on the whole image, and the count map the
 * number of windows over each pixel. */
static void sliding_eval(enum network net, int n, int h, int w, int crop_h, int crop_w) {
  const int c = 3;
  size_t numel = (size_t)n * c * h * w;
  float *img = host_random(numel, -2.0f, 2.0f);
  skd_tensor timg = dev_upload(img, n, c, h, w);
  skd_tensor crop = dev_tensor(n, c, crop_h, crop_w), out = dev_tensor(n, c, crop_h, crop_w);
  skd_tensor flipped = dev_tensor(n, c, crop_h, crop_w);
  skd_tensor sum = dev_zeros(n, c, h, w), count = dev_zeros(1, 1, h, w);
  skd_sliding plan;
  CK_OK(skd_sliding_init(&plan, h, w, crop_h, crop_w, 0, 0));
  float *cover = host_alloc((size_t)h * w);
  for (int i = 0; i < skd_sliding_count(&plan); i++) {
    skd_window win = skd_sliding_window(&plan, i);
    for (int y = win.y; y < win.y + win.h; y++)
      for (int x = win.x; x < win.x + win.w; x++) cover[(size_t)y * w + x] += 1.0f;
    CK_OK(skd_window_crop(T, &timg, &win, &crop));
    const skd_tensor *logits = &crop;
    if (net != IDENTITY) {
      CK_OK(skd_tanh_forward(T, &crop, &out));
      logits = &out;
    }
    if (net == TANH_FLIP) { /* out = (f(x) + flip(f(flip(x)))) / 2 */
      CK_OK(skd_flip_horizontal(T, &crop, &flipped));
      CK_OK(skd_tanh_forward(T, &flipped, &flipped));
      CK_OK(skd_flip_horizontal(T, &flipped, &flipped));
      CK_OK(skd_axpby(T, 0.5f, &flipped, 0.5f, &out));
    }
    CK_OK(skd_window_accumulate(T, logits, &win, &sum, &count));
  }
  CK_OK(skd_window_average(T, &sum, &count, &sum));
  float *want = host_copy(img, numel);
  if (net != IDENTITY) ref_tanh(img, want, numel);
  char check[80];
  snprintf(check, sizeof check, "%s %dx%d crop %dx%d (%d windows)", network_names[net], h, w, crop_h, crop_w,
           skd_sliding_count(&plan));
  check_error("sliding = whole", check, rel_error(dev_fetch(&sum), want, numel), 1e-6);
  check_error("sliding count", check, rel_error(dev_fetch(&count), cover, (size_t)h * w), 0.0);
}

START_TEST(sliding_equals_whole) {
  for (int net = IDENTITY; net <= TANH_FLIP; net++) {
    sliding_eval((enum network)net, 1, 5, 4, 8, 8);    /* smaller than the crop */
    sliding_eval((enum network)net, 1, 64, 96, 32, 32); /* exact multiples */
    sliding_eval((enum network)net, 2, 37, 53, 11, 7);  /* odd sizes, non-square crop */
    sliding_eval((enum network)net, 1, 1, 1, 1, 1);
  }
  sliding_eval(TANH, 1, 100, 150, 48, 48);
}
END_TEST

START_TEST(bad_input) {
  skd_tensor img = dev_zeros(1, 3, 10, 12), crop = dev_zeros(1, 3, 4, 4), crop2 = dev_zeros(1, 2, 4, 4);
  skd_window inside = {2, 3, 4, 4}, outside = {8, 3, 4, 4}, big = {0, 0, 5, 4};
  ck_assert_int_eq(skd_window_crop(T, &img, &inside, &crop2), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "window crop: crop") != NULL, "message: %s", skd_error_last());
  ck_assert_int_eq(skd_window_crop(T, &img, &outside, &crop), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "not inside the 10x12 image") != NULL, "message: %s", skd_error_last());
  ck_assert_int_eq(skd_window_crop(T, &img, &big, &crop), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "does not fit the 4x4 crop") != NULL, "message: %s", skd_error_last());

  skd_tensor sum = dev_zeros(1, 5, 10, 12), logits = dev_zeros(1, 5, 4, 4), count = dev_zeros(1, 1, 10, 11);
  ck_assert_int_eq(skd_window_accumulate(T, &logits, &inside, &sum, &count), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "window accumulate: count") != NULL, "message: %s", skd_error_last());
  ck_assert_int_eq(skd_window_accumulate(T, &crop, &inside, &sum, NULL), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "window accumulate: logits") != NULL, "message: %s", skd_error_last());
  ck_assert_int_eq(skd_window_average(T, &sum, &count, &sum), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "window average: count") != NULL, "message: %s", skd_error_last());

  ck_assert_int_eq(skd_flip_horizontal(T, &img, &crop), SKD_EINVAL);
  /* y inside x's buffer, shifted: partial overlap is refused. */
  skd_tensor shifted = img;
  shifted.offset += 5;
  shifted.w = 12;
  skd_tensor head = img;
  head.h = 9;
  shifted.h = 9;
  ck_assert_int_eq(skd_flip_horizontal(T, &head, &shifted), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "overlaps") != NULL, "message: %s", skd_error_last());
}
END_TEST

int main(void) {
  Suite *s = suite_create("eval_window");
  TCase *tc = support_tcase("eval_window");
  tcase_add_test(tc, crop_vs_ref);
  tcase_add_test(tc, accumulate_average_vs_ref);
  tcase_add_test(tc, flip);
  tcase_add_test(tc, sliding_equals_whole);
  tcase_add_test(tc, bad_input);
  suite_add_tcase(s, tc);
  return support_main(s);
}
