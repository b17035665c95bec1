/* The ONNX graph builder (onnx_graph.h). */
#include "onnx_graph.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skd/io/fs.h"

#define MAX_ATTRS 8       /* per node; the most any op here takes is 5 */
#define EXTERNAL_MIN 1024 /* bytes: smaller initializers stay inside the model */
#define EXTERNAL_ALIGN 64 /* offsets in the data file */

void og_init(onnx_graph *g) { memset(g, 0, sizeof *g); }

void og_free(onnx_graph *g) {
  for (size_t i = 0; i < g->nallocs; i++) free(g->allocs[i]);
  free(g->allocs);
  free(g->nodes);
  free(g->inits);
  memset(g, 0, sizeof *g);
}

skd_status og_status(const onnx_graph *g) { return g->st; }

static void fail_oom(onnx_graph *g) {
  if (g->st == SKD_OK) g->st = skd_error(SKD_ENOMEM, "export: out of host memory");
}

/* Appends p to a growing pointer array; 0 after an error. */
static int push(onnx_graph *g, void ***array, size_t *n, size_t *cap, void *p) {
  if (g->st != SKD_OK || !p) return 0;
  if (*n == *cap) {
    size_t c = *cap ? 2 * *cap : 64;
    void **a = realloc(*array, c * sizeof *a);
    if (!a) {
      fail_oom(g);
      return 0;
    }
    *array = a;
    *cap = c;
  }
  (*array)[(*n)++] = p;
  return 1;
}

/* Zeroed memory owned by the graph; NULL after an error. */
static void *alloc(onnx_graph *g, size_t size) {
  if (g->st != SKD_OK) return NULL;
  void *p = calloc(1, size ? size : 1);
  if (!p) {
    fail_oom(g);
    return NULL;
  }
  if (!push(g, &g->allocs, &g->nallocs, &g->cap_allocs, p)) {
    free(p);
    return NULL;
  }
  return p;
}

static char *copy_str(onnx_graph *g, const char *s) {
  size_t n = strlen(s);
  char *p = alloc(g, n + 1);
  if (p) memcpy(p, s, n + 1);
  return p;
}

const char *og_str(onnx_graph *g, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *p = n >= 0 ? alloc(g, (size_t)n + 1) : NULL;
  if (!p) return "";
  va_start(ap, fmt);
  vsnprintf(p, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return p;
}

Onnx__NodeProto *og_node(onnx_graph *g, const char *op, const char *out, ...) {
  va_list ap;
  size_t nin = 0;
  va_start(ap, out);
  while (va_arg(ap, const char *)) nin++;
  va_end(ap);
  Onnx__NodeProto *n = alloc(g, sizeof *n);
  char **inputs = alloc(g, nin * sizeof *inputs), **outputs = alloc(g, sizeof *outputs);
  Onnx__AttributeProto **attrs = alloc(g, MAX_ATTRS * sizeof *attrs);
  if (!n || !inputs || !outputs || !attrs) return NULL;
  onnx__node_proto__init(n);
  va_start(ap, out);
  for (size_t i = 0; i < nin; i++) inputs[i] = copy_str(g, va_arg(ap, const char *));
  va_end(ap);
  outputs[0] = out ? copy_str(g, out) : (char *)og_str(g, "%s_%d", op, ++g->serial);
  n->n_input = nin;
  n->input = inputs;
  n->n_output = 1;
  n->output = outputs;
  n->op_type = copy_str(g, op);
  n->name = (char *)og_str(g, "%s_node", outputs[0] ? outputs[0] : "");
  n->attribute = attrs;
  if (!push(g, (void ***)&g->nodes, &g->nnodes, &g->cap_nodes, n)) return NULL;
  return g->st == SKD_OK ? n : NULL;
}

const char *og_out(const Onnx__NodeProto *n) { return n ? n->output[0] : ""; }

static Onnx__AttributeProto *new_attr(onnx_graph *g, Onnx__NodeProto *n, const char *name,
                                      Onnx__AttributeProto__AttributeType type) {
  if (!n || g->st != SKD_OK) return NULL;
  assert(n->n_attribute < MAX_ATTRS);
  Onnx__AttributeProto *a = alloc(g, sizeof *a);
  if (!a) return NULL;
  onnx__attribute_proto__init(a);
  a->name = copy_str(g, name);
  a->has_type = 1;
  a->type = type;
  n->attribute[n->n_attribute++] = a;
  return a;
}

void og_attr_int(onnx_graph *g, Onnx__NodeProto *n, const char *name, int64_t v) {
  Onnx__AttributeProto *a = new_attr(g, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
  if (!a) return;
  a->has_i = 1;
  a->i = v;
}

void og_attr_float(onnx_graph *g, Onnx__NodeProto *n, const char *name, float v) {
  Onnx__AttributeProto *a = new_attr(g, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
  if (!a) return;
  a->has_f = 1;
  a->f = v;
}

void og_attr_string(onnx_graph *g, Onnx__NodeProto *n, const char *name, const char *v) {
  Onnx__AttributeProto *a = new_attr(g, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
  char *s = a ? copy_str(g, v) : NULL;
  if (!s) return;
  a->has_s = 1;
  a->s.len = strlen(s);
  a->s.data = (uint8_t *)s;
}

void og_attr_ints(onnx_graph *g, Onnx__NodeProto *n, const char *name, int count, const int64_t *v) {
  Onnx__AttributeProto *a = new_attr(g, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
  int64_t *vals = a ? alloc(g, (size_t)count * sizeof *vals) : NULL;
  if (!vals) return;
  memcpy(vals, v, (size_t)count * sizeof *vals);
  a->n_ints = (size_t)count;
  a->ints = vals;
}

static const char *add_init(onnx_graph *g, const char *name, int type, const void *v, size_t elem_size, int ndim,
                            const int64_t *dims) {
  size_t count = 1;
  for (int i = 0; i < ndim; i++) count *= (size_t)dims[i];
  Onnx__TensorProto *t = alloc(g, sizeof *t);
  int64_t *d = alloc(g, (size_t)ndim * sizeof *d);
  uint8_t *data = alloc(g, count * elem_size);
  if (!t || !d || !data) return "";
  onnx__tensor_proto__init(t);
  if (ndim > 0) memcpy(d, dims, (size_t)ndim * sizeof *d);
  /* raw_data is little-endian: the host's order on every platform skd-cl runs on. */
  memcpy(data, v, count * elem_size);
  t->n_dims = (size_t)ndim;
  t->dims = d;
  t->has_data_type = 1;
  t->data_type = type;
  t->name = copy_str(g, name);
  t->has_raw_data = 1;
  t->raw_data.len = count * elem_size;
  t->raw_data.data = data;
  if (!push(g, (void ***)&g->inits, &g->ninits, &g->cap_inits, t)) return "";
  return t->name ? t->name : "";
}

const char *og_init_float(onnx_graph *g, const char *name, const float *v, int ndim, const int64_t *dims) {
  return add_init(g, name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, v, sizeof(float), ndim, dims);
}

const char *og_init_int64(onnx_graph *g, const char *name, const int64_t *v, int ndim, const int64_t *dims) {
  return add_init(g, name, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, v, sizeof(int64_t), ndim, dims);
}

static Onnx__ValueInfoProto *value_info(onnx_graph *g, const char *name, int elem_type, int ndim, const int64_t *dims,
                                        const char *const *params) {
  Onnx__ValueInfoProto *v = alloc(g, sizeof *v);
  Onnx__TypeProto *type = alloc(g, sizeof *type);
  Onnx__TypeProto__Tensor *tt = alloc(g, sizeof *tt);
  Onnx__TensorShapeProto *shape = alloc(g, sizeof *shape);
  Onnx__TensorShapeProto__Dimension **dim = alloc(g, (size_t)ndim * sizeof *dim);
  if (!v || !type || !tt || !shape || !dim) return NULL;
  onnx__value_info_proto__init(v);
  onnx__type_proto__init(type);
  onnx__type_proto__tensor__init(tt);
  onnx__tensor_shape_proto__init(shape);
  for (int i = 0; i < ndim; i++) {
    Onnx__TensorShapeProto__Dimension *d = alloc(g, sizeof *d);
    if (!d) return NULL;
    onnx__tensor_shape_proto__dimension__init(d);
    if (dims[i] > 0) {
      d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
      d->dim_value = dims[i];
    } else {
      d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
      d->dim_param = copy_str(g, params[i]);
    }
    dim[i] = d;
  }
  shape->n_dim = (size_t)ndim;
  shape->dim = dim;
  tt->has_elem_type = 1;
  tt->elem_type = elem_type;
  tt->shape = shape;
  type->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
  type->tensor_type = tt;
  v->name = copy_str(g, name);
  v->type = type;
  return g->st == SKD_OK ? v : NULL;
}

/* Graphs here have one input and one output. */
void og_input(onnx_graph *g, const char *name, int elem_type, int ndim, const int64_t *dims,
              const char *const *params) {
  assert(g->ninputs == 0);
  Onnx__ValueInfoProto *v = value_info(g, name, elem_type, ndim, dims, params);
  g->inputs = alloc(g, sizeof *g->inputs);
  if (!v || !g->inputs) return;
  g->inputs[0] = v;
  g->ninputs = 1;
}

void og_output(onnx_graph *g, const char *name, int elem_type, int ndim, const int64_t *dims,
               const char *const *params) {
  assert(g->noutputs == 0);
  Onnx__ValueInfoProto *v = value_info(g, name, elem_type, ndim, dims, params);
  g->outputs = alloc(g, sizeof *g->outputs);
  if (!v || !g->outputs) return;
  g->outputs[0] = v;
  g->noutputs = 1;
}

/* ---- writing ---- */

static Onnx__StringStringEntryProto *entry(onnx_graph *g, const char *key, const char *value) {
  Onnx__StringStringEntryProto *e = alloc(g, sizeof *e);
  if (!e) return NULL;
  onnx__string_string_entry_proto__init(e);
  e->key = copy_str(g, key);
  e->value = copy_str(g, value);
  return e;
}

/* Moves the large initializers' values into one buffer written to
 * data_path, pointing each tensor at its part. */
static skd_status write_external(onnx_graph *g, const char *data_path, const char *location) {
  size_t total = 0;
  for (size_t i = 0; i < g->ninits; i++) {
    const Onnx__TensorProto *t = g->inits[i];
    if (t->raw_data.len >= EXTERNAL_MIN)
      total = (total + EXTERNAL_ALIGN - 1) / EXTERNAL_ALIGN * EXTERNAL_ALIGN + t->raw_data.len;
  }
  uint8_t *buf = malloc(total ? total : 1);
  if (!buf) return skd_error(SKD_ENOMEM, "export: out of host memory for %zu bytes of external data", total);
  memset(buf, 0, total);
  size_t at = 0;
  for (size_t i = 0; i < g->ninits && g->st == SKD_OK; i++) {
    Onnx__TensorProto *t = g->inits[i];
    if (t->raw_data.len < EXTERNAL_MIN) continue;
    at = (at + EXTERNAL_ALIGN - 1) / EXTERNAL_ALIGN * EXTERNAL_ALIGN;
    memcpy(buf + at, t->raw_data.data, t->raw_data.len);
    Onnx__StringStringEntryProto **e = alloc(g, 3 * sizeof *e);
    if (!e) break;
    e[0] = entry(g, "location", location);
    e[1] = entry(g, "offset", og_str(g, "%zu", at));
    e[2] = entry(g, "length", og_str(g, "%zu", t->raw_data.len));
    t->n_external_data = 3;
    t->external_data = e;
    t->has_data_location = 1;
    t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    at += t->raw_data.len;
    t->has_raw_data = 0;
    t->raw_data.len = 0;
    t->raw_data.data = NULL;
  }
  skd_status st = g->st;
  if (st == SKD_OK) st = skd_write_file_atomic(data_path, buf, total);
  free(buf);
  return st;
}

static skd_status write_model(onnx_graph *g, const og_model_info *info, const char *path);

skd_status og_write(onnx_graph *g, const og_model_info *info, const char *path) {
  if (g->st != SKD_OK) return g->st;
  const char *data_path = NULL;
  if (info->external_data) {
    const char *base = strrchr(path, '/');
    const char *location = og_str(g, "%s.data", base ? base + 1 : path);
    data_path = og_str(g, "%s.data", path);
    skd_status st = write_external(g, data_path, location);
    if (st != SKD_OK) return st;
  }
  skd_status st = write_model(g, info, path);
  if (st != SKD_OK && data_path) remove(data_path); /* no model, so no data file either */
  return st;
}

static skd_status write_model(onnx_graph *g, const og_model_info *info, const char *path) {
  Onnx__ModelProto model = ONNX__MODEL_PROTO__INIT;
  Onnx__GraphProto graph = ONNX__GRAPH_PROTO__INIT;
  Onnx__OperatorSetIdProto opset = ONNX__OPERATOR_SET_ID_PROTO__INIT;
  Onnx__OperatorSetIdProto *opsets[1] = {&opset};
  opset.domain = (char *)"";
  opset.has_version = 1;
  opset.version = info->opset;
  graph.name = (char *)info->graph_name;
  graph.n_node = g->nnodes;
  graph.node = g->nodes;
  graph.n_initializer = g->ninits;
  graph.initializer = g->inits;
  graph.n_input = g->ninputs;
  graph.input = g->inputs;
  graph.n_output = g->noutputs;
  graph.output = g->outputs;
  model.has_ir_version = 1;
  model.ir_version = info->opset >= 15 ? 8 : 7; /* the IR version that came with the opset */
  model.n_opset_import = 1;
  model.opset_import = opsets;
  model.producer_name = (char *)"skd-cl";
  model.producer_version = (char *)info->producer_version;
  model.has_model_version = 1;
  model.model_version = 1;
  model.doc_string = (char *)info->doc;
  model.graph = &graph;
  Onnx__StringStringEntryProto **meta = alloc(g, (size_t)info->nmeta * sizeof *meta);
  for (int i = 0; meta && i < info->nmeta; i++) meta[i] = entry(g, info->meta[i].key, info->meta[i].value);
  if (g->st != SKD_OK) return g->st;
  model.n_metadata_props = (size_t)info->nmeta;
  model.metadata_props = meta;

  size_t size = protobuf_c_message_get_packed_size(&model.base);
  if (size > (size_t)INT32_MAX)
    return skd_error(SKD_EINVAL,
                     "%s: the model would be %zu bytes, over protobuf's 2 GiB limit: export it with "
                     "--external-data (the weights then go to %s.data)",
                     path, size, path);
  uint8_t *buf = malloc(size ? size : 1);
  if (!buf) return skd_error(SKD_ENOMEM, "export: out of host memory for a %zu-byte model", size);
  size_t packed = protobuf_c_message_pack(&model.base, buf);
  skd_status st = packed == size ? skd_write_file_atomic(path, buf, size)
                                 : skd_error(SKD_EINVAL, "export: packed %zu bytes, expected %zu", packed, size);
  free(buf);
  return st;
}
