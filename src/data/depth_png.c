/* Depth lists: "image depth" per line, the depth a 16-bit grey PNG (see
 * skd_depth_png_read). Errors carry the list line before the file's own. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skd/data.h"
#include "skd/depth.h"

skd_status skd_dataset_read_depth(const skd_dataset *d, int i, float scale, skd_sample *out) {
  memset(out, 0, sizeof *out);
  if (i < 0 || i >= skd_dataset_size(d))
    return skd_error(SKD_EINVAL, "dataset read: index %d outside [0, %d)", i, skd_dataset_size(d));
  const char *list = skd_dataset_list_path(d), *dpath = skd_dataset_label_path(d, i);
  const int line = skd_dataset_line(d, i);
  if (!dpath) return skd_error(SKD_EINVAL, "%s:%d: no depth file on the line (expected 'image depth')", list, line);
  char msg[2048];
  skd_status st = skd_image_read(skd_dataset_image_path(d, i), &out->rgb, &out->h, &out->w);
  if (st != SKD_OK) {
    snprintf(msg, sizeof msg, "%s", skd_error_last());
    return skd_error(st, "%s:%d: %s", list, line, msg);
  }
  int w = 0, h = 0;
  st = skd_depth_png_read(dpath, scale, &out->depth, &w, &h);
  if (st != SKD_OK) {
    snprintf(msg, sizeof msg, "%s", skd_error_last());
    skd_sample_free(out);
    return skd_error(st, "%s:%d: %s", list, line, msg);
  }
  if (w != out->w || h != out->h) {
    st = skd_error(SKD_EFORMAT, "%s:%d: image '%s' is %dx%d but depth '%s' is %dx%d (width x height)", list, line,
                   skd_dataset_image_path(d, i), out->w, out->h, dpath, w, h);
    skd_sample_free(out);
  }
  return st;
}
