/* Plain-C references of the window ops and the flip (skd/eval.h). */
#include <math.h>

#include "skd/eval.h"

void skd_ref_window_crop(const float *image, int n, int c, int height, int width, const skd_window *win,
                         float *crop, int crop_h, int crop_w) {
  for (int p = 0; p < n * c; p++)
    for (int i = 0; i < crop_h; i++)
      for (int j = 0; j < crop_w; j++) {
        float v = 0.0f;
        if (i < win->h && j < win->w) v = image[((size_t)p * height + win->y + i) * width + win->x + j];
        crop[((size_t)p * crop_h + i) * crop_w + j] = v;
      }
}

void skd_ref_window_accumulate(const float *logits, int n, int c, int lh, int lw, const skd_window *win,
                               float *sum, float *count, int height, int width) {
  for (int p = 0; p < n * c; p++)
    for (int i = 0; i < win->h; i++)
      for (int j = 0; j < win->w; j++)
        sum[((size_t)p * height + win->y + i) * width + win->x + j] += logits[((size_t)p * lh + i) * lw + j];
  if (count)
    for (int i = 0; i < win->h; i++)
      for (int j = 0; j < win->w; j++) count[(size_t)(win->y + i) * width + win->x + j] += 1.0f;
}

void skd_ref_window_average(const float *sum, const float *count, float *out, int n, int c, int height,
                            int width) {
  size_t hw = (size_t)height * width;
  for (size_t p = 0; p < (size_t)n * c; p++)
    for (size_t k = 0; k < hw; k++) out[p * hw + k] = count[k] > 0.0f ? sum[p * hw + k] / count[k] : NAN;
}

void skd_ref_flip_horizontal(const float *x, float *y, int n, int c, int h, int w) {
  size_t rows = (size_t)n * c * h;
  for (size_t r = 0; r < rows; r++)
    for (int j = 0; j < (w + 1) / 2; j++) {
      float a = x[r * w + j], b = x[r * w + (w - 1 - j)];
      y[r * w + j] = b;
      y[r * w + (w - 1 - j)] = a;
    }
}
