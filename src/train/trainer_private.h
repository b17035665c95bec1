/* The trainer's state, shared by trainer.c, checkpoint.c and adversary.c. */
#ifndef SKD_TRAINER_PRIVATE_H
#define SKD_TRAINER_PRIVATE_H

#include "skd/ops/batchnorm.h"
#include "skd/data.h"
#include "skd/dist.h"
#include "skd/evaluate.h"
#include "skd/loss.h"
#include "skd/nn/pspnet.h"
#include "skd/optim.h"
#include "skd/train.h"

/* Slots of the device tensor that collects every scalar of a step, so one
 * read brings them all to the host. */
enum scalar_slot {
  S_CE, S_CE_COUNT, S_DSN, S_DSN_COUNT, S_PIXEL, S_PAIR, S_HOLISTIC,
  S_D_LOSS, S_D_REAL, S_D_FAKE, S_D_PENALTY, S_COUNT
};

struct adversary; /* adversary.c: the discriminator and its optimiser */

/* dist_grads.c: one gradient bucket of a step, and the step's buckets. */
typedef struct dist_bucket {
  size_t start, floats; /* where in the staging buffer */
  cl_event read;        /* its last read-back (the queue is in order) */
  int handle;           /* its allreduce (skd_dist_iallreduce_sum) */
  double closed_ms, started_ms, done_ms;
} dist_bucket;

typedef struct dist_grads {
  float *stage; /* every gradient of a step, in the order handed over */
  size_t stage_floats, staged, bucket_start;
  skd_param **params; /* handed over so far, and where each is staged */
  size_t *offsets;
  int nparams, expected_params, params_capacity;
  cl_event last_read;
  dist_bucket buckets[SKD_DIST_MAX_PENDING];
  int nbuckets, nstarted, ndone; /* closed, allreduce started, sum back */
  double begin_ms, backward_end_ms; /* the step's averaging began; the last read-back ended */
  double busy_ms;                /* allreduces in flight (union of intervals) */
  double after_backward_ms;      /* from the last read-back to the last sum back */
  double write_back_ms;          /* the averages to the device */
} dist_grads;

struct skd_trainer {
  skd_context *ctx;
  skd_init_report init; /* what --init loaded (has_init) */
  int has_init;
  skd_train_config cfg;
  skd_label_map map;
  skd_dataset *train_set, *val_set;
  skd_loader *loader;
  skd_dataset *unlabeled_set; /* NULL: none */
  skd_loader *unlabeled_loader;
  int rows;                   /* images per step: batch + unlabeled batch */
  skd_pspnet *student, *teacher;
  skd_optim opt;
  skd_arena *arena;
  skd_tensor scalars;   /* S_COUNT floats, own buffer */
  float *label_host;    /* (rows, 1, crop, crop) */
  float *label_small;   /* (rows, 1, H', W') for the pixel-loss mask */
  float distill_ramp;   /* this step's factor on the distillation weights (--distill-warmup) */
  int logit_h, logit_w;
  long step;
  double best_miou;
  struct adversary *adv;
  int timing; /* skd_trainer_set_timing */
  /* Data parallel (skd/dist.h): this rank, the rank count, the gradient buckets. */
  int rank, ranks;
  dist_grads grads;
  int sync_bn;            /* skd_trainer_set_sync_bn */
  skd_bn_sync bn_sync;    /* its hook (skd/dist.h behind it) */
};

skd_tensor trainer_scalar(const struct skd_trainer *t, enum scalar_slot s);
/* trainer.c: the row of the global batch (labeled, then unlabeled) that
 * this rank's batch row is (data parallel: each rank holds a shard of both). */
int trainer_global_row(const struct skd_trainer *t, int row);
/* trainer.c: the depth bins of a run's configuration. */
skd_depth_bins trainer_depth_bins(const skd_train_config *c);

/* trainer.c: the PSPNet config of a network for `classes` classes. */
skd_status trainer_network_config(const skd_net_config *net, int classes, int with_grad, uint64_t seed,
                                  skd_pspnet_config *out);

/* grad_norms.c: the --log-grad-norms diagnostic. dQ is copied to the host
 * after each logit term (the terms add into it in order, so each term's
 * gradient is the difference to the copy before it); norms at F go through
 * the head's 1x1 conv. */
typedef struct grad_snapshots {
  float *q[SKD_TERM_COUNT]; /* dQ after each term; NULL: not taken this step */
  size_t q_floats;
} grad_snapshots;
void grad_snapshots_free(grad_snapshots *g);
skd_status grad_snapshot(struct skd_trainer *t, grad_snapshots *g, int term, const skd_tensor *dq);
/* Fills r->grad_q and r->grad_f from the snapshots and the pair term's dF (NULL: none). */
skd_status grad_norms_compute(struct skd_trainer *t, const grad_snapshots *g, const skd_tensor *df_pair,
                              skd_step_report *r);

/* dist_grads.c: data parallel over ranks (no-ops with one rank). */
/* Rank 0's values of these parameters on every rank (the start of a run). */
skd_status dist_broadcast_params(struct skd_trainer *t, skd_param *const *p, int n);
/* A step's gradient averaging: begin (expects the student's and D's, and
 * starts D's, complete by then), add each of the student's as backward
 * finishes it (dist_grads_hook, the exec hook), finish (waits for every
 * sum, writes the averages back, fills the times). */
skd_status dist_grads_begin(struct skd_trainer *t);
skd_status dist_grads_add(struct skd_trainer *t, skd_param *const *p, int n);
skd_status dist_grads_hook(void *trainer, skd_param *const *p, int n);
skd_status dist_grads_finish(struct skd_trainer *t);
void dist_grads_free(dist_grads *g);
/* adversary.c: D's trainable parameters (all 0) or its whole state (all 1). */
skd_param *const *adversary_params(struct adversary *a, int *n, int all);

/* checkpoint.c */
/* Optimiser state of a registry under prefix ("optim.student."). */
skd_status checkpoint_write_optim(skd_safetensors_writer *w, skd_nn_params *r, const char *prefix);
skd_status checkpoint_read_optim(skd_safetensors *f, skd_nn_params *r, const char *prefix);

/* adversary.c */
skd_status adversary_create(struct skd_trainer *t);
void adversary_free(struct adversary *a);
/* L_ho = -mean D(Q_S) into S_HOLISTIC; dq += lambda_d * dL_ho/dQ_S. */
skd_status adversary_generator_term(struct skd_trainer *t, const skd_tensor *image, const skd_tensor *q_student,
                                    const skd_tensor *dq);
/* The D step on the detached logits, split so that its loss can be checked
 * before anything is updated: gradients (D's grads; terms into S_D_*), then
 * the SGD update. */
skd_status adversary_gradients(struct skd_trainer *t, const skd_tensor *image, const skd_tensor *q_student,
                               const skd_tensor *q_teacher);
skd_status adversary_update(struct skd_trainer *t);
skd_status adversary_write(struct adversary *a, skd_safetensors_writer *w);
skd_status adversary_read(struct adversary *a, skd_safetensors *f);
/* Device bytes of D: params (values + grads), optimiser state, the rest. */
void adversary_memory(const struct adversary *a, size_t *params, size_t *optimiser, size_t *other);

#endif
