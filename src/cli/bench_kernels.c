/* skd-cl bench --kernels: the device's copy bandwidth, then the memory-bound
 * kernel families (softmax-KL, pair-wise affinity, the attention's row
 * softmax, batch norm) on large inputs through their public op functions,
 * as GB/s and as a share of the copy bandwidth.
 *
 * Timing: every run is one op call followed by clFinish, timed on the host
 * (so launch overhead and the op's small extra kernels are included); the
 * median of `runs` runs after `warmup` left out. Bytes are the minimum an op
 * must move: each input read once, each output written once (an accumulated
 * gradient is read and written); the formula is given beside every case.
 * Data are random; nothing is checked here (the op tests do that).
 *
 * The peak FMA rate (bench_peak_fma) is the yardstick for compute-bound work:
 * rows that report GFLOP/s also show it as a share of that peak. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"

typedef skd_status (*run_fn)(skd_context *ctx, void *state);

struct row {
  char name[48];
  char shape[64];
  double ms, bytes, flops; /* flops 0: not reported */
  const char *limit;       /* what bounds it, when worth saying */
};

struct table {
  struct row rows[40];
  int count;
  int runs, warmup;
  double peak_gflops; /* bench_peak_fma's; 0: not measured */
  int peak_width;     /* its winning vector width */
};

struct sizes {
  size_t copy_floats;
  int kl_n, kl_c, kl_h, kl_w;
  int att_b, att_p;
  int bn_n, bn_c, bn_h, bn_w;
  int pair_n, pair_cs, pair_ct, pair_h, pair_w;
  int pair_node, pair_radius; /* the local-window case */
};

/* large: what the brief and the method use (softmax-KL at the paper's logit
 * grid, batch 8; attention over a 64 x 64 map; the paper's PSP features at
 * crop 512); small: a quick smoke run (the ctest entry). */
static const struct sizes size_table[] = {
    {(size_t)64 << 20, 8, 19, 128, 128, 2, 64 * 64, 8, 64, 128, 128, 8, 128, 512, 64, 64, 2, 3},
    {(size_t)1 << 18, 2, 19, 16, 16, 1, 16 * 16, 2, 8, 16, 16, 2, 16, 32, 8, 8, 2, 1},
};

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return 1e3 * (double)ts.tv_sec + 1e-6 * (double)ts.tv_nsec;
}

static int compare_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Median ms of `runs` calls of run (each followed by a finish) after
 * `warmup` left out. */
static skd_status measure(skd_context *ctx, int runs, int warmup, run_fn run, void *state, double *ms) {
  double v[1000];
  if (runs > 1000) runs = 1000;
  for (int i = 0; i < warmup + runs; i++) {
    double t0 = now_ms();
    skd_status st = run(ctx, state);
    if (st == SKD_OK) st = skd_context_finish(ctx);
    if (st != SKD_OK) return st;
    if (i >= warmup) v[i - warmup] = now_ms() - t0;
  }
  qsort(v, (size_t)runs, sizeof *v, compare_double);
  *ms = runs % 2 ? v[runs / 2] : 0.5 * (v[runs / 2 - 1] + v[runs / 2]);
  return SKD_OK;
}

static skd_status add_row(skd_context *ctx, struct table *tab, const char *name, const char *shape, double bytes,
                          double flops, const char *limit, run_fn run, void *state) {
  if (tab->count >= (int)(sizeof tab->rows / sizeof tab->rows[0]))
    return skd_error(SKD_EINVAL, "bench --kernels: too many rows");
  struct row *r = &tab->rows[tab->count];
  memset(r, 0, sizeof *r);
  snprintf(r->name, sizeof r->name, "%s", name);
  snprintf(r->shape, sizeof r->shape, "%s", shape);
  r->bytes = bytes;
  r->flops = flops;
  r->limit = limit;
  skd_status st = measure(ctx, tab->runs, tab->warmup, run, state, &r->ms);
  if (st == SKD_OK) tab->count++;
  return st;
}

/* Uniform random floats in [lo, hi) from a fixed LCG (reproducible). */
static skd_status upload_random(skd_context *ctx, const skd_tensor *t, float lo, float hi, unsigned seed) {
  size_t n = skd_tensor_numel(t);
  float *h = malloc(n * sizeof *h);
  if (!h) return skd_error(SKD_ENOMEM, "bench --kernels: out of host memory (%zu floats)", n);
  unsigned s = seed * 2654435761u + 1u;
  for (size_t i = 0; i < n; i++) {
    s = s * 1664525u + 1013904223u;
    h[i] = lo + (hi - lo) * (float)(s >> 8) * (1.0f / 16777216.0f);
  }
  skd_status st = skd_tensor_upload(ctx, t, h);
  free(h);
  return st;
}

static skd_status alloc_random(skd_context *ctx, skd_tensor *t, int n, int c, int h, int w, float lo, float hi,
                               unsigned seed) {
  skd_status st = skd_tensor_alloc(ctx, t, n, c, h, w);
  if (st == SKD_OK) st = upload_random(ctx, t, lo, hi, seed);
  return st;
}

/* ---- copy bandwidth ---- */

struct copy_state {
  cl_mem src, dst;
  size_t floats;
  skd_kernel *k1, *k4;
};

static skd_status run_copy_f1(skd_context *ctx, void *p) {
  struct copy_state *s = p;
  skd_args a = skd_args_begin(s->k1);
  skd_arg_int(&a, (int)s->floats);
  skd_arg_mem(&a, s->src);
  skd_arg_mem(&a, s->dst);
  return skd_launch_1d(ctx, &a, s->floats, 256);
}

static skd_status run_copy_f4(skd_context *ctx, void *p) {
  struct copy_state *s = p;
  skd_args a = skd_args_begin(s->k4);
  skd_arg_int(&a, (int)(s->floats / 4));
  skd_arg_mem(&a, s->src);
  skd_arg_mem(&a, s->dst);
  return skd_launch_1d(ctx, &a, s->floats / 4, 256);
}

static skd_status run_copy_buffer(skd_context *ctx, void *p) {
  struct copy_state *s = p;
  return skd_cl_check(clEnqueueCopyBuffer(ctx->queue, s->src, s->dst, 0, 0, s->floats * 4, 0, NULL, NULL),
                      "bench: clEnqueueCopyBuffer");
}

static skd_status bench_copy(skd_context *ctx, struct table *tab, const struct sizes *sz) {
  struct copy_state s = {NULL, NULL, sz->copy_floats, NULL, NULL};
  size_t bytes = s.floats * 4;
  char shape[64];
  snprintf(shape, sizeof shape, "%.0f MiB", (double)bytes / (1 << 20));
  skd_status st = skd_buffer_create(ctx, bytes, "bench copy source", &s.src);
  if (st == SKD_OK) st = skd_buffer_create(ctx, bytes, "bench copy destination", &s.dst);
  if (st == SKD_OK) {
    float zero = 0.0f;
    st = skd_cl_check(clEnqueueFillBuffer(ctx->queue, s.src, &zero, sizeof zero, 0, bytes, 0, NULL, NULL),
                      "bench: clEnqueueFillBuffer");
  }
  if (st == SKD_OK) st = skd_kernel_get(ctx, "bench", "bench_copy_f1", &s.k1);
  if (st == SKD_OK) st = skd_kernel_get(ctx, "bench", "bench_copy_f4", &s.k4);
  /* bytes: read n + write n */
  if (st == SKD_OK) st = add_row(ctx, tab, "copy kernel (float)", shape, 2.0 * bytes, 0, NULL, run_copy_f1, &s);
  if (st == SKD_OK) st = add_row(ctx, tab, "copy kernel (float4)", shape, 2.0 * bytes, 0, NULL, run_copy_f4, &s);
  if (st == SKD_OK) st = add_row(ctx, tab, "clEnqueueCopyBuffer", shape, 2.0 * bytes, 0, NULL, run_copy_buffer, &s);
  if (s.src) clReleaseMemObject(s.src);
  if (s.dst) clReleaseMemObject(s.dst);
  return st;
}

/* ---- peak FMA throughput ---- */

/* Work of one trip of the kernels' loop in cl/bench.cl: 32 fma per vector
 * lane, 2 flops each. */
#define PEAK_FLOPS_PER_TRIP_LANE (32 * 2)

struct peak_state {
  skd_kernel *k;
  cl_mem out;
  size_t items;
  int iterations;
};

static skd_status run_peak(skd_context *ctx, void *p) {
  struct peak_state *s = p;
  skd_args a = skd_args_begin(s->k);
  skd_arg_int(&a, s->iterations);
  skd_arg_float(&a, 0.999f); /* mul */
  skd_arg_float(&a, 0.001f); /* add: the chains settle at add / (1 - mul) = 1 */
  skd_arg_float(&a, -1.0f);  /* never: the chains stay positive */
  skd_arg_mem(&a, s->out);
  return skd_launch_1d(ctx, &a, s->items, 0);
}

/* Doubles s->iterations until one run takes target_ms (host timing, so the
 * launch overhead becomes small beside it). */
static skd_status calibrate_peak(skd_context *ctx, struct peak_state *s, double target_ms) {
  double ms = 0;
  /* The first launch may compile the kernel for its work-group size. */
  skd_status st = measure(ctx, 1, 1, run_peak, s, &ms);
  while (st == SKD_OK && ms < target_ms && s->iterations < (1 << 24)) {
    s->iterations *= 2;
    st = measure(ctx, 1, 0, run_peak, s, &ms);
  }
  return st;
}

skd_status bench_peak_fma(skd_context *ctx, double target_ms, int runs, int warmup, double *gflops,
                          int *vector_width) {
  static const char *const kernels[] = {"bench_peak_fma_f4", "bench_peak_fma_f8", "bench_peak_fma_f16"};
  static const int widths[] = {4, 8, 16};
  /* 1024 work-items per compute unit: enough warps or wavefronts to keep a
   * GPU's units issuing; a CPU device splits them over its cores. */
  unsigned units = ctx->info.compute_units ? ctx->info.compute_units : 1;
  struct peak_state s = {NULL, NULL, (size_t)units * 1024, 16};
  *gflops = 0;
  if (vector_width) *vector_width = 0;
  skd_status st = skd_buffer_create(ctx, s.items * sizeof(float), "bench peak FMA output", &s.out);
  for (int v = 0; v < 3 && st == SKD_OK; v++) {
    double ms = 0;
    s.iterations = 16;
    st = skd_kernel_get(ctx, "bench", kernels[v], &s.k);
    if (st == SKD_OK) st = calibrate_peak(ctx, &s, target_ms);
    if (st == SKD_OK) st = measure(ctx, runs, warmup, run_peak, &s, &ms);
    double rate = ms > 0 ? (double)s.items * s.iterations * widths[v] * PEAK_FLOPS_PER_TRIP_LANE / (ms * 1e6) : 0;
    if (st == SKD_OK && rate > *gflops) {
      *gflops = rate;
      if (vector_width) *vector_width = widths[v];
    }
  }
  if (s.out) clReleaseMemObject(s.out);
  return st;
}

/* ---- pixel loss (softmax-KL) ---- */

struct kl_state {
  skd_tensor s, t, ds, loss;
};

static skd_status run_kl_value(skd_context *ctx, void *p) {
  struct kl_state *k = p;
  return skd_pixel_loss(ctx, NULL, &k->s, &k->t, NULL, 1.0f, NULL, &k->loss, NULL);
}

static skd_status run_kl_grad(skd_context *ctx, void *p) {
  struct kl_state *k = p;
  return skd_pixel_loss(ctx, NULL, &k->s, &k->t, NULL, 1.0f, &k->ds, &k->loss, NULL);
}

static skd_status bench_kl(skd_context *ctx, struct table *tab, const struct sizes *z) {
  struct kl_state k;
  memset(&k, 0, sizeof k);
  double e = (double)z->kl_n * z->kl_c * z->kl_h * z->kl_w;
  char shape[64];
  snprintf(shape, sizeof shape, "%dx%dx%dx%d", z->kl_n, z->kl_c, z->kl_h, z->kl_w);
  skd_status st = alloc_random(ctx, &k.s, z->kl_n, z->kl_c, z->kl_h, z->kl_w, -4.0f, 4.0f, 1);
  if (st == SKD_OK) st = alloc_random(ctx, &k.t, z->kl_n, z->kl_c, z->kl_h, z->kl_w, -4.0f, 4.0f, 2);
  if (st == SKD_OK) st = alloc_random(ctx, &k.ds, z->kl_n, z->kl_c, z->kl_h, z->kl_w, -1.0f, 1.0f, 3);
  if (st == SKD_OK) st = skd_tensor_alloc(ctx, &k.loss, 1, 1, 1, 1);
  /* value: read student + teacher = 2 e floats (the scalar out is nothing) */
  if (st == SKD_OK) st = add_row(ctx, tab, "softmax_kl fwd (value)", shape, 4.0 * 2 * e, 0, NULL, run_kl_value, &k);
  /* with gradient: + dstudent read and written = 4 e floats */
  if (st == SKD_OK)
    st = add_row(ctx, tab, "softmax_kl fwd+bwd (grad)", shape, 4.0 * 4 * e, 0, NULL, run_kl_grad, &k);
  skd_tensor_release(&k.s);
  skd_tensor_release(&k.t);
  skd_tensor_release(&k.ds);
  skd_tensor_release(&k.loss);
  return st;
}

/* ---- attention row softmax ---- */

struct rows_state {
  skd_tensor x, y, dy, dx;
};

static skd_status run_rows_fwd(skd_context *ctx, void *p) {
  struct rows_state *r = p;
  return skd_softmax_rows_forward(ctx, &r->x, &r->y);
}

static skd_status run_rows_bwd(skd_context *ctx, void *p) {
  struct rows_state *r = p;
  return skd_softmax_rows_backward(ctx, &r->y, &r->dy, &r->dx);
}

static skd_status bench_rows(skd_context *ctx, struct table *tab, const struct sizes *z) {
  struct rows_state r;
  memset(&r, 0, sizeof r);
  int b = z->att_b, p = z->att_p;
  double e = (double)b * p * p;
  char shape[64];
  snprintf(shape, sizeof shape, "%dx1x%dx%d", b, p, p);
  skd_status st = alloc_random(ctx, &r.x, b, 1, p, p, -8.0f, 8.0f, 4);
  if (st == SKD_OK) st = skd_tensor_alloc(ctx, &r.y, b, 1, p, p);
  if (st == SKD_OK) st = alloc_random(ctx, &r.dy, b, 1, p, p, -1.0f, 1.0f, 5);
  if (st == SKD_OK) st = alloc_random(ctx, &r.dx, b, 1, p, p, -1.0f, 1.0f, 6);
  /* forward: read x, write y = 2 e floats */
  if (st == SKD_OK) st = add_row(ctx, tab, "softmax_rows fwd", shape, 4.0 * 2 * e, 0, NULL, run_rows_fwd, &r);
  /* backward: read y, dy, dx; write dx = 4 e floats */
  if (st == SKD_OK) st = add_row(ctx, tab, "softmax_rows bwd", shape, 4.0 * 4 * e, 0, NULL, run_rows_bwd, &r);
  skd_tensor_release(&r.x);
  skd_tensor_release(&r.y);
  skd_tensor_release(&r.dy);
  skd_tensor_release(&r.dx);
  return st;
}

/* ---- batch norm, training mode ---- */

struct bn_state {
  skd_tensor x, y, dy, dx, gamma, beta, rmean, rvar, smean, sinv, dgamma, dbeta;
};

static skd_status run_bn_fwd(skd_context *ctx, void *p) {
  struct bn_state *b = p;
  return skd_batchnorm_forward(ctx, 1, &b->x, &b->gamma, &b->beta, &b->rmean, &b->rvar, &b->smean, &b->sinv, &b->y,
                               SKD_BN_EPS, SKD_BN_MOMENTUM, SKD_BN_ACT_NONE, 0.0f);
}

static skd_status run_bn_bwd(skd_context *ctx, void *p) {
  struct bn_state *b = p;
  return skd_batchnorm_backward(ctx, 1, &b->x, NULL, &b->gamma, &b->smean, &b->sinv, &b->dy, &b->dx, &b->dgamma,
                                &b->dbeta, SKD_BN_ACT_NONE, 0.0f);
}

static skd_status bench_bn(skd_context *ctx, struct table *tab, const struct sizes *z) {
  struct bn_state b;
  memset(&b, 0, sizeof b);
  int c = z->bn_c;
  double e = (double)z->bn_n * c * z->bn_h * z->bn_w;
  char shape[64];
  snprintf(shape, sizeof shape, "%dx%dx%dx%d", z->bn_n, c, z->bn_h, z->bn_w);
  skd_status st = alloc_random(ctx, &b.x, z->bn_n, c, z->bn_h, z->bn_w, -2.0f, 3.0f, 7);
  if (st == SKD_OK) st = skd_tensor_alloc(ctx, &b.y, z->bn_n, c, z->bn_h, z->bn_w);
  if (st == SKD_OK) st = alloc_random(ctx, &b.dy, z->bn_n, c, z->bn_h, z->bn_w, -1.0f, 1.0f, 8);
  if (st == SKD_OK) st = alloc_random(ctx, &b.dx, z->bn_n, c, z->bn_h, z->bn_w, -1.0f, 1.0f, 9);
  skd_tensor *chan[] = {&b.gamma, &b.beta, &b.rmean, &b.rvar, &b.smean, &b.sinv, &b.dgamma, &b.dbeta};
  for (int i = 0; i < 8 && st == SKD_OK; i++) st = alloc_random(ctx, chan[i], 1, c, 1, 1, 0.5f, 1.5f, 10u + i);
  /* forward (train): read x, write y = 2 e floats (per-channel tensors
   * are negligible). The statistics need x before y can be written, so an
   * unfused two-kernel op reads x twice: at best 2/3 of the copy rate. */
  if (st == SKD_OK)
    st = add_row(ctx, tab, "batchnorm train fwd", shape, 4.0 * 2 * e, 0, "x read twice (stats, apply)", run_bn_fwd,
                 &b);
  /* backward: read x, dy, dx; write dx = 4 e floats. */
  if (st == SKD_OK)
    st = add_row(ctx, tab, "batchnorm train bwd", shape, 4.0 * 4 * e, 0, "x, dy read twice (sums, dx)", run_bn_bwd,
                 &b);
  skd_tensor *all[] = {&b.x, &b.y, &b.dy, &b.dx};
  for (int i = 0; i < 4; i++) skd_tensor_release(all[i]);
  for (int i = 0; i < 8; i++) skd_tensor_release(chan[i]);
  return st;
}

/* ---- pair-wise affinity ---- */

struct pair_state {
  skd_pair_loss_config cfg;
  skd_tensor s, t, ds, loss;
};

static skd_status run_pair_value(skd_context *ctx, void *p) {
  struct pair_state *q = p;
  return skd_pair_loss(ctx, &q->cfg, &q->s, &q->t, 1.0f, NULL, &q->loss);
}

static skd_status run_pair_grad(skd_context *ctx, void *p) {
  struct pair_state *q = p;
  return skd_pair_loss(ctx, &q->cfg, &q->s, &q->t, 1.0f, &q->ds, &q->loss);
}

/* Sum over the nodes of the clipped window size (global: M per node). */
static double window_pairs(const skd_pair_grid *g, int r) {
  double pairs = 0;
  for (int y = 0; y < g->hn; y++)
    for (int x = 0; x < g->wn; x++) {
      int h = r < 0 ? g->hn : (y + r < g->hn ? y + r : g->hn - 1) - (y - r > 0 ? y - r : 0) + 1;
      int w = r < 0 ? g->wn : (x + r < g->wn ? x + r : g->wn - 1) - (x - r > 0 ? x - r : 0) + 1;
      pairs += (double)h * w;
    }
  return pairs;
}

static skd_status pair_rows(skd_context *ctx, struct table *tab, struct pair_state *q, const struct sizes *z,
                            const char *label) {
  skd_pair_grid g;
  skd_status st = skd_pair_node_grid(&q->cfg, z->pair_h, z->pair_w, &g);
  if (st != SKD_OK) return st;
  double n = z->pair_n, cs = z->pair_cs, ct = z->pair_ct, hw = (double)z->pair_h * z->pair_w;
  double pairs = n * window_pairs(&g, q->cfg.window_radius);
  /* FLOPs as computed: per (node, window node) pair a dot product of the
   * student and of the teacher (2 (Cs + Ct)), plus the node norms; with the
   * gradient also the dp accumulation (2 Cs per pair). Pooling compares are
   * not counted. */
  double flops = 2.0 * pairs * (cs + ct) + 2.0 * n * g.m * (cs + ct);
  double flops_grad = flops + 2.0 * pairs * cs;
  char name[48], shape[64];
  snprintf(shape, sizeof shape, "%gx%g|%gx%dx%d %dx%d nodes", n, cs, ct, z->pair_h, z->pair_w, g.hn, g.wn);
  /* value: read student and teacher features once = (Cs + Ct) N H'W' floats
   * (the pooled nodes are 1/(kh kw) of that and are left out) */
  snprintf(name, sizeof name, "pair %s fwd", label);
  st = add_row(ctx, tab, name, shape, 4.0 * n * hw * (cs + ct), flops, NULL, run_pair_value, q);
  /* with gradient: + dstudent read and written = 2 Cs N H'W' floats */
  snprintf(name, sizeof name, "pair %s fwd+bwd", label);
  if (st == SKD_OK) st = add_row(ctx, tab, name, shape, 4.0 * n * hw * (3 * cs + ct), flops_grad, NULL, run_pair_grad, q);
  return st;
}

static skd_status bench_pair(skd_context *ctx, struct table *tab, const struct sizes *z) {
  struct pair_state q;
  memset(&q, 0, sizeof q);
  skd_status st = alloc_random(ctx, &q.s, z->pair_n, z->pair_cs, z->pair_h, z->pair_w, -1.0f, 2.0f, 20);
  if (st == SKD_OK) st = alloc_random(ctx, &q.t, z->pair_n, z->pair_ct, z->pair_h, z->pair_w, -1.0f, 2.0f, 21);
  if (st == SKD_OK) st = alloc_random(ctx, &q.ds, z->pair_n, z->pair_cs, z->pair_h, z->pair_w, -1.0f, 1.0f, 22);
  if (st == SKD_OK) st = skd_tensor_alloc(ctx, &q.loss, 1, 1, 1, 1);
  /* The trainer's default: the reference's 2 x 2 max-pooled nodes, global. */
  skd_pair_loss_config_default(&q.cfg);
  if (st == SKD_OK) st = pair_rows(ctx, tab, &q, z, "default");
  /* The paper's local form: small nodes, a (2r+1)^2 window. */
  char label[32];
  snprintf(label, sizeof label, "node%d r%d", z->pair_node, z->pair_radius);
  q.cfg.node_size = z->pair_node;
  q.cfg.window_radius = z->pair_radius;
  if (st == SKD_OK) st = pair_rows(ctx, tab, &q, z, label);
  skd_tensor_release(&q.s);
  skd_tensor_release(&q.t);
  skd_tensor_release(&q.ds);
  skd_tensor_release(&q.loss);
  return st;
}

/* ---- output ---- */

static double best_copy(const struct table *tab) {
  double best = 0;
  for (int i = 0; i < tab->count; i++)
    if (strncmp(tab->rows[i].name, "copy", 4) == 0 || strncmp(tab->rows[i].name, "clEnqueue", 9) == 0) {
      double gbs = tab->rows[i].bytes / (tab->rows[i].ms * 1e6);
      if (gbs > best) best = gbs;
    }
  return best;
}

/* ---- the vec convolution forward ---- */

/* Layer shapes of paper-small at crop 128 (large: the profile's heaviest
 * forward shapes, docs/PERFORMANCE.md) or small ones (the quick check):
 * n, cin, h, w, cout, kernel, dilation (= padding: the size is kept). */
struct conv_shape {
  int n, cin, h, w, cout, k, dil;
};

static const struct conv_shape conv_large[] = {
    {2, 4096, 17, 17, 512, 3, 1}, {2, 512, 17, 17, 512, 3, 4},  {2, 256, 17, 17, 256, 3, 2},
    {2, 256, 17, 17, 1024, 1, 1}, {2, 1024, 17, 17, 256, 1, 1},
};
static const struct conv_shape conv_small[] = {{1, 24, 9, 9, 40, 3, 2}, {1, 24, 9, 9, 40, 1, 1}};

struct conv_state {
  skd_conv2d_params p;
  skd_tensor x, w, y;
};

static skd_status run_conv_fwd(skd_context *ctx, void *p) {
  struct conv_state *c = p;
  return skd_conv2d_forward(ctx, &c->p, &c->x, &c->w, NULL, &c->y);
}

/* Each shape with one and with two channel vectors per work-item
 * (SKD_CONV_VEC_VECTORS, restored after): flops = 2 * n * cout * plane *
 * cin * k * k; each call includes its padding and weight transposition. */
static skd_status bench_conv(skd_context *ctx, struct table *tab, const struct sizes *z) {
  const struct conv_shape *shapes = z->copy_floats > ((size_t)1 << 20) ? conv_large : conv_small;
  int count = shapes == conv_large ? (int)(sizeof conv_large / sizeof conv_large[0])
                                   : (int)(sizeof conv_small / sizeof conv_small[0]);
  const char *saved = getenv("SKD_CONV_VEC_VECTORS");
  char keep[8] = "";
  if (saved) snprintf(keep, sizeof keep, "%s", saved);
  skd_status st = SKD_OK;
  for (int i = 0; i < count && st == SKD_OK; i++) {
    const struct conv_shape *q = &shapes[i];
    struct conv_state c;
    memset(&c, 0, sizeof c);
    c.p = skd_conv2d_params_make(q->k, 1, q->k == 1 ? 0 : q->dil, q->dil);
    c.p.algo = SKD_CONV2D_VEC;
    st = alloc_random(ctx, &c.x, q->n, q->cin, q->h, q->w, -1.0f, 1.0f, 20u + (unsigned)i);
    if (st == SKD_OK) st = alloc_random(ctx, &c.w, q->cout, q->cin, q->k, q->k, -0.1f, 0.1f, 40u + (unsigned)i);
    if (st == SKD_OK) st = skd_tensor_alloc(ctx, &c.y, q->n, q->cout, q->h, q->w);
    double flops = 2.0 * q->n * q->cout * q->h * q->w * (double)q->cin * q->k * q->k;
    char shape[64];
    snprintf(shape, sizeof shape, "%dx%dx%dx%d>%d k%d d%d", q->n, q->cin, q->h, q->w, q->cout, q->k, q->dil);
    for (int v = 1; v <= 2 && st == SKD_OK; v++) {
      setenv("SKD_CONV_VEC_VECTORS", v == 1 ? "1" : "2", 1);
      st = add_row(ctx, tab, v == 1 ? "conv vec fwd, 16 channels" : "conv vec fwd, 32 channels", shape, 0, flops,
                   NULL, run_conv_fwd, &c);
    }
    skd_tensor_release(&c.x);
    skd_tensor_release(&c.w);
    skd_tensor_release(&c.y);
  }
  if (saved) setenv("SKD_CONV_VEC_VECTORS", keep, 1);
  else unsetenv("SKD_CONV_VEC_VECTORS");
  return st;
}

/* A row's GFLOP/s as a share of the peak FMA rate (0: no flops or no peak). */
static double peak_share(const struct table *tab, const struct row *r) {
  return r->flops > 0 && tab->peak_gflops > 0 ? r->flops / (r->ms * 1e6) / tab->peak_gflops : 0.0;
}

static void print_text(const skd_context *ctx, const struct table *tab, const char *size) {
  double copy = best_copy(tab);
  printf("device      %s (%s)\n", ctx->info.name, ctx->info.platform);
  printf("size        %s; median of %d runs after %d warm-up, clFinish after each run\n", size, tab->runs,
         tab->warmup);
  printf("copy        %.2f GB/s (the best copy below; GB = 1e9 bytes, read + write)\n", copy);
  printf("peak FMA: %.2f GFLOP/s (float%d fma chains on %u x 1024 work-items, the best of float4/8/16; 2 flops "
         "per fma per lane)\n\n",
         tab->peak_gflops, tab->peak_width, ctx->info.compute_units ? ctx->info.compute_units : 1);
  printf("%-28s %-34s %10s %9s %8s %7s %9s %7s\n", "kernel", "shape", "median ms", "MB moved", "GB/s", "% copy",
         "GFLOP/s", "% peak");
  for (int i = 0; i < tab->count; i++) {
    const struct row *r = &tab->rows[i];
    double gbs = r->bytes / (r->ms * 1e6);
    printf("%-28s %-34s %10.3f %9.1f %8.2f %6.1f%%", r->name, r->shape, r->ms, r->bytes / 1e6, gbs,
           copy > 0 ? 100.0 * gbs / copy : 0.0);
    if (r->flops > 0) printf(" %9.2f %6.1f%%", r->flops / (r->ms * 1e6), 100.0 * peak_share(tab, r));
    else printf(" %9s %7s", "-", "-");
    if (r->limit) printf("  (%s)", r->limit);
    printf("\n");
  }
}

static void print_json_string(const char *s) {
  putchar('"');
  for (; *s; s++) printf(*s == '"' || *s == '\\' ? "\\%c" : "%c", *s);
  putchar('"');
}

static void print_json(const skd_context *ctx, const struct table *tab, const char *size) {
  double copy = best_copy(tab);
  printf("{\"device\": ");
  print_json_string(ctx->info.name);
  printf(", \"size\": \"%s\", \"runs\": %d, \"warmup\": %d, \"copy_gb_per_s\": %.4g, \"peak_fma_gflop_per_s\": %.4g, "
         "\"peak_fma_vector_width\": %d, \"kernels\": [",
         size, tab->runs, tab->warmup, copy, tab->peak_gflops, tab->peak_width);
  for (int i = 0; i < tab->count; i++) {
    const struct row *r = &tab->rows[i];
    double gbs = r->bytes / (r->ms * 1e6);
    printf("%s{\"name\": ", i ? ", " : "");
    print_json_string(r->name);
    printf(", \"shape\": ");
    print_json_string(r->shape);
    printf(", \"ms\": %.4g, \"bytes\": %.0f, \"gb_per_s\": %.4g, \"copy_share\": %.4g", r->ms, r->bytes, gbs,
           copy > 0 ? gbs / copy : 0.0);
    if (r->flops > 0)
      printf(", \"gflop_per_s\": %.4g, \"peak_share\": %.4g", r->flops / (r->ms * 1e6), peak_share(tab, r));
    printf("}");
  }
  printf("]}\n");
}

/* Runs family f unless a filter excludes it. */
static skd_status family(skd_context *ctx, struct table *tab, const struct sizes *z, const char *only,
                         const char *name, skd_status (*f)(skd_context *, struct table *, const struct sizes *)) {
  if (only && !strstr(name, only)) return SKD_OK;
  return f(ctx, tab, z);
}

int bench_kernels(const cli_globals *g, int size, const char *only, int runs, int warmup, int json) {
  static const char *const size_names[] = {"large", "small"};
  const struct sizes *z = &size_table[size];
  skd_context *ctx = cli_open_context(g);
  if (!ctx) return 1;
  struct table *tab = calloc(1, sizeof *tab);
  skd_status st = tab ? SKD_OK : skd_error(SKD_ENOMEM, "bench --kernels: out of host memory");
  if (tab) {
    tab->runs = runs;
    tab->warmup = warmup;
  }
  if (!json) fprintf(stderr, "bench --kernels (%s) on %s...\n", size_names[size], ctx->info.name);
  if (st == SKD_OK) st = bench_copy(ctx, tab, z);
  /* Runs of about 20 ms (large) or 2 ms (small, the quick check). */
  if (st == SKD_OK)
    st = bench_peak_fma(ctx, size == 0 ? 20.0 : 2.0, runs, warmup, &tab->peak_gflops, &tab->peak_width);
  if (st == SKD_OK) st = family(ctx, tab, z, only, "softmax_kl", bench_kl);
  if (st == SKD_OK) st = family(ctx, tab, z, only, "pair", bench_pair);
  if (st == SKD_OK) st = family(ctx, tab, z, only, "softmax_rows", bench_rows);
  if (st == SKD_OK) st = family(ctx, tab, z, only, "batchnorm", bench_bn);
  if (st == SKD_OK) st = family(ctx, tab, z, only, "conv", bench_conv);
  if (st != SKD_OK) fprintf(stderr, "skd-cl bench --kernels: %s\n", skd_error_last());
  else if (json) print_json(ctx, tab, size_names[size]);
  else print_text(ctx, tab, size_names[size]);
  fflush(stdout);
  free(tab);
  cli_close_context(ctx);
  return st == SKD_OK ? 0 : 1;
}
