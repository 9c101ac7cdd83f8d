/*
  A guitar-like signal the project makes itself, from Karplus-Strong
  plucked strings, sine sweeps and noise: a 12-second tour for tests and
  demos, and minutes of varied material to train and validate models on.
  Deterministic for a seed, on every machine.  Used by `carry signal`, by
  `carry model info` and by the trainer.  Not real-time code: it
  allocates.

  For training data, call guitar_render() with the length wanted (over
  GUITAR_TOUR_SECONDS it gives the programme) and one seed for the
  training signal and another for the validation signal:

      float *dry = malloc(n * sizeof(float));          // n = 180 * 48000
      guitar_render(dry, n, 48000.0, 1);               // training
      guitar_render(valid, n_valid, 48000.0, 2);       // validation
*/

#ifndef CARRY_GUITAR_H
#define CARRY_GUITAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Peak level of a rendered signal, in dB relative to full scale. */
#define GUITAR_PEAK_DBFS (-3.0)

/** The tour's nominal length; guitar_render() gives the tour up to it and
    the training programme beyond. */
#define GUITAR_TOUR_SECONDS 12.0

/** xorshift64*: the same numbers on every machine for a seed. */
typedef struct guitar_rng {
  uint64_t state;
} guitar_rng;

guitar_rng guitar_rng_new(uint64_t seed);

/** Uniform in [lo, hi). */
double guitar_rng_uniform(guitar_rng *rng, double lo, double hi);

/** One plucked string. */
typedef struct guitar_pluck {
  double frequency;      ///< Fundamental, Hz (at most a quarter of the rate)
  double velocity;       ///< 0..1: loudness and brightness of the pluck
  double damping;        ///< 0..1: high-frequency loss per round trip
  double decay_seconds;  ///< Time for the fundamental to fall by 60 dB
  double duration;       ///< Seconds until the string is stopped
  double position;       ///< 0..0.5: where along the string it is plucked
} guitar_pluck;

/** Adds one Karplus-Strong string to `out` (n frames), starting at frame 0
    and ending with a short release at `duration`.  Draws the noise burst
    from `rng`.  Returns false if memory runs out. */
bool guitar_add_pluck(float *out, size_t n, double sample_rate,
                      const guitar_pluck *pluck, guitar_rng *rng);

/** Adds a logarithmic sine sweep from f0 to f1 Hz over the n frames, with
    short fades at both ends. */
void guitar_add_sweep(float *out, size_t n, double sample_rate, double f0,
                      double f1, double amplitude);

/** Renders the signal for `seed` into `out` (n frames at `sample_rate`
    Hz, zeroed first): the tour if n is at most GUITAR_TOUR_SECONDS of
    audio, else the training programme.  Returns false if memory runs
    out.  Any thread; allocates. */
bool guitar_render(float *out, size_t n, double sample_rate, uint64_t seed);

/** The tour: strummed chords, single notes, palm-muted notes and a
    20 Hz - 20 kHz sweep (or up to 0.45 of the rate), separated by
    silence, with the sections scaled to the length and the peak at
    GUITAR_PEAK_DBFS.  Returns false if memory runs out.  Any thread;
    allocates. */
bool guitar_render_tour(float *out, size_t n, double sample_rate,
                        uint64_t seed);

/** The training programme, at any length: a chain of phrases of 0.3 to
    10 s drawn at random (weights in brackets): strummed chords at varied
    pace [3], single-note lines over four octaves [3], palm-muted riffs
    with open accents [2], arpeggios [2], chords or notes left to ring out
    [1], rising or falling sine sweeps [2], bursts of white to dark noise
    at levels 0 to -30 dB within the phrase [2], and silence [2].  Each
    phrase plays steadily, louder, softer or accented (velocity from a
    sixth of full force up), and has its own peak level, from -42 dBFS to
    GUITAR_PEAK_DBFS, louder levels more likely (the level's distance
    below the top is 39 dB times the cube of a uniform draw), so the whole
    peaks at GUITAR_PEAK_DBFS or a little below.  The first k frames of a
    seed do not depend on n.  On average 83% of the time is playing, 8%
    sweeps, 6% noise and 3% silence between phrases (besides the rests and
    decays within them).  Returns false if memory runs out.  Any thread;
    allocates (one buffer of 10 s). */
bool guitar_render_programme(float *out, size_t n, double sample_rate,
                             uint64_t seed);

#endif /* CARRY_GUITAR_H */
