/* Training checkpoints: one safetensors file with the student's parameters
 * and buffers under their reference names (so it loads as a network, e.g. as
 * a teacher), the optimiser state under "optim.student.", the discriminator
 * under "disc." and "optim.disc.", and in the metadata the run's config
 * (JSON), the step and the best validation mIoU. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/trainer_private.h"

#define FORMAT_NAME "skd-cl training checkpoint"

skd_status skd_checkpoint_read_config(const char *path, skd_train_config *cfg, int *found, long *step, double *best) {
  *found = 0;
  *step = 0;
  *best = NAN;
  skd_safetensors *f = NULL;
  skd_status st = skd_safetensors_open(&f, path);
  if (st != SKD_OK) return st;
  const char *json = skd_safetensors_metadata(f, "config");
  const char *step_text = skd_safetensors_metadata(f, "step");
  const char *best_text = skd_safetensors_metadata(f, "best_miou");
  if (json) {
    st = skd_train_config_from_json(cfg, json, path);
    *found = st == SKD_OK;
  }
  if (st == SKD_OK && step_text) {
    char *end = NULL;
    long v = strtol(step_text, &end, 10);
    if (!*step_text || *end || v < 0)
      st = skd_error(SKD_EFORMAT, "%s: metadata 'step': expected a non-negative integer, got '%s'", path, step_text);
    else *step = v;
  }
  if (st == SKD_OK && best_text) *best = strtod(best_text, NULL);
  skd_safetensors_close(f);
  return st;
}

/* The momentum buffers of every trainable tensor that has one, with its
 * PyTorch shape. */
skd_status checkpoint_write_optim(skd_safetensors_writer *w, skd_nn_params *r, const char *prefix) {
  skd_status st = SKD_OK;
  float *host = NULL;
  size_t cap = 0;
  for (int i = 0; i < r->count && st == SKD_OK; i++) {
    skd_nn_entry *e = r->entries[i];
    if (!e->param.state1.mem) continue;
    size_t n = skd_tensor_numel(&e->param.state1);
    if (n > cap) {
      free(host);
      host = malloc(n * sizeof *host);
      cap = n;
      if (!host) return skd_error(SKD_ENOMEM, "checkpoint: out of host memory");
    }
    char name[256];
    snprintf(name, sizeof name, "%s%s", prefix, e->param.name);
    st = skd_tensor_download(r->ctx, &e->param.state1, host);
    if (st == SKD_OK) st = skd_safetensors_writer_add(w, name, e->ndim, e->shape, host);
  }
  free(host);
  return st;
}

skd_status checkpoint_read_optim(skd_safetensors *f, skd_nn_params *r, const char *prefix) {
  skd_status st = SKD_OK;
  float *host = NULL;
  size_t cap = 0;
  for (int i = 0; i < r->count && st == SKD_OK; i++) {
    skd_nn_entry *e = r->entries[i];
    if (!e->param.grad.mem) continue;
    char name[256];
    snprintf(name, sizeof name, "%s%s", prefix, e->param.name);
    int k = skd_safetensors_find(f, name);
    if (k < 0) continue; /* no state yet: the optimiser starts it on the next step, as PyTorch */
    size_t n = skd_tensor_numel(&e->param.value);
    const skd_safetensors_entry *fe = skd_safetensors_entry_at(f, k);
    if (fe->numel != n)
      return skd_error(SKD_EFORMAT, "checkpoint: tensor '%s' has %zu values, the parameter %zu", name, fe->numel, n);
    if (n > cap) {
      free(host);
      host = malloc(n * sizeof *host);
      cap = n;
      if (!host) return skd_error(SKD_ENOMEM, "checkpoint: out of host memory");
    }
    skd_tensor *s1 = &e->param.state1;
    const skd_tensor *v = &e->param.value;
    st = skd_safetensors_read_f32(f, k, host, n);
    if (st == SKD_OK && !s1->mem) st = skd_tensor_alloc(r->ctx, s1, v->n, v->c, v->h, v->w);
    if (st == SKD_OK) st = skd_tensor_upload(r->ctx, s1, host);
  }
  free(host);
  return st;
}

skd_status skd_trainer_save(skd_trainer *t, const char *path) {
  skd_safetensors_writer *w = NULL;
  char *json = NULL, number[64];
  skd_status st = skd_safetensors_writer_create(&w);
  if (st == SKD_OK) st = skd_nn_params_write(&t->student->params, w, NULL);
  if (st == SKD_OK) st = checkpoint_write_optim(w, &t->student->params, "optim.student.");
  if (st == SKD_OK && t->adv) st = adversary_write(t->adv, w);
  if (st == SKD_OK) st = skd_train_config_to_json(&t->cfg, &json);
  if (st == SKD_OK) st = skd_safetensors_writer_set_metadata(w, "format", FORMAT_NAME);
  if (st == SKD_OK) st = skd_safetensors_writer_set_metadata(w, "config", json);
  snprintf(number, sizeof number, "%ld", t->step);
  if (st == SKD_OK) st = skd_safetensors_writer_set_metadata(w, "step", number);
  snprintf(number, sizeof number, "%.17g", t->best_miou);
  if (st == SKD_OK) st = skd_safetensors_writer_set_metadata(w, "best_miou", number);
  if (st == SKD_OK) st = skd_safetensors_write(w, path);
  free(json);
  skd_safetensors_writer_free(w);
  return st;
}
