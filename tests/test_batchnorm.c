/* BatchNorm2d: device vs reference (train and eval, with and without a
 * fused activation), running statistics, backward vs reference and vs finite
 * differences of the device forward, a cancellation-prone input, PyTorch's
 * nn.BatchNorm2d (tests/reference/batchnorm.bin) and bad arguments. */
#include "support.h"
#include "reference_file.h"
#include "skd/ops/batchnorm.h"

static const char *act_names[] = {"none", "relu", "leaky"};

/* Host copies of one BN problem. */
struct bn_host {
  int n, c, h, w;
  size_t numel;
  float *x, *gamma, *beta, *rmean, *rvar;
};

static struct bn_host bn_random(int n, int c, int h, int w) {
  struct bn_host b = {n, c, h, w, (size_t)n * c * h * w, NULL, NULL, NULL, NULL, NULL};
  b.x = host_random(b.numel, -2.0f, 3.0f);
  b.gamma = host_random((size_t)c, 0.5f, 1.5f);
  b.beta = host_random((size_t)c, -0.5f, 0.5f);
  b.rmean = host_random((size_t)c, -0.3f, 0.3f);
  b.rvar = host_random((size_t)c, 0.5f, 1.5f);
  return b;
}

/* Device tensors of one BN layer. */
struct bn_dev {
  skd_tensor x, y, gamma, beta, rmean, rvar, smean, sinvstd;
};

static struct bn_dev bn_upload(const struct bn_host *b) {
  struct bn_dev d;
  d.x = dev_upload(b->x, b->n, b->c, b->h, b->w);
  d.y = dev_tensor(b->n, b->c, b->h, b->w);
  d.gamma = dev_upload(b->gamma, 1, b->c, 1, 1);
  d.beta = dev_upload(b->beta, 1, b->c, 1, 1);
  d.rmean = dev_upload(b->rmean, 1, b->c, 1, 1);
  d.rvar = dev_upload(b->rvar, 1, b->c, 1, 1);
  d.smean = dev_tensor(1, b->c, 1, 1);
  d.sinvstd = dev_tensor(1, b->c, 1, 1);
  return d;
}

static skd_status bn_dev_forward(struct bn_dev *d, int training, skd_bn_act act) {
  return skd_batchnorm_forward(T, training, &d->x, &d->gamma, &d->beta, &d->rmean, &d->rvar, &d->smean,
                               &d->sinvstd, &d->y, SKD_BN_EPS, SKD_BN_MOMENTUM, act, 0.1f);
}

/* Forward and backward of one shape, mode and activation against the
 * reference. Backward accumulates onto random initial gradients. */
static void run_case(int n, int c, int h, int w, int training, skd_bn_act act) {
  struct bn_host b = bn_random(n, c, h, w);
  const size_t numel = b.numel;
  const int hw = h * w;
  struct bn_dev d = bn_upload(&b);
  CK_OK(bn_dev_forward(&d, training, act));

  float *rmean = host_copy(b.rmean, (size_t)c), *rvar = host_copy(b.rvar, (size_t)c);
  float *smean = host_alloc((size_t)c), *sinvstd = host_alloc((size_t)c), *y = host_alloc(numel);
  CK_OK(skd_ref_batchnorm_forward(training, b.x, n, c, hw, b.gamma, b.beta, rmean, rvar, smean, sinvstd, y,
                                  SKD_BN_EPS, SKD_BN_MOMENTUM, act, 0.1f));
  char op[64], check[64];
  snprintf(op, sizeof op, "batchnorm %s %s", training ? "train" : "eval", act_names[act]);
  snprintf(check, sizeof check, "fwd vs ref %dx%dx%dx%d", n, c, h, w);
  check_error(op, check, rel_error(dev_fetch(&d.y), y, numel), 1e-5);
  snprintf(check, sizeof check, "save_mean vs ref %dx%dx%dx%d", n, c, h, w);
  check_error(op, check, rel_error(dev_fetch(&d.smean), smean, (size_t)c), 1e-5);
  snprintf(check, sizeof check, "save_invstd vs ref %dx%dx%dx%d", n, c, h, w);
  check_error(op, check, rel_error(dev_fetch(&d.sinvstd), sinvstd, (size_t)c), 1e-5);
  snprintf(check, sizeof check, "running stats vs ref %dx%dx%dx%d", n, c, h, w);
  double e = fmax(rel_error(dev_fetch(&d.rmean), rmean, (size_t)c), rel_error(dev_fetch(&d.rvar), rvar, (size_t)c));
  check_error(op, check, e, 1e-5);

  float *dy = host_random(numel, -1.0f, 1.0f);
  float *dx0 = host_random(numel, -1.0f, 1.0f);
  float *dg0 = host_random((size_t)c, -1.0f, 1.0f), *db0 = host_random((size_t)c, -1.0f, 1.0f);
  skd_tensor tdy = dev_upload(dy, n, c, h, w), tdx = dev_upload(dx0, n, c, h, w);
  skd_tensor tdg = dev_upload(dg0, 1, c, 1, 1), tdb = dev_upload(db0, 1, c, 1, 1);
  CK_OK(skd_batchnorm_backward(T, training, &d.x, &d.y, &d.gamma, &d.smean, &d.sinvstd, &tdy, &tdx, &tdg, &tdb,
                               act, 0.1f));
  float *dx = host_copy(dx0, numel), *dg = host_copy(dg0, (size_t)c), *db = host_copy(db0, (size_t)c);
  skd_ref_batchnorm_backward(training, b.x, y, n, c, hw, b.gamma, smean, sinvstd, dy, dx, dg, db, act, 0.1f);
  snprintf(check, sizeof check, "dx vs ref %dx%dx%dx%d", n, c, h, w);
  check_error(op, check, rel_error(dev_fetch(&tdx), dx, numel), 1e-5);
  snprintf(check, sizeof check, "dgamma vs ref %dx%dx%dx%d", n, c, h, w);
  check_error(op, check, rel_error(dev_fetch(&tdg), dg, (size_t)c), 1e-5);
  snprintf(check, sizeof check, "dbeta vs ref %dx%dx%dx%d", n, c, h, w);
  check_error(op, check, rel_error(dev_fetch(&tdb), db, (size_t)c), 1e-5);
}

START_TEST(forward_backward_shapes) {
  static const int shapes[][4] = {{1, 3, 7, 5}, {2, 13, 5, 9}, {4, 64, 8, 8}, {2, 7, 1, 1}, {3, 5, 33, 17},
                                  /* runs longer than BN_BLOCK float4 groups per work-item on CPUs */
                                  {2, 3, 70, 65}};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
    for (int training = 1; training >= 0; training--)
      for (int act = SKD_BN_ACT_NONE; act <= SKD_BN_ACT_LEAKY_RELU; act++)
        run_case(shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], training, (skd_bn_act)act);
}
END_TEST

/* One value per channel: PyTorch refuses training, eval is fine. */
START_TEST(single_value_per_channel) {
  struct bn_host b = bn_random(1, 6, 1, 1);
  struct bn_dev d = bn_upload(&b);
  ck_assert_int_eq(bn_dev_forward(&d, 1, SKD_BN_ACT_NONE), SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), "more than 1 value per channel") != NULL, "message: %s",
                skd_error_last());
  float *y = host_alloc(6);
  ck_assert_int_eq(skd_ref_batchnorm_forward(1, b.x, 1, 6, 1, b.gamma, b.beta, b.rmean, b.rvar, NULL, NULL, y,
                                             SKD_BN_EPS, SKD_BN_MOMENTUM, SKD_BN_ACT_NONE, 0.0f),
                   SKD_EINVAL);
  /* Eval mode, and without save tensors (workspace). */
  CK_OK(skd_batchnorm_forward(T, 0, &d.x, &d.gamma, &d.beta, &d.rmean, &d.rvar, NULL, NULL, &d.y, SKD_BN_EPS,
                              SKD_BN_MOMENTUM, SKD_BN_ACT_NONE, 0.0f));
  CK_OK(skd_ref_batchnorm_forward(0, b.x, 1, 6, 1, b.gamma, b.beta, b.rmean, b.rvar, NULL, NULL, y, SKD_BN_EPS,
                                  SKD_BN_MOMENTUM, SKD_BN_ACT_NONE, 0.0f));
  check_error("batchnorm eval none", "fwd vs ref 1x6x1x1", rel_error(dev_fetch(&d.y), y, 6), 1e-5);
}
END_TEST

/* Several training steps on new batches: the running statistics follow the
 * reference; the forward is bit-for-bit repeatable. */
START_TEST(running_stats_steps) {
  const int n = 3, c = 11, h = 6, w = 5, hw = h * w;
  struct bn_host b = bn_random(n, c, h, w);
  struct bn_dev d = bn_upload(&b);
  float *rmean = host_copy(b.rmean, (size_t)c), *rvar = host_copy(b.rvar, (size_t)c);
  float *y = host_alloc(b.numel), *sm = host_alloc((size_t)c), *si = host_alloc((size_t)c);
  for (int step = 0; step < 4; step++) {
    float *x = host_random(b.numel, -1.0f + step, 2.0f + 2 * step);
    CK_OK(skd_tensor_upload(T, &d.x, x));
    CK_OK(skd_batchnorm_forward(T, 1, &d.x, &d.gamma, &d.beta, &d.rmean, &d.rvar, &d.smean, &d.sinvstd, &d.y,
                                SKD_BN_EPS, 0.25f, SKD_BN_ACT_NONE, 0.0f));
    CK_OK(skd_ref_batchnorm_forward(1, x, n, c, hw, b.gamma, b.beta, rmean, rvar, sm, si, y, SKD_BN_EPS, 0.25f,
                                    SKD_BN_ACT_NONE, 0.0f));
  }
  check_error("batchnorm train", "running_mean 4 steps", rel_error(dev_fetch(&d.rmean), rmean, (size_t)c), 1e-5);
  check_error("batchnorm train", "running_var 4 steps", rel_error(dev_fetch(&d.rvar), rvar, (size_t)c), 1e-5);
  float *y1 = dev_fetch(&d.y);
  CK_OK(bn_dev_forward(&d, 1, SKD_BN_ACT_NONE));
  ck_assert_msg(memcmp(y1, dev_fetch(&d.y), b.numel * sizeof(float)) == 0, "training forward is not repeatable");
}
END_TEST

/* A large common offset: E[x^2] - E[x]^2 would lose the variance entirely
 * in float; sums of squared deviations (merged blocks) keep it. */
START_TEST(offset_input) {
  const int n = 4, c = 3, h = 9, w = 7;
  struct bn_host b = bn_random(n, c, h, w);
  for (size_t i = 0; i < b.numel; i++) b.x[i] += 1000.0f;
  struct bn_dev d = bn_upload(&b);
  CK_OK(bn_dev_forward(&d, 1, SKD_BN_ACT_NONE));
  float *y = host_alloc(b.numel), *sm = host_alloc((size_t)c), *si = host_alloc((size_t)c);
  CK_OK(skd_ref_batchnorm_forward(1, b.x, n, c, h * w, b.gamma, b.beta, b.rmean, b.rvar, sm, si, y, SKD_BN_EPS,
                                  SKD_BN_MOMENTUM, SKD_BN_ACT_NONE, 0.0f));
  check_error("batchnorm train", "invstd, offset 1000", rel_error(dev_fetch(&d.sinvstd), si, (size_t)c), 1e-5);
  check_error("batchnorm train", "fwd, offset 1000", rel_error(dev_fetch(&d.y), y, b.numel), 1e-4);
}
END_TEST

/* The statistics kernel walks a work-item's float4 groups as contiguous runs
 * (what the op picks on CPUs) or interleaved by the group size (GPUs); the
 * op only ever takes one of them on a given device, so both are launched
 * here directly, with several group sizes, plain and with a large offset. */
START_TEST(stats_both_layouts) {
  static const int shapes[][4] = {{3, 5, 33, 17}, {2, 3, 70, 65}, {1, 2, 3, 1}};
  skd_kernel *k;
  CK_OK(skd_kernel_get(T, "batchnorm", "batchnorm_stats_fwd", &k));
  double worst = 0.0;
  for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
    for (int offset = 0; offset <= 1000; offset += 1000)
      for (int runs = 0; runs <= 1; runs++)
        for (size_t wg = 1; wg <= 64; wg *= 4) {
          const int n = shapes[si][0], c = shapes[si][1], hw = shapes[si][2] * shapes[si][3];
          struct bn_host b = bn_random(n, c, shapes[si][2], shapes[si][3]);
          for (size_t i = 0; i < b.numel; i++) b.x[i] += (float)offset;
          struct bn_dev d = bn_upload(&b);
          skd_args a = skd_args_begin(k);
          skd_arg_int(&a, n);
          skd_arg_int(&a, c);
          skd_arg_int(&a, hw);
          skd_arg_int(&a, runs);
          skd_arg_float(&a, SKD_BN_EPS);
          skd_arg_float(&a, SKD_BN_MOMENTUM);
          skd_arg_tensor(&a, &d.x);
          skd_arg_tensor(&a, &d.rmean);
          skd_arg_tensor(&a, &d.rvar);
          skd_arg_tensor(&a, &d.smean);
          skd_arg_tensor(&a, &d.sinvstd);
          skd_arg_local(&a, 3 * wg * sizeof(float));
          size_t global = (size_t)c * wg;
          CK_OK(skd_launch(T, &a, 1, &global, &wg));
          float *y = host_alloc(b.numel), *sm = host_alloc((size_t)c), *sv = host_alloc((size_t)c);
          CK_OK(skd_ref_batchnorm_forward(1, b.x, n, c, hw, b.gamma, b.beta, b.rmean, b.rvar, sm, sv, y, SKD_BN_EPS,
                                          SKD_BN_MOMENTUM, SKD_BN_ACT_NONE, 0.0f));
          worst = fmax(worst, rel_error(dev_fetch(&d.smean), sm, (size_t)c));
          worst = fmax(worst, rel_error(dev_fetch(&d.sinvstd), sv, (size_t)c));
          worst = fmax(worst, rel_error(dev_fetch(&d.rvar), b.rvar, (size_t)c));
        }
  check_error("batchnorm train", "stats, runs and interleaved, wg 1-64", worst, 1e-5);
}
END_TEST

/* Finite differences of the device forward, with respect to x, gamma or
 * beta. The training forward recomputes the batch statistics each time. */
enum fd_wrt { WRT_X, WRT_GAMMA, WRT_BETA };

struct fd_case {
  struct bn_host *b;
  int training;
  skd_bn_act act;
  enum fd_wrt wrt;
};

static void fd_forward(void *user, const float *v, float *y) {
  const struct fd_case *f = user;
  struct bn_host b = *f->b;
  if (f->wrt == WRT_X) b.x = (float *)v;
  if (f->wrt == WRT_GAMMA) b.gamma = (float *)v;
  if (f->wrt == WRT_BETA) b.beta = (float *)v;
  int mark = dev_mark();
  struct bn_dev d = bn_upload(&b);
  CK_OK(bn_dev_forward(&d, f->training, f->act));
  dev_download(&d.y, y);
  dev_release_to(mark);
}

/* Sets beta so that every pre-activation value lies at least half the
 * largest gap of its channel away from 0 (the activation's kink). */
static void beta_away_from_kink(struct bn_host *b, int training) {
  const int hw = b->h * b->w, m = b->n * hw;
  float *zero = host_alloc((size_t)b->c), *z = host_alloc(b->numel);
  float *rm = host_copy(b->rmean, (size_t)b->c), *rv = host_copy(b->rvar, (size_t)b->c);
  CK_OK(skd_ref_batchnorm_forward(training, b->x, b->n, b->c, hw, b->gamma, zero, rm, rv, NULL, NULL, z,
                                  SKD_BN_EPS, SKD_BN_MOMENTUM, SKD_BN_ACT_NONE, 0.0f));
  for (int ch = 0; ch < b->c; ch++) {
    float best_gap = -1.0f, best_mid = 0.0f;
    for (int i = 0; i < m; i++) {
      /* The nearest value above z_i in this channel. */
      float zi = z[((size_t)(i / hw) * b->c + ch) * hw + i % hw], above = INFINITY;
      for (int j = 0; j < m; j++) {
        float zj = z[((size_t)(j / hw) * b->c + ch) * hw + j % hw];
        if (zj > zi && zj < above) above = zj;
      }
      if (isfinite(above) && above - zi > best_gap) {
        best_gap = above - zi;
        best_mid = 0.5f * (above + zi);
      }
    }
    b->beta[ch] = -best_mid;
  }
}

static void run_fd(int training, skd_bn_act act) {
  const int n = 2, c = 3, h = 3, w = 2;
  struct bn_host b = bn_random(n, c, h, w);
  if (act != SKD_BN_ACT_NONE) beta_away_from_kink(&b, training);
  struct bn_dev d = bn_upload(&b);
  CK_OK(bn_dev_forward(&d, training, act));
  float *dy = host_random(b.numel, -1.0f, 1.0f);
  skd_tensor tdy = dev_upload(dy, n, c, h, w), tdx = dev_zeros(n, c, h, w);
  skd_tensor tdg = dev_zeros(1, c, 1, 1), tdb = dev_zeros(1, c, 1, 1);
  CK_OK(skd_batchnorm_backward(T, training, &d.x, &d.y, &d.gamma, &d.smean, &d.sinvstd, &tdy, &tdx, &tdg, &tdb,
                               act, 0.1f));
  char op[64];
  snprintf(op, sizeof op, "batchnorm %s %s", training ? "train" : "eval", act_names[act]);
  struct fd_case f = {&b, training, act, WRT_X};
  check_error(op, "dx vs fd 2x3x3x2",
              fd_error(fd_forward, &f, host_copy(b.x, b.numel), b.numel, dy, b.numel, dev_fetch(&tdx), 1e-2f),
              5e-3);
  f.wrt = WRT_GAMMA;
  check_error(op, "dgamma vs fd 2x3x3x2",
              fd_error(fd_forward, &f, host_copy(b.gamma, (size_t)c), (size_t)c, dy, b.numel, dev_fetch(&tdg), 1e-2f),
              5e-3);
  f.wrt = WRT_BETA;
  check_error(op, "dbeta vs fd 2x3x3x2",
              fd_error(fd_forward, &f, host_copy(b.beta, (size_t)c), (size_t)c, dy, b.numel, dev_fetch(&tdb), 1e-2f),
              5e-3);
}

START_TEST(finite_differences) {
  run_fd(1, SKD_BN_ACT_NONE);
  run_fd(1, SKD_BN_ACT_RELU);
  run_fd(1, SKD_BN_ACT_LEAKY_RELU);
  run_fd(0, SKD_BN_ACT_NONE);
  run_fd(0, SKD_BN_ACT_LEAKY_RELU);
}
END_TEST

/* Partial gradients: dx only, or dgamma/dbeta only, match the full call. */
START_TEST(partial_gradients) {
  const int n = 2, c = 5, h = 4, w = 3;
  struct bn_host b = bn_random(n, c, h, w);
  struct bn_dev d = bn_upload(&b);
  CK_OK(bn_dev_forward(&d, 1, SKD_BN_ACT_RELU));
  float *dy = host_random(b.numel, -1.0f, 1.0f);
  skd_tensor tdy = dev_upload(dy, n, c, h, w);
  skd_tensor dx_all = dev_zeros(n, c, h, w), dg_all = dev_zeros(1, c, 1, 1), db_all = dev_zeros(1, c, 1, 1);
  skd_tensor dx_only = dev_zeros(n, c, h, w), dg_only = dev_zeros(1, c, 1, 1), db_only = dev_zeros(1, c, 1, 1);
  CK_OK(skd_batchnorm_backward(T, 1, &d.x, &d.y, &d.gamma, &d.smean, &d.sinvstd, &tdy, &dx_all, &dg_all, &db_all,
                               SKD_BN_ACT_RELU, 0.0f));
  CK_OK(skd_batchnorm_backward(T, 1, &d.x, &d.y, &d.gamma, &d.smean, &d.sinvstd, &tdy, &dx_only, NULL, NULL,
                               SKD_BN_ACT_RELU, 0.0f));
  CK_OK(skd_batchnorm_backward(T, 1, &d.x, &d.y, &d.gamma, &d.smean, &d.sinvstd, &tdy, NULL, &dg_only, NULL,
                               SKD_BN_ACT_RELU, 0.0f));
  CK_OK(skd_batchnorm_backward(T, 1, &d.x, &d.y, &d.gamma, &d.smean, &d.sinvstd, &tdy, NULL, NULL, &db_only,
                               SKD_BN_ACT_RELU, 0.0f));
  check_error("batchnorm train relu", "dx alone", rel_error(dev_fetch(&dx_only), dev_fetch(&dx_all), b.numel), 0.0);
  check_error("batchnorm train relu", "dgamma alone", rel_error(dev_fetch(&dg_only), dev_fetch(&dg_all), (size_t)c),
              0.0);
  check_error("batchnorm train relu", "dbeta alone", rel_error(dev_fetch(&db_only), dev_fetch(&db_all), (size_t)c),
              0.0);
}
END_TEST

/* nn.BatchNorm2d itself (tests/reference/gen_batchnorm.py). */
static void pytorch_case(const ref_file *f, const char *tag, int training, skd_bn_act act, const struct bn_dev *d0,
                         const float *rmean, const float *rvar) {
  const ref_array *x = ref_get(f, "x");
  const int n = x->dims[0], c = x->dims[1], h = x->dims[2], w = x->dims[3];
  struct bn_dev d = *d0;
  d.rmean = dev_upload(rmean, 1, c, 1, 1);
  d.rvar = dev_upload(rvar, 1, c, 1, 1);
  CK_OK(bn_dev_forward(&d, training, act));
  char name[64], op[64];
  snprintf(op, sizeof op, "batchnorm vs pytorch %s", tag);
  snprintf(name, sizeof name, "y_%s", tag);
  check_error(op, "y", rel_error(dev_fetch(&d.y), ref_get(f, name)->data, x->numel), 1e-5);
  if (training && act == SKD_BN_ACT_NONE) {
    check_error(op, "running_mean", rel_error(dev_fetch(&d.rmean), ref_get(f, "running_mean_after")->data, (size_t)c),
                1e-5);
    check_error(op, "running_var", rel_error(dev_fetch(&d.rvar), ref_get(f, "running_var_after")->data, (size_t)c),
                1e-5);
  }
  skd_tensor dy = dev_upload(ref_get(f, "dy")->data, n, c, h, w);
  skd_tensor dx = dev_zeros(n, c, h, w), dg = dev_zeros(1, c, 1, 1), db = dev_zeros(1, c, 1, 1);
  CK_OK(skd_batchnorm_backward(T, training, &d.x, &d.y, &d.gamma, &d.smean, &d.sinvstd, &dy, &dx, &dg, &db, act,
                               0.0f));
  snprintf(name, sizeof name, "dx_%s", tag);
  check_error(op, "dx", rel_error(dev_fetch(&dx), ref_get(f, name)->data, x->numel), 1e-5);
  snprintf(name, sizeof name, "dgamma_%s", tag);
  check_error(op, "dgamma", rel_error(dev_fetch(&dg), ref_get(f, name)->data, (size_t)c), 1e-5);
  snprintf(name, sizeof name, "dbeta_%s", tag);
  check_error(op, "dbeta", rel_error(dev_fetch(&db), ref_get(f, name)->data, (size_t)c), 1e-5);
}

START_TEST(versus_pytorch) {
  ref_file *f = ref_open("batchnorm.bin");
  const ref_array *x = ref_get(f, "x");
  ck_assert_int_eq(x->ndim, 4);
  struct bn_host b = {x->dims[0], x->dims[1], x->dims[2], x->dims[3], x->numel, x->data,
                      ref_get(f, "gamma")->data, ref_get(f, "beta")->data, ref_get(f, "running_mean")->data,
                      ref_get(f, "running_var")->data};
  struct bn_dev d = bn_upload(&b);
  pytorch_case(f, "train", 1, SKD_BN_ACT_NONE, &d, b.rmean, b.rvar);
  pytorch_case(f, "train_relu", 1, SKD_BN_ACT_RELU, &d, b.rmean, b.rvar);
  pytorch_case(f, "eval", 0, SKD_BN_ACT_NONE, &d, ref_get(f, "running_mean_after")->data,
               ref_get(f, "running_var_after")->data);
  ref_close(f);
}
END_TEST

static void expect_einval(skd_status st, const char *fragment) {
  ck_assert_int_eq(st, SKD_EINVAL);
  ck_assert_msg(strstr(skd_error_last(), fragment) != NULL, "message '%s' lacks '%s'", skd_error_last(), fragment);
}

START_TEST(bad_arguments) {
  struct bn_host b = bn_random(2, 4, 3, 3);
  struct bn_dev d = bn_upload(&b);
  skd_tensor wrong_c = dev_zeros(1, 5, 1, 1), flat = dev_zeros(4, 1, 1, 1), y_bad = dev_zeros(2, 4, 3, 2);
  struct bn_dev e = d;
  e.gamma = wrong_c;
  expect_einval(bn_dev_forward(&e, 1, SKD_BN_ACT_NONE), "batchnorm forward: gamma: expected shape (1, 4, 1, 1)");
  e = d;
  e.rvar = flat;
  expect_einval(bn_dev_forward(&e, 0, SKD_BN_ACT_NONE), "batchnorm forward: running_var");
  e = d;
  e.y = y_bad;
  expect_einval(bn_dev_forward(&e, 1, SKD_BN_ACT_NONE), "batchnorm forward: y");
  expect_einval(skd_batchnorm_forward(T, 1, &d.x, &d.gamma, &d.beta, &d.rmean, &d.rvar, NULL, NULL, &d.y,
                                      SKD_BN_EPS, SKD_BN_MOMENTUM, SKD_BN_ACT_NONE, 0.0f),
                "training needs save_mean");
  expect_einval(skd_batchnorm_forward(T, 1, &d.x, &d.gamma, &d.beta, &d.rmean, &d.rvar, &d.smean, &d.sinvstd,
                                      &d.y, SKD_BN_EPS, SKD_BN_MOMENTUM, SKD_BN_ACT_LEAKY_RELU, -0.2f),
                "slope must be >= 0");
  CK_OK(bn_dev_forward(&d, 1, SKD_BN_ACT_RELU));
  expect_einval(skd_batchnorm_backward(T, 1, &d.x, &d.y, &d.gamma, &d.smean, &d.sinvstd, &y_bad, NULL, NULL, NULL,
                                       SKD_BN_ACT_RELU, 0.0f),
                "batchnorm backward: dy");
  expect_einval(skd_batchnorm_backward(T, 1, &d.x, NULL, &d.gamma, &d.smean, &d.sinvstd, &d.y, NULL, NULL, NULL,
                                       SKD_BN_ACT_RELU, 0.0f),
                "needs the forward output y");
  expect_einval(skd_batchnorm_backward(T, 1, &d.x, &d.y, &d.gamma, &d.smean, &d.sinvstd, &d.y, NULL, &wrong_c,
                                       NULL, SKD_BN_ACT_RELU, 0.0f),
                "batchnorm backward: dgamma");
}
END_TEST

int main(void) {
  Suite *s = suite_create("batchnorm");
  TCase *tc = support_tcase("batchnorm");
  tcase_add_test(tc, forward_backward_shapes);
  tcase_add_test(tc, single_value_per_channel);
  tcase_add_test(tc, running_stats_steps);
  tcase_add_test(tc, offset_input);
  tcase_add_test(tc, stats_both_layouts);
  tcase_add_test(tc, finite_differences);
  tcase_add_test(tc, partial_gradients);
  tcase_add_test(tc, versus_pytorch);
  tcase_add_test(tc, bad_arguments);
  suite_add_tcase(s, tc);
  return support_main(s);
}
