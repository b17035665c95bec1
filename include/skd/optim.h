/* Optimisers with PyTorch's semantics (torch.optim.SGD, torch.optim.Adam)
 * and the poly learning-rate schedule of the method.
 *
 * SGD:  g = grad + wd * p;  buf = g on the first step of the parameter, else
 *       buf = momentum * buf + (1 - dampening) * g;  g = nesterov ? g + momentum * buf : buf
 *       (momentum == 0: g);  p -= lr * g.
 * Adam: t = step;  g = grad + wd * p (L2, not AdamW);  m = b1 m + (1 - b1) g;
 *       v = b2 v + (1 - b2) g^2;  p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
 *
 * State lives in the skd_param: state1 = momentum buffer / exp_avg, state2 =
 * exp_avg_sq, allocated (and zeroed) on the parameter's first update. SGD's
 * "first step" is per parameter, as in PyTorch (state1 not yet allocated).
 * Adam's step count t is the optimiser's, shared by all parameters: every
 * trainable parameter must be updated at every step (as the trainer does).
 * Parameters without a gradient (grad.mem == NULL: frozen) are skipped. */
#ifndef SKD_OPTIM_H
#define SKD_OPTIM_H

#include <stddef.h>

#include "skd/tensor.h"

typedef enum skd_optim_kind { SKD_OPTIM_SGD, SKD_OPTIM_ADAM } skd_optim_kind;

/* Hyperparameters are doubles, like PyTorch's Python floats: derived values
 * (1 - beta, 1 - dampening, the bias corrections) are formed in double and
 * rounded to float once, as PyTorch does. */
typedef struct skd_optim {
  skd_optim_kind kind;
  double lr;           /* the current learning rate; a schedule may change it between steps */
  double weight_decay; /* L2, added to the gradient */
  /* SGD */
  double momentum;
  double dampening;
  int nesterov;
  /* Adam */
  double beta1;
  double beta2;
  double eps;
  long step;           /* steps begun so far (Adam's t during the step) */
} skd_optim;

/* Fill o; EINVAL for hyperparameters PyTorch rejects (negative lr,
 * momentum, weight decay; nesterov without momentum or with dampening;
 * betas outside [0, 1); negative eps). */
skd_status skd_optim_sgd_init(skd_optim *o, double lr, double momentum, double dampening, double weight_decay,
                              int nesterov);
skd_status skd_optim_adam_init(skd_optim *o, double lr, double beta1, double beta2, double eps,
                               double weight_decay);

/* Starts a step: o->step += 1. */
void skd_optim_begin_step(skd_optim *o);
/* Updates one parameter for the current step (after skd_optim_begin_step). */
skd_status skd_optim_update(skd_context *ctx, const skd_optim *o, skd_param *p);
/* skd_optim_begin_step, then skd_optim_update of params[0 .. count). */
skd_status skd_optim_step(skd_context *ctx, skd_optim *o, skd_param *const *params, int count);

/* The poly schedule: base_lr * (1 - it / max_it)^power, it clamped to [0, max_it]. */
double skd_poly_lr(double base_lr, long it, long max_it, double power);

/* Plain-C references of one update of n values; first: the parameter's
 * first SGD step (buf = g); step: Adam's t (>= 1). */
void skd_ref_sgd_update(float *p, const float *grad, float *buf, size_t n, double lr, double momentum,
                        double dampening, double weight_decay, int nesterov, int first);
void skd_ref_adam_update(float *p, const float *grad, float *m, float *v, size_t n, double lr, double beta1,
                         double beta2, double eps, double weight_decay, long step);

#endif
