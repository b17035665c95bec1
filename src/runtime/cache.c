/* The on-disk kernel binary cache. An entry is
 *   "SKDBIN01" | u64 key | u64 length | u64 checksum | binary
 * written to a temporary file and renamed, so readers never see half an
 * entry; anything that does not check out is treated as a miss. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/runtime_private.h"
#include "skd/io/fs.h"

static const char magic[8] = {'S', 'K', 'D', 'B', 'I', 'N', '0', '1'};
#define MAX_BINARY_BYTES (256u << 20)

unsigned long long skd_hash64(unsigned long long h, const void *data, size_t n) {
  const unsigned char *b = data; /* FNV-1a */
  for (size_t i = 0; i < n; i++) {
    h ^= b[i];
    h *= 1099511628211ULL;
  }
  return h;
}

static void entry_path(char *buf, size_t size, const char *dir, unsigned long long key) {
  snprintf(buf, size, "%s/%016llx.bin", dir, key);
}

int skd_cache_load(const char *dir, unsigned long long key, unsigned char **bin, size_t *len) {
  char path[1200];
  entry_path(path, sizeof path, dir, key);
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  char m[8];
  unsigned long long hdr[3];
  int ok = fread(m, 1, 8, f) == 8 && memcmp(m, magic, 8) == 0 && fread(hdr, sizeof hdr[0], 3, f) == 3 &&
           hdr[0] == key && hdr[1] > 0 && hdr[1] <= MAX_BINARY_BYTES;
  unsigned char *data = ok ? malloc(hdr[1]) : NULL;
  ok = ok && data && fread(data, 1, hdr[1], f) == hdr[1] && fgetc(f) == EOF &&
       skd_hash64(SKD_HASH_SEED, data, hdr[1]) == hdr[2];
  fclose(f);
  if (!ok) {
    free(data);
    return 0;
  }
  *bin = data;
  *len = hdr[1];
  return 1;
}

void skd_cache_store(const char *dir, unsigned long long key, const unsigned char *bin, size_t len) {
  if (skd_make_dirs(dir, "kernel cache") != SKD_OK) return; /* an unwritable cache only costs build time */
  char path[1200];
  entry_path(path, sizeof path, dir, key);
  unsigned long long hdr[3] = {key, len, skd_hash64(SKD_HASH_SEED, bin, len)};
  size_t size = 8 + sizeof hdr + len;
  unsigned char *entry = malloc(size);
  if (!entry) return;
  memcpy(entry, magic, 8);
  memcpy(entry + 8, hdr, sizeof hdr);
  memcpy(entry + 8 + sizeof hdr, bin, len);
  skd_write_file_atomic(path, entry, size);
  skd_error_clear();
  free(entry);
}
