/* safetensors reading: the header is parsed with cJSON and validated in full
 * at open (types, dtypes, shapes, offsets against the file size, no overlap,
 * no gap, no duplicate name); tensor data is read on demand in chunks. */
#define _FILE_OFFSET_BITS 64

#include <assert.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/safetensors_private.h"
#include "skd/io/pth.h"
#include "skd/io/safetensors.h"

static const struct {
  const char *name;
  size_t size;
} dtypes[] = {
    [SKD_DTYPE_BOOL] = {"BOOL", 1}, [SKD_DTYPE_U8] = {"U8", 1},   [SKD_DTYPE_I8] = {"I8", 1},
    [SKD_DTYPE_F8_E5M2] = {"F8_E5M2", 1}, [SKD_DTYPE_F8_E4M3] = {"F8_E4M3", 1},
    [SKD_DTYPE_I16] = {"I16", 2}, [SKD_DTYPE_U16] = {"U16", 2},   [SKD_DTYPE_F16] = {"F16", 2},
    [SKD_DTYPE_BF16] = {"BF16", 2}, [SKD_DTYPE_I32] = {"I32", 4}, [SKD_DTYPE_U32] = {"U32", 4},
    [SKD_DTYPE_F32] = {"F32", 4}, [SKD_DTYPE_F64] = {"F64", 8},   [SKD_DTYPE_I64] = {"I64", 8},
    [SKD_DTYPE_U64] = {"U64", 8},
};
#define NDTYPES ((int)(sizeof dtypes / sizeof dtypes[0]))

const char *skd_dtype_name(skd_dtype dtype) {
  return (int)dtype >= 0 && (int)dtype < NDTYPES ? dtypes[dtype].name : "?";
}

size_t skd_dtype_size(skd_dtype dtype) { return (int)dtype >= 0 && (int)dtype < NDTYPES ? dtypes[dtype].size : 0; }

void skd_safetensors_shape_string(char *buf, size_t size, int ndim, const int64_t *shape) {
  size_t at = 0;
  at += (size_t)snprintf(buf, size, "[");
  for (int d = 0; d < ndim && at < size; d++)
    at += (size_t)snprintf(buf + at, size - at, d ? ", %" PRId64 : "%" PRId64, shape[d]);
  if (at < size) snprintf(buf + at, size - at, "]");
}

/* ---- validation of the header ---- */

/* JSON numbers are doubles: integers are exact up to 2^53, far beyond any file. */
static int json_u64(const cJSON *item, uint64_t *out) {
  if (!cJSON_IsNumber(item)) return 0;
  double v = item->valuedouble;
  if (!isfinite(v) || v < 0.0 || v != floor(v) || v > 9007199254740992.0) return 0;
  *out = (uint64_t)v;
  return 1;
}

/* The error for field problems of one tensor: "<file>: tensor '<name>': ...". */
#define TENSOR_ERROR(f, name, fmt, ...) skd_error(SKD_EFORMAT, "%s: tensor '%s': " fmt, (f)->path, name, __VA_ARGS__)

static skd_status parse_dtype(const skd_safetensors *f, const char *name, const cJSON *item, skd_dtype *out) {
  if (!item) return TENSOR_ERROR(f, name, "%s", "dtype is missing");
  if (!cJSON_IsString(item)) return TENSOR_ERROR(f, name, "%s", "dtype is not a string");
  for (int d = 0; d < NDTYPES; d++) {
    if (strcmp(item->valuestring, dtypes[d].name) == 0) {
      *out = (skd_dtype)d;
      return SKD_OK;
    }
  }
  char known[160] = "";
  for (int d = 0; d < NDTYPES; d++) {
    strcat(known, d ? ", " : "");
    strcat(known, dtypes[d].name);
  }
  return TENSOR_ERROR(f, name, "dtype '%.40s' is not a safetensors dtype (expected one of %s)", item->valuestring,
                      known);
}

static skd_status parse_shape(const skd_safetensors *f, skd_safetensors_entry *e, const cJSON *item) {
  if (!item) return TENSOR_ERROR(f, e->name, "%s", "shape is missing");
  if (!cJSON_IsArray(item)) return TENSOR_ERROR(f, e->name, "%s", "shape is not a list");
  int ndim = cJSON_GetArraySize(item);
  if (ndim > SKD_SAFETENSORS_MAX_DIMS)
    return TENSOR_ERROR(f, e->name, "shape has %d dimensions, at most %d are supported", ndim,
                        SKD_SAFETENSORS_MAX_DIMS);
  e->ndim = ndim;
  e->numel = 1;
  int d = 0;
  uint64_t numel = 1, overflow = 0;
  for (const cJSON *dim = item->child; dim; dim = dim->next, d++) {
    uint64_t v;
    if (!json_u64(dim, &v)) return TENSOR_ERROR(f, e->name, "shape[%d] is not a non-negative integer", d);
    e->shape[d] = (int64_t)v;
    if (v && numel > UINT64_MAX / v) overflow = 1;
    numel *= v;
  }
  /* numel * 8 must still fit: the largest dtype. */
  if (overflow || numel > (uint64_t)SIZE_MAX / 8 || numel > UINT64_MAX / 8) {
    char s[256];
    skd_safetensors_shape_string(s, sizeof s, e->ndim, e->shape);
    return TENSOR_ERROR(f, e->name, "shape %s is too large", s);
  }
  e->numel = (size_t)numel;
  return SKD_OK;
}

static skd_status parse_offsets(const skd_safetensors *f, skd_safetensors_entry *e, const cJSON *item) {
  if (!item) return TENSOR_ERROR(f, e->name, "%s", "data_offsets is missing");
  if (!cJSON_IsArray(item) || cJSON_GetArraySize(item) != 2 || !json_u64(item->child, &e->begin) ||
      !json_u64(item->child->next, &e->end))
    return TENSOR_ERROR(f, e->name, "%s", "data_offsets is not a list of two non-negative integers");
  if (e->begin > e->end)
    return TENSOR_ERROR(f, e->name, "data_offsets [%" PRIu64 ", %" PRIu64 "] end before they begin", e->begin,
                        e->end);
  if (e->end > f->data_size)
    return TENSOR_ERROR(f, e->name,
                        "data_offsets [%" PRIu64 ", %" PRIu64 "] go beyond the data area (%" PRIu64 " bytes)",
                        e->begin, e->end, f->data_size);
  uint64_t bytes = (uint64_t)e->numel * skd_dtype_size(e->dtype);
  if (e->end - e->begin != bytes) {
    char s[256];
    skd_safetensors_shape_string(s, sizeof s, e->ndim, e->shape);
    return TENSOR_ERROR(f, e->name,
                        "data_offsets [%" PRIu64 ", %" PRIu64 "] do not match dtype %s and shape %s (%" PRIu64
                        " bytes)",
                        e->begin, e->end, skd_dtype_name(e->dtype), s, bytes);
  }
  return SKD_OK;
}

static skd_status parse_tensor(const skd_safetensors *f, skd_safetensors_entry *e, const cJSON *obj) {
  if (!cJSON_IsObject(obj)) return TENSOR_ERROR(f, e->name, "%s", "is not a JSON object");
  /* cJSON keeps repeated keys; the first would win silently. Other keys are
   * ignored, as the reference implementation does. */
  static const char *fields[] = {"dtype", "shape", "data_offsets"};
  const cJSON *found[3] = {NULL, NULL, NULL};
  for (const cJSON *c = obj->child; c; c = c->next) {
    for (int k = 0; k < 3; k++) {
      if (strcmp(c->string, fields[k]) != 0) continue;
      if (found[k]) return TENSOR_ERROR(f, e->name, "field '%s' appears twice", fields[k]);
      found[k] = c;
    }
  }
  skd_status st = parse_dtype(f, e->name, found[0], &e->dtype);
  if (st == SKD_OK) st = parse_shape(f, e, found[1]);
  if (st == SKD_OK) st = parse_offsets(f, e, found[2]);
  return st;
}

static int cmp_meta(const void *a, const void *b) {
  return strcmp(((const struct meta *)a)->key, ((const struct meta *)b)->key);
}

static skd_status parse_metadata(skd_safetensors *f, const cJSON *obj) {
  if (cJSON_IsNull(obj)) return SKD_OK;
  if (!cJSON_IsObject(obj))
    return skd_error(SKD_EFORMAT, "%s: header: __metadata__ is not a JSON object", f->path);
  int n = cJSON_GetArraySize(obj);
  f->meta = calloc(n ? (size_t)n : 1, sizeof *f->meta);
  if (!f->meta) return skd_error(SKD_ENOMEM, "%s: out of host memory for the metadata", f->path);
  for (const cJSON *c = obj->child; c; c = c->next) {
    if (!cJSON_IsString(c))
      return skd_error(SKD_EFORMAT, "%s: header: __metadata__ value of '%s' is not a string", f->path, c->string);
    struct meta *m = &f->meta[f->nmeta];
    m->key = strdup(c->string);
    m->value = strdup(c->valuestring);
    if (!m->key || !m->value) {
      free(m->key);
      free(m->value);
      return skd_error(SKD_ENOMEM, "%s: out of host memory for the metadata", f->path);
    }
    f->nmeta++;
  }
  qsort(f->meta, (size_t)f->nmeta, sizeof *f->meta, cmp_meta);
  for (int i = 1; i < f->nmeta; i++)
    if (strcmp(f->meta[i - 1].key, f->meta[i].key) == 0)
      return skd_error(SKD_EFORMAT, "%s: header: __metadata__ key '%s' appears twice", f->path, f->meta[i].key);
  return SKD_OK;
}

static int cmp_name(const void *a, const void *b) {
  return strcmp(((const skd_safetensors_entry *)a)->name, ((const skd_safetensors_entry *)b)->name);
}

static int cmp_offsets(const void *a, const void *b) {
  const skd_safetensors_entry *x = *(const skd_safetensors_entry *const *)a;
  const skd_safetensors_entry *y = *(const skd_safetensors_entry *const *)b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return 0;
}

/* The tensors must tile the data area: sorted by offset, each begins where
 * the previous ended (empty tensors included), and the last ends at the end. */
static skd_status check_layout(const skd_safetensors *f) {
  const skd_safetensors_entry **order = malloc(((size_t)f->count + 1) * sizeof *order);
  if (!order) return skd_error(SKD_ENOMEM, "%s: out of host memory", f->path);
  for (int i = 0; i < f->count; i++) order[i] = &f->entries[i];
  qsort(order, (size_t)f->count, sizeof *order, cmp_offsets);
  skd_status st = SKD_OK;
  uint64_t pos = 0;
  const skd_safetensors_entry *prev = NULL;
  for (int i = 0; i < f->count && st == SKD_OK; i++) {
    const skd_safetensors_entry *e = order[i];
    if (e->begin < pos)
      st = TENSOR_ERROR(f, e->name,
                        "data_offsets [%" PRIu64 ", %" PRIu64 "] overlap tensor '%s' [%" PRIu64 ", %" PRIu64 "]",
                        e->begin, e->end, prev->name, prev->begin, prev->end);
    else if (e->begin > pos)
      st = skd_error(SKD_EFORMAT,
                     "%s: header: data bytes [%" PRIu64 ", %" PRIu64
                     ") belong to no tensor (the tensors must cover the data area)",
                     f->path, pos, e->begin);
    pos = e->end;
    prev = e;
  }
  if (st == SKD_OK && pos != f->data_size)
    st = skd_error(SKD_EFORMAT,
                   "%s: header: data bytes [%" PRIu64 ", %" PRIu64
                   ") belong to no tensor (the tensors must cover the data area)",
                   f->path, pos, f->data_size);
  free(order);
  return st;
}

static skd_status parse_header(skd_safetensors *f, const char *text, size_t len) {
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
  if (!root) {
    size_t at = end && end >= text ? (size_t)(end - text) : 0;
    return skd_error(SKD_EFORMAT, "%s: header: not valid JSON (error near byte %zu of %zu)", f->path, at, len);
  }
  skd_status st = SKD_OK;
  /* Writers pad the header with spaces; anything else after the object is garbage. */
  for (const char *p = end; p < text + len && st == SKD_OK; p++)
    if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
      st = skd_error(SKD_EFORMAT, "%s: header: unexpected bytes after the JSON object (at byte %zu)", f->path,
                     (size_t)(p - text));
  if (st == SKD_OK && !cJSON_IsObject(root))
    st = skd_error(SKD_EFORMAT, "%s: header: is not a JSON object", f->path);
  if (st != SKD_OK) goto done;

  int n = cJSON_GetArraySize(root), nmeta = 0;
  f->entries = calloc(n ? (size_t)n : 1, sizeof *f->entries);
  if (!f->entries) {
    st = skd_error(SKD_ENOMEM, "%s: out of host memory for %d header entries", f->path, n);
    goto done;
  }
  for (const cJSON *c = root->child; c && st == SKD_OK; c = c->next) {
    if (strcmp(c->string, "__metadata__") == 0) {
      if (nmeta++)
        st = skd_error(SKD_EFORMAT, "%s: header: __metadata__ appears twice", f->path);
      else
        st = parse_metadata(f, c);
      continue;
    }
    skd_safetensors_entry *e = &f->entries[f->count];
    e->name = strdup(c->string);
    if (!e->name) {
      st = skd_error(SKD_ENOMEM, "%s: out of host memory", f->path);
      break;
    }
    f->count++;
    st = parse_tensor(f, e, c);
  }
  if (st != SKD_OK) goto done;
  qsort(f->entries, (size_t)f->count, sizeof *f->entries, cmp_name);
  for (int i = 1; i < f->count && st == SKD_OK; i++)
    if (strcmp(f->entries[i - 1].name, f->entries[i].name) == 0)
      st = TENSOR_ERROR(f, f->entries[i].name, "%s", "appears twice in the header");
  if (st == SKD_OK) st = check_layout(f);
done:
  cJSON_Delete(root);
  return st;
}

/* ---- open / close / accessors ---- */

void skd_safetensors_close(skd_safetensors *f) {
  if (!f) return;
  if (f->fp) fclose(f->fp);
  for (int i = 0; i < f->count; i++) free((char *)f->entries[i].name);
  free(f->entries);
  for (int i = 0; i < f->nmeta; i++) {
    free(f->meta[i].key);
    free(f->meta[i].value);
  }
  free(f->meta);
  free(f->mem);
  free(f->path);
  free(f);
}

skd_status skd_safetensors_open(skd_safetensors **out, const char *path) {
  *out = NULL;
  skd_safetensors *f = calloc(1, sizeof *f);
  if (!f || !(f->path = strdup(path))) {
    free(f);
    return skd_error(SKD_ENOMEM, "%s: out of host memory", path);
  }
  char *text = NULL;
  skd_status st = SKD_OK;
  struct stat sb;
  unsigned char len8[8];
  f->fp = fopen(path, "rb");
  if (!f->fp) {
    st = skd_error(SKD_EIO, "%s: cannot open: %s", path, strerror(errno));
    goto done;
  }
  if (fstat(fileno(f->fp), &sb) != 0 || !S_ISREG(sb.st_mode)) {
    st = skd_error(SKD_EIO, "%s: is not a regular file", path);
    goto done;
  }
  uint64_t size = (uint64_t)sb.st_size;
  if (size < 8) {
    st = skd_error(SKD_EFORMAT, "%s: header: the file has %" PRIu64 " bytes, too few for the 8-byte header length",
                   path, size);
    goto done;
  }
  if (fread(len8, 1, 8, f->fp) != 8) {
    st = skd_error(SKD_EIO, "%s: cannot read the header length", path);
    goto done;
  }
  /* Content, not the name, tells a torch.save file. */
  unsigned char head[16];
  size_t nhead = 8;
  memcpy(head, len8, 8);
  /* pread leaves the FILE's buffer and position alone. */
  ssize_t more = pread(fileno(f->fp), head + 8, 8, 8);
  if (more > 0) nhead += (size_t)more;
  skd_file_kind kind = skd_file_sniff(head, nhead);
  if (kind == SKD_FILE_PTH_ZIP || kind == SKD_FILE_PTH_LEGACY) {
    fclose(f->fp);
    f->fp = NULL;
    st = safetensors_open_pth(f);
    goto done;
  }
  uint64_t n = skd_le_u64(len8);
  if (n > SKD_SAFETENSORS_MAX_HEADER && kind == SKD_FILE_SAFETENSORS) {
    st = skd_error(SKD_EFORMAT, "%s: header: length %" PRIu64 " is over the limit of %" PRIu64 " bytes", path, n,
                   SKD_SAFETENSORS_MAX_HEADER);
    goto done;
  }
  if (n > SKD_SAFETENSORS_MAX_HEADER) {
    char hex[32];
    for (int i = 0; i < 8; i++) snprintf(hex + 3 * i, sizeof hex - 3 * (size_t)i, "%02x ", head[i]);
    hex[23] = '\0';
    st = skd_error(SKD_EFORMAT, "%s: not a checkpoint (first bytes %s: neither safetensors nor a PyTorch file; "
                   "read as safetensors, its header length %" PRIu64 " is over the limit of %" PRIu64 " bytes)", path,
                   hex, n, SKD_SAFETENSORS_MAX_HEADER);
    goto done;
  }
  if (n > size - 8) {
    st = skd_error(SKD_EFORMAT, "%s: header: length %" PRIu64 " goes beyond the end of the file (%" PRIu64 " bytes)",
                   path, n, size);
    goto done;
  }
  f->data_start = 8 + n;
  f->data_size = size - f->data_start;
  text = malloc((size_t)n + 1);
  if (!text) {
    st = skd_error(SKD_ENOMEM, "%s: out of host memory for a header of %" PRIu64 " bytes", path, n);
    goto done;
  }
  if (fread(text, 1, (size_t)n, f->fp) != (size_t)n) {
    st = skd_error(SKD_EIO, "%s: cannot read the %" PRIu64 "-byte header", path, n);
    goto done;
  }
  text[n] = '\0';
  st = parse_header(f, text, (size_t)n);
done:
  free(text);
  if (st != SKD_OK) {
    skd_safetensors_close(f);
    return st;
  }
  *out = f;
  return SKD_OK;
}

int skd_safetensors_count(const skd_safetensors *f) { return f->count; }

const skd_safetensors_entry *skd_safetensors_entry_at(const skd_safetensors *f, int i) {
  assert(i >= 0 && i < f->count);
  return &f->entries[i];
}

int skd_safetensors_find(const skd_safetensors *f, const char *name) {
  skd_safetensors_entry key = {.name = name};
  const skd_safetensors_entry *e = bsearch(&key, f->entries, (size_t)f->count, sizeof key, cmp_name);
  return e ? (int)(e - f->entries) : -1;
}

const char *skd_safetensors_metadata(const skd_safetensors *f, const char *key) {
  if (f->nmeta == 0) return NULL;
  struct meta k = {(char *)key, NULL};
  const struct meta *m = bsearch(&k, f->meta, (size_t)f->nmeta, sizeof k, cmp_meta);
  return m ? m->value : NULL;
}

int skd_safetensors_metadata_count(const skd_safetensors *f) { return f->nmeta; }

void skd_safetensors_metadata_at(const skd_safetensors *f, int i, const char **key, const char **value) {
  assert(i >= 0 && i < f->nmeta);
  *key = f->meta[i].key;
  *value = f->meta[i].value;
}
