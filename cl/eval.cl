/* Evaluation helpers: sliding-window crop / accumulate / average and the
 * horizontal flip. Each launch writes disjoint elements (windows arrive one
 * launch at a time), so sums need no atomics and are deterministic. */

/* One work-item per crop element: (j, i) in the crop, plane nc = n * C + c.
 * The window's data go to the top-left; the rest is padding (0). */
__kernel void window_crop_fwd(const int planes, const int height, const int width, const int crop_h,
                              const int crop_w, const int wy, const int wx, const int wh, const int ww,
                              CTENSOR(image), TENSOR(crop)) {
  const int j = get_global_id(0), i = get_global_id(1), nc = get_global_id(2);
  if (j >= crop_w || i >= crop_h || nc >= planes) return;
  float v = 0.0f;
  if (i < wh && j < ww) v = AT(image)[(nc * height + wy + i) * width + wx + j];
  AT(crop)[(nc * crop_h + i) * crop_w + j] = v;
}

/* One work-item per window element (j, i) of plane nc; the count is bumped
 * by the work-items of plane 0 only. */
__kernel void window_accumulate_fwd(const int planes, const int height, const int width, const int lh,
                                    const int lw, const int wy, const int wx, const int wh, const int ww,
                                    CTENSOR(logits), TENSOR(sum), const int has_count, TENSOR(count)) {
  const int j = get_global_id(0), i = get_global_id(1), nc = get_global_id(2);
  if (j >= ww || i >= wh || nc >= planes) return;
  const int at = (wy + i) * width + wx + j;
  AT(sum)[nc * height * width + at] += AT(logits)[(nc * lh + i) * lw + j];
  if (has_count && nc == 0) AT(count)[at] += 1.0f;
}

__kernel void window_average_fwd(const int total, const int hw, CTENSOR(sum), CTENSOR(count), TENSOR(out)) {
  const int k = get_global_id(0);
  if (k >= total) return;
  const float c = AT(count)[k % hw];
  AT(out)[k] = c > 0.0f ? AT(sum)[k] / c : NAN;
}

/* One work-item per mirrored pair (j, w-1-j) of a row: both values are read
 * before either is written, so y may be x. The middle column of an odd width
 * is its own pair. */
__kernel void flip_horizontal_fwd(const int rows, const int w, CTENSOR(x), TENSOR(y)) {
  const int j = get_global_id(0), r = get_global_id(1);
  const int pairs = (w + 1) / 2;
  if (j >= pairs || r >= rows) return;
  const int a = r * w + j, b = r * w + (w - 1 - j);
  const float va = AT(x)[a], vb = AT(x)[b];
  AT(y)[a] = vb;
  AT(y)[b] = va;
}
