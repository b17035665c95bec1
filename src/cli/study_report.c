/* skd-cl study's report: see study_report.h. */
#include "cli/study_report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "skd/io/fs.h"

double study_t95(int df) {
  static const double t[] = {0,     12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                             2.201, 2.179,  2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080,
                             2.074, 2.069,  2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};
  if (df < 1) return NAN;
  if (df <= 30) return t[df];
  return df <= 60 ? 2.000 + (2.042 - 2.000) * (60 - df) / 30.0 : 1.960 + (2.000 - 1.960) * (df < 1000 ? 60.0 / df : 0);
}

static void mean_sd(const double *v, int n, double *mean, double *sd) {
  double s = 0, ss = 0;
  for (int i = 0; i < n; i++) s += v[i];
  *mean = s / n;
  for (int i = 0; i < n; i++) ss += (v[i] - *mean) * (v[i] - *mean);
  *sd = n > 1 ? sqrt(ss / (n - 1)) : 0.0;
}

void study_summarise(const study_result *r, int run, study_summary *out) {
  int k = r->seeds;
  double pts[STUDY_MAX_SEEDS], diff[STUDY_MAX_SEEDS];
  out->wins = 0;
  for (int i = 0; i < k; i++) {
    pts[i] = 100.0 * r->run[run].miou[i];
    diff[i] = pts[i] - 100.0 * r->run[0].miou[i];
    out->wins += diff[i] > 0;
  }
  mean_sd(pts, k, &out->mean, &out->sd);
  double dsd;
  mean_sd(diff, k, &out->diff, &dsd);
  double half = study_t95(k - 1) * dsd / sqrt((double)k);
  out->diff_lo = out->diff - half;
  out->diff_hi = out->diff + half;
}

static void print_json(const study_result *r, FILE *f) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "teacher", r->teacher_path);
  if (isnan(r->teacher_miou)) cJSON_AddNullToObject(o, "teacher_mean_iou");
  else cJSON_AddNumberToObject(o, "teacher_mean_iou", r->teacher_miou);
  cJSON_AddNumberToObject(o, "seeds", r->seeds);
  cJSON_AddNumberToObject(o, "first_seed", (double)r->first_seed);
  cJSON *runs = cJSON_AddArrayToObject(o, "runs");
  for (int i = 0; i < r->nruns; i++) {
    study_summary s;
    study_summarise(r, i, &s);
    cJSON *x = cJSON_CreateObject();
    cJSON_AddStringToObject(x, "name", r->run[i].name);
    cJSON *per = cJSON_AddArrayToObject(x, "mean_iou");
    for (int k = 0; k < r->seeds; k++) cJSON_AddItemToArray(per, cJSON_CreateNumber(r->run[i].miou[k]));
    cJSON_AddNumberToObject(x, "mean_points", s.mean);
    cJSON_AddNumberToObject(x, "sd_points", s.sd);
    if (i > 0) {
      cJSON_AddNumberToObject(x, "diff_points", s.diff);
      cJSON_AddNumberToObject(x, "diff_ci95_low", s.diff_lo);
      cJSON_AddNumberToObject(x, "diff_ci95_high", s.diff_hi);
      cJSON_AddNumberToObject(x, "wins", s.wins);
    }
    cJSON_AddItemToArray(runs, x);
  }
  char *text = cJSON_Print(o);
  cJSON_Delete(o);
  if (text) fprintf(f, "%s\n", text);
  free(text);
}

/* The rows, as text (markdown 0) or as a Markdown table (markdown 1). */
static void print_table(const study_result *r, int markdown, FILE *f) {
  if (markdown) fprintf(f, "| run");
  else fprintf(f, "%-16s", "run");
  for (int k = 0; k < r->seeds; k++)
    fprintf(f, markdown ? " | seed %llu" : "  seed %-3llu", (unsigned long long)(r->first_seed + (uint64_t)k));
  fprintf(f, markdown ? " | mean | sd | vs baseline (95 %% interval) | wins |\n"
                     : "    mean    sd    vs baseline (95 %% interval)    wins\n");
  if (markdown) {
    fprintf(f, "|---");
    for (int k = 0; k < r->seeds + 4; k++) fprintf(f, "|---");
    fprintf(f, "|\n");
  }
  for (int i = 0; i < r->nruns; i++) {
    study_summary s;
    study_summarise(r, i, &s);
    if (markdown) fprintf(f, "| %s", r->run[i].name);
    else fprintf(f, "%-16s", r->run[i].name);
    for (int k = 0; k < r->seeds; k++) fprintf(f, markdown ? " | %.2f" : "  %8.2f", 100.0 * r->run[i].miou[k]);
    fprintf(f, markdown ? " | %.2f | %.2f" : "  %6.2f  %4.2f", s.mean, s.sd);
    if (i == 0) fprintf(f, markdown ? " | — | — |\n" : "    —\n");
    else if (markdown) fprintf(f, " | %+.2f (%+.2f .. %+.2f) | %d/%d |\n", s.diff, s.diff_lo, s.diff_hi, s.wins, r->seeds);
    else fprintf(f, "  %+6.2f (%+6.2f .. %+6.2f)  %7d/%d\n", s.diff, s.diff_lo, s.diff_hi, s.wins, r->seeds);
  }
}

void study_report_print(const study_result *r, int json, FILE *f) {
  if (json) {
    print_json(r, f);
    return;
  }
  fprintf(f, "\nmIoU (%%) on the validation list over %d seeds; teacher %s", r->seeds, r->teacher_path);
  if (!isnan(r->teacher_miou)) fprintf(f, ": %.2f %%", 100.0 * r->teacher_miou);
  fprintf(f, "\n\n");
  print_table(r, 0, f);
}

int study_report_markdown(const study_result *r, const char *path) {
  char *text = NULL;
  size_t size = 0;
  FILE *f = open_memstream(&text, &size);
  if (!f) return 1;
  fprintf(f, "Teacher `%s`", r->teacher_path);
  if (!isnan(r->teacher_miou)) fprintf(f, ": %.2f %% mIoU", 100.0 * r->teacher_miou);
  fprintf(f, ". mIoU (%%) over %d seeds; \"vs baseline\" is the mean paired difference in points with its 95 %% "
          "interval (Student's t), wins the seeds on which the run beat the baseline.\n\n", r->seeds);
  print_table(r, 1, f);
  fclose(f);
  skd_status st = skd_write_file_atomic(path, text, size);
  free(text);
  if (st != SKD_OK) fprintf(stderr, "skd-cl study: --markdown: %s\n", skd_error_last());
  return st == SKD_OK ? 0 : 1;
}
