/* The trainer's promises (include/skd/train.h), end to end on a tiny demo set
 * (16 train / 4 val images of 64x64, resnet18 at width 1/16, batch 2):
 *   - resume is exact: 4 steps straight and 2 + save + resume + 2 give
 *     bit-identical checkpoints (student, BN statistics, momentum, D with its
 *     spectral-norm vectors, D's momentum) and bit-identical step reports;
 *   - every loss combination runs, reports finite terms, zeros the ones that
 *     are off, and never changes the teacher;
 *   - a NaN stops the step with a message naming the term and the step,
 *     before any parameter is updated;
 *   - checkpoints: config, step and best mIoU stored; the student part loads
 *     as a plain network and serves as the teacher of another run;
 *   - validation is in [0, 1] and repeatable;
 *   - after the first step, steps create no device buffers.
 * The holistic loss needs 16x16 logit maps, i.e. crop 128; the rest uses 64. */
#include <stdint.h>
#include <time.h>

#include "support.h"
#include "skd/train.h"

#define TEACHER_WIDTH 0.125f

static double seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void demo_data(void) {
  skd_demo_options o;
  skd_demo_options_default(&o);
  o.width = o.height = 64;
  o.train_count = 16;
  o.val_count = 4;
  CK_OK(skd_demo_dataset_write(tmp_path("demo"), 3, &o));
}

/* No distillation term on; the caller turns on what it tests. */
static void tiny_config(skd_train_config *c, int crop) {
  skd_train_config_default(c);
  snprintf(c->train_list, sizeof c->train_list, "%s", tmp_path("demo/train.txt"));
  snprintf(c->val_list, sizeof c->val_list, "%s", tmp_path("demo/val.txt"));
  snprintf(c->preset, sizeof c->preset, "demo");
  snprintf(c->out_dir, sizeof c->out_dir, "%s", tmp_path("run"));
  c->crop = crop;
  c->batch = 2;
  c->student.width = 0.0625f;
  c->steps = 4;
  c->seed = 7;
  c->pixel = c->pair = c->holistic = 0;
  c->d_width = 4;
}

/* A copy of checkpoint src at dst (may be src), every value of tensor
 * nan_tensor NaN and metadata key set to value (either NULL: unchanged),
 * written past the save's own checks so that loading must judge it. */
static void copy_checkpoint(const char *src, const char *dst, const char *nan_tensor, const char *key,
                            const char *value) {
  skd_safetensors *f = NULL;
  skd_safetensors_writer *w = NULL;
  CK_OK(skd_safetensors_open(&f, src));
  CK_OK(skd_safetensors_writer_create(&w));
  for (int i = 0; i < skd_safetensors_count(f); i++) {
    const skd_safetensors_entry *e = skd_safetensors_entry_at(f, i);
    float *v = host_alloc(e->numel);
    CK_OK(skd_safetensors_read_f32(f, i, v, e->numel));
    if (nan_tensor && strcmp(e->name, nan_tensor) == 0)
      for (size_t j = 0; j < e->numel; j++) v[j] = NAN;
    CK_OK(skd_safetensors_writer_add(w, e->name, e->ndim, e->shape, v));
  }
  for (int i = 0; i < skd_safetensors_metadata_count(f); i++) {
    const char *k, *v;
    skd_safetensors_metadata_at(f, i, &k, &v);
    CK_OK(skd_safetensors_writer_set_metadata(w, k, key && strcmp(k, key) == 0 ? value : v));
  }
  skd_safetensors_close(f);
  CK_OK(skd_safetensors_write(w, dst));
  skd_safetensors_writer_free(w);
}

/* A reference-style teacher checkpoint (no run config): a fresh resnet18 at
 * width 1/8; with nan_head its classifier weights are NaN (its logits too). */
static void write_teacher(const char *path, int nan_head) {
  skd_pspnet_config pc;
  skd_pspnet_config_default(&pc, 18, SKD_DEMO_CLASSES);
  pc.width = TEACHER_WIDTH;
  pc.with_grad = 0;
  pc.seed = 11;
  skd_pspnet *net = NULL;
  CK_OK(skd_pspnet_create(&net, T, &pc));
  CK_OK(skd_nn_params_save(&net->params, path));
  if (nan_head) copy_checkpoint(path, path, "head.weight", NULL, NULL);
  skd_pspnet_free(net);
}

/* The teacher's classifier weights turned NaN on the device (a teacher file
 * with NaN is refused when it is read). */
static void poison_teacher_head(skd_trainer *t) {
  skd_pspnet *teacher = skd_trainer_teacher(t);
  ck_assert(teacher != NULL);
  skd_nn_entry *e = skd_nn_params_find(&teacher->params, "head.weight");
  ck_assert(e != NULL);
  CK_OK(skd_tensor_fill(T, &e->param.value, NAN));
  skd_context_changed(T, e->param.value.mem);
}

static void use_teacher(skd_train_config *c, const char *path) {
  snprintf(c->teacher_path, sizeof c->teacher_path, "%s", path);
  snprintf(c->teacher.arch, sizeof c->teacher.arch, "resnet18");
  c->teacher.width = TEACHER_WIDTH;
}

static uint64_t file_hash(const char *path) {
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "cannot open %s", path);
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  int ch;
  while ((ch = fgetc(f)) != EOF) h = (h ^ (uint64_t)ch) * 1099511628211ULL;
  fclose(f);
  return h;
}

static float *read_tensor(skd_safetensors *f, int i) {
  const skd_safetensors_entry *e = skd_safetensors_entry_at(f, i);
  float *v = malloc((e->numel ? e->numel : 1) * sizeof *v);
  ck_assert(v != NULL);
  CK_OK(skd_safetensors_read_f32(f, i, v, e->numel));
  return v;
}

/* Tensors that are state, not parameters: BN running statistics and the
 * spectral-norm vectors (a failed step may have advanced them). */
static int is_statistic(const char *name) {
  return strstr(name, "running_") || strstr(name, "weight_u") || strstr(name, "weight_v");
}

/* Compares two checkpoints tensor by tensor, bit for bit (every tensor, or
 * with params_only those that are not statistics). Prints every difference
 * and returns how many tensors differ; counts[] gets the tensors compared per
 * group (student, optim.student., disc., optim.disc.). */
static int checkpoint_diff(const char *a, const char *b, int params_only, int counts[4]) {
  skd_safetensors *fa = NULL, *fb = NULL;
  CK_OK(skd_safetensors_open(&fa, a));
  CK_OK(skd_safetensors_open(&fb, b));
  ck_assert_int_eq(skd_safetensors_count(fa), skd_safetensors_count(fb));
  int differ = 0;
  memset(counts, 0, 4 * sizeof *counts);
  for (int i = 0; i < skd_safetensors_count(fa); i++) {
    const skd_safetensors_entry *ea = skd_safetensors_entry_at(fa, i), *eb = skd_safetensors_entry_at(fb, i);
    ck_assert_str_eq(ea->name, eb->name);
    ck_assert_int_eq((int)ea->numel, (int)eb->numel);
    if (params_only && is_statistic(ea->name)) continue;
    int group = !strncmp(ea->name, "optim.student.", 14) ? 1 : !strncmp(ea->name, "disc.", 5) ? 2
                : !strncmp(ea->name, "optim.disc.", 11) ? 3 : 0;
    counts[group]++;
    float *va = read_tensor(fa, i), *vb = read_tensor(fb, i);
    if (memcmp(va, vb, ea->numel * sizeof *va) != 0) {
      double worst = 0;
      size_t at = 0;
      for (size_t k = 0; k < ea->numel; k++) {
        double d = fabs((double)va[k] - (double)vb[k]);
        if (!(d <= worst)) worst = d, at = k;
      }
      printf("DIFF %s: max |a - b| = %g at %zu (%.9g vs %.9g)\n", ea->name, worst, at, (double)va[at],
             (double)vb[at]);
      differ++;
    }
    free(va);
    free(vb);
  }
  skd_safetensors_close(fa);
  skd_safetensors_close(fb);
  return differ;
}

static void expect_finite_report(const skd_step_report *r, const skd_train_config *c, int distill) {
  int pixel = distill && c->pixel, pair = distill && c->pair, ho = distill && c->holistic;
  double v[] = {r->lr, r->loss, r->task, r->pixel, r->pair, r->holistic, r->d_loss, r->d_real, r->d_fake,
                r->d_penalty};
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) ck_assert_msg(isfinite(v[i]), "report value %zu: %g", i, v[i]);
  ck_assert_msg(r->task > 0, "task %g", r->task);
  ck_assert_msg(pixel ? r->pixel > 0 : r->pixel == 0, "pixel %g (on: %d)", r->pixel, pixel);
  ck_assert_msg(pair ? r->pair > 0 : r->pair == 0, "pair %g (on: %d)", r->pair, pair);
  ck_assert_msg(ho ? r->holistic != 0 : r->holistic == 0, "holistic %g (on: %d)", r->holistic, ho);
  if (!ho)
    ck_assert_msg(r->d_loss == 0 && r->d_real == 0 && r->d_fake == 0 && r->d_penalty == 0,
                  "D terms without holistic: %g %g %g %g", r->d_loss, r->d_real, r->d_fake, r->d_penalty);
  else
    ck_assert_msg(r->d_penalty >= 0 && r->d_loss != 0, "D terms: loss %g penalty %g", r->d_loss, r->d_penalty);
  double total = r->task + r->distill_ramp * (c->lambda_pi * r->pixel + c->lambda_pa * r->pair + c->lambda_d * r->holistic);
  ck_assert_msg(fabs(r->loss - total) <= 1e-12 * fabs(total), "loss %.17g, terms sum to %.17g", r->loss, total);
}

/* Runs steps until `until`, saving at `save_at` (0: never) to save_path, then
 * at `until` to final_path. reports[k] gets step k + 1's report. */
static void run(const skd_train_config *c, const char *resume, int save_at, const char *save_path, int until,
                const char *final_path, skd_step_report *reports) {
  skd_trainer *t = NULL;
  CK_OK(skd_trainer_create(&t, T, c, resume));
  while (skd_trainer_step_count(t) < until) {
    long k = skd_trainer_step_count(t);
    CK_OK(skd_trainer_step(t, &reports[k]));
    ck_assert_int_eq(reports[k].step, k + 1);
    expect_finite_report(&reports[k], skd_trainer_config(t), c->teacher_path[0] != 0);
    if (k + 1 == save_at) CK_OK(skd_trainer_save(t, save_path));
  }
  CK_OK(skd_trainer_save(t, final_path));
  skd_trainer_free(t);
}

static void same_reports(const skd_step_report *a, const skd_step_report *b) {
  double va[] = {a->lr, a->loss, a->task, a->pixel, a->pair, a->holistic, a->d_loss, a->d_real, a->d_fake,
                 a->d_penalty};
  double vb[] = {b->lr, b->loss, b->task, b->pixel, b->pair, b->holistic, b->d_loss, b->d_real, b->d_fake,
                 b->d_penalty};
  ck_assert_int_eq(a->step, b->step);
  for (size_t i = 0; i < sizeof va / sizeof va[0]; i++)
    ck_assert_msg(memcmp(&va[i], &vb[i], sizeof va[i]) == 0, "step %ld, report value %zu: %.17g vs %.17g",
                  a->step, i, va[i], vb[i]);
}

/* 4 steps straight vs 2 + save + a new trainer resumed + 2. */
static void check_resume(const skd_train_config *c, int expect_disc) {
  skd_step_report straight[4], resumed[4];
  memset(resumed, 0, sizeof resumed);
  double t0 = seconds();
  run(c, NULL, 2, tmp_path("half.safetensors"), 4, tmp_path("straight.safetensors"), straight);
  double t1 = seconds();
  run(c, tmp_path("half.safetensors"), 0, NULL, 4, tmp_path("resumed.safetensors"), resumed);
  printf("TIME crop %d, teacher %s: 4 steps %.2f s, resume + 2 steps %.2f s\n", c->crop,
         c->teacher_path[0] ? "yes" : "no", t1 - t0, seconds() - t1);
  int counts[4];
  int differ = checkpoint_diff(tmp_path("straight.safetensors"), tmp_path("resumed.safetensors"), 0, counts);
  printf("resume crop %d: %d student, %d optim.student, %d disc, %d optim.disc tensors compared, %d differ\n",
         c->crop, counts[0], counts[1], counts[2], counts[3], differ);
  ck_assert_msg(differ == 0, "%d tensors differ between the straight and the resumed run", differ);
  ck_assert_int_gt(counts[0], 0);
  ck_assert_int_gt(counts[1], 0);
  if (expect_disc) {
    ck_assert_int_gt(counts[2], 0);
    ck_assert_int_gt(counts[3], 0);
  }
  same_reports(&straight[2], &resumed[2]);
  same_reports(&straight[3], &resumed[3]);
  /* Tensors, config and step alike: the files are the same bytes. */
  ck_assert(file_hash(tmp_path("straight.safetensors")) == file_hash(tmp_path("resumed.safetensors")));
}

START_TEST(resume_is_exact_plain) {
  demo_data();
  skd_train_config c;
  tiny_config(&c, 64);
  check_resume(&c, 0);
}
END_TEST

/* Every term on (crop 128 for D): D's parameters, spectral-norm vectors, BN
 * statistics and momentum, and the mixing weights of the penalty. The
 * teacher is reloaded by the resumed run: equal pixel and pair terms on
 * steps 3 and 4 also show that 2 steps left the in-memory teacher as it was. */
START_TEST(resume_is_exact_distill) {
  demo_data();
  write_teacher(tmp_path("teacher.safetensors"), 0);
  uint64_t before = file_hash(tmp_path("teacher.safetensors"));
  skd_train_config c;
  tiny_config(&c, 128);
  use_teacher(&c, tmp_path("teacher.safetensors"));
  c.pixel = c.pair = c.holistic = 1;
  check_resume(&c, 1);
  ck_assert(file_hash(tmp_path("teacher.safetensors")) == before);
}
END_TEST

/* Two steps of one combination (the second has momentum and a D that moved). */
static void combination(int crop, int pixel, int pair, int holistic) {
  skd_train_config c;
  tiny_config(&c, crop);
  use_teacher(&c, tmp_path("teacher.safetensors"));
  c.pixel = pixel, c.pair = pair, c.holistic = holistic;
  uint64_t before = file_hash(tmp_path("teacher.safetensors"));
  skd_trainer *t = NULL;
  double t0 = seconds();
  CK_OK(skd_trainer_create(&t, T, &c, NULL));
  skd_step_report r;
  for (int k = 0; k < 2; k++) {
    CK_OK(skd_trainer_step(t, &r));
    expect_finite_report(&r, skd_trainer_config(t), 1);
  }
  printf("TIME crop %d pixel %d pair %d holistic %d: 2 steps %.2f s; step 2: task %.5g pixel %.5g pair %.5g "
         "holistic %.5g D %.5g (real %.5g fake %.5g gp %.5g)\n",
         crop, pixel, pair, holistic, seconds() - t0, r.task, r.pixel, r.pair, r.holistic, r.d_loss, r.d_real,
         r.d_fake, r.d_penalty);
  skd_trainer_free(t);
  ck_assert(file_hash(tmp_path("teacher.safetensors")) == before);
}

START_TEST(loss_combinations) {
  demo_data();
  write_teacher(tmp_path("teacher.safetensors"), 0);
  combination(64, 1, 0, 0);
  combination(64, 0, 1, 0);
  combination(128, 0, 0, 1);
  combination(128, 1, 1, 1);
}
END_TEST

/* The teacher's logits are NaN from the resumed step on (its classifier is
 * NaN), so the first term that sees them fails on step 2. The checkpoint
 * saved after the failed step holds the same parameters and momentum as the
 * one saved before it. */
static void nan_case(int crop, int pixel, int holistic, const char *term) {
  skd_train_config c;
  tiny_config(&c, crop);
  use_teacher(&c, tmp_path("teacher.safetensors"));
  c.pixel = pixel, c.holistic = holistic;
  skd_step_report r[1];
  run(&c, NULL, 0, NULL, 1, tmp_path("one.safetensors"), r);

  skd_trainer *t = NULL;
  use_teacher(&c, tmp_path("nan_teacher.safetensors"));
  ck_assert_int_eq(skd_trainer_create(&t, T, &c, tmp_path("one.safetensors")), SKD_EFORMAT);
  ck_assert_msg(strstr(skd_error_last(), "nan_teacher.safetensors") &&
                    strstr(skd_error_last(), "tensor 'head.weight' holds NaN at element 0"),
                "%s", skd_error_last());
  use_teacher(&c, tmp_path("teacher.safetensors"));
  CK_OK(skd_trainer_create(&t, T, &c, tmp_path("one.safetensors")));
  poison_teacher_head(t);
  CK_OK(skd_trainer_save(t, tmp_path("before.safetensors")));
  skd_step_report report;
  skd_status st = skd_trainer_step(t, &report);
  const char *msg = skd_error_last();
  printf("NaN (crop %d, pixel %d, holistic %d): %s\n", crop, pixel, holistic, msg);
  ck_assert_int_eq(st, SKD_EINVAL);
  ck_assert_msg(strstr(msg, term) && strstr(msg, "step 2"), "message lacks '%s' or 'step 2': %s", term, msg);
  ck_assert_int_eq(skd_trainer_step_count(t), 1);
  if (holistic) {
    /* D's forward on the NaN teacher logits has already moved its input
     * batch norm's running statistics (a forward in training mode does):
     * such a state is never written. */
    ck_assert_int_eq(skd_trainer_save(t, tmp_path("after.safetensors")), SKD_EFORMAT);
    ck_assert_msg(strstr(skd_error_last(), "refusing to save: tensor 'disc.preprocess_additional.running_mean'"),
                  "%s", skd_error_last());
    skd_trainer_free(t);
    return;
  }
  CK_OK(skd_trainer_save(t, tmp_path("after.safetensors")));
  skd_trainer_free(t);
  int counts[4];
  int differ = checkpoint_diff(tmp_path("before.safetensors"), tmp_path("after.safetensors"), 1, counts);
  ck_assert_msg(differ == 0, "%d parameter tensors changed in the failed step", differ);
  ck_assert_int_gt(counts[1], 0);
}

START_TEST(nan_stops_before_the_update) {
  demo_data();
  write_teacher(tmp_path("teacher.safetensors"), 0);
  write_teacher(tmp_path("nan_teacher.safetensors"), 1);
  nan_case(64, 1, 0, "pixel-wise");
  /* Holistic only: the student's terms are finite; D's loss is not. */
  nan_case(128, 0, 1, "discriminator");
}
END_TEST

/* The debugging check after an update names the tensor, the element and the
 * step, for a NaN and for a negative variance. */
START_TEST(check_student_names_the_tensor) {
  demo_data();
  skd_train_config c;
  tiny_config(&c, 64);
  skd_trainer *t = NULL;
  CK_OK(skd_trainer_create(&t, T, &c, NULL));
  skd_step_report r;
  CK_OK(skd_trainer_step(t, &r));
  CK_OK(skd_trainer_check_student(t));
  skd_pspnet *s = skd_trainer_student(t);
  skd_nn_entry *var = skd_nn_params_find(&s->params, "layer1.0.bn2.running_var");
  ck_assert(var != NULL);
  CK_OK(skd_tensor_fill(T, &var->param.value, -1.0f));
  ck_assert_int_eq(skd_trainer_check_student(t), SKD_EFORMAT);
  ck_assert_msg(strstr(skd_error_last(), "student after step 1: tensor 'layer1.0.bn2.running_var' holds a negative "
                       "variance (-1) at element 0"), "%s", skd_error_last());
  CK_OK(skd_tensor_fill(T, &var->param.value, 1.0f));
  CK_OK(skd_trainer_check_student(t));
  skd_nn_entry *w = skd_nn_params_find(&s->params, "head.weight");
  ck_assert(w != NULL);
  CK_OK(skd_tensor_fill(T, &w->param.value, INFINITY));
  ck_assert_int_eq(skd_trainer_check_student(t), SKD_EFORMAT);
  ck_assert_msg(strstr(skd_error_last(), "student after step 1: tensor 'head.weight' holds an infinity at element 0"),
                "%s", skd_error_last());
  skd_trainer_free(t);
}
END_TEST

START_TEST(checkpoint_content) {
  demo_data();
  skd_train_config c;
  tiny_config(&c, 64);
  c.lr = 0.02f;
  c.seed = 12345678901234ULL;
  skd_trainer *t = NULL;
  CK_OK(skd_trainer_create(&t, T, &c, NULL));
  skd_step_report r;
  CK_OK(skd_trainer_step(t, &r));
  CK_OK(skd_trainer_save(t, tmp_path("a.safetensors")));
  CK_OK(skd_trainer_step(t, &r));
  skd_trainer_note_validation(t, 0.25);
  skd_trainer_note_validation(t, 0.125);
  CK_OK(skd_trainer_save(t, tmp_path("b.safetensors")));

  /* Config, step, best mIoU. */
  skd_train_config stored;
  skd_train_config_default(&stored);
  int found = 0;
  long step = -1;
  double best = 0;
  CK_OK(skd_checkpoint_read_config(tmp_path("a.safetensors"), &stored, &found, &step, &best));
  ck_assert_int_eq(found, 1);
  ck_assert_int_eq(step, 1);
  ck_assert_msg(isnan(best), "best before any validation: %g", best);
  ck_assert_mem_eq(&stored, skd_trainer_config(t), sizeof stored);
  CK_OK(skd_checkpoint_read_config(tmp_path("b.safetensors"), &stored, &found, &step, &best));
  ck_assert_int_eq(step, 2);
  ck_assert_msg(best == 0.25, "best %.17g", best);
  ck_assert_mem_eq(&stored, skd_trainer_config(t), sizeof stored);
  /* A best mIoU that is no mIoU is an error naming the file and the field. */
  static const char *const bad_best[] = {"garbage", "2.5", "-0.1", "0.3x", ""};
  for (size_t i = 0; i < sizeof bad_best / sizeof bad_best[0]; i++) {
    copy_checkpoint(tmp_path("b.safetensors"), tmp_path("bad_best.safetensors"), NULL, "best_miou", bad_best[i]);
    ck_assert_int_eq(skd_checkpoint_read_config(tmp_path("bad_best.safetensors"), &stored, &found, &step, &best),
                     SKD_EFORMAT);
    ck_assert_msg(strstr(skd_error_last(), "bad_best.safetensors: metadata 'best_miou': expected a mIoU from 0 to 1"),
                  "%s", skd_error_last());
  }
  copy_checkpoint(tmp_path("b.safetensors"), tmp_path("nan_best.safetensors"), NULL, "best_miou", "nan");
  CK_OK(skd_checkpoint_read_config(tmp_path("nan_best.safetensors"), &stored, &found, &step, &best));
  ck_assert(isnan(best));
  skd_trainer_free(t);

  /* A reference-style checkpoint has no config: found 0, *cfg untouched. */
  write_teacher(tmp_path("plain.safetensors"), 0);
  skd_train_config untouched = stored;
  CK_OK(skd_checkpoint_read_config(tmp_path("plain.safetensors"), &stored, &found, &step, &best));
  ck_assert_int_eq(found, 0);
  ck_assert_mem_eq(&stored, &untouched, sizeof stored);
  /* ... and cannot be resumed. */
  ck_assert_int_eq(skd_trainer_create(&t, T, &c, tmp_path("plain.safetensors")), SKD_EFORMAT);
  ck_assert_msg(strstr(skd_error_last(), "not a training checkpoint"), "%s", skd_error_last());
  /* Resuming a finished run is refused. */
  c.steps = 2;
  ck_assert_int_eq(skd_trainer_create(&t, T, &c, tmp_path("b.safetensors")), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "--steps"), "%s", skd_error_last());

  /* The student part is a plain network of the stored config. */
  skd_pspnet_config pc;
  skd_pspnet_config_default(&pc, 18, SKD_DEMO_CLASSES);
  pc.width = c.student.width;
  pc.with_grad = 0;
  pc.seed = 99;
  skd_pspnet *net = NULL;
  CK_OK(skd_pspnet_create(&net, T, &pc));
  ck_assert_int_eq(skd_nn_params_load(&net->params, tmp_path("b.safetensors"), 0), SKD_EFORMAT);
  CK_OK(skd_nn_params_load(&net->params, tmp_path("b.safetensors"), SKD_NN_LOAD_NETWORK_ONLY));
  skd_safetensors *f = NULL;
  CK_OK(skd_safetensors_open(&f, tmp_path("b.safetensors")));
  int loaded = 0;
  for (int i = 0; i < net->params.count; i++) {
    skd_nn_entry *e = net->params.entries[i];
    int k = skd_safetensors_find(f, e->param.name);
    ck_assert_msg(k >= 0, "%s missing from the checkpoint", e->param.name);
    float *file = read_tensor(f, k), *dev = dev_fetch(&e->param.value);
    ck_assert_msg(memcmp(file, dev, skd_tensor_numel(&e->param.value) * sizeof *dev) == 0, "%s", e->param.name);
    free(file);
    loaded++;
  }
  skd_safetensors_close(f);
  skd_pspnet_free(net);
  ck_assert_int_gt(loaded, 50);

  /* ... and the teacher of another run: its stored config names the network
   * (the teacher-arch/width options are not needed). */
  skd_train_config d;
  tiny_config(&d, 64);
  snprintf(d.teacher_path, sizeof d.teacher_path, "%s", tmp_path("b.safetensors"));
  snprintf(d.teacher.arch, sizeof d.teacher.arch, "resnet101");
  d.student.width = 0.03125f;
  d.pixel = d.pair = 1;
  CK_OK(skd_trainer_create(&t, T, &d, NULL));
  ck_assert_str_eq(skd_trainer_config(t)->teacher.arch, "resnet18");
  ck_assert_float_eq(skd_trainer_config(t)->teacher.width, c.student.width);
  CK_OK(skd_trainer_step(t, &r));
  expect_finite_report(&r, skd_trainer_config(t), 1);
  skd_trainer_free(t);
}
END_TEST

START_TEST(validation_is_repeatable) {
  demo_data();
  skd_train_config c;
  tiny_config(&c, 64);
  skd_trainer *t = NULL;
  CK_OK(skd_trainer_create(&t, T, &c, NULL));
  skd_step_report r;
  CK_OK(skd_trainer_step(t, &r));
  skd_metrics a, b;
  double t0 = seconds();
  CK_OK(skd_trainer_validate(t, &a));
  printf("TIME validation of 4 images: %.2f s; mIoU %.4f, pixel accuracy %.4f, mean accuracy %.4f\n",
         seconds() - t0, a.mean_iou, a.pixel_accuracy, a.mean_accuracy);
  CK_OK(skd_trainer_validate(t, &b));
  double v[] = {a.mean_iou, a.mean_iou_reference, a.pixel_accuracy, a.mean_accuracy};
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) ck_assert_msg(v[i] >= 0 && v[i] <= 1, "metric %zu: %g", i, v[i]);
  ck_assert_int_eq(a.classes, SKD_DEMO_CLASSES);
  ck_assert_msg(a.pixels + a.ignored == 4 * 64 * 64, "pixels %llu + ignored %llu", (unsigned long long)a.pixels,
                (unsigned long long)a.ignored);
  ck_assert_mem_eq(&a, &b, sizeof a);
  /* Validation leaves the training state alone: a step after it matches a
   * step of a run that did not validate. */
  CK_OK(skd_trainer_step(t, &r));
  skd_trainer_free(t);
  skd_step_report plain[2];
  run(&c, NULL, 0, NULL, 2, tmp_path("plain.safetensors"), plain);
  same_reports(&r, &plain[1]);
  /* Without a validation list it is an error. */
  c.val_list[0] = '\0';
  CK_OK(skd_trainer_create(&t, T, &c, NULL));
  ck_assert_int_eq(skd_trainer_validate(t, &a), SKD_EINVAL);
  skd_trainer_free(t);
}
END_TEST

/* Everything on: after the first step no step creates a device buffer (nor
 * after a validation, which may grow the arena once). */
START_TEST(steady_state_creates_no_buffers) {
  demo_data();
  write_teacher(tmp_path("teacher.safetensors"), 0);
  skd_train_config c;
  tiny_config(&c, 128);
  use_teacher(&c, tmp_path("teacher.safetensors"));
  c.pixel = c.pair = c.holistic = 1;
  skd_trainer *t = NULL;
  CK_OK(skd_trainer_create(&t, T, &c, NULL));
  skd_step_report r;
  CK_OK(skd_trainer_step(t, &r));
  unsigned long after_first = skd_trainer_buffer_creations(t);
  ck_assert_uint_gt(after_first, 0);
  CK_OK(skd_trainer_step(t, &r));
  unsigned long after_second = skd_trainer_buffer_creations(t);
  skd_metrics m;
  CK_OK(skd_trainer_validate(t, &m));
  unsigned long after_validation = skd_trainer_buffer_creations(t);
  CK_OK(skd_trainer_step(t, &r));
  printf("buffers created: %lu after step 1, %lu after step 2, %lu after a validation, %lu after step 3\n",
         after_first, after_second, after_validation, skd_trainer_buffer_creations(t));
  ck_assert_uint_eq(after_second, after_first);
  ck_assert_uint_eq(skd_trainer_buffer_creations(t), after_validation);
  skd_trainer_free(t);
}
END_TEST

/* Timing mode: every phase of a step with everything on gets a time, the
 * terms are those of an untimed run, and an untimed step records none. The
 * memory accounting adds up. */
START_TEST(timing_mode_records_every_phase) {
  demo_data();
  write_teacher(tmp_path("teacher.safetensors"), 0);
  skd_train_config c;
  tiny_config(&c, 128);
  use_teacher(&c, tmp_path("teacher.safetensors"));
  c.pixel = c.pair = c.holistic = 1;
  skd_step_report r[2];
  for (int timed = 0; timed < 2; timed++) {
    skd_trainer *t = NULL;
    CK_OK(skd_trainer_create(&t, T, &c, NULL));
    skd_trainer_set_timing(t, timed);
    CK_OK(skd_trainer_step(t, &r[timed]));
    CK_OK(skd_trainer_step(t, &r[timed]));
    double sum = 0;
    for (int p = 0; p < SKD_PHASE_COUNT; p++) {
      ck_assert_ptr_nonnull(skd_phase_name(p));
      if (timed) ck_assert_msg(r[1].phase_ms[p] > 0, "phase %s not timed", skd_phase_name(p));
      else ck_assert(r[0].phase_ms[p] == 0);
      sum += r[timed].phase_ms[p];
    }
    if (timed) ck_assert(sum <= 1e3 * r[1].seconds * 1.0001);
    skd_trainer_memory m;
    skd_trainer_memory_usage(t, &m);
    printf("timing %d: step %.1f ms, phases %.1f ms; memory %zu bytes (arena %zu params %zu optimiser %zu pools %zu "
           "workspace %zu other %zu)\n",
           timed, 1e3 * r[timed].seconds, sum, m.total, m.arena, m.params, m.optimiser, m.pools, m.workspace, m.other);
    ck_assert(m.arena > 0 && m.params > 0 && m.optimiser > 0 && m.pools > 0 && m.workspace > 0);
    ck_assert(m.total == m.arena + m.params + m.optimiser + m.pools + m.workspace + m.derived + m.other);
    skd_trainer_free(t);
  }
  ck_assert_ptr_null(skd_phase_name(SKD_PHASE_COUNT));
  ck_assert(r[0].loss == r[1].loss && r[0].d_loss == r[1].d_loss);
}
END_TEST

/* Unlabeled images join the step and resume exactly (their loader's
 * stream continues where it stopped, like the labeled one's). */
START_TEST(resume_is_exact_unlabeled) {
  skd_demo_options o;
  skd_demo_options_default(&o);
  o.width = o.height = 64;
  o.train_count = 16;
  o.val_count = 4;
  o.unlabeled_count = 6;
  CK_OK(skd_demo_dataset_write(tmp_path("demo"), 3, &o));
  write_teacher(tmp_path("teacher.safetensors"), 0);
  skd_train_config c;
  tiny_config(&c, 64);
  use_teacher(&c, tmp_path("teacher.safetensors"));
  c.pixel = c.pair = 1;
  snprintf(c.unlabeled_list, sizeof c.unlabeled_list, "%s", tmp_path("demo/unlabeled.txt"));
  c.unlabeled_batch = 3;
  check_resume(&c, 0);
}
END_TEST

/* Step 1 of two runs that differ only in --distill-warmup 4: every
 * distillation term's gradient is a quarter of the other run's (at Q for
 * pixel-wise and holistic, at F for pair-wise) and the task's is the same.
 * Before the first update the two runs hold the same weights, so this
 * checks both the ramp and the norms' linearity in the weights. */
START_TEST(warmup_scales_the_distillation_gradients) {
  demo_data();
  write_teacher(tmp_path("teacher.safetensors"), 0);
  skd_step_report r[2];
  for (int warm = 0; warm < 2; warm++) {
    skd_train_config c;
    tiny_config(&c, 128);
    use_teacher(&c, tmp_path("teacher.safetensors"));
    c.pixel = c.pair = c.holistic = 1;
    c.log_grad_norms = 1;
    c.log_every = 1;
    c.distill_warmup = warm ? 4 : 0;
    skd_trainer *t = NULL;
    CK_OK(skd_trainer_create(&t, T, &c, NULL));
    CK_OK(skd_trainer_step(t, &r[warm]));
    expect_finite_report(&r[warm], &c, 1);
    ck_assert(r[warm].has_grad_norms);
    skd_trainer_free(t);
  }
  ck_assert(r[0].distill_ramp == 1.0 && r[1].distill_ramp == 0.25);
  printf("gradient norms at Q (task, pixel, holistic): %.6g %.6g %.6g; at F (task, pixel, pair, holistic): %.6g %.6g "
         "%.6g %.6g\n", r[0].grad_q[SKD_TERM_TASK], r[0].grad_q[SKD_TERM_PIXEL], r[0].grad_q[SKD_TERM_HOLISTIC],
         r[0].grad_f[SKD_TERM_TASK], r[0].grad_f[SKD_TERM_PIXEL], r[0].grad_f[SKD_TERM_PAIR],
         r[0].grad_f[SKD_TERM_HOLISTIC]);
  ck_assert(r[0].grad_q[SKD_TERM_TASK] > 0 && r[0].grad_q[SKD_TERM_PAIR] == 0);
  ck_assert(r[1].grad_q[SKD_TERM_TASK] == r[0].grad_q[SKD_TERM_TASK]);
  ck_assert(r[1].grad_f[SKD_TERM_TASK] == r[0].grad_f[SKD_TERM_TASK]);
  const double *q[2] = {r[0].grad_q, r[1].grad_q}, *f[2] = {r[0].grad_f, r[1].grad_f};
  int terms[3] = {SKD_TERM_PIXEL, SKD_TERM_PAIR, SKD_TERM_HOLISTIC};
  for (int i = 0; i < 3; i++) {
    int k = terms[i];
    ck_assert_msg(f[0][k] > 0 && fabs(f[1][k] - 0.25 * f[0][k]) <= 1e-4 * f[0][k], "term %d at F: %.9g vs %.9g / 4",
                  k, f[1][k], f[0][k]);
    if (k != SKD_TERM_PAIR)
      ck_assert_msg(q[0][k] > 0 && fabs(q[1][k] - 0.25 * q[0][k]) <= 1e-4 * q[0][k], "term %d at Q: %.9g vs %.9g / 4",
                    k, q[1][k], q[0][k]);
  }
}
END_TEST

int main(void) {
  Suite *s = suite_create("trainer");
  TCase *tc = support_tcase("trainer");
  support_add_tmpdir(tc);
  tcase_add_test(tc, resume_is_exact_plain);
  tcase_add_test(tc, resume_is_exact_distill);
  tcase_add_test(tc, loss_combinations);
  tcase_add_test(tc, nan_stops_before_the_update);
  tcase_add_test(tc, check_student_names_the_tensor);
  tcase_add_test(tc, checkpoint_content);
  tcase_add_test(tc, validation_is_repeatable);
  tcase_add_test(tc, steady_state_creates_no_buffers);
  tcase_add_test(tc, timing_mode_records_every_phase);
  tcase_add_test(tc, resume_is_exact_unlabeled);
  tcase_add_test(tc, warmup_scales_the_distillation_gradients);
  suite_add_tcase(s, tc);
  return support_main(s);
}
