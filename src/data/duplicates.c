/* Repeated samples in a list file: an evaluation list that names an image
 * twice counts its pixels twice in the mIoU, silently. */
#include <stdlib.h>
#include <string.h>

#include "skd/data.h"

typedef struct sample_ref {
  const char *image;
  int line;
} sample_ref;

static int by_image_then_line(const void *a, const void *b) {
  const sample_ref *x = a, *y = b;
  int c = strcmp(x->image, y->image);
  return c ? c : (x->line > y->line) - (x->line < y->line);
}

int skd_dataset_duplicates(const skd_dataset *d, int *first_line, int *repeat_line) {
  *first_line = *repeat_line = 0;
  int n = skd_dataset_size(d);
  sample_ref *refs = malloc((size_t)(n > 0 ? n : 1) * sizeof *refs);
  if (!refs) return -1;
  for (int i = 0; i < n; i++) refs[i] = (sample_ref){skd_dataset_image_path(d, i), skd_dataset_line(d, i)};
  qsort(refs, (size_t)n, sizeof *refs, by_image_then_line);
  int count = 0, group = 0; /* group: index of the first entry of the current run of equal paths */
  for (int k = 1; k < n; k++) {
    if (strcmp(refs[k].image, refs[group].image)) {
      group = k;
      continue;
    }
    count++;
    if (!*repeat_line || refs[k].line < *repeat_line) { /* the repeat earliest in the file */
      *repeat_line = refs[k].line;
      *first_line = refs[group].line;
    }
  }
  free(refs);
  return count;
}
