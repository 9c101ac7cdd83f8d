/*
  The vectorised kernels of one instruction set.  The files that include
  this are compiled once per set with CARRY_ISA defined (portable, avx2),
  which suffixes every kernel's name.
*/

#ifndef CARRY_KERNELS_H
#define CARRY_KERNELS_H

#include "internal.h"
#include "vmath.h"

#ifndef CARRY_ISA
#  error "CARRY_ISA must name the instruction set (portable, avx2)"
#endif

#define CARRY_PASTE_(a, b) a##_##b
#define CARRY_PASTE(a, b) CARRY_PASTE_(a, b)
#define CARRY_ISA_NAME(name) CARRY_PASTE(name, CARRY_ISA)

#define carry_lstm_chunk CARRY_ISA_NAME(carry_lstm_chunk)
#define carry_gru_chunk CARRY_ISA_NAME(carry_gru_chunk)
#define carry_dense_chunk CARRY_ISA_NAME(carry_dense_chunk)
#define carry_activation_chunk CARRY_ISA_NAME(carry_activation_chunk)
#define carry_activate_row CARRY_ISA_NAME(carry_activate_row)

void carry_lstm_chunk(const carry_packed_layer *layer, const float *x,
                      int x_stride, int n_samples, float *h, float *c,
                      float *y, const float *h_reset, const float *c_reset);

void carry_gru_chunk(const carry_packed_layer *layer, const float *x,
                     int x_stride, int n_samples, float *h, float *y,
                     const float *h_reset);

void carry_dense_chunk(const carry_packed_layer *layer, const float *x,
                       int x_stride, int n_samples, float *y);

void carry_activation_chunk(const carry_packed_layer *layer, const float *x,
                            int x_stride, int n_samples, float *y);

/** Applies `act` to the first `n` floats of `x` into `y`, which has room
    for round_lanes(n) (the padding lanes get act of 0). */
void carry_activate_row(carry_activation act, const float *x, int n, float *y);

/**
  out[k] = init[k] + sum over j of x[j] w[j][k], for k < n_cols (a multiple
  of 8), where row j of w starts at w + j * stride.  The sum runs over j in
  order for every k, whatever the tiling, so results never depend on the
  caller's block sizes.  `out` may be `init`.  A tile keeps its columns in
  registers: 8 vectors of accumulators plus the broadcast x[j] fit the 16
  AVX registers.
*/
static inline __attribute__((always_inline)) void
carry_matvec_tile(const float *w, int stride, int n_in, const float *x,
                  const float *init, float *out, const int n_vectors)
{
  v8f acc[8];
  for (int v = 0; v < n_vectors; ++v) {
    acc[v] = v_load(init + 8 * v);
  }
  for (int j = 0; j < n_in; ++j) {
    const v8f xj = v_set1(x[j]);
    const float *row = w + (size_t)j * (size_t)stride;
    for (int v = 0; v < n_vectors; ++v) {
      acc[v] += xj * v_load(row + 8 * v);
    }
  }
  for (int v = 0; v < n_vectors; ++v) {
    v_store(out + 8 * v, acc[v]);
  }
}

static inline void carry_matvec_acc(const float *w, int stride, int n_in,
                                    int n_cols, const float *x,
                                    const float *init, float *out)
{
  int k = 0;
  for (; k + 64 <= n_cols; k += 64) {
    carry_matvec_tile(w + k, stride, n_in, x, init + k, out + k, 8);
  }
  if (k + 32 <= n_cols) {
    carry_matvec_tile(w + k, stride, n_in, x, init + k, out + k, 4);
    k += 32;
  }
  if (k + 16 <= n_cols) {
    carry_matvec_tile(w + k, stride, n_in, x, init + k, out + k, 2);
    k += 16;
  }
  if (k + 8 <= n_cols) {
    carry_matvec_tile(w + k, stride, n_in, x, init + k, out + k, 1);
  }
}

/** acc[v] += sum over j < n of x[j] w[j][8v .. 8v + 8), j in order: the
    register tiles of the recurrent layers call it for their input rows and
    then for their recurrent rows. */
static inline __attribute__((always_inline)) void
carry_accumulate(v8f *acc, const int n_vectors, const float *w, int stride,
                 const float *x, int n)
{
  for (int j = 0; j < n; ++j) {
    const v8f xj = v_set1(x[j]);
    const float *row = w + (size_t)j * (size_t)stride;
    for (int v = 0; v < n_vectors; ++v) {
      acc[v] += xj * v_load(row + 8 * v);
    }
  }
}

#endif /* CARRY_KERNELS_H */
