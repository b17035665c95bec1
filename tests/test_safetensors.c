/* safetensors: round trips (metadata, 0-d and empty tensors, special
 * values), deterministic bytes, a file written byte for byte by the spec,
 * F16/BF16/F64/integer conversion, every kind of bad file, and atomic
 * writes that fail before, during and after writing. Needs no device. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <utime.h>
#include <unistd.h>

#include "support.h"
#include "skd/io/fs.h"

/* ---- a temporary directory per test ---- */

static char dir[64];

static void dir_setup(void) {
  snprintf(dir, sizeof dir, "/tmp/skd-safetensors-XXXXXX");
  ck_assert(mkdtemp(dir) != NULL);
}

static void remove_tree(const char *path) {
  struct stat sb;
  if (lstat(path, &sb) != 0) return;
  if (S_ISDIR(sb.st_mode)) {
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d))) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
      char sub[1024];
      snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
      remove_tree(sub);
    }
    if (d) closedir(d);
    rmdir(path);
  } else {
    unlink(path);
  }
}

static void dir_teardown(void) { remove_tree(dir); }

/* dir/name in one of a few rotating buffers. */
static const char *in_dir(const char *name) {
  static char bufs[4][1024];
  static int next;
  char *b = bufs[next++ % 4];
  snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
  return b;
}

/* Number of entries in directory d; the first one's name in first (if given). */
static int dir_entries(const char *d, char *first, size_t size) {
  DIR *h = opendir(d);
  ck_assert(h != NULL);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(h))) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    if (n++ == 0 && first) snprintf(first, size, "%s", e->d_name);
  }
  closedir(h);
  return n;
}

static void write_bytes(const char *path, const void *p, size_t n) {
  FILE *fp = fopen(path, "wb");
  ck_assert(fp != NULL);
  ck_assert(fwrite(p, 1, n, fp) == n);
  ck_assert(fclose(fp) == 0);
}

/* Whole file into a malloc'd buffer (freed by the caller). */
static unsigned char *read_bytes(const char *path, size_t *n) {
  FILE *fp = fopen(path, "rb");
  ck_assert_msg(fp != NULL, "cannot open %s", path);
  fseek(fp, 0, SEEK_END);
  long size = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  unsigned char *p = malloc((size_t)size + 1);
  ck_assert(p && fread(p, 1, (size_t)size, fp) == (size_t)size);
  fclose(fp);
  *n = (size_t)size;
  return p;
}

/* A file by hand: u64 length of header (as given, unpadded), header, data. */
static void write_st(const char *path, const char *header, const void *data, size_t ndata) {
  size_t len = strlen(header);
  unsigned char *buf = malloc(8 + len + ndata + 1);
  ck_assert(buf != NULL);
  for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)len >> (8 * i));
  memcpy(buf + 8, header, len);
  if (ndata) memcpy(buf + 8 + len, data, ndata);
  write_bytes(path, buf, 8 + len + ndata);
  free(buf);
}

static void expect_message(const char *part) {
  ck_assert_msg(strstr(skd_error_last(), part) != NULL, "message '%s' lacks '%s'", skd_error_last(), part);
}

/* open(path) fails with status, and the message names the file and says part. */
static void expect_open_fails(const char *path, skd_status status, const char *part) {
  skd_safetensors *f = (skd_safetensors *)&f; /* must be reset to NULL */
  skd_status st = skd_safetensors_open(&f, path);
  ck_assert_msg(st == status, "open gave %s, expected %s (%s)", skd_status_name(st), skd_status_name(status),
                skd_error_last());
  ck_assert(f == NULL);
  expect_message(path);
  expect_message(part);
}

static void add(skd_safetensors_writer *w, const char *name, int ndim, const int64_t *shape, const float *data) {
  CK_OK(skd_safetensors_writer_add(w, name, ndim, shape, data));
}

/* ---- round trips ---- */

START_TEST(round_trip) {
  float special[6] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e-45f /* subnormal */};
  const int64_t s_conv[4] = {4, 3, 3, 3}, s_mean[1] = {4}, s_empty[2] = {0, 5}, s_special[1] = {6};
  float *conv = host_random(108, -1.0f, 1.0f), *mean = host_random(4, -1.0f, 1.0f), scalar = 0.125f;
  skd_safetensors_writer *w;
  CK_OK(skd_safetensors_writer_create(&w));
  add(w, "layer1.0.conv1.weight", 4, s_conv, conv);
  add(w, "bn1.running_mean", 1, s_mean, mean);
  add(w, "scalar", 0, NULL, &scalar);
  add(w, "empty", 2, s_empty, NULL);
  add(w, "special", 1, s_special, special);
  CK_OK(skd_safetensors_writer_set_metadata(w, "model", "pspnet_r18"));
  CK_OK(skd_safetensors_writer_set_metadata(w, "epoch", "2"));
  CK_OK(skd_safetensors_writer_set_metadata(w, "epoch", "3")); /* replaces */
  CK_OK(skd_safetensors_writer_set_metadata(w, "note", "na\xc3\xafve \"quoted\"\n\ttab"));
  const char *path = in_dir("ckpt.safetensors");
  CK_OK(skd_safetensors_write(w, path));
  skd_safetensors_writer_free(w);
  ck_assert_int_eq(dir_entries(dir, NULL, 0), 1); /* no temporary file left */

  skd_safetensors *f;
  CK_OK(skd_safetensors_open(&f, path));
  ck_assert_int_eq(skd_safetensors_count(f), 5);
  const char *sorted[5] = {"bn1.running_mean", "empty", "layer1.0.conv1.weight", "scalar", "special"};
  for (int i = 0; i < 5; i++) {
    ck_assert_str_eq(skd_safetensors_entry_at(f, i)->name, sorted[i]);
    ck_assert_int_eq(skd_safetensors_find(f, sorted[i]), i);
    ck_assert(skd_safetensors_entry_at(f, i)->dtype == SKD_DTYPE_F32);
  }
  ck_assert_int_eq(skd_safetensors_find(f, "missing"), -1);
  const skd_safetensors_entry *e = skd_safetensors_entry_at(f, skd_safetensors_find(f, "layer1.0.conv1.weight"));
  ck_assert_int_eq(e->ndim, 4);
  for (int d = 0; d < 4; d++) ck_assert_int_eq(e->shape[d], s_conv[d]);
  ck_assert_uint_eq(e->numel, 108);
  ck_assert_uint_eq(e->end - e->begin, 432);

  float got[108];
  CK_OK(skd_safetensors_read_f32(f, skd_safetensors_find(f, "layer1.0.conv1.weight"), got, 108));
  ck_assert(memcmp(got, conv, sizeof got) == 0);
  CK_OK(skd_safetensors_read_f32(f, skd_safetensors_find(f, "bn1.running_mean"), got, 4));
  ck_assert(memcmp(got, mean, 4 * sizeof(float)) == 0);
  e = skd_safetensors_entry_at(f, skd_safetensors_find(f, "scalar"));
  ck_assert_int_eq(e->ndim, 0);
  ck_assert_uint_eq(e->numel, 1);
  CK_OK(skd_safetensors_read_f32(f, skd_safetensors_find(f, "scalar"), got, 1));
  ck_assert(got[0] == 0.125f);
  e = skd_safetensors_entry_at(f, skd_safetensors_find(f, "empty"));
  ck_assert_int_eq(e->ndim, 2);
  ck_assert_uint_eq(e->numel, 0);
  ck_assert_uint_eq(e->begin, e->end);
  CK_OK(skd_safetensors_read_f32(f, skd_safetensors_find(f, "empty"), got, 0));
  CK_OK(skd_safetensors_read_f32(f, skd_safetensors_find(f, "special"), got, 6));
  ck_assert(memcmp(got, special, sizeof special) == 0); /* bit for bit: -0, NaN, subnormal */

  ck_assert_str_eq(skd_safetensors_metadata(f, "model"), "pspnet_r18");
  ck_assert_str_eq(skd_safetensors_metadata(f, "epoch"), "3");
  ck_assert_str_eq(skd_safetensors_metadata(f, "note"), "na\xc3\xafve \"quoted\"\n\ttab");
  ck_assert(skd_safetensors_metadata(f, "missing") == NULL);
  ck_assert_int_eq(skd_safetensors_metadata_count(f), 3);
  const char *k, *v;
  skd_safetensors_metadata_at(f, 0, &k, &v);
  ck_assert_str_eq(k, "epoch");
  skd_safetensors_metadata_at(f, 2, &k, &v);
  ck_assert_str_eq(k, "note");

  /* Caller mistakes. */
  ck_assert_int_eq(skd_safetensors_read_f32(f, 0, got, 5), SKD_EINVAL);
  expect_message("tensor 'bn1.running_mean': the buffer holds 5 values, the tensor has 4");
  ck_assert_int_eq(skd_safetensors_read_f32(f, 7, got, 4), SKD_EINVAL);
  ck_assert_int_eq(skd_safetensors_read_i64(f, 0, (int64_t *)got, 4), SKD_EFORMAT);
  expect_message("dtype F32 cannot be read as integers");
  skd_safetensors_close(f);
}
END_TEST

START_TEST(empty_file_round_trip) {
  skd_safetensors_writer *w;
  CK_OK(skd_safetensors_writer_create(&w));
  const char *path = in_dir("empty.safetensors");
  CK_OK(skd_safetensors_write(w, path));
  skd_safetensors_writer_free(w);
  size_t n;
  unsigned char *bytes = read_bytes(path, &n);
  ck_assert_uint_eq(n, 16);
  ck_assert(memcmp(bytes, "\x08\0\0\0\0\0\0\0{}      ", 16) == 0);
  free(bytes);
  skd_safetensors *f;
  CK_OK(skd_safetensors_open(&f, path));
  ck_assert_int_eq(skd_safetensors_count(f), 0);
  ck_assert_int_eq(skd_safetensors_metadata_count(f), 0);
  ck_assert(skd_safetensors_metadata(f, "x") == NULL);
  ck_assert_int_eq(skd_safetensors_find(f, "x"), -1);
  skd_safetensors_close(f);
}
END_TEST

/* Same content in another order gives the same bytes; so does rewriting what was read. */
START_TEST(byte_identical_rewrite) {
  const int64_t sa[2] = {3, 5}, sb[1] = {7};
  float *a = host_random(15, -3.0f, 3.0f), *b = host_random(7, -3.0f, 3.0f);
  skd_safetensors_writer *w1, *w2, *w3;
  CK_OK(skd_safetensors_writer_create(&w1));
  add(w1, "a", 2, sa, a);
  add(w1, "b", 1, sb, b);
  CK_OK(skd_safetensors_writer_set_metadata(w1, "x", "1"));
  CK_OK(skd_safetensors_writer_set_metadata(w1, "y", "2"));
  CK_OK(skd_safetensors_write(w1, in_dir("one.safetensors")));
  CK_OK(skd_safetensors_writer_create(&w2));
  CK_OK(skd_safetensors_writer_set_metadata(w2, "y", "2"));
  add(w2, "b", 1, sb, b);
  CK_OK(skd_safetensors_writer_set_metadata(w2, "x", "1"));
  add(w2, "a", 2, sa, a);
  CK_OK(skd_safetensors_write(w2, in_dir("two.safetensors")));

  skd_safetensors *f;
  CK_OK(skd_safetensors_open(&f, in_dir("one.safetensors")));
  CK_OK(skd_safetensors_writer_create(&w3));
  for (int i = 0; i < skd_safetensors_count(f); i++) {
    const skd_safetensors_entry *e = skd_safetensors_entry_at(f, i);
    float *x = host_alloc(e->numel);
    CK_OK(skd_safetensors_read_f32(f, i, x, e->numel));
    add(w3, e->name, e->ndim, e->shape, x);
  }
  for (int i = 0; i < skd_safetensors_metadata_count(f); i++) {
    const char *k, *v;
    skd_safetensors_metadata_at(f, i, &k, &v);
    CK_OK(skd_safetensors_writer_set_metadata(w3, k, v));
  }
  skd_safetensors_close(f);
  CK_OK(skd_safetensors_write(w3, in_dir("three.safetensors")));
  /* Writing over an existing file replaces it. */
  CK_OK(skd_safetensors_write(w1, in_dir("two.safetensors")));
  CK_OK(skd_safetensors_write(w2, in_dir("two.safetensors")));
  skd_safetensors_writer_free(w1);
  skd_safetensors_writer_free(w2);
  skd_safetensors_writer_free(w3);

  size_t n1, n2, n3;
  unsigned char *b1 = read_bytes(in_dir("one.safetensors"), &n1), *b2 = read_bytes(in_dir("two.safetensors"), &n2),
                *b3 = read_bytes(in_dir("three.safetensors"), &n3);
  ck_assert(n1 == n2 && n1 == n3);
  ck_assert(memcmp(b1, b2, n1) == 0 && memcmp(b1, b3, n1) == 0);
  free(b1);
  free(b2);
  free(b3);
  ck_assert_int_eq(dir_entries(dir, NULL, 0), 3);
}
END_TEST

/* The writer's output against a file spelled out byte for byte from the
 * public spec (and identical to what the reference implementation writes
 * for these tensors: compact JSON, __metadata__ first, tensors sorted by
 * name, header padded with spaces to a multiple of 8). */
START_TEST(spec_bytes) {
  static const char header[] = "{\"__metadata__\":{\"format\":\"pt\"},"
                               "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                               "\"b\":{\"dtype\":\"F32\",\"shape\":[1,2],\"data_offsets\":[8,16]}}   ";
  static const unsigned char data[16] = {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0,  /* a = 1, -2 */
                                         0x00, 0x00, 0x00, 0x3f, 0x00, 0x00, 0x40, 0x40}; /* b = 0.5, 3 */
  unsigned char expected[8 + 144 + 16] = {144, 0, 0, 0, 0, 0, 0, 0};
  ck_assert_uint_eq(strlen(header), 144);
  memcpy(expected + 8, header, 144);
  memcpy(expected + 152, data, 16);

  const int64_t sa[1] = {2}, sb[2] = {1, 2};
  const float a[2] = {1.0f, -2.0f}, b[2] = {0.5f, 3.0f};
  skd_safetensors_writer *w;
  CK_OK(skd_safetensors_writer_create(&w));
  add(w, "b", 2, sb, b);
  add(w, "a", 1, sa, a);
  CK_OK(skd_safetensors_writer_set_metadata(w, "format", "pt"));
  CK_OK(skd_safetensors_write(w, in_dir("ours.safetensors")));
  skd_safetensors_writer_free(w);
  size_t n;
  unsigned char *ours = read_bytes(in_dir("ours.safetensors"), &n);
  ck_assert_uint_eq(n, sizeof expected);
  for (size_t i = 0; i < n; i++) ck_assert_msg(ours[i] == expected[i], "byte %zu differs", i);
  free(ours);

  /* Another valid spelling: pretty JSON, no padding, metadata last, data in
   * another order than the names. */
  const char *other = "{\n  \"b\": {\"data_offsets\": [0, 8], \"shape\": [1, 2], \"dtype\": \"F32\"},\n"
                      "  \"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 16]},\n"
                      "  \"__metadata__\": {\"format\": \"pt\"}\n}";
  unsigned char swapped[16];
  memcpy(swapped, data + 8, 8);
  memcpy(swapped + 8, data, 8);
  write_st(in_dir("other.safetensors"), other, swapped, 16);
  skd_safetensors *f;
  CK_OK(skd_safetensors_open(&f, in_dir("other.safetensors")));
  float got[2];
  CK_OK(skd_safetensors_read_f32(f, skd_safetensors_find(f, "a"), got, 2));
  ck_assert(got[0] == 1.0f && got[1] == -2.0f);
  CK_OK(skd_safetensors_read_f32(f, skd_safetensors_find(f, "b"), got, 2));
  ck_assert(got[0] == 0.5f && got[1] == 3.0f);
  ck_assert_str_eq(skd_safetensors_metadata(f, "format"), "pt");
  skd_safetensors_close(f);
}
END_TEST

/* ---- dtype conversion ---- */

START_TEST(dtype_conversion) {
  /* F16: 1, -2, 1/3 (rounded), 2^-24 (smallest subnormal), 65504, -0, inf, -inf, NaN */
  static const unsigned char f16[18] = {0x00, 0x3c, 0x00, 0xc0, 0x55, 0x35, 0x01, 0x00, 0xff,
                                        0x7b, 0x00, 0x80, 0x00, 0x7c, 0x00, 0xfc, 0x00, 0x7e};
  const float f16_want[9] = {1.0f, -2.0f, 0.333251953125f, 5.9604644775390625e-8f, 65504.0f,
                             -0.0f, INFINITY, -INFINITY, NAN};
  /* BF16: 1, -3, 3.140625, inf */
  static const unsigned char bf16[8] = {0x80, 0x3f, 0x40, 0xc0, 0x49, 0x40, 0x80, 0x7f};
  const float bf16_want[4] = {1.0f, -3.0f, 3.140625f, INFINITY};
  /* F64: 1.5, -1e-3 (rounded to float), 1e40 (overflows to inf) */
  const double f64_values[3] = {1.5, -1e-3, 1e40};
  const float f64_want[3] = {1.5f, -1e-3f, INFINITY};
  unsigned char data[256];
  size_t at = 0;
  memcpy(data + at, f16, 18), at += 18;
  memcpy(data + at, bf16, 8), at += 8;
  for (int i = 0; i < 3; i++) { /* little-endian by hand */
    uint64_t bits;
    memcpy(&bits, &f64_values[i], 8);
    for (int j = 0; j < 8; j++) data[at++] = (unsigned char)(bits >> (8 * j));
  }
  /* I64 42, -7 ("num_batches_tracked"); I32 -5; U8 200; BOOL 0, 1; I8 -128; U16 65535 */
  static const unsigned char ints[36] = {42, 0, 0, 0, 0, 0, 0, 0, 0xf9, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                         0xfb, 0xff, 0xff, 0xff, 200, 0, 1, 0x80, 0xff, 0xff,
                                         /* F8_E5M2 one byte, then U64 2^63 */ 0x3c, 0, 0, 0, 0, 0, 0, 0, 0, 0x80};
  memcpy(data + at, ints, 36), at += 36;
  ck_assert_uint_eq(at, 86);
  const char *header =
      "{\"h\":{\"dtype\":\"F16\",\"shape\":[9],\"data_offsets\":[0,18]},"
      "\"bf\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[18,26]},"
      "\"d\":{\"dtype\":\"F64\",\"shape\":[3],\"data_offsets\":[26,50]},"
      "\"bn1.num_batches_tracked\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[50,66]},"
      "\"i32\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[66,70]},"
      "\"u8\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[70,71]},"
      "\"flags\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[71,73]},"
      "\"i8\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[73,74]},"
      "\"u16\":{\"dtype\":\"U16\",\"shape\":[1],\"data_offsets\":[74,76]},"
      "\"f8\":{\"dtype\":\"F8_E5M2\",\"shape\":[1],\"data_offsets\":[76,77]},"
      "\"pad\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[77,78]},"
      "\"u64\":{\"dtype\":\"U64\",\"shape\":[1],\"data_offsets\":[78,86]}}";
  const char *path = in_dir("dtypes.safetensors");
  write_st(path, header, data, at);
  skd_safetensors *f;
  CK_OK(skd_safetensors_open(&f, path));
  float got[9];
  CK_OK(skd_safetensors_read_f32(f, skd_safetensors_find(f, "h"), got, 9));
  for (int i = 0; i < 8; i++) ck_assert_msg(got[i] == f16_want[i], "F16 %d: %g", i, got[i]);
  ck_assert(signbit(got[5]) && isnan(got[8]));
  ck_assert(skd_safetensors_entry_at(f, skd_safetensors_find(f, "bf"))->dtype == SKD_DTYPE_BF16);
  CK_OK(skd_safetensors_read_f32(f, skd_safetensors_find(f, "bf"), got, 4));
  for (int i = 0; i < 4; i++) ck_assert_msg(got[i] == bf16_want[i], "BF16 %d: %g", i, got[i]);
  CK_OK(skd_safetensors_read_f32(f, skd_safetensors_find(f, "d"), got, 3));
  for (int i = 0; i < 3; i++) ck_assert_msg(got[i] == f64_want[i], "F64 %d: %g", i, got[i]);

  int64_t iv[2];
  int nbt = skd_safetensors_find(f, "bn1.num_batches_tracked");
  ck_assert(skd_safetensors_entry_at(f, nbt)->dtype == SKD_DTYPE_I64);
  CK_OK(skd_safetensors_read_i64(f, nbt, iv, 2));
  ck_assert(iv[0] == 42 && iv[1] == -7);
  CK_OK(skd_safetensors_read_i64(f, skd_safetensors_find(f, "i32"), iv, 1));
  ck_assert(iv[0] == -5);
  CK_OK(skd_safetensors_read_i64(f, skd_safetensors_find(f, "u8"), iv, 1));
  ck_assert(iv[0] == 200);
  CK_OK(skd_safetensors_read_i64(f, skd_safetensors_find(f, "flags"), iv, 2));
  ck_assert(iv[0] == 0 && iv[1] == 1);
  CK_OK(skd_safetensors_read_i64(f, skd_safetensors_find(f, "i8"), iv, 1));
  ck_assert(iv[0] == -128);
  CK_OK(skd_safetensors_read_i64(f, skd_safetensors_find(f, "u16"), iv, 1));
  ck_assert(iv[0] == 65535);

  ck_assert_int_eq(skd_safetensors_read_f32(f, nbt, got, 2), SKD_EFORMAT);
  expect_message("tensor 'bn1.num_batches_tracked': dtype I64 cannot be read as float32");
  ck_assert_int_eq(skd_safetensors_read_f32(f, skd_safetensors_find(f, "f8"), got, 1), SKD_EFORMAT);
  expect_message("dtype F8_E5M2 cannot be read as float32");
  ck_assert_int_eq(skd_safetensors_read_i64(f, skd_safetensors_find(f, "u64"), iv, 1), SKD_EFORMAT);
  expect_message("tensor 'u64': a U64 value does not fit int64");
  skd_safetensors_close(f);
}
END_TEST

/* ---- bad files ---- */

/* A header (written with its exact length) and data_len zero bytes of data;
 * open must fail with SKD_EFORMAT and a message containing `part`. */
struct bad_case {
  const char *header;
  size_t data_len;
  const char *part;
};

#define T1(dtype, shape, offsets) "{\"a\":{\"dtype\":" dtype ",\"shape\":" shape ",\"data_offsets\":" offsets "}}"

static const struct bad_case bad_cases[] = {
    {"", 0, "header: not valid JSON"},
    {"{\"a\": [1, 2", 0, "header: not valid JSON"},
    {"{} xyz", 0, "header: unexpected bytes after the JSON object"},
    {"[1, 2, 3]", 0, "header: is not a JSON object"},
    {"\"text\"", 0, "header: is not a JSON object"},
    {"{\"a\": 5}", 0, "tensor 'a': is not a JSON object"},
    {"{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 'a': dtype is missing"},
    {T1("32", "[1]", "[0,4]"), 4, "tensor 'a': dtype is not a string"},
    {T1("\"F12\"", "[1]", "[0,4]"), 4, "tensor 'a': dtype 'F12' is not a safetensors dtype (expected one of BOOL"},
    {T1("\"f32\"", "[1]", "[0,4]"), 4, "tensor 'a': dtype 'f32' is not a safetensors dtype"},
    {"{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "tensor 'a': shape is missing"},
    {T1("\"F32\"", "4", "[0,16]"), 16, "tensor 'a': shape is not a list"},
    {T1("\"F32\"", "{\"n\":4}", "[0,16]"), 16, "tensor 'a': shape is not a list"},
    {T1("\"F32\"", "[2,-1]", "[0,8]"), 8, "tensor 'a': shape[1] is not a non-negative integer"},
    {T1("\"F32\"", "[1.5]", "[0,4]"), 4, "tensor 'a': shape[0] is not a non-negative integer"},
    {T1("\"F32\"", "[\"2\"]", "[0,8]"), 8, "tensor 'a': shape[0] is not a non-negative integer"},
    {T1("\"F32\"", "[1,1,1,1,1,1,1,1,1]", "[0,4]"), 4, "tensor 'a': shape has 9 dimensions, at most 8"},
    {T1("\"F32\"", "[4294967296,4294967296,4294967296]", "[0,4]"), 4, "tensor 'a': shape [4294967296, "},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "tensor 'a': data_offsets is missing"},
    {T1("\"F32\"", "[1]", "4"), 4, "tensor 'a': data_offsets is not a list of two non-negative integers"},
    {T1("\"F32\"", "[1]", "[0,4,8]"), 8, "tensor 'a': data_offsets is not a list of two"},
    {T1("\"F32\"", "[1]", "[0,\"4\"]"), 4, "tensor 'a': data_offsets is not a list of two"},
    {T1("\"F32\"", "[1]", "[-4,0]"), 4, "tensor 'a': data_offsets is not a list of two"},
    {T1("\"F32\"", "[1]", "[8,4]"), 8, "tensor 'a': data_offsets [8, 4] end before they begin"},
    {T1("\"F32\"", "[100]", "[0,400]"), 16, "tensor 'a': data_offsets [0, 400] go beyond the data area (16 bytes)"},
    {T1("\"F32\"", "[2,2]", "[0,12]"), 12,
     "tensor 'a': data_offsets [0, 12] do not match dtype F32 and shape [2, 2] (16 bytes)"},
    {T1("\"F16\"", "[3]", "[0,12]"), 12, "do not match dtype F16 and shape [3] (6 bytes)"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
     12, "tensor 'b': data_offsets [4, 12] overlap tensor 'a' [0, 8]"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}",
     8, "tensor 'e': data_offsets [4, 4] overlap tensor 'a' [0, 8]"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
     12, "header: data bytes [4, 8) belong to no tensor"},
    {T1("\"F32\"", "[1]", "[4,8]"), 8, "header: data bytes [0, 4) belong to no tensor"},
    {T1("\"F32\"", "[1]", "[0,4]"), 8, "header: data bytes [4, 8) belong to no tensor"},
    {"{}", 4, "header: data bytes [0, 4) belong to no tensor"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
     8, "tensor 'a': appears twice in the header"},
    {"{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
     "tensor 'a': field 'dtype' appears twice"},
    {"{\"__metadata__\":[1]}", 0, "header: __metadata__ is not a JSON object"},
    {"{\"__metadata__\":{\"epoch\":3}}", 0, "header: __metadata__ value of 'epoch' is not a string"},
    {"{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, "header: __metadata__ key 'k' appears twice"},
    {"{\"__metadata__\":{},\"__metadata__\":{}}", 0, "header: __metadata__ appears twice"},
};

START_TEST(bad_header) {
  const struct bad_case *c = &bad_cases[_i];
  char data[64] = {0};
  ck_assert(c->data_len <= sizeof data);
  const char *path = in_dir("bad.safetensors");
  write_st(path, c->header, data, c->data_len);
  expect_open_fails(path, SKD_EFORMAT, c->part);
}
END_TEST

START_TEST(bad_length_field) {
  const char *path = in_dir("short.safetensors");
  write_bytes(path, "", 0);
  expect_open_fails(path, SKD_EFORMAT, "header: the file has 0 bytes, too few for the 8-byte header length");
  write_bytes(path, "\x10\0\0\0\0", 5);
  expect_open_fails(path, SKD_EFORMAT, "header: the file has 5 bytes");
  /* Length 1000, but only 2 bytes follow. */
  write_bytes(path, "\xe8\x03\0\0\0\0\0\0{}", 10);
  expect_open_fails(path, SKD_EFORMAT, "header: length 1000 goes beyond the end of the file (10 bytes)");
  /* Length 2^40: refused before any allocation. */
  write_bytes(path, "\0\0\0\0\0\x01\0\0{}", 10);
  expect_open_fails(path, SKD_EFORMAT, "header: length 1099511627776 is over the limit of 100000000 bytes");
  /* Length 2^64 - 1. */
  write_bytes(path, "\xff\xff\xff\xff\xff\xff\xff\xff{}", 10);
  expect_open_fails(path, SKD_EFORMAT, "is over the limit");
}
END_TEST

START_TEST(unreadable_files) {
  expect_open_fails(in_dir("missing.safetensors"), SKD_EIO, "cannot open");
  expect_open_fails(dir, SKD_EIO, "is not a regular file");
  /* Data that vanished after open. */
  const char *path = in_dir("cut.safetensors");
  const int64_t s[1] = {1000};
  float *x = host_random(1000, -1.0f, 1.0f);
  skd_safetensors_writer *w;
  CK_OK(skd_safetensors_writer_create(&w));
  add(w, "x", 1, s, x);
  CK_OK(skd_safetensors_write(w, path));
  skd_safetensors_writer_free(w);
  skd_safetensors *f;
  CK_OK(skd_safetensors_open(&f, path));
  ck_assert(truncate(path, 200) == 0);
  ck_assert_int_eq(skd_safetensors_read_f32(f, 0, x, 1000), SKD_EIO);
  expect_message(path);
  expect_message("tensor 'x': cannot read its data");
  skd_safetensors_close(f);
}
END_TEST

/* ---- the writer's arguments and atomic writes ---- */

START_TEST(writer_arguments) {
  skd_safetensors_writer *w;
  CK_OK(skd_safetensors_writer_create(&w));
  const int64_t s[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, neg[2] = {2, -1};
  float x[1] = {1.0f};
  add(w, "a", 1, s, x);
  ck_assert_int_eq(skd_safetensors_writer_add(w, "a", 1, s, x), SKD_EINVAL);
  expect_message("tensor 'a' added twice");
  ck_assert_int_eq(skd_safetensors_writer_add(w, "__metadata__", 1, s, x), SKD_EINVAL);
  expect_message("'__metadata__' is reserved");
  ck_assert_int_eq(skd_safetensors_writer_add(w, "b", 9, s, x), SKD_EINVAL);
  expect_message("tensor 'b': ndim 9");
  ck_assert_int_eq(skd_safetensors_writer_add(w, "b", 2, neg, x), SKD_EINVAL);
  expect_message("tensor 'b': shape[1] is negative");
  ck_assert_int_eq(skd_safetensors_writer_add(w, "b", 1, s, NULL), SKD_EINVAL);
  expect_message("tensor 'b': data is NULL");
  add(w, "b", 8, s, x); /* 8 dimensions are fine */
  CK_OK(skd_safetensors_write(w, in_dir("ok.safetensors")));
  skd_safetensors_writer_free(w);
  skd_safetensors *f;
  CK_OK(skd_safetensors_open(&f, in_dir("ok.safetensors")));
  ck_assert_int_eq(skd_safetensors_entry_at(f, 1)->ndim, 8);
  skd_safetensors_close(f);
}
END_TEST

/* A writer with one tensor of n values, all equal to v. */
static skd_safetensors_writer *writer_of(size_t n, float v) {
  float *x = host_alloc(n);
  for (size_t i = 0; i < n; i++) x[i] = v;
  const int64_t s[1] = {(int64_t)n};
  skd_safetensors_writer *w;
  CK_OK(skd_safetensors_writer_create(&w));
  add(w, "x", 1, s, x);
  return w;
}

START_TEST(write_into_missing_directory) {
  skd_safetensors_writer *w = writer_of(10, 1.0f);
  const char *path = in_dir("no/such/dir/ckpt.safetensors");
  ck_assert_int_eq(skd_safetensors_write(w, path), SKD_EIO);
  expect_message(path);
  expect_message("cannot create the temporary file");
  skd_safetensors_writer_free(w);
  ck_assert_int_eq(dir_entries(dir, NULL, 0), 0);
}
END_TEST

/* A pid no process has here, probed downwards from `from`. */
static long free_pid(long from) {
  for (long pid = from; pid > 1; pid--)
    if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) return pid;
  ck_abort_msg("no free pid");
  return 0;
}

static void touch_file(const char *path, time_t age) {
  FILE *f = fopen(path, "wb");
  ck_assert(f != NULL);
  fputs("partial", f);
  fclose(f);
  struct utimbuf t = {time(NULL) - age, time(NULL) - age};
  ck_assert_int_eq(utime(path, &t), 0);
}

/* A save removes the temporaries that killed writers left beside its file
 * (old, their pid gone), and keeps those of a live process, recent ones (a
 * writer elsewhere on a shared file system) and other files. */
START_TEST(stale_temporaries_removed) {
  const char *path = in_dir("ckpt.safetensors");
  char dead_old[600], dead_recent[600], live_old[600], other[600];
  long pid = free_pid(4194303); /* the usual pid_max - 1 */
  snprintf(dead_old, sizeof dead_old, "%s.tmp.%ld", path, pid);
  snprintf(dead_recent, sizeof dead_recent, "%s.tmp.%ld", path, free_pid(pid - 1));
  snprintf(live_old, sizeof live_old, "%s.tmp.%ld", path, (long)getppid());
  snprintf(other, sizeof other, "%s.tmp.notapid", path);
  touch_file(dead_old, 3600);
  touch_file(dead_recent, 0);
  touch_file(live_old, 3600);
  touch_file(other, 3600);
  skd_safetensors_writer *w = writer_of(10, 1.0f);
  CK_OK(skd_safetensors_write(w, path));
  skd_safetensors_writer_free(w);
  ck_assert_msg(access(dead_old, F_OK) != 0, "%s was kept", dead_old);
  ck_assert_msg(access(dead_recent, F_OK) == 0, "%s (recent) was removed", dead_recent);
  ck_assert_msg(access(live_old, F_OK) == 0, "%s (a live process's) was removed", live_old);
  ck_assert_msg(access(other, F_OK) == 0, "%s was removed", other);
  ck_assert_int_eq(skd_remove_stale_temporaries(path), 0);
}
END_TEST

/* Checks that path still holds `old` (n bytes) and is the only file in dir. */
static void expect_untouched(const char *path, const unsigned char *old, size_t n) {
  size_t m;
  unsigned char *now = read_bytes(path, &m);
  ck_assert_msg(m == n && memcmp(now, old, n) == 0, "the old file changed");
  free(now);
  char first[512];
  ck_assert_int_eq(dir_entries(dir, first, sizeof first), 1); /* no temporary file left */
}

/* The write fails midway: RLIMIT_FSIZE (honoured even by root) stops the
 * temporary file at 4 KiB. Check forks each test, so the limit dies with it. */
START_TEST(write_fails_midway) {
  const char *path = in_dir("ckpt.safetensors");
  skd_safetensors_writer *w = writer_of(100, 1.0f);
  CK_OK(skd_safetensors_write(w, path));
  skd_safetensors_writer_free(w);
  size_t n;
  unsigned char *old = read_bytes(path, &n);

  signal(SIGXFSZ, SIG_IGN);
  struct rlimit lim = {4096, 4096};
  ck_assert(setrlimit(RLIMIT_FSIZE, &lim) == 0);
  w = writer_of(100000, 2.0f);
  ck_assert_int_eq(skd_safetensors_write(w, path), SKD_EIO);
  expect_message(path);
  expect_message("writing the temporary file");
  expect_message("File too large");
  skd_safetensors_writer_free(w);
  expect_untouched(path, old, n);
  free(old);
}
END_TEST

/* The temporary file cannot be created: its name is longer than NAME_MAX
 * while the target's is not. */
START_TEST(write_fails_at_create) {
  char name[251];
  memset(name, 'c', 250);
  name[250] = '\0';
  const char *path = in_dir(name);
  skd_safetensors_writer *w = writer_of(10, 1.0f);
  /* Our writer cannot make this file either: write it elsewhere and move it. */
  CK_OK(skd_safetensors_write(w, in_dir("short")));
  ck_assert(rename(in_dir("short"), path) == 0);
  skd_safetensors_writer_free(w);
  size_t n;
  unsigned char *old = read_bytes(path, &n);
  w = writer_of(20, 2.0f);
  ck_assert_int_eq(skd_safetensors_write(w, path), SKD_EIO);
  expect_message("cannot create the temporary file");
  expect_message("File name too long");
  skd_safetensors_writer_free(w);
  expect_untouched(path, old, n);
  free(old);
}
END_TEST

/* The rename fails: the target is a directory that is not empty. */
START_TEST(write_fails_at_rename) {
  const char *target = in_dir("ckpt.safetensors");
  ck_assert(mkdir(target, 0755) == 0);
  write_bytes(in_dir("ckpt.safetensors/keep"), "k", 1);
  skd_safetensors_writer *w = writer_of(10, 1.0f);
  ck_assert_int_eq(skd_safetensors_write(w, target), SKD_EIO);
  expect_message("cannot rename");
  skd_safetensors_writer_free(w);
  ck_assert_int_eq(dir_entries(dir, NULL, 0), 1);
  ck_assert_int_eq(dir_entries(target, NULL, 0), 1);
}
END_TEST

int main(void) {
  Suite *s = suite_create("safetensors");
  TCase *tc = support_tcase_host("safetensors");
  tcase_add_checked_fixture(tc, dir_setup, dir_teardown);
  tcase_add_test(tc, round_trip);
  tcase_add_test(tc, empty_file_round_trip);
  tcase_add_test(tc, byte_identical_rewrite);
  tcase_add_test(tc, spec_bytes);
  tcase_add_test(tc, dtype_conversion);
  tcase_add_loop_test(tc, bad_header, 0, (int)(sizeof bad_cases / sizeof bad_cases[0]));
  tcase_add_test(tc, bad_length_field);
  tcase_add_test(tc, unreadable_files);
  tcase_add_test(tc, writer_arguments);
  tcase_add_test(tc, write_into_missing_directory);
  tcase_add_test(tc, write_fails_midway);
  tcase_add_test(tc, write_fails_at_create);
  tcase_add_test(tc, write_fails_at_rename);
  tcase_add_test(tc, stale_temporaries_removed);
  suite_add_tcase(s, tc);
  return support_main_host(s);
}
