/* The safetensors reader on any bytes: open (header JSON, dtypes, shapes,
 * offsets), read every tensor that is small enough, walk the metadata, then
 * read the stored run configuration (skd_train_config_from_json, step,
 * best_miou) as --resume and eval do, and validate it. */
#include "fuzz_common.h"
#include "skd/data.h" /* train.h uses skd_dataset */
#include "skd/io/safetensors.h"
#include "skd/train.h"
#include "skd/train_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_file("safetensors", data, size);
  skd_safetensors *f = NULL;
  if (skd_safetensors_open(&f, path) == SKD_OK) {
    for (int i = 0; i < skd_safetensors_count(f); i++) {
      const skd_safetensors_entry *e = skd_safetensors_entry_at(f, i);
      if (e->numel > (1u << 16)) continue;
      void *buf = malloc((e->numel ? e->numel : 1) * sizeof(int64_t));
      if (!buf) abort();
      if (skd_safetensors_read_f32(f, i, buf, e->numel) != SKD_OK) skd_safetensors_read_i64(f, i, buf, e->numel);
      free(buf);
      if (skd_safetensors_find(f, e->name) < 0) abort(); /* every listed name is found again */
    }
    for (int i = 0; i < skd_safetensors_metadata_count(f); i++) {
      const char *k = NULL, *v = NULL;
      skd_safetensors_metadata_at(f, i, &k, &v);
      if (!k || !v || skd_safetensors_metadata(f, k) == NULL) abort();
    }
    skd_safetensors_close(f);
    skd_train_config c;
    skd_train_config_default(&c);
    int found = 0;
    long step = 0;
    double best = 0;
    if (skd_checkpoint_read_config(path, &c, &found, &step, &best) == SKD_OK && found)
      skd_train_config_validate(&c);
  }
  unlink(path);
  return 0;
}
