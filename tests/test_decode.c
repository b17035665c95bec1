/* Strict image decoding (src/data/image_decode.c) through the public API:
 * PNGs written here with libpng in every colour type that matters (grey,
 * 16-bit, paletted images and labels) decode as expected, and damaged files
 * (cut zlib stream in IDAT, bad chunk CRCs, no IEND, truncated or corrupt
 * JPEG, short PPM) are errors naming the list line and the file. Host only. */
#include <stdint.h>
#include <stdlib.h>

#include <png.h>
#include <stb/stb_image_write.h>

#include "support.h"

/* ---- Writing test files ------------------------------------------------------ */

typedef struct membuf {
  uint8_t *p;
  size_t n, cap;
} membuf;

static void mem_write(png_structp png, png_bytep data, size_t n) {
  membuf *m = png_get_io_ptr(png);
  if (m->n + n > m->cap) {
    m->cap = 2 * (m->n + n);
    m->p = realloc(m->p, m->cap);
    ck_assert(m->p != NULL);
  }
  memcpy(m->p + m->n, data, n);
  m->n += n;
}

static void mem_flush(png_structp png) { (void)png; }

/* A PNG in memory: w x h, `type`/`depth` as libpng names them, rows packed
 * as libpng expects them (16-bit samples big-endian), optional palette and a
 * tEXt chunk (so that an ancillary chunk can be damaged). */
static membuf png_encode(int w, int h, int type, int depth, const uint8_t *px, size_t stride, const png_color *pal,
                         int npal) {
  membuf m = {NULL, 0, 0};
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png_create_info_struct(png);
  ck_assert(png && info);
  ck_assert(setjmp(png_jmpbuf(png)) == 0);
  png_set_write_fn(png, &m, mem_write, mem_flush);
  png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, type, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (pal) png_set_PLTE(png, info, pal, npal);
  png_text t = {.compression = PNG_TEXT_COMPRESSION_NONE, .key = "Comment", .text = "skd-cl test"};
  png_set_text(png, info, &t, 1);
  png_write_info(png, info);
  for (int y = 0; y < h; y++) png_write_row(png, px + (size_t)y * stride);
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  return m;
}

static void write_bytes(const char *rel, const uint8_t *p, size_t n) {
  FILE *f = fopen(tmp_path(rel), "wb");
  ck_assert(f != NULL);
  ck_assert_uint_eq(fwrite(p, 1, n, f), n);
  ck_assert_int_eq(fclose(f), 0);
}

static void write_text(const char *rel, const char *text) { write_bytes(rel, (const uint8_t *)text, strlen(text)); }

static uint32_t crc32_of(const uint8_t *p, size_t n) { /* the PNG chunk CRC, bit by bit */
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return c ^ 0xFFFFFFFFu;
}

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (24 - 8 * i));
}

/* Offset of the first chunk of that type (its length field). */
static size_t find_chunk(const membuf *m, const char *type) {
  for (size_t o = 8; o + 12 <= m->n; o += 12 + be32(m->p + o))
    if (memcmp(m->p + o + 4, type, 4) == 0) return o;
  ck_abort_msg("no %s chunk", type);
  return 0;
}

/* Noise compresses badly, so the IDAT stream is long enough to cut. */
static void noise(uint8_t *p, size_t n, uint32_t seed) {
  for (size_t i = 0; i < n; i++) {
    seed = seed * 1664525u + 1013904223u;
    p[i] = (uint8_t)(seed >> 24);
  }
}

static void expect_error(skd_status st, const char *a, const char *b, const char *c) {
  const char *msg = skd_error_last();
  ck_assert_msg(st == SKD_EFORMAT, "expected SKD_EFORMAT, got %s: %s", skd_status_name(st), msg);
  const char *parts[3] = {a, b, c};
  for (int i = 0; i < 3; i++)
    if (parts[i]) ck_assert_msg(strstr(msg, parts[i]) != NULL, "message lacks '%s': %s", parts[i], msg);
}

static skd_dataset *open_list(const char *rel, const char *text, const char *preset, int classes) {
  write_text(rel, text);
  skd_label_map m;
  CK_OK(skd_label_map_preset(&m, preset, classes));
  skd_dataset *d = NULL;
  CK_OK(skd_dataset_open(&d, tmp_path(rel), NULL, &m));
  return d;
}

/* ---- Colour types ------------------------------------------------------------ */

START_TEST(grey_and_16bit_images) {
  uint8_t g[5 * 3];
  noise(g, sizeof g, 1);
  membuf m = png_encode(5, 3, PNG_COLOR_TYPE_GRAY, 8, g, 5, NULL, 0);
  write_bytes("grey.png", m.p, m.n);
  free(m.p);
  uint8_t *rgb = NULL;
  int h = 0, w = 0;
  CK_OK(skd_image_read(tmp_path("grey.png"), &rgb, &h, &w));
  ck_assert_int_eq(w, 5);
  ck_assert_int_eq(h, 3);
  for (int i = 0; i < 15; i++)
    for (int c = 0; c < 3; c++) ck_assert_int_eq(rgb[3 * i + c], g[i]);
  free(rgb);

  /* 16-bit RGB with alpha: the high byte of each sample, alpha dropped. */
  uint8_t px16[4 * 2 * 8];
  noise(px16, sizeof px16, 2);
  m = png_encode(4, 2, PNG_COLOR_TYPE_RGB_ALPHA, 16, px16, 4 * 8, NULL, 0);
  write_bytes("rgba16.png", m.p, m.n);
  free(m.p);
  CK_OK(skd_image_read(tmp_path("rgba16.png"), &rgb, &h, &w));
  ck_assert_int_eq(w * h, 8);
  for (int i = 0; i < 8; i++)
    for (int c = 0; c < 3; c++) ck_assert_int_eq(rgb[3 * i + c], px16[8 * i + 2 * c]);
  free(rgb);

  /* A 16-bit label is refused, naming the reason. */
  uint8_t lab16[4 * 2 * 2] = {0};
  m = png_encode(4, 2, PNG_COLOR_TYPE_GRAY, 16, lab16, 8, NULL, 0);
  write_bytes("lab16.png", m.p, m.n);
  free(m.p);
  uint8_t img[4 * 2 * 3] = {0};
  m = png_encode(4, 2, PNG_COLOR_TYPE_RGB, 8, img, 12, NULL, 0);
  write_bytes("img42.png", m.p, m.n);
  free(m.p);
  skd_dataset *d = open_list("l16.txt", "img42.png lab16.png\n", "generic", 5);
  skd_sample s;
  expect_error(skd_dataset_read(d, 0, &s), "l16.txt:1: cannot decode label", "lab16.png", "16 bits per channel");
  skd_dataset_free(d);
}
END_TEST

START_TEST(paletted) {
  /* A 256-entry palette whose colours are not the indices (nor VOC's). */
  png_color pal[256];
  for (int i = 0; i < 256; i++) pal[i] = (png_color){(png_byte)(255 - i), (png_byte)(i * 7), (png_byte)(i ^ 0x5A)};
  const uint8_t idx[6] = {0, 1, 15, 255, 20, 7};
  membuf m = png_encode(3, 2, PNG_COLOR_TYPE_PALETTE, 8, idx, 3, pal, 256);
  write_bytes("pal.png", m.p, m.n);
  free(m.p);

  /* As an image: the palette's colours. */
  uint8_t *rgb = NULL;
  int h = 0, w = 0;
  CK_OK(skd_image_read(tmp_path("pal.png"), &rgb, &h, &w));
  ck_assert_int_eq(w * h, 6);
  for (int i = 0; i < 6; i++) {
    ck_assert_int_eq(rgb[3 * i], pal[idx[i]].red);
    ck_assert_int_eq(rgb[3 * i + 1], pal[idx[i]].green);
    ck_assert_int_eq(rgb[3 * i + 2], pal[idx[i]].blue);
  }
  free(rgb);

  /* As a VOC label: the indices themselves (255 = boundary, ignored). */
  uint8_t img[3 * 2 * 3] = {0};
  m = png_encode(3, 2, PNG_COLOR_TYPE_RGB, 8, img, 9, NULL, 0);
  write_bytes("img32.png", m.p, m.n);
  free(m.p);
  skd_dataset *d = open_list("voc.txt", "img32.png pal.png\n", "voc", 0);
  skd_sample s;
  CK_OK(skd_dataset_read(d, 0, &s));
  for (int i = 0; i < 6; i++) ck_assert_int_eq(s.label[i], idx[i]);
  skd_sample_free(&s);
  skd_dataset_free(d);

  /* 4-bit indices are unpacked, not scaled; index 9 is outside 5 classes. */
  const uint8_t packed[2 * 2] = {0x01, 0x20, 0x34, 0x90}; /* rows: 0 1 2 / 3 4 9 (last nibble padding) */
  m = png_encode(3, 2, PNG_COLOR_TYPE_PALETTE, 4, packed, 2, pal, 16);
  write_bytes("pal4.png", m.p, m.n);
  free(m.p);
  d = open_list("p4.txt", "img32.png pal4.png\n", "generic", 10);
  CK_OK(skd_dataset_read(d, 0, &s));
  const uint8_t want4[6] = {0, 1, 2, 3, 4, 9};
  for (int i = 0; i < 6; i++) ck_assert_int_eq(s.label[i], want4[i]);
  skd_sample_free(&s);
  skd_dataset_free(d);
  d = open_list("p4b.txt", "img32.png pal4.png\n", "generic", 5);
  expect_error(skd_dataset_read(d, 0, &s), "p4b.txt:1: label", "value 9 at pixel (x=2, y=1)", NULL);
  skd_dataset_free(d);
}
END_TEST

/* ---- Damaged PNGs ------------------------------------------------------------- */

START_TEST(damaged_png) {
  enum { W = 48, H = 40 };
  uint8_t *px = malloc(W * H * 3);
  ck_assert(px != NULL);
  noise(px, W * H * 3, 3);
  membuf good = png_encode(W, H, PNG_COLOR_TYPE_RGB, 8, px, W * 3, NULL, 0);
  write_bytes("good.png", good.p, good.n);
  uint8_t lab[W * H] = {0};
  membuf lm = png_encode(W, H, PNG_COLOR_TYPE_GRAY, 8, lab, W, NULL, 0);
  write_bytes("lab.png", lm.p, lm.n);
  free(lm.p);

  /* IDAT whose zlib stream is cut to half, with a valid CRC and IEND intact. */
  size_t o = find_chunk(&good, "IDAT");
  uint32_t len = be32(good.p + o), half = len / 2;
  membuf cut = {malloc(good.n), 0, good.n};
  memcpy(cut.p, good.p, o + 8 + half);
  put_be32(cut.p + o, half);
  put_be32(cut.p + o + 8 + half, crc32_of(cut.p + o + 4, 4 + half));
  size_t rest = o + 12 + len;
  memcpy(cut.p + o + 12 + half, good.p + rest, good.n - rest);
  cut.n = good.n - (len - half);
  write_bytes("cut_idat.png", cut.p, cut.n);
  free(cut.p);

  membuf bad = {malloc(good.n), good.n, good.n};
  memcpy(bad.p, good.p, good.n);
  bad.p[o + 8 + len] ^= 0x01; /* IDAT's CRC */
  write_bytes("crc_idat.png", bad.p, bad.n);
  memcpy(bad.p, good.p, good.n);
  bad.p[o + 8 + len / 3] ^= 0x10; /* a data byte; the CRC no longer matches */
  write_bytes("flip_idat.png", bad.p, bad.n);
  memcpy(bad.p, good.p, good.n);
  size_t t = find_chunk(&good, "tEXt");
  bad.p[t + 8] ^= 0x20; /* an ancillary chunk's byte: still damage */
  write_bytes("crc_text.png", bad.p, bad.n);
  write_bytes("no_iend.png", good.p, good.n - 12);
  write_bytes("half.png", good.p, good.n / 2);
  free(bad.p);
  free(good.p);
  free(px);

  skd_dataset *d = open_list("list.txt",
                             "good.png lab.png\n"
                             "cut_idat.png lab.png\n"
                             "crc_idat.png lab.png\n"
                             "flip_idat.png lab.png\n"
                             "crc_text.png lab.png\n"
                             "no_iend.png lab.png\n"
                             "half.png lab.png\n"
                             "good.png cut_idat.png\n",
                             "generic", 5);
  skd_sample s;
  CK_OK(skd_dataset_read(d, 0, &s));
  skd_sample_free(&s);
  const char *names[6] = {"cut_idat.png", "crc_idat.png", "flip_idat.png", "crc_text.png", "no_iend.png", "half.png"};
  for (int i = 0; i < 6; i++) {
    char where[64];
    snprintf(where, sizeof where, "list.txt:%d: cannot decode image", i + 2);
    expect_error(skd_dataset_read(d, i + 1, &s), where, names[i], NULL);
    ck_assert(s.rgb == NULL && s.label == NULL);
  }
  expect_error(skd_dataset_read(d, 7, &s), "list.txt:8: cannot decode label", "cut_idat.png", NULL);
  skd_dataset_free(d);
  uint8_t *rgb = (uint8_t *)1;
  int h = 1, w = 1;
  expect_error(skd_image_read(tmp_path("no_iend.png"), &rgb, &h, &w), "cannot decode image", "no_iend.png", NULL);
  ck_assert(rgb == NULL && h == 0 && w == 0);
}
END_TEST

/* ---- JPEG --------------------------------------------------------------------- */

static membuf file_bytes(const char *rel) {
  FILE *f = fopen(tmp_path(rel), "rb");
  ck_assert(f != NULL);
  membuf m = {malloc(1 << 20), 0, 1 << 20};
  m.n = fread(m.p, 1, m.cap, f);
  fclose(f);
  return m;
}

START_TEST(damaged_jpeg) {
  enum { W = 64, H = 48 };
  uint8_t *px = malloc(W * H * 3);
  ck_assert(px != NULL);
  noise(px, W * H * 3, 4);
  ck_assert(stbi_write_jpg(tmp_path("ok.jpg"), W, H, 3, px, 90));
  free(px);
  membuf j = file_bytes("ok.jpg");
  ck_assert(j.n > 1000);
  write_bytes("short.jpg", j.p, j.n * 6 / 10);
  write_bytes("no_eoi.jpg", j.p, j.n - 2);
  /* An end-of-image marker in the middle of the entropy-coded data. */
  j.p[j.n / 2] = 0xFF;
  j.p[j.n / 2 + 1] = 0xD9;
  write_bytes("eoi_early.jpg", j.p, j.n);
  /* A restart marker where none may be. */
  j.p[j.n / 2] = 0xFF;
  j.p[j.n / 2 + 1] = 0xD3;
  write_bytes("rst.jpg", j.p, j.n);
  free(j.p);

  uint8_t *rgb = NULL;
  int h = 0, w = 0;
  CK_OK(skd_image_read(tmp_path("ok.jpg"), &rgb, &h, &w));
  ck_assert_int_eq(w, W);
  ck_assert_int_eq(h, H);
  free(rgb);
  const char *bad[4] = {"short.jpg", "no_eoi.jpg", "eoi_early.jpg", "rst.jpg"};
  for (int i = 0; i < 4; i++) {
    expect_error(skd_image_read(tmp_path(bad[i]), &rgb, &h, &w), "cannot decode image", bad[i], NULL);
    ck_assert(rgb == NULL);
  }
  uint8_t lab[W * H] = {0};
  membuf lm = png_encode(W, H, PNG_COLOR_TYPE_GRAY, 8, lab, W, NULL, 0);
  write_bytes("lab.png", lm.p, lm.n);
  free(lm.p);
  skd_dataset *d = open_list("j.txt", "ok.jpg lab.png\nshort.jpg lab.png\n", "generic", 5);
  skd_sample s;
  CK_OK(skd_dataset_read(d, 0, &s));
  skd_sample_free(&s);
  expect_error(skd_dataset_read(d, 1, &s), "j.txt:2: cannot decode image", "short.jpg", NULL);
  skd_dataset_free(d);
}
END_TEST

START_TEST(not_an_image) {
  write_text("text.png", "GIF89a: not PNG, JPEG or PPM");
  uint8_t *rgb = NULL;
  int h = 0, w = 0;
  expect_error(skd_image_read(tmp_path("text.png"), &rgb, &h, &w), "text.png", "not a PNG, JPEG or binary PPM/PGM",
               NULL);
  write_bytes("empty.png", (const uint8_t *)"", 0);
  expect_error(skd_image_read(tmp_path("empty.png"), &rgb, &h, &w), "empty.png", "not a PNG, JPEG or binary PPM/PGM",
               NULL);
}
END_TEST

START_TEST(pnm) {
  const char p6[] = "P6\n# a comment\n2 1\n255\n" "\x01\x02\x03\xfd\xfe\xff";
  write_bytes("ok.ppm", (const uint8_t *)p6, sizeof p6 - 1);
  const char p5[] = "P5 3 1 255\n" "\x00\x80\xff";
  write_bytes("ok.pgm", (const uint8_t *)p5, sizeof p5 - 1);
  uint8_t *rgb = NULL;
  int h = 0, w = 0;
  CK_OK(skd_image_read(tmp_path("ok.ppm"), &rgb, &h, &w));
  ck_assert_int_eq(w, 2);
  ck_assert_int_eq(h, 1);
  ck_assert_int_eq(memcmp(rgb, "\x01\x02\x03\xfd\xfe\xff", 6), 0);
  free(rgb);
  CK_OK(skd_image_read(tmp_path("ok.pgm"), &rgb, &h, &w));
  ck_assert_int_eq(w * h, 3);
  ck_assert_int_eq(memcmp(rgb, "\x00\x00\x00\x80\x80\x80\xff\xff\xff", 9), 0);
  free(rgb);
  write_bytes("short.ppm", (const uint8_t *)p6, sizeof p6 - 2);
  expect_error(skd_image_read(tmp_path("short.ppm"), &rgb, &h, &w), "short.ppm",
               "5 bytes of pixels where 2x1 needs 6", "truncated");
  const char p16[] = "P6 1 1 65535\n" "\x00\x01\x00\x02\x00\x03";
  write_bytes("deep.ppm", (const uint8_t *)p16, sizeof p16 - 1);
  expect_error(skd_image_read(tmp_path("deep.ppm"), &rgb, &h, &w), "deep.ppm", "maximum value 65535",
               NULL);
  write_bytes("nohdr.ppm", (const uint8_t *)"P6 12", 5);
  expect_error(skd_image_read(tmp_path("nohdr.ppm"), &rgb, &h, &w), "nohdr.ppm", "PNM header", NULL);
  ck_assert(rgb == NULL);
}
END_TEST

int main(void) {
  Suite *s = suite_create("decode");
  TCase *tc = support_tcase_host("decode");
  support_add_tmpdir(tc);
  tcase_add_test(tc, grey_and_16bit_images);
  tcase_add_test(tc, paletted);
  tcase_add_test(tc, damaged_png);
  tcase_add_test(tc, damaged_jpeg);
  tcase_add_test(tc, not_an_image);
  tcase_add_test(tc, pnm);
  suite_add_tcase(s, tc);
  return support_main_host(s);
}
