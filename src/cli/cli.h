/* skd-cl: shared declarations of the subcommands. */
#ifndef SKD_CLI_H
#define SKD_CLI_H

#include "skd/skd.h"

typedef struct cli_globals {
  int device;    /* -1: default choice */
  int profile;   /* -1: SKD_PROFILE decides */
} cli_globals;

/* dist_device.c: the device of this rank under mpirun (requested when one rank). */
int cli_dist_device(int requested);
int cmd_list_devices(const cli_globals *g, int argc, char **argv);
int cmd_make_dataset(const cli_globals *g, int argc, char **argv);
int cmd_train(const cli_globals *g, int argc, char **argv);
int cmd_eval(const cli_globals *g, int argc, char **argv);
int cmd_predict(const cli_globals *g, int argc, char **argv);
int cmd_export(const cli_globals *g, int argc, char **argv);
int cmd_convert(const cli_globals *g, int argc, char **argv);
int cmd_bench(const cli_globals *g, int argc, char **argv);
int cmd_tune(const cli_globals *g, int argc, char **argv);
int cmd_study(const cli_globals *g, int argc, char **argv);
/* bench --kernels (bench_kernels.c): size 0 large, 1 small; only: NULL or
 * a family-name filter; runs measured per kernel after warmup. Returns the
 * exit code. */
int bench_kernels(const cli_globals *g, int size, const char *only, int runs, int warmup, int json);
/* The device's peak FMA rate in GFLOP/s (bench_kernels.c): the best of
 * float4, float8 and float16 fma() chains on compute units x 1024 work-items,
 * each run made about target_ms long, the median of `runs` runs after
 * `warmup`; 2 flops per fma per lane. vector_width (may be NULL) gets the
 * winning width. */
skd_status bench_peak_fma(skd_context *ctx, double target_ms, int runs, int warmup, double *gflops,
                          int *vector_width);


/* Creates the context for the chosen device; prints the error and returns
 * NULL on failure. */
skd_context *cli_open_context(const cli_globals *g);
/* The per-kernel profile table on stderr; with peak_gflops > 0 (the device's
 * peak FMA rate, from bench_peak_fma with vector width `width`) each kernel's
 * GFLOP/s also as a share of it. */
void cli_print_profile(skd_context *ctx, double peak_gflops, int width);
/* A warning on stderr when an evaluation list repeats an image (its pixels
 * would count twice in the mIoU); once per list and process. */
void cli_warn_duplicates(const skd_dataset *d, const char *command);
/* Prints the per-kernel profile when profiling is on, then frees ctx. */
void cli_close_context(skd_context *ctx);

#endif
