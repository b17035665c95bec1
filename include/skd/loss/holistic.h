/* Holistic (adversarial) distillation loss, METHOD.md section 4: the
 * discriminator D (nn/discriminator.h) scores teacher logits Q_T as real and
 * student logits Q_S as fake. D(x)_n is sample n's score.
 *
 * D step, "wgan-gp" (the reference default):
 *   L_D = lambda_d (mean D(Q_S) - mean D(Q_T))
 *       + lambda_d lambda_gp mean_n (||grad_x S(x_hat)_n||_2 - 1)^2
 *   with x_hat = e_n Q_T + (1 - e_n) Q_S (one e per sample, supplied by the
 *   caller: skd_holistic_mix_draw), S(x) = sum_n D(x)_n (what autograd.grad
 *   with grad_outputs = ones differentiates: with BatchNorm preprocessing the
 *   samples are coupled through the batch statistics, and so are they here),
 *   and Q_S, Q_T detached.
 * D step, "hinge":
 *   L_D = lambda_d (mean relu(1 - D(Q_T)) + mean relu(1 + D(Q_S))).
 * G term (the student's): L_ho = -mean D(Q_S); only Q_S gets a gradient.
 *
 * The penalty's parameter gradient. With g = grad_x S(x_hat) and v = dGP/dg
 * held constant, dGP/dtheta = d/dtheta [v . grad_x S(x_hat)], the
 * Hessian-vector product grad_theta of the directional derivative of S
 * along v. It is computed by central differences of first-order gradients:
 *   (grad_theta S(x_hat + eps v) - grad_theta S(x_hat - eps v)) / (2 eps)
 * with eps = c ||x_hat|| / ||v|| (norms over the whole batch, ||x_hat||
 * floored at 1e-3 sqrt(numel)), i.e. the perturbation is c times the input's
 * size; c = cfg->hvp_step. The two extra forwards run in SKD_DISC_HOLD mode
 * on the x_hat forward's record: u, v and the BN running statistics do not
 * advance (the reference runs no forward there: it differentiates the graph
 * twice), the spectral-normalised weights are the x_hat forward's, and the
 * LeakyReLU masks are x_hat's, so the difference quotient has no kink error
 * and converges to the double-backward value (autograd's, which treats the
 * LeakyReLU's derivative as piecewise constant) with O(eps^2) truncation.
 * Measured against PyTorch's double backward (tests/test_loss_holistic.c,
 * float32 device, float64 PyTorch), see SKD_HOLISTIC_HVP_STEP below.
 *
 * State: the D step runs D on Q_T, Q_S and x_hat in SKD_DISC_TRAIN mode, in
 * this order, as the reference does (three power iterations, three BN
 * running-statistics updates); the G term runs one more. */
#ifndef SKD_LOSS_HOLISTIC_H
#define SKD_LOSS_HOLISTIC_H

#include <stdint.h>

#include "skd/nn/discriminator.h"
#include "skd/ops/batchnorm.h" /* skd_bn_sync */
#include "skd/tensor.h"
#include "skd/train_config.h" /* skd_adv_type: SKD_ADV_WGAN_GP, SKD_ADV_HINGE */

/* The relative central-difference step c. Measured against PyTorch's
 * double backward (float64) on the test discriminator (d = 2, 16x32 maps,
 * N = 2, PoCL): the worst per-tensor relative error of the penalty's
 * parameter gradient (tensors whose gradient is below 1e-3 of the largest
 * measured at that floor) is 1.4e-1 at c = 3e-2, 1.5e-2 at 1e-2, 1.4e-3 at
 * 3e-3, 1.1e-3 at 2e-3 (6.2e-4 leaving out the gradients that are exactly
 * 0), 4.4e-3 at 1e-3, 8.8e-3 at 3e-4, 3.5e-2 at 1e-4: truncation ~ c^2
 * above, rounding ~ 1/c below. Without the frozen LeakyReLU masks the
 * relative error was 80 to 400 at every c (kinks crossed inside the step). */
#define SKD_HOLISTIC_HVP_STEP 2e-3f

typedef struct skd_holistic_config {
  skd_adv_type type; /* wgan-gp (default) or hinge */
  float lambda_d;    /* 0.1 */
  float lambda_gp;   /* 10 */
  float hvp_step;    /* c above, SKD_HOLISTIC_HVP_STEP */
} skd_holistic_config;

void skd_holistic_config_default(skd_holistic_config *cfg);

/* Entries of the D step's terms tensor (1, 4, 1, 1). */
enum {
  SKD_HOLISTIC_TERM_LOSS = 0,    /* L_D */
  SKD_HOLISTIC_TERM_REAL = 1,    /* mean D(Q_T) */
  SKD_HOLISTIC_TERM_FAKE = 2,    /* mean D(Q_S) */
  SKD_HOLISTIC_TERM_PENALTY = 3, /* mean_n (||g_n|| - 1)^2, without lambdas (0 for hinge) */
  SKD_HOLISTIC_TERMS = 4
};

/* One e ~ U[0, 1) per sample from (seed, step): a splitmix64 stream, the
 * same on every platform. */
void skd_holistic_mix_draw(uint64_t seed, uint64_t step, int n, float *out);

/* The D step. D's gradients are ZEROED first and then hold dL_D/dtheta
 * (gradients left from a G pass can never leak in). q_s, q_t: (N, C, H', W')
 * (detached: never written); image: (N, 3, Hi, Wi) for a conditional D, else
 * NULL; mix: (N, 1, 1, 1) e per sample (read for wgan-gp only; may be NULL
 * for hinge); terms: (1, 4, 1, 1), written on the device (no host sync).
 * Intermediates come from the arena (the caller resets it). */
skd_status skd_holistic_d_step(skd_context *ctx, const skd_holistic_config *cfg, skd_disc *d, skd_arena *arena,
                               const skd_tensor *q_s, const skd_tensor *q_t, const skd_tensor *image,
                               const skd_tensor *mix, const skd_tensor *terms);

/* The penalty alone (a building block of the D step): runs D on x_hat
 * (TRAIN), writes penalty (1 element, without lambdas) and, if given,
 * gnorm (N values: ||g_n||), and ACCUMULATES lambda_d lambda_gp dGP/dtheta
 * into D's gradients. */
/* Data parallel: while a hook is set for ctx (this thread), the penalty's
 * finite-difference step is taken from the norms of every rank's samples
 * (gathered in rank order), as one process over the whole batch takes it,
 * and the difference weights are scaled by the rank count (the caller
 * averages gradients over ranks). NULL: off. */
void skd_holistic_set_sync(skd_context *ctx, const skd_bn_sync *sync);

skd_status skd_holistic_penalty(skd_context *ctx, const skd_holistic_config *cfg, skd_disc *d, skd_arena *arena,
                                const skd_tensor *q_s, const skd_tensor *q_t, const skd_tensor *image,
                                const skd_tensor *mix, const skd_tensor *penalty, const skd_tensor *gnorm);

/* The G term: loss (1 element) = L_ho = -mean D(Q_S) (without lambda_d);
 * dq_s += lambda_d dL_ho/dQ_S (NULL: value only). D's gradients are not
 * touched. */
skd_status skd_holistic_g_loss(skd_context *ctx, const skd_holistic_config *cfg, skd_disc *d, skd_arena *arena,
                               const skd_tensor *q_s, const skd_tensor *image, const skd_tensor *dq_s,
                               const skd_tensor *loss);

#endif
