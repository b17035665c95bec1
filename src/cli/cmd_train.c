/* skd-cl train: teacher training or student distillation. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "skd/io/fs.h"
#include "cli/config_args.h"
#include "cli/train_run.h"
#include "skd/train.h"

/* --resume auto: OUT/last.safetensors when it exists (a restarted job
 * continues), else NULL (a fresh start). OUT is looked up in the arguments,
 * as --resume is, before parsing. */
static const char *auto_resume_path(int argc, char **argv, const char *default_out, char *buf, size_t size) {
  const char *out = cli_find_option(argc, argv, "out");
  snprintf(buf, size, "%s/last.safetensors", out ? out : default_out);
  return access(buf, F_OK) == 0 ? buf : NULL;
}

/* The usage line, and the reference's workflow: a student started from an
 * ImageNet backbone, distilled from the released teacher (.pth read as is). */
#define TRAIN_USAGE                                                                                        \
  "--train-list LIST [options]\n\n"                                                                        \
  "e.g. the reference student, from CSAILVision's ImageNet backbone, distilled from the released teacher\n" \
  "(PyTorch .pth files are read directly; see docs/CHECKPOINTS.md):\n"                                     \
  "  skd-cl train --train-list train.txt --val-list val.txt --preset cityscapes-trainids --arch resnet18 \\\n" \
  "      --init resnet18-imagenet.pth --init-strict --teacher teacher.pth --teacher-arch resnet101 --out runs/s"

int cmd_train(const cli_globals *g, int argc, char **argv) {
  skd_train_config cfg;
  skd_train_config_default(&cfg);
  /* --resume is looked up before parsing: the stored config is the base the
   * other options change. */
  const char *resume = cli_find_option(argc, argv, "resume");
  int automatic = resume && !strcmp(resume, "auto");
  char auto_path[SKD_PATH_MAX + 32];
  if (automatic) resume = auto_resume_path(argc, argv, cfg.out_dir, auto_path, sizeof auto_path);
  long step = 0;
  if (resume) {
    int found = 0;
    double best;
    if (skd_checkpoint_read_config(resume, &cfg, &found, &step, &best) != SKD_OK || !found) {
      fprintf(stderr, "skd-cl train: --resume %s: %s\n", resume,
              found ? skd_error_last() : "not a training checkpoint of skd-cl (no run configuration)");
      return 1;
    }
  }
  const char *resume_arg = NULL;
  int sync_bn = 1;
  train_run_options o = {.resume = resume, .save_minutes = TRAIN_RUN_SAVE_MINUTES};
  const cli_arg rows[] = {
      {"resume", CLI_STRING, &resume_arg,
       "continue the run saved in this checkpoint (its config is the base; options given here win); auto: "
       "OUT/last.safetensors when it exists, else start afresh (restarting a preempted job with the same command)",
       0, 0, NULL, 0},
      {"save-minutes", CLI_FLOAT, &o.save_minutes,
       "also save OUT/last.safetensors when this many minutes of training passed since the last save (0: only by "
       "--save-every, validation and the end)", 0, 100000, NULL, 0},
      {"check-finite", CLI_FLAG, &o.check_finite,
       "debugging: check the student's parameters for NaN/Inf after every update and stop at the first (one "
       "download per step)", 0, 0, NULL, 0},
      {"sync-bn", CLI_FLAG, &sync_bn,
       "under mpirun: batch-norm statistics over every rank's images (on; --no-sync-bn: each rank's own, which "
       "differs from one process and needs 2+ images per rank)", 0, 0, NULL, 0},
  };
  int rc = config_args_parse(&cfg, "train", TRAIN_USAGE, rows, 4, argc, argv);
  if (rc) return rc == 1 ? 0 : rc;
  if (automatic && resume && step >= cfg.steps) {
    fprintf(stderr, "%s is at step %ld of %d: the run is complete, nothing to do\n", resume, step, cfg.steps);
    return 0;
  }
  if (automatic && resume) fprintf(stderr, "resuming %s at step %ld\n", resume, step);
  if (skd_make_dirs(cfg.out_dir, "--out") != SKD_OK) {
    fprintf(stderr, "skd-cl train: %s\n", skd_error_last());
    return 1;
  }

  o.local_bn = !sync_bn;
  skd_context *ctx = cli_open_context(g);
  if (!ctx) return 1;
  rc = train_run(ctx, &cfg, &o, NULL);
  cli_close_context(ctx);
  return rc;
}
