/* skd-cl entry point: global options, then a subcommand. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "skd/dist.h"

struct command {
  const char *name;
  int (*run)(const cli_globals *g, int argc, char **argv);
  const char *summary;
};

static const struct command commands[] = {
    {"list-devices", cmd_list_devices, "list every OpenCL device of every platform (--json)"},
    {"make-dataset", cmd_make_dataset, "write the synthetic demo segmentation set (--out DIR)"},
    {"train", cmd_train, "train a network, or distil a student from a teacher (--teacher)"},
    {"study", cmd_study, "does distillation help? a baseline and distillation settings over seeds, with a teacher"},
    {"eval", cmd_eval, "a checkpoint's per-class IoU, mIoU and accuracies on a labelled list (--json)"},
    {"predict", cmd_predict, "colour PNGs of a checkpoint's predictions (or overlays) for images"},
    {"export", cmd_export, "a checkpoint's network as an ONNX model (fixed or dynamic input size)"},
    {"convert", cmd_convert, "a PyTorch .pth state_dict (e.g. the reference teacher) as skd-cl's safetensors"},
    {"bench", cmd_bench, "time full distillation steps on random data: ms/step, images/s, phases (--preset)"},
    {"tune", cmd_tune, "tune CLBlast's GEMM and the convolution for the device once; later runs apply it (--quick, --out)"},
};

static void usage(FILE *f) {
  fprintf(f, "usage: skd-cl [--device N] [--profile] <command> [options]\n\n"
             "global options:\n"
             "  --device N   OpenCL device by global index (see list-devices; also SKD_DEVICE);\n"
             "               default: the first GPU, else the first device\n"
             "  --profile    print per-kernel totals at exit (also SKD_PROFILE=1)\n"
             "  --help       this text\n\ncommands:\n");
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    fprintf(f, "  %-14s %s\n", commands[i].name, commands[i].summary);
}

static int parse_index(const char *text, int *out) {
  char *end = NULL;
  long v = strtol(text, &end, 10);
  if (!*text || *end || v < 0 || v > 1000000) return 0;
  *out = (int)v;
  return 1;
}

skd_context *cli_open_context(const cli_globals *g) {
  skd_context_options opt;
  skd_context_options_default(&opt);
  opt.device_index = g->device;
  opt.profiling = g->profile;
  skd_context *ctx = NULL;
  if (skd_context_create(&ctx, &opt) != SKD_OK) {
    fprintf(stderr, "skd-cl: %s\n", skd_error_last());
    return NULL;
  }
  return ctx;
}

void cli_warn_duplicates(const skd_dataset *d, const char *command) {
  static char warned[SKD_PATH_MAX]; /* once per list (a study validates every run on the same list) */
  if (!strcmp(warned, skd_dataset_list_path(d))) return;
  int first = 0, repeat = 0;
  int n = skd_dataset_duplicates(d, &first, &repeat);
  snprintf(warned, sizeof warned, "%s", skd_dataset_list_path(d));
  if (n > 0)
    fprintf(stderr, "skd-cl %s: warning: %s: line %d names the image of line %d again (%d repeated line%s in all); "
            "repeated images count again in the mIoU\n", command, skd_dataset_list_path(d), repeat, first, n,
            n == 1 ? "" : "s");
}

static int is_shape(const skd_profile_entry *e) {
  return strncmp(e->name, SKD_PROFILE_SHAPE_PREFIX, strlen(SKD_PROFILE_SHAPE_PREFIX)) == 0;
}

/* One table: kernels (shapes = 0) or convolution layer shapes (1), by time. */
static void print_profile_rows(const skd_profile_entry *e, int n, int shapes, double peak_gflops) {
  double total = 0;
  for (int i = 0; i < n; i++)
    if (is_shape(&e[i]) == shapes) total += e[i].total_ms;
  fprintf(stderr, "%-40s %10s %12s %8s %9s %7s %9s\n", shapes ? "convolution (pass n x cin x h x w > cout)" : "kernel",
          "calls", "total ms", "share", "GFLOP/s", "% peak", "GB/s");
  for (int i = 0; i < n; i++) {
    if (is_shape(&e[i]) != shapes) continue;
    char gflops[16] = "-", share[16] = "-", gbs[16] = "-"; /* work not recorded for this kernel */
    double s = e[i].total_ms * 1e-3;
    if (e[i].flops > 0 && s > 0) {
      snprintf(gflops, sizeof gflops, "%.1f", e[i].flops / s * 1e-9);
      if (peak_gflops > 0) snprintf(share, sizeof share, "%.1f%%", 100.0 * e[i].flops / s * 1e-9 / peak_gflops);
    }
    if (e[i].bytes > 0 && s > 0) snprintf(gbs, sizeof gbs, "%.1f", e[i].bytes / s * 1e-9);
    const char *name = shapes ? e[i].name + strlen(SKD_PROFILE_SHAPE_PREFIX) : e[i].name;
    fprintf(stderr, "%-40s %10lu %12.3f %7.1f%% %9s %7s %9s\n", name, e[i].calls, e[i].total_ms,
            total > 0 ? 100.0 * e[i].total_ms / total : 0.0, gflops, share, gbs);
  }
}

void cli_print_profile(skd_context *ctx, double peak_gflops, int width) {
  skd_profile_entry *e = NULL;
  int n = 0;
  if (skd_profile_summary(ctx, &e, &n) != SKD_OK) {
    fprintf(stderr, "skd-cl: profile: %s\n", skd_error_last());
    return;
  }
  double total = 0;
  int kernels = 0;
  for (int i = 0; i < n; i++)
    if (!is_shape(&e[i])) {
      total += e[i].total_ms;
      kernels++;
    }
  fprintf(stderr, "\nprofile on %s (%d kernels, %.3f ms in all)\n", ctx->info.name, kernels, total);
  if (peak_gflops > 0)
    fprintf(stderr, "peak FMA: %.1f GFLOP/s (float%d fma chains; %% peak = a kernel's GFLOP/s / this)\n", peak_gflops,
            width);
  print_profile_rows(e, n, 0, peak_gflops);
  if (kernels < n) {
    fprintf(stderr, "\nby convolution layer shape (the kernels of each call; share of all convolution time)\n");
    print_profile_rows(e, n, 1, peak_gflops);
  }
  free(e);
}

void cli_close_context(skd_context *ctx) {
  if (ctx && ctx->profiling) cli_print_profile(ctx, 0.0, 0);
  skd_context_free(ctx);
}

int main(int argc, char **argv) {
  cli_globals g = {-1, -1};
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    if (strcmp(argv[i], "--device") == 0) {
      if (i + 1 >= argc || !parse_index(argv[i + 1], &g.device)) {
        fprintf(stderr, "skd-cl: --device needs a device index (a number >= 0); see 'skd-cl list-devices'\n");
        return 2;
      }
      i++;
    } else if (strcmp(argv[i], "--profile") == 0) {
      g.profile = 1;
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      return 0;
    } else {
      fprintf(stderr, "skd-cl: unknown global option '%s'\n\n", argv[i]);
      usage(stderr);
      return 2;
    }
  }
  if (i >= argc) {
    usage(stderr);
    return 2;
  }
  for (size_t c = 0; c < sizeof commands / sizeof commands[0]; c++)
    if (strcmp(argv[i], commands[c].name) == 0) {
      /* Under mpirun every rank runs the command (skd/dist.h); else one rank. */
      if (skd_dist_init() != SKD_OK) {
        fprintf(stderr, "skd-cl: %s\n", skd_error_last());
        return 1;
      }
      g.device = cli_dist_device(g.device);
      int rc = commands[c].run(&g, argc - i, argv + i);
      /* A rank that failed on its own (it printed why) would leave the others
       * waiting in a collective: end them all now. Signals stop every rank
       * at the same step (130, 143), so those finish together. */
      if (rc == 1 && skd_dist_size() > 1) skd_dist_abort(rc);
      skd_dist_finalize();
      return rc;
    }
  fprintf(stderr, "skd-cl: unknown command '%s'\n\n", argv[i]);
  usage(stderr);
  return 2;
}
