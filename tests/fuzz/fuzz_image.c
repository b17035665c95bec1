/* The strict PNG/JPEG decoder, as an image (RGB) and as a label: a decode
 * either fails with a reason or gives a buffer of exactly w x h x channels. */
#include <string.h>

#include "data/image_decode.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  for (int mode = 0; mode < 2; mode++) {
    skd_decoded im;
    char why[256];
    skd_status st = skd_image_decode(data, size, mode ? SKD_DECODE_LABEL : SKD_DECODE_RGB, &im, why, sizeof why);
    if (st != SKD_OK) {
      if (im.px || !why[0]) abort(); /* a failure leaves nothing and says why */
      continue;
    }
    if (im.w < 1 || im.h < 1 || im.channels < 1 || im.channels > 4) abort();
    unsigned sum = 0; /* touch every byte: ASan sees an undersized buffer */
    for (size_t i = 0; i < (size_t)im.w * im.h * im.channels; i++) sum += im.px[i];
    (void)sum;
    free(im.px);
  }
  return 0;
}
