#include "skd/io/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A temporary file untouched this long belongs to no running writer. */
#define STALE_TMP_SECONDS 60

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

/* The pid in "<base>.tmp.<pid>", or 0 when name is not such a file. */
static long temporary_pid(const char *name, const char *base) {
  size_t n = strlen(base);
  if (strncmp(name, base, n) != 0 || strncmp(name + n, ".tmp.", 5) != 0) return 0;
  const char *digits = name + n + 5;
  char *end = NULL;
  long pid = strtol(digits, &end, 10);
  return *digits && *end == '\0' && pid > 0 ? pid : 0;
}

int skd_remove_stale_temporaries(const char *path) {
  char dir[4096];
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  size_t len = slash ? (size_t)(slash - path) : 0;
  if (len >= sizeof dir) return 0;
  if (!slash) strcpy(dir, ".");
  else if (len == 0) strcpy(dir, "/");
  else {
    memcpy(dir, path, len);
    dir[len] = '\0';
  }
  DIR *d = opendir(dir);
  if (!d) return 0;
  int removed = 0;
  time_t now = time(NULL);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    long pid = temporary_pid(e->d_name, base);
    if (pid == 0 || pid == (long)getpid()) continue;
    if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* alive here, or not ours to ask */
    char full[8300];
    struct stat sb;
    if (snprintf(full, sizeof full, "%s/%s", dir, e->d_name) >= (int)sizeof full) continue;
    if (lstat(full, &sb) != 0 || !S_ISREG(sb.st_mode) || now - sb.st_mtime < STALE_TMP_SECONDS) continue;
    if (unlink(full) == 0) removed++;
  }
  closedir(d);
  return removed;
}

skd_status skd_lock_dir(const char *dir, const char *what, int *fd) {
  *fd = -1;
  char path[4096];
  if (snprintf(path, sizeof path, "%s/.skd-cl.lock", dir) >= (int)sizeof path)
    return skd_error(SKD_EINVAL, "%s: path too long: %s", what, dir);
  int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (f < 0) return skd_error(SKD_EIO, "%s: cannot open %s: %s", what, path, strerror(errno));
  if (flock(f, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    close(f);
    if (e == EWOULDBLOCK)
      return skd_error(SKD_EIO, "%s: another skd-cl process is writing to %s (it holds %s); give this run another "
                       "--out, or wait for that one to end", what, dir, path);
    return skd_error(SKD_EIO, "%s: cannot lock %s: %s", what, path, strerror(e));
  }
  *fd = f;
  return SKD_OK;
}

void skd_unlock_dir(int fd) {
  if (fd >= 0) close(fd); /* closing releases the lock, as the end of the process does */
}
