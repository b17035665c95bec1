/* The parameter registry: PyTorch names and shapes, one device buffer for
 * the values and one for the gradients, seeded initialisation and
 * safetensors load/save (see skd/nn/module.h). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skd/nn/module.h"

/* Every tensor starts on a 32-float (128-byte) boundary of the shared
 * buffers, so GEMMs see aligned matrices. */
#define ALIGN_FLOATS 32
#define TWO_PI 6.283185307179586476925

void skd_nn_params_init(skd_nn_params *r, skd_context *ctx, int with_grad) {
  memset(r, 0, sizeof *r);
  r->ctx = ctx;
  r->with_grad = with_grad;
}

void skd_nn_params_free(skd_nn_params *r) {
  if (!r) return;
  for (int i = 0; i < r->count; i++) {
    skd_param_release(&r->entries[i]->param);
    free(r->entries[i]);
  }
  free(r->entries);
  free(r->trainable);
  if (r->values) {
    skd_context_thaw(r->ctx, r->values);
    clReleaseMemObject(r->values);
  }
  if (r->grads) clReleaseMemObject(r->grads);
  memset(r, 0, sizeof *r);
}

static skd_status add_entry(skd_nn_params *r, skd_nn_entry **out, const char *name, int ndim, const int64_t *shape,
                            int is_buffer, skd_nn_init init, int fan) {
  if (r->finalized) return skd_error(SKD_EINVAL, "nn params: cannot add %s after finalize", name);
  if (strlen(name) >= sizeof(((skd_param *)0)->name))
    return skd_error(SKD_EINVAL, "nn params: name too long: %s", name);
  if (skd_nn_params_find(r, name)) return skd_error(SKD_EINVAL, "nn params: duplicate name %s", name);
  for (int d = 0; d < ndim; d++)
    if (shape[d] < 1) return skd_error(SKD_EINVAL, "nn params: %s has an empty dimension", name);
  if (r->count == r->cap) {
    int cap = r->cap ? 2 * r->cap : 64;
    skd_nn_entry **e = realloc(r->entries, (size_t)cap * sizeof *e);
    if (!e) return skd_error(SKD_ENOMEM, "nn params: out of host memory");
    r->entries = e;
    r->cap = cap;
  }
  skd_nn_entry *e = calloc(1, sizeof *e);
  if (!e) return skd_error(SKD_ENOMEM, "nn params: out of host memory");
  snprintf(e->param.name, sizeof e->param.name, "%s", name);
  e->ndim = ndim;
  for (int d = 0; d < ndim; d++) e->shape[d] = shape[d];
  e->is_buffer = is_buffer;
  e->init = init;
  e->fan = fan;
  /* Device shape: 4-D as is, vectors as (1, C, 1, 1). */
  skd_tensor *v = &e->param.value;
  if (ndim == 4) {
    v->n = (int)shape[0];
    v->c = (int)shape[1];
    v->h = (int)shape[2];
    v->w = (int)shape[3];
  } else {
    v->n = 1;
    v->c = (int)shape[0];
    v->h = 1;
    v->w = 1;
  }
  r->entries[r->count++] = e;
  *out = e;
  return SKD_OK;
}

static void join(char *buf, size_t size, const char *prefix, const char *suffix) {
  snprintf(buf, size, "%s.%s", prefix, suffix);
}

skd_status skd_nn_params_add_conv(skd_nn_params *r, skd_param **weight, skd_param **bias, const char *prefix,
                                  int cin, int cout, int k) {
  char name[160];
  skd_nn_entry *e = NULL;
  int64_t wshape[4] = {cout, cin, k, k};
  join(name, sizeof name, prefix, "weight");
  skd_status st = add_entry(r, &e, name, 4, wshape, 0, SKD_NN_INIT_KAIMING_OUT, cout * k * k);
  if (st != SKD_OK) return st;
  *weight = &e->param;
  if (bias) {
    int64_t bshape[1] = {cout};
    join(name, sizeof name, prefix, "bias");
    st = add_entry(r, &e, name, 1, bshape, 0, SKD_NN_INIT_CONV_BIAS, cin * k * k);
    if (st != SKD_OK) return st;
    *bias = &e->param;
  }
  return SKD_OK;
}

skd_status skd_nn_params_add_bn(skd_nn_params *r, skd_param **gamma, skd_param **beta, skd_param **running_mean,
                                skd_param **running_var, const char *prefix, int c) {
  static const char *suffix[4] = {"weight", "bias", "running_mean", "running_var"};
  static const skd_nn_init init[4] = {SKD_NN_INIT_ONES, SKD_NN_INIT_ZEROS, SKD_NN_INIT_ZEROS, SKD_NN_INIT_ONES};
  skd_param **out[4] = {gamma, beta, running_mean, running_var};
  int64_t shape[1] = {c};
  for (int i = 0; i < 4; i++) {
    char name[160];
    skd_nn_entry *e = NULL;
    join(name, sizeof name, prefix, suffix[i]);
    skd_status st = add_entry(r, &e, name, 1, shape, i >= 2, init[i], 0);
    if (st != SKD_OK) return st;
    *out[i] = &e->param;
  }
  return SKD_OK;
}

void skd_nn_params_mark_replaceable(skd_nn_params *r, const char *prefix) {
  size_t len = strlen(prefix);
  for (int i = 0; i < r->count; i++)
    if (strncmp(r->entries[i]->param.name, prefix, len) == 0) r->entries[i]->replaceable = 1;
}

skd_nn_entry *skd_nn_params_find(const skd_nn_params *r, const char *name) {
  for (int i = 0; i < r->count; i++)
    if (strcmp(r->entries[i]->param.name, name) == 0) return r->entries[i];
  return NULL;
}

static int trainable(const skd_nn_params *r, const skd_nn_entry *e) { return r->with_grad && !e->is_buffer; }

size_t skd_nn_params_numel(const skd_nn_params *r, int trainable_only) {
  size_t total = 0;
  for (int i = 0; i < r->count; i++)
    if (!trainable_only || !r->entries[i]->is_buffer) total += skd_tensor_numel(&r->entries[i]->param.value);
  return total;
}

static size_t round_up(size_t x) { return (x + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS; }

skd_status skd_nn_params_finalize(skd_nn_params *r) {
  if (r->finalized) return skd_error(SKD_EINVAL, "nn params: finalize called twice");
  size_t nv = 0, ng = 0;
  int nt = 0;
  for (int i = 0; i < r->count; i++) {
    size_t numel = round_up(skd_tensor_numel(&r->entries[i]->param.value));
    nv += numel;
    if (trainable(r, r->entries[i])) {
      ng += numel;
      nt++;
    }
  }
  if (nv > (size_t)0x7fffffff || nv == 0)
    return skd_error(SKD_EINVAL, "nn params: %zu values (must be 1 .. 2^31 - 1)", nv);
  skd_status st = skd_buffer_create(r->ctx, nv * sizeof(float), "network parameters", &r->values);
  /* No gradients, no updates: ops may keep what they derive from the values. */
  if (st == SKD_OK && !r->with_grad) st = skd_context_freeze(r->ctx, r->values);
  if (st == SKD_OK && ng) st = skd_buffer_create(r->ctx, ng * sizeof(float), "network gradients", &r->grads);
  if (st == SKD_OK && nt && !(r->trainable = calloc((size_t)nt, sizeof *r->trainable)))
    st = skd_error(SKD_ENOMEM, "nn params: out of host memory");
  if (st != SKD_OK) return st;
  r->value_floats = nv;
  r->grad_floats = ng;
  size_t ov = 0, og = 0;
  for (int i = 0; i < r->count; i++) {
    skd_nn_entry *e = r->entries[i];
    size_t numel = round_up(skd_tensor_numel(&e->param.value));
    /* Each view holds a reference, so skd_param_release stays correct. */
    e->param.value.mem = r->values;
    e->param.value.offset = ov;
    clRetainMemObject(r->values);
    ov += numel;
    if (trainable(r, e)) {
      e->param.grad = e->param.value;
      e->param.grad.mem = r->grads;
      e->param.grad.offset = og;
      clRetainMemObject(r->grads);
      og += numel;
      r->trainable[r->ntrainable++] = &e->param;
    }
  }
  r->finalized = 1;
  return skd_nn_params_zero_grad(r);
}

skd_status skd_nn_params_zero_grad(skd_nn_params *r) {
  if (!r->grads) return SKD_OK;
  skd_tensor all = skd_tensor_view(r->grads, 0, 1, (int)r->grad_floats, 1, 1);
  return skd_tensor_fill(r->ctx, &all, 0.0f);
}

/* ---- initialisation ---- */

static uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static uint64_t fnv1a64(const char *s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
  return h;
}

/* Uniform in (0, 1]: 53 random bits. */
static double uniform01(uint64_t *s) { return ((double)(splitmix64(s) >> 11) + 1.0) * 0x1p-53; }

static void init_entry(const skd_nn_entry *e, uint64_t seed, float *out) {
  size_t n = skd_tensor_numel(&e->param.value);
  uint64_t s = seed ^ fnv1a64(e->param.name);
  switch (e->init) {
    case SKD_NN_INIT_KAIMING_OUT: {
      double std = sqrt(2.0 / (double)e->fan);
      for (size_t i = 0; i < n; i += 2) { /* Box-Muller: two normals per pair of uniforms */
        double r = sqrt(-2.0 * log(uniform01(&s))), t = TWO_PI * uniform01(&s);
        out[i] = (float)(std * r * cos(t));
        if (i + 1 < n) out[i + 1] = (float)(std * r * sin(t));
      }
      break;
    }
    case SKD_NN_INIT_CONV_BIAS: {
      double bound = 1.0 / sqrt((double)e->fan);
      for (size_t i = 0; i < n; i++) out[i] = (float)(bound * (2.0 * uniform01(&s) - 1.0));
      break;
    }
    case SKD_NN_INIT_ONES:
      for (size_t i = 0; i < n; i++) out[i] = 1.0f;
      break;
    case SKD_NN_INIT_ZEROS:
      for (size_t i = 0; i < n; i++) out[i] = 0.0f;
      break;
  }
}

static skd_status check_finalized(const skd_nn_params *r, const char *what) {
  return r->finalized ? SKD_OK : skd_error(SKD_EINVAL, "nn params: %s before finalize", what);
}

static skd_tensor all_values(const skd_nn_params *r) {
  return skd_tensor_view(r->values, 0, 1, (int)r->value_floats, 1, 1);
}

/* Every value at once; what ops derived from frozen values is dropped. */
static skd_status upload_all(skd_nn_params *r, const float *host) {
  skd_tensor all = all_values(r);
  skd_status st = skd_tensor_upload(r->ctx, &all, host);
  skd_context_changed(r->ctx, r->values);
  return st;
}

skd_status skd_nn_params_init_values(skd_nn_params *r, uint64_t seed) {
  skd_status st = check_finalized(r, "init_values");
  if (st != SKD_OK) return st;
  float *host = calloc(r->value_floats, sizeof *host);
  if (!host) return skd_error(SKD_ENOMEM, "nn params: out of host memory (%zu values)", r->value_floats);
  for (int i = 0; i < r->count; i++) init_entry(r->entries[i], seed, host + r->entries[i]->param.value.offset);
  st = upload_all(r, host);
  free(host);
  return st;
}

/* ---- save ---- */

static float *download_all(skd_nn_params *r, skd_status *st) {
  float *host = malloc(r->value_floats * sizeof *host);
  if (!host) {
    *st = skd_error(SKD_ENOMEM, "nn params: out of host memory (%zu values)", r->value_floats);
    return NULL;
  }
  skd_tensor all = all_values(r);
  *st = skd_tensor_download(r->ctx, &all, host);
  if (*st != SKD_OK) {
    free(host);
    return NULL;
  }
  return host;
}

/* Checks every tensor of the downloaded values (skd_values_check) and, with a
 * writer, adds it under prefix + its name. */
static skd_status check_all(const skd_nn_params *r, const float *host, const char *prefix, const char *what,
                            skd_safetensors_writer *w) {
  skd_status st = SKD_OK;
  for (int i = 0; st == SKD_OK && i < r->count; i++) {
    const skd_nn_entry *e = r->entries[i];
    char name[300];
    snprintf(name, sizeof name, "%s%s", prefix ? prefix : "", e->param.name);
    const float *v = host + e->param.value.offset;
    st = skd_values_check(v, skd_tensor_numel(&e->param.value), name, what);
    if (st == SKD_OK && w) st = skd_safetensors_writer_add(w, name, e->ndim, e->shape, v);
  }
  return st;
}

skd_status skd_nn_params_write(skd_nn_params *r, skd_safetensors_writer *w, const char *prefix) {
  skd_status st = check_finalized(r, "write");
  if (st != SKD_OK) return st;
  float *host = download_all(r, &st);
  if (host) st = check_all(r, host, prefix, "refusing to save", w);
  free(host);
  return st;
}

skd_status skd_nn_params_check_values(skd_nn_params *r, const char *what) {
  skd_status st = check_finalized(r, "check");
  if (st != SKD_OK) return st;
  float *host = download_all(r, &st);
  if (host) st = check_all(r, host, NULL, what, NULL);
  free(host);
  return st;
}

skd_status skd_nn_params_save(skd_nn_params *r, const char *path) {
  skd_safetensors_writer *w = NULL;
  skd_status st = skd_safetensors_writer_create(&w);
  if (st == SKD_OK) st = skd_nn_params_write(r, w, NULL);
  if (st == SKD_OK) st = skd_safetensors_write(w, path);
  skd_safetensors_writer_free(w);
  return st;
}

/* ---- load ---- */

/* A bounded message: items past `limit` bytes are counted, not printed. */
struct list {
  char text[600];
  size_t limit;
  int count, shown;
};

static void list_add(struct list *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void list_add(struct list *l, const char *fmt, ...) {
  char item[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(item, sizeof item, fmt, ap);
  va_end(ap);
  l->count++;
  size_t used = strlen(l->text);
  if (used + strlen(item) + 2 > l->limit) return;
  snprintf(l->text + used, sizeof l->text - used, "%s%s", l->shown ? ", " : "", item);
  l->shown++;
}

static void shape_string(char *buf, size_t size, int ndim, const int64_t *shape) {
  size_t used = (size_t)snprintf(buf, size, "[");
  for (int d = 0; d < ndim && used < size; d++)
    used += (size_t)snprintf(buf + used, size - used, "%s%lld", d ? ", " : "", (long long)shape[d]);
  if (used < size) snprintf(buf + used, size - used, "]");
}

static int float_dtype(skd_dtype t) {
  return t == SKD_DTYPE_F32 || t == SKD_DTYPE_F16 || t == SKD_DTYPE_BF16 || t == SKD_DTYPE_F64;
}

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int same_shape(const skd_nn_entry *e, const skd_safetensors_entry *t) {
  if (e->ndim != t->ndim) return 0;
  for (int d = 0; d < e->ndim; d++)
    if (e->shape[d] != t->shape[d]) return 0;
  return 1;
}

static void list_text(char *out, size_t size, const char *what, const struct list *l) {
  if (!l->count) {
    out[0] = '\0';
    return;
  }
  if (l->shown < l->count)
    snprintf(out, size, "; %s: %s (and %d more)", what, l->text, l->count - l->shown);
  else
    snprintf(out, size, "; %s: %s", what, l->text);
}

skd_status skd_nn_params_read(skd_nn_params *r, skd_safetensors *f, const char *prefix, int flags) {
  skd_status st = check_finalized(r, "read");
  if (st != SKD_OK) return st;
  const int keep_replaceable = (flags & SKD_NN_LOAD_KEEP_REPLACEABLE) != 0;
  const size_t plen = prefix ? strlen(prefix) : 0;
  int *source = malloc((size_t)r->count * sizeof *source); /* file index per entry, -1: not loaded */
  struct list *lists = calloc(3, sizeof *lists);            /* missing, unexpected, mis-shaped */
  if (!source || !lists) {
    free(source);
    free(lists);
    return skd_error(SKD_ENOMEM, "nn params: out of host memory");
  }
  for (int i = 0; i < r->count; i++) source[i] = -1;
  lists[0].limit = lists[1].limit = lists[2].limit = 560;

  const int nfile = skd_safetensors_count(f);
  for (int j = 0; j < nfile; j++) {
    const skd_safetensors_entry *t = skd_safetensors_entry_at(f, j);
    if (prefix && strncmp(t->name, prefix, plen) != 0) continue;
    const char *name = t->name + plen;
    if (ends_with(name, ".num_batches_tracked")) continue;
    if ((flags & SKD_NN_LOAD_NETWORK_ONLY) && (!strncmp(name, "optim.", 6) || !strncmp(name, "disc.", 5))) continue;
    skd_nn_entry *e = skd_nn_params_find(r, name);
    if (!e) {
      list_add(&lists[1], "%s", t->name);
      continue;
    }
    int idx = 0;
    while (r->entries[idx] != e) idx++;
    char want[80], got[80];
    shape_string(want, sizeof want, e->ndim, e->shape);
    shape_string(got, sizeof got, t->ndim, t->shape);
    if (!same_shape(e, t)) {
      source[idx] = -2; /* present, but not loadable */
      if (!(keep_replaceable && e->replaceable))
        list_add(&lists[2], "%s (file %s, expected %s)", t->name, got, want);
      continue;
    }
    if (!float_dtype(t->dtype)) {
      source[idx] = -2;
      list_add(&lists[2], "%s (dtype %s, expected a float type)", t->name, skd_dtype_name(t->dtype));
      continue;
    }
    source[idx] = j;
  }
  for (int i = 0; i < r->count; i++)
    if (source[i] == -1 && !(keep_replaceable && r->entries[i]->replaceable))
      list_add(&lists[0], "%s%s", prefix ? prefix : "", r->entries[i]->param.name);

  if (lists[0].count || lists[1].count || lists[2].count) {
    char parts[3][700];
    list_text(parts[0], sizeof parts[0], "missing", &lists[0]);
    list_text(parts[1], sizeof parts[1], "unexpected", &lists[1]);
    list_text(parts[2], sizeof parts[2], "mis-shaped", &lists[2]);
    st = skd_error(SKD_EFORMAT, "checkpoint does not match the network: %d missing, %d unexpected, %d mis-shaped%s%s%s",
                   lists[0].count, lists[1].count, lists[2].count, parts[0], parts[1], parts[2]);
    free(source);
    free(lists);
    return st;
  }
  free(lists);

  /* All checks passed: read everything, then upload once. Tensors not
   * loaded (kept replaceable ones) keep their values. */
  float *host = download_all(r, &st);
  for (int i = 0; host && st == SKD_OK && i < r->count; i++) {
    if (source[i] < 0) continue;
    const skd_nn_entry *e = r->entries[i];
    float *v = host + e->param.value.offset;
    size_t n = skd_tensor_numel(&e->param.value);
    st = skd_safetensors_read_f32(f, source[i], v, n);
    if (st == SKD_OK) st = skd_values_check(v, n, skd_safetensors_entry_at(f, source[i])->name, "checkpoint");
  }
  if (host && st == SKD_OK) st = upload_all(r, host);
  free(host);
  free(source);
  return st;
}

skd_status skd_nn_params_load(skd_nn_params *r, const char *path, int flags) {
  skd_safetensors *f = NULL;
  skd_status st = skd_safetensors_open(&f, path);
  if (st != SKD_OK) return st;
  st = skd_nn_params_read(r, f, NULL, flags);
  skd_safetensors_close(f);
  if (st != SKD_OK) {
    char msg[2048];
    snprintf(msg, sizeof msg, "%s", skd_error_last());
    st = skd_error(st, "%s: %s", path, msg);
  }
  return st;
}
