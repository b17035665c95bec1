#include "cli/args.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void default_text(const cli_arg *a, char *buf, size_t size) {
  buf[0] = '\0';
  switch (a->type) {
    case CLI_INT: snprintf(buf, size, "%d", *(int *)a->value); break;
    case CLI_U64: snprintf(buf, size, "%llu", (unsigned long long)*(uint64_t *)a->value); break;
    case CLI_FLOAT: snprintf(buf, size, "%g", (double)*(float *)a->value); break;
    case CLI_STRING: {
      const char *s = *(const char **)a->value;
      if (s) snprintf(buf, size, "%s", s);
      break;
    }
    case CLI_FLAG: snprintf(buf, size, "%s", *(int *)a->value ? "on" : "off"); break;
    case CLI_CHOICE: snprintf(buf, size, "%s", a->choices[*(int *)a->value]); break;
  }
}

void cli_print_help(FILE *f, const char *command, const char *usage, const cli_arg *args, int nargs) {
  fprintf(f, "usage: skd-cl [--device N] %s %s\n\noptions:\n", command, usage);
  for (int i = 0; i < nargs; i++) {
    const cli_arg *a = &args[i];
    char left[96], def[256];
    const char *meta = a->type == CLI_INT || a->type == CLI_U64 ? " N"
                       : a->type == CLI_FLOAT                  ? " X"
                       : a->type == CLI_STRING                 ? " TEXT"
                       : a->type == CLI_CHOICE                 ? " CHOICE"
                                                               : "";
    snprintf(left, sizeof left, "--%s%s", a->name, meta);
    default_text(a, def, sizeof def);
    fprintf(f, "  %-26s %s", left, a->help);
    if (a->type == CLI_CHOICE) {
      fprintf(f, " (");
      for (int c = 0; a->choices[c]; c++) fprintf(f, "%s%s", c ? " | " : "", a->choices[c]);
      fprintf(f, ")");
    }
    if (a->required) fprintf(f, " [required]");
    else if (def[0]) fprintf(f, " [default: %s]", def);
    fprintf(f, "\n");
  }
}

static int fail(const char *command, const char *fmt, const char *a, const char *b) {
  fprintf(stderr, "skd-cl %s: ", command);
  fprintf(stderr, fmt, a, b);
  fprintf(stderr, " (see 'skd-cl %s --help')\n", command);
  return 2;
}

static int set_value(const char *command, const cli_arg *a, const char *text) {
  char *end = NULL;
  errno = 0;
  switch (a->type) {
    case CLI_INT: {
      long v = strtol(text, &end, 10);
      if (!*text || *end || errno) return fail(command, "--%s expects an integer, got '%s'", a->name, text);
      if (a->min != a->max && (v < a->min || v > a->max)) {
        char range[96];
        snprintf(range, sizeof range, "'%s' is outside [%g, %g]", text, a->min, a->max);
        return fail(command, "--%s: %s", a->name, range);
      }
      *(int *)a->value = (int)v;
      return 0;
    }
    case CLI_U64: {
      unsigned long long v = strtoull(text, &end, 10);
      if (!*text || *end || errno || text[0] == '-')
        return fail(command, "--%s expects a non-negative integer, got '%s'", a->name, text);
      *(uint64_t *)a->value = v;
      return 0;
    }
    case CLI_FLOAT: {
      double v = strtod(text, &end);
      if (!*text || *end || errno || !isfinite(v))
        return fail(command, "--%s expects a number, got '%s'", a->name, text);
      if (a->min != a->max && (v < a->min || v > a->max)) {
        char range[96];
        snprintf(range, sizeof range, "'%s' is outside [%g, %g]", text, a->min, a->max);
        return fail(command, "--%s: %s", a->name, range);
      }
      *(float *)a->value = (float)v;
      return 0;
    }
    case CLI_STRING: *(const char **)a->value = text; return 0;
    case CLI_CHOICE:
      for (int c = 0; a->choices[c]; c++) {
        if (strcmp(a->choices[c], text) == 0) {
          *(int *)a->value = c;
          return 0;
        }
      }
      return fail(command, "--%s: unknown choice '%s'", a->name, text);
    case CLI_FLAG: break;
  }
  return 0;
}

int cli_parse_operands(const char *command, const char *usage, const cli_arg *args, int nargs, int argc,
                       char **argv, char **operands, int *noperands) {
  char seen[256] = {0};
  int options_done = 0;
  if (noperands) *noperands = 0;
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (!options_done && operands && strcmp(arg, "--") == 0) {
      options_done = 1;
      continue;
    }
    if (options_done || (operands && strncmp(arg, "--", 2) != 0 && strcmp(arg, "-h") != 0)) {
      operands[(*noperands)++] = argv[i];
      continue;
    }
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      cli_print_help(stdout, command, usage, args, nargs);
      return 1;
    }
    if (strncmp(arg, "--", 2) != 0) return fail(command, "unexpected argument '%s'%s", arg, "");
    const char *name = arg + 2;
    int negated = strncmp(name, "no-", 3) == 0;
    const cli_arg *match = NULL;
    int index = -1;
    for (int k = 0; k < nargs && !match; k++) {
      if (strcmp(args[k].name, name) == 0) match = &args[k], index = k, negated = 0;
      else if (negated && args[k].type == CLI_FLAG && strcmp(args[k].name, name + 3) == 0) match = &args[k], index = k;
    }
    if (!match) return fail(command, "unknown option '%s'%s", arg, "");
    if (index < (int)sizeof seen) seen[index] = 1;
    if (match->type == CLI_FLAG) {
      *(int *)match->value = !negated;
      continue;
    }
    if (i + 1 >= argc) return fail(command, "--%s needs a value%s", match->name, "");
    int rc = set_value(command, match, argv[++i]);
    if (rc) return rc;
  }
  for (int k = 0; k < nargs && k < (int)sizeof seen; k++)
    if (args[k].required && !seen[k]) return fail(command, "--%s is required%s", args[k].name, "");
  return 0;
}

int cli_parse(const char *command, const char *usage, const cli_arg *args, int nargs, int argc, char **argv) {
  return cli_parse_operands(command, usage, args, nargs, argc, argv, NULL, NULL);
}

const char *cli_find_option(int argc, char **argv, const char *name) {
  for (int i = 1; i + 1 < argc; i++) {
    if (!strcmp(argv[i], "--")) break;
    if (argv[i][0] == '-' && argv[i][1] == '-' && !strcmp(argv[i] + 2, name)) return argv[i + 1];
  }
  return NULL;
}
