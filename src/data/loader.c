/* Batches of a seeded stream, and the loader thread that prepares batch k + 1
 * while the caller trains on batch k (two slots: one held by the caller, one
 * being filled). The worker computes exactly skd_loader_batch(k), so a run is
 * the same with or without the thread. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_private.h"
#include "skd/data.h"

void skd_batch_free(skd_batch *b) {
  if (!b) return;
  free(b->image);
  free(b->label);
  free(b->depth);
  free(b->index);
  memset(b, 0, sizeof *b);
}

static skd_status batch_reserve(skd_batch *b, int n, int h, int w, int with_depth) {
  size_t pix = (size_t)n * (size_t)h * (size_t)w;
  if (with_depth && pix > b->capacity_depth) {
    float *p = realloc(b->depth, pix * sizeof(float));
    if (!p) return skd_error(SKD_ENOMEM, "batch: out of host memory for (%d, %d, %d) depths", n, h, w);
    b->depth = p;
    b->capacity_depth = pix;
  }
  if (3 * pix > b->capacity_image) {
    float *p = realloc(b->image, 3 * pix * sizeof(float));
    if (!p) return skd_error(SKD_ENOMEM, "batch: out of host memory for (%d, 3, %d, %d) images", n, h, w);
    b->image = p;
    b->capacity_image = 3 * pix;
  }
  if (pix > b->capacity_label) {
    uint8_t *p = realloc(b->label, pix);
    if (!p) return skd_error(SKD_ENOMEM, "batch: out of host memory for (%d, %d, %d) labels", n, h, w);
    b->label = p;
    b->capacity_label = pix;
  }
  if ((size_t)n > b->capacity_index) {
    int *p = realloc(b->index, (size_t)n * sizeof(int));
    if (!p) return skd_error(SKD_ENOMEM, "batch: out of host memory");
    b->index = p;
    b->capacity_index = (size_t)n;
  }
  b->n = n;
  b->h = h;
  b->w = w;
  return SKD_OK;
}

/* The order of epoch e: Fisher-Yates with draws from (seed, e). */
static void epoch_order(int *perm, int n, uint64_t seed, int64_t epoch) {
  for (int i = 0; i < n; i++) perm[i] = i;
  rng r = rng_init(seed, RNG_SHUFFLE, (uint64_t)epoch);
  for (int i = n - 1; i > 0; i--) {
    int j = rng_int(&r, 0, i);
    int t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
}

static skd_status check_config(const skd_dataset *d, const skd_loader_config *c) {
  if (c->batch < 1) return skd_error(SKD_EINVAL, "loader: batch %d must be positive", c->batch);
  if (c->stream_batch > 0 && (c->stream_first < 0 || c->stream_first + c->batch > c->stream_batch))
    return skd_error(SKD_EINVAL, "loader: shard %d..%d lies outside the global batch of %d", c->stream_first,
                     c->stream_first + c->batch - 1, c->stream_batch);
  if (c->first_batch < 0) return skd_error(SKD_EINVAL, "loader: first batch %lld is negative", (long long)c->first_batch);
  if (skd_dataset_size(d) < 1) return skd_error(SKD_EINVAL, "loader: empty dataset");
  if (c->train && (c->augment.crop_h < 1 || c->augment.crop_w < 1))
    return skd_error(SKD_EINVAL, "loader: crop %dx%d must be positive", c->augment.crop_w, c->augment.crop_h);
  for (int i = 0; i < 3; i++)
    if (!(c->augment.normalize.std[i] > 0.0f))
      return skd_error(SKD_EINVAL, "loader: normalisation std[%d] = %g must be positive (set augment.normalize)", i,
                       c->augment.normalize.std[i]);
  return SKD_OK;
}

static skd_status train_batch(const skd_dataset *d, const skd_loader_config *c, uint64_t seed, int64_t k,
                              skd_batch *out) {
  int n = skd_dataset_size(d), ch = c->augment.crop_h, cw = c->augment.crop_w;
  const int depth = c->depth_scale > 0.0f;
  skd_status st = batch_reserve(out, c->batch, ch, cw, depth);
  if (st != SKD_OK) return st;
  int *perm = malloc((size_t)n * sizeof(int));
  if (!perm) return skd_error(SKD_ENOMEM, "loader: out of host memory");
  int64_t have_epoch = -1;
  size_t plane = (size_t)ch * (size_t)cw;
  int ignore = skd_dataset_label_map(d)->ignore;
  for (int b = 0; b < c->batch && st == SKD_OK; b++) {
    int64_t stride = c->stream_batch > 0 ? c->stream_batch : c->batch;
    int64_t pos = k * stride + c->stream_first + b;
    int64_t epoch = pos / n;
    if (epoch != have_epoch) {
      epoch_order(perm, n, seed, epoch);
      have_epoch = epoch;
    }
    int idx = perm[pos % n];
    out->index[b] = idx;
    skd_sample s;
    st = depth ? skd_dataset_read_depth(d, idx, c->depth_scale, &s) : skd_dataset_read(d, idx, &s);
    if (st == SKD_OK && depth)
      st = skd_augment_depth_sample(&s, &c->augment, seed, (uint64_t)pos, out->image + (size_t)b * 3 * plane,
                                    out->depth + (size_t)b * plane);
    else if (st == SKD_OK)
      st = skd_augment_sample(&s, &c->augment, ignore, seed, (uint64_t)pos, out->image + (size_t)b * 3 * plane,
                              out->label + (size_t)b * plane);
    skd_sample_free(&s);
  }
  free(perm);
  return st;
}

static skd_status eval_batch(const skd_dataset *d, const skd_loader_config *c, int64_t k, skd_batch *out) {
  int64_t first = k * c->batch, total = skd_dataset_size(d);
  out->n = 0;
  if (first >= total) return SKD_OK;
  int count = (int)(total - first < c->batch ? total - first : c->batch);
  skd_status st = SKD_OK;
  for (int b = 0; b < count && st == SKD_OK; b++) {
    int idx = (int)first + b;
    skd_sample s;
    const int depth = c->depth_scale > 0.0f;
    st = depth ? skd_dataset_read_depth(d, idx, c->depth_scale, &s) : skd_dataset_read(d, idx, &s);
    if (st != SKD_OK) break;
    if (b == 0) {
      st = batch_reserve(out, count, s.h, s.w, depth);
    } else if (s.h != out->h || s.w != out->w) {
      st = skd_error(SKD_EINVAL, "%s:%d: evaluation batch of %d needs equal image sizes: '%s' is %dx%d, '%s' is "
                     "%dx%d (use batch 1)", skd_dataset_list_path(d), skd_dataset_line(d, idx), c->batch,
                     skd_dataset_image_path(d, (int)first), out->w, out->h, skd_dataset_image_path(d, idx), s.w, s.h);
    }
    if (st == SKD_OK) {
      size_t plane = (size_t)s.h * (size_t)s.w;
      skd_normalize_sample(&s, &c->augment.normalize, out->image + (size_t)b * 3 * plane,
                           depth ? NULL : out->label + (size_t)b * plane);
      if (depth) memcpy(out->depth + (size_t)b * plane, s.depth, plane * sizeof(float));
      out->index[b] = idx;
    }
    skd_sample_free(&s);
  }
  if (st != SKD_OK) out->n = 0;
  return st;
}

skd_status skd_loader_batch(const skd_dataset *d, const skd_loader_config *c, uint64_t seed, int64_t k,
                            skd_batch *out) {
  skd_status st = check_config(d, c);
  if (st != SKD_OK) return st;
  if (k < 0) return skd_error(SKD_EINVAL, "loader: batch number %lld is negative", (long long)k);
  out->number = k;
  return c->train ? train_batch(d, c, seed, k, out) : eval_batch(d, c, k, out);
}

/* ---- The loader thread ---------------------------------------------------- */

enum slot_state { SLOT_FREE, SLOT_READY, SLOT_HELD };

struct slot {
  enum slot_state state;
  skd_batch batch;
  skd_status status;
  char message[2048];
};

struct skd_loader {
  const skd_dataset *d;
  skd_loader_config config;
  uint64_t seed;
  pthread_t thread;
  pthread_mutex_t mutex;
  pthread_cond_t cond;
  struct slot slot[2];
  int stop;
  int64_t next_batch; /* what next() hands out; slot = next_batch % 2 */
};

static void *worker(void *arg) {
  skd_loader *l = arg;
  int64_t k = l->config.first_batch;
  for (;;) {
    struct slot *s = &l->slot[k % 2];
    pthread_mutex_lock(&l->mutex);
    while (!l->stop && s->state != SLOT_FREE) pthread_cond_wait(&l->cond, &l->mutex);
    int stop = l->stop;
    pthread_mutex_unlock(&l->mutex);
    if (stop) break;
    /* The slot is free: nobody else touches it until it is marked ready. */
    skd_status st = skd_loader_batch(l->d, &l->config, l->seed, k, &s->batch);
    s->status = st;
    if (st != SKD_OK) snprintf(s->message, sizeof s->message, "%s", skd_error_last());
    int end = st != SKD_OK || s->batch.n == 0; /* an error or the end of a pass: nothing follows */
    pthread_mutex_lock(&l->mutex);
    s->state = SLOT_READY;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->mutex);
    if (end) break;
    k++;
  }
  return NULL;
}

skd_status skd_loader_create(skd_loader **out, const skd_dataset *d, const skd_loader_config *c, uint64_t seed) {
  *out = NULL;
  skd_status st = check_config(d, c);
  if (st != SKD_OK) return st;
  skd_loader *l = calloc(1, sizeof *l);
  if (!l) return skd_error(SKD_ENOMEM, "loader: out of host memory");
  l->d = d;
  l->config = *c;
  l->seed = seed;
  l->next_batch = c->first_batch;
  if (pthread_mutex_init(&l->mutex, NULL) != 0) {
    free(l);
    return skd_error(SKD_ENOMEM, "loader: cannot create a mutex");
  }
  if (pthread_cond_init(&l->cond, NULL) != 0) {
    pthread_mutex_destroy(&l->mutex);
    free(l);
    return skd_error(SKD_ENOMEM, "loader: cannot create a condition variable");
  }
  if (pthread_create(&l->thread, NULL, worker, l) != 0) {
    pthread_cond_destroy(&l->cond);
    pthread_mutex_destroy(&l->mutex);
    free(l);
    return skd_error(SKD_ENOMEM, "loader: cannot start the worker thread");
  }
  *out = l;
  return SKD_OK;
}

skd_status skd_loader_next(skd_loader *l, const skd_batch **out) {
  *out = NULL;
  pthread_mutex_lock(&l->mutex);
  /* The batch handed out last time goes back to the worker, unless it ended
   * the stream (an error or the end of a pass), which stays to be reported. */
  struct slot *prev = &l->slot[(l->next_batch + 1) % 2];
  if (prev->state == SLOT_HELD) {
    prev->state = SLOT_FREE;
    pthread_cond_broadcast(&l->cond);
  }
  struct slot *s = &l->slot[l->next_batch % 2];
  while (s->state != SLOT_READY) pthread_cond_wait(&l->cond, &l->mutex);
  skd_status st = s->status;
  int end = st != SKD_OK || s->batch.n == 0;
  if (!end) {
    s->state = SLOT_HELD;
    l->next_batch++;
  }
  pthread_mutex_unlock(&l->mutex);
  if (st != SKD_OK) return skd_error(st, "%s", s->message);
  if (!end) *out = &s->batch;
  return SKD_OK;
}

void skd_loader_free(skd_loader *l) {
  if (!l) return;
  pthread_mutex_lock(&l->mutex);
  l->stop = 1;
  pthread_cond_broadcast(&l->cond);
  pthread_mutex_unlock(&l->mutex);
  pthread_join(l->thread, NULL);
  pthread_cond_destroy(&l->cond);
  pthread_mutex_destroy(&l->mutex);
  skd_batch_free(&l->slot[0].batch);
  skd_batch_free(&l->slot[1].batch);
  free(l);
}
