/* The holistic loss's discriminator: configuration, the depth rule,
 * parameters and their initialisation. The passes are in
 * discriminator_pass.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skd/nn/discriminator.h"

void skd_disc_config_default(skd_disc_config *cfg, int classes, int map_h, int map_w) {
  memset(cfg, 0, sizeof *cfg);
  cfg->classes = classes;
  cfg->conv_dim = 64;
  cfg->map_h = map_h;
  cfg->map_w = map_w;
  cfg->preprocess = SKD_DISC_PRE_BN;
  cfg->conditional = 0;
}

static int min_int(int a, int b) { return a < b ? a : b; }

/* The map sizes after l1..l4 and the last kernel for them. */
static skd_status sizes(int map_h, int map_w, skd_disc_geometry *g) {
  if (min_int(map_h, map_w) < SKD_DISC_MIN_MAP)
    return skd_error(SKD_EINVAL,
                     "holistic loss needs logit maps of at least %dx%d (crop >= 128 at output stride 8), "
                     "got %dx%d",
                     SKD_DISC_MIN_MAP, SKD_DISC_MIN_MAP, map_h, map_w);
  g->h[0] = map_h;
  g->w[0] = map_w;
  for (int i = 1; i <= 4; i++) { /* 4x4, stride 2, pad 1: (s + 2 - 4) / 2 + 1 = floor(s / 2) */
    g->h[i] = g->h[i - 1] / 2;
    g->w[i] = g->w[i - 1] / 2;
  }
  return SKD_OK;
}

skd_status skd_disc_geometry_of(const skd_disc_config *cfg, int map_h, int map_w, skd_disc_geometry *out) {
  skd_disc_geometry g;
  memset(&g, 0, sizeof g);
  skd_status st = sizes(map_h, map_w, &g);
  if (st != SKD_OK) return st;
  g.in_channels = cfg->classes + (cfg->conditional ? 3 : 0);
  g.kh = min_int(4, g.h[4]);
  g.kw = min_int(4, g.w[4]);
  g.out_h = g.h[4] - g.kh + 1;
  g.out_w = g.w[4] - g.kw + 1;
  *out = g;
  return SKD_OK;
}

/* ---- initialisation (host RNG: splitmix64, seeded) ---------------------- */

static uint64_t next_u64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static double next_uniform(uint64_t *s) { return (double)(next_u64(s) >> 11) * (1.0 / 9007199254740992.0); }

static double next_normal(uint64_t *s) { /* Box-Muller */
  double u1 = next_uniform(s), u2 = next_uniform(s);
  if (u1 < 1e-300) u1 = 1e-300;
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

enum init_kind { INIT_UNIFORM, INIT_UNIT_NORMAL, INIT_CONST };

static skd_status init_values(skd_context *ctx, const skd_tensor *t, enum init_kind kind, double a, uint64_t *rng) {
  size_t n = skd_tensor_numel(t);
  if (kind == INIT_CONST) return skd_tensor_fill(ctx, t, (float)a);
  float *host = malloc((n ? n : 1) * sizeof(float));
  if (!host) return skd_error(SKD_ENOMEM, "discriminator init: out of host memory");
  double norm = 0.0;
  for (size_t i = 0; i < n; i++) {
    double v = kind == INIT_UNIFORM ? (2.0 * next_uniform(rng) - 1.0) * a : next_normal(rng);
    host[i] = (float)v;
    norm += v * v;
  }
  if (kind == INIT_UNIT_NORMAL) /* the authors' l2normalize: v / (|v| + 1e-12) */
    for (size_t i = 0; i < n; i++) host[i] = (float)(host[i] / (sqrt(norm) + 1e-12));
  skd_status st = skd_tensor_upload(ctx, t, host);
  free(host);
  return st;
}

/* Allocation table entry: the tensor, its name, shape, gradient and init. */
struct spec {
  skd_param *p;
  char name[96];
  int n, c, h, w;
  int grad;
  enum init_kind kind;
  double a;
};

static void add(struct spec *s, int *count, skd_param *p, const char *name, int n, int c, int h, int w, int grad,
                enum init_kind kind, double a) {
  struct spec *e = &s[(*count)++];
  e->p = p;
  snprintf(e->name, sizeof e->name, "%s", name);
  e->n = n;
  e->c = c;
  e->h = h;
  e->w = w;
  e->grad = grad;
  e->kind = kind;
  e->a = a;
}

skd_status skd_disc_create(skd_context *ctx, const skd_disc_config *cfg, uint64_t seed, skd_disc **out) {
  *out = NULL;
  if (cfg->classes < 1 || cfg->conv_dim < 1)
    return skd_error(SKD_EINVAL, "discriminator: classes (%d) and conv_dim (%d) must be >= 1", cfg->classes,
                     cfg->conv_dim);
  if (cfg->preprocess < SKD_DISC_PRE_BN || cfg->preprocess > SKD_DISC_PRE_SCALE)
    return skd_error(SKD_EINVAL, "discriminator: preprocess mode must be 1 (bn), 2 (tanh) or 3 (scale), got %d",
                     (int)cfg->preprocess);
  skd_disc_geometry g;
  skd_status st = skd_disc_geometry_of(cfg, cfg->map_h, cfg->map_w, &g);
  if (st != SKD_OK) return st;
  skd_disc *d = calloc(1, sizeof *d);
  if (!d) return skd_error(SKD_ENOMEM, "discriminator: out of host memory");
  d->cfg = *cfg;
  d->geom = g;

  /* The reference's state_dict order: l4 (assigned first in its __init__),
   * l1, l2, l3, last, attn1, attn2, preprocess_additional. */
  struct spec s[SKD_DISC_MAX_STATE];
  int count = 0;
  const int dim = cfg->conv_dim;
  const int cin[4] = {g.in_channels, dim, 2 * dim, 4 * dim}, cout[4] = {dim, 2 * dim, 4 * dim, 8 * dim};
  const int order[4] = {3, 0, 1, 2};
  for (int j = 0; j < 4; j++) {
    int i = order[j];
    skd_disc_sn_conv *c = &d->conv[i];
    double bound = 1.0 / sqrt(16.0 * cin[i]);
    char name[96];
    snprintf(name, sizeof name, "l%d.0.module.bias", i + 1);
    add(s, &count, &c->bias, name, 1, cout[i], 1, 1, 1, INIT_UNIFORM, bound);
    snprintf(name, sizeof name, "l%d.0.module.weight_u", i + 1);
    add(s, &count, &c->u, name, 1, 1, 1, cout[i], 0, INIT_UNIT_NORMAL, 0);
    snprintf(name, sizeof name, "l%d.0.module.weight_v", i + 1);
    add(s, &count, &c->v, name, 1, 1, 1, cin[i] * 16, 0, INIT_UNIT_NORMAL, 0);
    snprintf(name, sizeof name, "l%d.0.module.weight_bar", i + 1);
    add(s, &count, &c->weight, name, cout[i], cin[i], 4, 4, 1, INIT_UNIFORM, bound);
  }
  double last_bound = 1.0 / sqrt((double)8 * dim * g.kh * g.kw);
  add(s, &count, &d->last_weight, "last.0.weight", 1, 8 * dim, g.kh, g.kw, 1, INIT_UNIFORM, last_bound);
  add(s, &count, &d->last_bias, "last.0.bias", 1, 1, 1, 1, 1, INIT_UNIFORM, last_bound);
  if (cfg->preprocess == SKD_DISC_PRE_BN) {
    int c = g.in_channels;
    add(s, &count, &d->bn_weight, "preprocess_additional.weight", 1, c, 1, 1, 1, INIT_CONST, 1.0);
    add(s, &count, &d->bn_bias, "preprocess_additional.bias", 1, c, 1, 1, 1, INIT_CONST, 0.0);
    add(s, &count, &d->bn_running_mean, "preprocess_additional.running_mean", 1, c, 1, 1, 0, INIT_CONST, 0.0);
    add(s, &count, &d->bn_running_var, "preprocess_additional.running_var", 1, c, 1, 1, 0, INIT_CONST, 1.0);
  }

  uint64_t rng = seed;
  for (int i = 0; st == SKD_OK && i < count; i++) {
    st = skd_param_init(ctx, s[i].p, s[i].name, s[i].n, s[i].c, s[i].h, s[i].w, s[i].grad);
    if (st == SKD_OK) st = init_values(ctx, &s[i].p->value, s[i].kind, s[i].a, &rng);
  }
  if (st == SKD_OK) st = skd_attention_init(ctx, &d->attn1, "attn1", 4 * dim, 1);
  if (st == SKD_OK) st = skd_attention_init(ctx, &d->attn2, "attn2", 8 * dim, 1);
  skd_attention *attn[2] = {&d->attn1, &d->attn2};
  for (int a = 0; st == SKD_OK && a < 2; a++) {
    skd_param *p[7];
    skd_attention_params(attn[a], p);
    double bound = 1.0 / sqrt((double)attn[a]->channels);
    for (int i = 1; st == SKD_OK && i < 7; i++) st = init_values(ctx, &p[i]->value, INIT_UNIFORM, bound, &rng);
  }
  if (st != SKD_OK) {
    for (int i = 0; i < count; i++) skd_param_release(s[i].p);
    skd_attention_release(&d->attn1);
    skd_attention_release(&d->attn2);
    free(d);
    return st;
  }

  /* The state list: the table's order with the attentions after "last". */
  for (int i = 0; i < count; i++) {
    d->state[d->nstate++] = s[i].p;
    if (s[i].p == &d->last_bias)
      for (int a = 0; a < 2; a++) {
        skd_param *p[7];
        skd_attention_params(attn[a], p);
        for (int j = 0; j < 7; j++) d->state[d->nstate++] = p[j];
      }
  }
  *out = d;
  return SKD_OK;
}

void skd_disc_free(skd_disc *d) {
  if (!d) return;
  for (int i = 0; i < d->nstate; i++) skd_param_release(d->state[i]);
  free(d);
}

skd_param *skd_disc_find(skd_disc *d, const char *name) {
  for (int i = 0; i < d->nstate; i++)
    if (strcmp(d->state[i]->name, name) == 0) return d->state[i];
  return NULL;
}

skd_status skd_disc_zero_grad(skd_context *ctx, skd_disc *d) {
  skd_status st = SKD_OK;
  for (int i = 0; st == SKD_OK && i < d->nstate; i++)
    if (d->state[i]->grad.mem) st = skd_tensor_fill(ctx, &d->state[i]->grad, 0.0f);
  return st;
}
