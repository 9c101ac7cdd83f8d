/*
  The products of a lockstep step (lockstep.c) for 16 lanes in one
  AVX-512 vector: half the multiply-add instructions of two 8-lane
  vectors, and twice the registers for a tile.  Only the products: every
  lane's sum gets the same multiply-adds in the same order as in
  lockstep.c and the one-stream kernels (a fused multiply-add rounds the
  same whatever the vector width), and the cells stay in the kernel set
  that calls this, so the bits do not change.  Compiled once, with
  -mavx512f; batch.c uses it only where the CPU has AVX-512F.
*/

#include "internal.h"

#include <immintrin.h>

/** Sums a tile holds: 6 units of 4 in 24 of the 32 registers. */
#define TILE_UNITS 6

/** acc[4u + q] += x_j * w[j][Q u + q] for j = 0 .. n - 1 in order, for
    each unit u and gate q of the tile; a GRU's recurrent rows add their
    h gate (q = 2) to the recurrent part (sum 3). */
static inline __attribute__((always_inline)) void
wide_accumulate(__m512 *acc, const bool is_gru, const bool is_recurrent,
                const int n_units, const float *w, size_t stride,
                const float *x, int n)
{
  const int Q = is_gru ? 3 : 4;
  for (int j = 0; j < n; ++j) {
    const float *row = w + (size_t)j * stride;
    const __m512 xj = _mm512_loadu_ps(x + 16 * (size_t)j);
#pragma GCC unroll 8
    for (int u = 0; u < n_units; ++u) {
#pragma GCC unroll 4
      for (int q = 0; q < Q; ++q) {
        const int s = 4 * u + (is_gru && is_recurrent && q == 2 ? 3 : q);
        acc[s] = _mm512_fmadd_ps(xj, _mm512_set1_ps(row[Q * u + q]), acc[s]);
      }
    }
  }
}

/** Sums of units u0 .. u0 + n_units - 1 into z (4 n_units, 16). */
static inline __attribute__((always_inline)) void
wide_tile(const carry_lanes_layer *layer, const bool is_gru, int u0,
          const float *x, const float *h, float *z, const int n_units)
{
  const int I = layer->n_in, H = layer->n_units, Q = is_gru ? 3 : 4;
  const size_t stride = (size_t)Q * (size_t)layer->n_padded;
  const float *w = layer->weights + (size_t)Q * (size_t)u0;
  const float *bias = layer->bias + (size_t)Q * (size_t)u0;
  __m512 acc[CARRY_LANES_SUMS * TILE_UNITS];
#pragma GCC unroll 8
  for (int u = 0; u < n_units; ++u) {
#pragma GCC unroll 4
    for (int q = 0; q < Q; ++q) {
      acc[4 * u + q] = _mm512_set1_ps(bias[Q * u + q]);
    }
    if (is_gru) {
      acc[4 * u + 3] = _mm512_set1_ps(layer->bias_h[u0 + u]);
    }
  }
  wide_accumulate(acc, is_gru, false, n_units, w, stride, x, I);
  wide_accumulate(acc, is_gru, true, n_units, w + (size_t)I * stride, stride,
                  h, H);
#pragma GCC unroll 32
  for (int k = 0; k < CARRY_LANES_SUMS * n_units; ++k) {
    _mm512_storeu_ps(z + 16 * k, acc[k]);
  }
}

/** For one layer type: tiles of TILE_UNITS, then one of what is left. */
static inline __attribute__((always_inline)) void
wide_sums(const carry_lanes_layer *layer, bool is_gru, int u0, int u1,
          const float *x, const float *h, float *z)
{
  const size_t unit = CARRY_LANES_SUMS * 16;
  int u = u0;
  for (; u + TILE_UNITS <= u1; u += TILE_UNITS) {
    wide_tile(layer, is_gru, u, x, h, z + (size_t)(u - u0) * unit,
              TILE_UNITS);
  }
  float *zu = z + (size_t)(u - u0) * unit;
  switch (u1 - u) {
  case 5: wide_tile(layer, is_gru, u, x, h, zu, 5); break;
  case 4: wide_tile(layer, is_gru, u, x, h, zu, 4); break;
  case 3: wide_tile(layer, is_gru, u, x, h, zu, 3); break;
  case 2: wide_tile(layer, is_gru, u, x, h, zu, 2); break;
  case 1: wide_tile(layer, is_gru, u, x, h, zu, 1); break;
  default: break;
  }
}

void carry_lanes_sums_avx512(const carry_lanes_layer *layer, bool is_gru,
                             int u0, int u1, const float *x, const float *h,
                             float *z)
{
  if (is_gru) {
    wide_sums(layer, true, u0, u1, x, h, z);
  } else {
    wide_sums(layer, false, u0, u1, x, h, z);
  }
}
