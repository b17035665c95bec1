/* The trainer: teacher training (task loss only) or student distillation
 * (task + pixel-wise + pair-wise + holistic), validation, checkpoints.
 *
 * One step, in the order of the method (METHOD.md section 5):
 *   1. teacher forward in eval mode (no gradients, running statistics)
 *   2. student forward in train mode
 *   3. every loss term, the student's backward and its SGD step (poly lr)
 *   4. with holistic on: one discriminator step on the detached logits
 * (D's gradients are computed before the student's update, which does not
 * change them, so that every term is checked before anything is updated.)
 * All randomness (data order, augmentation, dropout, the penalty's mixing
 * weights) is a function of (seed, step), so a resumed run continues exactly
 * where it stopped. */
#ifndef SKD_TRAIN_H
#define SKD_TRAIN_H

#include "skd/depth.h"
#include "skd/eval.h"
#include "skd/nn/init_from.h"
#include "skd/nn/pspnet.h"
#include "skd/train_config.h"

typedef struct skd_trainer skd_trainer;

/* The phases of a step, for the timing mode (skd_trainer_set_timing). */
typedef enum skd_phase {
  SKD_PHASE_DATA,        /* loader wait + image and label upload */
  SKD_PHASE_TEACHER_FWD,
  SKD_PHASE_STUDENT_FWD,
  SKD_PHASE_TASK_LOSS,   /* both cross-entropy terms and their gradients */
  SKD_PHASE_PIXEL,
  SKD_PHASE_PAIR,
  SKD_PHASE_HOLISTIC_G,  /* L_ho and its gradient through D */
  SKD_PHASE_D_STEP,      /* D's gradients and its update */
  SKD_PHASE_STUDENT_BWD, /* zeroing the gradients + the backward pass */
  SKD_PHASE_OPTIMISER,   /* the loss read-back and NaN check + the student's SGD step */
  SKD_PHASE_COUNT
} skd_phase;

/* "data", "teacher_fwd", ... (NULL out of range). */
const char *skd_phase_name(int phase);

/* The student's loss terms, for the gradient-norm diagnostic. */
enum { SKD_TERM_TASK, SKD_TERM_PIXEL, SKD_TERM_PAIR, SKD_TERM_HOLISTIC, SKD_TERM_COUNT };

/* Every term of one step (host copies of the device values). */
typedef struct skd_step_report {
  long step;       /* steps done, this one included */
  double lr;
  double loss;     /* the student's total objective */
  double task;     /* CE(up(Q_S)) + dsn_weight * CE(up(Q_dsn)) */
  double pixel;    /* L_pi, before lambda_pi (0 when off) */
  double pair;     /* L_pa, before lambda_pa */
  double holistic; /* L_ho = -mean D(Q_S), before lambda_d */
  double distill_ramp; /* the factor on the three distillation weights this step (--distill-warmup), 0..1 */
  double d_loss;   /* the discriminator's loss of step 4 */
  double d_real, d_fake, d_penalty;
  double seconds;  /* wall time of the step */
  /* Data parallel (0 with one rank): wall ms with gradient allreduces in
   * flight; of it, the part after backward ended on the device (not hidden
   * behind it); and the averages' write-back to the device. */
  double allreduce_ms, allreduce_exposed_ms, write_back_ms;
  /* Wall ms per phase with timing on (all 0 otherwise). The D update runs
   * after the student's step but is counted under SKD_PHASE_D_STEP. */
  double phase_ms[SKD_PHASE_COUNT];
  /* With log_grad_norms, on logged steps (has_grad_norms 1): the L2 norm of
   * each weighted term's gradient at the student's logits Q and at its
   * features F (through the head's 1x1 conv for the logit terms); the task
   * term is CE(up(Q)) alone (the DSN term does not reach Q or F). */
  int has_grad_norms;
  double grad_q[SKD_TERM_COUNT], grad_f[SKD_TERM_COUNT];
} skd_step_report;

/* Builds everything the config asks for: data, student (fresh, or from
 * resume_path), teacher (from cfg->teacher_path), discriminator. */
skd_status skd_trainer_create(skd_trainer **out, skd_context *ctx, const skd_train_config *cfg,
                              const char *resume_path);
void skd_trainer_free(skd_trainer *t);

const skd_train_config *skd_trainer_config(const skd_trainer *t);
long skd_trainer_step_count(const skd_trainer *t);
/* What --init loaded; NULL without --init (or when resuming). */
const skd_init_report *skd_trainer_init_report(const skd_trainer *t);
/* The frozen teacher's network, NULL when training without one. Writing its
 * values must be followed by skd_context_changed on their buffer. */
skd_pspnet *skd_trainer_teacher(skd_trainer *t);
/* The network being trained. */
skd_pspnet *skd_trainer_student(skd_trainer *t);
/* The validation list, NULL without one. */
const skd_dataset *skd_trainer_validation_set(const skd_trainer *t);
/* The best validation mIoU so far (NaN before the first validation). */
double skd_trainer_best_miou(const skd_trainer *t);
/* Device buffers created so far for the steps' activations and scratch (the
 * trainer's arena and the networks' pools): constant once a step has run. */
unsigned long skd_trainer_buffer_creations(const skd_trainer *t);

/* Data parallel (mpirun): with on (the default with several ranks),
 * batch-norm statistics and their backward sums are reduced across ranks in
 * training steps (see skd_bn_sync); off: each rank's own batch. Every rank
 * must pass the same value (checked: SKD_EINVAL otherwise). */
skd_status skd_trainer_set_sync_bn(skd_trainer *t, int on);

/* Timing mode (off by default): the step waits for the device after every
 * phase (skd_context_finish) and records its wall time in phase_ms. The
 * syncs cost a little throughput, so training leaves it off. */
void skd_trainer_set_timing(skd_trainer *t, int on);

/* Device memory the trainer holds, in bytes (what skd-cl bench reports).
 * Buffers only: not the OpenCL implementation's own allocations, programs or
 * the loader's host memory. Grows during the first step, then constant. */
typedef struct skd_trainer_memory {
  size_t arena;      /* the step's kept activations, labels, loss temporaries */
  size_t params;     /* values and gradients of student, teacher and D */
  size_t optimiser;  /* momentum buffers of the student's and D's SGD */
  size_t pools;      /* the networks' scratch pools (capacity) */
  size_t workspace;  /* the context's shared scratch buffer */
  size_t derived;    /* kept from frozen weights (the teacher's, transposed for the vec convolution) */
  size_t other;      /* the scalar slots, D's mixing weights */
  size_t total;
} skd_trainer_memory;
void skd_trainer_memory_usage(const skd_trainer *t, skd_trainer_memory *m);

/* Data parallel: the last step's gradient buckets, in start order, in ms
 * from the start of the student's backward (host clock): when the bucket's
 * last gradient was handed over (its backward queued), when its allreduce
 * started (its read-back done) and when its sum was seen back. Returns the
 * bucket count (at most max filled); *backward_end: when the last
 * read-back ended, i.e. backward was done on the device. 0 with one rank. */
typedef struct skd_bucket_timing {
  double megabytes, closed_ms, started_ms, done_ms;
} skd_bucket_timing;
int skd_trainer_bucket_timeline(const skd_trainer *t, skd_bucket_timing *out, int max, double *backward_end);

/* One step. A NaN or Inf in any term (D's loss included) is SKD_EINVAL
 * naming the term and the step; the student's and D's parameters and
 * momentum are then left as they were before the step (what the forwards
 * advance is not: BN running statistics, D's spectral-norm vectors, the
 * loader's batch). */
skd_status skd_trainer_step(skd_trainer *t, skd_step_report *report);

/* The student's parameters and buffers all finite, every BN variance
 * non-negative (one download); else SKD_EFORMAT naming the tensor, the
 * element and the step. A debugging aid: checkpoints are always checked. */
skd_status skd_trainer_check_student(skd_trainer *t);

/* Student on the validation list (whole images); m is filled. */
skd_status skd_trainer_validate(skd_trainer *t, skd_metrics *m);
void skd_trainer_note_validation(skd_trainer *t, double miou);
/* --task depth: the student on the validation depth list. The best
 * checkpoint is the one with the lowest abs rel; its score (what
 * skd_trainer_note_validation and the checkpoints' best_miou keep, higher is
 * better, in (0, 1]) is skd_depth_score(abs rel) = 1 / (1 + abs rel). */
skd_status skd_trainer_validate_depth(skd_trainer *t, skd_depth_metrics *m);
double skd_depth_score(double abs_rel);

/* Checkpoint with everything needed to resume: student, discriminator, both
 * optimisers' states, the step, the best mIoU and the full config. Written
 * atomically. */
skd_status skd_trainer_save(skd_trainer *t, const char *path);

/* Reads the run configuration stored in a checkpoint into *cfg (fields it
 * lacks keep their values); *found says whether there was one (a converted
 * reference checkpoint has none). step and best: what the run had reached. */
skd_status skd_checkpoint_read_config(const char *path, skd_train_config *cfg, int *found, long *step,
                                      double *best);

/* Opens a checkpoint (skd-cl's own, or a converted reference one) as a frozen
 * network: no gradient buffers, to be run in eval mode (forward flags 0). The
 * network is the one the checkpoint's run configuration names or, when it has
 * none, *fallback (arch and width). classes: the count the caller wants, or 0
 * for the checkpoint's (the size of its classifier, head.bias); a checkpoint
 * for another count is SKD_EINVAL naming the file and both counts. Trainer
 * state in the file (optimiser, discriminator) is skipped. stored (may be
 * NULL) receives the run configuration (fields it lacks keep their values);
 * found (may be NULL) says whether there was one. Used by the trainer for the
 * teacher and by skd-cl eval / predict. */
skd_status skd_pspnet_open_checkpoint(skd_pspnet **out, skd_context *ctx, const char *path,
                                      const skd_net_config *fallback, int classes, skd_train_config *stored,
                                      int *found);

#endif
