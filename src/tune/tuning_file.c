/* The tuning file: human-readable, one per device.
 *
 *   # skd-cl GEMM tuning (CLBlast parameters), written by `skd-cl tune`
 *   # <note>
 *   # GFLOP/s (geometric mean over the tuning shapes): defaults 12.3, tuned 45.6
 *   platform Portable Computing Language
 *   device pthread-skylake-avx512-AMD EPYC
 *   driver 6.0+debian
 *   Xgemm GEMMK=0 KREG=1 KWG=32 ...          (every parameter, once)
 *   XgemmDirect KWID=2 MDIMAD=8 ...
 *   GemmRoutine XGEMM_MIN_INDIRECT_SIZE=192
 *   Conv ALGO=direct COB=8 PXB=8 CIB=4 WG=64 WGW=8
 *   ConvShape N=2 CIN=2048 H=17 W=17 COUT=512 K=1x1 S=1x1 P=0x0 D=1x1 ALGO=gemm
 *   end
 *
 * A kernel line that is absent keeps CLBlast's defaults; without a Conv
 * line the convolution keeps its defaults (ConvShape lines need one). "end" is required
 * so that a truncated file is an error rather than a smaller tuning. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/runtime_private.h"
#include "skd/io/fs.h"
#include "skd/tune.h"
#include "tune/tune_private.h"

const char *const skd_tune_xgemm_names[SKD_TUNE_XGEMM_PARAMS] = {
    "GEMMK", "KREG", "KWG", "KWI", "MDIMA", "MDIMC", "MWG", "NDIMB",
    "NDIMC", "NWG",  "SA",  "SB",  "STRM",  "STRN",  "VWM", "VWN"};
const char *const skd_tune_direct_names[SKD_TUNE_DIRECT_PARAMS] = {
    "KWID", "MDIMAD", "MDIMCD", "NDIMBD", "NDIMCD", "PADA", "PADB", "VWMD", "VWND", "WGD"};
static const char *const routine_names[1] = {"XGEMM_MIN_INDIRECT_SIZE"};

static const char rerun[] = "rerun `skd-cl tune` or delete the file";

void skd_tuning_init(skd_tuning *t, const skd_device_info *d) {
  memset(t, 0, sizeof *t);
  skd_conv_tuning_default(&t->conv);
  if (!d) return;
  snprintf(t->platform, sizeof t->platform, "%s", d->platform);
  snprintf(t->device, sizeof t->device, "%s", d->name);
  snprintf(t->driver, sizeof t->driver, "%s", d->driver_version);
}

int skd_tuning_matches(const skd_tuning *t, const skd_device_info *d) {
  return strcmp(t->platform, d->platform) == 0 && strcmp(t->device, d->name) == 0 &&
         strcmp(t->driver, d->driver_version) == 0;
}

skd_status skd_tuning_default_path(const skd_context *ctx, char *buf, size_t size) {
  const char *root = ctx->priv->cache_root;
  if (!root[0])
    return skd_error(SKD_EINVAL, "tuning: no cache directory ($SKD_CACHE_DIR, $XDG_CACHE_HOME and $HOME are unset); "
                     "give a file");
  const skd_device_info *d = &ctx->info;
  unsigned long long h = SKD_HASH_SEED;
  h = skd_hash64(h, d->platform, strlen(d->platform) + 1);
  h = skd_hash64(h, d->name, strlen(d->name) + 1);
  h = skd_hash64(h, d->driver_version, strlen(d->driver_version) + 1);
  int n = snprintf(buf, size, "%s/tuning/%016llx.txt", root, h);
  if (n < 0 || (size_t)n >= size) return skd_error(SKD_EINVAL, "tuning: the path under '%s' is too long", root);
  return SKD_OK;
}

/* ---- writing ---- */

static void write_params(FILE *f, const char *kernel, const char *const *names, const size_t *values, int n) {
  fprintf(f, "%s", kernel);
  for (int i = 0; i < n; i++) fprintf(f, " %s=%zu", names[i], values[i]);
  fprintf(f, "\n");
}

static void write_conv(FILE *f, const skd_conv_tuning *c) {
  fprintf(f, "Conv ALGO=%s COB=%d PXB=%d CIB=%d WG=%d WGW=%d\n", skd_conv2d_algo_name(c->algo), c->cob, c->pxb, c->cib, c->wg,
          c->wg_w);
  for (int i = 0; i < c->nrules; i++) {
    const skd_conv_rule *r = &c->rules[i];
    fprintf(f, "ConvShape N=%d CIN=%d H=%d W=%d COUT=%d K=%dx%d S=%dx%d P=%dx%d D=%dx%d ALGO=%s\n", r->n, r->cin,
            r->h, r->w, r->cout, r->p.kh, r->p.kw, r->p.stride_h, r->p.stride_w, r->p.pad_h, r->p.pad_w,
            r->p.dilation_h, r->p.dilation_w, skd_conv2d_algo_name(r->p.algo));
  }
}

skd_status skd_tuning_write(const skd_tuning *t, const char *path) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash && slash != dir) {
    *slash = '\0';
    skd_status st = skd_make_dirs(dir, "tuning file");
    if (st != SKD_OK) return st;
  }
  /* Composed in memory, then written by the one atomic writer (temporary file + rename). */
  char *text = NULL;
  size_t size = 0;
  FILE *f = open_memstream(&text, &size);
  if (!f) return skd_error(SKD_ENOMEM, "tuning file: out of memory");
  fprintf(f, "# skd-cl tuning (CLBlast GEMM parameters, convolution), written by `skd-cl tune`; a kernel without "
             "a line keeps its defaults\n");
  if (t->note[0]) fprintf(f, "# %s\n", t->note);
  if (t->gflops_default > 0 && t->gflops_tuned > 0)
    fprintf(f, "# GFLOP/s (geometric mean over the tuning shapes): defaults %.1f, tuned %.1f\n", t->gflops_default,
            t->gflops_tuned);
  fprintf(f, "platform %s\ndevice %s\ndriver %s\n", t->platform, t->device, t->driver);
  if (t->has_xgemm) write_params(f, "Xgemm", skd_tune_xgemm_names, t->xgemm, SKD_TUNE_XGEMM_PARAMS);
  if (t->has_direct) write_params(f, "XgemmDirect", skd_tune_direct_names, t->direct, SKD_TUNE_DIRECT_PARAMS);
  if (t->has_routine) write_params(f, "GemmRoutine", routine_names, &t->min_indirect, 1);
  if (t->has_conv) write_conv(f, &t->conv);
  fprintf(f, "end\n");
  int ok = fclose(f) == 0;
  skd_status st = ok ? skd_write_file_atomic(path, text, size) : skd_error(SKD_ENOMEM, "tuning file: out of memory");
  free(text);
  if (st != SKD_OK) return skd_error(st, "tuning file: %s", skd_error_last());
  return SKD_OK;
}

/* ---- reading ---- */

struct parser {
  const char *path;
  int line;
};

static skd_status bad(const struct parser *p, const char *field, const char *what) {
  return skd_error(SKD_EFORMAT, "tuning file %s: line %d: %s: %s (%s)", p->path, p->line, field, what, rerun);
}

/* "NAME=VALUE" tokens of a kernel line into values[] (every name once). */
static skd_status parse_params(const struct parser *p, const char *kernel, char *rest, const char *const *names,
                               size_t *values, int n) {
  int seen[SKD_TUNE_XGEMM_PARAMS] = {0};
  char field[160];
  char *save = NULL;
  for (char *tok = strtok_r(rest, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
    char *eq = strchr(tok, '=');
    if (!eq) {
      snprintf(field, sizeof field, "%s '%.100s'", kernel, tok);
      return bad(p, field, "expected NAME=VALUE");
    }
    *eq = '\0';
    int i = 0;
    while (i < n && strcmp(names[i], tok) != 0) i++;
    snprintf(field, sizeof field, "%s %.100s", kernel, tok);
    if (i == n) return bad(p, field, "unknown parameter");
    if (seen[i]) return bad(p, field, "given twice");
    const char *v = eq + 1;
    char *end = NULL;
    errno = 0;
    unsigned long long x = (*v >= '0' && *v <= '9') ? strtoull(v, &end, 10) : 0;
    if (!end || *end || errno || x > 1000000000ULL) return bad(p, field, "expected a whole number (0..1000000000)");
    values[i] = (size_t)x;
    seen[i] = 1;
  }
  for (int i = 0; i < n; i++) {
    if (!seen[i]) {
      snprintf(field, sizeof field, "%s %s", kernel, names[i]);
      return bad(p, field, "missing");
    }
  }
  /* Combinations CLBlast's kernels cannot compile or would compute wrongly. */
  char why[160];
  int which = names == skd_tune_xgemm_names    ? skd_tune_xgemm_invalid(values, why, sizeof why)
              : names == skd_tune_direct_names ? skd_tune_direct_invalid(values, why, sizeof why)
                                               : (values[0] < 1 ? (snprintf(why, sizeof why, "must be >= 1"), 0) : -1);
  if (which >= 0) {
    snprintf(field, sizeof field, "%s %s", kernel, names[which]);
    return bad(p, field, why);
  }
  return SKD_OK;
}

/* The fields of a Conv / ConvShape line: a whole number, an AxB pair or an
 * algorithm name; `lo` is the least value allowed. */
enum conv_kind { CONV_INT, CONV_PAIR, CONV_ALGO };
struct conv_field {
  const char *name;
  enum conv_kind kind;
  int lo;
  int *a, *b;
};

static int parse_int(const char *v, int lo, int *out, const char **end) {
  if (*v < '0' || *v > '9') return 0;
  char *e = NULL;
  errno = 0;
  long x = strtol(v, &e, 10);
  if (errno || x < lo || x > 1000000000L) return 0;
  *out = (int)x;
  *end = e;
  return 1;
}

static skd_status parse_conv_fields(const struct parser *p, const char *line, char *rest, struct conv_field *f,
                                    int n) {
  int seen[16] = {0};
  char field[160], what[120];
  char *save = NULL;
  for (char *tok = strtok_r(rest, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
    char *eq = strchr(tok, '=');
    if (!eq) {
      snprintf(field, sizeof field, "%s '%.100s'", line, tok);
      return bad(p, field, "expected NAME=VALUE");
    }
    *eq = '\0';
    int i = 0;
    while (i < n && strcmp(f[i].name, tok) != 0) i++;
    snprintf(field, sizeof field, "%s %.100s", line, tok);
    if (i == n) return bad(p, field, "unknown parameter");
    if (seen[i]) return bad(p, field, "given twice");
    const char *v = eq + 1, *end = NULL;
    int ok = 0;
    if (f[i].kind == CONV_ALGO) {
      ok = skd_conv2d_algo_parse(v, (skd_conv2d_algo *)f[i].a) == SKD_OK;
      snprintf(what, sizeof what, "expected auto, direct, gemm or vec");
    } else if (f[i].kind == CONV_INT) {
      ok = parse_int(v, f[i].lo, f[i].a, &end) && *end == '\0';
      snprintf(what, sizeof what, "expected a whole number >= %d", f[i].lo);
    } else {
      ok = parse_int(v, f[i].lo, f[i].a, &end) && *end == 'x' && parse_int(end + 1, f[i].lo, f[i].b, &end) &&
           *end == '\0';
      snprintf(what, sizeof what, "expected AxB, whole numbers >= %d", f[i].lo);
    }
    if (!ok) return bad(p, field, what);
    seen[i] = 1;
  }
  for (int i = 0; i < n; i++) {
    if (!seen[i]) {
      snprintf(field, sizeof field, "%s %s", line, f[i].name);
      return bad(p, field, "missing");
    }
  }
  return SKD_OK;
}

static skd_status parse_conv(const struct parser *p, char *rest, skd_conv_tuning *c) {
  int algo = 0;
  struct conv_field f[] = {{"ALGO", CONV_ALGO, 0, &algo, NULL}, {"COB", CONV_INT, 1, &c->cob, NULL},
                           {"PXB", CONV_INT, 1, &c->pxb, NULL},  {"CIB", CONV_INT, 1, &c->cib, NULL},
                           {"WG", CONV_INT, 1, &c->wg, NULL},    {"WGW", CONV_INT, 1, &c->wg_w, NULL}};
  skd_status st = parse_conv_fields(p, "Conv", rest, f, (int)(sizeof f / sizeof f[0]));
  if (st != SKD_OK) return st;
  c->algo = (skd_conv2d_algo)algo;
  int which = skd_conv_tuning_invalid(c);
  static const char *const names[5] = {"Conv COB", "Conv PXB", "Conv CIB", "Conv WG", "Conv WGW"};
  static const char *const ranges[5] = {"must be 1..64", "must be 2, 4, 8 or 16", "must be 1..64", "must be 1..1024",
                                         "must be 1..1024"};
  if (which >= 0) return bad(p, names[which], ranges[which]);
  return SKD_OK;
}

static skd_status parse_conv_shape(const struct parser *p, char *rest, skd_conv_tuning *c) {
  if (c->nrules == SKD_CONV_MAX_RULES) return bad(p, "ConvShape", "more than 32 ConvShape lines");
  skd_conv_rule r;
  memset(&r, 0, sizeof r);
  int algo = 0;
  struct conv_field f[] = {
      {"N", CONV_INT, 1, &r.n, NULL},
      {"CIN", CONV_INT, 1, &r.cin, NULL},
      {"H", CONV_INT, 1, &r.h, NULL},
      {"W", CONV_INT, 1, &r.w, NULL},
      {"COUT", CONV_INT, 1, &r.cout, NULL},
      {"K", CONV_PAIR, 1, &r.p.kh, &r.p.kw},
      {"S", CONV_PAIR, 1, &r.p.stride_h, &r.p.stride_w},
      {"P", CONV_PAIR, 0, &r.p.pad_h, &r.p.pad_w},
      {"D", CONV_PAIR, 1, &r.p.dilation_h, &r.p.dilation_w},
      {"ALGO", CONV_ALGO, 0, &algo, NULL},
  };
  skd_status st = parse_conv_fields(p, "ConvShape", rest, f, (int)(sizeof f / sizeof f[0]));
  if (st != SKD_OK) return st;
  r.p.algo = (skd_conv2d_algo)algo;
  c->rules[c->nrules++] = r;
  return SKD_OK;
}

static void trim_end(char *s) {
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = '\0';
}

static skd_status parse_line(struct parser *p, char *text, skd_tuning *t, int *ended) {
  char *s = text;
  while (*s == ' ' || *s == '\t') s++;
  if (*s == '\0' || *s == '#') return SKD_OK;
  if (*ended) return bad(p, "end", "nothing may follow 'end'");
  char *rest = s;
  while (*rest && *rest != ' ' && *rest != '\t') rest++;
  if (*rest) *rest++ = '\0';
  while (*rest == ' ' || *rest == '\t') rest++;
  struct {
    const char *key;
    char *dst;
    size_t size;
  } ids[] = {{"platform", t->platform, sizeof t->platform},
             {"device", t->device, sizeof t->device},
             {"driver", t->driver, sizeof t->driver}};
  for (int i = 0; i < 3; i++) {
    if (strcmp(s, ids[i].key) != 0) continue;
    if (!*rest) return bad(p, ids[i].key, "expected a value after the keyword");
    snprintf(ids[i].dst, ids[i].size, "%s", rest);
    return SKD_OK;
  }
  if (strcmp(s, "Xgemm") == 0) {
    if (t->has_xgemm) return bad(p, s, "a second Xgemm line");
    t->has_xgemm = 1;
    return parse_params(p, "Xgemm", rest, skd_tune_xgemm_names, t->xgemm, SKD_TUNE_XGEMM_PARAMS);
  }
  if (strcmp(s, "XgemmDirect") == 0) {
    if (t->has_direct) return bad(p, s, "a second XgemmDirect line");
    t->has_direct = 1;
    return parse_params(p, "XgemmDirect", rest, skd_tune_direct_names, t->direct, SKD_TUNE_DIRECT_PARAMS);
  }
  if (strcmp(s, "GemmRoutine") == 0) {
    if (t->has_routine) return bad(p, s, "a second GemmRoutine line");
    t->has_routine = 1;
    return parse_params(p, "GemmRoutine", rest, routine_names, &t->min_indirect, 1);
  }
  if (strcmp(s, "Conv") == 0) {
    if (t->has_conv) return bad(p, s, "a second Conv line");
    t->has_conv = 1;
    return parse_conv(p, rest, &t->conv);
  }
  if (strcmp(s, "ConvShape") == 0) {
    if (!t->has_conv) return bad(p, s, "a ConvShape line before the Conv line");
    return parse_conv_shape(p, rest, &t->conv);
  }
  if (strcmp(s, "end") == 0) {
    if (*rest) return bad(p, "end", "expected nothing after 'end'");
    *ended = 1;
    return SKD_OK;
  }
  char field[140];
  snprintf(field, sizeof field, "'%.100s'", s);
  return bad(p, field, "unknown kernel or keyword (expected platform, device, driver, Xgemm, XgemmDirect, "
                       "GemmRoutine, Conv, ConvShape or end)");
}

skd_status skd_tuning_read(skd_tuning *out, const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return skd_error(SKD_EIO, "tuning file %s: cannot open: %s", path, strerror(errno));
  skd_tuning t;
  skd_tuning_init(&t, NULL);
  struct parser p = {path, 0};
  int ended = 0;
  skd_status st = SKD_OK;
  char line[2048];
  while (st == SKD_OK && fgets(line, sizeof line, f)) {
    p.line++;
    if (!strchr(line, '\n') && !feof(f)) {
      st = bad(&p, "line", "longer than 2047 characters");
      break;
    }
    trim_end(line);
    st = parse_line(&p, line, &t, &ended);
  }
  if (st == SKD_OK && ferror(f)) st = skd_error(SKD_EIO, "tuning file %s: read error", path);
  fclose(f);
  if (st != SKD_OK) return st;
  p.line++; /* errors about the whole file point past its last line */
  if (!ended) return bad(&p, "end", "missing: the file is truncated");
  const char *missing = !t.platform[0] ? "platform" : !t.device[0] ? "device" : !t.driver[0] ? "driver" : NULL;
  if (missing) return bad(&p, missing, "missing: the file does not say which device it is for");
  *out = t;
  return SKD_OK;
}
