/*
  LSTM and GRU over a chunk for several streams in lockstep (batch.c): the
  streams sit in the lanes of the vectors, so that one sample's recurrent
  step of every stream is a matrix-matrix product, (G, I + H) weights times
  (I + H, W) inputs and states.

  A sample runs in blocks of units, each in two phases.  The products: a
  register tile holds the four sums of a few units (LSTM i f g o; GRU z,
  r, the input and the recurrent part of h), each a vector over the lanes
  started from its bias and built with the weight broadcast, and stores
  them.  Then the cells, unit after unit with the cell helpers of
  kernels.h.  Apart, each phase has independent work enough to keep the
  machine busy: the products never wait on an activation, and the cells
  of a block are as many independent chains.

  Every lane gets the bits the one-stream kernels (lstm.c, gru.c) give its
  stream: the same bias, the same multiply-adds in the same order (input
  rows j = 0 .. I - 1, then recurrent rows j = 0 .. H - 1), the same cell
  helpers, and the same recovery: a lane whose new state is not finite
  anywhere (the padding units up to Hp included, which run here as they
  do there) takes its reset state in every unit.  The products of 16
  lanes may come from `layer->wide_sums` (lockstep_wide.c: 16-lane
  vectors where the CPU has them), which does the same multiply-adds.

  In the AVX-512 set, 16 lanes also run their cells in 16-lane vectors
  (the same operations lane for lane, so the same bits), and 8 lanes take
  the AVX2 set's kernels.

  Shapes: W lanes (8 or 16, CARRY_LANES times `n_vectors`); lane-major
  tensors keep a lane's values W floats apart: x (T, x_width, W), the
  state h, c (Hp, W), the output y (T, Hp, W).
*/

#include "kernels.h"

#include <string.h>

/** Units whose sums are stored before their cells run: 24 units of 8
    lanes are 3 KB of sums. */
#define BLOCK_UNITS 24

/** acc[4u + q] += x_j * w[j][Q u + q] for j = 0 .. n - 1 in order, for
    each unit u and gate q of the tile; a GRU's recurrent rows add their
    h gate (q = 2) to the recurrent part (sum 3). */
static inline __attribute__((always_inline)) void
lanes_accumulate(v8f *acc, const bool is_gru, const bool is_recurrent,
                 const int n_units, const float *w, size_t stride,
                 const float *x, size_t width, int n)
{
  const int Q = is_gru ? 3 : 4;
  for (int j = 0; j < n; ++j) {
    const float *row = w + (size_t)j * stride;
    const v8f xj = v_load(x + (size_t)j * width);
    for (int u = 0; u < n_units; ++u) {
      for (int q = 0; q < Q; ++q) {
        const int s = CARRY_LANES_SUMS * u +
                      (is_gru && is_recurrent && q == 2 ? 3 : q);
        acc[s] += xj * v_set1(row[Q * u + q]);
      }
    }
  }
}

/** The sums of units u0 .. u0 + n_units - 1 for 8 lanes into `z`
    (CARRY_LANES_SUMS n_units, 8).  `x` and `h` point at the first lane. */
static inline __attribute__((always_inline)) void
lanes_tile(const carry_lanes_layer *layer, int u0, const float *x,
           const float *h, size_t width, float *z, const int n_units,
           const bool is_gru)
{
  const int I = layer->n_in, H = layer->n_units, Q = is_gru ? 3 : 4;
  const size_t stride = (size_t)Q * (size_t)layer->n_padded;
  const float *w = layer->weights + (size_t)Q * (size_t)u0;
  const float *bias = layer->bias + (size_t)Q * (size_t)u0;
  v8f acc[CARRY_LANES_SUMS * 3];
  for (int u = 0; u < n_units; ++u) {
    for (int q = 0; q < Q; ++q) {
      acc[CARRY_LANES_SUMS * u + q] = v_set1(bias[Q * u + q]);
    }
    if (is_gru) {
      acc[CARRY_LANES_SUMS * u + 3] = v_set1(layer->bias_h[u0 + u]);
    }
  }
  lanes_accumulate(acc, is_gru, false, n_units, w, stride, x, width, I);
  lanes_accumulate(acc, is_gru, true, n_units, w + (size_t)I * stride,
                   stride, h, width, H);
  for (int k = 0; k < CARRY_LANES_SUMS * n_units; ++k) {
    v_store(z + 8 * k, acc[k]);
  }
}

/** The sums of units u0 .. u1 - 1 for 8 lanes, in tiles of 3 units (12
    sums, which keep the multiply-adds busy and leave registers for the
    operands). */
static inline __attribute__((always_inline)) void
lanes_sums(const carry_lanes_layer *layer, int u0, int u1, const float *x,
           const float *h, size_t width, float *z, const bool is_gru)
{
  const size_t unit = CARRY_LANES_SUMS * 8;
  int u = u0;
  for (; u + 3 <= u1; u += 3) {
    lanes_tile(layer, u, x, h, width, z + (size_t)(u - u0) * unit, 3, is_gru);
  }
  if (u + 2 <= u1) {
    lanes_tile(layer, u, x, h, width, z + (size_t)(u - u0) * unit, 2, is_gru);
    u += 2;
  }
  if (u < u1) {
    lanes_tile(layer, u, x, h, width, z + (size_t)(u - u0) * unit, 1, is_gru);
  }
}

/** Gives the lanes whose `check` is NaN their reset state: `n` rows of
    `state`, W floats apart, from the same place in `reset`. */
static void reset_lanes(const v8f *check, int n_vectors, float *state,
                        const float *reset, int n, size_t width)
{
  for (int v = 0; v < n_vectors; ++v) {
    for (int lane = 8 * v; lane < 8 * v + 8; ++lane) {
      if (check[v][lane - 8 * v] != check[v][lane - 8 * v]) {
        for (size_t u = 0; u < (size_t)n; ++u) {
          state[u * width + (size_t)lane] = reset[u * width + (size_t)lane];
        }
      }
    }
  }
}

static bool any_nan(const v8f *check, int n_vectors)
{
  bool is_nan = false;
  for (int v = 0; v < n_vectors; ++v) {
    is_nan |= v_any_nan(check[v]) != 0;
  }
  return is_nan;
}

/** The sums of units u0 .. u1 - 1 for the `n_vectors` vectors of lanes
    from `x`, `h`: (CARRY_LANES_SUMS (u1 - u0), 8 n_vectors) in `z`. */
static inline __attribute__((always_inline)) void
block_sums(const carry_lanes_layer *layer, int u0, int u1, const float *x,
           const float *h, size_t width, int n_vectors, float *z,
           const bool is_gru)
{
  if (n_vectors == 2) {
    layer->wide_sums(layer, is_gru, u0, u1, x, h, z);
  } else {
    lanes_sums(layer, u0, u1, x, h, width, z, is_gru);
  }
}

/* ------------------------------------------------------------------------ */
/* Steps */

/** One unit's cell for the 8 lanes of vector v: its sums in `zu` (4, L),
    its state at `at` of h (GRU) or c (LSTM) and of h_out.  Returns a
    vector that is NaN wherever the new state is not finite. */
static inline __attribute__((always_inline)) v8f
lanes_cell(const float *zu, size_t L, int v, const float *h, float *c,
           float *h_out, size_t at, const bool is_gru)
{
  const v8f z0 = v_load(zu + 8 * v), z1 = v_load(zu + L + 8 * v);
  const v8f z2 = v_load(zu + 2 * L + 8 * v), z3 = v_load(zu + 3 * L + 8 * v);
  if (is_gru) {
    const v8f h_new = carry_gru_cell(z0, z1, z2, z3, v_load(h + at));
    v_store(h_out + at, h_new);
    return h_new * 0.0f;
  }
  v8f c_new, h_new;
  carry_lstm_cell(z0, z1, z2, z3, v_load(c + at), &c_new, &h_new);
  v_store(c + at, c_new);
  v_store(h_out + at, h_new);
  return c_new * 0.0f + h_new * 0.0f;  // NaN if either is not finite
}

#if defined(__AVX512F__)
/** The same for all 16 lanes in one vector (sums `zu` (4, 16)); adds to
    the two halves' checks. */
static inline __attribute__((always_inline)) void
lanes_cell_wide(const float *zu, const float *h, float *c, float *h_out,
                v8f *check, const bool is_gru)
{
  const v16f z0 = w_load(zu), z1 = w_load(zu + 16);
  const v16f z2 = w_load(zu + 32), z3 = w_load(zu + 48);
  v16f is_finite;
  if (is_gru) {
    const v16f h_new = carry_gru_cell_wide(z0, z1, z2, z3, w_load(h));
    w_store(h_out, h_new);
    is_finite = h_new * 0.0f;
  } else {
    v16f c_new, h_new;
    carry_lstm_cell_wide(z0, z1, z2, z3, w_load(c), &c_new, &h_new);
    w_store(c, c_new);
    w_store(h_out, h_new);
    is_finite = c_new * 0.0f + h_new * 0.0f;
  }
  check[0] += w_low(is_finite);
  check[1] += w_high(is_finite);
}
#endif

/** One sample of the `n_vectors` vectors of lanes at `x`, `h`, `h_out`
    and, for an LSTM, `c` (lane-major, `width` apart); a lane whose state
    turns non-finite takes its reset state (`h_reset`, and `c_reset`). */
static inline __attribute__((always_inline)) void
lanes_step(const carry_lanes_layer *layer, const float *x, const float *h,
           float *c, float *h_out, size_t width, const float *h_reset,
           const float *c_reset, const int n_vectors, const bool is_gru)
{
  const int Hp = layer->n_padded;
  const size_t L = 8 * (size_t)n_vectors;
  float z[BLOCK_UNITS * CARRY_LANES_SUMS * 16] __attribute__((aligned(64)));
  v8f check[2] = {v_set1(0.0f), v_set1(0.0f)};
  for (int u0 = 0; u0 < Hp; u0 += BLOCK_UNITS) {
    const int u1 = u0 + BLOCK_UNITS < Hp ? u0 + BLOCK_UNITS : Hp;
    block_sums(layer, u0, u1, x, h, width, n_vectors, z, is_gru);
    for (int u = u0; u < u1; ++u) {
      const float *zu = z + (size_t)(u - u0) * CARRY_LANES_SUMS * L;
      const size_t at = (size_t)u * width;
#if defined(__AVX512F__)
      if (n_vectors == 2) {
        lanes_cell_wide(zu, h + at, is_gru ? NULL : c + at, h_out + at,
                        check, is_gru);
        continue;
      }
#endif
      for (int v = 0; v < n_vectors; ++v) {
        check[v] += lanes_cell(zu, L, v, h, c, h_out, at + 8 * (size_t)v,
                               is_gru);
      }
    }
  }
  if (any_nan(check, n_vectors)) {
    reset_lanes(check, n_vectors, h_out, h_reset, Hp, width);
    if (!is_gru) {
      reset_lanes(check, n_vectors, c, c_reset, Hp, width);
    }
  }
}

/* ------------------------------------------------------------------------ */
/* Chunks */

/** 16 lanes run as one when the layer has wide products, else as two
    halves of 8. */
static int vectors_per_step(const carry_lanes_layer *layer, int n_vectors)
{
  return n_vectors == 2 && layer->wide_sums ? 2 : 1;
}

/** A chunk of samples, as lanes_step() runs them: 16 lanes as one, or in
    halves of 8.  `c` and `c_reset` are NULL for a GRU. */
static inline __attribute__((always_inline)) void
lanes_chunk(const carry_lanes_layer *layer, const float *x, int n_samples,
            int n_vectors, float *h, float *c, float *y, const float *h_reset,
            const float *c_reset, const bool is_gru)
{
  const size_t W = 8 * (size_t)n_vectors;
  const size_t IW = (size_t)layer->x_width * W;
  const size_t HW = (size_t)layer->n_padded * W;
  const int V = vectors_per_step(layer, n_vectors);
  const float *h_prev = h;
  for (size_t t = 0; t < (size_t)n_samples; ++t) {
    float *h_out = y + t * HW;
    const float *x_t = x + t * IW;
    if (V == 2) {
      lanes_step(layer, x_t, h_prev, c, h_out, W, h_reset, c_reset, 2,
                 is_gru);
    }
    for (size_t lane = 0; V == 1 && lane < W; lane += 8) {
      lanes_step(layer, x_t + lane, h_prev + lane, is_gru ? NULL : c + lane,
                 h_out + lane, W, h_reset + lane,
                 is_gru ? NULL : c_reset + lane, 1, is_gru);
    }
    h_prev = h_out;
  }
  memcpy(h, h_prev, HW * sizeof(float));
}

void carry_lstm_lanes_chunk(const carry_lanes_layer *layer, const float *x,
                            int n_samples, int n_vectors, float *h, float *c,
                            float *y, const float *h_reset,
                            const float *c_reset)
{
#if defined(__AVX512F__)
  if (vectors_per_step(layer, n_vectors) == 1) {
    CARRY_AVX2_NAME(carry_lstm_lanes_chunk)(layer, x, n_samples, n_vectors, h,
                                            c, y, h_reset, c_reset);
    return;
  }
#endif
  lanes_chunk(layer, x, n_samples, n_vectors, h, c, y, h_reset, c_reset,
              false);
}

void carry_gru_lanes_chunk(const carry_lanes_layer *layer, const float *x,
                           int n_samples, int n_vectors, float *h, float *y,
                           const float *h_reset)
{
#if defined(__AVX512F__)
  if (vectors_per_step(layer, n_vectors) == 1) {
    CARRY_AVX2_NAME(carry_gru_lanes_chunk)(layer, x, n_samples, n_vectors, h,
                                           y, h_reset);
    return;
  }
#endif
  lanes_chunk(layer, x, n_samples, n_vectors, h, NULL, y, h_reset, NULL,
              true);
}
