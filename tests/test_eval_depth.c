/* Depth metrics vs PyTorch (reference/depth.bin from gen_depth.py) and by
 * hand, 16-bit depth PNGs (a Pillow-written file read back; our writer read
 * by stb_image; bad files), and the colour map's steady lightness. Host only. */
#include "support.h"

#include <stdint.h>
#include <sys/stat.h>

#include <stb/stb_image.h>

#include "reference_file.h"
#include "skd/depth.h"

static double metric(const skd_depth_metrics *m, int k) {
  const double v[8] = {m->abs_rel, m->sq_rel, m->rms, m->rms_log, m->log10, m->delta[0], m->delta[1], m->delta[2]};
  return v[k];
}

START_TEST(vs_pytorch) {
  ref_file *f = ref_open("depth.bin");
  static const char *cases[] = {"m1", "m2"};
  static const char *names[] = {"abs_rel", "sq_rel", "rms", "rms_log", "log10", "d1", "d2", "d3"};
  for (int k = 0; k < 2; k++) {
    char name[64], check[64];
    snprintf(name, sizeof name, "%s.pred", cases[k]);
    const ref_array *pred = ref_get(f, name);
    snprintf(name, sizeof name, "%s.gt", cases[k]);
    const ref_array *gt = ref_get(f, name);
    snprintf(name, sizeof name, "%s.metrics", cases[k]);
    const float *want = ref_get(f, name)->data;
    /* Added in two parts and merged: the same sums as one pass. */
    skd_depth_acc a, b;
    skd_depth_acc_reset(&a);
    skd_depth_acc_reset(&b);
    const size_t half = pred->numel / 2;
    CK_OK(skd_depth_acc_add(&a, pred->data, gt->data, half));
    CK_OK(skd_depth_acc_add(&b, pred->data + half, gt->data + half, pred->numel - half));
    skd_depth_acc_merge(&a, &b);
    skd_depth_metrics m;
    skd_depth_metrics_compute(&a, &m);
    ck_assert_uint_eq(m.pixels + m.missing, pred->numel);
    for (int j = 0; j < 8; j++) {
      snprintf(check, sizeof check, "%s %s vs torch", cases[k], names[j]);
      check_error("depth_metrics", check, fabs(metric(&m, j) - want[j]) / fmax(fabs(want[j]), 1e-6), 1e-6);
    }
  }
  ref_close(f);
}
END_TEST

START_TEST(hand_computed) {
  /* g = (2, 4, 0 missing), d = (2.5, 4):
   * abs rel = (0.5/2 + 0)/2 = 0.125; sq rel = (0.25/2)/2 = 0.0625;
   * RMS = sqrt(0.25/2) = 0.3535534; RMS(log) = sqrt(ln(1.25)^2 / 2) = 0.2231436/sqrt 2 = 0.1577869;
   * log10 = log10(1.25)/2 = 0.0484550; ratio 1.25 is not < 1.25: delta1 = 1/2, delta2 = delta3 = 1. */
  const float pred[] = {2.5f, 4.0f, 7.0f}, gt[] = {2.0f, 4.0f, 0.0f};
  skd_depth_acc a;
  skd_depth_acc_reset(&a);
  CK_OK(skd_depth_acc_add(&a, pred, gt, 3));
  skd_depth_metrics m;
  skd_depth_metrics_compute(&a, &m);
  const double want[8] = {0.125, 0.0625, 0.3535534, 0.1577869, 0.0484550, 0.5, 1.0, 1.0};
  for (int j = 0; j < 8; j++)
    ck_assert_msg(fabs(metric(&m, j) - want[j]) < 1e-6, "metric %d: %.9g want %.9g", j, metric(&m, j), want[j]);
  ck_assert_uint_eq(m.pixels, 2);
  ck_assert_uint_eq(m.missing, 1);
  char buf[512];
  size_t len = skd_depth_metrics_format(&m, buf, sizeof buf);
  ck_assert_msg(len < sizeof buf && strstr(buf, "abs rel      0.1250") && strstr(buf, "delta<1.25   0.5000"), "%s",
                buf);
  /* A non-finite prediction is refused and adds nothing. */
  const float bad[] = {1.0f, NAN};
  ck_assert_int_eq(skd_depth_acc_add(&a, bad, gt, 2), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "pixel 1"), "%s", skd_error_last());
  ck_assert_uint_eq(a.pixels, 2);
  /* No valid pixel: NaN. */
  skd_depth_acc_reset(&a);
  CK_OK(skd_depth_acc_add(&a, pred + 2, gt + 2, 1));
  skd_depth_metrics_compute(&a, &m);
  ck_assert(isnan(m.abs_rel) && isnan(m.delta[0]));
}
END_TEST

START_TEST(png16) {
  /* Pillow's file: millimetres -> metres with scale 1000. */
  ref_file *f = ref_open("depth.bin");
  const ref_array *vals = ref_get(f, "png16.values");
  char path[1024];
  snprintf(path, sizeof path, "%s/depth16.png", ref_dir());
  float *d;
  int w, h;
  CK_OK(skd_depth_png_read(path, 1000.0f, &d, &w, &h));
  ck_assert(w == 7 && h == 5);
  for (int i = 0; i < 35; i++)
    ck_assert_msg(d[i] == vals->data[i] / 1000.0f, "pixel %d: %g want %g", i, (double)d[i], (double)vals->data[i]);
  /* Ours: written, read back raw by stb_image and through our reader. */
  const float m[6] = {0.0f, 1.2345f, 65.535f, 70.0f, -1.0f, 0.0004f};
  CK_OK(skd_depth_png_write(tmp_path("d.png"), m, 3, 2, 1000.0f));
  int x, y, comp;
  ck_assert(stbi_is_16_bit(tmp_path("d.png")));
  uint16_t *raw = stbi_load_16(tmp_path("d.png"), &x, &y, &comp, 0);
  ck_assert(raw && x == 3 && y == 2 && comp == 1);
  const uint16_t want[6] = {0, 1235, 65535, 65535, 0, 0}; /* rounded, clamped */
  for (int i = 0; i < 6; i++) ck_assert_msg(raw[i] == want[i], "pixel %d: %u want %u", i, raw[i], want[i]);
  stbi_image_free(raw);
  free(d);
  CK_OK(skd_depth_png_read(tmp_path("d.png"), 1000.0f, &d, &w, &h));
  ck_assert(fabsf(d[1] - 1.235f) < 1e-6f);
  free(d);
  /* A large image round-trips exactly at whole millimetres. */
  float *big = host_alloc(640 * 480);
  for (int i = 0; i < 640 * 480; i++) big[i] = (float)(((unsigned)i * 7919u) % 65536u) / 1000.0f;
  CK_OK(skd_depth_png_write(tmp_path("big.png"), big, 640, 480, 1000.0f));
  CK_OK(skd_depth_png_read(tmp_path("big.png"), 1000.0f, &d, &w, &h));
  for (int i = 0; i < 640 * 480; i++) ck_assert_msg(d[i] == big[i], "pixel %d", i);
  free(d);
  ref_close(f);
}
END_TEST

START_TEST(png16_errors) {
  float *d;
  int w, h;
  FILE *fp = fopen(tmp_path("junk.png"), "wb");
  fputs("not a png", fp);
  fclose(fp);
  ck_assert_int_eq(skd_depth_png_read(tmp_path("junk.png"), 1000.0f, &d, &w, &h), SKD_EFORMAT);
  ck_assert_msg(strstr(skd_error_last(), "junk.png") && strstr(skd_error_last(), "16-bit"), "%s", skd_error_last());
  ck_assert_int_eq(skd_depth_png_read(tmp_path("none.png"), 1000.0f, &d, &w, &h), SKD_EIO);
  ck_assert_msg(strstr(skd_error_last(), "none.png"), "%s", skd_error_last());
  /* An 8-bit PNG is refused (its values would need a guessed scale). */
  const uint8_t grey[4] = {1, 2, 3, 4};
  CK_OK(skd_png_write(tmp_path("g8.png"), grey, 2, 2, 1));
  ck_assert_int_eq(skd_depth_png_read(tmp_path("g8.png"), 1000.0f, &d, &w, &h), SKD_EFORMAT);
  ck_assert_msg(strstr(skd_error_last(), "8 bits"), "%s", skd_error_last());
  /* A damaged file is an error (the strict decoder): the last IDAT byte flipped. */
  const float dep[6] = {1.0f, 2.5f, 0.0f, 4.0f, 0.75f, 9.0f};
  CK_OK(skd_depth_png_write(tmp_path("cut.png"), dep, 3, 2, 1000.0f));
  fp = fopen(tmp_path("cut.png"), "r+b");
  fseek(fp, -13, SEEK_END); /* IEND is 12 bytes: this is IDAT's CRC */
  const int byte = fgetc(fp);
  fseek(fp, -13, SEEK_END);
  fputc(0x5a ^ byte, fp);
  fclose(fp);
  ck_assert_int_eq(skd_depth_png_read(tmp_path("cut.png"), 1000.0f, &d, &w, &h), SKD_EFORMAT);
  ck_assert_msg(strstr(skd_error_last(), "cut.png") && strstr(skd_error_last(), "cannot decode"), "%s",
                skd_error_last());
  /* A failed write leaves no file. */
  const float one = 1.0f;
  ck_assert_int_ne(skd_depth_png_write(tmp_path("no/dir/x.png"), &one, 1, 1, 1000.0f), SKD_OK);
  struct stat sb;
  ck_assert(stat(tmp_path("no/dir/x.png"), &sb) != 0);
}
END_TEST

START_TEST(colour_map) {
  /* Lightness (Rec. 709 luma) rises steadily along the map; the ends are
   * dark and light; missing depth is black; near is the light end. */
  double prev = -1.0;
  for (int i = 0; i <= 256; i++) {
    uint8_t c[3];
    skd_depth_colour(i / 256.0f, c);
    const double luma = 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
    ck_assert_msg(luma > prev - 0.6, "luma falls at t = %d/256: %g after %g", i, luma, prev);
    prev = fmax(prev, luma);
  }
  uint8_t lo[3], hi[3];
  skd_depth_colour(0.0f, lo);
  skd_depth_colour(1.0f, hi);
  ck_assert(0.2126 * lo[0] + 0.7152 * lo[1] + 0.0722 * lo[2] < 40);
  ck_assert(0.2126 * hi[0] + 0.7152 * hi[1] + 0.0722 * hi[2] > 200);
  const float d[3] = {0.5f, 10.0f, 0.0f};
  uint8_t rgb[9];
  skd_depth_colourise(d, 3, 1, 0.5f, 10.0f, rgb);
  ck_assert(memcmp(rgb, hi, 3) == 0 && memcmp(rgb + 3, lo, 3) == 0);
  ck_assert(rgb[6] == 0 && rgb[7] == 0 && rgb[8] == 0);
}
END_TEST

int main(void) {
  Suite *s = suite_create("eval_depth");
  TCase *tc = support_tcase_host("eval_depth");
  support_add_tmpdir(tc);
  tcase_add_test(tc, vs_pytorch);
  tcase_add_test(tc, hand_computed);
  tcase_add_test(tc, png16);
  tcase_add_test(tc, png16_errors);
  tcase_add_test(tc, colour_map);
  suite_add_tcase(s, tc);
  return support_main_host(s);
}
