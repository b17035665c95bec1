/* test_dist's checker: every float tensor of two checkpoints compared.
 *   dist_compare A B RTOL [PART [EXCEPT]]    (dist_compare --mpi: 1 when MPI is built in)
 * prints the largest max|a - b| / max|b| over the tensors (those whose name
 * contains PART and not EXCEPT, when given) and the tensor that reached it; exit 0
 * when it is <= RTOL, 1 above it, 2 on an error. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skd/dist.h"
#include "skd/io/safetensors.h"

int main(int argc, char **argv) {
  if (argc == 2 && !strcmp(argv[1], "--mpi")) { /* does this build have MPI (test_dist skips without)? */
    printf("%d\n", skd_dist_built());
    return 0;
  }
  if (argc < 4) {
    fprintf(stderr, "usage: dist_compare A B RTOL [PART [EXCEPT]]\n");
    return 2;
  }
  double rtol = atof(argv[3]), worst = 0;
  const char *part = argc > 4 ? argv[4] : "", *except = argc > 5 ? argv[5] : NULL;
  char worst_name[256] = "(none)";
  skd_safetensors *a = NULL, *b = NULL;
  if (skd_safetensors_open(&a, argv[1]) != SKD_OK || skd_safetensors_open(&b, argv[2]) != SKD_OK) {
    fprintf(stderr, "dist_compare: %s\n", skd_error_last());
    return 2;
  }
  int compared = 0, rc = 0;
  for (int i = 0; i < skd_safetensors_count(a) && rc == 0; i++) {
    const skd_safetensors_entry *e = skd_safetensors_entry_at(a, i);
    if (!strstr(e->name, part) || (except && strstr(e->name, except)) || e->dtype != SKD_DTYPE_F32) continue;
    int j = skd_safetensors_find(b, e->name);
    if (j < 0 || skd_safetensors_entry_at(b, j)->numel != e->numel) {
      fprintf(stderr, "dist_compare: %s: tensor %s missing or of another size in %s\n", argv[1], e->name, argv[2]);
      rc = 2;
      break;
    }
    float *x = malloc(e->numel * sizeof(float)), *y = malloc(e->numel * sizeof(float));
    if (!x || !y || skd_safetensors_read_f32(a, i, x, e->numel) != SKD_OK ||
        skd_safetensors_read_f32(b, j, y, e->numel) != SKD_OK) {
      fprintf(stderr, "dist_compare: reading %s: %s\n", e->name, x && y ? skd_error_last() : "out of memory");
      rc = 2;
    }
    double diff = 0, scale = 0;
    for (size_t k = 0; rc == 0 && k < e->numel; k++) {
      double d = fabs((double)x[k] - (double)y[k]);
      diff = d > diff || isnan(d) ? d : diff;
      scale = fabs((double)y[k]) > scale ? fabs((double)y[k]) : scale;
    }
    double rel = diff / (scale > 0 ? scale : 1.0);
    if (rc == 0 && (rel > worst || isnan(rel))) {
      worst = rel;
      snprintf(worst_name, sizeof worst_name, "%s", e->name);
    }
    compared++;
    free(x);
    free(y);
  }
  skd_safetensors_close(a);
  skd_safetensors_close(b);
  if (rc) return rc;
  printf("%d tensors, largest relative difference %.3g (%s)\n", compared, worst, worst_name);
  return compared > 0 && worst <= rtol ? 0 : 1;
}
