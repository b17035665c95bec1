/* The depth colour map: piecewise-linear through control points chosen so
 * that lightness rises steadily from a dark blue-violet to a light yellow
 * (like viridis; the points are ours). Monotone lightness keeps near and far
 * readable in grey too; tests check it. */
#include <math.h>

#include "skd/depth.h"

static const float points[][3] = {
    {50, 10, 85}, {60, 60, 135}, {40, 110, 140}, {35, 150, 135}, {80, 185, 105}, {165, 210, 60}, {250, 232, 40}};
#define NPOINTS ((int)(sizeof points / sizeof points[0]))

void skd_depth_colour(float t, uint8_t rgb[3]) {
  if (!(t > 0.0f)) t = 0.0f; /* NaN too */
  if (t > 1.0f) t = 1.0f;
  const float x = t * (NPOINTS - 1);
  int i = (int)x;
  if (i >= NPOINTS - 1) i = NPOINTS - 2;
  const float f = x - (float)i;
  for (int c = 0; c < 3; c++) rgb[c] = (uint8_t)lrintf(points[i][c] + f * (points[i + 1][c] - points[i][c]));
}

void skd_depth_colourise(const float *depth, int w, int h, float d_min, float d_max, uint8_t *rgb) {
  const double lo = log10((double)d_min), span = log10((double)d_max) - lo;
  for (size_t p = 0; p < (size_t)w * h; p++) {
    uint8_t *o = rgb + 3 * p;
    if (!(depth[p] > 0.0f) || !isfinite(depth[p])) {
      o[0] = o[1] = o[2] = 0;
      continue;
    }
    skd_depth_colour((float)(1.0 - (log10((double)depth[p]) - lo) / span), o);
  }
}
