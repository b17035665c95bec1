/* Evaluation pieces that do not need a network: the confusion matrix and its
 * metrics (host), the sliding-window plan of the reference code's
 * predict_sliding, window crop / accumulate / average and the horizontal flip
 * on the device (cl/eval.cl), each with a plain-C reference.
 *
 * One evaluation of an image (3, H, W) with crop (ch, cw):
 *   skd_sliding_init(&s, H, W, ch, cw, 0, 0); zero sum (1, C, H, W), count (1, 1, H, W)
 *   for i < skd_sliding_count(&s): win = skd_sliding_window(&s, i)
 *     skd_window_crop(image -> crop (1, 3, ch, cw))       the rest of the crop is 0
 *     logits = network(crop), resized to (1, C, ch, cw)   (optionally averaged with
 *                                                          flip(network(flip(crop))))
 *     skd_window_accumulate(logits, win, sum, count)
 *   skd_window_average(sum, count, sum); skd_argmax_download_u8; skd_confusion_add
 * Windows are processed one at a time, so accumulation is a plain add into
 * disjoint elements per launch: no atomics, same result every run. */
#ifndef SKD_EVAL_H
#define SKD_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "skd/tensor.h"

/* ---- Confusion matrix and metrics (host) ---------------------------------- */

/* Class ids are bytes and 255 is the ignore label, so at most 255 classes. */
#define SKD_EVAL_MAX_CLASSES 255

typedef struct skd_confusion {
  int classes;
  uint64_t *counts; /* classes x classes; counts[label * classes + prediction] */
  uint64_t ignored; /* pixels skipped because their label was the ignore label */
} skd_confusion;

skd_status skd_confusion_init(skd_confusion *m, int classes);
void skd_confusion_free(skd_confusion *m);
void skd_confusion_reset(skd_confusion *m);

/* Adds n pixels. A label equal to `ignore` skips the pixel (its prediction is
 * not looked at). Any other label or prediction >= classes is an error naming
 * the pixel, and then nothing is added. */
skd_status skd_confusion_add(skd_confusion *m, const uint8_t *pred, const uint8_t *label, size_t n, int ignore);

/* dst += src (e.g. matrices of several workers); same class count. */
skd_status skd_confusion_merge(skd_confusion *dst, const skd_confusion *src);

/* Metrics as fractions in [0, 1]; NaN where undefined.
 *
 * Per class c, with TP = counts[c][c], L = label pixels of c (row sum), P =
 * predicted pixels of c (column sum):
 *   iou[c] = TP / (L + P - TP); NaN when L + P = 0 (the class is "absent": it
 *            occurs neither in the labels nor in the predictions)
 *   accuracy[c] = TP / L; NaN when L = 0
 * mean_iou averages iou over the present classes (np.nanmean); an absent class
 * says nothing about the model, so it does not pull the mean down. A class
 * that is only predicted (L = 0, P > 0) has IoU 0 and counts.
 * mean_iou_reference is the reference code's evaluate_main: IoU = TP /
 * max(1, L + P - TP) averaged over ALL classes, an absent class counting 0.
 * The two agree whenever every class occurs (Cityscapes val); they differ on
 * subsets. */
typedef struct skd_metrics {
  int classes;
  int present;               /* classes with L + P > 0: the count behind mean_iou */
  uint64_t pixels;           /* evaluated pixels (ignore excluded) */
  uint64_t ignored;
  double pixel_accuracy;     /* sum TP / pixels */
  double mean_accuracy;      /* mean of accuracy over classes with L > 0 */
  double mean_iou;
  double mean_iou_reference;
  double iou[SKD_EVAL_MAX_CLASSES];
  double accuracy[SKD_EVAL_MAX_CLASSES];
  uint64_t label_pixels[SKD_EVAL_MAX_CLASSES];
  uint64_t predicted_pixels[SKD_EVAL_MAX_CLASSES];
  uint64_t true_positives[SKD_EVAL_MAX_CLASSES];
} skd_metrics;

skd_status skd_metrics_compute(const skd_confusion *m, skd_metrics *out);

/* The metrics as a text table (class, IoU %, accuracy %, label pixels; "n/a"
 * where undefined) followed by the summary lines, into buf (always
 * NUL-terminated when size > 0). names: `classes` class names or NULL ("class
 * 7"). Returns the length of the whole text (without the NUL), as snprintf:
 * a result >= size means it was truncated; call with (NULL, 0) to size buf. */
size_t skd_metrics_format(const skd_metrics *m, const char *const *names, char *buf, size_t size);

/* ---- Sliding windows ------------------------------------------------------ */

/* Image region [y, y + h) x [x, x + w). Its data sit at the top-left of a
 * crop-sized tensor (the rest is padding): h <= crop_h, w <= crop_w, smaller
 * only where the image is smaller than the crop. */
typedef struct skd_window {
  int y, x, h, w;
} skd_window;

typedef struct skd_sliding {
  int height, width;     /* the image */
  int crop_h, crop_w;
  int stride_h, stride_w;
  int rows, cols;        /* rows * cols windows */
} skd_sliding;

/* The reference's predict_sliding: stride = ceil(crop * (1 - 1/3)) computed
 * in double exactly as Python does (crop 512 -> 342, 9 -> 7, 768 -> 512);
 * rows = ceil((H - crop_h) / stride_h) + 1; window (r, c) starts at
 * (r * stride_h, c * stride_w), is clipped to the image and then shifted back
 * so that it is a full crop wherever the image allows (x1 = max(x2 - crop, 0)).
 * Differences from the reference, both where it breaks:
 *   - stride 0 picks the rule per axis; the reference takes crop_h's stride for
 *     both axes, which leaves columns uncovered when crop_w < 2/3 crop_h;
 *   - at least one window per axis: for an image smaller than 2/3 of the crop
 *     the reference computes zero rows and divides by a zero count.
 * stride_h / stride_w: 0 for the rule, else in [1, crop] (larger would leave
 * gaps). Every pixel is covered by at least one window. */
skd_status skd_sliding_init(skd_sliding *s, int height, int width, int crop_h, int crop_w, int stride_h,
                            int stride_w);
static inline int skd_sliding_count(const skd_sliding *s) { return s->rows * s->cols; }
/* Window i in [0, count), row-major as the reference visits them. */
skd_window skd_sliding_window(const skd_sliding *s, int i);

/* ---- Window ops and flip on the device (cl/eval.cl) ----------------------- */

/* crop (N, C, ch, cw) = the window's region of image (N, C, H, W) at the top
 * left, 0 elsewhere (0 is the mean after normalisation, as the reference's
 * pad_image). The window must lie inside the image and fit the crop. */
skd_status skd_window_crop(skd_context *ctx, const skd_tensor *image, const skd_window *win,
                           const skd_tensor *crop);

/* sum[:, :, win] += logits[:, :, 0:win.h, 0:win.w] and count[win] += 1.
 * logits (N, C, lh, lw) with lh >= win.h, lw >= win.w (the padding part is
 * dropped); sum (N, C, H, W); count (1, 1, H, W) or NULL. */
skd_status skd_window_accumulate(skd_context *ctx, const skd_tensor *logits, const skd_window *win,
                                 const skd_tensor *sum, const skd_tensor *count);

/* out = sum / count, count broadcast over N and C; out may be sum. A pixel no
 * window covered (count 0) becomes NaN rather than a plausible number. */
skd_status skd_window_average(skd_context *ctx, const skd_tensor *sum, const skd_tensor *count,
                              const skd_tensor *out);

/* y = x mirrored along W (input images and logits alike). y may be x (in
 * place); otherwise the two must not overlap. */
skd_status skd_flip_horizontal(skd_context *ctx, const skd_tensor *x, const skd_tensor *y);

/* Plain-C references, same semantics. Shapes as above: image (n, c, H, W),
 * crop (n, c, ch, cw), logits (n, c, lh, lw), sum (n, c, H, W), count (H, W) or NULL. */
void skd_ref_window_crop(const float *image, int n, int c, int height, int width, const skd_window *win,
                         float *crop, int crop_h, int crop_w);
void skd_ref_window_accumulate(const float *logits, int n, int c, int lh, int lw, const skd_window *win,
                               float *sum, float *count, int height, int width);
void skd_ref_window_average(const float *sum, const float *count, float *out, int n, int c, int height,
                            int width);
void skd_ref_flip_horizontal(const float *x, float *y, int n, int c, int h, int w);

#endif
