/* One training run to its end (train and study share it): the step loop,
 * the JSON log, validation, checkpoints (by step and by time), and SIGINT /
 * SIGTERM (save, then stop). */
#ifndef SKD_CLI_TRAIN_RUN_H
#define SKD_CLI_TRAIN_RUN_H

#include "skd/skd.h"
#include "skd/train.h"

/* How a run is driven (what does not change its result, so is not stored
 * in its configuration). */
typedef struct train_run_options {
  const char *resume;  /* the checkpoint to continue, or NULL */
  int quiet;           /* progress only as one line at the end */
  float save_minutes;  /* also save last.safetensors after this many minutes since the last save (0: never) */
  int check_finite;    /* debug: check the student's parameters for NaN/Inf after every update */
  int local_bn;        /* data parallel: each rank's own BN statistics (0: synchronised, --sync-bn) */
} train_run_options;

#define TRAIN_RUN_SAVE_MINUTES 10.0f

/* Trains cfg and saves out_dir/last.safetensors (and best.safetensors with a
 * validation list). *final_miou (may be NULL): the last validation's mIoU,
 * NaN without a validation list. Returns 0, 1 on an error (printed), or
 * 128 + the signal after SIGINT (Ctrl-C: 130) or SIGTERM (a scheduler's
 * preemption: 143), having saved last.safetensors. */
int train_run(skd_context *ctx, const skd_train_config *cfg, const train_run_options *o, double *final_miou);

#endif
