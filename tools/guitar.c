/*
  Karplus-Strong plucked strings and the two arrangements: the 12-second
  tour and the training programme (see guitar.h).

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

/** Uniform in [lo, hi) from the arrangement's generator. */
static double draw(arrangement *a, double lo, double hi)
{
  return guitar_rng_uniform(&a->rng, lo, hi);
}

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

/** The strings a voicing uses (4 to 6). */
static int chord_size(const int *chord)
{
  int n_strings = 0;
  while (n_strings < 6 && chord[n_strings]) {
    ++n_strings;
  }
  return n_strings;
}

/** Strums a random chord; `loudness` (0..1] scales every string's
    velocity. */
static bool strum(arrangement *a, const section *s, double start,
                  double length, double loudness)
{
  const int *chord = chords[rng_int(&a->rng, 0, 5)];
  const bool is_upstroke = rng_int(&a->rng, 0, 3) == 0;
  const double spread = guitar_rng_uniform(&a->rng, 0.0015, 0.005);
  const double velocity = loudness * guitar_rng_uniform(&a->rng, 0.5, 1.0);
  const int n_strings = chord_size(chord);
  for (int k = 0; k < n_strings; ++k) {
    const int string = is_upstroke ? n_strings - 1 - k : k;
    const double delay = spread * k;
    /* One draw per statement: C leaves the order in which an
       initializer list's expressions run unspecified. */
    guitar_pluck pluck;
    pluck.frequency = midi_hz(chord[string] + draw(a, -0.03, 0.03));
    pluck.velocity = velocity * draw(a, 0.8, 1.0);
    pluck.damping = draw(a, 0.3, 0.6);
    pluck.decay_seconds = draw(a, 2.0, 4.0);
    pluck.duration = length - delay;
    pluck.position = draw(a, 0.1, 0.3);
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
    if (!strum(a, s, time, 1.0, 1.0)) {
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
    guitar_pluck pluck;
    pluck.frequency = midi_hz(scale[rng_int(&a->rng, 0, 10)]);
    pluck.velocity = draw(a, 0.4, 1.0);
    pluck.damping = draw(a, 0.2, 0.5);
    pluck.decay_seconds = draw(a, 1.5, 3.0);
    pluck.duration = length;
    pluck.position = draw(a, 0.1, 0.3);
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
      guitar_pluck pluck;
      pluck.frequency = midi_hz(root + 7 * k);
      pluck.velocity = draw(a, 0.25, 0.6);
      pluck.damping = draw(a, 0.9, 1.0);
      pluck.decay_seconds = draw(a, 0.08, 0.2);
      pluck.duration = eighth * 0.9;
      pluck.position = draw(a, 0.05, 0.15);
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
static const double nominal_seconds = GUITAR_TOUR_SECONDS;
static const double nominal_starts[N_SECTIONS] = {0.2, 4.2, 7.7, 10.0};
static const double nominal_lengths[N_SECTIONS] = {3.5, 3.0, 1.8, 1.8};

static section place(size_t n, int index)
{
  const double scale_to_n = (double)n / nominal_seconds;
  section s = {(size_t)(nominal_starts[index] * scale_to_n),
               (size_t)(nominal_lengths[index] * scale_to_n)};
  return s;
}

bool guitar_render_tour(float *out, size_t n, double sample_rate,
                       uint64_t seed)
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

/* ------------------------------------------------------------------------ */
/* The training programme */

/* A programme is a chain of phrases, each drawn at random: its kind, its
   length, how the force of the playing changes through it, and its peak
   level.  Each phrase is rendered whole into a scratch buffer, brought to
   its level there, and cut only when added to the output, so a longer
   render of a seed starts with the same material as a shorter one. */

#define PHRASE_MAX_SECONDS 10.0
#define SOFTEST_PHRASE_DBFS (-42.0)  ///< The quietest phrase's peak

/** How the force of the playing changes through a phrase. */
typedef enum dynamics {
  STEADY,
  CRESCENDO,    ///< From 15% of full force (-16 dB) to full force
  DECRESCENDO,  ///< The reverse
  ACCENTED,     ///< Soft, with about one note in three hit hard
  N_DYNAMICS,
} dynamics;

typedef struct phrase {
  section span;     ///< In the scratch buffer, from frame 0
  double seconds;   ///< Its length
  dynamics shape;
} phrase;

/** The force (0..1], which scales velocity, `time` seconds in. */
static double force_at(arrangement *a, const phrase *p, double time)
{
  const double x = fmin(fmax(time / p->seconds, 0.0), 1.0);
  switch (p->shape) {
  case CRESCENDO: return 0.15 + 0.85 * x;
  case DECRESCENDO: return 1.0 - 0.85 * x;
  case ACCENTED: return draw(a, 0.0, 1.0) < 0.3 ? 1.0 : 0.4;
  case STEADY:
  case N_DYNAMICS: break;
  }
  return 1.0;
}

/** Strummed chords at a random pace, choked or left to ring over the
    next. */
static bool phrase_strums(arrangement *a, const phrase *p)
{
  const double interval = draw(a, 0.2, 1.2);
  const double ring = draw(a, 0.4, 1.5);
  for (double time = 0.0; time < p->seconds; time += interval) {
    const double force = force_at(a, p, time);
    if (!strum(a, &p->span, time, interval * ring, force)) {
      return false;
    }
  }
  return true;
}

/* E minor pentatonic from E2 to E6. */
static const int wide_scale[] = {40, 43, 45, 47, 50, 52, 55, 57, 59, 62, 64,
                                 67, 69, 71, 74, 76, 79, 81, 83, 86, 88};
#define N_WIDE_SCALE ((int)(sizeof(wide_scale) / sizeof(wide_scale[0])))

/** A line of single notes wandering over four octaves: sixteenths to half
    notes at 70 to 170 beats a minute, half-length to legato, a rest in
    eight. */
static bool phrase_melody(arrangement *a, const phrase *p)
{
  const double beat = 60.0 / draw(a, 70.0, 170.0);
  const double articulation = draw(a, 0.5, 1.0);
  int degree = rng_int(&a->rng, 0, N_WIDE_SCALE - 1);
  for (double time = 0.0; time < p->seconds;) {
    const double length = beat / 4.0 * (double)(1 << rng_int(&a->rng, 0, 3));
    const int next = degree + rng_int(&a->rng, -3, 3);
    degree = next < 0 ? 0 : next >= N_WIDE_SCALE ? N_WIDE_SCALE - 1 : next;
    const double force = force_at(a, p, time);
    guitar_pluck pluck;
    pluck.frequency = midi_hz(wide_scale[degree] + draw(a, -0.05, 0.05));
    pluck.velocity = force * draw(a, 0.6, 1.0);
    pluck.damping = draw(a, 0.1, 0.6);
    pluck.decay_seconds = draw(a, 1.0, 4.0);
    pluck.duration = length * articulation;
    pluck.position = draw(a, 0.08, 0.35);
    if (rng_int(&a->rng, 0, 7) > 0 && !play(a, &p->span, time, pluck)) {
      return false;
    }
    time += length;
  }
  return true;
}

/* Low roots for riffs: D2, E2, G2, A2. */
static const int riff_roots[] = {38, 40, 43, 45};

/** Palm-muted eighths or sixteenths on a power chord at 90 to 180 beats a
    minute, with one in eight let ring open as an accent. */
static bool phrase_chugs(arrangement *a, const phrase *p)
{
  const double beat = 60.0 / draw(a, 90.0, 180.0);
  const double step = beat / (rng_int(&a->rng, 0, 1) ? 2.0 : 4.0);
  const int root = riff_roots[rng_int(&a->rng, 0, 3)];
  for (double time = 0.0; time < p->seconds; time += step) {
    const bool is_open = rng_int(&a->rng, 0, 7) == 0;
    const double force = force_at(a, p, time);
    for (int k = 0; k < 2; ++k) {
      guitar_pluck pluck;
      pluck.frequency = midi_hz(root + 7 * k);
      pluck.velocity = force * (is_open ? draw(a, 0.7, 1.0)
                                        : draw(a, 0.3, 0.7));
      pluck.damping = is_open ? draw(a, 0.2, 0.5) : draw(a, 0.9, 1.0);
      pluck.decay_seconds = is_open ? draw(a, 1.0, 2.5) : draw(a, 0.06, 0.2);
      pluck.duration = is_open ? 4.0 * step : 0.9 * step;
      pluck.position = draw(a, 0.05, 0.15);
      if (!play(a, &p->span, time + 0.003 * k, pluck)) {
        return false;
      }
    }
  }
  return true;
}

/** Chord tones one at a time, up and down, each left to ring; a new chord
    every eight notes. */
static bool phrase_arpeggio(arrangement *a, const phrase *p)
{
  const double step = 30.0 / draw(a, 60.0, 140.0);
  const double ring = draw(a, 0.5, 3.0);
  const int *chord = chords[0];
  int n_strings = 0;
  for (int k = 0; p->seconds > step * k; ++k) {
    if (k % 8 == 0) {
      chord = chords[rng_int(&a->rng, 0, 5)];
      n_strings = chord_size(chord);
    }
    /* Up the strings and back down, the top and bottom played once. */
    const int turn = k % (2 * n_strings - 2);
    const int string = turn < n_strings ? turn : 2 * n_strings - 2 - turn;
    const double force = force_at(a, p, step * k);
    guitar_pluck pluck;
    pluck.frequency = midi_hz(chord[string] + draw(a, -0.03, 0.03));
    pluck.velocity = force * draw(a, 0.6, 1.0);
    pluck.damping = draw(a, 0.2, 0.5);
    pluck.decay_seconds = draw(a, 2.0, 5.0);
    pluck.duration = ring;
    pluck.position = draw(a, 0.1, 0.3);
    if (!play(a, &p->span, step * k, pluck)) {
      return false;
    }
  }
  return true;
}

/** One chord or one note left to ring out: long, slow decays. */
static bool phrase_sustain(arrangement *a, const phrase *p)
{
  const double force = force_at(a, p, 0.0);
  if (rng_int(&a->rng, 0, 1)) {
    return strum(a, &p->span, 0.0, p->seconds, force);
  }
  guitar_pluck pluck;
  pluck.frequency = midi_hz(wide_scale[rng_int(&a->rng, 0, N_WIDE_SCALE - 1)]);
  pluck.velocity = force * draw(a, 0.6, 1.0);
  pluck.damping = draw(a, 0.05, 0.4);
  pluck.decay_seconds = draw(a, 3.0, 8.0);
  pluck.duration = p->seconds;
  pluck.position = draw(a, 0.1, 0.3);
  return play(a, &p->span, 0.0, pluck);
}

static void reverse(float *x, size_t n)
{
  for (size_t lo = 0, hi = n; lo + 1 < hi; ++lo, --hi) {
    const float swap = x[lo];
    x[lo] = x[hi - 1];
    x[hi - 1] = swap;
  }
}

/** A logarithmic sine sweep, rising or falling, from 20..60 Hz to
    30..100% of 20 kHz (or of 0.45 of the rate). */
static bool phrase_sweep(arrangement *a, const phrase *p)
{
  const double top = fmin(20000.0, 0.45 * a->rate);
  const double f0 = draw(a, 20.0, 60.0);
  const double f1 = top * draw(a, 0.3, 1.0);
  float *x = a->out + p->span.start;
  guitar_add_sweep(x, p->span.length, a->rate, f0, f1, 1.0);
  if (rng_int(&a->rng, 0, 1)) {
    reverse(x, p->span.length);
  }
  return true;
}

/** One burst of noise, white to dark (a one-pole low-pass with smoothing
    `colour`, 1 = white), with 1 ms fades. */
static void add_noise_burst(arrangement *a, float *x, size_t n, double level,
                            double colour)
{
  const size_t fade = (size_t)(0.001 * a->rate) + 1;
  double smoothed = 0.0;
  for (size_t t = 0; t < n; ++t) {
    smoothed += colour * (draw(a, -1.0, 1.0) - smoothed);
    const double edge = fmin(1.0, (double)fmin(t + 1, n - t) / (double)fade);
    x[t] += (float)(level * edge * smoothed);
  }
}

/** Bursts of 10 to 400 ms, each at its own level (0 to -30 dB) and
    colour, 50 to 500 ms apart. */
static bool phrase_noise(arrangement *a, const phrase *p)
{
  size_t t = 0;
  while (t < p->span.length) {
    const size_t length = (size_t)(draw(a, 0.01, 0.4) * a->rate) + 1;
    const double level = pow(10.0, -draw(a, 0.0, 30.0) / 20.0);
    const double colour = draw(a, 0.05, 1.0);
    const size_t fitting = length < p->span.length - t ? length
                                                       : p->span.length - t;
    add_noise_burst(a, a->out + p->span.start + t, fitting, level, colour);
    t += length + (size_t)(draw(a, 0.05, 0.5) * a->rate);
  }
  return true;
}

static bool phrase_silence(arrangement *a, const phrase *p)
{
  (void)a;
  (void)p;
  return true;
}

/** A kind of phrase, how often it comes (weight) and how long it lasts. */
typedef struct phrase_kind {
  bool (*render)(arrangement *a, const phrase *p);
  int weight;
  double min_seconds;
  double max_seconds;
} phrase_kind;

static const phrase_kind phrase_kinds[] = {
  {phrase_strums, 3, 3.0, PHRASE_MAX_SECONDS},
  {phrase_melody, 3, 3.0, PHRASE_MAX_SECONDS},
  {phrase_chugs, 2, 2.0, 8.0},
  {phrase_arpeggio, 2, 3.0, 8.0},
  {phrase_sustain, 1, 3.0, 8.0},
  {phrase_sweep, 2, 1.0, 5.0},
  {phrase_noise, 2, 1.0, 4.0},
  {phrase_silence, 2, 0.3, 2.0},
};

#define N_PHRASE_KINDS ((int)(sizeof(phrase_kinds) / sizeof(phrase_kinds[0])))

static const phrase_kind *pick_kind(arrangement *a)
{
  int total = 0;
  for (int k = 0; k < N_PHRASE_KINDS; ++k) {
    total += phrase_kinds[k].weight;
  }
  int ticket = rng_int(&a->rng, 0, total - 1);
  for (int k = 0; k < N_PHRASE_KINDS; ++k) {
    if (ticket < phrase_kinds[k].weight) {
      return &phrase_kinds[k];
    }
    ticket -= phrase_kinds[k].weight;
  }
  return &phrase_kinds[0];
}

/** Draws the next phrase, renders it into the scratch buffer at its level,
    and adds what fits of it to out[at..n); returns its length in frames,
    or 0 if memory ran out. */
static size_t add_phrase(arrangement *scratch, float *out, size_t n,
                         size_t at)
{
  const phrase_kind *kind = pick_kind(scratch);
  phrase p;
  p.seconds = draw(scratch, kind->min_seconds, kind->max_seconds);
  p.span = (section){0, (size_t)(p.seconds * scratch->rate) + 1};
  p.shape = (dynamics)rng_int(&scratch->rng, 0, N_DYNAMICS - 1);
  const double quietness = draw(scratch, 0.0, 1.0);
  const double level_dbfs = GUITAR_PEAK_DBFS + (SOFTEST_PHRASE_DBFS -
                                                GUITAR_PEAK_DBFS) *
                                                 quietness * quietness *
                                                 quietness;
  memset(scratch->out, 0, p.span.length * sizeof(float));
  if (!kind->render(scratch, &p)) {
    return 0;
  }
  normalize(scratch->out, p.span.length, level_dbfs);
  for (size_t t = 0; t < p.span.length && at + t < n; ++t) {
    out[at + t] = scratch->out[t];
  }
  return p.span.length;
}

bool guitar_render_programme(float *out, size_t n, double sample_rate,
                             uint64_t seed)
{
  const size_t scratch_n = (size_t)(PHRASE_MAX_SECONDS * sample_rate) + 2;
  arrangement scratch = {calloc(scratch_n, sizeof(float)), scratch_n,
                         sample_rate, guitar_rng_new(seed)};
  if (!scratch.out) {
    return false;
  }
  memset(out, 0, n * sizeof(float));
  size_t at = 0, length = 1;
  while (at < n && length > 0) {
    length = add_phrase(&scratch, out, n, at);
    at += length;
  }
  free(scratch.out);
  return length > 0;
}

bool guitar_render(float *out, size_t n, double sample_rate, uint64_t seed)
{
  if ((double)n <= GUITAR_TOUR_SECONDS * sample_rate) {
    return guitar_render_tour(out, n, sample_rate, seed);
  }
  return guitar_render_programme(out, n, sample_rate, seed);
}
