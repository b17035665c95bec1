/* The run-configuration JSON (as stored in checkpoints and result files):
 * parse over the defaults, validate, and when it parses, print it and parse
 * the print again, which must succeed. */
#include <string.h>

#include "fuzz_common.h"
#include "skd/train_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *json = fuzz_string(data, size);
  skd_train_config c;
  skd_train_config_default(&c);
  if (skd_train_config_from_json(&c, json, "fuzz") == SKD_OK) {
    skd_train_config_validate(&c);
    char *again = NULL;
    if (skd_train_config_to_json(&c, &again) != SKD_OK) abort();
    skd_train_config d;
    skd_train_config_default(&d);
    if (skd_train_config_from_json(&d, again, "fuzz (printed)") != SKD_OK) abort();
    free(again);
  }
  free(json);
  return 0;
}
