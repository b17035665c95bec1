/* Context, queue, buffers, kernel handles and launches. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime_private.h"
#include "skd/tune.h"

skd_status skd_cl_check(cl_int err, const char *what) {
  if (err == CL_SUCCESS) return SKD_OK;
  return skd_error(SKD_ECL, "%s: %s (%d)", what, skd_cl_error_name(err), err);
}

void skd_context_options_default(skd_context_options *opt) {
  memset(opt, 0, sizeof *opt);
  opt->device_index = -1;
  opt->profiling = -1;
}

static void choose_cache_dir(struct skd_runtime_private *p, const skd_context_options *opt) {
  const char *env_off = getenv("SKD_NO_KERNEL_CACHE");
  p->cache_enabled = !opt->disable_cache && !(env_off && strcmp(env_off, "0") != 0 && *env_off);
  const char *dir = opt->cache_dir;
  const char *xdg = getenv("XDG_CACHE_HOME");
  const char *home = getenv("HOME");
  if (!dir) dir = getenv("SKD_CACHE_DIR");
  if (dir && *dir) snprintf(p->cache_dir, sizeof p->cache_dir, "%s", dir);
  else if (xdg && *xdg) snprintf(p->cache_dir, sizeof p->cache_dir, "%s/skd-cl", xdg);
  else if (home && *home) snprintf(p->cache_dir, sizeof p->cache_dir, "%s/.cache/skd-cl", home);
  else p->cache_enabled = 0;
  snprintf(p->cache_root, sizeof p->cache_root, "%s", p->cache_dir); /* the tuning files live there too */
  if (!p->cache_enabled) p->cache_dir[0] = '\0';
}

skd_status skd_context_create(skd_context **out, const skd_context_options *options) {
  *out = NULL;
  skd_context_options defaults;
  if (!options) {
    skd_context_options_default(&defaults);
    options = &defaults;
  }
  int index = 0;
  skd_status st = skd_device_choose(options->device_index, &index);
  if (st != SKD_OK) return st;
  skd_device_info *list = NULL;
  int n = 0;
  st = skd_devices_list(&list, &n);
  if (st != SKD_OK) return st;
  if (index >= n) {
    free(list);
    return skd_error(SKD_EINVAL, "device %d vanished while the context was created", index);
  }
  skd_context *ctx = calloc(1, sizeof *ctx);
  struct skd_runtime_private *p = calloc(1, sizeof *p);
  if (!ctx || !p) {
    free(ctx);
    free(p);
    free(list);
    return skd_error(SKD_ENOMEM, "context: out of host memory");
  }
  ctx->info = list[index];
  free(list);
  ctx->priv = p;
  p->group_slot = -1;
  ctx->device = ctx->info.device_id;
  int prof = options->profiling;
  if (prof < 0) {
    const char *env = getenv("SKD_PROFILE");
    prof = env && *env && strcmp(env, "0") != 0;
  }
  ctx->profiling = prof;
  choose_cache_dir(p, options);
  skd_conv_tuning_default(&p->conv);
  /* conv2d reads SKD_CONV_ALGO at every call; a misspelt value must not pass silently. */
  const char *algo = getenv("SKD_CONV_ALGO");
  skd_conv2d_algo forced;
  if (algo && *algo && skd_conv2d_algo_parse(algo, &forced) != SKD_OK) {
    st = skd_error(SKD_EINVAL, "SKD_CONV_ALGO: '%s' is not an algorithm (auto, gemm, direct or vec)", algo);
    goto done;
  }

  cl_int err = CL_SUCCESS;
  cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)ctx->info.platform_id, 0};
  ctx->context = clCreateContext(props, 1, &ctx->device, NULL, NULL, &err);
  if (err != CL_SUCCESS) {
    st = skd_cl_check(err, "clCreateContext");
    goto done;
  }
  cl_command_queue_properties qp = prof ? CL_QUEUE_PROFILING_ENABLE : 0;
  /* clCreateCommandQueue is deprecated in 2.0 but is the one call every 1.2+ driver has. */
  ctx->queue = clCreateCommandQueue(ctx->context, ctx->device, qp, &err);
  if (err != CL_SUCCESS) st = skd_cl_check(err, "clCreateCommandQueue");
  else st = skd_tuning_load(ctx, options->tuning);
done:
  if (st != SKD_OK) {
    skd_context_free(ctx);
    return st;
  }
  *out = ctx;
  return SKD_OK;
}

void skd_context_free(skd_context *ctx) {
  if (!ctx) return;
  struct skd_runtime_private *p = ctx->priv;
  if (ctx->queue) clFinish(ctx->queue);
  if (p) {
    skd_profile_release(ctx);
    skd_context_release_frozen(ctx);
    for (int i = 0; i < p->nkernels; i++) {
      clReleaseKernel(p->kernels[i]->kernel);
      free(p->kernels[i]);
    }
    for (int i = 0; i < p->nprograms; i++) clReleaseProgram(p->programs[i].program);
    if (p->workspace) clReleaseMemObject(p->workspace);
    free(p);
  }
  if (ctx->queue) clReleaseCommandQueue(ctx->queue);
  if (ctx->context) clReleaseContext(ctx->context);
  free(ctx);
}

const char *skd_context_cache_dir(const skd_context *ctx) { return ctx->priv->cache_dir; }

int skd_context_last_build_from_cache(const skd_context *ctx) { return ctx->priv->last_build_from_cache; }

void skd_family_drop(skd_context *ctx, const char *family) {
  struct skd_runtime_private *p = ctx->priv;
  int kept = 0;
  for (int i = 0; i < p->nkernels; i++) {
    skd_kernel *k = p->kernels[i];
    if (strcmp(k->family, family) == 0) {
      clReleaseKernel(k->kernel); /* commands already queued hold their own reference */
      free(k);
    } else {
      p->kernels[kept++] = k;
    }
  }
  p->nkernels = kept;
  kept = 0;
  for (int i = 0; i < p->nprograms; i++) {
    if (strcmp(p->programs[i].family, family) == 0) clReleaseProgram(p->programs[i].program);
    else p->programs[kept++] = p->programs[i];
  }
  p->nprograms = kept;
}

skd_status skd_context_set_family_options(skd_context *ctx, const char *family, const char *options) {
  struct skd_runtime_private *p = ctx->priv;
  for (int i = 0; i < p->nprograms; i++)
    if (strcmp(p->programs[i].family, family) == 0)
      return skd_error(SKD_EINVAL, "options for kernel family '%s' must be set before its first use", family);
  struct family_options *slot = NULL;
  for (int i = 0; i < p->nfamily_opts; i++)
    if (strcmp(p->family_opts[i].family, family) == 0) slot = &p->family_opts[i];
  if (!slot) {
    if (p->nfamily_opts == SKD_MAX_PROGRAMS) return skd_error(SKD_ENOMEM, "too many kernel families");
    slot = &p->family_opts[p->nfamily_opts++];
    snprintf(slot->family, sizeof slot->family, "%s", family);
  }
  if (strlen(options) >= sizeof slot->options)
    return skd_error(SKD_EINVAL, "build options for '%s' are longer than %zu characters", family,
                     sizeof slot->options - 1);
  snprintf(slot->options, sizeof slot->options, "%s", options);
  return SKD_OK;
}

skd_status skd_kernel_get(skd_context *ctx, const char *family, const char *name, skd_kernel **out) {
  struct skd_runtime_private *p = ctx->priv;
  for (int i = 0; i < p->nkernels; i++) {
    skd_kernel *k = p->kernels[i];
    if (strcmp(k->name, name) == 0 && strcmp(k->family, family) == 0) {
      *out = k;
      return SKD_OK;
    }
  }
  if (p->nkernels == SKD_MAX_KERNELS) return skd_error(SKD_ENOMEM, "too many kernels");
  cl_program prog;
  skd_status st = skd_program_get(ctx, family, &prog);
  if (st != SKD_OK) return st;
  cl_int err = CL_SUCCESS;
  cl_kernel kern = clCreateKernel(prog, name, &err);
  if (err != CL_SUCCESS)
    return skd_error(SKD_ECL, "kernel '%s' in cl/%s.cl: clCreateKernel failed: %s (%d)", name, family,
                     skd_cl_error_name(err), err);
  skd_kernel *k = calloc(1, sizeof *k);
  if (!k) {
    clReleaseKernel(kern);
    return skd_error(SKD_ENOMEM, "kernel table: out of host memory");
  }
  k->kernel = kern;
  snprintf(k->family, sizeof k->family, "%s", family);
  snprintf(k->name, sizeof k->name, "%s", name);
  k->profile_slot = ctx->profiling ? skd_profile_slot(ctx, name) : -1;
  p->kernels[p->nkernels++] = k;
  *out = k;
  return SKD_OK;
}

skd_args skd_args_begin(skd_kernel *k) {
  skd_args a = {k, 0, CL_SUCCESS, 0};
  return a;
}

static void set_arg(skd_args *a, size_t size, const void *value) {
  if (a->err != CL_SUCCESS) return;
  cl_int e = clSetKernelArg(a->k->kernel, a->next, size, value);
  if (e != CL_SUCCESS) {
    a->err = e;
    a->bad_index = a->next;
  }
  a->next++;
}

void skd_arg_mem(skd_args *a, cl_mem m) { set_arg(a, sizeof m, &m); }
void skd_arg_int(skd_args *a, int v) { set_arg(a, sizeof v, &v); }
void skd_arg_float(skd_args *a, float v) { set_arg(a, sizeof v, &v); }
void skd_arg_local(skd_args *a, size_t bytes) { set_arg(a, bytes, NULL); }

skd_status skd_launch(skd_context *ctx, skd_args *a, cl_uint dims, const size_t *global, const size_t *local) {
  if (a->err != CL_SUCCESS)
    return skd_error(SKD_ECL, "kernel '%s': argument %u: %s (%d)", a->k->name, a->bad_index,
                     skd_cl_error_name(a->err), a->err);
  size_t g[3];
  for (cl_uint d = 0; d < dims; d++) {
    g[d] = global[d];
    if (g[d] == 0) return SKD_OK; /* nothing to do */
    if (local && local[d]) g[d] = (g[d] + local[d] - 1) / local[d] * local[d];
  }
  cl_event ev = NULL;
  int want_event = a->k->profile_slot >= 0;
  cl_int err = clEnqueueNDRangeKernel(ctx->queue, a->k->kernel, dims, NULL, g, local, 0, NULL,
                                      want_event ? &ev : NULL);
  if (err != CL_SUCCESS)
    return skd_error(SKD_ECL, "kernel '%s' (cl/%s.cl): clEnqueueNDRangeKernel: %s (%d)", a->k->name,
                     a->k->family, skd_cl_error_name(err), err);
  if (want_event) skd_profile_push(ctx, a->k->profile_slot, ev);
  return SKD_OK;
}

static size_t pow2_at_least(size_t n) {
  size_t p = 1;
  while (p < n) p *= 2;
  return p;
}

/* Work-groups of up to 32 x 2 (a row segment, or several short rows): left to
 * the driver, a 17 x 17 plane gets groups of one work-item on PoCL. The
 * range is rounded up to whole groups; kernels skip what lies past w x h. */
skd_status skd_launch_planes(skd_context *ctx, skd_args *a, int w, int h, size_t planes) {
  size_t lx = pow2_at_least((size_t)w), ly;
  if (lx > 32) lx = 32;
  ly = pow2_at_least((size_t)h);
  if (ly > 64 / lx) ly = 64 / lx;
  size_t local[3] = {lx, ly, 1};
  size_t global[3] = {(size_t)w, (size_t)h, planes};
  return skd_launch(ctx, a, 3, global, skd_context_wg(ctx, 64) >= 64 ? local : NULL);
}

skd_status skd_launch_1d(skd_context *ctx, skd_args *a, size_t n, size_t wg) {
  size_t local = wg ? skd_context_wg(ctx, wg) : 0;
  return skd_launch(ctx, a, 1, &n, local ? &local : NULL);
}

size_t skd_context_wg(const skd_context *ctx, size_t want) {
  size_t max = ctx->info.max_work_group_size ? ctx->info.max_work_group_size : 1;
  size_t cap = want < max ? want : max;
  size_t p = 1;
  while (p * 2 <= cap) p *= 2;
  return p;
}

skd_status skd_context_finish(skd_context *ctx) { return skd_cl_check(clFinish(ctx->queue), "clFinish"); }

skd_status skd_buffer_create(skd_context *ctx, size_t bytes, const char *what, cl_mem *out) {
  *out = NULL;
  if (bytes == 0) bytes = 4; /* OpenCL rejects empty buffers; callers may ask for 0 elements */
  if (bytes > ctx->info.max_alloc_bytes)
    return skd_error(SKD_ENOMEM, "%s: %zu bytes exceed the device's largest single allocation "
                     "(CL_DEVICE_MAX_MEM_ALLOC_SIZE = %llu bytes on %s)", what, bytes,
                     ctx->info.max_alloc_bytes, ctx->info.name);
  if (bytes > ctx->info.global_mem_bytes)
    return skd_error(SKD_ENOMEM, "%s: %zu bytes exceed the device's global memory (%llu bytes)", what,
                     bytes, ctx->info.global_mem_bytes);
  cl_int err = CL_SUCCESS;
  cl_mem m = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, bytes, NULL, &err);
  if (err != CL_SUCCESS)
    return skd_error(err == CL_MEM_OBJECT_ALLOCATION_FAILURE || err == CL_OUT_OF_RESOURCES ||
                     err == CL_OUT_OF_HOST_MEMORY ? SKD_ENOMEM : SKD_ECL,
                     "%s: clCreateBuffer(%zu bytes): %s (%d)", what, bytes, skd_cl_error_name(err), err);
  *out = m;
  return SKD_OK;
}

skd_status skd_workspace_get(skd_context *ctx, size_t bytes, cl_mem *out) {
  struct skd_runtime_private *p = ctx->priv;
  if (bytes > p->workspace_bytes || !p->workspace) {
    cl_mem m;
    /* Commands already queued keep the old buffer alive until they finish. */
    skd_status st = skd_buffer_create(ctx, bytes, "workspace", &m);
    if (st != SKD_OK) return st;
    if (p->workspace) clReleaseMemObject(p->workspace);
    p->workspace = m;
    p->workspace_bytes = bytes;
  }
  *out = p->workspace;
  return SKD_OK;
}

size_t skd_workspace_bytes(const skd_context *ctx) {
  const struct skd_runtime_private *p = ctx->priv;
  return p && p->workspace ? p->workspace_bytes : 0;
}
