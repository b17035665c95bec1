/* A torch.save file opened as a safetensors handle: the state_dict is read
 * whole (pth.h), its keys mapped from a known layout (layout.h, detected),
 * and its contiguous tensor bytes served through an in-memory FILE, so the
 * readers of safetensors need no second code path. */
#include <stdlib.h>

#include "io/safetensors_private.h"
#include "skd/io/pth.h"
#include "skd/nn/layout.h"

static int cmp_entry(const void *a, const void *b) {
  return strcmp(((const skd_safetensors_entry *)a)->name, ((const skd_safetensors_entry *)b)->name);
}

static skd_status add_meta(skd_safetensors *f, const char *key, const char *value) {
  struct meta *m = realloc(f->meta, ((size_t)f->nmeta + 1) * sizeof *m);
  if (!m) return skd_error(SKD_ENOMEM, "%s: out of host memory", f->path);
  f->meta = m;
  m[f->nmeta].key = strdup(key);
  m[f->nmeta].value = strdup(value);
  if (!m[f->nmeta].key || !m[f->nmeta].value) {
    free(m[f->nmeta].key);
    free(m[f->nmeta].value);
    return skd_error(SKD_ENOMEM, "%s: out of host memory", f->path);
  }
  f->nmeta++;
  return SKD_OK;
}

skd_status safetensors_open_pth(skd_safetensors *f) {
  skd_pth *p = NULL;
  skd_status st = skd_pth_read(&p, f->path);
  if (st) return st;
  const char **list = malloc(((size_t)p->count + 1) * sizeof *list);
  f->entries = calloc((size_t)p->count + 1, sizeof *f->entries);
  if (!list || !f->entries) st = skd_error(SKD_ENOMEM, "%s: out of host memory", f->path);
  for (int i = 0; st == SKD_OK && i < p->count; i++) list[i] = p->tensors[i].name;
  skd_layout layout = st == SKD_OK ? skd_layout_detect(list, p->count) : SKD_LAYOUT_NONE;
  free(list);
  for (int i = 0; st == SKD_OK && i < p->count; i++) {
    const skd_pth_tensor *t = &p->tensors[i];
    skd_safetensors_entry *e = &f->entries[f->count];
    char name[512];
    skd_layout_map(layout, t->name, name, sizeof name);
    if (!(e->name = strdup(name))) {
      st = skd_error(SKD_ENOMEM, "%s: out of host memory", f->path);
      break;
    }
    f->count++;
    e->dtype = t->dtype;
    e->ndim = t->ndim;
    memcpy(e->shape, t->shape, sizeof e->shape);
    e->numel = t->numel;
    e->begin = t->begin;
    e->end = t->end;
  }
  if (st == SKD_OK) {
    qsort(f->entries, (size_t)f->count, sizeof *f->entries, cmp_entry);
    for (int i = 1; i < f->count && st == SKD_OK; i++)
      if (strcmp(f->entries[i - 1].name, f->entries[i].name) == 0)
        st = skd_error(SKD_EFORMAT, "%s: tensor '%s' appears twice (after the %s layout's renaming)", f->path,
                       f->entries[i].name, skd_layout_name(layout));
  }
  if (st == SKD_OK) st = add_meta(f, "pth.format", skd_file_kind_name(p->kind));
  if (st == SKD_OK) st = add_meta(f, "pth.layout", skd_layout_name(layout));
  if (st == SKD_OK && f->nmeta == 2 && strcmp(f->meta[0].key, f->meta[1].key) > 0) {
    struct meta tmp = f->meta[0];
    f->meta[0] = f->meta[1];
    f->meta[1] = tmp;
  }
  if (st == SKD_OK) {
    /* The FILE reads the bytes the handle now owns. */
    f->mem = p->data;
    f->data_start = 0;
    f->data_size = p->size;
    p->data = NULL;
    f->fp = fmemopen(f->mem, p->size ? p->size : 1, "rb");
    if (!f->fp) st = skd_error(SKD_ENOMEM, "%s: cannot open the tensors in memory", f->path);
  }
  skd_pth_free(p);
  return st;
}
