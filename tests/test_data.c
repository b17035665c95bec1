/* Data pipeline: list files, label presets, decoding errors, augmentation
 * (determinism, crop/pad, scale, mirror, normalisation) and the loader thread
 * against direct calls (the demo dataset: test_demo.c). Host only: no OpenCL device is
 * needed, so the suite runs with support_main_host and never skips. */
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include "support.h"

static void write_text(const char *rel, const char *text) {
  FILE *f = fopen(tmp_path(rel), "w");
  ck_assert(f != NULL);
  fputs(text, f);
  fclose(f);
}

static void write_png(const char *rel, int w, int h, int comp, const uint8_t *px) {
  ck_assert_msg(stbi_write_png(tmp_path(rel), w, h, comp, px, w * comp), "cannot write %s", rel);
}

static void expect_error(skd_status st, skd_status code, const char *a, const char *b, const char *c) {
  const char *msg = skd_error_last();
  ck_assert_msg(st == code, "expected %s, got %s: %s", skd_status_name(code), skd_status_name(st), msg);
  const char *parts[3] = {a, b, c};
  for (int i = 0; i < 3; i++)
    if (parts[i]) ck_assert_msg(strstr(msg, parts[i]) != NULL, "message lacks '%s': %s", parts[i], msg);
}

static skd_label_map preset(const char *name, int classes) {
  skd_label_map m;
  CK_OK(skd_label_map_preset(&m, name, classes));
  return m;
}

/* A w x h sample with distinct bytes: rgb = (10 * i + c) mod 250, label = i mod 5. */
static void fill_sample(int w, int h, uint8_t *rgb, uint8_t *lab) {
  for (int i = 0; i < w * h; i++) {
    for (int c = 0; c < 3; c++) rgb[3 * i + c] = (uint8_t)((10 * i + c) % 250);
    lab[i] = (uint8_t)(i % 5);
  }
}

/* ---- List files ------------------------------------------------------------- */

START_TEST(list_parsing) {
  uint8_t rgb[3 * 4 * 3], lab[4 * 3];
  fill_sample(4, 3, rgb, lab);
  write_png("a.png", 4, 3, 3, rgb);
  write_png("a_l.png", 4, 3, 1, lab);
  write_png("b.png", 4, 3, 3, rgb);
  write_png("b_l.png", 4, 3, 1, lab);
  write_text("list.txt", "# comment\n\n  a.png   a_l.png\r\n\t\n   # indented comment\nb.png\tb_l.png");
  skd_label_map m = preset("generic", 5);
  skd_dataset *d = NULL;
  CK_OK(skd_dataset_open(&d, tmp_path("list.txt"), NULL, &m));
  ck_assert_int_eq(skd_dataset_size(d), 2);
  ck_assert_int_eq(skd_dataset_line(d, 0), 3);
  ck_assert_int_eq(skd_dataset_line(d, 1), 6);
  ck_assert_str_eq(skd_dataset_image_path(d, 1), tmp_path("b.png"));
  ck_assert_str_eq(skd_dataset_label_path(d, 0), tmp_path("a_l.png"));
  skd_dataset_free(d);

  /* An explicit data directory, relative list paths resolved against it. */
  ck_assert_int_eq(mkdir(tmp_path("sub"), 0755), 0);
  write_text("sub/list.txt", "a.png a_l.png\n");
  CK_OK(skd_dataset_open(&d, tmp_path("sub/list.txt"), tmp_path(""), &m));
  ck_assert_str_eq(skd_dataset_image_path(d, 0), tmp_path("a.png"));
  skd_dataset_free(d);

  /* A UTF-8 byte order mark before the first path is not part of it. */
  write_text("bom.txt", "\xEF\xBB\xBF" "a.png a_l.png\nb.png b_l.png\n");
  CK_OK(skd_dataset_open(&d, tmp_path("bom.txt"), NULL, &m));
  ck_assert_int_eq(skd_dataset_size(d), 2);
  ck_assert_str_eq(skd_dataset_image_path(d, 0), tmp_path("a.png"));
  skd_dataset_free(d);

  write_text("one.txt", "a.png a_l.png\n# ok\n\nb.png\n");
  d = (skd_dataset *)1;
  expect_error(skd_dataset_open(&d, tmp_path("one.txt"), NULL, &m), SKD_EFORMAT, "one.txt:4: expected 'image_path label_path'",
               "got 'b.png'", NULL);
  ck_assert_ptr_null(d);
  write_text("three.txt", "a.png a_l.png\na.png a_l.png extra\n");
  expect_error(skd_dataset_open(&d, tmp_path("three.txt"), NULL, &m), SKD_EFORMAT, "three.txt:2: expected", "3 or more",
               NULL);
  write_text("missing.txt", "a.png a_l.png\n\nnone.png a_l.png\n");
  expect_error(skd_dataset_open(&d, tmp_path("missing.txt"), NULL, &m), SKD_EIO, "missing.txt:3: cannot read image",
               "none.png", "No such file");
  write_text("missing_label.txt", "a.png gone.png\n");
  expect_error(skd_dataset_open(&d, tmp_path("missing_label.txt"), NULL, &m), SKD_EIO, "missing_label.txt:1",
               "cannot read label", "gone.png");
  write_text("empty.txt", "# nothing\n\n");
  expect_error(skd_dataset_open(&d, tmp_path("empty.txt"), NULL, &m), SKD_EFORMAT, "no samples", NULL, NULL);
  expect_error(skd_dataset_open(&d, tmp_path("nolist.txt"), NULL, &m), SKD_EIO, "cannot open list file", "nolist.txt",
               NULL);
}
END_TEST

/* Unlabeled lists: image paths, a label column allowed and never read (its
 * file may be missing), every label pixel the ignore value. */
START_TEST(unlabeled_lists) {
  uint8_t rgb[3 * 4 * 3], lab[4 * 3];
  fill_sample(4, 3, rgb, lab);
  write_png("a.png", 4, 3, 3, rgb);
  write_text("u.txt", "# images only\na.png\n\na.png not_there.png\n");
  skd_label_map m = preset("generic", 5);
  skd_dataset *d = NULL;
  CK_OK(skd_dataset_open_unlabeled(&d, tmp_path("u.txt"), NULL, &m));
  ck_assert_int_eq(skd_dataset_size(d), 2);
  ck_assert_int_eq(skd_dataset_line(d, 1), 4);
  ck_assert_ptr_null(skd_dataset_label_path(d, 1));
  for (int i = 0; i < 2; i++) {
    skd_sample s;
    CK_OK(skd_dataset_read(d, i, &s));
    ck_assert_int_eq(s.w, 4);
    ck_assert_int_eq(s.h, 3);
    ck_assert_mem_eq(s.rgb, rgb, sizeof rgb);
    for (int p = 0; p < 12; p++) ck_assert_int_eq(s.label[p], m.ignore);
    skd_sample_free(&s);
  }
  skd_dataset_free(d);
  write_text("u3.txt", "a.png b.png c.png\n");
  expect_error(skd_dataset_open_unlabeled(&d, tmp_path("u3.txt"), NULL, &m), SKD_EFORMAT,
               "u3.txt:1: expected 'image_path [label_path]'", "3 or more", NULL);
  /* A labeled list still needs its labels. */
  write_text("l1.txt", "a.png\n");
  expect_error(skd_dataset_open(&d, tmp_path("l1.txt"), NULL, &m), SKD_EFORMAT, "l1.txt:1: expected 'image_path label_path'",
               NULL, NULL);
}
END_TEST

/* ---- Presets ---------------------------------------------------------------- */

START_TEST(presets) {
  skd_label_map m = preset("cityscapes", 0);
  ck_assert_int_eq(m.classes, 19);
  ck_assert_int_eq(m.ignore, 255);
  /* labelId -> trainId spot checks against cityscapesScripts' labels.py. */
  static const int pairs[][2] = {{0, 255}, {1, 255}, {6, 255}, {7, 0},    {8, 1},   {9, 255},  {10, 255},
                                 {11, 2},  {12, 3},  {13, 4},  {14, 255}, {16, 255}, {17, 5},  {18, 255},
                                 {19, 6},  {20, 7},  {21, 8},  {22, 9},   {23, 10},  {24, 11}, {25, 12},
                                 {26, 13}, {27, 14}, {28, 15}, {29, 255}, {30, 255}, {31, 16}, {32, 17},
                                 {33, 18}, {255, 255}};
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
    ck_assert_msg(m.table[pairs[i][0]] == pairs[i][1], "cityscapes id %d -> %d, expected %d", pairs[i][0],
                  m.table[pairs[i][0]], pairs[i][1]);
  ck_assert_str_eq(m.class_names[13], "car");
  ck_assert_str_eq(m.class_names[18], "bicycle");
  int ignored = 0;
  for (int id = 0; id < 34; id++) ignored += m.table[id] == 255;
  ck_assert_int_eq(ignored, 34 - 19);

  m = preset("camvid", 11);
  ck_assert_int_eq(m.table[10], 10);
  ck_assert_int_eq(m.table[11], 255);
  m = preset("voc", 0);
  ck_assert_int_eq(m.classes, 21);
  ck_assert(m.voc_palette);
  m = preset("generic", 7);
  ck_assert_int_eq(m.classes, 7);
  for (int v = 0; v < 256; v++) ck_assert_int_eq(m.table[v], v);
  m = preset("demo", 0);
  ck_assert_int_eq(m.classes, SKD_DEMO_CLASSES);
  ck_assert_str_eq(m.class_names[7], "buoy");

  expect_error(skd_label_map_preset(&m, "generic", 0), SKD_EINVAL, "generic", "[1, 255]", NULL);
  expect_error(skd_label_map_preset(&m, "cityscapes", 20), SKD_EINVAL, "19 classes", "20", NULL);
  expect_error(skd_label_map_preset(&m, "kitti", 0), SKD_EINVAL, "'kitti' is unknown", NULL, NULL);
}
END_TEST

/* Cityscapes ids decode to trainIds; a value that is no id fails. */
START_TEST(preset_decoding) {
  uint8_t rgb[3 * 3 * 2] = {0}, lab[6] = {7, 26, 0, 33, 255, 24};
  write_png("i.png", 3, 2, 3, rgb);
  write_png("l.png", 3, 2, 1, lab);
  uint8_t bad[6] = {7, 7, 7, 7, 40, 7};
  write_png("bad.png", 3, 2, 1, bad);
  write_text("l.txt", "i.png l.png\ni.png bad.png\n");
  skd_label_map m = preset("cityscapes", 19);
  skd_dataset *d;
  CK_OK(skd_dataset_open(&d, tmp_path("l.txt"), NULL, &m));
  skd_sample s;
  CK_OK(skd_dataset_read(d, 0, &s));
  const uint8_t want[6] = {0, 13, 255, 18, 255, 11};
  for (int i = 0; i < 6; i++) ck_assert_int_eq(s.label[i], want[i]);
  skd_sample_free(&s);
  expect_error(skd_dataset_read(d, 1, &s), SKD_EFORMAT, "l.txt:2: label", "value 40 at pixel (x=1, y=1)",
               "outside [0, 19)");
  skd_dataset_free(d);

  /* CamVid: void (11) becomes ignore. */
  uint8_t cv[6] = {0, 10, 11, 5, 255, 3};
  write_png("cv.png", 3, 2, 1, cv);
  write_text("cv.txt", "i.png cv.png\n");
  m = preset("camvid", 0);
  CK_OK(skd_dataset_open(&d, tmp_path("cv.txt"), NULL, &m));
  CK_OK(skd_dataset_read(d, 0, &s));
  ck_assert_int_eq(s.label[1], 10);
  ck_assert_int_eq(s.label[2], 255);
  skd_sample_free(&s);
  skd_dataset_free(d);

  /* VOC: an RGB label in the palette's colours -> indices (paletted PNGs: test_decode.c). */
  uint8_t voc[3 * 6] = {0, 0, 0, 128, 0, 0, 192, 128, 128, 224, 224, 192, 0, 64, 128, 128, 128, 128};
  write_png("voc.png", 3, 2, 3, voc);
  voc[3 * 5 + 2] = 129; /* a colour outside the palette */
  write_png("voc_bad.png", 3, 2, 3, voc);
  write_text("voc.txt", "i.png voc.png\ni.png voc_bad.png\n");
  m = preset("voc", 0);
  CK_OK(skd_dataset_open(&d, tmp_path("voc.txt"), NULL, &m));
  CK_OK(skd_dataset_read(d, 0, &s));
  const uint8_t vwant[6] = {0, 1, 15, 255, 20, 7}; /* background, aeroplane, person, boundary, tvmonitor, car */
  for (int i = 0; i < 6; i++) ck_assert_int_eq(s.label[i], vwant[i]);
  skd_sample_free(&s);
  expect_error(skd_dataset_read(d, 1, &s), SKD_EFORMAT, "voc_bad.png", "(128, 128, 129) at pixel (x=2, y=1)",
               "VOC palette");
  skd_dataset_free(d);
}
END_TEST

/* ---- Decoding errors ------------------------------------------------------- */

START_TEST(decode_errors) {
  uint8_t rgb[3 * 4 * 3], lab[4 * 3], grey3[3 * 4 * 3];
  fill_sample(4, 3, rgb, lab);
  for (int i = 0; i < 12; i++) grey3[3 * i] = grey3[3 * i + 1] = grey3[3 * i + 2] = lab[i];
  write_png("img.png", 4, 3, 3, rgb);
  write_png("lab.png", 4, 3, 1, lab);
  write_png("lab_small.png", 4, 2, 1, lab);
  write_png("grey3.png", 4, 3, 3, grey3);
  grey3[3 * 6 + 1] = 9; /* pixel (x=2, y=1) no longer grey */
  write_png("colour3.png", 4, 3, 3, grey3);
  lab[4 * 2 + 3] = 9; /* pixel (x=3, y=2) = 9, outside [0, 5) */
  write_png("lab_bad.png", 4, 3, 1, lab);
  ck_assert(stbi_write_jpg(tmp_path("lab.jpg"), 4, 3, 1, lab, 90));
  write_text("broken.png", "not a png at all");
  write_png("gone.png", 4, 3, 3, rgb);
  write_text("list.txt",
             "img.png lab.png\n"         /* 1: fine */
             "img.png lab_small.png\n"   /* 2: size mismatch */
             "img.png lab_bad.png\n"     /* 3: value 9 */
             "img.png grey3.png\n"       /* 4: RGB label with R = G = B: accepted */
             "img.png colour3.png\n"     /* 5: RGB label in colour */
             "img.png lab.jpg\n"         /* 6: JPEG label */
             "broken.png lab.png\n"      /* 7: undecodable image */
             "gone.png lab.png\n");      /* 8: deleted after open */
  skd_label_map m = preset("generic", 5);
  skd_dataset *d;
  CK_OK(skd_dataset_open(&d, tmp_path("list.txt"), NULL, &m));
  ck_assert_int_eq(unlink(tmp_path("gone.png")), 0);
  skd_sample s;
  CK_OK(skd_dataset_read(d, 0, &s));
  ck_assert_int_eq(s.w, 4);
  ck_assert_int_eq(s.h, 3);
  ck_assert_int_eq(memcmp(s.rgb, rgb, sizeof rgb), 0);
  skd_sample_free(&s);
  expect_error(skd_dataset_read(d, 1, &s), SKD_EFORMAT, "list.txt:2: image", "is 4x3 but label", "lab_small.png' is 4x2");
  expect_error(skd_dataset_read(d, 2, &s), SKD_EFORMAT, "list.txt:3: label", "lab_bad.png",
               "value 9 at pixel (x=3, y=2) is outside [0, 5) and not the ignore value 255");
  ck_assert_ptr_null(s.label);
  CK_OK(skd_dataset_read(d, 3, &s));
  for (int i = 0; i < 12; i++) ck_assert_int_eq(s.label[i], i % 5);
  skd_sample_free(&s);
  expect_error(skd_dataset_read(d, 4, &s), SKD_EFORMAT, "list.txt:5: label", "colour3.png' has 3 channels",
               "pixel (x=2, y=1) is (1, 9, 1)");
  expect_error(skd_dataset_read(d, 5, &s), SKD_EFORMAT, "list.txt:6: cannot decode label", "lab.jpg", "8-bit PNG");
  expect_error(skd_dataset_read(d, 6, &s), SKD_EFORMAT, "list.txt:7: cannot decode image", "broken.png", NULL);
  expect_error(skd_dataset_read(d, 7, &s), SKD_EIO, "list.txt:8: cannot open image", "gone.png", "No such file");
  expect_error(skd_dataset_read(d, 8, &s), SKD_EINVAL, "index 8 outside [0, 8)", NULL, NULL);
  skd_dataset_free(d);
}
END_TEST

/* ---- Normalisation and augmentation ----------------------------------------- */

START_TEST(normalisation) {
  uint8_t rgb[6] = {10, 20, 30, 200, 100, 0}, lab[2] = {1, 255};
  skd_sample s = {1, 2, rgb, lab, NULL};
  float img[6];
  uint8_t out[2];
  skd_normalize n;
  skd_normalize_reference(&n);
  skd_normalize_sample(&s, &n, img, out);
  /* planar BGR minus the BGR mean */
  const float ref[6] = {30 - 104.008f, 0 - 104.008f, 20 - 116.669f, 100 - 116.669f, 10 - 122.679f, 200 - 122.679f};
  check_error("normalize", "reference BGR mean", rel_error(img, ref, 6), 1e-6);
  ck_assert_int_eq(out[0], 1);
  ck_assert_int_eq(out[1], 255);
  skd_normalize_imagenet(&n);
  skd_normalize_sample(&s, &n, img, out);
  const float inet[6] = {(10 / 255.f - 0.485f) / 0.229f, (200 / 255.f - 0.485f) / 0.229f,
                         (20 / 255.f - 0.456f) / 0.224f, (100 / 255.f - 0.456f) / 0.224f,
                         (30 / 255.f - 0.406f) / 0.225f, (0 / 255.f - 0.406f) / 0.225f};
  check_error("normalize", "ImageNet RGB mean/std", rel_error(img, inet, 6), 1e-5);
}
END_TEST

static skd_augment plain_augment(int crop_h, int crop_w, float scale, int mirror) {
  skd_augment a;
  skd_augment_reference(&a, 1);
  a.crop_h = crop_h;
  a.crop_w = crop_w;
  a.scale_min = a.scale_max = scale;
  a.scale_step = 0.0f;
  a.mirror = mirror;
  return a;
}

/* A 3x2 image in a 4x5 crop at scale 1: no room for an offset, so the image
 * sits top-left and the rest is padding (0 = the mean, labels ignore). */
START_TEST(crop_pad) {
  uint8_t rgb[3 * 3 * 2], lab[6];
  fill_sample(3, 2, rgb, lab);
  skd_sample s = {2, 3, rgb, lab, NULL};
  skd_augment a = plain_augment(4, 5, 1.0f, 0);
  float img[3 * 20];
  uint8_t out[20];
  for (uint64_t draw = 0; draw < 4; draw++) {
    CK_OK(skd_augment_sample(&s, &a, 255, 42, draw, img, out));
    double err = 0.0;
    for (int y = 0; y < 4; y++)
      for (int x = 0; x < 5; x++) {
        int inside = y < 2 && x < 3;
        ck_assert_int_eq(out[y * 5 + x], inside ? lab[y * 3 + x] : 255);
        for (int c = 0; c < 3; c++) {
          float want = inside ? (float)rgb[3 * (y * 3 + x) + (2 - c)] - a.normalize.mean[c] : 0.0f;
          err = fmax(err, fabs(img[c * 20 + y * 5 + x] - want));
        }
      }
    check_error("augment", "pad to crop (abs)", err, 1e-4);
  }
  /* The padding value is the mean in pixel space: an image equal to the mean
   * would be indistinguishable from padding. */
  ck_assert_float_eq(img[3 * 20 - 1], 0.0f);

  /* A crop smaller than the image is a window of it; offsets vary with draw. */
  uint8_t big[3 * 6 * 5], blab[30];
  fill_sample(6, 5, big, blab);
  skd_sample b = {5, 6, big, blab, NULL};
  a = plain_augment(2, 3, 1.0f, 0);
  float win[3 * 6];
  uint8_t wl[6];
  int seen[4][4] = {{0}};
  for (uint64_t draw = 0; draw < 64; draw++) {
    CK_OK(skd_augment_sample(&b, &a, 255, 7, draw, win, wl));
    int found = 0;
    for (int oy = 0; oy <= 3 && !found; oy++)
      for (int ox = 0; ox <= 3 && !found; ox++) {
        int ok = 1;
        for (int y = 0; y < 2; y++)
          for (int x = 0; x < 3; x++) {
            int p = (oy + y) * 6 + ox + x;
            ok &= wl[y * 3 + x] == blab[p];
            ok &= win[0 * 6 + y * 3 + x] == (float)big[3 * p + 2] - a.normalize.mean[0];
          }
        if (ok) {
          found = 1;
          seen[oy][ox] = 1;
        }
      }
    ck_assert_msg(found, "draw %d: the crop is no window of the image", (int)draw);
  }
  int distinct = 0;
  for (int i = 0; i < 16; i++) distinct += seen[i / 4][i % 4];
  ck_assert_msg(distinct >= 10, "only %d of 16 crop offsets in 64 draws", distinct);
}
END_TEST

/* Scale 2 of a 2x2 image: labels repeat 2x2 (nearest), the image is the
 * half-pixel-centre bilinear interpolation. */
START_TEST(scale) {
  uint8_t rgb[12] = {0, 0, 0, 100, 100, 100, 40, 40, 40, 200, 200, 200}, lab[4] = {0, 1, 2, 3};
  skd_sample s = {2, 2, rgb, lab, NULL};
  skd_augment a = plain_augment(4, 4, 2.0f, 0);
  a.normalize.mean[0] = a.normalize.mean[1] = a.normalize.mean[2] = 0.0f;
  float img[48];
  uint8_t out[16];
  CK_OK(skd_augment_sample(&s, &a, 255, 1, 0, img, out));
  for (int y = 0; y < 4; y++)
    for (int x = 0; x < 4; x++) ck_assert_int_eq(out[y * 4 + x], lab[(y / 2) * 2 + x / 2]);
  /* Source coordinate of output i: (i + 0.5) / 2 - 0.5, clamped: 0, 0.25, 0.75, 1. */
  const float t[4] = {0.0f, 0.25f, 0.75f, 1.0f};
  float want[16];
  for (int y = 0; y < 4; y++)
    for (int x = 0; x < 4; x++) {
      float top = 0 + t[x] * 100, bot = 40 + t[x] * 160;
      want[y * 4 + x] = top + t[y] * (bot - top);
    }
  check_error("augment", "bilinear scale 2", rel_error(img, want, 16), 1e-6);
  check_error("augment", "bilinear scale 2 (channel 2)", rel_error(img + 32, want, 16), 1e-6);
}
END_TEST

START_TEST(mirror) {
  uint8_t rgb[3 * 5 * 3], lab[15];
  fill_sample(5, 3, rgb, lab);
  skd_sample s = {3, 5, rgb, lab, NULL};
  skd_augment a = plain_augment(3, 5, 1.0f, 1);
  float img[45], plain[45];
  uint8_t out[15], plain_lab[15];
  skd_augment off = plain_augment(3, 5, 1.0f, 0);
  CK_OK(skd_augment_sample(&s, &off, 255, 3, 0, plain, plain_lab));
  int flipped = 0, kept = 0;
  for (uint64_t draw = 0; draw < 32; draw++) {
    CK_OK(skd_augment_sample(&s, &a, 255, 3, draw, img, out));
    int same = memcmp(img, plain, sizeof img) == 0 && memcmp(out, plain_lab, sizeof out) == 0;
    int flip = 1;
    for (int y = 0; y < 3; y++)
      for (int x = 0; x < 5; x++) {
        flip &= out[y * 5 + x] == plain_lab[y * 5 + 4 - x];
        for (int c = 0; c < 3; c++) flip &= img[c * 15 + y * 5 + x] == plain[c * 15 + y * 5 + 4 - x];
      }
    ck_assert_msg(same || flip, "draw %d is neither the image nor its mirror (image and label together)", (int)draw);
    flipped += flip;
    kept += same;
  }
  ck_assert_msg(flipped >= 6 && kept >= 6, "mirror: %d flipped, %d kept of 32", flipped, kept);
}
END_TEST

START_TEST(augment_determinism) {
  enum { W = 37, H = 29, C = 24 };
  uint8_t *rgb = malloc(3 * W * H), lab[W * H];
  for (int i = 0; i < 3 * W * H; i++) rgb[i] = (uint8_t)((i * 7919) % 251);
  for (int i = 0; i < W * H; i++) lab[i] = (uint8_t)((i * 31) % 7);
  skd_sample s = {H, W, rgb, lab, NULL};
  skd_augment a;
  skd_augment_reference(&a, C);
  float *x1 = host_alloc(3 * C * C), *x2 = host_alloc(3 * C * C);
  uint8_t l1[C * C], l2[C * C];
  CK_OK(skd_augment_sample(&s, &a, 255, 99, 5, x1, l1));
  CK_OK(skd_augment_sample(&s, &a, 255, 99, 5, x2, l2));
  ck_assert_int_eq(memcmp(x1, x2, 3 * C * C * sizeof(float)), 0);
  ck_assert_int_eq(memcmp(l1, l2, sizeof l1), 0);
  int differ_seed = 0, differ_draw = 0;
  for (uint64_t k = 0; k < 4; k++) {
    CK_OK(skd_augment_sample(&s, &a, 255, 100 + k, 5, x2, l2));
    differ_seed += memcmp(x1, x2, 3 * C * C * sizeof(float)) != 0;
    CK_OK(skd_augment_sample(&s, &a, 255, 99, 6 + k, x2, l2));
    differ_draw += memcmp(x1, x2, 3 * C * C * sizeof(float)) != 0;
  }
  ck_assert_int_ge(differ_seed, 3);
  ck_assert_int_ge(differ_draw, 3);
  a.crop_w = 0;
  expect_error(skd_augment_sample(&s, &a, 255, 1, 1, x1, l1), SKD_EINVAL, "crop", NULL, NULL);
  free(rgb);
}
END_TEST

/* ---- Loader ----------------------------------------------------------------- */

/* n samples of varied sizes (or all w x h when same) in ld.txt. */
static void write_dataset(int n, int same, int bad_at) {
  char list[2048] = "";
  for (int i = 0; i < n; i++) {
    int w = same ? 20 : 16 + 3 * i, h = same ? 14 : 12 + 2 * (i % 3);
    uint8_t *rgb = malloc((size_t)3 * w * h), *lab = malloc((size_t)w * h);
    for (int p = 0; p < w * h; p++) {
      for (int c = 0; c < 3; c++) rgb[3 * p + c] = (uint8_t)((p * 13 + c * 50 + i * 29) % 256);
      lab[p] = (uint8_t)((p / 7 + i) % 4);
    }
    if (i == bad_at) lab[w + 1] = 77;
    char name[64], lname[64], line[160];
    snprintf(name, sizeof name, "i%d.png", i);
    snprintf(lname, sizeof lname, "l%d.png", i);
    write_png(name, w, h, 3, rgb);
    write_png(lname, w, h, 1, lab);
    snprintf(line, sizeof line, "%s %s\n", name, lname);
    strcat(list, line);
    free(rgb);
    free(lab);
  }
  write_text("ld.txt", list);
}

static void same_batch(const skd_batch *a, const skd_batch *b) {
  ck_assert_int_eq(a->n, b->n);
  ck_assert_int_eq(a->h, b->h);
  ck_assert_int_eq(a->w, b->w);
  ck_assert_int_eq(a->number, b->number);
  size_t pix = (size_t)a->n * a->h * a->w;
  ck_assert_int_eq(memcmp(a->image, b->image, 3 * pix * sizeof(float)), 0);
  ck_assert_int_eq(memcmp(a->label, b->label, pix), 0);
  ck_assert_int_eq(memcmp(a->index, b->index, (size_t)a->n * sizeof(int)), 0);
}

START_TEST(loader_train) {
  write_dataset(5, 0, -1);
  skd_label_map m = preset("generic", 4);
  skd_dataset *d;
  CK_OK(skd_dataset_open(&d, tmp_path("ld.txt"), NULL, &m));
  skd_loader_config c = {0};
  c.batch = 3;
  c.train = 1;
  skd_augment_reference(&c.augment, 16);
  c.augment.scale_min = 0.75f;
  c.augment.scale_max = 1.5f;
  skd_loader *l;
  CK_OK(skd_loader_create(&l, d, &c, 2024));
  skd_batch direct = {0};
  int count[5] = {0};
  for (int64_t k = 0; k < 5; k++) { /* 15 samples: 3 epochs of 5 */
    const skd_batch *b;
    CK_OK(skd_loader_next(l, &b));
    ck_assert_ptr_nonnull(b);
    CK_OK(skd_loader_batch(d, &c, 2024, k, &direct));
    same_batch(b, &direct);
    ck_assert_int_eq(b->n, 3);
    ck_assert_int_eq(b->h, 16);
    for (int i = 0; i < 3; i++) count[b->index[i]]++;
    for (int p = 0; p < 3 * 16 * 16; p++) ck_assert(b->label[p] < 4 || b->label[p] == 255);
  }
  /* Each epoch is a permutation: 3 epochs see every sample 3 times. */
  for (int i = 0; i < 5; i++) ck_assert_int_eq(count[i], 3);
  skd_loader_free(l);

  /* Resuming at batch 4 continues the same stream. */
  c.first_batch = 4;
  CK_OK(skd_loader_create(&l, d, &c, 2024));
  const skd_batch *b;
  CK_OK(skd_loader_next(l, &b));
  CK_OK(skd_loader_batch(d, &c, 2024, 4, &direct));
  same_batch(b, &direct);
  skd_loader_free(l);
  /* A different seed gives a different stream. */
  skd_batch other = {0};
  CK_OK(skd_loader_batch(d, &c, 2025, 4, &other));
  ck_assert(memcmp(other.image, direct.image, 3 * 3 * 16 * 16 * sizeof(float)) != 0);
  skd_batch_free(&other);
  skd_batch_free(&direct);
  c.batch = 0;
  expect_error(skd_loader_create(&l, d, &c, 1), SKD_EINVAL, "batch 0", NULL, NULL);
  c.batch = 1;
  c.augment.normalize.std[1] = 0.0f;
  expect_error(skd_loader_create(&l, d, &c, 1), SKD_EINVAL, "std[1] = 0 must be positive", NULL, NULL);
  skd_dataset_free(d);
}
END_TEST

START_TEST(loader_eval) {
  write_dataset(5, 1, -1);
  skd_label_map m = preset("generic", 4);
  skd_dataset *d;
  CK_OK(skd_dataset_open(&d, tmp_path("ld.txt"), NULL, &m));
  skd_loader_config c = {0};
  c.batch = 2;
  skd_normalize_imagenet(&c.augment.normalize);
  skd_loader *l;
  CK_OK(skd_loader_create(&l, d, &c, 1));
  skd_batch direct = {0};
  const skd_batch *b;
  for (int k = 0; k < 3; k++) {
    CK_OK(skd_loader_next(l, &b));
    ck_assert_ptr_nonnull(b);
    CK_OK(skd_loader_batch(d, &c, 1, k, &direct));
    same_batch(b, &direct);
    ck_assert_int_eq(b->n, k < 2 ? 2 : 1); /* the last batch is short */
    ck_assert_int_eq(b->w, 20);
    ck_assert_int_eq(b->index[0], 2 * k);
  }
  CK_OK(skd_loader_next(l, &b));
  ck_assert_ptr_null(b);
  CK_OK(skd_loader_next(l, &b));
  ck_assert_ptr_null(b);
  skd_loader_free(l);
  /* Whole images, exactly the normalised sample. */
  skd_sample s;
  CK_OK(skd_dataset_read(d, 4, &s));
  float *ref = host_alloc(3 * 20 * 14);
  uint8_t rl[20 * 14];
  skd_normalize_sample(&s, &c.augment.normalize, ref, rl);
  ck_assert_int_eq(memcmp(ref, direct.image, sizeof(float) * 3 * 20 * 14), 0);
  ck_assert_int_eq(memcmp(rl, direct.label, sizeof rl), 0);
  skd_sample_free(&s);
  skd_batch_free(&direct);
  skd_dataset_free(d);

  /* Unequal sizes in one evaluation batch are refused; batch 1 works. */
  write_dataset(3, 0, -1);
  CK_OK(skd_dataset_open(&d, tmp_path("ld.txt"), NULL, &m));
  CK_OK(skd_loader_create(&l, d, &c, 1));
  expect_error(skd_loader_next(l, &b), SKD_EINVAL, "ld.txt:2: evaluation batch of 2 needs equal image sizes",
               "use batch 1", NULL);
  skd_loader_free(l);
  c.batch = 1;
  CK_OK(skd_loader_create(&l, d, &c, 1));
  for (int k = 0; k < 3; k++) {
    CK_OK(skd_loader_next(l, &b));
    ck_assert_int_eq(b->w, 16 + 3 * k);
  }
  skd_loader_free(l);
  skd_dataset_free(d);
}
END_TEST

/* The worker's error comes back from next() with its message, every time. */
START_TEST(loader_error) {
  write_dataset(4, 1, 2);
  skd_label_map m = preset("generic", 4);
  skd_dataset *d;
  CK_OK(skd_dataset_open(&d, tmp_path("ld.txt"), NULL, &m));
  skd_loader_config c = {0};
  c.batch = 1;
  skd_normalize_reference(&c.augment.normalize);
  skd_loader *l;
  CK_OK(skd_loader_create(&l, d, &c, 1));
  const skd_batch *b;
  CK_OK(skd_loader_next(l, &b));
  CK_OK(skd_loader_next(l, &b));
  for (int again = 0; again < 2; again++) {
    expect_error(skd_loader_next(l, &b), SKD_EFORMAT, "ld.txt:3: label", "l2.png", "value 77 at pixel (x=1, y=1)");
    ck_assert_ptr_null(b);
  }
  skd_loader_free(l);
  /* Freeing a loader whose worker is still ahead is fine too. */
  c.train = 1;
  skd_augment_reference(&c.augment, 8);
  CK_OK(skd_loader_create(&l, d, &c, 1));
  skd_loader_free(l);
  skd_dataset_free(d);
}
END_TEST

int main(void) {
  Suite *s = suite_create("data");
  TCase *tc = support_tcase_host("data");
  support_add_tmpdir(tc);
  tcase_add_test(tc, list_parsing);
  tcase_add_test(tc, unlabeled_lists);
  tcase_add_test(tc, presets);
  tcase_add_test(tc, preset_decoding);
  tcase_add_test(tc, decode_errors);
  tcase_add_test(tc, normalisation);
  tcase_add_test(tc, crop_pad);
  tcase_add_test(tc, scale);
  tcase_add_test(tc, mirror);
  tcase_add_test(tc, augment_determinism);
  tcase_add_test(tc, loader_train);
  tcase_add_test(tc, loader_eval);
  tcase_add_test(tc, loader_error);
  suite_add_tcase(s, tc);
  return support_main_host(s);
}
