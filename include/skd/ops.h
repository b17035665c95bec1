/* Every op family: device forward/backward and plain-C references. */
#ifndef SKD_OPS_H
#define SKD_OPS_H

#include "skd/ops/elementwise.h"
#include "skd/ops/softmax.h"
#include "skd/ops/spectral.h"

#endif
