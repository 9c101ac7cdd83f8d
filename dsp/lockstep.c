/*
  LSTM and GRU over a chunk for several streams in lockstep (batch.c): the
  streams sit in the lanes of the vectors, so that one sample's recurrent
  step of every stream is a matrix-matrix product, (G, I + H) weights times
  (I + H, W) inputs and states.  Each gate row's sum is a vector over the
  lanes, started from its bias and built with the weight broadcast; a
  register tile holds the four sums (LSTM i f g o; GRU z, r, the input
  and the recurrent part of h) of a few units and finishes those units
  with the cells of kernels.h.

  Every lane gets the bits the one-stream kernels (lstm.c, gru.c) give its
  stream: the same bias, the same multiply-adds in the same order (input
  rows j = 0 .. I - 1, then recurrent rows j = 0 .. H - 1), the same cell
  helpers, and the same recovery: a lane whose new state is not finite
  anywhere (the padding units up to Hp included, which run here as they
  do there) takes its reset state in every unit.

  Shapes: W lanes (8 or 16, CARRY_LANES times `n_vectors`); lane-major
  tensors keep a lane's values W floats apart: x (T, x_width, W), the
  state h, c (Hp, W), the output y (T, Hp, W).
*/

#include "kernels.h"

#include <string.h>

/** Sums per unit in a tile: LSTM i f g o; GRU z, r, h input, h recurrent. */
#define SUMS 4

/** acc[s][v] += x_j[v] * w[j][column of s], j = 0 .. n - 1 in order, for
    the n_sums sums of a tile; `slot` says which sum each of the `n_cols`
    weight columns from `w` (row stride `stride`) adds to. */
static inline __attribute__((always_inline)) void
lanes_accumulate(v8f *acc, const int n_vectors, const int *slot,
                 const int n_cols, const float *w, size_t stride,
                 const float *x, size_t width, int n)
{
  for (int j = 0; j < n; ++j) {
    const float *row = w + (size_t)j * stride;
    v8f xj[2];
    for (int v = 0; v < n_vectors; ++v) {
      xj[v] = v_load(x + (size_t)j * width + 8 * (size_t)v);
    }
    for (int k = 0; k < n_cols; ++k) {
      const v8f wk = v_set1(row[k]);
      for (int v = 0; v < n_vectors; ++v) {
        acc[slot[k] * n_vectors + v] += xj[v] * wk;
      }
    }
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

/* ------------------------------------------------------------------------ */
/* LSTM */

/** Units u0 .. u0 + n_units - 1 of one sample.  `x`, `h`, `c` and `h_out`
    point at the tile's first lane (lane-major, `width` apart). */
static inline __attribute__((always_inline)) void
lstm_lanes_tile(const carry_lanes_layer *layer, int u0, const float *x,
                const float *h, float *c, float *h_out, size_t width,
                v8f *check, const int n_units, const int n_vectors)
{
  const int I = layer->n_in, H = layer->n_units;
  const size_t stride = (size_t)SUMS * (size_t)layer->n_padded;
  const float *w = layer->weights + SUMS * (size_t)u0;
  const float *bias = layer->bias + SUMS * (size_t)u0;
  int slot[SUMS * 3];
  v8f acc[SUMS * 3 * 2];
  for (int k = 0; k < SUMS * n_units; ++k) {
    slot[k] = k;
    for (int v = 0; v < n_vectors; ++v) {
      acc[k * n_vectors + v] = v_set1(bias[k]);
    }
  }
  lanes_accumulate(acc, n_vectors, slot, SUMS * n_units, w, stride, x, width,
                   I);
  lanes_accumulate(acc, n_vectors, slot, SUMS * n_units,
                   w + (size_t)I * stride, stride, h, width, H);
  for (int u = 0; u < n_units; ++u) {
    for (int v = 0; v < n_vectors; ++v) {
      const v8f *z = acc + SUMS * u * n_vectors + v;
      float *c_unit = c + (size_t)(u0 + u) * width + 8 * (size_t)v;
      v8f c_new, h_new;
      carry_lstm_cell(z[0], z[n_vectors], z[2 * n_vectors],
                      z[3 * n_vectors], v_load(c_unit), &c_new, &h_new);
      v_store(c_unit, c_new);
      v_store(h_out + (size_t)(u0 + u) * width + 8 * (size_t)v, h_new);
      check[v] += c_new * 0.0f + h_new * 0.0f;
    }
  }
}

/** One sample of `n_vectors` vectors of lanes (of the `width`), tiles of
    `tile` units. */
static inline __attribute__((always_inline)) void
lstm_lanes_step(const carry_lanes_layer *layer, const float *x,
                const float *h, float *c, float *h_out, size_t width,
                const float *h_reset, const float *c_reset,
                const int n_vectors, const int tile)
{
  const int H = layer->n_padded;
  v8f check[2] = {v_set1(0.0f), v_set1(0.0f)};
  int u = 0;
  for (; u + tile <= H; u += tile) {
    lstm_lanes_tile(layer, u, x, h, c, h_out, width, check, tile, n_vectors);
  }
  if (tile > 2 && u + 2 <= H) {
    lstm_lanes_tile(layer, u, x, h, c, h_out, width, check, 2, n_vectors);
    u += 2;
  }
  if (u < H) {
    lstm_lanes_tile(layer, u, x, h, c, h_out, width, check, 1, n_vectors);
  }
  if (any_nan(check, n_vectors)) {
    reset_lanes(check, n_vectors, h_out, h_reset, H, width);
    reset_lanes(check, n_vectors, c, c_reset, H, width);
  }
}

void carry_lstm_lanes_chunk(const carry_lanes_layer *layer, const float *x,
                            int n_samples, int n_vectors, float *h, float *c,
                            float *y, const float *h_reset,
                            const float *c_reset)
{
  const size_t W = 8 * (size_t)n_vectors;
  const size_t IW = (size_t)layer->x_width * W;
  const size_t HW = (size_t)layer->n_padded * W;
  const float *h_prev = h;
  for (size_t t = 0; t < (size_t)n_samples; ++t) {
    float *h_out = y + t * HW;
    const float *x_t = x + t * IW;
    for (size_t half = 0; half < W; half += 8) {
      lstm_lanes_step(layer, x_t + half, h_prev + half, c + half,
                      h_out + half, W, h_reset + half, c_reset + half, 1, 3);
    }
    h_prev = h_out;
  }
  memcpy(h, h_prev, HW * sizeof(float));
}

/* ------------------------------------------------------------------------ */
/* GRU */

/** As lstm_lanes_tile; the sums are z, r, the input part of h (from the
    input rows) and its recurrent part (from the recurrent rows, started
    from bias_h). */
static inline __attribute__((always_inline)) void
gru_lanes_tile(const carry_lanes_layer *layer, int u0, const float *x,
               const float *h, float *h_out, size_t width, v8f *check,
               const int n_units, const int n_vectors)
{
  const int I = layer->n_in, H = layer->n_units;
  const size_t stride = 3 * (size_t)layer->n_padded;
  const float *w = layer->weights + 3 * (size_t)u0;
  const float *bias = layer->bias + 3 * (size_t)u0;
  int in_slot[3 * 3], rec_slot[3 * 3];
  v8f acc[SUMS * 3 * 2];
  for (int u = 0; u < n_units; ++u) {
    for (int q = 0; q < 3; ++q) {
      in_slot[3 * u + q] = SUMS * u + q;
      rec_slot[3 * u + q] = SUMS * u + (q == 2 ? 3 : q);
    }
    for (int v = 0; v < n_vectors; ++v) {
      for (int q = 0; q < 3; ++q) {
        acc[(SUMS * u + q) * n_vectors + v] = v_set1(bias[3 * u + q]);
      }
      acc[(SUMS * u + 3) * n_vectors + v] = v_set1(layer->bias_h[u0 + u]);
    }
  }
  lanes_accumulate(acc, n_vectors, in_slot, 3 * n_units, w, stride, x, width,
                   I);
  lanes_accumulate(acc, n_vectors, rec_slot, 3 * n_units,
                   w + (size_t)I * stride, stride, h, width, H);
  for (int u = 0; u < n_units; ++u) {
    for (int v = 0; v < n_vectors; ++v) {
      const v8f *z = acc + SUMS * u * n_vectors + v;
      const size_t at = (size_t)(u0 + u) * width + 8 * (size_t)v;
      const v8f h_new = carry_gru_cell(z[0], z[n_vectors], z[2 * n_vectors],
                                       z[3 * n_vectors], v_load(h + at));
      v_store(h_out + at, h_new);
      check[v] += h_new * 0.0f;
    }
  }
}

static inline __attribute__((always_inline)) void
gru_lanes_step(const carry_lanes_layer *layer, const float *x, const float *h,
               float *h_out, size_t width, const float *h_reset,
               const int n_vectors, const int tile)
{
  const int H = layer->n_padded;
  v8f check[2] = {v_set1(0.0f), v_set1(0.0f)};
  int u = 0;
  for (; u + tile <= H; u += tile) {
    gru_lanes_tile(layer, u, x, h, h_out, width, check, tile, n_vectors);
  }
  if (tile > 2 && u + 2 <= H) {
    gru_lanes_tile(layer, u, x, h, h_out, width, check, 2, n_vectors);
    u += 2;
  }
  if (u < H) {
    gru_lanes_tile(layer, u, x, h, h_out, width, check, 1, n_vectors);
  }
  if (any_nan(check, n_vectors)) {
    reset_lanes(check, n_vectors, h_out, h_reset, H, width);
  }
}

void carry_gru_lanes_chunk(const carry_lanes_layer *layer, const float *x,
                           int n_samples, int n_vectors, float *h, float *y,
                           const float *h_reset)
{
  const size_t W = 8 * (size_t)n_vectors;
  const size_t IW = (size_t)layer->x_width * W;
  const size_t HW = (size_t)layer->n_padded * W;
  const float *h_prev = h;
  for (size_t t = 0; t < (size_t)n_samples; ++t) {
    float *h_out = y + t * HW;
    const float *x_t = x + t * IW;
    for (size_t half = 0; half < W; half += 8) {
      gru_lanes_step(layer, x_t + half, h_prev + half, h_out + half, W,
                     h_reset + half, 1, 3);
    }
    h_prev = h_out;
  }
  memcpy(h, h_prev, HW * sizeof(float));
}
