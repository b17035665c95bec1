/* Key layouts (layout.h): detection and renaming by prefix. */
#include "skd/nn/layout.h"

#include <stdio.h>
#include <string.h>

static const char *names[] = {"auto", "none", "reference-teacher", "torchvision"};

skd_status skd_layout_parse(const char *text, const char *what, skd_layout *out) {
  for (int i = 0; i < 4; i++)
    if (strcmp(text, names[i]) == 0) {
      *out = (skd_layout)i;
      return SKD_OK;
    }
  return skd_error(SKD_EINVAL, "%s: unknown layout '%s' (expected auto, none, reference-teacher or torchvision)", what,
                   text);
}

const char *skd_layout_name(skd_layout layout) {
  return (int)layout >= 0 && (int)layout < 4 ? names[layout] : "?";
}

static int starts(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

skd_layout skd_layout_detect(const char *const *list, int n) {
  int head0 = 0, psp = 0, fc = 0, conv2 = 0;
  for (int i = 0; i < n; i++) {
    head0 |= starts(list[i], "head.0.");
    psp |= starts(list[i], "pspmodule.");
    fc |= strcmp(list[i], "fc.weight") == 0;
    conv2 |= strcmp(list[i], "conv2.weight") == 0;
  }
  if (head0 && !psp) return SKD_LAYOUT_REFERENCE_TEACHER;
  if (fc && !conv2) return SKD_LAYOUT_TORCHVISION; /* a classifier on a 7x7 stem */
  return SKD_LAYOUT_NONE;
}

int skd_layout_map(skd_layout layout, const char *name, char *out, size_t size) {
  if (layout == SKD_LAYOUT_REFERENCE_TEACHER) {
    /* The older PSPNet kept PSPModule and the classifier in one Sequential. */
    if (starts(name, "head.0.")) {
      snprintf(out, size, "pspmodule.%s", name + 7);
      return 1;
    }
    if (starts(name, "head.1.")) {
      snprintf(out, size, "head.%s", name + 7);
      return 1;
    }
  }
  snprintf(out, size, "%s", name);
  return 0;
}
