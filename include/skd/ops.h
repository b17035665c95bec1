/* Every op family: device forward/backward and plain-C references. */
#ifndef SKD_OPS_H
#define SKD_OPS_H

#include "skd/ops/elementwise.h"
#include "skd/ops/batchnorm.h"
#include "skd/ops/dropout.h"
#include "skd/ops/concat.h"
#include "skd/ops/pool.h"
#include "skd/ops/resize.h"
#include "skd/ops/matmul.h"
#include "skd/ops/conv2d.h"
#include "skd/ops/softmax.h"
#include "skd/ops/spectral.h"
#include "skd/ops/argmax.h"

#endif
