/* The training loop: data, teacher, student, every loss, the updates. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "skd/dist.h"
#include "skd/ops/elementwise.h"
#include "skd/ops/resize.h"
#include "skd/ops/softmax.h"
#include "train/trainer_private.h"

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A per-step seed for dropout masks: splitmix64 of (seed, step). */
static uint32_t step_seed(uint64_t seed, long step, uint64_t salt) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL * ((uint64_t)step + 1) + salt;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return (uint32_t)(z ^ (z >> 31));
}

skd_tensor trainer_scalar(const struct skd_trainer *t, enum scalar_slot s) {
  return skd_tensor_view(t->scalars.mem, t->scalars.offset + (size_t)s, 1, 1, 1, 1);
}

const skd_train_config *skd_trainer_config(const skd_trainer *t) { return &t->cfg; }
long skd_trainer_step_count(const skd_trainer *t) { return t->step; }
const skd_init_report *skd_trainer_init_report(const skd_trainer *t) { return t->has_init ? &t->init : NULL; }
skd_pspnet *skd_trainer_teacher(skd_trainer *t) { return t->teacher; }
skd_pspnet *skd_trainer_student(skd_trainer *t) { return t->student; }
const skd_dataset *skd_trainer_validation_set(const skd_trainer *t) { return t->val_set; }
double skd_trainer_best_miou(const skd_trainer *t) { return t->best_miou; }

skd_status skd_trainer_check_student(skd_trainer *t) {
  char what[64];
  snprintf(what, sizeof what, "student after step %ld", t->step);
  return skd_nn_params_check_values(&t->student->params, what);
}

unsigned long skd_trainer_buffer_creations(const skd_trainer *t) {
  return skd_arena_buffer_creations(t->arena) + t->student->pool.creations +
         (t->teacher ? t->teacher->pool.creations : 0);
}

void skd_trainer_set_timing(skd_trainer *t, int on) { t->timing = on != 0; }

const char *skd_phase_name(int phase) {
  static const char *const names[SKD_PHASE_COUNT] = {"data", "teacher_fwd", "student_fwd", "task_loss", "pixel",
                                                     "pair", "holistic_g", "d_step", "student_bwd", "optimiser"};
  return phase >= 0 && phase < SKD_PHASE_COUNT ? names[phase] : NULL;
}

static size_t net_param_bytes(const skd_pspnet *net, size_t *optimiser, size_t *pools) {
  if (!net) return 0;
  const skd_nn_params *r = &net->params;
  for (int i = 0; i < r->ntrainable; i++) {
    const skd_param *p = r->trainable[i];
    size_t bytes = skd_tensor_numel(&p->value) * sizeof(float);
    *optimiser += (p->state1.mem ? bytes : 0) + (p->state2.mem ? bytes : 0);
  }
  for (int i = 0; i < SKD_NN_POOL_SLOTS; i++)
    if (net->pool.mem[i]) *pools += net->pool.cap[i] * sizeof(float);
  return (r->values ? r->value_floats * sizeof(float) : 0) + (r->grads ? r->grad_floats * sizeof(float) : 0);
}

void skd_trainer_memory_usage(const skd_trainer *t, skd_trainer_memory *m) {
  memset(m, 0, sizeof *m);
  m->arena = skd_arena_capacity_bytes(t->arena);
  m->params = net_param_bytes(t->student, &m->optimiser, &m->pools) +
              net_param_bytes(t->teacher, &m->optimiser, &m->pools);
  size_t dp, dopt, dother;
  adversary_memory(t->adv, &dp, &dopt, &dother);
  m->params += dp;
  m->optimiser += dopt;
  m->other = dother + S_COUNT * sizeof(float);
  m->workspace = skd_workspace_bytes(t->ctx);
  m->derived = skd_context_derived_bytes(t->ctx);
  m->total = m->arena + m->params + m->optimiser + m->pools + m->workspace + m->derived + m->other;
}

/* Timing mode: waits for the device and adds the time since *mark to the
 * phase. A no-op otherwise (no sync in training). */
static skd_status phase_end(const skd_trainer *t, skd_step_report *r, int phase, double *mark) {
  if (!t->timing) return SKD_OK;
  skd_status st = skd_context_finish(t->ctx);
  double now = now_seconds();
  r->phase_ms[phase] += 1e3 * (now - *mark);
  *mark = now;
  return st;
}

/* miou: the validation score, higher is better (depth: 1 / (1 + abs rel)). */
void skd_trainer_note_validation(skd_trainer *t, double miou) {
  if (isnan(t->best_miou) || miou > t->best_miou) t->best_miou = miou;
}

static skd_status open_data(skd_trainer *t) {
  const skd_train_config *c = &t->cfg;
  const char *dir = c->data_dir[0] ? c->data_dir : NULL;
  const int depth = c->task == SKD_TASK_DEPTH;
  /* Depth: the network's classes are the bins; the list's second column is
   * a depth PNG (the label map only carries the count). */
  skd_status st = depth ? skd_label_map_preset(&t->map, "generic", c->depth_bins)
                        : skd_label_map_preset(&t->map, c->preset, c->classes);
  if (st == SKD_OK) st = skd_dataset_open(&t->train_set, c->train_list, dir, &t->map);
  if (st == SKD_OK && c->val_list[0]) st = skd_dataset_open(&t->val_set, c->val_list, dir, &t->map);
  if (st != SKD_OK) return st;
  skd_loader_config lc;
  memset(&lc, 0, sizeof lc);
  /* Data parallel: this rank's shard of the global batch (ranks divide it). */
  lc.batch = c->batch / t->ranks;
  lc.stream_batch = t->ranks > 1 ? c->batch : 0;
  lc.stream_first = t->rank * lc.batch;
  lc.train = 1;
  lc.first_batch = t->step; /* batch k feeds step k: a resumed run sees the same stream */
  skd_augment_reference(&lc.augment, c->crop);
  lc.augment.scale_min = c->scale_min;
  lc.augment.scale_max = c->scale_max;
  lc.augment.scale_step = c->scale_step;
  lc.augment.mirror = c->mirror;
  if (c->imagenet_norm) skd_normalize_imagenet(&lc.augment.normalize);
  lc.depth_scale = depth ? c->depth_scale : 0.0f;
  st = skd_loader_create(&t->loader, t->train_set, &lc, c->seed);
  lc.depth_scale = 0.0f; /* unlabeled images: no depth to read */
  t->rows = lc.batch;
  if (st != SKD_OK || !c->unlabeled_list[0]) return st;
  /* The unlabeled images: the same augmentation, their own order and draws. */
  st = skd_dataset_open_unlabeled(&t->unlabeled_set, c->unlabeled_list, dir, &t->map);
  int unlabeled = skd_train_config_unlabeled_batch(c);
  lc.batch = unlabeled / t->ranks;
  lc.stream_batch = t->ranks > 1 ? unlabeled : 0;
  lc.stream_first = t->rank * lc.batch;
  t->rows += lc.batch;
  if (st == SKD_OK) st = skd_loader_create(&t->unlabeled_loader, t->unlabeled_set, &lc, c->seed ^ 0x0A1AB1EDULL);
  return st;
}

skd_depth_bins trainer_depth_bins(const skd_train_config *c) {
  skd_depth_bins b = {c->depth_bins, c->depth_min, c->depth_max};
  return b;
}

skd_status trainer_network_config(const skd_net_config *net, int classes, int with_grad, uint64_t seed,
                                  skd_pspnet_config *out) {
  int depth = skd_arch_depth(net->arch);
  if (!depth) return skd_error(SKD_EINVAL, "unknown network '%s'", net->arch);
  skd_pspnet_config_default(out, depth, classes);
  out->width = net->width;
  out->with_grad = with_grad;
  out->seed = seed;
  return SKD_OK;
}

/* The teacher: its checkpoint says what network it is (skd-cl's own), or
 * --teacher-arch/--teacher-width do (a converted reference checkpoint). */
static skd_status open_teacher(skd_trainer *t) {
  skd_train_config stored = t->cfg;
  int found = 0;
  skd_status st = skd_pspnet_open_checkpoint(&t->teacher, t->ctx, t->cfg.teacher_path, &t->cfg.teacher,
                                             t->cfg.classes, &stored, &found);
  if (st != SKD_OK) {
    char msg[2048];
    snprintf(msg, sizeof msg, "%s", skd_error_last());
    return skd_error(st, "teacher: %s", msg);
  }
  if (found) t->cfg.teacher = stored.student;
  const skd_train_config *c = &t->cfg;
  if (found && (stored.task != c->task || (c->task == SKD_TASK_DEPTH && (stored.depth_min != c->depth_min ||
                                                                          stored.depth_max != c->depth_max))))
    return skd_error(SKD_EINVAL, "teacher %s: trained for --task %s%s, this run is --task %s over %g..%g m "
                     "(the bins must mean the same depths)", c->teacher_path, stored.task ? "depth" : "seg",
                     stored.task ? " with other --depth-min/--depth-max" : "", c->task ? "depth" : "seg",
                     (double)c->depth_min, (double)c->depth_max);
  return SKD_OK;
}

static skd_status open_student(skd_trainer *t, const char *resume_path) {
  skd_pspnet_config pc;
  skd_status st = trainer_network_config(&t->cfg.student, t->cfg.classes, 1, t->cfg.seed, &pc);
  if (st == SKD_OK) st = skd_pspnet_create(&t->student, t->ctx, &pc);
  if (st == SKD_OK && !resume_path && t->cfg.init_path[0]) {
    st = skd_nn_params_init_from(&t->student->params, t->cfg.init_path, t->cfg.init_strict, &t->init);
    t->has_init = st == SKD_OK;
    if (st != SKD_OK) {
      char msg[2048];
      snprintf(msg, sizeof msg, "%s", skd_error_last());
      st = skd_error(st, "--init: %s", msg);
    }
  }
  if (st != SKD_OK || !resume_path) return st;
  skd_safetensors *f = NULL;
  st = skd_safetensors_open(&f, resume_path);
  if (st == SKD_OK) st = skd_nn_params_read(&t->student->params, f, NULL, SKD_NN_LOAD_NETWORK_ONLY);
  if (st == SKD_OK) st = checkpoint_read_optim(f, &t->student->params, "optim.student.");
  if (st == SKD_OK && t->adv) st = adversary_read(t->adv, f);
  skd_safetensors_close(f);
  return st;
}

static skd_status bn_sum(void *user, float *buf, size_t n);
static skd_status bn_gather(void *user, const float *in, float *out, size_t n);

int trainer_global_row(const skd_trainer *t, int row) {
  const int labeled = t->cfg.batch / t->ranks, unlabeled = skd_train_config_unlabeled_batch(&t->cfg) / t->ranks;
  return row < labeled ? t->rank * labeled + row : t->cfg.batch + t->rank * unlabeled + (row - labeled);
}

/* Data parallel: the ranks divide the batches, and run one configuration
 * (its hash compared, paths left out). */
static skd_status dist_check_config(skd_trainer *t) {
  if (t->ranks < 2) return SKD_OK;
  const skd_train_config *c = &t->cfg;
  int unlabeled = skd_train_config_unlabeled_batch(c);
  if (c->batch % t->ranks || unlabeled % t->ranks)
    return skd_error(SKD_EINVAL, "--batch %d%s: the global batch must be a multiple of the %d ranks", c->batch,
                     unlabeled % t->ranks ? " (and the unlabeled batch)" : "", t->ranks);
  /* Paths may differ per node (local copies, bench's temporary inputs). */
  skd_train_config same = *c;
  memset(same.out_dir, 0, sizeof same.out_dir);
  memset(same.data_dir, 0, sizeof same.data_dir);
  memset(same.train_list, 0, sizeof same.train_list);
  memset(same.val_list, 0, sizeof same.val_list);
  memset(same.unlabeled_list, 0, sizeof same.unlabeled_list);
  memset(same.teacher_path, 0, sizeof same.teacher_path);
  memset(same.init_path, 0, sizeof same.init_path);
  char *json = NULL;
  skd_status st = skd_train_config_to_json(&same, &json);
  if (st != SKD_OK) return st;
  uint64_t h = skd_dist_hash(json, strlen(json));
  free(json);
  long step = t->step;
  st = skd_dist_check_same(h ^ (uint64_t)step * 0x9E3779B97F4A7C15ULL, "training configuration (or resume step)");
  /* Buckets of other sizes would pair sums of different lengths. */
  return st == SKD_OK ? skd_dist_check_same(skd_dist_bucket_floats(), "SKD_DIST_BUCKET_MB") : st;
}

/* Rank 0's student (values and running statistics) and D on every rank. */
static skd_status dist_broadcast_start(skd_trainer *t) {
  if (t->ranks < 2) return SKD_OK;
  const skd_nn_params *r = &t->student->params;
  skd_param **all = malloc((size_t)r->count * sizeof *all);
  if (!all) return skd_error(SKD_ENOMEM, "trainer: out of host memory");
  for (int i = 0; i < r->count; i++) all[i] = &r->entries[i]->param;
  skd_status st = dist_broadcast_params(t, all, r->count);
  free(all);
  int n = 0;
  skd_param *const *d = t->adv ? adversary_params(t->adv, &n, 1) : NULL;
  if (st == SKD_OK && d) st = dist_broadcast_params(t, d, n);
  return st;
}

skd_status skd_trainer_create(skd_trainer **out, skd_context *ctx, const skd_train_config *cfg,
                              const char *resume_path) {
  *out = NULL;
  skd_trainer *t = calloc(1, sizeof *t);
  if (!t) return skd_error(SKD_ENOMEM, "trainer: out of host memory");
  t->ctx = ctx;
  t->cfg = *cfg;
  t->best_miou = NAN;
  t->rank = skd_dist_rank();
  t->ranks = skd_dist_size();
  /* the collectives behind synchronised BN and the penalty's step (on by default with several ranks) */
  t->sync_bn = t->ranks > 1;
  t->bn_sync.ranks = t->ranks;
  t->bn_sync.rank = t->rank;
  t->bn_sync.sum = bn_sum;
  t->bn_sync.gather = bn_gather;
  skd_status st = SKD_OK;
  if (resume_path) {
    /* The configuration comes from the caller (the CLI starts from the one
     * stored in the checkpoint and applies its options); the checkpoint gives
     * the step and the best mIoU. */
    skd_train_config stored = *cfg;
    int found = 0;
    st = skd_checkpoint_read_config(resume_path, &stored, &found, &t->step, &t->best_miou);
    if (st == SKD_OK && !found)
      st = skd_error(SKD_EFORMAT, "%s: not a training checkpoint of skd-cl (no run configuration in its metadata)",
                     resume_path);
    if (st == SKD_OK && t->step >= t->cfg.steps)
      st = skd_error(SKD_EINVAL, "%s is at step %ld of %d: nothing left to train (raise --steps)", resume_path,
                     t->step, t->cfg.steps);
  }
  if (st == SKD_OK) st = skd_train_config_validate(&t->cfg);
  if (st == SKD_OK) st = dist_check_config(t);
  if (st == SKD_OK) st = open_data(t);
  if (st == SKD_OK) t->cfg.classes = t->map.classes;
  if (st == SKD_OK && t->cfg.teacher_path[0]) st = open_teacher(t);
  if (st == SKD_OK && t->teacher && t->cfg.holistic) st = adversary_create(t);
  if (st == SKD_OK) st = open_student(t, resume_path);
  if (st == SKD_OK) { /* the global rows of this rank's shards (one process: the identity) */
    t->student->dropout_row0 = trainer_global_row(t, 0);
    t->student->dropout_split = t->cfg.batch / t->ranks;
    t->student->dropout_row0_rest = trainer_global_row(t, t->cfg.batch / t->ranks);
  }
  if (st == SKD_OK && t->ranks > 1) { /* each unit's gradients go to their allreduce as backward finishes them */
    t->student->exec.grads_ready = dist_grads_hook;
    t->student->exec.grads_user = t;
  }
  if (st == SKD_OK) st = dist_broadcast_start(t);
  if (st == SKD_OK) st = skd_pspnet_output_shape(t->student, t->cfg.crop, t->cfg.crop, &t->logit_h, &t->logit_w);
  if (st == SKD_OK) st = skd_optim_sgd_init(&t->opt, t->cfg.lr, t->cfg.momentum, 0.0, t->cfg.weight_decay, 0);
  if (st == SKD_OK) t->opt.step = t->step;
  if (st == SKD_OK) st = skd_arena_create(ctx, &t->arena, 0);
  if (st == SKD_OK) st = skd_tensor_alloc(ctx, &t->scalars, 1, 1, 1, S_COUNT);
  if (st == SKD_OK) st = skd_tensor_fill(ctx, &t->scalars, 0.0f);
  if (st == SKD_OK) {
    size_t pixels = (size_t)t->rows * (size_t)t->cfg.crop * (size_t)t->cfg.crop;
    t->label_host = malloc(pixels * sizeof(float));
    t->label_small = malloc((size_t)t->rows * (size_t)t->logit_h * (size_t)t->logit_w * sizeof(float));
    if (!t->label_host || !t->label_small) st = skd_error(SKD_ENOMEM, "trainer: out of host memory for labels");
  }
  if (st != SKD_OK) {
    skd_trainer_free(t);
    return st;
  }
  *out = t;
  return SKD_OK;
}

void skd_trainer_free(skd_trainer *t) {
  if (!t) return;
  skd_context_finish(t->ctx); /* queued writes may still read the gradient stage */
  skd_loader_free(t->loader);
  skd_loader_free(t->unlabeled_loader);
  skd_dataset_free(t->unlabeled_set);
  skd_dataset_free(t->train_set);
  skd_dataset_free(t->val_set);
  adversary_free(t->adv);
  skd_pspnet_free(t->student);
  skd_pspnet_free(t->teacher);
  skd_arena_free(t->arena);
  skd_tensor_release(&t->scalars);
  free(t->label_host);
  free(t->label_small);
  dist_grads_free(&t->grads);
  free(t);
}

/* The step's images, labeled then unlabeled (u NULL: none), into one
 * tensor; labels as float class ids at crop size (the unlabeled ones all
 * ignore, so the task loss skips them) and, for the pixel-loss mask, at
 * logit size (nearest pixel centre; unlabeled pixels are never masked). */
static skd_status upload_batch(skd_trainer *t, const skd_batch *b, const skd_batch *u, skd_tensor *image,
                               skd_tensor *labels, skd_tensor *small) {
  int rows = b->n + (u ? u->n : 0);
  size_t plane = (size_t)b->h * (size_t)b->w;
  skd_status st = skd_arena_tensor(t->arena, image, rows, 3, b->h, b->w);
  if (st == SKD_OK) {
    skd_tensor part = skd_tensor_view(image->mem, image->offset, b->n, 3, b->h, b->w);
    st = skd_tensor_upload(t->ctx, &part, b->image);
  }
  if (st == SKD_OK && u) {
    skd_tensor part = skd_tensor_view(image->mem, image->offset + (size_t)b->n * 3 * plane, u->n, 3, b->h, b->w);
    st = skd_tensor_upload(t->ctx, &part, u->image);
  }
  /* Depth: metres, 0 (missing) for the unlabeled rows. */
  const int depth = t->cfg.task == SKD_TASK_DEPTH;
  for (size_t i = 0; i < (size_t)b->n * plane; i++) t->label_host[i] = depth ? b->depth[i] : (float)b->label[i];
  for (size_t i = (size_t)b->n * plane; i < (size_t)rows * plane; i++)
    t->label_host[i] = depth ? 0.0f : (float)t->map.ignore;
  if (st == SKD_OK) st = skd_arena_tensor(t->arena, labels, rows, 1, b->h, b->w);
  if (st == SKD_OK) st = skd_tensor_upload(t->ctx, labels, t->label_host);
  if (st != SKD_OK || !t->cfg.pixel_mask_ignore) return st;
  int hs = t->logit_h, ws = t->logit_w;
  for (int n = 0; n < rows; n++)
    for (int y = 0; y < hs; y++)
      for (int x = 0; x < ws; x++) {
        int sy = (int)(((double)y + 0.5) * b->h / hs), sx = (int)(((double)x + 0.5) * b->w / ws);
        t->label_small[((size_t)n * hs + y) * ws + x] =
            n < b->n ? (float)b->label[(size_t)n * plane + (size_t)sy * b->w + sx] : 0.0f;
      }
  st = skd_arena_tensor(t->arena, small, rows, 1, hs, ws);
  if (st == SKD_OK) st = skd_tensor_upload(t->ctx, small, t->label_small);
  return st;
}

/* weight * CE(up(logits), labels) into the two scalar slots; dlogits += its gradient. */
static skd_status task_term(skd_trainer *t, const skd_tensor *logits, const skd_tensor *labels, float weight,
                            enum scalar_slot loss, enum scalar_slot count, const skd_tensor *dlogits) {
  skd_tensor up, dup, l = trainer_scalar(t, loss), c = trainer_scalar(t, count);
  int ignore = t->map.ignore;
  skd_status st = skd_arena_tensor(t->arena, &up, logits->n, logits->c, labels->h, labels->w);
  if (st == SKD_OK) st = skd_arena_tensor(t->arena, &dup, logits->n, logits->c, labels->h, labels->w);
  if (st == SKD_OK) st = skd_resize_bilinear_forward(t->ctx, logits, &up);
  if (t->cfg.task == SKD_TASK_DEPTH) { /* the bins' soft-target cross-entropy against depth in metres */
    skd_depth_bins bins = trainer_depth_bins(&t->cfg);
    if (st == SKD_OK) st = skd_tensor_fill(t->ctx, &dup, 0.0f);
    if (st == SKD_OK) st = skd_depth_loss(t->ctx, &bins, &up, labels, weight, &dup, &l);
    if (st == SKD_OK) st = skd_resize_bilinear_backward(t->ctx, &dup, dlogits);
    return st;
  }
  if (st == SKD_OK) st = skd_cross_entropy_forward(t->ctx, &up, labels, ignore, &l, &c);
  if (st == SKD_OK) st = skd_tensor_fill(t->ctx, &dup, 0.0f);
  if (st == SKD_OK) st = skd_cross_entropy_backward(t->ctx, &up, labels, ignore, &c, weight, &dup);
  if (st == SKD_OK) st = skd_resize_bilinear_backward(t->ctx, &dup, dlogits);
  return st;
}

static skd_status zeros_like(skd_trainer *t, const skd_tensor *like, skd_tensor *out) {
  skd_status st = skd_arena_tensor(t->arena, out, like->n, like->c, like->h, like->w);
  return st == SKD_OK ? skd_tensor_fill(t->ctx, out, 0.0f) : st;
}

static skd_status check_finite(const skd_trainer *t, const float *s, int distill) {
  struct { const char *name; enum scalar_slot slot; int on; } terms[] = {
      {"task (cross-entropy)", S_CE, 1},
      {"task (auxiliary cross-entropy)", S_DSN, 1},
      {"pixel-wise", S_PIXEL, distill && t->cfg.pixel},
      {"pair-wise", S_PAIR, distill && t->cfg.pair},
      {"holistic", S_HOLISTIC, t->adv != NULL},
      {"discriminator's", S_D_LOSS, t->adv != NULL},
  };
  for (size_t i = 0; i < sizeof terms / sizeof terms[0]; i++)
    if (terms[i].on && !isfinite(s[terms[i].slot]))
      return skd_error(SKD_EINVAL, "the %s loss is %g at step %ld: training stopped (the last saved checkpoint is "
                       "untouched)", terms[i].name, (double)s[terms[i].slot], t->step + 1);
  return SKD_OK;
}

static skd_status bn_sum(void *user, float *buf, size_t n) { (void)user; return skd_dist_allreduce_sum(buf, n); }
static skd_status bn_gather(void *user, const float *in, float *out, size_t n) {
  (void)user;
  return skd_dist_allgather(in, out, n * sizeof *in);
}

skd_status skd_trainer_set_sync_bn(skd_trainer *t, int on) {
  t->sync_bn = on != 0 && t->ranks > 1;
  /* Ranks that disagree would wait for each other's collectives forever. */
  return skd_dist_check_same((uint64_t)t->sync_bn, "--sync-bn setting");
}

static skd_status step_body(skd_trainer *t, skd_step_report *r);

/* --sync-bn: the student's training-mode BN layers go through the hook for this step. */
skd_status skd_trainer_step(skd_trainer *t, skd_step_report *r) {
  if (t->sync_bn) skd_batchnorm_set_sync(t->ctx, &t->bn_sync);
  if (t->ranks > 1) skd_holistic_set_sync(t->ctx, &t->bn_sync); /* the penalty's step over the whole batch */
  skd_status st = step_body(t, r);
  if (t->sync_bn) skd_batchnorm_set_sync(t->ctx, NULL);
  if (t->ranks > 1) skd_holistic_set_sync(t->ctx, NULL);
  return st;
}

static skd_status step_body(skd_trainer *t, skd_step_report *r) {
  const skd_train_config *c = &t->cfg;
  double t0 = now_seconds(), mark = t0;
  memset(r, 0, sizeof *r);
  const skd_batch *b = NULL, *u = NULL;
  skd_status st = skd_loader_next(t->loader, &b);
  if (st == SKD_OK && t->unlabeled_loader) st = skd_loader_next(t->unlabeled_loader, &u);
  if (st != SKD_OK) return st;
  skd_arena_reset(t->arena);
  skd_tensor image, labels, small = {0}, dq, ddsn, df = {0};
  st = upload_batch(t, b, u, &image, &labels, &small);
  if (st == SKD_OK) st = phase_end(t, r, SKD_PHASE_DATA, &mark);
  if (st != SKD_OK) return st;

  /* 1. teacher (eval mode), 2. student (train mode) */
  skd_pspnet_outputs to, so;
  int distill = t->teacher != NULL;
  if (distill) st = skd_pspnet_forward(t->teacher, t->arena, &image, 0, 0, &to);
  if (st == SKD_OK) st = phase_end(t, r, SKD_PHASE_TEACHER_FWD, &mark);
  if (st == SKD_OK)
    st = skd_pspnet_forward(t->student, t->arena, &image, SKD_PSPNET_TRAIN | SKD_PSPNET_KEEP,
                            step_seed(c->seed, t->step, 1), &so);
  if (st == SKD_OK) st = phase_end(t, r, SKD_PHASE_STUDENT_FWD, &mark);

  /* 3. every term and its gradient with respect to the student's outputs */
  t->distill_ramp = c->distill_warmup > 0 && t->step < c->distill_warmup
                        ? (float)(t->step + 1) / (float)c->distill_warmup : 1.0f;
  int norms = c->log_grad_norms && ((t->step + 1) % c->log_every == 0 || t->step + 1 == c->steps);
  grad_snapshots snaps = {0};
  if (st == SKD_OK) st = zeros_like(t, &so.q, &dq);
  if (st == SKD_OK) st = zeros_like(t, &so.q_dsn, &ddsn);
  if (st == SKD_OK) st = task_term(t, &so.q, &labels, 1.0f, S_CE, S_CE_COUNT, &dq);
  if (st == SKD_OK && norms) st = grad_snapshot(t, &snaps, SKD_TERM_TASK, &dq);
  if (st == SKD_OK) st = task_term(t, &so.q_dsn, &labels, c->dsn_weight, S_DSN, S_DSN_COUNT, &ddsn);
  if (st == SKD_OK) st = phase_end(t, r, SKD_PHASE_TASK_LOSS, &mark);
  if (st == SKD_OK && distill && c->pixel) {
    skd_pixel_loss_config pc;
    skd_pixel_loss_config_default(&pc);
    pc.tau = c->tau;
    pc.norm = c->pixel_norm_mean ? SKD_PIXEL_NORM_MEAN : SKD_PIXEL_NORM_REFERENCE;
    pc.mask_ignore = c->pixel_mask_ignore;
    pc.ignore_label = t->map.ignore;
    skd_tensor loss = trainer_scalar(t, S_PIXEL);
    st = skd_pixel_loss(t->ctx, &pc, &so.q, &to.q, pc.mask_ignore ? &small : NULL, c->lambda_pi * t->distill_ramp,
                        &dq, &loss, NULL);
    if (st == SKD_OK && norms) st = grad_snapshot(t, &snaps, SKD_TERM_PIXEL, &dq);
    if (st == SKD_OK) st = phase_end(t, r, SKD_PHASE_PIXEL, &mark);
  }
  if (st == SKD_OK && distill && c->pair) {
    skd_pair_loss_config ac;
    skd_pair_loss_config_default(&ac);
    ac.node_size = c->pair_node_size;
    ac.pool_scale = c->pair_pool_scale;
    ac.pool = c->pair_avg_pool ? SKD_PAIR_POOL_AVG : SKD_PAIR_POOL_MAX;
    ac.window_radius = c->pair_window;
    ac.norm = c->pair_detached_norm ? SKD_PAIR_NORM_DETACHED : SKD_PAIR_NORM_EXACT;
    skd_tensor loss = trainer_scalar(t, S_PAIR);
    st = zeros_like(t, &so.f, &df);
    if (st == SKD_OK) st = skd_pair_loss(t->ctx, &ac, &so.f, &to.f, c->lambda_pa * t->distill_ramp, &df, &loss);
    if (st == SKD_OK) st = phase_end(t, r, SKD_PHASE_PAIR, &mark);
  }
  if (st == SKD_OK && t->adv) st = adversary_generator_term(t, &image, &so.q, &dq);
  if (st == SKD_OK && t->adv && norms) st = grad_snapshot(t, &snaps, SKD_TERM_HOLISTIC, &dq);
  if (st == SKD_OK && t->adv) st = phase_end(t, r, SKD_PHASE_HOLISTIC_G, &mark);
  if (st == SKD_OK && norms) st = grad_norms_compute(t, &snaps, df.mem ? &df : NULL, r);
  grad_snapshots_free(&snaps);
  /* 4. the discriminator's gradients on the detached logits (its update
   * waits for the check below) */
  if (st == SKD_OK && t->adv) st = adversary_gradients(t, &image, &so.q, &to.q);
  if (st == SKD_OK && t->adv) st = phase_end(t, r, SKD_PHASE_D_STEP, &mark);

  /* Every term, D's included, reaches the host before any update, so a NaN
   * leaves the student's and D's parameters untouched. */
  float s[S_COUNT];
  if (st == SKD_OK) st = skd_tensor_download(t->ctx, &t->scalars, s);
  if (st == SKD_OK && t->ranks > 1) { /* the terms' mean over ranks: every rank reports and stops alike */
    st = skd_dist_allreduce_sum(s, S_COUNT);
    for (int i = 0; i < S_COUNT; i++) s[i] /= (float)t->ranks;
  }
  if (st == SKD_OK) st = check_finite(t, s, distill);
  if (st == SKD_OK) st = phase_end(t, r, SKD_PHASE_OPTIMISER, &mark);
  if (st != SKD_OK) return st;

  double lr = skd_poly_lr(c->lr, t->step, c->steps, c->poly_power);
  t->opt.lr = lr;
  st = skd_nn_params_zero_grad(&t->student->params);
  /* Data parallel: D's allreduce runs behind the student's backward, whose
   * own buckets start as it goes. */
  if (st == SKD_OK) st = dist_grads_begin(t);
  if (st == SKD_OK) st = skd_pspnet_backward(t->student, &dq, &ddsn, df.mem ? &df : NULL);
  if (st == SKD_OK) st = phase_end(t, r, SKD_PHASE_STUDENT_BWD, &mark);
  if (st == SKD_OK) st = dist_grads_finish(t);
  r->allreduce_ms = t->grads.busy_ms;
  r->allreduce_exposed_ms = t->grads.after_backward_ms;
  r->write_back_ms = t->grads.write_back_ms;
  if (st == SKD_OK)
    st = skd_optim_step(t->ctx, &t->opt, t->student->params.trainable, t->student->params.ntrainable);
  if (st == SKD_OK) st = phase_end(t, r, SKD_PHASE_OPTIMISER, &mark);
  if (st == SKD_OK && t->adv) st = adversary_update(t);
  if (st == SKD_OK && t->adv) st = phase_end(t, r, SKD_PHASE_D_STEP, &mark);
  if (st != SKD_OK) return st;

  t->step++;
  r->step = t->step;
  r->lr = lr;
  r->task = s[S_CE] + c->dsn_weight * s[S_DSN];
  r->pixel = distill && c->pixel ? s[S_PIXEL] : 0.0;
  r->pair = distill && c->pair ? s[S_PAIR] : 0.0;
  r->holistic = t->adv ? s[S_HOLISTIC] : 0.0;
  r->distill_ramp = t->distill_ramp;
  r->loss = r->task + t->distill_ramp * (c->lambda_pi * r->pixel + c->lambda_pa * r->pair + c->lambda_d * r->holistic);
  if (t->adv) {
    r->d_loss = s[S_D_LOSS];
    r->d_real = s[S_D_REAL];
    r->d_fake = s[S_D_FAKE];
    r->d_penalty = s[S_D_PENALTY];
  }
  r->seconds = now_seconds() - t0;
  return SKD_OK;
}

skd_status skd_trainer_validate(skd_trainer *t, skd_metrics *m) {
  if (!t->val_set) return skd_error(SKD_EINVAL, "validation needs --val-list");
  if (t->cfg.task == SKD_TASK_DEPTH)
    return skd_error(SKD_EINVAL, "a --task depth run is validated with skd_trainer_validate_depth");
  skd_eval_options opt;
  skd_eval_options_default(&opt);
  if (t->cfg.imagenet_norm) skd_normalize_imagenet(&opt.normalize);
  skd_confusion conf;
  skd_status st = skd_confusion_init(&conf, t->cfg.classes);
  /* Data parallel: every rank its share of the images, the matrices summed. */
  opt.shard = t->rank;
  opt.shards = t->ranks;
  if (st == SKD_OK) st = skd_evaluate(t->student, t->arena, t->val_set, &opt, &conf, NULL, NULL);
  if (st == SKD_OK) st = skd_dist_allreduce_u64(conf.counts, (size_t)conf.classes * (size_t)conf.classes);
  if (st == SKD_OK) st = skd_dist_allreduce_u64(&conf.ignored, 1);
  if (st == SKD_OK) st = skd_metrics_compute(&conf, m);
  skd_confusion_free(&conf);
  return st;
}
