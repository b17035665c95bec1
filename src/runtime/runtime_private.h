/* State of a context that the public header keeps opaque. */
#ifndef SKD_RUNTIME_PRIVATE_H
#define SKD_RUNTIME_PRIVATE_H

#include "skd/runtime.h"
#include "skd/tune.h"

#define SKD_MAX_PROGRAMS 64
#define SKD_MAX_KERNELS 512
#define SKD_MAX_PROFILE_SLOTS 512
#define SKD_MAX_PENDING_EVENTS 1024

struct program_entry {
  char family[32];
  cl_program program;
};

struct family_options {
  char family[32];
  char options[512];
};

struct profile_slot {
  char name[96];
  unsigned long calls;
  double total_ms;
  double flops, bytes;
};

struct pending_event {
  cl_event event;
  cl_event begin; /* a marker before a multi-kernel call, or NULL */
  int slot;
  int is_call; /* 0: a group's copy of a command (the group counts its own calls) */
};

struct derived_buffer {
  cl_mem source; /* a frozen buffer */
  size_t offset, bytes;
  cl_mem buffer;
};

struct skd_runtime_private {
  char cache_dir[1024];
  char cache_root[1024];         /* cache_dir even when the kernel cache is off ("" if none) */
  char tuning[1100];             /* the GEMM tuning in use: a file's path or "defaults" */
  int cache_enabled;
  int last_build_from_cache;
  struct program_entry programs[SKD_MAX_PROGRAMS];
  int nprograms;
  struct family_options family_opts[SKD_MAX_PROGRAMS];
  int nfamily_opts;
  skd_kernel *kernels[SKD_MAX_KERNELS];
  int nkernels;
  struct profile_slot profile[SKD_MAX_PROFILE_SLOTS];
  int nprofile;
  struct pending_event pending[SKD_MAX_PENDING_EVENTS];
  int npending;
  int group_slot;                /* the open profile group's slot, or -1 */
  cl_mem *frozen;                /* frozen.c */
  int nfrozen;
  struct derived_buffer *derived;
  int nderived;
  cl_mem workspace;
  size_t workspace_bytes;
  skd_conv_tuning conv;          /* conv2d's algorithm rules and direct blocking (conv_tuning.c) */
};

/* frozen.c */
void skd_context_release_frozen(skd_context *ctx);

/* program.c */
skd_status skd_program_get(skd_context *ctx, const char *family, cl_program *out);
const char *skd_family_options(const skd_context *ctx, const char *family);

/* context.c: releases the family's program and kernels (their handles
 * become invalid) so that it can be rebuilt with other options. */
void skd_family_drop(skd_context *ctx, const char *family);

/* profile.c */
int skd_profile_slot(skd_context *ctx, const char *name);
void skd_profile_push(skd_context *ctx, int slot, cl_event ev);
void skd_profile_release(skd_context *ctx);

/* cache.c: a binary cache on disk keyed by a 64-bit hash. */
unsigned long long skd_hash64(unsigned long long h, const void *data, size_t n);
#define SKD_HASH_SEED 1469598103934665603ULL
int skd_cache_load(const char *dir, unsigned long long key, unsigned char **bin, size_t *len);
void skd_cache_store(const char *dir, unsigned long long key, const unsigned char *bin, size_t len);

#endif
