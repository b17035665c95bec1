/* Self-attention layer of SAGAN (Zhang et al. 2019), as the holistic loss's
 * discriminator uses it (METHOD.md section 4). For x (N, Ch, h, w), P = h w:
 *
 *   q = Wq x + bq   (N, Cq, P)     Cq = max(1, Ch / 8), 1x1 convolutions
 *   k = Wk x + bk   (N, Cq, P)
 *   v = Wv x + bv   (N, Ch, P)
 *   E = q^T k       (N, P, P)      per sample, one batched GEMM
 *   A = softmax(E)  over the last axis (the row softmax of softmax.h)
 *   out = v A^T     (N, Ch, P)
 *   y = gamma * out + x            gamma: a learned scalar, initialised to 0
 *
 * Backward (accumulates into dx and into the parameters' grads):
 *   dgamma += sum(dy * out),  dout = gamma dy,
 *   dv = dout A,  dA = dout^T v,  dE = softmax backward of dA,
 *   dq = k dE^T,  dk = q dE,  then the 1x1 convolutions' backward,
 *   dx += dy + Wq^T dq + Wk^T dk + Wv^T dv.
 * With gamma = 0 every gradient but dgamma and the residual's is 0, as in
 * PyTorch.
 *
 * Parameter names follow the authors' Self_Attn: <prefix>.query_conv.weight
 * (Cq, Ch, 1, 1), .query_conv.bias, .key_conv.*, .value_conv.*, .gamma (1).
 * Biases and gamma are stored as (1, C, 1, 1) / (1, 1, 1, 1) tensors.
 * Intermediate tensors come from the caller's arena; the energy and the
 * attention matrix are N P^2 floats each. */
#ifndef SKD_NN_ATTENTION_H
#define SKD_NN_ATTENTION_H

#include "skd/tensor.h"

typedef struct skd_attention {
  int channels;    /* Ch */
  int qk_channels; /* Cq = max(1, Ch / 8) */
  skd_param query_weight, query_bias;
  skd_param key_weight, key_bias;
  skd_param value_weight, value_bias;
  skd_param gamma;
} skd_attention;

/* Allocates the parameters (values zeroed; with_grad: gradients too, zeroed)
 * and names them "<prefix>.query_conv.weight" and so on. */
skd_status skd_attention_init(skd_context *ctx, skd_attention *a, const char *prefix, int channels, int with_grad);
void skd_attention_release(skd_attention *a);

/* The seven parameters in PyTorch's state_dict order (a module's own
 * parameters come before its children's): gamma, query_conv.weight,
 * query_conv.bias, key_conv.weight, key_conv.bias, value_conv.weight,
 * value_conv.bias. */
void skd_attention_params(skd_attention *a, skd_param *out[7]);

/* What the backward pass needs of one forward pass (arena tensors). */
typedef struct skd_attention_record {
  skd_tensor x;    /* the input (a view of the caller's tensor) */
  skd_tensor q, k; /* (N, Cq, h, w) */
  skd_tensor v;    /* (N, Ch, h, w) */
  skd_tensor attn; /* (N, 1, P, P): A */
  skd_tensor out;  /* (N, Ch, h, w): v A^T */
  skd_tensor y;    /* (N, Ch, h, w): the layer's output */
} skd_attention_record;

/* x: (N, Ch, h, w). Fills rec (rec->y is the output); x must stay alive and
 * unchanged until the backward pass. */
skd_status skd_attention_forward(skd_context *ctx, const skd_attention *a, skd_arena *arena, const skd_tensor *x,
                                 skd_attention_record *rec);

/* dy: (N, Ch, h, w). dx: NULL or accumulated into. param_grads != 0: the
 * parameters' grads are accumulated into (they must have grads); 0: they
 * are left alone (an input-gradient-only pass). */
skd_status skd_attention_backward(skd_context *ctx, const skd_attention *a, skd_arena *arena,
                                  const skd_attention_record *rec, const skd_tensor *dy, const skd_tensor *dx,
                                  int param_grads);

/* Plain-C reference (double accumulation). x, y: (n, ch, p); wq, wk: (cq,
 * ch); wv: (ch, ch); biases per output channel; attn (n, p, p) or NULL. */
void skd_ref_attention_forward(int n, int ch, int cq, int p, const float *x, const float *wq, const float *bq,
                               const float *wk, const float *bk, const float *wv, const float *bv, float gamma,
                               float *y, float *attn);
/* Accumulates into every non-NULL output (dgamma: 1 value). */
void skd_ref_attention_backward(int n, int ch, int cq, int p, const float *x, const float *wq, const float *bq,
                                const float *wk, const float *bk, const float *wv, const float *bv, float gamma,
                                const float *dy, float *dx, float *dwq, float *dbq, float *dwk, float *dbk,
                                float *dwv, float *dbv, float *dgamma);

#endif
