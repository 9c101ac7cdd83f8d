/*
  Which streaming resampler Carry puts around a model: a benchmark, not a
  test.  Compares speexdsp (quality 5 to 10) and libsoxr (HQ and VHQ,
  streaming) on the rate pairs a 48 kHz model meets, in one process:

  - pass band: sines at 1, 15 and 20 kHz; the gain error of the tone and
    the level of everything else in the output (images, aliases, noise)
    relative to it, from a least-squares fit of the tone;
  - stop band: a sine between the output's and the input's Nyquist
    frequency (downsampling only): its level in the output, which is all
    alias;
  - delay: the signal delay from the phase of a 100 Hz sine (checked
    against 1 kHz), in output samples, and whether it is an integer; and
    the output held back while streaming in blocks of 1 (what a FIFO must
    cover on top of the delay to return every block in full);
  - CPU: ns per input sample, median of several runs over noise in blocks
    of 256, and the same for noise at denormal level (without flushing);
  - allocations and frees inside the process calls, counted by the
    interposer after a warm-up, with random block sizes;
  - whether the output is bit for bit the same for blocks of 1, of 4096
    and of random sizes.

  Run with `meson test -C build --benchmark resamplers`.  Results are
  printed, not asserted.
*/

#define _GNU_SOURCE

#include "interposer.h"

#include <math.h>
#include <soxr.h>
#include <speex/speex_resampler.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { N_ROUNDS = 5, TIMING_BLOCK = 256 };

/* ------------------------------------------------------------------------ */
/* The two libraries behind one interface */

typedef struct {
  const char *library;
  int quality;     ///< speexdsp 0..10, or SOXR_HQ / SOXR_VHQ
  int in_rate, out_rate;
  SpeexResamplerState *speex;
  soxr_t soxr;
} resampler;

static bool resampler_open(resampler *r)
{
  int err = 0;
  if (!strcmp(r->library, "speexdsp")) {
    r->speex = speex_resampler_init(1, (spx_uint32_t)r->in_rate,
                                    (spx_uint32_t)r->out_rate, r->quality,
                                    &err);
    return r->speex != NULL;
  }
  soxr_error_t e = NULL;
  const soxr_quality_spec_t q = soxr_quality_spec((unsigned long)r->quality, 0);
  r->soxr = soxr_create(r->in_rate, r->out_rate, 1, &e, NULL, &q, NULL);
  return r->soxr != NULL && !e;
}

static void resampler_close(resampler *r)
{
  if (r->speex) {
    speex_resampler_destroy(r->speex);
  }
  if (r->soxr) {
    soxr_delete(r->soxr);
  }
  r->speex = NULL;
  r->soxr = NULL;
}

/** Feeds all `n` inputs and returns how many outputs came (at most cap);
    `*is_short` is set if some input was left unconsumed. */
static size_t resampler_run(resampler *r, const float *in, size_t n,
                            float *out, size_t cap, bool *is_short)
{
  if (r->speex) {
    spx_uint32_t n_in = (spx_uint32_t)n, n_out = (spx_uint32_t)cap;
    speex_resampler_process_float(r->speex, 0, in, &n_in, out, &n_out);
    *is_short |= n_in != n;
    return n_out;
  }
  size_t used = 0, made = 0;
  soxr_process(r->soxr, in, n, &used, out, cap, &made);
  *is_short |= used != n;
  return made;
}

/** Streams `n` samples in blocks of `block` (0: random 1..4096) and
    returns the number of outputs; `held` gets the most output held back
    relative to the ideal count n * out / in, at the ends of blocks. */
static size_t stream(resampler *r, const float *in, size_t n, size_t block,
                     float *out, size_t cap, double *held)
{
  uint64_t rng = 88172645463325252ull;
  size_t done = 0, made = 0;
  bool is_short = false;
  *held = 0.0;
  while (done < n) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    size_t b = block ? block : 1 + (size_t)(rng % 4096);
    b = b < n - done ? b : n - done;
    made += resampler_run(r, in + done, b, out + made, cap - made, &is_short);
    done += b;
    const double ideal = (double)done * r->out_rate / r->in_rate;
    *held = ideal - (double)made > *held ? ideal - (double)made : *held;
  }
  if (is_short) {
    printf("  (input left unconsumed)\n");
  }
  return made;
}

/* ------------------------------------------------------------------------ */
/* Signals and fits */

static void sine(float *x, size_t n, double f, double rate, double amp)
{
  for (size_t t = 0; t < n; ++t) {
    x[t] = (float)(amp * sin(2 * M_PI * f * (double)t / rate));
  }
}

static void noise(float *x, size_t n, double amp)
{
  uint64_t s = 0x9E3779B97F4A7C15ull;
  for (size_t t = 0; t < n; ++t) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    x[t] = (float)(amp * ((double)(s >> 11) / 9007199254740992.0 * 2 - 1));
  }
}

/** Least-squares amplitude and phase of a sine of `f` Hz in x[a..b), and
    the power of what is left. */
typedef struct {
  double amplitude, phase, residual_power;
} tone_fit;

static tone_fit fit(const float *x, size_t a, size_t b, double f, double rate)
{
  double ss = 0, sc = 0, cc = 0, xs = 0, xc = 0;
  for (size_t t = a; t < b; ++t) {
    const double w = 2 * M_PI * f * (double)t / rate;
    const double s = sin(w), c = cos(w);
    ss += s * s, sc += s * c, cc += c * c, xs += x[t] * s, xc += x[t] * c;
  }
  const double det = ss * cc - sc * sc;
  const double ka = (xs * cc - xc * sc) / det, kb = (xc * ss - xs * sc) / det;
  double r = 0;
  for (size_t t = a; t < b; ++t) {
    const double w = 2 * M_PI * f * (double)t / rate;
    const double e = x[t] - ka * sin(w) - kb * cos(w);
    r += e * e;
  }
  return (tone_fit){hypot(ka, kb), atan2(kb, ka), r / (double)(b - a)};
}

static double db(double power_ratio)
{
  return 10 * log10(power_ratio > 1e-30 ? power_ratio : 1e-30);
}

/* ------------------------------------------------------------------------ */
/* Measurements */

typedef struct {
  float *in, *out, *out2;
  size_t n_in, cap;
} buffers;

/** Gain error (dB) and everything else (dB below the tone) for a tone. */
static void measure_tone(resampler *r, buffers *b, double f, double *gain_db,
                         double *rest_db)
{
  const double amp = 0.5;
  double held;
  sine(b->in, b->n_in, f, r->in_rate, amp);
  resampler_open(r);
  const size_t n = stream(r, b->in, b->n_in, 256, b->out, b->cap, &held);
  resampler_close(r);
  const tone_fit t = fit(b->out, n / 3, n - n / 6, f, r->out_rate);
  *gain_db = 20 * log10(t.amplitude / amp);
  *rest_db = db(t.residual_power / (t.amplitude * t.amplitude / 2));
}

/** The level (dB re the input) of a tone the output cannot carry. */
static double measure_stopband(resampler *r, buffers *b, double f)
{
  double held;
  sine(b->in, b->n_in, f, r->in_rate, 1.0);
  resampler_open(r);
  const size_t n = stream(r, b->in, b->n_in, 256, b->out, b->cap, &held);
  resampler_close(r);
  double p = 0;
  for (size_t t = n / 3; t < n - n / 6; ++t) {
    p += (double)b->out[t] * b->out[t];
  }
  return db(p / (double)(n - n / 6 - n / 3) / 0.5);
}

/** The output's delay behind the input (output samples) at `f` Hz,
    within one period. */
static double phase_delay(resampler *r, buffers *b, double f)
{
  double held;
  sine(b->in, b->n_in, f, r->in_rate, 0.5);
  resampler_open(r);
  const size_t n = stream(r, b->in, b->n_in, 256, b->out, b->cap, &held);
  resampler_close(r);
  const tone_fit t = fit(b->out, n / 3, n - n / 6, f, r->out_rate);
  const double period = r->out_rate / f;
  const double d = -t.phase / (2 * M_PI) * period;
  return fmod(fmod(d, period) + period, period);
}

static double measure_delay(resampler *r, buffers *b, bool *is_linear)
{
  const double coarse = phase_delay(r, b, 100.0);
  const double fine = phase_delay(r, b, 1000.0);
  const double period = r->out_rate / 1000.0;
  const double unwrapped = fine + period * round((coarse - fine) / period);
  *is_linear = fabs(unwrapped - coarse) < 0.05;
  return unwrapped;
}

static double measure_held(resampler *r, buffers *b)
{
  double held;
  noise(b->in, b->n_in / 4, 0.5);
  resampler_open(r);
  stream(r, b->in, b->n_in / 4, 1, b->out, b->cap, &held);
  resampler_close(r);
  return held;
}

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

/** Median ns per input sample over `n` samples of noise of the given
    level. */
static double measure_cpu(resampler *r, buffers *b, size_t n, double level)
{
  double runs[N_ROUNDS], held;
  noise(b->in, n, level);
  resampler_open(r);
  for (int k = 0; k < N_ROUNDS; ++k) {
    const double start = now_ns();
    stream(r, b->in, n, TIMING_BLOCK, b->out, b->cap, &held);
    runs[k] = (now_ns() - start) / (double)n;
  }
  resampler_close(r);
  qsort(runs, N_ROUNDS, sizeof(double), by_value);
  return runs[N_ROUNDS / 2];
}

/** Allocations and frees inside the process calls after a warm-up. */
static long measure_allocs(resampler *r, buffers *b)
{
  double held;
  noise(b->in, b->n_in, 0.5);
  resampler_open(r);
  stream(r, b->in, b->n_in / 4, 0, b->out, b->cap, &held);
  interposer->n_allocs = interposer->n_frees = 0;
  interposer->is_counting = 1;
  stream(r, b->in, b->n_in, 0, b->out, b->cap, &held);
  interposer->is_counting = 0;
  resampler_close(r);
  return interposer->n_allocs + interposer->n_frees;
}

/** Whether blocks of 1, of 4096 and of random sizes give the same output
    (over what all three produced). */
static bool measure_invariance(resampler *r, buffers *b)
{
  const size_t n_in = b->n_in / 4;
  size_t n[3];
  const size_t blocks[3] = {4096, 1, 0};
  float *outs[3] = {b->out, b->out2, b->out2 + b->cap / 2};
  double held;
  noise(b->in, n_in, 0.5);
  for (int k = 0; k < 3; ++k) {
    resampler_open(r);
    n[k] = stream(r, b->in, n_in, blocks[k], outs[k], b->cap / 2, &held);
    resampler_close(r);
  }
  const size_t common = n[0] < n[1] ? (n[0] < n[2] ? n[0] : n[2])
                                    : (n[1] < n[2] ? n[1] : n[2]);
  return !memcmp(outs[0], outs[1], common * sizeof(float)) &&
         !memcmp(outs[0], outs[2], common * sizeof(float));
}

/* ------------------------------------------------------------------------ */
/* The table */

static void report(resampler *r, buffers *b)
{
  double g[3], rest[3];
  const double tones[3] = {1000.0, 15000.0, 20000.0};
  for (int k = 0; k < 3; ++k) {
    measure_tone(r, b, tones[k], &g[k], &rest[k]);
  }
  const double nyq_in = r->in_rate / 2.0, nyq_out = r->out_rate / 2.0;
  const double stop = nyq_in > nyq_out
                        ? measure_stopband(r, b, (nyq_in + nyq_out) / 2)
                        : NAN;
  bool is_linear;
  const double delay = measure_delay(r, b, &is_linear);
  const double held = measure_held(r, b);
  const double cpu = measure_cpu(r, b, b->n_in, 0.5);
  const double cpu_denormal = measure_cpu(r, b, b->n_in / 32, 1e-39);
  const long allocs = measure_allocs(r, b);
  const bool is_invariant = measure_invariance(r, b);
  char q[8];
  if (!strcmp(r->library, "speexdsp")) {
    snprintf(q, sizeof(q), "%d", r->quality);
  } else {
    snprintf(q, sizeof(q), "%s", r->quality == SOXR_VHQ ? "VHQ" : "HQ");
  }
  printf("%-8s %-5s %6d>%-6d %+6.3f %+6.3f %+6.3f %6.1f %6.1f %6.1f "
         "%6.1f %8.3f%s %5.1f %6.1f %6.1f %6ld %s\n",
         r->library, q, r->in_rate,
         r->out_rate, g[0], g[1], g[2], rest[0], rest[1], rest[2], stop, delay,
         is_linear ? (fabs(delay - round(delay)) < 0.01 ? "i" : " ") : "?",
         held, cpu, cpu_denormal, allocs, is_invariant ? "yes" : "NO");
}

static void header(void)
{
  printf("Gain: tone level out/in (dB) at 1k/15k/20k.  Rest: everything but "
         "the tone, dB re the tone.\nStop: a tone between the two Nyquist "
         "frequencies, dB re input.  Delay: signal delay, output samples "
         "(i = integer, ? = not the same at 100 Hz and 1 kHz).\nHeld: output "
         "held back streaming blocks of 1.  ns: per input sample, normal / "
         "denormal-level input.  Allocs: allocations + frees in process.\n\n");
  printf("%-8s %-5s %-13s %-6s %-6s %-6s %-6s %-6s %-6s %-6s %-9s %-5s "
         "%-6s %-6s %-6s %s\n",
         "library", "q", "rates", "g1k", "g15k", "g20k", "r1k", "r15k", "r20k",
         "stop", "delay", "held", "ns", "ns-den", "allocs", "invariant");
}

int main(void)
{
  interposer_init();
  const int pairs[][2] = {{44100, 48000}, {48000, 44100}, {88200, 48000},
                          {48000, 88200}, {96000, 48000}, {48000, 96000}};
  const int soxr_q[] = {SOXR_HQ, SOXR_VHQ};
  buffers b = {.n_in = 96000 * 2};
  b.cap = b.n_in * 3;
  b.in = calloc(b.n_in, sizeof(float));
  b.out = calloc(b.cap, sizeof(float));
  b.out2 = calloc(b.cap, sizeof(float));
  if (!b.in || !b.out || !b.out2) {
    return 1;
  }
  header();
  for (size_t p = 0; p < sizeof(pairs) / sizeof(pairs[0]); ++p) {
    for (int q = 5; q <= 10; ++q) {
      report(&(resampler){"speexdsp", q, pairs[p][0], pairs[p][1], 0, 0}, &b);
    }
    for (int q = 0; q < 2; ++q) {
      report(&(resampler){"soxr", soxr_q[q], pairs[p][0], pairs[p][1], 0, 0},
             &b);
    }
    fflush(stdout);
  }
  free(b.in);
  free(b.out);
  free(b.out2);
  return 0;
}
