/* PSPNet (see skd/nn/pspnet.h): PSP module, bottleneck, head and DSN on the
 * dilated ResNet, forward and backward.
 *
 * Order of the forward pass: stem, layer1..3, DSN (right after layer3, as
 * the reference computes it, so that layer3's output can be dropped before
 * layer4 in an eval pass), layer4, PSP, head. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skd/nn/pspnet.h"
#include "skd/ops/concat.h"
#include "skd/ops/dropout.h"
#include "skd/ops/pool.h"
#include "skd/ops/resize.h"

#define LEAKY_SLOPE 0.01f

void skd_pspnet_config_default(skd_pspnet_config *cfg, int depth, int classes) {
  memset(cfg, 0, sizeof *cfg);
  cfg->depth = depth;
  cfg->width = 1.0;
  cfg->classes = classes;
  cfg->dropout = 0.1f;
  cfg->with_grad = 1;
  cfg->seed = 1;
}

uint32_t skd_pspnet_dropout_seed(uint32_t seed, int layer) {
  /* murmur3's finaliser of a mix of both: nearby seeds give unrelated masks. */
  uint32_t h = seed * 0x9E3779B1u + (uint32_t)layer * 0x85EBCA77u;
  h ^= h >> 16;
  h *= 0x85EBCA6Bu;
  h ^= h >> 13;
  h *= 0xC2B2AE35u;
  h ^= h >> 16;
  return h;
}

static skd_status build(skd_pspnet *net) {
  const skd_pspnet_config *cfg = &net->cfg;
  skd_nn_params *r = &net->params;
  skd_status st = skd_resnet_init(&net->backbone, r, cfg->depth, cfg->width);
  if (st != SKD_OK) return st;
  const int c3 = net->backbone.out_ch[2], c4 = net->backbone.out_ch[3];
  const int p = skd_nn_scale_channels(net->backbone.expansion == 4 ? 512 : 128, cfg->width);
  net->feat_ch = p;
  static const int bins[4] = {1, 2, 3, 6};
  for (int s = 0; st == SKD_OK && s < 4; s++) {
    char cn[64], bn[64];
    net->bins[s] = bins[s];
    snprintf(cn, sizeof cn, "pspmodule.stages.%d.1", s);
    snprintf(bn, sizeof bn, "pspmodule.stages.%d.2", s);
    st = skd_nn_conv_bn_init(&net->stage[s], r, cn, bn, c4, p, 1, 1, 0, 1, 0, SKD_BN_ACT_LEAKY_RELU, LEAKY_SLOPE);
  }
  if (st == SKD_OK)
    st = skd_nn_conv_bn_init(&net->bottleneck, r, "pspmodule.bottleneck.0", "pspmodule.bottleneck.1", c4 + 4 * p, p,
                             3, 1, 1, 1, 0, SKD_BN_ACT_LEAKY_RELU, LEAKY_SLOPE);
  if (st == SKD_OK)
    st = skd_nn_conv_bn_init(&net->head, r, "head", NULL, p, cfg->classes, 1, 1, 0, 1, 1, SKD_BN_ACT_NONE, 0.0f);
  if (st == SKD_OK)
    st = skd_nn_conv_bn_init(&net->dsn0, r, "dsn.0", "dsn.1", c3, p, 3, 1, 1, 1, 1, SKD_BN_ACT_LEAKY_RELU,
                             LEAKY_SLOPE);
  if (st == SKD_OK)
    st = skd_nn_conv_bn_init(&net->dsn3, r, "dsn.3", NULL, p, cfg->classes, 1, 1, 0, 1, 1, SKD_BN_ACT_NONE, 0.0f);
  if (st != SKD_OK) return st;
  skd_nn_params_mark_replaceable(r, "head.");
  skd_nn_params_mark_replaceable(r, "dsn.3.");
  st = skd_nn_params_finalize(r);
  if (st == SKD_OK) st = skd_nn_params_init_values(r, cfg->seed);
  return st;
}

skd_status skd_pspnet_create(skd_pspnet **out, skd_context *ctx, const skd_pspnet_config *cfg) {
  *out = NULL;
  if (cfg->classes < 1) return skd_error(SKD_EINVAL, "pspnet: classes must be >= 1 (%d)", cfg->classes);
  if (!(cfg->dropout >= 0.0f && cfg->dropout < 1.0f))
    return skd_error(SKD_EINVAL, "pspnet: dropout must be in [0, 1) (%g)", (double)cfg->dropout);
  skd_pspnet *net = calloc(1, sizeof *net);
  if (!net) return skd_error(SKD_ENOMEM, "pspnet: out of host memory");
  net->ctx = ctx;
  net->cfg = *cfg;
  skd_nn_params_init(&net->params, ctx, cfg->with_grad);
  skd_nn_pool_init(&net->pool, ctx);
  skd_status st = build(net);
  if (st != SKD_OK) {
    skd_pspnet_free(net);
    return st;
  }
  *out = net;
  return SKD_OK;
}

void skd_pspnet_free(skd_pspnet *net) {
  if (!net) return;
  skd_resnet_free(&net->backbone);
  skd_nn_params_free(&net->params);
  skd_nn_pool_release(&net->pool);
  free(net);
}

skd_status skd_pspnet_output_shape(const skd_pspnet *net, int h, int w, int *ho, int *wo) {
  return skd_resnet_output_shape(&net->backbone, h, w, ho, wo);
}

/* ---- forward ---- */

/* The masks of the global batch's rows: one run of rows, or two when a
 * rank's batch is its labeled shard then its unlabeled one. */
static skd_status dropout_rows(skd_pspnet *net, int backward, const skd_tensor *a, const skd_tensor *b, uint32_t seed) {
  const int split = net->dropout_split > 0 && net->dropout_split < a->n ? net->dropout_split : a->n;
  const size_t plane = (size_t)a->c * (size_t)a->h * (size_t)a->w;
  skd_status st = SKD_OK;
  for (int part = 0; part < 2 && st == SKD_OK; part++) {
    const int first = part ? split : 0, rows = part ? a->n - split : split;
    const int row0 = part ? net->dropout_row0_rest : net->dropout_row0;
    if (rows == 0) continue;
    skd_tensor x = skd_tensor_view(a->mem, a->offset + (size_t)first * plane, rows, a->c, a->h, a->w);
    skd_tensor y = skd_tensor_view(b->mem, b->offset + (size_t)first * plane, rows, b->c, b->h, b->w);
    st = backward ? skd_dropout2d_backward_rows(net->ctx, 1, &x, &y, net->cfg.dropout, seed, row0)
                  : skd_dropout2d_forward_rows(net->ctx, 1, &x, &y, net->cfg.dropout, seed, row0);
  }
  return st;
}

static skd_status dropout_forward(skd_pspnet *net, const skd_tensor *t, uint32_t seed) {
  if (!net->exec.training || net->cfg.dropout == 0.0f) return SKD_OK;
  return dropout_rows(net, 0, t, t, seed); /* in place: BN's mask survives */
}

/* x4 -> F (arena). */
static skd_status psp_forward(skd_pspnet *net, const skd_tensor *x4, skd_tensor *f) {
  skd_nn_exec *e = &net->exec;
  const int n = x4->n, h = x4->h, w = x4->w, p = net->feat_ch;
  skd_tensor inputs[5] = {{0}};
  skd_status st = SKD_OK;
  for (int s = 0; st == SKD_OK && s < 4; s++) {
    const int b = net->bins[s];
    skd_tensor *pooled = &net->pooled[s], *sy = &net->stage_y[s];
    st = skd_nn_exec_act(e, pooled, n, x4->c, b, b);
    if (st == SKD_OK) st = skd_adaptive_avgpool2d_forward(net->ctx, x4, pooled);
    if (st == SKD_OK) st = skd_nn_exec_act(e, sy, n, p, b, b);
    if (st == SKD_OK) st = skd_nn_conv_bn_forward(e, &net->stage[s], pooled, sy);
    skd_nn_exec_drop(e, pooled);
    /* The upsampled map is only copied into the concatenation. */
    if (st == SKD_OK) st = skd_nn_exec_tmp(e, &inputs[s], n, p, h, w);
    if (st == SKD_OK) st = skd_resize_bilinear_forward(net->ctx, sy, &inputs[s]);
    skd_nn_exec_drop(e, sy);
  }
  inputs[4] = *x4;
  if (st == SKD_OK) st = skd_nn_exec_act(e, &net->cat, n, 4 * p + x4->c, h, w);
  if (st == SKD_OK) st = skd_concat_forward(net->ctx, inputs, 5, &net->cat);
  for (int s = 0; s < 4; s++) skd_nn_exec_drop(e, &inputs[s]);
  if (st == SKD_OK) st = skd_arena_tensor(e->arena, f, n, p, h, w);
  if (st == SKD_OK) st = skd_nn_conv_bn_forward(e, &net->bottleneck, &net->cat, f);
  skd_nn_exec_drop(e, &net->cat);
  if (st == SKD_OK) st = dropout_forward(net, f, net->seed_psp);
  return st;
}

/* x3 -> Q_dsn (arena). */
static skd_status dsn_forward(skd_pspnet *net, const skd_tensor *x3, skd_tensor *q_dsn) {
  skd_nn_exec *e = &net->exec;
  skd_status st = skd_nn_exec_act(e, &net->dsn_y, x3->n, net->feat_ch, x3->h, x3->w);
  if (st == SKD_OK) st = skd_nn_conv_bn_forward(e, &net->dsn0, x3, &net->dsn_y);
  if (st == SKD_OK) st = dropout_forward(net, &net->dsn_y, net->seed_dsn);
  if (st == SKD_OK) st = skd_arena_tensor(e->arena, q_dsn, x3->n, net->cfg.classes, x3->h, x3->w);
  if (st == SKD_OK) st = skd_nn_conv_bn_forward(e, &net->dsn3, &net->dsn_y, q_dsn);
  skd_nn_exec_drop(e, &net->dsn_y);
  return st;
}

skd_status skd_pspnet_forward(skd_pspnet *net, skd_arena *arena, const skd_tensor *image, int flags,
                              uint32_t seed, skd_pspnet_outputs *out) {
  const int training = (flags & SKD_PSPNET_TRAIN) != 0, keep = (flags & SKD_PSPNET_KEEP) != 0;
  net->kept = 0;
  if (!arena) return skd_error(SKD_EINVAL, "pspnet forward: an arena is required");
  if (keep && !net->cfg.with_grad)
    return skd_error(SKD_EINVAL, "pspnet forward: SKD_PSPNET_KEEP on a network without gradients");
  skd_status st = skd_tensor_expect(image, image->n, 3, image->h, image->w, "pspnet forward: image (N, 3, H, W)");
  int ho, wo;
  if (st == SKD_OK) st = skd_pspnet_output_shape(net, image->h, image->w, &ho, &wo);
  if (st != SKD_OK) return st;
  if (image->n < 1) return skd_error(SKD_EINVAL, "pspnet forward: empty batch");

  skd_nn_pool_reset(&net->pool);
  skd_nn_exec e = {net->ctx, arena, &net->pool, training, keep, net->exec.grads_ready, net->exec.grads_user};
  net->exec = e; /* the hook (set by a data-parallel trainer) stays */
  net->seed_psp = skd_pspnet_dropout_seed(seed, 1);
  net->seed_dsn = skd_pspnet_dropout_seed(seed, 2);
  skd_resnet *bb = &net->backbone;
  skd_tensor s = {0}, x1 = {0}, x2 = {0};
  skd_pspnet_outputs o;
  memset(&o, 0, sizeof o);
  st = skd_resnet_stem_forward(&net->exec, bb, image, &s);
  if (st == SKD_OK) st = skd_resnet_layer_forward(&net->exec, bb, 1, &s, &x1);
  skd_nn_exec_drop(&net->exec, &s);
  if (st == SKD_OK) st = skd_resnet_layer_forward(&net->exec, bb, 2, &x1, &x2);
  skd_nn_exec_drop(&net->exec, &x1);
  if (st == SKD_OK) st = skd_resnet_layer_forward(&net->exec, bb, 3, &x2, &net->x3);
  skd_nn_exec_drop(&net->exec, &x2);
  if (st == SKD_OK) st = dsn_forward(net, &net->x3, &o.q_dsn);
  if (st == SKD_OK) st = skd_resnet_layer_forward(&net->exec, bb, 4, &net->x3, &net->x4);
  skd_nn_exec_drop(&net->exec, &net->x3);
  if (st == SKD_OK) st = psp_forward(net, &net->x4, &o.f);
  skd_nn_exec_drop(&net->exec, &net->x4);
  if (st == SKD_OK) st = skd_arena_tensor(arena, &o.q, image->n, net->cfg.classes, o.f.h, o.f.w);
  if (st == SKD_OK) st = skd_nn_conv_bn_forward(&net->exec, &net->head, &o.f, &o.q);
  if (st != SKD_OK) return st;
  net->out = o;
  net->kept = keep;
  *out = o;
  return SKD_OK;
}

/* ---- backward ---- */

/* *dx = the gradient through a Dropout2d that ran in place (a new pool
 * tensor; dy is dropped), or dy itself when the dropout was the identity. */
static skd_status dropout_backward(skd_pspnet *net, const skd_tensor *dy, skd_tensor *dx, uint32_t seed) {
  if (!net->exec.training || net->cfg.dropout == 0.0f) {
    *dx = *dy;
    return SKD_OK;
  }
  skd_status st = skd_nn_pool_get_zero(&net->pool, dx, dy->n, dy->c, dy->h, dy->w);
  if (st == SKD_OK) st = dropout_rows(net, 1, dy, dx, seed);
  skd_nn_pool_put(&net->pool, dy);
  return st;
}

/* dF (pool tensor, dropped) -> *dx4 (new pool tensor). */
static skd_status psp_backward(skd_pspnet *net, const skd_tensor *df, skd_tensor *dx4) {
  skd_nn_exec *e = &net->exec;
  skd_nn_pool *pool = &net->pool;
  const skd_tensor *x4 = &net->x4;
  skd_tensor dd = {0}, dcat = {0}, dinputs[5] = {{0}};
  skd_status st = dropout_backward(net, df, &dd, net->seed_psp);
  if (st == SKD_OK) st = skd_nn_pool_get_zero(pool, &dcat, net->cat.n, net->cat.c, net->cat.h, net->cat.w);
  if (st == SKD_OK) st = skd_nn_conv_bn_backward(e, &net->bottleneck, &dd, &dcat);
  skd_nn_exec_drop(e, &dd);
  for (int s = 0; st == SKD_OK && s < 4; s++)
    st = skd_nn_pool_get_zero(pool, &dinputs[s], x4->n, net->feat_ch, x4->h, x4->w);
  if (st == SKD_OK) st = skd_nn_pool_get_zero(pool, dx4, x4->n, x4->c, x4->h, x4->w);
  if (st == SKD_OK) {
    dinputs[4] = *dx4;
    st = skd_concat_backward(net->ctx, &dcat, dinputs, 5);
  }
  skd_nn_exec_drop(e, &dcat);
  for (int s = 0; s < 4; s++) {
    const skd_tensor *sy = &net->stage_y[s], *pooled = &net->pooled[s];
    skd_tensor dsy = {0}, dpooled = {0};
    if (st == SKD_OK) st = skd_nn_pool_get_zero(pool, &dsy, sy->n, sy->c, sy->h, sy->w);
    if (st == SKD_OK) st = skd_resize_bilinear_backward(net->ctx, &dinputs[s], &dsy);
    skd_nn_exec_drop(e, &dinputs[s]);
    if (st == SKD_OK) st = skd_nn_pool_get_zero(pool, &dpooled, pooled->n, pooled->c, pooled->h, pooled->w);
    if (st == SKD_OK) st = skd_nn_conv_bn_backward(e, &net->stage[s], &dsy, &dpooled);
    skd_nn_exec_drop(e, &dsy);
    if (st == SKD_OK) st = skd_adaptive_avgpool2d_backward(net->ctx, &dpooled, dx4);
    skd_nn_exec_drop(e, &dpooled);
  }
  return st;
}

static skd_status check_grad(const skd_tensor *g, const skd_tensor *like, const char *what) {
  return g ? skd_tensor_expect_same(g, like, what) : SKD_OK;
}

skd_status skd_pspnet_backward(skd_pspnet *net, const skd_tensor *dq, const skd_tensor *dq_dsn,
                               const skd_tensor *df) {
  if (!net->kept)
    return skd_error(SKD_EINVAL, "pspnet backward: the last forward did not use SKD_PSPNET_KEEP (or failed)");
  skd_status st = check_grad(dq, &net->out.q, "pspnet backward: dQ");
  if (st == SKD_OK) st = check_grad(dq_dsn, &net->out.q_dsn, "pspnet backward: dQ_dsn");
  if (st == SKD_OK) st = check_grad(df, &net->out.f, "pspnet backward: dF");
  if (st != SKD_OK) return st;
  skd_nn_pool_reset(&net->pool);
  skd_nn_exec *e = &net->exec;
  skd_nn_pool *pool = &net->pool;
  skd_resnet *bb = &net->backbone;
  const skd_tensor *f = &net->out.f, *x3 = &net->x3;
  skd_tensor dx3 = {0};
  int have3 = 0;

  if (dq || df) {
    /* dF_total = dF + head's input gradient. */
    skd_tensor dft = {0}, dx4 = {0};
    if (df) {
      st = skd_nn_exec_tmp(e, &dft, f->n, f->c, f->h, f->w);
      if (st == SKD_OK) st = skd_tensor_copy(net->ctx, &dft, df);
    } else {
      st = skd_nn_pool_get_zero(pool, &dft, f->n, f->c, f->h, f->w);
    }
    if (st == SKD_OK && dq) st = skd_nn_conv_bn_backward(e, &net->head, dq, &dft);
    if (st == SKD_OK) st = psp_backward(net, &dft, &dx4);
    if (st == SKD_OK) st = skd_resnet_layer_backward(e, bb, 4, &dx4, &dx3);
    if (st != SKD_OK) return st;
    have3 = 1;
  }
  if (dq_dsn) {
    const skd_tensor *yd = &net->dsn_y;
    skd_tensor dyd = {0}, dd = {0};
    if (!have3) st = skd_nn_pool_get_zero(pool, &dx3, x3->n, x3->c, x3->h, x3->w);
    if (st == SKD_OK) st = skd_nn_pool_get_zero(pool, &dyd, yd->n, yd->c, yd->h, yd->w);
    if (st == SKD_OK) st = skd_nn_conv_bn_backward(e, &net->dsn3, dq_dsn, &dyd);
    if (st == SKD_OK) st = dropout_backward(net, &dyd, &dd, net->seed_dsn);
    if (st == SKD_OK) st = skd_nn_conv_bn_backward(e, &net->dsn0, &dd, &dx3);
    skd_nn_exec_drop(e, &dd);
    if (st != SKD_OK) return st;
    have3 = 1;
  }
  if (!have3) return SKD_OK;
  skd_tensor dx2 = {0}, dx1 = {0}, ds = {0};
  st = skd_resnet_layer_backward(e, bb, 3, &dx3, &dx2);
  if (st == SKD_OK) st = skd_resnet_layer_backward(e, bb, 2, &dx2, &dx1);
  if (st == SKD_OK) st = skd_resnet_layer_backward(e, bb, 1, &dx1, &ds);
  if (st == SKD_OK) st = skd_resnet_stem_backward(e, bb, &ds, NULL);
  return st;
}
