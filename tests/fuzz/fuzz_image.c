/* The strict PNG/JPEG decoder, as an image (RGB), a label and a 16-bit depth
 * map: a decode either fails with a reason or gives a buffer of exactly
 * w x h x channels samples. */
#include <string.h>

#include "data/image_decode.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const skd_decode_mode modes[] = {SKD_DECODE_RGB, SKD_DECODE_LABEL, SKD_DECODE_GREY16};
  for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
    skd_decoded im;
    char why[256];
    skd_status st = skd_image_decode(data, size, modes[m], &im, why, sizeof why);
    if (st != SKD_OK) {
      if (im.px || !why[0]) abort(); /* a failure leaves nothing and says why */
      continue;
    }
    if (im.w < 1 || im.h < 1 || im.channels < 1 || im.channels > 4) abort();
    unsigned sum = 0; /* touch every byte: ASan sees an undersized buffer */
    const size_t bytes = (size_t)im.w * im.h * im.channels * (modes[m] == SKD_DECODE_GREY16 ? 2 : 1);
    for (size_t i = 0; i < bytes; i++) sum += im.px[i];
    (void)sum;
    free(im.px);
  }
  return 0;
}
