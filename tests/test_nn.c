/* Networks: PSPNet on the dilated ResNet against PyTorch (tests/reference/
 * gen_pspnet.py): parameter names and shapes equal the reference
 * state_dict keys (R18 and R101 at full width, the two test networks);
 * R18 (width 0.05) train forward, every parameter gradient, the running
 * statistics and an eval forward; R50 (width 0.05, Bottleneck) eval and
 * train forward; finite differences through an eval-mode backward; dropout;
 * checkpoint round trip and load errors; steady state (no buffer creation
 * after the first steps); bad arguments; and the timing of a width 0.25
 * ResNet-18 PSPNet step (printed). */
#include <math.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "support.h"
#include "reference_file.h"
#include "skd/io/safetensors.h"
#include "skd/nn/pspnet.h"
#include "skd/ops/dropout.h"

/* ---- the deterministic weights of gen_pspnet.py (weight_values) ---- */

static uint64_t fnv1a64(const char *s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
  return h;
}

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

static void formula_values(const char *name, int ndim, const int64_t *shape, float *out) {
  size_t n = 1;
  for (int d = 0; d < ndim; d++) n *= (size_t)shape[d];
  const uint64_t h = fnv1a64(name);
  for (size_t i = 0; i < n; i++) {
    uint64_t z = h + (uint64_t)(i + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    const double u = (double)(z >> 40) * 0x1p-24, v = 2.0 * u - 1.0;
    double x;
    if (ends_with(name, "running_var"))
      x = 0.5 + u;
    else if (ends_with(name, "running_mean"))
      x = v * 0.2;
    else if (ends_with(name, "bias"))
      x = v * 0.1;
    else if (ndim == 4)
      x = v * sqrt(6.0 / (double)(shape[1] * shape[2] * shape[3]));
    else
      x = 1.0 + v * 0.25;
    out[i] = (float)x;
  }
}

/* ---- the key lists of pspnet_keys.txt ---- */

struct keys {
  int count;
  char name[700][256];
  int ndim[700];
  int64_t shape[700][4];
};

static struct keys *read_keys(const char *tag) {
  char path[512], line[256], want[64];
  snprintf(path, sizeof path, "%s/pspnet_keys.txt", ref_dir());
  snprintf(want, sizeof want, "# %s", tag);
  FILE *f = fopen(path, "r");
  ck_assert_msg(f != NULL, "cannot open %s", path);
  struct keys *k = calloc(1, sizeof *k);
  ck_assert(k != NULL);
  int in = 0;
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = '\0';
    if (line[0] == '#') {
      in = strcmp(line, want) == 0;
      continue;
    }
    if (!in) continue;
    ck_assert(k->count < 700);
    char *sp = strchr(line, ' ');
    ck_assert(sp != NULL);
    *sp = '\0';
    snprintf(k->name[k->count], sizeof k->name[0], "%s", line);
    int nd = 0;
    for (char *tok = strtok(sp + 1, ","); tok; tok = strtok(NULL, ",")) k->shape[k->count][nd++] = atoll(tok);
    k->ndim[k->count++] = nd;
  }
  fclose(f);
  ck_assert_msg(k->count > 0, "no keys for %s", tag);
  return k;
}

static char ckpt_path[256];

static const char *temp_path(const char *what) {
  snprintf(ckpt_path, sizeof ckpt_path, "/tmp/skd_test_nn_%d_%s.safetensors", (int)getpid(), what);
  return ckpt_path;
}

/* Writes the formula weights of every key (except `skip`, and with
 * `extra` added when not NULL) to path. */
static void write_checkpoint(const struct keys *k, const char *path, const char *skip, const char *extra) {
  skd_safetensors_writer *w = NULL;
  CK_OK(skd_safetensors_writer_create(&w));
  for (int i = 0; i < k->count; i++) {
    if (skip && strcmp(k->name[i], skip) == 0) continue;
    size_t n = 1;
    for (int d = 0; d < k->ndim[i]; d++) n *= (size_t)k->shape[i][d];
    float *v = malloc(n * sizeof *v);
    ck_assert(v != NULL);
    formula_values(k->name[i], k->ndim[i], k->shape[i], v);
    CK_OK(skd_safetensors_writer_add(w, k->name[i], k->ndim[i], k->shape[i], v));
    free(v);
  }
  if (extra) {
    int64_t one[1] = {1};
    float v = 0.0f;
    CK_OK(skd_safetensors_writer_add(w, extra, 1, one, &v));
  }
  CK_OK(skd_safetensors_write(w, path));
  skd_safetensors_writer_free(w);
}

static skd_pspnet *make_net(int depth, double width, int classes, int with_grad) {
  skd_pspnet_config cfg;
  skd_pspnet_config_default(&cfg, depth, classes);
  cfg.width = width;
  cfg.dropout = 0.0f;
  cfg.with_grad = with_grad;
  skd_pspnet *net = NULL;
  CK_OK(skd_pspnet_create(&net, T, &cfg));
  return net;
}

/* A network of the tagged key list with the formula weights, loaded by name. */
static skd_pspnet *make_loaded_net(const char *tag, int depth, double width, int classes, int with_grad) {
  struct keys *k = read_keys(tag);
  skd_pspnet *net = make_net(depth, width, classes, with_grad);
  const char *path = temp_path("formula");
  write_checkpoint(k, path, NULL, NULL);
  CK_OK(skd_nn_params_load(&net->params, path, 0));
  unlink(path);
  free(k);
  return net;
}

static void compare(const char *op, const char *check, const skd_tensor *t, const ref_array *ref, double tol) {
  ck_assert_msg(skd_tensor_numel(t) == ref->numel, "%s %s: %zu values, reference %zu", op, check,
                skd_tensor_numel(t), ref->numel);
  check_error(op, check, rel_error(dev_fetch(t), ref->data, ref->numel), tol);
}

static skd_tensor upload_ref(const ref_array *a) {
  ck_assert_int_eq(a->ndim, 4);
  return dev_upload(a->data, a->dims[0], a->dims[1], a->dims[2], a->dims[3]);
}

/* ---- names ---- */

static void check_names(const char *tag, int depth, double width, int classes) {
  struct keys *k = read_keys(tag);
  skd_pspnet *net = make_net(depth, width, classes, 0);
  const skd_nn_params *r = &net->params;
  ck_assert_msg(r->count == k->count, "%s: %d tensors, the reference has %d", tag, r->count, k->count);
  for (int i = 0; i < k->count; i++) {
    const skd_nn_entry *e = r->entries[i];
    ck_assert_msg(strcmp(e->param.name, k->name[i]) == 0, "%s: tensor %d is %s, the reference's %s", tag, i,
                  e->param.name, k->name[i]);
    ck_assert_msg(e->ndim == k->ndim[i], "%s: %s has %d dims, reference %d", tag, k->name[i], e->ndim, k->ndim[i]);
    for (int d = 0; d < e->ndim; d++)
      ck_assert_msg(e->shape[d] == k->shape[i][d], "%s: %s dim %d is %lld, reference %lld", tag, k->name[i], d,
                    (long long)e->shape[d], (long long)k->shape[i][d]);
  }
  printf("names %s: %d tensors equal the reference state_dict keys (in order)\n", tag, k->count);
  skd_pspnet_free(net);
  free(k);
}

START_TEST(test_names) {
  check_names("r18_w1_c21", 18, 1.0, 21);
  check_names("r101_w1_c21", 101, 1.0, 21);
  check_names("r18_w0.05_c5", 18, 0.05, 5);
  check_names("r50_w0.05_c3", 50, 0.05, 3);
}
END_TEST

/* ---- R18 vs PyTorch ---- */

START_TEST(test_r18_vs_torch) {
  ref_file *ref = ref_open("pspnet.bin");
  skd_pspnet *net = make_loaded_net("r18_w0.05_c5", 18, 0.05, 5, 1);
  skd_arena *arena = NULL;
  CK_OK(skd_arena_create(T, &arena, 0));
  skd_tensor x = upload_ref(ref_get(ref, "r18_x"));
  skd_pspnet_outputs o;
  CK_OK(skd_pspnet_forward(net, arena, &x, SKD_PSPNET_TRAIN | SKD_PSPNET_KEEP, 7, &o));
  compare("pspnet r18 train", "Q vs torch", &o.q, ref_get(ref, "r18_q"), 1e-4);
  compare("pspnet r18 train", "Q_dsn vs torch", &o.q_dsn, ref_get(ref, "r18_q_dsn"), 1e-4);
  compare("pspnet r18 train", "F vs torch", &o.f, ref_get(ref, "r18_f"), 1e-4);

  skd_tensor dq = upload_ref(ref_get(ref, "r18_dq")), dqd = upload_ref(ref_get(ref, "r18_dq_dsn"));
  skd_tensor df = upload_ref(ref_get(ref, "r18_df"));
  CK_OK(skd_nn_params_zero_grad(&net->params));
  CK_OK(skd_pspnet_backward(net, &dq, &dqd, &df));
  ck_assert_int_eq(skd_nn_pool_in_use(&net->pool), 0);
  double worst = 0.0;
  const char *worst_name = "";
  int ngrad = 0, nbuf = 0;
  for (int i = 0; i < net->params.count; i++) {
    const skd_nn_entry *e = net->params.entries[i];
    char name[160];
    if (e->is_buffer) {
      snprintf(name, sizeof name, "r18_after/%s", e->param.name);
      compare("pspnet r18 running stat", e->param.name, &e->param.value, ref_get(ref, name), 1e-5);
      nbuf++;
      continue;
    }
    snprintf(name, sizeof name, "r18_grad/%s", e->param.name);
    const ref_array *g = ref_get(ref, name);
    double err = rel_error(dev_fetch(&e->param.grad), g->data, g->numel);
    /* dsn.0.bias feeds a training-mode BN, which removes any constant: its
     * exact gradient is 0 and both sides hold rounding noise. Measure it
     * against the scale of its weight's gradient instead. */
    if (strcmp(e->param.name, "dsn.0.bias") == 0) {
      const ref_array *gw = ref_get(ref, "r18_grad/dsn.0.weight");
      float *ours = dev_fetch(&e->param.grad);
      double scale = 0.0, diff = 0.0;
      for (size_t j = 0; j < gw->numel; j++) scale = fmax(scale, fabs(gw->data[j]));
      for (size_t j = 0; j < g->numel; j++) diff = fmax(diff, fabs((double)ours[j] - g->data[j]));
      err = diff / scale;
    }
    check_error("pspnet r18 grad", e->param.name, err, 5e-5);
    if (err > worst) {
      worst = err;
      worst_name = e->param.name;
    }
    ngrad++;
  }
  printf("pspnet r18: %d parameter gradients, worst %.3e (%s); %d buffers\n", ngrad, worst, worst_name, nbuf);

  /* Backward is linear in (dQ, dQ_dsn, dF) and accumulates: three calls
   * with one gradient each (the NULL paths) add up to the same. */
  CK_OK(skd_nn_params_zero_grad(&net->params));
  CK_OK(skd_pspnet_backward(net, &dq, NULL, NULL));
  CK_OK(skd_pspnet_backward(net, NULL, &dqd, NULL));
  CK_OK(skd_pspnet_backward(net, NULL, NULL, &df));
  double split = 0.0;
  for (int i = 0; i < net->params.count; i++) {
    const skd_nn_entry *e = net->params.entries[i];
    if (e->is_buffer || strcmp(e->param.name, "dsn.0.bias") == 0) continue;
    char name[160];
    snprintf(name, sizeof name, "r18_grad/%s", e->param.name);
    const ref_array *g = ref_get(ref, name);
    split = fmax(split, rel_error(dev_fetch(&e->param.grad), g->data, g->numel));
  }
  check_error("pspnet r18 grad", "dQ + dQ_dsn + dF in 3 calls", split, 5e-5);

  /* Eval mode with the updated running statistics. */
  skd_arena_reset(arena);
  CK_OK(skd_pspnet_forward(net, arena, &x, 0, 0, &o));
  compare("pspnet r18 eval", "Q vs torch", &o.q, ref_get(ref, "r18_eval_q"), 1e-4);
  compare("pspnet r18 eval", "Q_dsn vs torch", &o.q_dsn, ref_get(ref, "r18_eval_q_dsn"), 1e-4);
  compare("pspnet r18 eval", "F vs torch", &o.f, ref_get(ref, "r18_eval_f"), 1e-4);
  /* Eval-mode backward (BN statistics constant) for the tensors the
   * script selected. */
  skd_arena_reset(arena);
  CK_OK(skd_pspnet_forward(net, arena, &x, SKD_PSPNET_KEEP, 0, &o));
  compare("pspnet r18 eval keep", "Q vs torch", &o.q, ref_get(ref, "r18_eval_q"), 1e-4);
  CK_OK(skd_nn_params_zero_grad(&net->params));
  CK_OK(skd_pspnet_backward(net, &dq, &dqd, &df));
  int neval = 0;
  for (int i = 0; i < ref->count; i++) {
    const ref_array *g = &ref->arrays[i];
    if (strncmp(g->name, "r18_evalgrad/", 13) != 0) continue;
    const skd_nn_entry *e = skd_nn_params_find(&net->params, g->name + 13);
    ck_assert_msg(e != NULL, "%s", g->name);
    compare("pspnet r18 eval grad", e->param.name, &e->param.grad, g, 5e-5);
    neval++;
  }
  ck_assert_int_ge(neval, 10);

  /* The same through a checkpoint into a frozen network (the teacher's path). */
  const char *path = temp_path("roundtrip");
  CK_OK(skd_nn_params_save(&net->params, path));
  skd_pspnet *frozen = make_net(18, 0.05, 5, 0);
  ck_assert_int_eq(frozen->params.ntrainable, 0);
  ck_assert(frozen->params.grads == NULL);
  CK_OK(skd_nn_params_load(&frozen->params, path, 0));
  unlink(path);
  skd_arena_free(arena);
  CK_OK(skd_arena_create(T, &arena, 0)); /* a fresh one, to see its peak */
  CK_OK(skd_pspnet_forward(frozen, arena, &x, 0, 0, &o));
  compare("pspnet r18 eval frozen", "Q vs torch", &o.q, ref_get(ref, "r18_eval_q"), 1e-4);
  compare("pspnet r18 eval frozen", "Q_dsn vs torch", &o.q_dsn, ref_get(ref, "r18_eval_q_dsn"), 1e-4);
  compare("pspnet r18 eval frozen", "F vs torch", &o.f, ref_get(ref, "r18_eval_f"), 1e-4);
  /* A frozen eval pass keeps only its outputs in the arena. */
  size_t outputs = (size_t)o.q.n * (o.q.c + o.q_dsn.c + o.f.c) * o.q.h * o.q.w * sizeof(float);
  ck_assert_msg(skd_arena_peak_bytes(arena) <= outputs + 3 * 1024,
                "frozen eval used %zu arena bytes for %zu bytes of outputs", skd_arena_peak_bytes(arena), outputs);
  ck_assert_int_eq(skd_nn_pool_in_use(&frozen->pool), 0);

  skd_pspnet_free(frozen);
  skd_pspnet_free(net);
  skd_arena_free(arena);
  ref_close(ref);
}
END_TEST

START_TEST(test_r50_vs_torch) {
  ref_file *ref = ref_open("pspnet.bin");
  skd_pspnet *net = make_loaded_net("r50_w0.05_c3", 50, 0.05, 3, 1);
  skd_arena *arena = NULL;
  CK_OK(skd_arena_create(T, &arena, 0));
  skd_tensor x = upload_ref(ref_get(ref, "r50_x"));
  skd_pspnet_outputs o;
  CK_OK(skd_pspnet_forward(net, arena, &x, 0, 0, &o));
  compare("pspnet r50 eval", "Q vs torch", &o.q, ref_get(ref, "r50_eval_q"), 1e-4);
  compare("pspnet r50 eval", "Q_dsn vs torch", &o.q_dsn, ref_get(ref, "r50_eval_q_dsn"), 1e-4);
  compare("pspnet r50 eval", "F vs torch", &o.f, ref_get(ref, "r50_eval_f"), 1e-4);
  /* Training mode without keeping (pool path with batch statistics). */
  skd_arena_reset(arena);
  CK_OK(skd_pspnet_forward(net, arena, &x, SKD_PSPNET_TRAIN, 0, &o));
  compare("pspnet r50 train", "Q vs torch", &o.q, ref_get(ref, "r50_q"), 1e-4);
  compare("pspnet r50 train", "Q_dsn vs torch", &o.q_dsn, ref_get(ref, "r50_q_dsn"), 1e-4);
  compare("pspnet r50 train", "F vs torch", &o.f, ref_get(ref, "r50_f"), 1e-4);
  skd_pspnet_free(net);
  skd_arena_free(arena);
  ref_close(ref);
}
END_TEST

/* ---- finite differences through an eval-mode backward ---- */

struct fd_net {
  skd_pspnet *net;
  skd_arena *arena;
  skd_tensor x;
  const float *wq, *wd, *wf;
};

static double fd_loss(struct fd_net *s) {
  skd_pspnet_outputs o;
  skd_arena_reset(s->arena);
  CK_OK(skd_pspnet_forward(s->net, s->arena, &s->x, 0, 0, &o));
  const skd_tensor *t[3] = {&o.q, &o.q_dsn, &o.f};
  const float *w[3] = {s->wq, s->wd, s->wf};
  double l = 0.0;
  for (int k = 0; k < 3; k++) {
    size_t n = skd_tensor_numel(t[k]);
    float *y = malloc(n * sizeof *y);
    ck_assert(y != NULL);
    CK_OK(skd_tensor_download(T, t[k], y));
    for (size_t i = 0; i < n; i++) l += (double)w[k][i] * y[i];
    free(y);
  }
  return l;
}

START_TEST(test_fd_eval) {
  /* Eval mode is smooth in the weights away from ReLU kinks; a few
   * elements of a few tensors across the network, central differences. */
  skd_pspnet *net = make_net(18, 0.04, 4, 1);
  skd_arena *arena = NULL;
  CK_OK(skd_arena_create(T, &arena, 0));
  float *img = host_random(2 * 3 * 21 * 19, -1.0f, 1.0f);
  struct fd_net s = {net, arena, dev_upload(img, 2, 3, 21, 19), NULL, NULL, NULL};
  skd_pspnet_outputs o;
  CK_OK(skd_pspnet_forward(net, arena, &s.x, SKD_PSPNET_KEEP, 0, &o));
  s.wq = host_random(skd_tensor_numel(&o.q), -1.0f, 1.0f);
  s.wd = host_random(skd_tensor_numel(&o.q_dsn), -1.0f, 1.0f);
  s.wf = host_random(skd_tensor_numel(&o.f), -1.0f, 1.0f);
  skd_tensor wq = dev_upload(s.wq, o.q.n, o.q.c, o.q.h, o.q.w);
  skd_tensor wd = dev_upload(s.wd, o.q_dsn.n, o.q_dsn.c, o.q_dsn.h, o.q_dsn.w);
  skd_tensor wf = dev_upload(s.wf, o.f.n, o.f.c, o.f.h, o.f.w);
  CK_OK(skd_nn_params_zero_grad(&net->params));
  CK_OK(skd_pspnet_backward(net, &wq, &wd, &wf));
  /* Near the outputs only: deeper down, ReLU and max-pool kinks make
   * central differences depend on eps (the PyTorch comparison of the
   * eval-mode backward covers the whole network). */
  static const char *names[] = {"head.weight", "head.bias", "dsn.3.weight", "dsn.3.bias", "dsn.1.weight",
                                "pspmodule.bottleneck.1.bias", "pspmodule.stages.2.2.weight"};
  double worst = 0.0;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    skd_nn_entry *e = skd_nn_params_find(&net->params, names[i]);
    ck_assert_msg(e != NULL, "%s", names[i]);
    float *v = dev_fetch(&e->param.value), *g = dev_fetch(&e->param.grad);
    size_t n = skd_tensor_numel(&e->param.value);
    const size_t picks[3] = {0, n / 2, n - 1};
    float fd[3], an[3];
    for (int j = 0; j < 3; j++) {
      size_t at = picks[j];
      const float saved = v[at], eps = 1e-3f * fmaxf(1.0f, fabsf(saved));
      double l[2];
      for (int sgn = 0; sgn < 2; sgn++) {
        v[at] = saved + (sgn ? -eps : eps);
        CK_OK(skd_tensor_upload(T, &e->param.value, v));
        l[sgn] = fd_loss(&s);
      }
      v[at] = saved;
      CK_OK(skd_tensor_upload(T, &e->param.value, v));
      fd[j] = (float)((l[0] - l[1]) / (2.0 * eps));
      an[j] = g[at];
    }
    /* Relative to the scale of this tensor's whole gradient. */
    double scale = 1e-6, diff = 0.0;
    for (size_t j = 0; j < n; j++) scale = fmax(scale, fabs(g[j]));
    for (int j = 0; j < 3; j++) diff = fmax(diff, fabs((double)fd[j] - an[j]));
    check_error("pspnet eval backward fd", names[i], diff / scale, 2e-3);
    worst = fmax(worst, diff / scale);
  }
  printf("pspnet eval backward vs finite differences: worst %.3e\n", worst);
  skd_pspnet_free(net);
  skd_arena_free(arena);
}
END_TEST

/* ---- dropout ---- */

START_TEST(test_dropout) {
  /* Dropout2d follows the BN, so the batch statistics do not depend on it:
   * with p = 0.5 every channel of F is either 0 or twice the p = 0 value,
   * as skd_dropout2d_keep says for the layer's seed. */
  skd_pspnet *net = make_net(18, 0.05, 3, 1);
  skd_arena *arena = NULL;
  CK_OK(skd_arena_create(T, &arena, 0));
  float *img = host_random(2 * 3 * 17 * 23, -1.0f, 1.0f);
  skd_tensor x = dev_upload(img, 2, 3, 17, 23);
  skd_pspnet_outputs o;
  CK_OK(skd_pspnet_forward(net, arena, &x, SKD_PSPNET_TRAIN | SKD_PSPNET_KEEP, 11, &o));
  float *f0 = dev_fetch(&o.f);
  net->cfg.dropout = 0.5f;
  const uint32_t seed = 12345;
  skd_arena_reset(arena);
  CK_OK(skd_pspnet_forward(net, arena, &x, SKD_PSPNET_TRAIN | SKD_PSPNET_KEEP, seed, &o));
  float *f1 = dev_fetch(&o.f);
  const uint32_t layer_seed = skd_pspnet_dropout_seed(seed, 1);
  const int hw = o.f.h * o.f.w;
  int dropped = 0, kept = 0;
  double err = 0.0, scale = 0.0;
  for (int n = 0; n < o.f.n; n++)
    for (int c = 0; c < o.f.c; c++) {
      const int keep = skd_dropout2d_keep(layer_seed, n, c, 0.5f);
      keep ? kept++ : dropped++;
      for (int i = 0; i < hw; i++) {
        size_t at = ((size_t)n * o.f.c + c) * hw + i;
        err = fmax(err, fabs(f1[at] - (keep ? 2.0 * f0[at] : 0.0)));
        scale = fmax(scale, fabs(f0[at]));
      }
    }
  ck_assert_msg(dropped > 0 && kept > 0, "dropped %d kept %d", dropped, kept);
  check_error("pspnet dropout", "F = mask * F0 / (1 - p)", err / scale, 1e-6);
  /* Backward with dropout runs, and the running statistics moved twice. */
  skd_tensor dq = dev_zeros(o.q.n, o.q.c, o.q.h, o.q.w);
  CK_OK(skd_tensor_fill(T, &dq, 1.0f));
  CK_OK(skd_nn_params_zero_grad(&net->params));
  CK_OK(skd_pspnet_backward(net, &dq, NULL, NULL));
  float *g = dev_fetch(&skd_nn_params_find(&net->params, "conv1.weight")->param.grad);
  double gmax = 0.0;
  for (size_t i = 0; i < 3 * 3 * 3 * 2; i++) gmax = fmax(gmax, fabs(g[i]));
  ck_assert_msg(gmax > 0.0 && isfinite(gmax), "conv1 gradient %g", gmax);
  skd_pspnet_free(net);
  skd_arena_free(arena);
}
END_TEST

/* ---- checkpoints ---- */

START_TEST(test_load_errors) {
  struct keys *k = read_keys("r18_w0.05_c5");
  skd_pspnet *net = make_net(18, 0.05, 5, 1);
  const char *path = temp_path("errors");
  /* A missing, an unexpected and (below) a mis-shaped tensor, all listed. */
  write_checkpoint(k, path, "layer3.1.bn2.running_var", "layer5.0.conv1.weight");
  skd_status st = skd_nn_params_load(&net->params, path, 0);
  ck_assert_int_eq(st, SKD_EFORMAT);
  const char *msg = skd_error_last();
  printf("load error: %s\n", msg);
  ck_assert_msg(strstr(msg, "1 missing, 1 unexpected, 0 mis-shaped"), "%s", msg);
  ck_assert_msg(strstr(msg, "missing: layer3.1.bn2.running_var"), "%s", msg);
  ck_assert_msg(strstr(msg, "unexpected: layer5.0.conv1.weight"), "%s", msg);
  ck_assert_msg(strstr(msg, path), "%s", msg);

  /* A checkpoint for 7 classes: head and dsn.3 are mis-shaped... */
  struct keys *k7 = read_keys("r18_w0.05_c5");
  for (int i = 0; i < k7->count; i++)
    if (strncmp(k7->name[i], "head.", 5) == 0 || strncmp(k7->name[i], "dsn.3.", 6) == 0) k7->shape[i][0] = 7;
  write_checkpoint(k7, path, "conv2.weight", NULL);
  st = skd_nn_params_load(&net->params, path, 0);
  ck_assert_int_eq(st, SKD_EFORMAT);
  msg = skd_error_last();
  printf("load error: %s\n", msg);
  ck_assert_msg(strstr(msg, "1 missing, 0 unexpected, 4 mis-shaped"), "%s", msg);
  ck_assert_msg(strstr(msg, "head.weight (file [7, 6, 1, 1], expected [5, 6, 1, 1])"), "%s", msg);
  ck_assert_msg(strstr(msg, "dsn.3.bias (file [7], expected [5])"), "%s", msg);
  /* ...which KEEP_REPLACEABLE accepts, but not the missing backbone tensor. */
  st = skd_nn_params_load(&net->params, path, SKD_NN_LOAD_KEEP_REPLACEABLE);
  ck_assert_int_eq(st, SKD_EFORMAT);
  ck_assert_msg(strstr(skd_error_last(), "1 missing, 0 unexpected, 0 mis-shaped"), "%s", skd_error_last());
  /* Complete backbone: loads, the head keeps its values, the rest is the file's. */
  float *head_before = dev_fetch(&skd_nn_params_find(&net->params, "head.weight")->param.value);
  write_checkpoint(k7, path, NULL, "conv1.num_batches_tracked");
  CK_OK(skd_nn_params_load(&net->params, path, SKD_NN_LOAD_KEEP_REPLACEABLE));
  float *head_after = dev_fetch(&skd_nn_params_find(&net->params, "head.weight")->param.value);
  ck_assert(memcmp(head_before, head_after, 5 * 6 * sizeof(float)) == 0);
  const skd_nn_entry *c2 = skd_nn_params_find(&net->params, "conv2.weight");
  float *want = host_alloc(skd_tensor_numel(&c2->param.value));
  formula_values("conv2.weight", c2->ndim, c2->shape, want);
  ck_assert(memcmp(dev_fetch(&c2->param.value), want, skd_tensor_numel(&c2->param.value) * sizeof(float)) == 0);
  /* A file that is not a checkpoint of this network at all. */
  unlink(path);
  ck_assert_int_ne(skd_nn_params_load(&net->params, path, 0), SKD_OK);
  free(k);
  free(k7);
  skd_pspnet_free(net);
}
END_TEST

/* The formula weights of every key, with element 1 of `poisoned` set to `value`. */
static void write_poisoned(const struct keys *k, const char *path, const char *poisoned, float value) {
  skd_safetensors_writer *w = NULL;
  CK_OK(skd_safetensors_writer_create(&w));
  for (int i = 0; i < k->count; i++) {
    size_t n = 1;
    for (int d = 0; d < k->ndim[i]; d++) n *= (size_t)k->shape[i][d];
    float *v = malloc(n * sizeof *v);
    ck_assert(v != NULL);
    formula_values(k->name[i], k->ndim[i], k->shape[i], v);
    if (strcmp(k->name[i], poisoned) == 0) {
      ck_assert(n > 1);
      v[1] = value;
    }
    CK_OK(skd_safetensors_writer_add(w, k->name[i], k->ndim[i], k->shape[i], v));
    free(v);
  }
  CK_OK(skd_safetensors_write(w, path));
  skd_safetensors_writer_free(w);
}

/* NaN, infinities and negative batch-norm variances are refused at the file,
 * naming it and the tensor, and the network keeps the values it had; a
 * network holding one is never saved. */
START_TEST(test_bad_values) {
  struct keys *k = read_keys("r18_w0.05_c5");
  skd_pspnet *net = make_net(18, 0.05, 5, 0); /* frozen, as a teacher */
  const char *path = temp_path("values");
  write_checkpoint(k, path, NULL, NULL);
  CK_OK(skd_nn_params_load(&net->params, path, 0));
  skd_param *conv1 = &skd_nn_params_find(&net->params, "conv1.weight")->param;
  float *good = dev_fetch(&conv1->value);
  static const struct {
    const char *tensor;
    float value;
    const char *says;
  } bad[] = {
      {"conv1.weight", NAN, "tensor 'conv1.weight' holds NaN at element 1 of"},
      {"head.bias", INFINITY, "tensor 'head.bias' holds an infinity at element 1 of 5"},
      {"layer1.0.bn1.running_var", -0.5f, "tensor 'layer1.0.bn1.running_var' holds a negative variance (-0.5)"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    write_poisoned(k, path, bad[i].tensor, bad[i].value);
    ck_assert_int_eq(skd_nn_params_load(&net->params, path, 0), SKD_EFORMAT);
    const char *msg = skd_error_last();
    printf("load error: %s\n", msg);
    ck_assert_msg(strstr(msg, bad[i].says) && strstr(msg, path), "%s", msg);
    ck_assert(memcmp(dev_fetch(&conv1->value), good, skd_tensor_numel(&conv1->value) * sizeof(float)) == 0);
  }
  /* An infinity in the network: no file is written. */
  float *inf = host_copy(good, skd_tensor_numel(&conv1->value));
  inf[0] = -INFINITY;
  CK_OK(skd_tensor_upload(T, &conv1->value, inf));
  unlink(path);
  ck_assert_int_eq(skd_nn_params_save(&net->params, path), SKD_EFORMAT);
  ck_assert_msg(strstr(skd_error_last(), "refusing to save: tensor 'conv1.weight' holds an infinity at element 0"),
                "%s", skd_error_last());
  ck_assert_int_ne(access(path, F_OK), 0);
  free(k);
  skd_pspnet_free(net);
}
END_TEST

/* ---- arguments ---- */

START_TEST(test_bad_arguments) {
  skd_pspnet *net = make_net(18, 0.05, 3, 1);
  skd_arena *arena = NULL;
  CK_OK(skd_arena_create(T, &arena, 0));
  skd_pspnet_outputs o;
  skd_tensor x4 = dev_zeros(2, 4, 17, 17);
  ck_assert_int_eq(skd_pspnet_forward(net, arena, &x4, 0, 0, &o), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "image"), "%s", skd_error_last());
  skd_tensor x = dev_zeros(1, 3, 17, 17);
  /* Training BN on the bin-1 stage needs N >= 2 (as PyTorch). */
  ck_assert_int_eq(skd_pspnet_forward(net, arena, &x, SKD_PSPNET_TRAIN | SKD_PSPNET_KEEP, 0, &o), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "more than 1 value per channel"), "%s", skd_error_last());
  /* Backward needs a kept forward. */
  CK_OK(skd_pspnet_forward(net, arena, &x, 0, 0, &o));
  ck_assert_int_eq(skd_pspnet_backward(net, &o.q, NULL, NULL), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "SKD_PSPNET_KEEP"), "%s", skd_error_last());
  CK_OK(skd_pspnet_forward(net, arena, &x, SKD_PSPNET_KEEP, 0, &o));
  skd_tensor bad = dev_zeros(1, 4, o.q.h, o.q.w);
  ck_assert_int_eq(skd_pspnet_backward(net, &bad, NULL, NULL), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "dQ"), "%s", skd_error_last());
  ck_assert_int_eq(skd_pspnet_backward(net, NULL, NULL, &bad), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "dF"), "%s", skd_error_last());
  CK_OK(skd_pspnet_backward(net, NULL, NULL, NULL));
  /* A frozen network keeps nothing. */
  skd_pspnet *frozen = make_net(18, 0.05, 3, 0);
  ck_assert_int_eq(skd_pspnet_forward(frozen, arena, &x, SKD_PSPNET_KEEP, 0, &o), SKD_EINVAL);
  skd_pspnet_free(frozen);
  /* Configurations. */
  skd_pspnet_config cfg;
  skd_pspnet_config_default(&cfg, 20, 3);
  skd_pspnet *none = NULL;
  ck_assert_int_eq(skd_pspnet_create(&none, T, &cfg), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "depth"), "%s", skd_error_last());
  skd_pspnet_config_default(&cfg, 18, 0);
  ck_assert_int_eq(skd_pspnet_create(&none, T, &cfg), SKD_EINVAL);
  ck_assert(none == NULL);
  skd_pspnet_free(net);
  skd_arena_free(arena);
}
END_TEST

/* ---- steady state and timing ---- */

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

START_TEST(test_steady_state_and_timing) {
  /* ResNet-18 x 0.25 PSPNet, 2x3x128x128, 19 classes: a student step's
   * forward and backward. After the first steps no buffer is created. */
  skd_pspnet_config cfg;
  skd_pspnet_config_default(&cfg, 18, 19);
  cfg.width = 0.25;
  skd_pspnet *net = NULL;
  CK_OK(skd_pspnet_create(&net, T, &cfg));
  skd_arena *arena = NULL;
  CK_OK(skd_arena_create(T, &arena, 0));
  float *img = host_random(2 * 3 * 128 * 128, -1.0f, 1.0f);
  skd_tensor x = dev_upload(img, 2, 3, 128, 128);
  int ho, wo;
  CK_OK(skd_pspnet_output_shape(net, 128, 128, &ho, &wo));
  ck_assert_int_eq(ho, 17); /* 128 -> 64 -> 33 (ceil-mode pool) -> 17, as the reference */
  ck_assert_int_eq(wo, 17);
  skd_tensor dq = dev_upload(host_random((size_t)2 * 19 * ho * wo, -1.0f, 1.0f), 2, 19, ho, wo);
  skd_tensor dqd = dev_upload(host_random((size_t)2 * 19 * ho * wo, -1.0f, 1.0f), 2, 19, ho, wo);
  skd_tensor df = dev_upload(host_random((size_t)2 * 32 * ho * wo, -1.0f, 1.0f), 2, 32, ho, wo);
  enum { RUNS = 7 };
  double fwd[RUNS], bwd[RUNS];
  unsigned long arena_c = 0, pool_c = 0;
  for (int r = 0; r < RUNS + 2; r++) {
    if (r == 2) { /* two warm-up steps: programs built, buffers sized */
      arena_c = skd_arena_buffer_creations(arena);
      pool_c = net->pool.creations;
    }
    skd_arena_reset(arena);
    CK_OK(skd_context_finish(T));
    double t0 = now_ms();
    skd_pspnet_outputs o;
    CK_OK(skd_pspnet_forward(net, arena, &x, SKD_PSPNET_TRAIN | SKD_PSPNET_KEEP, (uint32_t)r, &o));
    CK_OK(skd_context_finish(T));
    double t1 = now_ms();
    CK_OK(skd_nn_params_zero_grad(&net->params));
    CK_OK(skd_pspnet_backward(net, &dq, &dqd, &df));
    CK_OK(skd_context_finish(T));
    double t2 = now_ms();
    if (r >= 2) {
      fwd[r - 2] = t1 - t0;
      bwd[r - 2] = t2 - t1;
    }
  }
  ck_assert_msg(skd_arena_buffer_creations(arena) == arena_c, "arena created buffers in steady state");
  ck_assert_msg(net->pool.creations == pool_c, "pool created buffers in steady state (%lu -> %lu)", pool_c,
                net->pool.creations);
  qsort(fwd, RUNS, sizeof fwd[0], cmp_double);
  qsort(bwd, RUNS, sizeof bwd[0], cmp_double);
  printf("TIMING pspnet r18 x0.25 2x3x128x128 train: forward %.1f ms, backward %.1f ms (median of %d; %s)\n",
         fwd[RUNS / 2], bwd[RUNS / 2], RUNS, T->info.name);
  printf("  arena peak %.1f MiB, pool %.1f MiB peak in use, %lu pool buffers\n",
         skd_arena_peak_bytes(arena) / 1048576.0, net->pool.peak_in_use * 4.0 / 1048576.0, net->pool.creations);
  /* The teacher's way: eval without keeping. */
  double ev[3];
  for (int r = 0; r < 4; r++) {
    skd_arena_reset(arena);
    CK_OK(skd_context_finish(T));
    double t0 = now_ms();
    skd_pspnet_outputs o;
    CK_OK(skd_pspnet_forward(net, arena, &x, 0, 0, &o));
    CK_OK(skd_context_finish(T));
    if (r) ev[r - 1] = now_ms() - t0;
  }
  qsort(ev, 3, sizeof ev[0], cmp_double);
  printf("TIMING pspnet r18 x0.25 2x3x128x128 eval forward %.1f ms (median of 3)\n", ev[1]);
  skd_pspnet_free(net);
  skd_arena_free(arena);
}
END_TEST

int main(void) {
  Suite *s = suite_create("nn");
  TCase *tc = support_tcase("pspnet");
  tcase_add_test(tc, test_names);
  tcase_add_test(tc, test_r18_vs_torch);
  tcase_add_test(tc, test_r50_vs_torch);
  tcase_add_test(tc, test_fd_eval);
  tcase_add_test(tc, test_dropout);
  tcase_add_test(tc, test_load_errors);
  tcase_add_test(tc, test_bad_values);
  tcase_add_test(tc, test_bad_arguments);
  tcase_add_test(tc, test_steady_state_and_timing);
  suite_add_tcase(s, tc);
  return support_main(s);
}
