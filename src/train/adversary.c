/* The trainer's side of holistic distillation: the discriminator, its SGD
 * optimiser, the G term and the D step, and their checkpoint state. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skd/loss/holistic.h"
#include "train/trainer_private.h"

struct adversary {
  skd_context *ctx;
  skd_disc *d;
  skd_holistic_config hc;
  skd_optim opt;
  skd_param *trainable[SKD_DISC_MAX_STATE];
  int ntrainable;
  skd_tensor mix; /* (batch, 1, 1, 1): the penalty's mixing weights */
  float *mix_host;
};

static int depth_input(const struct skd_trainer *t) {
  return t->cfg.task == SKD_TASK_DEPTH && t->cfg.d_input_depth;
}

/* The depth map (N, 1, H', W') of bin logits q, from the arena. */
static skd_status depth_of(struct skd_trainer *t, const skd_tensor *q, skd_tensor *out) {
  skd_depth_bins b = trainer_depth_bins(&t->cfg);
  skd_status st = skd_arena_tensor(t->arena, out, q->n, 1, q->h, q->w);
  return st == SKD_OK ? skd_depth_from_bins(t->ctx, &b, q, out) : st;
}

skd_status adversary_create(struct skd_trainer *t) {
  const skd_train_config *c = &t->cfg;
  struct adversary *a = calloc(1, sizeof *a);
  if (!a) return skd_error(SKD_ENOMEM, "discriminator: out of host memory");
  t->adv = a;
  a->ctx = t->ctx;
  int h = 0, w = 0;
  skd_status st = skd_pspnet_output_shape(t->teacher, c->crop, c->crop, &h, &w);
  skd_disc_config dc;
  /* --d-input depth: D sees the one-channel depth map instead of the bins. */
  skd_disc_config_default(&dc, depth_input(t) ? 1 : c->classes, h, w);
  dc.conv_dim = c->d_width;
  dc.preprocess = (skd_disc_preprocess)c->d_preprocess;
  dc.conditional = c->d_conditional;
  if (st == SKD_OK) st = skd_disc_create(t->ctx, &dc, c->seed ^ 0xD15C0ULL, &a->d);
  if (st != SKD_OK) return st;
  skd_holistic_config_default(&a->hc);
  a->hc.type = c->adv;
  a->hc.lambda_d = c->lambda_d;
  a->hc.lambda_gp = c->lambda_gp;
  for (int i = 0; i < a->d->nstate; i++)
    if (a->d->state[i]->grad.mem) a->trainable[a->ntrainable++] = a->d->state[i];
  st = skd_optim_sgd_init(&a->opt, c->d_lr, c->d_momentum, 0.0, 0.0, 0);
  a->opt.step = t->step;
  /* the whole batch's draws: a rank takes its shard's (data parallel) */
  a->mix_host = malloc((size_t)t->rows * (size_t)(t->ranks + 1) * sizeof(float)); /* every row's, then ours */
  if (!a->mix_host) return skd_error(SKD_ENOMEM, "discriminator: out of host memory");
  if (st == SKD_OK) st = skd_tensor_alloc(t->ctx, &a->mix, t->rows, 1, 1, 1);
  return st;
}

void adversary_free(struct adversary *a) {
  if (!a) return;
  skd_disc_free(a->d);
  skd_tensor_release(&a->mix);
  free(a->mix_host);
  free(a);
}

static const skd_tensor *conditioning(struct skd_trainer *t, const skd_tensor *image) {
  return t->cfg.d_conditional ? image : NULL;
}

skd_status adversary_generator_term(struct skd_trainer *t, const skd_tensor *image, const skd_tensor *q_student,
                                    const skd_tensor *dq) {
  skd_tensor loss = trainer_scalar(t, S_HOLISTIC);
  skd_holistic_config hc = t->adv->hc; /* the student's term ramps up with --distill-warmup; D's own loss does not */
  hc.lambda_d *= t->distill_ramp;
  if (!depth_input(t))
    return skd_holistic_g_loss(t->ctx, &hc, t->adv->d, t->arena, q_student, conditioning(t, image), dq, &loss);
  /* Through the depth map: D's gradient at the depth, then bins -> depth backward. */
  skd_tensor depth, ddepth;
  skd_depth_bins b = trainer_depth_bins(&t->cfg);
  skd_status st = depth_of(t, q_student, &depth);
  if (st == SKD_OK) st = skd_arena_tensor(t->arena, &ddepth, depth.n, 1, depth.h, depth.w);
  if (st == SKD_OK) st = skd_tensor_fill(t->ctx, &ddepth, 0.0f);
  if (st == SKD_OK) st = skd_holistic_g_loss(t->ctx, &hc, t->adv->d, t->arena, &depth, conditioning(t, image), &ddepth, &loss);
  if (st == SKD_OK) st = skd_depth_from_bins_backward(t->ctx, &b, q_student, &depth, &ddepth, dq);
  return st;
}

skd_status adversary_gradients(struct skd_trainer *t, const skd_tensor *image, const skd_tensor *q_student,
                               const skd_tensor *q_teacher) {
  struct adversary *a = t->adv;
  int n = q_student->n;
  /* The D step's four terms land in the trainer's scalar slots S_D_LOSS..S_D_PENALTY. */
  skd_tensor terms = skd_tensor_view(t->scalars.mem, t->scalars.offset + S_D_LOSS, 1, SKD_HOLISTIC_TERMS, 1, 1);
  skd_tensor mix = skd_tensor_view(a->mix.mem, a->mix.offset, n, 1, 1, 1);
  /* drawn for the global batch: each row takes its global row's weight */
  float *mine = a->mix_host + (size_t)n * (size_t)t->ranks;
  skd_holistic_mix_draw(t->cfg.seed, (uint64_t)t->step, n * t->ranks, a->mix_host);
  for (int i = 0; i < n; i++) mine[i] = a->mix_host[trainer_global_row(t, i)];
  skd_status st = skd_tensor_upload(t->ctx, &mix, mine);
  skd_tensor ds, dt;
  if (st == SKD_OK && depth_input(t)) { /* the teacher's depth map is the "real" sample */
    st = depth_of(t, q_student, &ds);
    if (st == SKD_OK) st = depth_of(t, q_teacher, &dt);
    q_student = &ds;
    q_teacher = &dt;
  }
  if (st == SKD_OK)
    st = skd_holistic_d_step(t->ctx, &a->hc, a->d, t->arena, q_student, q_teacher, conditioning(t, image), &mix, &terms);
  return st;
}

skd_status adversary_update(struct skd_trainer *t) {
  struct adversary *a = t->adv;
  a->opt.lr = skd_poly_lr(t->cfg.d_lr, t->step, t->cfg.steps, t->cfg.poly_power);
  return skd_optim_step(t->ctx, &a->opt, a->trainable, a->ntrainable);
}

/* Vectors are stored 1-D, as PyTorch keeps them. */
static int file_shape(const skd_tensor *v, int64_t *shape) {
  if (v->n == 1 && v->h == 1 && v->w == 1) return shape[0] = v->c, 1;
  if (v->n == 1 && v->c == 1 && v->h == 1) return shape[0] = v->w, 1;
  shape[0] = v->n, shape[1] = v->c, shape[2] = v->h, shape[3] = v->w;
  return 4;
}

skd_status adversary_write(struct adversary *a, skd_safetensors_writer *w) {
  static const char *const prefixes[2] = {"disc.", "optim.disc."};
  skd_status st = SKD_OK;
  for (int i = 0; i < a->d->nstate && st == SKD_OK; i++) {
    skd_param *p = a->d->state[i];
    const skd_tensor *tensors[2] = {&p->value, &p->state1};
    for (int k = 0; k < 2 && st == SKD_OK; k++) {
      if (!tensors[k]->mem) continue; /* no momentum before the first D step */
      float *host = malloc(skd_tensor_numel(tensors[k]) * sizeof *host);
      if (!host) return skd_error(SKD_ENOMEM, "checkpoint: out of host memory");
      char name[256];
      int64_t shape[4];
      int ndim = file_shape(&p->value, shape);
      snprintf(name, sizeof name, "%s%s", prefixes[k], p->name);
      st = skd_tensor_download(a->ctx, tensors[k], host);
      if (st == SKD_OK) st = skd_values_check(host, skd_tensor_numel(tensors[k]), name, "refusing to save");
      if (st == SKD_OK) st = skd_safetensors_writer_add(w, name, ndim, shape, host);
      free(host);
    }
  }
  return st;
}

/* Every D tensor must be in the file; momentum buffers may be absent. */
skd_status adversary_read(struct adversary *a, skd_safetensors *f) {
  static const char *const prefixes[2] = {"disc.", "optim.disc."};
  skd_status st = SKD_OK;
  for (int i = 0; i < a->d->nstate && st == SKD_OK; i++) {
    skd_param *p = a->d->state[i];
    for (int k = 0; k < 2 && st == SKD_OK; k++) {
      char name[256];
      snprintf(name, sizeof name, "%s%s", prefixes[k], p->name);
      int j = skd_safetensors_find(f, name);
      if (j < 0) {
        if (k == 0) st = skd_error(SKD_EFORMAT, "checkpoint: discriminator tensor '%s' is missing", name);
        continue;
      }
      size_t n = skd_tensor_numel(&p->value);
      if (skd_safetensors_entry_at(f, j)->numel != n)
        return skd_error(SKD_EFORMAT, "checkpoint: tensor '%s' has %zu values, the discriminator expects %zu", name,
                         skd_safetensors_entry_at(f, j)->numel, n);
      float *host = malloc(n * sizeof *host);
      if (!host) return skd_error(SKD_ENOMEM, "checkpoint: out of host memory");
      skd_tensor *dst = k == 0 ? &p->value : &p->state1;
      st = skd_safetensors_read_f32(f, j, host, n);
      if (st == SKD_OK) st = skd_values_check(host, n, name, "checkpoint");
      if (st == SKD_OK && !dst->mem) st = skd_tensor_alloc(a->ctx, dst, p->value.n, p->value.c, p->value.h, p->value.w);
      if (st == SKD_OK) st = skd_tensor_upload(a->ctx, dst, host);
      free(host);
    }
  }
  return st;
}

void adversary_memory(const struct adversary *a, size_t *params, size_t *optimiser, size_t *other) {
  *params = *optimiser = *other = 0;
  if (!a) return;
  for (int i = 0; i < a->d->nstate; i++) {
    const skd_param *p = a->d->state[i];
    size_t bytes = skd_tensor_numel(&p->value) * sizeof(float);
    *params += (p->value.mem ? bytes : 0) + (p->grad.mem ? bytes : 0);
    *optimiser += (p->state1.mem ? bytes : 0) + (p->state2.mem ? bytes : 0);
  }
  *other = skd_tensor_numel(&a->mix) * sizeof(float);
}

skd_param *const *adversary_params(struct adversary *a, int *n, int all) {
  *n = all ? a->d->nstate : a->ntrainable;
  return all ? a->d->state : a->trainable;
}
