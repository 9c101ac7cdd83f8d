/*
  Karplus-Strong plucked strings and the arrangement of the test signal.

  The string is a loop: a delay line of L samples, a two-tap low-pass
  H(z) = (1 - d) + d z^-1 (the "averaging" filter, darker as d grows to 0.5),
  a first-order all-pass for the fractional part of the period, and a loop
  gain g < 1.  A noise burst one period long excites it:

      v[n]  = y[n - L]
      lp[n] = (1 - d) v[n] + d v[n - 1]                 delay ~ d
      ap[n] = C lp[n] + lp[n - 1] - C ap[n - 1]         delay ~ (1 - C)/(1 + C)
      y[n]  = e[n] + g ap[n]

  The period P = rate / f is L + d + delta with delta in [0.1, 1.1) and
  C = (1 - delta) / (1 + delta).  The fundamental loses g per period, so a
  decay to -60 dB in T seconds needs g = 10^(-3 / (f T)).
*/

#include "guitar.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PI 3.14159265358979323846
#define RELEASE_SECONDS 0.01
#define LOWEST_FREQUENCY 20.0

/* ------------------------------------------------------------------------ */
/* Random numbers */

guitar_rng guitar_rng_new(uint64_t seed)
{
  guitar_rng rng = {seed * 0x9E3779B97F4A7C15ull + 0x6A09E667F3BCC909ull};
  if (!rng.state) {
    rng.state = 1;  // xorshift never leaves zero
  }
  return rng;
}

static uint64_t rng_next(guitar_rng *rng)
{
  uint64_t x = rng->state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  rng->state = x;
  return x * 0x2545F4914F6CDD1Dull;
}

double guitar_rng_uniform(guitar_rng *rng, double lo, double hi)
{
  const double unit = (double)(rng_next(rng) >> 11) / 9007199254740992.0;
  return lo + (hi - lo) * unit;
}

static int rng_int(guitar_rng *rng, int lo, int hi)
{
  return lo + (int)(rng_next(rng) % (uint64_t)(hi - lo + 1));
}

/* ------------------------------------------------------------------------ */
/* One string */

typedef struct ks_string {
  double *line;     ///< (L) the delay line, circular
  size_t length;    ///< L
  size_t cursor;    ///< Where y[n - L] is read and y[n] written
  double damping;   ///< d
  double allpass;   ///< C
  double gain;      ///< g
  double v_prev;    ///< v[n - 1]
  double lp_prev;   ///< lp[n - 1]
  double ap_prev;   ///< ap[n - 1]
} ks_string;

static bool ks_init(ks_string *s, double sample_rate, const guitar_pluck *p)
{
  const double period = sample_rate / p->frequency;
  s->damping = 0.05 + 0.45 * fmin(fmax(p->damping, 0.0), 1.0);
  const double fractional = period - s->damping;
  s->length = (size_t)floor(fractional - 0.1);
  const double delta = fractional - (double)s->length;
  s->allpass = (1.0 - delta) / (1.0 + delta);
  s->gain = pow(10.0, -3.0 / (p->frequency * p->decay_seconds));
  s->cursor = 0;
  s->v_prev = s->lp_prev = s->ap_prev = 0.0;
  s->line = calloc(s->length, sizeof(double));
  return s->line != NULL;
}

static double ks_step(ks_string *s, double excitation)
{
  const double v = s->line[s->cursor];
  const double lp = (1.0 - s->damping) * v + s->damping * s->v_prev;
  const double ap = s->allpass * lp + s->lp_prev - s->allpass * s->ap_prev;
  const double y = excitation + s->gain * ap;
  s->line[s->cursor] = y;
  s->cursor = s->cursor + 1 == s->length ? 0 : s->cursor + 1;
  s->v_prev = v;
  s->lp_prev = lp;
  s->ap_prev = ap;
  return y;
}

/** One period of noise: darker for a softer pluck, with the comb of the
    pluck position (a string plucked at 1/k of its length lacks every k-th
    harmonic) and no DC, which the loop would otherwise keep ringing. */
static double *make_burst(size_t length, const guitar_pluck *p,
                          guitar_rng *rng)
{
  double *burst = calloc(length, sizeof(double));
  if (!burst) {
    return NULL;
  }
  const double brightness = 0.15 + 0.85 * p->velocity;
  double smoothed = 0.0, mean = 0.0;
  for (size_t k = 0; k < length; ++k) {
    smoothed += brightness * (guitar_rng_uniform(rng, -1.0, 1.0) - smoothed);
    burst[k] = smoothed;
  }
  const size_t offset = (size_t)(p->position * (double)length);
  for (size_t k = length - 1; offset > 0 && k >= offset; --k) {
    burst[k] -= burst[k - offset];  // backwards: reads the unchanged past
  }
  for (size_t k = 0; k < length; ++k) {
    mean += burst[k] / (double)length;
  }
  for (size_t k = 0; k < length; ++k) {
    burst[k] = p->velocity * (burst[k] - mean);
  }
  return burst;
}

bool guitar_add_pluck(float *out, size_t n, double sample_rate,
                      const guitar_pluck *pluck, guitar_rng *rng)
{
  if (pluck->frequency < LOWEST_FREQUENCY ||
      pluck->frequency > sample_rate / 4.0) {
    return true;  // outside what the loop can tune: leave it out
  }
  ks_string string;
  if (!ks_init(&string, sample_rate, pluck)) {
    return false;
  }
  double *burst = make_burst(string.length, pluck, rng);
  if (!burst) {
    free(string.line);
    return false;
  }
  const size_t held = (size_t)(pluck->duration * sample_rate);
  const size_t release = (size_t)(RELEASE_SECONDS * sample_rate) + 1;
  const size_t end = held + release < n ? held + release : n;
  for (size_t t = 0; t < end; ++t) {
    const double e = t < string.length ? burst[t] : 0.0;
    const double fade = t < held ? 1.0 : (double)(held + release - t) /
                                            (double)release;
    out[t] += (float)(fade * ks_step(&string, e));
  }
  free(burst);
  free(string.line);
  return true;
}

/* ------------------------------------------------------------------------ */
/* The sweep */

void guitar_add_sweep(float *out, size_t n, double sample_rate, double f0,
                      double f1, double amplitude)
{
  if (n < 2 || f0 <= 0.0 || f1 <= f0) {
    return;
  }
  const double seconds = (double)n / sample_rate;
  const double ratio = log(f1 / f0);
  const size_t fade = (size_t)fmin(0.02 * sample_rate, (double)n / 4.0);
  for (size_t t = 0; t < n; ++t) {
    const double time = (double)t / sample_rate;
    const double phase = 2.0 * PI * f0 * seconds / ratio *
                         (exp(time / seconds * ratio) - 1.0);
    double gain = amplitude;
    if (t < fade) {
      gain *= (double)t / (double)fade;
    } else if (n - t <= fade) {
      gain *= (double)(n - t - 1) / (double)fade;
    }
    out[t] += (float)(gain * sin(phase));
  }
}

/* ------------------------------------------------------------------------ */
/* The arrangement */

/** Where a section lies, in frames. */
typedef struct section {
  size_t start;
  size_t length;
} section;

/** A renderer's shared context. */
typedef struct arrangement {
  float *out;
  size_t n;
  double rate;
  guitar_rng rng;
} arrangement;

static double midi_hz(double note)
{
  return 440.0 * pow(2.0, (note - 69.0) / 12.0);
}

/** Adds a pluck at `start` seconds into the section, cut at its end. */
static bool play(arrangement *a, const section *s, double start,
                 guitar_pluck pluck)
{
  const size_t offset = (size_t)(start * a->rate);
  if (offset >= s->length) {
    return true;
  }
  const double room = (double)(s->length - offset) / a->rate - RELEASE_SECONDS;
  pluck.duration = fmin(pluck.duration, room);
  if (pluck.duration <= 0.0) {
    return true;
  }
  return guitar_add_pluck(a->out + s->start + offset, s->length - offset,
                          a->rate, &pluck, &a->rng);
}

/* Open-position voicings, low string first (MIDI notes). */
static const int chords[][6] = {
  {40, 47, 52, 56, 59, 64},  // E
  {45, 52, 57, 60, 64, 0},   // Am
  {48, 52, 55, 60, 64, 0},   // C
  {43, 47, 50, 55, 59, 67},  // G
  {50, 57, 62, 66, 0, 0},    // D
  {40, 47, 52, 55, 59, 64},  // Em
};

static bool strum(arrangement *a, const section *s, double start,
                  double length)
{
  const int *chord = chords[rng_int(&a->rng, 0, 5)];
  const bool is_upstroke = rng_int(&a->rng, 0, 3) == 0;
  const double spread = guitar_rng_uniform(&a->rng, 0.0015, 0.005);
  const double velocity = guitar_rng_uniform(&a->rng, 0.5, 1.0);
  int n_strings = 0;
  while (n_strings < 6 && chord[n_strings]) {
    ++n_strings;
  }
  for (int k = 0; k < n_strings; ++k) {
    const int string = is_upstroke ? n_strings - 1 - k : k;
    const double delay = spread * k;
    const guitar_pluck pluck = {
      .frequency = midi_hz(chord[string] +
                           guitar_rng_uniform(&a->rng, -0.03, 0.03)),
      .velocity = velocity * guitar_rng_uniform(&a->rng, 0.8, 1.0),
      .damping = guitar_rng_uniform(&a->rng, 0.3, 0.6),
      .decay_seconds = guitar_rng_uniform(&a->rng, 2.0, 4.0),
      .duration = length - delay,
      .position = guitar_rng_uniform(&a->rng, 0.1, 0.3),
    };
    if (!play(a, s, start + delay, pluck)) {
      return false;
    }
  }
  return true;
}

static bool render_chords(arrangement *a, const section *s)
{
  const double seconds = (double)s->length / a->rate;
  for (double time = 0.0; time < seconds; time += 1.0) {
    if (!strum(a, s, time, 1.0)) {
      return false;
    }
  }
  return true;
}

/* E minor pentatonic over two octaves. */
static const int scale[] = {52, 55, 57, 59, 62, 64, 67, 69, 71, 74, 76};

static bool render_notes(arrangement *a, const section *s)
{
  const double seconds = (double)s->length / a->rate, eighth = 0.25;
  for (double time = 0.0; time < seconds;) {
    const double length = eighth * rng_int(&a->rng, 1, 3);
    const guitar_pluck pluck = {
      .frequency = midi_hz(scale[rng_int(&a->rng, 0, 10)]),
      .velocity = guitar_rng_uniform(&a->rng, 0.4, 1.0),
      .damping = guitar_rng_uniform(&a->rng, 0.2, 0.5),
      .decay_seconds = guitar_rng_uniform(&a->rng, 1.5, 3.0),
      .duration = length,
      .position = guitar_rng_uniform(&a->rng, 0.1, 0.3),
    };
    if (rng_int(&a->rng, 0, 5) > 0 && !play(a, s, time, pluck)) {
      return false;  // one note in six is a rest
    }
    time += length;
  }
  return true;
}

/** Chugging eighths on the low strings: a short decay, a dark loop and a
    dark burst, as when the palm rests on the strings by the bridge. */
static bool render_palm_mutes(arrangement *a, const section *s)
{
  const double seconds = (double)s->length / a->rate, eighth = 0.25;
  for (double time = 0.0; time < seconds; time += eighth) {
    const int root = rng_int(&a->rng, 0, 1) ? 40 : 45;
    const int n_strings = rng_int(&a->rng, 1, 2);  // root, or power chord
    for (int k = 0; k < n_strings; ++k) {
      const guitar_pluck pluck = {
        .frequency = midi_hz(root + 7 * k),
        .velocity = guitar_rng_uniform(&a->rng, 0.25, 0.6),
        .damping = guitar_rng_uniform(&a->rng, 0.9, 1.0),
        .decay_seconds = guitar_rng_uniform(&a->rng, 0.08, 0.2),
        .duration = eighth * 0.9,
        .position = guitar_rng_uniform(&a->rng, 0.05, 0.15),
      };
      if (!play(a, s, time + 0.003 * k, pluck)) {
        return false;
      }
    }
  }
  return true;
}

static void normalize(float *x, size_t n, double peak_dbfs)
{
  float peak = 0.0f;
  for (size_t t = 0; t < n; ++t) {
    peak = fmaxf(peak, fabsf(x[t]));
  }
  if (peak > 0.0f) {
    const float gain = (float)(pow(10.0, peak_dbfs / 20.0) / peak);
    for (size_t t = 0; t < n; ++t) {
      x[t] *= gain;
    }
  }
}

/* Section lengths at the nominal 12 s, silences between them. */
enum { CHORDS, NOTES, PALM_MUTES, SWEEP, N_SECTIONS };
static const double nominal_seconds = 12.0;
static const double nominal_starts[N_SECTIONS] = {0.2, 4.2, 7.7, 10.0};
static const double nominal_lengths[N_SECTIONS] = {3.5, 3.0, 1.8, 1.8};

static section place(size_t n, int index)
{
  const double scale_to_n = (double)n / nominal_seconds;
  section s = {(size_t)(nominal_starts[index] * scale_to_n),
               (size_t)(nominal_lengths[index] * scale_to_n)};
  return s;
}

bool guitar_render(float *out, size_t n, double sample_rate, uint64_t seed)
{
  arrangement a = {out, n, sample_rate, guitar_rng_new(seed)};
  memset(out, 0, n * sizeof(float));
  const section chords_s = place(n, CHORDS), notes_s = place(n, NOTES);
  const section palm_s = place(n, PALM_MUTES), sweep_s = place(n, SWEEP);
  if (!render_chords(&a, &chords_s) || !render_notes(&a, &notes_s) ||
      !render_palm_mutes(&a, &palm_s)) {
    return false;
  }
  normalize(out, n, GUITAR_PEAK_DBFS);
  /* The sweep goes in after normalising, at the target peak itself. */
  guitar_add_sweep(out + sweep_s.start, sweep_s.length, sample_rate, 20.0,
                   fmin(20000.0, 0.45 * sample_rate),
                   pow(10.0, GUITAR_PEAK_DBFS / 20.0));
  return true;
}
