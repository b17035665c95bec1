/* SAGAN self-attention layer on the device: 1x1 convolutions (conv2d.h),
 * batched GEMMs (matmul.h), the row softmax (softmax.h) and three small
 * kernels (cl/attention.cl). */
#include <stdio.h>
#include <string.h>

#include "skd/nn/attention.h"
#include "skd/ops/conv2d.h"
#include "skd/ops/elementwise.h"
#include "skd/ops/matmul.h"
#include "skd/ops/softmax.h"

#define ATTN_WG 256

skd_status skd_attention_init(skd_context *ctx, skd_attention *a, const char *prefix, int channels, int with_grad) {
  memset(a, 0, sizeof *a);
  if (channels < 1) return skd_error(SKD_EINVAL, "attention %s: channels must be >= 1 (%d)", prefix, channels);
  a->channels = channels;
  a->qk_channels = channels / 8 > 0 ? channels / 8 : 1;
  const int cq = a->qk_channels;
  struct {
    skd_param *p;
    const char *suffix;
    int n, c;
  } table[] = {
      {&a->query_weight, "query_conv.weight", cq, channels}, {&a->query_bias, "query_conv.bias", 1, cq},
      {&a->key_weight, "key_conv.weight", cq, channels},     {&a->key_bias, "key_conv.bias", 1, cq},
      {&a->value_weight, "value_conv.weight", channels, channels},
      {&a->value_bias, "value_conv.bias", 1, channels},      {&a->gamma, "gamma", 1, 1},
  };
  skd_status st = SKD_OK;
  for (size_t i = 0; st == SKD_OK && i < sizeof table / sizeof table[0]; i++) {
    char name[128];
    snprintf(name, sizeof name, "%s.%s", prefix, table[i].suffix);
    st = skd_param_init(ctx, table[i].p, name, table[i].n, table[i].c, 1, 1, with_grad);
    if (st == SKD_OK) st = skd_tensor_fill(ctx, &table[i].p->value, 0.0f);
  }
  if (st != SKD_OK) skd_attention_release(a);
  return st;
}

void skd_attention_release(skd_attention *a) {
  skd_param *p[7];
  skd_attention_params(a, p);
  for (int i = 0; i < 7; i++) skd_param_release(p[i]);
}

void skd_attention_params(skd_attention *a, skd_param *out[7]) {
  out[0] = &a->gamma;
  out[1] = &a->query_weight;
  out[2] = &a->query_bias;
  out[3] = &a->key_weight;
  out[4] = &a->key_bias;
  out[5] = &a->value_weight;
  out[6] = &a->value_bias;
}

static skd_status elementwise(skd_context *ctx, const char *kernel, int n, const skd_tensor *gamma,
                              const skd_tensor *a, const skd_tensor *b, const skd_tensor *y) {
  skd_kernel *k;
  skd_status st = skd_kernel_get(ctx, "attention", kernel, &k);
  if (st != SKD_OK) return st;
  skd_args args = skd_args_begin(k);
  skd_arg_int(&args, n);
  skd_arg_tensor(&args, gamma);
  skd_arg_tensor(&args, a);
  if (b) skd_arg_tensor(&args, b);
  skd_arg_tensor(&args, y);
  return skd_launch_1d(ctx, &args, (size_t)n, 256);
}

/* Sample 0 of t as a matrix with `cols` columns, and the stride between samples. */
static skd_matrix mat(const skd_tensor *t, int cols) { return skd_matrix_of(t->mem, t->offset, cols); }
static size_t per_sample(const skd_tensor *t) { return (size_t)t->c * (size_t)t->h * (size_t)t->w; }

skd_status skd_attention_forward(skd_context *ctx, const skd_attention *a, skd_arena *arena, const skd_tensor *x,
                                 skd_attention_record *rec) {
  memset(rec, 0, sizeof *rec);
  if (x->c != a->channels)
    return skd_error(SKD_EINVAL, "attention forward: x: expected %d channels, got shape (%d, %d, %d, %d)",
                     a->channels, x->n, x->c, x->h, x->w);
  const int n = x->n, ch = a->channels, cq = a->qk_channels, h = x->h, w = x->w, p = h * w;
  if (n < 1 || p < 1)
    return skd_error(SKD_EINVAL, "attention forward: x: empty shape (%d, %d, %d, %d)", n, x->c, h, w);
  skd_status st = skd_arena_tensor(arena, &rec->q, n, cq, h, w);
  if (st == SKD_OK) st = skd_arena_tensor(arena, &rec->k, n, cq, h, w);
  if (st == SKD_OK) st = skd_arena_tensor(arena, &rec->v, n, ch, h, w);
  if (st == SKD_OK) st = skd_arena_tensor(arena, &rec->attn, n, 1, p, p);
  if (st == SKD_OK) st = skd_arena_tensor(arena, &rec->out, n, ch, h, w);
  if (st == SKD_OK) st = skd_arena_tensor(arena, &rec->y, n, ch, h, w);
  if (st != SKD_OK) return st;
  rec->x = *x;

  const skd_conv2d_params pw = skd_conv2d_params_make(1, 1, 0, 1);
  st = skd_conv2d_forward(ctx, &pw, x, &a->query_weight.value, &a->query_bias.value, &rec->q);
  if (st == SKD_OK) st = skd_conv2d_forward(ctx, &pw, x, &a->key_weight.value, &a->key_bias.value, &rec->k);
  if (st == SKD_OK) st = skd_conv2d_forward(ctx, &pw, x, &a->value_weight.value, &a->value_bias.value, &rec->v);
  /* E_n (P x P) = q_n^T k_n */
  if (st == SKD_OK)
    st = skd_gemm_batched(ctx, SKD_TRANS, SKD_NO_TRANS, p, p, cq, 1.0f, mat(&rec->q, p), per_sample(&rec->q),
                          mat(&rec->k, p), per_sample(&rec->k), 0.0f, mat(&rec->attn, p), per_sample(&rec->attn), n);
  if (st == SKD_OK) st = skd_softmax_rows_forward(ctx, &rec->attn, &rec->attn);
  /* out_n (Ch x P) = v_n A_n^T */
  if (st == SKD_OK)
    st = skd_gemm_batched(ctx, SKD_NO_TRANS, SKD_TRANS, ch, p, p, 1.0f, mat(&rec->v, p), per_sample(&rec->v),
                          mat(&rec->attn, p), per_sample(&rec->attn), 0.0f, mat(&rec->out, p),
                          per_sample(&rec->out), n);
  if (st == SKD_OK)
    st = elementwise(ctx, "attn_residual_fwd", (int)skd_tensor_numel(x), &a->gamma.value, &rec->out, x, &rec->y);
  return st;
}

static skd_status conv_backward(skd_context *ctx, const skd_tensor *x, const skd_param *weight,
                                const skd_param *bias, const skd_tensor *dy, const skd_tensor *dx, int param_grads) {
  const skd_conv2d_params pw = skd_conv2d_params_make(1, 1, 0, 1);
  return skd_conv2d_backward(ctx, &pw, x, &weight->value, dy, dx, param_grads ? &weight->grad : NULL,
                             param_grads ? &bias->grad : NULL);
}

skd_status skd_attention_backward(skd_context *ctx, const skd_attention *a, skd_arena *arena,
                                  const skd_attention_record *rec, const skd_tensor *dy, const skd_tensor *dx,
                                  int param_grads) {
  const skd_tensor *x = &rec->x;
  skd_status st = skd_tensor_expect_same(dy, x, "attention backward: dy");
  if (st == SKD_OK && dx) st = skd_tensor_expect_same(dx, x, "attention backward: dx");
  if (st == SKD_OK && param_grads && !a->gamma.grad.mem)
    st = skd_error(SKD_EINVAL, "attention backward: %s has no gradient buffer (frozen layer)", a->gamma.name);
  if (st != SKD_OK) return st;
  const int n = x->n, ch = a->channels, cq = a->qk_channels, h = x->h, w = x->w, p = h * w;
  const int numel = (int)skd_tensor_numel(x);

  if (param_grads) {
    skd_kernel *k;
    st = skd_kernel_get(ctx, "attention", "attn_gamma_bwd", &k);
    if (st != SKD_OK) return st;
    size_t wg = skd_context_wg(ctx, ATTN_WG);
    skd_args args = skd_args_begin(k);
    skd_arg_int(&args, numel);
    skd_arg_tensor(&args, dy);
    skd_arg_tensor(&args, &rec->out);
    skd_arg_tensor(&args, &a->gamma.grad);
    skd_arg_local(&args, wg * sizeof(float));
    if ((st = skd_launch(ctx, &args, 1, &wg, &wg)) != SKD_OK) return st;
  }
  if (dx && (st = skd_axpby(ctx, 1.0f, dy, 1.0f, dx)) != SKD_OK) return st; /* the residual */
  if (!dx && !param_grads) return SKD_OK;

  skd_tensor dout, dv, da, de, dq, dk;
  st = skd_arena_tensor(arena, &dout, n, ch, h, w);
  if (st == SKD_OK) st = skd_arena_tensor(arena, &dv, n, ch, h, w);
  if (st == SKD_OK) st = skd_arena_tensor(arena, &da, n, 1, p, p);
  if (st == SKD_OK) st = skd_arena_tensor(arena, &de, n, 1, p, p);
  if (st == SKD_OK) st = skd_arena_tensor(arena, &dq, n, cq, h, w);
  if (st == SKD_OK) st = skd_arena_tensor(arena, &dk, n, cq, h, w);
  if (st == SKD_OK) st = elementwise(ctx, "attn_scale_bwd_out", numel, &a->gamma.value, dy, NULL, &dout);
  /* dv_n = dout_n A_n;  dA_n = dout_n^T v_n */
  if (st == SKD_OK)
    st = skd_gemm_batched(ctx, SKD_NO_TRANS, SKD_NO_TRANS, ch, p, p, 1.0f, mat(&dout, p), per_sample(&dout),
                          mat(&rec->attn, p), per_sample(&rec->attn), 0.0f, mat(&dv, p), per_sample(&dv), n);
  if (st == SKD_OK)
    st = skd_gemm_batched(ctx, SKD_TRANS, SKD_NO_TRANS, p, p, ch, 1.0f, mat(&dout, p), per_sample(&dout),
                          mat(&rec->v, p), per_sample(&rec->v), 0.0f, mat(&da, p), per_sample(&da), n);
  if (st == SKD_OK) st = skd_tensor_fill(ctx, &de, 0.0f);
  if (st == SKD_OK) st = skd_softmax_rows_backward(ctx, &rec->attn, &da, &de);
  /* dq_n = k_n dE_n^T;  dk_n = q_n dE_n */
  if (st == SKD_OK)
    st = skd_gemm_batched(ctx, SKD_NO_TRANS, SKD_TRANS, cq, p, p, 1.0f, mat(&rec->k, p), per_sample(&rec->k),
                          mat(&de, p), per_sample(&de), 0.0f, mat(&dq, p), per_sample(&dq), n);
  if (st == SKD_OK)
    st = skd_gemm_batched(ctx, SKD_NO_TRANS, SKD_NO_TRANS, cq, p, p, 1.0f, mat(&rec->q, p), per_sample(&rec->q),
                          mat(&de, p), per_sample(&de), 0.0f, mat(&dk, p), per_sample(&dk), n);
  if (st == SKD_OK) st = conv_backward(ctx, x, &a->query_weight, &a->query_bias, &dq, dx, param_grads);
  if (st == SKD_OK) st = conv_backward(ctx, x, &a->key_weight, &a->key_bias, &dk, dx, param_grads);
  if (st == SKD_OK) st = conv_backward(ctx, x, &a->value_weight, &a->value_bias, &dv, dx, param_grads);
  return st;
}
