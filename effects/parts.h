/*
  What the reference effects share, inside effects/ only: the class each
  effect file defines, and the parts the circuits are built from (input
  sanitising, first-order sections, an envelope follower and a bracketed
  Newton solver).
*/

#ifndef CARRY_EFFECTS_PARTS_H
#define CARRY_EFFECTS_PARTS_H

#include "effects.h"

#include <stdbool.h>
#include <stddef.h>

#define EFFECT_PI 3.14159265358979323846

/* ------------------------------------------------------------------------ */
/* The effect classes */

/** One effect: its description and its four operations on a state of
    `state_size` bytes that effects.c allocates, zeroed, for it. */
typedef struct effect_class {
  effect_info info;
  size_t state_size;
  /** Derives coefficients from the rate and knob values; called at
      creation and after every knob change; keeps the signal state. */
  void (*configure)(void *state, double rate, const double *values);
  /** Puts the signal state at rest (configure has run). */
  void (*reset)(void *state);
  /** Processes n samples (in may equal out), counting solves in stats. */
  void (*process)(void *state, const float *in, float *out, size_t n,
                  effect_stats *stats);
} effect_class;

extern const effect_class diode_clipper_class;
extern const effect_class overdrive_class;
extern const effect_class fuzz_class;
extern const effect_class preamp_class;

/* ------------------------------------------------------------------------ */
/* Samples */

/** An input sample as the circuits take it: NaN and infinities become 0,
    other values are clamped to +-EFFECT_INPUT_LIMIT. */
double effect_input(float x);

/** x, or 0 if it is so small that carrying it on would only make
    denormals in the state. */
double effect_flush(double x);

/** 10^(db / 20). */
double effect_db_to_gain(double db);

/* ------------------------------------------------------------------------ */
/* First-order sections by the bilinear transform (the trapezoidal rule),
   prewarped so that the -3 dB point is exactly at the cutoff:
   y[n] = b0 x[n] + b1 x[n-1] - a1 y[n-1]. */

typedef struct one_pole {
  double b0, b1, a1;  ///< Coefficients
  double x1, y1;      ///< x[n-1], y[n-1]
} one_pole;

/** Low-pass 1 / (1 + s / wc); the cutoff is clamped below 0.49 x rate.
    Keeps the state. */
void one_pole_set_lowpass(one_pole *f, double cutoff, double rate);

/** High-pass (s / wc) / (1 + s / wc); the cutoff is clamped as above.
    Keeps the state. */
void one_pole_set_highpass(one_pole *f, double cutoff, double rate);

/** Sets the state as if x had been the input, and the output at rest,
    forever (for a high-pass: y = 0; for a low-pass: y = x). */
void one_pole_rest(one_pole *f, double x);

double one_pole_run(one_pole *f, double x);

/* ------------------------------------------------------------------------ */
/* Envelope follower: a one-pole smoother whose time constant is `attack`
   while the input is above the envelope and `release` while below. */

typedef struct follower {
  double attack;   ///< 1 - exp(-1 / (tau_attack rate))
  double release;  ///< 1 - exp(-1 / (tau_release rate))
  double value;    ///< The envelope
} follower;

void follower_set(follower *f, double attack_seconds, double release_seconds,
                  double rate);

double follower_run(follower *f, double x);

/* ------------------------------------------------------------------------ */
/* Solving g(v) = 0 for a strictly increasing g */

/** g and its derivative at v. */
typedef double (*increasing_fn)(const void *context, double v,
                                double *slope);

#define SOLVER_MAX_ITERATIONS 60

/** Finds the root of the increasing g in [lo, hi] (g(lo) <= 0 <= g(hi)) by
    Newton's method from `guess`, falling back to bisection whenever a
    step would leave the shrinking bracket, so it always converges.  Stops
    when a step is below `tolerance` or after SOLVER_MAX_ITERATIONS steps
    (a bracket of 1e6 halves below 1e-12 in 60). */
double solve_increasing(increasing_fn g, const void *context, double lo,
                        double hi, double guess, double tolerance,
                        effect_stats *stats);

/** Solves alpha v + beta sinh(v / vt) = c (alpha, beta, vt > 0): the
    implicit step of a capacitor across a pair of antiparallel diodes.
    Starts from `guess`, the previous sample's value; the tolerance is
    1e-12 V. */
double solve_diode_pair(double alpha, double beta, double vt, double c,
                        double guess, effect_stats *stats);

#endif /* CARRY_EFFECTS_PARTS_H */
