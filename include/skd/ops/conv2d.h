/* 2-D convolution (cross-correlation, as PyTorch's nn.Conv2d, groups = 1).
 *
 *   x (N, Cin, H, W), weight (Cout, Cin, kh, kw), bias (1, Cout, 1, 1) or NULL
 *   y (N, Cout, Ho, Wo),  Ho = (H + 2*pad_h - dilation_h*(kh-1) - 1) / stride_h + 1
 *
 * The bias is stored as a (1, Cout, 1, 1) tensor: the per-channel broadcast
 * shape of NCHW (PyTorch's (Cout,) vector has the same bytes).
 *
 * Device, two algorithms (skd_conv2d_algo):
 *   direct: one kernel (cl/conv.cl) where each work-item computes a block of
 *     output channels x a strip of pixels, reading x and W in place;
 *   im2col: columns (cl/conv.cl) into the context workspace, then one CLBlast
 *     GEMM per sample (batched over a chunk of samples): y_n = W (Cout x K) *
 *     col_n (K x Ho*Wo), K = Cin*kh*kw.
 * AUTO picks direct for kernels larger than 1x1; a 1x1, stride-1, unpadded
 * convolution multiplies W by x directly. The column chunk is as many
 * samples as fit in SKD_CONV_WORKSPACE_BYTES (environment; default 256 MiB,
 * and never over the device's largest allocation); at least one sample
 * always runs.
 *
 * Backward ACCUMULATES into dx, dweight and dbias (any of them may be NULL):
 *   dweight: direct, each work-item sums dy * x for a block of (Cout, Cin)
 *   at one tap over the batch; or im2col, sum_n dy_n * col_n^T by GEMM;
 *   dx: direct, each input pixel gathers the taps it fed; or im2col,
 *   dcol_n = W^T * dy_n then col2im in the same gather form (no atomics);
 *   dbias += per-channel sums of dy (one work-group per channel).
 * Every result is deterministic: the same inputs give the same bits. */
#ifndef SKD_OPS_CONV2D_H
#define SKD_OPS_CONV2D_H

#include "skd/tensor.h"

/* How a convolution runs on the device (forward and backward alike). */
typedef enum skd_conv2d_algo {
  SKD_CONV2D_AUTO = 0, /* chosen per shape (see conv2d.c), or SKD_CONV_ALGO=im2col|direct */
  SKD_CONV2D_IM2COL,   /* columns + CLBlast GEMM */
  SKD_CONV2D_DIRECT    /* one kernel, no columns */
} skd_conv2d_algo;

typedef struct skd_conv2d_params {
  int kh, kw;                 /* kernel size, >= 1 */
  int stride_h, stride_w;     /* >= 1 */
  int pad_h, pad_w;           /* zero padding on both sides, >= 0 */
  int dilation_h, dilation_w; /* >= 1 */
  skd_conv2d_algo algo;       /* forward algorithm; AUTO unless a test or benchmark forces one */
} skd_conv2d_params;

/* A square kernel with the same stride, padding and dilation on both axes. */
skd_conv2d_params skd_conv2d_params_make(int k, int stride, int pad, int dilation);

/* Output size for an H x W input; SKD_EINVAL for bad parameters or an
 * input too small for the (dilated) kernel. */
skd_status skd_conv2d_output_shape(const skd_conv2d_params *p, int h, int w, int *ho, int *wo);

skd_status skd_conv2d_forward(skd_context *ctx, const skd_conv2d_params *p, const skd_tensor *x,
                              const skd_tensor *weight, const skd_tensor *bias, const skd_tensor *y);

/* x and weight as in the forward pass (x gives the shapes even when only
 * dx is wanted); dy (N, Cout, Ho, Wo). dx, dweight, dbias: NULL to skip. */
skd_status skd_conv2d_backward(skd_context *ctx, const skd_conv2d_params *p, const skd_tensor *x,
                               const skd_tensor *weight, const skd_tensor *dy, const skd_tensor *dx,
                               const skd_tensor *dweight, const skd_tensor *dbias);

/* Plain-C references (direct loops, double accumulation; backward
 * accumulates, any of dx, dweight, dbias may be NULL; bias may be NULL). */
void skd_ref_conv2d_forward(const skd_conv2d_params *p, int n, int cin, int h, int w, int cout, const float *x,
                            const float *weight, const float *bias, float *y);
void skd_ref_conv2d_backward(const skd_conv2d_params *p, int n, int cin, int h, int w, int cout, const float *x,
                             const float *weight, const float *dy, float *dx, float *dweight, float *dbias);

#endif
