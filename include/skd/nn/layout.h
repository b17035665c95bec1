/* Key layouts of checkpoints written by other code, mapped onto skd-cl's
 * names (those of the reference code's current networks).
 *
 *   none               names are used as they are
 *   reference-teacher  the reference code's released teacher: head.0.* is
 *                      pspmodule.*, head.1.* is head.*
 *   torchvision        torchvision's ResNets: the same names where they
 *                      exist (conv1 is 7x7, no conv2/conv3, fc.* unused);
 *                      nothing is renamed, what does not fit is reported
 *   auto               reference-teacher when head.0.* is there and
 *                      pspmodule.* is not, torchvision when fc.weight is there
 *                      and conv2.weight is not, else none */
#ifndef SKD_NN_LAYOUT_H
#define SKD_NN_LAYOUT_H

#include <stddef.h>

#include "skd/status.h"

typedef enum skd_layout {
  SKD_LAYOUT_AUTO,
  SKD_LAYOUT_NONE,
  SKD_LAYOUT_REFERENCE_TEACHER,
  SKD_LAYOUT_TORCHVISION
} skd_layout;

/* "auto" | "none" | "reference-teacher" | "torchvision"; SKD_EINVAL naming
 * what (e.g. "--layout") otherwise. */
skd_status skd_layout_parse(const char *text, const char *what, skd_layout *out);
const char *skd_layout_name(skd_layout layout);

/* The layout of a file whose tensors are names[0..n). */
skd_layout skd_layout_detect(const char *const *names, int n);

/* name under skd-cl's names into out (size bytes; at most size - 1
 * characters are kept); returns 1 when renamed, else 0. */
int skd_layout_map(skd_layout layout, const char *name, char *out, size_t size);

#endif
