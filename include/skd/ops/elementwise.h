/* Element-wise ops. Forward may run in place (y == x). Backward adds into dx
 * (dx += ...), as every backward in skd does: the caller zeroes gradients. */
#ifndef SKD_OPS_ELEMENTWISE_H
#define SKD_OPS_ELEMENTWISE_H

#include <stddef.h>

#include "skd/tensor.h"

skd_status skd_relu_forward(skd_context *ctx, const skd_tensor *x, const skd_tensor *y);
/* x: the input or the output of the forward pass. */
skd_status skd_relu_backward(skd_context *ctx, const skd_tensor *x, const skd_tensor *dy, const skd_tensor *dx);

skd_status skd_leaky_relu_forward(skd_context *ctx, const skd_tensor *x, const skd_tensor *y, float slope);
/* x: the input, or the output when slope > 0. */
skd_status skd_leaky_relu_backward(skd_context *ctx, const skd_tensor *x, const skd_tensor *dy,
                                   const skd_tensor *dx, float slope);

skd_status skd_tanh_forward(skd_context *ctx, const skd_tensor *x, const skd_tensor *y);
/* y: the output of the forward pass. */
skd_status skd_tanh_backward(skd_context *ctx, const skd_tensor *y, const skd_tensor *dy, const skd_tensor *dx);

/* y = a + b. The backward of add is skd_axpby(1, dy, 1, da) for each input. */
skd_status skd_add_forward(skd_context *ctx, const skd_tensor *a, const skd_tensor *b, const skd_tensor *y);

/* y = alpha * x + beta * y (beta = 0 ignores what y held, NaN included). */
skd_status skd_axpby(skd_context *ctx, float alpha, const skd_tensor *x, float beta, const skd_tensor *y);

/* Plain-C references, same semantics (backward accumulates). */
void skd_ref_relu_forward(const float *x, float *y, size_t n);
void skd_ref_relu_backward(const float *x, const float *dy, float *dx, size_t n);
void skd_ref_leaky_relu_forward(const float *x, float *y, size_t n, float slope);
void skd_ref_leaky_relu_backward(const float *x, const float *dy, float *dx, size_t n, float slope);
void skd_ref_tanh_forward(const float *x, float *y, size_t n);
void skd_ref_tanh_backward(const float *y, const float *dy, float *dx, size_t n);
void skd_ref_add_forward(const float *a, const float *b, float *y, size_t n);

#endif
