/* The holistic loss's discriminator (METHOD.md section 4): a SAGAN-style
 * critic that scores segmentation maps.
 *
 *   input   logits Q (N, C, H', W'), or with conditional = 1 (the paper's
 *           cvpr_19 variant) concat(softmax_c(Q), image resized to H' x W'
 *           with bilinear align_corners) = C + 3 channels
 *   pre     mode 1 BatchNorm2d (train mode, affine; the reference default),
 *           mode 2 tanh, mode 3 2 (x / 255 - 0.5)
 *   l1..l4  spectral-normalised Conv(4x4, stride 2, pad 1) + LeakyReLU(0.1),
 *           d, 2d, 4d, 8d channels; attn1 (4d) after l3, attn2 (8d) after l4
 *   last    Conv(8d -> 1, kernel kh x kw, no padding, with bias, no SN)
 *   score   per sample, the mean over the last conv's output positions
 *
 * Depth rule (skd's, for maps smaller than the reference's 64 x 64): all
 * layers are kept. A 4x4 / s2 / p1 convolution maps s -> floor(s / 2), so
 * after l4 the map is h4 = floor(H' / 16) x w4 = floor(W' / 16), and
 * min(H', W') >= 16 is required (else SKD_EINVAL). The last kernel is
 * kh x kw = min(4, h4) x min(4, w4), fixed when the discriminator is created
 * for its logit size: 64 x 64 gives the reference's 4x4 kernel and a 1 x 1
 * score map, 16 x 16 a 1x1 kernel on a 1 x 1 map. A larger input (e.g.
 * 80 x 80: h4 = 5 -> a 2 x 2 score map) is allowed, and its score is the
 * mean over the positions, which is what the reference's losses compute.
 *
 * Spectral norm (the authors' SpectralNorm, = torch.nn.utils.spectral_norm):
 * weight_bar W, vectors u (out) and v (in * kh * kw) without gradient; per
 * forward v = l2n(W^T u), u = l2n(W v), sigma = u . W v, the conv uses
 * W / sigma, and the backward treats u, v as constants.
 *
 * Forward modes:
 *   SKD_DISC_TRAIN  what every call of the reference's D does (it is always
 *                   in train mode): one power iteration (u, v advance), BN
 *                   batch statistics with the running statistics updated.
 *   SKD_DISC_HOLD   the same function of the input with the state held:
 *                   u, v and the BN running statistics are not changed. Used
 *                   for the extra forwards of the gradient penalty's
 *                   Hessian-vector product (loss/holistic.h), which must not
 *                   advance the state. Given a `hold_from` record (a forward
 *                   of the same shapes), it reuses that record's W / sigma
 *                   and LeakyReLU masks (sign of its activations): the
 *                   piecewise-linear parts then stay on the same piece, so a
 *                   central difference converges to the exact second
 *                   derivative (autograd's, for which LeakyReLU'' = 0).
 *
 * Activations come from the caller's arena (valid until it is reset); a
 * record keeps what its backward pass needs, including the u, v and sigma
 * the forward used, so several forwards may run before their backwards.
 *
 * Parameter names are the authors' (networks/sagan_models.py with their
 * SpectralNorm wrapper): l1.0.module.weight_bar, l1.0.module.bias,
 * l1.0.module.weight_u, l1.0.module.weight_v, ... l4.*, last.0.weight,
 * last.0.bias, attn1.* / attn2.* (nn/attention.h), preprocess_additional.
 * {weight, bias, running_mean, running_var} (mode 1 only; BN's
 * num_batches_tracked is not kept: momentum is fixed at 0.1). */
#ifndef SKD_NN_DISCRIMINATOR_H
#define SKD_NN_DISCRIMINATOR_H

#include <stdint.h>

#include "skd/nn/attention.h"
#include "skd/tensor.h"

#define SKD_DISC_SLOPE 0.1f   /* LeakyReLU */
#define SKD_DISC_MIN_MAP 16   /* min(H', W') */
#define SKD_DISC_MAX_STATE 40 /* named tensors of one discriminator */

typedef enum skd_disc_preprocess {
  SKD_DISC_PRE_BN = 1,   /* BatchNorm2d(in channels), train mode (the reference default) */
  SKD_DISC_PRE_TANH = 2,
  SKD_DISC_PRE_SCALE = 3 /* 2 (x / 255 - 0.5) */
} skd_disc_preprocess;

typedef struct skd_disc_config {
  int classes;  /* C, channels of the logits */
  int conv_dim; /* d (the reference: 64) */
  int map_h, map_w; /* the logit size H' x W' it is built for (sets the last kernel) */
  skd_disc_preprocess preprocess;
  int conditional; /* 0: logits only (reference code); 1: with the image (paper) */
} skd_disc_config;

/* d = 64, BN preprocessing, unconditional. */
void skd_disc_config_default(skd_disc_config *cfg, int classes, int map_h, int map_w);

typedef struct skd_disc_geometry {
  int in_channels;  /* C or C + 3 */
  int h[5], w[5];   /* h[0] = H', h[i] after l_i */
  int kh, kw;       /* the last kernel */
  int out_h, out_w; /* the last conv's output */
} skd_disc_geometry;

/* The depth rule for an H' x W' map with the last kernel chosen for it.
 * SKD_EINVAL with "holistic loss needs logit maps of at least 16x16 ..."
 * when min(H', W') < 16. */
skd_status skd_disc_geometry_of(const skd_disc_config *cfg, int map_h, int map_w, skd_disc_geometry *out);

typedef struct skd_disc_sn_conv {
  skd_param weight; /* weight_bar (out, in, 4, 4) */
  skd_param bias;   /* (1, out, 1, 1) */
  skd_param u, v;   /* (1, 1, 1, out), (1, 1, 1, in * 16); no gradient */
} skd_disc_sn_conv;

typedef struct skd_disc {
  skd_disc_config cfg;
  skd_disc_geometry geom; /* of cfg's map size */
  skd_param bn_weight, bn_bias, bn_running_mean, bn_running_var; /* mode 1 */
  skd_disc_sn_conv conv[4];
  skd_attention attn1, attn2;
  skd_param last_weight, last_bias;
  skd_param *state[SKD_DISC_MAX_STATE]; /* every named tensor, the reference's state_dict order */
  int nstate;
} skd_disc;

/* Allocates and initialises as PyTorch would (seeded): conv weights and
 * biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)), u and v unit N(0, 1) vectors,
 * gammas 0, BN weight 1, bias 0, running mean 0, var 1. Gradients zeroed. */
skd_status skd_disc_create(skd_context *ctx, const skd_disc_config *cfg, uint64_t seed, skd_disc **out);
void skd_disc_free(skd_disc *d);

/* The tensor called `name` (NULL if none). */
skd_param *skd_disc_find(skd_disc *d, const char *name);
/* Zeroes every gradient. */
skd_status skd_disc_zero_grad(skd_context *ctx, skd_disc *d);

typedef enum skd_disc_mode { SKD_DISC_TRAIN = 0, SKD_DISC_HOLD = 1 } skd_disc_mode;

typedef struct skd_disc_record {
  skd_disc_geometry geom;
  int n;
  skd_tensor logits, image;       /* the inputs (views) */
  skd_tensor probs, image_r, cat; /* conditional only */
  skd_tensor in;                  /* logits, or cat */
  skd_tensor pre;                 /* preprocessed input */
  skd_tensor bn_mean, bn_invstd;  /* mode 1 */
  skd_tensor act[4];              /* l_i output after the LeakyReLU */
  skd_tensor mask[4];             /* whose sign selects the LeakyReLU slope */
  skd_tensor w_sn[4], sigma[4], u[4], v[4];
  skd_attention_record attn1, attn2;
  skd_tensor z;     /* (N, 1, out_h, out_w) */
  skd_tensor score; /* (N, 1, 1, 1) */
} skd_disc_record;

/* logits: (N, C, H', W') with a size the last kernel fits (see above).
 * image: (N, 3, Hi, Wi) when conditional, else NULL. hold_from: NULL, or
 * (mode SKD_DISC_HOLD only) a record of the same shapes whose weights and
 * masks to reuse. Inputs must stay unchanged until the backward pass. */
skd_status skd_disc_forward(skd_context *ctx, skd_disc *d, skd_arena *arena, skd_disc_mode mode,
                            const skd_disc_record *hold_from, const skd_tensor *logits, const skd_tensor *image,
                            skd_disc_record *rec);

/* dscore: (N, 1, 1, 1) on the device. dlogits: NULL or accumulated into
 * (the image gets no gradient). param_grads != 0: every trainable
 * parameter's grad is accumulated into; 0: none is touched (the G pass). */
skd_status skd_disc_backward(skd_context *ctx, skd_disc *d, skd_arena *arena, const skd_disc_record *rec,
                             const skd_tensor *dscore, const skd_tensor *dlogits, int param_grads);

#endif
