/* The torch.save reader (skd/io/pth.h) on arbitrary bytes: zip and legacy
 * files as they are; anything else is taken as the object pickle of a legacy
 * file (magic, protocol and system info put in front), so that mutations
 * reach the pickle interpreter directly. On success every tensor must lie
 * inside the data it came with. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "skd/io/pth.h"

static const unsigned char prefix[] = {
    0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e, /* magic */
    0x80, 0x02, 'M', 0xe9, 0x03, '.',                                                     /* protocol 1001 */
    0x80, 0x02, '}', 'X', 13, 0, 0, 0, 'l', 'i', 't', 't', 'l', 'e', '_', 'e', 'n', 'd', 'i', 'a', 'n',
    0x88, 's', '.'}; /* {"little_endian": True} */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  skd_file_kind kind = skd_file_sniff(data, size);
  unsigned char *buf = NULL;
  const void *in = data;
  size_t n = size;
  if (kind != SKD_FILE_PTH_ZIP && kind != SKD_FILE_PTH_LEGACY) {
    buf = malloc(sizeof prefix + size + 1);
    if (!buf) return 0;
    memcpy(buf, prefix, sizeof prefix);
    if (size) memcpy(buf + sizeof prefix, data, size);
    in = buf;
    n = sizeof prefix + size;
  }
  skd_pth *p = NULL;
  if (skd_pth_read_memory(&p, in, n, "fuzz") == SKD_OK) {
    for (int i = 0; i < p->count; i++) {
      const skd_pth_tensor *t = &p->tensors[i];
      if (t->begin > t->end || t->end > p->size || t->end - t->begin != t->numel * skd_dtype_size(t->dtype))
        abort();
    }
    skd_pth_free(p);
  }
  free(buf);
  return 0;
}
