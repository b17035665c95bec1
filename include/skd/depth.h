/* Depth estimation pieces outside the network (issue 14): the standard depth
 * metrics (host), 16-bit depth PNGs and the colour map for predictions.
 * The bins, the task loss and bins -> depth are in skd/loss/depth.h. */
#ifndef SKD_DEPTH_H
#define SKD_DEPTH_H

#include <stddef.h>
#include <stdint.h>

#include "skd/status.h"

/* ---- Metrics (host) ------------------------------------------------------- */

/* Sums over the valid pixels (ground truth > 0 and finite) of any number of
 * images; a prediction below 1e-3 m is clamped there (the logs need d > 0). */
typedef struct skd_depth_acc {
  uint64_t pixels;  /* valid pixels */
  uint64_t missing; /* pixels skipped: ground truth 0 or not finite */
  double abs_rel, sq_rel, sq, sq_log, log10;
  uint64_t delta[3]; /* max(d / g, g / d) < 1.25, 1.25^2, 1.25^3 */
} skd_depth_acc;

void skd_depth_acc_reset(skd_depth_acc *a);
/* Adds n pixels: prediction and ground truth in metres. A prediction that is
 * not finite is an error naming the pixel, and then nothing is added. */
skd_status skd_depth_acc_add(skd_depth_acc *a, const float *pred, const float *gt, size_t n);
void skd_depth_acc_merge(skd_depth_acc *dst, const skd_depth_acc *src);

/* The field's metrics, over the valid pixels (NaN when there is none):
 *   abs_rel = mean |d - g| / g         sq_rel = mean (d - g)^2 / g
 *   rms = sqrt(mean (d - g)^2)          rms_log = sqrt(mean (ln d - ln g)^2)
 *   log10 = mean |log10 d - log10 g|    delta[k] = fraction with max(d/g, g/d) < 1.25^(k+1) */
typedef struct skd_depth_metrics {
  uint64_t pixels, missing;
  double abs_rel, sq_rel, rms, rms_log, log10;
  double delta[3];
} skd_depth_metrics;

void skd_depth_metrics_compute(const skd_depth_acc *a, skd_depth_metrics *out);
/* A text table, snprintf-style (returns the full length). */
size_t skd_depth_metrics_format(const skd_depth_metrics *m, char *buf, size_t size);
/* The scalar for "best checkpoint" with depth: abs rel, lower is better. */
#define SKD_DEPTH_BEST_METRIC "abs_rel"

/* ---- Depth PNGs ----------------------------------------------------------- */

/* Reads a 16-bit single-channel PNG (8-bit ones are refused) of depth in units of 1/scale
 * metre (scale 1000: millimetres) into metres; 0 stays 0 (missing). *out is
 * malloc'd (w * h floats). Errors name the file and what was expected. */
skd_status skd_depth_png_read(const char *path, float scale, float **out, int *w, int *h);
/* Writes metres as a 16-bit grey PNG, value = round(d * scale) clamped to
 * [0, 65535] (0 for missing or negative). Atomic (temporary file, rename). */
skd_status skd_depth_png_write(const char *path, const float *depth, int w, int h, float scale);

/* ---- Colour map ----------------------------------------------------------- */

/* A perceptually ordered map from dark blue-violet through teal and green to
 * yellow (a viridis-like curve computed in code): t in [0, 1] -> RGB. */
void skd_depth_colour(float t, uint8_t rgb[3]);
/* RGB image of depths, near = bright (t = 1 at d_min .. 0 at d_max, linear in
 * log depth); missing pixels black. rgb: 3 w h bytes. */
void skd_depth_colourise(const float *depth, int w, int h, float d_min, float d_max, uint8_t *rgb);

#endif
