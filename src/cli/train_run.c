/* One training run to its end: see train_run.h. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "skd/dist.h"
#include "skd/io/fs.h"
#include "cli/train_run.h"

/* The signal that asked the run to stop (SIGINT: Ctrl-C; SIGTERM: a
 * scheduler preempting the job), or 0. */
static volatile sig_atomic_t interrupted = 0;

static void on_stop_signal(int sig) { interrupted = sig; }

static double now_minutes(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ((double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec) / 60.0;
}

/* 1 when what was written to the log reached the file; else says so (a full
 * disk must not go unnoticed) and returns 0, which stops the run. */
static int log_written(FILE *log, const char *dir) {
  if (fflush(log) == 0 && !ferror(log)) return 1;
  fprintf(stderr, "\nskd-cl train: writing %s/log.jsonl failed: %s\n", dir, strerror(errno));
  return 0;
}

static int log_step(FILE *log, const char *dir, const skd_step_report *r, double images_per_s) {
  fprintf(log, "{\"step\": %ld, \"lr\": %.6g, \"loss\": %.6g, \"task\": %.6g, \"pixel\": %.6g, \"pair\": %.6g, "
               "\"holistic\": %.6g, \"d_loss\": %.6g, \"d_real\": %.6g, \"d_fake\": %.6g, \"d_penalty\": %.6g, "
               "\"images_per_s\": %.4g",
          r->step, r->lr, r->loss, r->task, r->pixel, r->pair, r->holistic, r->d_loss, r->d_real, r->d_fake,
          r->d_penalty, images_per_s);
  if (r->has_grad_norms) { /* --log-grad-norms: each weighted term's gradient norm at Q and at F */
    static const char *const names[SKD_TERM_COUNT] = {"task", "pixel", "pair", "holistic"};
    for (int at = 0; at < 2; at++) {
      const double *v = at ? r->grad_f : r->grad_q;
      fprintf(log, ", \"grad_%s\": {", at ? "features" : "logits");
      for (int k = 0; k < SKD_TERM_COUNT; k++) fprintf(log, "%s\"%s\": %.6g", k ? ", " : "", names[k], v[k]);
      fprintf(log, "}");
    }
  }
  fprintf(log, "}\n");
  return log_written(log, dir);
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

/* The --init table on stderr, and as one line of log.jsonl. */
static void train_log_init(const skd_init_report *r, const char *path, FILE *log, int quiet) {
  char text[4096];
  skd_init_report_format(r, path, text, sizeof text);
  if (!quiet) fputs(text, stderr);
  cJSON *o = cJSON_CreateObject(), *init = cJSON_AddObjectToObject(o, "init");
  cJSON_AddStringToObject(init, "path", path);
  cJSON_AddStringToObject(init, "layout", r->layout);
  cJSON_AddNumberToObject(init, "loaded", r->loaded);
  cJSON_AddNumberToObject(init, "shape_mismatch", r->mismatched);
  cJSON_AddNumberToObject(init, "missing", r->missing);
  cJSON_AddNumberToObject(init, "missing_backbone", r->missing_backbone);
  cJSON_AddNumberToObject(init, "unused", r->unused);
  char *line = cJSON_PrintUnformatted(o);
  if (line) fprintf(log, "%s\n", line);
  cJSON_free(line);
  cJSON_Delete(o);
}

static int save(skd_trainer *t, const char *dir, const char *name) {
  if (skd_dist_rank() != 0) return 1; /* data parallel: rank 0 writes the checkpoints */
  char path[SKD_PATH_MAX + 64];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  if (skd_trainer_save(t, path) != SKD_OK) {
    fprintf(stderr, "\nskd-cl train: saving %s: %s\n", path, skd_error_last());
    return 0;
  }
  return 1;
}

/* Validates, logs, keeps best.safetensors (quiet: no line on stderr);
 * returns 0 on error. */
/* --task depth: abs rel decides the best checkpoint (score 1 / (1 + abs rel)). */
static int validate_depth(skd_trainer *t, FILE *log, const char *dir, int terminal, int quiet, double *score) {
  skd_depth_metrics m;
  if (skd_trainer_validate_depth(t, &m) != SKD_OK) { /* every rank: its share, the sums merged */
    fprintf(stderr, "\nskd-cl train: validation: %s\n", skd_error_last());
    return 0;
  }
  if (skd_dist_rank() != 0) return 1; /* rank 0 logs and saves */
  *score = skd_depth_score(m.abs_rel);
  double before = skd_trainer_best_miou(t);
  int best = isnan(before) || *score > before;
  skd_trainer_note_validation(t, *score);
  long step = skd_trainer_step_count(t);
  if (!quiet)
    fprintf(stderr, "%sstep %ld: validation abs rel %.4f, delta<1.25 %.4f, RMS %.4f m%s\n", terminal ? "\r\033[K" : "",
            step, m.abs_rel, m.delta[0], m.rms, best ? " (best)" : "");
  fprintf(log, "{\"step\": %ld, \"val_abs_rel\": %.6g, \"val_sq_rel\": %.6g, \"val_rms\": %.6g, \"val_rms_log\": %.6g, "
          "\"val_log10\": %.6g, \"val_delta1\": %.6g, \"val_delta2\": %.6g, \"val_delta3\": %.6g}\n", step, m.abs_rel,
          m.sq_rel, m.rms, m.rms_log, m.log10, m.delta[0], m.delta[1], m.delta[2]);
  if (!log_written(log, dir)) return 0;
  return best ? save(t, dir, "best.safetensors") : 1;
}

static int validate(skd_trainer *t, FILE *log, const char *dir, int terminal, int quiet, double *miou) {
  const int lead = skd_dist_rank() == 0;
  if (skd_trainer_config(t)->task == SKD_TASK_DEPTH) return validate_depth(t, log, dir, terminal, quiet, miou);
  skd_metrics m;
  if (skd_trainer_validate(t, &m) != SKD_OK) { /* every rank: its share, the matrices summed */
    fprintf(stderr, "\nskd-cl train: validation: %s\n", skd_error_last());
    return 0;
  }
  if (!lead) return 1; /* rank 0 logs and saves */
  *miou = m.mean_iou;
  double before = skd_trainer_best_miou(t);
  skd_trainer_note_validation(t, m.mean_iou);
  long step = skd_trainer_step_count(t);
  if (!quiet)
    fprintf(stderr, "%sstep %ld: validation mIoU %.2f%%, pixel accuracy %.2f%%%s\n", terminal ? "\r\033[K" : "", step,
          100.0 * m.mean_iou, 100.0 * m.pixel_accuracy, isnan(before) || m.mean_iou > before ? " (best)" : "");
  fprintf(log, "{\"step\": %ld, \"val_miou\": %.6g, \"val_pixel_accuracy\": %.6g, \"val_mean_accuracy\": %.6g}\n", step,
          m.mean_iou, m.pixel_accuracy, m.mean_accuracy);
  if (!log_written(log, dir)) return 0;
  if (isnan(before) || m.mean_iou > before) return save(t, dir, "best.safetensors");
  return 1;
}

int train_run(skd_context *ctx, const skd_train_config *cfg, const train_run_options *o, double *final_miou) {
  double miou = NAN;
  if (final_miou) *final_miou = NAN;
  /* Data parallel: only rank 0 prints, logs, locks and writes --out. */
  const int lead = skd_dist_rank() == 0;
  int quiet = o->quiet || !lead, lock = -1;
  skd_trainer *t = NULL;
  if ((lead && skd_lock_dir(cfg->out_dir, "--out", &lock) != SKD_OK) ||
      skd_trainer_create(&t, ctx, cfg, o->resume) != SKD_OK || skd_trainer_set_sync_bn(t, !o->local_bn) != SKD_OK) {
    fprintf(stderr, "skd-cl train: %s\n", skd_error_last());
    skd_trainer_free(t);
    skd_unlock_dir(lock);
    return 1;
  }
  const skd_train_config *c = skd_trainer_config(t);
  char log_path[SKD_PATH_MAX + 32];
  snprintf(log_path, sizeof log_path, "%s/log.jsonl", c->out_dir);
  FILE *log = fopen(lead ? log_path : "/dev/null", "a");
  if (!log) {
    fprintf(stderr, "skd-cl train: cannot open %s: %s\n", log_path, strerror(errno));
    skd_trainer_free(t);
    skd_unlock_dir(lock);
    return 1;
  }
  /* A resumed run logs again the steps after its checkpoint that the killed
   * run had logged: this line says where the later entries take over. */
  if (o->resume) fprintf(log, "{\"resumed_at_step\": %ld}\n", skd_trainer_step_count(t));
  int terminal = !quiet && isatty(fileno(stderr));
  if (!quiet)
    fprintf(stderr, "%s %s (x%.3g) on %s, %d %s, crop %d, batch %d, steps %ld..%d%s%s\n",
          c->teacher_path[0] ? "distilling" : "training", c->student.arch, (double)c->student.width, ctx->info.name,
          c->classes, c->task == SKD_TASK_DEPTH ? "depth bins" : "classes", c->crop, c->batch, skd_trainer_step_count(t), c->steps, c->teacher_path[0] ? " from " : "",
          c->teacher_path);
  if (skd_trainer_init_report(t)) train_log_init(skd_trainer_init_report(t), c->init_path, log, quiet);
  if (skd_trainer_validation_set(t)) cli_warn_duplicates(skd_trainer_validation_set(t), "train");
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);

  int unlabeled = skd_train_config_unlabeled_batch(c);
  int ok = 1, quiet_every = c->steps / 20 > c->log_every ? c->steps / 20 : c->log_every;
  double rate = 0, last_save = now_minutes();
  skd_step_report r;
  while (ok && !interrupted && skd_trainer_step_count(t) < c->steps) {
    if (skd_dist_size() > 1) { /* a signal on any rank stops every rank at the same step */
      int stop = interrupted;
      if (skd_dist_max_int(&stop) != SKD_OK) {
        fprintf(stderr, "\nskd-cl train: %s\n", skd_error_last());
        ok = 0;
        break;
      }
      interrupted = stop;
      if (stop) break;
    }
    if (skd_trainer_step(t, &r) != SKD_OK) {
      fprintf(stderr, "\nskd-cl train: %s\n", skd_error_last());
      ok = 0;
      break;
    }
    if (o->check_finite && skd_trainer_check_student(t) != SKD_OK) {
      fprintf(stderr, "\nskd-cl train: %s (training stopped; the last saved checkpoint is unchanged)\n",
              skd_error_last());
      ok = 0;
      break;
    }
    double ips = (c->batch + unlabeled) / r.seconds;
    rate = rate == 0 ? ips : 0.9 * rate + 0.1 * ips;
    if ((r.step % c->log_every == 0 || r.step == c->steps) && !log_step(log, c->out_dir, &r, ips)) {
      ok = 0;
      break;
    }
    if (!quiet && (terminal || r.step % quiet_every == 0 || r.step == c->steps))
      progress_line(stderr, c, &r, rate, terminal);
    int at_val = c->val_list[0] && c->val_every > 0 && r.step % c->val_every == 0 && r.step < c->steps;
    if (at_val) ok = validate(t, log, c->out_dir, terminal, quiet, &miou);
    int by_time = o->save_minutes > 0 && now_minutes() - last_save >= o->save_minutes;
    if (ok && (at_val || by_time || (c->save_every > 0 && r.step % c->save_every == 0))) {
      ok = save(t, c->out_dir, "last.safetensors");
      last_save = now_minutes();
    }
  }
  if (ok && skd_dist_size() > 1) { /* a signal during the last step: all ranks skip the final validation */
    int stop = interrupted;
    if (skd_dist_max_int(&stop) == SKD_OK) interrupted = stop;
  }
  if (ok && !interrupted && c->val_list[0]) ok = validate(t, log, c->out_dir, terminal, quiet, &miou);
  int saved = ok || interrupted ? save(t, c->out_dir, "last.safetensors") : 0;
  if (interrupted && saved && lead)
    fprintf(stderr, "\n%s at step %ld: saved %s/last.safetensors (continue with --resume)\n",
            interrupted == SIGTERM ? "stopped by SIGTERM" : "interrupted", skd_trainer_step_count(t), c->out_dir);
  else if (ok && saved && !quiet)
    fprintf(stderr, "%sdone: %s/last.safetensors%s\n", terminal ? "\n" : "", c->out_dir,
            c->val_list[0] ? " and best.safetensors" : "");
  fclose(log);
  skd_trainer_free(t);
  skd_unlock_dir(lock);
  if (final_miou) *final_miou = miou;
  if (interrupted) return 128 + interrupted; /* the shell's code for death by that signal: 130, 143 */
  return ok && saved ? 0 : 1;
}
