/* Under mpirun: which OpenCL device each rank takes. */
#include <stdlib.h>

#include "cli/cli.h"
#include "skd/dist.h"
#include "skd/runtime.h"

/* --device or SKD_DEVICE win (heterogeneous nodes name it per rank); else
 * the node-local rank's index among the GPUs, else among all devices
 * (wrapping when ranks outnumber them: they then share a device). */
int cli_dist_device(int requested) {
  if (requested >= 0 || skd_dist_size() < 2) return requested;
  const char *env = getenv("SKD_DEVICE");
  if (env && *env) return requested;
  skd_device_info *list = NULL;
  int n = 0, gpus = 0, local = skd_dist_local_rank();
  if (skd_devices_list(&list, &n) != SKD_OK || n == 0) {
    free(list);
    return requested; /* the context reports the problem */
  }
  for (int i = 0; i < n; i++) gpus += list[i].is_gpu;
  int pick = local % (gpus ? gpus : n), chosen = -1;
  for (int i = 0; i < n && chosen < 0; i++)
    if (!gpus || list[i].is_gpu) {
      if (pick == 0) chosen = list[i].index;
      pick--;
    }
  free(list);
  return chosen;
}
