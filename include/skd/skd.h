/* libskd: structured knowledge distillation on any OpenCL device. */
#ifndef SKD_SKD_H
#define SKD_SKD_H

#include "skd/status.h"
#include "skd/runtime.h"
#include "skd/tensor.h"
#include "skd/ops.h"
#include "skd/optim.h"
#include "skd/nn/pspnet.h"
#include "skd/nn/discriminator.h"
#include "skd/loss.h"
#include "skd/io/safetensors.h"
#include "skd/data.h"
#include "skd/eval.h"
#include "skd/palette.h"
#include "skd/train_config.h"
#include "skd/train.h"
#include "skd/evaluate.h"
#include "skd/tune.h"
#include "skd/export.h"
#include "skd/depth.h"

#endif
