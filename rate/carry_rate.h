/*
  Carry rate: runs a model made for one sample rate in a host running at
  another.

  A rate stream wraps a core stream (dsp/carry.h).  When the rates differ
  it converts the host's audio to the model's rate with a streaming
  resampler (speexdsp), runs the model there, converts back, and returns
  every block in full through a FIFO, so that the whole adds a fixed,
  whole number of host samples of latency, which it reports.  Like the
  core stream, its output does not depend on how the host cuts the signal
  into blocks, bit for bit.

  Kept apart from dsp/ because dsp/ uses nothing but libc, libm and
  OpenBLAS; this library adds speexdsp.

  Threads as in dsp/carry.h: "audio" functions neither allocate, free,
  lock nor make system calls; "worker" functions may.
*/

#ifndef CARRY_RATE_H
#define CARRY_RATE_H

#include "carry.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** How a model meets a host rate that is not its own. */
typedef enum {
  CARRY_RATE_AUTO,      ///< OFF for the same (or an unknown) rate, CORRECT
                        ///< for a whole multiple of it, else RESAMPLE
  CARRY_RATE_OFF,       ///< Run the model at the host rate as it is
  CARRY_RATE_RESAMPLE,  ///< Resample to the model's rate and back
  CARRY_RATE_CORRECT,   ///< Sample-rate-corrected recurrence, for a host
                        ///< rate at least the model's (no latency)
} carry_rate_mode;

/** Two rates closer than this (Hz) count as the same. */
#define CARRY_RATE_TOLERANCE 0.5

/** Host rates a rate stream accepts, Hz. */
#define CARRY_RATE_MIN 8000.0
#define CARRY_RATE_MAX 768000.0

/** speexdsp's quality setting for both resamplers (0..10); chosen by
    tests/bench_resamplers.c, see the note in rate/stream.c. */
#define CARRY_RATE_QUALITY 7

/** A mode's name for people ("off", "resampling", ...).  Thread: any. */
const char *carry_rate_mode_name(carry_rate_mode mode);

/** The mode AUTO stands for with a model made for `model_rate` Hz (0 if
    unknown) in a host at `host_rate` Hz; other modes are returned as
    they are.  Thread: any. */
carry_rate_mode carry_rate_choose_mode(carry_rate_mode mode, double model_rate,
                                       double host_rate);

/** One channel running a model at a host rate. */
typedef struct carry_rate_stream carry_rate_stream;

/** Creates a rate stream of a prepared model for a host at `host_rate` Hz
    that passes at most `max_block` samples per call (longer calls are
    split).  Fails with CARRY_ERR_BAD_ARG for a rate out of range,
    RESAMPLE or CORRECT with a model of unknown rate, or CORRECT for a host
    rate below the model's.  The model must outlive the stream.
    Thread: worker.  Allocates (once, for everything). */
carry_rate_stream *carry_rate_stream_create(const carry_model *model,
                                            double host_rate,
                                            carry_rate_mode mode,
                                            uint32_t max_block,
                                            carry_error *err);

/** What carry_rate_stream_create() allocates for a host at the model's
    own rate (mode OFF, or AUTO at that rate): the core stream's
    (carry_stream_memory() with the default kernels), its own record
    counted as scratch.  Resampling adds two filters and their buffers,
    not counted here.  Thread: any.  No allocation. */
carry_memory carry_rate_stream_memory(const carry_model *model,
                                      uint32_t max_block);

/** Frees a rate stream.  NULL is a no-op.  Thread: worker.  Frees. */
void carry_rate_stream_free(carry_rate_stream *stream);

/** Runs `n` host samples from `in` to `out` (which may be the same
    buffer), any `n`; `knobs` as for carry_stream_process().  Bit for bit
    the same output however the signal is split into calls.  Non-finite
    input is read as 0 and never reaches a filter's memory; denormals are
    flushed during the call.  Thread: audio.  No allocation, locks or
    system calls. */
void carry_rate_stream_process(carry_rate_stream *stream, const float *in,
                               const float *knobs, float *out, uint32_t n);

/** Two channels of one model, as two carry_rate_stream_process() calls
    give them bit for bit; without resampling, through
    carry_stream_process_pair(), which reads each weight once for both.
    Thread: audio. */
void carry_rate_stream_process_pair(carry_rate_stream *a, carry_rate_stream *b,
                                    const float *in_a, const float *in_b,
                                    const float *knobs, float *out_a,
                                    float *out_b, uint32_t n);

/** Returns to the state of a fresh stream (or of the settled one after
    carry_rate_stream_settle()).  Thread: audio. */
void carry_rate_stream_reset(carry_rate_stream *stream);

/** Lets the model settle, as carry_stream_settle() does, for up to
    `max_host_samples` host samples' worth of time at the model's rate,
    and makes that the state reset() returns to.  Returns the model
    samples run.  Thread: worker. */
uint32_t carry_rate_stream_settle(carry_rate_stream *stream,
                                  const float *knobs,
                                  uint32_t max_host_samples);

/** The delay from input to output, in host samples: exact, since the
    stream makes it a whole number.  0 unless resampling.  Thread: any. */
uint32_t carry_rate_stream_latency(const carry_rate_stream *stream);

/** The mode in force (never AUTO).  Thread: any. */
carry_rate_mode carry_rate_stream_mode(const carry_rate_stream *stream);

/** The core stream that runs the model (at the model's rate when
    resampling).  Thread: any. */
carry_stream *carry_rate_stream_core(const carry_rate_stream *stream);

/** Writes a one-line status ("model 48000 Hz, host 44100 Hz: resampling,
    latency 130 samples", or just "48000 Hz" when the rates are the same)
    into `text` (`size` bytes with the NUL, cut if need be) and returns its
    full length, as snprintf() does.
    Thread: any. */
size_t carry_rate_stream_describe(const carry_rate_stream *stream, char *text,
                                  size_t size);

#ifdef __cplusplus
}
#endif

#endif /* CARRY_RATE_H */
