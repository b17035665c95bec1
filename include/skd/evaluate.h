/* Evaluation of a segmentation network on a dataset: whole images or the
 * reference's sliding windows, optionally averaged with the horizontally
 * flipped prediction, accumulated into a confusion matrix. */
#ifndef SKD_EVALUATE_H
#define SKD_EVALUATE_H

#include "skd/data.h"
#include "skd/depth.h"
#include "skd/eval.h"
#include "skd/loss/depth.h"
#include "skd/nn/pspnet.h"

typedef struct skd_eval_options {
  int crop;          /* sliding-window size; 0: the whole image in one pass */
  int flip;          /* also run the mirrored image and average the logits */
  skd_normalize normalize;
  /* Data parallel: skd_evaluate takes images shard, shard + shards, ...
   * (shards 0 or 1: every image); the caller reduces the matrices. */
  int shard, shards;
} skd_eval_options;

/* Whole images, no flip, the reference normalisation. */
void skd_eval_options_default(skd_eval_options *o);

/* Logits (1, C, H, W) at the image's own resolution for one normalised
 * image (1, 3, H, W): the network's logits bilinearly upsampled (align
 * corners), per window when crop > 0, averaged over windows and flips.
 * out comes from the arena. */
skd_status skd_predict_logits(skd_pspnet *net, skd_arena *arena, const skd_tensor *image,
                              const skd_eval_options *opt, skd_tensor *out);

/* Every image of ds, one at a time, into m (which must have the network's
 * class count). The arena is reset per image. progress (may be NULL) is
 * called after each image with (done, total). */
skd_status skd_evaluate(skd_pspnet *net, skd_arena *arena, const skd_dataset *ds, const skd_eval_options *opt,
                        skd_confusion *m, void (*progress)(void *user, int done, int total), void *user);

/* Depth: every image of a depth list (depth PNGs in 1/scale metre), its
 * logits as above (bins at the image's resolution), bins -> depth, added to
 * acc against the ground truth. The network's classes must be b->bins. */
skd_status skd_evaluate_depth(skd_pspnet *net, skd_arena *arena, const skd_dataset *ds, const skd_eval_options *opt,
                              const skd_depth_bins *b, float scale, skd_depth_acc *acc,
                              void (*progress)(void *user, int done, int total), void *user);
/* The predicted depth (1, 1, H, W) of one normalised image, from the arena. */
skd_status skd_predict_depth(skd_pspnet *net, skd_arena *arena, const skd_tensor *image, const skd_eval_options *opt,
                             const skd_depth_bins *b, skd_tensor *out);

#endif
