/* Plain-C references for cl/optim.cl, in PyTorch's arithmetic order
 * (float tensors, scalars formed in double and rounded once). */
#include <math.h>

#include "skd/optim.h"

void skd_ref_sgd_update(float *p, const float *grad, float *buf, size_t n, double lr, double momentum,
                        double dampening, double weight_decay, int nesterov, int first) {
  const float flr = (float)lr, fmom = (float)momentum, fdamp1 = (float)(1.0 - dampening);
  const float fwd = (float)weight_decay;
  for (size_t i = 0; i < n; i++) {
    float g = grad[i];
    if (fwd != 0.0f) g = g + fwd * p[i];
    if (fmom != 0.0f) {
      buf[i] = first ? g : buf[i] * fmom + fdamp1 * g;
      g = nesterov ? g + fmom * buf[i] : buf[i];
    }
    p[i] = p[i] - flr * g;
  }
}

void skd_ref_adam_update(float *p, const float *grad, float *m, float *v, size_t n, double lr, double beta1,
                         double beta2, double eps, double weight_decay, long step) {
  const float step_size = (float)(lr / (1.0 - pow(beta1, (double)step)));
  const float bc2_sqrt = (float)sqrt(1.0 - pow(beta2, (double)step));
  const float b1 = (float)beta1, b1m = (float)(1.0 - beta1), b2 = (float)beta2, b2m = (float)(1.0 - beta2);
  const float feps = (float)eps, fwd = (float)weight_decay;
  for (size_t i = 0; i < n; i++) {
    float g = grad[i];
    if (fwd != 0.0f) g = g + fwd * p[i];
    m[i] = m[i] * b1 + b1m * g;
    v[i] = v[i] * b2 + b2m * g * g;
    float denom = sqrtf(v[i]) / bc2_sqrt + feps;
    p[i] = p[i] - step_size * m[i] / denom;
  }
}
