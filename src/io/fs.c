#include "skd/io/fs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

skd_status skd_read_file(const char *path, char **out, size_t *size, size_t limit) {
  *out = NULL;
  *size = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return skd_error(SKD_EIO, "cannot open '%s': %s", path, strerror(errno));
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap + 1);
  skd_status st = buf ? SKD_OK : skd_error(SKD_ENOMEM, "reading '%s': out of host memory", path);
  while (st == SKD_OK) {
    if (len == cap) {
      char *grown = cap < limit ? realloc(buf, 2 * cap + 1) : NULL;
      if (!grown) {
        st = cap < limit ? skd_error(SKD_ENOMEM, "reading '%s': out of host memory", path)
                         : skd_error(SKD_EFORMAT, "'%s' is larger than %zu bytes", path, limit);
        break;
      }
      buf = grown;
      cap *= 2;
    }
    size_t got = fread(buf + len, 1, cap - len, f);
    len += got;
    if (got == 0) break;
  }
  if (st == SKD_OK && ferror(f)) st = skd_error(SKD_EIO, "reading '%s' failed", path);
  if (st == SKD_OK && len > limit) st = skd_error(SKD_EFORMAT, "'%s' is larger than %zu bytes", path, limit);
  fclose(f);
  if (st != SKD_OK) {
    free(buf);
    return st;
  }
  buf[len] = '\0';
  *out = buf;
  *size = len;
  return SKD_OK;
}

skd_status skd_write_file_atomic(const char *path, const void *data, size_t size) {
  char tmp[4200];
  if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
    return skd_error(SKD_EINVAL, "path too long: %s", path);
  FILE *f = fopen(tmp, "wb");
  if (!f) return skd_error(SKD_EIO, "%s: cannot create the temporary file %s: %s", path, tmp, strerror(errno));
  int ok = fwrite(data, 1, size, f) == size;
  int e = errno;
  if (fclose(f) != 0 && ok) ok = 0, e = errno;
  if (ok && rename(tmp, path) != 0) ok = 0, e = errno;
  if (!ok) {
    remove(tmp);
    return skd_error(SKD_EIO, "%s: cannot write it: %s", path, strerror(e));
  }
  return SKD_OK;
}
