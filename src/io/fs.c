#include "skd/io/fs.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static skd_status make_dir(const char *path, const char *what) {
  if (mkdir(path, 0755) == 0 || errno == EEXIST) {
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) return SKD_OK;
    return skd_error(SKD_EIO, "%s: '%s' exists and is not a directory", what, path);
  }
  int e = errno;
  return skd_error(SKD_EIO, "%s: cannot create directory '%s': %s", what, path, strerror(e));
}

skd_status skd_make_dirs(const char *dir, const char *what) {
  char buf[4096];
  if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf)
    return skd_error(SKD_EINVAL, "%s: path too long: %s", what, dir);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    skd_status st = make_dir(buf, what);
    *p = '/';
    if (st != SKD_OK) return st;
  }
  return make_dir(buf, what);
}
