/* Depth evaluation: logits at the image's resolution (skd_predict_logits:
 * whole image or windows, optional flip), bins -> depth, metrics on the host. */
#include <math.h>
#include <stdlib.h>

#include "skd/evaluate.h"
#include "train/trainer_private.h"

skd_status skd_predict_depth(skd_pspnet *net, skd_arena *arena, const skd_tensor *image, const skd_eval_options *opt,
                             const skd_depth_bins *b, skd_tensor *out) {
  if (net->cfg.classes != b->bins)
    return skd_error(SKD_EINVAL, "depth: the network has %d outputs, the depth bins are %d", net->cfg.classes,
                     b->bins);
  skd_tensor logits;
  skd_status st = skd_predict_logits(net, arena, image, opt, &logits);
  if (st == SKD_OK) st = skd_arena_tensor(arena, out, 1, 1, image->h, image->w);
  if (st == SKD_OK) st = skd_depth_from_bins(net->ctx, b, &logits, out);
  return st;
}

skd_status skd_evaluate_depth(skd_pspnet *net, skd_arena *arena, const skd_dataset *ds, const skd_eval_options *opt,
                              const skd_depth_bins *b, float scale, skd_depth_acc *acc,
                              void (*progress)(void *user, int done, int total), void *user) {
  const int total = skd_dataset_size(ds);
  skd_status st = SKD_OK;
  float *image = NULL, *pred = NULL;
  size_t capacity = 0;
  const int stride = opt->shards > 1 ? opt->shards : 1; /* data parallel: this rank's share */
  for (int i = stride > 1 ? opt->shard : 0; i < total && st == SKD_OK; i += stride) {
    skd_sample s;
    st = skd_dataset_read_depth(ds, i, scale, &s);
    if (st != SKD_OK) break;
    const size_t pixels = (size_t)s.h * (size_t)s.w;
    if (pixels > capacity) {
      free(image), free(pred);
      image = malloc(3 * pixels * sizeof *image);
      pred = malloc(pixels * sizeof *pred);
      capacity = pixels;
      if (!image || !pred) {
        skd_sample_free(&s);
        st = skd_error(SKD_ENOMEM, "evaluate: out of host memory for a %dx%d image", s.w, s.h);
        break;
      }
    }
    skd_normalize_sample(&s, &opt->normalize, image, NULL);
    skd_arena_reset(arena);
    skd_tensor x, depth;
    st = skd_arena_tensor(arena, &x, 1, 3, s.h, s.w);
    if (st == SKD_OK) st = skd_tensor_upload(net->ctx, &x, image);
    if (st == SKD_OK) st = skd_predict_depth(net, arena, &x, opt, b, &depth);
    if (st == SKD_OK) st = skd_tensor_download(net->ctx, &depth, pred);
    if (st == SKD_OK) st = skd_depth_acc_add(acc, pred, s.depth, pixels);
    skd_sample_free(&s);
    if (st == SKD_OK && progress) progress(user, i + 1, total);
  }
  free(image), free(pred);
  return st;
}

double skd_depth_score(double abs_rel) { return isnan(abs_rel) ? NAN : 1.0 / (1.0 + abs_rel); }

skd_status skd_trainer_validate_depth(skd_trainer *t, skd_depth_metrics *m) {
  if (!t->val_set) return skd_error(SKD_EINVAL, "validation needs --val-list");
  skd_eval_options opt;
  skd_eval_options_default(&opt);
  if (t->cfg.imagenet_norm) skd_normalize_imagenet(&opt.normalize);
  skd_depth_bins b = trainer_depth_bins(&t->cfg);
  skd_depth_acc acc, *all = calloc((size_t)t->ranks, sizeof *all);
  if (!all) return skd_error(SKD_ENOMEM, "validation: out of host memory");
  skd_depth_acc_reset(&acc);
  /* Data parallel: every rank its share of the images, the sums merged in rank order. */
  opt.shard = t->rank;
  opt.shards = t->ranks;
  skd_status st = skd_evaluate_depth(t->student, t->arena, t->val_set, &opt, &b, t->cfg.depth_scale, &acc, NULL, NULL);
  if (st == SKD_OK) st = skd_dist_allgather(&acc, all, sizeof acc);
  if (st == SKD_OK) {
    skd_depth_acc_reset(&acc);
    for (int r = 0; r < t->ranks; r++) skd_depth_acc_merge(&acc, &all[r]);
    skd_depth_metrics_compute(&acc, m);
  }
  free(all);
  return st;
}
