/* Synchronised batch norm (skd_bn_sync): two "ranks" as two threads, each
 * with its own OpenCL context and half of the batch, joined by a hook over
 * shared memory, against one device BN over the whole batch: outputs, dx,
 * running statistics, and dgamma / dbeta summed over the ranks. One image
 * per rank (a plane of 1x1 per rank) is allowed when the total exceeds 1. */
#include <pthread.h>

#include "support.h"
#include "skd/ops/batchnorm.h"

#define RANKS 2

/* The shared "communicator": every rank puts its floats in its slot, then
 * each reads them all after a barrier. */
struct comm {
  pthread_barrier_t barrier;
  float *slot[RANKS];
};

struct rank_job {
  struct comm *comm;
  int rank, n, c, h, w;
  const float *x, *dy, *gamma, *beta, *rmean, *rvar; /* this rank's rows of x, dy; the shared rest */
  float *y, *dx, *dgamma, *dbeta, *rmean_out, *rvar_out;
  skd_status st;
  char message[512];
};

static skd_status exchange(struct rank_job *j, const float *in, size_t n) {
  j->comm->slot[j->rank] = (float *)in;
  pthread_barrier_wait(&j->comm->barrier);
  (void)n;
  return SKD_OK;
}

static skd_status hook_gather(void *user, const float *in, float *out, size_t n) {
  struct rank_job *j = user;
  exchange(j, in, n);
  for (int r = 0; r < RANKS; r++) memcpy(out + (size_t)r * n, j->comm->slot[r], n * sizeof(float));
  pthread_barrier_wait(&j->comm->barrier); /* every rank has read every slot */
  return SKD_OK;
}

static skd_status hook_sum(void *user, float *buf, size_t n) {
  float *copy = malloc(n * sizeof(float)), *all = malloc(RANKS * n * sizeof(float));
  memcpy(copy, buf, n * sizeof(float));
  hook_gather(user, copy, all, n);
  for (size_t i = 0; i < n; i++) {
    float s = 0.0f;
    for (int r = 0; r < RANKS; r++) s += all[(size_t)r * n + i];
    buf[i] = s;
  }
  free(copy);
  free(all);
  return SKD_OK;
}

static skd_tensor up(skd_context *ctx, const float *host, int n, int c, int h, int w, skd_status *st) {
  skd_tensor t = {0};
  if (*st == SKD_OK) *st = skd_tensor_alloc(ctx, &t, n, c, h, w);
  if (*st == SKD_OK && host) *st = skd_tensor_upload(ctx, &t, host);
  if (*st == SKD_OK && !host) *st = skd_tensor_fill(ctx, &t, 0.0f);
  return t;
}

static void *rank_main(void *arg) {
  struct rank_job *j = arg;
  skd_context_options opt;
  skd_context_options_default(&opt);
  skd_context *ctx = NULL;
  skd_status st = skd_context_create(&ctx, &opt);
  const int n = j->n, c = j->c, h = j->h, w = j->w;
  skd_tensor x = up(ctx, j->x, n, c, h, w, &st), dy = up(ctx, j->dy, n, c, h, w, &st);
  skd_tensor y = up(ctx, NULL, n, c, h, w, &st), dx = up(ctx, NULL, n, c, h, w, &st);
  skd_tensor g = up(ctx, j->gamma, 1, c, 1, 1, &st), b = up(ctx, j->beta, 1, c, 1, 1, &st);
  skd_tensor rm = up(ctx, j->rmean, 1, c, 1, 1, &st), rv = up(ctx, j->rvar, 1, c, 1, 1, &st);
  skd_tensor sm = up(ctx, NULL, 1, c, 1, 1, &st), si = up(ctx, NULL, 1, c, 1, 1, &st);
  skd_tensor dg = up(ctx, NULL, 1, c, 1, 1, &st), db = up(ctx, NULL, 1, c, 1, 1, &st);
  skd_bn_sync sync = {.ranks = RANKS, .rank = j->rank, .user = j, .sum = hook_sum, .gather = hook_gather};
  skd_batchnorm_set_sync(ctx, &sync);
  if (st == SKD_OK)
    st = skd_batchnorm_forward(ctx, 1, &x, &g, &b, &rm, &rv, &sm, &si, &y, SKD_BN_EPS, SKD_BN_MOMENTUM,
                               SKD_BN_ACT_RELU, 0.0f);
  if (st == SKD_OK)
    st = skd_batchnorm_backward(ctx, 1, &x, &y, &g, &sm, &si, &dy, &dx, &dg, &db, SKD_BN_ACT_RELU, 0.0f);
  skd_batchnorm_set_sync(ctx, NULL);
  if (st == SKD_OK) st = skd_tensor_download(ctx, &y, j->y);
  if (st == SKD_OK) st = skd_tensor_download(ctx, &dx, j->dx);
  if (st == SKD_OK) st = skd_tensor_download(ctx, &dg, j->dgamma);
  if (st == SKD_OK) st = skd_tensor_download(ctx, &db, j->dbeta);
  if (st == SKD_OK) st = skd_tensor_download(ctx, &rm, j->rmean_out);
  if (st == SKD_OK) st = skd_tensor_download(ctx, &rv, j->rvar_out);
  if (st != SKD_OK) snprintf(j->message, sizeof j->message, "%s", skd_error_last());
  j->st = st;
  skd_tensor *all[] = {&x, &dy, &y, &dx, &g, &b, &rm, &rv, &sm, &si, &dg, &db};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) skd_tensor_release(all[i]);
  skd_context_free(ctx);
  return NULL;
}

/* n images (n / RANKS per rank) of c x h x w against one BN over all n. */
static void run_case(int n, int c, int h, int w) {
  const size_t plane = (size_t)h * w, numel = (size_t)n * c * plane, half = numel / RANKS;
  float *x = host_random(numel, -2.0f, 3.0f), *dy = host_random(numel, -1.0f, 1.0f);
  /* a constant region in every plane, as padded crops give (ties in ReLU's mask) */
  for (size_t i = 0; i < numel; i++)
    if (i % plane >= plane / 2) x[i] = 0.0f;
  float *gamma = host_random((size_t)c, 0.5f, 1.5f), *beta = host_random((size_t)c, -0.5f, 0.5f);
  float *rmean = host_random((size_t)c, -0.3f, 0.3f), *rvar = host_random((size_t)c, 0.5f, 1.5f);
  /* one device BN over the whole batch */
  skd_tensor dx_ = dev_upload(x, n, c, h, w), ddy = dev_upload(dy, n, c, h, w), dyy = dev_tensor(n, c, h, w);
  skd_tensor dg = dev_upload(gamma, 1, c, 1, 1), db = dev_upload(beta, 1, c, 1, 1);
  skd_tensor drm = dev_upload(rmean, 1, c, 1, 1), drv = dev_upload(rvar, 1, c, 1, 1);
  skd_tensor dsm = dev_tensor(1, c, 1, 1), dsi = dev_tensor(1, c, 1, 1);
  skd_tensor ddx = dev_zeros(n, c, h, w), ddg = dev_zeros(1, c, 1, 1), ddb = dev_zeros(1, c, 1, 1);
  CK_OK(skd_batchnorm_forward(T, 1, &dx_, &dg, &db, &drm, &drv, &dsm, &dsi, &dyy, SKD_BN_EPS, SKD_BN_MOMENTUM,
                              SKD_BN_ACT_RELU, 0.0f));
  CK_OK(skd_batchnorm_backward(T, 1, &dx_, &dyy, &dg, &dsm, &dsi, &ddy, &ddx, &ddg, &ddb, SKD_BN_ACT_RELU, 0.0f));
  float *y = dev_fetch(&dyy), *dx = dev_fetch(&ddx), *dgam = dev_fetch(&ddg), *dbet = dev_fetch(&ddb);
  float *rm = dev_fetch(&drm), *rv = dev_fetch(&drv);

  struct comm comm;
  pthread_barrier_init(&comm.barrier, NULL, RANKS);
  struct rank_job jobs[RANKS];
  pthread_t threads[RANKS];
  float *ys = host_alloc(numel), *dxs = host_alloc(numel), *dgs = host_alloc(RANKS * (size_t)c),
        *dbs = host_alloc(RANKS * (size_t)c), *rms = host_alloc(RANKS * (size_t)c), *rvs = host_alloc(RANKS * (size_t)c);
  for (int r = 0; r < RANKS; r++) {
    struct rank_job jb = {&comm, r, n / RANKS, c, h, w, x + r * half, dy + r * half, gamma, beta, rmean, rvar,
                          ys + r * half, dxs + r * half, dgs + (size_t)r * c, dbs + (size_t)r * c,
                          rms + (size_t)r * c, rvs + (size_t)r * c, SKD_OK, ""};
    jobs[r] = jb;
    ck_assert_int_eq(pthread_create(&threads[r], NULL, rank_main, &jobs[r]), 0);
  }
  for (int r = 0; r < RANKS; r++) pthread_join(threads[r], NULL);
  pthread_barrier_destroy(&comm.barrier);
  for (int r = 0; r < RANKS; r++) ck_assert_msg(jobs[r].st == SKD_OK, "rank %d: %s", r, jobs[r].message);
  for (int k = 0; k < c; k++) { /* the ranks' own parameter gradients add up to the whole batch's */
    dgs[k] += dgs[c + k];
    dbs[k] += dbs[c + k];
  }
  char what[64];
  snprintf(what, sizeof what, "%dx%dx%dx%d", n, c, h, w);
  check_error("batchnorm sync", "y", rel_error(ys, y, numel), 1e-5);
  check_error("batchnorm sync", "dx", rel_error(dxs, dx, numel), 1e-5);
  check_error("batchnorm sync", "dgamma", rel_error(dgs, dgam, (size_t)c), 1e-5);
  check_error("batchnorm sync", "dbeta", rel_error(dbs, dbet, (size_t)c), 1e-5);
  for (int r = 0; r < RANKS; r++) {
    check_error("batchnorm sync", "running_mean", rel_error(rms + (size_t)r * c, rm, (size_t)c), 1e-5);
    check_error("batchnorm sync", "running_var", rel_error(rvs + (size_t)r * c, rv, (size_t)c), 1e-5);
  }
  (void)what;
}

START_TEST(two_ranks) {
  run_case(4, 5, 7, 9);
  run_case(2, 3, 16, 16);
  run_case(2, 6, 1, 1); /* one value per channel on each rank: two in all */
}
END_TEST

int main(void) {
  Suite *s = suite_create("batchnorm_sync");
  TCase *tc = support_tcase("batchnorm_sync");
  tcase_add_test(tc, two_ranks);
  suite_add_tcase(s, tc);
  return support_main(s);
}
