/* The task loss and the three distillation losses. */
#ifndef SKD_LOSS_H
#define SKD_LOSS_H

#include "skd/loss/pixel.h"
#include "skd/loss/pair.h"
#include "skd/loss/holistic.h"
#include "skd/loss/depth.h"

#endif
