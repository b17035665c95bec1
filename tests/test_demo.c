/* The synthetic demo dataset: timing, list files, every label valid, every
 * class present, sky and water alike in colour, deterministic bytes per seed
 * (each file a function of seed, split and index), other sizes, bad options.
 * Host only (support_main_host). */
#include <stdint.h>
#include <time.h>

#include "support.h"

static void expect_error(skd_status st, skd_status code, const char *a, const char *b) {
  const char *msg = skd_error_last();
  ck_assert_msg(st == code, "expected %s, got %s: %s", skd_status_name(code), skd_status_name(st), msg);
  if (a) ck_assert_msg(strstr(msg, a) != NULL, "message lacks '%s': %s", a, msg);
  if (b) ck_assert_msg(strstr(msg, b) != NULL, "message lacks '%s': %s", b, msg);
}

static void write_text(const char *rel, const char *text) {
  FILE *f = fopen(tmp_path(rel), "w");
  ck_assert(f != NULL);
  fputs(text, f);
  fclose(f);
}

static uint8_t *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "cannot open %s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *p = malloc((size_t)n + 1);
  ck_assert(fread(p, 1, (size_t)n, f) == (size_t)n);
  fclose(f);
  *len = (size_t)n;
  return p;
}

static int same_file(const char *a, const char *b) {
  size_t na, nb;
  uint8_t *pa = read_file(a, &na), *pb = read_file(b, &nb);
  int same = na == nb && memcmp(pa, pb, na) == 0;
  free(pa);
  free(pb);
  return same;
}

static double seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

START_TEST(demo_dataset) {
  double t0 = seconds();
  CK_OK(skd_demo_dataset_write(tmp_path("demo/a"), 11, NULL));
  double elapsed = seconds() - t0;
  printf("TIME demo dataset, 200 + 50 images of 128x128: %.2f s\n", elapsed);
  ck_assert_msg(elapsed < 30.0, "the demo dataset took %.1f s", elapsed);

  skd_label_map m;
  CK_OK(skd_label_map_preset(&m, "demo", 0));
  skd_dataset *d;
  CK_OK(skd_dataset_open(&d, tmp_path("demo/a/train.txt"), NULL, &m));
  ck_assert_int_eq(skd_dataset_size(d), 200);
  long count[SKD_DEMO_CLASSES] = {0};
  double sum[SKD_DEMO_CLASSES][3] = {{0}};
  for (int i = 0; i < 200; i++) {
    skd_sample s;
    CK_OK(skd_dataset_read(d, i, &s)); /* validates every label in [0, 8) */
    ck_assert_int_eq(s.w, 128);
    ck_assert_int_eq(s.h, 128);
    for (int p = 0; p < 128 * 128; p++) {
      count[s.label[p]]++;
      for (int c = 0; c < 3; c++) sum[s.label[p]][c] += s.rgb[3 * p + c];
    }
    skd_sample_free(&s);
  }
  skd_dataset_free(d);
  const char *const *names = skd_demo_class_names();
  for (int k = 0; k < SKD_DEMO_CLASSES; k++) {
    printf("demo class %-8s %6.2f%% of pixels, mean RGB %5.1f %5.1f %5.1f\n", names[k],
           100.0 * (double)count[k] / (200.0 * 128 * 128), sum[k][0] / (double)count[k],
           sum[k][1] / (double)count[k], sum[k][2] / (double)count[k]);
    ck_assert_msg(count[k] > 500, "class %s has only %ld pixels", names[k], count[k]);
  }
  /* Context pairs look alike: sky and water share one texture. */
  double gap = 0.0;
  for (int c = 0; c < 3; c++) gap = fmax(gap, fabs(sum[0][c] / count[0] - sum[1][c] / count[1]));
  check_error("demo", "sky/water mean colour gap", gap, 6.0);
  CK_OK(skd_dataset_open(&d, tmp_path("demo/a/val.txt"), NULL, &m));
  ck_assert_int_eq(skd_dataset_size(d), 50);
  skd_dataset_free(d);

  /* Deterministic bytes per seed; each file depends on (seed, split, index)
   * only, so a smaller set repeats the first files of the larger one. */
  skd_demo_options o;
  skd_demo_options_default(&o);
  o.train_count = 3;
  o.val_count = 2;
  CK_OK(skd_demo_dataset_write(tmp_path("demo/b"), 11, &o));
  CK_OK(skd_demo_dataset_write(tmp_path("demo/c"), 12, &o));
  const char *files[] = {"images/train_0000.png", "labels/train_0002.png", "images/val_0001.png",
                         "labels/val_0000.png"};
  for (int i = 0; i < 4; i++) {
    char a[512], b[512], c[512];
    snprintf(a, sizeof a, "demo/a/%s", files[i]);
    snprintf(b, sizeof b, "demo/b/%s", files[i]);
    snprintf(c, sizeof c, "demo/c/%s", files[i]);
    ck_assert_msg(same_file(tmp_path(a), tmp_path(b)), "%s differs between two runs with seed 11", files[i]);
    ck_assert_msg(!same_file(tmp_path(a), tmp_path(c)), "%s is the same for seeds 11 and 12", files[i]);
  }
  size_t n;
  uint8_t *list = read_file(tmp_path("demo/b/train.txt"), &n);
  list[n] = 0;
  ck_assert_ptr_nonnull(strstr((char *)list, "\nimages/train_0002.png labels/train_0002.png\n"));
  free(list);

  /* Other sizes, not square. */
  o.width = 97;
  o.height = 64;
  CK_OK(skd_demo_dataset_write(tmp_path("demo/e"), 5, &o));
  CK_OK(skd_dataset_open(&d, tmp_path("demo/e/val.txt"), NULL, &m));
  skd_sample s;
  CK_OK(skd_dataset_read(d, 1, &s));
  ck_assert_int_eq(s.w, 97);
  ck_assert_int_eq(s.h, 64);
  skd_sample_free(&s);
  skd_dataset_free(d);

  o.width = 8;
  o.height = 128;
  expect_error(skd_demo_dataset_write(tmp_path("demo/d"), 1, &o), SKD_EINVAL, "size 8x128", NULL);
  write_text("file", "x");
  expect_error(skd_demo_dataset_write(tmp_path("file/sub"), 1, NULL), SKD_EIO, "file' exists and is not a directory", NULL);
}
END_TEST

int main(void) {
  Suite *s = suite_create("demo");
  TCase *tc = support_tcase_host("demo");
  support_add_tmpdir(tc);
  tcase_add_test(tc, demo_dataset);
  suite_add_tcase(s, tc);
  return support_main_host(s);
}
