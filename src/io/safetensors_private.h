/* Shared by the safetensors reader, its data access and the writer. */
#ifndef SKD_IO_SAFETENSORS_PRIVATE_H
#define SKD_IO_SAFETENSORS_PRIVATE_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "skd/io/safetensors.h"

struct meta {
  char *key;
  char *value;
};

struct skd_safetensors {
  char *path;
  FILE *fp;
  uint64_t data_start; /* 8 + header length */
  uint64_t data_size;
  int count;
  skd_safetensors_entry *entries; /* sorted by name; names owned */
  int nmeta;
  struct meta *meta; /* sorted by key */
  unsigned char *mem; /* a torch.save file's tensors, which fp reads (owned) */
};

/* Fills f (path set, fp closed) from the torch.save file at f->path
 * (safetensors_pth.c). */
skd_status safetensors_open_pth(skd_safetensors *f);

/* "[64, 3, 3, 3]" into buf (truncated to size). */
void skd_safetensors_shape_string(char *buf, size_t size, int ndim, const int64_t *shape);

/* Little-endian loads and stores, whatever the host's byte order. */
static inline uint16_t skd_le_u16(const unsigned char *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static inline uint32_t skd_le_u32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t skd_le_u64(const unsigned char *p) {
  return (uint64_t)skd_le_u32(p) | (uint64_t)skd_le_u32(p + 4) << 32;
}

static inline void skd_le_put_u32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static inline void skd_le_put_u64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

#endif
