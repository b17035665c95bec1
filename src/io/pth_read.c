/* torch.save files (pth.h): the two containers around the pickle, the
 * state_dict inside it, and its tensors copied out contiguous. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

#include "io/pickle.h"
#include "skd/io/fs.h"
#include "skd/io/pth.h"

/* The legacy format's first pickle: PROTO 2, LONG1 of 10 bytes, the magic
 * number 0x1950a86a20f9469cfc6c, STOP. */
static const unsigned char legacy_magic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46,
                                             0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e};
#define MAX_PICKLE_BYTES ((zip_uint64_t)1 << 30)

skd_file_kind skd_file_sniff(const unsigned char *head, size_t n) {
  if (n >= 4 && memcmp(head, "PK\x03\x04", 4) == 0) return SKD_FILE_PTH_ZIP;
  if (n >= sizeof legacy_magic && memcmp(head, legacy_magic, sizeof legacy_magic) == 0) return SKD_FILE_PTH_LEGACY;
  /* safetensors starts with a little-endian header length; one of 2^48
   * bytes or more is no header (text, images, ... have such bytes there).
   * Shorter files and smaller lengths get safetensors' own checks. */
  if (n >= 8 && (head[6] || head[7])) return SKD_FILE_UNKNOWN;
  return SKD_FILE_SAFETENSORS;
}

const char *skd_file_kind_name(skd_file_kind kind) {
  switch (kind) {
    case SKD_FILE_SAFETENSORS: return "a safetensors file";
    case SKD_FILE_PTH_ZIP: return "a PyTorch zip checkpoint";
    case SKD_FILE_PTH_LEGACY: return "a legacy PyTorch checkpoint";
    case SKD_FILE_TORCHSCRIPT: return "a TorchScript archive (not supported: save the state_dict)";
    default: return "not a checkpoint";
  }
}

void skd_pth_free(skd_pth *p) {
  if (!p) return;
  for (int i = 0; i < p->count; i++) free(p->tensors[i].name);
  free(p->tensors);
  free(p->data);
  free(p);
}

/* ---- the state_dict and its tensors ---- */

static int all_tensors(const pk_obj *d) {
  if (!d || d->kind != PK_DICT || d->n == 0) return 0;
  for (size_t i = 0; i + 1 < d->n; i += 2)
    if (d->items[i]->kind != PK_STR || d->items[i + 1]->kind != PK_TENSOR) return 0;
  return 1;
}

static skd_status find_state_dict(const pk_heap *h, const pk_obj *root, const pk_obj **out) {
  static const char *holders[] = {"state_dict", "model", "model_state_dict", "net", "network"};
  if (all_tensors(root)) {
    *out = root;
    return SKD_OK;
  }
  for (size_t k = 0; k < sizeof holders / sizeof holders[0]; k++) {
    const pk_obj *d = pk_dict_get(root, holders[k]);
    if (all_tensors(d)) {
      *out = d;
      return SKD_OK;
    }
  }
  if (!root || root->kind != PK_DICT)
    return skd_error(SKD_EFORMAT, "%s: the saved object is not a dict (a state_dict was expected)", h->file);
  char keys[300] = "";
  size_t at = 0;
  for (size_t i = 0; i + 1 < root->n && at < sizeof keys - 40; i += 2)
    if (root->items[i]->kind == PK_STR)
      at += (size_t)snprintf(keys + at, sizeof keys - at, "%s'%.32s'", at ? ", " : "", root->items[i]->s);
  return skd_error(SKD_EFORMAT, "%s: no state_dict: the saved dict is not one of tensors, and has no 'state_dict' "
                   "or 'model' entry that is (its keys: %s)", h->file, at ? keys : "none");
}

/* Copies a view element by element (strides in elements), odometer order. */
static void gather(unsigned char *dst, const unsigned char *src, const pk_obj *t, size_t es, size_t numel) {
  int64_t idx[PK_MAX_DIMS] = {0};
  for (size_t e = 0; e < numel; e++) {
    uint64_t at = (uint64_t)t->offset;
    for (int d = 0; d < t->ndim; d++) at += (uint64_t)idx[d] * (uint64_t)t->stride[d];
    memcpy(dst + e * es, src + at * es, es);
    for (int d = t->ndim - 1; d >= 0; d--) {
      if (++idx[d] < t->size[d]) break;
      idx[d] = 0;
    }
  }
}

static int contiguous(const pk_obj *t) {
  int64_t expect = 1;
  for (int d = t->ndim - 1; d >= 0; d--) {
    if (t->size[d] != 1 && t->stride[d] != expect) return 0;
    expect *= t->size[d];
  }
  return 1;
}

static skd_status build(skd_pth *p, const pk_heap *h, const pk_obj *sd) {
  size_t n = sd->n / 2, total = 0;
  p->tensors = calloc(n ? n : 1, sizeof *p->tensors);
  if (!p->tensors) return skd_error(SKD_ENOMEM, "%s: out of host memory", h->file);
  /* Every key carries "module." (DataParallel): drop it. */
  int strip = 1;
  for (size_t i = 0; i < n; i++) strip &= strncmp(sd->items[2 * i]->s, "module.", 7) == 0;
  for (size_t i = 0; i < n; i++) {
    const pk_obj *key = sd->items[2 * i], *t = sd->items[2 * i + 1];
    skd_pth_tensor *e = &p->tensors[p->count];
    if (!(e->name = strdup(key->s + (strip ? 7 : 0)))) return skd_error(SKD_ENOMEM, "%s: out of memory", h->file);
    p->count++;
    for (int j = 0; j < p->count - 1; j++)
      if (strcmp(p->tensors[j].name, e->name) == 0)
        return skd_error(SKD_EFORMAT, "%s: tensor '%s' appears twice", h->file, e->name);
    skd_status st = pk_check_view(h, t, e->name);
    if (st) return st;
    e->dtype = t->dtype;
    e->ndim = t->ndim;
    /* Each view fits its storage (checked above) and is no larger than it
     * (no stride-0 expansion), so numel is bounded by the storage's size. */
    uint64_t numel = 1, limit = (uint64_t)t->storage->i;
    int empty = 0;
    for (int d = 0; d < t->ndim; d++) {
      e->shape[d] = t->size[d];
      empty |= t->size[d] == 0;
    }
    for (int d = 0; d < t->ndim && !empty; d++) {
      uint64_t sz = (uint64_t)t->size[d];
      if (numel > limit / sz)
        return skd_error(SKD_EFORMAT, "%s: tensor '%s': more elements than its storage '%s' holds (expanded views "
                         "are not supported)", h->file, e->name, t->storage->s);
      numel *= sz;
    }
    if (empty) numel = 0;
    e->numel = (size_t)numel;
    size_t bytes = e->numel * skd_dtype_size(e->dtype);
    if (bytes > SIZE_MAX - total) return skd_error(SKD_EFORMAT, "%s: the tensors are too large", h->file);
    e->begin = total;
    total += bytes;
    e->end = total;
  }
  /* Views may share a storage, but a memo lets a small file repeat one large
   * view many times: the copies may not exceed twice the storages. */
  uint64_t stored = 0;
  for (const pk_obj *s = h->storages; s; s = s->next_storage) stored += (uint64_t)s->i * skd_dtype_size(s->dtype);
  if ((uint64_t)total > 2 * stored + ((uint64_t)64 << 20))
    return skd_error(SKD_EFORMAT, "%s: the tensors add up to %zu bytes, more than twice their storages' %" PRIu64
                     " (a view repeated many times?)", h->file, total, stored);
  p->data = malloc(total ? total : 1);
  if (!p->data) return skd_error(SKD_ENOMEM, "%s: out of host memory for %zu bytes of tensors", h->file, total);
  p->size = total;
  for (int i = 0; i < p->count; i++) {
    const pk_obj *t = sd->items[2 * (size_t)i + 1];
    const skd_pth_tensor *e = &p->tensors[i];
    size_t es = skd_dtype_size(e->dtype);
    if (!e->numel) continue;
    if (contiguous(t))
      memcpy(p->data + e->begin, t->storage->bytes + (size_t)t->offset * es, e->numel * es);
    else
      gather(p->data + e->begin, t->storage->bytes, t, es, e->numel);
  }
  return SKD_OK;
}

static skd_status storage_bytes(const pk_heap *h, const pk_obj *s, uint64_t *bytes) {
  size_t es = skd_dtype_size(s->dtype);
  if ((uint64_t)s->i > UINT64_MAX / es || (uint64_t)s->i * es > SIZE_MAX)
    return skd_error(SKD_EFORMAT, "%s: storage '%s': %" PRId64 " elements is too many", h->file, s->s, s->i);
  *bytes = (uint64_t)s->i * es;
  return SKD_OK;
}

/* ---- the zip format ---- */

static skd_status zip_fail(const pk_heap *h, zip_t *z, const char *what) {
  return skd_error(SKD_EFORMAT, "%s: zip archive: %s: %s", h->file, what, z ? zip_strerror(z) : "?");
}

static skd_status zip_entry(const pk_heap *h, zip_t *z, const char *name, uint64_t want, int exact,
                            unsigned char **out, uint64_t *size) {
  zip_stat_t zs;
  zip_int64_t k = zip_name_locate(z, name, 0);
  if (k < 0) return skd_error(SKD_EFORMAT, "%s: zip archive: no entry '%s'", h->file, name);
  if (zip_stat_index(z, (zip_uint64_t)k, 0, &zs) != 0 || !(zs.valid & ZIP_STAT_SIZE))
    return zip_fail(h, z, name);
  if (exact ? zs.size != want : zs.size > want)
    return skd_error(SKD_EFORMAT, "%s: zip archive: entry '%s' has %" PRIu64 " bytes, %s%" PRIu64 " expected",
                     h->file, name, (uint64_t)zs.size, exact ? "" : "at most ", want);
  *size = zs.size;
  *out = malloc(zs.size ? zs.size : 1);
  if (!*out) return skd_error(SKD_ENOMEM, "%s: out of host memory for '%s'", h->file, name);
  zip_file_t *zf = zip_fopen_index(z, (zip_uint64_t)k, 0);
  zip_int64_t got = zf ? zip_fread(zf, *out, zs.size) : -1;
  skd_status st = SKD_OK;
  if (!zf || got < 0 || (zip_uint64_t)got != zs.size) st = zip_fail(h, z, name);
  if (zf) zip_fclose(zf);
  if (st) {
    free(*out);
    *out = NULL;
  }
  return st;
}

static skd_status read_zip(pk_heap *h, zip_t *z, pk_obj **root) {
  /* One top-level folder holding data.pkl; TorchScript archives have code/. */
  zip_int64_t n = zip_get_num_entries(z, 0);
  const char *pkl = NULL;
  for (zip_int64_t i = 0; i < n; i++) {
    const char *name = zip_get_name(z, (zip_uint64_t)i, 0);
    if (!name) return zip_fail(h, z, "entry names");
    const char *slash = strchr(name, '/');
    if (!slash) continue;
    if (!strncmp(slash, "/code/", 6) || !strcmp(slash, "/constants.pkl"))
      return skd_error(SKD_EFORMAT, "%s: %s", h->file, skd_file_kind_name(SKD_FILE_TORCHSCRIPT));
    if (!strcmp(slash, "/data.pkl") && !pkl) pkl = name;
  }
  if (!pkl) return skd_error(SKD_EFORMAT, "%s: a zip file without <folder>/data.pkl: not a PyTorch checkpoint", h->file);
  char prefix[256];
  size_t plen = (size_t)(strchr(pkl, '/') - pkl);
  if (plen >= 128) return skd_error(SKD_EFORMAT, "%s: zip archive: folder name over 127 characters", h->file);
  memcpy(prefix, pkl, plen);
  prefix[plen] = '\0';
  unsigned char *bytes = NULL;
  uint64_t size = 0;
  char name[512];
  snprintf(name, sizeof name, "%s", pkl);
  skd_status st = zip_entry(h, z, name, MAX_PICKLE_BYTES, 0, &bytes, &size);
  size_t used;
  if (st == SKD_OK) st = pk_load(h, bytes, (size_t)size, 0, root, &used);
  free(bytes);
  for (pk_obj *s = h->storages; s && st == SKD_OK; s = s->next_storage) {
    uint64_t want = 0, got = 0;
    st = storage_bytes(h, s, &want);
    snprintf(name, sizeof name, "%s/data/%s", prefix, s->s);
    if (st == SKD_OK) st = zip_entry(h, z, name, want, 1, &s->data, &got);
    s->bytes = s->data;
  }
  return st;
}

/* ---- the legacy format ---- */

static skd_status read_legacy(pk_heap *h, const unsigned char *p, size_t size, pk_obj **root) {
  size_t pos = 0, used = 0;
  pk_obj *o = NULL, *keys = NULL;
  skd_status st = pk_load(h, p, size, 0, &o, &used); /* magic: compared by bytes in sniffing */
  if (st) return st;
  pos += used;
  if ((st = pk_load(h, p + pos, size - pos, pos, &o, &used))) return st;
  if (o->kind != PK_INT || o->i != 1001)
    return skd_error(SKD_EFORMAT, "%s: byte %zu: legacy protocol version 1001 expected", h->file, pos);
  pos += used;
  if ((st = pk_load(h, p + pos, size - pos, pos, &o, &used))) return st;
  const pk_obj *le = pk_dict_get(o, "little_endian");
  if (!le || le->kind != PK_BOOL || !le->i)
    return skd_error(SKD_EFORMAT, "%s: byte %zu: the system info does not say little_endian (a big-endian file "
                     "is not supported)", h->file, pos);
  pos += used;
  if ((st = pk_load(h, p + pos, size - pos, pos, root, &used))) return st;
  pos += used;
  if ((st = pk_load(h, p + pos, size - pos, pos, &keys, &used))) return st;
  if (keys->kind != PK_LIST)
    return skd_error(SKD_EFORMAT, "%s: byte %zu: the storage keys are not a list", h->file, pos);
  pos += used;
  for (size_t i = 0; i < keys->n; i++) {
    const pk_obj *k = keys->items[i];
    pk_obj *s = h->storages;
    while (s && !(k->kind == PK_STR && strcmp(s->s, k->s) == 0)) s = s->next_storage;
    if (!s)
      return skd_error(SKD_EFORMAT, "%s: byte %zu: storage key %zu of the list is not one the object uses",
                       h->file, pos, i);
    if (s->bytes)
      return skd_error(SKD_EFORMAT, "%s: byte %zu: storage '%s' is listed twice", h->file, pos, s->s);
    uint64_t bytes = 0;
    if ((st = storage_bytes(h, s, &bytes))) return st;
    if (size - pos < 8)
      return skd_error(SKD_EFORMAT, "%s: byte %zu: the file ends before storage '%s'", h->file, pos, s->s);
    uint64_t count = 0;
    for (int b = 7; b >= 0; b--) count = count << 8 | p[pos + (size_t)b];
    if (count != (uint64_t)s->i)
      return skd_error(SKD_EFORMAT, "%s: byte %zu: storage '%s' holds %" PRIu64 " elements, its tensors say %" PRId64,
                       h->file, pos, s->s, count, s->i);
    pos += 8;
    if (size - pos < bytes)
      return skd_error(SKD_EFORMAT, "%s: byte %zu: the file ends inside storage '%s' (%" PRIu64 " bytes)", h->file,
                       pos, s->s, bytes);
    s->bytes = p + pos; /* the caller's buffer outlives the heap */
    pos += (size_t)bytes;
  }
  for (pk_obj *s = h->storages; s; s = s->next_storage)
    if (!s->bytes)
      return skd_error(SKD_EFORMAT, "%s: storage '%s' is not in the file's list of storages", h->file, s->s);
  return SKD_OK;
}

/* ---- entry points ---- */

static skd_status finish(skd_pth **out, pk_heap *h, skd_status st, const pk_obj *root, skd_file_kind kind) {
  const pk_obj *sd = NULL;
  skd_pth *p = NULL;
  if (st == SKD_OK) st = find_state_dict(h, root, &sd);
  if (st == SKD_OK && !(p = calloc(1, sizeof *p))) st = skd_error(SKD_ENOMEM, "%s: out of host memory", h->file);
  if (st == SKD_OK) {
    p->kind = kind;
    st = build(p, h, sd);
  }
  pk_heap_free(h);
  if (st != SKD_OK) {
    skd_pth_free(p);
    return st;
  }
  *out = p;
  return SKD_OK;
}

static skd_status not_pth(const char *name, const unsigned char *head, size_t n) {
  skd_file_kind kind = skd_file_sniff(head, n);
  if (kind == SKD_FILE_PTH_ZIP || kind == SKD_FILE_PTH_LEGACY) return SKD_OK;
  char hex[64] = "";
  for (size_t i = 0; i < n && i < 8; i++) snprintf(hex + 3 * i, sizeof hex - 3 * i, "%02x ", head[i]);
  if (n) hex[3 * (n < 8 ? n : 8) - 1] = '\0';
  return skd_error(SKD_EFORMAT, "%s: not a checkpoint (first bytes %s: neither safetensors nor a PyTorch file)", name,
                   hex);
}

skd_status skd_pth_read_memory(skd_pth **out, const void *data, size_t size, const char *name) {
  *out = NULL;
  pk_heap h = {.file = name};
  pk_obj *root = NULL;
  skd_status st = not_pth(name, data, size);
  if (st) return st;
  skd_file_kind kind = skd_file_sniff(data, size);
  if (kind == SKD_FILE_PTH_LEGACY) {
    st = read_legacy(&h, data, size, &root);
  } else {
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(data, size, 0, &ze);
    zip_t *z = src ? zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze) : NULL;
    if (!z) {
      st = skd_error(SKD_EFORMAT, "%s: zip archive: %s", name, zip_error_strerror(&ze));
      if (src) zip_source_free(src);
    } else {
      st = read_zip(&h, z, &root);
      zip_discard(z);
    }
    zip_error_fini(&ze);
  }
  return finish(out, &h, st, root, kind);
}

skd_status skd_pth_read(skd_pth **out, const char *path) {
  *out = NULL;
  unsigned char head[16] = {0};
  FILE *fp = fopen(path, "rb");
  if (!fp) return skd_error(SKD_EIO, "%s: cannot open", path);
  size_t n = fread(head, 1, sizeof head, fp);
  fclose(fp);
  skd_status st = not_pth(path, head, n);
  if (st) return st;
  if (skd_file_sniff(head, n) == SKD_FILE_PTH_LEGACY) {
    char *text = NULL;
    size_t size = 0;
    st = skd_read_file(path, &text, &size, SIZE_MAX / 2);
    if (st == SKD_OK) st = skd_pth_read_memory(out, text, size, path);
    free(text);
    return st;
  }
  /* Zip: libzip reads the entries from the file, nothing else is loaded. */
  pk_heap h = {.file = path};
  pk_obj *root = NULL;
  int err = 0;
  zip_t *z = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &err);
  if (!z) {
    zip_error_t ze;
    zip_error_init_with_code(&ze, err);
    st = skd_error(SKD_EFORMAT, "%s: zip archive: %s", path, zip_error_strerror(&ze));
    zip_error_fini(&ze);
    return st;
  }
  st = read_zip(&h, z, &root);
  zip_discard(z);
  return finish(out, &h, st, root, SKD_FILE_PTH_ZIP);
}
