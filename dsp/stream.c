/*
  Streams: the carried state, the scratch buffers, and the processing loop.

  A call is cut into chunks of at most CARRY_CHUNK samples, and each chunk
  runs layer by layer (layer-major), so a layer's weights stay in cache for
  the whole chunk.  Every per-sample computation is the same whatever the
  chunk it falls in, which is what makes the output independent of the
  caller's block sizes.
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
  int chunk;                        ///< Samples per chunk
  float *state;                     ///< Every h and c, one block
  float *reset_state;               ///< What reset() copies into `state`
  size_t state_bytes;
  float *h[CARRY_MAX_LAYERS];       ///< (Hp) per recurrent layer, in state
  float *c[CARRY_MAX_LAYERS];       ///< (Hp) per LSTM layer, in state
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
  }
  return "unknown";
}

static carry_kernels resolve_kernels(carry_kernels kernels)
{
  if (kernels != CARRY_KERNELS_AUTO) {
    return kernels;
  }
  return carry_kernels_available(CARRY_KERNELS_AVX2) ? CARRY_KERNELS_AVX2
                                                     : CARRY_KERNELS_PORTABLE;
}

static const carry_kernel_table *kernel_table(carry_kernels kernels)
{
  switch (kernels) {
#if defined(CARRY_HAVE_AVX2)
  case CARRY_KERNELS_AVX2: return &carry_kernels_avx2;
#endif
  case CARRY_KERNELS_PORTABLE: return &carry_kernels_portable;
  default: return NULL;
  }
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

/** Floats for every layer's h and c. */
static size_t state_floats(const carry_model *m)
{
  size_t n = 0;
  for (int l = 0; l < m->spec.n_layers; ++l) {
    const carry_packed_layer *p = &m->packed[l];
    n += (p->h0 ? (size_t)p->n_padded : 0) + (p->c0 ? (size_t)p->n_padded : 0);
  }
  return n;
}

static void lay_out_state(carry_stream *s, arena *a)
{
  const carry_model *m = s->model;
  s->state_bytes = state_floats(m) * sizeof(float);
  s->state = arena_take(a, s->state_bytes);
  s->reset_state = arena_take(a, s->state_bytes);
  float *next = s->state;
  for (int l = 0; l < m->spec.n_layers && next; ++l) {
    const carry_packed_layer *p = &m->packed[l];
    s->h[l] = p->h0 ? next : NULL;
    next += p->h0 ? p->n_padded : 0;
    s->c[l] = p->c0 ? next : NULL;
    next += p->c0 ? p->n_padded : 0;
  }
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
  if (s->kernels == CARRY_KERNELS_REFERENCE) {
    const size_t n_state = carry_reference_state_size(m) * sizeof(double);
    s->reference_state = arena_take(a, n_state);
    s->reference_reset = arena_take(a, n_state);
    s->reference_scratch =
      arena_take(a, carry_reference_scratch_size(m) * sizeof(double));
  }
}

/** The model's initial state becomes what reset() returns to. */
static void init_reset_state(carry_stream *s)
{
  const carry_model *m = s->model;
  for (int l = 0; l < m->spec.n_layers; ++l) {
    const carry_packed_layer *p = &m->packed[l];
    const size_t bytes = (size_t)p->n_padded * sizeof(float);
    if (s->h[l]) {
      memcpy(s->h[l], p->h0, bytes);
    }
    if (s->c[l]) {
      memcpy(s->c[l], p->c0, bytes);
    }
  }
  memcpy(s->reset_state, s->state, s->state_bytes);
  if (s->reference_state) {
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

carry_stream *carry_stream_create_with(const carry_model *model,
                                       uint32_t max_block,
                                       carry_kernels kernels, carry_error *err)
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
  s->kernels = resolve_kernels(kernels);
  s->table = kernel_table(s->kernels);
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

carry_stream *carry_stream_create(const carry_model *model, uint32_t max_block,
                                  carry_error *err)
{
  return carry_stream_create_with(model, max_block, CARRY_KERNELS_AUTO, err);
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

void carry_stream_reset(carry_stream *stream)
{
  memcpy(stream->state, stream->reset_state, stream->state_bytes);
  if (stream->reference_state) {
    memcpy(stream->reference_state, stream->reference_reset,
           carry_reference_state_size(stream->model) * sizeof(double));
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
  if (stream->reference_state) {
    memcpy(stream->reference_reset, stream->reference_state,
           carry_reference_state_size(stream->model) * sizeof(double));
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
    memcpy(row + 1, knobs, (size_t)(N - 1) * sizeof(float));
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
      s->table->lstm(p, x, stride, n_samples, s->h[l], s->c[l], y,
                     reset_of(s, s->h[l]), reset_of(s, s->c[l]));
      break;
    case CARRY_LAYER_GRU:
      s->table->gru(p, x, stride, n_samples, s->h[l], y,
                    reset_of(s, s->h[l]));
      break;
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

static void run_reference(carry_stream *s, int n_samples, float *out)
{
  const int N = s->model->spec.n_inputs;
  for (int t = 0; t < n_samples; ++t) {
    const float *x = s->x0 + (size_t)t * (size_t)N;
    const double net =
      carry_reference_step(s->model, x, s->reference_state,
                           s->reference_reset, s->reference_scratch);
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
    in += t;
    out += t;
    n -= (uint32_t)t;
  }
  carry_restore_fp_mode(fp_mode);
}
