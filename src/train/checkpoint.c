/* Training checkpoints: one safetensors file with the student's parameters
 * and buffers under their reference names (so it loads as a network, e.g. as
 * a teacher), the optimiser state under "optim.student.", the discriminator
 * under "disc." and "optim.disc.", and in the metadata the run's config
 * (JSON), the step and the best validation mIoU. Also the one way to open a
 * checkpoint as a frozen network (the trainer's teacher, skd-cl eval and
 * predict). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/trainer_private.h"

#define FORMAT_NAME "skd-cl training checkpoint"

/* The run configuration, step and best mIoU in an open checkpoint's metadata. */
static skd_status read_config(skd_safetensors *f, const char *path, skd_train_config *cfg, int *found, long *step,
                              double *best) {
  *found = 0;
  *step = 0;
  *best = NAN;
  skd_status st = SKD_OK;
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
  if (st == SKD_OK && best_text) {
    /* "nan" before any validation, else a mIoU in [0, 1]. */
    char *end = NULL;
    double v = strtod(best_text, &end);
    if (!*best_text || *end || !(isnan(v) || (v >= 0.0 && v <= 1.0)))
      st = skd_error(SKD_EFORMAT, "%s: metadata 'best_miou': expected a mIoU from 0 to 1 (or nan), got '%s'", path,
                     best_text);
    else *best = v;
  }
  return st;
}

skd_status skd_checkpoint_read_config(const char *path, skd_train_config *cfg, int *found, long *step, double *best) {
  *found = 0;
  *step = 0;
  *best = NAN;
  skd_safetensors *f = NULL;
  skd_status st = skd_safetensors_open(&f, path);
  if (st != SKD_OK) return st;
  st = read_config(f, path, cfg, found, step, best);
  skd_safetensors_close(f);
  return st;
}

/* The class count of a checkpoint's network: its classifier's size
 * (head.bias), else the stored configuration's; 0 when neither says. */
static int checkpoint_classes(const skd_safetensors *f, const skd_train_config *cfg, int found) {
  int k = skd_safetensors_find(f, "head.bias");
  if (k >= 0) {
    const skd_safetensors_entry *e = skd_safetensors_entry_at(f, k);
    if (e->ndim == 1 && e->shape[0] >= 1 && e->shape[0] <= 1000000) return (int)e->shape[0];
  }
  return found ? cfg->classes : 0;
}

skd_status skd_pspnet_open_checkpoint(skd_pspnet **out, skd_context *ctx, const char *path,
                                      const skd_net_config *fallback, int classes, skd_train_config *stored,
                                      int *found) {
  *out = NULL;
  skd_train_config local;
  skd_train_config *cfg = stored ? stored : &local;
  if (!stored) skd_train_config_default(&local);
  int have = 0;
  long step;
  double best;
  skd_safetensors *f = NULL;
  skd_pspnet *net = NULL;
  skd_status st = skd_safetensors_open(&f, path);
  if (st == SKD_OK) st = read_config(f, path, cfg, &have, &step, &best);
  if (found) *found = have;
  if (st != SKD_OK) goto done;
  const skd_net_config *arch = have ? &cfg->student : fallback;
  int file_classes = checkpoint_classes(f, cfg, have);
  if (classes == 0) classes = file_classes;
  if (classes < 1) {
    st = skd_error(SKD_EFORMAT, "%s: cannot tell the class count (no head.bias tensor and no run configuration)",
                   path);
    goto done;
  }
  if (file_classes && classes != file_classes) {
    st = skd_error(SKD_EINVAL, "%s holds a network for %d classes, not %d", path, file_classes, classes);
    goto done;
  }
  skd_pspnet_config pc;
  st = trainer_network_config(arch, classes, 0, 1, &pc);
  if (st == SKD_OK) st = skd_pspnet_create(&net, ctx, &pc);
  if (st == SKD_OK) st = skd_nn_params_read(&net->params, f, NULL, SKD_NN_LOAD_NETWORK_ONLY);
  if (st != SKD_OK && st != SKD_ENOMEM && st != SKD_ECL) {
    char msg[2048];
    snprintf(msg, sizeof msg, "%s", skd_error_last());
    if (have)
      st = skd_error(st, "%s: %s", path, msg);
    else
      st = skd_error(st, "%s: %s (the file records no run configuration, so the network was taken to be %s, width "
                     "%g)", path, msg, arch->arch, (double)arch->width);
  }
done:
  skd_safetensors_close(f);
  if (st != SKD_OK) {
    skd_pspnet_free(net);
    return st;
  }
  *out = net;
  return SKD_OK;
}

/* A host buffer of at least n floats, reused across tensors. */
static skd_status grow(float **buf, size_t *cap, size_t n) {
  if (n <= *cap) return SKD_OK;
  free(*buf);
  *buf = malloc(n * sizeof **buf);
  *cap = *buf ? n : 0;
  return *buf ? SKD_OK : skd_error(SKD_ENOMEM, "checkpoint: out of host memory");
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
    char name[256];
    snprintf(name, sizeof name, "%s%s", prefix, e->param.name);
    st = grow(&host, &cap, skd_tensor_numel(&e->param.state1));
    if (st == SKD_OK) st = skd_tensor_download(r->ctx, &e->param.state1, host);
    if (st == SKD_OK) st = skd_values_check(host, skd_tensor_numel(&e->param.state1), name, "refusing to save");
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
    if (fe->numel != n) {
      free(host);
      return skd_error(SKD_EFORMAT, "checkpoint: tensor '%s' has %zu values, the parameter %zu", name, fe->numel, n);
    }
    skd_tensor *s1 = &e->param.state1;
    const skd_tensor *v = &e->param.value;
    st = grow(&host, &cap, n);
    if (st == SKD_OK) st = skd_safetensors_read_f32(f, k, host, n);
    if (st == SKD_OK) st = skd_values_check(host, n, name, "checkpoint");
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
