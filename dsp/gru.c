/*
  GRU over a chunk of samples, Keras reset_after=True (gates z, r, h):
    z = σ(Wz·x + bz + Uz·h + b'z)
    r = σ(Wr·x + br + Ur·h + b'r)
    n = tanh(Wh·x + bh + r ⊙ (Uh·h + b'h))
    h = (1 - z) ⊙ n + z ⊙ h  =  n + z ⊙ (h - n)
  The packed bias already holds bz + b'z and br + b'r.  Since r scales only
  the recurrent part of the h gate, a tile keeps four sums per unit group:
  z, r, the input part of h and the recurrent part of h.  Otherwise tiles
  and output rows work as in lstm.c, wide tiles included: a pair of
  groups' 48 columns [z r h][z' r' h'] load as [z r] [h z'] [r' h'], and
  between the input and the recurrent rows the two h halves trade their
  input sums (kept) for the recurrent bias, so that every sum runs over
  the rows of the 8-lane tiles in their order.  An odd last group sums
  [z r] in one vector and its h gate in the low half of another.
*/

#include "kernels.h"

#include <string.h>

/** Adds the rows of `weights` (n of them) times `x` to the z, r and
    `part` (2: input, 3: recurrent part of h) sums of each group. */
static inline __attribute__((always_inline)) void
gru_accumulate(v8f *acc, const int n_groups, const int part,
               const float *weights, int Gp, const float *x, int n)
{
  for (int j = 0; j < n; ++j) {
    const v8f xj = v_set1(x[j]);
    const float *row = weights + (size_t)j * (size_t)Gp;
    for (int g = 0; g < n_groups; ++g) {
      acc[4 * g] += xj * v_load(row + 24 * g);
      acc[4 * g + 1] += xj * v_load(row + 24 * g + 8);
      acc[4 * g + part] += xj * v_load(row + 24 * g + 16);
    }
  }
}

/** One tile; `weights` and `bias` point at its first column, `bias_h`, `h`
    (whole), `h_out` at its first unit.  Returns a vector that is NaN
    wherever the new state is not finite. */
static inline __attribute__((always_inline)) v8f
gru_tile(const carry_packed_layer *layer, const float *weights,
         const float *bias, const float *bias_h, const float *x,
         const float *h, const float *h_units, float *h_out,
         const int n_groups)
{
  v8f acc[8];
  for (int g = 0; g < n_groups; ++g) {
    acc[4 * g] = v_load(bias + 24 * g);
    acc[4 * g + 1] = v_load(bias + 24 * g + 8);
    acc[4 * g + 2] = v_load(bias + 24 * g + 16);
    acc[4 * g + 3] = v_load(bias_h + 8 * g);
  }
  const int I = layer->n_in, Gp = layer->n_rows;
  gru_accumulate(acc, n_groups, 2, weights, Gp, x, I);
  gru_accumulate(acc, n_groups, 3, weights + (size_t)I * (size_t)Gp, Gp, h,
                 layer->n_units);
  v8f check = v_set1(0.0f);
  for (int g = 0; g < n_groups; ++g) {
    const v8f h_new = carry_gru_cell(acc[4 * g], acc[4 * g + 1],
                                     acc[4 * g + 2], acc[4 * g + 3],
                                     v_load(h_units + 8 * g));
    v_store(h_out + 8 * g, h_new);
    check += h_new * 0.0f;
  }
  return check;
}

#if defined(__AVX512F__)
/** Lanes 0-7 from p, the others 0, without reading past lane 7. */
static inline v16f gru_load_low(const float *p)
{
  return (v16f)_mm512_maskz_loadu_ps((__mmask16)0x00FF, p);
}

/** The rows of a wide tile: `n_pair_sums` vectors of the pairs' columns,
    then, if `has_half`, the odd group's [z r] and its [h] (8 lanes). */
static inline __attribute__((always_inline)) void
gru_wide_accumulate(v16f *acc, const int n_pair_sums, const bool has_half,
                    const float *weights, int Gp, const float *x, int n)
{
  for (int j = 0; j < n; ++j) {
    const v16f xj = w_set1(x[j]);
    const float *row = weights + (size_t)j * (size_t)Gp;
    for (int v = 0; v < n_pair_sums; ++v) {
      acc[v] += xj * w_load(row + 16 * v);
    }
    if (has_half) {
      acc[n_pair_sums] += xj * w_load(row + 16 * n_pair_sums);
      acc[n_pair_sums + 1] +=
        xj * gru_load_low(row + 16 * n_pair_sums + 16);
    }
  }
}

/** gru_wide_accumulate() for two streams, each weight vector loaded once
    for both. */
static inline __attribute__((always_inline)) void
gru_wide_accumulate_pair(v16f *acc_a, v16f *acc_b, const int n_pair_sums,
                         const bool has_half, const float *weights, size_t Gp,
                         const float *xa, const float *xb, int n)
{
  for (int j = 0; j < n; ++j) {
    const v16f xaj = w_set1(xa[j]), xbj = w_set1(xb[j]);
    const float *row = weights + (size_t)j * Gp;
    for (int v = 0; v < n_pair_sums + (has_half ? 1 : 0); ++v) {
      const v16f wv = w_load(row + 16 * v);
      acc_a[v] += xaj * wv;
      acc_b[v] += xbj * wv;
    }
    if (has_half) {
      const v16f wv = gru_load_low(row + 16 * n_pair_sums + 16);
      acc_a[n_pair_sums + 1] += xaj * wv;
      acc_b[n_pair_sums + 1] += xbj * wv;
    }
  }
}

/** The odd last group's cell from its [z r] sums and its h gate's input
    and recurrent parts: CARRY_GRU_CELL's arithmetic, z and r through one
    16-lane sigmoid. */
static inline __attribute__((always_inline)) v8f
gru_half_cell(v16f z_r_sums, v8f h_in, v8f h_rec, const float *h_units,
              float *h_out)
{
  const v16f z_r = carry_wide_sigmoid(z_r_sums);
  const v8f n = carry_gate_tanh(h_in + w_high(z_r) * h_rec);
  const v8f h_new = n + w_low(z_r) * (v_load(h_units) - n);
  v_store(h_out, h_new);
  return h_new * 0.0f;
}

/** A wide tile's sums, in three phases: begun from the biases, the input
    rows summed, the h gates' input parts set apart (gru_wide_to_recurrent),
    then the recurrent rows summed.  Per pair of groups [z r] [h z']
    [r' h'] and the input part [h h'] of the h gates; the odd group's [z r]
    and its h gate (8 lanes) and that gate's input part. */
typedef struct gru_wide_sums {
  v16f acc[8];
  v16f h_in[2];
  v8f half_h_in;
} gru_wide_sums;

static inline __attribute__((always_inline)) void
gru_wide_begin(gru_wide_sums *sums, const float *bias, const int n_pairs,
               const bool has_half)
{
  const int P = 3 * n_pairs;
  for (int v = 0; v < P; ++v) {
    sums->acc[v] = w_load(bias + 16 * v);
  }
  if (has_half) {  // the odd group: [z r], [h] (input part, then recurrent)
    sums->acc[P] = w_load(bias + 16 * P);
    sums->acc[P + 1] = gru_load_low(bias + 16 * P + 16);
  }
}

/** Between the input and the recurrent rows: each h gate's input sum is
    set apart, and its recurrent sum begun from the recurrent bias. */
static inline __attribute__((always_inline)) void
gru_wide_to_recurrent(gru_wide_sums *sums, const float *bias_h,
                      const int n_pairs, const bool has_half)
{
  for (int p = 0; p < n_pairs; ++p) {
    v16f *q = sums->acc + 3 * p;
    const v16f recurrent_bias = w_load(bias_h + 16 * p);
    sums->h_in[p] = w_low_high(q[1], q[2]);
    q[1] = w_low_high(recurrent_bias, q[1]);
    q[2] = w_low_high(q[2], recurrent_bias);
  }
  sums->half_h_in = v_set1(0.0f);
  if (has_half) {
    v16f *h_gate = sums->acc + 3 * n_pairs + 1;
    sums->half_h_in = w_low(*h_gate);
    *h_gate = gru_load_low(bias_h + 16 * n_pairs);
  }
}

/** The cells of a wide tile from its finished sums.  The NaN check of
    gru_tile(). */
static inline __attribute__((always_inline)) v8f
gru_wide_cells(const gru_wide_sums *sums, const float *h_units, float *h_out,
               const int n_pairs, const bool has_half)
{
  v16f check = w_set1(0.0f);
  for (int p = 0; p < n_pairs; ++p) {
    const v16f *q = sums->acc + 3 * p;
    const v16f h_new = carry_gru_cell_wide(
      w_low_high(q[0], q[1]), w_high_low(q[0], q[2]), sums->h_in[p],
      w_low_high(q[1], q[2]), w_load(h_units + 16 * p));
    w_store(h_out + 16 * p, h_new);
    check += h_new * 0.0f;
  }
  const int P = 3 * n_pairs;
  const v8f half_check =
    has_half ? gru_half_cell(sums->acc[P], sums->half_h_in,
                             w_low(sums->acc[P + 1]), h_units + 16 * n_pairs,
                             h_out + 16 * n_pairs)
             : v_set1(0.0f);
  return half_check + v_set1(w_any_nan(check) ? __builtin_nanf("") : 0.0f);
}

/** A wide tile: `n_pairs` (1 or 2) pairs of groups, and the layer's odd
    last group if `has_half`, all summed before any cell runs; otherwise
    as gru_tile(). */
static inline __attribute__((always_inline)) v8f
gru_wide_tile(const carry_packed_layer *layer, const float *weights,
              const float *bias, const float *bias_h, const float *x,
              const float *h, const float *h_units, float *h_out,
              const int n_pairs, const bool has_half)
{
  const int I = layer->n_in, Gp = layer->n_rows, P = 3 * n_pairs;
  gru_wide_sums sums;
  gru_wide_begin(&sums, bias, n_pairs, has_half);
  gru_wide_accumulate(sums.acc, P, has_half, weights, Gp, x, I);
  gru_wide_to_recurrent(&sums, bias_h, n_pairs, has_half);
  gru_wide_accumulate(sums.acc, P, has_half, weights + (size_t)I * (size_t)Gp,
                      Gp, h, layer->n_units);
  return gru_wide_cells(&sums, h_units, h_out, n_pairs, has_half);
}

/** The wide tile of groups from `g` on. */
static inline __attribute__((always_inline)) v8f
gru_wide_tile_at(const carry_packed_layer *layer, int g, const float *x,
                 const float *h, float *h_out, const int n_pairs,
                 const bool has_half)
{
  return gru_wide_tile(layer, layer->kernel + 24 * g, layer->bias + 24 * g,
                       layer->bias_h + 8 * g, x, h, h + 8 * g, h_out + 8 * g,
                       n_pairs, has_half);
}

/** Every group of the layer in wide tiles, as lstm_wide_tiles() does. */
static inline __attribute__((always_inline)) v8f
gru_wide_tiles(const carry_packed_layer *layer, const float *x,
               const float *h, float *h_out)
{
  const int n_groups = layer->n_padded / 8;
  v8f check = v_set1(0.0f);
  int g = 0;
  for (; n_groups - g > 5; g += 4) {
    check += gru_wide_tile_at(layer, g, x, h, h_out, 2, false);
  }
  // each shape a constant, so that every tile keeps its sums in registers
  switch (n_groups - g) {
  case 5: return check + gru_wide_tile_at(layer, g, x, h, h_out, 2, true);
  case 4: return check + gru_wide_tile_at(layer, g, x, h, h_out, 2, false);
  case 3: return check + gru_wide_tile_at(layer, g, x, h, h_out, 1, true);
  case 2: return check + gru_wide_tile_at(layer, g, x, h, h_out, 1, false);
  default: return check;  // one group runs AVX2's kernels instead
  }
}
#endif

/** One sample: from the input `x` (I) and the state h (Hp) to `h_out`
    (Hp, not h), in wide tiles where `is_wide` (AVX-512 builds, two groups
    or more).  Returns whether the new state is finite. */
static inline __attribute__((always_inline)) bool
gru_step(const carry_packed_layer *layer, const float *x, const float *h,
         float *h_out, const bool is_wide)
{
  const int n_groups = layer->n_padded / 8;
  v8f check = v_set1(0.0f);
  int g = 0;
#if defined(__AVX512F__)
  if (is_wide) {
    return !v_any_nan(gru_wide_tiles(layer, x, h, h_out));
  }
#else
  (void)is_wide;
#endif
  for (; g + 2 <= n_groups; g += 2) {
    check += gru_tile(layer, layer->kernel + 24 * g, layer->bias + 24 * g,
                      layer->bias_h + 8 * g, x, h, h + 8 * g, h_out + 8 * g,
                      2);
  }
  if (g < n_groups) {
    check += gru_tile(layer, layer->kernel + 24 * g, layer->bias + 24 * g,
                      layer->bias_h + 8 * g, x, h, h + 8 * g, h_out + 8 * g,
                      1);
  }
  return !v_any_nan(check);
}

static inline __attribute__((always_inline)) void
gru_chunk(const carry_packed_layer *layer, const float *x, int x_stride,
          int n_samples, float *h, float *y, const float *h_reset,
          const bool is_wide)
{
  const size_t Hp = (size_t)layer->n_padded;
  const float *h_prev = h;
  for (size_t t = 0; t < (size_t)n_samples; ++t) {
    float *h_out = y + t * Hp;
    if (!gru_step(layer, x + t * (size_t)x_stride, h_prev, h_out, is_wide)) {
      memcpy(h_out, h_reset, Hp * sizeof(float));
    }
    h_prev = h_out;
  }
  memcpy(h, h_prev, Hp * sizeof(float));
}

static inline __attribute__((always_inline)) void
gru_delayed_chunk(const carry_packed_layer *layer, const float *x,
                  int x_stride, int n_samples, const carry_delay_taps *taps,
                  const carry_delay_line *line, float *y, const bool is_wide)
{
  const size_t Hp = (size_t)layer->n_padded;
  int slot = line->position;
  for (size_t t = 0; t < (size_t)n_samples; ++t) {
    const float *h_prev = carry_delayed_state(taps, line->h, Hp, slot,
                                              line->h_mix);
    float *h_out = line->h + (size_t)slot * Hp;
    if (!gru_step(layer, x + t * (size_t)x_stride, h_prev, h_out, is_wide)) {
      carry_refill_line(taps, line->h, Hp, line->h_reset);
    }
    carry_copy_row(y + t * Hp, h_out, Hp);
    slot = slot + 1 == taps->n_slots ? 0 : slot + 1;
  }
}

/* In the AVX-512 set, layers of fewer than three groups take the AVX2
   set's kernels (see kernels.h) and the others run wide tiles: a GRU of
   two groups (GRU-16), bound by its chain of gates, measured 0.9 times as
   fast in one wide tile as in AVX2's, whose gates need no shuffles. */
#define CARRY_GRU_WIDE_UNITS 24

void carry_gru_chunk(const carry_packed_layer *layer, const float *x,
                     int x_stride, int n_samples, float *h, float *y,
                     const float *h_reset)
{
#if defined(__AVX512F__)
  if (layer->n_padded < CARRY_GRU_WIDE_UNITS) {
    CARRY_AVX2_NAME(carry_gru_chunk)(layer, x, x_stride, n_samples, h, y,
                                     h_reset);
    return;
  }
#endif
  gru_chunk(layer, x, x_stride, n_samples, h, y, h_reset, CARRY_IS_WIDE_SET);
}

void carry_gru_delayed_chunk(const carry_packed_layer *layer, const float *x,
                             int x_stride, int n_samples,
                             const carry_delay_taps *taps,
                             const carry_delay_line *line, float *y)
{
#if defined(__AVX512F__)
  if (layer->n_padded < CARRY_GRU_WIDE_UNITS) {
    CARRY_AVX2_NAME(carry_gru_delayed_chunk)(layer, x, x_stride, n_samples,
                                             taps, line, y);
    return;
  }
#endif
  gru_delayed_chunk(layer, x, x_stride, n_samples, taps, line, y,
                    CARRY_IS_WIDE_SET);
}

/* ------------------------------------------------------------------------ */
/* Two streams of one model in step (stereo) */

#if defined(__AVX512F__)
/** A wide tile of two streams: each weight vector is loaded once for
    both, and each stream's sums and cells are those of gru_wide_tile(), so
    that each keeps its bits. */
static inline __attribute__((always_inline)) void
gru_wide_pair_tile(const carry_packed_layer *layer, int g, const float *xa,
                   const float *xb, const float *ha, const float *hb,
                   float *ya, float *yb, v8f *check_a, v8f *check_b,
                   const int n_pairs, const bool has_half)
{
  const int I = layer->n_in, P = 3 * n_pairs;
  const size_t Gp = (size_t)layer->n_rows;
  const float *w = layer->kernel + 24 * g, *bias = layer->bias + 24 * g;
  const float *bias_h = layer->bias_h + 8 * g;
  gru_wide_sums a, b;
  gru_wide_begin(&a, bias, n_pairs, has_half);
  gru_wide_begin(&b, bias, n_pairs, has_half);
  gru_wide_accumulate_pair(a.acc, b.acc, P, has_half, w, Gp, xa, xb, I);
  gru_wide_to_recurrent(&a, bias_h, n_pairs, has_half);
  gru_wide_to_recurrent(&b, bias_h, n_pairs, has_half);
  gru_wide_accumulate_pair(a.acc, b.acc, P, has_half, w + (size_t)I * Gp, Gp,
                           ha, hb, layer->n_units);
  *check_a += gru_wide_cells(&a, ha + 8 * g, ya + 8 * g, n_pairs, has_half);
  *check_b += gru_wide_cells(&b, hb + 8 * g, yb + 8 * g, n_pairs, has_half);
}

/** The wide pair tile of groups from `g` on.  Returns how many groups it
    ran. */
static inline __attribute__((always_inline)) int
gru_wide_pair_group(const carry_packed_layer *layer, int g, const float *xa,
                    const float *xb, const float *ha, const float *hb,
                    const carry_lane *a, const carry_lane *b, float *ya,
                    float *yb, v8f *check_a, v8f *check_b)
{
  (void)a;  // a GRU has no c
  (void)b;
  // each shape a constant, so that the tile keeps its sums in registers
  switch (carry_wide_pair_groups(layer->n_padded / 8 - g)) {
  case 4:
    gru_wide_pair_tile(layer, g, xa, xb, ha, hb, ya, yb, check_a, check_b, 2,
                       false);
    return 4;
  case 3:
    gru_wide_pair_tile(layer, g, xa, xb, ha, hb, ya, yb, check_a, check_b, 1,
                       true);
    return 3;
  default:
    gru_wide_pair_tile(layer, g, xa, xb, ha, hb, ya, yb, check_a, check_b, 1,
                       false);
    return 2;
  }
}

void carry_gru_pair_chunk(const carry_packed_layer *layer, int x_stride,
                          int n_samples, const carry_lane *a,
                          const carry_lane *b)
{
  if (layer->n_padded < CARRY_GRU_WIDE_UNITS) {
    CARRY_AVX2_NAME(carry_gru_pair_chunk)(layer, x_stride, n_samples, a, b);
    return;
  }
  carry_pair_chunk(layer, x_stride, n_samples, a, b, gru_wide_pair_group);
}
#else
/** gru_accumulate() for one group of two streams, each weight vector
    loaded once. */
static inline __attribute__((always_inline)) void
gru_accumulate_pair(v8f *acc_a, v8f *acc_b, const int part,
                    const float *weights, size_t Gp, const float *xa,
                    const float *xb, int n)
{
  for (int j = 0; j < n; ++j) {
    const v8f xaj = v_set1(xa[j]), xbj = v_set1(xb[j]);
    const float *row = weights + (size_t)j * Gp;
    const v8f wz = v_load(row), wr = v_load(row + 8), wh = v_load(row + 16);
    acc_a[0] += xaj * wz;
    acc_b[0] += xbj * wz;
    acc_a[1] += xaj * wr;
    acc_b[1] += xbj * wr;
    acc_a[part] += xaj * wh;
    acc_b[part] += xbj * wh;
  }
}

/** One group of 8 units for two streams, as gru_tile() for each. */
static inline __attribute__((always_inline)) int
gru_pair_group(const carry_packed_layer *layer, int g, const float *xa,
               const float *xb, const float *ha, const float *hb,
               const carry_lane *a, const carry_lane *b, float *ya,
               float *yb, v8f *check_a, v8f *check_b)
{
  (void)a;  // a GRU has no c
  (void)b;
  const int I = layer->n_in;
  const size_t Gp = (size_t)layer->n_rows;
  const float *w = layer->kernel + 24 * g;
  v8f acc_a[4], acc_b[4];
  acc_a[0] = acc_b[0] = v_load(layer->bias + 24 * g);
  acc_a[1] = acc_b[1] = v_load(layer->bias + 24 * g + 8);
  acc_a[2] = acc_b[2] = v_load(layer->bias + 24 * g + 16);
  acc_a[3] = acc_b[3] = v_load(layer->bias_h + 8 * g);
  gru_accumulate_pair(acc_a, acc_b, 2, w, Gp, xa, xb, I);
  gru_accumulate_pair(acc_a, acc_b, 3, w + (size_t)I * Gp, Gp, ha, hb,
                      layer->n_units);
  const v8f new_a = carry_gru_cell(acc_a[0], acc_a[1], acc_a[2], acc_a[3],
                                   v_load(ha + 8 * g));
  const v8f new_b = carry_gru_cell(acc_b[0], acc_b[1], acc_b[2], acc_b[3],
                                   v_load(hb + 8 * g));
  v_store(ya + 8 * g, new_a);
  v_store(yb + 8 * g, new_b);
  *check_a += new_a * 0.0f;
  *check_b += new_b * 0.0f;
  return 1;
}

void carry_gru_pair_chunk(const carry_packed_layer *layer, int x_stride,
                          int n_samples, const carry_lane *a,
                          const carry_lane *b)
{
  carry_pair_chunk(layer, x_stride, n_samples, a, b, gru_pair_group);
}
#endif
