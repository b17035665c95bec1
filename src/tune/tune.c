/* The GEMM tuning search (skd_tune_run).
 *
 * Every configuration CLBlast has not seen costs a program build (seconds
 * on a CPU device), so the search is a small seeded sample rather than
 * CLBlast's exhaustive tuners. Steps: time CLBlast's defaults as it would
 * run them, and each GEMM path on its own (XGEMM_MIN_INDIRECT_SIZE forced
 * low or high); sample Xgemm with the indirect path forced, then
 * XgemmDirect with the direct path forced, each candidate checked against a
 * host GEMM and timed (median of several runs); pick the path threshold from
 * the two winners' timings; time the result. A kernel whose defaults were
 * not beaten is left to CLBlast, and a result that is not faster than the
 * defaults overall is dropped: tuning never makes things slower on the
 * shapes it measured. */
#include <clblast_c.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "skd/tune.h"
#include "tune/tune_private.h"

struct shape {
  const char *name;
  skd_trans ta, tb;
  int m, n, k;
};

/* The convolution GEMMs of the bench presets (y = W col: NN; dW = dy col^T:
 * NT; dcol = W^T dy: TN) from narrow early layers to wide late ones. */
static const struct shape full_shapes[] = {
    {"conv fwd", SKD_NO_TRANS, SKD_NO_TRANS, 32, 4096, 288},
    {"conv fwd", SKD_NO_TRANS, SKD_NO_TRANS, 64, 1024, 576},
    {"conv fwd", SKD_NO_TRANS, SKD_NO_TRANS, 256, 256, 2304},
    {"conv dW", SKD_NO_TRANS, SKD_TRANS, 64, 576, 1024},
    {"conv dx", SKD_TRANS, SKD_NO_TRANS, 576, 1024, 64},
    {"small fwd", SKD_NO_TRANS, SKD_NO_TRANS, 16, 1024, 144},
};
static const struct shape quick_shapes[] = {
    {"NN", SKD_NO_TRANS, SKD_NO_TRANS, 24, 40, 36},
    {"NT", SKD_NO_TRANS, SKD_TRANS, 20, 36, 44},
    {"TN", SKD_TRANS, SKD_NO_TRANS, 36, 28, 20},
};

#define MAX_SHAPES SKD_TUNE_MAX_SHAPES
#define FORCE_DIRECT 65536 /* XGEMM_MIN_INDIRECT_SIZE beyond any product's cube root */

struct bench {
  skd_context *ctx;
  const skd_tune_options *opt;
  const struct shape *shapes;
  int nshapes, runs;
  cl_mem a[MAX_SHAPES], b[MAX_SHAPES], c[MAX_SHAPES];
  float *ref[MAX_SHAPES];
  float *out;
  char why[512]; /* why the last candidate was rejected */
};

void skd_tune_say(const skd_tune_options *opt, const char *fmt, ...) {
  if (!opt->progress) return;
  char line[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  opt->progress(opt->user, line);
}

double skd_tune_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double flops(const struct shape *s) { return 2.0 * s->m * (double)s->n * s->k; }

/* Row-major storage: A is m x k (k x m transposed), B k x n (n x k). */
static int lda_of(const struct shape *s) { return s->ta ? s->m : s->k; }
static int ldb_of(const struct shape *s) { return s->tb ? s->k : s->n; }

static skd_status upload(skd_context *ctx, size_t n, const float *host, const char *what, cl_mem *out) {
  skd_status st = skd_buffer_create(ctx, n * sizeof(float), what, out);
  if (st != SKD_OK) return st;
  return skd_cl_check(clEnqueueWriteBuffer(ctx->queue, *out, CL_TRUE, 0, n * sizeof(float), host, 0, NULL, NULL),
                      "tune: clEnqueueWriteBuffer");
}

/* Uniform in [-0.5, 0.5) from a 64-bit LCG. */
static float uniform(unsigned long long *s) {
  *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
  return (float)(*s >> 40) / 16777216.0f - 0.5f;
}

static skd_status bench_init(struct bench *b) {
  unsigned long long rng = b->opt->seed ^ 0x5EEDULL;
  size_t most = 0;
  for (int i = 0; i < b->nshapes; i++) {
    const struct shape *s = &b->shapes[i];
    size_t na = (size_t)s->m * s->k, nb = (size_t)s->k * s->n, nc = (size_t)s->m * s->n;
    float *ha = malloc(na * sizeof(float)), *hb = malloc(nb * sizeof(float));
    b->ref[i] = malloc(nc * sizeof(float));
    if (!ha || !hb || !b->ref[i]) {
      free(ha);
      free(hb);
      return skd_error(SKD_ENOMEM, "tune: out of host memory");
    }
    for (size_t j = 0; j < na; j++) ha[j] = uniform(&rng);
    for (size_t j = 0; j < nb; j++) hb[j] = uniform(&rng);
    skd_ref_gemm(s->ta, s->tb, s->m, s->n, s->k, 1.0f, ha, lda_of(s), hb, ldb_of(s), 0.0f, b->ref[i], s->n);
    skd_status st = upload(b->ctx, na, ha, "tune: A", &b->a[i]);
    if (st == SKD_OK) st = upload(b->ctx, nb, hb, "tune: B", &b->b[i]);
    if (st == SKD_OK) st = skd_buffer_create(b->ctx, nc * sizeof(float), "tune: C", &b->c[i]);
    free(ha);
    free(hb);
    if (st != SKD_OK) return st;
    if (nc > most) most = nc;
  }
  b->out = malloc(most * sizeof(float));
  return b->out ? SKD_OK : skd_error(SKD_ENOMEM, "tune: out of host memory");
}

static void bench_free(struct bench *b) {
  for (int i = 0; i < b->nshapes; i++) {
    if (b->a[i]) clReleaseMemObject(b->a[i]);
    if (b->b[i]) clReleaseMemObject(b->b[i]);
    if (b->c[i]) clReleaseMemObject(b->c[i]);
    free(b->ref[i]);
  }
  free(b->out);
}

static skd_status run_once(struct bench *b, int i) {
  const struct shape *s = &b->shapes[i];
  return skd_gemm(b->ctx, s->ta, s->tb, s->m, s->n, s->k, 1.0f, skd_matrix_of(b->a[i], 0, lda_of(s)),
                  skd_matrix_of(b->b[i], 0, ldb_of(s)), 0.0f, skd_matrix_of(b->c[i], 0, s->n));
}

static int compare_double(const void *x, const void *y) {
  double a = *(const double *)x, c = *(const double *)y;
  return a < c ? -1 : a > c;
}

/* Runs every shape with the parameters CLBlast has now: checked against the
 * host result (C starts as NaN, so unwritten elements show), then timed.
 * 0 with b->why set when the configuration fails or is wrong. */
static int measure(struct bench *b, double *seconds) {
  skd_context *ctx = b->ctx;
  for (int i = 0; i < b->nshapes; i++) {
    const struct shape *s = &b->shapes[i];
    size_t nc = (size_t)s->m * s->n;
    float nan = NAN;
    skd_status st = skd_cl_check(clEnqueueFillBuffer(ctx->queue, b->c[i], &nan, sizeof nan, 0, nc * sizeof(float), 0,
                                                     NULL, NULL), "tune: clEnqueueFillBuffer");
    if (st == SKD_OK) st = run_once(b, i); /* the first call builds CLBlast's program */
    if (st == SKD_OK)
      st = skd_cl_check(clEnqueueReadBuffer(ctx->queue, b->c[i], CL_TRUE, 0, nc * sizeof(float), b->out, 0, NULL,
                                            NULL), "tune: clEnqueueReadBuffer");
    if (st != SKD_OK) {
      snprintf(b->why, sizeof b->why, "%s", skd_error_last());
      skd_error_clear();
      clFinish(ctx->queue);
      return 0;
    }
    double err = 0, scale = 1e-6;
    for (size_t j = 0; j < nc; j++) {
      double d = fabs((double)b->out[j] - b->ref[i][j]);
      if (!(d <= err)) err = d; /* NaN propagates */
      if (fabs(b->ref[i][j]) > scale) scale = fabs(b->ref[i][j]);
    }
    if (!(err / scale <= 1e-4)) {
      snprintf(b->why, sizeof b->why, "wrong result on %dx%dx%d (relative error %.3g)", s->m, s->n, s->k, err / scale);
      return 0;
    }
    double t[8];
    for (int r = 0; r < b->runs; r++) {
      double t0 = skd_tune_now();
      st = run_once(b, i);
      if (st == SKD_OK) st = skd_context_finish(ctx);
      if (st != SKD_OK) {
        snprintf(b->why, sizeof b->why, "%s", skd_error_last());
        skd_error_clear();
        return 0;
      }
      t[r] = skd_tune_now() - t0;
    }
    qsort(t, (size_t)b->runs, sizeof t[0], compare_double);
    seconds[i] = t[b->runs / 2];
  }
  return 1;
}

/* Geometric mean GFLOP/s. */
static double gflops(const struct bench *b, const double *seconds) {
  double sum = 0;
  for (int i = 0; i < b->nshapes; i++) sum += log(flops(&b->shapes[i]) / seconds[i] * 1e-9);
  return exp(sum / b->nshapes);
}

/* Mean time relative to ref: the score minimised (1 = as fast as ref). */
static double relative(const struct bench *b, const double *seconds, const double *ref) {
  double sum = 0;
  for (int i = 0; i < b->nshapes; i++) sum += seconds[i] / ref[i];
  return sum / b->nshapes;
}

static skd_status clear_cache(void) {
  CLBlastStatusCode code = CLBlastClearCache();
  return code == CLBlastSuccess ? SKD_OK : skd_error(SKD_ECL, "tune: CLBlastClearCache failed (%d)", (int)code);
}

static skd_status set_threshold(skd_context *ctx, size_t t) { return skd_gemm_set_indirect_threshold(ctx, t); }

static skd_status override_kernel(skd_context *ctx, const char *kernel, const size_t *v) {
  int xg = strcmp(kernel, "Xgemm") == 0;
  int n = xg ? SKD_TUNE_XGEMM_PARAMS : SKD_TUNE_DIRECT_PARAMS;
  const char *names[SKD_TUNE_XGEMM_PARAMS]; /* CLBlast's C API takes non-const pointers */
  for (int i = 0; i < n; i++) names[i] = xg ? skd_tune_xgemm_names[i] : skd_tune_direct_names[i];
  CLBlastStatusCode code = CLBlastOverrideParameters(ctx->device, kernel, CLBlastPrecisionSingle, (size_t)n, names, v);
  if (code == CLBlastSuccess) return SKD_OK;
  return skd_error(SKD_ECL, "tune: CLBlastOverrideParameters(%s) failed (%d)", kernel, (int)code);
}

static void format_params(char *buf, size_t size, const char *const *names, const size_t *v, int n) {
  size_t used = 0;
  buf[0] = '\0';
  for (int i = 0; i < n && used < size; i++) {
    int w = snprintf(buf + used, size - used, "%s%s=%zu", i ? " " : "", names[i], v[i]);
    if (w < 0) break;
    used += (size_t)w;
  }
}

static int seen_before(const size_t *tried, int ntried, const size_t *v, int nparams) {
  for (int i = 0; i < ntried; i++)
    if (memcmp(tried + (size_t)i * nparams, v, (size_t)nparams * sizeof(size_t)) == 0) return 1;
  return 0;
}

/* Samples `budget` configurations of one kernel (the path forced by the
 * caller) and keeps the fastest that beats ref. best_time[] gets its times
 * (ref's when nothing beat it). Returns 1 when a winner is in best[]. */
static int search_kernel(struct bench *b, const char *kernel, int budget, unsigned long long *rng, const double *ref,
                         size_t *best, double *best_time, skd_tune_report *rep) {
  int xg = strcmp(kernel, "Xgemm") == 0;
  int nparams = xg ? SKD_TUNE_XGEMM_PARAMS : SKD_TUNE_DIRECT_PARAMS;
  size_t *tried = calloc((size_t)budget * nparams + 1, sizeof(size_t));
  double t[MAX_SHAPES], best_score = 1.0;
  int found = 0, ntried = 0;
  memcpy(best_time, ref, sizeof(double) * (size_t)b->nshapes);
  for (int c = 0; tried && c < budget; c++) {
    size_t v[SKD_TUNE_XGEMM_PARAMS];
    int ok = 0;
    for (int attempt = 0; attempt < 100 && !ok; attempt++) {
      int seeds = xg ? skd_tune_xgemm_seed_count() : skd_tune_direct_seed_count();
      if (ntried + attempt < seeds) {
        memcpy(v, xg ? skd_tune_xgemm_seed(ntried + attempt) : skd_tune_direct_seed(ntried + attempt),
               sizeof(size_t) * (size_t)nparams);
        ok = xg ? skd_tune_xgemm_fits(v, &b->ctx->info) : skd_tune_direct_fits(v, &b->ctx->info);
      } else {
        ok = xg ? skd_tune_xgemm_sample(rng, &b->ctx->info, v) : skd_tune_direct_sample(rng, &b->ctx->info, v);
      }
      ok = ok && !seen_before(tried, ntried, v, nparams);
    }
    if (!ok) break; /* the space is exhausted */
    memcpy(tried + (size_t)ntried++ * nparams, v, sizeof(size_t) * nparams);
    char text[400];
    format_params(text, sizeof text, xg ? skd_tune_xgemm_names : skd_tune_direct_names, v, nparams);
    rep->tried++;
    double t0 = skd_tune_now();
    if (override_kernel(b->ctx, kernel, v) != SKD_OK || !measure(b, t)) {
      if (!b->why[0]) snprintf(b->why, sizeof b->why, "%s", skd_error_last());
      rep->rejected++;
      skd_tune_say(b->opt, "%s %d/%d: rejected (%s): %s", kernel, c + 1, budget, text, b->why);
      b->why[0] = '\0';
      skd_error_clear();
      continue;
    }
    double score = relative(b, t, ref);
    if (score < best_score) {
      best_score = score;
      found = 1;
      memcpy(best, v, sizeof(size_t) * nparams);
      memcpy(best_time, t, sizeof(double) * (size_t)b->nshapes);
    }
    skd_tune_say(b->opt, "%s %d/%d: %.1f GFLOP/s, time x%.2f of the defaults%s (%.1f s): %s", kernel, c + 1, budget, gflops(b, t),
        score, score == best_score && found ? ", best so far" : "", skd_tune_now() - t0, text);
  }
  free(tried);
  return found;
}

/* XGEMM_MIN_INDIRECT_SIZE: products whose cube root is below it run the
 * direct kernel. Of the splits between the shapes (sorted by size), the one
 * with the lowest total relative time. */
static size_t choose_threshold(const struct bench *b, const double *direct, const double *indirect,
                               const double *ref) {
  int order[MAX_SHAPES];
  double size[MAX_SHAPES];
  for (int i = 0; i < b->nshapes; i++) {
    size[i] = cbrt(flops(&b->shapes[i]) / 2.0);
    order[i] = i;
  }
  for (int i = 1; i < b->nshapes; i++) /* insertion sort by size */
    for (int j = i; j > 0 && size[order[j]] < size[order[j - 1]]; j--) {
      int x = order[j];
      order[j] = order[j - 1];
      order[j - 1] = x;
    }
  double best = INFINITY;
  size_t threshold = 1;
  for (int split = 0; split <= b->nshapes; split++) { /* the `split` smallest run direct */
    double cost = 0;
    for (int j = 0; j < b->nshapes; j++) {
      int i = order[j];
      cost += (j < split ? direct[i] : indirect[i]) / ref[i];
    }
    size_t t;
    if (split == 0) t = (size_t)floor(size[order[0]]);
    else if (split == b->nshapes) t = (size_t)ceil(size[order[split - 1]]) + 1;
    else t = (size_t)ceil(sqrt(size[order[split - 1]] * size[order[split]]));
    if (t < 1) t = 1;
    if (cost < best - 1e-9) {
      best = cost;
      threshold = t;
    }
  }
  return threshold;
}

void skd_tune_options_default(skd_tune_options *opt) {
  memset(opt, 0, sizeof *opt);
  opt->seed = 1;
}

skd_status skd_tune_run(skd_context *ctx, const skd_tune_options *opt, skd_tuning *out, skd_tune_report *rep) {
  skd_tune_options defaults;
  if (!opt) {
    skd_tune_options_default(&defaults);
    opt = &defaults;
  }
  memset(rep, 0, sizeof *rep);
  skd_tuning_init(out, &ctx->info);
  double start = skd_tune_now();
  struct bench b;
  memset(&b, 0, sizeof b);
  b.ctx = ctx;
  b.opt = opt;
  b.shapes = opt->quick ? quick_shapes : full_shapes;
  b.nshapes = opt->quick ? (int)(sizeof quick_shapes / sizeof quick_shapes[0])
                         : (int)(sizeof full_shapes / sizeof full_shapes[0]);
  b.runs = opt->quick ? 1 : 5;
  int budget = opt->max_candidates > 0 ? opt->max_candidates : opt->quick ? 2 : 16;
  int n_xgemm = budget > 1 ? budget * 3 / 4 : 1, n_direct = budget - n_xgemm;
  unsigned long long rng = opt->seed;

  double def[MAX_SHAPES], ind0[MAX_SHAPES], dir0[MAX_SHAPES], ind[MAX_SHAPES], dir[MAX_SHAPES], fin[MAX_SHAPES];
  skd_status st = skd_tuning_reset(ctx);
  if (st == SKD_OK) st = clear_cache();
  if (st == SKD_OK) st = bench_init(&b);
  if (st != SKD_OK) goto done;
  skd_tune_say(b.opt, "tuning GEMM on %s: %d shapes, %d Xgemm + %d XgemmDirect candidates", ctx->info.name, b.nshapes, n_xgemm,
      n_direct);
  if (!measure(&b, def)) {
    st = skd_error(SKD_ECL, "tune: CLBlast's default GEMM fails on %s: %s", ctx->info.name, b.why);
    goto done;
  }
  skd_tune_say(b.opt, "defaults: %.1f GFLOP/s (geometric mean)", gflops(&b, def));
  if (opt->quick) { /* two program builds fewer: the paths are compared with the defaults as they run */
    memcpy(ind0, def, sizeof ind0);
    memcpy(dir0, def, sizeof dir0);
  } else {
    st = set_threshold(ctx, 1);
    if (st == SKD_OK && !measure(&b, ind0)) st = skd_error(SKD_ECL, "tune: CLBlast's default Xgemm fails: %s", b.why);
    if (st == SKD_OK) skd_tune_say(b.opt, "defaults, indirect path only: %.1f GFLOP/s", gflops(&b, ind0));
    if (st == SKD_OK) st = set_threshold(ctx, FORCE_DIRECT);
    if (st == SKD_OK && !measure(&b, dir0))
      st = skd_error(SKD_ECL, "tune: CLBlast's default XgemmDirect fails: %s", b.why);
    if (st == SKD_OK) skd_tune_say(b.opt, "defaults, direct path only: %.1f GFLOP/s", gflops(&b, dir0));
  }
  if (st != SKD_OK) goto done;

  /* Xgemm with the indirect path forced. */
  if (st == SKD_OK) st = set_threshold(ctx, 1);
  if (st == SKD_OK) out->has_xgemm = search_kernel(&b, "Xgemm", n_xgemm, &rng, ind0, out->xgemm, ind, rep);
  /* The last candidate may not even build: back to the winner (or the
   * defaults) before the direct kernel, which shares CLBlast's program. */
  if (st == SKD_OK) st = clear_cache();
  if (st == SKD_OK && out->has_xgemm) st = override_kernel(ctx, "Xgemm", out->xgemm);
  if (st == SKD_OK) st = set_threshold(ctx, FORCE_DIRECT);
  if (st == SKD_OK && n_direct > 0)
    out->has_direct = search_kernel(&b, "XgemmDirect", n_direct, &rng, dir0, out->direct, dir, rep);
  else if (st == SKD_OK)
    memcpy(dir, dir0, sizeof dir);
  if (st != SKD_OK) goto done;

  out->has_routine = 1;
  out->min_indirect = choose_threshold(&b, dir, ind, def);
  skd_tune_say(b.opt, "XGEMM_MIN_INDIRECT_SIZE=%zu (products of m*n*k below its cube use XgemmDirect)", out->min_indirect);
  st = skd_tuning_apply(ctx, out);
  if (st == SKD_OK && !measure(&b, fin)) st = skd_error(SKD_ECL, "tune: the tuned GEMM fails: %s", b.why);
  if (st != SKD_OK) goto done;
  if (relative(&b, fin, def) >= 1.0) {
    skd_tune_say(b.opt, "the tuned parameters are not faster than the defaults (%.1f vs %.1f GFLOP/s): keeping the defaults",
        gflops(&b, fin), gflops(&b, def));
    skd_tuning_init(out, &ctx->info);
    memcpy(fin, def, sizeof fin);
    st = skd_tuning_apply(ctx, out);
  }
  out->gflops_default = gflops(&b, def);
  out->gflops_tuned = gflops(&b, fin);
  rep->nshapes = b.nshapes;
  for (int i = 0; i < b.nshapes; i++) {
    skd_tune_shape *r = &rep->shapes[i];
    snprintf(r->name, sizeof r->name, "%s", b.shapes[i].name);
    r->trans_a = b.shapes[i].ta;
    r->trans_b = b.shapes[i].tb;
    r->m = b.shapes[i].m;
    r->n = b.shapes[i].n;
    r->k = b.shapes[i].k;
    r->gflops_default = flops(&b.shapes[i]) / def[i] * 1e-9;
    r->gflops_tuned = flops(&b.shapes[i]) / fin[i] * 1e-9;
  }
done:
  bench_free(&b);
  if (st != SKD_OK) CLBlastClearCache(); /* no half-tuned state left behind */
  rep->seconds = skd_tune_now() - start;
  if (st == SKD_OK) {
    time_t now = time(NULL);
    struct tm tm;
    char date[40] = "";
    if (gmtime_r(&now, &tm)) strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", &tm);
    snprintf(out->note, sizeof out->note, "%s; %d candidates (%d rejected) in %.0f s; seed %llu%s", date, rep->tried,
             rep->rejected, rep->seconds, opt->seed, opt->quick ? "; quick (test) shapes" : "");
  }
  return st;
}
