/* Pixel-wise distillation loss on the device (cl/softmax_kl.cl). */
#include "skd/loss/pixel.h"

#include <limits.h>
#include <math.h>

void skd_pixel_loss_config_default(skd_pixel_loss_config *cfg) {
  cfg->tau = 1.0f;
  cfg->mask_ignore = 0;
  cfg->ignore_label = 255;
  cfg->norm = SKD_PIXEL_NORM_REFERENCE;
}

static skd_status expect_scalar(const skd_tensor *t, const char *what) {
  if (skd_tensor_numel(t) == 1) return SKD_OK;
  return skd_error(SKD_EINVAL, "pixel loss: %s: expected 1 element, got shape (%d, %d, %d, %d)", what, t->n, t->c,
                   t->h, t->w);
}

static skd_status check_args(const skd_pixel_loss_config *cfg, const skd_tensor *s, const skd_tensor *t,
                             const skd_tensor *labels, const skd_tensor *ds, const skd_tensor *loss,
                             const skd_tensor *kl) {
  if (!(cfg->tau > 0.0f) || !isfinite(cfg->tau))
    return skd_error(SKD_EINVAL, "pixel loss: tau must be a finite number > 0 (got %g)", (double)cfg->tau);
  if (cfg->norm != SKD_PIXEL_NORM_REFERENCE && cfg->norm != SKD_PIXEL_NORM_MEAN)
    return skd_error(SKD_EINVAL, "pixel loss: unknown norm (%d)", (int)cfg->norm);
  if (cfg->mask_ignore && !labels)
    return skd_error(SKD_EINVAL, "pixel loss: mask_ignore is set but labels is NULL");
  if (s->n < 1 || s->c < 1 || s->h < 1 || s->w < 1)
    return skd_error(SKD_EINVAL, "pixel loss: student_logits: empty shape (%d, %d, %d, %d)", s->n, s->c, s->h,
                     s->w);
  /* Kernels index with int, the workspace included (2 floats per pixel). */
  if (skd_tensor_numel(s) > INT_MAX / 2)
    return skd_error(SKD_EINVAL, "pixel loss: student_logits: %zu elements exceed the int indexing of the kernels",
                     skd_tensor_numel(s));
  skd_status st = skd_tensor_expect_same(t, s, "pixel loss: teacher_logits (must match student_logits)");
  if (st == SKD_OK && cfg->mask_ignore)
    st = skd_tensor_expect(labels, s->n, 1, s->h, s->w, "pixel loss: labels (N, 1, H', W' of student_logits)");
  if (st == SKD_OK && ds) st = skd_tensor_expect_same(ds, s, "pixel loss: dstudent (must match student_logits)");
  if (st == SKD_OK) st = expect_scalar(loss, "loss_out");
  if (st == SKD_OK && kl) st = expect_scalar(kl, "kl_out");
  return st;
}

skd_status skd_pixel_loss(skd_context *ctx, const skd_pixel_loss_config *cfg, const skd_tensor *student_logits,
                          const skd_tensor *teacher_logits, const skd_tensor *labels, float grad_scale,
                          const skd_tensor *dstudent, const skd_tensor *loss_out, const skd_tensor *kl_out) {
  skd_pixel_loss_config defaults;
  if (!cfg) {
    skd_pixel_loss_config_default(&defaults);
    cfg = &defaults;
  }
  skd_status st = check_args(cfg, student_logits, teacher_logits, labels, dstudent, loss_out, kl_out);
  if (st != SKD_OK) return st;
  const skd_tensor *s = student_logits;
  const int hw = s->h * s->w;
  const int total = s->n * hw;
  const int use_labels = cfg->mask_ignore != 0;
  /* The mean over valid pixels needs their count before any gradient is
   * written; it is computed on the device into the workspace. */
  const int use_count = use_labels && cfg->norm == SKD_PIXEL_NORM_MEAN;
  const float fixed_norm = cfg->norm == SKD_PIXEL_NORM_MEAN ? (float)total : (float)hw;
  const float ignore = (float)cfg->ignore_label;

  /* The fused kernel's grid: a work-item per 8 positions of a sample's
   * plane, work-groups of wg_fwd along the plane; each group leaves two
   * partial sums. */
  const size_t wg_fwd = skd_context_wg(ctx, 64);
  const size_t items = ((size_t)hw + 7) / 8;
  const size_t groups_x = (items + wg_fwd - 1) / wg_fwd;
  const int groups = (int)groups_x * s->n;

  /* Workspace: [0, 2 groups) the partials (CE then KL), then one int (the
   * valid count). */
  cl_mem ws;
  skd_kernel *kfwd, *ksum, *kcount = NULL;
  st = skd_workspace_get(ctx, ((size_t)2 * groups + 1) * sizeof(float), &ws);
  if (st == SKD_OK) st = skd_kernel_get(ctx, "softmax_kl", "softmax_kl_fwd", &kfwd);
  if (st == SKD_OK) st = skd_kernel_get(ctx, "softmax_kl", "softmax_kl_sum", &ksum);
  if (st == SKD_OK && use_count) st = skd_kernel_get(ctx, "softmax_kl", "softmax_kl_count", &kcount);
  if (st != SKD_OK) return st;
  const int count_off = 2 * groups;
  const size_t wg = skd_context_wg(ctx, 256);

  if (use_count) {
    skd_args a = skd_args_begin(kcount);
    skd_arg_int(&a, total);
    skd_arg_tensor(&a, labels);
    skd_arg_float(&a, ignore);
    skd_arg_mem(&a, ws);
    skd_arg_int(&a, count_off);
    skd_arg_local(&a, wg * sizeof(int));
    st = skd_launch(ctx, &a, 1, &wg, &wg);
    if (st != SKD_OK) return st;
  }

  /* Unused buffer arguments get a valid placeholder (the student), never
   * read or written behind their flags. */
  const skd_tensor *lab = use_labels ? labels : s;
  skd_args a = skd_args_begin(kfwd);
  skd_arg_int(&a, s->n);
  skd_arg_int(&a, s->c);
  skd_arg_int(&a, hw);
  skd_arg_float(&a, cfg->tau);
  skd_arg_tensor(&a, s);
  skd_arg_tensor(&a, teacher_logits);
  skd_arg_tensor(&a, lab);
  skd_arg_int(&a, use_labels);
  skd_arg_float(&a, ignore);
  skd_arg_float(&a, fixed_norm);
  skd_arg_mem(&a, ws);
  skd_arg_int(&a, count_off);
  skd_arg_int(&a, use_count);
  skd_arg_float(&a, grad_scale);
  skd_arg_tensor(&a, dstudent ? dstudent : s);
  skd_arg_int(&a, dstudent != NULL);
  skd_arg_mem(&a, ws);
  skd_arg_int(&a, 0);
  skd_arg_local(&a, wg_fwd * sizeof(float));
  size_t global[2] = {groups_x * wg_fwd, (size_t)s->n};
  size_t local[2] = {wg_fwd, 1};
  st = skd_launch(ctx, &a, 2, global, local);
  if (st != SKD_OK) return st;

  skd_args r = skd_args_begin(ksum);
  skd_arg_int(&r, groups);
  skd_arg_mem(&r, ws);
  skd_arg_int(&r, 0);
  skd_arg_tensor(&r, loss_out);
  skd_arg_tensor(&r, kl_out ? kl_out : loss_out);
  skd_arg_int(&r, kl_out != NULL);
  skd_arg_local(&r, 2 * wg * sizeof(float));
  return skd_launch(ctx, &r, 1, &wg, &wg);
}
