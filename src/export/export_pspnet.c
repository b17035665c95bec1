/* skd_onnx_export (skd/export.h): PSPNet's inference pass as an ONNX graph.
 * Value names follow the reference state_dict: a unit's output is named
 * after its conv ("layer1.0.conv1"), its weights keep their checkpoint
 * names (with the batch norm folded in unless kept). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_graph.h"
#include "skd/export.h"

#define FLOAT_T ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT
#define INT64_T ONNX__TENSOR_PROTO__DATA_TYPE__INT64
/* Past this many bytes of weights the model goes over protobuf's 2 GiB. */
#define EXTERNAL_AUTO_BYTES ((size_t)1800 << 20)

typedef struct emit {
  onnx_graph *g;
  skd_context *ctx;
  const skd_onnx_options *opt;
  skd_status st;                 /* a failed download */
  const char *zero, *two, *four; /* 1-D int64 constants [0], [2], [4] */
} emit;

void skd_onnx_options_default(skd_onnx_options *o) {
  memset(o, 0, sizeof *o);
  o->opset = SKD_ONNX_OPSET_DEFAULT;
  o->height = o->width = 512;
  skd_normalize_reference(&o->normalize);
  o->output = SKD_ONNX_LOGITS;
}

/* A parameter's values on the host (free() them); NULL after an error. */
static float *download(emit *e, const skd_param *p) {
  if (e->st != SKD_OK) return NULL;
  size_t n = skd_tensor_numel(&p->value);
  float *v = malloc(n * sizeof *v);
  if (!v) {
    e->st = skd_error(SKD_ENOMEM, "export: out of host memory for %s", p->name);
    return NULL;
  }
  e->st = skd_tensor_download(e->ctx, &p->value, v);
  if (e->st != SKD_OK) {
    free(v);
    return NULL;
  }
  return v;
}

static const char *ints1(emit *e, const char *name, int64_t v) {
  const int64_t dims[1] = {1};
  return og_init_int64(e->g, name, &v, 1, dims);
}

static const char *scalar_i64(emit *e, const char *name, int64_t v) { return og_init_int64(e->g, name, &v, 0, NULL); }

/* The 4-D attribute lists of Conv and MaxPool. */
static void attr_pair(emit *e, Onnx__NodeProto *n, const char *name, int a, int b) {
  const int64_t v[2] = {a, b};
  og_attr_ints(e->g, n, name, 2, v);
}

static void attr_pads(emit *e, Onnx__NodeProto *n, int ph, int pw) {
  const int64_t v[4] = {ph, pw, ph, pw}; /* begins, then ends */
  og_attr_ints(e->g, n, "pads", 4, v);
}

/* x -> act(bn(conv(x))) for one conv unit; the output's name is the conv's
 * parameter prefix ("layer1.0.conv1"). */
static const char *conv_unit(emit *e, const skd_nn_conv_bn *u, const char *x) {
  onnx_graph *g = e->g;
  const char *wname = u->weight->name;
  size_t plen = strlen(wname) - strlen(".weight");
  const char *prefix = og_str(g, "%.*s", (int)plen, wname);
  const int cout = u->cout, cin = u->cin, kh = u->conv.kh, kw = u->conv.kw;
  const size_t per_out = (size_t)cin * (size_t)kh * (size_t)kw;
  const int fold = u->gamma && !e->opt->keep_batchnorm;
  float *w = download(e, u->weight), *b = u->bias ? download(e, u->bias) : NULL;
  float *gamma = NULL, *beta = NULL, *mean = NULL, *var = NULL, *fb = NULL;
  if (u->gamma) {
    gamma = download(e, u->gamma);
    beta = download(e, u->beta);
    mean = download(e, u->rmean);
    var = download(e, u->rvar);
  }
  const char *out = "";
  if (e->st != SKD_OK) goto done;
  if (fold) {
    /* bn(conv(x)) = conv with weight w * s and bias beta + (b - mean) * s,
     * s = gamma / sqrt(var + eps), per output channel (in double). */
    fb = malloc((size_t)cout * sizeof *fb);
    if (!fb) {
      e->st = skd_error(SKD_ENOMEM, "export: out of host memory");
      goto done;
    }
    for (int o = 0; o < cout; o++) {
      double s = (double)gamma[o] / sqrt((double)var[o] + (double)SKD_BN_EPS);
      for (size_t i = 0; i < per_out; i++) w[(size_t)o * per_out + i] = (float)((double)w[(size_t)o * per_out + i] * s);
      fb[o] = (float)((double)beta[o] + ((b ? (double)b[o] : 0.0) - (double)mean[o]) * s);
    }
  }
  const int64_t wdims[4] = {cout, cin, kh, kw}, cdims[1] = {cout};
  const char *wi = og_init_float(g, wname, w, 4, wdims);
  const float *bias = fold ? fb : b;
  const char *bi = bias ? og_init_float(g, og_str(g, "%s.bias", prefix), bias, 1, cdims) : NULL;
  const char *conv_out = u->gamma && !fold ? og_str(g, "%s.conv", prefix) : prefix;
  Onnx__NodeProto *n = bi ? og_node(g, "Conv", conv_out, x, wi, bi, NULL) : og_node(g, "Conv", conv_out, x, wi, NULL);
  attr_pair(e, n, "kernel_shape", kh, kw);
  attr_pair(e, n, "strides", u->conv.stride_h, u->conv.stride_w);
  attr_pads(e, n, u->conv.pad_h, u->conv.pad_w);
  attr_pair(e, n, "dilations", u->conv.dilation_h, u->conv.dilation_w);
  og_attr_int(g, n, "group", 1);
  out = og_out(n);
  if (u->gamma && !fold) {
    Onnx__NodeProto *m =
        og_node(g, "BatchNormalization", prefix, out, og_init_float(g, u->gamma->name, gamma, 1, cdims),
                og_init_float(g, u->beta->name, beta, 1, cdims), og_init_float(g, u->rmean->name, mean, 1, cdims),
                og_init_float(g, u->rvar->name, var, 1, cdims), NULL);
    og_attr_float(g, m, "epsilon", SKD_BN_EPS);
    out = og_out(m);
  }
  if (u->act == SKD_BN_ACT_RELU) {
    out = og_out(og_node(g, "Relu", og_str(g, "%s.relu", prefix), out, NULL));
  } else if (u->act == SKD_BN_ACT_LEAKY_RELU) {
    Onnx__NodeProto *m = og_node(g, "LeakyRelu", og_str(g, "%s.leaky_relu", prefix), out, NULL);
    og_attr_float(g, m, "alpha", u->slope);
    out = og_out(m);
  }
done:
  free(w), free(b), free(gamma), free(beta), free(mean), free(var), free(fb);
  return out;
}

/* relu(block(x) + shortcut). */
static const char *block(emit *e, const skd_resnet_block *b, const char *x, int layer, int index) {
  const char *t = x;
  for (int i = 0; i < b->nconv; i++) t = conv_unit(e, &b->conv[i], t);
  const char *shortcut = b->has_down ? conv_unit(e, &b->down, x) : x;
  const char *sum = og_out(og_node(e->g, "Add", og_str(e->g, "layer%d.%d.add", layer, index), t, shortcut, NULL));
  return og_out(og_node(e->g, "Relu", og_str(e->g, "layer%d.%d", layer, index), sum, NULL));
}

static const char *backbone(emit *e, const skd_resnet *r, const char *x) {
  for (int i = 0; i < 3; i++) x = conv_unit(e, &r->stem[i], x);
  Onnx__NodeProto *n = og_node(e->g, "MaxPool", "maxpool", x, NULL);
  attr_pair(e, n, "kernel_shape", r->maxpool.kernel, r->maxpool.kernel);
  attr_pair(e, n, "strides", r->maxpool.stride, r->maxpool.stride);
  attr_pads(e, n, r->maxpool.padding, r->maxpool.padding);
  og_attr_int(e->g, n, "ceil_mode", r->maxpool.ceil_mode);
  x = og_out(n);
  for (int l = 0; l < 4; l++)
    for (int b = 0; b < r->nblocks[l]; b++) x = block(e, &r->blocks[l][b], x, l + 1, b);
  return x;
}

/* v[start:end] of a 1-D int64 value (start and end: 1-D constants). */
static const char *slice(emit *e, const char *v, const char *start, const char *end, const char *name) {
  return og_out(og_node(e->g, "Slice", name, v, start, end, NULL));
}

/* Bilinear resize (align_corners) of x (N, C, h, w) to the H x W of like. */
static const char *resize_like(emit *e, const char *x, const char *like, const char *name) {
  onnx_graph *g = e->g;
  const char *nc = slice(e, og_out(og_node(g, "Shape", og_str(g, "%s.shape_in", name), x, NULL)), e->zero, e->two,
                         og_str(g, "%s.nc", name));
  const char *hw = slice(e, og_out(og_node(g, "Shape", og_str(g, "%s.shape_like", name), like, NULL)), e->two, e->four,
                         og_str(g, "%s.hw", name));
  Onnx__NodeProto *sizes = og_node(g, "Concat", og_str(g, "%s.sizes", name), nc, hw, NULL);
  og_attr_int(g, sizes, "axis", 0);
  Onnx__NodeProto *n = og_node(g, "Resize", name, x, "", "", og_out(sizes), NULL);
  og_attr_string(g, n, "mode", "linear");
  og_attr_string(g, n, "coordinate_transformation_mode", "align_corners");
  return og_out(n);
}

/* PyTorch's adaptive-pool bin i of `bins` over len: [start, end). */
static void bin_range(int len, int bins, int i, int *start, int *end) {
  *start = i * len / bins;
  *end = ((i + 1) * len + bins - 1) / bins;
}

/* The constant pooling matrix of one axis: (bins, len) or, transposed,
 * (len, bins). */
static const char *pool_matrix_fixed(emit *e, int len, int bins, int transposed, const char *name) {
  float *m = calloc((size_t)len * (size_t)bins, sizeof *m);
  if (!m) {
    e->st = skd_error(SKD_ENOMEM, "export: out of host memory");
    return "";
  }
  for (int i = 0; i < bins; i++) {
    int s, t;
    bin_range(len, bins, i, &s, &t);
    for (int y = s; y < t; y++) m[transposed ? (size_t)y * bins + i : (size_t)i * len + y] = 1.0f / (float)(t - s);
  }
  const int64_t dims[2] = {transposed ? len : bins, transposed ? bins : len};
  const char *out = og_init_float(e->g, name, m, 2, dims);
  free(m);
  return out;
}

/* The same matrix computed in the graph from len (an int64 scalar value):
 * start_i = i * len / b and end_i = ((i + 1) * len + b - 1) / b (integer
 * division of non-negative values, so floor and ceil as in PyTorch), then
 * P[i, y] = (start_i <= y < end_i) / (end_i - start_i). */
static const char *pool_matrix_dynamic(emit *e, const char *len, int bins, int transposed, const char *name) {
  onnx_graph *g = e->g;
  int64_t idx[6], idx1[6];
  for (int i = 0; i < bins; i++) idx[i] = i, idx1[i] = i + 1;
  const int64_t col[2] = {bins, 1};
  const char *i0 = og_init_int64(g, og_str(g, "%s.i", name), idx, 2, col);
  const char *i1 = og_init_int64(g, og_str(g, "%s.i_plus_1", name), idx1, 2, col);
  const char *b = scalar_i64(e, og_str(g, "%s.bins", name), bins);
  const char *bm1 = scalar_i64(e, og_str(g, "%s.bins_minus_1", name), bins - 1);
#define OP(op, out, ...) og_out(og_node(g, op, og_str(g, "%s." out, name), __VA_ARGS__, NULL))
  const char *start = OP("Div", "start", OP("Mul", "i_len", i0, len), b);
  const char *end = OP("Div", "end", OP("Add", "i1_len_ceil", OP("Mul", "i1_len", i1, len), bm1), b);
  const char *y =
      OP("Range", "y", scalar_i64(e, og_str(g, "%s.zero", name), 0), len, scalar_i64(e, og_str(g, "%s.one", name), 1));
  const char *inside =
      OP("And", "inside", OP("GreaterOrEqual", "after_start", y, start), OP("Less", "before_end", y, end));
  Onnx__NodeProto *maskf = og_node(g, "Cast", og_str(g, "%s.mask", name), inside, NULL);
  og_attr_int(g, maskf, "to", FLOAT_T);
  Onnx__NodeProto *count = og_node(g, "Cast", og_str(g, "%s.count", name), OP("Sub", "size", end, start), NULL);
  og_attr_int(g, count, "to", FLOAT_T);
  const char *m = OP("Div", "rows", og_out(maskf), og_out(count)); /* (bins, len) */
#undef OP
  if (!transposed) return m;
  Onnx__NodeProto *t = og_node(g, "Transpose", name, m, NULL);
  const int64_t perm[2] = {1, 0};
  og_attr_ints(g, t, "perm", 2, perm);
  return og_out(t);
}

/* x4 (N, C4, h, w) -> F (N, Cf, h, w); h and w known (> 0) or not (0). */
static const char *psp(emit *e, skd_pspnet *net, const char *x4, int h, int w) {
  onnx_graph *g = e->g;
  const char *len_h = NULL, *len_w = NULL;
  if (h <= 0) {
    const char *shape = og_out(og_node(g, "Shape", "pspmodule.x_shape", x4, NULL));
    len_h = og_out(og_node(g, "Gather", "pspmodule.x_height", shape, scalar_i64(e, "pspmodule.axis_h", 2), NULL));
    len_w = og_out(og_node(g, "Gather", "pspmodule.x_width", shape, scalar_i64(e, "pspmodule.axis_w", 3), NULL));
  }
  const char *inputs[5];
  for (int s = 0; s < 4; s++) {
    const int b = net->bins[s];
    const char *rows_name = og_str(g, "pspmodule.stages.%d.pool_rows", s);
    const char *cols_name = og_str(g, "pspmodule.stages.%d.pool_cols", s);
    const char *rows =
        h > 0 ? pool_matrix_fixed(e, h, b, 0, rows_name) : pool_matrix_dynamic(e, len_h, b, 0, rows_name);
    const char *cols =
        w > 0 ? pool_matrix_fixed(e, w, b, 1, cols_name) : pool_matrix_dynamic(e, len_w, b, 1, cols_name);
    const char *r = og_out(og_node(g, "MatMul", og_str(g, "pspmodule.stages.%d.pooled_rows", s), rows, x4, NULL));
    const char *pooled = og_out(og_node(g, "MatMul", og_str(g, "pspmodule.stages.%d.pooled", s), r, cols, NULL));
    const char *y = conv_unit(e, &net->stage[s], pooled);
    inputs[s] = resize_like(e, y, x4, og_str(g, "pspmodule.stages.%d.up", s));
  }
  inputs[4] = x4;
  Onnx__NodeProto *cat =
      og_node(g, "Concat", "pspmodule.cat", inputs[0], inputs[1], inputs[2], inputs[3], inputs[4], NULL);
  og_attr_int(g, cat, "axis", 1);
  return conv_unit(e, &net->bottleneck, og_out(cat));
}

/* 0-255 RGB -> the normalised tensor skd-cl feeds its networks. */
static const char *normalise(emit *e, const char *x) {
  onnx_graph *g = e->g;
  const skd_normalize *nz = &e->opt->normalize;
  if (nz->bgr) {
    const int64_t order[3] = {2, 1, 0}, dims[1] = {3};
    Onnx__NodeProto *n =
        og_node(g, "Gather", "input.bgr", x, og_init_int64(g, "normalise.bgr_order", order, 1, dims), NULL);
    og_attr_int(g, n, "axis", 1);
    x = og_out(n);
  }
  const int64_t dims[4] = {1, 3, 1, 1};
  float inv[3];
  int unit = 1;
  for (int c = 0; c < 3; c++) {
    inv[c] = 1.0f / nz->std[c]; /* as skd_normalize_sample */
    unit = unit && inv[c] == 1.0f;
  }
  x = og_out(og_node(g, "Sub", "input.centred", x, og_init_float(g, "normalise.mean", nz->mean, 4, dims), NULL));
  if (!unit)
    x = og_out(og_node(g, "Mul", "input.normalised", x, og_init_float(g, "normalise.inv_std", inv, 4, dims), NULL));
  return x;
}

static skd_status check_options(skd_pspnet *net, const skd_onnx_options *o, int *ho, int *wo) {
  if (o->opset < SKD_ONNX_OPSET_MIN || o->opset > SKD_ONNX_OPSET_MAX)
    return skd_error(SKD_EUNSUPPORTED, "export: opset %d is not supported (skd-cl writes opsets %d to %d)", o->opset,
                     SKD_ONNX_OPSET_MIN, SKD_ONNX_OPSET_MAX);
  if (o->output < SKD_ONNX_LOGITS || o->output > SKD_ONNX_LABELS)
    return skd_error(SKD_EINVAL, "export: unknown output kind %d", (int)o->output);
  for (int c = 0; c < 3; c++)
    if (!(o->normalize.std[c] > 0.0f))
      return skd_error(SKD_EINVAL, "export: normalisation std[%d] = %g must be > 0", c, (double)o->normalize.std[c]);
  *ho = *wo = 0;
  if (o->dynamic) return SKD_OK;
  if (o->height < 1 || o->width < 1)
    return skd_error(SKD_EINVAL, "export: the input size %dx%d is empty", o->width, o->height);
  skd_status st = skd_pspnet_output_shape(net, o->height, o->width, ho, wo);
  if (st != SKD_OK)
    return skd_error(st, "export: the network cannot run on %dx%d images: %s", o->width, o->height, skd_error_last());
  return SKD_OK;
}

static void fmt3(char *buf, size_t size, const float *v) {
  snprintf(buf, size, "%.9g,%.9g,%.9g", (double)v[0], (double)v[1], (double)v[2]);
}

skd_status skd_onnx_export(skd_pspnet *net, const skd_onnx_options *opt, const char *path) {
  int ho, wo;
  skd_status st = check_options(net, opt, &ho, &wo);
  if (st != SKD_OK) return st;
  onnx_graph g;
  og_init(&g);
  emit e = {&g, net->ctx, opt, SKD_OK, NULL, NULL, NULL};
  e.zero = ints1(&e, "shape.0", 0);
  e.two = ints1(&e, "shape.2", 2);
  e.four = ints1(&e, "shape.4", 4);

  const int classes = net->cfg.classes;
  const int64_t in_dims[4] = {0, 3, opt->dynamic ? 0 : opt->height, opt->dynamic ? 0 : opt->width};
  const char *const params[4] = {"batch", NULL, "height", "width"};
  og_input(&g, "input", FLOAT_T, 4, in_dims, params);
  const char *x = opt->bake_normalisation ? normalise(&e, "input") : "input";
  x = backbone(&e, &net->backbone, x);
  x = psp(&e, net, x, ho, wo);
  x = conv_unit(&e, &net->head, x);
  const char *names[3] = {"logits", "probabilities", "labels"};
  const char *final = names[opt->output];
  x = resize_like(&e, x, "input", opt->output == SKD_ONNX_LOGITS ? final : "logits");
  if (opt->output == SKD_ONNX_PROBABILITIES) {
    og_attr_int(&g, og_node(&g, "Softmax", final, x, NULL), "axis", 1);
  } else if (opt->output == SKD_ONNX_LABELS) {
    Onnx__NodeProto *n = og_node(&g, "ArgMax", final, x, NULL);
    og_attr_int(&g, n, "axis", 1);
    og_attr_int(&g, n, "keepdims", 0);
  }
  if (opt->output == SKD_ONNX_LABELS) {
    const int64_t dims[3] = {0, in_dims[2], in_dims[3]};
    const char *const p3[3] = {"batch", "height", "width"};
    og_output(&g, final, INT64_T, 3, dims, p3);
  } else {
    const int64_t dims[4] = {0, classes, in_dims[2], in_dims[3]};
    og_output(&g, final, FLOAT_T, 4, dims, params);
  }

  char network[96], ncls[16], mean[64], std[64];
  snprintf(network, sizeof network, "PSPNet, dilated ResNet-%d backbone, width %g", net->cfg.depth, net->cfg.width);
  snprintf(ncls, sizeof ncls, "%d", classes);
  fmt3(mean, sizeof mean, opt->normalize.mean);
  fmt3(std, sizeof std, opt->normalize.std);
  const char *order = opt->normalize.bgr ? "BGR" : "RGB";
  og_meta *meta = calloc((size_t)opt->nmeta + 16, sizeof *meta);
  if (!meta) st = skd_error(SKD_ENOMEM, "export: out of host memory");
  int nm = 0;
  if (meta) {
    meta[nm++] = (og_meta){"skd_cl.network", network};
    meta[nm++] = (og_meta){"skd_cl.classes", ncls};
    meta[nm++] = (og_meta){"skd_cl.input",
                           opt->bake_normalisation
                               ? "RGB, 0-255: the normalisation below is part of the graph"
                               : "normalised: in[c] = (pixel[channel_order[c]] - mean[c]) / std[c], pixels 0-255"};
    meta[nm++] = (og_meta){"skd_cl.channel_order", order};
    meta[nm++] = (og_meta){"skd_cl.mean", mean};
    meta[nm++] = (og_meta){"skd_cl.std", std};
    meta[nm++] = (og_meta){"skd_cl.output", final};
    meta[nm++] = (og_meta){"skd_cl.upsampling", "bilinear, align_corners (to the input size)"};
    meta[nm++] = (og_meta){"skd_cl.batchnorm",
                           opt->keep_batchnorm ? "BatchNormalization nodes" : "folded into the convolutions"};
    for (int i = 0; i < opt->nmeta; i++) meta[nm++] = (og_meta){opt->meta[i].key, opt->meta[i].value};
  }
  if (st == SKD_OK) st = e.st;
  if (st == SKD_OK) st = og_status(&g);
  if (st == SKD_OK) {
    og_model_info info = {
        opt->opset,
        opt->producer_version ? opt->producer_version : "",
        "skd_cl_pspnet",
        "PSPNet student exported by skd-cl (see docs/EXPORT.md)",
        meta,
        nm,
        opt->external_data || skd_nn_params_numel(&net->params, 0) * sizeof(float) > EXTERNAL_AUTO_BYTES};
    st = og_write(&g, &info, path);
  }
  free(meta);
  og_free(&g);
  return st;
}
