/* Data-parallel gradient averaging and the start-of-run broadcast, staged
 * through host memory (no MPI library reads OpenCL buffers).
 *
 * A step's gradients reach the host in the order backward finishes them:
 * D's (complete before the student's backward starts), then the student's
 * unit by unit (the exec hook, last layers first). Each is read back
 * without blocking as soon as it is final; every 25 MB
 * (SKD_DIST_BUCKET_MB) close a bucket, whose allreduce starts once its
 * read-back is done, while the device goes on with the rest of backward.
 * Buckets start in the same order on every rank (the order backward hands
 * the gradients over), on a communicator of their own. */
#include <stdlib.h>
#include <time.h>

#include "skd/dist.h"
#include "train/trainer_private.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return 1e3 * (double)ts.tv_sec + 1e-6 * (double)ts.tv_nsec;
}

static size_t total_floats(skd_param *const *p, int n, int grads) {
  size_t total = 0;
  for (int i = 0; i < n; i++) total += skd_tensor_numel(grads ? &p[i]->grad : &p[i]->value);
  return total;
}

static skd_status stage_reserve(skd_context *ctx, dist_grads *g, size_t floats, int params) {
  if (floats > g->stage_floats) {
    skd_status st = skd_context_finish(ctx); /* no queued write may still read the old stage */
    if (st != SKD_OK) return st;
    float *s = realloc(g->stage, floats * sizeof(float));
    if (!s) return skd_error(SKD_ENOMEM, "data parallel: out of host memory for %zu staged floats", floats);
    g->stage = s;
    g->stage_floats = floats;
  }
  if (params > g->params_capacity) {
    skd_param **p = realloc(g->params, (size_t)params * sizeof *p);
    size_t *o = p ? realloc(g->offsets, (size_t)params * sizeof *o) : NULL;
    if (p) g->params = p;
    if (!o) return skd_error(SKD_ENOMEM, "data parallel: out of host memory for %d gradients", params);
    g->offsets = o;
    g->params_capacity = params;
  }
  return SKD_OK;
}

void dist_grads_free(dist_grads *g) {
  for (int b = 0; b < g->nbuckets; b++)
    if (g->buckets[b].read) clReleaseEvent(g->buckets[b].read);
  free(g->stage);
  free(g->params);
  free(g->offsets);
}

skd_status dist_broadcast_params(struct skd_trainer *t, skd_param *const *p, int n) {
  if (t->ranks < 2 || n == 0) return SKD_OK;
  dist_grads *g = &t->grads;
  skd_status st = stage_reserve(t->ctx, g, total_floats(p, n, 0), 0);
  size_t at = 0;
  for (int i = 0; i < n && st == SKD_OK; i++) {
    st = skd_tensor_download(t->ctx, &p[i]->value, g->stage + at);
    at += skd_tensor_numel(&p[i]->value);
  }
  if (st == SKD_OK) st = skd_dist_broadcast(g->stage, at * sizeof(float), 0);
  at = 0;
  for (int i = 0; i < n && st == SKD_OK; i++) {
    st = skd_tensor_upload(t->ctx, &p[i]->value, g->stage + at);
    skd_context_changed(t->ctx, p[i]->value.mem);
    at += skd_tensor_numel(&p[i]->value);
  }
  return st;
}

static skd_status close_bucket(struct skd_trainer *t);
static skd_status progress(struct skd_trainer *t);

skd_status dist_grads_begin(struct skd_trainer *t) {
  if (t->ranks < 2) return SKD_OK;
  dist_grads *g = &t->grads;
  for (int b = 0; b < g->nbuckets; b++)
    if (g->buckets[b].read) clReleaseEvent(g->buckets[b].read);
  g->nparams = g->nbuckets = g->nstarted = g->ndone = 0;
  g->staged = g->bucket_start = 0;
  g->busy_ms = g->after_backward_ms = g->write_back_ms = 0;
  g->begin_ms = now_ms();
  const skd_nn_params *student = &t->student->params;
  int dn = 0;
  skd_param *const *dp = t->adv ? adversary_params(t->adv, &dn, 0) : NULL;
  g->expected_params = student->ntrainable + dn;
  skd_status st = stage_reserve(t->ctx, g, total_floats(student->trainable, student->ntrainable, 1) +
                                               total_floats(dp, dn, 1), g->expected_params);
  /* D's gradients are complete: their bucket runs behind the student's backward. */
  if (st == SKD_OK && dp) st = dist_grads_add(t, dp, dn);
  if (st == SKD_OK) st = close_bucket(t);
  return st == SKD_OK ? progress(t) : st;
}

/* Closes the bucket being filled (its reads are queued): it may start. */
static skd_status close_bucket(struct skd_trainer *t) {
  dist_grads *g = &t->grads;
  if (g->staged == g->bucket_start) return SKD_OK;
  if (g->nbuckets == SKD_DIST_MAX_PENDING)
    return skd_error(SKD_EINVAL, "data parallel: more than %d gradient buckets", SKD_DIST_MAX_PENDING);
  dist_bucket *b = &g->buckets[g->nbuckets++];
  *b = (dist_bucket){g->bucket_start, g->staged - g->bucket_start, g->last_read, -1, now_ms(), 0, 0};
  clRetainEvent(b->read);
  g->bucket_start = g->staged;
  /* the reads go to the device now, not at the next blocking call */
  return skd_cl_check(clFlush(t->ctx->queue), "clFlush");
}

/* *done: the bucket's read-back has ended; a failed one is an error. */
static skd_status read_done(cl_event e, int *done) {
  cl_int status = CL_QUEUED;
  cl_int err = clGetEventInfo(e, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof status, &status, NULL);
  if (err == CL_SUCCESS && status < 0) err = status;
  *done = status == CL_COMPLETE;
  return skd_cl_check(err, "reading gradients back for the allreduce");
}

/* A bucket's sum is back (seen at `at_ms`): the average, x 1/N (exact for a
 * power-of-two rank count). */
static void bucket_done(dist_grads *g, dist_bucket *b, int ranks, double at_ms) {
  const float scale = 1.0f / (float)ranks;
  b->done_ms = at_ms;
  for (size_t k = 0; k < b->floats; k++) g->stage[b->start + k] *= scale;
}

/* Starts the buckets whose read-back is done (in order: every rank starts
 * them in the same order) and notes the ones whose sum came back (scaled by
 * 1/N there, off the critical path). Returns without waiting. */
static skd_status progress(struct skd_trainer *t) {
  dist_grads *g = &t->grads;
  skd_status st = SKD_OK;
  while (st == SKD_OK && g->nstarted < g->nbuckets) {
    int read = 0;
    st = read_done(g->buckets[g->nstarted].read, &read);
    if (st != SKD_OK || !read) break;
    dist_bucket *b = &g->buckets[g->nstarted++];
    b->started_ms = now_ms();
    st = skd_dist_iallreduce_sum(g->stage + b->start, b->floats, &b->handle);
  }
  while (st == SKD_OK && g->ndone < g->nstarted) {
    dist_bucket *b = &g->buckets[g->ndone];
    int done = 0;
    st = skd_dist_test(b->handle, &done);
    if (st != SKD_OK || !done) break;
    bucket_done(g, b, t->ranks, now_ms());
    g->ndone++;
  }
  return st;
}

skd_status dist_grads_add(struct skd_trainer *t, skd_param *const *p, int n) {
  if (t->ranks < 2) return SKD_OK;
  dist_grads *g = &t->grads;
  skd_status st = SKD_OK;
  for (int i = 0; i < n && st == SKD_OK; i++) {
    size_t floats = skd_tensor_numel(&p[i]->grad);
    if (g->nparams == g->expected_params || g->staged + floats > g->stage_floats)
      return skd_error(SKD_EINVAL, "data parallel: gradient '%s' was not expected in this step", p[i]->name);
    g->params[g->nparams] = p[i];
    g->offsets[g->nparams++] = g->staged;
    cl_event read = NULL;
    st = skd_tensor_download_async(t->ctx, &p[i]->grad, g->stage + g->staged, &read);
    if (st != SKD_OK) break;
    if (g->last_read) clReleaseEvent(g->last_read);
    g->last_read = read; /* an in-order queue: the bucket's reads are done when its last one is */
    g->staged += floats;
    if (g->staged - g->bucket_start >= skd_dist_bucket_floats()) st = close_bucket(t);
  }
  return st == SKD_OK ? progress(t) : st;
}

skd_status dist_grads_hook(void *user, skd_param *const *p, int n) { return dist_grads_add(user, p, n); }

/* Union of the buckets' in-flight intervals (they start in order). */
static double busy_ms(const dist_grads *g) {
  double total = 0, covered_to = 0;
  for (int b = 0; b < g->nbuckets; b++) {
    double s = g->buckets[b].started_ms, e = g->buckets[b].done_ms;
    if (s < covered_to) s = covered_to;
    if (e > s) total += e - s;
    if (e > covered_to) covered_to = e;
  }
  return total;
}

skd_status dist_grads_finish(struct skd_trainer *t) {
  if (t->ranks < 2) return SKD_OK;
  dist_grads *g = &t->grads;
  skd_status st = close_bucket(t);
  if (st == SKD_OK && g->nparams != g->expected_params)
    st = skd_error(SKD_EINVAL, "data parallel: %d of %d gradients were handed over for averaging", g->nparams,
                   g->expected_params);
  /* The device finishes backward: start each bucket as its read-back ends. */
  while (st == SKD_OK && g->nstarted < g->nbuckets) {
    st = progress(t);
    if (st == SKD_OK && g->nstarted < g->nbuckets) nanosleep(&(struct timespec){0, 20000}, NULL);
  }
  const double backward_done = g->backward_end_ms = now_ms();
  skd_status wait = skd_dist_wait_all();
  if (st == SKD_OK) st = wait;
  const double reduced = now_ms();
  for (; st == SKD_OK && g->ndone < g->nbuckets; g->ndone++)
    bucket_done(g, &g->buckets[g->ndone], t->ranks, reduced);
  /* Queued, not waited for: the stage is next written by the next step's
   * read-backs, which this in-order queue runs after these writes. */
  for (int i = 0; i < g->nparams && st == SKD_OK; i++)
    st = skd_tensor_upload_async(t->ctx, &g->params[i]->grad, g->stage + g->offsets[i]);
  if (g->last_read) clReleaseEvent(g->last_read);
  g->last_read = NULL;
  g->busy_ms = busy_ms(g);
  g->after_backward_ms = reduced - backward_done;
  g->write_back_ms = now_ms() - reduced;
  return st;
}

int skd_trainer_bucket_timeline(const skd_trainer *t, skd_bucket_timing *out, int max, double *backward_end) {
  const dist_grads *g = &t->grads;
  *backward_end = t->ranks > 1 ? g->backward_end_ms - g->begin_ms : 0;
  for (int b = 0; b < g->nbuckets && b < max; b++) {
    const dist_bucket *d = &g->buckets[b];
    out[b] = (skd_bucket_timing){1e-6 * (double)(d->floats * sizeof(float)), d->closed_ms - g->begin_ms,
                                 d->started_ms - g->begin_ms, d->done_ms - g->begin_ms};
  }
  return t->ranks > 1 ? g->nbuckets : 0;
}
