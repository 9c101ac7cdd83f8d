/*
  Fuzz: asymmetric transistor-style clipping whose operating point is
  moved by the signal itself, so the shape of the clipping depends on the
  recent past (the "sputter" and bias drift of a germanium fuzz).

  The physical picture, after R. G. Keen's analysis of the two-transistor
  Fuzz Face ("The Technology of the Fuzz Face", geofex.com): the input
  coupling capacitor (2.2 uF) charges through the first transistor's
  forward-biased base-emitter junction on one half of the wave (a low
  resistance, about 1 kOhm: a fast attack) and discharges through the bias
  network (about 33 kOhm: a slow release).  Its charge subtracts from the
  input, pushing the transistor towards cutoff after loud notes, so that
  soft notes that follow are clipped harder or gated until it drains.
  The transistor pair clips asymmetrically: it saturates softly on one
  side and cuts off hard at a lower level on the other.

  The model, per sample (no implicit equation: each line is explicit):

      u[n] = G x[n]                                    input gain
      e[n] = e[n-1] + a (max(u[n], 0) - e[n-1])        capacitor charge,
             a = 1 - exp(-1 / (tau rate)),             tau = 2.2 ms while
                                                       charging, 73 ms while
                                                       draining
      w[n] = u[n] - d e[n]                             shifted bias
      f(w) = tanh(w)              for w >= 0           soft saturation
      f(w) = (exp(K w) - 1) / K   for w < 0, K = 2     harder cut-off at -1/2
      y[n] = L hp(f(w[n]))        L = 0.55             15 Hz DC blocker

  f is continuous with a continuous slope at 0 and its curvature differs on
  each side, so even small signals get even harmonics.

  Knob fuzz: the gain G = 10 to 40 dB (in dB, linear in the knob) and the
  depth of the bias shift d = 0.3 to 0.9 of the charged peak.  Full scale
  at the input is 1; the output stays below about -2 dBFS.
*/

#include "parts.h"

#include <math.h>

#define MIN_GAIN_DB 10.0
#define MAX_GAIN_DB 40.0
#define MIN_DEPTH 0.3
#define MAX_DEPTH 0.9
#define CHARGE_SECONDS 2.2e-3    ///< 2.2 uF through about 1 kOhm
#define DRAIN_SECONDS 73e-3      ///< 2.2 uF through about 33 kOhm
#define CUTOFF_SHARPNESS 2.0     ///< K: the negative side ends at -1/K
#define DC_BLOCK_HZ 15.0
#define OUTPUT_GAIN 0.55

enum { FUZZ };

typedef struct fuzz {
  double gain;       ///< G
  double depth;      ///< d
  follower charge;   ///< e, the coupling capacitor's charge
  one_pole dc_block;
} fuzz;

static void configure(void *state, double rate, const double *values)
{
  fuzz *f = state;
  const double knob = values[FUZZ];
  f->gain = effect_db_to_gain(MIN_GAIN_DB +
                              (MAX_GAIN_DB - MIN_GAIN_DB) * knob);
  f->depth = MIN_DEPTH + (MAX_DEPTH - MIN_DEPTH) * knob;
  follower_set(&f->charge, CHARGE_SECONDS, DRAIN_SECONDS, rate);
  one_pole_set_highpass(&f->dc_block, DC_BLOCK_HZ, rate);
}

static void reset(void *state)
{
  fuzz *f = state;
  f->charge.value = 0.0;
  one_pole_rest(&f->dc_block, 0.0);
}

/** The transistor pair's asymmetric transfer curve. */
static double clip(double w)
{
  if (w >= 0.0) {
    return tanh(w);
  }
  return expm1(CUTOFF_SHARPNESS * w) / CUTOFF_SHARPNESS;
}

static double step(fuzz *f, double x)
{
  const double u = f->gain * x;
  const double charge = follower_run(&f->charge, fmax(u, 0.0));
  const double shaped = clip(u - f->depth * charge);
  return OUTPUT_GAIN * one_pole_run(&f->dc_block, shaped);
}

static void process(void *state, const float *in, float *out, size_t n,
                    effect_stats *stats)
{
  (void)stats;  // nothing implicit to solve
  fuzz *f = state;
  for (size_t t = 0; t < n; ++t) {
    out[t] = (float)step(f, effect_input(in[t]));
  }
}

const effect_class fuzz_class = {
  .info = {
    .name = "fuzz",
    .summary = "asymmetric clipping with a bias that follows the envelope "
               "(2 ms attack, 73 ms release)",
    .n_params = 1,
    .params = {
      {"fuzz", "gain 10 to 40 dB and depth of the bias shift", 0.0, 1.0,
       0.5},
    },
  },
  .state_size = sizeof(fuzz),
  .configure = configure,
  .reset = reset,
  .process = process,
};
