/* SGD with momentum, dampening, Nesterov and L2 weight decay (torch.optim.SGD). */
#include "optim/optim_private.h"

skd_status skd_optim_sgd_init(skd_optim *o, double lr, double momentum, double dampening, double weight_decay,
                              int nesterov) {
  if (!(lr >= 0.0) || !(momentum >= 0.0) || !(weight_decay >= 0.0))
    return skd_error(SKD_EINVAL, "sgd: lr (%g), momentum (%g) and weight_decay (%g) must be >= 0", lr, momentum,
                     weight_decay);
  if (nesterov && (momentum <= 0.0 || dampening != 0.0))
    return skd_error(SKD_EINVAL, "sgd: nesterov needs momentum > 0 (%g) and dampening == 0 (%g)", momentum,
                     dampening);
  skd_optim z = {0};
  *o = z;
  o->kind = SKD_OPTIM_SGD;
  o->lr = lr;
  o->momentum = momentum;
  o->dampening = dampening;
  o->weight_decay = weight_decay;
  o->nesterov = nesterov != 0;
  return SKD_OK;
}

skd_status sgd_update(skd_context *ctx, const skd_optim *o, skd_param *p) {
  int first = 0;
  skd_status st = SKD_OK;
  /* Without momentum PyTorch keeps no buffer, and neither do we. */
  if (o->momentum != 0.0) st = optim_state_ensure(ctx, p, &p->state1, &first);
  skd_kernel *k;
  if (st == SKD_OK) st = skd_kernel_get(ctx, "optim", "sgd_update", &k);
  if (st != SKD_OK) return st;
  int n = (int)skd_tensor_numel(&p->value);
  skd_args a = skd_args_begin(k);
  skd_arg_int(&a, n);
  skd_arg_float(&a, (float)o->lr);
  skd_arg_float(&a, (float)o->momentum);
  skd_arg_float(&a, (float)(1.0 - o->dampening));
  skd_arg_float(&a, (float)o->weight_decay);
  skd_arg_int(&a, o->nesterov);
  skd_arg_int(&a, first);
  skd_arg_tensor(&a, &p->value);
  skd_arg_tensor(&a, &p->grad);
  /* The kernel never touches buf without momentum: any buffer will do. */
  skd_arg_tensor(&a, o->momentum != 0.0 ? &p->state1 : &p->value);
  return skd_launch_1d(ctx, &a, (size_t)n, 256);
}
