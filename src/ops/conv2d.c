/* 2-D convolution on the device: im2col / col2im and the bias kernels of
 * cl/conv.cl around CLBlast GEMMs (through skd_gemm*). Shapes and the
 * workspace plan are checked here; see conv2d.h for the scheme. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skd/ops/conv2d.h"
#include "skd/ops/matmul.h"
#include "skd/tune.h"

#define DEFAULT_WORKSPACE_BYTES ((size_t)256 << 20)
/* The direct kernels' blocking (output channels, pixels and, for dW, input
 * channels per work-item; work-group sizes) is the context's conv tuning
 * (skd/tune.h), which also builds cl/conv.cl with the same values. */

/* Sizes of one convolution, all checked to fit the kernels' int indices. */
struct geom {
  int n, cin, h, w; /* input */
  int cout, ho, wo; /* output */
  int k;            /* GEMM depth: Cin * kh * kw */
  int plane;        /* Ho * Wo */
};

/* Multiply-adds of the whole convolution, as flops (each pass does as many). */
static double conv_flops(const struct geom *g) { return 2.0 * g->n * g->cout * (double)g->plane * g->k; }

static const char *const algo_names[] = {"auto", "gemm", "direct", "vec"};

const char *skd_conv2d_algo_name(skd_conv2d_algo a) {
  return a >= SKD_CONV2D_AUTO && a <= SKD_CONV2D_VEC ? algo_names[a] : "?";
}

skd_status skd_conv2d_algo_parse(const char *name, skd_conv2d_algo *out) {
  for (int a = SKD_CONV2D_AUTO; a <= SKD_CONV2D_VEC; a++)
    if (strcmp(name, algo_names[a]) == 0) {
      *out = (skd_conv2d_algo)a;
      return SKD_OK;
    }
  return SKD_EINVAL;
}

skd_conv2d_params skd_conv2d_params_make(int k, int stride, int pad, int dilation) {
  skd_conv2d_params p = {k, k, stride, stride, pad, pad, dilation, dilation, SKD_CONV2D_AUTO};
  return p;
}

static skd_status check_params(const skd_conv2d_params *p) {
  if (p->kh >= 1 && p->kw >= 1 && p->stride_h >= 1 && p->stride_w >= 1 && p->pad_h >= 0 && p->pad_w >= 0 &&
      p->dilation_h >= 1 && p->dilation_w >= 1)
    return SKD_OK;
  return skd_error(SKD_EINVAL,
                   "conv2d: bad parameters: kernel %dx%d, stride %dx%d, padding %dx%d, dilation %dx%d "
                   "(kernel, stride and dilation must be >= 1, padding >= 0)",
                   p->kh, p->kw, p->stride_h, p->stride_w, p->pad_h, p->pad_w, p->dilation_h, p->dilation_w);
}

skd_status skd_conv2d_output_shape(const skd_conv2d_params *p, int h, int w, int *ho, int *wo) {
  skd_status st = check_params(p);
  if (st != SKD_OK) return st;
  long long span_h = (long long)p->dilation_h * (p->kh - 1) + 1; /* extent of the dilated kernel */
  long long span_w = (long long)p->dilation_w * (p->kw - 1) + 1;
  long long room_h = (long long)h + 2LL * p->pad_h - span_h;
  long long room_w = (long long)w + 2LL * p->pad_w - span_w;
  if (h < 1 || w < 1 || room_h < 0 || room_w < 0)
    return skd_error(SKD_EINVAL, "conv2d: input %dx%d with padding %dx%d is smaller than the dilated kernel %lldx%lld",
                     h, w, p->pad_h, p->pad_w, span_h, span_w);
  long long oh = room_h / p->stride_h + 1, ow = room_w / p->stride_w + 1;
  if (oh * ow > INT_MAX) return skd_error(SKD_EUNSUPPORTED, "conv2d: output %lldx%lld is too large", oh, ow);
  *ho = (int)oh;
  *wo = (int)ow;
  return SKD_OK;
}

static int fits_int(long long v) { return v >= 0 && v <= INT_MAX; }

static skd_status geometry(const skd_conv2d_params *p, const skd_tensor *x, const skd_tensor *weight,
                           struct geom *g) {
  if (!p || !x || !weight) return skd_error(SKD_EINVAL, "conv2d: parameters, x and weight are required");
  if (x->n < 1 || x->c < 1 || weight->n < 1)
    return skd_error(SKD_EINVAL, "conv2d: empty tensors: x (%d, %d, %d, %d), weight (%d, %d, %d, %d)", x->n, x->c,
                     x->h, x->w, weight->n, weight->c, weight->h, weight->w);
  skd_status st = skd_conv2d_output_shape(p, x->h, x->w, &g->ho, &g->wo);
  if (st == SKD_OK) st = skd_tensor_expect(weight, weight->n, x->c, p->kh, p->kw, "conv2d: weight (Cout, Cin, kh, kw)");
  if (st != SKD_OK) return st;
  g->n = x->n;
  g->cin = x->c;
  g->h = x->h;
  g->w = x->w;
  g->cout = weight->n;
  g->plane = g->ho * g->wo;
  long long k = (long long)g->cin * p->kh * p->kw;
  long long nx = (long long)g->n * g->cin * g->h * g->w, ny = (long long)g->n * g->cout * g->plane;
  if (!fits_int(k) || !fits_int(nx) || !fits_int(ny) || !fits_int(k * g->plane))
    return skd_error(SKD_EUNSUPPORTED, "conv2d: tensors beyond 2^31 elements (x %lld, y %lld, columns %lld)", nx, ny,
                     k * g->plane);
  g->k = (int)k;
  return SKD_OK;
}

/* A 1x1 unpadded stride-1 convolution is a GEMM on x itself. */
static int pointwise(const skd_conv2d_params *p) {
  return p->kh == 1 && p->kw == 1 && p->stride_h == 1 && p->stride_w == 1 && p->pad_h == 0 && p->pad_w == 0;
}

static int same_geometry(const skd_conv2d_params *a, const skd_conv2d_params *b) {
  return a->kh == b->kh && a->kw == b->kw && a->stride_h == b->stride_h && a->stride_w == b->stride_w &&
         a->pad_h == b->pad_h && a->pad_w == b->pad_w && a->dilation_h == b->dilation_h &&
         a->dilation_w == b->dilation_w;
}

/* The algorithm for both passes: the caller's choice, else SKD_CONV_ALGO
 * from the environment (gemm / direct / vec; for experiments), else the
 * device's tuning: a rule for this exact shape, else its default algorithm
 * (untuned: vec on CPUs, direct elsewhere; measured in docs/PERFORMANCE.md).
 * Untuned, a loop-limited device (llvmpipe) gets gemm: vec and direct
 * work-items loop over every tap or pixel, and a loop there stops after
 * 65535 iterations (CLBlast's loops are tile-sized). */
static skd_conv2d_algo conv_algorithm(const skd_context *ctx, const skd_conv2d_params *p, const struct geom *g) {
  if (p->algo != SKD_CONV2D_AUTO) return p->algo;
  const char *env = getenv("SKD_CONV_ALGO");
  skd_conv2d_algo forced;
  if (env && skd_conv2d_algo_parse(env, &forced) == SKD_OK && forced != SKD_CONV2D_AUTO) return forced;
  const skd_conv_tuning *t = skd_context_conv_tuning(ctx);
  for (int i = 0; i < t->nrules; i++) {
    const skd_conv_rule *r = &t->rules[i];
    if (r->n == g->n && r->cin == g->cin && r->h == g->h && r->w == g->w && r->cout == g->cout &&
        same_geometry(&r->p, p))
      return r->p.algo;
  }
  if (t->algo == SKD_CONV2D_AUTO)
    return ctx->info.is_gpu ? SKD_CONV2D_DIRECT : ctx->info.loop_limited ? SKD_CONV2D_GEMM : SKD_CONV2D_VEC;
  return t->algo;
}

/* How many samples' columns share the workspace at once. */
static skd_status plan_chunk(skd_context *ctx, const struct geom *g, int *chunk) {
  size_t per = (size_t)g->k * (size_t)g->plane * sizeof(float);
  size_t limit = DEFAULT_WORKSPACE_BYTES;
  const char *env = getenv("SKD_CONV_WORKSPACE_BYTES");
  if (env && *env) {
    unsigned long long v = strtoull(env, NULL, 10);
    if (v > 0) limit = (size_t)v;
  }
  if (per > ctx->info.max_alloc_bytes)
    return skd_error(SKD_ENOMEM,
                     "conv2d: the columns of one sample (%d x %d floats, %zu bytes) exceed the device's largest "
                     "allocation (%llu bytes)",
                     g->k, g->plane, per, ctx->info.max_alloc_bytes);
  if (limit > ctx->info.max_alloc_bytes) limit = (size_t)ctx->info.max_alloc_bytes;
  size_t c = limit / per;
  size_t int_cap = (size_t)INT_MAX / ((size_t)g->k * (size_t)g->plane); /* kernels index with int */
  if (c > int_cap) c = int_cap;
  if (c > (size_t)g->n) c = (size_t)g->n;
  *chunk = c < 1 ? 1 : (int)c;
  return SKD_OK;
}

static void arg_geometry(skd_args *a, const skd_conv2d_params *p) {
  skd_arg_int(a, p->kh);
  skd_arg_int(a, p->kw);
  skd_arg_int(a, p->stride_h);
  skd_arg_int(a, p->stride_w);
  skd_arg_int(a, p->pad_h);
  skd_arg_int(a, p->pad_w);
  skd_arg_int(a, p->dilation_h);
  skd_arg_int(a, p->dilation_w);
}

/* Samples n0 .. n0+nb-1 of x as columns at the start of `col`. */
static skd_status im2col(skd_context *ctx, const skd_conv2d_params *p, const struct geom *g, const skd_tensor *x,
                         int n0, int nb, cl_mem col) {
  skd_kernel *k;
  skd_status st = skd_kernel_get(ctx, "conv", "conv2d_im2col", &k);
  if (st != SKD_OK) return st;
  skd_tensor xs = skd_tensor_view(x->mem, x->offset + (size_t)n0 * g->cin * g->h * g->w, nb, g->cin, g->h, g->w);
  int rows = nb * g->k;
  skd_args a = skd_args_begin(k);
  skd_arg_int(&a, rows);
  skd_arg_int(&a, g->cin);
  skd_arg_int(&a, g->h);
  skd_arg_int(&a, g->w);
  skd_arg_int(&a, g->ho);
  skd_arg_int(&a, g->wo);
  arg_geometry(&a, p);
  skd_arg_tensor(&a, &xs);
  skd_arg_mem(&a, col);
  skd_arg_int(&a, 0);
  /* columns written, x read (at least) */
  skd_profile_work(ctx, "conv2d_im2col", 0, 2.0 * rows * (double)g->plane * sizeof(float));
  size_t global[2] = {(size_t)g->ho, (size_t)rows};
  return skd_launch(ctx, &a, 2, global, NULL);
}

/* dx (samples n0 .. n0+nb-1) += col2im(col). */
static skd_status col2im_add(skd_context *ctx, const skd_conv2d_params *p, const struct geom *g, cl_mem col, int n0,
                             int nb, const skd_tensor *dx) {
  skd_kernel *k;
  skd_status st = skd_kernel_get(ctx, "conv", "conv2d_bwd_x", &k);
  if (st != SKD_OK) return st;
  skd_tensor ds = skd_tensor_view(dx->mem, dx->offset + (size_t)n0 * g->cin * g->h * g->w, nb, g->cin, g->h, g->w);
  int planes = nb * g->cin;
  skd_args a = skd_args_begin(k);
  skd_arg_int(&a, planes);
  skd_arg_int(&a, g->h);
  skd_arg_int(&a, g->w);
  skd_arg_int(&a, g->ho);
  skd_arg_int(&a, g->wo);
  arg_geometry(&a, p);
  skd_arg_mem(&a, col);
  skd_arg_int(&a, 0);
  skd_arg_tensor(&a, &ds);
  size_t global[2] = {(size_t)g->h, (size_t)planes};
  return skd_launch(ctx, &a, 2, global, NULL);
}

/* The direct kernels' leading arguments: (cin, h, w, cout, ho, wo, GEOMETRY). */
static void arg_sizes(skd_args *a, const struct geom *g, const skd_conv2d_params *p) {
  skd_arg_int(a, g->cin);
  skd_arg_int(a, g->h);
  skd_arg_int(a, g->w);
  skd_arg_int(a, g->cout);
  skd_arg_int(a, g->ho);
  skd_arg_int(a, g->wo);
  arg_geometry(a, p);
}

/* The vec kernels' blocking: output channels (one vector) and pixels per
 * work-item (input channels per work-item in conv2d_cv_bwd_w). */
#define CV_CHANNELS 16
#define CV_PIXELS 8
/* Pixel strips per work-group of the vec forward (cv_forward). */
#define CV_GROUP 4

/* Channel vectors per work-item of the vec forward: two (conv2d_cv2_fwd)
 * once Cout fills more than one. Two halve the loads per FMA: with work-groups
 * of CV_GROUP strips, 3x3 layers of paper-small went 1.3-1.6x faster on
 * this project's machine, 1x1 ones 0-8 % (docs/PERFORMANCE.md; `skd-cl bench
 * --kernels --only conv` times both). SKD_CONV_VEC_VECTORS=1 or 2 forces
 * one, to compare: the same bits either way. */
static int cv_vectors(const struct geom *g) {
  const char *env = getenv("SKD_CONV_VEC_VECTORS");
  if (env && (strcmp(env, "1") == 0 || strcmp(env, "2") == 0)) return env[0] - '0';
  return g->cout > CV_CHANNELS ? 2 : 1;
}

/* The vec forward kernel: with two vectors, 1x1 and 3x3 layers get kernels
 * with the kernel size as a constant (the tap loops unroll: 1.1-1.2x on 3x3
 * layers, about 2x on 1x1 ones, docs/PERFORMANCE.md). */
static const char *cv_kernel_name(const skd_conv2d_params *p, int nv) {
  if (nv == 1) return "conv2d_cv_fwd";
  if (p->kh == 1 && p->kw == 1) return "conv2d_cv2_fwd_1x1";
  if (p->kh == 3 && p->kw == 3) return "conv2d_cv2_fwd_3x3";
  return "conv2d_cv2_fwd";
}

/* Cout rounded up to whole blocks of the forward's work-items: the
 * transposed weights' row length. */
static int cv_padded_cout(const struct geom *g) {
  int block = CV_CHANNELS * cv_vectors(g);
  return (g->cout + block - 1) / block * block;
}

/* Cout rounded up to whole channel vectors: dy's transposed row length in
 * the weight gradient. */
static int cv_padded_cout_w(const struct geom *g) { return (g->cout + CV_CHANNELS - 1) / CV_CHANNELS * CV_CHANNELS; }

/* Floats of the transposed weights conv2d_cv_fwd reads. */
static size_t cv_weight_floats(const struct geom *g) { return (size_t)g->k * (size_t)cv_padded_cout(g); }

/* The workspace view wt of conv2d_cv_fwd's weights: w transposed to [tap][co]. */
static skd_status cv_transpose_weights(skd_context *ctx, const struct geom *g, const skd_tensor *weight,
                                       const skd_tensor *wt) {
  skd_kernel *k;
  skd_status st = skd_kernel_get(ctx, "conv", "conv2d_transpose_weights", &k);
  if (st != SKD_OK) return st;
  skd_args a = skd_args_begin(k);
  skd_arg_int(&a, g->k);
  skd_arg_int(&a, g->cout);
  skd_arg_int(&a, cv_padded_cout(g));
  skd_arg_tensor(&a, weight);
  skd_arg_tensor(&a, wt);
  return skd_launch_planes(ctx, &a, (g->k + 15) / 16, cv_padded_cout(g) / 16, 1);
}

/* Floats of the vec kernels' input: x zero-padded by the convolution's
 * padding (0 when unpadded: the kernels then read x itself). */
static skd_status cv_padded_floats(const skd_conv2d_params *p, const skd_tensor *x, size_t *floats) {
  long long hp = (long long)x->h + 2LL * p->pad_h, wp = (long long)x->w + 2LL * p->pad_w;
  long long n = p->pad_h > 0 || p->pad_w > 0 ? (long long)x->n * x->c * hp * wp : 0;
  if (n > INT_MAX)
    return skd_error(SKD_EINVAL, "conv2d: the padded input (%lld floats) is too large for the vec kernels", n);
  *floats = (size_t)n;
  return SKD_OK;
}

/* *xp = x zero-padded, written to ws at float `offset` (x itself when
 * unpadded). */
static skd_status cv_pad_input(skd_context *ctx, const skd_conv2d_params *p, const skd_tensor *x, cl_mem ws,
                               size_t offset, skd_tensor *xp) {
  size_t floats = 0;
  skd_status st = cv_padded_floats(p, x, &floats);
  if (st != SKD_OK || floats == 0) {
    *xp = *x;
    return st;
  }
  *xp = skd_tensor_view(ws, offset, x->n, x->c, x->h + 2 * p->pad_h, x->w + 2 * p->pad_w);
  skd_kernel *k;
  if ((st = skd_kernel_get(ctx, "conv", "conv2d_pad_input", &k)) != SKD_OK) return st;
  skd_args a = skd_args_begin(k);
  skd_arg_int(&a, x->h);
  skd_arg_int(&a, x->w);
  skd_arg_int(&a, p->pad_h);
  skd_arg_int(&a, p->pad_w);
  skd_arg_int(&a, xp->h);
  skd_arg_int(&a, xp->w);
  skd_arg_tensor(&a, x);
  skd_arg_tensor(&a, xp);
  return skd_launch_planes(ctx, &a, xp->w, xp->h, (size_t)x->n * (size_t)x->c);
}

/* The vec kernels' leading sizes for the padded input xp: (cin, hp, wp,
 * cout, ho, wo) and the geometry with no padding. */
static void cv_arg_sizes(skd_args *a, const skd_conv2d_params *p, const struct geom *g, const skd_tensor *xp) {
  skd_arg_int(a, g->cin);
  skd_arg_int(a, xp->h);
  skd_arg_int(a, xp->w);
  skd_arg_int(a, g->cout);
  skd_arg_int(a, g->ho);
  skd_arg_int(a, g->wo);
  skd_conv2d_params unpadded = *p;
  unpadded.pad_h = unpadded.pad_w = 0;
  arg_geometry(a, &unpadded);
}

/* Layers deeper than CV_SPLIT_TAPS taps (input channels x kernel taps) are
 * split into even input-channel chunks of about CV_CHUNK_TAPS taps, whose
 * weights (4096 taps of 16 channels: 256 KiB) stay in a CPU core's L2
 * cache. Splitting costs a pass over the partial outputs: on this project's
 * machine it paid for the 36864-tap layer of paper-small's teacher and lost
 * on the 2304- and 4608-tap ones (docs/PERFORMANCE.md). */
#define CV_SPLIT_TAPS 16384
#define CV_CHUNK_TAPS 4096

/* How conv2d_cv_fwd runs one layer: its input-channel chunks and the
 * workspace floats it takes after the caller's, in this order: transposed
 * weights, the zero-padded input, the chunks' partial outputs. */
struct cv_plan {
  int ci_chunk, parts;
  size_t wt, xp, part;
};

static skd_status cv_plan_of(const skd_conv2d_params *p, const struct geom *g, const skd_tensor *x,
                             struct cv_plan *plan) {
  size_t out = (size_t)g->n * g->cout * g->plane;
  plan->ci_chunk = g->cin;
  plan->parts = 1;
  if (g->k > CV_SPLIT_TAPS) {
    int want = (g->k + CV_CHUNK_TAPS - 1) / CV_CHUNK_TAPS;
    int chunk = (g->cin + want - 1) / want, parts = (g->cin + chunk - 1) / chunk;
    if ((double)parts * (double)out <= INT_MAX) { /* the parts' int indices */
      plan->ci_chunk = chunk;
      plan->parts = parts;
    }
  }
  plan->wt = cv_weight_floats(g);
  plan->part = plan->parts > 1 ? (size_t)plan->parts * out : 0;
  return cv_padded_floats(p, x, &plan->xp);
}

/* y = conv(x) (+ bias) by conv2d_cv_fwd, in the workspace after its first
 * `used` floats (which the caller holds) as cv_plan says, except that frozen
 * weights keep their transposed copy apart, between calls. A caller holding
 * workspace data reserves the plan's floats up front: growing the workspace
 * replaces its buffer. */
static skd_status cv_forward(skd_context *ctx, const skd_conv2d_params *p, const struct geom *g, const skd_tensor *x,
                             const skd_tensor *weight, const skd_tensor *bias, int accumulate, const skd_tensor *y,
                             size_t used) {
  int cpad = cv_padded_cout(g);
  struct cv_plan plan;
  cl_mem ws = NULL, kept = NULL;
  skd_kernel *k, *ks = NULL;
  skd_tensor xp;
  int fresh = 0;
  skd_status st = cv_plan_of(p, g, x, &plan);
  if (st == SKD_OK)
    st = skd_context_derived(ctx, weight->mem, weight->offset, plan.wt * sizeof(float), &kept, &fresh);
  size_t wt_floats = kept ? 0 : plan.wt; /* in the workspace */
  if (st == SKD_OK) st = skd_workspace_get(ctx, (used + wt_floats + plan.xp + plan.part) * sizeof(float), &ws);
  int nv = cv_vectors(g);
  const char *name = cv_kernel_name(p, nv);
  if (st == SKD_OK) st = skd_kernel_get(ctx, "conv", name, &k);
  if (st == SKD_OK && plan.parts > 1) st = skd_kernel_get(ctx, "conv", "conv2d_cv_sum_parts", &ks);
  if (st != SKD_OK) return st;
  skd_tensor wt = kept ? skd_tensor_view(kept, 0, 1, 1, g->k, cpad) : skd_tensor_view(ws, used, 1, 1, g->k, cpad);
  skd_tensor out = plan.parts > 1 ? skd_tensor_view(ws, used + wt_floats + plan.xp, plan.parts, g->n, g->cout,
                                                    g->plane)
                                  : *y;
  if (!kept || fresh) st = cv_transpose_weights(ctx, g, weight, &wt);
  if (st == SKD_OK) st = cv_pad_input(ctx, p, x, ws, used + wt_floats, &xp);
  if (st != SKD_OK) return st;
  skd_args a = skd_args_begin(k);
  skd_arg_int(&a, g->n);
  cv_arg_sizes(&a, p, g, &xp);
  skd_arg_tensor(&a, &xp);
  skd_arg_tensor(&a, &wt);
  skd_arg_int(&a, cpad);
  skd_arg_int(&a, plan.ci_chunk);
  skd_arg_int(&a, plan.parts == 1 && bias != NULL);
  skd_arg_tensor(&a, bias ? bias : weight); /* any valid buffer when there is no bias */
  skd_arg_int(&a, plan.parts == 1 && accumulate);
  skd_arg_tensor(&a, &out);
  /* A work-group of CV_GROUP neighbouring strips (whose windows overlap)
   * runs on one core: with two vectors, groups of one item ran 25-40 %
   * slower than one vector on 3x3 layers, groups of 4 or 8 1.3-1.6x faster.
   * Items past the end return at once. */
  size_t strips = ((size_t)g->n * (size_t)g->plane + CV_PIXELS - 1) / CV_PIXELS;
  size_t local[3] = {CV_GROUP, 1, 1};
  size_t global[3] = {(strips + CV_GROUP - 1) / CV_GROUP * CV_GROUP, (size_t)(cpad / CV_CHANNELS / nv),
                      (size_t)plan.parts};
  skd_profile_work(ctx, name, conv_flops(g), 0);
  st = skd_launch(ctx, &a, 3, global, local);
  if (st != SKD_OK || plan.parts == 1) return st;
  a = skd_args_begin(ks);
  skd_arg_int(&a, g->n);
  skd_arg_int(&a, g->cout);
  skd_arg_int(&a, g->plane);
  skd_arg_int(&a, plan.parts);
  skd_arg_tensor(&a, &out);
  skd_arg_int(&a, bias != NULL);
  skd_arg_tensor(&a, bias ? bias : weight);
  skd_arg_int(&a, accumulate);
  skd_arg_tensor(&a, y);
  return skd_launch_planes(ctx, &a, g->plane, g->cout, (size_t)g->n);
}

/* y = conv(x) (+ bias) by conv2d_direct_fwd: no columns, no GEMM;
 * accumulate: y += conv(x) instead. `used`: workspace floats the caller
 * holds (the flipped weights of a backward pass). */
static skd_status direct_forward(skd_context *ctx, skd_conv2d_algo algo, const skd_conv2d_params *p,
                                 const struct geom *g, const skd_tensor *x, const skd_tensor *weight,
                                 const skd_tensor *bias, int accumulate, const skd_tensor *y, size_t used) {
  if (algo == SKD_CONV2D_VEC) return cv_forward(ctx, p, g, x, weight, bias, accumulate, y, used);
  skd_kernel *k;
  skd_status st = skd_kernel_get(ctx, "conv", "conv2d_direct_fwd", &k);
  if (st != SKD_OK) return st;
  skd_args a = skd_args_begin(k);
  arg_sizes(&a, g, p);
  skd_arg_tensor(&a, x);
  skd_arg_tensor(&a, weight);
  skd_arg_int(&a, bias != NULL);
  skd_arg_tensor(&a, bias ? bias : weight); /* any valid buffer when there is no bias */
  skd_arg_int(&a, accumulate);
  skd_arg_tensor(&a, y);
  const skd_conv_tuning *t = skd_context_conv_tuning(ctx);
  size_t local[3] = {skd_context_wg(ctx, (size_t)t->wg), 1, 1};
  size_t strips = ((size_t)g->plane + (size_t)t->pxb - 1) / (size_t)t->pxb; /* over the flattened plane */
  size_t global[3] = {strips, (size_t)((g->cout + t->cob - 1) / t->cob), (size_t)g->n};
  skd_profile_work(ctx, "conv2d_direct_fwd", conv_flops(g), 0);
  return skd_launch(ctx, &a, 3, global, local);
}

/* dx += the input gradient of a stride-1 convolution as a forward one: dy
 * convolved with the flipped, transposed weights (in the workspace) and
 * padding dilation*(k-1) - pad, by the faster forward kernel. 0 in *done
 * when the padding would be negative (the caller uses the gather kernel).
 * (Strided ones stay with the gather kernel: spreading dy apart by the
 * stride to use the forward kernel measured slower on the discriminator's
 * layers, docs/PERFORMANCE.md.) */
static skd_status flipped_backward_x(skd_context *ctx, skd_conv2d_algo algo, const skd_conv2d_params *p,
                                     const struct geom *g, const skd_tensor *dy, const skd_tensor *weight,
                                     const skd_tensor *dx, int *done) {
  skd_conv2d_params q = *p;
  q.pad_h = p->dilation_h * (p->kh - 1) - p->pad_h;
  q.pad_w = p->dilation_w * (p->kw - 1) - p->pad_w;
  *done = p->stride_h == 1 && p->stride_w == 1 && q.pad_h >= 0 && q.pad_w >= 0;
  if (!*done) return SKD_OK;
  struct geom t = {g->n, g->cout, g->ho, g->wo, g->cin, g->h, g->w, g->cout * p->kh * p->kw, g->h * g->w};
  int total = g->cin * g->cout * p->kh * p->kw;
  cl_mem flipped = NULL;
  skd_kernel *k;
  struct cv_plan plan = {0}; /* what the vec forward takes after the flipped weights */
  skd_status st = algo == SKD_CONV2D_VEC ? cv_plan_of(&q, &t, dy, &plan) : SKD_OK;
  if (st == SKD_OK)
    st = skd_workspace_get(ctx, ((size_t)total + plan.wt + plan.xp + plan.part) * sizeof(float), &flipped);
  if (st == SKD_OK) st = skd_kernel_get(ctx, "conv", "conv2d_flip_weights", &k);
  if (st != SKD_OK) return st;
  skd_tensor wf = skd_tensor_view(flipped, 0, g->cin, g->cout, p->kh, p->kw);
  skd_args a = skd_args_begin(k);
  skd_arg_int(&a, g->cin);
  skd_arg_int(&a, g->cout);
  skd_arg_int(&a, p->kh);
  skd_arg_int(&a, p->kw);
  skd_arg_tensor(&a, weight);
  skd_arg_tensor(&a, &wf);
  size_t global[3] = {(size_t)p->kh * (size_t)p->kw, (size_t)g->cout, (size_t)g->cin};
  st = skd_launch(ctx, &a, 3, global, NULL);
  return st == SKD_OK ? direct_forward(ctx, algo, &q, &t, dy, &wf, NULL, 1, dx, (size_t)total) : st;
}

/* dx += the input gradient by conv2d_direct_bwd_x. */
static skd_status direct_backward_x(skd_context *ctx, const skd_conv2d_params *p, const struct geom *g,
                                    const skd_tensor *dy, const skd_tensor *weight, const skd_tensor *dx) {
  skd_kernel *k;
  skd_status st = skd_kernel_get(ctx, "conv", "conv2d_direct_bwd_x", &k);
  if (st != SKD_OK) return st;
  skd_args a = skd_args_begin(k);
  arg_sizes(&a, g, p);
  skd_arg_tensor(&a, dy);
  skd_arg_tensor(&a, weight);
  skd_arg_tensor(&a, dx);
  const skd_conv_tuning *t = skd_context_conv_tuning(ctx);
  size_t strips = (size_t)(g->w + t->pxb - 1) / (size_t)t->pxb;
  size_t local[3] = {skd_context_wg(ctx, (size_t)t->wg), 1, 1};
  size_t global[3] = {(size_t)g->h * strips, (size_t)((g->cin + t->cob - 1) / t->cob), (size_t)g->n};
  skd_profile_work(ctx, "conv2d_direct_bwd_x", conv_flops(g), 0);
  return skd_launch(ctx, &a, 3, global, local);
}

/* dweight += the weight gradient by conv2d_cv_bwd_w: x zero-padded and dy
 * transposed to [n][pixel][co] first, both in the workspace. */
static skd_status cv_backward_w(skd_context *ctx, const skd_conv2d_params *p, const struct geom *g,
                                const skd_tensor *x, const skd_tensor *dy, const skd_tensor *dweight) {
  int cpad = cv_padded_cout_w(g);
  size_t xp_floats = 0, dyt_floats = (size_t)g->n * (size_t)g->plane * (size_t)cpad;
  cl_mem ws = NULL;
  skd_kernel *kt, *k;
  skd_tensor xp;
  skd_status st = cv_padded_floats(p, x, &xp_floats);
  if (st == SKD_OK) st = skd_workspace_get(ctx, (xp_floats + dyt_floats) * sizeof(float), &ws);
  if (st == SKD_OK) st = skd_kernel_get(ctx, "conv", "conv2d_transpose_dy", &kt);
  if (st == SKD_OK) st = skd_kernel_get(ctx, "conv", "conv2d_cv_bwd_w", &k);
  if (st == SKD_OK) st = cv_pad_input(ctx, p, x, ws, 0, &xp);
  if (st != SKD_OK) return st;
  skd_tensor dyt = skd_tensor_view(ws, xp_floats, g->n, g->plane, 1, cpad);
  skd_args a = skd_args_begin(kt);
  skd_arg_int(&a, g->cout);
  skd_arg_int(&a, g->plane);
  skd_arg_int(&a, cpad);
  skd_arg_tensor(&a, dy);
  skd_arg_tensor(&a, &dyt);
  size_t tglobal[3] = {(size_t)cpad, (size_t)g->plane, (size_t)g->n};
  st = skd_launch(ctx, &a, 3, tglobal, NULL);
  if (st != SKD_OK) return st;
  a = skd_args_begin(k);
  skd_arg_int(&a, g->n);
  cv_arg_sizes(&a, p, g, &xp);
  skd_arg_tensor(&a, &xp);
  skd_arg_tensor(&a, &dyt);
  skd_arg_int(&a, cpad);
  skd_arg_tensor(&a, dweight);
  size_t local[3] = {1, 1, 1}; /* as the forward: one work-item's registers are the block */
  size_t global[3] = {(size_t)p->kh * (size_t)p->kw, ((size_t)g->cin + CV_PIXELS - 1) / CV_PIXELS,
                      (size_t)(cpad / CV_CHANNELS)};
  skd_profile_work(ctx, "conv2d_cv_bwd_w", conv_flops(g), 0);
  return skd_launch(ctx, &a, 3, global, local);
}

/* dweight += the weight gradient by conv2d_direct_bwd_w. */
static skd_status direct_backward_w(skd_context *ctx, const skd_conv2d_params *p, const struct geom *g,
                                    const skd_tensor *x, const skd_tensor *dy, const skd_tensor *dweight) {
  skd_kernel *k;
  skd_status st = skd_kernel_get(ctx, "conv", "conv2d_direct_bwd_w", &k);
  if (st != SKD_OK) return st;
  skd_args a = skd_args_begin(k);
  skd_arg_int(&a, g->n);
  arg_sizes(&a, g, p);
  skd_arg_tensor(&a, x);
  skd_arg_tensor(&a, dy);
  skd_arg_tensor(&a, dweight);
  const skd_conv_tuning *t = skd_context_conv_tuning(ctx);
  size_t taps = (size_t)p->kh * (size_t)p->kw;
  size_t local[2] = {skd_context_wg(ctx, (size_t)t->wg_w), 1};
  size_t global[2] = {taps * (size_t)((g->cin + t->cib - 1) / t->cib), (size_t)((g->cout + t->cob - 1) / t->cob)};
  skd_profile_work(ctx, "conv2d_direct_bwd_w", conv_flops(g), 0);
  return skd_launch(ctx, &a, 2, global, local);
}

static skd_status fill_bias(skd_context *ctx, const struct geom *g, const skd_tensor *bias, const skd_tensor *y) {
  skd_kernel *k;
  skd_status st = skd_kernel_get(ctx, "conv", "conv2d_fwd_bias", &k);
  if (st != SKD_OK) return st;
  int total = g->n * g->cout * g->plane;
  skd_args a = skd_args_begin(k);
  skd_arg_int(&a, total);
  skd_arg_int(&a, g->plane);
  skd_arg_int(&a, g->cout);
  skd_arg_tensor(&a, bias);
  skd_arg_tensor(&a, y);
  return skd_launch_1d(ctx, &a, (size_t)total, 256);
}

static skd_status bias_grad(skd_context *ctx, const struct geom *g, const skd_tensor *dy, const skd_tensor *dbias) {
  skd_kernel *k;
  skd_status st = skd_kernel_get(ctx, "conv", "conv2d_bwd_bias", &k);
  if (st != SKD_OK) return st;
  size_t wg = skd_context_wg(ctx, ctx->info.is_gpu ? 256 : 4); /* CPUs: few work-items walking long runs */
  size_t global = (size_t)g->cout * wg;
  skd_args a = skd_args_begin(k);
  skd_arg_int(&a, g->n);
  skd_arg_int(&a, g->cout);
  skd_arg_int(&a, g->plane);
  skd_arg_tensor(&a, dy);
  skd_arg_tensor(&a, dbias);
  skd_arg_local(&a, wg * sizeof(float));
  return skd_launch(ctx, &a, 1, &global, &wg);
}

/* With profiling, each call's kernels also count under its layer shape
 * (SKD_PROFILE_SHAPE_PREFIX; the profile's table by shape), with its
 * multiply-adds as work: a layer's share and GFLOP/s whatever kernels ran. */
static void profile_shape(skd_context *ctx, const char *pass, const skd_conv2d_params *p, const struct geom *g,
                          double flops) {
  if (!ctx->profiling) return;
  char name[96];
  snprintf(name, sizeof name, "%s%-3s %dx%dx%dx%d>%d k%dx%d s%d d%d %s", SKD_PROFILE_SHAPE_PREFIX, pass, g->n,
           g->cin, g->h, g->w, g->cout, p->kh, p->kw, p->stride_h, p->dilation_h,
           skd_conv2d_algo_name(conv_algorithm(ctx, p, g)));
  skd_profile_group_begin(ctx, name);
  skd_profile_work(ctx, name, flops, 0);
}

static skd_status forward(skd_context *ctx, const skd_conv2d_params *p, struct geom g, const skd_tensor *x,
                          const skd_tensor *weight, const skd_tensor *bias, const skd_tensor *y) {
  skd_status st = SKD_OK;
  skd_conv2d_algo algo = conv_algorithm(ctx, p, &g);
  if (algo != SKD_CONV2D_GEMM) return direct_forward(ctx, algo, p, &g, x, weight, bias, 0, y, 0);
  /* With a bias, y starts as the broadcast bias and the GEMM adds onto it;
   * without, beta = 0 overwrites y whatever it held. */
  float beta = bias ? 1.0f : 0.0f;
  if (bias) st = fill_bias(ctx, &g, bias, y);
  skd_matrix wm = skd_matrix_of(weight->mem, weight->offset, g.k);
  size_t y_stride = (size_t)g.cout * g.plane;
  if (pointwise(p)) {
    if (st == SKD_OK)
      st = skd_gemm_batched(ctx, SKD_NO_TRANS, SKD_NO_TRANS, g.cout, g.plane, g.cin, 1.0f, wm, 0,
                            skd_matrix_sample(x, 0), (size_t)g.cin * g.plane, beta, skd_matrix_sample(y, 0),
                            y_stride, g.n);
    return st;
  }
  int chunk = 1;
  cl_mem col = NULL;
  if (st == SKD_OK) st = plan_chunk(ctx, &g, &chunk);
  if (st == SKD_OK) st = skd_workspace_get(ctx, (size_t)chunk * g.k * g.plane * sizeof(float), &col);
  for (int n0 = 0; st == SKD_OK && n0 < g.n; n0 += chunk) {
    int nb = g.n - n0 < chunk ? g.n - n0 : chunk;
    st = im2col(ctx, p, &g, x, n0, nb, col);
    /* y_n (Cout x P) = W (Cout x K) * col_n (K x P) */
    if (st == SKD_OK)
      st = skd_gemm_batched(ctx, SKD_NO_TRANS, SKD_NO_TRANS, g.cout, g.plane, g.k, 1.0f, wm, 0,
                            skd_matrix_of(col, 0, g.plane), (size_t)g.k * g.plane, beta, skd_matrix_sample(y, n0),
                            y_stride, nb);
  }
  return st;
}

skd_status skd_conv2d_forward(skd_context *ctx, const skd_conv2d_params *p, const skd_tensor *x,
                              const skd_tensor *weight, const skd_tensor *bias, const skd_tensor *y) {
  struct geom g;
  skd_status st = geometry(p, x, weight, &g);
  if (st == SKD_OK) st = skd_tensor_expect(y, g.n, g.cout, g.ho, g.wo, "conv2d: y");
  if (st == SKD_OK && bias) st = skd_tensor_expect(bias, 1, g.cout, 1, 1, "conv2d: bias");
  if (st != SKD_OK) return st;
  profile_shape(ctx, "fwd", p, &g, conv_flops(&g));
  st = forward(ctx, p, g, x, weight, bias, y);
  skd_profile_group_end(ctx);
  return st;
}

/* dx and dW (either may be NULL) by the algorithm of this shape. */
static skd_status backward(skd_context *ctx, const skd_conv2d_params *p, struct geom g, const skd_tensor *x,
                           const skd_tensor *weight, const skd_tensor *dy, const skd_tensor *dx,
                           const skd_tensor *dweight) {
  skd_status st = SKD_OK;
  skd_conv2d_algo algo = conv_algorithm(ctx, p, &g);
  if (algo != SKD_CONV2D_GEMM) {
    int done = 0;
    if (dx) st = flipped_backward_x(ctx, algo, p, &g, dy, weight, dx, &done);
    if (dx && st == SKD_OK && !done) st = direct_backward_x(ctx, p, &g, dy, weight, dx);
    if (st == SKD_OK && dweight)
      st = algo == SKD_CONV2D_VEC ? cv_backward_w(ctx, p, &g, x, dy, dweight)
                                  : direct_backward_w(ctx, p, &g, x, dy, dweight);
    return st;
  }
  skd_matrix wm = skd_matrix_of(weight->mem, weight->offset, g.k);
  size_t dy_stride = (size_t)g.cout * g.plane;
  if (pointwise(p)) {
    /* dW (Cout x Cin) += dy_n (Cout x P) * x_n^T; one GEMM per sample keeps
     * the sum over samples in a fixed order. */
    for (int s = 0; dweight && st == SKD_OK && s < g.n; s++)
      st = skd_gemm(ctx, SKD_NO_TRANS, SKD_TRANS, g.cout, g.cin, g.plane, 1.0f, skd_matrix_sample(dy, s),
                    skd_matrix_sample(x, s), 1.0f, skd_matrix_of(dweight->mem, dweight->offset, g.cin));
    /* dx_n (Cin x P) += W^T (Cin x Cout) * dy_n */
    if (dx && st == SKD_OK)
      st = skd_gemm_batched(ctx, SKD_TRANS, SKD_NO_TRANS, g.cin, g.plane, g.cout, 1.0f, wm, 0,
                            skd_matrix_sample(dy, 0), dy_stride, 1.0f, skd_matrix_sample(dx, 0),
                            (size_t)g.cin * g.plane, g.n);
    return st;
  }

  int chunk = 1;
  cl_mem col = NULL;
  st = plan_chunk(ctx, &g, &chunk);
  if (st == SKD_OK) st = skd_workspace_get(ctx, (size_t)chunk * g.k * g.plane * sizeof(float), &col);
  size_t col_stride = (size_t)g.k * g.plane;
  for (int n0 = 0; st == SKD_OK && n0 < g.n; n0 += chunk) {
    int nb = g.n - n0 < chunk ? g.n - n0 : chunk;
    if (dweight) {
      /* dW (Cout x K) += dy_n (Cout x P) * col_n^T (P x K), sample by sample. */
      st = im2col(ctx, p, &g, x, n0, nb, col);
      for (int s = 0; st == SKD_OK && s < nb; s++)
        st = skd_gemm(ctx, SKD_NO_TRANS, SKD_TRANS, g.cout, g.k, g.plane, 1.0f, skd_matrix_sample(dy, n0 + s),
                      skd_matrix_of(col, (size_t)s * col_stride, g.plane), 1.0f,
                      skd_matrix_of(dweight->mem, dweight->offset, g.k));
    }
    if (dx && st == SKD_OK) {
      /* dcol_n (K x P) = W^T (K x Cout) * dy_n, overwriting the columns
       * (the queue is in order: the dW products above have read them). */
      st = skd_gemm_batched(ctx, SKD_TRANS, SKD_NO_TRANS, g.k, g.plane, g.cout, 1.0f, wm, 0,
                            skd_matrix_sample(dy, n0), dy_stride, 0.0f, skd_matrix_of(col, 0, g.plane), col_stride,
                            nb);
      if (st == SKD_OK) st = col2im_add(ctx, p, &g, col, n0, nb, dx);
    }
  }
  return st;
}

skd_status skd_conv2d_backward(skd_context *ctx, const skd_conv2d_params *p, const skd_tensor *x,
                               const skd_tensor *weight, const skd_tensor *dy, const skd_tensor *dx,
                               const skd_tensor *dweight, const skd_tensor *dbias) {
  struct geom g;
  skd_status st = geometry(p, x, weight, &g);
  if (st == SKD_OK && !dy) st = skd_error(SKD_EINVAL, "conv2d backward: dy is required");
  if (st == SKD_OK) st = skd_tensor_expect(dy, g.n, g.cout, g.ho, g.wo, "conv2d backward: dy");
  if (st == SKD_OK && dx) st = skd_tensor_expect_same(dx, x, "conv2d backward: dx");
  if (st == SKD_OK && dweight) st = skd_tensor_expect_same(dweight, weight, "conv2d backward: dweight");
  if (st == SKD_OK && dbias) st = skd_tensor_expect(dbias, 1, g.cout, 1, 1, "conv2d backward: dbias");
  if (st != SKD_OK) return st;
  if (dbias) st = bias_grad(ctx, &g, dy, dbias);
  if (st != SKD_OK || (!dx && !dweight)) return st;
  profile_shape(ctx, dx && dweight ? "bwd" : dx ? "dx" : "dw", p, &g,
                conv_flops(&g) * ((dx != NULL) + (dweight != NULL)));
  st = backward(ctx, p, g, x, weight, dy, dx, dweight);
  skd_profile_group_end(ctx);
  return st;
}
