/* skd-cl tune: searches CLBlast's GEMM parameters, then the convolution's
 * blocking and algorithm per shape, for the chosen device and stores the
 * result where every later context on that device finds it
 * (or in --out). Progress goes to stderr, the summary table to stdout. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "skd/io/fs.h"

static void progress(void *user, const char *line) {
  (void)user;
  fprintf(stderr, "%s\n", line);
  fflush(stderr);
}

/* Fails early (before minutes of tuning) when path cannot be written. */
static int check_writable(const char *path) {
  char dir[SKD_PATH_MAX];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash && slash != dir) {
    *slash = '\0';
    if (skd_make_dirs(dir, "skd-cl tune: --out") != SKD_OK) {
      fprintf(stderr, "%s\n", skd_error_last());
      return 0;
    }
  }
  char probe[SKD_PATH_MAX + 64];
  snprintf(probe, sizeof probe, "%s.tmp.%ld", path, (long)getpid());
  FILE *f = fopen(probe, "w");
  if (!f) {
    fprintf(stderr, "skd-cl tune: --out %s: cannot write there: %s\n", path, strerror(errno));
    return 0;
  }
  fclose(f);
  remove(probe);
  return 1;
}

static const char *layout(const skd_tune_shape *s) {
  static const char *names[2][2] = {{"NN", "NT"}, {"TN", "TT"}};
  return names[s->trans_a ? 1 : 0][s->trans_b ? 1 : 0];
}

static void print_table(const skd_tune_report *r, const skd_tuning *t) {
  printf("%-12s %-6s %18s %10s %10s %8s\n", "shape", "layout", "m x n x k", "default", "tuned", "speed-up");
  double sum_def = 0, sum_tuned = 0;
  for (int i = 0; i < r->nshapes; i++) {
    const skd_tune_shape *s = &r->shapes[i];
    char size[40];
    snprintf(size, sizeof size, "%dx%dx%d", s->m, s->n, s->k);
    printf("%-12s %-6s %18s %10.1f %10.1f %7.2fx\n", s->name, layout(s), size, s->gflops_default, s->gflops_tuned,
           s->gflops_tuned / s->gflops_default);
    /* Time at equal work per shape: what a step made of these shapes saves. */
    sum_def += 1.0 / s->gflops_default;
    sum_tuned += 1.0 / s->gflops_tuned;
  }
  printf("%-12s %-6s %18s %10.1f %10.1f %7.2fx   (GFLOP/s; geometric mean)\n", "all", "", "", t->gflops_default,
         t->gflops_tuned, t->gflops_tuned / t->gflops_default);
  if (sum_def > 0) printf("time for equal work on every shape: %.0f%% of the defaults'\n", 100.0 * sum_tuned / sum_def);
  printf("Xgemm: %s; XgemmDirect: %s; ", t->has_xgemm ? "tuned" : "CLBlast's defaults kept",
         t->has_direct ? "tuned" : "CLBlast's defaults kept");
  if (t->has_routine) printf("XGEMM_MIN_INDIRECT_SIZE=%zu\n", t->min_indirect);
  else printf("XGEMM_MIN_INDIRECT_SIZE: CLBlast's default\n");
  printf("%d candidates tried (%d rejected) in %.0f s\n", r->tried, r->rejected, r->seconds);
}

static void print_conv_table(const skd_tune_conv_report *r, const skd_conv_tuning *c) {
  printf("\n%-28s %-22s %11s %11s %11s %7s\n", "convolution (fwd+dx+dW)", "N Cin HxW Cout k/s/p/d", "gemm ms",
         "direct ms", "vec ms", "chosen");
  for (int i = 0; i < r->nshapes; i++) {
    const skd_tune_conv_shape *s = &r->shapes[i];
    char shape[64];
    snprintf(shape, sizeof shape, "%d %d %dx%d %d %d/%d/%d/%d", s->shape.n, s->shape.cin, s->shape.h, s->shape.w,
             s->shape.cout, s->shape.p.kh, s->shape.p.stride_h, s->shape.p.pad_h, s->shape.p.dilation_h);
    printf("%-28s %-22s %11.2f %11.2f %11.2f %7s%s\n", s->name, shape, s->ms[SKD_CONV2D_GEMM],
           s->ms[SKD_CONV2D_DIRECT], s->ms[SKD_CONV2D_VEC], skd_conv2d_algo_name(s->shape.p.algo),
           s->forward_only ? "  (forward only)" : "");
  }
  const skd_conv_tuning *b = &r->blockings[r->best_blocking];
  printf("direct blocking: COB=%d PXB=%d CIB=%d WG=%d WGW=%d (best of %d tried: %.1f ms; defaults %.1f ms)\n", b->cob,
         b->pxb, b->cib, b->wg, b->wg_w, r->nblockings, r->blocking_ms[r->best_blocking], r->blocking_ms[0]);
  printf("convolution: %s by default, %d shape rule(s); %.0f s\n", skd_conv2d_algo_name(c->algo), c->nrules, r->seconds);
}

int cmd_tune(const cli_globals *g, int argc, char **argv) {
  int quick = 0, max_candidates = 0, device = g->device;
  uint64_t seed = 1;
  const char *out = NULL;
  const cli_arg args[] = {
      {"device", CLI_INT, &device, "OpenCL device by global index (as the global --device)", 0, 1000000, NULL, 0},
      {"quick", CLI_FLAG, &quick, "tiny shapes and two candidates (seconds; for tests, not for speed)", 0, 0, NULL, 0},
      {"max-candidates", CLI_INT, &max_candidates,
       "configurations to compile and time (0: 16, a few minutes on a 2-core CPU; 2 with --quick)", 0, 100000, NULL,
       0},
      {"seed", CLI_U64, &seed, "seed of the candidate sample", 0, 0, NULL, 0},
      {"out", CLI_STRING, &out, "tuning file to write (default: the device's file under the cache directory, "
                                "which every later run on that device applies)", 0, 0, NULL, 0},
  };
  int rc = cli_parse("tune", "[--quick] [--max-candidates N] [--out FILE]", args, (int)(sizeof args / sizeof args[0]),
                     argc, argv);
  if (rc) return rc == 1 ? 0 : rc;
  if (out && !check_writable(out)) return 1;

  skd_context_options copt;
  skd_context_options_default(&copt);
  copt.device_index = device;
  copt.profiling = 0;
  copt.tuning = "off"; /* start from CLBlast's defaults; an old or broken file must not block re-tuning */
  skd_context *ctx = NULL;
  if (skd_context_create(&ctx, &copt) != SKD_OK) {
    fprintf(stderr, "skd-cl: %s\n", skd_error_last());
    return 1;
  }
  char path[SKD_PATH_MAX];
  int ok = 1;
  if (out) {
    snprintf(path, sizeof path, "%s", out);
  } else if (skd_tuning_default_path(ctx, path, sizeof path) != SKD_OK) {
    fprintf(stderr, "skd-cl tune: %s\n", skd_error_last());
    ok = 0;
  } else {
    ok = check_writable(path);
  }
  if (!ok) {
    skd_context_free(ctx);
    return 1;
  }

  skd_tune_options topt;
  skd_tune_options_default(&topt);
  topt.quick = quick;
  topt.max_candidates = max_candidates;
  topt.seed = seed;
  topt.progress = progress;
  skd_tuning t;
  skd_tune_report report;
  skd_tune_conv_report conv_report;
  skd_status st = skd_tune_run(ctx, &topt, &t, &report);
  /* After the GEMM search, whose result is applied: the gemm algorithm is timed tuned. */
  if (st == SKD_OK) st = skd_tune_conv(ctx, &topt, &t.conv, &conv_report);
  t.has_conv = st == SKD_OK;
  if (st == SKD_OK) st = skd_tuning_write(&t, path);
  if (st != SKD_OK) {
    fprintf(stderr, "skd-cl tune: %s\n", skd_error_last());
  } else {
    printf("device %s (%s, driver %s)\n", ctx->info.name, ctx->info.platform, ctx->info.driver_version);
    print_table(&report, &t);
    print_conv_table(&conv_report, &t.conv);
    printf("wrote %s\n", path);
  }
  skd_context_free(ctx);
  return st == SKD_OK ? 0 : 1;
}
