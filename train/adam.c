/*
  Adam (Kingma & Ba 2015) with bias correction, and the gradient norm for
  clipping.
*/

#include "train_internal.h"

#include <math.h>

double train_grad_norm(const real *grads, size_t n)
{
  double sum = 0.0;
  for (size_t k = 0; k < n; ++k) {
    sum += (double)grads[k] * (double)grads[k];
  }
  return sqrt(sum);
}

TRAIN_CLONES
void train_adam_step(const train_adam *adam, uint64_t step, double lr,
                     real grad_scale, const real *grads, real *params,
                     real *m, real *v, size_t n)
{
  const real b1 = (real)adam->beta1, b2 = (real)adam->beta2;
  const real eps = (real)adam->epsilon;
  // The bias corrections fold into the step size and ε.
  const double c1 = 1.0 - pow(adam->beta1, (double)step);
  const double c2 = 1.0 - pow(adam->beta2, (double)step);
  const real step_size = (real)(lr / c1);
  const real root_c2 = (real)sqrt(c2);
  for (size_t k = 0; k < n; ++k) {
    const real g = grads[k] * grad_scale;
    m[k] = b1 * m[k] + (1 - b1) * g;
    v[k] = b2 * v[k] + (1 - b2) * g * g;
    params[k] -= step_size * m[k] / (real_sqrt(v[k]) / root_c2 + eps);
  }
}
