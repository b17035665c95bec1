/* conv (+ bias) (+ BatchNorm2d (+ fused ReLU / LeakyReLU)): the unit every
 * network here is built from (see skd/nn/module.h).
 *
 * Memory: with e->keep the conv output z goes to the arena (BN backward
 * needs it) and the BN writes y (its sign is the activation's mask);
 * without, the BN runs in place on y, so an eval pass costs one tensor per
 * unit. */
#include <math.h>
#include <string.h>

#include "skd/nn/module.h"

int skd_nn_scale_channels(int c, double width) {
  int v = (int)floor((double)c * width + 0.5);
  return v < 1 ? 1 : v;
}

skd_status skd_nn_conv_bn_init(skd_nn_conv_bn *u, skd_nn_params *r, const char *conv_name, const char *bn_name,
                               int cin, int cout, int k, int stride, int pad, int dilation, int with_bias,
                               skd_bn_act act, float slope) {
  memset(u, 0, sizeof *u);
  u->conv = skd_conv2d_params_make(k, stride, pad, dilation);
  u->cin = cin;
  u->cout = cout;
  u->act = act;
  u->slope = slope;
  skd_status st = skd_nn_params_add_conv(r, &u->weight, with_bias ? &u->bias : NULL, conv_name, cin, cout, k);
  if (st == SKD_OK && bn_name) st = skd_nn_params_add_bn(r, &u->gamma, &u->beta, &u->rmean, &u->rvar, bn_name, cout);
  return st;
}

skd_status skd_nn_conv_bn_out_shape(const skd_nn_conv_bn *u, int h, int w, int *ho, int *wo) {
  return skd_conv2d_output_shape(&u->conv, h, w, ho, wo);
}

static const skd_tensor *grad_of(const skd_param *p) { return p && p->grad.mem ? &p->grad : NULL; }

skd_status skd_nn_conv_bn_forward(skd_nn_exec *e, skd_nn_conv_bn *u, const skd_tensor *x, const skd_tensor *y) {
  int ho, wo;
  skd_status st = skd_conv2d_output_shape(&u->conv, x->h, x->w, &ho, &wo);
  if (st == SKD_OK) st = skd_tensor_expect(y, x->n, u->cout, ho, wo, "conv_bn forward: y");
  if (st != SKD_OK) return st;
  const skd_tensor *bias = u->bias ? &u->bias->value : NULL;
  u->x = *x;
  u->y = *y;
  u->training = e->training;
  u->kept = e->keep;
  if (!u->gamma) return skd_conv2d_forward(e->ctx, &u->conv, x, &u->weight->value, bias, y);

  skd_tensor z = *y, smean = {0}, sinvstd = {0};
  const int pooled_stats = !e->keep && e->training;
  if (e->keep) {
    st = skd_arena_tensor(e->arena, &z, x->n, u->cout, ho, wo);
    if (st == SKD_OK) st = skd_arena_tensor(e->arena, &smean, 1, u->cout, 1, 1);
    if (st == SKD_OK) st = skd_arena_tensor(e->arena, &sinvstd, 1, u->cout, 1, 1);
  } else if (pooled_stats) {
    /* Training statistics are required by the op even when nobody reads them. */
    st = skd_nn_exec_tmp(e, &smean, 2, u->cout, 1, 1);
    sinvstd = skd_tensor_view(smean.mem, smean.offset + (size_t)u->cout, 1, u->cout, 1, 1);
    smean.n = 1;
  }
  if (st == SKD_OK) st = skd_conv2d_forward(e->ctx, &u->conv, x, &u->weight->value, bias, &z);
  const int have_stats = e->keep || pooled_stats;
  if (st == SKD_OK)
    st = skd_batchnorm_forward(e->ctx, e->training, &z, &u->gamma->value, &u->beta->value, &u->rmean->value,
                               &u->rvar->value, have_stats ? &smean : NULL, have_stats ? &sinvstd : NULL, y,
                               SKD_BN_EPS, SKD_BN_MOMENTUM, u->act, u->slope);
  if (pooled_stats) skd_nn_exec_drop(e, &smean);
  u->z = z;
  u->save_mean = smean;
  u->save_invstd = sinvstd;
  return st;
}

static skd_status conv_bn_backward(skd_nn_exec *e, skd_nn_conv_bn *u, const skd_tensor *dy, const skd_tensor *dx) {
  const skd_tensor *dw = grad_of(u->weight), *db = grad_of(u->bias);
  if (!u->gamma) return skd_conv2d_backward(e->ctx, &u->conv, &u->x, &u->weight->value, dy, dx, dw, db);
  const skd_tensor *dgamma = grad_of(u->gamma), *dbeta = grad_of(u->beta);
  if (!dx && !dw && !db && !dgamma && !dbeta) return SKD_OK;
  if (!u->kept)
    return skd_error(SKD_EINVAL, "conv_bn backward: the forward pass did not keep its activations");
  skd_status st = skd_tensor_expect_same(dy, &u->z, "conv_bn backward: dy");
  if (st != SKD_OK) return st;
  if (!dx && !dw && !db) /* only the BN's own parameters want a gradient */
    return skd_batchnorm_backward(e->ctx, u->training, &u->z, u->act != SKD_BN_ACT_NONE ? &u->y : NULL,
                                  &u->gamma->value, &u->save_mean, &u->save_invstd, dy, NULL, dgamma, dbeta,
                                  u->act, u->slope);
  skd_tensor dz;
  st = skd_nn_pool_get_zero(e->pool, &dz, u->z.n, u->z.c, u->z.h, u->z.w);
  if (st != SKD_OK) return st;
  st = skd_batchnorm_backward(e->ctx, u->training, &u->z, u->act != SKD_BN_ACT_NONE ? &u->y : NULL,
                              &u->gamma->value, &u->save_mean, &u->save_invstd, dy, &dz, dgamma, dbeta, u->act,
                              u->slope);
  if (st == SKD_OK) st = skd_conv2d_backward(e->ctx, &u->conv, &u->x, &u->weight->value, &dz, dx, dw, db);
  skd_nn_exec_drop(e, &dz);
  return st;
}

/* The unit's gradients are final once its backward is queued: tells the
 * exec's hook which ones. */
skd_status skd_nn_conv_bn_backward(skd_nn_exec *e, skd_nn_conv_bn *u, const skd_tensor *dy, const skd_tensor *dx) {
  skd_status st = conv_bn_backward(e, u, dy, dx);
  if (st != SKD_OK || !e->grads_ready) return st;
  skd_param *all[4] = {u->weight, u->bias, u->gamma, u->beta}, *with_grad[4];
  int n = 0;
  for (int i = 0; i < 4; i++)
    if (grad_of(all[i])) with_grad[n++] = all[i];
  return n ? e->grads_ready(e->grads_user, with_grad, n) : SKD_OK;
}
