/* Matrix products on device buffers: checked wrappers over CLBlast's SGEMM.
 * Everything is row-major (NCHW tensors are row-major matrices: a sample
 * of shape (C, H, W) is a C x (H*W) matrix with leading dimension H*W).
 *
 *   C (m x n) = alpha * op(A) (m x k) * op(B) (k x n) + beta * C
 *
 * op(A) = A (stored m x k, lda >= k) or A^T (stored k x m, lda >= m); the
 * same for B. beta = 0 ignores what C held, NaN included (CLBlast skips the
 * read; test_matmul checks both of its GEMM paths). Sizes, leading
 * dimensions and buffer extents are checked: SKD_EINVAL with a message.
 * CLBlast failures are SKD_ECL naming the call and CLBlast's status code. */
#ifndef SKD_OPS_MATMUL_H
#define SKD_OPS_MATMUL_H

#include <stddef.h>

#include "skd/tensor.h"

typedef enum skd_trans { SKD_NO_TRANS = 0, SKD_TRANS = 1 } skd_trans;

/* A matrix in a buffer: (buffer, offset in floats) and the row pitch. */
typedef struct skd_matrix {
  cl_mem mem;
  size_t offset; /* in floats */
  int ld;        /* leading dimension (row pitch) in floats */
} skd_matrix;

static inline skd_matrix skd_matrix_of(cl_mem mem, size_t offset, int ld) {
  skd_matrix m = {mem, offset, ld};
  return m;
}

/* Sample `sample` of a tensor seen as a C x (H*W) matrix. */
static inline skd_matrix skd_matrix_sample(const skd_tensor *t, int sample) {
  size_t per = (size_t)t->c * (size_t)t->h * (size_t)t->w;
  skd_matrix m = {t->mem, t->offset + (size_t)sample * per, t->h * t->w};
  return m;
}

skd_status skd_gemm(skd_context *ctx, skd_trans trans_a, skd_trans trans_b, int m, int n, int k, float alpha,
                    skd_matrix a, skd_matrix b, float beta, skd_matrix c);

/* `batch` independent products; matrix i starts stride_x floats after
 * matrix i-1. stride_a or stride_b may be 0 (one matrix shared by every
 * product); the C matrices must not overlap. */
skd_status skd_gemm_batched(skd_context *ctx, skd_trans trans_a, skd_trans trans_b, int m, int n, int k,
                            float alpha, skd_matrix a, size_t stride_a, skd_matrix b, size_t stride_b, float beta,
                            skd_matrix c, size_t stride_c, int batch);

/* Tuning and testing: sets CLBlast's XGEMM_MIN_INDIRECT_SIZE for this
 * device (products with m*n*k below its cube use the "direct" kernel,
 * larger ones the padded "indirect" one). CLBlast rebuilds its GEMM
 * kernels after the change. */
skd_status skd_gemm_set_indirect_threshold(skd_context *ctx, size_t min_size);

/* Plain-C references, same semantics (beta = 0 ignores C). */
void skd_ref_gemm(skd_trans trans_a, skd_trans trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                  const float *b, int ldb, float beta, float *c, int ldc);
void skd_ref_gemm_batched(skd_trans trans_a, skd_trans trans_b, int m, int n, int k, float alpha, const float *a,
                          int lda, size_t stride_a, const float *b, int ldb, size_t stride_b, float beta, float *c,
                          int ldc, size_t stride_c, int batch);

#endif
