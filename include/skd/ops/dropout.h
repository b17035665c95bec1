/* Dropout2d (PyTorch's nn.Dropout2d): in training, each whole channel (n, c)
 * is zeroed with probability p and the kept ones are scaled by 1 / (1 - p)
 * (p == 1 zeroes everything); in eval mode it is the identity.
 *
 * The mask is not stored: it is a pure function of (seed, n, c), evaluated in
 * the kernel by a counter-based generator, so forward and backward called with
 * the same seed agree, and a run reproduces on any device. The generator is
 * Philox2x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
 * SC'11; the constants of Random123) with counter (c, n) and key seed; the
 * first output word's top 24 bits give u = bits / 2^24 in [0, 1), and the
 * channel is dropped when u < p. The caller chooses a new seed for every step
 * and every dropout layer (e.g. a hash of the run seed, the step and the
 * layer's index).
 *
 * Shapes: x, y, dy, dx are (N, C, H, W). Forward may run in place (y == x);
 * backward accumulates (dx += ...). */
#ifndef SKD_OPS_DROPOUT_H
#define SKD_OPS_DROPOUT_H

#include <stddef.h>
#include <stdint.h>

#include "skd/tensor.h"

skd_status skd_dropout2d_forward(skd_context *ctx, int training, const skd_tensor *x, const skd_tensor *y, float p,
                                 uint32_t seed);
skd_status skd_dropout2d_backward(skd_context *ctx, int training, const skd_tensor *dy, const skd_tensor *dx,
                                  float p, uint32_t seed);

/* The same, for a tensor whose first sample is row row0 of a larger batch:
 * channel (n, c) takes the mask of (n + row0, c) (data parallel: a rank's
 * shard draws the masks one process would draw for those rows). */
skd_status skd_dropout2d_forward_rows(skd_context *ctx, int training, const skd_tensor *x, const skd_tensor *y,
                                      float p, uint32_t seed, int row0);
skd_status skd_dropout2d_backward_rows(skd_context *ctx, int training, const skd_tensor *dy, const skd_tensor *dx,
                                       float p, uint32_t seed, int row0);

/* The generator as the kernels evaluate it: Philox2x32-10 of counter (c, n)
 * under key seed, first word. */
uint32_t skd_dropout2d_bits(uint32_t seed, int n, int c);
/* 1 when channel (n, c) is kept for this seed and p. */
int skd_dropout2d_keep(uint32_t seed, int n, int c, float p);

/* Plain-C references, same semantics (backward accumulates). hw = H * W. */
void skd_ref_dropout2d_forward(int training, const float *x, float *y, int n, int c, int hw, float p, uint32_t seed);
void skd_ref_dropout2d_backward(int training, const float *dy, float *dx, int n, int c, int hw, float p,
                                uint32_t seed);

#endif
