/* Normalisation and the training augmentation (reference order: scale,
 * normalise, pad bottom/right, random crop, mirror), fused into one pass over
 * the crop: only the pixels that end up in the crop are resampled. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data_private.h"
#include "skd/data.h"

void skd_normalize_reference(skd_normalize *n) {
  n->bgr = 1;
  n->mean[0] = 104.008f;
  n->mean[1] = 116.669f;
  n->mean[2] = 122.679f;
  n->std[0] = n->std[1] = n->std[2] = 1.0f;
}

void skd_normalize_imagenet(skd_normalize *n) {
  n->bgr = 0;
  n->mean[0] = 0.485f * 255.0f;
  n->mean[1] = 0.456f * 255.0f;
  n->mean[2] = 0.406f * 255.0f;
  n->std[0] = 0.229f * 255.0f;
  n->std[1] = 0.224f * 255.0f;
  n->std[2] = 0.225f * 255.0f;
}

void skd_augment_reference(skd_augment *a, int crop) {
  memset(a, 0, sizeof *a);
  a->crop_h = a->crop_w = crop;
  a->scale_min = 0.5f;
  a->scale_max = 2.1f;
  a->scale_step = 0.1f;
  a->mirror = 1;
  skd_normalize_reference(&a->normalize);
}

void skd_normalize_sample(const skd_sample *s, const skd_normalize *n, float *image, uint8_t *label) {
  size_t plane = (size_t)s->h * (size_t)s->w;
  for (int c = 0; c < 3; c++) {
    int src = n->bgr ? 2 - c : c;
    float mean = n->mean[c], inv = 1.0f / n->std[c];
    float *o = image + (size_t)c * plane;
    for (size_t p = 0; p < plane; p++) o[p] = ((float)s->rgb[3 * p + (size_t)src] - mean) * inv;
  }
  if (label) memcpy(label, s->label, plane);
}

/* Resampling of one axis from n source pixels to m: bilinear taps (i0, i1,
 * weight of i1) and the nearest source pixel, with half-pixel centres
 * (align_corners = false, as cv2.resize and PyTorch's default). */
struct taps {
  int i0, i1, nearest;
  float t;
};

static void axis_taps(int n, int m, int pos, struct taps *tp) {
  double ratio = (double)n / (double)m;
  double src = ((double)pos + 0.5) * ratio - 0.5;
  if (src < 0.0) src = 0.0;
  int i0 = (int)floor(src);
  if (i0 > n - 1) i0 = n - 1;
  tp->i0 = i0;
  tp->i1 = i0 + 1 < n ? i0 + 1 : n - 1;
  tp->t = (float)(src - (double)i0);
  int near = (int)floor(((double)pos + 0.5) * ratio);
  tp->nearest = near < n ? near : n - 1;
}

static skd_status check_augment(const skd_sample *s, const skd_augment *a) {
  if (a->crop_h < 1 || a->crop_w < 1)
    return skd_error(SKD_EINVAL, "augment: crop %dx%d must be positive", a->crop_w, a->crop_h);
  if (!(a->scale_min > 0.0f) || !(a->scale_max >= a->scale_min) || !(a->scale_step >= 0.0f))
    return skd_error(SKD_EINVAL, "augment: scale range [%g, %g] step %g must have 0 < min <= max, step >= 0",
                     a->scale_min, a->scale_max, a->scale_step);
  for (int c = 0; c < 3; c++)
    if (!(a->normalize.std[c] > 0.0f))
      return skd_error(SKD_EINVAL, "augment: normalisation std[%d] = %g must be positive", c, a->normalize.std[c]);
  if (s->h < 1 || s->w < 1 || !s->rgb)
    return skd_error(SKD_EINVAL, "augment: empty sample (%dx%d)", s->w, s->h);
  return SKD_OK;
}

static float draw_scale(rng *r, const skd_augment *a) {
  if (a->scale_step > 0.0f) {
    int steps = (int)floorf((a->scale_max - a->scale_min) / a->scale_step + 1e-4f);
    return a->scale_min + a->scale_step * (float)rng_int(r, 0, steps);
  }
  return rng_range(r, a->scale_min, a->scale_max);
}

/* The crop of a sample: labels (uint8, padding `ignore`) or depth (float,
 * padding 0), whichever out-pointer is given, through the same geometry. */
static skd_status augment_core(const skd_sample *s, const skd_augment *a, int ignore, uint64_t seed, uint64_t draw,
                               float *image, uint8_t *label, float *depth) {
  skd_status st = check_augment(s, a);
  if (st != SKD_OK) return st;
  if ((label && !s->label) || (depth && !s->depth))
    return skd_error(SKD_EINVAL, "augment: the sample has no %s", label ? "labels" : "depth");
  /* The draws, always in this order: scale, row offset, column offset, mirror. */
  rng r = rng_init(seed, RNG_AUGMENT, draw);
  float f = draw_scale(&r, a);
  int sh = (int)lround((double)s->h * f), sw = (int)lround((double)s->w * f);
  if (sh < 1) sh = 1;
  if (sw < 1) sw = 1;
  int ph = sh > a->crop_h ? sh : a->crop_h, pw = sw > a->crop_w ? sw : a->crop_w;
  int y_off = rng_int(&r, 0, ph - a->crop_h);
  int x_off = rng_int(&r, 0, pw - a->crop_w);
  int flip = rng_int(&r, 0, 1) && a->mirror;

  int ch = a->crop_h, cw = a->crop_w;
  struct taps *xt = malloc((size_t)cw * sizeof *xt);
  if (!xt) return skd_error(SKD_ENOMEM, "augment: out of host memory");
  /* Column j of the output reads column x_off + j (x_off + cw - 1 - j when
   * mirrored) of the scaled, padded image. */
  for (int j = 0; j < cw; j++) {
    int x = x_off + (flip ? cw - 1 - j : j);
    if (x < sw) axis_taps(s->w, sw, x, &xt[j]);
    else xt[j].i0 = -1; /* padding */
  }
  const skd_normalize *n = &a->normalize;
  float mean[3], inv[3];
  int src[3];
  for (int c = 0; c < 3; c++) {
    mean[c] = n->mean[c];
    inv[c] = 1.0f / n->std[c];
    src[c] = n->bgr ? 2 - c : c;
  }
  size_t plane = (size_t)ch * (size_t)cw;
  for (int i = 0; i < ch; i++) {
    int y = y_off + i;
    float *o[3];
    for (int c = 0; c < 3; c++) o[c] = image + (size_t)c * plane + (size_t)i * (size_t)cw;
    uint8_t *lo = label ? label + (size_t)i * (size_t)cw : NULL;
    float *dout = depth ? depth + (size_t)i * (size_t)cw : NULL;
    if (y >= sh) {
      for (int c = 0; c < 3; c++) memset(o[c], 0, (size_t)cw * sizeof(float));
      if (lo) memset(lo, ignore, (size_t)cw);
      for (int j = 0; dout && j < cw; j++) dout[j] = 0.0f;
      continue;
    }
    struct taps yt;
    axis_taps(s->h, sh, y, &yt);
    const uint8_t *r0 = s->rgb + (size_t)yt.i0 * (size_t)s->w * 3;
    const uint8_t *r1 = s->rgb + (size_t)yt.i1 * (size_t)s->w * 3;
    const uint8_t *lrow = lo ? s->label + (size_t)yt.nearest * (size_t)s->w : NULL;
    const float *drow = dout ? s->depth + (size_t)yt.nearest * (size_t)s->w : NULL;
    for (int j = 0; j < cw; j++) {
      const struct taps *t = &xt[j];
      if (t->i0 < 0) {
        for (int c = 0; c < 3; c++) o[c][j] = 0.0f;
        if (lo) lo[j] = (uint8_t)ignore;
        if (dout) dout[j] = 0.0f;
        continue;
      }
      for (int c = 0; c < 3; c++) {
        size_t a0 = (size_t)t->i0 * 3 + (size_t)src[c], a1 = (size_t)t->i1 * 3 + (size_t)src[c];
        float top = (float)r0[a0] + t->t * ((float)r0[a1] - (float)r0[a0]);
        float bot = (float)r1[a0] + t->t * ((float)r1[a1] - (float)r1[a0]);
        float v = top + yt.t * (bot - top);
        o[c][j] = (v - mean[c]) * inv[c];
      }
      if (lo) lo[j] = lrow[t->nearest];
      if (dout) dout[j] = drow[t->nearest];
    }
  }
  free(xt);
  return SKD_OK;
}

skd_status skd_augment_sample(const skd_sample *s, const skd_augment *a, int ignore, uint64_t seed,
                              uint64_t draw, float *image, uint8_t *label) {
  return augment_core(s, a, ignore, seed, draw, image, label, NULL);
}

skd_status skd_augment_depth_sample(const skd_sample *s, const skd_augment *a, uint64_t seed, uint64_t draw,
                                    float *image, float *depth) {
  return augment_core(s, a, 0, seed, draw, image, NULL, depth);
}
