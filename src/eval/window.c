/* The sliding-window plan (the reference code's predict_sliding) and the
 * window ops / flip on the device (cl/eval.cl). */
#include <limits.h>
#include <math.h>

#include "skd/eval.h"

/* ceil(crop * (1 - 1/3)) in double, as the reference's Python computes it:
 * 1 - 1/3 rounds above 2/3, so multiples of 3 get one more (9 -> 7). */
static int reference_stride(int crop) { return (int)ceil((double)crop * (1.0 - 1.0 / 3.0)); }

/* Windows along one axis: ceil((size - crop) / stride) + 1, at least 1. */
static int axis_windows(int size, int crop, int stride) {
  if (size <= crop) return 1;
  return (size - crop + stride - 1) / stride + 1;
}

skd_status skd_sliding_init(skd_sliding *s, int height, int width, int crop_h, int crop_w, int stride_h,
                            int stride_w) {
  skd_sliding z = {0};
  *s = z;
  if (height < 1 || width < 1 || crop_h < 1 || crop_w < 1)
    return skd_error(SKD_EINVAL, "sliding windows: image %dx%d and crop %dx%d must be at least 1x1", height, width,
                     crop_h, crop_w);
  if (stride_h == 0) stride_h = reference_stride(crop_h);
  if (stride_w == 0) stride_w = reference_stride(crop_w);
  if (stride_h < 1 || stride_h > crop_h || stride_w < 1 || stride_w > crop_w)
    return skd_error(SKD_EINVAL, "sliding windows: stride %dx%d must be in [1, crop %dx%d] (or 0 for the default)",
                     stride_h, stride_w, crop_h, crop_w);
  s->height = height;
  s->width = width;
  s->crop_h = crop_h;
  s->crop_w = crop_w;
  s->stride_h = stride_h;
  s->stride_w = stride_w;
  s->rows = axis_windows(height, crop_h, stride_h);
  s->cols = axis_windows(width, crop_w, stride_w);
  return SKD_OK;
}

/* Start and length of window k along an axis (the reference's x1, x2). */
static void axis_window(int k, int size, int crop, int stride, int *start, int *len) {
  int a = k * stride;
  int b = a + crop < size ? a + crop : size;
  a = b - crop > 0 ? b - crop : 0;
  *start = a;
  *len = b - a;
}

skd_window skd_sliding_window(const skd_sliding *s, int i) {
  skd_window w;
  axis_window(i / s->cols, s->height, s->crop_h, s->stride_h, &w.y, &w.h);
  axis_window(i % s->cols, s->width, s->crop_w, s->stride_w, &w.x, &w.w);
  return w;
}

/* The window lies inside (height, width) and fits (lh, lw). */
static skd_status check_window(const skd_window *win, int height, int width, int lh, int lw, const char *op) {
  if (win->h < 1 || win->w < 1 || win->y < 0 || win->x < 0 || win->y + win->h > height || win->x + win->w > width)
    return skd_error(SKD_EINVAL, "%s: window (y %d, x %d, %dx%d) is not inside the %dx%d image", op, win->y, win->x,
                     win->h, win->w, height, width);
  if (win->h > lh || win->w > lw)
    return skd_error(SKD_EINVAL, "%s: window %dx%d does not fit the %dx%d crop", op, win->h, win->w, lh, lw);
  return SKD_OK;
}

static skd_status check_size(const skd_tensor *t, const char *op, const char *what) {
  if (skd_tensor_numel(t) > (size_t)INT_MAX)
    return skd_error(SKD_EINVAL, "%s: %s (%d, %d, %d, %d) has more than INT_MAX elements", op, what, t->n, t->c,
                     t->h, t->w);
  return SKD_OK;
}

skd_status skd_window_crop(skd_context *ctx, const skd_tensor *image, const skd_window *win,
                           const skd_tensor *crop) {
  skd_status st = skd_tensor_expect(crop, image->n, image->c, crop->h, crop->w, "window crop: crop");
  if (st == SKD_OK) st = check_window(win, image->h, image->w, crop->h, crop->w, "window crop");
  if (st == SKD_OK) st = check_size(image, "window crop", "image");
  if (st == SKD_OK) st = check_size(crop, "window crop", "crop");
  skd_kernel *k;
  if (st == SKD_OK) st = skd_kernel_get(ctx, "eval", "window_crop_fwd", &k);
  if (st != SKD_OK) return st;
  skd_args a = skd_args_begin(k);
  skd_arg_int(&a, image->n * image->c);
  skd_arg_int(&a, image->h);
  skd_arg_int(&a, image->w);
  skd_arg_int(&a, crop->h);
  skd_arg_int(&a, crop->w);
  skd_arg_int(&a, win->y);
  skd_arg_int(&a, win->x);
  skd_arg_int(&a, win->h);
  skd_arg_int(&a, win->w);
  skd_arg_tensor(&a, image);
  skd_arg_tensor(&a, crop);
  size_t global[3] = {(size_t)crop->w, (size_t)crop->h, (size_t)(image->n * image->c)};
  size_t local[3] = {16, 4, 1};
  return skd_launch(ctx, &a, 3, global, local);
}

skd_status skd_window_accumulate(skd_context *ctx, const skd_tensor *logits, const skd_window *win,
                                 const skd_tensor *sum, const skd_tensor *count) {
  skd_status st = skd_tensor_expect(logits, sum->n, sum->c, logits->h, logits->w, "window accumulate: logits");
  if (st == SKD_OK && count) st = skd_tensor_expect(count, 1, 1, sum->h, sum->w, "window accumulate: count");
  if (st == SKD_OK) st = check_window(win, sum->h, sum->w, logits->h, logits->w, "window accumulate");
  if (st == SKD_OK) st = check_size(sum, "window accumulate", "sum");
  if (st == SKD_OK) st = check_size(logits, "window accumulate", "logits");
  skd_kernel *k;
  if (st == SKD_OK) st = skd_kernel_get(ctx, "eval", "window_accumulate_fwd", &k);
  if (st != SKD_OK) return st;
  skd_args a = skd_args_begin(k);
  skd_arg_int(&a, sum->n * sum->c);
  skd_arg_int(&a, sum->h);
  skd_arg_int(&a, sum->w);
  skd_arg_int(&a, logits->h);
  skd_arg_int(&a, logits->w);
  skd_arg_int(&a, win->y);
  skd_arg_int(&a, win->x);
  skd_arg_int(&a, win->h);
  skd_arg_int(&a, win->w);
  skd_arg_tensor(&a, logits);
  skd_arg_tensor(&a, sum);
  skd_arg_int(&a, count != NULL);
  skd_arg_tensor(&a, count ? count : sum); /* never touched when has_count is 0 */
  size_t global[3] = {(size_t)win->w, (size_t)win->h, (size_t)(sum->n * sum->c)};
  size_t local[3] = {16, 4, 1};
  return skd_launch(ctx, &a, 3, global, local);
}

skd_status skd_window_average(skd_context *ctx, const skd_tensor *sum, const skd_tensor *count,
                              const skd_tensor *out) {
  skd_status st = skd_tensor_expect(count, 1, 1, sum->h, sum->w, "window average: count");
  if (st == SKD_OK) st = skd_tensor_expect_same(out, sum, "window average: out");
  if (st == SKD_OK) st = check_size(sum, "window average", "sum");
  skd_kernel *k;
  if (st == SKD_OK) st = skd_kernel_get(ctx, "eval", "window_average_fwd", &k);
  if (st != SKD_OK) return st;
  int total = (int)skd_tensor_numel(sum);
  skd_args a = skd_args_begin(k);
  skd_arg_int(&a, total);
  skd_arg_int(&a, sum->h * sum->w);
  skd_arg_tensor(&a, sum);
  skd_arg_tensor(&a, count);
  skd_arg_tensor(&a, out);
  return skd_launch_1d(ctx, &a, (size_t)total, 256);
}

skd_status skd_flip_horizontal(skd_context *ctx, const skd_tensor *x, const skd_tensor *y) {
  skd_status st = skd_tensor_expect_same(y, x, "flip horizontal: y");
  if (st == SKD_OK) st = check_size(x, "flip horizontal", "x");
  if (st != SKD_OK) return st;
  size_t n = skd_tensor_numel(x);
  /* Partial overlap would read values another work-item already wrote. */
  if (x->mem == y->mem && x->offset != y->offset && x->offset < y->offset + n && y->offset < x->offset + n)
    return skd_error(SKD_EINVAL, "flip horizontal: y overlaps x without being x (offsets %zu and %zu)", x->offset,
                     y->offset);
  skd_kernel *k;
  st = skd_kernel_get(ctx, "eval", "flip_horizontal_fwd", &k);
  if (st != SKD_OK) return st;
  int rows = x->n * x->c * x->h;
  skd_args a = skd_args_begin(k);
  skd_arg_int(&a, rows);
  skd_arg_int(&a, x->w);
  skd_arg_tensor(&a, x);
  skd_arg_tensor(&a, y);
  size_t global[2] = {(size_t)(x->w + 1) / 2, (size_t)rows};
  size_t local[2] = {16, 4};
  return skd_launch(ctx, &a, 2, global, local);
}
