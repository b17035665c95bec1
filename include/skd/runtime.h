/* OpenCL runtime: devices of every platform, one context and one in-order
 * queue per device, programs built from the embedded .cl sources (with an
 * on-disk binary cache), kernel launches and per-kernel profiling. */
#ifndef SKD_RUNTIME_H
#define SKD_RUNTIME_H

#include <CL/cl.h>
#include <stddef.h>

#include "skd/status.h"

typedef struct skd_device_info {
  int index;                     /* global index over all platforms */
  int platform_index;
  char platform[128];
  char name[128];
  char vendor[128];
  char driver_version[64];
  char device_version[128];
  char opencl_c_version[64];
  const char *type;              /* "GPU", "CPU", "ACCELERATOR", "OTHER" */
  int is_gpu;
  /* Mesa's llvmpipe ends any loop after 65535 iterations per work-item
   * (its shader loop limiter), silently: long-loop kernels are avoided. */
  int loop_limited;
  unsigned compute_units;
  unsigned clock_mhz;
  unsigned long long global_mem_bytes;
  unsigned long long max_alloc_bytes;
  unsigned long long local_mem_bytes;
  size_t max_work_group_size;
  unsigned base_addr_align_bytes;
  int fp16;
  int fp64;
  cl_platform_id platform_id;
  cl_device_id device_id;
} skd_device_info;

/* Every device of every platform, in platform order. *out is freed with free().
 * No platform at all is not an error: *count is 0. */
skd_status skd_devices_list(skd_device_info **out, int *count);

/* Picks a device: requested >= 0 wins; else the SKD_DEVICE environment
 * variable; else the first GPU; else device 0. A bad index is an error whose
 * message lists the valid devices. */
skd_status skd_device_choose(int requested, int *index);

typedef struct skd_kernel {
  cl_kernel kernel;
  char family[32];
  char name[64];
  int profile_slot;
} skd_kernel;

typedef struct skd_profile_entry {
  char name[96];
  unsigned long calls;
  double total_ms;
  double flops, bytes; /* work recorded with skd_profile_work; 0 = not recorded */
} skd_profile_entry;

struct skd_runtime_private;

typedef struct skd_context {
  cl_context context;
  cl_device_id device;
  cl_command_queue queue;
  skd_device_info info;
  int profiling;                 /* events are recorded per launch */
  struct skd_runtime_private *priv;
} skd_context;

typedef struct skd_context_options {
  int device_index;              /* -1: skd_device_choose(-1) */
  int profiling;                 /* -1: from SKD_PROFILE; 0 off; 1 on */
  const char *cache_dir;         /* NULL: $SKD_CACHE_DIR, else $XDG_CACHE_HOME/skd-cl, else ~/.cache/skd-cl */
  int disable_cache;             /* also set by SKD_NO_KERNEL_CACHE=1 */
  const char *tuning;            /* GEMM and convolution tuning: NULL = $SKD_TUNING, else the device's file from
                                    `skd-cl tune` if there is one; "off" = the defaults; else a tuning file
                                    (skd/tune.h) */
} skd_context_options;

void skd_context_options_default(skd_context_options *opt);
skd_status skd_context_create(skd_context **out, const skd_context_options *opt);
void skd_context_free(skd_context *ctx);

/* Extra build options (-D tuning values) for one kernel family; must be set
 * before the family's first kernel is fetched. */
skd_status skd_context_set_family_options(skd_context *ctx, const char *family, const char *options);

/* The kernel `name` from cl/<family>.cl (built on first use, with common.cl
 * prepended). The handle lives as long as the context. */
skd_status skd_kernel_get(skd_context *ctx, const char *family, const char *name, skd_kernel **out);

/* Where the binary cache lives for this context ("" when disabled), and how
 * the last program build went: 1 = from cache, 0 = compiled. */
const char *skd_context_cache_dir(const skd_context *ctx);
int skd_context_last_build_from_cache(const skd_context *ctx);

/* Builds an arbitrary source as family `family` (used by tests for a kernel
 * that must fail to build, and by tools). */
skd_status skd_program_build_source(skd_context *ctx, const char *family, const char *source);

/* Kernel arguments, set in order; the first failure is kept and reported by
 * skd_launch, so call sites stay flat. */
typedef struct skd_args {
  skd_kernel *k;
  cl_uint next;
  cl_int err;
  cl_uint bad_index;
} skd_args;

skd_args skd_args_begin(skd_kernel *k);
void skd_arg_mem(skd_args *a, cl_mem m);
void skd_arg_int(skd_args *a, int v);
void skd_arg_float(skd_args *a, float v);
void skd_arg_local(skd_args *a, size_t bytes);

/* Enqueues the kernel. global is rounded up to a multiple of local when local
 * is given; kernels bound-check their own index. */
skd_status skd_launch(skd_context *ctx, skd_args *a, cl_uint dims, const size_t *global, const size_t *local);
/* 1-D launch over n items with work-group size wg (0: let the driver pick). */
skd_status skd_launch_1d(skd_context *ctx, skd_args *a, size_t n, size_t wg);
/* One work-item per element of `planes` planes of h x w, as a 3-D range
 * (x, y, plane): kernels get their coordinates without integer division
 * (which CPUs do one lane at a time). */
skd_status skd_launch_planes(skd_context *ctx, skd_args *a, int w, int h, size_t planes);

/* A work-group size for reductions: the power of two <= min(want, device max). */
size_t skd_context_wg(const skd_context *ctx, size_t want);

/* Profiling of calls made outside skd_launch (CLBlast). Takes the event. */
void skd_profile_event(skd_context *ctx, const char *name, cl_event ev);
/* A call that enqueues several commands but returns one event (CLBlast's
 * indirect GEMM: pads, transposes, then the kernel) is timed as a span: a
 * marker enqueued before it (skd_profile_mark; NULL without profiling)
 * to its last command's end. Takes both events. */
cl_event skd_profile_mark(skd_context *ctx);
void skd_profile_span(skd_context *ctx, const char *name, cl_event begin, cl_event end);
/* Adds the work of one launch of kernel `name` (floating-point operations,
 * bytes that must move) for the summary's GFLOP/s and GB/s. No-op without
 * profiling. */
void skd_profile_work(skd_context *ctx, const char *name, double flops, double bytes);
/* Between these, every command timed also adds its time to the entry
 * `name` (one group at a time; no-op without profiling): the convolutions'
 * totals by layer shape, whatever kernels and GEMMs each ran. */
void skd_profile_group_begin(skd_context *ctx, const char *name);
void skd_profile_group_end(skd_context *ctx);
/* Groups whose name starts with this are convolution layer shapes, listed
 * apart from the kernels (their time is the kernels' time again). */
#define SKD_PROFILE_SHAPE_PREFIX "shape:"
/* Per-kernel totals so far (waits for the queue). *out is freed with free(). */
skd_status skd_profile_summary(skd_context *ctx, skd_profile_entry **out, int *count);

/* Frozen buffers: contents that stay fixed until skd_context_changed (a
 * frozen teacher's parameters, marked when they are allocated). Ops may keep
 * data derived from a frozen buffer between calls: skd_context_derived gives
 * the buffer of `bytes` kept for (source, offset), *fresh = 1 when it was
 * just created and must be filled; *out = NULL when source is not frozen.
 * skd_context_changed drops what was derived from mem (call it after every
 * write to a frozen buffer); skd_context_thaw also unmarks it (call it before
 * releasing it). */
skd_status skd_context_freeze(skd_context *ctx, cl_mem mem);
skd_status skd_context_derived(skd_context *ctx, cl_mem source, size_t offset, size_t bytes, cl_mem *out,
                               int *fresh);
void skd_context_changed(skd_context *ctx, cl_mem mem);
void skd_context_thaw(skd_context *ctx, cl_mem mem);
/* Device memory held by derived buffers. */
size_t skd_context_derived_bytes(const skd_context *ctx);

skd_status skd_context_finish(skd_context *ctx);

/* A scratch buffer owned by the context (im2col columns and the like) of at
 * least `bytes`. It grows when asked for more and is otherwise reused, so a
 * steady training loop creates no buffers. Valid until a call that asks for
 * more (growing replaces the buffer): ops that need several scratch areas, or
 * call another op while holding one, reserve the total in one request. The
 * queue is in order, so reuse by the next op is safe. */
skd_status skd_workspace_get(skd_context *ctx, size_t bytes, cl_mem *out);
/* The workspace's current size in bytes (0 before the first request). */
size_t skd_workspace_bytes(const skd_context *ctx);

/* Device buffer of `bytes`, checked against the device's MAX_MEM_ALLOC_SIZE
 * and global memory, with a message naming `what` on failure. */
skd_status skd_buffer_create(skd_context *ctx, size_t bytes, const char *what, cl_mem *out);

/* Helper for OpenCL return codes: SKD_OK or SKD_ECL with "what: CL_NAME (code)". */
skd_status skd_cl_check(cl_int err, const char *what);

#endif
