/* Depth maps as 16-bit grey PNGs, read and written (the lists that name
 * them: src/data/depth_png.c). Both go through libpng: reading through the
 * strict decoder every image takes (a damaged file is an error), writing
 * into memory, then one atomic file write. */
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/image_decode.h"
#include "skd/depth.h"
#include "skd/io/fs.h"

skd_status skd_depth_png_read(const char *path, float scale, float **out, int *w, int *h) {
  if (!(scale > 0.0f) || !isfinite(scale))
    return skd_error(SKD_EINVAL, "depth png %s: depth scale must be > 0 (got %g)", path, (double)scale);
  char why[256];
  uint8_t *data = NULL;
  size_t size = 0;
  skd_status st = skd_file_slurp(path, &data, &size, why, sizeof why);
  if (st != SKD_OK) return skd_error(st, "depth png %s: %s", path, why);
  skd_decoded img;
  st = skd_image_decode(data, size, SKD_DECODE_GREY16, &img, why, sizeof why);
  free(data);
  if (st != SKD_OK) return skd_error(st, "depth png %s: cannot decode: %s", path, why);
  const size_t n = (size_t)img.w * (size_t)img.h;
  float *d = malloc(n * sizeof *d);
  if (!d) {
    free(img.px);
    return skd_error(SKD_ENOMEM, "depth png %s: out of host memory for %dx%d", path, img.w, img.h);
  }
  const uint16_t *raw = (const uint16_t *)(void *)img.px;
  for (size_t i = 0; i < n; i++) d[i] = (float)raw[i] / scale;
  free(img.px);
  *out = d;
  *w = img.w;
  *h = img.h;
  return SKD_OK;
}

/* ---- writing ---- */

typedef struct png_sink {
  FILE *mem; /* open_memstream */
} png_sink;

static void sink_write(png_structp png, png_bytep data, size_t n) {
  png_sink *s = png_get_io_ptr(png);
  if (fwrite(data, 1, n, s->mem) != n) png_error(png, "out of host memory");
}

static void sink_flush(png_structp png) { (void)png; }

static void write_fail(png_structp png, png_const_charp msg) {
  (void)msg;
  png_longjmp(png, 1);
}

/* The PNG bytes of rows (big-endian 16-bit samples, h rows of w) in memory. */
static skd_status encode_grey16(uint8_t *const *rows, int w, int h, char **bytes, size_t *size) {
  png_sink sink = {open_memstream(bytes, size)};
  if (!sink.mem) return SKD_ENOMEM;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, write_fail, NULL);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  volatile skd_status st = SKD_ENOMEM;
  if (info && !setjmp(png_jmpbuf(png))) {
    png_set_write_fn(png, &sink, sink_write, sink_flush);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 16, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_write_image(png, (png_bytepp)rows);
    png_write_end(png, NULL);
    st = SKD_OK;
  }
  png_destroy_write_struct(&png, &info);
  if (fclose(sink.mem) != 0 && st == SKD_OK) st = SKD_ENOMEM;
  return st;
}

skd_status skd_depth_png_write(const char *path, const float *depth, int w, int h, float scale) {
  if (w < 1 || h < 1 || (size_t)w * h > (size_t)1 << 28)
    return skd_error(SKD_EINVAL, "depth png write %s: bad size %dx%d", path, w, h);
  const size_t row = 2 * (size_t)w;
  uint8_t *raw = malloc(row * h);
  uint8_t **rows = malloc(sizeof *rows * (size_t)h);
  if (!raw || !rows) {
    free(raw);
    free(rows);
    return skd_error(SKD_ENOMEM, "depth png write %s: out of host memory", path);
  }
  for (int y = 0; y < h; y++) {
    uint8_t *r = rows[y] = raw + row * y;
    for (int x = 0; x < w; x++) {
      const double v = (double)depth[(size_t)y * w + x] * scale;
      const uint16_t u = !(v > 0.0) ? 0 : v >= 65535.0 ? 65535 : (uint16_t)lrint(v);
      r[2 * x] = (uint8_t)(u >> 8); /* PNG samples are big-endian */
      r[2 * x + 1] = (uint8_t)u;
    }
  }
  char *png = NULL;
  size_t size = 0;
  skd_status st = encode_grey16(rows, w, h, &png, &size);
  free(rows);
  free(raw);
  if (st == SKD_OK) st = skd_write_file_atomic(path, png, size);
  else skd_error(st, "depth png write %s: out of host memory", path);
  free(png);
  return st;
}
