/* Export of a trained network to an ONNX model for other runtimes (ONNX
 * Runtime, TensorRT, OpenVINO). docs/EXPORT.md describes the graph.
 *
 * The graph is the inference pass of skd-cl predict without windows or
 * flips: PSPNet's backbone, PSP module, bottleneck and head (no DSN branch,
 * no dropout), running batch-norm statistics (folded into the convolutions
 * unless keep_batchnorm), then the logits bilinearly upsampled to the input
 * size with align_corners, as skd_predict_logits does. Input "input"
 * (batch, 3, H, W) float; output "logits" (batch, classes, H, W) float,
 * "probabilities" (the same after a softmax over the classes) or "labels"
 * (batch, H, W) int64. The batch is always a named (free) dimension; H and
 * W are fixed or named ("height", "width") with `dynamic`.
 *
 * Adaptive average pooling (the PSP bins) is a product with pooling
 * matrices, P_rows (bins, H') x map x P_cols (W', bins), whose entries are
 * 1 / (bin size) inside PyTorch's bin [floor(i H' / b), ceil((i + 1) H' / b))
 * and 0 outside: constants for a fixed size, computed from the map's shape
 * in the graph (Range, comparisons, Cast) for dynamic shapes. Exact for
 * every size, including those the bins do not divide. */
#ifndef SKD_EXPORT_H
#define SKD_EXPORT_H

#include "skd/data.h"
#include "skd/nn/pspnet.h"

#define SKD_ONNX_OPSET_MIN 13
#define SKD_ONNX_OPSET_MAX 17
#define SKD_ONNX_OPSET_DEFAULT 17

typedef enum skd_onnx_output {
  SKD_ONNX_LOGITS = 0,
  SKD_ONNX_PROBABILITIES = 1, /* softmax over the classes */
  SKD_ONNX_LABELS = 2         /* argmax over the classes, int64 */
} skd_onnx_output;

typedef struct skd_onnx_meta {
  const char *key, *value;
} skd_onnx_meta;

typedef struct skd_onnx_options {
  int opset;              /* SKD_ONNX_OPSET_MIN..MAX */
  int height, width;      /* the fixed input size (ignored with dynamic) */
  int dynamic;            /* H and W free */
  int keep_batchnorm;     /* BatchNormalization nodes instead of folding */
  int bake_normalisation; /* the model takes 0-255 RGB and normalises itself */
  skd_normalize normalize;
  skd_onnx_output output;
  int external_data; /* weights in "<path>.data"; chosen anyway past 1.8 GiB */
  const char *producer_version;
  const skd_onnx_meta *meta; /* extra metadata_props (class names, config, ...) */
  int nmeta;
} skd_onnx_options;

/* Opset 17, dynamic off, height = width = 512, reference normalisation,
 * logits. */
void skd_onnx_options_default(skd_onnx_options *o);

/* Writes net (a frozen network, e.g. from skd_pspnet_open_checkpoint) as an
 * ONNX model at path, atomically: on any error no file is left. The
 * metadata_props record the normalisation ("skd_cl.input" says whether it
 * is baked in, "skd_cl.mean", ".std" and ".channel_order" what to apply
 * otherwise), the network and the output, then opt->meta. */
skd_status skd_onnx_export(skd_pspnet *net, const skd_onnx_options *opt, const char *path);

#endif
