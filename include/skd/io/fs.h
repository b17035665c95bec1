/* Small file-system helpers shared by the library and the CLI. */
#ifndef SKD_IO_FS_H
#define SKD_IO_FS_H

#include "skd/status.h"

/* mkdir -p: creates dir and its missing parents. SKD_EIO with a message
 * "<what>: cannot create directory '<path>': <reason>" (or "... exists and
 * is not a directory"); SKD_EINVAL for a path over 4095 characters. */
skd_status skd_make_dirs(const char *dir, const char *what);

#endif
