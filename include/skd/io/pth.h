/* PyTorch checkpoints (torch.save files) read without Python: the zip format
 * (PyTorch >= 1.6: archive/data.pkl and archive/data/<key> storages, read
 * with libzip) and the legacy format (a sequence of pickles: magic number,
 * protocol, system info, the object, the storage keys, then each storage's
 * element count and raw bytes). The object must be a state_dict, or a dict
 * holding one under "state_dict", "model", "model_state_dict", "net" or
 * "network"; a "module." prefix on every key (DataParallel) is removed.
 *
 * The pickle is run by a strict interpreter (src/io/pickle.c) that honours
 * only an allow-list of globals; every size, offset and stride is checked
 * against the storage it views. Tensors come out contiguous, in their own
 * dtype (float32, float16, bfloat16, float64, int64, int32, uint8, bool).
 *
 * skd_safetensors_open() detects these files by content and opens them as
 * if they were safetensors, so every checkpoint reader accepts them. */
#ifndef SKD_IO_PTH_H
#define SKD_IO_PTH_H

#include <stddef.h>
#include <stdint.h>

#include "skd/io/safetensors.h"
#include "skd/status.h"

typedef enum skd_file_kind {
  SKD_FILE_SAFETENSORS, /* or something that may be one: its own checks decide */
  SKD_FILE_PTH_ZIP,
  SKD_FILE_PTH_LEGACY,
  SKD_FILE_TORCHSCRIPT,
  SKD_FILE_UNKNOWN
} skd_file_kind;

/* What the first n bytes of a file (n >= 16 where the file has them) say it is. */
skd_file_kind skd_file_sniff(const unsigned char *head, size_t n);
/* "a PyTorch zip checkpoint", "a legacy PyTorch checkpoint", ... */
const char *skd_file_kind_name(skd_file_kind kind);

typedef struct skd_pth_tensor {
  char *name;
  skd_dtype dtype;
  int ndim;
  int64_t shape[SKD_SAFETENSORS_MAX_DIMS];
  size_t numel;
  size_t begin, end; /* bytes of data, contiguous, little-endian */
} skd_pth_tensor;

typedef struct skd_pth {
  int count;
  skd_pth_tensor *tensors; /* in the file's order */
  unsigned char *data;
  size_t size;
  skd_file_kind kind;
} skd_pth;

/* Reads a torch.save file. SKD_EIO when it cannot be read; SKD_EFORMAT,
 * naming the file, the byte offset and the opcode, global or tensor, when it
 * is not a state_dict this reader accepts. */
skd_status skd_pth_read(skd_pth **out, const char *path);
/* The same from memory (name is used in messages). */
skd_status skd_pth_read_memory(skd_pth **out, const void *data, size_t size, const char *name);
void skd_pth_free(skd_pth *p);

#endif
