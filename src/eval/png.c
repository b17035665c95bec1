/* Atomic PNG writing: stb_image_write encodes into our callback, which
 * writes a temporary file beside the target; flush, fsync, rename. A reader
 * sees the old file or the complete new one, never a partial PNG. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stb/stb_image_write.h>

#include "skd/palette.h"

struct sink {
  FILE *fp;
  int err; /* errno of the first failed write, or -1 for a short write without one */
};

static void sink_write(void *context, void *data, int size) {
  struct sink *s = context;
  if (s->err || size <= 0) return;
  errno = 0;
  if (fwrite(data, 1, (size_t)size, s->fp) != (size_t)size) s->err = errno ? errno : -1;
}

/* A fresh temporary name beside path; several threads may write PNGs at
 * once, so the name carries the pid and a process-wide counter, and O_EXCL
 * refuses a name that exists (a leftover of a crashed run). */
static int open_temporary(const char *path, char *tmp, size_t size) {
  static atomic_uint counter;
  for (int attempt = 0; attempt < 100; attempt++) {
    unsigned k = atomic_fetch_add(&counter, 1u);
    snprintf(tmp, size, "%s.tmp.%ld.%u", path, (long)getpid(), k);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
    if (fd >= 0 || errno != EEXIST) return fd;
  }
  return -1;
}

skd_status skd_png_write(const char *path, const uint8_t *pixels, int w, int h, int channels) {
  if (!path || !*path) return skd_error(SKD_EINVAL, "png write: no file name given");
  if (w < 1 || h < 1 || channels < 1 || channels > 4)
    return skd_error(SKD_EINVAL, "png write %s: bad image %dx%d with %d channels (1..4)", path, w, h, channels);
  /* stb_image_write sizes its buffers with int. */
  if (((size_t)w * (size_t)channels + 1) * (size_t)h > (size_t)INT_MAX / 2)
    return skd_error(SKD_EINVAL, "png write %s: image %dx%d with %d channels is too large", path, w, h, channels);
  size_t size = strlen(path) + 48;
  char *tmp = malloc(size);
  if (!tmp) return skd_error(SKD_ENOMEM, "png write %s: out of host memory", path);
  skd_status st = SKD_OK;
  int fd = open_temporary(path, tmp, size);
  if (fd < 0) {
    st = skd_error(SKD_EIO, "png write %s: cannot create the temporary file %s: %s", path, tmp, strerror(errno));
    goto done;
  }
  struct sink s = {fdopen(fd, "wb"), 0};
  if (!s.fp) {
    int err = errno;
    close(fd);
    remove(tmp);
    st = skd_error(SKD_EIO, "png write %s: fdopen of %s: %s", path, tmp, strerror(err));
    goto done;
  }
  int encoded = stbi_write_png_to_func(sink_write, &s, w, h, channels, pixels, w * channels);
  errno = 0;
  if (encoded && !s.err && fflush(s.fp) != 0) s.err = errno ? errno : -1;
  if (encoded && !s.err && fsync(fileno(s.fp)) != 0) s.err = errno ? errno : -1;
  if (fclose(s.fp) != 0 && encoded && !s.err) s.err = errno ? errno : -1;
  if (!encoded || s.err) {
    remove(tmp);
    st = skd_error(SKD_EIO, "png write %s: %s", path,
                   !encoded ? "encoding failed (out of host memory)"
                   : s.err > 0 ? strerror(s.err)
                               : "short write");
    goto done;
  }
  if (rename(tmp, path) != 0) {
    int err = errno;
    remove(tmp);
    st = skd_error(SKD_EIO, "png write %s: cannot rename %s over it: %s", path, tmp, strerror(err));
  }
done:
  free(tmp);
  return st;
}
