/* skd-cl study: does distillation help? Trains a baseline (no teacher) and
 * one or more distillation settings over K seeds with one teacher, then
 * reports per-seed mIoU, mean and sd, the paired difference to the baseline
 * with a 95 % interval, and wins. Every run lives in OUT/NAME/seed-S and
 * leaves result.json when done, so an interrupted study continues where it
 * stopped (an unfinished run resumes from its last checkpoint). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "cli/config_args.h"
#include "cli/study_report.h"
#include "cli/train_run.h"
#include "skd/evaluate.h"
#include "skd/io/fs.h"
#include "skd/train.h"

#define STUDY_MAX_RUNS 32

typedef struct study {
  skd_train_config common;
  char out[SKD_PATH_MAX];
  int seeds;
  uint64_t first_seed;
  study_result res;
  char *options[STUDY_MAX_RUNS]; /* each run's own options (owned) */
} study;

static char *dup_string(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  if (p) memcpy(p, s, n);
  return p;
}

/* "NAME: OPTIONS" (or "NAME=OPTIONS") into a run; where names the source. */
static int add_run(study *s, const char *spec, const char *where) {
  const char *sep = strpbrk(spec, ":=");
  if (!sep) {
    fprintf(stderr, "skd-cl study: %s: expected 'NAME: OPTIONS', got '%s'\n", where, spec);
    return 2;
  }
  const char *a = spec, *b = sep;
  while (a < b && (*a == ' ' || *a == '\t')) a++;
  while (b > a && (b[-1] == ' ' || b[-1] == '\t')) b--;
  size_t len = (size_t)(b - a);
  int bad = len == 0 || len >= sizeof s->res.run[0].name;
  for (const char *p = a; p < b; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' ||
          *p == '.'))
      bad = 1;
  if (bad) {
    fprintf(stderr, "skd-cl study: %s: the run name '%.*s' must be 1-%zu letters, digits, '-', '_' or '.'\n", where,
            (int)len, a, sizeof s->res.run[0].name - 1);
    return 2;
  }
  for (int i = 0; i < s->res.nruns; i++)
    if (strlen(s->res.run[i].name) == len && !strncmp(s->res.run[i].name, a, len)) {
      fprintf(stderr, "skd-cl study: %s: run '%.*s' is named twice\n", where, (int)len, a);
      return 2;
    }
  if (s->res.nruns == STUDY_MAX_RUNS) {
    fprintf(stderr, "skd-cl study: %s: more than %d runs\n", where, STUDY_MAX_RUNS - 1);
    return 2;
  }
  study_run *r = &s->res.run[s->res.nruns];
  memcpy(r->name, a, len);
  r->name[len] = '\0';
  s->options[s->res.nruns] = dup_string(sep + 1);
  if (!s->options[s->res.nruns]) return 1;
  s->res.nruns++;
  return 0;
}

/* A plan file: one 'NAME: OPTIONS' per line; blank lines and '#' comments skipped. */
static int read_plan(study *s, const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "skd-cl study: --plan: cannot open '%s': %s\n", path, strerror(errno));
    return 2;
  }
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  int rc = 0, number = 0;
  while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
    number++;
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
    const char *p = line;
    while (*p == ' ' || *p == '\t') p++;
    if (!*p || *p == '#') continue;
    char where[SKD_PATH_MAX + 32];
    snprintf(where, sizeof where, "%s:%d", path, number);
    rc = add_run(s, p, where);
  }
  free(line);
  fclose(f);
  return rc;
}

/* Splits options on blanks into argv[1..] (argv[0] = "study"); the caller frees argv[0]'s copy. */
static char **split_options(const char *text, int *argc) {
  size_t len = strlen(text);
  char *copy = malloc(len + 1);
  char **argv = calloc(len / 2 + 3, sizeof *argv);
  if (!copy || !argv) {
    free(copy);
    free(argv);
    return NULL;
  }
  memcpy(copy, text, len + 1);
  int n = 0;
  argv[n++] = copy; /* doubles as the subcommand name's slot: freed with it */
  for (char *p = strtok(copy + 0, " \t"); p; p = strtok(NULL, " \t")) argv[n++] = p;
  *argc = n;
  return argv;
}

/* A run without distillation: no teacher, so no unlabeled images either. */
static void drop_teacher(skd_train_config *cfg) {
  cfg->teacher_path[0] = '\0';
  cfg->unlabeled_list[0] = '\0';
}

/* Train options in one string applied to cfg; `what` names them in errors.
 * --no-teacher (study only) gives another run without distillation, e.g.
 * the baseline at another learning rate. Returns 0, 1 or 2 (printed). */
static int apply_options(skd_train_config *cfg, const char *options, const char *what) {
  int argc = 0;
  char **argv = split_options(options, &argc);
  if (!argv) return 1;
  int kept = 1;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--no-teacher") == 0) drop_teacher(cfg);
    else argv[kept++] = argv[i];
  }
  int rc = config_args_parse(cfg, what, "", NULL, 0, kept, argv);
  free(argv[0]);
  free(argv);
  return rc ? 2 : 0;
}

/* A run's configuration: the common options, the teacher unless it is the
 * baseline, the run's own options, then seed and directory. */
static int run_config(const study *s, int run, uint64_t seed, skd_train_config *cfg) {
  *cfg = s->common;
  if (run == 0) drop_teacher(cfg);
  char what[128];
  snprintf(what, sizeof what, "study (run '%s')", s->res.run[run].name);
  int rc = apply_options(cfg, s->options[run], what);
  if (rc) return rc;
  cfg->seed = seed;
  if (snprintf(cfg->out_dir, sizeof cfg->out_dir, "%s/%s/seed-%llu", s->out, s->res.run[run].name,
               (unsigned long long)seed) >= (int)sizeof cfg->out_dir) {
    fprintf(stderr, "skd-cl study: --out %s is too long\n", s->out);
    return 2;
  }
  return 0;
}

/* The validation mIoU of a checkpoint, evaluated as training validates. */
static int evaluate_checkpoint(skd_context *ctx, const skd_train_config *cfg, const char *path, double *miou) {
  skd_pspnet *net = NULL;
  skd_arena *arena = NULL;
  skd_dataset *ds = NULL;
  skd_label_map map;
  skd_confusion conf = {0};
  skd_metrics m;
  skd_train_config stored = *cfg;
  int found = 0;
  skd_eval_options opt;
  skd_eval_options_default(&opt);
  if (cfg->imagenet_norm) skd_normalize_imagenet(&opt.normalize);
  skd_status st = skd_label_map_preset(&map, cfg->preset, cfg->classes);
  if (st == SKD_OK) st = skd_pspnet_open_checkpoint(&net, ctx, path, &cfg->student, map.classes, &stored, &found);
  if (st == SKD_OK) st = skd_arena_create(ctx, &arena, 0);
  if (st == SKD_OK) st = skd_dataset_open(&ds, cfg->val_list, cfg->data_dir[0] ? cfg->data_dir : NULL, &map);
  if (st == SKD_OK) st = skd_confusion_init(&conf, map.classes);
  if (st == SKD_OK) st = skd_evaluate(net, arena, ds, &opt, &conf, NULL, NULL);
  if (st == SKD_OK) st = skd_metrics_compute(&conf, &m);
  if (st == SKD_OK) *miou = m.mean_iou;
  else fprintf(stderr, "skd-cl study: evaluating %s: %s\n", path, skd_error_last());
  skd_confusion_free(&conf);
  skd_dataset_free(ds);
  skd_arena_free(arena);
  skd_pspnet_free(net);
  return st == SKD_OK ? 0 : 1;
}

static int file_exists(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f) fclose(f);
  return f != NULL;
}

/* Whether a stored configuration (JSON) is the one given now. The stored one
 * is read over the defaults and written again first, so that a field added
 * to skd-cl since (at its default) does not count as a change. */
static int same_config(const char *stored, const char *now) {
  skd_train_config c;
  skd_train_config_default(&c);
  char *normalised = NULL;
  int same = skd_train_config_from_json(&c, stored, "result.json") == SKD_OK &&
             skd_train_config_to_json(&c, &normalised) == SKD_OK && strcmp(normalised, now) == 0;
  free(normalised);
  return same;
}

/* result.json of a finished run: its mIoU and the configuration it ran with. */
static int read_result(const char *path, const char *config_json, double *miou) {
  size_t size = 0;
  char *text = NULL;
  if (skd_read_file(path, &text, &size, 1 << 20) != SKD_OK) {
    fprintf(stderr, "skd-cl study: %s\n", skd_error_last());
    return 1;
  }
  cJSON *o = cJSON_Parse(text);
  free(text);
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "mean_iou");
  const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "config");
  int rc = 0;
  if (!cJSON_IsNumber(m) || !cJSON_IsString(c)) {
    fprintf(stderr, "skd-cl study: %s: expected a JSON object with 'mean_iou' (a number) and 'config' (a string); "
            "remove the file to redo the run\n", path);
    rc = 1;
  } else if (!same_config(c->valuestring, config_json)) {
    fprintf(stderr, "skd-cl study: %s was trained with other options than this study gives it; use another --out, "
            "or remove that run's directory to redo it\n", path);
    rc = 2;
  } else {
    *miou = m->valuedouble;
  }
  cJSON_Delete(o);
  return rc;
}

static int write_result(const char *path, const char *config_json, double miou) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "mean_iou", miou);
  cJSON_AddStringToObject(o, "config", config_json);
  char *text = cJSON_Print(o);
  cJSON_Delete(o);
  skd_status st = text ? skd_write_file_atomic(path, text, strlen(text)) : skd_error(SKD_ENOMEM, "out of memory");
  free(text);
  if (st != SKD_OK) fprintf(stderr, "skd-cl study: writing %s: %s\n", path, skd_error_last());
  return st == SKD_OK ? 0 : 1;
}

/* One run of one seed: skipped when done, resumed when started, else trained. */
static int do_run(skd_context *ctx, const skd_train_config *cfg, const char *label, double *miou) {
  char *config_json = NULL;
  if (skd_train_config_to_json(cfg, &config_json) != SKD_OK) return 1;
  char result[SKD_PATH_MAX + 32], last[SKD_PATH_MAX + 32];
  snprintf(result, sizeof result, "%s/result.json", cfg->out_dir);
  snprintf(last, sizeof last, "%s/last.safetensors", cfg->out_dir);
  int rc = 0;
  if (file_exists(result)) {
    rc = read_result(result, config_json, miou);
    if (rc == 0) fprintf(stderr, "  %-28s mIoU %6.2f %%  (done before)\n", label, 100.0 * *miou);
    free(config_json);
    return rc;
  }
  const char *resume = NULL;
  if (file_exists(last)) {
    skd_train_config stored = *cfg;
    int found = 0;
    long step = 0;
    double best;
    if (skd_checkpoint_read_config(last, &stored, &found, &step, &best) != SKD_OK || !found) {
      fprintf(stderr, "skd-cl study: %s: %s; remove it to redo the run\n", last,
              found ? skd_error_last() : "not a training checkpoint of skd-cl");
      free(config_json);
      return 1;
    }
    resume = step < cfg->steps ? last : NULL;
    if (!resume) rc = evaluate_checkpoint(ctx, cfg, last, miou); /* finished, but its result was not written */
  }
  if (rc == 0 && (resume || !file_exists(last))) {
    if (skd_make_dirs(cfg->out_dir, "--out") != SKD_OK) {
      fprintf(stderr, "skd-cl study: %s\n", skd_error_last());
      free(config_json);
      return 1;
    }
    int terminal = isatty(fileno(stderr));
    if (terminal) fprintf(stderr, "  %-28s training %d steps...", label, cfg->steps); /* replaced by the result */
    const train_run_options o = {.resume = resume, .quiet = 1, .save_minutes = TRAIN_RUN_SAVE_MINUTES};
    rc = train_run(ctx, cfg, &o, miou);
    if (terminal) fprintf(stderr, "\r\033[K");
  }
  if (rc == 0) rc = write_result(result, config_json, *miou);
  if (rc == 0) fprintf(stderr, "  %-28s mIoU %6.2f %%%s\n", label, 100.0 * *miou, resume ? "  (resumed)" : "");
  free(config_json);
  return rc;
}

/* --teacher-run: the teacher trained once into OUT/teacher (common options + these). */
static int train_teacher(study *s, skd_context *ctx, const char *options) {
  skd_train_config cfg = s->common;
  drop_teacher(&cfg);
  int rc = apply_options(&cfg, options, "study (--teacher-run)");
  if (rc) return rc;
  cfg.seed = s->first_seed;
  if (snprintf(cfg.out_dir, sizeof cfg.out_dir, "%s/teacher", s->out) >= (int)sizeof cfg.out_dir ||
      snprintf(s->common.teacher_path, sizeof s->common.teacher_path, "%s/last.safetensors", cfg.out_dir) >=
          (int)sizeof s->common.teacher_path) {
    fprintf(stderr, "skd-cl study: --out %s is too long\n", s->out);
    return 2;
  }
  double miou = NAN;
  rc = do_run(ctx, &cfg, "teacher", &miou);
  s->res.teacher_miou = miou;
  return rc;
}

/* Takes every "--run SPEC" out of argv (the parser keeps one value per option). */
static int take_runs(study *s, int *argc, char **argv) {
  int out = 1;
  for (int i = 1; i < *argc; i++) {
    if (!strcmp(argv[i], "--run")) {
      if (i + 1 >= *argc) {
        fprintf(stderr, "skd-cl study: --run needs a value ('NAME: OPTIONS')\n");
        return 2;
      }
      int rc = add_run(s, argv[++i], "--run");
      if (rc) return rc;
      continue;
    }
    if (!strncmp(argv[i], "--run=", 6)) {
      int rc = add_run(s, argv[i] + 6, "--run");
      if (rc) return rc;
      continue;
    }
    argv[out++] = argv[i];
  }
  *argc = out;
  return 0;
}

static int study_main(const cli_globals *g, study *s, int argc, char **argv) {
  skd_train_config_default(&s->common);
  snprintf(s->common.out_dir, sizeof s->common.out_dir, "study");
  s->seeds = 3;
  s->first_seed = 1;
  s->res.teacher_miou = NAN;
  s->res.nruns = 1; /* run 0: the baseline */
  snprintf(s->res.run[0].name, sizeof s->res.run[0].name, "baseline");
  s->options[0] = dup_string("");
  if (!s->options[0]) return 1;
  int rc = take_runs(s, &argc, argv);
  if (rc) return rc;
  const char *plan = NULL, *teacher_run = NULL, *markdown = NULL;
  int json = 0;
  const cli_arg extra[] = {
      {"seeds", CLI_INT, &s->seeds, "seeds per run (K)", 2, STUDY_MAX_SEEDS, NULL, 0},
      {"first-seed", CLI_U64, &s->first_seed, "seeds first-seed .. first-seed + K - 1", 0, 0, NULL, 0},
      {"plan", CLI_STRING, &plan, "file of runs, one 'NAME: OPTIONS' per line (as --run)", 0, 0, NULL, 0},
      {"teacher-run", CLI_STRING, &teacher_run,
       "train the teacher first into OUT/teacher with these options on top of the common ones (else give --teacher)",
       0, 0, NULL, 0},
      {"json", CLI_FLAG, &json, "print the results as one JSON object", 0, 0, NULL, 0},
      {"markdown", CLI_STRING, &markdown, "also write the table as Markdown to this file", 0, 0, NULL, 0},
  };
  rc = config_args_parse(&s->common, "study",
                         "--train-list LIST --val-list LIST (--teacher CKPT | --teacher-run OPTS) "
                         "--run 'NAME: OPTIONS' ... [common train options]\n"
                         "  --run 'NAME: OPTIONS'      a distillation setting (repeatable); OPTIONS are train options\n"
                         "                             on top of the common ones (--no-teacher: a run without the\n"
                         "                             teacher). The baseline (no teacher) is always trained and\n"
                         "                             compared against",
                         extra, (int)(sizeof extra / sizeof extra[0]), argc, argv);
  if (rc) return rc == 1 ? 0 : rc;
  if (plan && (rc = read_plan(s, plan)) != 0) return rc;
  if (s->common.task == SKD_TASK_DEPTH) { /* its statistics are of mIoU */
    fprintf(stderr, "skd-cl study: --task depth is not supported (study compares mIoU); samples/depth.sh runs the "
            "depth comparison over seeds with skd-cl train and eval\n");
    return 2;
  }
  snprintf(s->out, sizeof s->out, "%s", s->common.out_dir);
  if (s->res.nruns < 2) {
    fprintf(stderr, "skd-cl study: give at least one distillation setting with --run 'NAME: OPTIONS' or --plan FILE\n");
    return 2;
  }
  if (!s->common.val_list[0]) {
    fprintf(stderr, "skd-cl study: --val-list is required: every run is scored on it\n");
    return 2;
  }
  if (!teacher_run && !s->common.teacher_path[0]) {
    fprintf(stderr, "skd-cl study: give the teacher: --teacher CKPT, or --teacher-run 'OPTIONS' to train it first\n");
    return 2;
  }
  /* Every run's options are checked before anything trains. */
  for (int r = 0; r < s->res.nruns; r++) {
    skd_train_config cfg;
    if ((rc = run_config(s, r, s->first_seed, &cfg)) != 0) return rc;
  }
  if (skd_make_dirs(s->out, "--out") != SKD_OK) {
    fprintf(stderr, "skd-cl study: %s\n", skd_error_last());
    return 1;
  }
  skd_context *ctx = cli_open_context(g);
  if (!ctx) return 1;
  s->res.seeds = s->seeds;
  s->res.first_seed = s->first_seed;
  if (teacher_run) rc = train_teacher(s, ctx, teacher_run);
  else rc = evaluate_checkpoint(ctx, &s->common, s->common.teacher_path, &s->res.teacher_miou);
  if (rc == 0 && !teacher_run)
    fprintf(stderr, "  %-28s mIoU %6.2f %%\n", "teacher", 100.0 * s->res.teacher_miou);
  for (int k = 0; k < s->seeds && rc == 0; k++)
    for (int r = 0; r < s->res.nruns && rc == 0; r++) {
      skd_train_config cfg;
      uint64_t seed = s->first_seed + (uint64_t)k;
      rc = run_config(s, r, seed, &cfg);
      char label[96];
      snprintf(label, sizeof label, "%s, seed %llu", s->res.run[r].name, (unsigned long long)seed);
      if (rc == 0) rc = do_run(ctx, &cfg, label, &s->res.run[r].miou[k]);
    }
  cli_close_context(ctx);
  if (rc == 130 || rc == 143) fprintf(stderr, "study interrupted: run the same command again to continue\n");
  if (rc) return rc;
  snprintf(s->res.teacher_path, sizeof s->res.teacher_path, "%s", s->common.teacher_path);
  study_report_print(&s->res, json, stdout);
  if (markdown && study_report_markdown(&s->res, markdown) != 0) return 1;
  return 0;
}

int cmd_study(const cli_globals *g, int argc, char **argv) {
  study *s = calloc(1, sizeof *s);
  if (!s) return 1;
  char **copy = malloc((size_t)(argc + 1) * sizeof *copy);
  int rc = 1;
  if (copy) {
    memcpy(copy, argv, (size_t)argc * sizeof *copy);
    copy[argc] = NULL;
    rc = study_main(g, s, argc, copy);
  }
  for (int r = 0; r < STUDY_MAX_RUNS; r++) free(s->options[r]);
  free(copy);
  free(s);
  return rc;
}
