/* skd-cl study's results and their report: per-seed mIoU, mean and sd, the
 * paired difference to the baseline with a 95 % interval (Student's t over
 * the seeds), and wins. */
#ifndef SKD_CLI_STUDY_REPORT_H
#define SKD_CLI_STUDY_REPORT_H

#include <stdint.h>
#include <stdio.h>

#define STUDY_MAX_SEEDS 64

typedef struct study_run {
  char name[48];
  double miou[STUDY_MAX_SEEDS]; /* per seed, 0..1 */
} study_run;

typedef struct study_result {
  int nruns; /* run[0] is the baseline */
  int seeds;
  uint64_t first_seed;
  double teacher_miou; /* NaN: unknown */
  char teacher_path[1024];
  study_run run[32];
} study_result;

/* The summary of one run against the baseline. */
typedef struct study_summary {
  double mean, sd;             /* of the mIoU, in points (percent) */
  double diff, diff_lo, diff_hi; /* paired difference to the baseline and its 95 % interval, points */
  int wins;                    /* seeds on which the run beat the baseline */
} study_summary;

/* Two-sided 95 % quantile of Student's t with df degrees of freedom. */
double study_t95(int df);
void study_summarise(const study_result *r, int run, study_summary *out);

/* The table as text, or one JSON object. */
void study_report_print(const study_result *r, int json, FILE *f);
/* The table as Markdown into path (written whole or not at all); 0 or 1. */
int study_report_markdown(const study_result *r, const char *path);

#endif
