/* cli_arg rows built from the library's training-config field table. */
#ifndef SKD_CLI_CONFIG_ARGS_H
#define SKD_CLI_CONFIG_ARGS_H

#include "cli/args.h"
#include "skd/train_config.h"

/* Fills args (at least skd_train_config_fields' count) for cfg; returns the
 * number of rows. String fields are parsed into `strings` (one pointer per
 * row) and must be copied into cfg with config_args_commit. */
int config_args_build(skd_train_config *cfg, cli_arg *args, const char **strings);
/* Copies the string options that were given into cfg; error when too long. */
int config_args_commit(skd_train_config *cfg, const char **strings, const char *command);

/* Parses argv (argv[0] the subcommand) into cfg: every config field, and
 * --recipe NAME, applied before the other options so that they win; extra
 * rows (may be NULL) are the subcommand's own options. Returns 0, 1 after
 * --help, 2 after an error (printed). */
int config_args_parse(skd_train_config *cfg, const char *command, const char *usage, const cli_arg *extra, int nextra,
                      int argc, char **argv);

#endif
