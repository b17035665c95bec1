/* skd-cl bench: full distillation steps on synthetic data; median ms per
 * step, images/s, a per-phase breakdown and the trainer's device memory.
 *
 * Data: a small synthetic set (skd_demo_dataset_write, images of the crop
 * size) written to a temporary directory that is removed at exit; the
 * networks' weights are random: the teacher is a freshly initialised network
 * saved to a checkpoint in the same directory. The normal training path runs
 * unchanged, with the trainer's timing mode on (a device sync after every
 * phase, so ms/step includes those syncs); --no-phases turns it off and
 * times whole steps (one sync at the end of each).
 * --kernels measures single kernel families instead (bench_kernels.c).
 * With --profile, the per-kernel table gets a "% peak" column: each kernel's
 * GFLOP/s (where its work is recorded) as a share of the device's peak FMA
 * rate, measured once after the steps. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "skd/dist.h"
#include "skd/train.h"

struct preset {
  const char *name, *teacher_arch, *student_arch;
  float teacher_width, student_width;
  int classes, crop, batch, d_width;
};

static const struct preset presets[] = {
    {"demo", "resnet18", "resnet18", 0.25f, 0.125f, 8, 128, 4, 16},
    {"paper", "resnet101", "resnet18", 1.0f, 1.0f, 19, 512, 8, 64},
    {"paper-small", "resnet101", "resnet18", 1.0f, 1.0f, 19, 128, 2, 64},
};
static const char *const preset_names[] = {"demo", "paper", "paper-small", NULL};
static const char *const size_names[] = {"large", "small", NULL};

/* Removes dir and what make_inputs put there (two levels at most). */
static void remove_tree(const char *dir) {
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
      char path[SKD_PATH_MAX + 256];
      snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
      if (unlink(path) != 0) remove_tree(path);
    }
    closedir(d);
  }
  rmdir(dir);
}

/* The data set and the teacher checkpoint in dir; cfg set up to use them. */
static skd_status make_inputs(skd_context *ctx, const struct preset *p, const char dir[512], skd_train_config *cfg,
                              int depth) {
  skd_demo_options dopt;
  skd_demo_options_default(&dopt);
  dopt.width = dopt.height = p->crop;
  dopt.train_count = p->batch > 8 ? p->batch : 8;
  dopt.val_count = 1;
  /* --task depth: the synthetic depth set, a bins head of p->classes bins. */
  skd_status st = depth ? skd_depth_demo_write(dir, 1, &dopt) : skd_demo_dataset_write(dir, 1, &dopt);
  if (st != SKD_OK) return st;

  snprintf(cfg->data_dir, sizeof cfg->data_dir, "%s", dir);
  snprintf(cfg->train_list, sizeof cfg->train_list, "%s/train.txt", dir);
  cfg->val_list[0] = '\0';
  /* The demo labels are 0..7: the paper's 19 classes map them as themselves. */
  snprintf(cfg->preset, sizeof cfg->preset, "%s", p->classes == SKD_DEMO_CLASSES ? "demo" : "generic");
  cfg->classes = p->classes;
  cfg->crop = p->crop;
  cfg->batch = p->batch;
  snprintf(cfg->student.arch, sizeof cfg->student.arch, "%s", p->student_arch);
  cfg->student.width = p->student_width;
  snprintf(cfg->teacher.arch, sizeof cfg->teacher.arch, "%s", p->teacher_arch);
  cfg->teacher.width = p->teacher_width;
  cfg->pixel = cfg->pair = cfg->holistic = 1;
  if (depth) {
    cfg->task = SKD_TASK_DEPTH;
    cfg->depth_bins = p->classes;
    cfg->pixel = 0; /* off by default for depth */
  }
  cfg->d_width = p->d_width;
  snprintf(cfg->out_dir, sizeof cfg->out_dir, "%s", dir);
  snprintf(cfg->teacher_path, sizeof cfg->teacher_path, "%s/teacher.safetensors", dir);

  skd_pspnet_config pc;
  skd_pspnet_config_default(&pc, skd_arch_depth(p->teacher_arch), p->classes);
  pc.width = p->teacher_width;
  pc.with_grad = 0;
  pc.seed = 2;
  skd_pspnet *teacher = NULL;
  st = skd_pspnet_create(&teacher, ctx, &pc);
  if (st == SKD_OK) st = skd_nn_params_save(&teacher->params, cfg->teacher_path);
  skd_pspnet_free(teacher);
  return st;
}

static int compare_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Median of v[0..n) (sorts v). */
static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, compare_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return 1e3 * (double)ts.tv_sec + 1e-6 * (double)ts.tv_nsec;
}

static double mib(size_t bytes) { return (double)bytes / (1024.0 * 1024.0); }

/* The share is of the sum of the phases' medians (which need not equal the
 * median step). */
static void print_phases(const double *phase) {
  double sum = 0;
  for (int i = 0; i < SKD_PHASE_COUNT; i++) sum += phase[i];
  printf("%-14s %12s %8s\n", "phase", "median ms", "share");
  for (int i = 0; i < SKD_PHASE_COUNT; i++)
    printf("%-14s %12.2f %7.1f%%\n", skd_phase_name(i), phase[i], sum > 0 ? 100.0 * phase[i] / sum : 0.0);
  printf("%-14s %12.2f\n\n", "sum", sum);
}

static void print_text(const char *device, const struct preset *p, int steps, int warmup, int phases, double ms,
                       const double *phase, const skd_trainer_memory *m) {
  printf("device      %s\n", device);
  printf("preset      %s: teacher %s x%g, student %s x%g, %d classes, crop %d, batch %d, d-width %d\n", p->name,
         p->teacher_arch, (double)p->teacher_width, p->student_arch, (double)p->student_width, p->classes, p->crop,
         p->batch, p->d_width);
  printf("steps       %d measured (after %d warm-up)\n", steps, warmup);
  printf("ms/step     %.1f (median, %s)\n", ms,
         phases ? "with a device sync after every phase" : "one device sync per step");
  printf("images/s    %.2f\n\n", 1e3 * p->batch / ms);
  if (phases) print_phases(phase);
  printf("device memory %.1f MiB: arena %.1f, parameters+gradients %.1f, optimiser state %.1f, scratch pools %.1f, "
         "workspace %.1f, teacher weights transposed %.1f, other %.2f (buffers the trainer holds)\n",
         mib(m->total), mib(m->arena), mib(m->params), mib(m->optimiser), mib(m->pools), mib(m->workspace),
         mib(m->derived), mib(m->other));
}

static void print_json_string(const char *s) {
  putchar('"');
  for (; *s; s++) printf(*s == '"' || *s == '\\' ? "\\%c" : "%c", *s);
  putchar('"');
}

/* The share of the allreduces' time in flight that backward covered. */
static double hidden_share(double in_flight, double after_backward) {
  if (in_flight <= 0) return 0;
  double h = 100.0 * (1.0 - after_backward / in_flight);
  return h < 0 ? 0 : h;
}

static void print_json(const char *device, const char *tuning, const struct preset *p, int steps, int warmup,
                       int phases, double ms, const double *phase, const skd_trainer_memory *m,
                       const double *allreduce) {
  printf("{\"device\": ");
  print_json_string(device);
  printf(", \"tuning\": ");
  print_json_string(tuning);
  printf(", \"preset\": \"%s\", \"classes\": %d, \"crop\": %d, \"batch\": %d, \"steps\": %d, \"warmup\": %d, "
         "\"ms_per_step\": %.4g, \"images_per_s\": %.4g, \"phases_ms\": ",
         p->name, p->classes, p->crop, p->batch, steps, warmup, ms, 1e3 * p->batch / ms);
  if (phases) {
    for (int i = 0; i < SKD_PHASE_COUNT; i++)
      printf("%s\"%s\": %.4g", i ? ", " : "{", skd_phase_name(i), phase[i]);
    printf("}");
  } else {
    printf("null");
  }
  printf(", \"memory_bytes\": {\"total\": %zu, \"arena\": %zu, \"params\": %zu, \"optimiser\": %zu, \"pools\": %zu, "
         "\"workspace\": %zu, \"derived\": %zu, \"other\": %zu}",
         m->total, m->arena, m->params, m->optimiser, m->pools, m->workspace, m->derived, m->other);
  /* data parallel (1 rank: zeros): the batch is global, the times are medians */
  printf(", \"ranks\": %d, \"images_per_s_per_rank\": %.4g, \"allreduce_ms\": %.4g, "
         "\"allreduce_after_backward_ms\": %.4g, \"allreduce_hidden_percent\": %.4g, \"write_back_ms\": %.4g}\n",
         skd_dist_size(), 1e3 * p->batch / ms / skd_dist_size(), allreduce[0], allreduce[1],
         hidden_share(allreduce[0], allreduce[1]), allreduce[2]);
}

/* Data parallel: the last step's buckets against its backward. */
static void print_buckets(const skd_trainer *t) {
  skd_bucket_timing b[SKD_DIST_MAX_PENDING];
  double backward_end = 0;
  int n = skd_trainer_bucket_timeline(t, b, SKD_DIST_MAX_PENDING, &backward_end);
  for (int i = 0; i < n; i++)
    printf("bucket %-4d %.3f MB: handed over at %.1f ms, allreduce %.1f..%.1f ms\n", i + 1, b[i].megabytes,
           b[i].closed_ms, b[i].started_ms, b[i].done_ms);
  if (n)
    printf("backward    done on the device at %.1f ms (the last step; 0 = D's gradients handed over)\n",
           backward_end);
}

/* Runs warmup + steps steps; fills *ms and phase[] (medians) and *m. */
static skd_status run_steps(skd_context *ctx, skd_trainer *t, int steps, int warmup, int phases, double *ms,
                            double *phase, skd_trainer_memory *m, double allreduce[3]) {
  double *v = calloc((size_t)steps * (SKD_PHASE_COUNT + 4), sizeof *v);
  if (!v) return skd_error(SKD_ENOMEM, "bench: out of host memory");
  skd_trainer_set_timing(t, phases);
  skd_status st = SKD_OK;
  skd_step_report r;
  for (int i = 0; i < warmup + steps && st == SKD_OK; i++) {
    double t0 = now_ms();
    st = skd_trainer_step(t, &r);
    /* Without phases the step returns with work queued: wait for it. */
    if (st == SKD_OK) st = skd_context_finish(ctx);
    if (st != SKD_OK || i < warmup) continue;
    int k = i - warmup;
    v[k] = now_ms() - t0;
    for (int p = 0; p < SKD_PHASE_COUNT; p++) v[(size_t)(p + 1) * steps + k] = r.phase_ms[p];
    v[(size_t)(SKD_PHASE_COUNT + 1) * steps + k] = r.allreduce_ms;
    v[(size_t)(SKD_PHASE_COUNT + 2) * steps + k] = r.allreduce_exposed_ms;
    v[(size_t)(SKD_PHASE_COUNT + 3) * steps + k] = r.write_back_ms;
  }
  if (st == SKD_OK) {
    *ms = median(v, steps);
    for (int p = 0; p < SKD_PHASE_COUNT; p++) phase[p] = median(v + (size_t)(p + 1) * steps, steps);
    allreduce[0] = median(v + (size_t)(SKD_PHASE_COUNT + 1) * steps, steps);
    allreduce[1] = median(v + (size_t)(SKD_PHASE_COUNT + 2) * steps, steps);
    allreduce[2] = median(v + (size_t)(SKD_PHASE_COUNT + 3) * steps, steps);
    skd_trainer_memory_usage(t, m);
  }
  free(v);
  return st;
}

/* The device's peak FMA rate for the profile's "% peak" column, measured in a
 * context of its own with profiling off, so that its kernels stay out of the
 * steps' profile. 0 when it cannot be measured (the column then shows -). */
static double profile_peak_gflops(const cli_globals *g, int *width) {
  cli_globals quiet = *g;
  quiet.profile = 0;
  double gflops = 0;
  skd_context *ctx = cli_open_context(&quiet);
  if (!ctx) return 0;
  fprintf(stderr, "bench: measuring the peak FMA rate for the profile...\n");
  if (bench_peak_fma(ctx, 20.0, 5, 1, &gflops, width) != SKD_OK) {
    fprintf(stderr, "skd-cl bench: the peak FMA rate was not measured: %s\n", skd_error_last());
    gflops = 0;
  }
  cli_close_context(ctx);
  return gflops;
}

int cmd_bench(const cli_globals *g, int argc, char **argv) {
  int preset = 0, steps = 10, warmup = 2, json = 0, phases = 1, kernels = 0, size = 0, d_width = 0, task = 0;
  const char *only = NULL;
  static const char *const tasks[] = {"seg", "depth", NULL};
  const cli_arg args[] = {
      {"task", CLI_CHOICE, &task, "seg, or depth: the synthetic depth set and a 60-bin head, pixel-wise off", 0, 0,
       tasks, 0},
      {"preset", CLI_CHOICE, &preset,
       "networks and sizes: demo (the quickstart's), paper (resnet101 -> resnet18, 19 classes, crop 512, batch 8), "
       "paper-small (the same networks, crop 128, batch 2)",
       0, 0, preset_names, 0},
      {"d-width", CLI_INT, &d_width, "the discriminator's base width instead of the preset's (0: the preset's)", 0,
       4096, NULL, 0},
      {"steps", CLI_INT, &steps, "measured steps (the median is reported)", 1, 100000, NULL, 0},
      {"warmup", CLI_INT, &warmup, "steps run first and left out (kernel builds, buffer growth)", 0, 100000, NULL, 0},
      {"phases", CLI_FLAG, &phases, "time every phase (a device sync after each; --no-phases: whole steps only)", 0, 0,
       NULL, 0},
      {"json", CLI_FLAG, &json, "print one JSON object instead of the table", 0, 0, NULL, 0},
      {"kernels", CLI_FLAG, &kernels,
       "instead of steps: copy bandwidth, peak FMA rate and the softmax-KL, affinity, row-softmax and batch-norm "
       "kernels (GB/s, % of copy); --steps runs per kernel",
       0, 0, NULL, 0},
      {"size", CLI_CHOICE, &size, "inputs of --kernels: large (default) or small (a quick check)", 0, 0, size_names,
       0},
      {"only", CLI_STRING, &only,
       "--kernels: only the families whose name contains this (the copy and the peak FMA rate always run)", 0, 0,
       NULL, 0},
  };
  int rc = cli_parse("bench", "[--preset demo|paper|paper-small | --kernels [--size large|small]] [options]", args,
                     (int)(sizeof args / sizeof args[0]), argc, argv);
  if (rc) return rc == 1 ? 0 : rc;
  if (kernels) return bench_kernels(g, size, only, steps, warmup, json);
  struct preset chosen = presets[preset];
  if (d_width > 0) chosen.d_width = d_width;
  if (task == 1) chosen.classes = 60; /* depth bins */
  const struct preset *p = &chosen;

  const char *tmp = getenv("TMPDIR");
  char dir[512]; /* leaves room for the file names under it */
  int len = snprintf(dir, sizeof dir, "%s/skd_bench.XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
  if (len < 0 || len >= (int)sizeof dir) {
    fprintf(stderr, "skd-cl bench: TMPDIR is too long\n");
    return 1;
  }
  if (!mkdtemp(dir)) {
    perror("skd-cl bench: mkdtemp");
    return 1;
  }
  skd_context *ctx = cli_open_context(g);
  if (!ctx) {
    remove_tree(dir);
    return 1;
  }
  skd_train_config cfg;
  skd_train_config_default(&cfg);
  cfg.steps = warmup + steps; /* the poly schedule's length */
  skd_trainer *t = NULL;
  double ms = 0, phase[SKD_PHASE_COUNT] = {0}, allreduce[3] = {0};
  const int lead = skd_dist_rank() == 0; /* under mpirun rank 0 reports */
  skd_trainer_memory m;
  if (!json && lead) fprintf(stderr, "bench %s on %s: %d + %d steps...\n", p->name, ctx->info.name, warmup, steps);
  skd_status st = make_inputs(ctx, p, dir, &cfg, task == 1);
  if (st == SKD_OK) st = skd_trainer_create(&t, ctx, &cfg, NULL);
  if (st == SKD_OK) st = run_steps(ctx, t, steps, warmup, phases, &ms, phase, &m, allreduce);
  if (st != SKD_OK) fprintf(stderr, "skd-cl bench: %s\n", skd_error_last());
  else if (!lead) ;
  else if (json) print_json(ctx->info.name, skd_context_tuning(ctx), p, steps, warmup, phases, ms, phase, &m, allreduce);
  else print_text(ctx->info.name, p, steps, warmup, phases, ms, phase, &m);
  if (st == SKD_OK && !json && lead) printf("tuning      %s\n", skd_context_tuning(ctx));
  if (st == SKD_OK && lead && !json && skd_dist_size() > 1) /* data parallel: the preset's batch is global */
    printf("ranks       %d: %.2f images/s per rank, %.2f in total; gradient allreduce in flight %.1f ms/step, "
           "%.1f ms of it after backward (%.0f%% hidden), write-back %.1f ms (medians)\n", skd_dist_size(),
           1e3 * p->batch / ms / skd_dist_size(), 1e3 * p->batch / ms, allreduce[0], allreduce[1],
           hidden_share(allreduce[0], allreduce[1]), allreduce[2]);
  if (st == SKD_OK && lead && !json) print_buckets(t);
  fflush(stdout);
  skd_trainer_free(t);
  if (ctx->profiling) {
    int width = 0;
    double peak = profile_peak_gflops(g, &width);
    cli_print_profile(ctx, peak, width);
    skd_context_free(ctx); /* not cli_close_context: the table is printed */
  } else {
    cli_close_context(ctx);
  }
  remove_tree(dir);
  return st == SKD_OK ? 0 : 1;
}
