/* 2-D convolution (cross-correlation, as PyTorch's nn.Conv2d, groups = 1).
 *
 *   x (N, Cin, H, W), weight (Cout, Cin, kh, kw), bias (1, Cout, 1, 1) or NULL
 *   y (N, Cout, Ho, Wo),  Ho = (H + 2*pad_h - dilation_h*(kh-1) - 1) / stride_h + 1
 *
 * The bias is stored as a (1, Cout, 1, 1) tensor: the per-channel broadcast
 * shape of NCHW (PyTorch's (Cout,) vector has the same bytes).
 *
 * Device, three algorithms (skd_conv2d_algo), forward and backward alike:
 *   direct: kernels of cl/conv.cl that read x, W and dy in place. Forward:
 *     each work-item computes a block of output channels x a strip of pixels;
 *     dx: at stride 1 the forward kernel on dy with the flipped, transposed
 *     weights (accumulating), else each input pixel gathers the taps it
 *     fed; dW: each work-item sums dy * x over the batch for a block of
 *     (Cout, Cin) at one tap.
 *   gemm: columns (im2col) into the context workspace, then CLBlast GEMMs per
 *     sample (batched over a chunk of samples): y_n = W (Cout x K) * col_n
 *     (K x Ho*Wo), K = Cin*kh*kw; dW += sum_n dy_n * col_n^T; dcol_n = W^T *
 *     dy_n then col2im in gather form. A 1x1, stride-1, unpadded convolution
 *     multiplies by x itself, without columns. The column chunk is as many
 *     samples as fit in SKD_CONV_WORKSPACE_BYTES (environment; default 256
 *     MiB, never over the device's largest allocation; at least one sample).
   vec: the direct kernels, except that the forward (and dx at stride 1,
 *     which runs it) is conv2d_cv_fwd: each work-item keeps 16 output
 *     channels x 8 pixels in registers, one vector per pixel, and each tap
 *     multiplies one weight vector (the weights transposed to [tap][co] in the
 *     workspace) by the pixels' inputs broadcast: the layout oneDNN's direct
 *     kernels use on CPUs.
 * AUTO: SKD_CONV_ALGO=gemm|direct|vec if set (experiments), else the
 * context's conv tuning (skd/tune.h: a rule for the exact shape, else the
 * device's algorithm; untuned: vec on CPUs, direct on other devices). The
 * direct kernels' blocking comes from the same tuning.
 *
 * Backward ACCUMULATES into dx, dweight and dbias (any of them may be NULL);
 * dbias += per-channel sums of dy (one work-group per channel). No atomics:
 * every result is deterministic: the same inputs give the same bits. */
#ifndef SKD_OPS_CONV2D_H
#define SKD_OPS_CONV2D_H

#include "skd/tensor.h"

/* How a convolution runs on the device (forward and backward alike). */
typedef enum skd_conv2d_algo {
  SKD_CONV2D_AUTO = 0, /* the default rule, or SKD_CONV_ALGO=gemm|direct */
  SKD_CONV2D_GEMM,     /* columns + CLBlast GEMM */
  SKD_CONV2D_DIRECT,   /* our direct kernels, no columns */
  SKD_CONV2D_VEC       /* direct, the forward (and dx at stride 1) vectorised over output channels (CPUs) */
} skd_conv2d_algo;

typedef struct skd_conv2d_params {
  int kh, kw;                 /* kernel size, >= 1 */
  int stride_h, stride_w;     /* >= 1 */
  int pad_h, pad_w;           /* zero padding on both sides, >= 0 */
  int dilation_h, dilation_w; /* >= 1 */
  skd_conv2d_algo algo;       /* AUTO unless a test or a benchmark forces one */
} skd_conv2d_params;

/* "auto", "gemm", "direct" or "vec"; skd_conv2d_algo_parse is its inverse
 * (SKD_EINVAL for any other name, with no message set). */
const char *skd_conv2d_algo_name(skd_conv2d_algo a);
skd_status skd_conv2d_algo_parse(const char *name, skd_conv2d_algo *out);

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
