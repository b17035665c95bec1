/* Dilated ResNet backbone (see skd/nn/resnet.h): BasicBlock / Bottleneck,
 * the deep stem, layers 1-4. Each block keeps (with e->keep) its conv
 * outputs, its activations and its output; everything else, activation
 * gradients included, lives in the pool for as long as it is needed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skd/nn/resnet.h"
#include "skd/ops/pool.h"

/* ---- the residual join (cl/residual.cl) ---- */

/* y = relu(a + b); y may be a. */
static skd_status residual_forward(skd_context *ctx, const skd_tensor *a, const skd_tensor *b, const skd_tensor *y) {
  skd_status st = skd_tensor_expect_same(b, a, "resnet block: shortcut");
  skd_kernel *k;
  if (st == SKD_OK) st = skd_tensor_expect_same(y, a, "resnet block: output");
  if (st == SKD_OK) st = skd_kernel_get(ctx, "residual", "residual_fwd", &k);
  if (st != SKD_OK) return st;
  int n = (int)skd_tensor_numel(a);
  skd_args args = skd_args_begin(k);
  skd_arg_int(&args, n);
  skd_arg_tensor(&args, a);
  skd_arg_tensor(&args, b);
  skd_arg_tensor(&args, y);
  return skd_launch_1d(ctx, &args, (size_t)n, 256);
}

/* dx = (y > 0) ? dy : 0, overwriting dx. */
static skd_status residual_backward(skd_context *ctx, const skd_tensor *y, const skd_tensor *dy,
                                    const skd_tensor *dx) {
  skd_status st = skd_tensor_expect_same(dy, y, "resnet block backward: dy");
  skd_kernel *k;
  if (st == SKD_OK) st = skd_tensor_expect_same(dx, y, "resnet block backward: dx");
  if (st == SKD_OK) st = skd_kernel_get(ctx, "residual", "residual_bwd_x", &k);
  if (st != SKD_OK) return st;
  int n = (int)skd_tensor_numel(y);
  skd_args args = skd_args_begin(k);
  skd_arg_int(&args, n);
  skd_arg_tensor(&args, y);
  skd_arg_tensor(&args, dy);
  skd_arg_tensor(&args, dx);
  return skd_launch_1d(ctx, &args, (size_t)n, 256);
}

/* ---- construction ---- */

static skd_status block_init(skd_resnet_block *b, skd_nn_params *r, const char *prefix, int expansion, int inplanes,
                             int planes, int stride, int dilation) {
  char cn[96], bn[96];
  skd_status st = SKD_OK;
  memset(b, 0, sizeof *b);
  if (expansion == 1) {
    b->nconv = 2;
    snprintf(cn, sizeof cn, "%s.conv1", prefix);
    snprintf(bn, sizeof bn, "%s.bn1", prefix);
    st = skd_nn_conv_bn_init(&b->conv[0], r, cn, bn, inplanes, planes, 3, stride, dilation, dilation, 0,
                             SKD_BN_ACT_RELU, 0.0f);
    snprintf(cn, sizeof cn, "%s.conv2", prefix);
    snprintf(bn, sizeof bn, "%s.bn2", prefix);
    if (st == SKD_OK)
      st = skd_nn_conv_bn_init(&b->conv[1], r, cn, bn, planes, planes, 3, 1, dilation, dilation, 0,
                               SKD_BN_ACT_NONE, 0.0f);
  } else {
    b->nconv = 3;
    snprintf(cn, sizeof cn, "%s.conv1", prefix);
    snprintf(bn, sizeof bn, "%s.bn1", prefix);
    st = skd_nn_conv_bn_init(&b->conv[0], r, cn, bn, inplanes, planes, 1, 1, 0, 1, 0, SKD_BN_ACT_RELU, 0.0f);
    snprintf(cn, sizeof cn, "%s.conv2", prefix);
    snprintf(bn, sizeof bn, "%s.bn2", prefix);
    if (st == SKD_OK)
      st = skd_nn_conv_bn_init(&b->conv[1], r, cn, bn, planes, planes, 3, stride, dilation, dilation, 0,
                               SKD_BN_ACT_RELU, 0.0f);
    snprintf(cn, sizeof cn, "%s.conv3", prefix);
    snprintf(bn, sizeof bn, "%s.bn3", prefix);
    if (st == SKD_OK)
      st = skd_nn_conv_bn_init(&b->conv[2], r, cn, bn, planes, planes * expansion, 1, 1, 0, 1, 0,
                               SKD_BN_ACT_NONE, 0.0f);
  }
  if (st == SKD_OK && (stride != 1 || inplanes != planes * expansion)) {
    b->has_down = 1;
    snprintf(cn, sizeof cn, "%s.downsample.0", prefix);
    snprintf(bn, sizeof bn, "%s.downsample.1", prefix);
    st = skd_nn_conv_bn_init(&b->down, r, cn, bn, inplanes, planes * expansion, 1, stride, 0, 1, 0,
                             SKD_BN_ACT_NONE, 0.0f);
  }
  return st;
}

skd_status skd_resnet_init(skd_resnet *net, skd_nn_params *r, int depth, double width) {
  static const int layouts[4][4] = {{2, 2, 2, 2}, {3, 4, 6, 3}, {3, 4, 6, 3}, {3, 4, 23, 3}};
  int kind = depth == 18 ? 0 : depth == 34 ? 1 : depth == 50 ? 2 : depth == 101 ? 3 : -1;
  memset(net, 0, sizeof *net);
  if (kind < 0) return skd_error(SKD_EINVAL, "resnet: depth must be 18, 34, 50 or 101 (%d)", depth);
  if (!(width > 0.0 && width <= 64.0)) return skd_error(SKD_EINVAL, "resnet: width must be in (0, 64] (%g)", width);
  net->depth = depth;
  net->width = width;
  net->expansion = depth >= 50 ? 4 : 1;
  net->stem_ch[0] = net->stem_ch[1] = skd_nn_scale_channels(64, width);
  net->stem_ch[2] = skd_nn_scale_channels(128, width);
  net->maxpool = (skd_pool2d){3, 2, 1, 1};

  skd_status st = skd_nn_conv_bn_init(&net->stem[0], r, "conv1", "bn1", 3, net->stem_ch[0], 3, 2, 1, 1, 0,
                                      SKD_BN_ACT_RELU, 0.0f);
  if (st == SKD_OK)
    st = skd_nn_conv_bn_init(&net->stem[1], r, "conv2", "bn2", net->stem_ch[0], net->stem_ch[1], 3, 1, 1, 1, 0,
                             SKD_BN_ACT_RELU, 0.0f);
  if (st == SKD_OK)
    st = skd_nn_conv_bn_init(&net->stem[2], r, "conv3", "bn3", net->stem_ch[1], net->stem_ch[2], 3, 1, 1, 1, 0,
                             SKD_BN_ACT_RELU, 0.0f);
  int inplanes = net->stem_ch[2];
  for (int l = 0; st == SKD_OK && l < 4; l++) {
    static const int strides[4] = {1, 2, 1, 1}, dilations[4] = {1, 1, 2, 4};
    net->planes[l] = skd_nn_scale_channels(64 << l, width);
    net->out_ch[l] = net->planes[l] * net->expansion;
    net->nblocks[l] = layouts[kind][l];
    net->blocks[l] = calloc((size_t)net->nblocks[l], sizeof(skd_resnet_block));
    if (!net->blocks[l]) return skd_error(SKD_ENOMEM, "resnet: out of host memory");
    for (int b = 0; st == SKD_OK && b < net->nblocks[l]; b++) {
      char prefix[32];
      snprintf(prefix, sizeof prefix, "layer%d.%d", l + 1, b);
      st = block_init(&net->blocks[l][b], r, prefix, net->expansion, b == 0 ? inplanes : net->out_ch[l],
                      net->planes[l], b == 0 ? strides[l] : 1, dilations[l]);
    }
    inplanes = net->out_ch[l];
  }
  return st;
}

void skd_resnet_free(skd_resnet *net) {
  for (int l = 0; l < 4; l++) free(net->blocks[l]);
  memset(net, 0, sizeof *net);
}

skd_status skd_resnet_stem_shape(const skd_resnet *net, int h, int w, int *ho, int *wo) {
  int h1, w1;
  skd_status st = skd_nn_conv_bn_out_shape(&net->stem[0], h, w, &h1, &w1);
  if (st == SKD_OK) st = skd_pool2d_output_size(net->maxpool, h1, ho);
  if (st == SKD_OK) st = skd_pool2d_output_size(net->maxpool, w1, wo);
  return st;
}

skd_status skd_resnet_output_shape(const skd_resnet *net, int h, int w, int *ho, int *wo) {
  int h4, w4;
  skd_status st = skd_resnet_stem_shape(net, h, w, &h4, &w4);
  /* layer2's first 3x3 (BasicBlock conv1 / Bottleneck conv2) has the stride. */
  const skd_resnet_block *b = &net->blocks[1][0];
  if (st == SKD_OK) st = skd_nn_conv_bn_out_shape(&b->conv[b->nconv == 2 ? 0 : 1], h4, w4, ho, wo);
  return st;
}

/* ---- forward ---- */

/* *y = a new activation holding unit u applied to x. */
static skd_status unit_forward(skd_nn_exec *e, skd_nn_conv_bn *u, const skd_tensor *x, skd_tensor *y) {
  int ho, wo;
  skd_status st = skd_nn_conv_bn_out_shape(u, x->h, x->w, &ho, &wo);
  if (st == SKD_OK) st = skd_nn_exec_act(e, y, x->n, u->cout, ho, wo);
  if (st == SKD_OK) st = skd_nn_conv_bn_forward(e, u, x, y);
  return st;
}

static skd_status block_forward(skd_nn_exec *e, skd_resnet_block *b, const skd_tensor *x, skd_tensor *out) {
  skd_tensor t = *x;
  skd_status st = SKD_OK;
  for (int i = 0; st == SKD_OK && i < b->nconv; i++) {
    skd_tensor a = {0};
    st = unit_forward(e, &b->conv[i], &t, &a);
    if (i > 0) skd_nn_exec_drop(e, &t);
    t = a;
  }
  if (st != SKD_OK) return st;
  *out = t;
  if (b->has_down) {
    skd_tensor r = {0};
    int ho, wo;
    st = skd_nn_conv_bn_out_shape(&b->down, x->h, x->w, &ho, &wo);
    /* The shortcut's BN output dies at the join (its BN has no activation,
     * so backward does not need it): a temporary even when keeping. */
    if (st == SKD_OK) st = skd_nn_exec_tmp(e, &r, x->n, b->down.cout, ho, wo);
    if (st == SKD_OK) st = skd_nn_conv_bn_forward(e, &b->down, x, &r);
    if (st == SKD_OK) st = residual_forward(e->ctx, out, &r, out);
    skd_nn_exec_drop(e, &r);
  } else {
    st = residual_forward(e->ctx, out, x, out);
  }
  b->x = *x;
  b->out = *out;
  return st;
}

skd_status skd_resnet_stem_forward(skd_nn_exec *e, skd_resnet *net, const skd_tensor *x, skd_tensor *y) {
  skd_status st = skd_tensor_expect(x, x->n, 3, x->h, x->w, "resnet: image (N, 3, H, W)");
  skd_tensor t = *x;
  for (int i = 0; st == SKD_OK && i < 3; i++) {
    skd_tensor a = {0};
    st = unit_forward(e, &net->stem[i], &t, &a);
    if (i > 0) skd_nn_exec_drop(e, &t);
    t = a;
  }
  if (st != SKD_OK) return st;
  int ho, wo;
  st = skd_pool2d_output_size(net->maxpool, t.h, &ho);
  if (st == SKD_OK) st = skd_pool2d_output_size(net->maxpool, t.w, &wo);
  if (st == SKD_OK) st = skd_nn_exec_act(e, y, t.n, t.c, ho, wo);
  if (st == SKD_OK) st = skd_maxpool2d_forward(e->ctx, &t, y, net->maxpool);
  net->stem_y = t;
  net->pool_y = *y;
  skd_nn_exec_drop(e, &t);
  return st;
}

skd_status skd_resnet_layer_forward(skd_nn_exec *e, skd_resnet *net, int layer, const skd_tensor *x, skd_tensor *y) {
  if (layer < 1 || layer > 4) return skd_error(SKD_EINVAL, "resnet: layer must be 1..4 (%d)", layer);
  skd_resnet_block *blocks = net->blocks[layer - 1];
  skd_status st = skd_tensor_expect(x, x->n, blocks[0].conv[0].cin, x->h, x->w, "resnet layer: x");
  skd_tensor t = *x;
  for (int b = 0; st == SKD_OK && b < net->nblocks[layer - 1]; b++) {
    skd_tensor o = {0};
    st = block_forward(e, &blocks[b], &t, &o);
    if (b > 0) skd_nn_exec_drop(e, &t);
    t = o;
  }
  if (st == SKD_OK) *y = t;
  return st;
}

/* ---- backward ---- */

static skd_status block_backward(skd_nn_exec *e, skd_resnet_block *b, const skd_tensor *dout, skd_tensor *dx) {
  skd_tensor dpre = {0}, g = {0};
  skd_status st = skd_nn_exec_tmp(e, &dpre, b->out.n, b->out.c, b->out.h, b->out.w);
  if (st == SKD_OK) st = residual_backward(e->ctx, &b->out, dout, &dpre);
  skd_nn_exec_drop(e, dout);
  if (st != SKD_OK) return st;
  /* Down the branch: the last conv reads dpre, each earlier one the
   * gradient of the next one's input. */
  g = dpre;
  for (int i = b->nconv - 1; st == SKD_OK && i >= 1; i--) {
    const skd_tensor *xi = &b->conv[i].x;
    skd_tensor d = {0};
    st = skd_nn_pool_get_zero(e->pool, &d, xi->n, xi->c, xi->h, xi->w);
    if (st == SKD_OK) st = skd_nn_conv_bn_backward(e, &b->conv[i], &g, &d);
    if (g.mem != dpre.mem) skd_nn_exec_drop(e, &g);
    g = d;
  }
  if (st != SKD_OK) return st;
  /* The shortcut: through the downsample, or the identity, whose gradient
   * is dpre itself (conv1's gradient is then added onto it). */
  if (b->has_down) {
    st = skd_nn_pool_get_zero(e->pool, dx, b->x.n, b->x.c, b->x.h, b->x.w);
    if (st == SKD_OK) st = skd_nn_conv_bn_backward(e, &b->down, &dpre, dx);
    skd_nn_exec_drop(e, &dpre);
  } else {
    *dx = dpre;
  }
  if (st == SKD_OK) st = skd_nn_conv_bn_backward(e, &b->conv[0], &g, dx);
  skd_nn_exec_drop(e, &g);
  return st;
}

skd_status skd_resnet_layer_backward(skd_nn_exec *e, skd_resnet *net, int layer, const skd_tensor *dy,
                                     skd_tensor *dx) {
  if (layer < 1 || layer > 4) return skd_error(SKD_EINVAL, "resnet: layer must be 1..4 (%d)", layer);
  skd_resnet_block *blocks = net->blocks[layer - 1];
  skd_status st = skd_tensor_expect_same(dy, &blocks[net->nblocks[layer - 1] - 1].out, "resnet layer backward: dy");
  skd_tensor g = *dy;
  for (int b = net->nblocks[layer - 1] - 1; st == SKD_OK && b >= 0; b--) {
    skd_tensor d = {0};
    st = block_backward(e, &blocks[b], &g, &d);
    g = d;
  }
  if (st == SKD_OK) *dx = g;
  return st;
}

skd_status skd_resnet_stem_backward(skd_nn_exec *e, skd_resnet *net, const skd_tensor *dy, const skd_tensor *dx) {
  const skd_tensor *s = &net->stem_y;
  skd_tensor g = {0};
  skd_status st = skd_tensor_expect_same(dy, &net->pool_y, "resnet stem backward: dy");
  if (st == SKD_OK) st = skd_nn_pool_get_zero(e->pool, &g, s->n, s->c, s->h, s->w);
  if (st == SKD_OK) st = skd_maxpool2d_backward(e->ctx, s, dy, &g, net->maxpool);
  skd_nn_exec_drop(e, dy);
  for (int i = 2; st == SKD_OK && i >= 1; i--) {
    const skd_tensor *xi = &net->stem[i].x;
    skd_tensor d = {0};
    st = skd_nn_pool_get_zero(e->pool, &d, xi->n, xi->c, xi->h, xi->w);
    if (st == SKD_OK) st = skd_nn_conv_bn_backward(e, &net->stem[i], &g, &d);
    skd_nn_exec_drop(e, &g);
    g = d;
  }
  if (st == SKD_OK) st = skd_nn_conv_bn_backward(e, &net->stem[0], &g, dx);
  skd_nn_exec_drop(e, &g);
  return st;
}
