/*
  A guitar-like test signal the project makes itself: plucked strings by
  Karplus-Strong synthesis, strummed chords, single notes, palm mutes and a
  sine sweep.  Deterministic for a seed.  Used by `carry signal`, and meant
  to feed the trainer as well.  Not real-time code: it allocates.
*/

#ifndef CARRY_GUITAR_H
#define CARRY_GUITAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Peak level of a rendered signal, in dB relative to full scale. */
#define GUITAR_PEAK_DBFS (-3.0)

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

/** Renders the whole test signal into `out` (n frames, zeroed first):
    strummed chords, single notes, palm-muted notes and a 20 Hz - 20 kHz
    sweep (or up to 0.45 of the rate), separated by silence, with sections
    scaled to the length and the peak at GUITAR_PEAK_DBFS.  Returns false
    if memory runs out. */
bool guitar_render(float *out, size_t n, double sample_rate, uint64_t seed);

#endif /* CARRY_GUITAR_H */
