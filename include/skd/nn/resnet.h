/* Dilated ResNet backbone of the reference code (PSPNet's "deep stem",
 * output stride 8), with explicit forward and backward per stage.
 *
 *   stem: conv1 3x3 s2 (3 -> 64) bn1 relu, conv2 3x3 (64 -> 64) bn2 relu,
 *         conv3 3x3 (64 -> 128) bn3 relu, maxpool 3x3 s2 p1 ceil_mode
 *   layer1: planes 64, stride 1      layer2: planes 128, stride 2
 *   layer3: planes 256, dilation 2   layer4: planes 512, dilation 4
 *
 * Depth 18 / 34: BasicBlock (expansion 1), [2,2,2,2] / [3,4,6,3];
 * depth 50 / 101: Bottleneck (expansion 4, stride on the 3x3), [3,4,6,3] /
 * [3,4,23,3]. As in the reference code, EVERY block of layer3 / layer4
 * (the first included) uses dilation = padding = 2 / 4 on its 3x3 convs
 * (multi_grid is 1). A block has a downsample (1x1 conv with the block's
 * stride, + BN) when its stride is not 1 or its input width differs from
 * planes * expansion: the first block of each layer here, layer1 included
 * (the stem ends at 128 channels).
 *
 * Width multiplier: every channel count c (stem 64/64/128, planes) becomes
 * skd_nn_scale_channels(c, width) = max(1, floor(c * width + 0.5)); a
 * Bottleneck's output is scaled(planes) * 4, and the downsample rule is
 * applied to the scaled counts. Width 1 is the reference network.
 *
 * Parameter names are the reference state_dict keys: conv1.weight, bn1.*,
 * conv2/bn2, conv3/bn3, layer{L}.{b}.conv{1,2[,3]}.weight,
 * layer{L}.{b}.bn{1,2[,3]}.*, layer{L}.0.downsample.0.weight,
 * layer{L}.0.downsample.1.* (registered in that order).
 *
 * Passes: forward in stages (stem, then layer 1..4) so that the caller can
 * branch between them (PSPNet's DSN reads layer3); backward in the reverse
 * order. Tensors come from an skd_nn_exec (module.h). */
#ifndef SKD_NN_RESNET_H
#define SKD_NN_RESNET_H

#include "skd/nn/module.h"
#include "skd/ops/pool.h"

typedef struct skd_resnet_block {
  int nconv;             /* 2 (BasicBlock) or 3 (Bottleneck) */
  skd_nn_conv_bn conv[3];
  int has_down;
  skd_nn_conv_bn down;
  skd_tensor x, out;     /* last forward */
} skd_resnet_block;

typedef struct skd_resnet {
  int depth, expansion;
  double width;
  int stem_ch[3];        /* scaled 64, 64, 128 */
  int planes[4];         /* scaled 64, 128, 256, 512 */
  int out_ch[4];         /* planes * expansion: channels of layer1..4 */
  int nblocks[4];
  skd_nn_conv_bn stem[3];
  skd_pool2d maxpool;
  skd_resnet_block *blocks[4];
  skd_tensor stem_y, pool_y; /* last forward */
} skd_resnet;

/* Registers the backbone's parameters in r (depth 18, 34, 50 or 101;
 * width > 0). Free with skd_resnet_free. */
skd_status skd_resnet_init(skd_resnet *net, skd_nn_params *r, int depth, double width);
void skd_resnet_free(skd_resnet *net);

/* Sizes: after the stem (stride 4) and after layer2..4 (stride 8). */
skd_status skd_resnet_stem_shape(const skd_resnet *net, int h, int w, int *ho, int *wo);
skd_status skd_resnet_output_shape(const skd_resnet *net, int h, int w, int *ho, int *wo);

/* x: (N, 3, H, W) -> *y: (N, stem_ch[2], H/4.., W/4..), allocated from e. */
skd_status skd_resnet_stem_forward(skd_nn_exec *e, skd_resnet *net, const skd_tensor *x, skd_tensor *y);
/* layer in 1..4: x (N, C_in, h, w) -> *y (N, out_ch[layer-1], ...), allocated from e.
 * x is not dropped (the caller decides). */
skd_status skd_resnet_layer_forward(skd_nn_exec *e, skd_resnet *net, int layer, const skd_tensor *x, skd_tensor *y);

/* dy: gradient w.r.t. the layer's output (a pool tensor, dropped here);
 * *dx: gradient w.r.t. its input, a new pool tensor. */
skd_status skd_resnet_layer_backward(skd_nn_exec *e, skd_resnet *net, int layer, const skd_tensor *dy,
                                     skd_tensor *dx);
/* dy: gradient w.r.t. the stem's output (dropped here); dx: += gradient
 * w.r.t. the image, or NULL (the usual case: nothing to compute). */
skd_status skd_resnet_stem_backward(skd_nn_exec *e, skd_resnet *net, const skd_tensor *dy, const skd_tensor *dx);

#endif
