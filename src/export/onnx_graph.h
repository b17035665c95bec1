/* A small builder for ONNX graphs over the protobuf-c structs generated
 * from onnx_subset.proto: nodes, attributes, initializers, graph inputs and
 * outputs, and writing the model (export.h says what the file holds).
 *
 * Errors are sticky: after the first failure (out of memory) every call
 * does nothing and returns NULL or "", and og_status() tells; the code that
 * emits a network can then read as a plain list of nodes and check once.
 * Every struct and string is allocated by the builder and freed by
 * og_free. */
#ifndef SKD_EXPORT_ONNX_GRAPH_H
#define SKD_EXPORT_ONNX_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "onnx_subset.pb-c.h"
#include "skd/status.h"

typedef struct onnx_graph {
  void **allocs; /* everything the builder allocated */
  size_t nallocs, cap_allocs;
  Onnx__NodeProto **nodes;
  size_t nnodes, cap_nodes;
  Onnx__TensorProto **inits;
  size_t ninits, cap_inits;
  Onnx__ValueInfoProto **inputs, **outputs;
  size_t ninputs, noutputs;
  int serial; /* for names made unique */
  skd_status st;
} onnx_graph;

void og_init(onnx_graph *g);
void og_free(onnx_graph *g);
skd_status og_status(const onnx_graph *g);

/* A string owned by the graph (printf format). */
const char *og_str(onnx_graph *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Adds a node of type op with the given inputs (a NULL-terminated list; ""
 * is an omitted optional input) and one output, named out or, when out is
 * NULL, "<op>_<serial>". Returns the node (NULL after an error). */
Onnx__NodeProto *og_node(onnx_graph *g, const char *op, const char *out, ...);
/* The node's output name ("" for NULL). */
const char *og_out(const Onnx__NodeProto *n);

/* Attributes of a node (nothing happens for a NULL node). */
void og_attr_int(onnx_graph *g, Onnx__NodeProto *n, const char *name, int64_t v);
void og_attr_float(onnx_graph *g, Onnx__NodeProto *n, const char *name, float v);
void og_attr_string(onnx_graph *g, Onnx__NodeProto *n, const char *name, const char *v);
void og_attr_ints(onnx_graph *g, Onnx__NodeProto *n, const char *name, int count, const int64_t *v);

/* Initializers (constant tensors) named name, values copied, row-major.
 * Return the name ("" after an error). */
const char *og_init_float(onnx_graph *g, const char *name, const float *v, int ndim, const int64_t *dims);
const char *og_init_int64(onnx_graph *g, const char *name, const int64_t *v, int ndim, const int64_t *dims);

/* A graph input or output: a float (ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
 * or int64 tensor of ndim dimensions, each fixed (dims[i] > 0) or named
 * (dims[i] <= 0: params[i]). */
void og_input(onnx_graph *g, const char *name, int elem_type, int ndim, const int64_t *dims, const char *const *params);
void og_output(onnx_graph *g, const char *name, int elem_type, int ndim, const int64_t *dims,
               const char *const *params);

/* Key/value pairs of the model's metadata (metadata_props). */
typedef struct og_meta {
  const char *key, *value;
} og_meta;

typedef struct og_model_info {
  int opset;
  const char *producer_version;
  const char *graph_name, *doc;
  const og_meta *meta;
  int nmeta;
  /* 1: every initializer of 1 KiB or more goes to "<path>.data" beside the
   * model (ONNX external data); 0: all inside the model, which protobuf
   * limits to 2 GiB (a larger model is an error that says to use
   * external data). */
  int external_data;
} og_model_info;

/* Writes the model atomically (temporary file + rename; the external data
 * file first, the same way). Errors name the file. */
skd_status og_write(onnx_graph *g, const og_model_info *info, const char *path);

#endif
