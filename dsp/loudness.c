/*
  Loudness: how loud a model plays, so that models of very different output
  levels can be brought to a common one.  NAM files state it; for the
  others Carry measures it once on a fixed reference signal.
*/

#include "internal.h"

#include <math.h>
#include <stdlib.h>

#define REFERENCE_SECONDS 1.0
#define REFERENCE_RMS_DB (-18.0)

/** Multiply-adds a measurement may spend on settling and on the signal,
    each (about a quarter of a second here): a model too big for real time
    gets a shorter signal rather than minutes of work, down to 50 ms. */
#define MEASURE_BUDGET_MACS 1e10

/** A decaying string-like tone: harmonics k = 1..n at 1/k, each fading
    faster than the one below, from `start` seconds. */
static double pluck(double t, double start, double frequency, int n)
{
  if (t < start) {
    return 0.0;
  }
  const double s = t - start;
  double sum = 0.0;
  for (int k = 1; k <= n; ++k) {
    sum += sin(2.0 * M_PI * k * frequency * s) * exp(-(3.0 + k) * s) / k;
  }
  return sum;
}

/** One sample of the reference signal before its level is set: a plucked
    A2, then an E major chord, then a logarithmic sweep 100 Hz - 5 kHz. */
static double reference_sample(double t)
{
  static const double chord[] = {82.41, 123.47, 164.81, 207.65, 246.94,
                                 329.63};
  if (t < 0.35) {
    return pluck(t, 0.0, 110.0, 10);
  }
  if (t < 0.7) {
    double sum = 0.0;
    for (int k = 0; k < 6; ++k) {
      sum += 0.5 * pluck(t, 0.35 + 0.008 * k, chord[k], 4);
    }
    return sum;
  }
  const double s = (t - 0.7) / 0.3, ratio = 50.0; // 100 Hz to 5 kHz
  const double phase = 100.0 * 0.3 * (pow(ratio, s) - 1.0) / log(ratio);
  return 0.5 * sin(2.0 * M_PI * phase);
}

/** The reference signal at `rate`, scaled to REFERENCE_RMS_DB. */
static void make_reference(float *x, size_t n, double rate)
{
  double power = 0.0;
  for (size_t t = 0; t < n; ++t) {
    const double v = reference_sample((double)t / rate);
    power += v * v;
  }
  const double scale =
    pow(10.0, REFERENCE_RMS_DB / 20.0) / sqrt(power / (double)n);
  for (size_t t = 0; t < n; ++t) {
    x[t] = (float)(scale * reference_sample((double)t / rate));
  }
}

static double rms_db(const float *x, size_t n)
{
  double power = 0.0;
  for (size_t t = 0; t < n; ++t) {
    power += (double)x[t] * (double)x[t];
  }
  return 10.0 * log10(power / (double)n + 1e-30);
}

carry_status carry_model_measure_loudness(carry_model *model, carry_error *err)
{
  if (model->spec.has_loudness) {
    return carry_succeed(err);
  }
  const double rate =
    model->spec.sample_rate > 0.0 ? model->spec.sample_rate : 48000.0;
  const double affordable = MEASURE_BUDGET_MACS / (double)carry_model_macs(model);
  const double seconds =
    fmax(0.05, fmin(REFERENCE_SECONDS, affordable / rate));
  const size_t n = (size_t)(seconds * rate);
  float *signal = malloc(2 * n * sizeof(float));
  carry_stream *stream = carry_stream_create(model, 256, err);
  if (!signal || !stream) {
    free(signal);
    carry_stream_free(stream);
    return carry_fail(err, CARRY_ERR_NO_MEMORY,
                      "out of memory measuring loudness");
  }
  make_reference(signal, n, rate);
  carry_stream_settle(stream, NULL,
                      n < CARRY_SETTLE_SAMPLES ? (uint32_t)n
                                               : CARRY_SETTLE_SAMPLES);
  carry_stream_process(stream, signal, NULL, signal + n, (uint32_t)n);
  model->spec.loudness_db = (float)rms_db(signal + n, n);
  model->spec.has_loudness = true;
  model->spec.is_loudness_measured = true;
  free(signal);
  carry_stream_free(stream);
  return carry_succeed(err);
}

float carry_model_normalize_gain_db(const carry_model *model)
{
  return model->spec.has_loudness
           ? CARRY_NORMALIZED_LOUDNESS_DB - model->spec.loudness_db
           : 0.0f;
}
