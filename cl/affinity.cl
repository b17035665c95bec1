/* Pair-wise distillation (include/skd/loss/pair.h): node pooling, per-node
 * norms, cosine affinities over a local or global window of nodes, the loss
 * reduction and the gradient back through the pooling.
 * Pooled nodes are stored (N, C, MP): M = hn * wn nodes padded to MP, a
 * multiple of 4, so that a work-item owns 4 consecutive nodes as one float4
 * (the pad lanes are computed on garbage and dropped by selects, never by
 * multiplying by 0, which would keep a NaN). Neighbouring work-items read
 * neighbouring addresses; each lane sums its channels in the reference's
 * order. Affinities are recomputed from the pooled features where needed:
 * no M x M matrix. */

#ifndef PAIR_EPS
#define PAIR_EPS 1e-8f /* added to every norm, as the reference code does */
#endif

/* Does candidate (b, ib) beat (a, ia) under PyTorch's max-pool rule? The
 * scan `v > best || isnan(v)` in row-major order keeps the first maximum, or
 * the last NaN; as an order on (value, index) that combines partial scans in
 * any grouping. ia < 0 is "nothing yet". */
static int pool_beats(const float a, const int ia, const float b, const int ib) {
  if (ib < 0) return 0;
  if (ia < 0) return 1;
  if (isnan(a)) return isnan(b) && ib > ia;
  if (isnan(b)) return 1;
  return b > a || (b == a && ib < ia);
}

/* Node pooling; 2-D launch (node, plane). Max or average over the node's
 * kh x kw patch, clipped at the map's edge (ceil mode); each patch row is
 * read as float4 (four running maxima / sums) and a scalar tail. For max,
 * the index of the winner in the h x w plane goes to arg when want_arg. */
__kernel void pair_pool_fwd(const int m, const int mp, const int planes, const int h, const int w, const int kh,
                            const int kw, const int wn, const int use_max, CTENSOR(x), TENSOR(p),
                            __global int *arg_base, const int arg_off, const int want_arg) {
  const int node = get_global_id(0), plane = get_global_id(1);
  if (node >= m || plane >= planes) return;
  const int y0 = (node / wn) * kh, x0 = (node % wn) * kw;
  const int y1 = min(y0 + kh, h), x1 = min(x0 + kw, w);
  __global const float *src = AT(x) + plane * h * w;
  const int out = plane * mp + node;
  if (use_max) {
    float4 best4 = (float4)(0.0f);
    int4 idx4 = (int4)(-1);
    float best = 0.0f;
    int idx = -1;
    for (int y = y0; y < y1; y++) {
      int xx = x0;
      for (; xx + 4 <= x1; xx += 4) {
        const float4 v = vload4(0, src + y * w + xx);
        /* lanes see increasing indices, so the scan rule holds per lane */
        const int4 take = (idx4 < 0) | isgreater(v, best4) | isnan(v);
        best4 = select(best4, v, take);
        idx4 = select(idx4, (int4)(y * w + xx) + (int4)(0, 1, 2, 3), take);
      }
      for (; xx < x1; xx++) {
        const float v = src[y * w + xx];
        if (idx < 0 || v > best || isnan(v)) {
          best = v;
          idx = y * w + xx;
        }
      }
    }
    if (x1 - x0 >= 4) { /* the lanes ran */
      if (pool_beats(best, idx, best4.s0, idx4.s0)) { best = best4.s0; idx = idx4.s0; }
      if (pool_beats(best, idx, best4.s1, idx4.s1)) { best = best4.s1; idx = idx4.s1; }
      if (pool_beats(best, idx, best4.s2, idx4.s2)) { best = best4.s2; idx = idx4.s2; }
      if (pool_beats(best, idx, best4.s3, idx4.s3)) { best = best4.s3; idx = idx4.s3; }
    }
    AT(p)[out] = best;
    if (want_arg) arg_base[arg_off + out] = idx;
  } else {
    float4 sum4 = (float4)(0.0f);
    float sum = 0.0f;
    for (int y = y0; y < y1; y++) {
      int xx = x0;
      for (; xx + 4 <= x1; xx += 4) sum4 += vload4(0, src + y * w + xx);
      for (; xx < x1; xx++) sum += src[y * w + xx];
    }
    sum += (sum4.s0 + sum4.s1) + (sum4.s2 + sum4.s3);
    AT(p)[out] = sum / (float)((y1 - y0) * (x1 - x0));
  }
}

/* Node pooling for narrow patches (kw < 4, where pair_pool_fwd's float4 rows
 * never run); 2-D launch (chunk of `per` node quads, plane * hn + node row).
 * The lanes are 4 neighbouring nodes of a node row: each lane scans its own
 * patch in row-major order (the scan rule per lane, nothing to combine), so
 * neighbouring lanes and work-items read neighbouring floats. */
__kernel void pair_pool_narrow_fwd(const int chunks, const int per, const int rows, const int mp, const int h,
                                   const int w, const int kh, const int kw, const int hn, const int wn,
                                   const int use_max, CTENSOR(x), TENSOR(p), __global int *arg_base,
                                   const int arg_off, const int want_arg) {
  const int gq = get_global_id(0), row = get_global_id(1);
  if (gq >= chunks || row >= rows) return;
  const int plane = row / hn, ny = row % hn;
  const int y0 = ny * kh, y1 = min(y0 + kh, h);
  __global const float *src = AT(x) + plane * h * w;
  const int out = plane * mp + ny * wn;
  const int q1 = min((gq + 1) * per, (wn + 3) / 4);
  for (int q = gq * per; q < q1; q++) {
    const int4 nx = (int4)(4 * q) + (int4)(0, 1, 2, 3);
    /* lanes past the row read the last node and are not stored */
    const int4 xa = min(nx, (int4)(wn - 1)) * kw;
    const int4 xb = min(xa + kw, (int4)(w));
    float4 best = (float4)(0.0f);
    int4 idx = (int4)(-1);
    for (int y = y0; y < y1; y++)
      for (int dx = 0; dx < kw; dx++) {
        const int4 in = xa + dx < xb; /* the map's last patch may be clipped */
        const int4 off = (int4)(y * w) + select(xa, xa + dx, in);
        const float4 v = (float4)(src[off.s0], src[off.s1], src[off.s2], src[off.s3]);
        if (use_max) {
          const int4 take = in & ((idx < 0) | isgreater(v, best) | isnan(v));
          best = select(best, v, take);
          idx = select(idx, off, take);
        } else {
          best += select((float4)(0.0f), v, in);
        }
      }
    if (!use_max) best /= convert_float4((y1 - y0) * (xb - xa));
    const int o = out + 4 * q;
    AT(p)[o] = best.s0;
    if (want_arg) arg_base[arg_off + o] = idx.s0;
    if (4 * q + 1 < wn) {
      AT(p)[o + 1] = best.s1;
      if (want_arg) arg_base[arg_off + o + 1] = idx.s1;
    }
    if (4 * q + 2 < wn) {
      AT(p)[o + 2] = best.s2;
      if (want_arg) arg_base[arg_off + o + 2] = idx.s2;
    }
    if (4 * q + 3 < wn) {
      AT(p)[o + 3] = best.s3;
      if (want_arg) arg_base[arg_off + o + 3] = idx.s3;
    }
  }
}

/* |f| of 4 nodes per work-item: (n, node quad); the eps is added later. */
__kernel void pair_norm_fwd(const int quads, const int c, const int mp, CTENSOR(p), TENSOR(norm)) {
  const int g = get_global_id(0);
  if (g >= quads) return;
  const int q4 = mp / 4;
  const int n = g / q4, k0 = (g % q4) * 4;
  __global const float *f = AT(p) + n * c * mp + k0;
  float4 s = (float4)(0.0f);
  for (int ch = 0; ch < c; ch++) {
    const float4 v = vload4(0, f + ch * mp);
    s += v * v;
  }
  vstore4(sqrt(s), 0, AT(norm) + n * mp + k0);
}

/* Nodes in the window of radius r around coordinate v along an axis of len
 * (r < 0: the whole axis). */
static int4 window_count(const int4 v, const int r, const int len) {
  if (r < 0) return (int4)(len);
  return min(v + r, (int4)(len - 1)) - max(v - r, (int4)(0)) + 1;
}

/* 1 / (M |window|) of the nodes at (y, x): the weight of each of their pairs. */
static float4 node_weight(const int4 y, const int4 x, const int hn, const int wn, const int r) {
  return 1.0f / ((float)(hn * wn) * convert_float4(window_count(y, r, hn) * window_count(x, r, wn)));
}

/* sum over channels of f[k] f[j] for the 4 lanes k of a quad; f points at
 * the quad's first node of channel 0. j = k + rel per lane (shift, a local
 * window position) or j = rel from the quad's first node for every lane
 * (broadcast, global window). */
static float4 dot_pairs(__global const float *f, const int c, const int mp, const int rel, const int bcast) {
  float4 acc = (float4)(0.0f);
  if (bcast)
    for (int ch = 0; ch < c; ch++) acc += vload4(0, f + ch * mp) * f[ch * mp + rel];
  else
    for (int ch = 0; ch < c; ch++) acc += vload4(0, f + ch * mp) * vload4(0, f + ch * mp + rel);
  return acc;
}

/* dp[k] += cj * f[j] over channels, j as in dot_pairs. Shifted lanes outside
 * the grid read garbage (the pad, a neighbour row): select, not cj = 0. */
static void grad_pairs(__global float *dp, __global const float *f, const int c, const int mp, const int rel,
                       const int bcast, const float4 cj, const int4 valid) {
  if (bcast)
    for (int ch = 0; ch < c; ch++) vstore4(vload4(0, dp + ch * mp) + cj * f[ch * mp + rel], 0, dp + ch * mp);
  else
    for (int ch = 0; ch < c; ch++)
      vstore4(vload4(0, dp + ch * mp) + select((float4)(0.0f), cj * vload4(0, f + ch * mp + rel), valid), 0,
              dp + ch * mp);
}

#ifndef PAIR_MAX_ROW
#define PAIR_MAX_ROW 15 /* window rows up to this long (r <= 7) go row by row */
#endif

/* One window position's pairs (k lanes, j lanes) from their dot products:
 * adds d^2 to loss, c a to s and gives cj = c / n_j (all 0 in lanes that are
 * not valid, by select: their inputs may be garbage). */
static void pair_terms(const float4 dots, const float4 dott, const float4 nks, const float4 nkt, const float4 njs,
                       const float4 njt, const float4 wk, const float4 wj, const int4 valid, float4 *loss, float4 *s,
                       float4 *cj) {
  const float4 as = dots / (nks * njs);
  const float4 d = as - dott / (nkt * njt);
  *loss += select((float4)(0.0f), d * d, valid);
  const float4 c = (wk + wj) * d;
  *s += select((float4)(0.0f), c * as, valid);
  *cj = select((float4)(0.0f), c / njs, valid);
}

/* The 4 nodes k0..k0+3 of sample n: their loss terms
 * sum_j (aS_kj - aT_kj)^2 / (M |window(k)|) (times inv_n = 1/N) into part,
 * and, when want_grad, dL/df_k into dp. ps, pt, ns, nt, part, dp point at
 * sample n's node k0.
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
 * The first sum is accumulated in dp (this work-item owns dp[:, quad]).
 * The window is walked by offset (dy, dx) in row-major order, the order of
 * the reference's loop over window rows and columns. */
static void affinity_quad(const int k0, const int m, const int mp, const int hn, const int wn, const int r,
                          const int exact, const float inv_n, __global const float *ps, const int cs,
                          __global const float *pt, const int ct, __global const float *ns,
                          __global const float *nt, __global float *part, __global float *dp, const int want_grad) {
  const int4 k4 = (int4)(k0) + (int4)(0, 1, 2, 3);
  const int4 kvalid = k4 < m;
  const int4 kc = min(k4, (int4)(m - 1));
  const int4 ky = kc / wn, kx = kc % wn;
  const float4 wk = node_weight(ky, kx, hn, wn, r);
  const float4 nks = vload4(0, ns) + PAIR_EPS, nkt = vload4(0, nt) + PAIR_EPS;
  if (want_grad)
    for (int ch = 0; ch < cs; ch++) vstore4((float4)(0.0f), 0, dp + ch * mp);
  float4 loss = (float4)(0.0f), s = (float4)(0.0f);
  const int bcast = r < 0;
  if (!bcast && 2 * r + 1 <= PAIR_MAX_ROW) {
    /* Local window, one window row at a time: each channel's k values are
     * loaded once per row and the row's 2r+1 neighbours are one contiguous
     * run, instead of 2 strided loads per pair and channel. */
    const int np = 2 * r + 1;
    float4 dots[PAIR_MAX_ROW], dott[PAIR_MAX_ROW], cjs[PAIR_MAX_ROW];
    int4 valids[PAIR_MAX_ROW];
    for (int dy = -r; dy <= r; dy++) {
      const int4 jy = ky + dy;
      const int4 row_ok = kvalid & (jy >= 0) & (jy < hn);
      if (!any(row_ok)) continue;
      const int rel0 = dy * wn - r; /* position p: j = k + rel0 + p */
      for (int q = 0; q < np; q++) {
        const int4 jx = kx + (q - r);
        valids[q] = row_ok & (jx >= 0) & (jx < wn);
        dots[q] = (float4)(0.0f);
        dott[q] = (float4)(0.0f);
      }
      for (int ch = 0; ch < cs; ch++) {
        const float4 fk = vload4(0, ps + ch * mp);
        __global const float *row = ps + ch * mp + rel0;
        for (int q = 0; q < np; q++) dots[q] += fk * vload4(0, row + q);
      }
      for (int ch = 0; ch < ct; ch++) {
        const float4 fk = vload4(0, pt + ch * mp);
        __global const float *row = pt + ch * mp + rel0;
        for (int q = 0; q < np; q++) dott[q] += fk * vload4(0, row + q);
      }
      for (int q = 0; q < np; q++) {
        const float4 wj = node_weight(clamp(jy, 0, hn - 1), clamp(kx + (q - r), 0, wn - 1), hn, wn, r);
        pair_terms(dots[q], dott[q], nks, nkt, vload4(0, ns + rel0 + q) + PAIR_EPS,
                   vload4(0, nt + rel0 + q) + PAIR_EPS, wk, wj, valids[q], &loss, &s, &cjs[q]);
      }
      if (want_grad)
        for (int ch = 0; ch < cs; ch++) {
          __global const float *row = ps + ch * mp + rel0;
          float4 acc = vload4(0, dp + ch * mp);
          for (int q = 0; q < np; q++) acc += select((float4)(0.0f), cjs[q] * vload4(0, row + q), valids[q]);
          vstore4(acc, 0, dp + ch * mp);
        }
    }
  } else {
    const int rr = bcast ? 0 : r;
    /* global: positions j = 0..m-1 (as dy = 0, dx = j); local: (dy, dx) in [-r, r]^2 */
    const int ylo = -rr, yhi = rr, xlo = bcast ? 0 : -rr, xhi = bcast ? m - 1 : rr;
    const float wglobal = 1.0f / ((float)m * (float)m);
    for (int dy = ylo; dy <= yhi; dy++)
      for (int dx = xlo; dx <= xhi; dx++) {
        int4 valid = kvalid;
        float4 wj = (float4)(wglobal), njs, njt;
        int rel;
        if (bcast) {
          rel = dx - k0;
          njs = (float4)(ns[rel] + PAIR_EPS);
          njt = (float4)(nt[rel] + PAIR_EPS);
        } else {
          const int4 jy = ky + dy, jx = kx + dx;
          valid &= (jy >= 0) & (jy < hn) & (jx >= 0) & (jx < wn);
          if (!any(valid)) continue;
          rel = dy * wn + dx;
          wj = node_weight(clamp(jy, 0, hn - 1), clamp(jx, 0, wn - 1), hn, wn, r);
          njs = vload4(0, ns + rel) + PAIR_EPS;
          njt = vload4(0, nt + rel) + PAIR_EPS;
        }
        float4 cj;
        pair_terms(dot_pairs(ps, cs, mp, rel, bcast), dot_pairs(pt, ct, mp, rel, bcast), nks, nkt, njs, njt, wk, wj,
                   valid, &loss, &s, &cj);
        if (want_grad) grad_pairs(dp, ps, cs, mp, rel, bcast, cj, valid);
      }
  }
  vstore4(select((float4)(0.0f), loss * wk * inv_n, kvalid), 0, part);
  if (!want_grad) return;
  const float4 raw = vload4(0, ns);
  /* f_k / |f_k| is taken as 0 for a zero vector (a subgradient of |f|). */
  const float4 corr = select((float4)(0.0f), s / (nks * raw), (int4)(exact ? -1 : 0) & isgreater(raw, (float4)(0.0f)));
  const float coef = 2.0f * inv_n;
  for (int ch = 0; ch < cs; ch++)
    vstore4(coef * (vload4(0, dp + ch * mp) / nks - corr * vload4(0, ps + ch * mp)), 0, dp + ch * mp);
}

/* Loss terms only; one work-item per (n, node quad). */
__kernel void pair_affinity_fwd(const int quads, const int m, const int mp, const int hn, const int wn, const int r,
                                const float inv_n, CTENSOR(ps), const int cs, CTENSOR(pt), const int ct,
                                CTENSOR(ns), CTENSOR(nt), TENSOR(part)) {
  const int g = get_global_id(0);
  if (g >= quads) return;
  const int n = g / (mp / 4), k0 = (g % (mp / 4)) * 4;
  affinity_quad(k0, m, mp, hn, wn, r, 0, inv_n, AT(ps) + n * cs * mp + k0, cs, AT(pt) + n * ct * mp + k0, ct,
                AT(ns) + n * mp + k0, AT(nt) + n * mp + k0, AT(part) + n * mp + k0, AT(part), 0);
}

/* Loss terms and dL/d(pooled student) into dp (N, Cs, MP), overwritten. */
__kernel void pair_affinity_bwd_student(const int quads, const int m, const int mp, const int hn, const int wn,
                                        const int r, const int exact, const float inv_n, CTENSOR(ps), const int cs,
                                        CTENSOR(pt), const int ct, CTENSOR(ns), CTENSOR(nt), TENSOR(part),
                                        TENSOR(dp)) {
  const int g = get_global_id(0);
  if (g >= quads) return;
  const int n = g / (mp / 4), k0 = (g % (mp / 4)) * 4;
  affinity_quad(k0, m, mp, hn, wn, r, exact, inv_n, AT(ps) + n * cs * mp + k0, cs, AT(pt) + n * ct * mp + k0, ct,
                AT(ns) + n * mp + k0, AT(nt) + n * mp + k0, AT(part) + n * mp + k0, AT(dp) + n * cs * mp + k0, 1);
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

/* dx += scale * dL/dx through max pooling; 2-D launch (node, plane). Only
 * the node's recorded maximum receives gradient, and patches do not overlap,
 * so each node owns the one pixel it writes: no race, and dx is touched only
 * there instead of being read and written whole. */
__kernel void pair_pool_max_bwd_x(const int m, const int mp, const int planes, const int hw, const float scale,
                                  CTENSOR(dp), __global const int *arg_base, const int arg_off, TENSOR(dx)) {
  const int node = get_global_id(0), plane = get_global_id(1);
  if (node >= m || plane >= planes) return;
  const int pg = plane * mp + node;
  AT(dx)[plane * hw + arg_base[arg_off + pg]] += scale * AT(dp)[pg];
}

/* dx += scale * dL/dx through average pooling; 2-D launch (x, plane * h + y):
 * every pixel gets its node's gradient divided by the pixels in the patch. */
__kernel void pair_pool_avg_bwd_x(const int rows, const int h, const int w, const int kh, const int kw, const int wn,
                                  const int mp, const float scale, CTENSOR(dp), TENSOR(dx)) {
  const int x = get_global_id(0), row = get_global_id(1);
  if (x >= w || row >= rows) return;
  const int plane = row / h, y = row % h;
  const int ny = y / kh, nx = x / kw;
  const int y0 = ny * kh, x0 = nx * kw;
  const int count = (min(y0 + kh, h) - y0) * (min(x0 + kw, w) - x0);
  AT(dx)[row * w + x] += scale * AT(dp)[plane * mp + ny * wn + nx] / (float)count;
}
