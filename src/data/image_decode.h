/* Strict PNG/JPEG decoding from memory with Debian's libpng and
 * libjpeg-turbo, and binary 8-bit PPM/PGM (P6/P5) for images. Any damage the decoders can see (a cut zlib stream, a bad
 * chunk CRC, a missing IEND, truncated JPEG data, corrupt markers: libjpeg
 * warnings count as errors) fails the decode; nothing is padded or guessed. */
#ifndef SKD_DATA_IMAGE_DECODE_H
#define SKD_DATA_IMAGE_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "skd/status.h"

typedef enum skd_decode_mode {
  SKD_DECODE_RGB,  /* PNG, JPEG, PPM/PGM -> 8-bit RGB (grey expanded, alpha dropped, 16 -> 8 bits) */
  SKD_DECODE_LABEL, /* 8-bit PNG only, stored channels; a paletted PNG gives its indices (1 channel) */
  SKD_DECODE_GREY16 /* 16-bit grey PNG only (depth maps): px holds native-endian uint16_t, 1 channel */
} skd_decode_mode;

typedef struct skd_decoded {
  uint8_t *px; /* (h, w, channels) samples of 1 byte (2 for SKD_DECODE_GREY16), malloc'ed: free() it */
  int w, h, channels;
} skd_decoded;

/* Largest accepted image: a side and the pixel count (decompression bombs). */
#define SKD_DECODE_MAX_SIDE 32768
#define SKD_DECODE_MAX_PIXELS (1L << 27)
#define SKD_DECODE_MAX_FILE ((size_t)1 << 30) /* bytes */

/* Decodes `size` bytes. On failure returns SKD_EFORMAT (or SKD_ENOMEM) with
 * the reason, without any file name, in why[why_size], and *out is empty.
 * Sets no thread-local error message: the caller adds the file and line. */
skd_status skd_image_decode(const uint8_t *data, size_t size, skd_decode_mode mode, skd_decoded *out, char *why,
                            size_t why_size);

/* Reads a whole file into memory (free() *data). SKD_EIO with strerror in
 * why; SKD_EFORMAT for a file over SKD_DECODE_MAX_FILE bytes. */
skd_status skd_file_slurp(const char *path, uint8_t **data, size_t *size, char *why, size_t why_size);

#endif
