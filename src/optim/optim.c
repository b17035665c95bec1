/* Optimiser steps, state allocation and the poly learning-rate schedule. */
#include <math.h>
#include <stdio.h>

#include "optim/optim_private.h"

skd_status optim_state_ensure(skd_context *ctx, const skd_param *p, skd_tensor *state, int *created) {
  *created = 0;
  if (state->mem) {
    char what[160];
    snprintf(what, sizeof what, "optimiser: state of %s", p->name);
    return skd_tensor_expect_same(state, &p->value, what);
  }
  const skd_tensor *v = &p->value;
  skd_status st = skd_tensor_alloc(ctx, state, v->n, v->c, v->h, v->w);
  if (st == SKD_OK) st = skd_tensor_fill(ctx, state, 0.0f);
  if (st != SKD_OK) {
    skd_tensor_release(state);
    return st;
  }
  *created = 1;
  return SKD_OK;
}

void skd_optim_begin_step(skd_optim *o) { o->step++; }

skd_status skd_optim_update(skd_context *ctx, const skd_optim *o, skd_param *p) {
  if (!p->grad.mem) return SKD_OK; /* frozen */
  char what[160];
  snprintf(what, sizeof what, "optimiser: gradient of %s", p->name);
  skd_status st = skd_tensor_expect_same(&p->grad, &p->value, what);
  if (st != SKD_OK) return st;
  if (o->step < 1)
    return skd_error(SKD_EINVAL, "optimiser: update of %s before skd_optim_begin_step (step %ld)", p->name, o->step);
  if (o->kind == SKD_OPTIM_SGD) return sgd_update(ctx, o, p);
  if (o->kind == SKD_OPTIM_ADAM) return adam_update(ctx, o, p);
  return skd_error(SKD_EINVAL, "optimiser: unknown kind %d", (int)o->kind);
}

skd_status skd_optim_step(skd_context *ctx, skd_optim *o, skd_param *const *params, int count) {
  skd_optim_begin_step(o);
  for (int i = 0; i < count; i++) {
    skd_status st = skd_optim_update(ctx, o, params[i]);
    if (st != SKD_OK) return st;
  }
  return SKD_OK;
}

double skd_poly_lr(double base_lr, long it, long max_it, double power) {
  if (max_it <= 0) return base_lr;
  if (it < 0) it = 0;
  if (it > max_it) it = max_it;
  return base_lr * pow(1.0 - (double)it / (double)max_it, power);
}
