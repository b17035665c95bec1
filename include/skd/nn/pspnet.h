/* PSPNet on a dilated ResNet (the reference code's Res_pspnet), with the
 * three outputs the distillation losses use:
 *
 *   Q     (N, classes, H', W')  logits, head(F)
 *   Q_dsn (N, classes, H', W')  auxiliary logits from layer3 (DSN)
 *   F     (N, Cf, H', W')       the feature after PSP (bottleneck output, after dropout)
 *
 * for an image batch (N, 3, H, W). H' is what the stride-2 conv, the
 * ceil-mode max pool and layer2's stride give, as in the reference:
 * ceil(H / 2), then ceil((. - 1) / 2) + 1, then ceil(. / 2): 5 x 6 for
 * 33 x 41, but 17 x 17 for 128 x 128 and 65 x 65 for 512 x 512.
 *
 * PSP module on layer4's output x4 (C4 channels, h x w): for bins 1, 2, 3, 6:
 * AdaptiveAvgPool(bin) -> 1x1 conv (no bias) -> BN + LeakyReLU(0.01) ->
 * bilinear up to h x w (align_corners); concatenated IN THE REFERENCE'S
 * ORDER [stage 1, stage 2, stage 3, stage 6, x4]; bottleneck 3x3 conv (no
 * bias, pad 1) -> BN + LeakyReLU(0.01) -> Dropout2d(p) = F; Q = 1x1 conv
 * with bias. DSN on layer3 (C3 channels): 3x3 conv with bias (pad 1) -> BN
 * + LeakyReLU(0.01) -> Dropout2d(p) -> 1x1 conv with bias. Cf = the PSP
 * width: 512 for Bottleneck backbones (50, 101), 128 for BasicBlock ones
 * (18, 34), scaled by width like every other count (resnet.h); the DSN's
 * middle width is the same.
 *
 * Parameter names are the reference state_dict keys (resnet.h for the
 * backbone, then pspmodule.stages.{s}.1.weight, pspmodule.stages.{s}.2.*,
 * pspmodule.bottleneck.0.weight, pspmodule.bottleneck.1.*, head.weight,
 * head.bias, dsn.0.weight, dsn.0.bias, dsn.1.*, dsn.3.weight, dsn.3.bias);
 * head.* and dsn.3.* are "replaceable" (a checkpoint for another class
 * count loads with SKD_NN_LOAD_KEEP_REPLACEABLE).
 *
 * Modes: SKD_PSPNET_TRAIN uses batch statistics (and updates the running
 * ones) and dropout, whose masks come from the seed given to forward (pass
 * a new one every step); without it, running statistics and no dropout.
 * Training-mode BN needs more than one value per channel, so the bin-1
 * stage needs a batch of N >= 2 (as in PyTorch). SKD_PSPNET_KEEP keeps in
 * the arena what backward needs (only for networks with gradients);
 * without it a forward keeps nothing but its outputs and reuses a few
 * scratch buffers (the frozen teacher's way). */
#ifndef SKD_NN_PSPNET_H
#define SKD_NN_PSPNET_H

#include <stdint.h>

#include "skd/nn/module.h"
#include "skd/nn/resnet.h"

typedef struct skd_pspnet_config {
  int depth;     /* 18, 34, 50, 101 */
  double width;  /* channel multiplier; 1 = the reference network */
  int classes;   /* >= 1 */
  float dropout; /* Dropout2d p in [0, 1) of the PSP bottleneck and the DSN; 0.1 */
  int with_grad; /* 0: frozen, no gradient buffers (teacher) */
  uint64_t seed; /* parameter initialisation */
} skd_pspnet_config;

/* depth, classes as given; width 1, dropout 0.1, with_grad 1, seed 1. */
void skd_pspnet_config_default(skd_pspnet_config *cfg, int depth, int classes);

#define SKD_PSPNET_TRAIN 1 /* BN batch statistics + running update, dropout on */
#define SKD_PSPNET_KEEP 2  /* keep activations for skd_pspnet_backward */

typedef struct skd_pspnet_outputs {
  skd_tensor q;     /* (N, classes, H', W') */
  skd_tensor q_dsn; /* (N, classes, H', W') */
  skd_tensor f;     /* (N, Cf, H', W') */
} skd_pspnet_outputs;

typedef struct skd_pspnet {
  skd_context *ctx;
  skd_pspnet_config cfg;
  skd_nn_params params; /* every parameter and buffer, by reference name */
  skd_resnet backbone;
  int feat_ch;          /* Cf: the PSP width */
  int bins[4];
  skd_nn_conv_bn stage[4], bottleneck, head, dsn0, dsn3;
  skd_nn_pool pool;
  /* The last forward: */
  skd_nn_exec exec;
  int kept;
  uint32_t seed_psp, seed_dsn;
  /* Data parallel: the batch's rows [0, dropout_split) are rows dropout_row0..
   * of the global batch, the rest (the unlabeled shard) rows dropout_row0_rest..
   * (0, 0, 0: the batch is the global one). */
  int dropout_row0, dropout_split, dropout_row0_rest;
  skd_tensor x3, x4, pooled[4], stage_y[4], cat, dsn_y;
  skd_pspnet_outputs out;
} skd_pspnet;

/* Builds the network and initialises its parameters from cfg->seed
 * (Kaiming normal fan_out for convs, PyTorch's uniform for conv biases, BN
 * weight 1, bias 0, running mean 0, var 1). */
skd_status skd_pspnet_create(skd_pspnet **out, skd_context *ctx, const skd_pspnet_config *cfg);
void skd_pspnet_free(skd_pspnet *net);

/* H', W' for an H x W image. */
skd_status skd_pspnet_output_shape(const skd_pspnet *net, int h, int w, int *ho, int *wo);

/* image (N, 3, H, W) -> out (tensors from the arena: valid until the
 * caller resets it). flags: SKD_PSPNET_TRAIN | SKD_PSPNET_KEEP. With KEEP
 * the image must stay valid until backward. */
skd_status skd_pspnet_forward(skd_pspnet *net, skd_arena *arena, const skd_tensor *image, int flags,
                              uint32_t seed, skd_pspnet_outputs *out);

/* Backward of the last forward (which must have used SKD_PSPNET_KEEP)
 * from the gradients w.r.t. Q, Q_dsn and F; any may be NULL (zero).
 * Parameter gradients accumulate (skd_nn_params_zero_grad first). */
skd_status skd_pspnet_backward(skd_pspnet *net, const skd_tensor *dq, const skd_tensor *dq_dsn,
                               const skd_tensor *df);

/* The dropout seed of layer `layer` (1: PSP bottleneck, 2: DSN) for a
 * forward seed, as forward derives it. */
uint32_t skd_pspnet_dropout_seed(uint32_t seed, int layer);

#endif
