/* Small file-system helpers shared by the library and the CLI. */
#ifndef SKD_IO_FS_H
#define SKD_IO_FS_H

#include <stddef.h>

#include "skd/status.h"

/* mkdir -p: creates dir and its missing parents. SKD_EIO with a message
 * "<what>: cannot create directory '<path>': <reason>" (or "... exists and
 * is not a directory"); SKD_EINVAL for a path over 4095 characters. */
skd_status skd_make_dirs(const char *dir, const char *what);

/* The whole file as a NUL-terminated string (*size bytes before the NUL;
 * free() it); SKD_EIO naming the file, SKD_EFORMAT when over limit bytes. */
skd_status skd_read_file(const char *path, char **out, size_t *size, size_t limit);

/* Writes data to path.tmp.<pid>, then renames it over path, so readers see
 * the old file or the whole new one; the temporary is removed on failure. */
skd_status skd_write_file_atomic(const char *path, const void *data, size_t size);

/* Removes what killed writers left beside path: files named
 * "<name of path>.tmp.<pid>" whose process is gone and that nobody has
 * written for STALE_TMP_SECONDS (a writer on another machine of a shared
 * file system may reuse a pid that is free here: its file is recent). A file
 * that cannot be removed is left; returns how many were removed. */
int skd_remove_stale_temporaries(const char *path);

/* Takes the exclusive lock of directory dir (flock on dir/.skd-cl.lock), so
 * that two runs never write the same checkpoints: SKD_EIO naming dir when
 * another process holds it. The lock lives until skd_unlock_dir(*fd) or the
 * end of the process, however it ends (so a killed run leaves no stale lock). */
skd_status skd_lock_dir(const char *dir, const char *what, int *fd);
void skd_unlock_dir(int fd);

#endif
