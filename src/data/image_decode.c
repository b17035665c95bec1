/* Strict PNG (libpng), JPEG (libjpeg-turbo) and binary PPM/PGM decoding from memory.
 * Both libraries report errors by longjmp: every local that changes after
 * setjmp and is read on the error path is volatile, and that path frees
 * everything the decode allocated. */
#include "data/image_decode.h"

#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <png.h>

static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

static int size_ok(long w, long h, char *why, size_t why_size) {
  if (w < 1 || h < 1 || w > SKD_DECODE_MAX_SIDE || h > SKD_DECODE_MAX_SIDE || w * h > SKD_DECODE_MAX_PIXELS) {
    snprintf(why, why_size, "%ldx%ld pixels is outside the accepted size (sides up to %d, %ld pixels)", w, h,
             SKD_DECODE_MAX_SIDE, (long)SKD_DECODE_MAX_PIXELS);
    return 0;
  }
  return 1;
}

/* ---- PNG ------------------------------------------------------------------ */

typedef struct png_src {
  const uint8_t *data;
  size_t size, pos;
  char *why;
  size_t why_size;
} png_src;

static void png_fail(png_structp png, png_const_charp msg) {
  png_src *s = png_get_error_ptr(png);
  snprintf(s->why, s->why_size, "%s", msg);
  png_longjmp(png, 1);
}

/* Colour and text chunks are skipped unread (below), so a warning left is
 * about the image data itself: fail rather than use a doubtful image. */
static void png_warn(png_structp png, png_const_charp msg) { png_fail(png, msg); }

static void png_read_mem(png_structp png, png_bytep dst, size_t n) {
  png_src *s = png_get_io_ptr(png);
  if (n > s->size - s->pos) png_error(png, "the file ends early (truncated)");
  memcpy(dst, s->data + s->pos, n);
  s->pos += n;
}

static skd_status decode_png(const uint8_t *data, size_t size, skd_decode_mode mode, skd_decoded *out, char *why,
                             size_t why_size) {
  png_src src = {data, size, 0, why, why_size};
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_fail, png_warn);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  if (!info) {
    png_destroy_read_struct(&png, NULL, NULL);
    snprintf(why, why_size, "out of host memory");
    return SKD_ENOMEM;
  }
  uint8_t *volatile px = NULL;
  png_bytep *volatile rows = NULL;
  volatile skd_status st = SKD_EFORMAT;
  if (setjmp(png_jmpbuf(png))) goto fail;

  png_set_read_fn(png, &src, png_read_mem);
  png_set_user_limits(png, SKD_DECODE_MAX_SIDE, SKD_DECODE_MAX_SIDE);
  /* Every chunk but IHDR, PLTE, tRNS, IDAT and IEND is skipped (its CRC still
   * checked): colour profiles and text change nothing here, and what remains
   * reported as "benign" is damage to the image data (Adler-32, extra data). */
  png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, NULL, -1);
  png_set_crc_action(png, PNG_CRC_ERROR_QUIT, PNG_CRC_ERROR_QUIT);
  png_set_benign_errors(png, 0);
  png_read_info(png, info);

  png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
  int depth = png_get_bit_depth(png, info), type = png_get_color_type(png, info);
  if (!size_ok((long)w, (long)h, why, why_size)) goto fail;
  if (mode == SKD_DECODE_GREY16) {
    /* Depth in fixed units: an 8-bit file would need a guessed scale. */
    if (depth != 16 || type != PNG_COLOR_TYPE_GRAY) {
      snprintf(why, why_size, "%d bits per sample, %s: expected a 16-bit grey PNG", depth,
               type == PNG_COLOR_TYPE_GRAY ? "grey" : "colour");
      goto fail;
    }
    const uint16_t one = 1;
    if (*(const uint8_t *)&one) png_set_swap(png); /* PNG samples are big-endian; uint16_t here is not */
  } else if (mode == SKD_DECODE_LABEL) {
    if (depth == 16) {
      snprintf(why, why_size, "16 bits per channel: a label must be an 8-bit PNG");
      goto fail;
    }
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_packing(png); /* indices, one byte each, not colours */
    else png_set_expand_gray_1_2_4_to_8(png);
  } else {
    png_set_strip_16(png);
    png_set_palette_to_rgb(png);
    png_set_expand_gray_1_2_4_to_8(png);
    png_set_gray_to_rgb(png);
    png_set_strip_alpha(png);
  }
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  int channels = png_get_channels(png, info);
  const int bytes = mode == SKD_DECODE_GREY16 ? 2 : 1;
  if (png_get_bit_depth(png, info) != 8 * bytes ||
      png_get_rowbytes(png, info) != (size_t)w * (size_t)channels * (size_t)bytes ||
      (mode == SKD_DECODE_RGB && channels != 3)) {
    snprintf(why, why_size, "unexpected layout after conversion (%d channels, %d bits)", channels,
             png_get_bit_depth(png, info));
    goto fail;
  }
  px = malloc((size_t)w * h * (size_t)channels * (size_t)bytes);
  rows = malloc(sizeof(png_bytep) * h);
  if (!px || !rows) {
    snprintf(why, why_size, "out of host memory for %ux%u pixels", (unsigned)w, (unsigned)h);
    st = SKD_ENOMEM;
    goto fail;
  }
  for (png_uint_32 y = 0; y < h; y++) rows[y] = px + (size_t)y * w * (size_t)channels * (size_t)bytes;
  png_read_image(png, rows);
  png_read_end(png, NULL); /* through IEND: its absence, or a bad CRC after IDAT, is an error */
  png_destroy_read_struct(&png, &info, NULL);
  free(rows);
  out->px = px;
  out->w = (int)w;
  out->h = (int)h;
  out->channels = channels;
  return SKD_OK;

fail:
  png_destroy_read_struct(&png, &info, NULL);
  free(rows);
  free(px);
  return st;
}

/* ---- JPEG ----------------------------------------------------------------- */

typedef struct jpeg_fail_mgr {
  struct jpeg_error_mgr mgr;
  jmp_buf jb;
  char *why;
  size_t why_size;
} jpeg_fail_mgr;

static void jpeg_fail(j_common_ptr c) {
  jpeg_fail_mgr *e = (jpeg_fail_mgr *)c->err;
  char msg[JMSG_LENGTH_MAX];
  c->err->format_message(c, msg);
  snprintf(e->why, e->why_size, "%s", msg);
  longjmp(e->jb, 1);
}

/* level < 0 is a warning: corrupt or missing data (premature end, extraneous
 * bytes, bad Huffman codes) that libjpeg would paper over. Fail instead. */
static void jpeg_message(j_common_ptr c, int level) {
  if (level < 0) jpeg_fail(c);
}

static skd_status decode_jpeg(const uint8_t *data, size_t size, skd_decoded *out, char *why, size_t why_size) {
  struct jpeg_decompress_struct c;
  jpeg_fail_mgr err;
  memset(&c, 0, sizeof c); /* so that destroying before create is harmless */
  c.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_fail;
  err.mgr.emit_message = jpeg_message;
  err.why = why;
  err.why_size = why_size;
  uint8_t *volatile px = NULL;
  volatile skd_status st = SKD_EFORMAT;
  if (setjmp(err.jb)) goto fail;

  jpeg_create_decompress(&c);
  jpeg_mem_src(&c, (const unsigned char *)data, (unsigned long)size);
  jpeg_read_header(&c, TRUE);
  if (!size_ok((long)c.image_width, (long)c.image_height, why, why_size)) goto fail;
  c.out_color_space = JCS_RGB;
  jpeg_start_decompress(&c);
  if (c.output_components != 3) {
    snprintf(why, why_size, "decodes to %d channels, not RGB", c.output_components);
    goto fail;
  }
  size_t stride = (size_t)c.output_width * 3;
  px = malloc(stride * c.output_height);
  if (!px) {
    snprintf(why, why_size, "out of host memory for %ux%u pixels", c.output_width, c.output_height);
    st = SKD_ENOMEM;
    goto fail;
  }
  while (c.output_scanline < c.output_height) {
    JSAMPROW row = px + stride * c.output_scanline;
    jpeg_read_scanlines(&c, &row, 1);
  }
  jpeg_finish_decompress(&c); /* reads to EOI: a file cut short fails here at the latest */
  out->px = px;
  out->w = (int)c.output_width;
  out->h = (int)c.output_height;
  out->channels = 3;
  jpeg_destroy_decompress(&c);
  return SKD_OK;

fail:
  jpeg_destroy_decompress(&c);
  free(px);
  return st;
}

/* ---- Binary PPM/PGM (P6/P5, maxval 255) -------------------------------------- */

/* Next header number after whitespace and # comments; -1 when there is none. */
static long pnm_number(const uint8_t *data, size_t size, size_t *pos) {
  size_t p = *pos;
  for (;;) {
    while (p < size && (data[p] == ' ' || data[p] == '\t' || data[p] == '\n' || data[p] == '\r')) p++;
    if (p < size && data[p] == '#') {
      while (p < size && data[p] != '\n') p++;
      continue;
    }
    break;
  }
  long v = 0;
  size_t start = p;
  while (p < size && data[p] >= '0' && data[p] <= '9' && p - start < 9) v = 10 * v + (data[p++] - '0');
  if (p == start || (p < size && data[p] >= '0' && data[p] <= '9')) return -1;
  *pos = p;
  return v;
}

static skd_status decode_pnm(const uint8_t *data, size_t size, skd_decoded *out, char *why, size_t why_size) {
  int grey = data[1] == '5';
  size_t pos = 2;
  long w = pnm_number(data, size, &pos), h = pnm_number(data, size, &pos), maxval = pnm_number(data, size, &pos);
  if (w < 0 || h < 0 || maxval < 0 || pos >= size ||
      !(data[pos] == ' ' || data[pos] == '\t' || data[pos] == '\n' || data[pos] == '\r')) {
    snprintf(why, why_size, "PNM header: expected width, height and maximum value, then one whitespace");
    return SKD_EFORMAT;
  }
  pos++; /* the single whitespace before the pixels */
  if (maxval != 255) {
    snprintf(why, why_size, "PNM maximum value %ld: only 8-bit files (255) are read", maxval);
    return SKD_EFORMAT;
  }
  if (!size_ok(w, h, why, why_size)) return SKD_EFORMAT;
  size_t n = (size_t)w * (size_t)h, need = n * (grey ? 1 : 3);
  if (size - pos != need) {
    snprintf(why, why_size, "%zu bytes of pixels where %ldx%ld needs %zu (%s)", size - pos, w, h, need,
             size - pos < need ? "truncated" : "extra data");
    return SKD_EFORMAT;
  }
  uint8_t *px = malloc(n * 3);
  if (!px) {
    snprintf(why, why_size, "out of host memory for %ldx%ld pixels", w, h);
    return SKD_ENOMEM;
  }
  if (grey)
    for (size_t i = 0; i < n; i++) px[3 * i] = px[3 * i + 1] = px[3 * i + 2] = data[pos + i];
  else memcpy(px, data + pos, need);
  out->px = px;
  out->w = (int)w;
  out->h = (int)h;
  out->channels = 3;
  return SKD_OK;
}

/* ---- Entry points ----------------------------------------------------------- */

skd_status skd_image_decode(const uint8_t *data, size_t size, skd_decode_mode mode, skd_decoded *out, char *why,
                            size_t why_size) {
  memset(out, 0, sizeof *out);
  if (why_size) why[0] = '\0';
  if (size >= 8 && memcmp(data, png_sig, 8) == 0) return decode_png(data, size, mode, out, why, why_size);
  if (mode == SKD_DECODE_GREY16) {
    snprintf(why, why_size, "not a PNG file (no PNG signature): expected a 16-bit grey PNG");
    return SKD_EFORMAT;
  }
  if (mode == SKD_DECODE_LABEL) {
    /* JPEG compression would invent class ids at edges. */
    snprintf(why, why_size, "not a PNG file (no PNG signature): labels must be 8-bit PNGs");
    return SKD_EFORMAT;
  }
  if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF)
    return decode_jpeg(data, size, out, why, why_size);
  if (size >= 2 && data[0] == 'P' && (data[1] == '5' || data[1] == '6'))
    return decode_pnm(data, size, out, why, why_size);
  snprintf(why, why_size, "not a PNG, JPEG or binary PPM/PGM file (no signature of any)");
  return SKD_EFORMAT;
}

skd_status skd_file_slurp(const char *path, uint8_t **data, size_t *size, char *why, size_t why_size) {
  *data = NULL;
  *size = 0;
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(why, why_size, "%s", strerror(errno));
    return SKD_EIO;
  }
  size_t cap = 1 << 16, n = 0;
  uint8_t *buf = malloc(cap);
  while (buf) {
    n += fread(buf + n, 1, cap - n, f);
    if (n < cap) break;
    if (cap >= SKD_DECODE_MAX_FILE) { /* not an image this program could use: do not read it all */
      free(buf);
      fclose(f);
      snprintf(why, why_size, "the file has %zu MiB or more: not an image", SKD_DECODE_MAX_FILE >> 20);
      return SKD_EFORMAT;
    }
    uint8_t *bigger = realloc(buf, cap * 2);
    if (!bigger) free(buf);
    buf = bigger;
    cap *= 2;
  }
  int failed = ferror(f);
  int e = errno;
  fclose(f);
  if (!buf) {
    snprintf(why, why_size, "out of host memory reading the file");
    return SKD_ENOMEM;
  }
  if (failed) {
    free(buf);
    snprintf(why, why_size, "read error: %s", strerror(e));
    return SKD_EIO;
  }
  *data = buf;
  *size = n;
  return SKD_OK;
}
