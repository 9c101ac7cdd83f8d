/*
  Sigmoid and tanh over whole arrays.  In float they run eight lanes at a
  time on dsp/vmath.h's activations, the ones Carry's inference kernels
  use (within 3 ulp and 1.5e-7; tests/test_vmath.c measures them), since
  the gates' activations were half of the training time as scalar libm
  calls; with an AVX2 clone (TRAIN_CLONES).  In double (the gradient
  check) they are libm's.
*/

#include "train_internal.h"

#if !defined(TRAIN_DOUBLE)

#include "vmath.h"

#include <string.h>

/** y = f(x) over n values, eight at a time; the tail through a padded
    vector.  `y` may be `x`. */
#define MAP_LANES(f, x, y, n)                                 \
  do {                                                        \
    size_t k_ = 0;                                            \
    for (; k_ + 8 <= (n); k_ += 8) {                          \
      v_store((y) + k_, f(v_load((x) + k_)));                 \
    }                                                         \
    if (k_ < (n)) {                                           \
      float tail_[8] = {0};                                   \
      memcpy(tail_, (x) + k_, ((n) - k_) * sizeof(float));    \
      v_store(tail_, f(v_load(tail_)));                       \
      memcpy((y) + k_, tail_, ((n) - k_) * sizeof(float));    \
    }                                                         \
  } while (0)

TRAIN_CLONES
void train_sigmoid(real *x, size_t n)
{
  MAP_LANES(v_sigmoid, x, x, n);
}

TRAIN_CLONES
void train_tanh(const real *x, real *y, size_t n)
{
  MAP_LANES(v_tanh, x, y, n);
}

#else

void train_sigmoid(real *x, size_t n)
{
  for (size_t k = 0; k < n; ++k) {
    x[k] = 1.0 / (1.0 + exp(-x[k]));
  }
}

void train_tanh(const real *x, real *y, size_t n)
{
  for (size_t k = 0; k < n; ++k) {
    y[k] = tanh(x[k]);
  }
}

#endif
