/* Per-kernel totals from OpenCL profiling events. Events are resolved in
 * batches so that the list stays bounded during long runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime_private.h"

int skd_profile_slot(skd_context *ctx, const char *name) {
  struct skd_runtime_private *p = ctx->priv;
  for (int i = 0; i < p->nprofile; i++)
    if (strcmp(p->profile[i].name, name) == 0) return i;
  if (p->nprofile == SKD_MAX_PROFILE_SLOTS) return SKD_MAX_PROFILE_SLOTS - 1;
  struct profile_slot *s = &p->profile[p->nprofile];
  snprintf(s->name, sizeof s->name, "%s", name);
  s->calls = 0;
  s->total_ms = 0;
  s->flops = s->bytes = 0;
  return p->nprofile++;
}

static void resolve(skd_context *ctx) {
  struct skd_runtime_private *p = ctx->priv;
  if (p->npending == 0) return;
  clFinish(ctx->queue);
  for (int i = 0; i < p->npending; i++) {
    cl_ulong t0 = 0, t1 = 0;
    cl_event ev = p->pending[i].event, begin = p->pending[i].begin;
    /* A span runs from the marker's end (the call's first command starts)
     * to the last command's end. */
    cl_int from = begin ? clGetEventProfilingInfo(begin, CL_PROFILING_COMMAND_END, sizeof t0, &t0, NULL)
                        : clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_START, sizeof t0, &t0, NULL);
    if (from == CL_SUCCESS &&
        clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL) == CL_SUCCESS &&
        t1 >= t0) {
      struct profile_slot *s = &p->profile[p->pending[i].slot];
      s->calls += (unsigned long)p->pending[i].is_call;
      s->total_ms += (double)(t1 - t0) * 1e-6;
    }
    clReleaseEvent(ev);
    if (begin) clReleaseEvent(begin);
  }
  p->npending = 0;
}

static void push_one(struct skd_runtime_private *p, int slot, int is_call, cl_event begin, cl_event ev) {
  p->pending[p->npending].is_call = is_call;
  p->pending[p->npending].event = ev;
  p->pending[p->npending].begin = begin;
  p->pending[p->npending].slot = slot;
  p->npending++;
}

/* Inside a group (skd_profile_group_begin) the command counts twice: under
 * its own name and under the group's. */
static void push(skd_context *ctx, int slot, cl_event begin, cl_event ev) {
  struct skd_runtime_private *p = ctx->priv;
  if (p->npending + 2 > SKD_MAX_PENDING_EVENTS) resolve(ctx);
  push_one(p, slot, 1, begin, ev);
  if (p->group_slot < 0 || p->group_slot == slot) return;
  clRetainEvent(ev);
  if (begin) clRetainEvent(begin);
  push_one(p, p->group_slot, 0, begin, ev);
}

void skd_profile_group_begin(skd_context *ctx, const char *name) {
  if (!ctx->profiling) return;
  int slot = skd_profile_slot(ctx, name);
  ctx->priv->group_slot = slot;
  ctx->priv->profile[slot].calls++; /* its commands add time only */
}

void skd_profile_group_end(skd_context *ctx) { ctx->priv->group_slot = -1; }

void skd_profile_push(skd_context *ctx, int slot, cl_event ev) { push(ctx, slot, NULL, ev); }

cl_event skd_profile_mark(skd_context *ctx) {
  cl_event m = NULL;
  if (ctx->profiling && clEnqueueMarkerWithWaitList(ctx->queue, 0, NULL, &m) != CL_SUCCESS) m = NULL;
  return m;
}

void skd_profile_span(skd_context *ctx, const char *name, cl_event begin, cl_event end) {
  if (!ctx->profiling || !begin || !end) {
    if (begin) clReleaseEvent(begin);
    if (end) clReleaseEvent(end);
    return;
  }
  push(ctx, skd_profile_slot(ctx, name), begin, end);
}

void skd_profile_event(skd_context *ctx, const char *name, cl_event ev) {
  if (!ev) return;
  if (!ctx->profiling) {
    clReleaseEvent(ev);
    return;
  }
  skd_profile_push(ctx, skd_profile_slot(ctx, name), ev);
}

void skd_profile_work(skd_context *ctx, const char *name, double flops, double bytes) {
  if (!ctx->profiling) return;
  struct profile_slot *s = &ctx->priv->profile[skd_profile_slot(ctx, name)];
  s->flops += flops;
  s->bytes += bytes;
}

void skd_profile_release(skd_context *ctx) {
  struct skd_runtime_private *p = ctx->priv;
  for (int i = 0; i < p->npending; i++) {
    clReleaseEvent(p->pending[i].event);
    if (p->pending[i].begin) clReleaseEvent(p->pending[i].begin);
  }
  p->npending = 0;
}

static int by_time_desc(const void *a, const void *b) {
  const skd_profile_entry *x = a, *y = b;
  return (x->total_ms < y->total_ms) - (x->total_ms > y->total_ms);
}

skd_status skd_profile_summary(skd_context *ctx, skd_profile_entry **out, int *count) {
  struct skd_runtime_private *p = ctx->priv;
  resolve(ctx);
  *out = NULL;
  *count = 0;
  int n = 0;
  for (int i = 0; i < p->nprofile; i++) n += p->profile[i].calls > 0;
  if (n == 0) return SKD_OK;
  skd_profile_entry *e = calloc((size_t)n, sizeof *e);
  if (!e) return skd_error(SKD_ENOMEM, "profile summary: out of host memory");
  int j = 0;
  for (int i = 0; i < p->nprofile; i++) {
    if (p->profile[i].calls == 0) continue;
    snprintf(e[j].name, sizeof e[j].name, "%s", p->profile[i].name);
    e[j].calls = p->profile[i].calls;
    e[j].total_ms = p->profile[i].total_ms;
    e[j].flops = p->profile[i].flops;
    e[j].bytes = p->profile[i].bytes;
    j++;
  }
  qsort(e, (size_t)n, sizeof *e, by_time_desc);
  *out = e;
  *count = n;
  return SKD_OK;
}
