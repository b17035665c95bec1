/* Plain-C reference of the pair-wise distillation loss (double accumulation).
 * Written independently of the device's gather-form gradient: every pair
 * (i, j) scatters its gradient into both f_i and f_j, and the pooling
 * backward scatters each node's gradient into its patch. */
#include <assert.h>
#include <math.h>
#include <stdlib.h>

#include "skd/loss/pair.h"

#define PAIR_EPS 1e-8

/* Pools one sample's x (c, h, w) into p (c, m); arg gets the first maximum's
 * plane index (max pooling). */
static void pool_sample(const skd_pair_grid *g, int use_max, const float *x, int c, int h, int w, double *p, int *arg) {
  for (int ch = 0; ch < c; ch++)
    for (int node = 0; node < g->m; node++) {
      int y0 = (node / g->wn) * g->kh, x0 = (node % g->wn) * g->kw;
      int y1 = y0 + g->kh < h ? y0 + g->kh : h, x1 = x0 + g->kw < w ? x0 + g->kw : w;
      const float *plane = x + (size_t)ch * h * w;
      double acc = use_max ? plane[y0 * w + x0] : 0.0;
      int best = y0 * w + x0;
      for (int y = y0; y < y1; y++)
        for (int xx = x0; xx < x1; xx++) {
          double v = plane[y * w + xx];
          if (!use_max) {
            acc += v;
          } else if (v > acc || isnan(v)) {
            acc = v;
            best = y * w + xx;
          }
        }
      p[(size_t)ch * g->m + node] = use_max ? acc : acc / ((y1 - y0) * (x1 - x0));
      arg[(size_t)ch * g->m + node] = best;
    }
}

static void node_norms(const double *p, int c, int m, double *raw) {
  for (int node = 0; node < m; node++) {
    double s = 0.0;
    for (int ch = 0; ch < c; ch++) s += p[(size_t)ch * m + node] * p[(size_t)ch * m + node];
    raw[node] = sqrt(s);
  }
}

static double cosine(const double *p, int c, int m, const double *raw, int i, int j) {
  double dot = 0.0;
  for (int ch = 0; ch < c; ch++) dot += p[(size_t)ch * m + i] * p[(size_t)ch * m + j];
  return dot / ((raw[i] + PAIR_EPS) * (raw[j] + PAIR_EPS));
}

/* g += coef * da(f_u, f_v)/df_u (u the differentiated argument). */
static void add_partial(const double *p, int c, int m, const double *raw, int exact, int u, int v, double a,
                        double coef, double *g) {
  double nu = raw[u] + PAIR_EPS, nv = raw[v] + PAIR_EPS;
  double corr = exact && raw[u] > 0.0 ? a / (nu * raw[u]) : 0.0;
  for (int ch = 0; ch < c; ch++)
    g[(size_t)ch * m + u] += coef * (p[(size_t)ch * m + v] / (nu * nv) - corr * p[(size_t)ch * m + u]);
}

static void window(const skd_pair_grid *g, int r, int node, int *y0, int *y1, int *x0, int *x1) {
  int y = node / g->wn, x = node % g->wn;
  if (r < 0) {
    *y0 = 0, *y1 = g->hn - 1, *x0 = 0, *x1 = g->wn - 1;
    return;
  }
  *y0 = y - r < 0 ? 0 : y - r;
  *y1 = y + r > g->hn - 1 ? g->hn - 1 : y + r;
  *x0 = x - r < 0 ? 0 : x - r;
  *x1 = x + r > g->wn - 1 ? g->wn - 1 : x + r;
}

double skd_ref_pair_loss(const skd_pair_loss_config *cfg, int n, int h, int w, const float *student, int cs,
                         const float *teacher, int ct, float grad_scale, float *dstudent) {
  skd_pair_grid g;
  skd_status st = skd_pair_node_grid(cfg, h, w, &g);
  assert(st == SKD_OK);
  (void)st;
  const int m = g.m, use_max = cfg->pool == SKD_PAIR_POOL_MAX, exact = cfg->norm == SKD_PAIR_NORM_EXACT;
  /* A huge radius is the global window; keep y + r from overflowing. */
  const int r = cfg->window_radius < 0 ? -1 : (cfg->window_radius > h + w ? h + w : cfg->window_radius);
  double *ps = malloc(sizeof(double) * ((size_t)cs * m * 2 + (size_t)ct * m + 2 * (size_t)m));
  int *arg = malloc(sizeof(int) * ((size_t)(cs > ct ? cs : ct) * m));
  assert(ps && arg);
  double *gs = ps + (size_t)cs * m, *pt = gs + (size_t)cs * m, *rs = pt + (size_t)ct * m, *rt = rs + m;
  double loss = 0.0;
  for (int b = 0; b < n; b++) {
    const float *xs = student + (size_t)b * cs * h * w, *xt = teacher + (size_t)b * ct * h * w;
    pool_sample(&g, use_max, xt, ct, h, w, pt, arg);
    pool_sample(&g, use_max, xs, cs, h, w, ps, arg);
    node_norms(ps, cs, m, rs);
    node_norms(pt, ct, m, rt);
    for (size_t i = 0; i < (size_t)cs * m; i++) gs[i] = 0.0;
    for (int i = 0; i < m; i++) {
      int y0, y1, x0, x1;
      window(&g, r, i, &y0, &y1, &x0, &x1);
      double wi = 1.0 / ((double)m * (double)((y1 - y0 + 1) * (x1 - x0 + 1)) * (double)n);
      for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) {
          int j = y * g.wn + x;
          double as = cosine(ps, cs, m, rs, i, j);
          double d = as - cosine(pt, ct, m, rt, i, j);
          loss += wi * d * d;
          if (!dstudent) continue;
          /* dL/da_ij = 2 w_i d: into f_i (first slot) and f_j (second). */
          add_partial(ps, cs, m, rs, exact, i, j, as, 2.0 * wi * d, gs);
          add_partial(ps, cs, m, rs, exact, j, i, as, 2.0 * wi * d, gs);
        }
    }
    if (!dstudent) continue;
    float *dx = dstudent + (size_t)b * cs * h * w;
    for (int ch = 0; ch < cs; ch++)
      for (int node = 0; node < m; node++) {
        double gv = gs[(size_t)ch * m + node] * grad_scale;
        float *plane = dx + (size_t)ch * h * w;
        if (use_max) {
          plane[arg[(size_t)ch * m + node]] += (float)gv;
          continue;
        }
        int y0 = (node / g.wn) * g.kh, x0 = (node % g.wn) * g.kw;
        int y1 = y0 + g.kh < h ? y0 + g.kh : h, x1 = x0 + g.kw < w ? x0 + g.kw : w;
        for (int y = y0; y < y1; y++)
          for (int x = x0; x < x1; x++) plane[y * w + x] += (float)(gv / ((y1 - y0) * (x1 - x0)));
      }
  }
  free(ps);
  free(arg);
  return loss;
}
