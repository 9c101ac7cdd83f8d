/*
  The vectorised kernels of one instruction set.  The files that include
  this are compiled once per set with CARRY_ISA defined (portable, avx2),
  which suffixes every kernel's name.
*/

#ifndef CARRY_KERNELS_H
#define CARRY_KERNELS_H

#include "internal.h"
#include "vmath.h"
#include "vmath_wide.h"

#include <string.h>

#ifndef CARRY_ISA
#  error "CARRY_ISA must name the instruction set (portable, avx2)"
#endif

/* The same sources compiled with CARRY_FAST give the fast-quality kernels:
   everything alike but the gate activations. */
#if defined(CARRY_FAST)
#  define carry_gate_sigmoid v_sigmoid_fast
#  define carry_gate_tanh v_tanh_fast
#  define carry_wide_sigmoid w_sigmoid_fast
#  define carry_wide_tanh w_tanh_fast
#  define carry_wide_tanh_sigmoid w_tanh_sigmoid_fast
#else
#  define carry_gate_sigmoid v_sigmoid_gate
#  define carry_gate_tanh v_tanh_gate
#  define carry_wide_sigmoid w_sigmoid_gate
#  define carry_wide_tanh w_tanh_gate
#  define carry_wide_tanh_sigmoid w_tanh_sigmoid_gate
#endif

#define CARRY_PASTE_(a, b) a##_##b
#define CARRY_PASTE(a, b) CARRY_PASTE_(a, b)
#define CARRY_ISA_NAME(name) CARRY_PASTE(name, CARRY_ISA)

#define carry_lstm_chunk CARRY_ISA_NAME(carry_lstm_chunk)
#define carry_gru_chunk CARRY_ISA_NAME(carry_gru_chunk)
#define carry_lstm_delayed_chunk CARRY_ISA_NAME(carry_lstm_delayed_chunk)
#define carry_gru_delayed_chunk CARRY_ISA_NAME(carry_gru_delayed_chunk)
#define carry_dense_chunk CARRY_ISA_NAME(carry_dense_chunk)
#define carry_activation_chunk CARRY_ISA_NAME(carry_activation_chunk)
#define carry_dense_lanes_chunk CARRY_ISA_NAME(carry_dense_lanes_chunk)
#define carry_activate_row CARRY_ISA_NAME(carry_activate_row)
#define carry_lstm_pair_chunk CARRY_ISA_NAME(carry_lstm_pair_chunk)
#define carry_gru_pair_chunk CARRY_ISA_NAME(carry_gru_pair_chunk)
#define carry_lstm_lanes_chunk CARRY_ISA_NAME(carry_lstm_lanes_chunk)
#define carry_gru_lanes_chunk CARRY_ISA_NAME(carry_gru_lanes_chunk)

void carry_lstm_chunk(const carry_packed_layer *layer, const float *x,
                      int x_stride, int n_samples, float *h, float *c,
                      float *y, const float *h_reset, const float *c_reset);

void carry_gru_chunk(const carry_packed_layer *layer, const float *x,
                     int x_stride, int n_samples, float *h, float *y,
                     const float *h_reset);

void carry_lstm_delayed_chunk(const carry_packed_layer *layer, const float *x,
                              int x_stride, int n_samples,
                              const carry_delay_taps *taps,
                              const carry_delay_line *line, float *y);

void carry_gru_delayed_chunk(const carry_packed_layer *layer, const float *x,
                             int x_stride, int n_samples,
                             const carry_delay_taps *taps,
                             const carry_delay_line *line, float *y);

void carry_lstm_pair_chunk(const carry_packed_layer *layer, int x_stride,
                           int n_samples, const carry_lane *a,
                           const carry_lane *b);

void carry_gru_pair_chunk(const carry_packed_layer *layer, int x_stride,
                          int n_samples, const carry_lane *a,
                          const carry_lane *b);

void carry_dense_chunk(const carry_packed_layer *layer, const float *x,
                       int x_stride, int n_samples, float *y);

void carry_dense_lanes_chunk(const carry_packed_layer *layer, const float *x,
                             int x_rows, int n_samples, int n_vectors,
                             float *y);

void carry_activation_chunk(const carry_packed_layer *layer, const float *x,
                            int x_stride, int n_samples, float *y);

void carry_lstm_lanes_chunk(const carry_lanes_layer *layer, const float *x,
                            int n_samples, int n_vectors, float *h, float *c,
                            float *y, const float *h_reset,
                            const float *c_reset);

void carry_gru_lanes_chunk(const carry_lanes_layer *layer, const float *x,
                           int n_samples, int n_vectors, float *h, float *y,
                           const float *h_reset);

/** Whether this set runs recurrent layers of several groups in wide
    (16-lane) tiles: the AVX-512 set. */
#if defined(__AVX512F__)
#  define CARRY_IS_WIDE_SET true
#else
#  define CARRY_IS_WIDE_SET false
#endif

#if defined(__AVX512F__)
/* The AVX-512 set has wide kernels for LSTM layers of two unit groups or
   more and GRU layers of three or more, and runs the AVX2 set's kernels
   for everything else (the same bits; GCC's code for the 8-lane tiles
   built with -mavx512f measured up to 1.4 times slower). */
#  if defined(CARRY_FAST)
#    define CARRY_AVX2_NAME(name) name##_avx2_fast
#  else
#    define CARRY_AVX2_NAME(name) name##_avx2
#  endif
__typeof__(carry_lstm_chunk) CARRY_AVX2_NAME(carry_lstm_chunk);
__typeof__(carry_gru_chunk) CARRY_AVX2_NAME(carry_gru_chunk);
__typeof__(carry_lstm_delayed_chunk) CARRY_AVX2_NAME(carry_lstm_delayed_chunk);
__typeof__(carry_gru_delayed_chunk) CARRY_AVX2_NAME(carry_gru_delayed_chunk);
__typeof__(carry_dense_chunk) CARRY_AVX2_NAME(carry_dense_chunk);
__typeof__(carry_activation_chunk) CARRY_AVX2_NAME(carry_activation_chunk);
__typeof__(carry_dense_lanes_chunk) CARRY_AVX2_NAME(carry_dense_lanes_chunk);
__typeof__(carry_lstm_pair_chunk) CARRY_AVX2_NAME(carry_lstm_pair_chunk);
__typeof__(carry_gru_pair_chunk) CARRY_AVX2_NAME(carry_gru_pair_chunk);
__typeof__(carry_lstm_lanes_chunk) CARRY_AVX2_NAME(carry_lstm_lanes_chunk);
__typeof__(carry_gru_lanes_chunk) CARRY_AVX2_NAME(carry_gru_lanes_chunk);
#endif

/** Applies `act` to the first `n` floats of `x` into `y`, which has room
    for round_lanes(n) (the padding lanes get act of 0). */
void carry_activate_row(carry_activation act, const float *x, int n, float *y);

/* An LSTM cell from its four gate sums (i, f, g, o) and the previous c:
   c' = σ(f) c + σ(i) tanh(g), h' = σ(o) tanh(c'), written once for both
   vector widths. */
#define CARRY_LSTM_CELL(sigmoid, tanh, zi, zf, zg, zo, c, c_new, h_new)    \
  do {                                                                      \
    *(c_new) = sigmoid(zf) * (c) + sigmoid(zi) * tanh(zg);                  \
    *(h_new) = sigmoid(zo) * tanh(*(c_new));                                \
  } while (0)

/** The LSTM cell.  Every kernel that runs LSTM cells (one stream, stereo,
    lockstep batches, either width) goes through CARRY_LSTM_CELL, so that
    they all give the same bits. */
static inline __attribute__((always_inline)) void
carry_lstm_cell(v8f zi, v8f zf, v8f zg, v8f zo, v8f c, v8f *c_new, v8f *h_new)
{
  CARRY_LSTM_CELL(carry_gate_sigmoid, carry_gate_tanh, zi, zf, zg, zo, c,
                  c_new, h_new);
}

/* A GRU cell (reset_after) from its sums z, r, the input part and the
   recurrent part of h, and the previous h (see gru.c), for either width. */
#define CARRY_GRU_CELL(sigmoid, tanh, zz, zr, zh_in, zh_rec, h, h_new)     \
  do {                                                                      \
    const __typeof__(h) n_ = tanh((zh_in) + sigmoid(zr) * (zh_rec));        \
    *(h_new) = n_ + sigmoid(zz) * ((h) - n_);                               \
  } while (0)

/** The GRU cell (every GRU kernel goes through CARRY_GRU_CELL). */
static inline __attribute__((always_inline)) v8f
carry_gru_cell(v8f zz, v8f zr, v8f zh_in, v8f zh_rec, v8f h)
{
  v8f h_new;
  CARRY_GRU_CELL(carry_gate_sigmoid, carry_gate_tanh, zz, zr, zh_in, zh_rec,
                 h, &h_new);
  return h_new;
}

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

#if defined(__AVX512F__)
/** carry_accumulate() in 16-lane vectors: acc[v] += sum over j < n of x[j]
    w[j][16v .. 16v + 16), j in order, each lane the same sum as there. */
static inline __attribute__((always_inline)) void
carry_accumulate_wide(v16f *acc, const int n_vectors, const float *w,
                      int stride, const float *x, int n)
{
  for (int j = 0; j < n; ++j) {
    const v16f xj = w_set1(x[j]);
    const float *row = w + (size_t)j * (size_t)stride;
    for (int v = 0; v < n_vectors; ++v) {
      acc[v] += xj * w_load(row + 16 * v);
    }
  }
}

/** The GRU cell on 16 units (two groups) at once. */
static inline __attribute__((always_inline)) v16f
carry_gru_cell_wide(v16f zz, v16f zr, v16f zh_in, v16f zh_rec, v16f h)
{
  v16f h_new;
  CARRY_GRU_CELL(carry_wide_sigmoid, carry_wide_tanh, zz, zr, zh_in, zh_rec,
                 h, &h_new);
  return h_new;
}

/** The LSTM cell on 16 units (two groups) at once. */
static inline __attribute__((always_inline)) void
carry_lstm_cell_wide(v16f zi, v16f zf, v16f zg, v16f zo, v16f c,
                     v16f *c_new, v16f *h_new)
{
  CARRY_LSTM_CELL(carry_wide_sigmoid, carry_wide_tanh, zi, zf, zg, zo, c,
                  c_new, h_new);
}
#endif

/** The sums of carry_accumulate() for two streams at once (4 vectors
    each, one group of an LSTM or a GRU): each weight vector is loaded once
    for both. */
static inline __attribute__((always_inline)) void
carry_accumulate_pair(v8f *acc_a, v8f *acc_b, const float *w, size_t stride,
                      const float *xa, const float *xb, int n)
{
  for (int j = 0; j < n; ++j) {
    const v8f xaj = v_set1(xa[j]), xbj = v_set1(xb[j]);
    const float *row = w + (size_t)j * stride;
    #pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) {
      const v8f wv = v_load(row + 8 * v);
      acc_a[v] += xaj * wv;
      acc_b[v] += xbj * wv;
    }
  }
}

#if defined(__AVX512F__)
/** How many groups (4, 3 or 2) the next wide pair tile takes when `left`
    groups of a layer are left: as the single-stream tiles, but five as
    two and then three, because two streams' sums of two pairs and an odd
    group do not fit in the 32 registers. */
static inline int carry_wide_pair_groups(int left)
{
  return left == 5 ? 2 : left > 5 ? 4 : left;
}

/** carry_accumulate_pair() in 16-lane vectors, `n_vectors` of them per
    stream. */
static inline __attribute__((always_inline)) void
carry_accumulate_wide_pair(v16f *acc_a, v16f *acc_b, const int n_vectors,
                           const float *w, size_t stride, const float *xa,
                           const float *xb, int n)
{
  for (int j = 0; j < n; ++j) {
    const v16f xaj = w_set1(xa[j]), xbj = w_set1(xb[j]);
    const float *row = w + (size_t)j * stride;
    for (int v = 0; v < n_vectors; ++v) {
      const v16f wv = w_load(row + 16 * v);
      acc_a[v] += xaj * wv;
      acc_b[v] += xbj * wv;
    }
  }
}
#endif

/** After a step of a lane whose new state `y` (Hp) is not finite: the
    lane's reset state instead (h into `y`, and c). */
static inline void carry_recover_lane(const carry_lane *lane, size_t Hp,
                                      float *y, bool is_finite)
{
  if (!is_finite) {
    memcpy(y, lane->h_reset, Hp * sizeof(float));
    if (lane->c) {
      memcpy(lane->c, lane->c_reset, Hp * sizeof(float));
    }
  }
}

/** The groups of 8 units from `g` on of a recurrent layer for two streams
    in step (one, or a wide tile's): the inputs xa, xb, the states ha, hb,
    the lanes (for an LSTM's c), the output rows ya, yb; each stream's
    non-finite check is added to.  Returns how many groups it ran. */
typedef int (*carry_pair_group_fn)(const carry_packed_layer *layer, int g,
                                   const float *xa, const float *xb,
                                   const float *ha, const float *hb,
                                   const carry_lane *a, const carry_lane *b,
                                   float *ya, float *yb, v8f *check_a,
                                   v8f *check_b);

/** A chunk of two streams in step, sample by sample, group by group: the
    loop an LSTM's and a GRU's pair kernels share. */
static inline __attribute__((always_inline)) void
carry_pair_chunk(const carry_packed_layer *layer, int x_stride, int n_samples,
                 const carry_lane *a, const carry_lane *b,
                 carry_pair_group_fn group)
{
  const size_t Hp = (size_t)layer->n_padded;
  const int n_groups = layer->n_padded / 8;
  const float *ha = a->h, *hb = b->h;
  for (size_t t = 0; t < (size_t)n_samples; ++t) {
    const float *xa = a->x + t * (size_t)x_stride;
    const float *xb = b->x + t * (size_t)x_stride;
    float *ya = a->y + t * Hp, *yb = b->y + t * Hp;
    v8f check_a = v_set1(0.0f), check_b = v_set1(0.0f);
    for (int g = 0; g < n_groups;) {
      g += group(layer, g, xa, xb, ha, hb, a, b, ya, yb, &check_a, &check_b);
    }
    carry_recover_lane(a, Hp, ya, !v_any_nan(check_a));
    carry_recover_lane(b, Hp, yb, !v_any_nan(check_b));
    ha = ya;
    hb = yb;
  }
  memcpy(a->h, ha, Hp * sizeof(float));
  memcpy(b->h, hb, Hp * sizeof(float));
}

/** The state `taps` before the sample written to `slot` of a ring of D
    states of n (a multiple of 8) floats: with one tap, that past state
    itself (no arithmetic, so a whole ratio runs each interleaved
    recurrence exactly as at the model's rate); else the taps' weighted
    sum, in `mix`, worked out as the first (heaviest) tap plus the others'
    weighted differences from it.  The weights sum to 1, so that is the
    same sum, but a constant history gives itself back exactly: a silent
    input then settles to the plain model's fixed point instead of
    wandering around it by an ulp or two for ever. */
static inline const float *carry_delayed_state(const carry_delay_taps *taps,
                                               const float *ring, size_t n,
                                               int slot, float *mix)
{
  const float *past[CARRY_MAX_TAPS];
  for (int k = 0; k < taps->n_taps; ++k) {
    const int at = slot - taps->delay[k];
    past[k] = ring + (size_t)(at < 0 ? at + taps->n_slots : at) * n;
  }
  if (taps->n_taps == 1) {
    return past[0];
  }
  for (size_t j = 0; j < n; j += 8) {
    const v8f base = v_load(past[0] + j);
    v8f sum = base;
    for (int k = 1; k < taps->n_taps; ++k) {
      sum += v_set1(taps->weight[k]) * (v_load(past[k] + j) - base);
    }
    v_store(mix + j, sum);
  }
  return mix;
}

/** dst (n, a multiple of 8) = src, in registers: a whole row a sample is
    too short for a call to memcpy to pay. */
static inline void carry_copy_row(float *dst, const float *src, size_t n)
{
  for (size_t j = 0; j < n; j += 8) {
    v_store(dst + j, v_load(src + j));
  }
}

/** Every slot of a ring of D states of n floats becomes `reset`: after a
    non-finite state, no past state may bring the trouble back. */
static inline void carry_refill_line(const carry_delay_taps *taps,
                                     float *ring, size_t n,
                                     const float *reset)
{
  for (int slot = 0; slot < taps->n_slots; ++slot) {
    memcpy(ring + (size_t)slot * n, reset, n * sizeof(float));
  }
}

#endif /* CARRY_KERNELS_H */
