/* A small table-driven option parser shared by the subcommands: one table
 * gives parsing, validation messages and --help. */
#ifndef SKD_CLI_ARGS_H
#define SKD_CLI_ARGS_H

#include <stdint.h>
#include <stdio.h>

typedef enum cli_arg_type {
  CLI_INT,    /* int, within [min, max] */
  CLI_U64,    /* uint64_t (seeds) */
  CLI_FLOAT,  /* float, within [min, max] */
  CLI_STRING, /* const char * (points into argv) */
  CLI_FLAG,   /* int set to 1; "--no-NAME" sets it to 0 */
  CLI_CHOICE  /* int index into choices[] */
} cli_arg_type;

typedef struct cli_arg {
  const char *name; /* without the leading "--" */
  cli_arg_type type;
  void *value;
  const char *help;
  double min, max;  /* CLI_INT / CLI_FLOAT bounds (min == max: unbounded) */
  const char *const *choices; /* CLI_CHOICE: NULL-terminated */
  int required;
} cli_arg;

/* Parses argv[1..] (argv[0] is the subcommand). Returns 0 on success, 1
 * when --help was printed, 2 after printing an error naming the option. */
int cli_parse(const char *command, const char *usage, const cli_arg *args, int nargs, int argc, char **argv);

/* The same, and arguments that are not options (and everything after "--")
 * are collected in operands (room for argc entries) instead of refused. */
int cli_parse_operands(const char *command, const char *usage, const cli_arg *args, int nargs, int argc,
                       char **argv, char **operands, int *noperands);

/* The value following "--name" in argv[1..], or NULL: for an option that sets
 * the defaults of the others (a checkpoint's stored config), looked up
 * before parsing. */
const char *cli_find_option(int argc, char **argv, const char *name);

void cli_print_help(FILE *f, const char *command, const char *usage, const cli_arg *args, int nargs);

#endif
