/* Depth metrics over valid pixels (include/skd/depth.h), summed in double so
 * that many images add up without drift. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "skd/depth.h"

#define MIN_PRED 1e-3 /* metres: the logs need d > 0 */

void skd_depth_acc_reset(skd_depth_acc *a) { memset(a, 0, sizeof *a); }

skd_status skd_depth_acc_add(skd_depth_acc *a, const float *pred, const float *gt, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(pred[i]))
      return skd_error(SKD_EINVAL, "depth metrics: prediction at pixel %zu is not a finite number (%g)", i,
                       (double)pred[i]);
  for (size_t i = 0; i < n; i++) {
    const double g = gt[i];
    if (!(g > 0.0) || !isfinite(g)) {
      a->missing++;
      continue;
    }
    const double d = fmax((double)pred[i], MIN_PRED), diff = d - g;
    a->pixels++;
    a->abs_rel += fabs(diff) / g;
    a->sq_rel += diff * diff / g;
    a->sq += diff * diff;
    const double dl = log(d) - log(g);
    a->sq_log += dl * dl;
    a->log10 += fabs(log10(d) - log10(g));
    const double ratio = fmax(d / g, g / d);
    a->delta[0] += ratio < 1.25;
    a->delta[1] += ratio < 1.25 * 1.25;
    a->delta[2] += ratio < 1.25 * 1.25 * 1.25;
  }
  return SKD_OK;
}

void skd_depth_acc_merge(skd_depth_acc *dst, const skd_depth_acc *src) {
  dst->pixels += src->pixels;
  dst->missing += src->missing;
  dst->abs_rel += src->abs_rel;
  dst->sq_rel += src->sq_rel;
  dst->sq += src->sq;
  dst->sq_log += src->sq_log;
  dst->log10 += src->log10;
  for (int k = 0; k < 3; k++) dst->delta[k] += src->delta[k];
}

void skd_depth_metrics_compute(const skd_depth_acc *a, skd_depth_metrics *m) {
  const double n = a->pixels ? (double)a->pixels : NAN;
  m->pixels = a->pixels;
  m->missing = a->missing;
  m->abs_rel = a->abs_rel / n;
  m->sq_rel = a->sq_rel / n;
  m->rms = sqrt(a->sq / n);
  m->rms_log = sqrt(a->sq_log / n);
  m->log10 = a->log10 / n;
  for (int k = 0; k < 3; k++) m->delta[k] = (double)a->delta[k] / n;
}

size_t skd_depth_metrics_format(const skd_depth_metrics *m, char *buf, size_t size) {
  int len = snprintf(buf, size,
                     "abs rel      %.4f\n"
                     "sq rel       %.4f\n"
                     "RMS          %.4f m\n"
                     "RMS(log)     %.4f\n"
                     "log10        %.4f\n"
                     "delta<1.25   %.4f\n"
                     "delta<1.25^2 %.4f\n"
                     "delta<1.25^3 %.4f\n"
                     "valid pixels %llu (missing %llu)\n",
                     m->abs_rel, m->sq_rel, m->rms, m->rms_log, m->log10, m->delta[0], m->delta[1], m->delta[2],
                     (unsigned long long)m->pixels, (unsigned long long)m->missing);
  return len < 0 ? 0 : (size_t)len;
}
