/*
  What resampling costs: a benchmark, not a test.

  Times, in one process, the trained 48 kHz model (tests/models/
  presets/diode-clipper.json, LSTM-16) run at its own rate by a core stream,
  and the same model in a rate stream at host rates of 44.1, 88.2, 96 and
  192 kHz, on the guitar-like signal in blocks of 128; and the rate stream
  again on input at a subnormal level, which would slow unflushed
  resamplers down many times.  Each figure is the median of several
  rounds of 2 s of audio.  The ratio compares the CPU share of real time:
  ns per host sample times the host rate, over ns per model sample times
  48000.

  Run with `meson test -C build --benchmark rate`.  Results are printed,
  not asserted.
*/

#define _GNU_SOURCE

#include "carry_rate.h"
#include "guitar.h"
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { N_ROUNDS = 7, BLOCK = 128 };

static double now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int by_value(const void *a, const void *b)
{
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *runs)
{
  qsort(runs, N_ROUNDS, sizeof(double), by_value);
  return runs[N_ROUNDS / 2];
}

/** Median ns per sample of the core stream at the model's rate. */
static double time_core(const carry_model *model, const float *x, size_t n)
{
  double runs[N_ROUNDS];
  float *y = calloc(n, sizeof(float));
  carry_stream *s = carry_stream_create(model, BLOCK, NULL);
  for (int r = 0; r < N_ROUNDS && y && s; ++r) {
    const double start = now_ns();
    for (size_t t = 0; t < n; t += BLOCK) {
      carry_stream_process(s, x + t, NULL, y + t, BLOCK);
    }
    runs[r] = (now_ns() - start) / (double)n;
  }
  carry_stream_free(s);
  free(y);
  return median(runs);
}

/** Median ns per host sample of a rate stream. */
static double time_rate(const carry_model *model, double host, const float *x,
                        size_t n)
{
  double runs[N_ROUNDS];
  float *y = calloc(n, sizeof(float));
  carry_rate_stream *s = carry_rate_stream_create(model, host, CARRY_RATE_AUTO,
                                                  BLOCK, NULL);
  for (int r = 0; r < N_ROUNDS && y && s; ++r) {
    const double start = now_ns();
    for (size_t t = 0; t < n; t += BLOCK) {
      carry_rate_stream_process(s, x + t, NULL, y + t, BLOCK);
    }
    runs[r] = (now_ns() - start) / (double)n;
  }
  carry_rate_stream_free(s);
  free(y);
  return median(runs);
}

static float *signal_at(double rate, size_t n, float level)
{
  float *x = calloc(n, sizeof(float));
  if (x && !guitar_render(x, n, rate, 3)) {
    free(x);
    return NULL;
  }
  for (size_t t = 0; x && t < n; ++t) {
    x[t] *= level;
  }
  return x;
}

int main(void)
{
  carry_error err;
  carry_model *model = carry_model_load(
    test_source_path("presets/diode-clipper.json"), &err);
  if (!model) {
    fprintf(stderr, "%s\n", err.message);
    return 1;
  }
  const size_t n48 = 2 * 48000;
  float *x48 = signal_at(48000.0, n48, 1.0f);
  const double own = time_core(model, x48, n48);
  printf("model at its own rate (48000 Hz): %.1f ns/sample\n", own);
  const double hosts[] = {44100.0, 88200.0, 96000.0, 192000.0};
  for (size_t h = 0; h < sizeof(hosts) / sizeof(hosts[0]); ++h) {
    const size_t n = (size_t)(2 * hosts[h]) / BLOCK * BLOCK;
    float *x = signal_at(hosts[h], n, 1.0f);
    float *tiny = signal_at(hosts[h], n, 1e-38f);
    const double ns = time_rate(model, hosts[h], x, n);
    const double ns_tiny = time_rate(model, hosts[h], tiny, n);
    printf("resampling at %6.0f Hz: %6.1f ns/host sample, CPU %.2fx the "
           "model at its rate; subnormal-level input %6.1f ns (%.2fx)\n",
           hosts[h], ns, ns * hosts[h] / (own * 48000.0), ns_tiny,
           ns_tiny / ns);
    free(x);
    free(tiny);
  }
  free(x48);
  carry_model_free(model);
  return 0;
}
