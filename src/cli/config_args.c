#include "cli/config_args.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int config_args_build(skd_train_config *cfg, cli_arg *args, const char **strings) {
  int n = 0;
  const skd_config_field *f = skd_train_config_fields(&n);
  for (int i = 0; i < n; i++) {
    void *p = (char *)cfg + f[i].offset;
    cli_arg a = {f[i].name, CLI_INT, p, f[i].help, f[i].min, f[i].max, f[i].choices, 0};
    switch (f[i].type) {
      case SKD_FIELD_INT: a.type = CLI_INT; break;
      case SKD_FIELD_U64: a.type = CLI_U64; break;
      case SKD_FIELD_FLOAT: a.type = CLI_FLOAT; break;
      case SKD_FIELD_FLAG: a.type = CLI_FLAG; break;
      case SKD_FIELD_CHOICE: a.type = CLI_CHOICE; break;
      case SKD_FIELD_STRING:
        /* Parsed as a pointer; the default shown is the current value. */
        strings[i] = (const char *)p;
        a.type = CLI_STRING;
        a.value = &strings[i];
        break;
    }
    args[i] = a;
  }
  return n;
}

int config_args_commit(skd_train_config *cfg, const char **strings, const char *command) {
  int n = 0;
  const skd_config_field *f = skd_train_config_fields(&n);
  for (int i = 0; i < n; i++) {
    if (f[i].type != SKD_FIELD_STRING) continue;
    char *dst = (char *)cfg + f[i].offset;
    if (strings[i] == dst) continue;
    if (strlen(strings[i]) >= f[i].size) {
      fprintf(stderr, "skd-cl %s: --%s is longer than %zu characters\n", command, f[i].name, f[i].size - 1);
      return 2;
    }
    snprintf(dst, f[i].size, "%s", strings[i]);
  }
  return 0;
}

int config_args_parse(skd_train_config *cfg, const char *command, const char *usage, const cli_arg *extra, int nextra,
                      int argc, char **argv) {
  const char *recipe = cli_find_option(argc, argv, "recipe");
  if (recipe && skd_train_config_recipe(cfg, recipe) != SKD_OK) {
    fprintf(stderr, "skd-cl %s: --recipe: %s\n", command, skd_error_last());
    return 2;
  }
  /* Pixel-wise distillation "hardly improves" depth (the paper): off unless
   * --pixel is given. A stored depth configuration (--resume) keeps its own. */
  const char *task = cli_find_option(argc, argv, "task");
  if (task && !strcmp(task, "depth") && cfg->task != SKD_TASK_DEPTH) cfg->pixel = 0;
  int nfields = 0;
  skd_train_config_fields(&nfields);
  cli_arg *args = calloc((size_t)(nfields + 1 + nextra), sizeof *args);
  const char **strings = calloc((size_t)nfields, sizeof *strings);
  int rc = 2;
  if (args && strings) {
    int n = config_args_build(cfg, args, strings);
    const char *recipe_arg = NULL;
    args[n++] = (cli_arg){"recipe", CLI_STRING, &recipe_arg,
                          "a set of distillation settings, applied before the other options: skd (the defaults) or "
                          "reference (the reference code's values, summed over the batch)", 0, 0, NULL, 0};
    for (int i = 0; i < nextra; i++) args[n++] = extra[i];
    rc = cli_parse(command, usage, args, n, argc, argv);
    if (rc == 0) rc = config_args_commit(cfg, strings, command);
  }
  free(args);
  free(strings);
  return rc;
}
