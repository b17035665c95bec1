/* Pooling: 2-D max pooling (PyTorch's ceil_mode rules) and adaptive average
 * pooling (PyTorch's bin boundaries). Backward passes are gathers (each input
 * pixel sums the dy it receives), so they are deterministic, and they add
 * into dx (dx += ...): the caller zeroes gradients.
 *
 * Max pool backward recomputes the argmax of every window from x instead of
 * storing indices: windows are small (3x3, k x k with k = stride), so the
 * recomputation is cheap and no index tensor has to live between passes. */
#ifndef SKD_OPS_POOL_H
#define SKD_OPS_POOL_H

#include "skd/tensor.h"

/* Square max-pool window. padding counts as -inf and must be at most
 * kernel / 2 (as PyTorch demands); dilation is always 1. */
typedef struct skd_pool2d {
  int kernel;
  int stride;
  int padding;
  int ceil_mode; /* 0: floor((in + 2p - k) / s) + 1; 1: ceil(...) + 1, minus one
                    when the last window would start past in + p */
} skd_pool2d;

/* Output size along one dimension of size `in`; SKD_EINVAL when the pool
 * parameters are invalid or the output would be smaller than 1. */
skd_status skd_pool2d_output_size(skd_pool2d p, int in, int *out);

/* x: (N, C, H, W) -> y: (N, C, OH, OW) with OH, OW from skd_pool2d_output_size.
 * The maximum of a window is its FIRST maximum in row-major order; a NaN
 * wins over numbers (PyTorch's rule), so NaNs propagate. */
skd_status skd_maxpool2d_forward(skd_context *ctx, const skd_tensor *x, const skd_tensor *y, skd_pool2d p);
/* x: the forward input (the argmax is recomputed from it); dx += routed dy. */
skd_status skd_maxpool2d_backward(skd_context *ctx, const skd_tensor *x, const skd_tensor *dy,
                                  const skd_tensor *dx, skd_pool2d p);

/* x: (N, C, H, W) -> y: (N, C, BH, BW), the output size taken from y. Bin i
 * along H covers [floor(i*H/BH), ceil((i+1)*H/BH)): bins may overlap, and BH
 * may exceed H. */
skd_status skd_adaptive_avgpool2d_forward(skd_context *ctx, const skd_tensor *x, const skd_tensor *y);
/* dy: (N, C, BH, BW), dx: (N, C, H, W); dx += the mean's gradient. */
skd_status skd_adaptive_avgpool2d_backward(skd_context *ctx, const skd_tensor *dy, const skd_tensor *dx);

/* Plain-C references, same semantics (backward accumulates). The max-pool
 * reference backward scatters into dx (an independent formulation). */
void skd_ref_maxpool2d_forward(const float *x, float *y, int n, int c, int h, int w, skd_pool2d p);
void skd_ref_maxpool2d_backward(const float *x, const float *dy, float *dx, int n, int c, int h, int w,
                                skd_pool2d p);
void skd_ref_adaptive_avgpool2d_forward(const float *x, float *y, int n, int c, int h, int w, int bh, int bw);
void skd_ref_adaptive_avgpool2d_backward(const float *dy, float *dx, int n, int c, int h, int w, int bh, int bw);

#endif
