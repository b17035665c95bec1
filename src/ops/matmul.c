/* GEMM on device buffers through CLBlast (row-major), with the argument
 * checks CLBlast would otherwise report as bare status codes. */
#include <clblast_c.h>

#include "skd/ops/matmul.h"

static const char *clblast_status_name(int code) {
  switch (code) {
    case CLBlastNotImplemented: return "CLBlastNotImplemented";
    case CLBlastInvalidMatrixA: return "CLBlastInvalidMatrixA";
    case CLBlastInvalidMatrixB: return "CLBlastInvalidMatrixB";
    case CLBlastInvalidMatrixC: return "CLBlastInvalidMatrixC";
    case CLBlastInvalidDimension: return "CLBlastInvalidDimension";
    case CLBlastInvalidLeadDimA: return "CLBlastInvalidLeadDimA";
    case CLBlastInvalidLeadDimB: return "CLBlastInvalidLeadDimB";
    case CLBlastInvalidLeadDimC: return "CLBlastInvalidLeadDimC";
    case CLBlastInsufficientMemoryA: return "CLBlastInsufficientMemoryA";
    case CLBlastInsufficientMemoryB: return "CLBlastInsufficientMemoryB";
    case CLBlastInsufficientMemoryC: return "CLBlastInsufficientMemoryC";
    case CLBlastInsufficientMemoryTemp: return "CLBlastInsufficientMemoryTemp";
    case CLBlastInvalidBatchCount: return "CLBlastInvalidBatchCount";
    case CLBlastInvalidOverrideKernel: return "CLBlastInvalidOverrideKernel";
    case CLBlastMissingOverrideParameter: return "CLBlastMissingOverrideParameter";
    case CLBlastInvalidLocalMemUsage: return "CLBlastInvalidLocalMemUsage";
    case CLBlastDatabaseError: return "CLBlastDatabaseError";
    case CLBlastUnknownError: return "CLBlastUnknownError";
    case CLBlastUnexpectedError: return "CLBlastUnexpectedError";
    default: break;
  }
  /* CLBlast's codes above -1000 are OpenCL's. */
  return code > -1000 ? skd_cl_error_name(code) : "CLBlast status";
}

static skd_status clblast_check(CLBlastStatusCode code, const char *call, int m, int n, int k) {
  if (code == CLBlastSuccess) return SKD_OK;
  return skd_error(SKD_ECL, "gemm: %s (m=%d n=%d k=%d) failed: %s (%d)", call, m, n, k,
                   clblast_status_name((int)code), (int)code);
}

/* Floats a buffer must hold for `count` matrices of rows x cols. */
static size_t extent(const skd_matrix *x, int rows, int cols, size_t stride, int count) {
  return x->offset + (size_t)(count - 1) * stride + (size_t)(rows - 1) * (size_t)x->ld + (size_t)cols;
}

static skd_status check_matrix(const char *name, const skd_matrix *x, int rows, int cols, size_t stride,
                               int count) {
  if (!x->mem) return skd_error(SKD_EINVAL, "gemm: %s: no buffer", name);
  if (x->ld < cols)
    return skd_error(SKD_EINVAL, "gemm: %s: leading dimension %d is less than its row length %d", name, x->ld,
                     cols);
  size_t bytes = 0;
  cl_int err = clGetMemObjectInfo(x->mem, CL_MEM_SIZE, sizeof bytes, &bytes, NULL);
  if (err != CL_SUCCESS)
    return skd_error(SKD_EINVAL, "gemm: %s: not a buffer (clGetMemObjectInfo: %s (%d))", name,
                     skd_cl_error_name(err), err);
  size_t need = extent(x, rows, cols, stride, count);
  if (need > bytes / sizeof(float))
    return skd_error(SKD_EINVAL,
                     "gemm: %s: %d matrices of %d x %d (ld %d, stride %zu) from offset %zu need %zu floats, "
                     "the buffer holds %zu",
                     name, count, rows, cols, x->ld, stride, x->offset, need, bytes / sizeof(float));
  return SKD_OK;
}

static skd_status check_args(skd_trans ta, skd_trans tb, int m, int n, int k, const skd_matrix *a, size_t sa,
                             const skd_matrix *b, size_t sb, const skd_matrix *c, size_t sc, int batch) {
  if (m < 1 || n < 1 || k < 1 || batch < 1)
    return skd_error(SKD_EINVAL, "gemm: sizes must be positive (m=%d n=%d k=%d batch=%d)", m, n, k, batch);
  skd_status st = check_matrix("A", a, ta ? k : m, ta ? m : k, sa, batch);
  if (st == SKD_OK) st = check_matrix("B", b, tb ? n : k, tb ? k : n, sb, batch);
  if (st == SKD_OK) st = check_matrix("C", c, m, n, sc, batch);
  if (st == SKD_OK && batch > 1 && sc < (size_t)(m - 1) * (size_t)c->ld + (size_t)n)
    return skd_error(SKD_EINVAL, "gemm: C: stride %zu makes the %d x %d results (ld %d) overlap", sc, m, n, c->ld);
  return st;
}

static CLBlastTranspose trans(skd_trans t) { return t ? CLBlastTransposeYes : CLBlastTransposeNo; }

/* One checked product; its profile entry is `profile`. */
static skd_status sgemm(skd_context *ctx, const char *profile, skd_trans trans_a, skd_trans trans_b, int m, int n,
                        int k, float alpha, skd_matrix a, skd_matrix b, float beta, skd_matrix c) {
  cl_event ev = NULL, begin = skd_profile_mark(ctx);
  CLBlastStatusCode code = CLBlastSgemm(
      CLBlastLayoutRowMajor, trans(trans_a), trans(trans_b), (size_t)m, (size_t)n, (size_t)k, alpha, a.mem,
      a.offset, (size_t)a.ld, b.mem, b.offset, (size_t)b.ld, beta, c.mem, c.offset, (size_t)c.ld, &ctx->queue,
      ctx->profiling ? &ev : NULL);
  skd_profile_span(ctx, profile, begin, code == CLBlastSuccess ? ev : NULL);
  if (code == CLBlastSuccess) skd_profile_work(ctx, profile, 2.0 * m * n * (double)k, 0);
  return clblast_check(code, "CLBlastSgemm", m, n, k);
}

skd_status skd_gemm(skd_context *ctx, skd_trans trans_a, skd_trans trans_b, int m, int n, int k, float alpha,
                    skd_matrix a, skd_matrix b, float beta, skd_matrix c) {
  skd_status st = check_args(trans_a, trans_b, m, n, k, &a, 0, &b, 0, &c, 0, 1);
  if (st != SKD_OK) return st;
  return sgemm(ctx, "clblast_sgemm", trans_a, trans_b, m, n, k, alpha, a, b, beta, c);
}

skd_status skd_gemm_batched(skd_context *ctx, skd_trans trans_a, skd_trans trans_b, int m, int n, int k,
                            float alpha, skd_matrix a, size_t stride_a, skd_matrix b, size_t stride_b, float beta,
                            skd_matrix c, size_t stride_c, int batch) {
  /* One product is a plain GEMM (CLBlast also rejects stride 0 for C). */
  if (batch == 1) return skd_gemm(ctx, trans_a, trans_b, m, n, k, alpha, a, b, beta, c);
  skd_status st = check_args(trans_a, trans_b, m, n, k, &a, stride_a, &b, stride_b, &c, stride_c, batch);
  if (st != SKD_OK) return st;
  /* CLBlast 1.5.3's indirect strided-batched path computes wrong results
   * for a shared operand (stride 0) once the sizes need padding (seen on
   * PoCL: TN with A shared, NN and TN with B shared; the direct path is
   * fine). Which path runs depends on the tuning, so shared operands are
   * multiplied one product at a time. */
  if (stride_a == 0 || stride_b == 0) {
    for (int i = 0; st == SKD_OK && i < batch; i++) {
      skd_matrix ai = a, bi = b, ci = c;
      ai.offset += (size_t)i * stride_a;
      bi.offset += (size_t)i * stride_b;
      ci.offset += (size_t)i * stride_c;
      st = sgemm(ctx, "clblast_sgemm_batched", trans_a, trans_b, m, n, k, alpha, ai, bi, beta, ci);
    }
    return st;
  }
  cl_event ev = NULL, begin = skd_profile_mark(ctx);
  CLBlastStatusCode code = CLBlastSgemmStridedBatched(
      CLBlastLayoutRowMajor, trans(trans_a), trans(trans_b), (size_t)m, (size_t)n, (size_t)k, alpha, a.mem,
      a.offset, (size_t)a.ld, stride_a, b.mem, b.offset, (size_t)b.ld, stride_b, beta, c.mem, c.offset,
      (size_t)c.ld, stride_c, (size_t)batch, &ctx->queue, ctx->profiling ? &ev : NULL);
  skd_profile_span(ctx, "clblast_sgemm_batched", begin, code == CLBlastSuccess ? ev : NULL);
  if (code == CLBlastSuccess) skd_profile_work(ctx, "clblast_sgemm_batched", 2.0 * m * n * (double)k * batch, 0);
  return clblast_check(code, "CLBlastSgemmStridedBatched", m, n, k);
}

skd_status skd_gemm_set_indirect_threshold(skd_context *ctx, size_t min_size) {
  const char *names[] = {"XGEMM_MIN_INDIRECT_SIZE"};
  size_t values[] = {min_size};
  CLBlastStatusCode code =
      CLBlastOverrideParameters(ctx->device, "GemmRoutine", CLBlastPrecisionSingle, 1, names, values);
  if (code == CLBlastSuccess) return SKD_OK;
  return skd_error(SKD_ECL,
                   "gemm: CLBlastOverrideParameters(GemmRoutine, XGEMM_MIN_INDIRECT_SIZE=%zu) failed: %s (%d)",
                   min_size, clblast_status_name((int)code), (int)code);
}
