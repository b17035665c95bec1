/* Status codes and the thread-local error message (libgit2 style).
 * Every fallible function returns SKD_OK (0) or a negative skd_status and
 * leaves a message that says what went wrong and where. */
#ifndef SKD_STATUS_H
#define SKD_STATUS_H

typedef enum skd_status {
  SKD_OK = 0,
  SKD_ENOMEM = -1,       /* host or device allocation failed or is over a limit */
  SKD_EINVAL = -2,       /* bad argument: shapes, indices, options */
  SKD_EIO = -3,          /* file could not be read or written */
  SKD_EFORMAT = -4,      /* file content is not what was expected */
  SKD_ECL = -5,          /* an OpenCL or CLBlast call failed */
  SKD_EBUILD = -6,       /* an OpenCL program failed to build */
  SKD_EUNSUPPORTED = -7  /* the device or build lacks a needed feature */
} skd_status;

/* Sets the message and returns code, so that `return skd_error(...)` reads well. */
skd_status skd_error(skd_status code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The message of the last error on this thread ("" if none). */
const char *skd_error_last(void);
void skd_error_clear(void);

/* Name of a status ("SKD_EINVAL"). */
const char *skd_status_name(skd_status code);

/* Name of an OpenCL error code ("CL_OUT_OF_RESOURCES"). */
const char *skd_cl_error_name(int cl_error);

#endif
