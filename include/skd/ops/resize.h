/* Bilinear resize with align_corners = true (PyTorch's
 * F.interpolate(mode='bilinear', align_corners=True)): output index o along
 * an axis samples the input at o * (in - 1) / (out - 1), and at 0 when
 * out == 1. Up- and downsampling alike. The backward pass is a gather (each
 * input pixel sums the weighted dy of the outputs that read it), so it is
 * deterministic, and it adds into dx (dx += ...). */
#ifndef SKD_OPS_RESIZE_H
#define SKD_OPS_RESIZE_H

#include "skd/tensor.h"

/* x: (N, C, H, W) -> y: (N, C, OH, OW); the output size is taken from y. */
skd_status skd_resize_bilinear_forward(skd_context *ctx, const skd_tensor *x, const skd_tensor *y);
/* dy: (N, C, OH, OW), dx: (N, C, H, W); dx += the interpolation's transpose of dy. */
skd_status skd_resize_bilinear_backward(skd_context *ctx, const skd_tensor *dy, const skd_tensor *dx);

/* Plain-C references, same semantics (backward accumulates, by scattering). */
void skd_ref_resize_bilinear_forward(const float *x, float *y, int n, int c, int h, int w, int oh, int ow);
void skd_ref_resize_bilinear_backward(const float *dy, float *dx, int n, int c, int h, int w, int oh, int ow);

#endif
