/*
  Carry's trainer: fits an LSTM or GRU model (stacked recurrent layers, a
  dense output, an optional skip connection, optional knobs) to pairs of
  dry and processed recordings, and exports it as a carry_model.

  Not real-time code: everything here allocates, and the matrix products
  run through OpenBLAS (cblas_sgemm), which takes locks and starts threads.
  Threads: one trainer is used by one thread at a time; nothing here has
  global state except OpenBLAS's thread count, which is process-wide (see
  carry_train_settings.n_threads).

  Dimension letters in shape comments: B segments in a batch, T time steps
  in a chunk, N model inputs (audio, then K knobs), I layer inputs, H hidden
  units, G gate rows (4H LSTM, 3H GRU, 1 dense output), P parameters.

  ## The loss

  For a chunk of T steps of B segments, with network outputs ŷ[t, b]
  (after the skip connection) and targets y[t, b], n = T·B:

      pre-emphasis   p(x)[t] = x[t] − 0.85 x[t−1]        H(z) = 1 − 0.85 z⁻¹
      error          e[t, b] = p(ŷ)[t, b] − p(y)[t, b]
      ESR            E = (1/n Σ e²) / (1/n Σ p(y)² + ε)
      DC             D = (1/B Σ_b m_b²) / (1/n Σ y² + ε),  m_b = 1/T Σ_t (ŷ − y)
      loss           L = E + D,   ε = 1e-5

  as in Wright & Välimäki, "Perceptual loss function for neural modelling
  of audio systems" (ICASSP 2020) and Wright, Damskägg, Juvela & Välimäki,
  "Real-time guitar amplifier emulation with deep learning" (Applied
  Sciences 10(3), 2020).  The sample before a chunk, x[−1], is the last
  sample of the previous chunk (of the warm-up, for the first chunk), taken
  as a constant: the gradient does not cross chunk boundaries.

  The validation figures run each validation sequence from zero state to
  its end (all sequences in parallel, one batch): the validation loss is L
  with n the total number of samples and B the number of sequences; the
  validation ESR is plain Σ(ŷ − y)² / Σy² over all of them, without
  pre-emphasis or ε; the pre-emphasised ESR is E.

  ## Training

  Each epoch shuffles the training segments (S samples each, cut from the
  training part of every pair) with the seeded generator and takes them B
  at a time.  A batch starts from zero state, runs W warm-up samples
  forward without loss (Wright et al. 2020), then every T samples computes
  the loss of those T samples, back-propagates through them only
  (truncated BPTT), and takes an Adam step; the state carries on into the
  next T samples, the gradient does not.  After each epoch the validation
  loss decides the best weights, the learning rate (halved after
  lr_patience epochs without improvement) and early stopping (after
  `patience` epochs without improvement).

  ## Determinism

  The same settings, data and seed on the same machine with the same
  OpenBLAS, kernels (OPENBLAS_CORETYPE) and thread count give the same
  weights bit for bit, and a run resumed from a checkpoint reaches the same
  weights as one that was not interrupted.  The result may differ with
  another number of OpenBLAS threads, another OpenBLAS build or kernel set,
  or another CPU (their summation orders differ).
*/

#ifndef CARRY_TRAIN_H
#define CARRY_TRAIN_H

#include "carry.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/** @name The loss */

#define CARRY_TRAIN_PREEMPHASIS 0.85  ///< The coefficient a of 1 − a z⁻¹
#define CARRY_TRAIN_LOSS_EPSILON 1e-5 ///< ε in both denominators

/* ------------------------------------------------------------------------ */
/** @name Architecture */

/** Recurrent layers, then dense(1), with an optional skip connection. */
typedef struct carry_train_arch {
  carry_layer_type type;  ///< CARRY_LAYER_LSTM or CARRY_LAYER_GRU
  int n_units;            ///< H of every recurrent layer, 1..CARRY_MAX_UNITS
  int n_layers;           ///< Stacked recurrent layers, 1..CARRY_MAX_RECURRENT
  bool has_skip;          ///< Output += the audio input
} carry_train_arch;

/** Parses "lstm:32", "gru:16" or "lstm:16x2" (type, units, layers) into
    `arch` (has_skip untouched).  Thread: any. */
carry_status carry_train_parse_arch(const char *text, carry_train_arch *arch,
                                    carry_error *err);

/** Writes "lstm:16x2" (layers shown when more than one).  Thread: any. */
void carry_train_format_arch(const carry_train_arch *arch, char *text,
                             size_t size);

/** The kernels OpenBLAS runs ("Haswell", "SkylakeX", "Prescott" ...). */
const char *carry_train_blas_kernels(void);

/** Whether AIDA-X (its RTNeural model variants) can run a model of this
    shape with `n_knobs` knobs: one LSTM or GRU layer of 8, 12, 16, 20, 32,
    40, 64 or 80 units and no knobs.  Thread: any. */
bool carry_train_is_aidax_size(const carry_train_arch *arch, int n_knobs);

/* ------------------------------------------------------------------------ */
/** @name Settings */

/** Everything that decides the weights a run reaches (with the data), and
    the limits that decide when it stops. */
typedef struct carry_train_settings {
  carry_train_arch arch;
  uint64_t seed;              ///< Initial weights and the shuffles
  double learning_rate;       ///< Adam's initial step size (5e-3)
  double lr_factor;           ///< Plateau: multiply the rate by this (0.5)
  int lr_patience;            ///< ... after this many epochs without a new
                              ///< best (5); 0 keeps the rate fixed
  double lr_min;              ///< Never below this (1e-5)
  double clip_norm;           ///< Clip the gradient's norm to this; 0: off
  int segment_samples;        ///< S: segment length, warm-up included
  int warmup_samples;         ///< W: run without loss at a segment's start
  int tbptt_samples;          ///< T: samples per update (1024)
  int batch_size;             ///< B: segments per batch (16)
  double validation_fraction; ///< The end of each pair kept for validation
                              ///< when no pair is marked validation (0.2)
  int n_threads;              ///< OpenBLAS threads (1); 0: the number of
                              ///< cores.  One is fastest here: the
                              ///< per-step products are too small to
                              ///< share, and threads add overhead
  int max_epochs;             ///< Stop after this many epochs (200)
  double max_minutes;         ///< Stop after this much training; 0: no limit
  int patience;               ///< Stop after this many epochs without a new
                              ///< best validation loss (20); 0: never
} carry_train_settings;

/** The defaults above, for audio at `sample_rate` Hz: 0.5 s segments and a
    warm-up of 1000 samples scaled from 48 kHz.  Thread: any. */
void carry_train_settings_init(carry_train_settings *settings,
                               double sample_rate);

/** Checks the settings' ranges (and that W + T fits in S is not required:
    the last update of a segment may be shorter).  Thread: any. */
carry_status carry_train_settings_check(const carry_train_settings *settings,
                                        carry_error *err);

/* ------------------------------------------------------------------------ */
/** @name Data */

/** Pairs of (dry, target) audio at one sample rate, each with a value for
    every knob, some of them possibly for validation only. */
typedef struct carry_train_data carry_train_data;

/** A data set of `n_knobs` knobs with the given names (non-empty, distinct
    without regard to case).  Thread: any.  Allocates. */
carry_train_data *carry_train_data_create(double sample_rate, int n_knobs,
                                          const char *const *knob_names,
                                          carry_error *err);

/** Frees a data set.  NULL is a no-op. */
void carry_train_data_free(carry_train_data *data);

/** Adds a pair of `n` samples (copied), with `n_knobs` knob values; a
    validation pair is used only to validate.  `dry_name` and `target_name`
    (file names, or NULL) go into the model's metadata.  Refuses
    non-finite samples and knob values.  Allocates. */
carry_status carry_train_data_add(carry_train_data *data, const float *dry,
                                  const float *target, size_t n,
                                  const float *knobs, bool is_validation,
                                  const char *dry_name,
                                  const char *target_name, carry_error *err);

/** Sets the range a knob's values are documented to span (the model's knob
    minimum and maximum).  Without it the range is the least and greatest
    value the pairs give.  Every pair's value must lie within it. */
carry_status carry_train_data_set_knob_range(carry_train_data *data,
                                             int knob, float min, float max,
                                             carry_error *err);

int carry_train_data_n_knobs(const carry_train_data *data);
int carry_train_data_n_pairs(const carry_train_data *data);
double carry_train_data_sample_rate(const carry_train_data *data);

/** The index of the knob called `name` (any case), or -1. */
int carry_train_data_find_knob(const carry_train_data *data,
                               const char *name);

/* ------------------------------------------------------------------------ */
/** @name Manifests

    A manifest lists the pairs in JSON (the README shows the schema):
    {"pairs": [{"dry": F, "target": F, "knobs": {NAME: VALUE, ...}}, ...],
     "validation": [... the same ...],
     "knob_ranges": {NAME: [MIN, MAX], ...}}
    File names are relative to the manifest's directory. */

typedef struct carry_train_manifest_pair {
  char *dry;                        ///< Path, resolved
  char *target;                     ///< Path, resolved
  float knobs[CARRY_MAX_KNOBS];     ///< In the order of `knob_names`
  bool is_validation;
} carry_train_manifest_pair;

typedef struct carry_train_manifest {
  int n_knobs;
  char knob_names[CARRY_MAX_KNOBS][CARRY_NAME_SIZE];
  bool has_range[CARRY_MAX_KNOBS];
  float range_min[CARRY_MAX_KNOBS];
  float range_max[CARRY_MAX_KNOBS];
  int n_pairs;
  carry_train_manifest_pair *pairs;  ///< (n_pairs) training, then validation
} carry_train_manifest;

/** Reads a manifest.  On failure returns NULL with a message naming the
    file and the JSON path ("m.json: pairs[2].knobs: no value for knob
    'tone'; every pair gives every knob").  Allocates. */
carry_train_manifest *carry_train_manifest_load(const char *path,
                                                carry_error *err);

void carry_train_manifest_free(carry_train_manifest *manifest);

/* ------------------------------------------------------------------------ */
/** @name Training */

/** Why training stopped. */
typedef enum {
  CARRY_TRAIN_RUNNING,      ///< Not stopped (yet)
  CARRY_TRAIN_EPOCHS_DONE,  ///< max_epochs reached
  CARRY_TRAIN_EARLY_STOP,   ///< `patience` epochs without a new best
  CARRY_TRAIN_TIME_UP,      ///< max_minutes reached
  CARRY_TRAIN_INTERRUPTED,  ///< The callback asked to stop
} carry_train_stop;

/** What a progress callback is told about. */
typedef enum {
  CARRY_TRAIN_BATCH,       ///< A batch was trained
  CARRY_TRAIN_VALIDATED,   ///< An epoch (or, for epoch 0, the initial
                           ///< weights) was validated
} carry_train_event;

typedef struct carry_train_progress {
  carry_train_event event;
  int epoch;               ///< Epochs completed (0 before the first)
  int max_epochs;
  int batch;               ///< Batches done in the current epoch
  int n_batches;           ///< Batches per epoch
  double train_loss;       ///< Mean loss of the current epoch's updates
  double val_loss;         ///< Latest validation loss
  double val_esr;          ///< Latest plain validation ESR
  double val_esr_pre;      ///< Latest pre-emphasised validation ESR
  double best_val_loss;    ///< The best so far, and its figures:
  double best_val_esr;
  double best_val_esr_pre;
  int best_epoch;
  double initial_val_loss; ///< Of the initial weights (epoch 0)
  double learning_rate;    ///< The current rate
  uint64_t n_updates;      ///< Adam steps so far
  uint64_t n_skipped;      ///< Updates skipped for a non-finite gradient
  double seconds;          ///< Training time, over resumed runs too
  double epoch_seconds;    ///< Time of the latest epoch (this run's part)
  double val_seconds;      ///< Of which its validation
  double epoch_gemm_seconds; ///< Of which inside BLAS
  double val_gemm_seconds; ///< Of which inside BLAS during validation
  uint64_t epoch_samples;  ///< Samples it trained (warm-up included)
  double gemm_seconds;     ///< Of `seconds`, the time inside BLAS
  uint64_t samples_trained;///< Segment samples run (warm-up included)
  carry_train_stop stop;
} carry_train_progress;

/** Called after every batch and every validation; returning false asks
    training to stop (after the current batch). */
typedef bool (*carry_train_callback)(const carry_train_progress *progress,
                                     void *user);

typedef struct carry_trainer carry_trainer;

/** A trainer with fresh weights (drawn from the seed).  Splits the data
    into training segments and validation sequences; `data` must outlive
    the trainer.  Sets OpenBLAS's thread count.  Allocates. */
carry_trainer *carry_trainer_create(const carry_train_settings *settings,
                                    const carry_train_data *data,
                                    carry_error *err);

/** A trainer in the state a checkpoint saved, with the checkpoint's
    settings.  `data` must be the same data the checkpoint was made with
    (checked by a fingerprint).  Messages name the file.  Allocates. */
carry_trainer *carry_trainer_resume(const char *checkpoint_path,
                                    const carry_train_data *data,
                                    carry_error *err);

void carry_trainer_free(carry_trainer *trainer);

const carry_train_settings *carry_trainer_settings(const carry_trainer *t);
const carry_train_progress *carry_trainer_progress(const carry_trainer *t);

/** Changes when training stops (max_epochs, max_minutes, patience), for
    example to go on training after a resumed run had finished.  The other
    settings are fixed at creation.  */
carry_status carry_trainer_set_limits(carry_trainer *trainer, int max_epochs,
                                      double max_minutes, int patience,
                                      carry_error *err);

/** Trains until a limit is reached, patience runs out or the callback
    returns false (checked after each batch).  Validates the initial
    weights first (epoch 0).  After every epoch, writes a checkpoint to
    `checkpoint_path` unless it is NULL.  The reason for stopping is in the
    progress.  Fails on a checkpoint that cannot be written. */
carry_status carry_trainer_run(carry_trainer *trainer,
                               const char *checkpoint_path,
                               carry_train_callback callback, void *user,
                               carry_error *err);

/** Writes the whole state (weights, best weights, Adam's moments, the
    generator, the position in the epoch, the settings and the data's
    fingerprint) so that carry_trainer_resume() continues exactly.  Written
    to PATH.tmp and renamed.  Allocates and writes the file. */
carry_status carry_trainer_save_checkpoint(const carry_trainer *trainer,
                                           const char *path,
                                           carry_error *err);

/** The best weights (or, with `best` false, the current ones) as a
    prepared carry_model named `name`, with the sample rate, the knobs'
    names, ranges and defaults (mid-range), and a "metadata" object with
    the training settings, the data files and the validation figures.
    Allocates. */
carry_model *carry_trainer_export(const carry_trainer *trainer,
                                  const char *name, bool best,
                                  carry_error *err);

/** Runs the trainer's own forward pass (float, OpenBLAS) over `n` samples
    of `dry` with constant `knobs` (K values), from zero state, into
    `out`: the network output with the skip.  The best weights, or the
    current ones.  For tests against Carry's inference.  Allocates. */
carry_status carry_trainer_forward(const carry_trainer *trainer, bool best,
                                   const float *dry, const float *knobs,
                                   size_t n, float *out, carry_error *err);

/** The trainer's parameters (P of them), in Keras order layer by layer:
    for tests that compare runs.  `best` selects the best weights. */
const float *carry_trainer_parameters(const carry_trainer *trainer,
                                      bool best, size_t *n_params);

#ifdef __cplusplus
}
#endif

#endif /* CARRY_TRAIN_H */
