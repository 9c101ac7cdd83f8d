/*
  Carry internals shared by the files of dsp/: the model's layout and the
  kernel table.  Not installed, not part of the API.
*/

#ifndef CARRY_INTERNAL_H
#define CARRY_INTERNAL_H

#include "carry.h"

#include <stdarg.h>
#include <stddef.h>

/** Floats per SIMD vector in the packed layout (8 = 256 bits). */
#define CARRY_LANES 8

/** Samples per internal chunk: layers run chunk by chunk, layer-major. */
#define CARRY_CHUNK CARRY_CHUNK_SIZE  // public: carry_stream_memory() uses it

/** Rounds `n` up to a whole number of vectors. */
static inline int carry_round_lanes(int n)
{
  return (n + CARRY_LANES - 1) / CARRY_LANES * CARRY_LANES;
}

/**
  One layer laid out for the vectorised kernels.  Units are taken in groups
  of CARRY_LANES (one vector); a width H is padded to Hp = round_lanes(H)
  with zero weights, so padding lanes of the state stay exactly zero and
  never need masking.  The gate columns of a recurrent layer are
  interleaved by group: an LSTM's run [i f g o] of units 0-7, then
  [i f g o] of units 8-15, and so on (a GRU's [z r h]), so that one
  register tile holds every gate of its units and can finish them at once.
  A recurrent layer's kernel rows are followed directly by its recurrent
  rows, one (I + H, Gp) matrix over the concatenated input [x, h], so that
  a tile runs the input and the recurrent products in one pass.  Arrays are
  64-byte aligned.
*/
typedef struct carry_packed_layer {
  carry_layer_type type;
  carry_activation activation;
  int n_in;         ///< I
  int n_units;      ///< H
  int n_padded;     ///< Hp = round_lanes(H)
  int n_rows;       ///< Gp = 4Hp LSTM, 3Hp GRU, Hp dense
  const float *kernel;     ///< (I, Gp), and for LSTM and GRU (I + H, Gp)
  const float *recurrent;  ///< (H, Gp) = kernel + I * Gp, LSTM and GRU
  const float *bias;       ///< (Gp) LSTM: summed; GRU z, r: both biases
                           ///<   summed, h: input bias only; dense: bias
  const float *bias_h;     ///< (Hp) GRU: recurrent bias of the h block
  const float *h0;         ///< (Hp) initial hidden state
  const float *c0;         ///< (Hp) initial cell state, LSTM
  const float *kernel_t;   ///< (H, round_lanes(I)) dense: one row per output
} carry_packed_layer;

struct carry_model {
  carry_model_spec spec;
  carry_layer_weights layers[CARRY_MAX_LAYERS];  ///< Views into `memory`
  carry_packed_layer packed[CARRY_MAX_LAYERS];   ///< Views into `memory`
  int widest;           ///< Largest Hp of any layer output, and N
  int widest_rows;      ///< Largest Gp of any layer
  size_t n_weights;     ///< Floats in the Keras-order arrays
  float in_gain;        ///< Linear
  float out_gain;       ///< Linear
  bool is_prepared;
  char *metadata;       ///< JSON object text, or NULL
  float *memory;        ///< One allocation: Keras arrays, then packed ones
  size_t memory_bytes;  ///< Its size
};

/** Most taps a delayed state is interpolated from (cubic Lagrange). */
#define CARRY_MAX_TAPS 4

/**
  Where a sample-rate-corrected stream reads each recurrent layer's previous
  state: not 1 sample ago but R (the rate ratio) samples ago, interpolated
  for a fractional R.  The same for every layer of a stream.
*/
typedef struct carry_delay_taps {
  int n_slots;   ///< D: past states a layer keeps, longest delay + 1, so
                 ///< that the slot written never is one read
  int n_taps;    ///< 1 (whole R), 2 (linear) or 4 (cubic Lagrange)
  int delay[CARRY_MAX_TAPS];             ///< Samples ago, 1 .. D - 1; the
                                         ///< heaviest tap first
  float weight[CARRY_MAX_TAPS];          ///< Sum to 1
  double weight_exact[CARRY_MAX_TAPS];   ///< The same, for the reference
} carry_delay_taps;

/** One recurrent layer's past states in a corrected stream: rings of D
    states, the sample at `position` being written next. */
typedef struct carry_delay_line {
  float *h;              ///< (D, Hp) past hidden states
  float *c;              ///< (D, Hp) past cell states; LSTM only
  float *h_mix;          ///< (Hp) scratch: the delayed h, interpolated
  float *c_mix;          ///< (Hp) scratch: the delayed c, interpolated
  const float *h_reset;  ///< (Hp) what a non-finite state gives way to
  const float *c_reset;  ///< (Hp) likewise for c; LSTM only
  int position;          ///< Slot of the chunk's first sample, 0 .. D - 1
} carry_delay_line;

/** One stream's part in a kernel that runs two streams of a model in step
    (stereo): its layer input (T rows of the common stride), its carried
    state, where its output rows go, and its reset state. */
typedef struct carry_lane {
  const float *x;
  float *h;               ///< (Hp) carried from call to call
  float *c;               ///< (Hp) LSTM; NULL for a GRU
  float *y;               ///< (T, Hp)
  const float *h_reset;
  const float *c_reset;   ///< LSTM
} carry_lane;
/** Sums per unit in the lockstep kernels: LSTM i f g o; GRU z, r, the
    input and the recurrent part of h. */
#define CARRY_LANES_SUMS 4

struct carry_lanes_layer;

/** The products of a lockstep step for 16 lanes: the sums of units
    u0 .. u1 - 1 into z (CARRY_LANES_SUMS (u1 - u0), 16), from x and h
    (lane-major, 16 floats apart); see lockstep.c. */
typedef void (*carry_lanes_sums_fn)(const struct carry_lanes_layer *layer,
                                    bool is_gru, int u0, int u1,
                                    const float *x, const float *h, float *z);

/**
  One recurrent layer laid out for the lockstep kernels (lockstep.c), made
  from its carry_packed_layer by batch.c: the same floats, with each unit's
  Q gate columns side by side (LSTM Q = 4: i f g o; GRU Q = 3: z r h), so
  that a tile of a few units reads one run of each row.  The padding units
  up to Hp are kept and run, as the one-stream kernels run them: their
  state decides, as there, whether a lane's state is finite.
*/
typedef struct carry_lanes_layer {
  int n_in;              ///< I
  int n_units;           ///< H: recurrent rows
  int n_padded;          ///< Hp: units run, padding included
  int x_width;           ///< Values per sample of the input x (>= I)
  const float *weights;  ///< (I + H, Q Hp) input rows, then recurrent rows
  const float *bias;     ///< (Q Hp) as carry_packed_layer's bias
  const float *bias_h;   ///< (Hp) GRU: recurrent bias of the h block
  carry_lanes_sums_fn wide_sums;  ///< 16-lane products, or NULL: two
                                  ///< halves of 8 lanes
} carry_lanes_layer;

#if defined(CARRY_HAVE_AVX512)
/** The 16-lane products with AVX-512 vectors (lockstep_wide.c). */
void carry_lanes_sums_avx512(const carry_lanes_layer *layer, bool is_gru,
                             int u0, int u1, const float *x, const float *h,
                             float *z);
#endif

/** The layer kernels of one instruction set.  A chunk is T <= CARRY_CHUNK
    samples; `x` holds the layer's input, T rows of `x_stride` floats, and
    `y` receives its output, T rows of Hp floats.  The state (`h`, `c`) is
    carried from call to call. */
typedef struct carry_kernel_table {
  /// LSTM over a chunk; a state that turns non-finite is replaced by
  /// `h_reset` and `c_reset` (Hp each).
  void (*lstm)(const carry_packed_layer *layer, const float *x, int x_stride,
               int n_samples, float *h, float *c, float *y,
               const float *h_reset, const float *c_reset);
  /// GRU over a chunk; likewise with `h_reset`.
  void (*gru)(const carry_packed_layer *layer, const float *x, int x_stride,
              int n_samples, float *h, float *y, const float *h_reset);
  /// LSTM over a chunk, each step from the state `taps` samples ago in
  /// `line` (which it updates); a non-finite state refills the whole line
  /// with the reset state.
  void (*lstm_delayed)(const carry_packed_layer *layer, const float *x,
                       int x_stride, int n_samples,
                       const carry_delay_taps *taps,
                       const carry_delay_line *line, float *y);
  /// GRU likewise.
  void (*gru_delayed)(const carry_packed_layer *layer, const float *x,
                      int x_stride, int n_samples,
                      const carry_delay_taps *taps,
                      const carry_delay_line *line, float *y);
  /// Dense layer with its activation.
  void (*dense)(const carry_packed_layer *layer, const float *x, int x_stride,
                int n_samples, float *y);
  /// Activation layer.
  void (*activation)(const carry_packed_layer *layer, const float *x,
                     int x_stride, int n_samples, float *y);
  /// Dense layer of one output, no softmax, for W = 8 `n_vectors` streams
  /// in lockstep: x (T, x_rows, W) with x_rows >= round_lanes(n_in) (a
  /// recurrent layer's padded output) to y (T, W), each lane bit for bit
  /// what `dense` gives its stream.
  void (*dense_lanes)(const carry_packed_layer *layer, const float *x,
                      int x_rows, int n_samples, int n_vectors, float *y);
  /// LSTM over a chunk for two streams in step, each giving the bits it
  /// would alone.
  void (*lstm_pair)(const carry_packed_layer *layer, int x_stride,
                    int n_samples, const carry_lane *a, const carry_lane *b);
  /// GRU likewise.
  void (*gru_pair)(const carry_packed_layer *layer, int x_stride,
                   int n_samples, const carry_lane *a, const carry_lane *b);
  /// LSTM over a chunk for W = 8 `n_vectors` streams in lockstep: x
  /// (T, x_width, W), the state h, c (Hp, W), y (T, Hp, W), each lane bit
  /// for bit what `lstm` gives its stream; a lane whose state turns
  /// non-finite takes its column of `h_reset`, `c_reset` (Hp, W).
  void (*lstm_lanes)(const carry_lanes_layer *layer, const float *x,
                     int n_samples, int n_vectors, float *h, float *c,
                     float *y, const float *h_reset, const float *c_reset);
  /// GRU likewise.
  void (*gru_lanes)(const carry_lanes_layer *layer, const float *x,
                    int n_samples, int n_vectors, float *h, float *y,
                    const float *h_reset);
} carry_kernel_table;

extern const carry_kernel_table carry_kernels_portable;
extern const carry_kernel_table carry_kernels_portable_fast;
#if defined(CARRY_HAVE_AVX2)
extern const carry_kernel_table carry_kernels_avx2;
extern const carry_kernel_table carry_kernels_avx2_fast;
#endif
#if defined(CARRY_HAVE_AVX512)
extern const carry_kernel_table carry_kernels_avx512;
extern const carry_kernel_table carry_kernels_avx512_fast;
#endif

/** The kernels CARRY_KERNELS_AUTO stands for on this CPU (others as they
    are). */
carry_kernels carry_kernels_resolve(carry_kernels kernels);

/** The table of a vectorised kernel set at a quality; NULL for the
    reference kernels. */
const carry_kernel_table *carry_kernel_table_of(carry_kernels kernels,
                                                carry_quality quality);

/** The state carry_stream_reset() returns recurrent layer `l` of a plain
    (not corrected) stream to: h (Hp) and, for an LSTM, c (Hp; else
    NULL). */
void carry_stream_reset_state(const carry_stream *stream, int l,
                              const float **h, const float **c);

/** The naive reference implementation (reference.c): one sample at a time,
    the Keras-order weights, sums and state in double, libm activations.
    `state` holds h and c of every recurrent layer, `scratch` the layer
    inputs and gates; their sizes in doubles come from the two functions. */
size_t carry_reference_state_size(const carry_model *model);
size_t carry_reference_scratch_size(const carry_model *model);
void carry_reference_reset(const carry_model *model, double *state);

/** One step of every layer for the N inputs `x`; returns the network
    output before skip and gains.  A layer whose state turns non-finite
    takes its part of `reset_state` (laid out as `state`). */
double carry_reference_step(const carry_model *model, const float *x,
                            double *state, const double *reset_state,
                            double *scratch);

/** The same step for a sample-rate-corrected stream: every recurrent
    layer starts from its state interpolated `taps` samples ago.
    `history` holds, per recurrent layer, D slots of h then c (2H each, c
    unused for a GRU); slot `write_slot` receives this sample's state.  A
    layer whose new state is not finite has every slot refilled with slot
    `reset_slot` of its part of `reset_history` (laid out as `history`).
    `scratch` is carry_reference_scratch_size() doubles.  The history
    starts with the model's initial state in every slot. */
size_t carry_reference_history_size(const carry_model *model,
                                    const carry_delay_taps *taps);
void carry_reference_reset_history(const carry_model *model,
                                   const carry_delay_taps *taps,
                                   double *history);
double carry_reference_step_delayed(const carry_model *model, const float *x,
                                    const carry_delay_taps *taps,
                                    int write_slot, double *history,
                                    const double *reset_history,
                                    int reset_slot, double *scratch);

#endif /* CARRY_INTERNAL_H */
