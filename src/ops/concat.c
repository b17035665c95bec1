/* Channel concatenation on the device (cl/concat.cl). */
#include "skd/ops/concat.h"

/* Every input has y's N, H, W and the channels add up to y's C. */
static skd_status check_shapes(const char *op, const char *name, const skd_tensor *parts, int count,
                               const skd_tensor *y) {
  if (count < 1 || !parts) return skd_error(SKD_EINVAL, "%s: needs at least one %s (count %d)", op, name, count);
  long sum = 0;
  for (int i = 0; i < count; i++) {
    const skd_tensor *t = &parts[i];
    if (t->n != y->n || t->h != y->h || t->w != y->w || t->c < 0)
      return skd_error(SKD_EINVAL, "%s: %s %d: expected shape (%d, C, %d, %d), got (%d, %d, %d, %d)", op, name, i,
                       y->n, y->h, y->w, t->n, t->c, t->h, t->w);
    sum += t->c;
  }
  if (sum != y->c)
    return skd_error(SKD_EINVAL, "%s: the %ss' channels add up to %ld, but y has shape (%d, %d, %d, %d)", op, name,
                     sum, y->n, y->c, y->h, y->w);
  return SKD_OK;
}

static skd_status launch(skd_context *ctx, skd_kernel *k, const skd_tensor *part, const skd_tensor *whole,
                         int first, const skd_tensor *src, const skd_tensor *dst) {
  const int hw = whole->h * whole->w;
  const int total = (int)skd_tensor_numel(part);
  skd_args a = skd_args_begin(k);
  skd_arg_int(&a, total);
  skd_arg_int(&a, part->c * hw);
  skd_arg_int(&a, whole->c * hw);
  skd_arg_int(&a, first * hw);
  skd_arg_tensor(&a, src);
  skd_arg_tensor(&a, dst);
  return skd_launch_1d(ctx, &a, (size_t)total, 256);
}

skd_status skd_concat_forward(skd_context *ctx, const skd_tensor *inputs, int count, const skd_tensor *y) {
  skd_status st = check_shapes("concat forward", "input", inputs, count, y);
  skd_kernel *k = NULL;
  if (st == SKD_OK) st = skd_kernel_get(ctx, "concat", "concat_fwd", &k);
  int first = 0;
  for (int i = 0; st == SKD_OK && i < count; i++) {
    st = launch(ctx, k, &inputs[i], y, first, &inputs[i], y);
    first += inputs[i].c;
  }
  return st;
}

skd_status skd_concat_backward(skd_context *ctx, const skd_tensor *dy, const skd_tensor *dinputs, int count) {
  skd_status st = check_shapes("concat backward", "dinput", dinputs, count, dy);
  skd_kernel *k = NULL;
  if (st == SKD_OK) st = skd_kernel_get(ctx, "concat", "concat_bwd_x", &k);
  int first = 0;
  for (int i = 0; st == SKD_OK && i < count; i++) {
    if (dinputs[i].mem) st = launch(ctx, k, &dinputs[i], dy, first, dy, &dinputs[i]);
    first += dinputs[i].c;
  }
  return st;
}
