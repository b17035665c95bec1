/* Every setting of a training run (teacher training or student distillation),
 * with the defaults of the reference code where it has one. The whole config
 * is stored in every checkpoint (as JSON) so that --resume and eval know how
 * the run was set up. */
#ifndef SKD_TRAIN_CONFIG_H
#define SKD_TRAIN_CONFIG_H

#include <stdint.h>

#include "skd/status.h"

#define SKD_PATH_MAX 1024

typedef struct skd_net_config {
  char arch[16]; /* resnet18 | resnet34 | resnet50 | resnet101 */
  float width;   /* channel multiplier, 1 = the paper's networks */
} skd_net_config;

typedef enum skd_adv_type { SKD_ADV_WGAN_GP = 0, SKD_ADV_HINGE = 1 } skd_adv_type;

typedef struct skd_train_config {
  /* data */
  char data_dir[SKD_PATH_MAX];
  char train_list[SKD_PATH_MAX];
  char val_list[SKD_PATH_MAX]; /* "" : no validation */
  char preset[32];             /* cityscapes | camvid | voc | demo | generic ... */
  int classes;
  int crop;
  int batch;
  float scale_min, scale_max, scale_step;
  int mirror;
  int imagenet_norm; /* 0: the reference's BGR mean subtraction */

  /* networks */
  skd_net_config student;
  char teacher_path[SKD_PATH_MAX]; /* "" : plain training (no distillation) */
  /* The teacher's network when its checkpoint does not say (a converted
   * reference checkpoint); skd-cl's own checkpoints carry their config. */
  skd_net_config teacher;
  /* train --init: start the trained network from this checkpoint's tensors
   * whose names and shapes match (an ImageNet backbone); strict: fail unless
   * the whole backbone loads. Not applied when resuming. */
  char init_path[SKD_PATH_MAX]; /* "" : none */
  int init_strict;
  /* Images without labels that get only the distillation terms: each step
   * adds unlabeled_batch of them (0: --batch) to the labeled batch. */
  char unlabeled_list[SKD_PATH_MAX]; /* "" : none */
  int unlabeled_batch;
  int distill_warmup; /* steps over which the distillation weights ramp up linearly from 0 */

  /* schedule and optimiser (student) */
  int steps;
  float lr, momentum, weight_decay, poly_power;
  float dsn_weight; /* 0.4 */
  uint64_t seed;

  /* pixel-wise */
  int pixel;
  float lambda_pi, tau;
  int pixel_norm_mean; /* 0: the reference's sum over the batch / H'W' */
  int pixel_mask_ignore;

  /* pair-wise */
  int pair;
  float lambda_pa;
  int pair_node_size;    /* 0: use pool_scale */
  float pair_pool_scale; /* 0.5 */
  int pair_window;       /* radius r of a (2r+1)^2 window of nodes; -1: global */
  int pair_avg_pool;     /* 0: max pooling (the reference) */
  int pair_detached_norm; /* 0: exact cosine gradient */

  /* holistic */
  int holistic;
  float lambda_d, lambda_gp;
  skd_adv_type adv;
  int d_preprocess; /* 1 BatchNorm, 2 tanh, 3 2*(x/255 - 0.5) */
  int d_conditional;
  int d_width;
  float d_lr, d_momentum;

  /* bookkeeping */
  char out_dir[SKD_PATH_MAX];
  int val_every;
  int log_every;
  int save_every;
  int log_grad_norms; /* each term's gradient norm at the logits and features, in the log */
  /* depth estimation (docs/DEPTH.md); a checkpoint without these fields is segmentation */
  int task;          /* SKD_TASK_SEG | SKD_TASK_DEPTH */
  int depth_bins;    /* classes of the bins head (same for teacher and student) */
  float depth_min, depth_max; /* metres: the bins' range */
  float depth_scale; /* depth PNG units per metre (1000: millimetres) */
  int d_input_depth; /* holistic with depth: D sees the depth map (1) or the bin logits (0) */
} skd_train_config;

enum { SKD_TASK_SEG = 0, SKD_TASK_DEPTH = 1 };

/* The defaults: the reference code's distillation settings (lambda_pi 10,
 * lambda_pa 1, lambda_d 0.1, lambda_gp 10, pool_scale 0.5, SGD lr 0.01
 * momentum 0.9 weight decay 5e-4, poly 0.9, D lr 4e-4). */
void skd_train_config_default(skd_train_config *c);

/* Sets the distillation settings of a named recipe and leaves the rest:
 * "skd" (skd-cl's defaults) or "reference" (the reference code's values:
 * pixel-wise 10 summed over the batch, pair-wise 1 with detached norms,
 * holistic 0.1 with a 64-wide D, no warm-up, lr 0.01). */
skd_status skd_train_config_recipe(skd_train_config *c, const char *name);

/* 18, 34, 50 or 101 for "resnet18" ... "resnet101"; 0 otherwise. */
int skd_arch_depth(const char *arch);

/* Checks ranges and combinations; the message names the option. */
skd_status skd_train_config_validate(const skd_train_config *c);
/* Unlabeled images per step: 0 without --unlabeled-list, else
 * --unlabeled-batch or, when that is 0, --batch. */
int skd_train_config_unlabeled_batch(const skd_train_config *c);

/* JSON (a cJSON-printed object) with every field; the caller frees. */
skd_status skd_train_config_to_json(const skd_train_config *c, char **out);
/* Fields missing from the JSON keep the value they had in *c. */
skd_status skd_train_config_from_json(skd_train_config *c, const char *json, const char *what);

#endif

#ifndef SKD_TRAIN_CONFIG_FIELDS
#define SKD_TRAIN_CONFIG_FIELDS
/* One row per setting: its option name, type, where it lives in the struct
 * and what it means. The CLI, the JSON in checkpoints and the docs all come
 * from this table. */
typedef enum skd_field_type {
  SKD_FIELD_INT,
  SKD_FIELD_U64,
  SKD_FIELD_FLOAT,
  SKD_FIELD_STRING, /* char[size] */
  SKD_FIELD_FLAG,   /* int 0/1 */
  SKD_FIELD_CHOICE  /* int index into choices */
} skd_field_type;

typedef struct skd_config_field {
  const char *name;
  skd_field_type type;
  size_t offset;
  size_t size; /* SKD_FIELD_STRING: buffer size */
  double min, max;
  const char *const *choices;
  const char *help;
} skd_config_field;

const skd_config_field *skd_train_config_fields(int *count);
#endif
