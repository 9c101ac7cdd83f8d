/*
  Rate streams: the model at the host rate, or between two resamplers.

  Why speexdsp (figures from tests/bench_resamplers.c, in the note of
  issue 6): its process call allocates nothing, its output is the same bit
  for bit however the input is split, and it gives each output sample as
  soon as the input it needs has come, behind a delay of exactly half its
  filter.  libsoxr filters better and costs less, but allocates inside
  soxr_process now and then and holds back 900 to 1800 output samples
  while streaming (20 to 40 ms), latency a guitarist would play through.
  Quality 7 is the lowest whose pass band is flat to 20 kHz within
  0.01 dB at 44.1 kHz (6 loses 0.3 to 0.5 dB there, 5 up to 2.8 dB), with
  images and aliases more than 100 dB down; 8 to 10 add latency (10: twice
  as much) and CPU for a floor far below any model's own error.  Cost
  (tests/bench_rate.c): for 44.1 and 88.2 kHz speexdsp interpolates its
  filter for every sample, about 140 ns a sample each way, so a chain
  with a small model (LSTM-16) takes 3 to 4.5 times the CPU of the model
  at its own rate; for 96 and 192 kHz it uses a table, 1.8 to 2.6 times.

  A pass runs at most `chunk` host samples: clean the input, resample it
  to the model's rate (dropping the plan's first model samples), run the
  model, take off its settled silence level, resample back into the
  FIFO, and pop as many samples as came in.  rate/plan.c shows why the
  FIFO never runs dry and why the latency is whole.
*/

#include "rate_internal.h"

#include <speex/speex_resampler.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct carry_rate_stream {
  carry_rate_mode mode;       ///< OFF or RESAMPLE, never AUTO
  double host_rate;           ///< Hz, as the host gave it
  double model_rate;          ///< Hz, 0 if unknown
  carry_stream *core;         ///< The model, at its own rate if resampling
  uint32_t chunk;             ///< Host samples per pass, at most
  /* Resampling only */
  rate_plan plan;
  SpeexResamplerState *into;  ///< Host rate to model rate
  SpeexResamplerState *back;  ///< Model rate to host rate
  float *host_in;             ///< (chunk) the input, non-finite made 0
  float *model_buf;           ///< (model_cap) one pass at the model's rate
  uint32_t model_cap;
  float *fifo;                ///< (fifo_cap) host samples waiting to go out
  uint32_t fifo_cap;
  uint32_t n_fifo;            ///< Samples in the FIFO
  uint32_t n_to_drop;         ///< Model samples still to drop
  float offset;               ///< The settled model's output in silence
};

/* ------------------------------------------------------------------------ */
/* Life cycle */

static carry_status check_args(const carry_model *model, double host_rate,
                               carry_rate_mode mode, uint32_t max_block,
                               carry_error *err)
{
  if (!model || max_block < 1) {
    return carry_fail(err, CARRY_ERR_BAD_ARG,
                      "a rate stream needs a model and a maximum block of at "
                      "least 1 sample");
  }
  if (!(host_rate >= CARRY_RATE_MIN && host_rate <= CARRY_RATE_MAX)) {
    return carry_fail(err, CARRY_ERR_BAD_ARG,
                      "host sample rate %g Hz: expected %g to %g Hz", host_rate,
                      CARRY_RATE_MIN, CARRY_RATE_MAX);
  }
  const double model_rate = carry_model_get_spec(model)->sample_rate;
  if (mode == CARRY_RATE_RESAMPLE && model_rate <= 0.0) {
    return carry_fail(err, CARRY_ERR_BAD_ARG,
                      "cannot resample: the model's sample rate is unknown");
  }
  if (mode == CARRY_RATE_RESAMPLE &&
      !(model_rate >= CARRY_RATE_MIN && model_rate <= CARRY_RATE_MAX)) {
    return carry_fail(err, CARRY_ERR_BAD_ARG,
                      "cannot resample: the model's sample rate %g Hz is "
                      "out of range (expected %g to %g Hz)",
                      model_rate, CARRY_RATE_MIN, CARRY_RATE_MAX);
  }
  if (mode == CARRY_RATE_CORRECT && model_rate <= 0.0) {
    return carry_fail(err, CARRY_ERR_BAD_ARG,
                      "cannot correct the rate: the model's sample rate is "
                      "unknown");
  }
  if (mode == CARRY_RATE_CORRECT &&
      host_rate < model_rate - CARRY_RATE_TOLERANCE) {
    return carry_fail(err, CARRY_ERR_BAD_ARG,
                      "rate correction runs a model at its own rate or "
                      "higher, and this one is made for %g Hz, above the "
                      "host's %g Hz: use resampling", model_rate, host_rate);
  }
  return CARRY_SUCCESS;
}

/** The model at the host rate: as it is, or with its recurrence reading
    its state host/model samples ago (dsp/carry.h). */
static carry_status open_direct(carry_rate_stream *s, const carry_model *model,
                                uint32_t max_block, carry_error *err)
{
  s->core = s->mode == CARRY_RATE_CORRECT
              ? carry_stream_create_corrected(
                  model, max_block, s->host_rate / s->model_rate, err)
              : carry_stream_create(model, max_block, err);
  return s->core ? CARRY_SUCCESS : err ? err->status : CARRY_ERR_NO_MEMORY;
}

static SpeexResamplerState *open_speex(uint32_t from, uint32_t to,
                                       carry_error *err)
{
  int status = 0;
  SpeexResamplerState *r =
    speex_resampler_init(1, from, to, CARRY_RATE_QUALITY, &status);
  if (!r) {
    carry_fail(err, CARRY_ERR_NO_MEMORY,
               "cannot make a resampler from %u to %u Hz: %s",
               (unsigned)from, (unsigned)to, speex_resampler_strerror(status));
  }
  return r;
}

/** Every buffer, sized from the plan: a pass of `chunk` host samples makes
    at most ceil(chunk * m / h) model samples, and the FIFO holds at most
    the prefill, the chain's lead and one pass (rate/plan.c). */
static carry_status allocate_buffers(carry_rate_stream *s, carry_error *err)
{
  const rate_plan *p = &s->plan;
  s->model_cap = (uint32_t)rate_plan_into_model(p, s->chunk) + 2;
  s->fifo_cap = p->prefill + p->most_ahead + s->chunk + 2;
  s->host_in = calloc(s->chunk, sizeof(float));
  s->model_buf = calloc(s->model_cap, sizeof(float));
  s->fifo = calloc(s->fifo_cap, sizeof(float));
  if (!s->host_in || !s->model_buf || !s->fifo) {
    return carry_fail(err, CARRY_ERR_NO_MEMORY,
                      "out of memory for the resampling buffers");
  }
  return CARRY_SUCCESS;
}

/** Rates go to speexdsp as whole numbers: a host rate off by a fraction of
    a hertz is a pitch error of a few parts per million at most. */
static carry_status open_resampling(carry_rate_stream *s,
                                    const carry_model *model,
                                    carry_error *err)
{
  const uint32_t host = (uint32_t)lround(s->host_rate);
  const uint32_t own = (uint32_t)lround(s->model_rate);
  if (!(s->into = open_speex(host, own, err)) ||
      !(s->back = open_speex(own, host, err))) {
    return err ? err->status : CARRY_ERR_NO_MEMORY;
  }
  rate_plan_make(&s->plan, host, own,
                 (uint32_t)speex_resampler_get_input_latency(s->into),
                 (uint32_t)speex_resampler_get_input_latency(s->back));
  if (allocate_buffers(s, err)) {
    return err ? err->status : CARRY_ERR_NO_MEMORY;
  }
  s->core = carry_stream_create(model, s->model_cap, err);
  if (!s->core) {
    return err ? err->status : CARRY_ERR_NO_MEMORY;
  }
  carry_rate_stream_reset(s);
  return CARRY_SUCCESS;
}

enum { MAX_CHUNK = 4096 }; ///< Host samples per pass: bounds the buffers

carry_rate_stream *carry_rate_stream_create(const carry_model *model,
                                            double host_rate,
                                            carry_rate_mode mode,
                                            uint32_t max_block,
                                            carry_error *err)
{
  if (check_args(model, host_rate, mode, max_block, err)) {
    return NULL;
  }
  carry_rate_stream *s = calloc(1, sizeof(carry_rate_stream));
  if (!s) {
    carry_fail(err, CARRY_ERR_NO_MEMORY, "out of memory for a rate stream");
    return NULL;
  }
  s->host_rate = host_rate;
  s->model_rate = carry_model_get_spec(model)->sample_rate;
  s->mode = carry_rate_choose_mode(mode, s->model_rate, host_rate);
  s->chunk = max_block < MAX_CHUNK ? max_block : MAX_CHUNK;
  const carry_status status = s->mode == CARRY_RATE_RESAMPLE
                                ? open_resampling(s, model, err)
                                : open_direct(s, model, max_block, err);
  if (status) {
    carry_rate_stream_free(s);
    return NULL;
  }
  carry_succeed(err);
  return s;
}

carry_memory carry_rate_stream_memory(const carry_model *model,
                                      uint32_t max_block)
{
  carry_memory memory =
    carry_stream_memory(model, max_block, CARRY_KERNELS_AUTO);
  memory.scratch += sizeof(carry_rate_stream);
  return memory;
}

void carry_rate_stream_free(carry_rate_stream *stream)
{
  if (stream) {
    carry_stream_free(stream->core);
    if (stream->into) {
      speex_resampler_destroy(stream->into);
    }
    if (stream->back) {
      speex_resampler_destroy(stream->back);
    }
    free(stream->host_in);
    free(stream->model_buf);
    free(stream->fifo);
    free(stream);
  }
}

/* ------------------------------------------------------------------------ */
/* State */

void carry_rate_stream_reset(carry_rate_stream *stream)
{
  carry_stream_reset(stream->core);
  if (stream->mode != CARRY_RATE_RESAMPLE) {
    return;
  }
  speex_resampler_reset_mem(stream->into);  // memory and phase
  speex_resampler_reset_mem(stream->back);
  stream->n_fifo = stream->plan.prefill;
  memset(stream->fifo, 0, stream->n_fifo * sizeof(float));
  stream->n_to_drop = stream->plan.n_dropped;
}

/** Settles the model at its own rate.  Its output in silence then is a
    constant the FIFO's prefill and the "back" resampler's zeroed memory
    would otherwise step to from 0 (a click at start and after reset), so
    it is taken off before that resampler and added after the FIFO. */
uint32_t carry_rate_stream_settle(carry_rate_stream *stream,
                                  const float *knobs,
                                  uint32_t max_host_samples)
{
  if (stream->mode != CARRY_RATE_RESAMPLE) {
    return carry_stream_settle(stream->core, knobs, max_host_samples);
  }
  const uint64_t n = rate_plan_into_model(&stream->plan, max_host_samples);
  const uint32_t done = carry_stream_settle(
    stream->core, knobs, n < UINT32_MAX ? (uint32_t)n : UINT32_MAX);
  const float silence = 0.0f;
  carry_stream_process(stream->core, &silence, knobs, &stream->offset, 1);
  carry_rate_stream_reset(stream);
  return done;
}

uint32_t carry_rate_stream_latency(const carry_rate_stream *stream)
{
  return stream->mode == CARRY_RATE_RESAMPLE ? stream->plan.latency : 0;
}

carry_rate_mode carry_rate_stream_mode(const carry_rate_stream *stream)
{
  return stream->mode;
}

carry_stream *carry_rate_stream_core(const carry_rate_stream *stream)
{
  return stream->core;
}

size_t carry_rate_stream_describe(const carry_rate_stream *stream, char *text,
                                  size_t size)
{
  if (stream->mode == CARRY_RATE_OFF &&
      fabs(stream->model_rate - stream->host_rate) <= CARRY_RATE_TOLERANCE) {
    const int n = snprintf(text, size, "%.0f Hz", stream->model_rate);
    return n > 0 ? (size_t)n : 0; // the usual case says no more
  }
  char model[64];
  if (stream->model_rate > 0.0) {
    snprintf(model, sizeof(model), "model %.0f Hz", stream->model_rate);
  } else {
    snprintf(model, sizeof(model), "model rate unknown");
  }
  const int n = snprintf(text, size, "%s, host %.0f Hz: %s, latency %u samples",
                         model, stream->host_rate,
                         carry_rate_mode_name(stream->mode),
                         (unsigned)carry_rate_stream_latency(stream));
  return n > 0 ? (size_t)n : 0;
}

/* ------------------------------------------------------------------------ */
/* Processing */

/** Non-finite input would sit in a resampler's memory for a whole filter
    length, and poison every output it touches, so it never gets in. */
static void clean_input(float *dst, const float *src, uint32_t n)
{
  for (uint32_t t = 0; t < n; ++t) {
    dst[t] = isfinite(src[t]) ? src[t] : 0.0f;
  }
}

/** Resamples host_in to the model's rate and drops what the plan says;
    returns where the kept model samples start, and their count. */
static float *run_into(carry_rate_stream *s, uint32_t n, uint32_t *n_model)
{
  spx_uint32_t n_in = n, n_out = s->model_cap;
  speex_resampler_process_float(s->into, 0, s->host_in, &n_in, s->model_buf,
                                &n_out);
  const uint32_t dropped = n_out < s->n_to_drop ? n_out : s->n_to_drop;
  s->n_to_drop -= dropped;
  *n_model = n_out - dropped;
  return s->model_buf + dropped;
}

static void run_model(carry_rate_stream *s, const float *knobs, float *x,
                      uint32_t n)
{
  carry_stream_process(s->core, x, knobs, x, n);
  for (uint32_t t = 0; t < n; ++t) {
    x[t] -= s->offset;
  }
}

static void run_back(carry_rate_stream *s, const float *x, uint32_t n)
{
  spx_uint32_t n_in = n, n_out = s->fifo_cap - s->n_fifo;
  speex_resampler_process_float(s->back, 0, x, &n_in, s->fifo + s->n_fifo,
                                &n_out);
  s->n_fifo += n_out;
}

/** Pops `n` samples; plan.c shows the FIFO holds them.  What stays is at
    most the prefill and the chain's lead, a few hundred samples. */
static void pop_output(carry_rate_stream *s, float *out, uint32_t n)
{
  const uint32_t n_out = n < s->n_fifo ? n : s->n_fifo;
  for (uint32_t t = 0; t < n_out; ++t) {
    const float y = s->fifo[t] + s->offset;
    out[t] = isfinite(y) ? y : 0.0f;
  }
  memset(out + n_out, 0, (n - n_out) * sizeof(float));
  s->n_fifo -= n_out;
  memmove(s->fifo, s->fifo + n_out, s->n_fifo * sizeof(float));
}

static void process_chunk(carry_rate_stream *s, const float *in,
                          const float *knobs, float *out, uint32_t n)
{
  uint32_t n_model;
  clean_input(s->host_in, in, n);
  float *x = run_into(s, n, &n_model);
  run_model(s, knobs, x, n_model);
  run_back(s, x, n_model);
  pop_output(s, out, n);
}

void carry_rate_stream_process_pair(carry_rate_stream *a, carry_rate_stream *b,
                                    const float *in_a, const float *in_b,
                                    const float *knobs, float *out_a,
                                    float *out_b, uint32_t n)
{
  if (a->mode == CARRY_RATE_RESAMPLE || b->mode == CARRY_RATE_RESAMPLE) {
    carry_rate_stream_process(a, in_a, knobs, out_a, n);
    carry_rate_stream_process(b, in_b, knobs, out_b, n);
    return;
  }
  carry_stream_process_pair(a->core, b->core, in_a, in_b, knobs, out_a, out_b,
                            n);
}

void carry_rate_stream_process(carry_rate_stream *stream, const float *in,
                               const float *knobs, float *out, uint32_t n)
{
  if (stream->mode != CARRY_RATE_RESAMPLE) {
    carry_stream_process(stream->core, in, knobs, out, n);
    return;
  }
  const uint64_t fp_mode = carry_flush_denormals();  // speexdsp does not
  for (uint32_t done = 0; done < n;) {
    const uint32_t k = n - done < stream->chunk ? n - done : stream->chunk;
    process_chunk(stream, in + done, knobs, out + done, k);
    done += k;
  }
  carry_restore_fp_mode(fp_mode);
}
