/* GEMM tuning: a quick search writes a file that reads back identically;
 * GEMMs under a loaded tuning (both CLBlast paths; NN, NT, TN; odd sizes;
 * batched) match the host reference; malformed files are errors naming the
 * file, line and field, and change nothing; a file for another device is
 * ignored; the per-device default file and $SKD_TUNING. Convolution: the
 * Conv / ConvShape lines round trip and reject malformed values; a quick
 * conv search; the direct kernels under non-default blockings match the
 * reference; a ConvShape rule routes its exact shape to its algorithm. */
#include <unistd.h>

#include "support.h"

#include "skd/ops/conv2d.h"
#include "skd/tune.h"

/* Valid, non-default parameters (small tiles: quick to build). */
static const size_t test_xgemm[SKD_TUNE_XGEMM_PARAMS] = {0, 1, 16, 2, 8, 8, 32, 8, 8, 32, 1, 1, 0, 0, 2, 2};
static const size_t test_direct[SKD_TUNE_DIRECT_PARAMS] = {2, 8, 8, 8, 8, 1, 1, 2, 2, 16};
#define TEST_THRESHOLD 24 /* products below 24^3 run XgemmDirect */

static skd_tuning test_tuning(const skd_device_info *d) {
  skd_tuning t;
  skd_tuning_init(&t, d);
  t.has_xgemm = t.has_direct = t.has_routine = 1;
  memcpy(t.xgemm, test_xgemm, sizeof t.xgemm);
  memcpy(t.direct, test_direct, sizeof t.direct);
  t.min_indirect = TEST_THRESHOLD;
  return t;
}

static void expect_same(const skd_tuning *a, const skd_tuning *b) {
  ck_assert_str_eq(a->platform, b->platform);
  ck_assert_str_eq(a->device, b->device);
  ck_assert_str_eq(a->driver, b->driver);
  ck_assert_int_eq(a->has_xgemm, b->has_xgemm);
  ck_assert_int_eq(a->has_direct, b->has_direct);
  ck_assert_int_eq(a->has_routine, b->has_routine);
  if (a->has_xgemm) ck_assert(memcmp(a->xgemm, b->xgemm, sizeof a->xgemm) == 0);
  if (a->has_direct) ck_assert(memcmp(a->direct, b->direct, sizeof a->direct) == 0);
  if (a->has_routine) ck_assert_uint_eq(a->min_indirect, b->min_indirect);
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  ck_assert_msg(f != NULL, "cannot write %s", path);
  fputs(text, f);
  fclose(f);
}

static char *read_text(const char *path) {
  static char buf[8192];
  FILE *f = fopen(path, "r");
  ck_assert_msg(f != NULL, "cannot read %s", path);
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

START_TEST(quick_tune_round_trip) {
  skd_tune_options opt;
  skd_tune_options_default(&opt);
  opt.quick = 1;
  skd_tuning t;
  skd_tune_report rep;
  CK_OK(skd_tune_run(T, &opt, &t, &rep));
  ck_assert_int_eq(rep.nshapes, 3);
  ck_assert_int_ge(rep.tried, 2);
  ck_assert(skd_tuning_matches(&t, &T->info));
  for (int i = 0; i < rep.nshapes; i++) ck_assert(rep.shapes[i].gflops_default > 0 && rep.shapes[i].gflops_tuned > 0);
  const char *path = tmp_path("sub/dir/quick.txt"); /* missing directories are made */
  CK_OK(skd_tuning_write(&t, path));
  skd_tuning back;
  CK_OK(skd_tuning_read(&back, path));
  expect_same(&t, &back);
  /* The same again with every kernel present, and a second write is byte-identical. */
  skd_tuning full = test_tuning(&T->info);
  CK_OK(skd_tuning_write(&full, tmp_path("full.txt")));
  CK_OK(skd_tuning_read(&back, tmp_path("full.txt")));
  expect_same(&full, &back);
  char first[8192];
  snprintf(first, sizeof first, "%s", read_text(tmp_path("full.txt")));
  CK_OK(skd_tuning_write(&back, tmp_path("full.txt")));
  ck_assert_str_eq(first, read_text(tmp_path("full.txt")));
  ck_assert_ptr_nonnull(strstr(first, "\nXgemm GEMMK=0 KREG=1 KWG=16 KWI=2 MDIMA=8"));
  ck_assert_ptr_nonnull(strstr(first, "\nGemmRoutine XGEMM_MIN_INDIRECT_SIZE=24\nend\n"));
}
END_TEST

/* C = op(A) op(B) for `batch` contiguous products (A shared when share_a). */
static void check_gemm(skd_context *ctx, skd_trans ta, skd_trans tb, int m, int n, int k, int batch, int share_a,
                       const char *label) {
  size_t sa = share_a ? 0 : (size_t)m * k, sb = (size_t)k * n, sc = (size_t)m * n;
  int lda = ta ? m : k, ldb = tb ? k : n;
  float *ha = host_random(share_a ? (size_t)m * k : sa * batch, -1.0f, 1.0f);
  float *hb = host_random(sb * batch, -1.0f, 1.0f);
  float *ref = host_alloc(sc * batch);
  skd_ref_gemm_batched(ta, tb, m, n, k, 1.0f, ha, lda, sa, hb, ldb, sb, 0.0f, ref, n, sc, batch);
  skd_tensor da = dev_upload(ha, 1, 1, 1, (int)(share_a ? (size_t)m * k : sa * batch));
  skd_tensor db = dev_upload(hb, 1, 1, 1, (int)(sb * batch));
  skd_tensor dc = dev_zeros(1, 1, 1, (int)(sc * batch));
  CK_OK(skd_gemm_batched(ctx, ta, tb, m, n, k, 1.0f, skd_matrix_of(da.mem, da.offset, lda), sa,
                         skd_matrix_of(db.mem, db.offset, ldb), sb, 0.0f, skd_matrix_of(dc.mem, dc.offset, n), sc,
                         batch));
  float *got = host_alloc(sc * batch);
  dev_download(&dc, got);
  char check[96];
  snprintf(check, sizeof check, "%s %s%s %dx%dx%d batch %d", label, ta ? "T" : "N", tb ? "T" : "N", m, n, k, batch);
  check_error("gemm_tuned", check, rel_error(got, ref, sc * batch), 1e-5);
}

START_TEST(gemm_under_loaded_tuning) {
  skd_tuning t = test_tuning(&T->info);
  const char *path = tmp_path("tuned.txt");
  CK_OK(skd_tuning_write(&t, path));
  /* What skd_context_create does, on T (whose buffers the dev_ helpers make). */
  CK_OK(skd_tuning_load(T, path));
  ck_assert_str_eq(skd_context_tuning(T), path);
  skd_context *ctx = T;
  /* Below the threshold: XgemmDirect. */
  check_gemm(ctx, SKD_NO_TRANS, SKD_NO_TRANS, 7, 9, 5, 1, 0, "direct");
  check_gemm(ctx, SKD_NO_TRANS, SKD_TRANS, 13, 11, 17, 1, 0, "direct");
  check_gemm(ctx, SKD_TRANS, SKD_NO_TRANS, 9, 21, 6, 1, 0, "direct");
  check_gemm(ctx, SKD_NO_TRANS, SKD_NO_TRANS, 5, 7, 9, 3, 1, "direct");
  /* Above: the padded Xgemm kernel, sizes no multiple of its 32x32 tiles. */
  check_gemm(ctx, SKD_NO_TRANS, SKD_NO_TRANS, 67, 45, 33, 1, 0, "indirect");
  check_gemm(ctx, SKD_NO_TRANS, SKD_TRANS, 50, 70, 41, 1, 0, "indirect");
  check_gemm(ctx, SKD_TRANS, SKD_NO_TRANS, 45, 66, 37, 1, 0, "indirect");
  check_gemm(ctx, SKD_TRANS, SKD_NO_TRANS, 40, 33, 51, 3, 1, "indirect");
  /* A shared operand on the indirect path (CLBlast's batched routine gets it wrong; skd_gemm_batched avoids it). */
  check_gemm(ctx, SKD_TRANS, SKD_NO_TRANS, 64, 64, 576, 3, 1, "indirect");
}
END_TEST

static const char good_header[] = "# a comment\nplatform %s\ndevice %s\ndriver %s\n";
static const char good_xgemm[] =
    "Xgemm GEMMK=0 KREG=1 KWG=16 KWI=2 MDIMA=8 MDIMC=8 MWG=32 NDIMB=8 NDIMC=8 NWG=32 SA=1 SB=1 STRM=0 STRN=0 VWM=2 "
    "VWN=2\n";

/* The device's header, then body (whose first line is line 5). */
static void write_tuning(const char *path, const skd_device_info *d, const char *body) {
  char text[4096];
  int n = snprintf(text, sizeof text, good_header, d->platform, d->name, d->driver_version);
  snprintf(text + n, sizeof text - (size_t)n, "%s", body);
  write_text(path, text);
}

static void expect_malformed(const char *name, const char *body, const char *line, const char *field,
                             const char *what) {
  const char *path = tmp_path(name);
  write_tuning(path, &T->info, body);
  skd_tuning t;
  memset(&t, 0x5a, sizeof t);
  skd_tuning before = t;
  skd_status st = skd_tuning_read(&t, path);
  ck_assert_int_eq(st, SKD_EFORMAT);
  const char *msg = skd_error_last();
  ck_assert_msg(strstr(msg, path) && strstr(msg, line) && strstr(msg, field) && strstr(msg, what) &&
                    strstr(msg, "rerun `skd-cl tune` or delete the file"),
                "%s: message '%s' lacks '%s', '%s' or '%s'", name, msg, line, field, what);
  ck_assert_msg(memcmp(&t, &before, sizeof t) == 0, "%s: the output changed on error", name);
  /* A context asked for the file fails with the same message; T keeps its tuning. */
  char keep[1200];
  snprintf(keep, sizeof keep, "%s", skd_context_tuning(T));
  skd_context_options o;
  skd_context_options_default(&o);
  o.device_index = T->info.index;
  o.tuning = path;
  skd_context *ctx = NULL;
  ck_assert_int_eq(skd_context_create(&ctx, &o), SKD_EFORMAT);
  ck_assert_ptr_null(ctx);
  ck_assert_msg(strstr(skd_error_last(), field), "%s: context error '%s'", name, skd_error_last());
  ck_assert_str_eq(skd_context_tuning(T), keep);
}

START_TEST(malformed_files) {
  expect_malformed("kernel.txt", "Xgemmz GEMMK=0\nend\n", "line 5", "'Xgemmz'", "unknown kernel");
  expect_malformed("param.txt",
                   "Xgemm GEMMK=0 KREG=1 KWG=16 KWI=2 MDIMA=8 MDIMC=8 MWG=32 NDIMB=8 NDIMC=8 NWG=32 SA=1 SB=1 STRM=0 "
                   "STRN=0 VWM=2 VWN=2 FOO=3\nend\n",
                   "line 5", "Xgemm FOO", "unknown parameter");
  expect_malformed("missing.txt",
                   "Xgemm GEMMK=0 KREG=1 KWG=16 KWI=2 MDIMA=8 MDIMC=8 MWG=32 NDIMB=8 NDIMC=8 NWG=32 SA=1 SB=1 STRM=0 "
                   "STRN=0 VWM=2\nend\n",
                   "line 5", "Xgemm VWN", "missing");
  expect_malformed("number.txt", "GemmRoutine XGEMM_MIN_INDIRECT_SIZE=abc\nend\n", "line 5",
                   "GemmRoutine XGEMM_MIN_INDIRECT_SIZE", "expected a whole number");
  expect_malformed("negative.txt", "XgemmDirect KWID=-2 MDIMAD=8\nend\n", "line 5", "XgemmDirect KWID",
                   "expected a whole number");
  expect_malformed("equals.txt", "\nXgemmDirect KWID2\nend\n", "line 6", "XgemmDirect 'KWID2'", "NAME=VALUE");
  expect_malformed("truncated.txt", good_xgemm, "line 6", "end", "truncated");
  expect_malformed("twice.txt", "GemmRoutine XGEMM_MIN_INDIRECT_SIZE=8 XGEMM_MIN_INDIRECT_SIZE=9\nend\n", "line 5",
                   "GemmRoutine XGEMM_MIN_INDIRECT_SIZE", "twice");
  expect_malformed("constraint.txt",
                   "Xgemm GEMMK=0 KREG=1 KWG=16 KWI=2 MDIMA=8 MDIMC=8 MWG=48 NDIMB=8 NDIMC=8 NWG=32 SA=1 SB=1 STRM=0 "
                   "STRN=0 VWM=4 VWN=2\nend\n",
                   "line 5", "Xgemm MWG", "multiple of MDIMC*VWM");
  expect_malformed("after_end.txt", "end\nGemmRoutine XGEMM_MIN_INDIRECT_SIZE=8\n", "line 6", "end", "follow");
  /* No device lines at all. */
  const char *path = tmp_path("anonymous.txt");
  write_text(path, "GemmRoutine XGEMM_MIN_INDIRECT_SIZE=8\nend\n");
  skd_tuning t;
  ck_assert_int_eq(skd_tuning_read(&t, path), SKD_EFORMAT);
  ck_assert_ptr_nonnull(strstr(skd_error_last(), "platform: missing"));
  /* A file that is not there, given explicitly. */
  ck_assert_int_eq(skd_tuning_read(&t, tmp_path("absent.txt")), SKD_EIO);
  ck_assert_ptr_nonnull(strstr(skd_error_last(), "absent.txt"));
}
END_TEST

START_TEST(other_device_ignored) {
  skd_device_info other = T->info;
  snprintf(other.name, sizeof other.name, "Some Other GPU");
  const char *path = tmp_path("other.txt");
  write_tuning(path, &other, "GemmRoutine XGEMM_MIN_INDIRECT_SIZE=8\nend\n");
  skd_device_info old_driver = T->info;
  snprintf(old_driver.driver_version, sizeof old_driver.driver_version, "0.0-old");
  const char *path2 = tmp_path("old_driver.txt");
  write_tuning(path2, &old_driver, "GemmRoutine XGEMM_MIN_INDIRECT_SIZE=8\nend\n");
  const char *paths[2] = {path, path2};
  for (int i = 0; i < 2; i++) {
    skd_context_options o;
    skd_context_options_default(&o);
    o.device_index = T->info.index;
    o.tuning = paths[i];
    skd_context *ctx = NULL;
    CK_OK(skd_context_create(&ctx, &o));
    ck_assert_str_eq(skd_context_tuning(ctx), "defaults");
    skd_context_free(ctx);
  }
}
END_TEST

START_TEST(default_file_and_environment) {
  setenv("SKD_CACHE_DIR", tmp_path("cache"), 1);
  unsetenv("SKD_TUNING");
  skd_context_options o;
  skd_context_options_default(&o);
  o.device_index = T->info.index;
  skd_context *ctx = NULL;
  CK_OK(skd_context_create(&ctx, &o));
  ck_assert_str_eq(skd_context_tuning(ctx), "defaults"); /* never tuned */
  char path[1200];
  CK_OK(skd_tuning_default_path(ctx, path, sizeof path));
  ck_assert_msg(strncmp(path, tmp_path("cache/tuning/"), strlen(tmp_path("cache/tuning/"))) == 0, "path %s", path);
  ck_assert_str_eq(path + strlen(path) - 4, ".txt");
  skd_tuning t = test_tuning(&ctx->info);
  CK_OK(skd_tuning_write(&t, path));
  skd_context_free(ctx);

  CK_OK(skd_context_create(&ctx, &o));
  ck_assert_str_eq(skd_context_tuning(ctx), path);
  skd_context_free(ctx);
  /* The kernel cache switched off does not hide the tuning. */
  o.disable_cache = 1;
  CK_OK(skd_context_create(&ctx, &o));
  ck_assert_str_eq(skd_context_tuning(ctx), path);
  skd_context_free(ctx);
  o.disable_cache = 0;
  setenv("SKD_TUNING", "off", 1);
  CK_OK(skd_context_create(&ctx, &o));
  ck_assert_str_eq(skd_context_tuning(ctx), "defaults");
  skd_context_free(ctx);
  o.tuning = path; /* the option wins over the environment */
  CK_OK(skd_context_create(&ctx, &o));
  ck_assert_str_eq(skd_context_tuning(ctx), path);
  skd_context_free(ctx);
  unsetenv("SKD_TUNING");
  /* A broken default file is an error, not silently skipped. */
  write_text(path, "platform x\n");
  o.tuning = NULL;
  ck_assert_int_eq(skd_context_create(&ctx, &o), SKD_EFORMAT);
  ck_assert_ptr_nonnull(strstr(skd_error_last(), path));
}
END_TEST

START_TEST(write_errors) {
  write_text(tmp_path("plain"), "x");
  skd_tuning t = test_tuning(&T->info);
  const char *bad = tmp_path("plain/sub/t.txt");
  ck_assert_int_eq(skd_tuning_write(&t, bad), SKD_EIO);
  ck_assert_ptr_nonnull(strstr(skd_error_last(), "plain"));
  ck_assert_int_ne(access(bad, F_OK), 0);
}
END_TEST

/* A non-default conv tuning with two shape rules. */
static skd_conv_tuning test_conv(void) {
  skd_conv_tuning c;
  skd_conv_tuning_default(&c);
  c.algo = SKD_CONV2D_GEMM;
  c.cob = 4;
  c.pxb = 4;
  c.cib = 8;
  c.wg = 16;
  c.wg_w = 4;
  c.nrules = 2;
  c.rules[0] = (skd_conv_rule){2, 2048, 17, 17, 512, skd_conv2d_params_make(1, 1, 0, 1)};
  c.rules[0].p.algo = SKD_CONV2D_DIRECT;
  c.rules[1] = (skd_conv_rule){4, 3, 128, 96, 16, {3, 5, 2, 1, 1, 2, 1, 3, SKD_CONV2D_GEMM}};
  return c;
}

static void expect_same_conv(const skd_conv_tuning *a, const skd_conv_tuning *b) {
  ck_assert_int_eq(a->algo, b->algo);
  ck_assert_int_eq(a->cob, b->cob);
  ck_assert_int_eq(a->pxb, b->pxb);
  ck_assert_int_eq(a->cib, b->cib);
  ck_assert_int_eq(a->wg, b->wg);
  ck_assert_int_eq(a->wg_w, b->wg_w);
  ck_assert_int_eq(a->nrules, b->nrules);
  for (int i = 0; i < a->nrules; i++) ck_assert(memcmp(&a->rules[i], &b->rules[i], sizeof a->rules[i]) == 0);
}

START_TEST(conv_lines_round_trip) {
  skd_tuning t = test_tuning(&T->info);
  t.has_conv = 1;
  t.conv = test_conv();
  const char *path = tmp_path("conv.txt");
  CK_OK(skd_tuning_write(&t, path));
  skd_tuning back;
  CK_OK(skd_tuning_read(&back, path));
  expect_same(&t, &back);
  ck_assert_int_eq(back.has_conv, 1);
  expect_same_conv(&t.conv, &back.conv);
  const char *text = read_text(path);
  ck_assert_ptr_nonnull(strstr(text, "\nConv ALGO=gemm COB=4 PXB=4 CIB=8 WG=16 WGW=4\n"));
  ck_assert_ptr_nonnull(strstr(text, "\nConvShape N=2 CIN=2048 H=17 W=17 COUT=512 K=1x1 S=1x1 P=0x0 D=1x1 ALGO=direct\n"));
  ck_assert_ptr_nonnull(strstr(text, "\nConvShape N=4 CIN=3 H=128 W=96 COUT=16 K=3x5 S=2x1 P=1x2 D=1x3 ALGO=gemm\nend\n"));
  /* Without a Conv line: the defaults, and loading it puts them back on the context. */
  skd_tuning plain = test_tuning(&T->info);
  CK_OK(skd_tuning_write(&plain, tmp_path("plain.txt")));
  CK_OK(skd_tuning_read(&back, tmp_path("plain.txt")));
  ck_assert_int_eq(back.has_conv, 0);
  ck_assert_ptr_null(strstr(read_text(tmp_path("plain.txt")), "Conv"));
  CK_OK(skd_tuning_load(T, path));
  expect_same_conv(skd_context_conv_tuning(T), &t.conv);
  CK_OK(skd_tuning_load(T, tmp_path("plain.txt")));
  skd_conv_tuning d;
  skd_conv_tuning_default(&d);
  expect_same_conv(skd_context_conv_tuning(T), &d);
  ck_assert_int_eq(d.algo, SKD_CONV2D_AUTO);
  ck_assert(d.cob == 8 && d.pxb == 8 && d.cib == 4 && d.wg == 64 && d.wg_w == 8 && d.nrules == 0);
  /* A blocking out of range is refused by the context. */
  d.cob = 0;
  ck_assert_int_eq(skd_context_set_conv_tuning(T, &d), SKD_EINVAL);
  ck_assert_ptr_nonnull(strstr(skd_error_last(), "cob"));
}
END_TEST

#define CONV_OK "Conv ALGO=direct COB=8 PXB=8 CIB=4 WG=64 WGW=8\n"

START_TEST(conv_malformed_lines) {
  expect_malformed("c_algo.txt", "Conv ALGO=fast COB=8 PXB=8 CIB=4 WG=64 WGW=8\nend\n", "line 5", "Conv ALGO",
                   "expected auto, direct, gemm or vec");
  expect_malformed("c_missing.txt", "Conv ALGO=direct COB=8 PXB=8 CIB=4 WG=64\nend\n", "line 5", "Conv WGW",
                   "missing");
  expect_malformed("c_zero.txt", "Conv ALGO=direct COB=0 PXB=8 CIB=4 WG=64 WGW=8\nend\n", "line 5", "Conv COB",
                   "expected a whole number >= 1");
  expect_malformed("c_big.txt", "Conv ALGO=direct COB=65 PXB=8 CIB=4 WG=64 WGW=8\nend\n", "line 5", "Conv COB",
                   "must be 1..64");
  expect_malformed("c_width.txt", "Conv ALGO=direct COB=8 PXB=6 CIB=4 WG=64 WGW=8\nend\n", "line 5", "Conv PXB",
                   "must be 2, 4, 8 or 16");
  expect_malformed("c_unknown.txt", "Conv ALGO=direct COB=8 PXB=8 CIB=4 WG=64 WGW=8 TILE=2\nend\n", "line 5",
                   "Conv TILE", "unknown parameter");
  expect_malformed("c_twice.txt", CONV_OK CONV_OK "end\n", "line 6", "Conv", "a second Conv line");
  expect_malformed("s_before.txt",
                   "ConvShape N=2 CIN=3 H=9 W=9 COUT=4 K=3x3 S=1x1 P=1x1 D=1x1 ALGO=gemm\n" CONV_OK "end\n",
                   "line 5", "ConvShape", "before the Conv line");
  expect_malformed("s_pair.txt", CONV_OK "ConvShape N=2 CIN=3 H=9 W=9 COUT=4 K=3 S=1x1 P=1x1 D=1x1 ALGO=gemm\nend\n",
                   "line 6", "ConvShape K", "expected AxB");
  expect_malformed("s_pad.txt",
                   CONV_OK "ConvShape N=2 CIN=3 H=9 W=9 COUT=4 K=3x3 S=1x1 P=1x-1 D=1x1 ALGO=gemm\nend\n", "line 6",
                   "ConvShape P", "expected AxB, whole numbers >= 0");
  expect_malformed("s_missing.txt", CONV_OK "ConvShape N=2 CIN=3 H=9 W=9 COUT=4 K=3x3 S=1x1 P=1x1 D=1x1\nend\n",
                   "line 6", "ConvShape ALGO", "missing");
  expect_malformed("s_dup.txt",
                   CONV_OK "ConvShape N=2 N=2 CIN=3 H=9 W=9 COUT=4 K=3x3 S=1x1 P=1x1 D=1x1 ALGO=gemm\nend\n",
                   "line 6", "ConvShape N", "given twice");
}
END_TEST

START_TEST(quick_conv_search) {
  skd_tune_options opt;
  skd_tune_options_default(&opt);
  opt.quick = 1;
  skd_conv_tuning c;
  skd_tune_conv_report rep;
  CK_OK(skd_tune_conv(T, &opt, &c, &rep));
  ck_assert_int_eq(rep.nshapes, 3);
  ck_assert_int_eq(rep.nblockings, 2);
  for (int i = 0; i < rep.nblockings; i++) ck_assert(rep.blocking_ms[i] > 0);
  for (int i = 0; i < rep.nshapes; i++)
    for (int a = SKD_CONV2D_GEMM; a <= SKD_CONV2D_VEC; a++) ck_assert(rep.shapes[i].ms[a] > 0);
  ck_assert_int_lt(skd_conv_tuning_invalid(&c), 0);
  /* What it found is what T now runs, and what a file keeps. */
  expect_same_conv(skd_context_conv_tuning(T), &c);
  skd_tuning t;
  skd_tuning_init(&t, &T->info);
  t.has_conv = 1;
  t.conv = c;
  CK_OK(skd_tuning_write(&t, tmp_path("q.txt")));
  skd_tuning back;
  CK_OK(skd_tuning_read(&back, tmp_path("q.txt")));
  expect_same_conv(&back.conv, &c);
}
END_TEST

/* Direct forward, dx, dW under T's current blocking vs the reference. */
static void check_conv(const char *label, int n, int cin, int h, int w, int cout, skd_conv2d_params p) {
  p.algo = SKD_CONV2D_DIRECT;
  int ho, wo;
  CK_OK(skd_conv2d_output_shape(&p, h, w, &ho, &wo));
  size_t nx = (size_t)n * cin * h * w, nw = (size_t)cout * cin * p.kh * p.kw, ny = (size_t)n * cout * ho * wo;
  float *x = host_random(nx, -1.0f, 1.0f), *wt = host_random(nw, -0.5f, 0.5f), *b = host_random((size_t)cout, -1, 1);
  float *dy = host_random(ny, -1.0f, 1.0f), *dx0 = host_random(nx, -1, 1), *dw0 = host_random(nw, -1, 1);
  float *y = host_alloc(ny), *dx = host_copy(dx0, nx), *dw = host_copy(dw0, nw);
  skd_ref_conv2d_forward(&p, n, cin, h, w, cout, x, wt, b, y);
  skd_ref_conv2d_backward(&p, n, cin, h, w, cout, x, wt, dy, dx, dw, NULL);
  skd_tensor tx = dev_upload(x, n, cin, h, w), tw = dev_upload(wt, cout, cin, p.kh, p.kw);
  skd_tensor tb = dev_upload(b, 1, cout, 1, 1), ty = dev_tensor(n, cout, ho, wo);
  skd_tensor tdy = dev_upload(dy, n, cout, ho, wo), tdx = dev_upload(dx0, n, cin, h, w);
  skd_tensor tdw = dev_upload(dw0, cout, cin, p.kh, p.kw);
  CK_OK(skd_conv2d_forward(T, &p, &tx, &tw, &tb, &ty));
  CK_OK(skd_conv2d_backward(T, &p, &tx, &tw, &tdy, &tdx, &tdw, NULL));
  char check[120];
  snprintf(check, sizeof check, "%s fwd", label);
  check_error("conv_tuned", check, rel_error(dev_fetch(&ty), y, ny), 1e-5);
  snprintf(check, sizeof check, "%s dx", label);
  check_error("conv_tuned", check, rel_error(dev_fetch(&tdx), dx, nx), 1e-5);
  snprintf(check, sizeof check, "%s dW", label);
  check_error("conv_tuned", check, rel_error(dev_fetch(&tdw), dw, nw), 1e-5);
}

START_TEST(conv_under_blockings) {
  /* Blocks smaller and larger than the kernel's #define defaults: a host
   * and kernel that disagreed (no -D) would skip channels or pixels. */
  static const int blockings[3][5] = {{4, 4, 8, 16, 4}, {16, 16, 8, 256, 32}, {3, 2, 3, 32, 1}};
  for (int i = 0; i < 3; i++) {
    skd_conv_tuning c;
    skd_conv_tuning_default(&c);
    c.cob = blockings[i][0];
    c.pxb = blockings[i][1];
    c.cib = blockings[i][2];
    c.wg = blockings[i][3];
    c.wg_w = blockings[i][4];
    CK_OK(skd_context_set_conv_tuning(T, &c));
    char label[120];
    snprintf(label, sizeof label, "COB%d PXB%d CIB%d:", c.cob, c.pxb, c.cib);
    char l[160];
    snprintf(l, sizeof l, "%s 1x3x7x5 k3", label);
    check_conv(l, 1, 3, 7, 5, 5, skd_conv2d_params_make(3, 1, 1, 1));
    snprintf(l, sizeof l, "%s 2x13x9x11->19 k3", label);
    check_conv(l, 2, 13, 9, 11, 19, skd_conv2d_params_make(3, 1, 1, 1));
    snprintf(l, sizeof l, "%s 2x17x11x13->33 k3 s2 d2", label);
    check_conv(l, 2, 17, 11, 13, 33, skd_conv2d_params_make(3, 2, 2, 2));
    snprintf(l, sizeof l, "%s 3x21x6x17->10 k1", label);
    check_conv(l, 3, 21, 6, 17, 10, skd_conv2d_params_make(1, 1, 0, 1));
  }
}
END_TEST

/* Calls of kernel `name` in ctx's profile so far. */
static unsigned long profile_calls(skd_context *ctx, const char *name) {
  skd_profile_entry *e = NULL;
  int count = 0;
  CK_OK(skd_profile_summary(ctx, &e, &count));
  unsigned long calls = 0;
  for (int i = 0; i < count; i++)
    if (strcmp(e[i].name, name) == 0) calls = e[i].calls;
  free(e);
  return calls;
}

/* One forward of a 3x3 convolution (N, Cin, H, W) -> Cout on ctx. */
static void forward_on(skd_context *ctx, int n, int cin, int h, int w, int cout) {
  skd_conv2d_params p = skd_conv2d_params_make(3, 1, 1, 1);
  skd_tensor x, wt, y;
  CK_OK(skd_tensor_alloc(ctx, &x, n, cin, h, w));
  CK_OK(skd_tensor_alloc(ctx, &wt, cout, cin, 3, 3));
  CK_OK(skd_tensor_alloc(ctx, &y, n, cout, h, w));
  CK_OK(skd_tensor_fill(ctx, &x, 0.5f));
  CK_OK(skd_tensor_fill(ctx, &wt, 0.25f));
  CK_OK(skd_conv2d_forward(ctx, &p, &x, &wt, NULL, &y));
  CK_OK(skd_context_finish(ctx));
  skd_tensor_release(&x);
  skd_tensor_release(&wt);
  skd_tensor_release(&y);
}

START_TEST(conv_shape_rule_routes) {
  unsetenv("SKD_CONV_ALGO");
  skd_context_options o;
  skd_context_options_default(&o);
  o.device_index = T->info.index;
  o.profiling = 1;
  o.tuning = "off";
  skd_context *ctx = NULL;
  CK_OK(skd_context_create(&ctx, &o));
  /* From a file: the device's default (vec on a CPU, direct on a GPU, gemm
   * on a loop-limited one), another algorithm for 2x5x9x7 -> 6 exactly. */
  const char *untuned = ctx->info.loop_limited ? "conv2d_im2col"
                        : ctx->info.is_gpu        ? "conv2d_direct_fwd"
                                                  : "conv2d_cv_fwd";
  const skd_conv2d_algo ruled = ctx->info.loop_limited ? SKD_CONV2D_DIRECT : SKD_CONV2D_GEMM;
  const char *ruled_kernel = ruled == SKD_CONV2D_GEMM ? "conv2d_im2col" : "conv2d_direct_fwd";
  skd_tuning t;
  skd_tuning_init(&t, &ctx->info);
  t.has_conv = 1;
  t.conv.nrules = 1;
  t.conv.rules[0] = (skd_conv_rule){2, 5, 9, 7, 6, skd_conv2d_params_make(3, 1, 1, 1)};
  t.conv.rules[0].p.algo = ruled;
  const char *path = tmp_path("rule.txt");
  CK_OK(skd_tuning_write(&t, path));
  CK_OK(skd_tuning_load(ctx, path));
  forward_on(ctx, 2, 5, 9, 7, 6);
  ck_assert_uint_eq(profile_calls(ctx, ruled_kernel), 1);
  ck_assert_uint_eq(profile_calls(ctx, untuned), 0);
  forward_on(ctx, 2, 5, 9, 8, 6); /* one size off: the default */
  ck_assert_uint_eq(profile_calls(ctx, ruled_kernel), 1);
  ck_assert_uint_eq(profile_calls(ctx, untuned), 1);
  /* The other way round: gemm by default, direct (then vec) for the shape. */
  unsigned long direct0 = profile_calls(ctx, "conv2d_direct_fwd"), vec0 = profile_calls(ctx, "conv2d_cv_fwd");
  skd_conv_tuning c = t.conv;
  c.algo = SKD_CONV2D_GEMM;
  c.rules[0].p.algo = SKD_CONV2D_DIRECT;
  CK_OK(skd_context_set_conv_tuning(ctx, &c));
  forward_on(ctx, 2, 5, 9, 7, 6);
  ck_assert_uint_eq(profile_calls(ctx, "conv2d_direct_fwd"), direct0 + 1);
  c.rules[0].p.algo = SKD_CONV2D_VEC;
  CK_OK(skd_context_set_conv_tuning(ctx, &c));
  forward_on(ctx, 2, 5, 9, 7, 6);
  ck_assert_uint_eq(profile_calls(ctx, "conv2d_cv_fwd"), vec0 + 1);
  forward_on(ctx, 2, 5, 9, 8, 6);
  ck_assert_uint_eq(profile_calls(ctx, "conv2d_im2col"), 2);
  /* The environment still wins, for experiments. */
  setenv("SKD_CONV_ALGO", "gemm", 1);
  forward_on(ctx, 2, 5, 9, 7, 6);
  ck_assert_uint_eq(profile_calls(ctx, "conv2d_im2col"), 3);
  ck_assert_uint_eq(profile_calls(ctx, "conv2d_direct_fwd"), direct0 + 1);
  ck_assert_uint_eq(profile_calls(ctx, "conv2d_cv_fwd"), vec0 + 1);
  unsetenv("SKD_CONV_ALGO");
  skd_context_free(ctx);
  /* A value that names no algorithm stops the context, not silently ignored. */
  setenv("SKD_CONV_ALGO", "vek", 1);
  skd_context *bad = NULL;
  ck_assert_int_eq(skd_context_create(&bad, &o), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "SKD_CONV_ALGO: 'vek' is not an algorithm"), "%s", skd_error_last());
  unsetenv("SKD_CONV_ALGO");
}
END_TEST

int main(void) {
  Suite *s = suite_create("tune");
  TCase *tc = support_tcase("tune");
  support_add_tmpdir(tc);
  tcase_add_test(tc, quick_tune_round_trip);
  tcase_add_test(tc, gemm_under_loaded_tuning);
  tcase_add_test(tc, malformed_files);
  tcase_add_test(tc, other_device_ignored);
  tcase_add_test(tc, default_file_and_environment);
  tcase_add_test(tc, write_errors);
  tcase_add_test(tc, conv_lines_round_trip);
  tcase_add_test(tc, conv_malformed_lines);
  tcase_add_test(tc, quick_conv_search);
  tcase_add_test(tc, conv_under_blockings);
  tcase_add_test(tc, conv_shape_rule_routes);
  suite_add_tcase(s, tc);
  return support_main(s);
}
