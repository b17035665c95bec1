/* Optimiser updates, one work-item per parameter value, with PyTorch's
 * arithmetic order (torch.optim.SGD / Adam, single-tensor path). Scalars
 * derived from hyperparameters (1 - dampening, 1 - beta, bias corrections)
 * are formed in double on the host, as PyTorch forms them in Python. */

/* g = grad + wd * p;  buf = first ? g : momentum * buf + (1 - dampening) * g;
 * g = nesterov ? g + momentum * buf : buf;  p -= lr * g.
 * momentum == 0: p -= lr * g and buf is never touched (may be any buffer). */
__kernel void sgd_update(const int n, const float lr, const float momentum, const float one_minus_dampening,
                         const float weight_decay, const int nesterov, const int first, TENSOR(p),
                         CTENSOR(grad), TENSOR(buf)) {
  const int i = get_global_id(0);
  if (i >= n) return;
  const float pv = AT(p)[i];
  float g = AT(grad)[i];
  if (weight_decay != 0.0f) g = g + weight_decay * pv;
  if (momentum != 0.0f) {
    const float b = first ? g : AT(buf)[i] * momentum + one_minus_dampening * g;
    AT(buf)[i] = b;
    g = nesterov ? g + momentum * b : b;
  }
  AT(p)[i] = pv - lr * g;
}

/* step_size = lr / (1 - beta1^t), bc2_sqrt = sqrt(1 - beta2^t). */
__kernel void adam_update(const int n, const float beta1, const float one_minus_beta1, const float beta2,
                          const float one_minus_beta2, const float eps, const float weight_decay,
                          const float step_size, const float bc2_sqrt, TENSOR(p), CTENSOR(grad), TENSOR(m),
                          TENSOR(v)) {
  const int i = get_global_id(0);
  if (i >= n) return;
  const float pv = AT(p)[i];
  float g = AT(grad)[i];
  if (weight_decay != 0.0f) g = g + weight_decay * pv;
  const float mv = AT(m)[i] * beta1 + one_minus_beta1 * g;
  const float vv = AT(v)[i] * beta2 + one_minus_beta2 * g * g;
  AT(m)[i] = mv;
  AT(v)[i] = vv;
  const float denom = sqrt(vv) / bc2_sqrt + eps;
  AT(p)[i] = pv - step_size * mv / denom;
}
