/* train --init (init_from.h): match by name and shape, then upload. */
#include "skd/nn/init_from.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skd/io/safetensors.h"

static int is_head(const char *name) {
  return !strncmp(name, "pspmodule.", 10) || !strncmp(name, "dsn.", 4) || !strncmp(name, "head.", 5);
}

static void note(char *list, size_t size, const char *name) {
  size_t at = strlen(list);
  if (at + strlen(name) + 8 >= size) {
    if (at + 5 < size && strcmp(list + (at >= 3 ? at - 3 : 0), "...") != 0) snprintf(list + at, size - at, ", ...");
    return;
  }
  snprintf(list + at, size - at, "%s%s", at ? ", " : "", name);
}

static int same_shape(const skd_nn_entry *e, const skd_safetensors_entry *fe) {
  if (e->ndim != fe->ndim) return 0;
  for (int d = 0; d < e->ndim; d++)
    if (e->shape[d] != fe->shape[d]) return 0;
  return 1;
}

static int ends_with(const char *s, const char *tail) {
  size_t n = strlen(s), m = strlen(tail);
  return n >= m && strcmp(s + n - m, tail) == 0;
}

skd_status skd_nn_params_init_from(skd_nn_params *r, const char *path, int strict, skd_init_report *rep) {
  memset(rep, 0, sizeof *rep);
  skd_safetensors *f = NULL;
  skd_status st = skd_safetensors_open(&f, path);
  if (st) return st;
  const char *layout = skd_safetensors_metadata(f, "pth.layout");
  snprintf(rep->layout, sizeof rep->layout, "%s", layout ? layout : "safetensors");
  int n = skd_safetensors_count(f);
  int *source = malloc(((size_t)r->count + 1) * sizeof *source);
  char *used = calloc((size_t)n + 1, 1);
  if (!source || !used) {
    st = skd_error(SKD_ENOMEM, "%s: out of host memory", path);
    goto done;
  }
  for (int i = 0; i < r->count; i++) {
    const skd_nn_entry *e = r->entries[i];
    int k = skd_safetensors_find(f, e->param.name);
    source[i] = -1;
    if (k < 0) {
      rep->missing++;
      /* A backbone file lacks the whole head: only backbone names are listed. */
      if (!is_head(e->param.name)) {
        rep->missing_backbone++;
        note(rep->missing_names, sizeof rep->missing_names, e->param.name);
      }
      continue;
    }
    used[k] = 1;
    if (!same_shape(e, skd_safetensors_entry_at(f, k))) {
      rep->mismatched++;
      note(rep->mismatched_names, sizeof rep->mismatched_names, e->param.name);
      continue;
    }
    source[i] = k;
    rep->loaded++;
  }
  for (int k = 0; k < n; k++) {
    const char *name = skd_safetensors_entry_at(f, k)->name;
    if (used[k] || ends_with(name, "num_batches_tracked")) continue;
    rep->unused++;
    note(rep->unused_names, sizeof rep->unused_names, name);
  }
  if (strict && (rep->mismatched || rep->missing_backbone)) {
    st = skd_error(SKD_EFORMAT, "%s: --init-strict: %d tensors have another shape (%s), %d backbone tensors are "
                   "missing (missing: %s); nothing was loaded", path, rep->mismatched,
                   rep->mismatched ? rep->mismatched_names : "none", rep->missing_backbone,
                   rep->missing_backbone ? rep->missing_names : "none");
    goto done;
  }
  /* Everything checked: read and upload tensor by tensor. */
  for (int i = 0; i < r->count && st == SKD_OK; i++) {
    if (source[i] < 0) continue;
    const skd_nn_entry *e = r->entries[i];
    size_t count = skd_tensor_numel(&e->param.value);
    float *host = malloc(count * sizeof *host + 1);
    if (!host) st = skd_error(SKD_ENOMEM, "%s: out of host memory", path);
    if (st == SKD_OK) st = skd_safetensors_read_f32(f, source[i], host, count);
    if (st == SKD_OK) st = skd_values_check(host, count, e->param.name, path);
    if (st == SKD_OK) st = skd_tensor_upload(r->ctx, &e->param.value, host);
    free(host);
  }
done:
  free(source);
  free(used);
  skd_safetensors_close(f);
  return st;
}

void skd_init_report_format(const skd_init_report *rep, const char *path, char *buf, size_t size) {
  snprintf(buf, size,
           "init from %s (layout %s):\n"
           "  loaded          %5d\n"
           "  shape mismatch  %5d%s%s%s\n"
           "  missing         %5d  (pspmodule/dsn/head %d, backbone %d%s%s)\n"
           "  unused          %5d%s%s%s\n",
           path, rep->layout, rep->loaded, rep->mismatched, rep->mismatched ? "  (" : "", rep->mismatched_names,
           rep->mismatched ? ")" : "", rep->missing, rep->missing - rep->missing_backbone, rep->missing_backbone, rep->missing_backbone ? ": " : "",
           rep->missing_names, rep->unused, rep->unused ? "  (" : "", rep->unused_names, rep->unused ? ")" : "");
}
