/* Class palettes, colourising and overlays (skd/palette.h). */
#include <stdio.h>
#include <string.h>

#include "skd/palette.h"

/* cityscapesScripts labels.py, trainIds 0..18. */
static const uint8_t cityscapes_rgb[19][3] = {
    {128, 64, 128}, /* road */         {244, 35, 232}, /* sidewalk */    {70, 70, 70},   /* building */
    {102, 102, 156}, /* wall */        {190, 153, 153}, /* fence */      {153, 153, 153}, /* pole */
    {250, 170, 30}, /* traffic light */ {220, 220, 0}, /* traffic sign */ {107, 142, 35}, /* vegetation */
    {152, 251, 152}, /* terrain */     {70, 130, 180}, /* sky */         {220, 20, 60},  /* person */
    {255, 0, 0},    /* rider */        {0, 0, 142},    /* car */         {0, 0, 70},     /* truck */
    {0, 60, 100},   /* bus */          {0, 80, 100},   /* train */       {0, 0, 230},    /* motorcycle */
    {119, 11, 32}}; /* bicycle */

/* CamVid's colours of SegNet's 11 classes, in SegNet's class order. */
static const uint8_t camvid_rgb[11][3] = {
    {128, 128, 128}, /* sky */  {128, 0, 0},     /* building */    {192, 192, 128}, /* pole (column_pole) */
    {128, 64, 128},  /* road */ {0, 0, 192},     /* pavement */    {128, 128, 0},   /* tree */
    {192, 128, 128}, /* sign symbol */ {64, 64, 128}, /* fence */  {64, 0, 128},    /* car */
    {64, 64, 0},     /* pedestrian */  {0, 128, 192}}; /* bicyclist */

/* VOC devkit colour map entry i: the bits of i spread over the top bits of R, G, B. */
static void voc_colour(int i, uint8_t rgb[3]) {
  int r = 0, g = 0, b = 0;
  for (int j = 0; j < 8; j++) {
    r |= ((i >> 0) & 1) << (7 - j);
    g |= ((i >> 1) & 1) << (7 - j);
    b |= ((i >> 2) & 1) << (7 - j);
    i >>= 3;
  }
  rgb[0] = (uint8_t)r;
  rgb[1] = (uint8_t)g;
  rgb[2] = (uint8_t)b;
}

static void generic(skd_palette *p, int classes) {
  for (int i = 0; i < classes; i++) voc_colour(i + 1, p->rgb[i]);
}

skd_status skd_palette_preset(skd_palette *out, const char *name, int classes) {
  skd_palette p;
  memset(&p, 0, sizeof p);
  int count = 0;
  if (!name) return skd_error(SKD_EINVAL, "palette: no name given");
  if (strcmp(name, "cityscapes") == 0 || strcmp(name, "cityscapes-trainids") == 0) {
    count = 19;
    memcpy(p.rgb, cityscapes_rgb, sizeof cityscapes_rgb);
  } else if (strcmp(name, "camvid") == 0) {
    count = 11;
    memcpy(p.rgb, camvid_rgb, sizeof camvid_rgb);
  } else if (strcmp(name, "voc") == 0) {
    count = 21;
    for (int i = 0; i < count; i++) voc_colour(i, p.rgb[i]);
  } else if (strcmp(name, "demo") == 0) {
    count = 8;
    generic(&p, count);
  } else if (strcmp(name, "generic") == 0) {
    if (classes < 1 || classes > 255)
      return skd_error(SKD_EINVAL, "palette generic: classes must be in [1, 255] (got %d)", classes);
    count = classes;
    generic(&p, count);
  } else {
    return skd_error(SKD_EINVAL, "palette '%s' is unknown (cityscapes, cityscapes-trainids, camvid, voc, demo, generic)",
                     name);
  }
  if (classes != 0 && classes != count)
    return skd_error(SKD_EINVAL, "palette %s has %d colours (got classes = %d)", name, count, classes);
  snprintf(p.name, sizeof p.name, "%s", name);
  p.colors = count;
  *out = p;
  return SKD_OK;
}

static skd_status check_ids(const skd_palette *p, const uint8_t *ids, int h, int w, const char *op) {
  if (h < 1 || w < 1) return skd_error(SKD_EINVAL, "%s: size %dx%d must be at least 1x1", op, h, w);
  size_t n = (size_t)h * (size_t)w;
  for (size_t i = 0; i < n; i++)
    if (ids[i] >= p->colors && ids[i] != 255)
      return skd_error(SKD_EINVAL, "%s: id %d at pixel (y %zu, x %zu) has no colour in palette %s (%d colours)", op,
                       ids[i], i / (size_t)w, i % (size_t)w, p->name, p->colors);
  return SKD_OK;
}

skd_status skd_palette_colorize(const skd_palette *p, const uint8_t *ids, int h, int w, uint8_t *rgb) {
  skd_status st = check_ids(p, ids, h, w, "colorize");
  if (st != SKD_OK) return st;
  size_t n = (size_t)h * (size_t)w;
  for (size_t i = 0; i < n; i++) {
    static const uint8_t black[3] = {0, 0, 0};
    const uint8_t *c = ids[i] == 255 ? black : p->rgb[ids[i]];
    memcpy(rgb + 3 * i, c, 3);
  }
  return SKD_OK;
}

skd_status skd_palette_overlay(const skd_palette *p, const uint8_t *ids, const uint8_t *image, int h, int w,
                               float alpha, uint8_t *out) {
  if (!(alpha >= 0.0f && alpha <= 1.0f)) return skd_error(SKD_EINVAL, "overlay: alpha %g is not in [0, 1]", alpha);
  skd_status st = check_ids(p, ids, h, w, "overlay");
  if (st != SKD_OK) return st;
  size_t n = (size_t)h * (size_t)w;
  for (size_t i = 0; i < n; i++)
    for (int k = 0; k < 3; k++) {
      float v = image[3 * i + k];
      if (ids[i] != 255) v = (1.0f - alpha) * v + alpha * p->rgb[ids[i]][k];
      out[3 * i + k] = (uint8_t)(v + 0.5f); /* half up; v stays within [0, 255] */
    }
  return SKD_OK;
}
