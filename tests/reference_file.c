#include "reference_file.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int read_u32(FILE *f, uint32_t *v) {
  unsigned char b[4];
  if (fread(b, 1, 4, f) != 4) return 0;
  *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
  return 1;
}

const char *ref_dir(void) {
  const char *env = getenv("SKD_REFERENCE_DIR");
  return env && env[0] ? env : SKD_REFERENCE_DIR;
}

ref_file *ref_open(const char *name) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", ref_dir(), name);
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "reference file %s is missing (run the generator in tests/reference/)", path);
  char magic[8];
  ck_assert_msg(fread(magic, 1, 8, f) == 8 && memcmp(magic, "SKDREF01", 8) == 0, "%s: bad magic", path);
  ref_file *rf = calloc(1, sizeof *rf);
  ck_assert(rf != NULL);
  uint32_t len;
  while (read_u32(f, &len)) {
    ck_assert_msg(len > 0 && len < 128, "%s: array %d: name length %u", path, rf->count, len);
    ref_array *grown = realloc(rf->arrays, (size_t)(rf->count + 1) * sizeof *grown);
    ck_assert(grown != NULL);
    rf->arrays = grown;
    ref_array *a = &rf->arrays[rf->count];
    memset(a, 0, sizeof *a);
    ck_assert_msg(fread(a->name, 1, len, f) == len, "%s: truncated name", path);
    uint32_t ndim;
    ck_assert_msg(read_u32(f, &ndim) && ndim <= 8, "%s: %s: bad ndim", path, a->name);
    a->ndim = (int)ndim;
    a->numel = 1;
    for (uint32_t d = 0; d < ndim; d++) {
      uint32_t v;
      ck_assert_msg(read_u32(f, &v), "%s: %s: truncated dims", path, a->name);
      a->dims[d] = (int)v;
      a->numel *= v;
    }
    a->data = malloc((a->numel ? a->numel : 1) * sizeof(float));
    ck_assert(a->data != NULL);
    ck_assert_msg(fread(a->data, sizeof(float), a->numel, f) == a->numel, "%s: %s: truncated data", path,
                  a->name);
    rf->count++;
  }
  fclose(f);
  return rf;
}

const ref_array *ref_get(const ref_file *f, const char *name) {
  for (int i = 0; i < f->count; i++)
    if (strcmp(f->arrays[i].name, name) == 0) return &f->arrays[i];
  ck_abort_msg("reference array '%s' not found", name);
  return NULL;
}

void ref_close(ref_file *f) {
  if (!f) return;
  for (int i = 0; i < f->count; i++) free(f->arrays[i].data);
  free(f->arrays);
  free(f);
}
