/* Spectral normalisation (Miyato et al.; torch.nn.utils.spectral_norm) of a
 * weight W viewed as a matrix (out, rest) = (w->n, w->c * w->h * w->w), with
 * persistent power-iteration vectors u (out values) and v (rest values).
 *
 * Forward, per power iteration (PyTorch's order and eps):
 *   v = l2n(W^T u),  u = l2n(W v),    l2n(x) = x / max(||x||, 1e-12)
 * then sigma = u . (W v) and W_sn = W / sigma. With 0 iterations (eval) u
 * and v are only read.
 * Backward with u and v held constant (as PyTorch does: they are updated
 * under no_grad):
 *   dW += dW_sn / sigma - (sum(dW_sn * W) / sigma^2) * u v^T.
 * Reductions are deterministic (one work-group per row / vector, two-pass
 * sums). u, v and sigma may have any shape with the right number of
 * elements (u: out, v: rest, sigma: 1). */
#ifndef SKD_OPS_SPECTRAL_H
#define SKD_OPS_SPECTRAL_H

#include "skd/tensor.h"

#define SKD_SPECTRAL_EPS 1e-12f

/* Updates u and v in place (power_iterations >= 0), writes sigma (1
 * element) and w_sn (the shape of w; must not alias w). */
skd_status skd_spectral_norm_forward(skd_context *ctx, const skd_tensor *w, const skd_tensor *u,
                                     const skd_tensor *v, int power_iterations, const skd_tensor *sigma,
                                     const skd_tensor *w_sn);
/* u, v, sigma: as left by the forward. dw += ... (accumulates). */
skd_status skd_spectral_norm_backward(skd_context *ctx, const skd_tensor *w, const skd_tensor *u,
                                      const skd_tensor *v, const skd_tensor *sigma, const skd_tensor *dw_sn,
                                      const skd_tensor *dw);

/* Plain-C references, same semantics; w is (rows, cols) row-major. */
void skd_ref_spectral_norm_forward(const float *w, int rows, int cols, float *u, float *v, int power_iterations,
                                   float *sigma, float *w_sn);
void skd_ref_spectral_norm_backward(const float *w, int rows, int cols, const float *u, const float *v,
                                    float sigma, const float *dw_sn, float *dw);

#endif
