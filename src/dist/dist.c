/* MPI behind skd/dist.h; without MPI (or without a launcher) one rank. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

static double timeout_s = SKD_DIST_DEFAULT_TIMEOUT, bucket_mb = SKD_DIST_DEFAULT_BUCKET_MB;
size_t skd_dist_bucket_floats(void) { return (size_t)(bucket_mb * 1e6 / sizeof(float)); }

/* A number in [lo, hi] from the environment, when set. */
static skd_status read_env(const char *name, double lo, double hi, const char *what, double *value) {
  const char *env = getenv(name);
  if (!env) return SKD_OK;
  char *end = NULL;
  double v = strtod(env, &end);
  if (end == env || *end || !(v >= lo && v <= hi))
    return skd_error(SKD_EINVAL, "%s: expected %s between %g and %g, got '%s'", name, what, lo, hi, env);
  *value = v;
  return SKD_OK;
}

static skd_status read_settings(void) {
  skd_status st = read_env("SKD_DIST_TIMEOUT", 0, 1e7, "seconds (0: wait forever)", &timeout_s);
  if (st == SKD_OK) st = read_env("SKD_DIST_BUCKET_MB", 0.001, 4000, "megabytes", &bucket_mb);
  return st;
}

#ifdef SKD_HAVE_MPI
/* The gradient buckets' communicator: their non-blocking sums are matched
 * in start order among themselves, whatever the blocking collectives on
 * MPI_COMM_WORLD do meanwhile. */
static MPI_Comm grad_comm = MPI_COMM_NULL;
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

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Waits for n requests, polling (MPI_Test moves the library along) up to
 * the timeout: a tight loop for the first millisecond (sync-BN's small sums
 * answer within it), then 50 us naps. */
static skd_status wait_requests(MPI_Request *req, int n, const char *call) {
  const double start = now_s();
  for (long polls = 0;; polls++) {
    int done = 0;
    int rc = MPI_Testall(n, req, &done, MPI_STATUSES_IGNORE);
    if (rc != MPI_SUCCESS) return mpi_error(rc, call);
    if (done) return SKD_OK;
    double waited = now_s() - start;
    if (timeout_s > 0 && waited > timeout_s)
      return skd_error(SKD_EINVAL, "MPI: rank %d waited %.0f s in %s for the other ranks (one of them hangs, or the "
                       "network is down); giving up (SKD_DIST_TIMEOUT sets the limit)", rank_, waited, call);
    if (waited > 1e-3 && polls % 16 == 15) nanosleep(&(struct timespec){0, 50000}, NULL);
  }
}

static skd_status wait_one(int rc, MPI_Request *req, const char *call) {
  return rc == MPI_SUCCESS ? wait_requests(req, 1, call) : mpi_error(rc, call);
}

skd_status skd_dist_init(void) {
  skd_status st = read_settings();
  if (st != SKD_OK) return st;
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
  rc = MPI_Comm_dup(MPI_COMM_WORLD, &grad_comm);
  return rc == MPI_SUCCESS ? SKD_OK : mpi_error(rc, "MPI_Comm_dup");
}

void skd_dist_finalize(void) {
  if (grad_comm != MPI_COMM_NULL) MPI_Comm_free(&grad_comm);
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
  skd_status st = SKD_OK;
  for (size_t at = 0; started && size_ > 1 && at < n && st == SKD_OK; at += CHUNK) {
    int count = (int)(n - at < CHUNK ? n - at : CHUNK);
    MPI_Request req;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, (char *)buf + at * elem_size, count, type, MPI_SUM, MPI_COMM_WORLD, &req);
    st = wait_one(rc, &req, "MPI_Allreduce");
  }
  return st;
}

skd_status skd_dist_allreduce_sum(float *buf, size_t n) { return allreduce_sum(buf, n, MPI_FLOAT, sizeof *buf); }

skd_status skd_dist_allreduce_u64(uint64_t *buf, size_t n) {
  return allreduce_sum(buf, n, MPI_UINT64_T, sizeof *buf);
}

skd_status skd_dist_iallreduce_sum(float *buf, size_t n, int *handle) {
  *handle = -1;
  if (!started || size_ < 2) return SKD_OK;
  if (n > CHUNK) return skd_error(SKD_EINVAL, "MPI: a bucket of %zu floats is too large", n);
  if (npending == SKD_DIST_MAX_PENDING)
    return skd_error(SKD_EINVAL, "MPI: more than %d allreduces in flight", SKD_DIST_MAX_PENDING);
  int rc = MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, grad_comm, &pending[npending]);
  if (rc != MPI_SUCCESS) return mpi_error(rc, "MPI_Iallreduce");
  *handle = npending++;
  return SKD_OK;
}

skd_status skd_dist_test(int handle, int *done) {
  *done = 1;
  if (handle < 0) return SKD_OK;
  if (handle >= npending) return skd_error(SKD_EINVAL, "MPI: no allreduce %d in flight", handle);
  int rc = MPI_Test(&pending[handle], done, MPI_STATUS_IGNORE); /* a finished one reads MPI_REQUEST_NULL: done */
  return rc == MPI_SUCCESS ? SKD_OK : mpi_error(rc, "MPI_Test");
}

skd_status skd_dist_wait_all(void) {
  if (!npending) return SKD_OK;
  skd_status st = wait_requests(pending, npending, "MPI_Iallreduce (gradients)");
  npending = 0;
  return st;
}

skd_status skd_dist_allgather(const void *in, void *out, size_t bytes) {
  if (!started || size_ < 2) {
    memcpy(out, in, bytes);
    return SKD_OK;
  }
  if (bytes > CHUNK) return skd_error(SKD_EINVAL, "MPI: a gather of %zu bytes is too large", bytes);
  MPI_Request req;
  int rc = MPI_Iallgather(in, (int)bytes, MPI_BYTE, out, (int)bytes, MPI_BYTE, MPI_COMM_WORLD, &req);
  return wait_one(rc, &req, "MPI_Allgather");
}

skd_status skd_dist_broadcast(void *buf, size_t bytes, int root) {
  char *p = buf;
  skd_status st = SKD_OK;
  for (size_t at = 0; started && size_ > 1 && at < bytes && st == SKD_OK; at += CHUNK) {
    int count = (int)(bytes - at < CHUNK ? bytes - at : CHUNK);
    MPI_Request req;
    int rc = MPI_Ibcast(p + at, count, MPI_BYTE, root, MPI_COMM_WORLD, &req);
    st = wait_one(rc, &req, "MPI_Bcast");
  }
  return st;
}

skd_status skd_dist_max_int(int *value) {
  if (!started || size_ < 2) return SKD_OK;
  MPI_Request req;
  int rc = MPI_Iallreduce(MPI_IN_PLACE, value, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD, &req);
  return wait_one(rc, &req, "MPI_Allreduce");
}

skd_status skd_dist_check_same(uint64_t value, const char *what) {
  if (!started || size_ < 2) return SKD_OK;
  uint64_t *all = malloc((size_t)size_ * sizeof *all);
  if (!all) return skd_error(SKD_ENOMEM, "MPI: out of host memory");
  skd_status st = skd_dist_allgather(&value, all, sizeof value);
  for (int r = 1; r < size_ && st == SKD_OK; r++)
    if (all[r] != all[0])
      st = skd_error(SKD_EINVAL, "rank %d's %s differs from rank 0's (hash %016llx vs %016llx): every rank must be "
                     "started with the same options", r, what, (unsigned long long)all[r],
                     (unsigned long long)all[0]);
  free(all);
  return st;
}
#else
skd_status skd_dist_init(void) { return read_settings(); }
void skd_dist_finalize(void) {}
void skd_dist_abort(int code) { (void)code; }
skd_status skd_dist_allreduce_sum(float *buf, size_t n) { (void)buf; (void)n; return SKD_OK; }
skd_status skd_dist_allreduce_u64(uint64_t *buf, size_t n) { (void)buf; (void)n; return SKD_OK; }
skd_status skd_dist_iallreduce_sum(float *buf, size_t n, int *handle) {
  (void)buf, (void)n;
  *handle = -1;
  return SKD_OK;
}
skd_status skd_dist_test(int handle, int *done) {
  (void)handle;
  *done = 1;
  return SKD_OK;
}
skd_status skd_dist_wait_all(void) { return SKD_OK; }
skd_status skd_dist_allgather(const void *in, void *out, size_t bytes) {
  memcpy(out, in, bytes);
  return SKD_OK;
}
skd_status skd_dist_broadcast(void *buf, size_t bytes, int root) { (void)buf; (void)bytes; (void)root; return SKD_OK; }
skd_status skd_dist_max_int(int *value) { (void)value; return SKD_OK; }
skd_status skd_dist_check_same(uint64_t value, const char *what) { (void)value; (void)what; return SKD_OK; }
#endif
