/* skd-cl list-devices [--json] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "skd/dist.h"

static void print_json(const skd_device_info *list, int n, int chosen) {
  cJSON *root = cJSON_CreateObject();
  cJSON *arr = cJSON_AddArrayToObject(root, "devices");
  for (int i = 0; i < n; i++) {
    const skd_device_info *d = &list[i];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "index", d->index);
    cJSON_AddStringToObject(o, "platform", d->platform);
    cJSON_AddStringToObject(o, "name", d->name);
    cJSON_AddStringToObject(o, "vendor", d->vendor);
    cJSON_AddStringToObject(o, "type", d->type);
    cJSON_AddStringToObject(o, "driver_version", d->driver_version);
    cJSON_AddStringToObject(o, "device_version", d->device_version);
    cJSON_AddStringToObject(o, "opencl_c_version", d->opencl_c_version);
    cJSON_AddNumberToObject(o, "compute_units", d->compute_units);
    cJSON_AddNumberToObject(o, "clock_mhz", d->clock_mhz);
    cJSON_AddNumberToObject(o, "global_mem_bytes", (double)d->global_mem_bytes);
    cJSON_AddNumberToObject(o, "max_alloc_bytes", (double)d->max_alloc_bytes);
    cJSON_AddNumberToObject(o, "local_mem_bytes", (double)d->local_mem_bytes);
    cJSON_AddBoolToObject(o, "fp16", d->fp16);
    cJSON_AddBoolToObject(o, "fp64", d->fp64);
    cJSON_AddBoolToObject(o, "default", d->index == chosen);
    cJSON_AddItemToArray(arr, o);
  }
  char *text = cJSON_Print(root);
  if (text) puts(text);
  free(text);
  cJSON_Delete(root);
}

static double mib(unsigned long long b) { return (double)b / (1024.0 * 1024.0); }

static void print_table(const skd_device_info *list, int n, int chosen) {
  for (int i = 0; i < n; i++) {
    const skd_device_info *d = &list[i];
    printf("%s[%d] %s\n", d->index == chosen ? "*" : " ", d->index, d->name);
    printf("      platform      %s\n", d->platform);
    printf("      vendor        %s\n", d->vendor);
    printf("      type          %s\n", d->type);
    printf("      driver        %s\n", d->driver_version);
    printf("      OpenCL C      %s (%s)\n", d->opencl_c_version, d->device_version);
    printf("      compute units %u @ %u MHz\n", d->compute_units, d->clock_mhz);
    printf("      global mem    %.0f MiB (largest allocation %.0f MiB)\n", mib(d->global_mem_bytes),
           mib(d->max_alloc_bytes));
    printf("      local mem     %.0f KiB\n", (double)d->local_mem_bytes / 1024.0);
    printf("      fp16 / fp64   %s / %s\n", d->fp16 ? "yes" : "no", d->fp64 ? "yes" : "no");
  }
  if (n > 0) printf("\n* = the device used when --device and SKD_DEVICE are not given\n");
}

int cmd_list_devices(const cli_globals *g, int argc, char **argv) {
  int json = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0) {
      json = 1;
    } else {
      fprintf(stderr, "skd-cl list-devices: unknown option '%s' (expected --json)\n", argv[i]);
      return 2;
    }
  }
  skd_device_info *list = NULL;
  int n = 0;
  if (skd_devices_list(&list, &n) != SKD_OK) {
    fprintf(stderr, "skd-cl: %s\n", skd_error_last());
    return 1;
  }
  int chosen = -1;
  if (n > 0 && skd_device_choose(g->device, &chosen) != SKD_OK) {
    fprintf(stderr, "skd-cl: %s\n", skd_error_last());
    free(list);
    return 1;
  }
  if (!json && n > 0 && skd_dist_size() > 1) /* under mpirun: one line per rank, what it would take */
    printf("rank %d of %d (node-local %d): device %d, %s\n", skd_dist_rank(), skd_dist_size(), skd_dist_local_rank(),
           chosen, list[chosen].name);
  else if (json) print_json(list, n, chosen);
  else if (n == 0) printf("no OpenCL device found (install a driver, e.g. the pocl-opencl-icd package)\n");
  else print_table(list, n, chosen);
  free(list);
  return 0;
}
