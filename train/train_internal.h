/*
  The trainer's internals: the numerical core (layers, network, loss, Adam)
  in either precision (see real.h), the seeded generator and the error
  helper.  Not installed, not part of the API.

  Buffers are time-major: a chunk of T steps of B segments is (T, B, ·), so
  that one step of the whole batch is a contiguous (B, ·) matrix and a
  whole chunk is one (T·B, ·) matrix for the large products.
*/

#ifndef CARRY_TRAIN_INTERNAL_H
#define CARRY_TRAIN_INTERNAL_H

#include "carry_train.h"
#include "real.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------------ */
/* Instruction sets */

/** Marks an element-wise loop to be compiled twice, for the x86-64
    baseline and with AVX2, the clone picked at load time.  With -std=c11
    nothing is contracted into FMA and no sum is reordered, so both clones
    compute the same bits.  GCC only: clang (the fuzzing build) refuses
    vmath.h's vector calls across the clones' target attributes. */
#if defined(__x86_64__) && defined(__has_attribute) && \
    !defined(TRAIN_DOUBLE) && !defined(__clang__)
#  if __has_attribute(target_clones)
#    define TRAIN_CLONES \
       __attribute__((target_clones("arch=x86-64-v3", "default")))
#  endif
#endif
#ifndef TRAIN_CLONES
#  define TRAIN_CLONES
#endif

/* ------------------------------------------------------------------------ */
/* The seeded generator (splitmix64): one 64-bit state, no global state */

typedef struct train_rng {
  uint64_t state;
} train_rng;

train_rng train_rng_new(uint64_t seed);
uint64_t train_rng_next(train_rng *rng);
/** Uniform in [0, 1) with 53 random bits. */
double train_rng_unit(train_rng *rng);
/** Uniform integer in [0, n), unbiased. */
uint64_t train_rng_below(train_rng *rng, uint64_t n);
/** Fisher–Yates shuffle of `n` indices. */
void train_rng_shuffle(train_rng *rng, int *items, int n);

/* ------------------------------------------------------------------------ */
/* Data (float only) */

/** One pair as added. */
typedef struct train_pair {
  float *dry;                      ///< (n)
  float *target;                   ///< (n)
  size_t n;
  float knobs[CARRY_MAX_KNOBS];    ///< (K)
  bool is_validation;
  char *dry_name;                  ///< Or NULL
  char *target_name;               ///< Or NULL
} train_pair;

struct carry_train_data {
  double sample_rate;
  int n_knobs;                                      ///< K
  char knob_names[CARRY_MAX_KNOBS][CARRY_NAME_SIZE];
  bool has_range[CARRY_MAX_KNOBS];                  ///< Set by the caller
  float range_min[CARRY_MAX_KNOBS];
  float range_max[CARRY_MAX_KNOBS];
  int n_pairs;
  int capacity;
  train_pair *pairs;                                ///< (capacity)
};

/** A stretch of one pair: a training part or a validation sequence. */
typedef struct train_sequence {
  const float *dry;       ///< (n)
  const float *target;    ///< (n)
  size_t n;
  const float *knobs;     ///< (K)
} train_sequence;

/** S samples of a training sequence. */
typedef struct train_segment {
  int sequence;
  size_t start;
} train_segment;

/** The data as training sees it. */
typedef struct train_split {
  int n_train;
  train_sequence *train;      ///< (n_train) training parts of the pairs
  int n_val;
  train_sequence *val;        ///< (n_val) validation sequences
  size_t max_val_length;      ///< The longest validation sequence
  int n_segments;
  train_segment *segments;    ///< (n_segments) every training segment
} train_split;

/** Explicit validation pairs if there are any, else the last
    validation_fraction of each pair; segments of S samples from the start
    of each training part (a shorter remainder is left out). */
carry_status train_split_create(const carry_train_data *data,
                                const carry_train_settings *settings,
                                train_split *split, carry_error *err);
void train_split_free(train_split *split);

/** FNV-1a over everything that decides training: rate, knobs, every
    sample and knob value and which pairs validate. */
uint64_t train_data_fingerprint(const carry_train_data *data);

/** The range of knob k: set by the caller, or spanned by the pairs. */
void train_data_knob_range(const carry_train_data *data, int k, float *min,
                           float *max);

/* ------------------------------------------------------------------------ */
/* The numerical core, one build per precision */

#define train_gemm TRAIN_REAL_NAME(train_gemm)
#define train_lstm_forward TRAIN_REAL_NAME(train_lstm_forward)
#define train_lstm_backward TRAIN_REAL_NAME(train_lstm_backward)
#define train_gru_forward TRAIN_REAL_NAME(train_gru_forward)
#define train_gru_backward TRAIN_REAL_NAME(train_gru_backward)
#define train_dense_forward TRAIN_REAL_NAME(train_dense_forward)
#define train_dense_backward TRAIN_REAL_NAME(train_dense_backward)
#define train_column_sums TRAIN_REAL_NAME(train_column_sums)
#define train_sigmoid TRAIN_REAL_NAME(train_sigmoid)
#define train_tanh TRAIN_REAL_NAME(train_tanh)
#define train_fill_rows TRAIN_REAL_NAME(train_fill_rows)
#define train_add_into TRAIN_REAL_NAME(train_add_into)
#define train_loss_chunk TRAIN_REAL_NAME(train_loss_chunk)
#define train_loss_sums_add TRAIN_REAL_NAME(train_loss_sums_add)
#define train_grad_norm TRAIN_REAL_NAME(train_grad_norm)
#define train_adam_step TRAIN_REAL_NAME(train_adam_step)
#define train_net_create TRAIN_REAL_NAME(train_net_create)
#define train_net_free TRAIN_REAL_NAME(train_net_free)
#define train_net_init TRAIN_REAL_NAME(train_net_init)
#define train_net_reset_state TRAIN_REAL_NAME(train_net_reset_state)
#define train_net_forward TRAIN_REAL_NAME(train_net_forward)
#define train_net_backward TRAIN_REAL_NAME(train_net_backward)
#define train_net_carry_state TRAIN_REAL_NAME(train_net_carry_state)

/** Time spent in BLAS, for the throughput report. */
typedef struct train_profile {
  double gemm_seconds;
  uint64_t n_gemm;
} train_profile;

/** C (M, N) = alpha op(A) op(B) + beta C, row-major, through cblas_?gemm;
    op(X) is X, or its transpose when `trans_X`. */
void train_gemm(bool trans_a, bool trans_b, int M, int N, int K, real alpha,
                const real *A, int lda, const real *B, int ldb, real beta,
                real *C, int ldc, train_profile *profile);

/** sums[k] = Σ_r X[r][k] over `n_rows` rows of `n_cols`. */
void train_column_sums(const real *X, int n_rows, int n_cols, real *sums);

/** Every row of Z (R, G) = `row` (G). */
void train_fill_rows(real *Z, const real *row, size_t n_rows, int G);

/** y[k] += x[k] for k < n. */
void train_add_into(real *y, const real *x, size_t n);

/** x = σ(x) over n values, in place. */
void train_sigmoid(real *x, size_t n);

/** y = tanh(x) over n values; `y` may be `x`. */
void train_tanh(const real *x, real *y, size_t n);

/** One recurrent layer's parameters, gradients and the activations of a
    chunk, as views into the network's allocations.  Parameters are in
    Keras order, the layout of carry_layer_weights. */
typedef struct train_layer {
  carry_layer_type type;  ///< LSTM or GRU
  int n_in;               ///< I
  int n_units;            ///< H
  int n_rows;             ///< G = 4H (i f g o) or 3H (z r h)
  real *kernel;           ///< (I, G)
  real *recurrent;        ///< (H, G)
  real *bias;             ///< (G) LSTM: b_ih + b_hh; GRU: input bias
  real *recurrent_bias;   ///< (G) GRU: inside r ⊙ (U·h + b)
  real *d_kernel;         ///< (I, G) gradients, the same layout
  real *d_recurrent;      ///< (H, G)
  real *d_bias;           ///< (G)
  real *d_recurrent_bias; ///< (G) GRU
  real *gates;            ///< (T, B, G) activated gates; the backward pass
                          ///<   overwrites them with dL/d(pre-activation)
  real *gates_h;          ///< (T, B, G) GRU: U·h + b_h; backward: its dL
  real *tanh_c;           ///< (T, B, H) LSTM: tanh of the cell state
  real *h;                ///< (T + 1, B, H) h[0] carried in, h[t + 1] out
  real *c;                ///< (T + 1, B, H) LSTM cell state, likewise
  real *d_out;            ///< (T, B, H) dL/d(h[1..T]), consumed by backward
  real *d_h;              ///< (B, H) scratch: dL/dh flowing back in time
  real *d_c;              ///< (B, H) scratch: dL/dc flowing back in time
} train_layer;

/** The dense output layer: y = h·w + b. */
typedef struct train_dense {
  int n_in;               ///< H of the last recurrent layer
  real *kernel;           ///< (H, 1)
  real *bias;             ///< (1)
  real *d_kernel;         ///< (H, 1)
  real *d_bias;           ///< (1)
} train_dense;

/** A whole network over chunks of at most T steps of at most B segments. */
typedef struct train_net {
  carry_train_arch arch;
  int n_inputs;           ///< N
  int max_steps;          ///< T
  int max_batch;          ///< B
  int n_layers;           ///< Recurrent layers
  train_layer layers[CARRY_MAX_RECURRENT];
  train_dense head;
  size_t n_params;        ///< P
  real *params;           ///< (P) every parameter, layer by layer
  real *grads;            ///< (P) dL/dparams, the same layout
  real *x;                ///< (T, B, N) the chunk's inputs: audio, knobs
  real *y;                ///< (T, B) the outputs, skip included
  real *d_y;              ///< (T, B) dL/dy, set by the caller
  real *activations;      ///< One allocation behind every chunk buffer
  train_profile profile;
} train_net;

/** Lays out a network; parameters are zero.  NULL without memory. */
train_net *train_net_create(const carry_train_arch *arch, int n_inputs,
                            int max_steps, int max_batch);
void train_net_free(train_net *net);

/** Draws every parameter uniformly from ±1/√H (PyTorch's default; the
    LSTM's bias is the sum of two such draws, as b_ih + b_hh). */
void train_net_init(train_net *net, train_rng *rng);

/** Zero state for a batch of `n_batch` segments. */
void train_net_reset_state(train_net *net, int n_batch);

/** Runs `n_steps` steps of `n_batch` segments from net->x into net->y,
    starting from the state in h[0] (and c[0]), keeping what backward needs. */
void train_net_forward(train_net *net, int n_steps, int n_batch);

/** Back-propagates net->d_y through the chunk just run forward, writing
    net->grads (overwritten, not accumulated).  The state carried in is a
    constant.  Consumes the activations. */
void train_net_backward(train_net *net, int n_steps, int n_batch);

/** Makes the state after step `n_steps` the next chunk's initial state. */
void train_net_carry_state(train_net *net, int n_steps, int n_batch);

/** One recurrent layer over a chunk: x (T, B, I) into h[1..T]. */
void train_lstm_forward(train_layer *layer, const real *x, int n_steps,
                        int n_batch, train_profile *profile);
void train_gru_forward(train_layer *layer, const real *x, int n_steps,
                       int n_batch, train_profile *profile);

/** Back through one recurrent layer: from d_out, into the parameter
    gradients and, unless `d_x` is NULL, d_x (T, B, I) = dL/dx. */
void train_lstm_backward(train_layer *layer, const real *x, int n_steps,
                         int n_batch, real *d_x, train_profile *profile);
void train_gru_backward(train_layer *layer, const real *x, int n_steps,
                        int n_batch, real *d_x, train_profile *profile);

/** y (R) = h (R, H)·w + b over R rows. */
void train_dense_forward(const train_dense *dense, const real *h, int n_rows,
                         real *y, train_profile *profile);

/** From d_y (R): the head's gradients and d_h (R, H) = d_y·wᵀ. */
void train_dense_backward(train_dense *dense, const real *h, const real *d_y,
                          int n_rows, real *d_h, train_profile *profile);

/** The loss of one chunk (see carry_train.h), and dL/dŷ into `d_y` (T, B)
    unless it is NULL.  `prev_y_hat` and `prev_y` (B) are the samples
    before the chunk. */
double train_loss_chunk(const real *y_hat, const real *y,
                        const real *prev_y_hat, const real *prev_y,
                        int n_steps, int n_batch, real *d_y);

/** Sums over whole sequences, for the validation figures. */
typedef struct train_loss_sums {
  double error_pre;    ///< Σ e² with pre-emphasis
  double target_pre;   ///< Σ p(y)²
  double error;        ///< Σ (ŷ − y)²
  double target;       ///< Σ y²
  double n;            ///< Samples
} train_loss_sums;

/** Adds samples [0, n) of one sequence: ŷ and y with stride `stride`
    (so a column of a (T, B) chunk can be read), with the samples before
    in `*prev_y_hat` and `*prev_y` (updated), and its error sum to
    `*error_sum` (for the DC term). */
void train_loss_sums_add(train_loss_sums *sums, const real *y_hat,
                         const real *y, int stride, int n, real *prev_y_hat,
                         real *prev_y, double *error_sum);

/** The Euclidean norm of `n` values. */
double train_grad_norm(const real *grads, size_t n);

/** Adam's settings and step count. */
typedef struct train_adam {
  double beta1;        ///< 0.9
  double beta2;        ///< 0.999
  double epsilon;      ///< 1e-8
} train_adam;

/** One Adam step number `step` (from 1) with rate `lr`, gradients scaled
    by `grad_scale` (for clipping), bias-corrected moments `m` and `v`. */
void train_adam_step(const train_adam *adam, uint64_t step, double lr,
                     real grad_scale, const real *grads, real *params,
                     real *m, real *v, size_t n);

/* ------------------------------------------------------------------------ */
/* The trainer (float only) */

#if !defined(TRAIN_DOUBLE)

/** Where a run stands: everything a checkpoint keeps besides the arrays. */
typedef struct train_position {
  int epoch;                   ///< Epochs completed
  int batch;                   ///< Batches done in the current epoch
  uint64_t n_updates;          ///< Adam steps taken
  uint64_t n_skipped;          ///< Updates skipped (non-finite gradient)
  double lr;                   ///< The current learning rate
  int epochs_since_best;       ///< For early stopping
  int epochs_since_lr_change;  ///< For the plateau schedule
  double best_val_loss;
  double best_val_esr;
  double best_val_esr_pre;
  int best_epoch;
  double initial_val_loss;
  double val_loss;             ///< The latest validation
  double val_esr;
  double val_esr_pre;
  double epoch_loss_sum;       ///< Σ chunk losses of the current epoch
  uint64_t epoch_loss_count;
  double seconds;              ///< Training time over all runs
  double gemm_seconds;         ///< Of which inside BLAS
  double epoch_seconds;        ///< The latest whole epoch
  uint64_t samples_trained;
  bool is_validated;           ///< The initial weights were validated
  train_rng rng;               ///< The generator now
  train_rng epoch_rng;         ///< Before the current epoch's shuffle
} train_position;

struct carry_trainer {
  carry_train_settings settings;
  const carry_train_data *data;
  uint64_t fingerprint;        ///< Of `data`
  int n_threads;               ///< OpenBLAS threads in use
  train_split split;
  train_net *net;              ///< T = tbptt, B = max(batch, validation)
  float *m;                    ///< (P) Adam's first moments
  float *v;                    ///< (P) Adam's second moments
  float *best;                 ///< (P) the best weights so far
  float *target;               ///< (T, B) the chunk's targets
  float *prev_y_hat;           ///< (B) output before the chunk
  float *prev_y;               ///< (B) target before the chunk
  double *error_sums;          ///< (B) validation: Σ (ŷ − y) per sequence
  int *order;                  ///< (n_segments) this epoch's shuffle
  train_sequence *columns;     ///< (B) what each column of a chunk reads
  train_adam adam;
  train_position pos;
  double val_seconds;          ///< The latest validation's time
  double val_gemm_seconds;     ///< Of which inside BLAS
  double epoch_gemm_seconds;   ///< BLAS time of the latest epoch
  uint64_t epoch_samples;      ///< Samples of the latest epoch
  carry_train_progress progress;
  carry_train_stop stop;
};

/** A trainer with zero weights and fresh position for `settings` and
    `data` (checked); carry_trainer_create draws the weights,
    carry_trainer_resume reads them. */
carry_trainer *train_trainer_new(const carry_train_settings *settings,
                                 const carry_train_data *data,
                                 carry_error *err);

/** Redoes the shuffle of the current epoch from pos.epoch_rng (after a
    resume in the middle of an epoch). */
void train_trainer_reshuffle(carry_trainer *trainer);

#endif

#endif /* CARRY_TRAIN_INTERNAL_H */
