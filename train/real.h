/*
  The precision of the numerical core.  lstm.c, gru.c, dense.c, loss.c,
  adam.c and network.c are compiled twice: in float for training, and with
  TRAIN_DOUBLE defined in double for the gradient check, the way dsp/'s
  kernels are compiled once per instruction set.  Every function of the
  core gets a suffix (_f32 or _f64) so that both builds can be linked into
  one program.
*/

#ifndef CARRY_TRAIN_REAL_H
#define CARRY_TRAIN_REAL_H

#include <cblas.h>
#include <math.h>
#include <stdint.h>

/* OpenBLAS's cblas.h includes <complex.h>, whose macro I (the imaginary
   unit) would take the dimension letter I from the code. */
#ifdef I
#  undef I
#endif

#define TRAIN_PASTE_(a, b) a##_##b
#define TRAIN_PASTE(a, b) TRAIN_PASTE_(a, b)

#if defined(TRAIN_DOUBLE)
typedef double real;
#  define TRAIN_SUFFIX f64
#  define TRAIN_GEMM cblas_dgemm
#  define real_sqrt sqrt
#else
typedef float real;
#  define TRAIN_SUFFIX f32
#  define TRAIN_GEMM cblas_sgemm
#  define real_sqrt sqrtf
#endif

/** `name` with this build's suffix: train_lstm_forward_f32. */
#define TRAIN_REAL_NAME(name) TRAIN_PASTE(name, TRAIN_SUFFIX)

#endif /* CARRY_TRAIN_REAL_H */
