/* Palettes (spot-checked colours, distinct generic colours), colourising,
 * overlays worked out by hand, and atomic PNG writing read back with
 * stb_image; failed writes leave nothing behind. Host only. */
#include "support.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stb/stb_image.h>

#include "skd/palette.h"

static void expect_rgb(const skd_palette *p, int id, int r, int g, int b) {
  ck_assert_msg(p->rgb[id][0] == r && p->rgb[id][1] == g && p->rgb[id][2] == b,
                "%s colour %d is (%d, %d, %d), want (%d, %d, %d)", p->name, id, p->rgb[id][0], p->rgb[id][1],
                p->rgb[id][2], r, g, b);
}

START_TEST(presets) {
  skd_palette p;
  CK_OK(skd_palette_preset(&p, "cityscapes", 0));
  ck_assert_int_eq(p.colors, 19);
  expect_rgb(&p, 0, 128, 64, 128);  /* road */
  expect_rgb(&p, 10, 70, 130, 180); /* sky */
  expect_rgb(&p, 13, 0, 0, 142);    /* car */
  expect_rgb(&p, 18, 119, 11, 32);  /* bicycle */
  CK_OK(skd_palette_preset(&p, "cityscapes-trainids", 19));
  expect_rgb(&p, 11, 220, 20, 60); /* person */
  CK_OK(skd_palette_preset(&p, "camvid", 11));
  ck_assert_int_eq(p.colors, 11);
  expect_rgb(&p, 0, 128, 128, 128); /* sky */
  expect_rgb(&p, 3, 128, 64, 128);  /* road */
  expect_rgb(&p, 10, 0, 128, 192);  /* bicyclist */
  CK_OK(skd_palette_preset(&p, "voc", 0));
  ck_assert_int_eq(p.colors, 21);
  expect_rgb(&p, 0, 0, 0, 0);       /* background */
  expect_rgb(&p, 1, 128, 0, 0);     /* aeroplane */
  expect_rgb(&p, 15, 192, 128, 128); /* person */
  expect_rgb(&p, 20, 0, 64, 128);   /* tvmonitor */
  CK_OK(skd_palette_preset(&p, "demo", 0));
  ck_assert_int_eq(p.colors, 8);

  /* Generic: entry i + 1 of the VOC map, all distinct, none black. */
  CK_OK(skd_palette_preset(&p, "generic", 255));
  expect_rgb(&p, 0, 128, 0, 0);
  expect_rgb(&p, 1, 0, 128, 0);
  expect_rgb(&p, 2, 128, 128, 0);
  for (int i = 0; i < 255; i++) {
    ck_assert_msg(p.rgb[i][0] | p.rgb[i][1] | p.rgb[i][2], "generic colour %d is black", i);
    for (int j = 0; j < i; j++)
      ck_assert_msg(memcmp(p.rgb[i], p.rgb[j], 3) != 0, "generic colours %d and %d are equal", i, j);
  }

  ck_assert_int_eq(skd_palette_preset(&p, "generic", 0), SKD_EINVAL);
  ck_assert_int_eq(skd_palette_preset(&p, "generic", 256), SKD_EINVAL);
  ck_assert_int_eq(skd_palette_preset(&p, "cityscapes", 20), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "19 colours") != NULL, "message: %s", skd_error_last());
  ck_assert_int_eq(skd_palette_preset(&p, "ade20k", 0), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "'ade20k' is unknown") != NULL, "message: %s", skd_error_last());
}
END_TEST

START_TEST(colorize_and_overlay) {
  skd_palette p;
  CK_OK(skd_palette_preset(&p, "cityscapes", 0));
  /* 2 x 3 ids: road, sky, ignore / car, road, bicycle */
  const uint8_t ids[6] = {0, 10, 255, 13, 0, 18};
  uint8_t rgb[18];
  CK_OK(skd_palette_colorize(&p, ids, 2, 3, rgb));
  const uint8_t want[18] = {128, 64, 128, 70, 130, 180, 0, 0, 0, 0, 0, 142, 128, 64, 128, 119, 11, 32};
  ck_assert_mem_eq(rgb, want, sizeof want);

  /* Overlay at alpha 0.5 of image pixels over the colours:
   *   (100, 0, 255) + road (128, 64, 128) -> (114, 32, 191.5 -> 192)
   *   (10, 20, 30)  + sky (70, 130, 180)  -> (40, 75, 105)
   *   (1, 2, 3)     ignore               -> (1, 2, 3) unchanged
   *   (255, 255, 255) + car (0, 0, 142)  -> (127.5 -> 128, 128, 198.5 -> 199)
   *   (0, 0, 0)     + road               -> (64, 32, 64)
   *   (9, 9, 9)     + bicycle (119, 11, 32) -> (64, 10, 20.5 -> 21) */
  const uint8_t image[18] = {100, 0, 255, 10, 20, 30, 1, 2, 3, 255, 255, 255, 0, 0, 0, 9, 9, 9};
  const uint8_t blend[18] = {114, 32, 192, 40, 75, 105, 1, 2, 3, 128, 128, 199, 64, 32, 64, 64, 10, 21};
  uint8_t out[18];
  CK_OK(skd_palette_overlay(&p, ids, image, 2, 3, 0.5f, out));
  ck_assert_mem_eq(out, blend, sizeof blend);
  /* alpha 0 is the image, alpha 1 the colour map (ignore still the image). */
  CK_OK(skd_palette_overlay(&p, ids, image, 2, 3, 0.0f, out));
  ck_assert_mem_eq(out, image, sizeof out);
  CK_OK(skd_palette_overlay(&p, ids, image, 2, 3, 1.0f, out));
  for (int i = 0; i < 18; i++) ck_assert_int_eq(out[i], ids[i / 3] == 255 ? image[i] : want[i]);
  /* In place. */
  memcpy(out, image, sizeof out);
  CK_OK(skd_palette_overlay(&p, ids, out, 2, 3, 0.5f, out));
  ck_assert_mem_eq(out, blend, sizeof blend);

  ck_assert_int_eq(skd_palette_overlay(&p, ids, image, 2, 3, 1.5f, out), SKD_EINVAL);
  ck_assert_int_eq(skd_palette_overlay(&p, ids, image, 2, 3, NAN, out), SKD_EINVAL);
  const uint8_t bad[6] = {0, 1, 2, 3, 4, 19};
  ck_assert_int_eq(skd_palette_colorize(&p, bad, 2, 3, rgb), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "id 19 at pixel (y 1, x 2)") != NULL, "message: %s", skd_error_last());
  ck_assert_int_eq(skd_palette_overlay(&p, bad, image, 2, 3, 0.5f, out), SKD_EINVAL);
}
END_TEST

/* Names in the temporary directory other than the expected ones. */
static int stray_files(const char *dir, const char *const *expected, int n_expected) {
  DIR *d = opendir(dir);
  ck_assert_msg(d != NULL, "opendir %s: %s", dir, strerror(errno));
  int stray = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    int known = 0;
    for (int i = 0; i < n_expected; i++) known |= strcmp(e->d_name, expected[i]) == 0;
    if (!known) {
      fprintf(stderr, "stray file: %s\n", e->d_name);
      stray++;
    }
  }
  closedir(d);
  return stray;
}

static void read_back(const char *path, const uint8_t *px, int w, int h, int channels) {
  int rw, rh, rc;
  uint8_t *got = stbi_load(path, &rw, &rh, &rc, channels);
  ck_assert_msg(got != NULL, "stbi_load %s: %s", path, stbi_failure_reason());
  ck_assert(rw == w && rh == h && rc == channels);
  ck_assert_mem_eq(got, px, (size_t)w * h * channels);
  stbi_image_free(got);
}

START_TEST(png_round_trip) {
  skd_palette p;
  CK_OK(skd_palette_preset(&p, "camvid", 0));
  enum { W = 7, H = 5 };
  uint8_t ids[W * H], rgb[W * H * 3], rgba[W * H * 4];
  for (int i = 0; i < W * H; i++) ids[i] = i % 13 == 12 ? 255 : (uint8_t)(i % 11);
  CK_OK(skd_palette_colorize(&p, ids, H, W, rgb));
  CK_OK(skd_png_write(tmp_path("pred.png"), rgb, W, H, 3));
  read_back(tmp_path("pred.png"), rgb, W, H, 3);
  CK_OK(skd_png_write(tmp_path("ids.png"), ids, W, H, 1));
  read_back(tmp_path("ids.png"), ids, W, H, 1);
  for (int i = 0; i < W * H * 4; i++) rgba[i] = (uint8_t)(i * 37);
  CK_OK(skd_png_write(tmp_path("rgba.png"), rgba, W, H, 4));
  read_back(tmp_path("rgba.png"), rgba, W, H, 4);
  /* Overwriting replaces the file whole. */
  CK_OK(skd_png_write(tmp_path("pred.png"), rgba, W, H, 3));
  read_back(tmp_path("pred.png"), rgba, W, H, 3);
  /* Created like any file (0666 less the umask), not 0600 as mkstemp would. */
  mode_t mask = umask(0);
  umask(mask);
  struct stat sb;
  ck_assert(stat(tmp_path("pred.png"), &sb) == 0);
  ck_assert_int_eq(sb.st_mode & 0777, 0666 & ~mask);
  const char *expected[3] = {"pred.png", "ids.png", "rgba.png"};
  ck_assert_int_eq(stray_files(tmp_path(""), expected, 3), 0);
}
END_TEST

START_TEST(png_failures) {
  uint8_t px[12] = {0};
  /* A directory that does not exist: nothing is created, the error names the file. */
  const char *missing = tmp_path("no/such/dir/out.png");
  ck_assert_int_eq(skd_png_write(missing, px, 2, 2, 3), SKD_EIO);
  ck_assert_msg(strstr(skd_error_last(), missing) != NULL, "message: %s", skd_error_last());
  /* The target is a directory: the rename fails after the data were
   * written, and the temporary file must be gone. */
  ck_assert_int_eq(mkdir(tmp_path("taken.png"), 0755), 0);
  ck_assert_int_eq(skd_png_write(tmp_path("taken.png"), px, 2, 2, 3), SKD_EIO);
  ck_assert_msg(strstr(skd_error_last(), "taken.png: cannot rename") != NULL, "message: %s", skd_error_last());
  struct stat sb;
  ck_assert(stat(tmp_path("taken.png"), &sb) == 0 && S_ISDIR(sb.st_mode));
  const char *expected[1] = {"taken.png"};
  ck_assert_int_eq(stray_files(tmp_path(""), expected, 1), 0);
  /* Bad arguments. */
  ck_assert_int_eq(skd_png_write(tmp_path("a.png"), px, 2, 2, 5), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "a.png") != NULL, "message: %s", skd_error_last());
  ck_assert_int_eq(skd_png_write(tmp_path("a.png"), px, 0, 2, 3), SKD_EINVAL);
  ck_assert_int_eq(skd_png_write("", px, 2, 2, 3), SKD_EINVAL);
  ck_assert_int_eq(stray_files(tmp_path(""), expected, 1), 0);
}
END_TEST

/* Temporary names that exist already (a crashed run's leftovers, another
 * thread's file) are never reused: O_EXCL skips them, and they stay. */
START_TEST(png_busy_temporary) {
  uint8_t px[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  char stale[2][64];
  for (int k = 0; k < 2; k++) {
    snprintf(stale[k], sizeof stale[k], "busy.png.tmp.%ld.%d", (long)getpid(), k);
    FILE *f = fopen(tmp_path(stale[k]), "w");
    ck_assert(f != NULL);
    fputs("stale", f);
    fclose(f);
  }
  CK_OK(skd_png_write(tmp_path("busy.png"), px, 2, 2, 3));
  read_back(tmp_path("busy.png"), px, 2, 2, 3);
  struct stat sb;
  for (int k = 0; k < 2; k++) ck_assert(stat(tmp_path(stale[k]), &sb) == 0 && sb.st_size == 5);
  const char *expected[3] = {"busy.png", stale[0], stale[1]};
  ck_assert_int_eq(stray_files(tmp_path(""), expected, 3), 0);
}
END_TEST

int main(void) {
  Suite *s = suite_create("palette");
  TCase *tc = support_tcase_host("palette");
  support_add_tmpdir(tc);
  tcase_add_test(tc, presets);
  tcase_add_test(tc, colorize_and_overlay);
  tcase_add_test(tc, png_round_trip);
  tcase_add_test(tc, png_failures);
  tcase_add_test(tc, png_busy_temporary);
  suite_add_tcase(s, tc);
  return support_main_host(s);
}
