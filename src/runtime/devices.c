/* Device enumeration over every OpenCL platform and the default choice. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skd/runtime.h"

/* Long strings (PoCL's device version runs past 100 characters) are cut to fit. */
static void info_string(cl_device_id d, cl_device_info what, char *buf, size_t size) {
  size_t len = 0;
  snprintf(buf, size, "?");
  if (clGetDeviceInfo(d, what, 0, NULL, &len) != CL_SUCCESS || len == 0) return;
  char *full = malloc(len + 1);
  if (!full) return;
  if (clGetDeviceInfo(d, what, len, full, NULL) == CL_SUCCESS) {
    full[len] = '\0';
    snprintf(buf, size, "%s", full);
  }
  free(full);
}

static const char *type_name(cl_device_type t) {
  if (t & CL_DEVICE_TYPE_GPU) return "GPU";
  if (t & CL_DEVICE_TYPE_CPU) return "CPU";
  if (t & CL_DEVICE_TYPE_ACCELERATOR) return "ACCELERATOR";
  return "OTHER";
}

static void fill_info(skd_device_info *di, cl_platform_id p, cl_device_id d) {
  di->platform_id = p;
  di->device_id = d;
  char pname[128] = "?";
  clGetPlatformInfo(p, CL_PLATFORM_NAME, sizeof pname, pname, NULL);
  pname[sizeof pname - 1] = '\0';
  memcpy(di->platform, pname, sizeof pname);
  info_string(d, CL_DEVICE_NAME, di->name, sizeof di->name);
  info_string(d, CL_DEVICE_VENDOR, di->vendor, sizeof di->vendor);
  info_string(d, CL_DRIVER_VERSION, di->driver_version, sizeof di->driver_version);
  info_string(d, CL_DEVICE_VERSION, di->device_version, sizeof di->device_version);
  info_string(d, CL_DEVICE_OPENCL_C_VERSION, di->opencl_c_version, sizeof di->opencl_c_version);
  cl_device_type type = 0;
  clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof type, &type, NULL);
  di->type = type_name(type);
  di->is_gpu = (type & CL_DEVICE_TYPE_GPU) != 0;
  di->loop_limited = strstr(di->name, "llvmpipe") != NULL;
  cl_uint u = 0;
  clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof u, &u, NULL);
  di->compute_units = u;
  u = 0;
  clGetDeviceInfo(d, CL_DEVICE_MAX_CLOCK_FREQUENCY, sizeof u, &u, NULL);
  di->clock_mhz = u;
  cl_ulong ul = 0;
  clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof ul, &ul, NULL);
  di->global_mem_bytes = ul;
  ul = 0;
  clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof ul, &ul, NULL);
  di->max_alloc_bytes = ul;
  ul = 0;
  clGetDeviceInfo(d, CL_DEVICE_LOCAL_MEM_SIZE, sizeof ul, &ul, NULL);
  di->local_mem_bytes = ul;
  size_t s = 0;
  clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof s, &s, NULL);
  di->max_work_group_size = s;
  u = 0;
  clGetDeviceInfo(d, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof u, &u, NULL);
  di->base_addr_align_bytes = u / 8;
  char ext[4096] = "";
  clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, sizeof ext, ext, NULL);
  ext[sizeof ext - 1] = '\0';
  di->fp16 = strstr(ext, "cl_khr_fp16") != NULL;
  di->fp64 = strstr(ext, "cl_khr_fp64") != NULL;
}

skd_status skd_devices_list(skd_device_info **out, int *count) {
  *out = NULL;
  *count = 0;
  cl_uint np = 0;
  cl_int err = clGetPlatformIDs(0, NULL, &np);
  /* -1001 is CL_PLATFORM_NOT_FOUND_KHR: the ICD loader found no driver. */
  if (err == -1001 || np == 0) return SKD_OK;
  if (err != CL_SUCCESS) return skd_cl_check(err, "clGetPlatformIDs");
  cl_platform_id *plats = calloc(np, sizeof *plats);
  if (!plats) return skd_error(SKD_ENOMEM, "device list: out of host memory");
  skd_status st = skd_cl_check(clGetPlatformIDs(np, plats, NULL), "clGetPlatformIDs");
  skd_device_info *list = NULL;
  int n = 0;
  for (cl_uint p = 0; st == SKD_OK && p < np; p++) {
    cl_uint nd = 0;
    /* A platform without devices (rusticl not enabled, Clover with no GPU) is skipped. */
    if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) != CL_SUCCESS || nd == 0) continue;
    cl_device_id *devs = calloc(nd, sizeof *devs);
    skd_device_info *grown = realloc(list, (size_t)(n + (int)nd) * sizeof *list);
    if (!devs || !grown) {
      free(devs);
      if (grown) list = grown;
      st = skd_error(SKD_ENOMEM, "device list: out of host memory");
      break;
    }
    list = grown;
    if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, nd, devs, NULL) == CL_SUCCESS) {
      for (cl_uint d = 0; d < nd; d++) {
        skd_device_info *di = &list[n];
        memset(di, 0, sizeof *di);
        di->index = n;
        di->platform_index = (int)p;
        fill_info(di, plats[p], devs[d]);
        n++;
      }
    }
    free(devs);
  }
  free(plats);
  if (st != SKD_OK) {
    free(list);
    return st;
  }
  *out = list;
  *count = n;
  return SKD_OK;
}

static skd_status bad_index(const char *source, const char *text, const skd_device_info *list, int n) {
  char valid[1536];
  size_t used = 0;
  valid[0] = '\0';
  for (int i = 0; i < n && used + 1 < sizeof valid; i++) {
    int w = snprintf(valid + used, sizeof valid - used, "\n  %d: %s (%s, %s)", i, list[i].name,
                     list[i].platform, list[i].type);
    if (w < 0) break;
    used += (size_t)w;
  }
  if (n == 0) return skd_error(SKD_EINVAL, "%s: device '%s' does not exist: no OpenCL device was found "
                               "(install an OpenCL driver, e.g. pocl-opencl-icd)", source, text);
  return skd_error(SKD_EINVAL, "%s: device '%s' does not exist; valid devices are 0..%d:%s", source,
                   text, n - 1, valid);
}

skd_status skd_device_choose(int requested, int *index) {
  skd_device_info *list = NULL;
  int n = 0;
  skd_status st = skd_devices_list(&list, &n);
  if (st != SKD_OK) return st;
  char text[64];
  const char *source = "--device";
  int want = requested;
  const char *env = getenv("SKD_DEVICE");
  if (want < 0 && env && *env) {
    source = "SKD_DEVICE";
    char *end = NULL;
    long v = strtol(env, &end, 10);
    snprintf(text, sizeof text, "%s", env);
    if (*end != '\0' || v < 0 || v >= n) {
      st = bad_index(source, text, list, n);
      free(list);
      return st;
    }
    want = (int)v;
  }
  if (want < 0) {
    if (n == 0) {
      free(list);
      return skd_error(SKD_EUNSUPPORTED, "no OpenCL device was found (install an OpenCL driver, e.g. pocl-opencl-icd)");
    }
    want = 0;
    for (int i = 0; i < n; i++) {
      if (list[i].is_gpu) {
        want = i;
        break;
      }
    }
  } else if (want >= n) {
    snprintf(text, sizeof text, "%d", want);
    st = bad_index(source, text, list, n);
    free(list);
    return st;
  }
  free(list);
  *index = want;
  return SKD_OK;
}
