/* Evaluation: whole image or sliding windows, optional flip, confusion matrix. */
#include <stdlib.h>
#include <string.h>

#include "skd/evaluate.h"
#include "skd/ops/argmax.h"
#include "skd/ops/elementwise.h"
#include "skd/ops/resize.h"

void skd_eval_options_default(skd_eval_options *o) {
  memset(o, 0, sizeof *o);
  skd_normalize_reference(&o->normalize);
}

/* Network logits for x (1, 3, h, w), upsampled to (1, C, h, w), into y;
 * with flip, averaged with the mirrored prediction. */
static skd_status logits_at_input_size(skd_pspnet *net, skd_arena *arena, const skd_tensor *x, int flip,
                                       const skd_tensor *y) {
  skd_pspnet_outputs o;
  skd_status st = skd_pspnet_forward(net, arena, x, 0, 0, &o);
  if (st == SKD_OK) st = skd_resize_bilinear_forward(net->ctx, &o.q, y);
  if (st != SKD_OK || !flip) return st;
  skd_tensor xf, yf;
  st = skd_arena_tensor(arena, &xf, x->n, x->c, x->h, x->w);
  if (st == SKD_OK) st = skd_arena_tensor(arena, &yf, y->n, y->c, y->h, y->w);
  if (st == SKD_OK) st = skd_flip_horizontal(net->ctx, x, &xf);
  if (st == SKD_OK) st = skd_pspnet_forward(net, arena, &xf, 0, 0, &o);
  if (st == SKD_OK) st = skd_resize_bilinear_forward(net->ctx, &o.q, &yf);
  if (st == SKD_OK) st = skd_flip_horizontal(net->ctx, &yf, &yf);
  if (st == SKD_OK) st = skd_axpby(net->ctx, 0.5f, &yf, 0.5f, y);
  return st;
}

skd_status skd_predict_logits(skd_pspnet *net, skd_arena *arena, const skd_tensor *image,
                              const skd_eval_options *opt, skd_tensor *out) {
  skd_context *ctx = net->ctx;
  int classes = net->cfg.classes, h = image->h, w = image->w;
  if (image->n != 1 || image->c != 3)
    return skd_error(SKD_EINVAL, "predict: expected one RGB image (1, 3, H, W), got (%d, %d, %d, %d)", image->n,
                     image->c, image->h, image->w);
  skd_status st = skd_arena_tensor(arena, out, 1, classes, h, w);
  if (st != SKD_OK) return st;
  if (opt->crop <= 0) return logits_at_input_size(net, arena, image, opt->flip, out);

  skd_sliding plan;
  skd_tensor count, crop, crop_logits;
  st = skd_sliding_init(&plan, h, w, opt->crop, opt->crop, 0, 0);
  if (st == SKD_OK) st = skd_arena_tensor(arena, &count, 1, 1, h, w);
  if (st == SKD_OK) st = skd_arena_tensor(arena, &crop, 1, 3, opt->crop, opt->crop);
  if (st == SKD_OK) st = skd_arena_tensor(arena, &crop_logits, 1, classes, opt->crop, opt->crop);
  if (st == SKD_OK) st = skd_tensor_fill(ctx, out, 0.0f);
  if (st == SKD_OK) st = skd_tensor_fill(ctx, &count, 0.0f);
  for (int i = 0; st == SKD_OK && i < skd_sliding_count(&plan); i++) {
    skd_window win = skd_sliding_window(&plan, i);
    st = skd_window_crop(ctx, image, &win, &crop);
    if (st == SKD_OK) st = logits_at_input_size(net, arena, &crop, opt->flip, &crop_logits);
    if (st == SKD_OK) st = skd_window_accumulate(ctx, &crop_logits, &win, out, &count);
  }
  if (st == SKD_OK) st = skd_window_average(ctx, out, &count, out);
  return st;
}

skd_status skd_evaluate(skd_pspnet *net, skd_arena *arena, const skd_dataset *ds, const skd_eval_options *opt,
                        skd_confusion *m, void (*progress)(void *user, int done, int total), void *user) {
  const skd_label_map *map = skd_dataset_label_map(ds);
  if (m->classes != net->cfg.classes)
    return skd_error(SKD_EINVAL, "evaluate: the confusion matrix has %d classes, the network %d", m->classes,
                     net->cfg.classes);
  int total = skd_dataset_size(ds);
  skd_status st = SKD_OK;
  float *image = NULL;
  uint8_t *label = NULL, *pred = NULL;
  size_t capacity = 0;
  const int stride = opt->shards > 1 ? opt->shards : 1;
  for (int i = stride > 1 ? opt->shard : 0; i < total && st == SKD_OK; i += stride) {
    skd_sample s;
    st = skd_dataset_read(ds, i, &s);
    if (st != SKD_OK) break;
    size_t pixels = (size_t)s.h * (size_t)s.w;
    if (pixels > capacity) {
      free(image), free(label), free(pred);
      image = malloc(3 * pixels * sizeof *image);
      label = malloc(pixels), pred = malloc(pixels);
      capacity = pixels;
      if (!image || !label || !pred) {
        skd_sample_free(&s);
        st = skd_error(SKD_ENOMEM, "evaluate: out of host memory for a %dx%d image", s.w, s.h);
        break;
      }
    }
    skd_normalize_sample(&s, &opt->normalize, image, label);
    skd_arena_reset(arena);
    skd_tensor x, logits;
    st = skd_arena_tensor(arena, &x, 1, 3, s.h, s.w);
    if (st == SKD_OK) st = skd_tensor_upload(net->ctx, &x, image);
    if (st == SKD_OK) st = skd_predict_logits(net, arena, &x, opt, &logits);
    if (st == SKD_OK) st = skd_argmax_download_u8(net->ctx, &logits, pred);
    if (st == SKD_OK) st = skd_confusion_add(m, pred, label, pixels, map->ignore);
    skd_sample_free(&s);
    if (st == SKD_OK && progress) progress(user, i + 1, total);
  }
  free(image), free(label), free(pred);
  return st;
}
