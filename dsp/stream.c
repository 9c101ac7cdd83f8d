/*
  Streams: the carried state, the scratch buffers, and the processing loop.

  A call is cut into chunks of at most CARRY_CHUNK samples, and each chunk
  runs layer by layer (layer-major), so a layer's weights stay in cache for
  the whole chunk.  Every per-sample computation is the same whatever the
  chunk it falls in, which is what makes the output independent of the
  caller's block sizes.

  A sample-rate-corrected stream (host rate R times the model's) keeps,
  per recurrent layer, a ring of the last D states instead of one, and
  steps each sample from the state R samples ago (interpolated for a
  fractional R) instead of the previous one; see set_taps().
*/

#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#  include <xmmintrin.h>
#endif

struct carry_stream {
  const carry_model *model;
  carry_kernels kernels;
  const carry_kernel_table *table;  ///< NULL for the reference kernels
  carry_quality quality;
  int chunk;                        ///< Samples per chunk
  double rate_ratio;                ///< R: host rate / model rate
  carry_delay_taps taps;            ///< Corrected streams (n_slots > 0)
  int position;                     ///< Corrected: ring slot written next
  int reset_position;               ///< What reset() returns `position` to
  float *state;                     ///< Every h and c, one block
  float *reset_state;               ///< What reset() copies into `state`
  size_t state_bytes;
  float *h[CARRY_MAX_LAYERS];       ///< (D, Hp) per recurrent layer, in
                                    ///< state; D = 1 unless corrected
  float *c[CARRY_MAX_LAYERS];       ///< (D, Hp) per LSTM layer, in state
  float *mix;                       ///< (2, widest) corrected: the delayed
                                    ///< h and c, interpolated
  float *x0;                        ///< (chunk, N) the model's inputs
  float *y[2];                      ///< (chunk, widest) layer outputs
  double *reference_state;          ///< Reference kernels only
  double *reference_reset;          ///< Reference kernels only
  double *reference_scratch;        ///< Reference kernels only
  void *memory;                     ///< The one allocation
};

/* ------------------------------------------------------------------------ */
/* Kernels */

bool carry_kernels_available(carry_kernels kernels)
{
  switch (kernels) {
  case CARRY_KERNELS_AUTO:
  case CARRY_KERNELS_REFERENCE:
  case CARRY_KERNELS_PORTABLE: return true;
  case CARRY_KERNELS_AVX2:
#if defined(CARRY_HAVE_AVX2)
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return false;
#endif
  case CARRY_KERNELS_AVX512:
#if defined(CARRY_HAVE_AVX512)
    return carry_kernels_available(CARRY_KERNELS_AVX2) &&
           __builtin_cpu_supports("avx512f");
#else
    return false;
#endif
  }
  return false;
}

const char *carry_kernels_name(carry_kernels kernels)
{
  switch (kernels) {
  case CARRY_KERNELS_AUTO: return "auto";
  case CARRY_KERNELS_REFERENCE: return "reference";
  case CARRY_KERNELS_PORTABLE: return "portable";
  case CARRY_KERNELS_AVX2: return "avx2";
  case CARRY_KERNELS_AVX512: return "avx512";
  }
  return "unknown";
}

carry_kernels carry_kernels_resolve(carry_kernels kernels)
{
  if (kernels != CARRY_KERNELS_AUTO) {
    return kernels;
  }
  if (carry_kernels_available(CARRY_KERNELS_AVX512)) {
    return CARRY_KERNELS_AVX512;
  }
  return carry_kernels_available(CARRY_KERNELS_AVX2) ? CARRY_KERNELS_AVX2
                                                     : CARRY_KERNELS_PORTABLE;
}

const carry_kernel_table *carry_kernel_table_of(carry_kernels kernels,
                                                carry_quality quality)
{
  const bool fast = quality == CARRY_QUALITY_FAST;
  switch (kernels) {
#if defined(CARRY_HAVE_AVX512)
  case CARRY_KERNELS_AVX512:
    return fast ? &carry_kernels_avx512_fast : &carry_kernels_avx512;
#endif
#if defined(CARRY_HAVE_AVX2)
  case CARRY_KERNELS_AVX2:
    return fast ? &carry_kernels_avx2_fast : &carry_kernels_avx2;
#endif
  case CARRY_KERNELS_PORTABLE:
    return fast ? &carry_kernels_portable_fast : &carry_kernels_portable;
  default: return NULL;
  }
}

const char *carry_quality_name(carry_quality quality)
{
  return quality == CARRY_QUALITY_FAST ? "fast" : "exact";
}

/* ------------------------------------------------------------------------ */
/* Life cycle */

/** Hands out 64-byte aligned pieces of one block (or only counts them). */
typedef struct {
  char *base;
  size_t used;
} arena;

static void *arena_take(arena *a, size_t bytes)
{
  void *p = a->base ? a->base + a->used : NULL;
  a->used += (bytes + 63) / 64 * 64;
  return p;
}

static bool is_corrected(const carry_stream *s)
{
  return s->taps.n_slots > 0;
}

/** D: the states kept per recurrent layer. */
static size_t n_slots(const carry_stream *s)
{
  return is_corrected(s) ? (size_t)s->taps.n_slots : 1;
}

/** Floats for every layer's h and c (D of each). */
static size_t state_floats(const carry_stream *s)
{
  const carry_model *m = s->model;
  size_t n = 0;
  for (int l = 0; l < m->spec.n_layers; ++l) {
    const carry_packed_layer *p = &m->packed[l];
    n += (p->h0 ? (size_t)p->n_padded : 0) + (p->c0 ? (size_t)p->n_padded : 0);
  }
  return n * n_slots(s);
}

static void lay_out_state(carry_stream *s, arena *a)
{
  const carry_model *m = s->model;
  const size_t D = n_slots(s);
  s->state_bytes = state_floats(s) * sizeof(float);
  s->state = arena_take(a, s->state_bytes);
  s->reset_state = arena_take(a, s->state_bytes);
  float *next = s->state;
  for (int l = 0; l < m->spec.n_layers && next; ++l) {
    const carry_packed_layer *p = &m->packed[l];
    s->h[l] = p->h0 ? next : NULL;
    next += p->h0 ? D * (size_t)p->n_padded : 0;
    s->c[l] = p->c0 ? next : NULL;
    next += p->c0 ? D * (size_t)p->n_padded : 0;
  }
}

/** Doubles of the reference kernels' state (a corrected stream's: D
    states per recurrent layer). */
static size_t reference_size(const carry_stream *s)
{
  return is_corrected(s) ? carry_reference_history_size(s->model, &s->taps)
                         : carry_reference_state_size(s->model);
}

static void lay_out(carry_stream *s, arena *a)
{
  const carry_model *m = s->model;
  const size_t chunk = (size_t)s->chunk;
  lay_out_state(s, a);
  s->x0 = arena_take(a, chunk * (size_t)m->spec.n_inputs * sizeof(float));
  for (int k = 0; k < 2; ++k) {
    s->y[k] = arena_take(a, chunk * (size_t)m->widest * sizeof(float));
  }
  if (is_corrected(s)) {
    s->mix = arena_take(a, 2 * (size_t)m->widest * sizeof(float));
  }
  if (s->kernels == CARRY_KERNELS_REFERENCE) {
    const size_t n_state = reference_size(s) * sizeof(double);
    s->reference_state = arena_take(a, n_state);
    s->reference_reset = arena_take(a, n_state);
    s->reference_scratch =
      arena_take(a, carry_reference_scratch_size(m) * sizeof(double));
  }
}

/** The model's initial state, in every slot of the history, becomes what
    reset() returns to. */
static void init_reset_state(carry_stream *s)
{
  const carry_model *m = s->model;
  for (int l = 0; l < m->spec.n_layers; ++l) {
    const carry_packed_layer *p = &m->packed[l];
    const size_t Hp = (size_t)p->n_padded;
    for (size_t k = 0; k < n_slots(s); ++k) {
      if (s->h[l]) {
        memcpy(s->h[l] + k * Hp, p->h0, Hp * sizeof(float));
      }
      if (s->c[l]) {
        memcpy(s->c[l] + k * Hp, p->c0, Hp * sizeof(float));
      }
    }
  }
  memcpy(s->reset_state, s->state, s->state_bytes);
  s->reset_position = 0;
  if (s->reference_state && is_corrected(s)) {
    carry_reference_reset_history(m, &s->taps, s->reference_reset);
  } else if (s->reference_state) {
    carry_reference_reset(m, s->reference_reset);
  }
}

static carry_status check_create(const carry_model *model, uint32_t max_block,
                                 carry_kernels kernels, carry_error *err)
{
  if (!model || !model->is_prepared) {
    return carry_fail(err, CARRY_ERR_BAD_ARG,
                      "a stream needs a prepared model");
  }
  if (max_block < 1) {
    return carry_fail(err, CARRY_ERR_BAD_ARG,
                      "the maximum block length must be at least 1");
  }
  if (!carry_kernels_available(kernels)) {
    return carry_fail(err, CARRY_ERR_UNSUPPORTED,
                      "this CPU or build cannot run the %s kernels",
                      carry_kernels_name(kernels));
  }
  return CARRY_SUCCESS;
}

/** A stream; `taps` NULL for a plain one. */
static carry_stream *create(const carry_model *model, uint32_t max_block,
                            carry_kernels kernels, double rate_ratio,
                            const carry_delay_taps *taps, carry_error *err)
{
  if (check_create(model, max_block, kernels, err)) {
    return NULL;
  }
  carry_stream *s = calloc(1, sizeof(carry_stream));
  if (!s) {
    carry_fail(err, CARRY_ERR_NO_MEMORY, "out of memory for a stream");
    return NULL;
  }
  s->model = model;
  s->rate_ratio = rate_ratio;
  if (taps) {
    s->taps = *taps;
  }
  s->kernels = carry_kernels_resolve(kernels);
  s->quality = CARRY_QUALITY_EXACT;
  s->table = carry_kernel_table_of(s->kernels, s->quality);
  s->chunk = max_block < CARRY_CHUNK ? (int)max_block : CARRY_CHUNK;
  arena count = {NULL, 0};
  lay_out(s, &count);
  if (!(s->memory = aligned_alloc(64, count.used))) {
    free(s);
    carry_fail(err, CARRY_ERR_NO_MEMORY,
               "out of memory for %zu bytes of stream buffers", count.used);
    return NULL;
  }
  memset(s->memory, 0, count.used);
  arena real = {s->memory, 0};
  lay_out(s, &real);
  init_reset_state(s);
  carry_stream_reset(s);
  carry_succeed(err);
  return s;
}

carry_stream *carry_stream_create_with(const carry_model *model,
                                       uint32_t max_block,
                                       carry_kernels kernels, carry_error *err)
{
  return create(model, max_block, kernels, 1.0, NULL, err);
}

carry_stream *carry_stream_create(const carry_model *model, uint32_t max_block,
                                  carry_error *err)
{
  return carry_stream_create_with(model, max_block, CARRY_KERNELS_AUTO, err);
}

/* ------------------------------------------------------------------------ */
/* Sample-rate-corrected streams */

/** A ratio this close to a whole number is that number: 96000 / 48000 is
    exact, but a rate worked out in floating point may not be. */
static double snap_ratio(double ratio)
{
  const double whole = round(ratio);
  return fabs(ratio - whole) < 1e-9 ? whole : ratio;
}

/** Third-order Lagrange weights for a fractional delay of `d` samples
    after the first of four taps one sample apart. */
static void lagrange_weights(double d, double *weights)
{
  for (int n = 0; n < 4; ++n) {
    weights[n] = 1.0;
    for (int k = 0; k < 4; ++k) {
      weights[n] *= k == n ? 1.0 : (d - k) / (n - k);
    }
  }
}

/** The kernels interpolate around the first tap (see
    carry_delayed_state): the heaviest one rounds least. */
static void put_heaviest_first(carry_delay_taps *taps)
{
  int heaviest = 0;
  for (int k = 1; k < taps->n_taps; ++k) {
    if (fabs(taps->weight_exact[k]) > fabs(taps->weight_exact[heaviest])) {
      heaviest = k;
    }
  }
  const carry_delay_taps t = *taps;
  taps->delay[0] = t.delay[heaviest];
  taps->delay[heaviest] = t.delay[0];
  taps->weight[0] = t.weight[heaviest];
  taps->weight[heaviest] = t.weight[0];
  taps->weight_exact[0] = t.weight_exact[heaviest];
  taps->weight_exact[heaviest] = t.weight_exact[0];
}

/**
  Where to read the delayed state for ratio R, following Carson, Wright,
  Chowdhury, Välimäki and Bilbao, "Sample rate independent recurrent
  neural networks for audio effects processing" (DAFx 2024).  A whole R
  reads the state exactly R samples ago.  For a fractional R the paper
  recommends cubic Lagrange interpolation of the delay line (its "CIDL"),
  which it found a significant improvement over linear interpolation
  (LIDL) and the other methods it tried for LSTMs at non-integer ratios
  (44.1 -> 48 kHz among them); CARRY_INTERP_CUBIC does it as the paper's
  own code does: four taps around R, from floor(R) - 1 to floor(R) + 2
  samples ago, or, for 1 < R < 2, the four latest states (the state 0
  samples ago is the one being computed, so the interpolator cannot be
  centred).  Uncentred, for 1.5 < R < 2 it amplifies a state alternating
  from sample to sample by up to 1.18 (linear by less than 1), so a model
  whose recurrence is close to unstable can keep a tiny oscillation, and
  on Carry's diode clipper linear measures as well or a little better
  (tests/test_corrected.c): so linear is the default.
*/
static void set_taps(double ratio, carry_interpolation interpolation,
                     carry_delay_taps *taps)
{
  const double whole = floor(ratio);
  double weights[CARRY_MAX_TAPS] = {1.0};
  *taps = (carry_delay_taps){.n_taps = 1, .delay = {(int)whole}};
  if (ratio != whole && interpolation == CARRY_INTERP_LINEAR) {
    taps->n_taps = 2;
    taps->delay[1] = (int)whole + 1;
    weights[0] = whole + 1.0 - ratio;
    weights[1] = ratio - whole;
  } else if (ratio != whole) {
    const int first = ratio < 2.0 ? 1 : (int)whole - 1;
    taps->n_taps = 4;
    lagrange_weights(ratio - first, weights);
    for (int k = 0; k < 4; ++k) {
      taps->delay[k] = first + k;
    }
  }
  taps->n_slots = taps->delay[taps->n_taps - 1] + 1;
  for (int k = 0; k < taps->n_taps; ++k) {
    taps->weight_exact[k] = weights[k];
    taps->weight[k] = (float)weights[k];
  }
  put_heaviest_first(taps);
}

static carry_status check_ratio(double ratio, carry_interpolation interpolation,
                                carry_error *err)
{
  if (!(ratio >= 1.0)) {
    return carry_fail(err, CARRY_ERR_BAD_ARG,
                      "the rate ratio (host rate / model rate) must be at "
                      "least 1, not %g: a corrected stream can only run a "
                      "model at a higher rate than it was made for", ratio);
  }
  if (ratio > CARRY_MAX_RATE_RATIO) {
    return carry_fail(err, CARRY_ERR_LIMIT,
                      "the rate ratio (host rate / model rate) %g is over "
                      "the limit of %g", ratio, CARRY_MAX_RATE_RATIO);
  }
  if (interpolation != CARRY_INTERP_CUBIC &&
      interpolation != CARRY_INTERP_LINEAR) {
    return carry_fail(err, CARRY_ERR_BAD_ARG, "unknown interpolation %d",
                      (int)interpolation);
  }
  return CARRY_SUCCESS;
}

carry_stream *carry_stream_create_corrected_with(
  const carry_model *model, uint32_t max_block, double rate_ratio,
  carry_kernels kernels, carry_interpolation interpolation, carry_error *err)
{
  if (check_ratio(rate_ratio, interpolation, err)) {
    return NULL;
  }
  const double ratio = snap_ratio(rate_ratio);
  if (ratio == 1.0) { // the plain stream is this case, exactly
    return create(model, max_block, kernels, 1.0, NULL, err);
  }
  carry_delay_taps taps;
  set_taps(ratio, interpolation, &taps);
  return create(model, max_block, kernels, ratio, &taps, err);
}

carry_stream *carry_stream_create_corrected(const carry_model *model,
                                            uint32_t max_block,
                                            double rate_ratio,
                                            carry_error *err)
{
  return carry_stream_create_corrected_with(model, max_block, rate_ratio,
                                            CARRY_KERNELS_AUTO,
                                            CARRY_INTERP_LINEAR, err);
}

double carry_stream_rate_ratio(const carry_stream *stream)
{
  return stream->rate_ratio;
}

carry_memory carry_stream_memory(const carry_model *model,
                                 uint32_t max_block, carry_kernels kernels)
{
  // Lays a stream out as create() does, only counting.
  carry_stream s;
  memset(&s, 0, sizeof(s));
  s.model = model;
  s.kernels = carry_kernels_resolve(kernels);
  s.chunk = max_block < CARRY_CHUNK ? (int)max_block : CARRY_CHUNK;
  arena state = {NULL, 0}, all = {NULL, 0};
  lay_out_state(&s, &state);
  lay_out(&s, &all);
  const carry_memory memory = {
    .state = state.used,
    .scratch = sizeof(carry_stream) + all.used - state.used,
  };
  return memory;
}

void carry_stream_free(carry_stream *stream)
{
  if (stream) {
    free(stream->memory);
    free(stream);
  }
}

carry_kernels carry_stream_kernels(const carry_stream *stream)
{
  return stream->kernels;
}

const carry_model *carry_stream_model(const carry_stream *stream)
{
  return stream->model;
}

void carry_stream_set_quality(carry_stream *stream, carry_quality quality)
{
  stream->quality = quality == CARRY_QUALITY_FAST ? CARRY_QUALITY_FAST
                                                  : CARRY_QUALITY_EXACT;
  stream->table = carry_kernel_table_of(stream->kernels, stream->quality);
}

carry_quality carry_stream_quality(const carry_stream *stream)
{
  return stream->quality;
}

void carry_stream_reset(carry_stream *stream)
{
  memcpy(stream->state, stream->reset_state, stream->state_bytes);
  stream->position = stream->reset_position;
  if (stream->reference_state) {
    memcpy(stream->reference_state, stream->reference_reset,
           reference_size(stream) * sizeof(double));
  }
}

/** Whether a block of output is flat and joins `previous` (the last output
    before it) within the settling tolerance. */
static bool is_flat(const float *out, uint32_t n, float previous)
{
  for (uint32_t t = 0; t < n; ++t) {
    if (!(fabsf(out[t] - previous) <= 1e-7f)) {
      return false;
    }
  }
  return true;
}

uint32_t carry_stream_settle(carry_stream *stream, const float *knobs,
                             uint32_t max_samples)
{
  enum { BLOCK = 256 };
  const float silence[BLOCK] = {0.0f};
  float out[BLOCK];
  float previous = NAN;
  uint32_t done = 0;
  while (done < max_samples) {
    const uint32_t n = max_samples - done < BLOCK ? max_samples - done : BLOCK;
    carry_stream_process(stream, silence, knobs, out, n);
    done += n;
    if (is_flat(out, n, previous)) {
      break;
    }
    previous = out[n - 1];
  }
  memcpy(stream->reset_state, stream->state, stream->state_bytes);
  stream->reset_position = stream->position;
  if (stream->reference_state) {
    memcpy(stream->reference_reset, stream->reference_state,
           reference_size(stream) * sizeof(double));
  }
  return done;
}

/* ------------------------------------------------------------------------ */
/* Processing */

uint64_t carry_flush_denormals(void)
{
#if defined(__x86_64__) || defined(__i386__)
  const unsigned mode = _mm_getcsr();
  _mm_setcsr(mode | 0x8040u);
  return mode;
#elif defined(__aarch64__)
  const uint64_t mode = __builtin_aarch64_get_fpcr64();
  __builtin_aarch64_set_fpcr64(mode | (1u << 24));
  return mode;
#else
  return 0;
#endif
}

void carry_restore_fp_mode(uint64_t mode)
{
#if defined(__x86_64__) || defined(__i386__)
  _mm_setcsr((unsigned)mode);
#elif defined(__aarch64__)
  __builtin_aarch64_set_fpcr64(mode);
#else
  (void)mode;
#endif
}

/** Fills the chunk's input rows: the audio (non-finite read as 0), gained,
    then the knob values. */
static void load_inputs(carry_stream *s, const float *in, const float *knobs,
                        int n_samples)
{
  const int N = s->model->spec.n_inputs;
  for (int t = 0; t < n_samples; ++t) {
    float *row = s->x0 + (size_t)t * (size_t)N;
    row[0] = isfinite(in[t]) ? in[t] * s->model->in_gain : 0.0f;
    for (int k = 1; k < N; ++k) {  // a loop: a call to memcpy cost more
      row[k] = knobs[k - 1];
    }
  }
}

/** Adds the skip, applies the output gain, and never lets a non-finite
    sample out. */
static float finish_sample(const carry_stream *s, float net, float x)
{
  const float y = (s->model->spec.has_skip ? net + x : net) *
                  s->model->out_gain;
  return isfinite(y) ? y : 0.0f;
}

/** Where reset() takes a state array's values from. */
static const float *reset_of(const carry_stream *s, const float *array)
{
  return s->reset_state + (array - s->state);
}

/** The slot of the latest state in the history reset() returns to: what
    a non-finite state gives way to in a corrected stream. */
static int reset_slot(const carry_stream *s)
{
  return (s->reset_position + s->taps.n_slots - 1) % s->taps.n_slots;
}

/** Layer `l`'s history in a corrected stream, for the kernels. */
static carry_delay_line delay_line(const carry_stream *s, int l)
{
  const size_t Hp = (size_t)s->model->packed[l].n_padded;
  const size_t at = (size_t)reset_slot(s) * Hp;
  return (carry_delay_line){
    .h = s->h[l],
    .c = s->c[l],
    .h_mix = s->mix,
    .c_mix = s->mix + s->model->widest,
    .h_reset = reset_of(s, s->h[l]) + at,
    .c_reset = s->c[l] ? reset_of(s, s->c[l]) + at : NULL,
    .position = s->position,
  };
}

/** A recurrent layer over the chunk: x (T, stride) to y (T, Hp). */
static void run_recurrent(const carry_stream *s, int l, const float *x,
                          int stride, int n_samples, float *y)
{
  const carry_packed_layer *p = &s->model->packed[l];
  const bool is_lstm = p->type == CARRY_LAYER_LSTM;
  if (is_corrected(s)) {
    const carry_delay_line line = delay_line(s, l);
    (is_lstm ? s->table->lstm_delayed : s->table->gru_delayed)(
      p, x, stride, n_samples, &s->taps, &line, y);
  } else if (is_lstm) {
    s->table->lstm(p, x, stride, n_samples, s->h[l], s->c[l], y,
                   reset_of(s, s->h[l]), reset_of(s, s->c[l]));
  } else {
    s->table->gru(p, x, stride, n_samples, s->h[l], y, reset_of(s, s->h[l]));
  }
}

static void run_layers(carry_stream *s, int n_samples, float *out)
{
  const carry_model *m = s->model;
  const int N = m->spec.n_inputs;
  const float *x = s->x0;
  int stride = N;
  for (int l = 0; l < m->spec.n_layers; ++l) {
    const carry_packed_layer *p = &m->packed[l];
    float *y = s->y[l & 1];
    switch (p->type) {
    case CARRY_LAYER_LSTM:
    case CARRY_LAYER_GRU: run_recurrent(s, l, x, stride, n_samples, y); break;
    case CARRY_LAYER_DENSE: s->table->dense(p, x, stride, n_samples, y); break;
    case CARRY_LAYER_ACTIVATION:
      s->table->activation(p, x, stride, n_samples, y);
      break;
    }
    x = y;
    stride = p->n_padded;
  }
  for (int t = 0; t < n_samples; ++t) {
    out[t] = finish_sample(s, x[(size_t)t * (size_t)stride],
                           s->x0[(size_t)t * (size_t)N]);
  }
}

/** The reference kernels' network output for sample t of the chunk. */
static double reference_net(carry_stream *s, const float *x, int t)
{
  if (!is_corrected(s)) {
    return carry_reference_step(s->model, x, s->reference_state,
                                s->reference_reset, s->reference_scratch);
  }
  const int slot = (s->position + t) % s->taps.n_slots;
  return carry_reference_step_delayed(s->model, x, &s->taps, slot,
                                      s->reference_state, s->reference_reset,
                                      reset_slot(s), s->reference_scratch);
}

static void run_reference(carry_stream *s, int n_samples, float *out)
{
  const int N = s->model->spec.n_inputs;
  for (int t = 0; t < n_samples; ++t) {
    const float *x = s->x0 + (size_t)t * (size_t)N;
    const double net = reference_net(s, x, t);
    out[t] = finish_sample(s, (float)net, x[0]);
  }
}

/** The knobs for this call: the given values, or the defaults for NULL or
    a non-finite value. */
static void resolve_knobs(const carry_model *m, const float *knobs,
                          float *values)
{
  for (int k = 0; k + 1 < m->spec.n_inputs; ++k) {
    const bool is_given = knobs && isfinite(knobs[k]);
    values[k] = is_given ? knobs[k] : m->spec.knobs[k].value;
  }
}

void carry_stream_process(carry_stream *stream, const float *in,
                          const float *knobs, float *out, uint32_t n)
{
  const uint64_t fp_mode = carry_flush_denormals();
  float knob_values[CARRY_MAX_KNOBS];
  resolve_knobs(stream->model, knobs, knob_values);
  while (n > 0) {
    const int t = n < (uint32_t)stream->chunk ? (int)n : stream->chunk;
    load_inputs(stream, in, knob_values, t);
    if (stream->table) {
      run_layers(stream, t, out);
    } else {
      run_reference(stream, t, out);
    }
    if (is_corrected(stream)) {
      stream->position = (stream->position + t) % stream->taps.n_slots;
    }
    in += t;
    out += t;
    n -= (uint32_t)t;
  }
  carry_restore_fp_mode(fp_mode);
}

/* ------------------------------------------------------------------------ */
/* Two streams in step */

/** Whether two streams can run layer by layer in step: one model, the same
    kernels and quality, neither corrected. */
static bool can_pair(const carry_stream *a, const carry_stream *b)
{
  return a != b && a->model == b->model && a->table && a->table == b->table &&
         !is_corrected(a) && !is_corrected(b) && a->chunk == b->chunk;
}

/** Stream `s`'s part in a pair kernel for recurrent layer `l`. */
static carry_lane lane_of(const carry_stream *s, int l, const float *x,
                          float *y)
{
  return (carry_lane){
    .x = x,
    .h = s->h[l],
    .c = s->c[l],
    .y = y,
    .h_reset = reset_of(s, s->h[l]),
    .c_reset = s->c[l] ? reset_of(s, s->c[l]) : NULL,
  };
}

static void run_layers_pair(carry_stream *a, carry_stream *b, int n_samples,
                            float *out_a, float *out_b)
{
  const carry_model *m = a->model;
  const int N = m->spec.n_inputs;
  const float *xa = a->x0, *xb = b->x0;
  int stride = N;
  for (int l = 0; l < m->spec.n_layers; ++l) {
    const carry_packed_layer *p = &m->packed[l];
    float *ya = a->y[l & 1], *yb = b->y[l & 1];
    if (p->type == CARRY_LAYER_LSTM || p->type == CARRY_LAYER_GRU) {
      const carry_lane la = lane_of(a, l, xa, ya), lb = lane_of(b, l, xb, yb);
      (p->type == CARRY_LAYER_LSTM ? a->table->lstm_pair
                                   : a->table->gru_pair)(p, stride, n_samples,
                                                         &la, &lb);
    } else {
      const bool dense = p->type == CARRY_LAYER_DENSE;
      (dense ? a->table->dense : a->table->activation)(p, xa, stride,
                                                       n_samples, ya);
      (dense ? a->table->dense : a->table->activation)(p, xb, stride,
                                                       n_samples, yb);
    }
    xa = ya;
    xb = yb;
    stride = p->n_padded;
  }
  for (int t = 0; t < n_samples; ++t) {
    out_a[t] = finish_sample(a, xa[(size_t)t * (size_t)stride],
                             a->x0[(size_t)t * (size_t)N]);
    out_b[t] = finish_sample(b, xb[(size_t)t * (size_t)stride],
                             b->x0[(size_t)t * (size_t)N]);
  }
}

void carry_stream_process_pair(carry_stream *a, carry_stream *b,
                               const float *in_a, const float *in_b,
                               const float *knobs, float *out_a,
                               float *out_b, uint32_t n)
{
  if (!can_pair(a, b)) {
    carry_stream_process(a, in_a, knobs, out_a, n);
    carry_stream_process(b, in_b, knobs, out_b, n);
    return;
  }
  const uint64_t fp_mode = carry_flush_denormals();
  float knob_values[CARRY_MAX_KNOBS];
  resolve_knobs(a->model, knobs, knob_values);
  while (n > 0) {
    const int t = n < (uint32_t)a->chunk ? (int)n : a->chunk;
    load_inputs(a, in_a, knob_values, t);
    load_inputs(b, in_b, knob_values, t);
    run_layers_pair(a, b, t, out_a, out_b);
    in_a += t;
    in_b += t;
    out_a += t;
    out_b += t;
    n -= (uint32_t)t;
  }
  carry_restore_fp_mode(fp_mode);
}

/* ------------------------------------------------------------------------ */
/* For lockstep batches (batch.c) */

void carry_stream_reset_state(const carry_stream *stream, int l,
                              const float **h, const float **c)
{
  *h = stream->h[l] ? reset_of(stream, stream->h[l]) : NULL;
  *c = stream->c[l] ? reset_of(stream, stream->c[l]) : NULL;
}
