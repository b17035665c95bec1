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
 *   end
 *
 * A kernel line that is absent keeps CLBlast's defaults. "end" is required
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

skd_status skd_tuning_write(const skd_tuning *t, const char *path) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash && slash != dir) {
    *slash = '\0';
    skd_status st = skd_make_dirs(dir, "tuning file");
    if (st != SKD_OK) return st;
  }
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
  FILE *f = fopen(tmp, "w");
  if (!f) return skd_error(SKD_EIO, "tuning file: cannot write '%s': %s", tmp, strerror(errno));
  fprintf(f, "# skd-cl GEMM tuning (CLBlast parameters), written by `skd-cl tune`; a kernel without a line keeps "
             "CLBlast's defaults\n");
  if (t->note[0]) fprintf(f, "# %s\n", t->note);
  if (t->gflops_default > 0 && t->gflops_tuned > 0)
    fprintf(f, "# GFLOP/s (geometric mean over the tuning shapes): defaults %.1f, tuned %.1f\n", t->gflops_default,
            t->gflops_tuned);
  fprintf(f, "platform %s\ndevice %s\ndriver %s\n", t->platform, t->device, t->driver);
  if (t->has_xgemm) write_params(f, "Xgemm", skd_tune_xgemm_names, t->xgemm, SKD_TUNE_XGEMM_PARAMS);
  if (t->has_direct) write_params(f, "XgemmDirect", skd_tune_direct_names, t->direct, SKD_TUNE_DIRECT_PARAMS);
  if (t->has_routine) write_params(f, "GemmRoutine", routine_names, &t->min_indirect, 1);
  fprintf(f, "end\n");
  int ok = !ferror(f);
  ok = fclose(f) == 0 && ok;
  if (!ok || rename(tmp, path) != 0) {
    int e = errno;
    remove(tmp);
    return skd_error(SKD_EIO, "tuning file: cannot write '%s': %s", path, strerror(e));
  }
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
  if (strcmp(s, "end") == 0) {
    if (*rest) return bad(p, "end", "expected nothing after 'end'");
    *ended = 1;
    return SKD_OK;
  }
  char field[140];
  snprintf(field, sizeof field, "'%.100s'", s);
  return bad(p, field, "unknown kernel or keyword (expected platform, device, driver, Xgemm, XgemmDirect, "
                       "GemmRoutine or end)");
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
