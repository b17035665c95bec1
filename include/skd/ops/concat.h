/* Concatenation along channels: y = cat(inputs, dim=1). Every input is
 * (N, C_i, H, W) with the N, H, W of y, and sum C_i = y's C. Backward splits
 * dy into the inputs' gradients and accumulates (dx_i += dy[:, slice_i]).
 *
 * Inputs are passed as an array of tensors (views). In backward an entry
 * whose mem is NULL (an input that needs no gradient, as skd_param.grad of a
 * frozen parameter) still gives its channel count and is skipped. y must not
 * overlap an input. */
#ifndef SKD_OPS_CONCAT_H
#define SKD_OPS_CONCAT_H

#include <stddef.h>

#include "skd/tensor.h"

skd_status skd_concat_forward(skd_context *ctx, const skd_tensor *inputs, int count, const skd_tensor *y);
skd_status skd_concat_backward(skd_context *ctx, const skd_tensor *dy, const skd_tensor *dinputs, int count);

/* Plain-C references: inputs[i] has channels[i] channels; hw = H * W.
 * Backward skips NULL entries of dinputs and accumulates. */
void skd_ref_concat_forward(const float *const *inputs, const int *channels, int count, int n, int hw, float *y);
void skd_ref_concat_backward(const float *dy, float *const *dinputs, const int *channels, int count, int n, int hw);

#endif
