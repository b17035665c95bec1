/* Reads the reference files written by the scripts in tests/reference/: a sequence of
 * records  u32 name_length | name | u32 ndim | u32 dims[ndim] | f32 data
 * (little endian), starting with the 8-byte magic "SKDREF01". */
#ifndef SKD_TEST_REFERENCE_FILE_H
#define SKD_TEST_REFERENCE_FILE_H

#include <stddef.h>

typedef struct ref_array {
  char name[128];
  int ndim;
  int dims[8];
  size_t numel;
  float *data;
} ref_array;

typedef struct ref_file {
  ref_array *arrays;
  int count;
} ref_file;

/* tests/reference: the SKD_REFERENCE_DIR environment variable, else the
 * directory compiled in (a build run from another copy of the tree, as on a
 * lent GPU machine, sets the variable). */
const char *ref_dir(void);
/* Loads <ref_dir()>/<name>; fails the test with a clear message when the
 * file is missing or malformed. */
ref_file *ref_open(const char *name);
/* The array called `name`; fails the test when absent. */
const ref_array *ref_get(const ref_file *f, const char *name);
void ref_close(ref_file *f);

#endif
