/* Depth data: the synthetic depth set (geometry checked against the camera
 * model by hand), depth lists read with their errors naming the line and the
 * file, the training crop keeping image and depth aligned, and depth batches
 * from the loader. Host only. */
#include "support.h"

#include <stdint.h>

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include "skd/data.h"
#include "skd/depth.h"

static void write_text(const char *rel, const char *text) {
  FILE *f = fopen(tmp_path(rel), "w");
  ck_assert_msg(f != NULL, "cannot write %s", rel);
  fputs(text, f);
  fclose(f);
}

static void expect_error(skd_status st, skd_status want, const char *a, const char *b) {
  ck_assert_int_eq(st, want);
  const char *msg = skd_error_last();
  ck_assert_msg(strstr(msg, a) && (!b || strstr(msg, b)), "message: %s", msg);
}

static skd_dataset *open_list(const char *rel) {
  skd_label_map m;
  CK_OK(skd_label_map_preset(&m, "generic", 60));
  skd_dataset *d = NULL;
  CK_OK(skd_dataset_open(&d, tmp_path(rel), NULL, &m));
  return d;
}

START_TEST(synthetic_set) {
  skd_demo_options o;
  skd_demo_options_default(&o);
  o.width = 64;
  o.height = 48;
  o.train_count = 6;
  o.val_count = 2;
  CK_OK(skd_depth_demo_write(tmp_path("set"), 7, &o));
  skd_dataset *d = open_list("set/train.txt");
  ck_assert_int_eq(skd_dataset_size(d), 6);
  double lo = 1e9, hi = 0;
  for (int i = 0; i < 6; i++) {
    skd_sample s;
    CK_OK(skd_dataset_read_depth(d, i, 1000.0f, &s));
    ck_assert(s.w == 64 && s.h == 48 && s.label == NULL);
    for (int p = 0; p < 64 * 48; p++) {
      lo = fmin(lo, s.depth[p]);
      hi = fmax(hi, s.depth[p]);
    }
    /* The bottom row sees the floor (or something standing on it, nearer):
     * floor depth = cam_h f / (v - cy) with cam_h <= 1.7 m, f = 0.8 W = 51.2,
     * v - cy = 23.5 at the bottom row: at most 1.7 * 51.2 / 23.5 = 3.70 m. Its
     * depth grows upwards row by row in the image's centre column unless
     * something stands there. */
    ck_assert_msg(s.depth[47 * 64 + 32] > 0.3f && s.depth[47 * 64 + 32] <= 3.71f, "bottom depth %g",
                  (double)s.depth[47 * 64 + 32]);
    skd_sample_free(&s);
  }
  /* Whole millimetres in [0.3, 9.5] m: the back wall is at most 9.5 m. */
  ck_assert_msg(lo > 0.2 && hi <= 9.5005, "depth range [%g, %g]", lo, hi);
  skd_dataset_free(d);
  /* The same seed writes the same bytes. */
  CK_OK(skd_depth_demo_write(tmp_path("again"), 7, &o));
  float *a, *b;
  int w, h;
  CK_OK(skd_depth_png_read(tmp_path("set/depth/val_0001.png"), 1000.0f, &a, &w, &h));
  CK_OK(skd_depth_png_read(tmp_path("again/depth/val_0001.png"), 1000.0f, &b, &w, &h));
  ck_assert(memcmp(a, b, (size_t)w * h * sizeof(float)) == 0);
  free(a);
  free(b);
}
END_TEST

START_TEST(read_errors) {
  /* A 4x2 image with a 16-bit depth, a mismatched depth, an 8-bit "depth". */
  uint8_t rgb[4 * 2 * 3] = {0};
  ck_assert(stbi_write_png(tmp_path("a.png"), 4, 2, 3, rgb, 12));
  const float dep[8] = {1, 2, 3, 4, 5, 6, 7, 0};
  CK_OK(skd_depth_png_write(tmp_path("a_d.png"), dep, 4, 2, 1000.0f));
  CK_OK(skd_depth_png_write(tmp_path("small_d.png"), dep, 2, 2, 1000.0f));
  ck_assert(stbi_write_png(tmp_path("grey8.png"), 4, 2, 1, rgb, 4));
  write_text("l.txt", "# comment\na.png a_d.png\na.png small_d.png\na.png grey8.png\n");
  skd_dataset *d = open_list("l.txt");
  skd_sample s;
  CK_OK(skd_dataset_read_depth(d, 0, 1000.0f, &s));
  ck_assert(s.depth[3] == 4.0f && s.depth[7] == 0.0f);
  skd_sample_free(&s);
  /* Another scale: PNG units are centimetres. */
  CK_OK(skd_dataset_read_depth(d, 0, 100.0f, &s));
  ck_assert(s.depth[0] == 10.0f);
  skd_sample_free(&s);
  expect_error(skd_dataset_read_depth(d, 1, 1000.0f, &s), SKD_EFORMAT, "l.txt:3: image", "depth");
  ck_assert_msg(strstr(skd_error_last(), "small_d.png") && strstr(skd_error_last(), "2x2"), "%s", skd_error_last());
  expect_error(skd_dataset_read_depth(d, 2, 1000.0f, &s), SKD_EFORMAT, "l.txt:4:", "16-bit");
  ck_assert(s.rgb == NULL && s.depth == NULL);
  skd_dataset_free(d);
}
END_TEST

START_TEST(augment_aligned) {
  /* The image encodes each pixel's coordinates (R = x, G = y) and so does
   * the depth (1 + x + 100 y mm): after scale, crop and flip, every crop
   * pixel's depth must come from the source pixel its colour names (nearest
   * sampling of the depth; the image is bilinear, so only where the colour
   * is a whole source pixel, i.e. at scale 1). */
  const int w = 40, h = 30;
  skd_sample s = {h, w, malloc((size_t)w * h * 3), NULL, malloc((size_t)w * h * sizeof(float))};
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      s.rgb[3 * (y * w + x)] = (uint8_t)x;
      s.rgb[3 * (y * w + x) + 1] = (uint8_t)y;
      s.rgb[3 * (y * w + x) + 2] = 0;
      s.depth[y * w + x] = 1.0f + (float)x + 100.0f * (float)y;
    }
  skd_augment a;
  skd_augment_reference(&a, 24);
  a.scale_min = a.scale_max = 1.0f;
  a.scale_step = 0.0f;
  a.normalize.bgr = 0;
  for (int c = 0; c < 3; c++) a.normalize.mean[c] = 0.0f, a.normalize.std[c] = 1.0f;
  float image[3 * 24 * 24], depth[24 * 24];
  int flipped = 0;
  for (uint64_t draw = 0; draw < 16; draw++) {
    CK_OK(skd_augment_depth_sample(&s, &a, 3, draw, image, depth));
    flipped += image[0] > image[1];
    for (int p = 0; p < 24 * 24; p++) {
      const float x = image[p], y = image[24 * 24 + p];
      ck_assert_msg(depth[p] == 1.0f + x + 100.0f * y, "draw %d pixel %d: depth %g, image says (%g, %g)", (int)draw,
                    p, (double)depth[p], (double)x, (double)y);
    }
  }
  ck_assert_msg(flipped > 0 && flipped < 16, "flips: %d of 16", flipped);
  /* Scaled 2x: depth values are not rescaled; padding (a crop larger than
   * the scaled image) is 0 = missing. */
  a.scale_min = a.scale_max = 0.5f;
  CK_OK(skd_augment_depth_sample(&s, &a, 3, 0, image, depth));
  int padded = 0;
  for (int p = 0; p < 24 * 24; p++) {
    if (depth[p] == 0.0f) {
      padded++;
      continue;
    }
    const int src = (int)depth[p] - 1, sx = src % 100, sy = src / 100;
    ck_assert_msg(sx < w && sy < h, "depth %g is no source value", (double)depth[p]);
  }
  ck_assert_int_eq(padded, 24 * 24 - 20 * 15);
  /* The segmentation crop of the same draw takes the same geometry: a
   * label of x at each pixel lands where the depth says x, the padding is
   * the ignore value where depth is missing. */
  s.label = malloc((size_t)w * h);
  for (int p = 0; p < w * h; p++) s.label[p] = (uint8_t)(p % w);
  a.scale_min = 0.7f, a.scale_max = 1.6f;
  uint8_t label[24 * 24];
  for (uint64_t draw = 0; draw < 8; draw++) {
    CK_OK(skd_augment_depth_sample(&s, &a, 5, draw, image, depth));
    CK_OK(skd_augment_sample(&s, &a, 255, 5, draw, image, label));
    for (int p = 0; p < 24 * 24; p++) {
      const int want = depth[p] == 0.0f ? 255 : ((int)depth[p] - 1) % 100;
      ck_assert_msg(label[p] == want, "draw %d pixel %d: label %d, depth %g", (int)draw, p, label[p], (double)depth[p]);
    }
  }
  free(s.label);
  free(s.rgb);
  free(s.depth);
}
END_TEST

START_TEST(loader_batches) {
  skd_demo_options o;
  skd_demo_options_default(&o);
  o.width = o.height = 48;
  o.train_count = 5;
  o.val_count = 3;
  CK_OK(skd_depth_demo_write(tmp_path("set"), 3, &o));
  skd_dataset *d = open_list("set/train.txt");
  skd_loader_config c;
  memset(&c, 0, sizeof c);
  c.batch = 2;
  c.train = 1;
  c.depth_scale = 1000.0f;
  skd_augment_reference(&c.augment, 32);
  skd_batch b = {0};
  CK_OK(skd_loader_batch(d, &c, 9, 4, &b));
  ck_assert(b.n == 2 && b.h == 32 && b.w == 32 && b.depth != NULL);
  int valid = 0;
  for (int p = 0; p < 2 * 32 * 32; p++) valid += b.depth[p] > 0.0f;
  ck_assert(valid > 0);
  /* The thread gives the same batches. */
  skd_loader *l;
  c.first_batch = 4;
  CK_OK(skd_loader_create(&l, d, &c, 9));
  const skd_batch *t;
  CK_OK(skd_loader_next(l, &t));
  ck_assert(memcmp(t->depth, b.depth, 2 * 32 * 32 * sizeof(float)) == 0);
  ck_assert(memcmp(t->image, b.image, 2 * 3 * 32 * 32 * sizeof(float)) == 0);
  skd_loader_free(l);
  /* Evaluation batches: whole images, depth as in the file. */
  c.train = 0;
  c.first_batch = 0;
  c.batch = 1;
  CK_OK(skd_loader_batch(d, &c, 9, 1, &b));
  float *want;
  int w, h;
  CK_OK(skd_depth_png_read(tmp_path("set/depth/train_0001.png"), 1000.0f, &want, &w, &h));
  ck_assert(b.n == 1 && b.w == 48 && memcmp(b.depth, want, 48 * 48 * sizeof(float)) == 0);
  free(want);
  skd_batch_free(&b);
  skd_dataset_free(d);
}
END_TEST

int main(void) {
  Suite *s = suite_create("data_depth");
  TCase *tc = support_tcase_host("data_depth");
  support_add_tmpdir(tc);
  tcase_add_test(tc, synthetic_set);
  tcase_add_test(tc, read_errors);
  tcase_add_test(tc, augment_aligned);
  tcase_add_test(tc, loader_batches);
  suite_add_tcase(s, tc);
  return support_main_host(s);
}
