/* Pieces shared by the networks (resnet.h, pspnet.h):
 *
 * - skd_nn_params: the parameter registry. Every parameter and buffer of a
 *   network has its PyTorch state_dict name and shape; values live in one
 *   device buffer and gradients in another (so zeroing every gradient is one
 *   fill), each skd_param being a view that holds its own reference on the
 *   buffer. Seeded initialisation, and load/save of safetensors checkpoints
 *   with the reference code's names.
 * - skd_nn_pool: scratch tensors with explicit lifetimes (get/put) for what
 *   backward does not need: eval-mode activations, gradients of activations,
 *   short-lived temporaries. Slots are device buffers that grow to the
 *   largest request they serve, so after the first step of a given shape no
 *   buffer is created.
 * - skd_nn_exec: where a forward pass puts its tensors: with `keep`, what
 *   backward needs goes to the caller's arena; without, to the pool.
 * - skd_nn_conv_bn: conv (+ bias) (+ BatchNorm2d (+ fused ReLU/LeakyReLU)),
 *   the building block of every network here.
 *
 * Shapes follow PyTorch: conv weight (Cout, Cin, k, k); BN weight, bias,
 * running_mean, running_var and conv bias (C,) in files, (1, C, 1, 1) on the
 * device. Backward passes accumulate into parameter gradients (grad += ...):
 * call skd_nn_params_zero_grad before each step. */
#ifndef SKD_NN_MODULE_H
#define SKD_NN_MODULE_H

#include <stddef.h>
#include <stdint.h>

#include "skd/io/safetensors.h"
#include "skd/ops/batchnorm.h"
#include "skd/ops/conv2d.h"
#include "skd/tensor.h"

/* ---- the parameter registry ---- */

typedef enum skd_nn_init {
  SKD_NN_INIT_KAIMING_OUT, /* N(0, 2 / fan_out), fan_out = Cout * kh * kw (torchvision's convs) */
  SKD_NN_INIT_CONV_BIAS,   /* U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = Cin * kh * kw (nn.Conv2d's) */
  SKD_NN_INIT_ONES,        /* BN weight, running_var */
  SKD_NN_INIT_ZEROS        /* BN bias, running_mean */
} skd_nn_init;

typedef struct skd_nn_entry {
  skd_param param;     /* name, value (1, C, 1, 1) or 4-D, grad when trainable */
  int ndim;            /* PyTorch's shape: 4 (conv weight) or 1 (vectors) */
  int64_t shape[4];
  int is_buffer;       /* running statistics: saved and loaded, never trained */
  int replaceable;     /* a final classifier conv: may be missing or re-sized on load */
  skd_nn_init init;
  int fan;             /* fan_out (KAIMING_OUT) or fan_in (CONV_BIAS) */
} skd_nn_entry;

typedef struct skd_nn_params {
  skd_context *ctx;
  int with_grad;           /* 0: frozen (no gradient buffers at all) */
  int count, cap;
  skd_nn_entry **entries;  /* registration order; pointers stay valid */
  skd_param **trainable;   /* the parameters with gradients, for the optimiser */
  int ntrainable;
  cl_mem values, grads;    /* the shared buffers (after finalize) */
  size_t value_floats, grad_floats;
  int finalized;
} skd_nn_params;

void skd_nn_params_init(skd_nn_params *r, skd_context *ctx, int with_grad);
void skd_nn_params_free(skd_nn_params *r);

/* Declares tensors (host side only; finalize allocates). The returned
 * pointers stay valid until skd_nn_params_free. Names must be unique. */
skd_status skd_nn_params_add_conv(skd_nn_params *r, skd_param **weight, skd_param **bias, const char *prefix,
                                  int cin, int cout, int k);
/* "<prefix>.weight", ".bias", ".running_mean", ".running_var". */
skd_status skd_nn_params_add_bn(skd_nn_params *r, skd_param **gamma, skd_param **beta, skd_param **running_mean,
                                skd_param **running_var, const char *prefix, int c);
/* Marks the tensors whose name starts with prefix as replaceable on load. */
void skd_nn_params_mark_replaceable(skd_nn_params *r, const char *prefix);

/* Allocates the value and gradient buffers and points every parameter at
 * its part; gradients start at zero, values are undefined until
 * skd_nn_params_init_values or a load. */
skd_status skd_nn_params_finalize(skd_nn_params *r);

/* Initialises every tensor by its rule. Each tensor's values depend only on
 * (seed, its name), not on the order of registration. */
skd_status skd_nn_params_init_values(skd_nn_params *r, uint64_t seed);

/* grad = 0 for every trainable parameter (one fill). */
skd_status skd_nn_params_zero_grad(skd_nn_params *r);

/* The entry called name, or NULL. */
skd_nn_entry *skd_nn_params_find(const skd_nn_params *r, const char *name);
/* Number of values of all tensors (parameters and buffers) / of trainable parameters. */
size_t skd_nn_params_numel(const skd_nn_params *r, int trainable_only);

/* Adds every tensor, named prefix + name (prefix may be NULL), with its
 * PyTorch shape to a writer (values are downloaded). */
skd_status skd_nn_params_write(skd_nn_params *r, skd_safetensors_writer *w, const char *prefix);
/* A checkpoint of this registry alone at path (atomic). */
skd_status skd_nn_params_save(skd_nn_params *r, const char *path);
/* Every value finite and every batch-norm variance non-negative
 * (skd_values_check; `what` starts the message). One download of all values. */
skd_status skd_nn_params_check_values(skd_nn_params *r, const char *what);

/* Loading. Keys ending in ".num_batches_tracked" are ignored. Every file
 * tensor under prefix must match a registry tensor of the same shape, and
 * every registry tensor must be present, except that with
 * SKD_NN_LOAD_KEEP_REPLACEABLE the replaceable ones (a classifier for
 * another class count) may be missing or of another shape: they keep their
 * current values. On any mismatch nothing is changed and the error
 * (SKD_EFORMAT) lists every missing, unexpected and mis-shaped tensor. */
#define SKD_NN_LOAD_KEEP_REPLACEABLE 1
/* Skips the trainer's state in its checkpoints ("optim.*", "disc.*"). */
#define SKD_NN_LOAD_NETWORK_ONLY 2
skd_status skd_nn_params_read(skd_nn_params *r, skd_safetensors *f, const char *prefix, int flags);
skd_status skd_nn_params_load(skd_nn_params *r, const char *path, int flags);

/* ---- scratch pool ---- */

#define SKD_NN_POOL_SLOTS 24

typedef struct skd_nn_pool {
  skd_context *ctx;
  cl_mem mem[SKD_NN_POOL_SLOTS];
  size_t cap[SKD_NN_POOL_SLOTS]; /* floats */
  int used[SKD_NN_POOL_SLOTS];
  unsigned long creations;       /* buffers created so far (steady state: constant) */
  size_t peak_in_use;            /* floats */
} skd_nn_pool;

void skd_nn_pool_init(skd_nn_pool *p, skd_context *ctx);
void skd_nn_pool_release(skd_nn_pool *p);
/* A free slot's buffer as a tensor of that shape (contents undefined). */
skd_status skd_nn_pool_get(skd_nn_pool *p, skd_tensor *t, int n, int c, int h, int w);
/* The same, zero-filled (for gradients that ops accumulate into). */
skd_status skd_nn_pool_get_zero(skd_nn_pool *p, skd_tensor *t, int n, int c, int h, int w);
/* Returns t's slot; a tensor not from the pool (arena, caller) is ignored. */
void skd_nn_pool_put(skd_nn_pool *p, const skd_tensor *t);
/* Marks every slot free (start of a pass). */
void skd_nn_pool_reset(skd_nn_pool *p);
int skd_nn_pool_in_use(const skd_nn_pool *p);

/* ---- execution state of one pass ---- */

typedef struct skd_nn_exec {
  skd_context *ctx;
  skd_arena *arena;  /* kept activations and outputs */
  skd_nn_pool *pool; /* temporaries and activation gradients */
  int training;      /* BN batch statistics (+ running update) and dropout */
  int keep;          /* keep what backward needs */
  /* Called by a backward pass once a unit's parameter gradients are final
   * (data-parallel training starts their allreduce there); NULL: none. */
  skd_status (*grads_ready)(void *user, skd_param *const *params, int n);
  void *grads_user;
} skd_nn_exec;

/* An activation: from the arena when kept, else from the pool. */
skd_status skd_nn_exec_act(skd_nn_exec *e, skd_tensor *t, int n, int c, int h, int w);
/* A temporary from the pool whatever `keep` says. */
skd_status skd_nn_exec_tmp(skd_nn_exec *e, skd_tensor *t, int n, int c, int h, int w);
/* Drops t when it is a pool tensor (kept ones stay). */
void skd_nn_exec_drop(skd_nn_exec *e, const skd_tensor *t);

/* ---- conv (+ bias) (+ BN (+ activation)) ---- */

typedef struct skd_nn_conv_bn {
  skd_conv2d_params conv;
  int cin, cout;
  skd_param *weight, *bias;                  /* bias NULL: conv without bias */
  skd_param *gamma, *beta, *rmean, *rvar;    /* gamma NULL: no BN */
  skd_bn_act act;
  float slope;
  /* Views of the last forward (valid while its arena is): */
  skd_tensor x;                 /* input */
  skd_tensor z;                 /* conv output = BN input (kept) */
  skd_tensor y;                 /* output */
  skd_tensor save_mean, save_invstd;
  int training;                 /* mode of the last forward */
  int kept;                     /* the last forward kept z and the statistics */
} skd_nn_conv_bn;

/* Registers the conv as "<conv_name>.weight" (+ ".bias") and, when bn_name
 * is not NULL, the BN as "<bn_name>.*". */
skd_status skd_nn_conv_bn_init(skd_nn_conv_bn *u, skd_nn_params *r, const char *conv_name, const char *bn_name,
                               int cin, int cout, int k, int stride, int pad, int dilation, int with_bias,
                               skd_bn_act act, float slope);

/* Output shape for an input of h x w (SKD_EINVAL when it does not fit). */
skd_status skd_nn_conv_bn_out_shape(const skd_nn_conv_bn *u, int h, int w, int *ho, int *wo);

/* y = act(bn(conv(x))), y given by the caller (shape from out_shape). With
 * e->keep the conv output goes to the arena and the views are remembered
 * for backward (x and y must then stay valid too); without, the BN runs in
 * place on y. */
skd_status skd_nn_conv_bn_forward(skd_nn_exec *e, skd_nn_conv_bn *u, const skd_tensor *x, const skd_tensor *y);

/* dy: gradient w.r.t. y (y as left by forward, or the same signs when the
 * activation is fused: an in-place dropout after it is fine). dx: += the
 * gradient w.r.t. x (NULL: not wanted). Parameter gradients accumulate. */
skd_status skd_nn_conv_bn_backward(skd_nn_exec *e, skd_nn_conv_bn *u, const skd_tensor *dy, const skd_tensor *dx);

/* Channel count `c` scaled by width: max(1, floor(c * width + 0.5)). */
int skd_nn_scale_channels(int c, double width);

#endif
