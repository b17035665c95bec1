/* Applying a tuning: CLBlastOverrideParameters per kernel, and the choice
 * skd_context_create makes (option, $SKD_TUNING, the device's file). */
#include <clblast_c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/runtime_private.h"
#include "skd/tune.h"

/* CLBlast's parameters are process-wide per device; once overridden, the
 * only way back to its defaults is dropping its caches. */
static int overridden;

static skd_status override(skd_context *ctx, const char *kernel, const char *const *names, const size_t *values,
                           int n) {
  const char *list[SKD_TUNE_XGEMM_PARAMS]; /* CLBlast's C API takes non-const pointers */
  for (int i = 0; i < n; i++) list[i] = names[i];
  CLBlastStatusCode code =
      CLBlastOverrideParameters(ctx->device, kernel, CLBlastPrecisionSingle, (size_t)n, list, values);
  if (code == CLBlastSuccess) return SKD_OK;
  const char *name = code == CLBlastInvalidOverrideKernel       ? "CLBlastInvalidOverrideKernel"
                     : code == CLBlastMissingOverrideParameter ? "CLBlastMissingOverrideParameter"
                                                                : "CLBlast status";
  return skd_error(SKD_ECL, "tuning: CLBlastOverrideParameters(%s) on %s failed: %s (%d)", kernel, ctx->info.name,
                   name, (int)code);
}

skd_status skd_tuning_reset(skd_context *ctx) {
  (void)ctx;
  if (!overridden) return SKD_OK;
  CLBlastStatusCode code = CLBlastClearCache();
  if (code != CLBlastSuccess) return skd_error(SKD_ECL, "tuning: CLBlastClearCache failed (%d)", (int)code);
  overridden = 0;
  return SKD_OK;
}

skd_status skd_tuning_apply(skd_context *ctx, const skd_tuning *t) {
  static const char *const routine[1] = {"XGEMM_MIN_INDIRECT_SIZE"};
  skd_status st = skd_tuning_reset(ctx);
  if (st == SKD_OK && t->has_xgemm) st = override(ctx, "Xgemm", skd_tune_xgemm_names, t->xgemm, SKD_TUNE_XGEMM_PARAMS);
  if (st == SKD_OK && t->has_direct)
    st = override(ctx, "XgemmDirect", skd_tune_direct_names, t->direct, SKD_TUNE_DIRECT_PARAMS);
  if (st == SKD_OK && t->has_routine) st = override(ctx, "GemmRoutine", routine, &t->min_indirect, 1);
  skd_conv_tuning defaults;
  skd_conv_tuning_default(&defaults);
  if (st == SKD_OK) st = skd_context_set_conv_tuning(ctx, t->has_conv ? &t->conv : &defaults);
  overridden = overridden || t->has_xgemm || t->has_direct || t->has_routine;
  return st;
}

static void set_source(skd_context *ctx, const char *what) {
  snprintf(ctx->priv->tuning, sizeof ctx->priv->tuning, "%s", what);
}

/* CLBlast's and the convolution's defaults. */
static skd_status untuned(skd_context *ctx) {
  skd_conv_tuning c;
  skd_conv_tuning_default(&c);
  skd_status st = skd_context_set_conv_tuning(ctx, &c);
  return st == SKD_OK ? skd_tuning_reset(ctx) : st;
}

skd_status skd_tuning_load(skd_context *ctx, const char *spec) {
  set_source(ctx, "defaults");
  if (!spec) spec = getenv("SKD_TUNING");
  if (spec && !*spec) spec = NULL;
  if (spec && (strcmp(spec, "off") == 0 || strcmp(spec, "defaults") == 0)) return untuned(ctx);
  char path[1100];
  if (spec) {
    snprintf(path, sizeof path, "%s", spec);
  } else if (skd_tuning_default_path(ctx, path, sizeof path) != SKD_OK || access(path, F_OK) != 0) {
    skd_error_clear();
    return untuned(ctx); /* never tuned: the defaults */
  }
  skd_tuning t;
  skd_status st = skd_tuning_read(&t, path);
  if (st != SKD_OK) return st;
  if (!skd_tuning_matches(&t, &ctx->info)) return untuned(ctx); /* another device or driver */
  st = skd_tuning_apply(ctx, &t);
  if (st == SKD_OK) set_source(ctx, path);
  return st;
}

const char *skd_context_tuning(const skd_context *ctx) { return ctx->priv->tuning; }
