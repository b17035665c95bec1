/* Opens a checkpoint the way every skd-cl reader does (skd_safetensors_open:
 * a .pth is detected and read whole) and reads every float tensor as
 * float32; prints the two times. benchmarks/pth_open.py builds and runs it:
 *   gcc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -Iinclude benchmarks/pth_open.c build/libskd.a \
 *       -lzip -lcjson -lm -lOpenCL -lclblast -lpthread -o /tmp/skd_pth_open */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "skd/io/safetensors.h"
int main(int argc, char **argv) {
  struct timespec a, b, c;
  clock_gettime(CLOCK_MONOTONIC, &a);
  skd_safetensors *f;
  if (skd_safetensors_open(&f, argv[1])) { fprintf(stderr, "%s\n", skd_error_last()); return 1; }
  clock_gettime(CLOCK_MONOTONIC, &b);
  size_t total = 0;
  for (int i = 0; i < skd_safetensors_count(f); i++) {
    const skd_safetensors_entry *e = skd_safetensors_entry_at(f, i);
    if (e->dtype != SKD_DTYPE_F32) continue;
    float *x = malloc(e->numel * 4 + 4);
    skd_safetensors_read_f32(f, i, x, e->numel);
    total += e->numel;
    free(x);
  }
  clock_gettime(CLOCK_MONOTONIC, &c);
  printf("%s: %d tensors, open %.2f s, read all %zu floats %.2f s\n", argv[1], skd_safetensors_count(f),
         (b.tv_sec - a.tv_sec) + 1e-9 * (b.tv_nsec - a.tv_nsec), total, (c.tv_sec - b.tv_sec) + 1e-9 * (c.tv_nsec - b.tv_nsec));
  skd_safetensors_close(f);
  return 0;
}
