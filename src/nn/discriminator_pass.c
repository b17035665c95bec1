/* The discriminator's forward and backward passes (nn/discriminator.h),
 * composed of the op families; every intermediate comes from the arena. */
#include <string.h>

#include "skd/nn/discriminator.h"
#include "skd/ops/batchnorm.h"
#include "skd/ops/concat.h"
#include "skd/ops/conv2d.h"
#include "skd/ops/elementwise.h"
#include "skd/ops/pool.h"
#include "skd/ops/resize.h"
#include "skd/ops/softmax.h"
#include "skd/ops/spectral.h"

static skd_status launch_elementwise(skd_context *ctx, const char *kernel, int n, const float *slope,
                                     const skd_tensor *a, const skd_tensor *b, const skd_tensor *y) {
  skd_kernel *k;
  skd_status st = skd_kernel_get(ctx, "discriminator", kernel, &k);
  if (st != SKD_OK) return st;
  skd_args args = skd_args_begin(k);
  skd_arg_int(&args, n);
  if (slope) skd_arg_float(&args, *slope);
  skd_arg_tensor(&args, a);
  if (b) skd_arg_tensor(&args, b);
  skd_arg_tensor(&args, y);
  return skd_launch_1d(ctx, &args, (size_t)n, 256);
}

static skd_status zeros(skd_context *ctx, skd_arena *arena, skd_tensor *t, int n, int c, int h, int w) {
  skd_status st = skd_arena_tensor(arena, t, n, c, h, w);
  return st == SKD_OK ? skd_tensor_fill(ctx, t, 0.0f) : st;
}

static skd_status check_inputs(const skd_disc *d, skd_disc_mode mode, const skd_disc_record *hold_from,
                               const skd_tensor *logits, const skd_tensor *image, skd_disc_geometry *g) {
  const skd_disc_config *cfg = &d->cfg;
  if (mode != SKD_DISC_TRAIN && mode != SKD_DISC_HOLD)
    return skd_error(SKD_EINVAL, "discriminator forward: unknown mode %d", (int)mode);
  if (logits->c != cfg->classes || logits->n < 1)
    return skd_error(SKD_EINVAL, "discriminator forward: logits: expected (N >= 1, %d, H', W'), got (%d, %d, %d, %d)",
                     cfg->classes, logits->n, logits->c, logits->h, logits->w);
  skd_status st = skd_disc_geometry_of(cfg, logits->h, logits->w, g);
  if (st != SKD_OK) return st;
  /* The last kernel is the one built for cfg's map size. */
  g->kh = d->geom.kh;
  g->kw = d->geom.kw;
  g->out_h = g->h[4] - g->kh + 1;
  g->out_w = g->w[4] - g->kw + 1;
  if (g->out_h < 1 || g->out_w < 1)
    return skd_error(SKD_EINVAL,
                     "discriminator forward: logits %dx%d give a %dx%d map after l4, smaller than the last "
                     "kernel %dx%d (built for %dx%d logits)",
                     logits->h, logits->w, g->h[4], g->w[4], g->kh, g->kw, cfg->map_h, cfg->map_w);
  if (cfg->conditional) {
    if (!image)
      return skd_error(SKD_EINVAL, "discriminator forward: conditional: image: expected (%d, 3, H, W), got NULL",
                       logits->n);
    if (image->n != logits->n || image->c != 3 || image->h < 1 || image->w < 1)
      return skd_error(SKD_EINVAL,
                       "discriminator forward: conditional: image: expected (%d, 3, H, W), got (%d, %d, %d, %d)",
                       logits->n, image->n, image->c, image->h, image->w);
  } else if (image) {
    return skd_error(SKD_EINVAL, "discriminator forward: image given to an unconditional discriminator");
  }
  if (hold_from) {
    if (mode != SKD_DISC_HOLD)
      return skd_error(SKD_EINVAL, "discriminator forward: hold_from needs mode SKD_DISC_HOLD");
    if (!skd_tensor_same_shape(&hold_from->logits, logits))
      return skd_error(SKD_EINVAL,
                       "discriminator forward: hold_from: its logits are (%d, %d, %d, %d), these (%d, %d, %d, %d)",
                       hold_from->logits.n, hold_from->logits.c, hold_from->logits.h, hold_from->logits.w,
                       logits->n, logits->c, logits->h, logits->w);
  }
  return SKD_OK;
}

/* Input (conditional concat) and preprocessing. */
static skd_status forward_input(skd_context *ctx, skd_disc *d, skd_arena *arena, skd_disc_mode mode,
                                skd_disc_record *r) {
  const int n = r->n, h = r->geom.h[0], w = r->geom.w[0], cin = r->geom.in_channels;
  skd_status st = SKD_OK;
  r->in = r->logits;
  if (d->cfg.conditional) {
    st = skd_arena_tensor(arena, &r->probs, n, d->cfg.classes, h, w);
    if (st == SKD_OK) st = skd_arena_tensor(arena, &r->image_r, n, 3, h, w);
    if (st == SKD_OK) st = skd_arena_tensor(arena, &r->cat, n, cin, h, w);
    if (st == SKD_OK) st = skd_softmax_forward(ctx, &r->logits, &r->probs);
    if (st == SKD_OK) st = skd_resize_bilinear_forward(ctx, &r->image, &r->image_r);
    skd_tensor parts[2] = {r->probs, r->image_r};
    if (st == SKD_OK) st = skd_concat_forward(ctx, parts, 2, &r->cat);
    r->in = r->cat;
  }
  if (st == SKD_OK) st = skd_arena_tensor(arena, &r->pre, n, cin, h, w);
  if (st != SKD_OK) return st;
  const int numel = (int)skd_tensor_numel(&r->pre);
  switch (d->cfg.preprocess) {
    case SKD_DISC_PRE_BN:
      st = skd_arena_tensor(arena, &r->bn_mean, 1, cin, 1, 1);
      if (st == SKD_OK) st = skd_arena_tensor(arena, &r->bn_invstd, 1, cin, 1, 1);
      /* Held forwards use the batch statistics too, with momentum 0 so that
       * the running statistics stay as they are. */
      if (st == SKD_OK)
        st = skd_batchnorm_forward(ctx, 1, &r->in, &d->bn_weight.value, &d->bn_bias.value,
                                   &d->bn_running_mean.value, &d->bn_running_var.value, &r->bn_mean, &r->bn_invstd,
                                   &r->pre, SKD_BN_EPS, mode == SKD_DISC_TRAIN ? SKD_BN_MOMENTUM : 0.0f,
                                   SKD_BN_ACT_NONE, 0.0f);
      return st;
    case SKD_DISC_PRE_TANH: return skd_tanh_forward(ctx, &r->in, &r->pre);
    case SKD_DISC_PRE_SCALE: return launch_elementwise(ctx, "disc_scale_fwd", numel, NULL, &r->in, NULL, &r->pre);
  }
  return SKD_OK;
}

/* l_i: spectral norm (or the held record's W / sigma), conv, LeakyReLU. */
static skd_status forward_sn_layer(skd_context *ctx, skd_disc *d, skd_arena *arena, skd_disc_mode mode,
                                   const skd_disc_record *hold, int i, const skd_tensor *x, skd_disc_record *r) {
  skd_disc_sn_conv *c = &d->conv[i];
  const skd_tensor *wb = &c->weight.value;
  skd_status st = SKD_OK;
  if (hold) {
    r->w_sn[i] = hold->w_sn[i];
    r->sigma[i] = hold->sigma[i];
    r->u[i] = hold->u[i];
    r->v[i] = hold->v[i];
  } else {
    st = skd_arena_tensor(arena, &r->w_sn[i], wb->n, wb->c, wb->h, wb->w);
    if (st == SKD_OK) st = skd_arena_tensor(arena, &r->sigma[i], 1, 1, 1, 1);
    if (st == SKD_OK) st = skd_arena_tensor(arena, &r->u[i], c->u.value.n, c->u.value.c, c->u.value.h, c->u.value.w);
    if (st == SKD_OK) st = skd_arena_tensor(arena, &r->v[i], c->v.value.n, c->v.value.c, c->v.value.h, c->v.value.w);
    /* TRAIN advances the live u, v by one power iteration; the record keeps
     * a copy of the vectors this forward used (for its backward). */
    if (st == SKD_OK)
      st = skd_spectral_norm_forward(ctx, wb, &c->u.value, &c->v.value, mode == SKD_DISC_TRAIN ? 1 : 0,
                                     &r->sigma[i], &r->w_sn[i]);
    if (st == SKD_OK) st = skd_tensor_copy(ctx, &r->u[i], &c->u.value);
    if (st == SKD_OK) st = skd_tensor_copy(ctx, &r->v[i], &c->v.value);
  }
  if (st == SKD_OK) st = skd_arena_tensor(arena, &r->act[i], r->n, wb->n, r->geom.h[i + 1], r->geom.w[i + 1]);
  const skd_conv2d_params p = skd_conv2d_params_make(4, 2, 1, 1);
  if (st == SKD_OK) st = skd_conv2d_forward(ctx, &p, x, &r->w_sn[i], &c->bias.value, &r->act[i]);
  if (st != SKD_OK) return st;
  const float slope = SKD_DISC_SLOPE;
  if (hold) {
    r->mask[i] = hold->mask[i]; /* the original masks, also when hold is itself a held record */
    return launch_elementwise(ctx, "disc_leaky_masked_fwd", (int)skd_tensor_numel(&r->act[i]), &slope,
                              &r->mask[i], &r->act[i], &r->act[i]);
  }
  r->mask[i] = r->act[i]; /* slope > 0: the output has the input's sign */
  return skd_leaky_relu_forward(ctx, &r->act[i], &r->act[i], slope);
}

skd_status skd_disc_forward(skd_context *ctx, skd_disc *d, skd_arena *arena, skd_disc_mode mode,
                            const skd_disc_record *hold_from, const skd_tensor *logits, const skd_tensor *image,
                            skd_disc_record *rec) {
  memset(rec, 0, sizeof *rec);
  skd_disc_geometry g;
  skd_status st = check_inputs(d, mode, hold_from, logits, image, &g);
  if (st != SKD_OK) return st;
  rec->geom = g;
  rec->n = logits->n;
  rec->logits = *logits;
  if (image) rec->image = *image;
  st = forward_input(ctx, d, arena, mode, rec);
  const skd_tensor *x = &rec->pre;
  for (int i = 0; st == SKD_OK && i < 4; i++) {
    st = forward_sn_layer(ctx, d, arena, mode, hold_from, i, x, rec);
    x = &rec->act[i];
    if (st == SKD_OK && i == 2) {
      st = skd_attention_forward(ctx, &d->attn1, arena, x, &rec->attn1);
      x = &rec->attn1.y;
    }
    if (st == SKD_OK && i == 3) {
      st = skd_attention_forward(ctx, &d->attn2, arena, x, &rec->attn2);
      x = &rec->attn2.y;
    }
  }
  if (st == SKD_OK) st = skd_arena_tensor(arena, &rec->z, rec->n, 1, g.out_h, g.out_w);
  if (st == SKD_OK) st = skd_arena_tensor(arena, &rec->score, rec->n, 1, 1, 1);
  skd_conv2d_params p = skd_conv2d_params_make(1, 1, 0, 1);
  p.kh = g.kh;
  p.kw = g.kw;
  if (st == SKD_OK) st = skd_conv2d_forward(ctx, &p, x, &d->last_weight.value, &d->last_bias.value, &rec->z);
  if (st == SKD_OK) st = skd_adaptive_avgpool2d_forward(ctx, &rec->z, &rec->score);
  return st;
}

/* Backward of l_i's LeakyReLU and conv: dy is the gradient of act[i];
 * dx (may be NULL) of the layer's input x. */
static skd_status backward_sn_layer(skd_context *ctx, skd_disc *d, skd_arena *arena, const skd_disc_record *r,
                                    int i, const skd_tensor *x, const skd_tensor *dy, const skd_tensor *dx,
                                    int param_grads) {
  skd_disc_sn_conv *c = &d->conv[i];
  const skd_tensor *a = &r->act[i];
  skd_tensor dpre, dw_sn;
  skd_status st = zeros(ctx, arena, &dpre, a->n, a->c, a->h, a->w);
  if (st == SKD_OK) st = skd_leaky_relu_backward(ctx, &r->mask[i], dy, &dpre, SKD_DISC_SLOPE);
  const skd_conv2d_params p = skd_conv2d_params_make(4, 2, 1, 1);
  if (st != SKD_OK) return st;
  if (!param_grads) return dx ? skd_conv2d_backward(ctx, &p, x, &r->w_sn[i], &dpre, dx, NULL, NULL) : SKD_OK;
  const skd_tensor *w = &c->weight.value;
  st = zeros(ctx, arena, &dw_sn, w->n, w->c, w->h, w->w);
  if (st == SKD_OK) st = skd_conv2d_backward(ctx, &p, x, &r->w_sn[i], &dpre, dx, &dw_sn, &c->bias.grad);
  if (st == SKD_OK) st = skd_spectral_norm_backward(ctx, w, &r->u[i], &r->v[i], &r->sigma[i], &dw_sn, &c->weight.grad);
  return st;
}

skd_status skd_disc_backward(skd_context *ctx, skd_disc *d, skd_arena *arena, const skd_disc_record *r,
                             const skd_tensor *dscore, const skd_tensor *dlogits, int param_grads) {
  skd_status st = skd_tensor_expect(dscore, r->n, 1, 1, 1, "discriminator backward: dscore");
  if (st == SKD_OK && dlogits) st = skd_tensor_expect_same(dlogits, &r->logits, "discriminator backward: dlogits");
  if (st != SKD_OK) return st;
  const skd_disc_geometry *g = &r->geom;
  const int n = r->n;
  const int bn = d->cfg.preprocess == SKD_DISC_PRE_BN;

  skd_tensor dz, d2, d4, d1, dact[4], din;
  skd_tensor d3 = {0}; /* copied into dact[2] below even when an earlier step failed */
  const skd_tensor *a2y = &r->attn2.y, *a1y = &r->attn1.y;
  st = zeros(ctx, arena, &dz, n, 1, g->out_h, g->out_w);
  if (st == SKD_OK) st = skd_adaptive_avgpool2d_backward(ctx, dscore, &dz);
  skd_conv2d_params p = skd_conv2d_params_make(1, 1, 0, 1);
  p.kh = g->kh;
  p.kw = g->kw;
  if (st == SKD_OK) st = zeros(ctx, arena, &d2, a2y->n, a2y->c, a2y->h, a2y->w);
  if (st == SKD_OK)
    st = skd_conv2d_backward(ctx, &p, a2y, &d->last_weight.value, &dz, &d2, param_grads ? &d->last_weight.grad : NULL,
                             param_grads ? &d->last_bias.grad : NULL);
  /* attn2 -> l4 -> attn1 -> l3 -> l2 -> l1 */
  if (st == SKD_OK) st = zeros(ctx, arena, &d4, a2y->n, a2y->c, a2y->h, a2y->w);
  if (st == SKD_OK) st = skd_attention_backward(ctx, &d->attn2, arena, &r->attn2, &d2, &d4, param_grads);
  if (st == SKD_OK) st = zeros(ctx, arena, &d1, a1y->n, a1y->c, a1y->h, a1y->w);
  if (st == SKD_OK) st = backward_sn_layer(ctx, d, arena, r, 3, a1y, &d4, &d1, param_grads);
  if (st == SKD_OK) st = zeros(ctx, arena, &d3, a1y->n, a1y->c, a1y->h, a1y->w);
  if (st == SKD_OK) st = skd_attention_backward(ctx, &d->attn1, arena, &r->attn1, &d1, &d3, param_grads);
  dact[2] = d3;
  for (int i = 2; st == SKD_OK && i >= 1; i--) {
    const skd_tensor *x = &r->act[i - 1];
    st = zeros(ctx, arena, &dact[i - 1], x->n, x->c, x->h, x->w);
    if (st == SKD_OK) st = backward_sn_layer(ctx, d, arena, r, i, x, &dact[i], &dact[i - 1], param_grads);
  }
  /* l1's input gradient is needed for dlogits, and for BN's own parameters. */
  const int need_din = dlogits || (bn && param_grads);
  if (st == SKD_OK && need_din) st = zeros(ctx, arena, &din, n, g->in_channels, g->h[0], g->w[0]);
  if (st == SKD_OK) st = backward_sn_layer(ctx, d, arena, r, 0, &r->pre, &dact[0], need_din ? &din : NULL, param_grads);
  if (st != SKD_OK || !need_din) return st;

  /* Preprocessing, into dlogits directly or into the concatenated input. */
  skd_tensor dcat;
  const skd_tensor *dinput = dlogits;
  if (d->cfg.conditional && dlogits) {
    st = zeros(ctx, arena, &dcat, n, g->in_channels, g->h[0], g->w[0]);
    dinput = &dcat;
  }
  if (st != SKD_OK) return st;
  switch (d->cfg.preprocess) {
    case SKD_DISC_PRE_BN:
      st = skd_batchnorm_backward(ctx, 1, &r->in, NULL, &d->bn_weight.value, &r->bn_mean, &r->bn_invstd, &din,
                                  dinput, param_grads ? &d->bn_weight.grad : NULL,
                                  param_grads ? &d->bn_bias.grad : NULL, SKD_BN_ACT_NONE, 0.0f);
      break;
    case SKD_DISC_PRE_TANH:
      if (dinput) st = skd_tanh_backward(ctx, &r->pre, &din, dinput);
      break;
    case SKD_DISC_PRE_SCALE:
      if (dinput)
        st = launch_elementwise(ctx, "disc_scale_bwd_x", (int)skd_tensor_numel(&din), NULL, &din, NULL, dinput);
      break;
  }
  if (st != SKD_OK || !d->cfg.conditional || !dlogits) return st;
  /* Split the concatenation (the resized image gets no gradient), then the
   * channel softmax. */
  skd_tensor dprobs, dparts[2];
  st = zeros(ctx, arena, &dprobs, n, d->cfg.classes, g->h[0], g->w[0]);
  dparts[0] = dprobs;
  dparts[1] = r->image_r;
  dparts[1].mem = NULL;
  if (st == SKD_OK) st = skd_concat_backward(ctx, &dcat, dparts, 2);
  if (st == SKD_OK) st = skd_softmax_backward(ctx, &r->probs, &dprobs, dlogits);
  return st;
}
