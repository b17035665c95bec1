/* Decoding (strict, src/data/image_decode.c): one sample (RGB image, 8-bit
 * label PNG mapped through the dataset's label map and validated), or one
 * image alone (prediction). Every error names the file; sample errors also
 * the list line, label errors the pixel and the value. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/image_decode.h"
#include "skd/data.h"

void skd_sample_free(skd_sample *s) {
  if (!s) return;
  free(s->rgb);
  free(s->label);
  free(s->depth);
  s->rgb = s->label = NULL;
  s->depth = NULL;
  s->h = s->w = 0;
}

/* Colour of VOC palette index i (the devkit's bit-interleaved colour map). */
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

/* Palette index of a colour among the map's classes and 255, or -1. */
static int voc_index(const skd_label_map *m, const uint8_t *px) {
  uint8_t c[3];
  for (int i = 0; i < m->classes; i++) {
    voc_colour(i, c);
    if (c[0] == px[0] && c[1] == px[1] && c[2] == px[2]) return i;
  }
  voc_colour(255, c);
  if (c[0] == px[0] && c[1] == px[1] && c[2] == px[2]) return 255;
  return -1;
}

/* Reads and decodes one file; errors say "<prefix>cannot open/decode <what> '<path>': <reason>". */
static skd_status load(const char *prefix, const char *what, const char *path, skd_decode_mode mode,
                       skd_decoded *out) {
  char why[256];
  uint8_t *data = NULL;
  size_t size = 0;
  memset(out, 0, sizeof *out);
  skd_status st = skd_file_slurp(path, &data, &size, why, sizeof why);
  if (st != SKD_OK) return skd_error(st, "%scannot open %s '%s': %s", prefix, what, path, why);
  st = skd_image_decode(data, size, mode, out, why, sizeof why);
  free(data);
  if (st != SKD_OK) return skd_error(st, "%scannot decode %s '%s': %s", prefix, what, path, why);
  return SKD_OK;
}

/* Raw label bytes (h, w) from a decoded label of `comp` channels. */
static skd_status label_bytes(const skd_dataset *d, int i, const uint8_t *px, int w, int h, int comp,
                              uint8_t *out) {
  const skd_label_map *m = skd_dataset_label_map(d);
  const char *path = skd_dataset_label_path(d, i);
  size_t n = (size_t)w * (size_t)h;
  if (comp <= 2) { /* grey, or grey + alpha (alpha ignored) */
    for (size_t p = 0; p < n; p++) out[p] = px[p * (size_t)comp];
    return SKD_OK;
  }
  int last = -1; /* cache: consecutive pixels usually share a colour */
  uint8_t last_px[3] = {0, 0, 0};
  for (size_t p = 0; p < n; p++) {
    const uint8_t *q = px + p * (size_t)comp;
    if (m->voc_palette) {
      if (last < 0 || q[0] != last_px[0] || q[1] != last_px[1] || q[2] != last_px[2]) {
        last = voc_index(m, q);
        memcpy(last_px, q, 3);
      }
      if (last < 0)
        return skd_error(SKD_EFORMAT, "%s:%d: label '%s': colour (%d, %d, %d) at pixel (x=%d, y=%d) is not "
                         "in the VOC palette of %d classes", skd_dataset_list_path(d), skd_dataset_line(d, i),
                         path, q[0], q[1], q[2], (int)(p % (size_t)w), (int)(p / (size_t)w), m->classes);
      out[p] = (uint8_t)last;
    } else {
      if (q[0] != q[1] || q[0] != q[2])
        return skd_error(SKD_EFORMAT, "%s:%d: label '%s' has %d channels and pixel (x=%d, y=%d) is (%d, %d, %d): "
                         "a label must be single-channel (or grey, R = G = B)", skd_dataset_list_path(d),
                         skd_dataset_line(d, i), path, comp, (int)(p % (size_t)w), (int)(p / (size_t)w), q[0],
                         q[1], q[2]);
      out[p] = q[0];
    }
  }
  return SKD_OK;
}

static skd_status map_labels(const skd_dataset *d, int i, uint8_t *lab, int w, int h) {
  const skd_label_map *m = skd_dataset_label_map(d);
  size_t n = (size_t)w * (size_t)h;
  for (size_t p = 0; p < n; p++) {
    int raw = lab[p], v = m->table[raw];
    if (v < m->classes || v == m->ignore) {
      lab[p] = (uint8_t)v;
      continue;
    }
    char mapped[96] = "";
    if (v != raw) snprintf(mapped, sizeof mapped, " (raw value %d before the %s mapping)", raw, m->name);
    return skd_error(SKD_EFORMAT, "%s:%d: label '%s': value %d%s at pixel (x=%d, y=%d) is outside [0, %d) "
                     "and not the ignore value %d", skd_dataset_list_path(d), skd_dataset_line(d, i),
                     skd_dataset_label_path(d, i), v, mapped, (int)(p % (size_t)w), (int)(p / (size_t)w),
                     m->classes, m->ignore);
  }
  return SKD_OK;
}

skd_status skd_image_read(const char *path, uint8_t **rgb, int *h, int *w) {
  *rgb = NULL;
  *h = *w = 0;
  skd_decoded im;
  skd_status st = load("", "image", path, SKD_DECODE_RGB, &im);
  if (st != SKD_OK) return st;
  *rgb = im.px;
  *h = im.h;
  *w = im.w;
  return SKD_OK;
}

skd_status skd_dataset_read(const skd_dataset *d, int i, skd_sample *out) {
  memset(out, 0, sizeof *out);
  if (i < 0 || i >= skd_dataset_size(d))
    return skd_error(SKD_EINVAL, "dataset read: index %d outside [0, %d)", i, skd_dataset_size(d));
  const char *list = skd_dataset_list_path(d);
  int line = skd_dataset_line(d, i);
  const char *ipath = skd_dataset_image_path(d, i), *lpath = skd_dataset_label_path(d, i);
  char prefix[4200];
  snprintf(prefix, sizeof prefix, "%s:%d: ", list, line);
  skd_decoded img = {0}, lab = {0};
  uint8_t *labels = NULL;
  skd_status st = load(prefix, "image", ipath, SKD_DECODE_RGB, &img);
  if (st != SKD_OK) goto done;
  int w = img.w, h = img.h;

  if (!lpath) { /* unlabeled: every pixel ignored */
    labels = malloc((size_t)w * (size_t)h);
    if (!labels) {
      st = skd_error(SKD_ENOMEM, "%s:%d: out of host memory for a %dx%d label", list, line, w, h);
      goto done;
    }
    memset(labels, skd_dataset_label_map(d)->ignore, (size_t)w * (size_t)h);
    goto decoded;
  }
  if ((st = load(prefix, "label", lpath, SKD_DECODE_LABEL, &lab)) != SKD_OK) goto done;
  if (lab.w != w || lab.h != h) {
    st = skd_error(SKD_EFORMAT, "%s:%d: image '%s' is %dx%d but label '%s' is %dx%d (width x height)", list, line,
                   ipath, w, h, lpath, lab.w, lab.h);
    goto done;
  }
  labels = malloc((size_t)w * (size_t)h);
  if (!labels) {
    st = skd_error(SKD_ENOMEM, "%s:%d: out of host memory for a %dx%d label", list, line, w, h);
    goto done;
  }
  if ((st = label_bytes(d, i, lab.px, w, h, lab.channels, labels)) != SKD_OK) goto done;
  if ((st = map_labels(d, i, labels, w, h)) != SKD_OK) goto done;
decoded:
  out->h = h;
  out->w = w;
  out->label = labels;
  labels = NULL;
  out->rgb = img.px;
  img.px = NULL;
done:
  free(img.px);
  free(lab.px);
  free(labels);
  return st;
}
