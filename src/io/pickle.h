/* A strict interpreter of the pickle subset that torch.save writes for
 * state_dicts (protocol 2, optionally framed): dicts and OrderedDicts,
 * tuples, lists, ints, floats, strings, bools, None, memo, tensors rebuilt by
 * torch._utils._rebuild_tensor_v2 / _rebuild_parameter, and storages given as
 * persistent ids. Only an allow-list of globals is ever honoured; anything
 * else is an error naming the file, the byte offset and the opcode or global.
 * Objects live in a heap that several pickles of one file share (the legacy
 * format is a sequence of pickles), freed all at once. */
#ifndef SKD_IO_PICKLE_H
#define SKD_IO_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#include "skd/io/safetensors.h"
#include "skd/status.h"

#define PK_MAX_DIMS 8

typedef enum pk_kind {
  PK_NONE, PK_BOOL, PK_INT, PK_FLOAT, PK_STR, PK_TUPLE, PK_LIST, PK_DICT, PK_GLOBAL, PK_STORAGE, PK_TENSOR, PK_MARK
} pk_kind;

typedef struct pk_obj pk_obj;
struct pk_obj {
  pk_kind kind;
  int64_t i;        /* INT, BOOL; STORAGE: element count; GLOBAL: which */
  double f;         /* FLOAT */
  char *s;          /* STR (NUL-terminated, len bytes); STORAGE: its key */
  size_t len;
  pk_obj **items;   /* TUPLE, LIST; DICT as key, value, key, value ... */
  size_t n, cap;
  skd_dtype dtype;  /* STORAGE, and GLOBAL storage types */
  /* TENSOR: a view (offset, size, stride, in elements) of a storage. */
  pk_obj *storage;
  int64_t offset;
  int ndim;
  int64_t size[PK_MAX_DIMS], stride[PK_MAX_DIMS];
  /* STORAGE: its bytes once the container supplied them: bytes, which is
   * data when owned (zip) or points into the caller's file (legacy). */
  const unsigned char *bytes;
  unsigned char *data;
  pk_obj *next;         /* every object of the heap, for freeing */
  pk_obj *next_storage; /* STORAGE: the heap's storages */
};

typedef struct pk_heap {
  const char *file; /* for messages */
  pk_obj *all;
  pk_obj *storages; /* one object per storage key */
  size_t count;     /* objects allocated, capped */
} pk_heap;

/* Runs one pickle from data[0..size) (up to and including STOP) and returns
 * its object; *used is the number of bytes it took. Offsets in messages add
 * base (the pickle's position in the file). */
skd_status pk_load(pk_heap *h, const unsigned char *data, size_t size, size_t base, pk_obj **out, size_t *used);
void pk_heap_free(pk_heap *h);

/* The value of key in a DICT, or NULL. */
pk_obj *pk_dict_get(const pk_obj *dict, const char *key);

/* Checks a tensor's view against its storage's element count (sizes and
 * strides non-negative, the furthest element inside, no 64-bit wrap). */
skd_status pk_check_view(const pk_heap *h, const pk_obj *t, const char *name);

#endif
