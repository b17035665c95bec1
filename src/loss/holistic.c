/* Holistic loss: the discriminator's D step (wgan-gp with the gradient
 * penalty's Hessian-vector product, or hinge) and the student's G term.
 * The method is in include/skd/loss/holistic.h; kernels in cl/holistic.cl. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "skd/loss/holistic.h"

#define HOL_WG 256

void skd_holistic_config_default(skd_holistic_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->type = SKD_ADV_WGAN_GP;
  cfg->lambda_d = 0.1f;
  cfg->lambda_gp = 10.0f;
  cfg->hvp_step = SKD_HOLISTIC_HVP_STEP;
}

static uint64_t splitmix64(uint64_t x) {
  uint64_t z = x + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void skd_holistic_mix_draw(uint64_t seed, uint64_t step, int n, float *out) {
  uint64_t base = splitmix64(seed ^ splitmix64(step));
  for (int i = 0; i < n; i++) {
    /* 24 random bits: exact floats in [0, 1). */
    out[i] = (float)(splitmix64(base + (uint64_t)i) >> 40) * (1.0f / 16777216.0f);
  }
}

static skd_status check_config(const skd_holistic_config *cfg, const char *op) {
  if (cfg->type != SKD_ADV_WGAN_GP && cfg->type != SKD_ADV_HINGE)
    return skd_error(SKD_EINVAL, "%s: unknown adversarial loss type %d (0 wgan-gp, 1 hinge)", op, (int)cfg->type);
  if (!(cfg->lambda_d >= 0.0f) || !(cfg->lambda_gp >= 0.0f))
    return skd_error(SKD_EINVAL, "%s: lambda_d (%g) and lambda_gp (%g) must be >= 0", op, (double)cfg->lambda_d,
                     (double)cfg->lambda_gp);
  if (!(cfg->hvp_step > 0.0f && cfg->hvp_step < 1.0f))
    return skd_error(SKD_EINVAL, "%s: hvp_step must be in (0, 1), got %g", op, (double)cfg->hvp_step);
  return SKD_OK;
}

static skd_status kernel(skd_context *ctx, const char *name, skd_kernel **k) {
  return skd_kernel_get(ctx, "holistic", name, k);
}

/* One work-item: the scalar kernels. */
static skd_status launch_single(skd_context *ctx, skd_args *a) {
  size_t one = 1;
  return skd_launch(ctx, a, 1, &one, &one);
}

static skd_status sumsq(skd_context *ctx, const skd_tensor *x, const skd_tensor *out) {
  skd_kernel *k;
  skd_status st = kernel(ctx, "holistic_sumsq_fwd", &k);
  if (st != SKD_OK) return st;
  size_t wg = skd_context_wg(ctx, HOL_WG), global = wg * (size_t)x->n;
  skd_args a = skd_args_begin(k);
  skd_arg_int(&a, (int)(skd_tensor_numel(x) / (size_t)x->n));
  skd_arg_tensor(&a, x);
  skd_arg_tensor(&a, out);
  skd_arg_local(&a, wg * sizeof(float));
  return skd_launch(ctx, &a, 1, &global, &wg);
}

static skd_status perturb(skd_context *ctx, float sign, const skd_tensor *pert, const skd_tensor *xhat,
                          const skd_tensor *g, const skd_tensor *y) {
  skd_kernel *k;
  skd_status st = kernel(ctx, "holistic_perturb_fwd", &k);
  if (st != SKD_OK) return st;
  int total = (int)skd_tensor_numel(xhat);
  skd_args a = skd_args_begin(k);
  skd_arg_int(&a, total);
  skd_arg_int(&a, total / xhat->n);
  skd_arg_float(&a, sign);
  skd_arg_tensor(&a, pert);
  skd_arg_tensor(&a, xhat);
  skd_arg_tensor(&a, g);
  skd_arg_tensor(&a, y);
  return skd_launch_1d(ctx, &a, (size_t)total, 256);
}

static skd_status check_pair(const skd_tensor *q_s, const skd_tensor *q_t, const skd_tensor *mix, const char *op) {
  skd_status st = skd_tensor_expect_same(q_t, q_s, op);
  if (st == SKD_OK && mix) st = skd_tensor_expect(mix, q_s->n, 1, 1, 1, op);
  return st;
}

static _Thread_local const skd_bn_sync *sync_hook;
static _Thread_local const skd_context *sync_ctx;

void skd_holistic_set_sync(skd_context *ctx, const skd_bn_sync *sync) {
  sync_hook = sync;
  sync_ctx = sync ? ctx : NULL;
}

/* Data parallel: holistic_gp_fwd's step over every rank's samples (its
 * arithmetic, in sample order), this rank's perturbations from it, and the
 * weights times the rank count. */
static skd_status sync_perturbation(skd_context *ctx, const skd_bn_sync *sync, float scale, float step, int n,
                                    int total, const skd_tensor *gsq, const skd_tensor *xsq, const skd_tensor *pert,
                                    const skd_tensor *dplus, const skd_tensor *dminus) {
  const int ranks = sync->ranks, ng = n * ranks;
  float *mine = malloc(4 * (size_t)n * sizeof(float)), *all = malloc(2 * (size_t)ng * sizeof(float));
  skd_status st = mine && all ? SKD_OK : skd_error(SKD_ENOMEM, "holistic penalty: out of host memory");
  if (st == SKD_OK) st = skd_tensor_download(ctx, gsq, mine);
  if (st == SKD_OK) st = skd_tensor_download(ctx, xsq, mine + n);
  if (st == SKD_OK) st = sync->gather(sync->user, mine, all, 2 * (size_t)n);
  float vsq = 0.0f, xs = 0.0f, *coef = mine + 2 * n, *w = mine + 3 * n;
  for (int r = 0; st == SKD_OK && r < ranks; r++)
    for (int i = 0; i < n; i++) {
      const float g2 = all[(size_t)r * 2 * n + i], gn = sqrtf(g2);
      const float c = gn > 0.0f ? scale * 2.0f * (gn - 1.0f) / (gn * (float)ng) : 0.0f;
      vsq += c * c * g2;
      xs += all[(size_t)r * 2 * n + n + i];
      if (r == sync->rank) coef[i] = c;
    }
  const float xnorm = fmaxf(sqrtf(xs), 1e-3f * sqrtf((float)total * (float)ranks)), vnorm = sqrtf(vsq);
  const float eps = vnorm > 0.0f ? step * xnorm / vnorm : 0.0f;
  const float weight = vnorm > 0.0f ? (float)ranks * (0.5f / eps) : 0.0f;
  for (int i = 0; i < n; i++) {
    coef[i] *= eps;
    w[i] = weight;
  }
  if (st == SKD_OK) st = skd_tensor_upload(ctx, pert, coef);
  if (st == SKD_OK) st = skd_tensor_upload(ctx, dplus, w);
  for (int i = 0; i < n; i++) w[i] = -weight;
  if (st == SKD_OK) st = skd_tensor_upload(ctx, dminus, w);
  free(mine);
  free(all);
  return st;
}

/* The penalty; `loss`, when given, gets scale * penalty added. */
static skd_status penalty_pass(skd_context *ctx, const skd_holistic_config *cfg, skd_disc *d, skd_arena *arena,
                               const skd_tensor *q_s, const skd_tensor *q_t, const skd_tensor *image,
                               const skd_tensor *mix, const skd_tensor *penalty, const skd_tensor *gnorm,
                               const skd_tensor *loss) {
  const int n = q_s->n;
  const int total = (int)skd_tensor_numel(q_s);
  skd_tensor xhat, ones, g, gsq, xsq, gn, pert, dplus, dminus, xp, xm;
  skd_status st = skd_arena_tensor(arena, &xhat, n, q_s->c, q_s->h, q_s->w);
  if (st == SKD_OK) st = skd_arena_tensor(arena, &ones, n, 1, 1, 1);
  if (st == SKD_OK) st = skd_arena_tensor(arena, &g, n, q_s->c, q_s->h, q_s->w);
  if (st == SKD_OK) st = skd_arena_tensor(arena, &gsq, n, 1, 1, 1);
  if (st == SKD_OK) st = skd_arena_tensor(arena, &xsq, n, 1, 1, 1);
  if (st == SKD_OK) st = skd_arena_tensor(arena, &gn, n, 1, 1, 1);
  if (st == SKD_OK) st = skd_arena_tensor(arena, &pert, n, 1, 1, 1);
  if (st == SKD_OK) st = skd_arena_tensor(arena, &dplus, n, 1, 1, 1);
  if (st == SKD_OK) st = skd_arena_tensor(arena, &dminus, n, 1, 1, 1);
  if (st == SKD_OK) st = skd_arena_tensor(arena, &xp, n, q_s->c, q_s->h, q_s->w);
  if (st == SKD_OK) st = skd_arena_tensor(arena, &xm, n, q_s->c, q_s->h, q_s->w);
  skd_kernel *k_mix, *k_gp;
  if (st == SKD_OK) st = kernel(ctx, "holistic_mix_fwd", &k_mix);
  if (st == SKD_OK) st = kernel(ctx, "holistic_gp_fwd", &k_gp);
  if (st != SKD_OK) return st;

  skd_args a = skd_args_begin(k_mix);
  skd_arg_int(&a, total);
  skd_arg_int(&a, total / n);
  skd_arg_tensor(&a, mix);
  skd_arg_tensor(&a, q_t);
  skd_arg_tensor(&a, q_s);
  skd_arg_tensor(&a, &xhat);
  st = skd_launch_1d(ctx, &a, (size_t)total, 256);

  /* g = grad_x S(x_hat): D's input gradient for dscore = 1. */
  skd_disc_record rx, rp, rm;
  if (st == SKD_OK) st = skd_disc_forward(ctx, d, arena, SKD_DISC_TRAIN, NULL, &xhat, image, &rx);
  if (st == SKD_OK) st = skd_tensor_fill(ctx, &ones, 1.0f);
  if (st == SKD_OK) st = skd_tensor_fill(ctx, &g, 0.0f);
  if (st == SKD_OK) st = skd_disc_backward(ctx, d, arena, &rx, &ones, &g, 0);
  if (st == SKD_OK) st = sumsq(ctx, &g, &gsq);
  if (st == SKD_OK) st = sumsq(ctx, &xhat, &xsq);
  if (st != SKD_OK) return st;
  const float scale = cfg->lambda_d * cfg->lambda_gp;
  a = skd_args_begin(k_gp);
  skd_arg_int(&a, n);
  skd_arg_int(&a, total);
  skd_arg_float(&a, scale);
  skd_arg_float(&a, cfg->hvp_step);
  skd_arg_tensor(&a, &gsq);
  skd_arg_tensor(&a, &xsq);
  skd_arg_tensor(&a, penalty);
  skd_arg_tensor(&a, gnorm ? gnorm : &gn);
  skd_arg_int(&a, loss != NULL);
  skd_arg_tensor(&a, loss ? loss : penalty); /* not written without add_loss */
  skd_arg_tensor(&a, &pert);
  skd_arg_tensor(&a, &dplus);
  skd_arg_tensor(&a, &dminus);
  st = launch_single(ctx, &a);
  if (st == SKD_OK && sync_hook && sync_ctx == ctx && sync_hook->ranks > 1)
    st = sync_perturbation(ctx, sync_hook, scale, cfg->hvp_step, n, total, &gsq, &xsq, &pert, &dplus, &dminus);

  /* The Hessian-vector product: first-order parameter gradients at
   * x_hat +- eps v, weighted +-1 / (2 eps), with x_hat's state and masks. */
  if (st == SKD_OK) st = perturb(ctx, 1.0f, &pert, &xhat, &g, &xp);
  if (st == SKD_OK) st = perturb(ctx, -1.0f, &pert, &xhat, &g, &xm);
  if (st == SKD_OK) st = skd_disc_forward(ctx, d, arena, SKD_DISC_HOLD, &rx, &xp, image, &rp);
  if (st == SKD_OK) st = skd_disc_backward(ctx, d, arena, &rp, &dplus, NULL, 1);
  if (st == SKD_OK) st = skd_disc_forward(ctx, d, arena, SKD_DISC_HOLD, &rx, &xm, image, &rm);
  if (st == SKD_OK) st = skd_disc_backward(ctx, d, arena, &rm, &dminus, NULL, 1);
  return st;
}

skd_status skd_holistic_penalty(skd_context *ctx, const skd_holistic_config *cfg, skd_disc *d, skd_arena *arena,
                                const skd_tensor *q_s, const skd_tensor *q_t, const skd_tensor *image,
                                const skd_tensor *mix, const skd_tensor *penalty, const skd_tensor *gnorm) {
  skd_status st = check_config(cfg, "holistic penalty");
  if (st == SKD_OK && !mix) st = skd_error(SKD_EINVAL, "holistic penalty: mix (e per sample) is required");
  if (st == SKD_OK) st = check_pair(q_s, q_t, mix, "holistic penalty: q_t / mix");
  if (st == SKD_OK) st = skd_tensor_expect(penalty, 1, 1, 1, 1, "holistic penalty: penalty");
  if (st == SKD_OK && gnorm) st = skd_tensor_expect(gnorm, q_s->n, 1, 1, 1, "holistic penalty: gnorm");
  if (st != SKD_OK) return st;
  return penalty_pass(ctx, cfg, d, arena, q_s, q_t, image, mix, penalty, gnorm, NULL);
}

skd_status skd_holistic_d_step(skd_context *ctx, const skd_holistic_config *cfg, skd_disc *d, skd_arena *arena,
                               const skd_tensor *q_s, const skd_tensor *q_t, const skd_tensor *image,
                               const skd_tensor *mix, const skd_tensor *terms) {
  skd_status st = check_config(cfg, "holistic D step");
  const int wgan = cfg->type == SKD_ADV_WGAN_GP;
  if (st == SKD_OK && wgan && !mix) st = skd_error(SKD_EINVAL, "holistic D step: wgan-gp needs mix (e per sample)");
  if (st == SKD_OK) st = check_pair(q_s, q_t, wgan ? mix : NULL, "holistic D step: q_t / mix");
  if (st == SKD_OK) st = skd_tensor_expect(terms, 1, SKD_HOLISTIC_TERMS, 1, 1, "holistic D step: terms");
  if (st != SKD_OK) return st;
  const int n = q_s->n;
  skd_tensor dscore_t, dscore_s;
  skd_disc_record rt, rs;
  skd_kernel *k;
  st = skd_disc_zero_grad(ctx, d);
  if (st == SKD_OK) st = skd_arena_tensor(arena, &dscore_t, n, 1, 1, 1);
  if (st == SKD_OK) st = skd_arena_tensor(arena, &dscore_s, n, 1, 1, 1);
  if (st == SKD_OK) st = kernel(ctx, "holistic_scores_fwd", &k);
  /* The reference's order: D(Q_T), D(Q_S), then D(x_hat) in the penalty. */
  if (st == SKD_OK) st = skd_disc_forward(ctx, d, arena, SKD_DISC_TRAIN, NULL, q_t, image, &rt);
  if (st == SKD_OK) st = skd_disc_forward(ctx, d, arena, SKD_DISC_TRAIN, NULL, q_s, image, &rs);
  if (st != SKD_OK) return st;
  skd_args a = skd_args_begin(k);
  skd_arg_int(&a, n);
  skd_arg_int(&a, (int)cfg->type);
  skd_arg_float(&a, cfg->lambda_d);
  skd_arg_tensor(&a, &rt.score);
  skd_arg_tensor(&a, &rs.score);
  skd_arg_tensor(&a, terms);
  skd_arg_tensor(&a, &dscore_t);
  skd_arg_tensor(&a, &dscore_s);
  st = launch_single(ctx, &a);
  if (st == SKD_OK) st = skd_disc_backward(ctx, d, arena, &rt, &dscore_t, NULL, 1);
  if (st == SKD_OK) st = skd_disc_backward(ctx, d, arena, &rs, &dscore_s, NULL, 1);
  if (st != SKD_OK || !wgan) return st;
  skd_tensor loss = skd_tensor_view(terms->mem, terms->offset + SKD_HOLISTIC_TERM_LOSS, 1, 1, 1, 1);
  skd_tensor pen = skd_tensor_view(terms->mem, terms->offset + SKD_HOLISTIC_TERM_PENALTY, 1, 1, 1, 1);
  return penalty_pass(ctx, cfg, d, arena, q_s, q_t, image, mix, &pen, NULL, &loss);
}

skd_status skd_holistic_g_loss(skd_context *ctx, const skd_holistic_config *cfg, skd_disc *d, skd_arena *arena,
                               const skd_tensor *q_s, const skd_tensor *image, const skd_tensor *dq_s,
                               const skd_tensor *loss) {
  skd_status st = check_config(cfg, "holistic G term");
  if (st == SKD_OK && dq_s) st = skd_tensor_expect_same(dq_s, q_s, "holistic G term: dq_s");
  if (st == SKD_OK) st = skd_tensor_expect(loss, 1, 1, 1, 1, "holistic G term: loss");
  if (st != SKD_OK) return st;
  skd_disc_record r;
  skd_tensor dscore;
  skd_kernel *k;
  st = skd_disc_forward(ctx, d, arena, SKD_DISC_TRAIN, NULL, q_s, image, &r);
  if (st == SKD_OK) st = skd_arena_tensor(arena, &dscore, q_s->n, 1, 1, 1);
  if (st == SKD_OK) st = kernel(ctx, "holistic_g_fwd", &k);
  if (st != SKD_OK) return st;
  skd_args a = skd_args_begin(k);
  skd_arg_int(&a, q_s->n);
  skd_arg_float(&a, cfg->lambda_d);
  skd_arg_tensor(&a, &r.score);
  skd_arg_tensor(&a, loss);
  skd_arg_tensor(&a, &dscore);
  st = launch_single(ctx, &a);
  /* Input gradient only: the D parameters' grads are never written here. */
  if (st == SKD_OK && dq_s) st = skd_disc_backward(ctx, d, arena, &r, &dscore, dq_s, 0);
  return st;
}
