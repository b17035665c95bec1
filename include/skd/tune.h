/* Tuning per device: a search over CLBlast's GEMM kernel parameters
 * (Xgemm, XgemmDirect, GemmRoutine) applied through
 * CLBlastOverrideParameters, and over the convolution (the direct kernels'
 * blocking, direct or GEMM per layer shape); a small text file per device
 * records the winners.
 *
 * skd_context_create applies the device's tuning file by itself (see
 * skd_context_options.tuning); `skd-cl tune` runs the search and writes it.
 * CLBlast keeps parameters per device for the whole process: two contexts
 * on one device share whatever was applied last. */
#ifndef SKD_TUNE_H
#define SKD_TUNE_H

#include <stddef.h>

#include "skd/ops/conv2d.h"
#include "skd/ops/matmul.h"
#include "skd/runtime.h"

/* CLBlast 1.5.3's parameter names, in the order of the arrays below. */
#define SKD_TUNE_XGEMM_PARAMS 16
#define SKD_TUNE_DIRECT_PARAMS 10
extern const char *const skd_tune_xgemm_names[SKD_TUNE_XGEMM_PARAMS];
extern const char *const skd_tune_direct_names[SKD_TUNE_DIRECT_PARAMS];

/* The convolution's per-device choices: the default algorithm and the
 * direct kernels' blocking (cl/conv.cl's CONV_COB, CONV_PXB, CONV_CIB and
 * the host's work-group sizes), plus exact shapes where the other
 * algorithm wins. skd_conv_tuning_default is what an untuned context uses
 * (the values cl/conv.cl and conv2d.c had before tuning existed). */
#define SKD_CONV_MAX_RULES 32

typedef struct skd_conv_rule {
  int n, cin, h, w, cout;  /* input (N, Cin, H, W), Cout output channels */
  skd_conv2d_params p;     /* geometry; p.algo is the algorithm for this shape */
} skd_conv_rule;

typedef struct skd_conv_tuning {
  skd_conv2d_algo algo; /* any; AUTO (untuned): vec on CPUs, direct elsewhere */
  int cob, pxb, cib;    /* output channels, pixels per work-item; input channels per dW work-item */
  int wg, wg_w;         /* work-group sizes of the fwd / dx and of the dW kernels */
  int nrules;
  skd_conv_rule rules[SKD_CONV_MAX_RULES];
} skd_conv_tuning;

void skd_conv_tuning_default(skd_conv_tuning *c);

/* -1 when the blocking is usable (cob and cib in 1..64, pxb a vector width
 * 2, 4, 8 or 16, wg and wg_w in 1..1024); else 0..4 for the field at fault
 * (cob, pxb, cib, wg, wg_w). */
int skd_conv_tuning_invalid(const skd_conv_tuning *c);

/* Makes c the convolution tuning of ctx: the algorithm rules for AUTO and
 * the blocking, passed to cl/conv.cl as -D options (the "conv" programs
 * built before are dropped and rebuilt on next use). SKD_EINVAL for an
 * invalid blocking. */
skd_status skd_context_set_conv_tuning(skd_context *ctx, const skd_conv_tuning *c);

/* The convolution tuning ctx runs with. */
const skd_conv_tuning *skd_context_conv_tuning(const skd_context *ctx);

/* One device's tuning. A kernel that is not `has_` keeps CLBlast's own
 * database values (the search keeps them when nothing beat them). */
typedef struct skd_tuning {
  char platform[128];
  char device[128];
  char driver[64];
  int has_xgemm, has_direct, has_routine;
  size_t xgemm[SKD_TUNE_XGEMM_PARAMS];   /* GEMMK KREG KWG KWI MDIMA MDIMC MWG NDIMB NDIMC NWG SA SB STRM STRN VWM VWN */
  size_t direct[SKD_TUNE_DIRECT_PARAMS]; /* KWID MDIMAD MDIMCD NDIMBD NDIMCD PADA PADB VWMD VWND WGD */
  size_t min_indirect;                   /* GemmRoutine XGEMM_MIN_INDIRECT_SIZE */
  int has_conv;                          /* a Conv line (and ConvShape lines); else the defaults */
  skd_conv_tuning conv;
  /* Informational, written as comments: GFLOP/s over the tuning shapes
   * (geometric mean) with CLBlast's defaults and tuned; 0 = unknown. */
  double gflops_default, gflops_tuned;
  char note[256]; /* a comment line (date, time taken); may be empty */
} skd_tuning;

/* An empty tuning (nothing overridden) for device d. */
void skd_tuning_init(skd_tuning *t, const skd_device_info *d);

/* 1 when t was made for d: same platform, device name and driver version. */
int skd_tuning_matches(const skd_tuning *t, const skd_device_info *d);

/* Reads a tuning file. Anything malformed is SKD_EFORMAT with a message
 * naming the file, the line, the field and what was expected; *out is
 * written only on success. */
skd_status skd_tuning_read(skd_tuning *out, const char *path);

/* Writes t to path atomically (a temporary file renamed into place; on
 * error nothing is left behind), creating missing directories. */
skd_status skd_tuning_write(const skd_tuning *t, const char *path);

/* The device's tuning file: <cache root>/tuning/<key>.txt, the key a hash of
 * platform, device name and driver version. SKD_EINVAL when there is no
 * cache root (no $SKD_CACHE_DIR, $XDG_CACHE_HOME or $HOME). */
skd_status skd_tuning_default_path(const skd_context *ctx, char *buf, size_t size);

/* Sets CLBlast's parameters for ctx's device from t (the kernels t has;
 * the others go back to CLBlast's defaults). */
skd_status skd_tuning_apply(skd_context *ctx, const skd_tuning *t);

/* CLBlast's own defaults again for every device (drops CLBlast's caches). */
skd_status skd_tuning_reset(skd_context *ctx);

/* What skd_context_create does: spec NULL = $SKD_TUNING if set, else the
 * device's default file if it exists; "off" (or "defaults") = none; else a
 * file that must exist. A file for another device or driver is ignored. */
skd_status skd_tuning_load(skd_context *ctx, const char *spec);

/* The tuning ctx runs with: the file's path, or "defaults". */
const char *skd_context_tuning(const skd_context *ctx);

/* ---- the search ---- */

typedef struct skd_tune_options {
  int quick;              /* tiny shapes, two candidates: for tests */
  int max_candidates;     /* configurations compiled and timed; 0 = the default (16; 2 with quick) */
  unsigned long long seed;
  /* Progress lines for the caller to show (no newline); may be NULL. */
  void (*progress)(void *user, const char *line);
  void *user;
} skd_tune_options;

void skd_tune_options_default(skd_tune_options *opt);

#define SKD_TUNE_MAX_SHAPES 8

typedef struct skd_tune_shape {
  char name[40];
  skd_trans trans_a, trans_b;
  int m, n, k;
  double gflops_default; /* CLBlast's defaults */
  double gflops_tuned;   /* the tuning written */
} skd_tune_shape;

typedef struct skd_tune_report {
  skd_tune_shape shapes[SKD_TUNE_MAX_SHAPES];
  int nshapes;
  int tried;     /* candidates compiled and run */
  int rejected;  /* of those: failed or gave wrong results */
  double seconds;
} skd_tune_report;

/* Tunes GEMM on ctx's device: times CLBlast's defaults on representative
 * shapes (row-major NN, NT, TN as the convolutions use them), then a seeded
 * sample of Xgemm and XgemmDirect configurations within CLBlast's
 * constraints and the device's limits (each checked against a host GEMM,
 * median of several timed runs), then XGEMM_MIN_INDIRECT_SIZE from both
 * winners' timings. Leaves the result applied to the device; *out is the
 * tuning to store (empty when nothing beat the defaults). */
skd_status skd_tune_run(skd_context *ctx, const skd_tune_options *opt, skd_tuning *out, skd_tune_report *report);

/* ---- the convolution search ---- */

#define SKD_TUNE_CONV_MAX_SHAPES 32
#define SKD_TUNE_CONV_MAX_BLOCKINGS 16

typedef struct skd_tune_conv_shape {
  char name[48];
  skd_conv_rule shape;     /* shape.p.algo: the algorithm AUTO now picks for it */
  int forward_only;        /* a frozen teacher's layer: only the forward was timed */
  double ms[SKD_CONV2D_VEC + 1]; /* per algorithm (ms[0] unused): forward (+ backward dx and dW), median */
} skd_tune_conv_shape;

typedef struct skd_tune_conv_report {
  skd_tune_conv_shape shapes[SKD_TUNE_CONV_MAX_SHAPES];
  int nshapes;
  skd_conv_tuning blockings[SKD_TUNE_CONV_MAX_BLOCKINGS]; /* in the order tried */
  double blocking_ms[SKD_TUNE_CONV_MAX_BLOCKINGS];        /* total over the shapes; < 0: rejected */
  int nblockings;
  int best_blocking;
  double seconds;
} skd_tune_conv_report;

/* Tunes the convolution on ctx's device (run it after skd_tune_run, whose
 * GEMM tuning the gemm algorithm then uses): the direct kernels' blocking
 * by a coordinate search from the defaults (each candidate first checked
 * against skd_ref_conv2d_* on small odd cases, then the total time of
 * forward + backward over a subset of the layer shapes of the bench presets
 * `demo` and `paper-small`), then per shape direct vs gemm: the algorithm
 * with the least total time, and a rule for each shape where the other
 * wins by more than 10 %. quick: 3 tiny shapes and 2 blockings. Leaves the
 * result set on ctx; *out is what to store (skd_tuning.conv). */
skd_status skd_tune_conv(skd_context *ctx, const skd_tune_options *opt, skd_conv_tuning *out,
                         skd_tune_conv_report *report);

#endif
