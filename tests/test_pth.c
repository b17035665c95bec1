/* torch.save files: files written by torch (tests/reference/gen_pth.py) in
 * both formats give the exact bytes numpy wrote beside them (every dtype,
 * views, a shared storage, a wrapped and DataParallel state_dict), the
 * released teacher's layout is renamed, and hostile inputs (globals outside
 * the allow-list, bad opcodes, truncated streams, views past their storage,
 * 64-bit wrap, missing storages, deep nesting, truncated zips, TorchScript,
 * junk) give clear errors. Needs no device. */
#include <stdint.h>

#include "reference_file.h"
#include "support.h"
#include "skd/io/fs.h"
#include "skd/io/pth.h"
#include "skd/io/safetensors.h"

static const char *ref(const char *name) {
  static char bufs[4][1024];
  static int next;
  char *b = bufs[next++ % 4];
  snprintf(b, sizeof bufs[0], "%s/pth/%s", ref_dir(), name);
  return b;
}

static const skd_pth_tensor *find(const skd_pth *p, const char *name) {
  for (int i = 0; i < p->count; i++)
    if (strcmp(p->tensors[i].name, name) == 0) return &p->tensors[i];
  return NULL;
}

/* Every line of tensors_expected.txt: "name DTYPE d0,d1 hexbytes". */
static void check_expected(const skd_pth *p) {
  char *text = NULL;
  size_t size = 0;
  CK_OK(skd_read_file(ref("tensors_expected.txt"), &text, &size, 1 << 20));
  int lines = 0;
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"), lines++) {
    char name[64], dtype[8], shape[64], hex[4096];
    ck_assert_int_eq(sscanf(line, "%63s %7s %63s %4095s", name, dtype, shape, hex), 4);
    const skd_pth_tensor *t = find(p, name);
    ck_assert_msg(t != NULL, "tensor %s missing", name);
    ck_assert_str_eq(skd_dtype_name(t->dtype), dtype);
    char got_shape[64] = "";
    size_t at = 0;
    for (int d = 0; d < t->ndim; d++)
      at += (size_t)snprintf(got_shape + at, sizeof got_shape - at, d ? ",%lld" : "%lld", (long long)t->shape[d]);
    ck_assert_str_eq(t->ndim ? got_shape : "-", shape);
    size_t nbytes = strlen(hex) / 2;
    ck_assert_uint_eq(t->end - t->begin, nbytes);
    for (size_t i = 0; i < nbytes; i++) {
      unsigned v;
      sscanf(hex + 2 * i, "%2x", &v);
      ck_assert_msg(p->data[t->begin + i] == v, "%s byte %zu: %02x, expected %02x", name, i, p->data[t->begin + i],
                    v);
    }
  }
  ck_assert_int_eq(lines, p->count);
  free(text);
}

START_TEST(tensors_both_formats) {
  const char *files[] = {"tensors_zip.pth", "tensors_legacy.pth", "wrapped_zip.pth"};
  const skd_file_kind kinds[] = {SKD_FILE_PTH_ZIP, SKD_FILE_PTH_LEGACY, SKD_FILE_PTH_ZIP};
  for (int k = 0; k < 3; k++) {
    skd_pth *p = NULL;
    CK_OK(skd_pth_read(&p, ref(files[k])));
    ck_assert_int_eq(p->kind, kinds[k]);
    check_expected(p);
    skd_pth_free(p);
  }
}
END_TEST

/* Through the safetensors handle every reader uses: conversion and order. */
START_TEST(opened_as_safetensors) {
  skd_safetensors *f = NULL;
  CK_OK(skd_safetensors_open(&f, ref("tensors_legacy.pth")));
  ck_assert_str_eq(skd_safetensors_metadata(f, "pth.format"), "a legacy PyTorch checkpoint");
  int a = skd_safetensors_find(f, "f32"), t = skd_safetensors_find(f, "f32_t"), s = skd_safetensors_find(f, "f32_slice");
  ck_assert(a >= 0 && t >= 0 && s >= 0);
  float base[24], tr[24], sl[6];
  CK_OK(skd_safetensors_read_f32(f, a, base, 24));
  CK_OK(skd_safetensors_read_f32(f, t, tr, 24));
  CK_OK(skd_safetensors_read_f32(f, s, sl, 6));
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 6; j++) ck_assert(tr[j * 4 + i] == base[i * 6 + j]);
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 3; j++) ck_assert(sl[i * 3 + j] == base[(1 + i) * 6 + 2 * j]);
  int64_t v = 0;
  CK_OK(skd_safetensors_read_i64(f, skd_safetensors_find(f, "scalar"), &v, 1));
  ck_assert_int_eq(v, 42);
  ck_assert_int_eq(skd_safetensors_entry_at(f, skd_safetensors_find(f, "scalar"))->ndim, 0);
  skd_safetensors_close(f);
}
END_TEST

/* The released teacher's layout (legacy file) gives net_zip.pth's tensors
 * under skd-cl's names, value for value. */
START_TEST(reference_teacher_layout) {
  skd_safetensors *a = NULL, *b = NULL;
  CK_OK(skd_safetensors_open(&a, ref("net_zip.pth")));
  CK_OK(skd_safetensors_open(&b, ref("net_teacher_legacy.pth")));
  ck_assert_str_eq(skd_safetensors_metadata(a, "pth.layout"), "none");
  ck_assert_str_eq(skd_safetensors_metadata(b, "pth.layout"), "reference-teacher");
  ck_assert_int_eq(skd_safetensors_count(a), skd_safetensors_count(b));
  ck_assert(skd_safetensors_find(b, "pspmodule.bottleneck.0.weight") >= 0);
  ck_assert(skd_safetensors_find(b, "head.bias") >= 0);
  for (int i = 0; i < skd_safetensors_count(a); i++) {
    const skd_safetensors_entry *e = skd_safetensors_entry_at(a, i);
    int k = skd_safetensors_find(b, e->name);
    ck_assert_msg(k >= 0, "%s missing from the teacher layout", e->name);
    ck_assert_uint_eq(skd_safetensors_entry_at(b, k)->numel, e->numel);
    if (e->dtype != SKD_DTYPE_F32) continue;
    float *x = malloc(e->numel * sizeof *x + 1), *y = malloc(e->numel * sizeof *y + 1);
    CK_OK(skd_safetensors_read_f32(a, i, x, e->numel));
    CK_OK(skd_safetensors_read_f32(b, k, y, e->numel));
    ck_assert(memcmp(x, y, e->numel * sizeof *x) == 0);
    free(x);
    free(y);
  }
  skd_safetensors_close(a);
  skd_safetensors_close(b);
}
END_TEST

/* ---- hand-built legacy files ---- */

typedef struct bytes {
  unsigned char b[1 << 16];
  size_t n;
} bytes;

static void put(bytes *o, const void *p, size_t n) {
  ck_assert(o->n + n <= sizeof o->b);
  memcpy(o->b + o->n, p, n);
  o->n += n;
}
static void op(bytes *o, unsigned char c) { put(o, &c, 1); }
static void str(bytes *o, const char *s) {
  uint32_t n = (uint32_t)strlen(s);
  unsigned char len[4] = {(unsigned char)n, (unsigned char)(n >> 8), (unsigned char)(n >> 16), (unsigned char)(n >> 24)};
  op(o, 'X');
  put(o, len, 4);
  put(o, s, n);
}
static void glob(bytes *o, const char *module, const char *name) {
  op(o, 'c');
  put(o, module, strlen(module));
  op(o, '\n');
  put(o, name, strlen(name));
  op(o, '\n');
}
/* A 64-bit signed int as LONG1 of 8 bytes. */
static void integer(bytes *o, int64_t v) {
  op(o, 0x8a);
  op(o, 8);
  for (int i = 0; i < 8; i++) op(o, (unsigned char)((uint64_t)v >> (8 * i)));
}
static void tuple_of(bytes *o, int n, const int64_t *v) {
  op(o, '(');
  for (int i = 0; i < n; i++) integer(o, v[i]);
  op(o, 't');
}

/* {name: _rebuild_tensor_v2(storage key (numel elements), offset, size, stride)} */
static void tensor_dict_as(bytes *o, const char *key, int64_t numel, int64_t offset, int n, const int64_t *size,
                           const int64_t *stride, int old) {
  op(o, 0x80);
  op(o, 2);
  op(o, '}');
  str(o, "w");
  glob(o, "torch._utils", old ? "_rebuild_tensor" : "_rebuild_tensor_v2");
  op(o, '(');
  op(o, '(');
  str(o, "storage");
  glob(o, old ? "torch.cuda" : "torch", "FloatStorage");
  str(o, key);
  str(o, "cpu");
  integer(o, numel);
  op(o, 'N');
  op(o, 't');
  op(o, 'Q');
  integer(o, offset);
  tuple_of(o, n, size);
  tuple_of(o, n, stride);
  if (!old) {
    op(o, 0x89);
    glob(o, "collections", "OrderedDict");
    op(o, ')');
    op(o, 'R');
  }
  op(o, 't');
  op(o, 'R');
  op(o, 's');
  op(o, '.');
}

static void tensor_dict(bytes *o, const char *key, int64_t numel, int64_t offset, int n, const int64_t *size,
                        const int64_t *stride) {
  tensor_dict_as(o, key, numel, offset, n, size, stride, 0);
}

/* magic, protocol, system info, object, keys [key], storage (count floats). */
static void legacy(bytes *o, const bytes *object, const char *key, int64_t count) {
  static const unsigned char magic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46,
                                        0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e};
  o->n = 0;
  put(o, magic, sizeof magic);
  put(o, "\x80\x02M\xe9\x03.", 6);
  put(o, "\x80\x02}", 3);
  str(o, "little_endian");
  put(o, "\x88s.", 3);
  put(o, object->b, object->n);
  put(o, "\x80\x02](", 4);
  if (key) str(o, key);
  put(o, "e.", 2);
  if (!key) return;
  for (int i = 0; i < 8; i++) op(o, (unsigned char)((uint64_t)count >> (8 * i)));
  for (int64_t i = 0; i < count * 4; i++) op(o, (unsigned char)i);
}

static void expect_fails(const bytes *file, const char *needle) {
  skd_pth *p = NULL;
  skd_status st = skd_pth_read_memory(&p, file->b, file->n, "hostile.pth");
  ck_assert_msg(st == SKD_EFORMAT, "expected a format error with '%s', got %s", needle, skd_status_name(st));
  ck_assert_ptr_null(p);
  ck_assert_msg(strstr(skd_error_last(), needle) && strstr(skd_error_last(), "hostile.pth"),
                "message '%s' lacks '%s'", skd_error_last(), needle);
}

START_TEST(hand_built_tensor_loads) {
  bytes obj = {.n = 0}, file;
  int64_t size[2] = {2, 2}, stride[2] = {1, 2};
  tensor_dict(&obj, "k", 6, 1, 2, size, stride);
  legacy(&file, &obj, "k", 6);
  /* The same through pre-0.4 _rebuild_tensor and a torch.cuda storage type. */
  bytes obj_old = {.n = 0}, file_old;
  tensor_dict_as(&obj_old, "k", 6, 1, 2, size, stride, 1);
  legacy(&file_old, &obj_old, "k", 6);
  for (int v = 0; v < 2; v++) {
    skd_pth *p = NULL;
    CK_OK(v ? skd_pth_read_memory(&p, file_old.b, file_old.n, "old.pth")
            : skd_pth_read_memory(&p, file.b, file.n, "ok.pth"));
    ck_assert_int_eq(p->count, 1);
    /* Elements 1, 3, 2, 4 of bytes 0, 1, 2, ...: float k holds bytes 4k..4k+3. */
    const int order[4] = {1, 3, 2, 4};
    for (int e = 0; e < 4; e++)
      for (int b = 0; b < 4; b++) ck_assert_int_eq(p->data[4 * e + b], 4 * order[e] + b);
    skd_pth_free(p);
  }
}
END_TEST

START_TEST(hostile_views) {
  bytes obj, file;
  int64_t size[2] = {2, 4}, stride[2] = {4, 1};
  obj.n = 0;
  tensor_dict(&obj, "k", 6, 0, 2, size, stride); /* 8 elements of 6 */
  legacy(&file, &obj, "k", 6);
  expect_fails(&file, "reaches past the 6 elements of storage 'k'");
  int64_t big[2] = {2, INT64_C(1) << 62}, wrap[2] = {INT64_C(1) << 62, 4};
  obj.n = 0;
  tensor_dict(&obj, "k", 6, 0, 2, big, wrap); /* (2^62)*4 wraps to 0 */
  legacy(&file, &obj, "k", 6);
  expect_fails(&file, "reaches past");
  int64_t one[1] = {1}, s1[1] = {1}, neg[1] = {-1};
  obj.n = 0;
  tensor_dict(&obj, "k", 6, 6, 1, one, s1); /* offset at the end */
  legacy(&file, &obj, "k", 6);
  expect_fails(&file, "reaches past");
  obj.n = 0;
  tensor_dict(&obj, "k", 6, 0, 1, one, neg);
  legacy(&file, &obj, "k", 6);
  expect_fails(&file, "negative");
  int64_t many[1] = {1000}, zero[1] = {0};
  obj.n = 0;
  tensor_dict(&obj, "k", 6, 0, 1, many, zero); /* stride 0: expanded */
  legacy(&file, &obj, "k", 6);
  expect_fails(&file, "expanded views are not supported");
}
END_TEST

START_TEST(hostile_storages) {
  bytes obj, file;
  int64_t size[1] = {4}, stride[1] = {1};
  obj.n = 0;
  tensor_dict(&obj, "k", 6, 0, 1, size, stride);
  legacy(&file, &obj, "other", 6);
  expect_fails(&file, "storage key 0 of the list is not one the object uses");
  legacy(&file, &obj, NULL, 0);
  expect_fails(&file, "storage 'k' is not in the file's list of storages");
  legacy(&file, &obj, "k", 5);
  expect_fails(&file, "storage 'k' holds 5 elements, its tensors say 6");
  legacy(&file, &obj, "k", 6);
  file.n -= 3;
  expect_fails(&file, "the file ends inside storage 'k'");
}
END_TEST

/* A literal and its length (it may hold NUL bytes). */
#define P(lit) lit, sizeof(lit) - 1

START_TEST(hostile_pickles) {
  static const struct {
    const char *pickle;
    size_t n;
    const char *needle;
  } cases[] = {
      {P("\x80\x02" "cos\nsystem\n" "X\x02\x00\x00\x00ls\x85R."), "global 'os.system' is not allowed"},
      {P("\x80\x02" "cbuiltins\neval\n."), "global 'builtins.eval' is not allowed"},
      {P("\x80\x02" "X\x08\x00\x00\x00posix\x00\x00\x00" "X\x06\x00\x00\x00system\x93."), "global 'posix"},
      {P("\x80\x02\xff."), "opcode 0xff: not an opcode of the state_dict subset"},
      {P("\x80\x02}q\x00(X\x01\x00\x00\x00a"), "the stream ends"},
      {P("\x80\x02X\xff\xff\xff\x7f" "ab."), "the stream ends inside the opcode's argument"},
      {P("\x80\x02h\x05."), "memo entry 5 was never stored"},
      {P("\x80\x02}}."), "STOP with 2 values"},
      {P("\x80\x02(((((((."), "marks"},
      {P("\x80\x02u."), "no mark"},
      {P("\x80\x02]K\x01K\x02s."), "SETITEM on something that is not a dict"},
      {P("\x80\x02K\x01)R."), "REDUCE: the callable is not a global"},
      {P("\x80\x02(X\x07\x00\x00\x00storageK\x01tQ."), "persistent id"},
      {P("\x80\x02K\x01."), "the saved object is not a dict"},
      {P("\x80\x02}X\x01\x00\x00\x00" "aK\x01s."), "no state_dict"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    bytes obj = {.n = 0}, file;
    put(&obj, cases[i].pickle, cases[i].n);
    legacy(&file, &obj, NULL, 0);
    expect_fails(&file, cases[i].needle);
  }
  /* Deep nesting: 30000 lists, each appended into the one below, one by one. */
  bytes obj = {.n = 0}, file;
  put(&obj, "\x80\x02", 2);
  for (int i = 0; i < 30000; i++) op(&obj, ']');
  for (int i = 0; i < 29999; i++) op(&obj, 'a');
  op(&obj, '.');
  legacy(&file, &obj, NULL, 0);
  expect_fails(&file, "the saved object is not a dict");
}
END_TEST

START_TEST(truncated_and_foreign_files) {
  char *text = NULL;
  size_t size = 0;
  CK_OK(skd_read_file(ref("tensors_zip.pth"), &text, &size, 1 << 20));
  skd_pth *p = NULL;
  for (size_t cut = 1; cut < size; cut += size / 7) {
    skd_status st = skd_pth_read_memory(&p, text, cut, "cut.pth");
    ck_assert_int_eq(st, SKD_EFORMAT);
    ck_assert(strstr(skd_error_last(), "cut.pth"));
  }
  /* A storage the pickle names but the archive lacks (torch names the
   * folder after the file): its entry renamed in
   * the local header and the central directory (CRCs cover data only). */
  int renamed = 0;
  for (size_t i = 0; i + 8 <= size; i++)
    if (memcmp(text + i, "/data/0", 7) == 0 && (text[i + 7] < '0' || text[i + 7] > '9')) {
      text[i + 6] = 'x';
      renamed++;
    }
  ck_assert_int_eq(renamed, 2);
  ck_assert_int_eq(skd_pth_read_memory(&p, text, size, "renamed.pth"), SKD_EFORMAT);
  ck_assert_msg(strstr(skd_error_last(), "renamed.pth: zip archive: no entry 'tensors_zip/data/0'"), "%s",
                skd_error_last());
  free(text);
  CK_OK(skd_read_file(ref("tensors_legacy.pth"), &text, &size, 1 << 20));
  for (size_t cut = 15; cut < size; cut += size / 9) {
    ck_assert_int_eq(skd_pth_read_memory(&p, text, cut, "cut.pth"), SKD_EFORMAT);
    ck_assert(strstr(skd_error_last(), "cut.pth"));
  }
  free(text);
  /* TorchScript, junk and a short file, through the path every reader takes. */
  skd_safetensors *f = NULL;
  ck_assert_int_eq(skd_safetensors_open(&f, ref("torchscript.pt")), SKD_EFORMAT);
  ck_assert_msg(strstr(skd_error_last(), "a TorchScript archive (not supported: save the state_dict)"), "%s",
                skd_error_last());
  const char *junk = tmp_path("junk.bin");
  FILE *fp = fopen(junk, "wb");
  fputs("GIF89a, or anything else at all", fp);
  fclose(fp);
  ck_assert_int_eq(skd_safetensors_open(&f, junk), SKD_EFORMAT);
  ck_assert_msg(strstr(skd_error_last(), "not a checkpoint (first bytes 47 49 46 38"), "%s", skd_error_last());
}
END_TEST

int main(void) {
  Suite *s = suite_create("pth");
  TCase *tc = support_tcase_host("pth");
  support_add_tmpdir(tc);
  tcase_add_test(tc, tensors_both_formats);
  tcase_add_test(tc, opened_as_safetensors);
  tcase_add_test(tc, reference_teacher_layout);
  tcase_add_test(tc, hand_built_tensor_loads);
  tcase_add_test(tc, hostile_views);
  tcase_add_test(tc, hostile_storages);
  tcase_add_test(tc, hostile_pickles);
  tcase_add_test(tc, truncated_and_foreign_files);
  suite_add_tcase(s, tc);
  return support_main_host(s);
}
