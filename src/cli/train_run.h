/* One training run to its end (train and study share it): the step loop,
 * the JSON log, validation, checkpoints, and Ctrl-C (save, then stop). */
#ifndef SKD_CLI_TRAIN_RUN_H
#define SKD_CLI_TRAIN_RUN_H

#include "skd/skd.h"
#include "skd/train.h"

/* Trains cfg (continuing resume, a checkpoint, when not NULL) and saves
 * out_dir/last.safetensors (and best.safetensors with a validation list).
 * quiet: progress only as one line at the end. *final_miou (may be NULL):
 * the last validation's mIoU, NaN without a validation list. Returns 0, 1 on
 * an error (printed), or 128 + the signal after SIGINT (Ctrl-C: 130) or
 * SIGTERM (a scheduler's preemption: 143), having saved last.safetensors. */
int train_run(skd_context *ctx, const skd_train_config *cfg, const char *resume, int quiet, double *final_miou);

#endif
