/* Per-pixel argmax over channels: logits (N, C, H, W) -> class ids.
 *
 * Ties: the first maximum (the lowest channel) wins. NaN compares greater than
 * every number and the first NaN wins (numpy.argmax / torch.argmax), so NaN
 * logits show up as a definite, reproducible class instead of whatever a
 * comparison chain happens to leave.
 *
 * Two outputs: float ids in a device tensor (N, 1, H, W) (exact: ids < 2^24),
 * and bytes downloaded to the host, which is what evaluation needs (the
 * confusion matrix is accumulated on the host; bytes are a quarter of the
 * transfer of floats). */
#ifndef SKD_OPS_ARGMAX_H
#define SKD_OPS_ARGMAX_H

#include <stdint.h>

#include "skd/tensor.h"

/* x: (N, C, H, W), ids: (N, 1, H, W). */
skd_status skd_argmax_forward(skd_context *ctx, const skd_tensor *x, const skd_tensor *ids);

/* ids: N*H*W bytes on the host, in (n, y, x) order. C must be at most 255, so
 * an id never equals the ignore label 255. Blocking: returns once ids hold the
 * result. Uses the context's workspace, so x must not live in it. */
skd_status skd_argmax_download_u8(skd_context *ctx, const skd_tensor *x, uint8_t *ids);

/* Plain-C reference, same rules. x: (n, c, h, w), ids: (n, 1, h, w). */
void skd_ref_argmax_forward(const float *x, float *ids, int n, int c, int h, int w);

#endif
