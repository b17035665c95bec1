/* Adam with L2 weight decay added to the gradient (torch.optim.Adam, not AdamW). */
#include <math.h>

#include "optim/optim_private.h"

skd_status skd_optim_adam_init(skd_optim *o, double lr, double beta1, double beta2, double eps,
                               double weight_decay) {
  if (!(lr >= 0.0) || !(eps >= 0.0) || !(weight_decay >= 0.0))
    return skd_error(SKD_EINVAL, "adam: lr (%g), eps (%g) and weight_decay (%g) must be >= 0", lr, eps,
                     weight_decay);
  if (!(beta1 >= 0.0 && beta1 < 1.0) || !(beta2 >= 0.0 && beta2 < 1.0))
    return skd_error(SKD_EINVAL, "adam: betas (%g, %g) must be in [0, 1)", beta1, beta2);
  skd_optim z = {0};
  *o = z;
  o->kind = SKD_OPTIM_ADAM;
  o->lr = lr;
  o->beta1 = beta1;
  o->beta2 = beta2;
  o->eps = eps;
  o->weight_decay = weight_decay;
  return SKD_OK;
}

skd_status adam_update(skd_context *ctx, const skd_optim *o, skd_param *p) {
  int created;
  skd_status st = optim_state_ensure(ctx, p, &p->state1, &created);
  if (st == SKD_OK) st = optim_state_ensure(ctx, p, &p->state2, &created);
  skd_kernel *k;
  if (st == SKD_OK) st = skd_kernel_get(ctx, "optim", "adam_update", &k);
  if (st != SKD_OK) return st;
  /* Bias corrections in double, as PyTorch computes them in Python. */
  double t = (double)o->step;
  double step_size = o->lr / (1.0 - pow(o->beta1, t));
  double bc2_sqrt = sqrt(1.0 - pow(o->beta2, t));
  int n = (int)skd_tensor_numel(&p->value);
  skd_args a = skd_args_begin(k);
  skd_arg_int(&a, n);
  skd_arg_float(&a, (float)o->beta1);
  skd_arg_float(&a, (float)(1.0 - o->beta1));
  skd_arg_float(&a, (float)o->beta2);
  skd_arg_float(&a, (float)(1.0 - o->beta2));
  skd_arg_float(&a, (float)o->eps);
  skd_arg_float(&a, (float)o->weight_decay);
  skd_arg_float(&a, (float)step_size);
  skd_arg_float(&a, (float)bc2_sqrt);
  skd_arg_tensor(&a, &p->value);
  skd_arg_tensor(&a, &p->grad);
  skd_arg_tensor(&a, &p->state1);
  skd_arg_tensor(&a, &p->state2);
  return skd_launch_1d(ctx, &a, (size_t)n, 256);
}
