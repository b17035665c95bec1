/* The convolution tuning a context holds (skd_conv_tuning, skd/tune.h):
 * conv2d.c reads the algorithm rules and the launch blocking from it, and
 * the same blocking reaches cl/conv.cl as -D options, so that kernel and
 * host always agree. */
#include <stdio.h>
#include <string.h>

#include "runtime/runtime_private.h"

void skd_conv_tuning_default(skd_conv_tuning *c) {
  memset(c, 0, sizeof *c);
  c->algo = SKD_CONV2D_AUTO; /* the device's type decides (conv2d.h) */
  c->cob = 8;  /* CONV_COB */
  c->pxb = 8;  /* CONV_PXB */
  c->cib = 4;  /* CONV_CIB */
  c->wg = 64;
  c->wg_w = 8; /* few work-items per group: each one sums a whole batch */
}

int skd_conv_tuning_invalid(const skd_conv_tuning *c) {
  /* Blocks are private arrays (acc[COB] of PXB-wide vectors): keep them
   * sane; PXB is an OpenCL vector width. */
  const int v[5] = {c->cob, c->pxb, c->cib, c->wg, c->wg_w};
  const int hi[5] = {64, 16, 64, 1024, 1024};
  for (int i = 0; i < 5; i++)
    if (v[i] < 1 || v[i] > hi[i]) return i;
  if (c->pxb != 2 && c->pxb != 4 && c->pxb != 8 && c->pxb != 16) return 1;
  return -1;
}

skd_status skd_context_set_conv_tuning(skd_context *ctx, const skd_conv_tuning *c) {
  static const char *const fields[5] = {"cob", "pxb", "cib", "wg", "wg_w"};
  int bad = skd_conv_tuning_invalid(c);
  if (bad >= 0)
    return skd_error(SKD_EINVAL, "conv tuning: %s out of range (cob %d, cib %d: 1..64; pxb %d: 2, 4, 8 or 16; wg %d, wg_w %d: "
                     "1..1024)",
                     fields[bad], c->cob, c->cib, c->pxb, c->wg, c->wg_w);
  if (c->algo < SKD_CONV2D_AUTO || c->algo > SKD_CONV2D_VEC)
    return skd_error(SKD_EINVAL, "conv tuning: unknown default algorithm %d", (int)c->algo);
  if (c->nrules < 0 || c->nrules > SKD_CONV_MAX_RULES)
    return skd_error(SKD_EINVAL, "conv tuning: %d shape rules (at most %d)", c->nrules, SKD_CONV_MAX_RULES);
  /* The default blocking builds without options: the same program (and
   * kernel-cache entry) as before tuning existed. */
  skd_conv_tuning d;
  skd_conv_tuning_default(&d);
  char opts[128] = "";
  if (c->cob != d.cob || c->pxb != d.pxb || c->cib != d.cib)
    snprintf(opts, sizeof opts, "-DCONV_COB=%d -DCONV_PXB=%d -DCONV_CIB=%d", c->cob, c->pxb, c->cib);
  skd_family_drop(ctx, "conv"); /* built with the old blocking */
  skd_status st = skd_context_set_family_options(ctx, "conv", opts);
  if (st == SKD_OK) ctx->priv->conv = *c;
  return st;
}

const skd_conv_tuning *skd_context_conv_tuning(const skd_context *ctx) { return &ctx->priv->conv; }
