/* Softmax family: softmax and log-softmax over the channels of (N, C, H, W)
 * (per pixel), softmax over the last axis (rows of a matrix, for attention),
 * and cross-entropy with an ignore label. Numerically stable (the maximum is
 * subtracted). Backward passes add into dx (dx += ...): the caller zeroes.
 * Every reduction is deterministic (fixed order, no atomics). */
#ifndef SKD_OPS_SOFTMAX_H
#define SKD_OPS_SOFTMAX_H

#include <stddef.h>

#include "skd/tensor.h"

/* y = softmax over c of x, for every (n, h, w). y may be x (in place). */
skd_status skd_softmax_forward(skd_context *ctx, const skd_tensor *x, const skd_tensor *y);
/* y: the output of the forward. dx += y * (dy - sum_c(dy * y)). */
skd_status skd_softmax_backward(skd_context *ctx, const skd_tensor *y, const skd_tensor *dy, const skd_tensor *dx);

/* y = log_softmax over c of x. y may be x. */
skd_status skd_log_softmax_forward(skd_context *ctx, const skd_tensor *x, const skd_tensor *y);
/* y: the output of the forward. dx += dy - exp(y) * sum_c(dy). */
skd_status skd_log_softmax_backward(skd_context *ctx, const skd_tensor *y, const skd_tensor *dy,
                                    const skd_tensor *dx);

/* Softmax over the last axis: every (n, c, h) is a row of w values (the
 * attention's N x P x P energy, e.g. as an (N, 1, P, P) tensor). One
 * work-group per row; any w. y may be x. */
skd_status skd_softmax_rows_forward(skd_context *ctx, const skd_tensor *x, const skd_tensor *y);
/* y: the output of the forward. dx += y * (dy - sum_w(dy * y)) per row. */
skd_status skd_softmax_rows_backward(skd_context *ctx, const skd_tensor *y, const skd_tensor *dy,
                                     const skd_tensor *dx);

/* Cross-entropy of logits (N, C, H, W) against labels (N, 1, H, W), a float
 * tensor holding class indices (exact integers; the trainer uploads them per
 * batch). Pixels whose label equals `ignore_label` (255 in the method) are
 * left out. Writes, without a host synchronisation,
 *   loss  (1 element): mean over the valid pixels of -log_softmax(x)[label]
 *                      (0 when there is no valid pixel),
 *   count (1 element): the number of valid pixels, as a float (exact below 2^24).
 * A label that is neither the ignore label nor in [0, C) (a loader bug) is
 * never used as an index: it is left out of count and gradient, and it makes
 * the loss NaN so that the trainer's NaN check reports it. */
skd_status skd_cross_entropy_forward(skd_context *ctx, const skd_tensor *logits, const skd_tensor *labels,
                                     int ignore_label, const skd_tensor *loss, const skd_tensor *count);
/* count: the forward's count (read on the device).
 * dlogits += scale * (softmax(x) - onehot(label)) / max(count, 1) for valid
 * pixels; ignored and invalid pixels get nothing. */
skd_status skd_cross_entropy_backward(skd_context *ctx, const skd_tensor *logits, const skd_tensor *labels,
                                      int ignore_label, const skd_tensor *count, float scale,
                                      const skd_tensor *dlogits);

/* Plain-C references, same semantics (backward accumulates). Shapes are
 * (n, c, hw) for the channel ops and (rows, cols) for the row softmax. */
void skd_ref_softmax_forward(const float *x, float *y, int n, int c, int hw);
void skd_ref_softmax_backward(const float *y, const float *dy, float *dx, int n, int c, int hw);
void skd_ref_log_softmax_forward(const float *x, float *y, int n, int c, int hw);
void skd_ref_log_softmax_backward(const float *y, const float *dy, float *dx, int n, int c, int hw);
void skd_ref_softmax_rows_forward(const float *x, float *y, int rows, int cols);
void skd_ref_softmax_rows_backward(const float *y, const float *dy, float *dx, int rows, int cols);
/* Returns the loss; *count receives the number of valid pixels. */
float skd_ref_cross_entropy_forward(const float *logits, const float *labels, int n, int c, int hw,
                                    int ignore_label, int *count);
void skd_ref_cross_entropy_backward(const float *logits, const float *labels, int n, int c, int hw,
                                    int ignore_label, float scale, float *dlogits);

#endif
