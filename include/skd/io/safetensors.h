/* safetensors files: the container of checkpoints.
 *
 * Layout (the public safetensors format): an 8-byte little-endian u64 N, N
 * bytes of JSON header, then the raw little-endian tensor data. The header is
 *   {"__metadata__": {"key": "value", ...},
 *    "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
 * with offsets relative to the end of the header; the tensors cover the data
 * area exactly, without gaps or overlaps.
 *
 * Writing: collect float32 tensors and metadata in a writer, then
 * skd_safetensors_write() writes the file atomically (temporary file in the
 * same directory, fsync, rename). Tensors are sorted by name and metadata by
 * key, so the same content always gives the same bytes.
 *
 * Reading: skd_safetensors_open() parses and validates the whole header
 * (cJSON; every field type-checked, every offset bounds-checked); tensor data
 * is read on demand, so a file of hundreds of MB costs only its header in
 * memory. A handle reads through one FILE: use it from one thread at a time. */
#ifndef SKD_IO_SAFETENSORS_H
#define SKD_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "skd/status.h"

#define SKD_SAFETENSORS_MAX_DIMS 8
/* Headers above this size are refused (as the reference implementation does). */
#define SKD_SAFETENSORS_MAX_HEADER ((uint64_t)100000000)

/* The element types of the format. */
typedef enum skd_dtype {
  SKD_DTYPE_BOOL,
  SKD_DTYPE_U8,
  SKD_DTYPE_I8,
  SKD_DTYPE_F8_E5M2,
  SKD_DTYPE_F8_E4M3,
  SKD_DTYPE_I16,
  SKD_DTYPE_U16,
  SKD_DTYPE_F16,
  SKD_DTYPE_BF16,
  SKD_DTYPE_I32,
  SKD_DTYPE_U32,
  SKD_DTYPE_F32,
  SKD_DTYPE_F64,
  SKD_DTYPE_I64,
  SKD_DTYPE_U64
} skd_dtype;

/* The dtype's name in the header ("F32") and its size in bytes. */
const char *skd_dtype_name(skd_dtype dtype);
size_t skd_dtype_size(skd_dtype dtype);

/* ---- writing ---- */

typedef struct skd_safetensors_writer skd_safetensors_writer;

skd_status skd_safetensors_writer_create(skd_safetensors_writer **out);
void skd_safetensors_writer_free(skd_safetensors_writer *w);

/* Adds a float32 tensor of shape[0..ndim) (0 <= ndim <= 8; ndim 0 is a
 * scalar, one value). The data is copied, so the caller may reuse its buffer.
 * SKD_EINVAL for a duplicate or reserved name ("__metadata__") or a bad shape. */
skd_status skd_safetensors_writer_add(skd_safetensors_writer *w, const char *name, int ndim,
                                      const int64_t *shape, const float *data);

/* Sets a metadata entry (a later value for the same key replaces the earlier). */
skd_status skd_safetensors_writer_set_metadata(skd_safetensors_writer *w, const char *key, const char *value);

/* Writes "<path>.tmp.<pid>", fsyncs it and renames it over path. On failure
 * (SKD_EIO) the temporary file is removed and an existing file at path is
 * left as it was. */
skd_status skd_safetensors_write(const skd_safetensors_writer *w, const char *path);

/* ---- reading ---- */

typedef struct skd_safetensors skd_safetensors;

/* One tensor of an open file. */
typedef struct skd_safetensors_entry {
  const char *name;
  skd_dtype dtype;
  int ndim;
  int64_t shape[SKD_SAFETENSORS_MAX_DIMS];
  size_t numel;    /* product of shape (1 for ndim 0) */
  uint64_t begin;  /* data_offsets, relative to the data area */
  uint64_t end;
} skd_safetensors_entry;

/* Opens and validates path. SKD_EIO when it cannot be read, SKD_EFORMAT when
 * it is not a valid safetensors file; the message names the file, the tensor
 * (or "header") and the field. A PyTorch torch.save file (skd/io/pth.h),
 * recognised by its first bytes, is read whole and opened the same way, its
 * keys mapped from a detected layout (skd/nn/layout.h); its metadata is then
 * "pth.format" and "pth.layout". Anything else is "not a checkpoint". */
skd_status skd_safetensors_open(skd_safetensors **out, const char *path);
void skd_safetensors_close(skd_safetensors *f);

/* Tensors, sorted by name: entry(f, i) for 0 <= i < count(f). */
int skd_safetensors_count(const skd_safetensors *f);
const skd_safetensors_entry *skd_safetensors_entry_at(const skd_safetensors *f, int i);
/* Index of the tensor called name, or -1. */
int skd_safetensors_find(const skd_safetensors *f, const char *name);

/* Reads tensor i into out, which holds count values (count must equal the
 * tensor's numel, else SKD_EINVAL). read_f32 converts F32, F16, BF16 and F64;
 * read_i64 converts BOOL and the integer dtypes. Another dtype gives
 * SKD_EFORMAT; a file that changed since open gives SKD_EIO. */
skd_status skd_safetensors_read_f32(skd_safetensors *f, int i, float *out, size_t count);
skd_status skd_safetensors_read_i64(skd_safetensors *f, int i, int64_t *out, size_t count);

/* The metadata value of key, or NULL. */
const char *skd_safetensors_metadata(const skd_safetensors *f, const char *key);
/* All metadata, sorted by key: key/value of entry i for 0 <= i < count. */
int skd_safetensors_metadata_count(const skd_safetensors *f);
void skd_safetensors_metadata_at(const skd_safetensors *f, int i, const char **key, const char **value);

#endif
