/* Spectral normalisation of W (rows, cols) with power-iteration vectors
 * u (rows) and v (cols). Every reduction has a fixed order: one work-item
 * per output for the matrix-vector products over rows, one work-group per
 * output (tree reduction) otherwise. The host keeps local sizes powers of
 * two; the reductions read get_local_size(0). */

#ifndef SN_EPS
#define SN_EPS 1e-12f /* torch.nn.functional.normalize's default */
#endif

/* t = W^T u, one work-item per column (reads along a row are coalesced
 * across the work-items). */
__kernel void spectral_wtu_fwd(const int rows, const int cols, CTENSOR(w), CTENSOR(u), TENSOR(t)) {
  const int j = get_global_id(0);
  if (j >= cols) return;
  float acc = 0.0f;
  for (int i = 0; i < rows; i++) acc += AT(w)[i * cols + j] * AT(u)[i];
  AT(t)[j] = acc;
}

/* x = x / max(||x||, eps) in place; one work-group. */
__kernel void spectral_normalize_fwd(const int n, TENSOR(x), __local float *scratch) {
  const int lid = get_local_id(0), ls = get_local_size(0);
  float ss = 0.0f;
  for (int i = lid; i < n; i += ls) ss += AT(x)[i] * AT(x)[i];
  const float inv = 1.0f / fmax(sqrt(group_sum(ss, scratch)), SN_EPS);
  for (int i = lid; i < n; i += ls) AT(x)[i] *= inv;
}

/* s = W v, one work-group per row. */
__kernel void spectral_wv_fwd(const int cols, CTENSOR(w), CTENSOR(v), TENSOR(s), __local float *scratch) {
  const int row = get_group_id(0);
  const int lid = get_local_id(0), ls = get_local_size(0);
  __global const float *wr = AT(w) + row * cols;
  float acc = 0.0f;
  for (int j = lid; j < cols; j += ls) acc += wr[j] * AT(v)[j];
  acc = group_sum(acc, scratch);
  if (lid == 0) AT(s)[row] = acc;
}

/* One work-group: with update, u = s / max(||s||, eps); then sigma = u . s
 * (s = W v, so this is PyTorch's dot(u, mv(W, v))). The norm is reduced
 * even without update because barriers stay out of conditional code: PoCL
 * 3.1 corrupted host memory with the reduction inside `if (update)`,
 * although that branch is uniform. */
__kernel void spectral_sigma_fwd(const int n, CTENSOR(s), TENSOR(u), const int update, TENSOR(sigma),
                                 __local float *scratch) {
  const int lid = get_local_id(0), ls = get_local_size(0);
  float ss = 0.0f;
  for (int i = lid; i < n; i += ls) ss += AT(s)[i] * AT(s)[i];
  const float inv = 1.0f / fmax(sqrt(group_sum(ss, scratch)), SN_EPS);
  /* Each work-item later reads back only the u values it wrote itself. */
  if (update)
    for (int i = lid; i < n; i += ls) AT(u)[i] = AT(s)[i] * inv;
  float dot = 0.0f;
  for (int i = lid; i < n; i += ls) dot += AT(u)[i] * AT(s)[i];
  dot = group_sum(dot, scratch);
  if (lid == 0) AT(sigma)[0] = dot;
}

/* w_sn = w / sigma */
__kernel void spectral_scale_fwd(const int n, CTENSOR(w), CTENSOR(sigma), TENSOR(w_sn)) {
  const int i = get_global_id(0);
  if (i >= n) return;
  AT(w_sn)[i] = AT(w)[i] / AT(sigma)[0];
}

/* Backward, pass 1: partial sums of dW_sn * W over a fixed grid. chunk > 0:
 * each work-item sums its own `chunk` consecutive elements (CPUs: one
 * stream per core); 0: work-items stride by the grid size (GPUs: coalesced). */
__kernel void spectral_dot_partial(const int n, const int chunk, CTENSOR(a), CTENSOR(b), TENSOR(part),
                                   __local float *scratch) {
  float acc = 0.0f;
  if (chunk > 0) {
    const int end = min(n, ((int)get_global_id(0) + 1) * chunk);
    for (int i = get_global_id(0) * chunk; i < end; i++) acc += AT(a)[i] * AT(b)[i];
  } else {
    for (int i = get_global_id(0); i < n; i += get_global_size(0)) acc += AT(a)[i] * AT(b)[i];
  }
  acc = group_sum(acc, scratch);
  if (get_local_id(0) == 0) AT(part)[get_group_id(0)] = acc;
}

/* Pass 2: one work-group sums the partials in a fixed order. */
__kernel void spectral_dot_final(const int groups, CTENSOR(part), TENSOR(out), __local float *scratch) {
  float acc = 0.0f;
  for (int g = get_local_id(0); g < groups; g += get_local_size(0)) acc += AT(part)[g];
  acc = group_sum(acc, scratch);
  if (get_local_id(0) == 0) AT(out)[0] = acc;
}

/* dW += dW_sn / sigma - (d / sigma^2) u v^T with d = sum(dW_sn * W). */
__kernel void spectral_bwd_w(const int rows, const int cols, CTENSOR(dw_sn), CTENSOR(u), CTENSOR(v),
                             CTENSOR(sigma), CTENSOR(d), TENSOR(dw)) {
  const int j = get_global_id(0), i = get_global_id(1);
  if (j >= cols || i >= rows) return;
  const int idx = i * cols + j;
  const float sg = AT(sigma)[0];
  const float k = AT(d)[0] / (sg * sg);
  AT(dw)[idx] += AT(dw_sn)[idx] / sg - k * AT(u)[i] * AT(v)[j];
}
