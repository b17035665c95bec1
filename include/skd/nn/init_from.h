/* Initialising a network from another checkpoint (train --init): an
 * ImageNet backbone (CSAILVision's deep-stem resnet18-imagenet.pth has
 * skd-cl's names and shapes), torchvision's ResNets (7x7 stem: what fits
 * loads), or a whole network. Every tensor whose name and shape match is
 * loaded; the rest keep their initial values and are counted. */
#ifndef SKD_NN_INIT_FROM_H
#define SKD_NN_INIT_FROM_H

#include "skd/nn/module.h"

typedef struct skd_init_report {
  int loaded;
  int mismatched;       /* same name, another shape */
  int missing;          /* network tensors the file lacks */
  int missing_backbone; /* of those, outside pspmodule / dsn / head */
  int unused;           /* file tensors the network lacks (num_batches_tracked not counted) */
  char layout[24];      /* the file's key layout (pth.layout), or "safetensors" */
  /* A few names of each kind (missing: backbone ones), for the summary. */
  char mismatched_names[512], missing_names[512], unused_names[512];
} skd_init_report;

/* strict: fail (SKD_EFORMAT, nothing loaded) when a tensor's shape
 * mismatches or a backbone tensor is missing; the message says which. */
skd_status skd_nn_params_init_from(skd_nn_params *r, const char *path, int strict, skd_init_report *rep);

/* The report as a few lines of text ("  loaded  102" ...). */
void skd_init_report_format(const skd_init_report *rep, const char *path, char *buf, size_t size);

#endif
