/* Class palettes, colourised class maps, overlays and atomic PNG writing
 * (stb_image_write). Host only; nothing here prints. */
#ifndef SKD_PALETTE_H
#define SKD_PALETTE_H

#include <stdint.h>

#include "skd/status.h"

typedef struct skd_palette {
  char name[32];
  int colors;          /* ids 0 .. colors-1 have a colour */
  uint8_t rgb[256][3];
} skd_palette;

/* Presets, named as the label presets of skd/data.h:
 *   "cityscapes", "cityscapes-trainids"  the 19 official trainId colours (road = (128, 64, 128))
 *   "camvid"   the 11 SegNet classes in the CamVid colours (sidewalk/pavement = (0, 0, 192),
 *              the dataset's; SegNet's own viewer drew it (60, 40, 222))
 *   "voc"      21 classes, the VOC devkit's bit-interleaved colour map (background black)
 *   "demo"     the generic palette for the demo set's 8 classes
 *   "generic"  `classes` (1..255) colours: the VOC colour map shifted by one, entry
 *              i + 1 for class i. Distinct (the map is a bijection of 0..255) and never
 *              black, so a class cannot be mistaken for ignore.
 * classes: 0 or the preset's count (required for generic).
 * The reference code saved every prediction with the VOC colour map; the
 * dataset's own colours read better and match the published figures. */
skd_status skd_palette_preset(skd_palette *out, const char *name, int classes);

/* rgb (h * w * 3) = the colour of each id (h * w); 255 (ignore) is black. An
 * id >= colors that is not 255 is an error naming the pixel. */
skd_status skd_palette_colorize(const skd_palette *p, const uint8_t *ids, int h, int w, uint8_t *rgb);

/* out (h * w * 3) = (1 - alpha) * image + alpha * colour(id), rounded to
 * nearest (halves up); ignore pixels keep the image. alpha in [0, 1] (0.5 is the usual
 * choice); out may be image. Ids as in colorize. */
skd_status skd_palette_overlay(const skd_palette *p, const uint8_t *ids, const uint8_t *image, int h, int w,
                               float alpha, uint8_t *out);

/* Writes a PNG of w x h pixels with `channels` (1 grey, 2 grey+alpha, 3 RGB, 4
 * RGBA) 8-bit values per pixel, rows packed. Atomic: the data go to a
 * temporary file in the same directory (created with the process umask),
 * which is flushed, synced and renamed over path; on any failure the
 * temporary file is removed and path is left as it was. Errors name path. */
skd_status skd_png_write(const char *path, const uint8_t *pixels, int w, int h, int channels);

#endif
