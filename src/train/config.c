/* The training configuration: defaults, the field table, validation and JSON. */
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "skd/data.h"
#include "skd/train_config.h"

static const char *const adv_choices[] = {"wgan-gp", "hinge", NULL};
static const char *const pixel_norm_choices[] = {"reference", "mean", NULL};
static const char *const pool_choices[] = {"max", "avg", NULL};
static const char *const norm_choices[] = {"exact", "detached", NULL};
static const char *const task_choices[] = {"seg", "depth", NULL};
static const char *const d_input_choices[] = {"bins", "depth", NULL};

#define F(field) offsetof(skd_train_config, field)
#define S(field) sizeof(((skd_train_config *)0)->field)

static const skd_config_field fields[] = {
    {"data-dir", SKD_FIELD_STRING, F(data_dir), S(data_dir), 0, 0, NULL,
     "directory the list files' paths are relative to (default: the list file's directory)"},
    {"train-list", SKD_FIELD_STRING, F(train_list), S(train_list), 0, 0, NULL,
     "training list: 'image_path label_path' per line"},
    {"val-list", SKD_FIELD_STRING, F(val_list), S(val_list), 0, 0, NULL, "validation list (empty: no validation)"},
    {"preset", SKD_FIELD_STRING, F(preset), S(preset), 0, 0, NULL,
     "label preset: demo | cityscapes | cityscapes-trainids | camvid | voc | generic"},
    {"classes", SKD_FIELD_INT, F(classes), 0, 0, 255, NULL, "number of classes (0: from the preset)"},
    {"crop", SKD_FIELD_INT, F(crop), 0, 16, 8192, NULL, "training crop size (reference: 512)"},
    {"batch", SKD_FIELD_INT, F(batch), 0, 2, 4096, NULL,
     "images per step (reference: 8; at least 2: training-mode BatchNorm after the PSP bin-1 pooling)"},
    {"scale-min", SKD_FIELD_FLOAT, F(scale_min), 0, 0.05, 20, NULL, "smallest random scale"},
    {"scale-max", SKD_FIELD_FLOAT, F(scale_max), 0, 0.05, 20, NULL, "largest random scale"},
    {"scale-step", SKD_FIELD_FLOAT, F(scale_step), 0, 0, 10, NULL, "scale step (0: uniform)"},
    {"mirror", SKD_FIELD_FLAG, F(mirror), 0, 0, 0, NULL, "random horizontal flips"},
    {"imagenet-norm", SKD_FIELD_FLAG, F(imagenet_norm), 0, 0, 0, NULL,
     "RGB ImageNet mean/std instead of the reference's BGR mean subtraction"},
    {"arch", SKD_FIELD_STRING, F(student.arch), S(student.arch), 0, 0, NULL,
     "network trained: resnet18 | resnet34 | resnet50 | resnet101 (PSPNet head)"},
    {"width", SKD_FIELD_FLOAT, F(student.width), 0, 0.01, 4, NULL, "channel width multiplier (1: the paper's)"},
    {"teacher", SKD_FIELD_STRING, F(teacher_path), S(teacher_path), 0, 0, NULL,
     "teacher checkpoint: distil from it (empty: plain training, e.g. of a teacher)"},
    {"teacher-arch", SKD_FIELD_STRING, F(teacher.arch), S(teacher.arch), 0, 0, NULL,
     "teacher network when its checkpoint does not record it (a converted reference checkpoint)"},
    {"teacher-width", SKD_FIELD_FLOAT, F(teacher.width), 0, 0.01, 4, NULL, "teacher width, likewise"},
    {"init", SKD_FIELD_STRING, F(init_path), S(init_path), 0, 0, NULL,
     "start the trained network from this checkpoint (.pth or safetensors, e.g. resnet18-imagenet.pth): every "
     "tensor whose name and shape match; a table says what loaded"},
    {"init-strict", SKD_FIELD_FLAG, F(init_strict), 0, 0, 0, NULL,
     "with --init: fail when a backbone tensor is missing or any tensor's shape differs"},
    {"unlabeled-list", SKD_FIELD_STRING, F(unlabeled_list), S(unlabeled_list), 0, 0, NULL,
     "images without labels ('image_path' per line) that get only the distillation terms (needs --teacher)"},
    {"unlabeled-batch", SKD_FIELD_INT, F(unlabeled_batch), 0, 0, 4096, NULL,
     "unlabeled images added to each step's batch (0: as many as --batch)"},
    {"distill-warmup", SKD_FIELD_INT, F(distill_warmup), 0, 0, 100000000, NULL,
     "steps over which the distillation weights ramp up linearly from 0 (0: full weight from the start)"},
    {"steps", SKD_FIELD_INT, F(steps), 0, 1, 100000000, NULL, "training steps (reference: 40000)"},
    {"lr", SKD_FIELD_FLOAT, F(lr), 0, 0, 10, NULL, "student SGD learning rate (poly schedule)"},
    {"momentum", SKD_FIELD_FLOAT, F(momentum), 0, 0, 1, NULL, "student SGD momentum"},
    {"weight-decay", SKD_FIELD_FLOAT, F(weight_decay), 0, 0, 1, NULL,
     "student weight decay (reference script 5e-4, its default 1e-4)"},
    {"poly-power", SKD_FIELD_FLOAT, F(poly_power), 0, 0, 10, NULL, "lr * (1 - step/steps)^power"},
    {"dsn-weight", SKD_FIELD_FLOAT, F(dsn_weight), 0, 0, 10, NULL, "weight of the auxiliary (DSN) cross-entropy"},
    {"seed", SKD_FIELD_U64, F(seed), 0, 0, 0, NULL, "random seed (init, data order, augmentation, dropout, D)"},
    {"pixel", SKD_FIELD_FLAG, F(pixel), 0, 0, 0, NULL, "pixel-wise distillation (softmax-KL)"},
    {"lambda-pi", SKD_FIELD_FLOAT, F(lambda_pi), 0, 0, 1000, NULL, "pixel-wise weight (reference 10)"},
    {"tau", SKD_FIELD_FLOAT, F(tau), 0, 0.01, 100, NULL, "pixel-wise temperature (reference 1; loss scaled by tau^2)"},
    {"pixel-norm", SKD_FIELD_CHOICE, F(pixel_norm_mean), 0, 0, 0, pixel_norm_choices,
     "pixel-wise normalisation: reference (sum over batch / H'W') or mean (per pixel)"},
    {"pixel-mask", SKD_FIELD_FLAG, F(pixel_mask_ignore), 0, 0, 0, NULL, "leave ignore-label pixels out of the pixel loss"},
    {"pair", SKD_FIELD_FLAG, F(pair), 0, 0, 0, NULL, "pair-wise distillation (cosine affinity of feature nodes)"},
    {"lambda-pa", SKD_FIELD_FLOAT, F(lambda_pa), 0, 0, 1000, NULL,
     "pair-wise weight (reference default 1.0; its script 0.5; the paper 10)"},
    {"node-size", SKD_FIELD_INT, F(pair_node_size), 0, 0, 1024, NULL,
     "node = b x b feature pixels (0: use --pool-scale, the reference's rule)"},
    {"pool-scale", SKD_FIELD_FLOAT, F(pair_pool_scale), 0, 0.001, 1, NULL,
     "node size = int(H' * pool_scale) (reference 0.5: a 2x2 node grid)"},
    {"window", SKD_FIELD_INT, F(pair_window), 0, -1, 100000, NULL,
     "pair window radius r in nodes ((2r+1)^2 window); -1: all nodes (the reference)"},
    {"pair-pool", SKD_FIELD_CHOICE, F(pair_avg_pool), 0, 0, 0, pool_choices,
     "node pooling (max: the reference code; avg: the paper)"},
    {"pair-norm", SKD_FIELD_CHOICE, F(pair_detached_norm), 0, 0, 0, norm_choices,
     "affinity gradient: exact cosine, or detached norm (the reference code)"},
    {"holistic", SKD_FIELD_FLAG, F(holistic), 0, 0, 0, NULL, "holistic distillation (adversarial, self-attention D)"},
    {"lambda-d", SKD_FIELD_FLOAT, F(lambda_d), 0, 0, 1000, NULL, "adversarial weight (reference 0.1)"},
    {"lambda-gp", SKD_FIELD_FLOAT, F(lambda_gp), 0, 0, 1000, NULL, "gradient-penalty weight (reference 10)"},
    {"adv", SKD_FIELD_CHOICE, F(adv), 0, 0, 0, adv_choices, "adversarial loss"},
    {"d-preprocess", SKD_FIELD_INT, F(d_preprocess), 0, 1, 3, NULL,
     "D input preprocessing: 1 BatchNorm, 2 tanh, 3 2*(x/255-0.5) (reference 1)"},
    {"d-conditional", SKD_FIELD_FLAG, F(d_conditional), 0, 0, 0, NULL,
     "D sees softmax(logits) and the image (the paper) instead of the logits (the reference code)"},
    {"d-width", SKD_FIELD_INT, F(d_width), 0, 1, 1024, NULL, "D's first conv width d (reference 64)"},
    {"d-lr", SKD_FIELD_FLOAT, F(d_lr), 0, 0, 10, NULL, "D SGD learning rate (poly schedule; reference 4e-4)"},
    {"d-momentum", SKD_FIELD_FLOAT, F(d_momentum), 0, 0, 1, NULL, "D SGD momentum"},
    {"out", SKD_FIELD_STRING, F(out_dir), S(out_dir), 0, 0, NULL, "directory for checkpoints and the log"},
    {"val-every", SKD_FIELD_INT, F(val_every), 0, 0, 100000000, NULL, "validate every K steps (0: only at the end)"},
    {"log-every", SKD_FIELD_INT, F(log_every), 0, 1, 100000000, NULL, "write a JSON log line every N steps"},
    {"save-every", SKD_FIELD_INT, F(save_every), 0, 0, 100000000, NULL,
     "save the last checkpoint every N steps (0: at validation and at the end)"},
    {"log-grad-norms", SKD_FIELD_FLAG, F(log_grad_norms), 0, 0, 0, NULL,
     "log each term's gradient norm at the student's logits and features (JSON log lines)"},
    {"task", SKD_FIELD_CHOICE, F(task), 0, 0, 0, task_choices,
     "seg (segmentation, labels) or depth (log10 depth bins, 'image depth' lists; docs/DEPTH.md)"},
    {"depth-bins", SKD_FIELD_INT, F(depth_bins), 0, 2, 255, NULL,
     "depth: bins equally spaced in log10 depth (a teacher's must match)"},
    {"depth-min", SKD_FIELD_FLOAT, F(depth_min), 0, 0.001, 1000, NULL, "depth: the bins' nearest depth, metres"},
    {"depth-max", SKD_FIELD_FLOAT, F(depth_max), 0, 0.001, 1000, NULL, "depth: the bins' farthest depth, metres"},
    {"depth-scale", SKD_FIELD_FLOAT, F(depth_scale), 0, 0.001, 1000000, NULL,
     "depth: PNG units per metre (1000: millimetres, the usual NYUv2 export)"},
    {"d-input", SKD_FIELD_CHOICE, F(d_input_depth), 0, 0, 0, d_input_choices,
     "depth: the discriminator sees the bin logits (bins) or the predicted depth map (depth)"},
};

const skd_config_field *skd_train_config_fields(int *count) {
  *count = (int)(sizeof fields / sizeof fields[0]);
  return fields;
}

void skd_train_config_default(skd_train_config *c) {
  memset(c, 0, sizeof *c);
  snprintf(c->preset, sizeof c->preset, "generic");
  c->crop = 512;
  c->batch = 8;
  skd_augment reference;
  skd_augment_reference(&reference, c->crop);
  c->scale_min = reference.scale_min;
  c->scale_max = reference.scale_max;
  c->scale_step = reference.scale_step;
  c->mirror = reference.mirror;
  snprintf(c->student.arch, sizeof c->student.arch, "resnet18");
  c->student.width = 1.0f;
  snprintf(c->teacher.arch, sizeof c->teacher.arch, "resnet101");
  c->teacher.width = 1.0f;
  c->steps = 40000;
  c->lr = 0.01f;
  c->momentum = 0.9f;
  c->weight_decay = 5e-4f;
  c->poly_power = 0.9f;
  c->dsn_weight = 0.4f;
  c->seed = 1;
  c->pixel = c->pair = c->holistic = 1; /* active only with a teacher */
  skd_train_config_recipe(c, "skd");
  snprintf(c->out_dir, sizeof c->out_dir, "run");
  c->val_every = 0;
  c->log_every = 10;
  /* Depth: 60 bins (VNL's MobileNetV2 setting; 0.022 log10 units, 5 % of
   * the depth, per bin over 0.5..10 m), NYUv2's range, millimetre PNGs. */
  c->task = SKD_TASK_SEG;
  c->depth_bins = 60;
  c->depth_min = 0.5f;
  c->depth_max = 10.0f;
  c->depth_scale = 1000.0f;
}

/* The reference code's distillation settings (METHOD.md section 5). */
static void reference_recipe(skd_train_config *c) {
  c->lambda_pi = 10.0f;
  c->pixel_norm_mean = 0;
  c->tau = 1.0f;
  c->lambda_pa = 1.0f;
  c->pair_node_size = 0;
  c->pair_pool_scale = 0.5f;
  c->pair_window = -1;
  c->pair_avg_pool = 0;
  c->pair_detached_norm = 1;
  c->lambda_d = 0.1f;
  c->lambda_gp = 10.0f;
  c->adv = SKD_ADV_WGAN_GP;
  c->d_preprocess = 1;
  c->d_conditional = 0;
  c->d_width = 64;
  c->d_lr = 4e-4f;
  c->d_momentum = 0.9f;
  c->distill_warmup = 0;
}

skd_status skd_train_config_recipe(skd_train_config *c, const char *name) {
  if (!strcmp(name, "reference")) {
    reference_recipe(c);
    return SKD_OK;
  }
  if (strcmp(name, "skd")) return skd_error(SKD_EINVAL, "unknown recipe '%s' (expected skd or reference)", name);
  /* skd-cl's defaults: the reference's, with weights whose effect does not
   * depend on the batch size (docs/LOSSES.md has the measurements). */
  reference_recipe(c);
  c->pixel_norm_mean = 1;
  c->lambda_pi = 1.0f;
  c->pair_detached_norm = 0;
  return SKD_OK;
}

int skd_arch_depth(const char *a) {
  return !strcmp(a, "resnet18") ? 18 : !strcmp(a, "resnet34") ? 34 : !strcmp(a, "resnet50") ? 50
         : !strcmp(a, "resnet101") ? 101 : 0;
}

static int is_arch(const char *a) {
  return !strcmp(a, "resnet18") || !strcmp(a, "resnet34") || !strcmp(a, "resnet50") || !strcmp(a, "resnet101");
}

/* NULL when the number v is allowed in field f, else what was expected
 * (written to buf). A float field compares in float too: --width 0.01 is
 * stored as 0.0099999998f, which must still pass, and so must its printed
 * value read back from a checkpoint (found by tests/fuzz/fuzz_config.c). */
static const char *range_problem(const skd_config_field *f, double v, char *buf, size_t size) {
  if (f->min == f->max) return NULL; /* no range */
  if (v >= f->min && v <= f->max) return NULL;
  if (f->type == SKD_FIELD_FLOAT && v >= -FLT_MAX && v <= FLT_MAX && (float)v >= (float)f->min &&
      (float)v <= (float)f->max)
    return NULL;
  snprintf(buf, size, "%g is outside [%g, %g]", v, f->min, f->max);
  return buf;
}

/* NULL when a network name field holds a known network, else the problem. */
static const char *arch_problem(const skd_config_field *f, const char *value, char *buf, size_t size) {
  if (strcmp(f->name, "arch") && strcmp(f->name, "teacher-arch")) return NULL;
  if (is_arch(value)) return NULL;
  snprintf(buf, size, "unknown network '%.40s' (expected resnet18, resnet34, resnet50 or resnet101)", value);
  return buf;
}

skd_status skd_train_config_validate(const skd_train_config *c) {
  char buf[160];
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    const skd_config_field *f = &fields[i];
    const char *p = (const char *)c + f->offset;
    const char *problem = NULL;
    if (f->type == SKD_FIELD_INT) problem = range_problem(f, *(const int *)p, buf, sizeof buf);
    if (f->type == SKD_FIELD_FLOAT) problem = range_problem(f, *(const float *)p, buf, sizeof buf);
    if (f->type == SKD_FIELD_STRING) problem = arch_problem(f, p, buf, sizeof buf);
    if (problem) return skd_error(SKD_EINVAL, "--%s: %s", f->name, problem);
  }
  if (!c->train_list[0]) return skd_error(SKD_EINVAL, "--train-list is required");
  if (c->scale_min > c->scale_max)
    return skd_error(SKD_EINVAL, "--scale-min %g is larger than --scale-max %g", c->scale_min, c->scale_max);
  if (!c->out_dir[0]) return skd_error(SKD_EINVAL, "--out must name a directory");
  if (c->unlabeled_list[0] && !c->teacher_path[0])
    return skd_error(SKD_EINVAL, "--unlabeled-list needs --teacher: unlabeled images get only the distillation terms");
  if (c->depth_max <= c->depth_min)
    return skd_error(SKD_EINVAL, "--depth-max %g must be larger than --depth-min %g", c->depth_max, c->depth_min);
  if (c->task == SKD_TASK_DEPTH && c->pixel_mask_ignore)
    return skd_error(SKD_EINVAL, "--pixel-mask needs labels: it does not apply to --task depth");
  if (c->task == SKD_TASK_DEPTH && c->d_input_depth && c->d_conditional)
    return skd_error(SKD_EINVAL, "--d-input depth cannot be combined with --d-conditional (a softmax over one "
                     "channel is constant): use --d-input bins for a conditional discriminator");
  return SKD_OK;
}

int skd_train_config_unlabeled_batch(const skd_train_config *c) {
  return !c->unlabeled_list[0] ? 0 : c->unlabeled_batch > 0 ? c->unlabeled_batch : c->batch;
}

skd_status skd_train_config_to_json(const skd_train_config *c, char **out) {
  cJSON *o = cJSON_CreateObject();
  if (!o) return skd_error(SKD_ENOMEM, "config JSON: out of memory");
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    const skd_config_field *f = &fields[i];
    const char *p = (const char *)c + f->offset;
    switch (f->type) {
      case SKD_FIELD_INT: cJSON_AddNumberToObject(o, f->name, *(const int *)p); break;
      case SKD_FIELD_FLAG: cJSON_AddBoolToObject(o, f->name, *(const int *)p); break;
      case SKD_FIELD_FLOAT: cJSON_AddNumberToObject(o, f->name, *(const float *)p); break;
      case SKD_FIELD_STRING: cJSON_AddStringToObject(o, f->name, p); break;
      case SKD_FIELD_CHOICE: cJSON_AddStringToObject(o, f->name, f->choices[*(const int *)p]); break;
      case SKD_FIELD_U64: {
        /* As a string: a double cannot hold every 64-bit seed. */
        char buf[32];
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)*(const uint64_t *)p);
        cJSON_AddStringToObject(o, f->name, buf);
        break;
      }
    }
  }
  char *text = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  if (!text) return skd_error(SKD_ENOMEM, "config JSON: out of memory");
  *out = text;
  return SKD_OK;
}

static skd_status field_error(const char *what, const skd_config_field *f, const char *expected) {
  return skd_error(SKD_EFORMAT, "%s: __metadata__ config.%s: expected %s", what, f->name, expected);
}

static skd_status field_problem(const char *what, const skd_config_field *f, const char *problem) {
  return skd_error(SKD_EFORMAT, "%s: __metadata__ config.%s: %s", what, f->name, problem);
}

skd_status skd_train_config_from_json(skd_train_config *c, const char *json, const char *what) {
  cJSON *o = cJSON_Parse(json);
  if (!o || !cJSON_IsObject(o)) {
    cJSON_Delete(o);
    return skd_error(SKD_EFORMAT, "%s: the run configuration is not a JSON object", what);
  }
  skd_train_config tmp = *c;
  skd_status st = SKD_OK;
  char buf[160];
  const char *problem = NULL;
  for (size_t i = 0; i < sizeof fields / sizeof fields[0] && st == SKD_OK; i++) {
    const skd_config_field *f = &fields[i];
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, f->name);
    if (!v) continue;
    char *p = (char *)&tmp + f->offset;
    /* Numbers are range-checked before the conversion: a double outside
     * int's range has no int value (undefined behaviour in C). */
    int number = cJSON_IsNumber(v);
    if (number && (f->type == SKD_FIELD_INT || f->type == SKD_FIELD_FLOAT) &&
        (problem = range_problem(f, v->valuedouble, buf, sizeof buf)) != NULL) {
      st = field_problem(what, f, problem);
      break;
    }
    switch (f->type) {
      case SKD_FIELD_INT:
        if (!number || v->valuedouble != floor(v->valuedouble) || fabs(v->valuedouble) > 2147483647.0)
          st = field_error(what, f, "an integer");
        else *(int *)p = (int)v->valuedouble;
        break;
      case SKD_FIELD_FLAG:
        if (!cJSON_IsBool(v)) st = field_error(what, f, "true or false");
        else *(int *)p = cJSON_IsTrue(v);
        break;
      case SKD_FIELD_FLOAT:
        if (!number || !(fabs(v->valuedouble) <= 3.4e38)) st = field_error(what, f, "a number");
        else *(float *)p = (float)v->valuedouble;
        break;
      case SKD_FIELD_STRING:
        if (!cJSON_IsString(v) || strlen(v->valuestring) >= f->size) st = field_error(what, f, "a (shorter) string");
        else if ((problem = arch_problem(f, v->valuestring, buf, sizeof buf)) != NULL) st = field_problem(what, f, problem);
        else snprintf(p, f->size, "%s", v->valuestring);
        break;
      case SKD_FIELD_CHOICE: {
        int found = -1;
        for (int k = 0; cJSON_IsString(v) && f->choices[k]; k++)
          if (!strcmp(f->choices[k], v->valuestring)) found = k;
        if (found < 0) st = field_error(what, f, "one of its choices");
        else *(int *)p = found;
        break;
      }
      case SKD_FIELD_U64: {
        char *end = NULL;
        unsigned long long u = cJSON_IsString(v) ? strtoull(v->valuestring, &end, 10) : 0;
        if (!cJSON_IsString(v) || !*v->valuestring || *end) st = field_error(what, f, "a decimal string");
        else *(uint64_t *)p = u;
        break;
      }
    }
  }
  cJSON_Delete(o);
  if (st == SKD_OK) *c = tmp;
  return st;
}
