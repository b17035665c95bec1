/* Data-parallel runs over MPI (mpirun -np N skd-cl train).
 *
 * A build without MPI (-DSKD_MPI=OFF, or none found) and a process not
 * started by an MPI launcher are one rank of one: every call below is then
 * a no-op that succeeds, so the same binary runs with or without mpirun.
 * Buffers are host memory: no MPI library reads OpenCL buffers, so callers
 * stage device data through the host.
 *
 * Sums are MPI_SUM over float in a fixed communicator and size: the same
 * rank count and buffer sizes give the same bits run after run (Open MPI
 * picks its algorithm from those alone); another rank count may round
 * differently. */
#ifndef SKD_DIST_H
#define SKD_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "skd/status.h"

/* 1 when this build has MPI. */
int skd_dist_built(void);
/* Starts MPI when the process was launched by mpirun/srun (their
 * environment says so); else stays a single rank. Idempotent. */
skd_status skd_dist_init(void);
/* Ends MPI if skd_dist_init started it. */
void skd_dist_finalize(void);
/* Kills every rank (after a failure or a signal on this one). */
void skd_dist_abort(int code);

int skd_dist_rank(void);
int skd_dist_size(void);
/* The rank's index among the ranks of its node (device choice). */
int skd_dist_local_rank(void);

/* Every wait below gives up after SKD_DIST_TIMEOUT seconds (default 600, 0:
 * never) with an error naming the rank and the call: a rank that hangs
 * without exiting cannot stall the others forever. */
#define SKD_DIST_DEFAULT_TIMEOUT 600.0
/* Gradient bucket size: SKD_DIST_BUCKET_MB megabytes (default 25, PyTorch
 * DDP's), in floats. Every rank must use the same (the trainer checks). */
#define SKD_DIST_DEFAULT_BUCKET_MB 25.0
size_t skd_dist_bucket_floats(void);

/* buf[i] = sum over ranks of buf[i], on every rank (blocking). */
skd_status skd_dist_allreduce_sum(float *buf, size_t n);
/* The same over 64-bit counts (confusion matrices). */
skd_status skd_dist_allreduce_u64(uint64_t *buf, size_t n);
/* Gradient buckets: starts the float sum of buf in the background on a
 * communicator of its own (so the blocking collectives above may run while
 * it is in flight) and gives its handle. Every rank must start its buckets
 * in the same order. buf stays untouched until the sum is done:
 * skd_dist_test says whether it is (and moves MPI along), skd_dist_wait_all
 * finishes every started one. At most SKD_DIST_MAX_PENDING at once. */
#define SKD_DIST_MAX_PENDING 64
skd_status skd_dist_iallreduce_sum(float *buf, size_t n, int *handle);
skd_status skd_dist_test(int handle, int *done);
skd_status skd_dist_wait_all(void);
/* out = every rank's `bytes` of in, in rank order (size * bytes). */
skd_status skd_dist_allgather(const void *in, void *out, size_t bytes);
/* Rank root's bytes to every rank. */
skd_status skd_dist_broadcast(void *buf, size_t bytes, int root);
/* The max over ranks of an int (an error or a stop request on any rank). */
skd_status skd_dist_max_int(int *value);
/* SKD_EINVAL naming the first rank whose value differs from rank 0's (what
 * names the value in the message), on every rank. */
skd_status skd_dist_check_same(uint64_t value, const char *what);

/* FNV-1a of bytes (the config hash). */
uint64_t skd_dist_hash(const void *data, size_t bytes);

#endif
