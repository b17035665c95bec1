/* Holistic loss (include/skd/loss/holistic.h): the mixing, the per-sample
 * norms and the scalar bookkeeping, all on the device so that a D step
 * never waits for the host. The scalar kernels run on one work-item: they
 * loop over the N samples in a fixed order. */

#define ADV_WGAN_GP 0
#define ADV_HINGE 1

/* y = e_n t + (1 - e_n) s, as the reference: alpha * real + (1 - alpha) * fake. */
__kernel void holistic_mix_fwd(const int total, const int per_sample, CTENSOR(mix), CTENSOR(t), CTENSOR(s),
                               TENSOR(y)) {
  const int i = get_global_id(0);
  if (i >= total) return;
  const float e = AT(mix)[i / per_sample];
  AT(y)[i] = e * AT(t)[i] + (1.0f - e) * AT(s)[i];
}

/* out[n] = sum of squares of sample n (one work-group per sample). */
__kernel void holistic_sumsq_fwd(const int per_sample, CTENSOR(x), TENSOR(out), __local float *scratch) {
  const int n = get_group_id(0), lid = get_local_id(0), wg = get_local_size(0);
  __global const float *xs = AT(x) + n * per_sample;
  float acc = 0.0f;
  for (int i = lid; i < per_sample; i += wg) acc += xs[i] * xs[i];
  const float total = group_sum(acc, scratch);
  if (lid == 0) AT(out)[n] = total;
}

/* Real / fake means, the loss without the penalty, and the scores'
 * gradients dL/dD(Q_T)_n, dL/dD(Q_S)_n. terms: [loss, real, fake, penalty]. */
__kernel void holistic_scores_fwd(const int n, const int type, const float lambda_d, CTENSOR(score_t),
                                  CTENSOR(score_s), TENSOR(terms), TENSOR(dscore_t), TENSOR(dscore_s)) {
  if (get_global_id(0) != 0) return;
  float real = 0.0f, fake = 0.0f, hinge_t = 0.0f, hinge_s = 0.0f;
  const float w = lambda_d / (float)n;
  for (int i = 0; i < n; i++) {
    const float t = AT(score_t)[i], s = AT(score_s)[i];
    real += t;
    fake += s;
    hinge_t += fmax(1.0f - t, 0.0f);
    hinge_s += fmax(1.0f + s, 0.0f);
    if (type == ADV_HINGE) {
      AT(dscore_t)[i] = 1.0f - t > 0.0f ? -w : 0.0f;
      AT(dscore_s)[i] = 1.0f + s > 0.0f ? w : 0.0f;
    } else {
      AT(dscore_t)[i] = -w;
      AT(dscore_s)[i] = w;
    }
  }
  real /= (float)n;
  fake /= (float)n;
  AT(terms)[0] = type == ADV_HINGE ? lambda_d * (hinge_t / (float)n + hinge_s / (float)n) : lambda_d * (fake - real);
  AT(terms)[1] = real;
  AT(terms)[2] = fake;
  AT(terms)[3] = 0.0f;
}

/* The penalty from gsq[n] = ||g_n||^2, and the Hessian-vector product's
 * scalars: v_n = coef_n g_n = scale dGP/dg_n, eps = c ||x_hat|| / ||v||
 * (||x_hat|| floored at 1e-3 sqrt(numel)), the perturbation pert_n =
 * eps coef_n, and the score weights +-1 / (2 eps). A zero v (every ||g_n||
 * at 1 or 0) gives weights 0: nothing to differentiate. With add_loss,
 * loss[0] += scale * penalty. */
__kernel void holistic_gp_fwd(const int n, const int numel, const float scale, const float step, CTENSOR(gsq),
                              CTENSOR(xsq), TENSOR(penalty), TENSOR(gnorm), const int add_loss, TENSOR(loss),
                              TENSOR(pert), TENSOR(dplus), TENSOR(dminus)) {
  if (get_global_id(0) != 0) return;
  float pen = 0.0f, vsq = 0.0f, xs = 0.0f;
  for (int i = 0; i < n; i++) {
    const float gn = sqrt(AT(gsq)[i]);
    const float coef = gn > 0.0f ? scale * 2.0f * (gn - 1.0f) / (gn * (float)n) : 0.0f;
    pen += (gn - 1.0f) * (gn - 1.0f);
    vsq += coef * coef * AT(gsq)[i];
    xs += AT(xsq)[i];
    AT(gnorm)[i] = gn;
    AT(pert)[i] = coef; /* times eps below */
  }
  pen /= (float)n;
  AT(penalty)[0] = pen;
  if (add_loss) AT(loss)[0] += scale * pen;
  const float xnorm = fmax(sqrt(xs), 1e-3f * sqrt((float)numel));
  const float vnorm = sqrt(vsq);
  const float eps = vnorm > 0.0f ? step * xnorm / vnorm : 0.0f;
  const float w = vnorm > 0.0f ? 0.5f / eps : 0.0f;
  for (int i = 0; i < n; i++) {
    AT(pert)[i] *= eps;
    AT(dplus)[i] = w;
    AT(dminus)[i] = -w;
  }
}

/* y = x_hat + sign * pert_n * g */
__kernel void holistic_perturb_fwd(const int total, const int per_sample, const float sign, CTENSOR(pert),
                                   CTENSOR(xhat), CTENSOR(g), TENSOR(y)) {
  const int i = get_global_id(0);
  if (i >= total) return;
  AT(y)[i] = AT(xhat)[i] + sign * AT(pert)[i / per_sample] * AT(g)[i];
}

/* G term: loss = -mean D(Q_S); dscore_n = -lambda_d / N. */
__kernel void holistic_g_fwd(const int n, const float lambda_d, CTENSOR(score), TENSOR(loss), TENSOR(dscore)) {
  if (get_global_id(0) != 0) return;
  float sum = 0.0f;
  for (int i = 0; i < n; i++) {
    sum += AT(score)[i];
    AT(dscore)[i] = -lambda_d / (float)n;
  }
  AT(loss)[0] = -(sum / (float)n);
}
