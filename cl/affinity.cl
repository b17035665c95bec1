/* Pair-wise distillation (include/skd/loss/pair.h): node pooling, per-node
 * norms, cosine affinities over a local or global window of nodes, the loss
 * reduction and the gradient back through the pooling.
 * Pooled nodes are stored (N, C, M), M = hn * wn, so that neighbouring
 * work-items (neighbouring nodes) read neighbouring addresses. Affinities are
 * recomputed from the pooled features where needed: no M x M matrix. */

#ifndef PAIR_EPS
#define PAIR_EPS 1e-8f /* added to every norm, as the reference code does */
#endif

/* Node pooling, one work-item per (n, c, node): max or average over the
 * node's kh x kw patch, clipped at the map's edge (ceil mode). For max, the
 * first maximum in row-major order wins (PyTorch's rule, NaN included); its
 * index in the h x w plane goes to arg when want_arg. */
__kernel void pair_pool_fwd(const int total, const int h, const int w, const int kh, const int kw, const int hn,
                            const int wn, const int use_max, CTENSOR(x), TENSOR(p), __global int *arg_base,
                            const int arg_off, const int want_arg) {
  const int g = get_global_id(0);
  if (g >= total) return;
  const int m = hn * wn;
  const int node = g % m;
  const int plane = g / m;
  const int y0 = (node / wn) * kh, x0 = (node % wn) * kw;
  const int y1 = min(y0 + kh, h), x1 = min(x0 + kw, w);
  __global const float *src = AT(x) + plane * h * w;
  if (use_max) {
    int best_i = y0 * w + x0;
    float best = src[best_i];
    for (int y = y0; y < y1; y++)
      for (int xx = x0; xx < x1; xx++) {
        const float v = src[y * w + xx];
        if (v > best || isnan(v)) {
          best = v;
          best_i = y * w + xx;
        }
      }
    AT(p)[g] = best;
    if (want_arg) arg_base[arg_off + g] = best_i;
  } else {
    float sum = 0.0f;
    for (int y = y0; y < y1; y++)
      for (int xx = x0; xx < x1; xx++) sum += src[y * w + xx];
    AT(p)[g] = sum / (float)((y1 - y0) * (x1 - x0));
  }
}

/* |f| of every node, one work-item per (n, node); the eps is added later. */
__kernel void pair_norm_fwd(const int total, const int c, const int m, CTENSOR(p), TENSOR(norm)) {
  const int g = get_global_id(0);
  if (g >= total) return;
  const int n = g / m, node = g % m;
  __global const float *f = AT(p) + n * c * m + node;
  float s = 0.0f;
  for (int ch = 0; ch < c; ch++) s += f[ch * m] * f[ch * m];
  AT(norm)[g] = sqrt(s);
}

/* Rows [*lo, *hi] (or columns) of the window of radius r around v in [0, len). */
static void window_range(const int v, const int r, const int len, int *lo, int *hi) {
  if (r < 0) {
    *lo = 0;
    *hi = len - 1;
  } else {
    *lo = max(v - r, 0);
    *hi = min(v + r, len - 1);
  }
}

/* 1 / (M |window(node)|): the weight of each of the node's pairs. */
static float node_weight(const int node, const int hn, const int wn, const int r) {
  int y0, y1, x0, x1;
  window_range(node / wn, r, hn, &y0, &y1);
  window_range(node % wn, r, wn, &x0, &x1);
  return 1.0f / ((float)(hn * wn) * (float)((y1 - y0 + 1) * (x1 - x0 + 1)));
}

/* One node k of sample n: its loss term sum_j (aS_kj - aT_kj)^2 / (M |window(k)|)
 * (times inv_n = 1/N) into part, and, when want_grad, dL/df_k into dp.
 *
 * The gradient in gather form. L = 1/N sum_i w_i sum_{j in W(i)} d_ij^2 with
 * w_i = 1/(M |W(i)|), d = aS - aT. f_k enters the pairs (k, j), j in W(k), as
 * the first argument and the pairs (i, k), k in W(i), as the second. The
 * window is symmetric (k in W(i) <=> i in W(k)) and a is symmetric, so
 *   dL/df_k = 2/N sum_{j in W(k)} (w_k + w_j) d_kj  da(f_k, f_j)/df_k
 * where the derivative is w.r.t. the first argument only (for j = k the two
 * slots add up to the total derivative, which is what this counts). With
 * n = |f| + eps:
 *   da/df_k = f_j / (n_k n_j) - [exact] a_kj f_k / (n_k |f_k|)
 * so, with c_kj = (w_k + w_j) d_kj,
 *   dL/df_k = 2/N [ 1/n_k sum_j c_kj f_j / n_j - [exact] f_k / (n_k |f_k|) sum_j c_kj a_kj ].
 * The first sum is accumulated in dp (this work-item owns dp[:, k]). */
static void affinity_node(const int n, const int k, const int hn, const int wn, const int r, const int exact,
                          const float inv_n, __global const float *ps, const int cs, __global const float *pt,
                          const int ct, __global const float *ns, __global const float *nt, __global float *part,
                          __global float *dp, const int want_grad) {
  const int m = hn * wn;
  ps += n * cs * m;
  pt += n * ct * m;
  ns += n * m;
  nt += n * m;
  if (want_grad) dp += n * cs * m;
  int y0, y1, x0, x1;
  window_range(k / wn, r, hn, &y0, &y1);
  window_range(k % wn, r, wn, &x0, &x1);
  const float wk = node_weight(k, hn, wn, r);
  const float nks = ns[k] + PAIR_EPS, nkt = nt[k] + PAIR_EPS;
  if (want_grad)
    for (int ch = 0; ch < cs; ch++) dp[ch * m + k] = 0.0f;
  float loss = 0.0f, s = 0.0f;
  for (int y = y0; y <= y1; y++)
    for (int x = x0; x <= x1; x++) {
      const int j = y * wn + x;
      float dots = 0.0f, dott = 0.0f;
      for (int ch = 0; ch < cs; ch++) dots += ps[ch * m + k] * ps[ch * m + j];
      for (int ch = 0; ch < ct; ch++) dott += pt[ch * m + k] * pt[ch * m + j];
      const float njs = ns[j] + PAIR_EPS;
      const float as = dots / (nks * njs);
      const float d = as - dott / (nkt * (nt[j] + PAIR_EPS));
      loss += d * d;
      if (want_grad) {
        const float c = (wk + node_weight(j, hn, wn, r)) * d;
        s += c * as;
        const float cj = c / njs;
        for (int ch = 0; ch < cs; ch++) dp[ch * m + k] += cj * ps[ch * m + j];
      }
    }
  part[n * m + k] = loss * wk * inv_n;
  if (!want_grad) return;
  const float raw = ns[k];
  /* f_k / |f_k| is taken as 0 for a zero vector (a subgradient of |f|). */
  const float corr = (exact && raw > 0.0f) ? s / (nks * raw) : 0.0f;
  const float coef = 2.0f * inv_n;
  for (int ch = 0; ch < cs; ch++) dp[ch * m + k] = coef * (dp[ch * m + k] / nks - corr * ps[ch * m + k]);
}

/* Loss terms only; one work-item per (n, node). */
__kernel void pair_affinity_fwd(const int total, const int hn, const int wn, const int r, const float inv_n,
                                CTENSOR(ps), const int cs, CTENSOR(pt), const int ct, CTENSOR(ns), CTENSOR(nt),
                                TENSOR(part)) {
  const int g = get_global_id(0);
  if (g >= total) return;
  const int m = hn * wn;
  affinity_node(g / m, g % m, hn, wn, r, 0, inv_n, AT(ps), cs, AT(pt), ct, AT(ns), AT(nt), AT(part), AT(part), 0);
}

/* Loss terms and dL/d(pooled student) into dp (N, Cs, M), overwritten. */
__kernel void pair_affinity_bwd_student(const int total, const int hn, const int wn, const int r, const int exact,
                                        const float inv_n, CTENSOR(ps), const int cs, CTENSOR(pt), const int ct,
                                        CTENSOR(ns), CTENSOR(nt), TENSOR(part), TENSOR(dp)) {
  const int g = get_global_id(0);
  if (g >= total) return;
  const int m = hn * wn;
  affinity_node(g / m, g % m, hn, wn, r, exact, inv_n, AT(ps), cs, AT(pt), ct, AT(ns), AT(nt), AT(part), AT(dp), 1);
}

/* First pass of the loss total: work-group g sums part[g * chunk ..
 * min((g + 1) * chunk, count)) into red[g] (any power-of-two size). */
__kernel void pair_reduce_partial(const int count, const int chunk, CTENSOR(part), TENSOR(red),
                                  __local float *buf) {
  const int lid = get_local_id(0), g = get_group_id(0);
  const int lo = g * chunk, hi = min(lo + chunk, count);
  float acc = 0.0f;
  for (int i = lo + lid; i < hi; i += get_local_size(0)) acc += AT(part)[i];
  acc = group_sum(acc, buf);
  if (lid == 0) AT(red)[g] = acc;
}

/* out[0] = sum of the count partials, by one work-group (launch exactly one,
 * any power-of-two size): a fixed order, so the same result every run. */
__kernel void pair_reduce_fwd(const int count, CTENSOR(part), TENSOR(out), __local float *buf) {
  const int lid = get_local_id(0);
  const int wg = get_local_size(0);
  float acc = 0.0f;
  for (int i = lid; i < count; i += wg) acc += AT(part)[i];
  buf[lid] = acc;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = wg / 2; s > 0; s >>= 1) {
    if (lid < s) buf[lid] += buf[lid + s];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (lid == 0) AT(out)[0] = buf[0];
}

/* dx += scale * dL/dx through the pooling, one work-item per input pixel
 * (gather form: patches do not overlap, so each pixel has one node). Max:
 * only the node's recorded first maximum; avg: the node's gradient divided
 * by the pixels in its patch. */
__kernel void pair_pool_bwd_x(const int total, const int h, const int w, const int kh, const int kw, const int hn,
                              const int wn, const int use_max, const float scale, CTENSOR(dp),
                              __global const int *arg_base, const int arg_off, TENSOR(dx)) {
  const int g = get_global_id(0);
  if (g >= total) return;
  const int hw = h * w;
  const int plane = g / hw, pix = g % hw;
  const int y = pix / w, x = pix % w;
  const int ny = y / kh, nx = x / kw;
  const int pg = plane * hn * wn + ny * wn + nx;
  if (use_max) {
    if (arg_base[arg_off + pg] == pix) AT(dx)[g] += scale * AT(dp)[pg];
  } else {
    const int y0 = ny * kh, x0 = nx * kw;
    const int count = (min(y0 + kh, h) - y0) * (min(x0 + kw, w) - x0);
    AT(dx)[g] += scale * AT(dp)[pg] / (float)count;
  }
}
