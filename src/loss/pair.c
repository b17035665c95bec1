/* Pair-wise distillation loss on the device (cl/affinity.cl); the maths and
 * the conventions are described in include/skd/loss/pair.h. */
#include "skd/loss/pair.h"

#include <limits.h>
#include <math.h>

void skd_pair_loss_config_default(skd_pair_loss_config *cfg) {
  cfg->node_size = 0;
  cfg->pool_scale = 0.5;
  cfg->pool = SKD_PAIR_POOL_MAX;
  cfg->window_radius = -1;
  cfg->norm = SKD_PAIR_NORM_EXACT;
}

void skd_pair_loss_config_reference(skd_pair_loss_config *cfg) {
  skd_pair_loss_config_default(cfg);
  cfg->norm = SKD_PAIR_NORM_DETACHED;
}

/* Python's int(size * scale) in double, at least 1. */
static int scaled_kernel(int size, double scale) {
  double k = floor((double)size * scale);
  return k < 1.0 ? 1 : (int)k;
}

skd_status skd_pair_node_grid(const skd_pair_loss_config *cfg, int h, int w, skd_pair_grid *out) {
  if (h <= 0 || w <= 0) return skd_error(SKD_EINVAL, "pair_loss: feature map %d x %d is empty", h, w);
  if (cfg->pool != SKD_PAIR_POOL_MAX && cfg->pool != SKD_PAIR_POOL_AVG)
    return skd_error(SKD_EINVAL, "pair_loss: pool %d is neither max (0) nor avg (1)", (int)cfg->pool);
  if (cfg->norm != SKD_PAIR_NORM_EXACT && cfg->norm != SKD_PAIR_NORM_DETACHED)
    return skd_error(SKD_EINVAL, "pair_loss: norm %d is neither exact (0) nor detached (1)", (int)cfg->norm);
  if (cfg->node_size < 0) return skd_error(SKD_EINVAL, "pair_loss: node_size %d is negative", cfg->node_size);
  if (cfg->node_size > 0) {
    out->kh = out->kw = cfg->node_size;
  } else {
    if (!(cfg->pool_scale > 0.0 && cfg->pool_scale <= 1.0))
      return skd_error(SKD_EINVAL, "pair_loss: pool_scale %g is not in (0, 1] (node_size 0 uses it)", cfg->pool_scale);
    out->kh = scaled_kernel(h, cfg->pool_scale);
    out->kw = scaled_kernel(w, cfg->pool_scale);
  }
  /* A patch larger than the map is one partial patch: one node row/column. */
  out->hn = (h - 1) / out->kh + 1;
  out->wn = (w - 1) / out->kw + 1;
  out->m = out->hn * out->wn;
  return SKD_OK;
}

/* Work-groups of the first pass of the loss total (at most). */
#define REDUCE_GROUPS 64

/* Nodes padded to a multiple of 4: the kernels hold 4 nodes as a float4.
 * The channel stride is kept off multiples of 64 floats: a power-of-two
 * stride (M = 1024 -> 4 KiB) puts every channel of a node in one cache set
 * of a CPU's L1, and the per-node channel loops then miss on every load. */
static int padded_nodes(int m) {
  int mp = (m + 3) / 4 * 4;
  return mp % 64 == 0 ? mp + 4 : mp;
}

/* The window radius the kernels get: -1 global; a radius reaching past the
 * grid is the global window, and clamping keeps the kernels' index
 * arithmetic away from overflow. */
static int kernel_radius(const skd_pair_loss_config *cfg, const skd_pair_grid *g) {
  int big = g->hn > g->wn ? g->hn : g->wn;
  return cfg->window_radius < 0 ? -1 : (cfg->window_radius > big ? big : cfg->window_radius);
}

/* Workspace areas, offsets in 4-byte elements; arg holds ints; red holds
 * the first reduction pass's group sums. Node areas are (N, C, MP). A local
 * window's shifted float4 reads reach up to r * wn + r + 3 floats before or
 * after an area (lanes outside the grid, dropped): the guard pads keep those
 * reads inside the buffer. */
struct layout {
  size_t mp, pad, ps, pt, ns, nt, part, red, arg, dp, total;
};

static struct layout plan(const skd_pair_loss_config *cfg, const skd_pair_grid *g, int n, int cs, int ct,
                          int with_grad) {
  struct layout l;
  int r = kernel_radius(cfg, g);
  l.mp = (size_t)padded_nodes(g->m);
  l.pad = ((r > 0 ? (size_t)r * (size_t)g->wn + (size_t)r : 0) + 4 + 3) / 4 * 4;
  size_t nm = (size_t)n * l.mp;
  l.ps = l.pad;
  l.pt = l.ps + nm * (size_t)cs;
  l.ns = l.pt + nm * (size_t)ct;
  l.nt = l.ns + nm;
  l.part = l.nt + nm;
  l.red = l.part + nm;
  l.arg = l.red + REDUCE_GROUPS;
  l.dp = l.arg + (with_grad && cfg->pool == SKD_PAIR_POOL_MAX ? nm * (size_t)cs : 0);
  l.total = l.dp + (with_grad ? nm * (size_t)cs : 0) + l.pad;
  return l;
}

static skd_status check_inputs(const skd_pair_loss_config *cfg, const skd_tensor *s, const skd_tensor *t,
                               const skd_tensor *ds, const skd_tensor *loss, skd_pair_grid *grid) {
  if (s->n <= 0 || s->c <= 0 || t->c <= 0)
    return skd_error(SKD_EINVAL, "pair_loss: student (%d, %d, %d, %d) and teacher (%d, %d, %d, %d) must not be empty",
                     s->n, s->c, s->h, s->w, t->n, t->c, t->h, t->w);
  if (t->n != s->n || t->h != s->h || t->w != s->w)
    return skd_error(SKD_EINVAL,
                     "pair_loss: teacher_feat must match the student's N, H', W': expected (%d, *, %d, %d), "
                     "got (%d, %d, %d, %d)",
                     s->n, s->h, s->w, t->n, t->c, t->h, t->w);
  if (ds) {
    skd_status st = skd_tensor_expect_same(ds, s, "pair_loss: dstudent");
    if (st != SKD_OK) return st;
  }
  if (skd_tensor_numel(loss) != 1)
    return skd_error(SKD_EINVAL, "pair_loss: loss_out must have 1 element, got (%d, %d, %d, %d)", loss->n, loss->c,
                     loss->h, loss->w);
  size_t big = skd_tensor_numel(s) > skd_tensor_numel(t) ? skd_tensor_numel(s) : skd_tensor_numel(t);
  if (big > (size_t)INT_MAX / 2)
    return skd_error(SKD_EINVAL, "pair_loss: %zu elements exceed the kernels' int indexing", big);
  return skd_pair_node_grid(cfg, s->h, s->w, grid);
}

size_t skd_pair_loss_workspace_bytes(const skd_pair_loss_config *cfg, const skd_tensor *student_feat,
                                     const skd_tensor *teacher_feat, int with_grad) {
  skd_pair_loss_config def;
  if (!cfg) {
    skd_pair_loss_config_default(&def);
    cfg = &def;
  }
  skd_pair_grid grid;
  skd_tensor one = {NULL, 0, 1, 1, 1, 1};
  if (check_inputs(cfg, student_feat, teacher_feat, NULL, &one, &grid) != SKD_OK) return 0;
  return plan(cfg, &grid, student_feat->n, student_feat->c, teacher_feat->c, with_grad).total * 4;
}

/* Pools x (N, C, h, w) into p (N, C, MP) at offset p_off of the workspace:
 * patches at least 4 wide by rows of float4 (one work-item per node), narrow
 * ones with 4 nodes per float4 (several node quads per work-item on CPUs,
 * whose work-items have a fixed cost). */
static skd_status pool(skd_context *ctx, const skd_pair_grid *g, int mp, int use_max, const skd_tensor *x, cl_mem ws,
                       size_t p_off, size_t arg_off, int want_arg) {
  int narrow = g->kw < 4;
  skd_kernel *k;
  skd_status st = skd_kernel_get(ctx, "affinity", narrow ? "pair_pool_narrow_fwd" : "pair_pool_fwd", &k);
  if (st != SKD_OK) return st;
  int planes = x->n * x->c;
  skd_args a = skd_args_begin(k);
  size_t global[2];
  if (narrow) {
    int quads = (g->wn + 3) / 4;
    int per = ctx->info.is_gpu ? 1 : 8;
    int chunks = (quads + per - 1) / per;
    skd_arg_int(&a, chunks);
    skd_arg_int(&a, per);
    skd_arg_int(&a, planes * g->hn);
    skd_arg_int(&a, mp);
    skd_arg_int(&a, x->h);
    skd_arg_int(&a, x->w);
    skd_arg_int(&a, g->kh);
    skd_arg_int(&a, g->kw);
    skd_arg_int(&a, g->hn);
    skd_arg_int(&a, g->wn);
    global[0] = (size_t)chunks;
    global[1] = (size_t)planes * (size_t)g->hn;
  } else {
    skd_arg_int(&a, g->m);
    skd_arg_int(&a, mp);
    skd_arg_int(&a, planes);
    skd_arg_int(&a, x->h);
    skd_arg_int(&a, x->w);
    skd_arg_int(&a, g->kh);
    skd_arg_int(&a, g->kw);
    skd_arg_int(&a, g->wn);
    global[0] = (size_t)g->m;
    global[1] = (size_t)planes;
  }
  skd_arg_int(&a, use_max);
  skd_arg_tensor(&a, x);
  skd_arg_mem(&a, ws);
  skd_arg_int(&a, (int)p_off);
  skd_arg_mem(&a, ws);
  skd_arg_int(&a, (int)arg_off);
  skd_arg_int(&a, want_arg);
  /* narrow: explicit groups along the rows (the long dimension); PoCL's own
   * pick for a (1, large) grid cost 1.5-2x. Wide: the driver's pick (groups
   * of (1, 64) there ran 5x slower on PoCL). */
  size_t local[2] = {1, skd_context_wg(ctx, 64)};
  return skd_launch(ctx, &a, 2, global, narrow ? local : NULL);
}

static skd_status norms(skd_context *ctx, int n, int c, int mp, cl_mem ws, size_t p_off, size_t norm_off) {
  skd_kernel *k;
  skd_status st = skd_kernel_get(ctx, "affinity", "pair_norm_fwd", &k);
  if (st != SKD_OK) return st;
  int quads = n * mp / 4;
  skd_args a = skd_args_begin(k);
  skd_arg_int(&a, quads);
  skd_arg_int(&a, c);
  skd_arg_int(&a, mp);
  skd_arg_mem(&a, ws);
  skd_arg_int(&a, (int)p_off);
  skd_arg_mem(&a, ws);
  skd_arg_int(&a, (int)norm_off);
  return skd_launch_1d(ctx, &a, (size_t)quads, 64);
}

static skd_status affinity(skd_context *ctx, const skd_pair_loss_config *cfg, const skd_pair_grid *g, int n, int cs,
                           int ct, int radius, cl_mem ws, const struct layout *l, int want_grad) {
  skd_kernel *k;
  skd_status st = skd_kernel_get(ctx, "affinity", want_grad ? "pair_affinity_bwd_student" : "pair_affinity_fwd", &k);
  if (st != SKD_OK) return st;
  int quads = n * (int)l->mp / 4;
  skd_args a = skd_args_begin(k);
  skd_arg_int(&a, quads);
  skd_arg_int(&a, g->m);
  skd_arg_int(&a, (int)l->mp);
  skd_arg_int(&a, g->hn);
  skd_arg_int(&a, g->wn);
  skd_arg_int(&a, radius);
  if (want_grad) skd_arg_int(&a, cfg->norm == SKD_PAIR_NORM_EXACT);
  skd_arg_float(&a, 1.0f / (float)n);
  size_t areas[5] = {l->ps, l->pt, l->ns, l->nt, l->part};
  for (int i = 0; i < 5; i++) {
    skd_arg_mem(&a, ws);
    skd_arg_int(&a, (int)areas[i]);
    if (i == 0) skd_arg_int(&a, cs);
    if (i == 1) skd_arg_int(&a, ct);
  }
  if (want_grad) {
    skd_arg_mem(&a, ws);
    skd_arg_int(&a, (int)l->dp);
  }
  /* A quad's work grows with the window: small groups spread it. */
  return skd_launch_1d(ctx, &a, (size_t)quads, 16);
}

/* out = the sum of count partials, deterministic: contiguous chunks summed by
 * up to REDUCE_GROUPS work-groups, then their sums by one (a large count no
 * longer runs through a single work-group). */
static skd_status reduce(skd_context *ctx, int count, cl_mem ws, size_t part_off, size_t red_off,
                         const skd_tensor *out) {
  skd_kernel *kp, *kf;
  skd_status st = skd_kernel_get(ctx, "affinity", "pair_reduce_partial", &kp);
  if (st == SKD_OK) st = skd_kernel_get(ctx, "affinity", "pair_reduce_fwd", &kf);
  if (st != SKD_OK) return st;
  size_t wg = skd_context_wg(ctx, 256);
  int groups = (count + 2047) / 2048;
  if (groups > REDUCE_GROUPS) groups = REDUCE_GROUPS;
  size_t in_off = part_off;
  if (groups > 1) {
    int chunk = (count + groups - 1) / groups;
    skd_args a = skd_args_begin(kp);
    skd_arg_int(&a, count);
    skd_arg_int(&a, chunk);
    skd_arg_mem(&a, ws);
    skd_arg_int(&a, (int)part_off);
    skd_arg_mem(&a, ws);
    skd_arg_int(&a, (int)red_off);
    skd_arg_local(&a, wg * sizeof(float));
    size_t global = (size_t)groups * wg;
    st = skd_launch(ctx, &a, 1, &global, &wg);
    if (st != SKD_OK) return st;
    in_off = red_off;
    count = groups;
  }
  skd_args a = skd_args_begin(kf);
  skd_arg_int(&a, count);
  skd_arg_mem(&a, ws);
  skd_arg_int(&a, (int)in_off);
  skd_arg_tensor(&a, out);
  skd_arg_local(&a, wg * sizeof(float));
  return skd_launch(ctx, &a, 1, &wg, &wg);
}

static skd_status pool_backward(skd_context *ctx, const skd_pair_grid *g, int use_max, float scale, cl_mem ws,
                                const struct layout *l, const skd_tensor *dx) {
  skd_kernel *k;
  skd_status st = skd_kernel_get(ctx, "affinity", use_max ? "pair_pool_max_bwd_x" : "pair_pool_avg_bwd_x", &k);
  if (st != SKD_OK) return st;
  int planes = dx->n * dx->c;
  skd_args a = skd_args_begin(k);
  if (use_max) {
    skd_arg_int(&a, g->m);
    skd_arg_int(&a, (int)l->mp);
    skd_arg_int(&a, planes);
    skd_arg_int(&a, dx->h * dx->w);
    skd_arg_float(&a, scale);
    skd_arg_mem(&a, ws);
    skd_arg_int(&a, (int)l->dp);
    skd_arg_mem(&a, ws);
    skd_arg_int(&a, (int)l->arg);
    skd_arg_tensor(&a, dx);
    size_t global[2] = {(size_t)g->m, (size_t)planes};
    return skd_launch(ctx, &a, 2, global, NULL);
  }
  int rows = planes * dx->h;
  skd_arg_int(&a, rows);
  skd_arg_int(&a, dx->h);
  skd_arg_int(&a, dx->w);
  skd_arg_int(&a, g->kh);
  skd_arg_int(&a, g->kw);
  skd_arg_int(&a, g->wn);
  skd_arg_int(&a, (int)l->mp);
  skd_arg_float(&a, scale);
  skd_arg_mem(&a, ws);
  skd_arg_int(&a, (int)l->dp);
  skd_arg_tensor(&a, dx);
  size_t global[2] = {(size_t)dx->w, (size_t)rows};
  return skd_launch(ctx, &a, 2, global, NULL);
}

skd_status skd_pair_loss(skd_context *ctx, const skd_pair_loss_config *cfg, const skd_tensor *student_feat,
                         const skd_tensor *teacher_feat, float grad_scale, const skd_tensor *dstudent,
                         const skd_tensor *loss_out) {
  skd_pair_loss_config def;
  if (!cfg) {
    skd_pair_loss_config_default(&def);
    cfg = &def;
  }
  skd_pair_grid g;
  skd_status st = check_inputs(cfg, student_feat, teacher_feat, dstudent, loss_out, &g);
  if (st != SKD_OK) return st;
  const int n = student_feat->n, cs = student_feat->c, ct = teacher_feat->c;
  const int want_grad = dstudent != NULL;
  const int use_max = cfg->pool == SKD_PAIR_POOL_MAX;
  struct layout l = plan(cfg, &g, n, cs, ct, want_grad);
  if (l.total > (size_t)INT_MAX)
    return skd_error(SKD_EINVAL, "pair_loss: workspace of %zu floats exceeds the kernels' int indexing", l.total);
  int radius = kernel_radius(cfg, &g);
  int mp = (int)l.mp;

  cl_mem ws;
  st = skd_workspace_get(ctx, l.total * 4, &ws);
  if (st == SKD_OK) st = pool(ctx, &g, mp, use_max, student_feat, ws, l.ps, l.arg, use_max && want_grad);
  if (st == SKD_OK) st = pool(ctx, &g, mp, use_max, teacher_feat, ws, l.pt, l.arg, 0);
  if (st == SKD_OK) st = norms(ctx, n, cs, mp, ws, l.ps, l.ns);
  if (st == SKD_OK) st = norms(ctx, n, ct, mp, ws, l.pt, l.nt);
  if (st == SKD_OK) st = affinity(ctx, cfg, &g, n, cs, ct, radius, ws, &l, want_grad);
  /* the pad lanes' terms are written as 0 */
  if (st == SKD_OK) st = reduce(ctx, n * mp, ws, l.part, l.red, loss_out);
  if (st == SKD_OK && want_grad) st = pool_backward(ctx, &g, use_max, grad_scale, ws, &l, dstudent);
  return st;
}
