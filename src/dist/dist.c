/* MPI behind skd/dist.h; without MPI (or without a launcher) one rank. */
#include <stdlib.h>
#include <string.h>

#include "skd/dist.h"

#ifdef SKD_HAVE_MPI
#include <mpi.h>
#endif

static int rank_, size_ = 1, local_rank_;
#ifdef SKD_HAVE_MPI
static int started; /* skd_dist_init called MPI_Init */
#endif

int skd_dist_built(void) {
#ifdef SKD_HAVE_MPI
  return 1;
#else
  return 0;
#endif
}

int skd_dist_rank(void) { return rank_; }
int skd_dist_size(void) { return size_; }
int skd_dist_local_rank(void) { return local_rank_; }

uint64_t skd_dist_hash(const void *data, size_t bytes) {
  const unsigned char *p = data;
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < bytes; i++) h = (h ^ p[i]) * 1099511628211ULL;
  return h;
}

#ifdef SKD_HAVE_MPI
static MPI_Request pending[SKD_DIST_MAX_PENDING];
static int npending;

/* A launcher leaves these; a plain run does not (Open MPI's singleton
 * start would try to spawn a daemon, which a container may not allow). */
static int launched(void) {
  static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"};
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
    if (getenv(vars[i])) return 1;
  return 0;
}

static skd_status mpi_error(int rc, const char *call) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  return skd_error(SKD_EINVAL, "MPI: %s failed on rank %d: %s", call, rank_, text);
}

skd_status skd_dist_init(void) {
  int done = 0;
  MPI_Initialized(&done);
  if (done || !launched()) return SKD_OK;
  int rc = MPI_Init(NULL, NULL);
  if (rc != MPI_SUCCESS) return skd_error(SKD_EINVAL, "MPI: MPI_Init failed (code %d)", rc);
  started = 1;
  /* Errors come back as codes (a message naming the call), not an abort. */
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  MPI_Comm node;
  if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
    MPI_Comm_rank(node, &local_rank_);
    MPI_Comm_free(&node);
  }
  return SKD_OK;
}

void skd_dist_finalize(void) {
  if (started) MPI_Finalize();
  started = 0;
  rank_ = 0;
  size_ = 1;
  local_rank_ = 0;
}

void skd_dist_abort(int code) {
  if (started) MPI_Abort(MPI_COMM_WORLD, code);
}

/* MPI counts are int: long buffers go in pieces. */
#define CHUNK ((size_t)1 << 30)

/* In place, summed over the ranks, in pieces of at most CHUNK elements. */
static skd_status allreduce_sum(void *buf, size_t n, MPI_Datatype type, size_t elem_size) {
  for (size_t at = 0; started && size_ > 1 && at < n; at += CHUNK) {
    int count = (int)(n - at < CHUNK ? n - at : CHUNK);
    int rc = MPI_Allreduce(MPI_IN_PLACE, (char *)buf + at * elem_size, count, type, MPI_SUM, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpi_error(rc, "MPI_Allreduce");
  }
  return SKD_OK;
}

skd_status skd_dist_allreduce_sum(float *buf, size_t n) { return allreduce_sum(buf, n, MPI_FLOAT, sizeof *buf); }

skd_status skd_dist_allreduce_u64(uint64_t *buf, size_t n) {
  return allreduce_sum(buf, n, MPI_UINT64_T, sizeof *buf);
}

skd_status skd_dist_iallreduce_sum(float *buf, size_t n) {
  if (!started || size_ < 2) return SKD_OK;
  if (n > CHUNK) return skd_error(SKD_EINVAL, "MPI: a bucket of %zu floats is too large", n);
  if (npending == SKD_DIST_MAX_PENDING)
    return skd_error(SKD_EINVAL, "MPI: more than %d allreduces in flight", SKD_DIST_MAX_PENDING);
  int rc = MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &pending[npending]);
  if (rc != MPI_SUCCESS) return mpi_error(rc, "MPI_Iallreduce");
  npending++;
  return SKD_OK;
}

skd_status skd_dist_wait_all(void) {
  if (!npending) return SKD_OK;
  int rc = MPI_Waitall(npending, pending, MPI_STATUSES_IGNORE);
  npending = 0;
  return rc == MPI_SUCCESS ? SKD_OK : mpi_error(rc, "MPI_Waitall");
}

skd_status skd_dist_allgather_float(const float *in, float *out, size_t n) {
  if (!started || size_ < 2) {
    memcpy(out, in, n * sizeof(float));
    return SKD_OK;
  }
  if (n > CHUNK) return skd_error(SKD_EINVAL, "MPI: a gather of %zu floats is too large", n);
  int rc = MPI_Allgather(in, (int)n, MPI_FLOAT, out, (int)n, MPI_FLOAT, MPI_COMM_WORLD);
  return rc == MPI_SUCCESS ? SKD_OK : mpi_error(rc, "MPI_Allgather");
}

skd_status skd_dist_broadcast(void *buf, size_t bytes, int root) {
  char *p = buf;
  for (size_t at = 0; started && size_ > 1 && at < bytes; at += CHUNK) {
    int count = (int)(bytes - at < CHUNK ? bytes - at : CHUNK);
    int rc = MPI_Bcast(p + at, count, MPI_BYTE, root, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpi_error(rc, "MPI_Bcast");
  }
  return SKD_OK;
}

skd_status skd_dist_max_int(int *value) {
  if (!started || size_ < 2) return SKD_OK;
  int rc = MPI_Allreduce(MPI_IN_PLACE, value, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return rc == MPI_SUCCESS ? SKD_OK : mpi_error(rc, "MPI_Allreduce");
}

skd_status skd_dist_check_same(uint64_t value, const char *what) {
  if (!started || size_ < 2) return SKD_OK;
  unsigned long long mine = value, *all = malloc((size_t)size_ * sizeof *all);
  if (!all) return skd_error(SKD_ENOMEM, "MPI: out of host memory");
  int rc = MPI_Allgather(&mine, 1, MPI_UNSIGNED_LONG_LONG, all, 1, MPI_UNSIGNED_LONG_LONG, MPI_COMM_WORLD);
  skd_status st = rc == MPI_SUCCESS ? SKD_OK : mpi_error(rc, "MPI_Allgather");
  for (int r = 1; r < size_ && st == SKD_OK; r++)
    if (all[r] != all[0])
      st = skd_error(SKD_EINVAL, "rank %d's %s differs from rank 0's (hash %016llx vs %016llx): every rank must be "
                     "started with the same options", r, what, all[r], all[0]);
  free(all);
  return st;
}
#else
skd_status skd_dist_init(void) { return SKD_OK; }
void skd_dist_finalize(void) {}
void skd_dist_abort(int code) { (void)code; }
skd_status skd_dist_allreduce_sum(float *buf, size_t n) { (void)buf; (void)n; return SKD_OK; }
skd_status skd_dist_allreduce_u64(uint64_t *buf, size_t n) { (void)buf; (void)n; return SKD_OK; }
skd_status skd_dist_iallreduce_sum(float *buf, size_t n) { (void)buf; (void)n; return SKD_OK; }
skd_status skd_dist_wait_all(void) { return SKD_OK; }
skd_status skd_dist_allgather_float(const float *in, float *out, size_t n) {
  memcpy(out, in, n * sizeof(float));
  return SKD_OK;
}
skd_status skd_dist_broadcast(void *buf, size_t bytes, int root) { (void)buf; (void)bytes; (void)root; return SKD_OK; }
skd_status skd_dist_max_int(int *value) { (void)value; return SKD_OK; }
skd_status skd_dist_check_same(uint64_t value, const char *what) { (void)value; (void)what; return SKD_OK; }
#endif
