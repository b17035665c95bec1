/* Pair-wise distillation loss (METHOD.md section 3): cosine affinities
 * between pooled feature nodes, student against teacher.
 *
 * Nodes. The feature map F (N, Cf, H', W') is pooled into a grid of nodes
 * (N, Cf, Hn, Wn), M = Hn Wn, with non-overlapping kh x kw patches
 * (kernel = stride, no padding, ceil mode: a partial last patch is kept):
 *   Hn = ceil(H' / kh), Wn = ceil(W' / kw).
 * - node_size b > 0: kh = kw = b (the paper's beta).
 * - node_size 0: the reference's pool_scale rule, kh = int(H' pool_scale),
 *   kw = int(W' pool_scale), computed in double as Python does (90 * 0.7 is
 *   62.99999999999999 there, so 62; in float it rounds to 63). The authors' code
 *   names these patch_w = int(shape[2] * scale) and patch_h = int(shape[3] *
 *   scale) and passes kernel_size = (patch_w, patch_h); PyTorch reads that as
 *   (kH, kW), so despite the swapped names the kernel height comes from H'
 *   and the width from W' — which is what is done here. A kernel that would
 *   be 0 (H' pool_scale < 1, where PyTorch raises) is 1.
 * Max pooling takes the first maximum in row-major order (as PyTorch, which
 * also lets a NaN win); only that pixel receives the gradient. Average
 * pooling divides by the number of pixels actually inside the (possibly
 * partial) patch, which is what PyTorch's AvgPool2d(ceil_mode=True,
 * padding=0) does.
 *
 * Affinity of nodes i, j of one sample (f: a node's Cf vector):
 *   a_ij = f_i . f_j / ((|f_i| + eps) (|f_j| + eps)),   eps = 1e-8
 * (the reference's "+ 1e-8": a zero vector has affinity 0, never NaN).
 *
 * Loss, with window(i) the nodes of the (2r+1) x (2r+1) window centred on i
 * that lie inside the grid (clipped at the borders), or every node (global,
 * r < 0, the reference code):
 *   L = 1/N sum_n sum_i sum_{j in window(i)} (aS_ij - aT_ij)^2 / (M |window(i)|)
 * |window(i)| is the CLIPPED count: each node's term is the mean over the
 * pairs it actually has, so border nodes weigh as much as inner ones, and a
 * window that covers the whole grid gives exactly the global loss (where
 * |window| = M: the reference's / M^2 / N). The paper's beta/(W'H' alpha)
 * normalisation is the same up to that border convention.
 *
 * Gradient (student only; the teacher never gets one). The norm modes:
 * - SKD_PAIR_NORM_EXACT (skd's default): the true gradient of the value
 *   above, the norms included. At |f| = 0 the direction f/|f| is taken as 0
 *   (a subgradient), so zero vectors give finite numbers, not NaN.
 * - SKD_PAIR_NORM_DETACHED: the norms are treated as constants, as the
 *   reference code does (L2(feat).detach()); the gradient flows only through
 *   the dot products. Use it to reproduce the reference code.
 * Both give the same loss value. Near a zero vector the gradient is large in
 * either mode (it scales like 1/eps), as in the reference.
 *
 * Memory: pooled features, per-node norms and per-node loss partials; the
 * affinities are recomputed on the fly and the M x M matrix never exists, for
 * a local window or the global one. Workspace: 4 bytes times
 *   N M (Cs + Ct + 3) + 64  [+ N Cs M with a gradient]  [+ N Cs M for max pooling with a gradient].
 * Work: N M |window| (Cs + Ct) multiply-adds per pass. */
#ifndef SKD_LOSS_PAIR_H
#define SKD_LOSS_PAIR_H

#include <stddef.h>

#include "skd/tensor.h"

typedef enum skd_pair_pool { SKD_PAIR_POOL_MAX = 0, SKD_PAIR_POOL_AVG = 1 } skd_pair_pool;

typedef enum skd_pair_norm { SKD_PAIR_NORM_EXACT = 0, SKD_PAIR_NORM_DETACHED = 1 } skd_pair_norm;

typedef struct skd_pair_loss_config {
  int node_size;      /* > 0: b x b patches; 0: use pool_scale */
  double pool_scale;  /* (0, 1]; used when node_size == 0; 0.5 = the reference (a 2 x 2 grid) */
  skd_pair_pool pool; /* max (the reference) or avg (the paper) */
  int window_radius;  /* < 0: global (the reference); r >= 0: (2r+1) x (2r+1) nodes */
  skd_pair_norm norm;
} skd_pair_loss_config;

/* skd's default: pool_scale 0.5, max pooling, global, EXACT norm gradient. */
void skd_pair_loss_config_default(skd_pair_loss_config *cfg);
/* The authors' CriterionPairWiseforWholeFeatAfterPool(scale=0.5): the
 * default with SKD_PAIR_NORM_DETACHED. */
void skd_pair_loss_config_reference(skd_pair_loss_config *cfg);

typedef struct skd_pair_grid {
  int kh, kw; /* patch (kernel = stride) */
  int hn, wn; /* node grid */
  int m;      /* hn * wn */
} skd_pair_grid;

/* The node grid of an h x w feature map; SKD_EINVAL for a bad config. */
skd_status skd_pair_node_grid(const skd_pair_loss_config *cfg, int h, int w, skd_pair_grid *out);

/* Computes L and, when dstudent is given, accumulates its gradient:
 *   dstudent += grad_scale * dL/dstudent_feat   (grad_scale: the weight lambda_pa)
 * cfg: NULL means skd_pair_loss_config_default.
 * student_feat (N, Cs, H', W'), teacher_feat (N, Ct, H', W'): Cs and Ct may differ.
 * dstudent: NULL or shaped like student_feat.
 * loss_out: 1 element, overwritten with L (without grad_scale).
 * Everything stays on the device (no host sync); the reduction is two-pass
 * and deterministic. Uses the context workspace. */
skd_status skd_pair_loss(skd_context *ctx, const skd_pair_loss_config *cfg, const skd_tensor *student_feat,
                         const skd_tensor *teacher_feat, float grad_scale, const skd_tensor *dstudent,
                         const skd_tensor *loss_out);

/* Workspace bytes skd_pair_loss asks for with these shapes (0 when they or
 * cfg are invalid). */
size_t skd_pair_loss_workspace_bytes(const skd_pair_loss_config *cfg, const skd_tensor *student_feat,
                                     const skd_tensor *teacher_feat, int with_grad);

/* Plain-C reference (double accumulation, scatter-form gradient). Arrays are
 * NCHW: student (n, cs, h, w), teacher (n, ct, h, w); dstudent NULL or
 * accumulated into. Returns L; the caller passes a valid cfg. */
double skd_ref_pair_loss(const skd_pair_loss_config *cfg, int n, int h, int w, const float *student, int cs,
                         const float *teacher, int ct, float grad_scale, float *dstudent);

#endif
