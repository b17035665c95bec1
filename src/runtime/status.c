#include "skd/status.h"

#include <CL/cl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_message[2048];

skd_status skd_error(skd_status code, const char *fmt, ...) {
  /* Formatted aside first: an argument may be skd_error_last() itself, wrapped in more context. */
  char message[sizeof last_message];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  memcpy(last_message, message, sizeof message);
  return code;
}

const char *skd_error_last(void) { return last_message; }

void skd_error_clear(void) { last_message[0] = '\0'; }

const char *skd_status_name(skd_status code) {
  switch (code) {
    case SKD_OK: return "SKD_OK";
    case SKD_ENOMEM: return "SKD_ENOMEM";
    case SKD_EINVAL: return "SKD_EINVAL";
    case SKD_EIO: return "SKD_EIO";
    case SKD_EFORMAT: return "SKD_EFORMAT";
    case SKD_ECL: return "SKD_ECL";
    case SKD_EBUILD: return "SKD_EBUILD";
    case SKD_EUNSUPPORTED: return "SKD_EUNSUPPORTED";
  }
  return "SKD_E?";
}

const char *skd_cl_error_name(int e) {
  switch (e) {
#define NAME(x) case x: return #x
    NAME(CL_SUCCESS); NAME(CL_DEVICE_NOT_FOUND); NAME(CL_DEVICE_NOT_AVAILABLE);
    NAME(CL_COMPILER_NOT_AVAILABLE); NAME(CL_MEM_OBJECT_ALLOCATION_FAILURE);
    NAME(CL_OUT_OF_RESOURCES); NAME(CL_OUT_OF_HOST_MEMORY);
    NAME(CL_PROFILING_INFO_NOT_AVAILABLE); NAME(CL_MEM_COPY_OVERLAP);
    NAME(CL_IMAGE_FORMAT_MISMATCH); NAME(CL_IMAGE_FORMAT_NOT_SUPPORTED);
    NAME(CL_BUILD_PROGRAM_FAILURE); NAME(CL_MAP_FAILURE);
    NAME(CL_MISALIGNED_SUB_BUFFER_OFFSET); NAME(CL_COMPILE_PROGRAM_FAILURE);
    NAME(CL_LINKER_NOT_AVAILABLE); NAME(CL_LINK_PROGRAM_FAILURE);
    NAME(CL_INVALID_VALUE); NAME(CL_INVALID_DEVICE_TYPE); NAME(CL_INVALID_PLATFORM);
    NAME(CL_INVALID_DEVICE); NAME(CL_INVALID_CONTEXT); NAME(CL_INVALID_QUEUE_PROPERTIES);
    NAME(CL_INVALID_COMMAND_QUEUE); NAME(CL_INVALID_HOST_PTR); NAME(CL_INVALID_MEM_OBJECT);
    NAME(CL_INVALID_BUFFER_SIZE); NAME(CL_INVALID_BINARY); NAME(CL_INVALID_BUILD_OPTIONS);
    NAME(CL_INVALID_PROGRAM); NAME(CL_INVALID_PROGRAM_EXECUTABLE);
    NAME(CL_INVALID_KERNEL_NAME); NAME(CL_INVALID_KERNEL_DEFINITION); NAME(CL_INVALID_KERNEL);
    NAME(CL_INVALID_ARG_INDEX); NAME(CL_INVALID_ARG_VALUE); NAME(CL_INVALID_ARG_SIZE);
    NAME(CL_INVALID_KERNEL_ARGS); NAME(CL_INVALID_WORK_DIMENSION);
    NAME(CL_INVALID_WORK_GROUP_SIZE); NAME(CL_INVALID_WORK_ITEM_SIZE);
    NAME(CL_INVALID_GLOBAL_OFFSET); NAME(CL_INVALID_EVENT_WAIT_LIST); NAME(CL_INVALID_EVENT);
    NAME(CL_INVALID_OPERATION); NAME(CL_INVALID_GL_OBJECT); NAME(CL_INVALID_MIP_LEVEL);
    NAME(CL_INVALID_GLOBAL_WORK_SIZE); NAME(CL_INVALID_PROPERTY);
#undef NAME
    default: return "CL_UNKNOWN_ERROR";
  }
}
