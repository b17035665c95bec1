/* Programs: one per kernel family, built from common.cl + <family>.cl with
 * the family's -D options, through the on-disk binary cache. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime_private.h"

struct skd_embedded_source {
  const char *name;
  const char *text;
  size_t length;
};
extern const struct skd_embedded_source skd_embedded_sources[];

/* Fixed for every family: portable OpenCL C 1.2, and no fast-math flags so
 * NaN checks keep working. */
static const char base_options[] = "-cl-std=CL1.2";

static const struct skd_embedded_source *find_source(const char *name) {
  for (const struct skd_embedded_source *s = skd_embedded_sources; s->name; s++)
    if (strcmp(s->name, name) == 0) return s;
  return NULL;
}

const char *skd_family_options(const skd_context *ctx, const char *family) {
  const struct skd_runtime_private *p = ctx->priv;
  for (int i = 0; i < p->nfamily_opts; i++)
    if (strcmp(p->family_opts[i].family, family) == 0) return p->family_opts[i].options;
  return "";
}

static skd_status build_failed(skd_context *ctx, cl_program prog, const char *family, cl_int err) {
  size_t len = 0;
  clGetProgramBuildInfo(prog, ctx->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &len);
  char *log = calloc(len + 1, 1);
  if (log) clGetProgramBuildInfo(prog, ctx->device, CL_PROGRAM_BUILD_LOG, len, log, NULL);
  skd_status st = skd_error(SKD_EBUILD, "building cl/%s.cl for %s failed: %s (%d)\n%s", family,
                            ctx->info.name, skd_cl_error_name(err), err, log ? log : "(no build log)");
  free(log);
  return st;
}

static unsigned long long cache_key(const skd_context *ctx, const char *source, const char *options) {
  unsigned long long h = SKD_HASH_SEED;
  h = skd_hash64(h, source, strlen(source) + 1);
  h = skd_hash64(h, options, strlen(options) + 1);
  h = skd_hash64(h, ctx->info.platform, strlen(ctx->info.platform) + 1);
  h = skd_hash64(h, ctx->info.name, strlen(ctx->info.name) + 1);
  h = skd_hash64(h, ctx->info.driver_version, strlen(ctx->info.driver_version) + 1);
  h = skd_hash64(h, ctx->info.device_version, strlen(ctx->info.device_version) + 1);
  return h;
}

/* Tries the cached binary; any failure (missing, corrupt, rejected by the
 * driver) just means a build from source. */
static cl_program program_from_cache(skd_context *ctx, unsigned long long key, const char *options) {
  struct skd_runtime_private *p = ctx->priv;
  unsigned char *bin = NULL;
  size_t len = 0;
  if (!p->cache_enabled || !skd_cache_load(p->cache_dir, key, &bin, &len)) return NULL;
  cl_int status = CL_SUCCESS, err = CL_SUCCESS;
  const unsigned char *bins[1] = {bin};
  cl_program prog = clCreateProgramWithBinary(ctx->context, 1, &ctx->device, &len, bins, &status, &err);
  free(bin);
  if (err != CL_SUCCESS || status != CL_SUCCESS) {
    if (prog) clReleaseProgram(prog);
    return NULL;
  }
  if (clBuildProgram(prog, 1, &ctx->device, options, NULL, NULL) != CL_SUCCESS) {
    clReleaseProgram(prog);
    return NULL;
  }
  return prog;
}

static void store_in_cache(skd_context *ctx, cl_program prog, unsigned long long key) {
  struct skd_runtime_private *p = ctx->priv;
  if (!p->cache_enabled) return;
  size_t len = 0;
  if (clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof len, &len, NULL) != CL_SUCCESS || len == 0) return;
  unsigned char *bin = malloc(len);
  if (!bin) return;
  unsigned char *bins[1] = {bin};
  if (clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof bins, bins, NULL) == CL_SUCCESS)
    skd_cache_store(p->cache_dir, key, bin, len);
  free(bin);
}

static skd_status remember(skd_context *ctx, const char *family, cl_program prog) {
  struct skd_runtime_private *p = ctx->priv;
  if (p->nprograms == SKD_MAX_PROGRAMS) {
    clReleaseProgram(prog);
    return skd_error(SKD_ENOMEM, "too many kernel families");
  }
  struct program_entry *e = &p->programs[p->nprograms++];
  snprintf(e->family, sizeof e->family, "%s", family);
  e->program = prog;
  return SKD_OK;
}

static skd_status build(skd_context *ctx, const char *family, const char *body, cl_program *out) {
  const struct skd_embedded_source *common = find_source("common");
  const char *common_text = common ? common->text : "";
  size_t n = strlen(common_text) + strlen(body) + 32;
  char *source = malloc(n);
  char options[1024];
  if (!source) return skd_error(SKD_ENOMEM, "program source: out of host memory");
  snprintf(source, n, "%s\n#line 1\n%s", common_text, body);
  snprintf(options, sizeof options, "%s %s", base_options, skd_family_options(ctx, family));

  unsigned long long key = cache_key(ctx, source, options);
  cl_program prog = program_from_cache(ctx, key, options);
  ctx->priv->last_build_from_cache = prog != NULL;
  skd_status st = SKD_OK;
  if (!prog) {
    cl_int err = CL_SUCCESS;
    const char *srcs[1] = {source};
    prog = clCreateProgramWithSource(ctx->context, 1, srcs, NULL, &err);
    if (err != CL_SUCCESS) {
      free(source);
      return skd_error(SKD_ECL, "cl/%s.cl: clCreateProgramWithSource: %s (%d)", family,
                       skd_cl_error_name(err), err);
    }
    err = clBuildProgram(prog, 1, &ctx->device, options, NULL, NULL);
    if (err != CL_SUCCESS) {
      st = build_failed(ctx, prog, family, err);
      clReleaseProgram(prog);
      free(source);
      return st;
    }
    store_in_cache(ctx, prog, key);
  }
  free(source);
  *out = prog;
  return remember(ctx, family, prog);
}

skd_status skd_program_get(skd_context *ctx, const char *family, cl_program *out) {
  struct skd_runtime_private *p = ctx->priv;
  for (int i = 0; i < p->nprograms; i++) {
    if (strcmp(p->programs[i].family, family) == 0) {
      *out = p->programs[i].program;
      return SKD_OK;
    }
  }
  const struct skd_embedded_source *src = find_source(family);
  if (!src) return skd_error(SKD_EINVAL, "no kernel file cl/%s.cl is embedded in this build", family);
  return build(ctx, family, src->text, out);
}

skd_status skd_program_build_source(skd_context *ctx, const char *family, const char *source) {
  cl_program prog;
  return build(ctx, family, source, &prog);
}
