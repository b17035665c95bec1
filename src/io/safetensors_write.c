/* safetensors writing: float32 tensors sorted by name, metadata sorted by
 * key, compact JSON padded with spaces to a multiple of 8 bytes (so the data
 * starts 8-aligned), written atomically: temporary file in the same
 * directory, fsync, rename. */
#define _FILE_OFFSET_BITS 64

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <unistd.h>

#include "io/safetensors_private.h"
#include "skd/io/fs.h"

#define CHUNK_FLOATS 16384

struct tensor {
  char *name;
  int ndim;
  int64_t shape[SKD_SAFETENSORS_MAX_DIMS];
  size_t numel;
  float *data;
};

struct skd_safetensors_writer {
  struct tensor *t;
  int n, cap;
  struct meta *m;
  int nm, capm;
};

skd_status skd_safetensors_writer_create(skd_safetensors_writer **out) {
  *out = calloc(1, sizeof **out);
  return *out ? SKD_OK : skd_error(SKD_ENOMEM, "safetensors writer: out of host memory");
}

void skd_safetensors_writer_free(skd_safetensors_writer *w) {
  if (!w) return;
  for (int i = 0; i < w->n; i++) {
    free(w->t[i].name);
    free(w->t[i].data);
  }
  for (int i = 0; i < w->nm; i++) {
    free(w->m[i].key);
    free(w->m[i].value);
  }
  free(w->t);
  free(w->m);
  free(w);
}

/* Grows *items (of size elem) to hold one more than *cap if full. */
static int grow(void **items, int *cap, int n, size_t elem) {
  if (n < *cap) return 1;
  int ncap = *cap ? 2 * *cap : 16;
  void *p = realloc(*items, (size_t)ncap * elem);
  if (!p) return 0;
  *items = p;
  *cap = ncap;
  return 1;
}

skd_status skd_safetensors_writer_add(skd_safetensors_writer *w, const char *name, int ndim,
                                      const int64_t *shape, const float *data) {
  if (!name || strcmp(name, "__metadata__") == 0)
    return skd_error(SKD_EINVAL, "safetensors writer: tensor name '%s' is reserved", name ? name : "(null)");
  if (ndim < 0 || ndim > SKD_SAFETENSORS_MAX_DIMS)
    return skd_error(SKD_EINVAL, "safetensors writer: tensor '%s': ndim %d is not within 0..%d", name, ndim,
                     SKD_SAFETENSORS_MAX_DIMS);
  for (int i = 0; i < w->n; i++)
    if (strcmp(w->t[i].name, name) == 0)
      return skd_error(SKD_EINVAL, "safetensors writer: tensor '%s' added twice", name);
  /* Offsets go through JSON doubles on the reading side: stay below 2^53 bytes. */
  uint64_t numel = 1;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] < 0) return skd_error(SKD_EINVAL, "safetensors writer: tensor '%s': shape[%d] is negative", name, d);
    if (shape[d] && numel > ((uint64_t)1 << 50) / (uint64_t)shape[d])
      return skd_error(SKD_EINVAL, "safetensors writer: tensor '%s': too many elements", name);
    numel *= (uint64_t)shape[d];
  }
  if (numel && !data) return skd_error(SKD_EINVAL, "safetensors writer: tensor '%s': data is NULL", name);
  if (!grow((void **)&w->t, &w->cap, w->n, sizeof *w->t))
    return skd_error(SKD_ENOMEM, "safetensors writer: out of host memory");
  struct tensor *t = &w->t[w->n];
  memset(t, 0, sizeof *t);
  t->name = strdup(name);
  t->data = malloc(numel ? (size_t)numel * sizeof(float) : 1);
  if (!t->name || !t->data) {
    free(t->name);
    free(t->data);
    return skd_error(SKD_ENOMEM, "safetensors writer: tensor '%s': out of host memory for %" PRIu64 " floats", name,
                     numel);
  }
  t->ndim = ndim;
  for (int d = 0; d < ndim; d++) t->shape[d] = shape[d];
  t->numel = (size_t)numel;
  if (numel) memcpy(t->data, data, t->numel * sizeof(float));
  w->n++;
  return SKD_OK;
}

skd_status skd_safetensors_writer_set_metadata(skd_safetensors_writer *w, const char *key, const char *value) {
  char *v = strdup(value);
  if (!v) return skd_error(SKD_ENOMEM, "safetensors writer: out of host memory");
  for (int i = 0; i < w->nm; i++) {
    if (strcmp(w->m[i].key, key) == 0) {
      free(w->m[i].value);
      w->m[i].value = v;
      return SKD_OK;
    }
  }
  char *k = strdup(key);
  if (!k || !grow((void **)&w->m, &w->capm, w->nm, sizeof *w->m)) {
    free(k);
    free(v);
    return skd_error(SKD_ENOMEM, "safetensors writer: out of host memory");
  }
  w->m[w->nm].key = k;
  w->m[w->nm].value = v;
  w->nm++;
  return SKD_OK;
}

static int cmp_tensor_ptr(const void *a, const void *b) {
  return strcmp((*(const struct tensor *const *)a)->name, (*(const struct tensor *const *)b)->name);
}

static int cmp_meta_ptr(const void *a, const void *b) {
  return strcmp((*(const struct meta *const *)a)->key, (*(const struct meta *const *)b)->key);
}

/* Integers as raw JSON text: cJSON would print 1e+15 for large doubles. */
static int add_u64(cJSON *array, uint64_t v) {
  char text[32];
  snprintf(text, sizeof text, "%" PRIu64, v);
  cJSON *item = cJSON_CreateRaw(text);
  return item && cJSON_AddItemToArray(array, item);
}

/* The JSON header for tensors in the given order; NULL when out of memory. */
static char *build_header(const skd_safetensors_writer *w, struct tensor **order, struct meta **morder) {
  cJSON *root = cJSON_CreateObject();
  int ok = root != NULL;
  if (ok && w->nm) {
    cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
    ok = meta != NULL;
    for (int i = 0; i < w->nm && ok; i++) ok = cJSON_AddStringToObject(meta, morder[i]->key, morder[i]->value) != NULL;
  }
  uint64_t offset = 0;
  for (int i = 0; i < w->n && ok; i++) {
    const struct tensor *t = order[i];
    cJSON *obj = cJSON_AddObjectToObject(root, t->name);
    cJSON *shape = NULL, *offsets = NULL;
    ok = obj && cJSON_AddStringToObject(obj, "dtype", skd_dtype_name(SKD_DTYPE_F32)) &&
         (shape = cJSON_AddArrayToObject(obj, "shape")) && (offsets = cJSON_AddArrayToObject(obj, "data_offsets"));
    for (int d = 0; d < t->ndim && ok; d++) ok = add_u64(shape, (uint64_t)t->shape[d]);
    uint64_t end = offset + (uint64_t)t->numel * sizeof(float);
    ok = ok && add_u64(offsets, offset) && add_u64(offsets, end);
    offset = end;
  }
  char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
  cJSON_Delete(root);
  return text;
}

static int write_all(FILE *fp, const void *p, size_t n) { return fwrite(p, 1, n, fp) == n; }

/* Header length, header and data into fp; 0 with errno set on failure. */
static int write_contents(FILE *fp, const char *header, struct tensor **order, int n) {
  size_t len = strlen(header), padded = (len + 7) / 8 * 8;
  unsigned char len8[8];
  skd_le_put_u64(len8, (uint64_t)padded);
  if (!write_all(fp, len8, 8) || !write_all(fp, header, len)) return 0;
  for (size_t i = len; i < padded; i++)
    if (fputc(' ', fp) == EOF) return 0;
  unsigned char *chunk = malloc(CHUNK_FLOATS * 4);
  if (!chunk) return 0;
  int ok = 1;
  for (int i = 0; i < n && ok; i++) {
    const struct tensor *t = order[i];
    for (size_t at = 0; at < t->numel && ok; at += CHUNK_FLOATS) {
      size_t m = t->numel - at < CHUNK_FLOATS ? t->numel - at : CHUNK_FLOATS;
      for (size_t j = 0; j < m; j++) {
        uint32_t bits;
        memcpy(&bits, &t->data[at + j], 4);
        skd_le_put_u32(chunk + 4 * j, bits);
      }
      ok = write_all(fp, chunk, m * 4);
    }
  }
  free(chunk);
  return ok;
}

/* Makes the rename itself durable; some file systems refuse to fsync a
 * directory, which is no reason to fail a write that has happened. */
static void sync_directory(const char *path) {
  const char *slash = strrchr(path, '/');
  char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
  if (!dir) return;
  int fd = open(dir, O_RDONLY);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
  free(dir);
}

skd_status skd_safetensors_write(const skd_safetensors_writer *w, const char *path) {
  skd_status st = SKD_OK;
  struct tensor **order = malloc(((size_t)w->n + 1) * sizeof *order);
  struct meta **morder = malloc(((size_t)w->nm + 1) * sizeof *morder);
  size_t tmp_size = strlen(path) + 32;
  char *tmp = malloc(tmp_size), *header = NULL;
  FILE *fp = NULL;
  if (!order || !morder || !tmp) {
    st = skd_error(SKD_ENOMEM, "%s: out of host memory", path);
    goto done;
  }
  for (int i = 0; i < w->n; i++) order[i] = &w->t[i];
  for (int i = 0; i < w->nm; i++) morder[i] = &w->m[i];
  qsort(order, (size_t)w->n, sizeof *order, cmp_tensor_ptr);
  qsort(morder, (size_t)w->nm, sizeof *morder, cmp_meta_ptr);
  header = build_header(w, order, morder);
  if (!header) {
    st = skd_error(SKD_ENOMEM, "%s: out of host memory for the header", path);
    goto done;
  }
  snprintf(tmp, tmp_size, "%s.tmp.%ld", path, (long)getpid());
  skd_remove_stale_temporaries(path); /* what writers killed mid-save left */
  fp = fopen(tmp, "wb");
  if (!fp) {
    st = skd_error(SKD_EIO, "%s: cannot create the temporary file %s: %s", path, tmp, strerror(errno));
    goto done;
  }
  errno = 0;
  int ok = write_contents(fp, header, order, w->n) && fflush(fp) == 0 && fsync(fileno(fp)) == 0;
  int err = errno;
  if (fclose(fp) != 0 && ok) {
    ok = 0;
    err = errno;
  }
  fp = NULL;
  if (!ok) {
    remove(tmp);
    st = skd_error(SKD_EIO, "%s: writing the temporary file %s failed: %s", path, tmp,
                   err ? strerror(err) : "out of host memory");
    goto done;
  }
  if (rename(tmp, path) != 0) {
    err = errno;
    remove(tmp);
    st = skd_error(SKD_EIO, "%s: cannot rename %s over it: %s", path, tmp, strerror(err));
    goto done;
  }
  sync_directory(path);
done:
  free(header);
  free(tmp);
  free(order);
  free(morder);
  return st;
}
