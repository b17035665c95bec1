/* Host-only evaluation pieces: confusion matrix, IoU / accuracy metrics on
 * hand-made cases (numbers worked out in the comments), the text table, and
 * the sliding-window plan (the reference's rule, coverage of every pixel). */
#include "support.h"

#include <stdint.h>

#include "skd/eval.h"

#define EPS 1e-12

static void expect_near(double got, double want, const char *what) {
  ck_assert_msg(fabs(got - want) <= EPS, "%s: got %.15g, want %.15g", what, got, want);
}

/* Ten pixels, 3 classes, ignore 255. (label, prediction):
 *   (0,0) (0,0) (0,1) (1,1) (1,2) (2,2) (255,1) (255,200) (2,2) (0,0)
 * The two ignore pixels are skipped (the 200 is never looked at), 8 remain.
 * Matrix (rows = label): row 0: [3 1 0], row 1: [0 1 1], row 2: [0 0 2].
 * L (row sums) = 4, 2, 2; P (column sums) = 3, 2, 3; TP = 3, 1, 2.
 *   IoU0 = 3 / (4 + 3 - 3) = 3/4;  IoU1 = 1 / (2 + 2 - 1) = 1/3;  IoU2 = 2 / (2 + 3 - 2) = 2/3
 *   mIoU = (3/4 + 1/3 + 2/3) / 3 = 7/12 = 0.58333...
 *   acc = 3/4, 1/2, 2/2; mean acc = 3/4; pixel acc = (3 + 1 + 2) / 8 = 3/4 */
static const uint8_t hand_label[10] = {0, 0, 0, 1, 1, 2, 255, 255, 2, 0};
static const uint8_t hand_pred[10] = {0, 0, 1, 1, 2, 2, 1, 200, 2, 0};

START_TEST(hand_made) {
  skd_confusion m;
  CK_OK(skd_confusion_init(&m, 3));
  CK_OK(skd_confusion_add(&m, hand_pred, hand_label, 10, 255));
  const uint64_t expect[9] = {3, 1, 0, 0, 1, 1, 0, 0, 2};
  for (int i = 0; i < 9; i++) ck_assert_uint_eq(m.counts[i], expect[i]);
  ck_assert_uint_eq(m.ignored, 2);
  skd_metrics r;
  CK_OK(skd_metrics_compute(&m, &r));
  ck_assert_uint_eq(r.pixels, 8);
  expect_near(r.iou[0], 0.75, "iou 0");
  expect_near(r.iou[1], 1.0 / 3.0, "iou 1");
  expect_near(r.iou[2], 2.0 / 3.0, "iou 2");
  expect_near(r.mean_iou, 7.0 / 12.0, "mean iou");
  expect_near(r.mean_iou_reference, 7.0 / 12.0, "reference mean iou");
  ck_assert_int_eq(r.present, 3);
  expect_near(r.accuracy[0], 0.75, "acc 0");
  expect_near(r.accuracy[1], 0.5, "acc 1");
  expect_near(r.accuracy[2], 1.0, "acc 2");
  expect_near(r.mean_accuracy, 0.75, "mean acc");
  expect_near(r.pixel_accuracy, 0.75, "pixel acc");
  check_error("metrics", "hand-made mIoU", fabs(r.mean_iou - 7.0 / 12.0), EPS);
  skd_confusion_free(&m);
}
END_TEST

/* The same pixels with 4 classes: class 3 occurs nowhere, so its IoU and
 * accuracy are NaN and it is left out: mIoU stays 7/12 over 3 present
 * classes. The reference code averages over all 4 with 0 for class 3:
 * (3/4 + 1/3 + 2/3 + 0) / 4 = 7/16 = 0.4375.
 * Then a class that is only predicted: 3 classes, (label, pred) =
 * (0,0) (0,2) (1,1): L = 2, 1, 0; P = 1, 1, 1; TP = 1, 1, 0.
 *   IoU0 = 1 / (2 + 1 - 1) = 1/2; IoU1 = 1 / 1 = 1; IoU2 = 0 / (0 + 1 - 0) = 0 (counts: it is a false alarm)
 *   mIoU = (1/2 + 1 + 0) / 3 = 1/2; acc = 1/2, 1, NaN -> mean acc 3/4; pixel acc 2/3 */
START_TEST(absent_and_false_alarm) {
  skd_confusion m;
  skd_metrics r;
  CK_OK(skd_confusion_init(&m, 4));
  CK_OK(skd_confusion_add(&m, hand_pred, hand_label, 10, 255));
  CK_OK(skd_metrics_compute(&m, &r));
  ck_assert(isnan(r.iou[3]));
  ck_assert(isnan(r.accuracy[3]));
  ck_assert_int_eq(r.present, 3);
  expect_near(r.mean_iou, 7.0 / 12.0, "mean iou, absent class excluded");
  expect_near(r.mean_iou_reference, 7.0 / 16.0, "reference mean iou, absent class as 0");
  expect_near(r.mean_accuracy, 0.75, "mean acc");
  skd_confusion_free(&m);

  const uint8_t label[3] = {0, 0, 1}, pred[3] = {0, 2, 1};
  CK_OK(skd_confusion_init(&m, 3));
  CK_OK(skd_confusion_add(&m, pred, label, 3, 255));
  CK_OK(skd_metrics_compute(&m, &r));
  expect_near(r.iou[0], 0.5, "iou 0");
  expect_near(r.iou[1], 1.0, "iou 1");
  expect_near(r.iou[2], 0.0, "iou 2 (predicted only)");
  ck_assert(isnan(r.accuracy[2]));
  ck_assert_int_eq(r.present, 3);
  expect_near(r.mean_iou, 0.5, "mean iou");
  expect_near(r.mean_accuracy, 0.75, "mean acc");
  expect_near(r.pixel_accuracy, 2.0 / 3.0, "pixel acc");

  /* Nothing evaluated at all: every mean is NaN, nothing crashes. */
  skd_confusion_reset(&m);
  const uint8_t ign[2] = {255, 255};
  CK_OK(skd_confusion_add(&m, pred, ign, 2, 255));
  CK_OK(skd_metrics_compute(&m, &r));
  ck_assert(isnan(r.mean_iou) && isnan(r.pixel_accuracy) && isnan(r.mean_accuracy));
  expect_near(r.mean_iou_reference, 0.0, "reference mean of nothing");
  ck_assert_uint_eq(r.ignored, 2);
  skd_confusion_free(&m);
}
END_TEST

/* Random labels (with ignore pixels), prediction = label: every measure is 1
 * and the table shows 100.00; splitting the pixels over two matrices and
 * merging gives the same counts. */
START_TEST(perfect_and_merge) {
  enum { N = 5000, K = 19 };
  uint8_t label[N], pred[N];
  float *u = host_random(N, 0.0f, 1.0f);
  for (int i = 0; i < N; i++) {
    label[i] = u[i] < 0.1f ? 255 : (uint8_t)((int)(u[i] * 1000.0f) % K); /* via int: 999 does not fit in uint8_t */
    pred[i] = label[i] == 255 ? 7 : label[i];
  }
  skd_confusion a, b, whole;
  CK_OK(skd_confusion_init(&a, K));
  CK_OK(skd_confusion_init(&b, K));
  CK_OK(skd_confusion_init(&whole, K));
  CK_OK(skd_confusion_add(&whole, pred, label, N, 255));
  CK_OK(skd_confusion_add(&a, pred, label, 1234, 255));
  CK_OK(skd_confusion_add(&b, pred + 1234, label + 1234, N - 1234, 255));
  CK_OK(skd_confusion_merge(&a, &b));
  ck_assert_mem_eq(a.counts, whole.counts, K * K * sizeof(uint64_t));
  ck_assert_uint_eq(a.ignored, whole.ignored);
  skd_metrics r;
  CK_OK(skd_metrics_compute(&whole, &r));
  ck_assert_int_eq(r.present, K);
  check_error("metrics", "perfect mIoU = 1", fabs(r.mean_iou - 1.0), 0.0);
  check_error("metrics", "perfect pixel acc = 1", fabs(r.pixel_accuracy - 1.0), 0.0);
  check_error("metrics", "perfect mean acc = 1", fabs(r.mean_accuracy - 1.0), 0.0);
  char text[4096];
  size_t len = skd_metrics_format(&r, NULL, text, sizeof text);
  ck_assert(len < sizeof text);
  ck_assert_msg(strstr(text, "mean IoU 100.00 %") != NULL, "table:\n%s", text);
  ck_assert_msg(strstr(text, "class 18") != NULL, "table:\n%s", text);

  skd_confusion c3;
  CK_OK(skd_confusion_init(&c3, 3));
  ck_assert_int_eq(skd_confusion_merge(&a, &c3), SKD_EINVAL);
  skd_confusion_free(&c3);
  skd_confusion_free(&a);
  skd_confusion_free(&b);
  skd_confusion_free(&whole);
}
END_TEST

START_TEST(bad_ids) {
  skd_confusion m;
  CK_OK(skd_confusion_init(&m, 3));
  CK_OK(skd_confusion_add(&m, hand_pred, hand_label, 6, 255));
  uint64_t before[9];
  memcpy(before, m.counts, sizeof before);
  const uint8_t label[3] = {0, 1, 3}, pred[3] = {0, 1, 2};
  ck_assert_int_eq(skd_confusion_add(&m, pred, label, 3, 255), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "label 3 at pixel 2") != NULL, "message: %s", skd_error_last());
  ck_assert_mem_eq(m.counts, before, sizeof before); /* nothing added */
  const uint8_t label2[2] = {0, 1}, pred2[2] = {0, 9};
  ck_assert_int_eq(skd_confusion_add(&m, pred2, label2, 2, 255), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "prediction 9 at pixel 1") != NULL, "message: %s", skd_error_last());
  ck_assert_mem_eq(m.counts, before, sizeof before);
  skd_confusion_free(&m);
  ck_assert_int_eq(skd_confusion_init(&m, 0), SKD_EINVAL);
  ck_assert_int_eq(skd_confusion_init(&m, 256), SKD_EINVAL);
}
END_TEST

START_TEST(table) {
  skd_confusion m;
  skd_metrics r;
  CK_OK(skd_confusion_init(&m, 4));
  CK_OK(skd_confusion_add(&m, hand_pred, hand_label, 10, 255));
  CK_OK(skd_metrics_compute(&m, &r));
  const char *names[4] = {"road", "a very long class name that is cut", "sky", "never"};
  size_t len = skd_metrics_format(&r, names, NULL, 0);
  char *text = malloc(len + 1);
  ck_assert(text != NULL);
  ck_assert_uint_eq(skd_metrics_format(&r, names, text, len + 1), len);
  ck_assert_uint_eq(strlen(text), len);
  printf("%s", text);
  /* road: IoU 75.00, acc 75.00, 4 pixels; never: n/a n/a 0 */
  ck_assert_msg(strstr(text, "road ") && strstr(text, "75.00    75.00              4\n"), "table:\n%s", text);
  ck_assert_msg(strstr(text, "   n/a      n/a              0\n") != NULL, "table:\n%s", text);
  ck_assert_msg(strstr(text, "a very long class name t ") != NULL, "table:\n%s", text);
  ck_assert_msg(strstr(text, "mean IoU 58.33 % over 3 of 4 classes") != NULL, "table:\n%s", text);
  ck_assert_msg(strstr(text, "reference mean over all: 43.75 %") != NULL, "table:\n%s", text);
  ck_assert_msg(strstr(text, "pixel accuracy 75.00 %, mean class accuracy 75.00 %, 8 pixels (2 ignored)") != NULL,
                "table:\n%s", text);
  /* Truncation: NUL-terminated prefix, same length reported. */
  char small[20];
  ck_assert_uint_eq(skd_metrics_format(&r, names, small, sizeof small), len);
  ck_assert_uint_eq(strlen(small), sizeof small - 1);
  ck_assert(strncmp(small, text, sizeof small - 1) == 0);
  free(text);
  skd_confusion_free(&m);
}
END_TEST

/* A literal transcription of the reference's predict_sliding loop (square
 * crop t; Python's float arithmetic is IEEE double, as C's). */
static int python_windows(int height, int width, int t, skd_window *out, int max) {
  int stride = (int)ceil(t * (1.0 - 1.0 / 3.0));
  int rows = (int)(ceil((double)(height - t) / stride) + 1);
  int cols = (int)(ceil((double)(width - t) / stride) + 1);
  int n = 0;
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < cols; c++) {
      int x1 = c * stride, y1 = r * stride;
      int x2 = x1 + t < width ? x1 + t : width, y2 = y1 + t < height ? y1 + t : height;
      x1 = x2 - t > 0 ? x2 - t : 0;
      y1 = y2 - t > 0 ? y2 - t : 0;
      ck_assert(n < max);
      out[n++] = (skd_window){y1, x1, y2 - y1, x2 - x1};
    }
  return n;
}

/* Every window inside the image, of size min(crop, image), every pixel covered. */
static void check_plan(int height, int width, int crop_h, int crop_w, int stride_h, int stride_w) {
  skd_sliding s;
  CK_OK(skd_sliding_init(&s, height, width, crop_h, crop_w, stride_h, stride_w));
  unsigned char *cover = calloc((size_t)height * width, 1);
  ck_assert(cover != NULL);
  for (int i = 0; i < skd_sliding_count(&s); i++) {
    skd_window w = skd_sliding_window(&s, i);
    ck_assert(w.y >= 0 && w.x >= 0 && w.y + w.h <= height && w.x + w.w <= width);
    ck_assert_int_eq(w.h, crop_h < height ? crop_h : height);
    ck_assert_int_eq(w.w, crop_w < width ? crop_w : width);
    for (int y = w.y; y < w.y + w.h; y++)
      for (int x = w.x; x < w.x + w.w; x++) cover[(size_t)y * width + x] = 1;
  }
  size_t uncovered = 0;
  for (size_t i = 0; i < (size_t)height * width; i++) uncovered += !cover[i];
  free(cover);
  ck_assert_msg(uncovered == 0, "%zu pixels uncovered: image %dx%d crop %dx%d stride %dx%d", uncovered, height,
                width, crop_h, crop_w, s.stride_h, s.stride_w);
}

START_TEST(sliding_plan) {
  skd_sliding s;
  /* The reference's stride: ceil(t * (1 - 1/3)) in double. */
  const int crops[5][2] = {{512, 342}, {9, 7}, {768, 512}, {2, 2}, {1, 1}};
  for (int i = 0; i < 5; i++) {
    CK_OK(skd_sliding_init(&s, 1000, 1000, crops[i][0], crops[i][0], 0, 0));
    ck_assert_int_eq(s.stride_h, crops[i][1]);
    ck_assert_int_eq(s.stride_w, crops[i][1]);
  }
  /* Cityscapes 1024 x 2048 with crop 512 (checked with the Python code):
   * 3 x 6 windows, rows at 0, 342, 512 and columns at 0, 342, 684, 1026, 1368, 1536. */
  CK_OK(skd_sliding_init(&s, 1024, 2048, 512, 512, 0, 0));
  ck_assert_int_eq(s.rows, 3);
  ck_assert_int_eq(s.cols, 6);
  const int ys[3] = {0, 342, 512}, xs[6] = {0, 342, 684, 1026, 1368, 1536};
  for (int i = 0; i < 18; i++) {
    skd_window w = skd_sliding_window(&s, i);
    ck_assert_int_eq(w.y, ys[i / 6]);
    ck_assert_int_eq(w.x, xs[i % 6]);
    ck_assert(w.h == 512 && w.w == 512);
  }
  /* The transcription of the Python loop agrees wherever it yields windows. */
  static skd_window py[10000];
  const int sizes[] = {1, 5, 8, 9, 10, 17, 18, 25, 27, 40, 64, 100};
  const int tiles[] = {1, 2, 3, 8, 9, 12, 16};
  int compared = 0;
  for (size_t a = 0; a < sizeof sizes / sizeof *sizes; a++)
    for (size_t b = 0; b < sizeof sizes / sizeof *sizes; b++)
      for (size_t t = 0; t < sizeof tiles / sizeof *tiles; t++) {
        int n = python_windows(sizes[a], sizes[b], tiles[t], py, 10000);
        if (n == 0) continue; /* the reference's zero-window case: we use one window per axis */
        CK_OK(skd_sliding_init(&s, sizes[a], sizes[b], tiles[t], tiles[t], 0, 0));
        ck_assert_int_eq(skd_sliding_count(&s), n);
        for (int i = 0; i < n; i++) {
          skd_window w = skd_sliding_window(&s, i);
          ck_assert_msg(w.y == py[i].y && w.x == py[i].x && w.h == py[i].h && w.w == py[i].w,
                        "image %dx%d tile %d window %d", sizes[a], sizes[b], tiles[t], i);
        }
        compared++;
      }
  ck_assert_int_gt(compared, 500);
  /* Where the reference has no window at all (image 100 x 700, crop 512:
   * ceil(-412 / 342) + 1 = 0 rows) we take one row, padded. */
  ck_assert_int_eq(python_windows(100, 700, 512, py, 10000), 0);
  CK_OK(skd_sliding_init(&s, 100, 700, 512, 512, 0, 0));
  ck_assert_int_eq(s.rows, 1);
  ck_assert_int_eq(s.cols, 2);
  skd_window w = skd_sliding_window(&s, 1);
  ck_assert(w.y == 0 && w.h == 100 && w.x == 188 && w.w == 512);

  /* Coverage: smaller than the crop, exact multiples, odd sizes, non-square
   * crops, explicit strides (1 and the crop itself). */
  check_plan(3, 5, 8, 8, 0, 0);
  check_plan(100, 700, 512, 512, 0, 0);
  check_plan(64, 96, 32, 32, 0, 0);
  check_plan(64, 96, 32, 16, 0, 0);
  check_plan(65, 97, 32, 48, 0, 0);
  check_plan(37, 53, 11, 7, 0, 0);
  check_plan(37, 53, 11, 7, 11, 7);
  check_plan(20, 21, 4, 5, 1, 1);
  check_plan(1024, 2048, 512, 512, 0, 0);
  check_plan(1, 1, 1, 1, 0, 0);

  ck_assert_int_eq(skd_sliding_init(&s, 10, 10, 4, 4, 5, 0), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "stride 5x3") != NULL, "message: %s", skd_error_last());
  ck_assert_int_eq(skd_sliding_init(&s, 0, 10, 4, 4, 0, 0), SKD_EINVAL);
}
END_TEST

int main(void) {
  Suite *s = suite_create("eval_metrics");
  TCase *tc = support_tcase_host("eval_metrics");
  tcase_add_test(tc, hand_made);
  tcase_add_test(tc, absent_and_false_alarm);
  tcase_add_test(tc, perfect_and_merge);
  tcase_add_test(tc, bad_ids);
  tcase_add_test(tc, table);
  tcase_add_test(tc, sliding_plan);
  suite_add_tcase(s, tc);
  return support_main_host(s);
}
