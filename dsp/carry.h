/*
  Carry: a real-time-safe streaming recurrent network core for audio.

  A model is a stack of layers (LSTM, GRU, dense, activation) with N inputs
  (the audio sample followed by N - 1 conditioning knobs) and one audio
  output.  A stream is one channel's running instance of a model: it owns
  the carried state and every scratch buffer, so processing never allocates
  and its output does not depend on how the signal is cut into blocks.

  Threads: "any" means any thread, with the usual rule that one object is
  used by one thread at a time.  "audio" means the function is real-time
  safe: it neither allocates, frees, locks, waits nor makes system calls.
  Functions marked "allocates" belong on a worker or setup thread.

  Dimension letters used in shape comments throughout: T samples in a block,
  N model inputs, I layer inputs, H hidden units or layer outputs, G gate
  rows (4H for an LSTM, 3H for a GRU, H for a dense layer).
*/

#ifndef CARRY_H
#define CARRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Carry is linked statically into the plugin and the tools; nothing of it
   is exported from the plugin's binary but lv2_descriptor.  The one shared
   build, libcarry_ab.so (tools/bench_ab.c), defines CARRY_API to export
   the API. */
#ifndef CARRY_API
#  define CARRY_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/** @name Limits */

#define CARRY_MAX_UNITS 1024    ///< Widest layer (hidden units or outputs)
#define CARRY_MAX_RECURRENT 8   ///< Most stacked recurrent layers
#define CARRY_MAX_LAYERS 16     ///< Most layers of any type
#define CARRY_MAX_INPUTS 16     ///< Most model inputs (audio plus knobs)
#define CARRY_MAX_KNOBS (CARRY_MAX_INPUTS - 1)
#define CARRY_MESSAGE_SIZE 512  ///< Bytes in an error message, with its NUL
#define CARRY_NAME_SIZE 128     ///< Bytes in a model or knob name, with NUL

/* ------------------------------------------------------------------------ */
/** @name Errors */

/** What went wrong.  Every failing call also writes a one-line message. */
typedef enum {
  CARRY_SUCCESS,          ///< No error
  CARRY_ERR_BAD_ARG,      ///< A caller passed an invalid argument
  CARRY_ERR_NO_MEMORY,    ///< An allocation failed
  CARRY_ERR_IO,           ///< A file is missing, unreadable or unwritable
  CARRY_ERR_SYNTAX,       ///< A file is not well-formed JSON
  CARRY_ERR_FORMAT,       ///< Well-formed, but a key or type is wrong
  CARRY_ERR_SHAPE,        ///< An array's length disagrees with the sizes
  CARRY_ERR_VALUE,        ///< A number is not finite or out of range
  CARRY_ERR_UNSUPPORTED,  ///< A layer type or feature Carry does not run
  CARRY_ERR_LIMIT,        ///< Sizes beyond Carry's limits
} carry_status;

/** A status and the message that explains it.
    The message names the file, the place in it (a JSON path such as
    `layers[1].weights[0][3]`) and what was expected versus found. */
typedef struct carry_error {
  carry_status status;               ///< CARRY_SUCCESS or what failed
  char message[CARRY_MESSAGE_SIZE];  ///< Empty on success
} carry_error;

/** A short English description of a status.  Thread: any. */
CARRY_API const char *carry_strerror(carry_status status);

/** The length of the longest prefix of `text`, at most `max_bytes` long,
    that ends between UTF-8 characters: where to cut a message so that it
    stays well formed.  Thread: any, real-time safe. */
CARRY_API size_t carry_utf8_prefix(const char *text, size_t max_bytes);

/** Writes a formatted message into `err` (if not NULL), cut between UTF-8
    characters to fit, and returns `status`: how the core, and libraries
    built on it (the trainer), report errors.  Thread: any, not real-time
    (formats with vsnprintf). */
CARRY_API carry_status carry_fail(carry_error *err, carry_status status,
                                  const char *format, ...)
  __attribute__((format(printf, 3, 4)));

/** Clears `err` (if not NULL) and returns CARRY_SUCCESS. */
CARRY_API carry_status carry_succeed(carry_error *err);

/** Writes `size` bytes to PATH.tmp, flushes them to disk and renames the
    file over `path`, so that a failed write never leaves half a file where
    a whole one was.  Returns 0 or an errno value.  Thread: not audio. */
CARRY_API int carry_write_file_atomically(const char *path, const void *data,
                                          size_t size);

/* ------------------------------------------------------------------------ */
/** @name Model description */

/** Kinds of layer. */
typedef enum {
  CARRY_LAYER_DENSE,       ///< y = act(x·W + b)
  CARRY_LAYER_LSTM,        ///< Gates i, f, g, o as in Keras and PyTorch
  CARRY_LAYER_GRU,         ///< Gates z, r, h; Keras reset_after=True
  CARRY_LAYER_ACTIVATION,  ///< y = act(x), no weights
} carry_layer_type;

/** Element-wise (or, for softmax, per-sample) activations. */
typedef enum {
  CARRY_ACT_LINEAR,
  CARRY_ACT_TANH,
  CARRY_ACT_RELU,
  CARRY_ACT_SIGMOID,
  CARRY_ACT_ELU,     ///< x > 0 ? x : exp(x) - 1
  CARRY_ACT_SOFTMAX, ///< Over the layer's outputs of one sample
} carry_activation;

/** The shape of one layer. */
typedef struct carry_layer_spec {
  carry_layer_type type;
  int n_units;                  ///< H; for an activation layer, ignored
  carry_activation activation;  ///< Dense and activation layers only
  bool omits_bias;              ///< Dense only: the layer has no bias
} carry_layer_spec;

/** A conditioning input, as the user sees it. */
typedef struct carry_knob {
  char name[CARRY_NAME_SIZE];  ///< Empty means "knob 1", "knob 2", ...
  float min;                   ///< Lowest value the model was trained on
  float max;                   ///< Highest value the model was trained on
  float value;                 ///< Default, within [min, max]
} carry_knob;

/** The file formats Carry reads. */
typedef enum {
  CARRY_FORMAT_NONE,     ///< Made in code
  CARRY_FORMAT_KERAS,    ///< RTNeural / AIDA-X Keras JSON
  CARRY_FORMAT_PYTORCH,  ///< GuitarML / Automated-GuitarAmpModelling JSON
  CARRY_FORMAT_NAM,      ///< Neural Amp Modeler .nam (LSTM)
} carry_format;

/** The format's name for people ("Neural Amp Modeler .nam").
    Thread: any. */
CARRY_API const char *carry_format_name(carry_format format);

/** The output level normalisation aims at, in dB (as NAM does). */
#define CARRY_NORMALIZED_LOUDNESS_DB (-18.0f)

/** Everything about a model but its weights. */
typedef struct carry_model_spec {
  int n_inputs;                              ///< N: 1 + number of knobs
  int n_layers;                              ///< Layers used in `layers`
  carry_layer_spec layers[CARRY_MAX_LAYERS]; ///< First to last
  bool has_skip;         ///< Output += the audio input (after in_gain)
  float in_gain_db;      ///< Applied to the audio before the network
  float out_gain_db;     ///< Applied to the output after the skip
  double sample_rate;    ///< Hz the model was made for; 0 if unknown
  char name[CARRY_NAME_SIZE];            ///< Display name
  carry_knob knobs[CARRY_MAX_KNOBS];     ///< Inputs 1 .. N - 1
  carry_format format;   ///< Where it came from
  bool has_loudness;     ///< Whether loudness_db is known
  bool is_loudness_measured;  ///< Measured by Carry, not read from the file
  float loudness_db;     ///< The output's loudness, dB (NAM's metadata
                         ///< figure, or Carry's measurement)
} carry_model_spec;

/** Fills `spec` with the defaults: one input, no layers, unity gains,
    unknown sample rate, knobs ranging over [0, 1] with default 0.5.
    Thread: any. */
CARRY_API void carry_model_spec_init(carry_model_spec *spec);

/* ------------------------------------------------------------------------ */
/** @name Models */

/** A network with its weights.  Immutable once prepared, so any number of
    streams (on any threads) may share it. */
typedef struct carry_model carry_model;

/** One layer's weights, in Keras order, as writable views into the model.
    Pointers are NULL where a layer type has no such array. */
typedef struct carry_layer_weights {
  carry_layer_type type;
  carry_activation activation;
  int n_in;                ///< I
  int n_units;             ///< H
  int n_rows;              ///< G: 4H LSTM, 3H GRU, H dense, 0 activation
  float *kernel;           ///< (I, G) input to gate rows
  float *recurrent;        ///< (H, G) hidden to gate rows; LSTM and GRU
  float *bias;             ///< (G) LSTM: b_ih + b_hh; GRU: input bias
  float *recurrent_bias;   ///< (G) GRU only: the bias inside r ⊙ (U·h + b)
  float *h0;               ///< (H) initial hidden state; LSTM and GRU
  float *c0;               ///< (H) initial cell state; LSTM only
} carry_layer_weights;

/** Creates a model of the given shape with all weights and initial states
    zero.  Checks the limits and the shape (the last layer must have one
    output).  Returns NULL and fills `err` (if not NULL) on failure.
    Thread: worker.  Allocates (once, for every weight). */
CARRY_API carry_model *carry_model_create(const carry_model_spec *spec,
                                          carry_error *err);

/** Frees a model.  NULL is a no-op.  Every stream of it must be freed
    first.  Thread: worker.  Frees. */
CARRY_API void carry_model_free(carry_model *model);

/** The model's shape and metadata.  Thread: any. */
CARRY_API const carry_model_spec *carry_model_get_spec(const carry_model *model);

/** Writable views of layer `index`'s weights; after writing, call
    carry_model_prepare() again.  Thread: worker. */
CARRY_API carry_layer_weights carry_model_layer(carry_model *model, int index);

/** Read-only views of layer `index`'s weights.  Thread: any. */
CARRY_API carry_layer_weights carry_model_layer_const(const carry_model *model,
                                                      int index);

/** Checks that every weight and initial state is finite and lays the
    weights out for the kernels.  Streams can only be made from a prepared
    model; changing weights afterwards needs another call, with no stream of
    the model alive.  Thread: worker.  No allocation. */
CARRY_API carry_status carry_model_prepare(carry_model *model,
                                           carry_error *err);

/** Updates the display name, sample rate, gains, skip, knobs, format and
    loudness from `spec`; the layers and inputs must be unchanged.
    Thread: worker. */
CARRY_API carry_status carry_model_set_info(carry_model *model,
                                            const carry_model_spec *spec,
                                            carry_error *err);

/** The file's free-form metadata object as JSON text ("{...}"), kept so
    that writing the model back loses nothing; NULL if there was none. */
CARRY_API const char *carry_model_get_metadata(const carry_model *model);

/** Replaces the metadata text (copied; NULL clears it).  Thread: worker.
    Allocates. */
CARRY_API carry_status carry_model_set_metadata(carry_model *model,
                                                const char *json_object,
                                                carry_error *err);

/** Measures the output loudness on Carry's reference signal (one second of
    guitar-like material at the model's rate, a plucked note, a chord and
    a sweep, at -18 dBFS RMS, knobs at their defaults, after settling) as
    the RMS level of the output in dBFS, and records it in the spec
    (is_loudness_measured).  A model far too large for real time gets only
    the start of the signal (at least 50 ms), so that this stays quick.
    Does nothing if the model already has a loudness.
    Thread: worker.  Allocates (a stream for the measurement). */
CARRY_API carry_status carry_model_measure_loudness(carry_model *model,
                                                    carry_error *err);

/** The gain in dB that brings the model's output to
    CARRY_NORMALIZED_LOUDNESS_DB: 0 if its loudness is unknown.
    Thread: any. */
CARRY_API float carry_model_normalize_gain_db(const carry_model *model);

/** Multiply-adds the network does per sample.  Thread: any. */
CARRY_API size_t carry_model_macs(const carry_model *model);

/** The number of weights (kernels, recurrent matrices and biases).
    Thread: any. */
CARRY_API size_t carry_model_n_weights(const carry_model *model);

/** Bytes the model holds while loaded: its record, every weight (in Keras
    order and packed for the kernels, one allocation) and its metadata
    text.  Shared by all its streams.  Thread: any.  No allocation. */
CARRY_API size_t carry_model_memory(const carry_model *model);

/** The index of the knob called `name` (compared without case), or -1.
    Thread: any. */
CARRY_API int carry_model_find_knob(const carry_model *model, const char *name);

/* ------------------------------------------------------------------------ */
/** @name Model files */

/** Loads a model from a file.  The format is told from the content.
    Validates everything: shapes against the declared sizes, finite numbers,
    limits, supported layer types.  Returns a prepared model, or NULL with a
    message naming the file and the JSON path.  A path too long to leave
    room for the rest of the message is shortened to its end ("...dir/x").
    Thread: worker.  Allocates and reads the file. */
CARRY_API carry_model *carry_model_load(const char *path, carry_error *err);

/** The same, with messages naming the file as `name` (for example its base
    name, where the whole path would crowd out the rest).
    Thread: worker.  Allocates and reads the file. */
CARRY_API carry_model *carry_model_load_as(const char *path, const char *name,
                                           carry_error *err);

/** Loads a model from JSON text of `size` bytes; `name` stands for the file
    in messages.  Thread: worker.  Allocates. */
CARRY_API carry_model *carry_model_load_string(const char *text, size_t size,
                                               const char *name,
                                               carry_error *err);

/** Writes a model as RTNeural/AIDA-X Keras JSON, with Carry's extras
    (knobs, initial state) in a "carry" object.  Numbers are written in the
    shortest form that reads back to the same float, so a saved model
    reloads bit for bit.  Thread: worker.  Allocates and writes the file. */
CARRY_API carry_status carry_model_save(const carry_model *model,
                                        const char *path, carry_error *err);

/** The same JSON as a NUL-terminated string to release with free().
    Thread: worker.  Allocates. */
CARRY_API char *carry_model_to_json(const carry_model *model, carry_error *err);

/* ------------------------------------------------------------------------ */
/** @name Streams */

/** One channel running a model. */
typedef struct carry_stream carry_stream;

/** Which implementation of the layer kernels a stream uses. */
typedef enum {
  CARRY_KERNELS_AUTO,       ///< The fastest this CPU runs
  CARRY_KERNELS_REFERENCE,  ///< Naive loops in double, libm activations
  CARRY_KERNELS_PORTABLE,   ///< Vectorised for the baseline instruction set
  CARRY_KERNELS_AVX2,       ///< Vectorised with AVX2 and FMA (x86-64)
  CARRY_KERNELS_AVX512,     ///< AVX2's, with the recurrent layers' sums
                            ///< and gates 16 lanes wide (AVX-512F); the
                            ///< same bits as AVX2
} carry_kernels;

/** Whether this CPU can run the given kernels.  Thread: any. */
CARRY_API bool carry_kernels_available(carry_kernels kernels);

/** A short name ("avx512", "avx2", "portable", "reference").  Thread:
    any. */
CARRY_API const char *carry_kernels_name(carry_kernels kernels);

/** Creates a stream of a prepared model that processes at most `max_block`
    samples at a time internally (longer calls are split).  Its state
    starts at the model's initial state.  The model must outlive it.
    Thread: worker.  Allocates (once, for all state and scratch). */
CARRY_API carry_stream *carry_stream_create(const carry_model *model,
                                            uint32_t max_block,
                                            carry_error *err);

/** The same, with a choice of kernels (for tests and benchmarks). */
CARRY_API carry_stream *carry_stream_create_with(const carry_model *model,
                                                 uint32_t max_block,
                                                 carry_kernels kernels,
                                                 carry_error *err);

/** The highest rate ratio a corrected stream accepts. */
#define CARRY_MAX_RATE_RATIO 16.0

/** How a corrected stream reads its delayed state when the rate ratio is
    not a whole number. */
typedef enum {
  CARRY_INTERP_CUBIC,   ///< Third-order Lagrange over four past states
                        ///< (the paper's CIDL)
  CARRY_INTERP_LINEAR,  ///< Between floor(R) and ceil(R) samples ago
                        ///< (LIDL): the default, as accurate as cubic on
                        ///< Carry's trained models and, unlike it, never
                        ///< amplifying an alternating state for 1 < R < 2
} carry_interpolation;

/** Creates a sample-rate-corrected stream: for a host running at
    `rate_ratio` (R, host rate / model rate, 1 to CARRY_MAX_RATE_RATIO)
    times the model's rate, each recurrent layer steps from its state R
    samples ago rather than 1 (h_t, c_t = cell(x_t, h_{t-R}, c_{t-R})),
    interpolating between past states for a fractional R, so that the
    model's dynamics keep their time scale in seconds: "sample rate
    independent recurrent neural networks" (Carson et al., DAFx 2024).  No
    resampling and no added latency.  A ratio within 1e-9 of a whole number
    is taken as that number; R = 1 gives the plain stream, bit for bit.
    Below 1 it fails with CARRY_ERR_BAD_ARG, over the maximum with
    CARRY_ERR_LIMIT.  Reset, settle (which counts host-rate samples),
    process and its guarantees (block-size invariance, recovery from
    non-finite states, which refill the whole history) are those of a plain
    stream.  Thread: worker.  Allocates (once, for a history of h and c
    per recurrent layer: R + 1 states for a whole R, else at most
    floor(R) + 3, or 5 below R = 2). */
CARRY_API carry_stream *carry_stream_create_corrected(const carry_model *model,
                                                      uint32_t max_block,
                                                      double rate_ratio,
                                                      carry_error *err);

/** The same, with a choice of kernels and interpolation (for tests and
    benchmarks). */
CARRY_API carry_stream *carry_stream_create_corrected_with(
  const carry_model *model, uint32_t max_block, double rate_ratio,
  carry_kernels kernels, carry_interpolation interpolation, carry_error *err);

/** The stream's rate ratio R: 1 for a plain stream.  Thread: any. */
CARRY_API double carry_stream_rate_ratio(const carry_stream *stream);

/** What one stream costs in memory, in bytes, besides its model's. */
typedef struct carry_memory {
  size_t state;    ///< The carried h and c, and the copy reset() restores
  size_t scratch;  ///< The stream's record and its buffers for one chunk
                   ///< (at most CARRY_CHUNK_SIZE samples, whatever the
                   ///< maximum block, so this does not grow past it)
} carry_memory;

/** Samples a stream works through at a time: longer calls are cut into
    chunks of this many, so that its scratch does not grow with the
    host's block length. */
#define CARRY_CHUNK_SIZE 32

/** What carry_stream_create_with(model, max_block, kernels, ...) allocates
    (a plain stream; a corrected one keeps a history of states besides).
    Bytes asked of malloc, without its own bookkeeping.  Thread: any.  No
    allocation. */
CARRY_API carry_memory carry_stream_memory(const carry_model *model,
                                           uint32_t max_block,
                                           carry_kernels kernels);

/** Frees a stream.  NULL is a no-op.  Thread: worker.  Frees. */
CARRY_API void carry_stream_free(carry_stream *stream);

/** The kernels the stream runs (never AUTO).  Thread: any. */
CARRY_API carry_kernels carry_stream_kernels(const carry_stream *stream);

/** The model the stream runs.  Thread: any. */
CARRY_API const carry_model *carry_stream_model(const carry_stream *stream);

/** How the gate activations (sigmoid, tanh) of the recurrent layers are
    worked out. */
typedef enum {
  CARRY_QUALITY_EXACT,  ///< Within a float step or two of the true values
  CARRY_QUALITY_FAST,   ///< Cheaper approximations: see README for their
                        ///< measured error (outputs within 1e-4 of exact)
} carry_quality;

/** "exact" or "fast".  Thread: any. */
CARRY_API const char *carry_quality_name(carry_quality quality);

/** Switches the stream's activations; the state carries on, so a switch
    while playing is smooth.  The reference kernels are always exact.
    Thread: audio (no allocation, lock or system call). */
CARRY_API void carry_stream_set_quality(carry_stream *stream,
                                        carry_quality quality);

/** The stream's quality (EXACT until set).  Thread: any. */
CARRY_API carry_quality carry_stream_quality(const carry_stream *stream);

/** Returns the state to the model's initial state, or to the settled state
    after carry_stream_settle().  Thread: audio. */
CARRY_API void carry_stream_reset(carry_stream *stream);

/** Runs silence through the stream, with the given knobs (NULL for the
    defaults), until its output settles (stays within 1e-7 for a block of
    256 samples) or `max_samples` have run, and makes the state reached the
    one reset() returns to.  A model started from zero state gives a
    transient; this runs it off before any audio is heard.  Deterministic:
    the same model and knobs settle to the same state.  Returns the number
    of samples run.  Thread: worker (it runs the model for a while). */
/** How long the plugin and `carry process` let a model settle: 2 s at
    48 kHz.  Both use it, so that they give the same output. */
#define CARRY_SETTLE_SAMPLES 96000u

CARRY_API uint32_t carry_stream_settle(carry_stream *stream,
                                       const float *knobs,
                                       uint32_t max_samples);

/** Runs `n` samples from `in` to `out` (which may be the same buffer).
    `knobs` holds the N - 1 conditioning values for this whole call, or is
    NULL for the model's defaults.  Any `n` is allowed.  The output is bit
    for bit the same however a signal is split into calls, given the same
    knob values.  A NaN or infinite input sample is read as 0, and a state
    that becomes non-finite is returned to the reset state (the initial or
    the settled state), so bad input never poisons the stream for good.  Denormals are flushed during the
    call.  Thread: audio.  No allocation, locks or system calls. */
CARRY_API void carry_stream_process(carry_stream *stream, const float *in,
                                    const float *knobs, float *out,
                                    uint32_t n);

/** Runs two streams of the same model (the channels of a stereo effect) in
    step: `in_a` through `a` into `out_a`, `in_b` through `b` into `out_b`,
    both with `knobs`.  Each output is bit for bit what
    carry_stream_process() would give for that stream alone, but each
    weight is read once for both, so the pair costs much less than two
    calls.  Streams of different models, kernels or qualities, or
    sample-rate-corrected ones, are simply run one after the other.
    `out_a` may be `in_a` and `out_b` `in_b`, but the two channels' buffers
    must not overlap.  Thread: audio.  No allocation, locks or system
    calls. */
CARRY_API void carry_stream_process_pair(carry_stream *a, carry_stream *b,
                                         const float *in_a,
                                         const float *in_b,
                                         const float *knobs, float *out_a,
                                         float *out_b, uint32_t n);

/* ------------------------------------------------------------------------ */
/** @name Lockstep batches

    Several streams of one model run side by side, one in each lane of a
    batch, so that the recurrent layers' step is a matrix-matrix product:
    for offline work on many signals (`carry process` on a batch of
    files).  Each lane's output is bit for bit what a plain stream of the
    same model, kernels and quality gives its signal from the same state
    (a stream made with carry_stream_create_with, not a corrected one).
    Every lane takes the same knob values. */

#define CARRY_MAX_LANES 16  ///< Most lanes in a batch

/** Up to CARRY_MAX_LANES streams of a model in lockstep. */
typedef struct carry_batch carry_batch;

/** Creates a batch of `n_lanes` (1 .. CARRY_MAX_LANES) lanes of `model`,
    each at the model's initial state, with the kernels asked for
    (CARRY_KERNELS_AUTO picks the best; the reference kernels are not
    supported) and exact quality.  8 or 16 lanes use the vectors fully.
    The model must outlive the batch.  Returns NULL and fills `err` on
    failure.  Thread: worker.  Allocates (once: buffers and a copy of the
    recurrent weights laid out for the lanes). */
CARRY_API carry_batch *carry_batch_create(const carry_model *model,
                                          int n_lanes, carry_kernels kernels,
                                          carry_error *err);

/** Frees a batch.  NULL is a no-op.  Thread: worker.  Frees. */
CARRY_API void carry_batch_free(carry_batch *batch);

/** The number of lanes.  Thread: any. */
CARRY_API int carry_batch_n_lanes(const carry_batch *batch);

/** The kernels the batch runs (never AUTO).  Thread: any. */
CARRY_API carry_kernels carry_batch_kernels(const carry_batch *batch);

/** Switches every lane's activations, as carry_stream_set_quality.
    Thread: any (no allocation). */
CARRY_API void carry_batch_set_quality(carry_batch *batch,
                                       carry_quality quality);

/** The batch's quality (EXACT until set).  Thread: any. */
CARRY_API carry_quality carry_batch_quality(const carry_batch *batch);

/** Starts lane `lane` afresh: its state, and the state it returns to when
    it turns non-finite, become those `from` returns to on
    carry_stream_reset() (its initial state, or its settled one after
    carry_stream_settle()), or the model's initial state if `from` is
    NULL.  `from` must be a plain stream of the batch's model.  Since the
    same model and knobs settle to the same state, one settled stream can
    start every file of a batch.  Thread: any.  No allocation. */
CARRY_API carry_status carry_batch_reset_lane(carry_batch *batch, int lane,
                                              const carry_stream *from,
                                              carry_error *err);

/** Runs `n` samples of every lane: `in[s]` to `out[s]` (n floats each;
    they may be the same buffer) for s < n_lanes.  A lane whose `in[s]` is
    NULL is idle: nothing is written to `out[s]` (which may be NULL too),
    and its state is undefined until carry_batch_reset_lane().  `knobs` as
    for carry_stream_process, for every lane.  Like a stream's, the output
    does not depend on how calls are cut, non-finite input reads as 0, a
    lane whose state turns non-finite returns to its reset state, and
    denormals are flushed during the call.  Thread: any.  No allocation,
    locks or system calls. */
CARRY_API void carry_batch_process(carry_batch *batch,
                                   const float *const *in,
                                   const float *knobs, float *const *out,
                                   uint32_t n);

/* ------------------------------------------------------------------------ */
/** @name Floating-point mode */

/** Flushes denormal numbers to zero on the calling thread (x86: FTZ and DAZ;
    AArch64: FZ) and returns the previous mode.  carry_stream_process does
    this itself; a plugin calls it around its own audio work.
    Thread: audio. */
CARRY_API uint64_t carry_flush_denormals(void);

/** Restores a mode returned by carry_flush_denormals().  Thread: audio. */
CARRY_API void carry_restore_fp_mode(uint64_t mode);

/* ------------------------------------------------------------------------ */
/** @name Self-tests

    AIDA-X exports put a stimulus ("input_batch") and the network's output
    for it ("output_batch") beside a Keras model: the output from the
    model's initial state, without the skip connection and without the
    input and output gains.  Running the stimulus and comparing checks that
    Carry runs the file as its trainer did (`carry model verify`). */

/** A model file's self-test. */
typedef struct carry_self_test {
  int n_inputs;       ///< N: numbers per time step in `input`
  size_t n_samples;   ///< T: time steps; 0 when the file has no self-test
  float *input;       ///< (T, N) the stimulus: audio, then the knobs
  float *expected;    ///< (T) the network output expected for it
} carry_self_test;

/** Reads the self-test of the model file at `path` for a model of
    `n_inputs` inputs (N, from the loaded model's spec).  The two arrays may
    nest to any depth; they are read as flat lists in order, N numbers per
    time step in "input_batch" and one in "output_batch".  A file with
    neither key gives a test of no samples.  On failure returns NULL with a
    message naming the file and the JSON path
    (`FILE: input_batch[0][12]: expected a number, found ...`), or both
    counts when they disagree.  Thread: worker.  Allocates and reads the
    file. */
CARRY_API carry_self_test *carry_self_test_load(const char *path,
                                                int n_inputs,
                                                carry_error *err);

/** The test as the text of two JSON members, `"input_batch": [...],` and
    `"output_batch": [...]` (input rows of N numbers when N > 1), every
    number in the shortest form that reads back to the same float: for
    writing the test into a converted model file.  A NUL-terminated string
    to release with free(), or NULL for a test of no samples.
    Thread: worker.  Allocates. */
CARRY_API char *carry_self_test_to_json(const carry_self_test *test,
                                        carry_error *err);

/** Frees a self-test.  NULL is a no-op.  Thread: worker.  Frees. */
CARRY_API void carry_self_test_free(carry_self_test *test);

#ifdef __cplusplus
}
#endif

#endif /* CARRY_H */
