/*
  LSTM over a chunk of samples (gates i, f, g, o):
    z = b + W·x + U·h
    c = σ(z_f) ⊙ c + σ(z_i) ⊙ tanh(z_g)
    h = σ(z_o) ⊙ tanh(c)
  Sample by sample, a register tile of one or two unit groups at a time
  (every gate of those units, see carry_packed_layer) sums the input rows,
  which do not wait on the state, then the recurrent rows, and finishes its
  units' gates at once, so that their activations overlap the next tile's
  products.  Each sample's h is written straight into its output row, which
  is where the next sample reads it.
  With AVX-512, pairs of groups run in 16-lane vectors: their columns
  [i f g o][i' f' g' o'] load as [i f] [g o] [i' f'] [g' o'], whose sums
  run row by row exactly as the 8-lane ones, and are regrouped as
  [i i'] [f f'] [g g'] [o o'] so that each activation covers 16 units.
  A layer with an odd number of groups sums its last one in the same tile
  as the last pairs, its [i f] and [g o] in one vector each.  The
  arithmetic of every lane is the same, so are the bits; the gates, half
  the time of a step, take half the instructions.
*/

#include "kernels.h"

#include <string.h>

/** One tile: `n_groups` (1 or 2) groups of 8 units.  `weights` and `bias`
    point at the tile's first column, `c_in`, `c_out` (which may be
    `c_in`) and `h_out` at its first unit.  Returns a vector that is NaN
    wherever the new state is not finite. */
static inline __attribute__((always_inline)) v8f
lstm_tile(const carry_packed_layer *layer, const float *weights,
          const float *bias, const float *x, const float *h,
          const float *c_in, float *c_out, float *h_out, const int n_groups)
{
  const int I = layer->n_in, H = layer->n_units, Gp = layer->n_rows;
  v8f acc[8];
  for (int v = 0; v < 4 * n_groups; ++v) {
    acc[v] = v_load(bias + 8 * v);
  }
  carry_accumulate(acc, 4 * n_groups, weights, Gp, x, I);
  carry_accumulate(acc, 4 * n_groups, weights + (size_t)I * (size_t)Gp, Gp,
                   h, H);
  v8f check = v_set1(0.0f);
  for (int g = 0; g < n_groups; ++g) {
    v8f c_new, h_new;
    carry_lstm_cell(acc[4 * g], acc[4 * g + 1], acc[4 * g + 2],
                    acc[4 * g + 3], v_load(c_in + 8 * g), &c_new, &h_new);
    v_store(c_out + 8 * g, c_new);
    v_store(h_out + 8 * g, h_new);
    check += c_new * 0.0f + h_new * 0.0f; // NaN if either is not finite
  }
  return check;
}

#if defined(__AVX512F__)
/** The odd last group of a wide tile: its [i f] and [g o] sums in one
    vector each, i and f through one sigmoid, g and o through one
    tanh-and-sigmoid, the cell on 8 lanes. */
static inline __attribute__((always_inline)) v8f
lstm_half_cell(v16f i_f_sums, v16f g_o_sums, const float *c_in, float *c_out,
               float *h_out)
{
  const v16f i_f = carry_wide_sigmoid(i_f_sums);
  const v16f g_o = carry_wide_tanh_sigmoid(g_o_sums);
  // CARRY_LSTM_CELL's arithmetic on the activated gates
  const v8f c_new = w_high(i_f) * v_load(c_in) + w_low(i_f) * w_low(g_o);
  const v8f h_new = w_high(g_o) * carry_gate_tanh(c_new);
  v_store(c_out, c_new);
  v_store(h_out, h_new);
  return c_new * 0.0f + h_new * 0.0f;
}

/** The cells of a wide tile from its sums `acc`: `n_pairs` pairs of
    groups, then the odd group if `has_half`.  The NaN check of
    lstm_tile(). */
static inline __attribute__((always_inline)) v8f
lstm_wide_cells(const v16f *acc, const float *c_in, float *c_out,
                float *h_out, const int n_pairs, const bool has_half)
{
  v16f check = w_set1(0.0f);
  for (int p = 0; p < n_pairs; ++p) {
    const v16f *if_go = acc + 4 * p;  // [i f] [g o] [i' f'] [g' o']
    v16f c_new, h_new;
    carry_lstm_cell_wide(w_low_halves(if_go[0], if_go[2]),
                         w_high_halves(if_go[0], if_go[2]),
                         w_low_halves(if_go[1], if_go[3]),
                         w_high_halves(if_go[1], if_go[3]),
                         w_load(c_in + 16 * p), &c_new, &h_new);
    w_store(c_out + 16 * p, c_new);
    w_store(h_out + 16 * p, h_new);
    check += c_new * 0.0f + h_new * 0.0f;
  }
  const v8f half_check =
    has_half ? lstm_half_cell(acc[4 * n_pairs], acc[4 * n_pairs + 1],
                              c_in + 16 * n_pairs, c_out + 16 * n_pairs,
                              h_out + 16 * n_pairs)
             : v_set1(0.0f);
  return half_check + v_set1(w_any_nan(check) ? __builtin_nanf("") : 0.0f);
}

/** A wide tile: `n_pairs` (1 or 2) pairs of groups, and the layer's odd
    last group if `has_half`, all summed before any cell runs; otherwise
    as lstm_tile(). */
static inline __attribute__((always_inline)) v8f
lstm_wide_tile(const carry_packed_layer *layer, const float *weights,
               const float *bias, const float *x, const float *h,
               const float *c_in, float *c_out, float *h_out,
               const int n_pairs, const bool has_half)
{
  const int I = layer->n_in, H = layer->n_units, Gp = layer->n_rows;
  const int n_sums = 4 * n_pairs + (has_half ? 2 : 0);
  v16f acc[10];
  for (int v = 0; v < n_sums; ++v) {
    acc[v] = w_load(bias + 16 * v);
  }
  carry_accumulate_wide(acc, n_sums, weights, Gp, x, I);
  carry_accumulate_wide(acc, n_sums, weights + (size_t)I * (size_t)Gp, Gp,
                        h, H);
  return lstm_wide_cells(acc, c_in, c_out, h_out, n_pairs, has_half);
}

/** The wide tile of groups from `g` on. */
static inline __attribute__((always_inline)) v8f
lstm_wide_tile_at(const carry_packed_layer *layer, int g, const float *x,
                  const float *h, const float *c_in, float *c_out,
                  float *h_out, const int n_pairs, const bool has_half)
{
  return lstm_wide_tile(layer, layer->kernel + 32 * g, layer->bias + 32 * g,
                        x, h, c_in + 8 * g, c_out + 8 * g, h_out + 8 * g,
                        n_pairs, has_half);
}

/** Every group of the layer in wide tiles: of two pairs while more than
    five groups are left, then one of what is left (5: two pairs and the
    odd group; 4; 3: a pair and the odd group; 2).  The NaN check of
    lstm_tile(). */
static inline __attribute__((always_inline)) v8f
lstm_wide_tiles(const carry_packed_layer *layer, const float *x,
                const float *h, const float *c_in, float *c_out,
                float *h_out)
{
  const int n_groups = layer->n_padded / 8;
  v8f check = v_set1(0.0f);
  int g = 0;
  for (; n_groups - g > 5; g += 4) {
    check += lstm_wide_tile_at(layer, g, x, h, c_in, c_out, h_out, 2, false);
  }
  // each shape a constant, so that every tile keeps its sums in registers
  switch (n_groups - g) {
  case 5:
    return check +
           lstm_wide_tile_at(layer, g, x, h, c_in, c_out, h_out, 2, true);
  case 4:
    return check +
           lstm_wide_tile_at(layer, g, x, h, c_in, c_out, h_out, 2, false);
  case 3:
    return check +
           lstm_wide_tile_at(layer, g, x, h, c_in, c_out, h_out, 1, true);
  case 2:
    return check +
           lstm_wide_tile_at(layer, g, x, h, c_in, c_out, h_out, 1, false);
  default: return check;  // one group runs AVX2's kernels instead
  }
}
#endif

/** One sample: from the input `x` (I) and the state h (Hp), c_in (Hp) to
    `h_out` (Hp), `c_out` (Hp; may be c_in, not h), in wide tiles where
    `is_wide` (AVX-512 builds, two groups or more).  Returns whether the
    new state is finite. */
static inline __attribute__((always_inline)) bool
lstm_step(const carry_packed_layer *layer, const float *x, const float *h,
          const float *c_in, float *c_out, float *h_out, const bool is_wide)
{
  const int n_groups = layer->n_padded / 8;
  v8f check = v_set1(0.0f);
  int g = 0;
#if defined(__AVX512F__)
  if (is_wide) {
    return !v_any_nan(lstm_wide_tiles(layer, x, h, c_in, c_out, h_out));
  }
#else
  (void)is_wide;
#endif
  for (; g + 2 <= n_groups; g += 2) {
    check += lstm_tile(layer, layer->kernel + 32 * g, layer->bias + 32 * g, x,
                       h, c_in + 8 * g, c_out + 8 * g, h_out + 8 * g, 2);
  }
  if (g < n_groups) {
    check += lstm_tile(layer, layer->kernel + 32 * g, layer->bias + 32 * g, x,
                       h, c_in + 8 * g, c_out + 8 * g, h_out + 8 * g, 1);
  }
  return !v_any_nan(check);
}

static inline __attribute__((always_inline)) void
lstm_chunk(const carry_packed_layer *layer, const float *x, int x_stride,
           int n_samples, float *h, float *c, float *y, const float *h_reset,
           const float *c_reset, const bool is_wide)
{
  const size_t Hp = (size_t)layer->n_padded;
  const float *h_prev = h;
  for (size_t t = 0; t < (size_t)n_samples; ++t) {
    float *h_out = y + t * Hp;
    if (!lstm_step(layer, x + t * (size_t)x_stride, h_prev, c, c, h_out,
                   is_wide)) {
      memcpy(h_out, h_reset, Hp * sizeof(float));
      memcpy(c, c_reset, Hp * sizeof(float));
    }
    h_prev = h_out;
  }
  memcpy(h, h_prev, Hp * sizeof(float));
}

static inline __attribute__((always_inline)) void
lstm_delayed_chunk(const carry_packed_layer *layer, const float *x,
                   int x_stride, int n_samples, const carry_delay_taps *taps,
                   const carry_delay_line *line, float *y, const bool is_wide)
{
  const size_t Hp = (size_t)layer->n_padded;
  int slot = line->position;
  for (size_t t = 0; t < (size_t)n_samples; ++t) {
    const float *h_prev = carry_delayed_state(taps, line->h, Hp, slot,
                                              line->h_mix);
    const float *c_prev = carry_delayed_state(taps, line->c, Hp, slot,
                                              line->c_mix);
    float *h_out = line->h + (size_t)slot * Hp;
    float *c_out = line->c + (size_t)slot * Hp;
    if (!lstm_step(layer, x + t * (size_t)x_stride, h_prev, c_prev, c_out,
                   h_out, is_wide)) {
      carry_refill_line(taps, line->h, Hp, line->h_reset);
      carry_refill_line(taps, line->c, Hp, line->c_reset);
    }
    carry_copy_row(y + t * Hp, h_out, Hp);
    slot = slot + 1 == taps->n_slots ? 0 : slot + 1;
  }
}

/* In the AVX-512 set, layers of one group take the AVX2 set's kernels (see
   kernels.h) and the others run wide tiles. */
void carry_lstm_chunk(const carry_packed_layer *layer, const float *x,
                      int x_stride, int n_samples, float *h, float *c,
                      float *y, const float *h_reset, const float *c_reset)
{
#if defined(__AVX512F__)
  if (layer->n_padded < 16) {
    CARRY_AVX2_NAME(carry_lstm_chunk)(layer, x, x_stride, n_samples, h, c, y,
                                      h_reset, c_reset);
    return;
  }
#endif
  lstm_chunk(layer, x, x_stride, n_samples, h, c, y, h_reset, c_reset,
             CARRY_IS_WIDE_SET);
}

void carry_lstm_delayed_chunk(const carry_packed_layer *layer, const float *x,
                              int x_stride, int n_samples,
                              const carry_delay_taps *taps,
                              const carry_delay_line *line, float *y)
{
#if defined(__AVX512F__)
  if (layer->n_padded < 16) {
    CARRY_AVX2_NAME(carry_lstm_delayed_chunk)(layer, x, x_stride, n_samples,
                                              taps, line, y);
    return;
  }
#endif
  lstm_delayed_chunk(layer, x, x_stride, n_samples, taps, line, y,
                     CARRY_IS_WIDE_SET);
}

/* ------------------------------------------------------------------------ */
/* Two streams of one model in step (stereo) */

#if defined(__AVX512F__)
/** A wide tile of two streams: each weight vector is loaded once for
    both, and each stream's sums and cells are those of lstm_wide_tile(),
    so that each keeps its bits. */
static inline __attribute__((always_inline)) void
lstm_wide_pair_tile(const carry_packed_layer *layer, int g, const float *xa,
                    const float *xb, const float *ha, const float *hb,
                    const carry_lane *a, const carry_lane *b, float *ya,
                    float *yb, v8f *check_a, v8f *check_b, const int n_pairs,
                    const bool has_half)
{
  const int I = layer->n_in, H = layer->n_units;
  const size_t Gp = (size_t)layer->n_rows;
  const float *w = layer->kernel + 32 * g, *bias = layer->bias + 32 * g;
  const int n_sums = 4 * n_pairs + (has_half ? 2 : 0);
  v16f acc_a[10], acc_b[10];
  for (int v = 0; v < n_sums; ++v) {
    acc_a[v] = acc_b[v] = w_load(bias + 16 * v);
  }
  carry_accumulate_wide_pair(acc_a, acc_b, n_sums, w, Gp, xa, xb, I);
  carry_accumulate_wide_pair(acc_a, acc_b, n_sums, w + (size_t)I * Gp, Gp,
                             ha, hb, H);
  float *ca = a->c + 8 * g, *cb = b->c + 8 * g;
  *check_a += lstm_wide_cells(acc_a, ca, ca, ya + 8 * g, n_pairs, has_half);
  *check_b += lstm_wide_cells(acc_b, cb, cb, yb + 8 * g, n_pairs, has_half);
}

/** The wide pair tile of groups from `g` on.  Returns how many groups it
    ran. */
static inline __attribute__((always_inline)) int
lstm_wide_pair_group(const carry_packed_layer *layer, int g, const float *xa,
                     const float *xb, const float *ha, const float *hb,
                     const carry_lane *a, const carry_lane *b, float *ya,
                     float *yb, v8f *check_a, v8f *check_b)
{
  // each shape a constant, so that the tile keeps its sums in registers
  switch (carry_wide_pair_groups(layer->n_padded / 8 - g)) {
  case 4:
    lstm_wide_pair_tile(layer, g, xa, xb, ha, hb, a, b, ya, yb, check_a,
                        check_b, 2, false);
    return 4;
  case 3:
    lstm_wide_pair_tile(layer, g, xa, xb, ha, hb, a, b, ya, yb, check_a,
                        check_b, 1, true);
    return 3;
  default:
    lstm_wide_pair_tile(layer, g, xa, xb, ha, hb, a, b, ya, yb, check_a,
                        check_b, 1, false);
    return 2;
  }
}

void carry_lstm_pair_chunk(const carry_packed_layer *layer, int x_stride,
                           int n_samples, const carry_lane *a,
                           const carry_lane *b)
{
  if (layer->n_padded < 16) {
    CARRY_AVX2_NAME(carry_lstm_pair_chunk)(layer, x_stride, n_samples, a, b);
    return;
  }
  carry_pair_chunk(layer, x_stride, n_samples, a, b, lstm_wide_pair_group);
}
#else
/** One group of 8 units for two streams: each weight vector is loaded
    once and used for both, and each stream's sums run over the same rows
    in the same order as in lstm_tile(), so each gives its own bits. */
static inline __attribute__((always_inline)) int
lstm_pair_group(const carry_packed_layer *layer, int g, const float *xa,
                const float *xb, const float *ha, const float *hb,
                const carry_lane *a, const carry_lane *b, float *ya,
                float *yb, v8f *check_a, v8f *check_b)
{
  const int I = layer->n_in, H = layer->n_units;
  const size_t Gp = (size_t)layer->n_rows;
  const float *w = layer->kernel + 32 * g;
  v8f acc_a[4], acc_b[4];
  #pragma GCC unroll 4
  for (int v = 0; v < 4; ++v) {
    acc_a[v] = acc_b[v] = v_load(layer->bias + 32 * g + 8 * v);
  }
  carry_accumulate_pair(acc_a, acc_b, w, Gp, xa, xb, I);
  carry_accumulate_pair(acc_a, acc_b, w + (size_t)I * Gp, Gp, ha, hb, H);
  v8f c_new, h_new;
  carry_lstm_cell(acc_a[0], acc_a[1], acc_a[2], acc_a[3],
                  v_load(a->c + 8 * g), &c_new, &h_new);
  v_store(a->c + 8 * g, c_new);
  v_store(ya + 8 * g, h_new);
  *check_a += c_new * 0.0f + h_new * 0.0f;
  carry_lstm_cell(acc_b[0], acc_b[1], acc_b[2], acc_b[3],
                  v_load(b->c + 8 * g), &c_new, &h_new);
  v_store(b->c + 8 * g, c_new);
  v_store(yb + 8 * g, h_new);
  *check_b += c_new * 0.0f + h_new * 0.0f;
  return 1;
}

void carry_lstm_pair_chunk(const carry_packed_layer *layer, int x_stride,
                           int n_samples, const carry_lane *a,
                           const carry_lane *b)
{
  carry_pair_chunk(layer, x_stride, n_samples, a, b, lstm_pair_group);
}
#endif
