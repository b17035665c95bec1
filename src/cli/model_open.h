/* What skd-cl eval and predict share: the options that say which network a
 * checkpoint holds and how to run it, their defaults from the checkpoint's
 * stored run configuration, and opening it as a frozen network. */
#ifndef SKD_CLI_MODEL_OPEN_H
#define SKD_CLI_MODEL_OPEN_H

#include "cli/args.h"
#include "cli/cli.h"

#define CLI_MODEL_ARGS 10 /* rows cli_model_args adds at most */

typedef struct cli_model {
  /* options; defaults from the checkpoint's run configuration when it has one */
  const char *checkpoint;
  const char *arch;
  float width;
  int classes; /* 0: the checkpoint's */
  const char *preset;
  const char *data_dir; /* NULL: the list file's directory */
  int crop, flip, imagenet_norm;
  int task;                               /* SKD_TASK_SEG | SKD_TASK_DEPTH */
  float depth_min, depth_max, depth_scale; /* --task depth */
  /* what the checkpoint records */
  skd_train_config stored;
  int found;
  /* after cli_model_open */
  skd_context *ctx;
  skd_pspnet *net;
  skd_arena *arena;
} cli_model;

/* Reads the run configuration of the checkpoint named by --checkpoint (looked
 * up before parsing) into the defaults. Returns 0, or an exit status after
 * printing the error. */
int cli_model_init(cli_model *m, const char *command, int argc, char **argv);

/* Appends the shared option rows (at most CLI_MODEL_ARGS); returns their number.
 * with_data: also --data-dir. */
int cli_model_args(cli_model *m, cli_arg *args, int with_data);

/* After parsing: checks the options, creates the context and opens the
 * network (frozen) and an arena. Returns 0, or an exit status after printing
 * the error (everything opened so far is closed again). */
int cli_model_open(cli_model *m, const char *command, const cli_globals *g);
void cli_model_close(cli_model *m);

/* --task, --depth-min, --depth-max, --depth-scale (eval and predict); returns
 * their number (CLI_MODEL_DEPTH_ARGS). */
#define CLI_MODEL_DEPTH_ARGS 4
int cli_model_depth_args(cli_model *m, cli_arg *args);
/* After cli_model_open: the task against the checkpoint's and the depth
 * range; 0, or an exit status after printing the error. */
int cli_model_depth_check(const cli_model *m, const char *command);
skd_depth_bins cli_model_depth_bins(const cli_model *m);

/* Evaluation options from crop, flip and the normalisation. */
void cli_model_eval_options(const cli_model *m, skd_eval_options *o);

/* "resnet18 x0.0625, 8 classes" */
void cli_model_describe(const cli_model *m, char *buf, size_t size);

#endif
