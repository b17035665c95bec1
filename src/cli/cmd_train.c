/* skd-cl train: teacher training or student distillation. */
#include <stdio.h>

#include "cli/cli.h"
#include "skd/io/fs.h"
#include "cli/config_args.h"
#include "cli/train_run.h"
#include "skd/train.h"

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
  const char *resume_arg = NULL;
  const cli_arg resume_row = {"resume", CLI_STRING, &resume_arg,
                              "continue the run saved in this checkpoint (its config is the base; options given here win)",
                              0, 0, NULL, 0};
  int rc = config_args_parse(&cfg, "train", "--train-list LIST [options]", &resume_row, 1, argc, argv);
  if (rc) return rc == 1 ? 0 : rc;
  if (skd_make_dirs(cfg.out_dir, "--out") != SKD_OK) {
    fprintf(stderr, "skd-cl train: %s\n", skd_error_last());
    return 1;
  }

  skd_context *ctx = cli_open_context(g);
  if (!ctx) return 1;
  rc = train_run(ctx, &cfg, resume, 0, NULL);
  cli_close_context(ctx);
  return rc;
}
