/* Buffers marked frozen (a teacher's parameters) and the data ops derive
 * from them and keep between calls (the vec convolution's transposed
 * weights). Derived buffers are dropped when their source changes or is
 * thawed, and with the context. */
#include <stdlib.h>

#include "runtime/runtime_private.h"

static int frozen_index(const struct skd_runtime_private *p, cl_mem mem) {
  for (int i = 0; i < p->nfrozen; i++)
    if (p->frozen[i] == mem) return i;
  return -1;
}

skd_status skd_context_freeze(skd_context *ctx, cl_mem mem) {
  struct skd_runtime_private *p = ctx->priv;
  if (!mem || frozen_index(p, mem) >= 0) return SKD_OK;
  cl_mem *grown = realloc(p->frozen, (size_t)(p->nfrozen + 1) * sizeof *grown);
  if (!grown) return skd_error(SKD_ENOMEM, "context: out of host memory (frozen buffers)");
  p->frozen = grown;
  p->frozen[p->nfrozen++] = mem;
  return SKD_OK;
}

void skd_context_changed(skd_context *ctx, cl_mem mem) {
  struct skd_runtime_private *p = ctx->priv;
  int kept = 0;
  for (int i = 0; i < p->nderived; i++) {
    if (p->derived[i].source == mem) {
      clReleaseMemObject(p->derived[i].buffer); /* commands still queued keep it alive */
    } else {
      p->derived[kept++] = p->derived[i];
    }
  }
  p->nderived = kept;
}

void skd_context_thaw(skd_context *ctx, cl_mem mem) {
  struct skd_runtime_private *p = ctx->priv;
  skd_context_changed(ctx, mem);
  int i = frozen_index(p, mem);
  if (i >= 0) p->frozen[i] = p->frozen[--p->nfrozen];
}

skd_status skd_context_derived(skd_context *ctx, cl_mem source, size_t offset, size_t bytes, cl_mem *out,
                               int *fresh) {
  struct skd_runtime_private *p = ctx->priv;
  *out = NULL;
  *fresh = 0;
  if (frozen_index(p, source) < 0) return SKD_OK;
  for (int i = 0; i < p->nderived; i++)
    if (p->derived[i].source == source && p->derived[i].offset == offset && p->derived[i].bytes == bytes) {
      *out = p->derived[i].buffer;
      return SKD_OK;
    }
  struct derived_buffer *grown = realloc(p->derived, (size_t)(p->nderived + 1) * sizeof *grown);
  if (!grown) return skd_error(SKD_ENOMEM, "context: out of host memory (derived buffers)");
  p->derived = grown;
  cl_mem buffer;
  skd_status st = skd_buffer_create(ctx, bytes, "derived from frozen weights", &buffer);
  if (st != SKD_OK) return st;
  p->derived[p->nderived++] = (struct derived_buffer){source, offset, bytes, buffer};
  *out = buffer;
  *fresh = 1;
  return SKD_OK;
}

size_t skd_context_derived_bytes(const skd_context *ctx) {
  size_t bytes = 0;
  for (int i = 0; ctx->priv && i < ctx->priv->nderived; i++) bytes += ctx->priv->derived[i].bytes;
  return bytes;
}

void skd_context_release_frozen(skd_context *ctx) {
  struct skd_runtime_private *p = ctx->priv;
  for (int i = 0; i < p->nderived; i++) clReleaseMemObject(p->derived[i].buffer);
  free(p->derived);
  free(p->frozen);
  p->derived = NULL;
  p->frozen = NULL;
  p->nderived = p->nfrozen = 0;
}
