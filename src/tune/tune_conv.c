/* The convolution search (skd_tune_conv): the direct kernels' blocking,
 * then direct vs gemm per layer shape of the bench presets.
 *
 * Every blocking is a rebuild of cl/conv.cl (about a second on a CPU
 * device), so the blocking search is a coordinate search from the defaults
 * (one parameter at a time, keeping the best) timed over every shape: over
 * a subset, a blocking that won there made whole paper-small steps 8 %
 * slower. The algorithm comparison then times every shape once per
 * algorithm. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skd/tune.h"
#include "tune/tune_private.h"

struct conv_shape {
  const char *name;
  int n, cin, h, w, cout, k, stride, pad, dilation;
  int forward_only; /* the frozen teacher's layers: no backward in training */
};

/* The conv layers of `skd-cl bench --preset demo` (batch 4; teacher
 * resnet18 x0.25, student resnet18 x0.125) and `--preset paper-small`
 * (batch 2; teacher resnet101, student resnet18), crop 128: the deep stem
 * (3x3 s2 at 128, 3x3 at 64), each layer's 3x3 at 33 (layer1) and 17
 * (layer2; layer3 dilation 2, layer4 dilation 4), the PSP bottleneck 3x3
 * (C4 + 4 * C4/4 -> Cf), resnet101's 1x1 bottleneck convs (teacher:
 * forward only) and the PSP stages' 1x1 convs on the pooled 1x1 ... 6x6
 * maps (small planes, where a wide blocking idles). Shapes both networks
 * share are timed with backward. */
#define BLOCKING_MARGIN 0.05

static const struct conv_shape full_shapes[] = {
    {"demo T stem1 3->16 s2", 4, 3, 128, 128, 16, 3, 2, 1, 1, 1},
    {"demo T stem2 16->16", 4, 16, 64, 64, 16, 3, 1, 1, 1, 1},
    {"demo T layer1 16", 4, 16, 33, 33, 16, 3, 1, 1, 1, 1},
    {"demo T layer3 64 d2", 4, 64, 17, 17, 64, 3, 1, 2, 2, 1},
    {"demo T layer4 128 d4", 4, 128, 17, 17, 128, 3, 1, 4, 4, 1},
    {"demo T psp 256->32", 4, 256, 17, 17, 32, 3, 1, 1, 1, 1},
    {"demo S stem1 3->8 s2", 4, 3, 128, 128, 8, 3, 2, 1, 1, 0},
    {"demo S stem3 8->16", 4, 8, 64, 64, 16, 3, 1, 1, 1, 0},
    {"demo S layer1 8", 4, 8, 33, 33, 8, 3, 1, 1, 1, 0},
    {"demo S layer2 16", 4, 16, 17, 17, 16, 3, 1, 1, 1, 0},
    {"demo S layer3 32 d2", 4, 32, 17, 17, 32, 3, 1, 2, 2, 0},
    {"demo S layer4 64 d4", 4, 64, 17, 17, 64, 3, 1, 4, 4, 0},
    {"demo S psp 128->16", 4, 128, 17, 17, 16, 3, 1, 1, 1, 0},
    {"demo S down1 8->16 s2 1x1", 4, 8, 33, 33, 16, 1, 2, 0, 1, 0},
    {"ps stem1 3->64 s2", 2, 3, 128, 128, 64, 3, 2, 1, 1, 0},
    {"ps stem2 64->64", 2, 64, 64, 64, 64, 3, 1, 1, 1, 0},
    {"ps layer1 64", 2, 64, 33, 33, 64, 3, 1, 1, 1, 0},
    {"ps layer2 128", 2, 128, 17, 17, 128, 3, 1, 1, 1, 0},
    {"ps layer3 256 d2", 2, 256, 17, 17, 256, 3, 1, 2, 2, 0},
    {"ps layer4 512 d4", 2, 512, 17, 17, 512, 3, 1, 4, 4, 0},
    {"ps S psp 1024->128", 2, 1024, 17, 17, 128, 3, 1, 1, 1, 0},
    {"ps T 1x1 1024->256", 2, 1024, 17, 17, 256, 1, 1, 0, 1, 1},
    {"ps T 1x1 256->1024", 2, 256, 17, 17, 1024, 1, 1, 0, 1, 1},
    {"ps T 1x1 2048->512", 2, 2048, 17, 17, 512, 1, 1, 0, 1, 1},
    {"ps T 1x1 512->2048", 2, 512, 17, 17, 2048, 1, 1, 0, 1, 1},
    {"ps T psp 4096->512", 2, 4096, 17, 17, 512, 3, 1, 1, 1, 1},
    {"ps T stage 2048->512 @1x1", 2, 2048, 1, 1, 512, 1, 1, 0, 1, 1},
    {"ps T stage 2048->512 @6x6", 2, 2048, 6, 6, 512, 1, 1, 0, 1, 1},
    {"ps S stage 512->128 @3x3", 2, 512, 3, 3, 128, 1, 1, 0, 1, 0},
};
static const struct conv_shape quick_shapes[] = {
    {"tiny 3x3", 2, 6, 9, 11, 10, 3, 1, 1, 1, 0},
    {"tiny 3x3 s2 d2", 1, 5, 13, 9, 7, 3, 2, 2, 2, 0},
    {"tiny 1x1", 2, 12, 7, 7, 9, 1, 1, 0, 1, 0},
};

/* Small odd cases every blocking must get right before it is timed:
 * partial channel blocks and pixel strips, stride, dilation. */
static const struct conv_shape check_shapes[] = {
    {"check 3x3", 2, 5, 7, 9, 11, 3, 1, 1, 1, 0},
    {"check 3x3 s2 d2", 1, 9, 11, 13, 19, 3, 2, 2, 2, 0},
};

struct conv_bench {
  skd_context *ctx;
  const skd_tune_options *opt;
  int runs;
  cl_mem x, w, y, dy, dx, dw; /* sized for the largest shape; random contents */
};


static float uniform(unsigned long long *s) {
  *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
  return (float)(*s >> 40) / 16777216.0f - 0.5f;
}

static skd_conv2d_params params_of(const struct conv_shape *s, skd_conv2d_algo algo) {
  skd_conv2d_params p = skd_conv2d_params_make(s->k, s->stride, s->pad, s->dilation);
  p.algo = algo;
  return p;
}

static skd_status out_size(const struct conv_shape *s, int *ho, int *wo) {
  skd_conv2d_params p = params_of(s, SKD_CONV2D_AUTO);
  return skd_conv2d_output_shape(&p, s->h, s->w, ho, wo);
}

/* A device buffer of n random floats (n at least 1). */
static skd_status random_buffer(skd_context *ctx, size_t n, unsigned long long *rng, cl_mem *out) {
  float *host = malloc(n * sizeof(float));
  if (!host) return skd_error(SKD_ENOMEM, "tune conv: out of host memory");
  for (size_t i = 0; i < n; i++) host[i] = uniform(rng);
  skd_status st = skd_buffer_create(ctx, n * sizeof(float), "tune conv", out);
  if (st == SKD_OK)
    st = skd_cl_check(clEnqueueWriteBuffer(ctx->queue, *out, CL_TRUE, 0, n * sizeof(float), host, 0, NULL, NULL),
                      "tune conv: clEnqueueWriteBuffer");
  free(host);
  return st;
}

static skd_status bench_init(struct conv_bench *b, const struct conv_shape *shapes, int nshapes) {
  size_t nx = 1, nw = 1, ny = 1;
  for (int i = 0; i < nshapes; i++) {
    const struct conv_shape *s = &shapes[i];
    int ho, wo;
    skd_status st = out_size(s, &ho, &wo);
    if (st != SKD_OK) return st;
    size_t x = (size_t)s->n * s->cin * s->h * s->w, w = (size_t)s->cout * s->cin * s->k * s->k;
    size_t y = (size_t)s->n * s->cout * ho * wo;
    if (x > nx) nx = x;
    if (w > nw) nw = w;
    if (y > ny) ny = y;
  }
  unsigned long long rng = b->opt->seed ^ 0xC0417ULL;
  skd_status st = random_buffer(b->ctx, nx, &rng, &b->x);
  if (st == SKD_OK) st = random_buffer(b->ctx, nw, &rng, &b->w);
  if (st == SKD_OK) st = random_buffer(b->ctx, ny, &rng, &b->dy);
  if (st == SKD_OK) st = random_buffer(b->ctx, nx, &rng, &b->dx);
  if (st == SKD_OK) st = random_buffer(b->ctx, nw, &rng, &b->dw);
  if (st == SKD_OK) st = skd_buffer_create(b->ctx, ny * sizeof(float), "tune conv", &b->y);
  return st;
}

static void bench_free(struct conv_bench *b) {
  cl_mem *all[6] = {&b->x, &b->w, &b->y, &b->dy, &b->dx, &b->dw};
  for (int i = 0; i < 6; i++)
    if (*all[i]) clReleaseMemObject(*all[i]);
}

/* Forward (+ backward dx, dW) of shape s once, on the bench buffers. */
static skd_status run_once(struct conv_bench *b, const struct conv_shape *s, skd_conv2d_algo algo) {
  int ho, wo;
  skd_status st = out_size(s, &ho, &wo);
  if (st != SKD_OK) return st;
  skd_conv2d_params p = params_of(s, algo);
  skd_tensor x = skd_tensor_view(b->x, 0, s->n, s->cin, s->h, s->w);
  skd_tensor w = skd_tensor_view(b->w, 0, s->cout, s->cin, s->k, s->k);
  skd_tensor y = skd_tensor_view(b->y, 0, s->n, s->cout, ho, wo);
  skd_tensor dy = skd_tensor_view(b->dy, 0, s->n, s->cout, ho, wo);
  skd_tensor dx = skd_tensor_view(b->dx, 0, s->n, s->cin, s->h, s->w);
  skd_tensor dw = skd_tensor_view(b->dw, 0, s->cout, s->cin, s->k, s->k);
  st = skd_conv2d_forward(b->ctx, &p, &x, &w, NULL, &y);
  if (st == SKD_OK && !s->forward_only) st = skd_conv2d_backward(b->ctx, &p, &x, &w, &dy, &dx, &dw, NULL);
  return st;
}

static int compare_double(const void *x, const void *y) {
  double a = *(const double *)x, c = *(const double *)y;
  return a < c ? -1 : a > c;
}

/* Median seconds of shape s with algo, after one untimed run (builds). */
static skd_status time_shape(struct conv_bench *b, const struct conv_shape *s, skd_conv2d_algo algo, double *out) {
  skd_status st = run_once(b, s, algo);
  if (st == SKD_OK) st = skd_context_finish(b->ctx);
  double t[8];
  for (int r = 0; st == SKD_OK && r < b->runs; r++) {
    double t0 = skd_tune_now();
    st = run_once(b, s, algo);
    if (st == SKD_OK) st = skd_context_finish(b->ctx);
    t[r] = skd_tune_now() - t0;
  }
  if (st != SKD_OK) return st;
  qsort(t, (size_t)b->runs, sizeof t[0], compare_double);
  *out = t[b->runs / 2];
  return SKD_OK;
}

static double max_rel(const float *a, const float *ref, size_t n) {
  double err = 0, scale = 1e-6;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - ref[i]);
    if (!(d <= err)) err = d; /* NaN propagates */
    if (fabs(ref[i]) > scale) scale = fabs(ref[i]);
  }
  return err / scale;
}

/* The direct kernels under the context's current blocking vs the plain-C
 * reference on one small case: forward, dx, dW. 1 when right; else 0 with
 * the reason in why. */
static int check_case(skd_context *ctx, const struct conv_shape *s, char *why, size_t why_size) {
  int ho, wo;
  if (out_size(s, &ho, &wo) != SKD_OK) return 0;
  skd_conv2d_params p = params_of(s, SKD_CONV2D_DIRECT);
  size_t nx = (size_t)s->n * s->cin * s->h * s->w, nw = (size_t)s->cout * s->cin * s->k * s->k;
  size_t ny = (size_t)s->n * s->cout * ho * wo;
  float *host = calloc(2 * (nx + nw + ny) + nx + nw + ny, sizeof(float));
  if (!host) {
    snprintf(why, why_size, "out of host memory");
    return 0;
  }
  float *x = host, *w = x + nx, *dy = w + nw, *y = dy + ny, *dx = y + ny, *dw = dx + nx;
  float *ry = dw + nw, *rdx = ry + ny, *rdw = rdx + nx;
  unsigned long long rng = 77;
  for (size_t i = 0; i < nx; i++) x[i] = uniform(&rng);
  for (size_t i = 0; i < nw; i++) w[i] = uniform(&rng);
  for (size_t i = 0; i < ny; i++) dy[i] = uniform(&rng);
  skd_ref_conv2d_forward(&p, s->n, s->cin, s->h, s->w, s->cout, x, w, NULL, ry);
  skd_ref_conv2d_backward(&p, s->n, s->cin, s->h, s->w, s->cout, x, w, dy, rdx, rdw, NULL);
  skd_tensor tx = {0}, tw = {0}, tdy = {0}, ty = {0}, tdx = {0}, tdw = {0};
  skd_status st = skd_tensor_alloc(ctx, &tx, s->n, s->cin, s->h, s->w);
  if (st == SKD_OK) st = skd_tensor_alloc(ctx, &tw, s->cout, s->cin, s->k, s->k);
  if (st == SKD_OK) st = skd_tensor_alloc(ctx, &tdy, s->n, s->cout, ho, wo);
  if (st == SKD_OK) st = skd_tensor_alloc(ctx, &ty, s->n, s->cout, ho, wo);
  if (st == SKD_OK) st = skd_tensor_alloc(ctx, &tdx, s->n, s->cin, s->h, s->w);
  if (st == SKD_OK) st = skd_tensor_alloc(ctx, &tdw, s->cout, s->cin, s->k, s->k);
  if (st == SKD_OK) st = skd_tensor_upload(ctx, &tx, x);
  if (st == SKD_OK) st = skd_tensor_upload(ctx, &tw, w);
  if (st == SKD_OK) st = skd_tensor_upload(ctx, &tdy, dy);
  if (st == SKD_OK) st = skd_tensor_fill(ctx, &ty, NAN); /* unwritten outputs show */
  if (st == SKD_OK) st = skd_tensor_fill(ctx, &tdx, 0.0f);
  if (st == SKD_OK) st = skd_tensor_fill(ctx, &tdw, 0.0f);
  if (st == SKD_OK) st = skd_conv2d_forward(ctx, &p, &tx, &tw, NULL, &ty);
  if (st == SKD_OK) st = skd_conv2d_backward(ctx, &p, &tx, &tw, &tdy, &tdx, &tdw, NULL);
  if (st == SKD_OK) st = skd_tensor_download(ctx, &ty, y);
  if (st == SKD_OK) st = skd_tensor_download(ctx, &tdx, dx);
  if (st == SKD_OK) st = skd_tensor_download(ctx, &tdw, dw);
  int ok = st == SKD_OK;
  if (!ok) {
    snprintf(why, why_size, "%s", skd_error_last());
    skd_error_clear();
  } else {
    double e[3] = {max_rel(y, ry, ny), max_rel(dx, rdx, nx), max_rel(dw, rdw, nw)};
    static const char *const what[3] = {"forward", "dx", "dW"};
    for (int i = 0; i < 3 && ok; i++) {
      if (!(e[i] <= 1e-4)) {
        snprintf(why, why_size, "wrong %s on %s (relative error %.3g)", what[i], s->name, e[i]);
        ok = 0;
      }
    }
  }
  skd_tensor *all[6] = {&tx, &tw, &tdy, &ty, &tdx, &tdw};
  for (int i = 0; i < 6; i++) skd_tensor_release(all[i]);
  free(host);
  return ok;
}

static void format_blocking(char *buf, size_t size, const skd_conv_tuning *c) {
  snprintf(buf, size, "COB=%d PXB=%d CIB=%d WG=%d WGW=%d", c->cob, c->pxb, c->cib, c->wg, c->wg_w);
}

/* Sets candidate c, checks it and times every shape with the direct
 * algorithm. *total < 0 when rejected (why reported). */
static skd_status try_blocking(struct conv_bench *b, const struct conv_shape *shapes, int nshapes,
                               const skd_conv_tuning *c, double *total) {
  char text[120], why[512] = "";
  format_blocking(text, sizeof text, c);
  double t0 = skd_tune_now();
  *total = -1;
  skd_status st = skd_context_set_conv_tuning(b->ctx, c);
  if (st != SKD_OK) return st;
  int ok = 1;
  for (size_t i = 0; ok && i < sizeof check_shapes / sizeof check_shapes[0]; i++)
    ok = check_case(b->ctx, &check_shapes[i], why, sizeof why);
  double sum = 0;
  for (int i = 0; ok && i < nshapes; i++) {
    double t = 0;
    if (time_shape(b, &shapes[i], SKD_CONV2D_DIRECT, &t) != SKD_OK) {
      snprintf(why, sizeof why, "%s", skd_error_last());
      skd_error_clear();
      ok = 0;
    }
    sum += t;
  }
  if (!ok) {
    clFinish(b->ctx->queue);
    skd_tune_say(b->opt, "conv blocking %s: rejected: %s", text, why);
    return SKD_OK;
  }
  *total = sum;
  skd_tune_say(b->opt, "conv blocking %s: %.2f ms (%.1f s)", text, 1e3 * sum, skd_tune_now() - t0);
  return SKD_OK;
}

static int same_blocking(const skd_conv_tuning *a, const skd_conv_tuning *c) {
  return a->cob == c->cob && a->pxb == c->pxb && a->cib == c->cib && a->wg == c->wg && a->wg_w == c->wg_w;
}

/* Field `axis` of a blocking: 0 cob, 1 pxb, 2 cib, 3 wg, 4 wg_w. */
static int *axis_field(skd_conv_tuning *c, int axis) {
  int *fields[5] = {&c->cob, &c->pxb, &c->cib, &c->wg, &c->wg_w};
  return fields[axis];
}

/* Coordinate search from the defaults: each parameter over its values, the
 * others at the best so far. quick: the defaults and one other blocking. */
static skd_status search_blocking(struct conv_bench *b, const struct conv_shape *shapes, int nshapes,
                                  skd_conv_tuning *best, skd_tune_conv_report *rep) {
  static const int values[5][2] = {{4, 16}, {4, 16}, {8, 2}, {16, 256}, {32, 32}};
  static const int counts[5] = {2, 2, 2, 2, 1};
  skd_conv_tuning_default(best);
  double best_ms = INFINITY;
  int naxes = b->opt->quick ? 1 : 5;
  for (int a = -1; a < naxes; a++) { /* -1: the defaults themselves */
    int count = a < 0 || b->opt->quick ? 1 : counts[a];
    for (int v = 0; v < count; v++) {
      skd_conv_tuning cand = *best;
      if (a >= 0) *axis_field(&cand, a) = values[a][v];
      if (a >= 0 && same_blocking(&cand, best)) continue;
      if (rep->nblockings == SKD_TUNE_CONV_MAX_BLOCKINGS) break;
      double total;
      skd_status st = try_blocking(b, shapes, nshapes, &cand, &total);
      if (st != SKD_OK) return st;
      rep->blockings[rep->nblockings] = cand;
      rep->blocking_ms[rep->nblockings] = total < 0 ? -1 : 1e3 * total;
      /* A blocking must beat the one kept by BLOCKING_MARGIN: gains smaller
       * than that, timed layer by layer, did not carry over to whole steps. */
      if (total >= 0 && total < best_ms * (1.0 - BLOCKING_MARGIN)) {
        best_ms = total;
        rep->best_blocking = rep->nblockings;
      }
      rep->nblockings++;
    }
    if (isfinite(best_ms)) *best = rep->blockings[rep->best_blocking];
  }
  if (!isfinite(best_ms))
    return skd_error(SKD_ECL, "tune conv: no blocking of the direct kernels works on %s", b->ctx->info.name);
  return SKD_OK;
}

skd_status skd_tune_conv(skd_context *ctx, const skd_tune_options *opt, skd_conv_tuning *out,
                         skd_tune_conv_report *rep) {
  skd_tune_options defaults;
  if (!opt) {
    skd_tune_options_default(&defaults);
    opt = &defaults;
  }
  memset(rep, 0, sizeof *rep);
  skd_conv_tuning_default(out);
  double start = skd_tune_now();
  struct conv_bench b;
  memset(&b, 0, sizeof b);
  b.ctx = ctx;
  b.opt = opt;
  b.runs = opt->quick ? 1 : 3;
  const struct conv_shape *shapes = opt->quick ? quick_shapes : full_shapes;
  int nshapes = opt->quick ? (int)(sizeof quick_shapes / sizeof quick_shapes[0])
                           : (int)(sizeof full_shapes / sizeof full_shapes[0]);
  skd_status st = bench_init(&b, shapes, nshapes);
  if (st == SKD_OK) {
    skd_tune_say(b.opt, "tuning the convolution on %s: %d shapes", ctx->info.name, nshapes);
    st = search_blocking(&b, shapes, nshapes, out, rep);
  }
  if (st == SKD_OK) st = skd_context_set_conv_tuning(ctx, out);
  double sum[SKD_CONV2D_VEC + 1] = {0};
  for (int i = 0; st == SKD_OK && i < nshapes; i++) {
    const struct conv_shape *s = &shapes[i];
    skd_tune_conv_shape *r = &rep->shapes[i];
    for (int a = SKD_CONV2D_GEMM; st == SKD_OK && a <= SKD_CONV2D_VEC; a++) {
      double t = 0;
      st = time_shape(&b, s, (skd_conv2d_algo)a, &t);
      r->ms[a] = 1e3 * t;
      sum[a] += t;
    }
    if (st != SKD_OK) break;
    snprintf(r->name, sizeof r->name, "%s", s->name);
    r->shape.n = s->n;
    r->shape.cin = s->cin;
    r->shape.h = s->h;
    r->shape.w = s->w;
    r->shape.cout = s->cout;
    r->shape.p = params_of(s, SKD_CONV2D_AUTO);
    r->forward_only = s->forward_only;
    rep->nshapes = i + 1;
    skd_tune_say(b.opt, "conv %-26s gemm %9.2f ms  direct %9.2f ms  vec %9.2f ms%s", s->name,
                 r->ms[SKD_CONV2D_GEMM], r->ms[SKD_CONV2D_DIRECT], r->ms[SKD_CONV2D_VEC],
                 s->forward_only ? "  (forward only)" : "");
  }
  if (st == SKD_OK) {
    /* The default: the fastest over all shapes; a shape whose own fastest
     * beats it by more than 10 % gets a rule. */
    out->algo = SKD_CONV2D_GEMM;
    for (int a = SKD_CONV2D_DIRECT; a <= SKD_CONV2D_VEC; a++)
      if (sum[a] < sum[out->algo]) out->algo = (skd_conv2d_algo)a;
    for (int i = 0; i < rep->nshapes; i++) {
      skd_tune_conv_shape *r = &rep->shapes[i];
      skd_conv2d_algo best = SKD_CONV2D_GEMM;
      for (int a = SKD_CONV2D_DIRECT; a <= SKD_CONV2D_VEC; a++)
        if (r->ms[a] < r->ms[best]) best = (skd_conv2d_algo)a;
      r->shape.p.algo = out->algo;
      if (r->ms[best] * 1.1 < r->ms[out->algo] && out->nrules < SKD_CONV_MAX_RULES) {
        r->shape.p.algo = best;
        out->rules[out->nrules++] = r->shape;
      }
    }
    st = skd_context_set_conv_tuning(ctx, out);
  }
  bench_free(&b);
  if (st != SKD_OK) { /* no half-tuned state left behind */
    skd_conv_tuning d;
    skd_conv_tuning_default(&d);
    skd_context_set_conv_tuning(ctx, &d);
    skd_conv_tuning_default(out);
  }
  rep->seconds = skd_tune_now() - start;
  return st;
}
