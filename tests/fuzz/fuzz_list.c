/* The list-file parser: labeled and unlabeled lists (comments, blank lines,
 * CR LF, BOM, tabs), paths resolved against a data directory, duplicate
 * detection. Images are never opened here. */
#include <string.h>

#include "fuzz_common.h"
#include "skd/data.h"

static void walk(skd_dataset *d) {
  for (int i = 0; i < skd_dataset_size(d); i++) {
    const char *img = skd_dataset_image_path(d, i);
    const char *lab = skd_dataset_label_path(d, i);
    if (!img || !*img || skd_dataset_line(d, i) < 1) abort();
    if (lab && !*lab) abort();
  }
  int first = 0, repeat = 0;
  skd_dataset_duplicates(d, &first, &repeat);
  skd_dataset_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_file("list", data, size);
  skd_label_map m;
  if (skd_label_map_preset(&m, "generic", 5) != SKD_OK) abort();
  skd_dataset *d = NULL;
  if (skd_dataset_open(&d, path, "/data", &m) == SKD_OK) walk(d);
  d = NULL;
  if (skd_dataset_open_unlabeled(&d, path, NULL, &m) == SKD_OK) walk(d);
  unlink(path);
  return 0;
}
