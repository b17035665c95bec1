/* Shared by src/optim: state allocation and the per-kind updates. */
#ifndef SKD_OPTIM_PRIVATE_H
#define SKD_OPTIM_PRIVATE_H

#include "skd/optim.h"

/* Allocates and zeroes *state (shaped as p->value) when it has no buffer
 * yet; *created tells whether it did. */
skd_status optim_state_ensure(skd_context *ctx, const skd_param *p, skd_tensor *state, int *created);

skd_status sgd_update(skd_context *ctx, const skd_optim *o, skd_param *p);
skd_status adam_update(skd_context *ctx, const skd_optim *o, skd_param *p);

#endif
