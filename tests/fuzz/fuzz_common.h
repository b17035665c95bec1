/* Shared by the libFuzzer targets: readers that take a path get the input
 * through one scratch file per process. */
#ifndef SKD_FUZZ_COMMON_H
#define SKD_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Writes data to a file named after the target and the process; returns its path. */
static inline const char *fuzz_file(const char *target, const uint8_t *data, size_t size) {
  static char path[256];
  const char *dir = getenv("TMPDIR");
  snprintf(path, sizeof path, "%s/skd_%s.%ld", dir && *dir ? dir : "/tmp", target, (long)getpid());
  FILE *f = fopen(path, "wb");
  if (!f) abort();
  if (size && fwrite(data, 1, size, f) != size) abort();
  if (fclose(f) != 0) abort();
  return path;
}

/* The input as a NUL-terminated string (free() it). */
static inline char *fuzz_string(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (!s) abort();
  for (size_t i = 0; i < size; i++) s[i] = (char)data[i];
  s[size] = '\0';
  return s;
}

#endif
