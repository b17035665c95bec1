/* skd-cl train: teacher training or student distillation. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "skd/io/fs.h"
#include "cli/config_args.h"
#include "skd/train.h"

static volatile sig_atomic_t interrupted = 0;

static void on_sigint(int sig) {
  (void)sig;
  interrupted = 1;
}

static void log_step(FILE *log, const skd_step_report *r, double images_per_s) {
  fprintf(log, "{\"step\": %ld, \"lr\": %.6g, \"loss\": %.6g, \"task\": %.6g, \"pixel\": %.6g, \"pair\": %.6g, "
               "\"holistic\": %.6g, \"d_loss\": %.6g, \"d_real\": %.6g, \"d_fake\": %.6g, \"d_penalty\": %.6g, "
               "\"images_per_s\": %.4g}\n",
          r->step, r->lr, r->loss, r->task, r->pixel, r->pair, r->holistic, r->d_loss, r->d_real, r->d_fake,
          r->d_penalty, images_per_s);
  fflush(log);
}

static void progress_line(FILE *f, const skd_train_config *c, const skd_step_report *r, double images_per_s,
                          int terminal) {
  double eta = images_per_s > 0 ? (double)(c->steps - r->step) * c->batch / images_per_s : 0;
  fprintf(f, "%sstep %ld/%d  loss %.4f  task %.4f", terminal ? "\r\033[K" : "", r->step, c->steps, r->loss, r->task);
  if (c->teacher_path[0] && c->pixel) fprintf(f, "  pixel %.4f", r->pixel);
  if (c->teacher_path[0] && c->pair) fprintf(f, "  pair %.5f", r->pair);
  if (c->teacher_path[0] && c->holistic) fprintf(f, "  ho %.4f  D %.4f", r->holistic, r->d_loss);
  fprintf(f, "  lr %.2e  %.1f img/s  ETA %d:%02d%s", r->lr, images_per_s, (int)eta / 60, (int)eta % 60,
          terminal ? "" : "\n");
  fflush(f);
}

static int save(skd_trainer *t, const char *dir, const char *name) {
  char path[SKD_PATH_MAX + 64];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  if (skd_trainer_save(t, path) != SKD_OK) {
    fprintf(stderr, "\nskd-cl train: saving %s: %s\n", path, skd_error_last());
    return 0;
  }
  return 1;
}

/* Validates, logs, keeps best.safetensors; returns 0 on error. */
static int validate(skd_trainer *t, FILE *log, const char *dir, int terminal) {
  skd_metrics m;
  if (skd_trainer_validate(t, &m) != SKD_OK) {
    fprintf(stderr, "\nskd-cl train: validation: %s\n", skd_error_last());
    return 0;
  }
  double before = skd_trainer_best_miou(t);
  skd_trainer_note_validation(t, m.mean_iou);
  long step = skd_trainer_step_count(t);
  fprintf(stderr, "%sstep %ld: validation mIoU %.2f%%, pixel accuracy %.2f%%%s\n", terminal ? "\r\033[K" : "", step,
          100.0 * m.mean_iou, 100.0 * m.pixel_accuracy, isnan(before) || m.mean_iou > before ? " (best)" : "");
  fprintf(log, "{\"step\": %ld, \"val_miou\": %.6g, \"val_pixel_accuracy\": %.6g, \"val_mean_accuracy\": %.6g}\n", step,
          m.mean_iou, m.pixel_accuracy, m.mean_accuracy);
  fflush(log);
  if (isnan(before) || m.mean_iou > before) return save(t, dir, "best.safetensors");
  return 1;
}

int cmd_train(const cli_globals *g, int argc, char **argv) {
  skd_train_config cfg;
  skd_train_config_default(&cfg);
  /* --resume is looked up before parsing: the stored config is the base the
   * other options change. */
  const char *resume = cli_find_option(argc, argv, "resume");
  if (resume) {
    int found = 0;
    long step;
    double best;
    if (skd_checkpoint_read_config(resume, &cfg, &found, &step, &best) != SKD_OK || !found) {
      fprintf(stderr, "skd-cl train: --resume %s: %s\n", resume,
              found ? skd_error_last() : "not a training checkpoint of skd-cl (no run configuration)");
      return 1;
    }
  }
  int nfields = 0;
  skd_train_config_fields(&nfields);
  cli_arg *args = calloc((size_t)nfields + 1, sizeof *args);
  const char **strings = calloc((size_t)nfields, sizeof *strings);
  if (!args || !strings) return 1;
  int n = config_args_build(&cfg, args, strings);
  const char *resume_arg = NULL;
  args[n++] = (cli_arg){"resume", CLI_STRING, &resume_arg,
                        "continue the run saved in this checkpoint (its config is the base; options given here win)",
                        0, 0, NULL, 0};
  int rc = cli_parse("train", "--train-list LIST [options]", args, n, argc, argv);
  if (rc == 0) rc = config_args_commit(&cfg, strings, "train");
  free(args);
  free(strings);
  if (rc) return rc == 1 ? 0 : rc;
  if (skd_make_dirs(cfg.out_dir, "--out") != SKD_OK) {
    fprintf(stderr, "skd-cl train: %s\n", skd_error_last());
    return 1;
  }

  skd_context *ctx = cli_open_context(g);
  if (!ctx) return 1;
  skd_trainer *t = NULL;
  if (skd_trainer_create(&t, ctx, &cfg, resume) != SKD_OK) {
    fprintf(stderr, "skd-cl train: %s\n", skd_error_last());
    cli_close_context(ctx);
    return 1;
  }
  const skd_train_config *c = skd_trainer_config(t);
  char log_path[SKD_PATH_MAX + 32];
  snprintf(log_path, sizeof log_path, "%s/log.jsonl", c->out_dir);
  FILE *log = fopen(log_path, "a");
  if (!log) {
    fprintf(stderr, "skd-cl train: cannot open %s: %s\n", log_path, strerror(errno));
    skd_trainer_free(t);
    cli_close_context(ctx);
    return 1;
  }
  int terminal = isatty(fileno(stderr));
  fprintf(stderr, "%s %s (x%.3g) on %s, %d classes, crop %d, batch %d, steps %ld..%d%s%s\n",
          c->teacher_path[0] ? "distilling" : "training", c->student.arch, (double)c->student.width, ctx->info.name,
          c->classes, c->crop, c->batch, skd_trainer_step_count(t), c->steps, c->teacher_path[0] ? " from " : "",
          c->teacher_path);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigint;
  sigaction(SIGINT, &sa, NULL);

  int ok = 1, quiet_every = c->steps / 20 > c->log_every ? c->steps / 20 : c->log_every;
  double rate = 0;
  skd_step_report r;
  while (ok && !interrupted && skd_trainer_step_count(t) < c->steps) {
    if (skd_trainer_step(t, &r) != SKD_OK) {
      fprintf(stderr, "\nskd-cl train: %s\n", skd_error_last());
      ok = 0;
      break;
    }
    double ips = c->batch / r.seconds;
    rate = rate == 0 ? ips : 0.9 * rate + 0.1 * ips;
    if (r.step % c->log_every == 0 || r.step == c->steps) log_step(log, &r, ips);
    if (terminal || r.step % quiet_every == 0 || r.step == c->steps) progress_line(stderr, c, &r, rate, terminal);
    int at_val = c->val_list[0] && c->val_every > 0 && r.step % c->val_every == 0 && r.step < c->steps;
    if (at_val) ok = validate(t, log, c->out_dir, terminal);
    if (ok && (at_val || (c->save_every > 0 && r.step % c->save_every == 0))) ok = save(t, c->out_dir, "last.safetensors");
  }
  if (ok && !interrupted && c->val_list[0]) ok = validate(t, log, c->out_dir, terminal);
  int saved = ok || interrupted ? save(t, c->out_dir, "last.safetensors") : 0;
  if (interrupted && saved)
    fprintf(stderr, "\ninterrupted at step %ld: saved %s/last.safetensors (continue with --resume)\n",
            skd_trainer_step_count(t), c->out_dir);
  else if (ok && saved)
    fprintf(stderr, "%sdone: %s/last.safetensors%s\n", terminal ? "\n" : "", c->out_dir,
            c->val_list[0] ? " and best.safetensors" : "");
  fclose(log);
  skd_trainer_free(t);
  cli_close_context(ctx);
  if (interrupted) return 130;
  return ok && saved ? 0 : 1;
}
