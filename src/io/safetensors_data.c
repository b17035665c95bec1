/* safetensors tensor data: read on demand through a small chunk buffer and
 * converted to float32 (F32, F16, BF16, F64) or int64 (BOOL, integers). */
#define _FILE_OFFSET_BITS 64

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>

#include "io/safetensors_private.h"

#define CHUNK_BYTES 65536

static float bits_to_float(uint32_t bits) {
  float v;
  memcpy(&v, &bits, sizeof v);
  return v;
}

/* IEEE binary16 -> binary32, exact (subnormals, infinities and NaN kept). */
static float half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  if (exp == 0) {
    float v = ldexpf((float)mant, -24);
    return sign ? -v : v;
  }
  if (exp == 31) return bits_to_float(sign | 0x7f800000u | mant << 13);
  return bits_to_float(sign | (exp + 112u) << 23 | mant << 13);
}

static void convert_f32(skd_dtype dtype, const unsigned char *p, size_t n, float *out) {
  for (size_t i = 0; i < n; i++) {
    switch (dtype) {
      case SKD_DTYPE_F32: out[i] = bits_to_float(skd_le_u32(p + 4 * i)); break;
      case SKD_DTYPE_F16: out[i] = half_to_float(skd_le_u16(p + 2 * i)); break;
      case SKD_DTYPE_BF16: out[i] = bits_to_float((uint32_t)skd_le_u16(p + 2 * i) << 16); break;
      case SKD_DTYPE_F64: {
        uint64_t bits = skd_le_u64(p + 8 * i);
        double d;
        memcpy(&d, &bits, sizeof d);
        out[i] = (float)d;
        break;
      }
      default: break;
    }
  }
}

/* Returns 0 when a U64 value does not fit int64. */
static int convert_i64(skd_dtype dtype, const unsigned char *p, size_t n, int64_t *out) {
  for (size_t i = 0; i < n; i++) {
    switch (dtype) {
      case SKD_DTYPE_BOOL: out[i] = p[i] != 0; break;
      case SKD_DTYPE_U8: out[i] = p[i]; break;
      case SKD_DTYPE_I8: out[i] = (int8_t)p[i]; break;
      case SKD_DTYPE_U16: out[i] = skd_le_u16(p + 2 * i); break;
      case SKD_DTYPE_I16: out[i] = (int16_t)skd_le_u16(p + 2 * i); break;
      case SKD_DTYPE_U32: out[i] = skd_le_u32(p + 4 * i); break;
      case SKD_DTYPE_I32: out[i] = (int32_t)skd_le_u32(p + 4 * i); break;
      case SKD_DTYPE_I64: out[i] = (int64_t)skd_le_u64(p + 8 * i); break;
      case SKD_DTYPE_U64: {
        uint64_t v = skd_le_u64(p + 8 * i);
        if (v > INT64_MAX) return 0;
        out[i] = (int64_t)v;
        break;
      }
      default: break;
    }
  }
  return 1;
}

static int is_float(skd_dtype d) {
  return d == SKD_DTYPE_F32 || d == SKD_DTYPE_F16 || d == SKD_DTYPE_BF16 || d == SKD_DTYPE_F64;
}

static int is_integer(skd_dtype d) {
  return d == SKD_DTYPE_BOOL || d == SKD_DTYPE_U8 || d == SKD_DTYPE_I8 || d == SKD_DTYPE_U16 ||
         d == SKD_DTYPE_I16 || d == SKD_DTYPE_U32 || d == SKD_DTYPE_I32 || d == SKD_DTYPE_I64 ||
         d == SKD_DTYPE_U64;
}

/* Reads tensor i chunk by chunk into out (float or int64, by want_float). */
static skd_status read_tensor(skd_safetensors *f, int i, void *out, size_t count, int want_float) {
  if (i < 0 || i >= f->count)
    return skd_error(SKD_EINVAL, "%s: no tensor number %d (the file has %d)", f->path, i, f->count);
  const skd_safetensors_entry *e = &f->entries[i];
  if (count != e->numel)
    return skd_error(SKD_EINVAL, "%s: tensor '%s': the buffer holds %zu values, the tensor has %zu", f->path,
                     e->name, count, e->numel);
  if (want_float ? !is_float(e->dtype) : !is_integer(e->dtype))
    return skd_error(SKD_EFORMAT, "%s: tensor '%s': dtype %s cannot be read as %s", f->path, e->name,
                     skd_dtype_name(e->dtype), want_float ? "float32 (F32, F16, BF16 or F64 expected)"
                                                          : "integers (BOOL, U8..U64 or I8..I64 expected)");
  if (e->numel == 0) return SKD_OK;
  size_t esize = skd_dtype_size(e->dtype);
  unsigned char *chunk = malloc(CHUNK_BYTES);
  if (!chunk) return skd_error(SKD_ENOMEM, "%s: out of host memory", f->path);
  skd_status st = SKD_OK;
  if (fseeko(f->fp, (off_t)(f->data_start + e->begin), SEEK_SET) != 0) {
    st = skd_error(SKD_EIO, "%s: tensor '%s': cannot seek to its data: %s", f->path, e->name, strerror(errno));
    goto done;
  }
  size_t per_chunk = CHUNK_BYTES / esize;
  for (size_t done_n = 0; done_n < e->numel;) {
    size_t n = e->numel - done_n < per_chunk ? e->numel - done_n : per_chunk;
    if (fread(chunk, esize, n, f->fp) != n) {
      st = skd_error(SKD_EIO, "%s: tensor '%s': cannot read its data (%s; did the file change since it was opened?)",
                     f->path, e->name, ferror(f->fp) ? strerror(errno) : "unexpected end of file");
      goto done;
    }
    if (want_float) {
      convert_f32(e->dtype, chunk, n, (float *)out + done_n);
    } else if (!convert_i64(e->dtype, chunk, n, (int64_t *)out + done_n)) {
      st = skd_error(SKD_EFORMAT, "%s: tensor '%s': a U64 value does not fit int64", f->path, e->name);
      goto done;
    }
    done_n += n;
  }
done:
  clearerr(f->fp);
  free(chunk);
  return st;
}

skd_status skd_safetensors_read_f32(skd_safetensors *f, int i, float *out, size_t count) {
  return read_tensor(f, i, out, count, 1);
}

skd_status skd_safetensors_read_i64(skd_safetensors *f, int i, int64_t *out, size_t count) {
  return read_tensor(f, i, out, count, 0);
}
