/* Depth maps as 16-bit grey PNGs, read and written (the lists that name
 * them: src/data/depth_png.c). Reading goes through stb_image; stb's writer
 * only writes 8 bits, so the 16-bit file is assembled here (IHDR, one IDAT,
 * IEND, filter 0 per row) around stb's exported zlib compressor. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb/stb_image.h>

#include "skd/depth.h"
#include "skd/io/fs.h"

/* Exported by Debian's compiled stb (stb_image_write), not in its header's
 * public part: deflate with a zlib header; the result comes from malloc. */
unsigned char *stbi_zlib_compress(unsigned char *data, int data_len, int *out_len, int quality);

skd_status skd_depth_png_read(const char *path, float scale, float **out, int *w, int *h) {
  if (!(scale > 0.0f) || !isfinite(scale))
    return skd_error(SKD_EINVAL, "depth png %s: depth scale must be > 0 (got %g)", path, (double)scale);
  FILE *f = fopen(path, "rb");
  if (!f) return skd_error(SKD_EIO, "depth png %s: cannot open: %s", path, strerror(errno));
  /* stb would widen an 8-bit file (v * 257): millimetres need 16 bits. */
  const int is16 = stbi_is_16_bit_from_file(f);
  int comp = 0;
  uint16_t *raw = is16 ? stbi_load_from_file_16(f, w, h, &comp, 0) : NULL;
  fclose(f);
  if (!is16)
    return skd_error(SKD_EFORMAT, "depth png %s: expected a 16-bit grey PNG (not a PNG, or 8 bits per channel)",
                     path);
  if (!raw) return skd_error(SKD_EFORMAT, "depth png %s: cannot decode: %s", path, stbi_failure_reason());
  if (comp != 1) {
    stbi_image_free(raw);
    return skd_error(SKD_EFORMAT, "depth png %s: expected a single-channel (grey) PNG, got %d channels", path, comp);
  }
  const size_t n = (size_t)*w * (size_t)*h;
  float *d = malloc(n * sizeof *d);
  if (!d) {
    stbi_image_free(raw);
    return skd_error(SKD_ENOMEM, "depth png %s: out of host memory for %dx%d", path, *w, *h);
  }
  for (size_t i = 0; i < n; i++) d[i] = (float)raw[i] / scale;
  stbi_image_free(raw);
  *out = d;
  return SKD_OK;
}

static uint32_t crc32_png(const uint8_t *p, size_t n, uint32_t crc) {
  crc = ~crc;
  for (size_t i = 0; i < n; i++) {
    crc ^= p[i];
    for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

static uint8_t *put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
  return p + 4;
}

/* A chunk: length, type, data, CRC over type and data. */
static uint8_t *put_chunk(uint8_t *p, const char type[4], const uint8_t *data, uint32_t len) {
  p = put_be32(p, len);
  memcpy(p, type, 4);
  if (len) memcpy(p + 4, data, len);
  uint32_t crc = crc32_png(p, 4 + (size_t)len, 0);
  return put_be32(p + 4 + len, crc);
}

skd_status skd_depth_png_write(const char *path, const float *depth, int w, int h, float scale) {
  if (w < 1 || h < 1 || (size_t)w * h > (size_t)1 << 28)
    return skd_error(SKD_EINVAL, "depth png write %s: bad size %dx%d", path, w, h);
  const size_t row = 1 + 2 * (size_t)w, raw_len = row * h;
  uint8_t *raw = malloc(raw_len);
  if (!raw) return skd_error(SKD_ENOMEM, "depth png write %s: out of host memory", path);
  for (int y = 0; y < h; y++) {
    uint8_t *r = raw + row * y;
    r[0] = 0; /* filter: none */
    for (int x = 0; x < w; x++) {
      const double v = (double)depth[(size_t)y * w + x] * scale;
      const uint16_t u = !(v > 0.0) ? 0 : v >= 65535.0 ? 65535 : (uint16_t)lrint(v);
      r[1 + 2 * x] = (uint8_t)(u >> 8); /* PNG samples are big endian */
      r[2 + 2 * x] = (uint8_t)u;
    }
  }
  int zlen = 0;
  uint8_t *z = stbi_zlib_compress(raw, (int)raw_len, &zlen, 8);
  free(raw);
  if (!z) return skd_error(SKD_ENOMEM, "depth png write %s: compression failed", path);
  uint8_t *png = malloc(8 + 25 + 12 + (size_t)zlen + 12);
  if (!png) {
    free(z);
    return skd_error(SKD_ENOMEM, "depth png write %s: out of host memory", path);
  }
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  uint8_t ihdr[13], *p = png;
  put_be32(put_be32(ihdr, (uint32_t)w), (uint32_t)h);
  ihdr[8] = 16; /* bit depth */
  ihdr[9] = 0;  /* grey */
  ihdr[10] = ihdr[11] = ihdr[12] = 0;
  memcpy(p, sig, 8);
  p = put_chunk(p + 8, "IHDR", ihdr, 13);
  p = put_chunk(p, "IDAT", z, (uint32_t)zlen);
  p = put_chunk(p, "IEND", NULL, 0);
  free(z);
  skd_status st = skd_write_file_atomic(path, png, (size_t)(p - png));
  free(png);
  return st;
}
