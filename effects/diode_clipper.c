/*
  Diode clipper: an RC low-pass whose capacitor is shunted by two
  antiparallel silicon diodes, the core of most distortion pedals.

      vin --[ R ]--+-- v (output)
                   |
              C  ===  D1 >|  |< D2
                   |
                  ---

  Kirchhoff's current law at the output node, with Shockley diodes:

      C dv/dt = (vin - v) / R - 2 Is sinh(v / (n Vt))

  R = 2.2 kOhm, C = 10 nF (fc = 1 / (2 pi R C) = 7.23 kHz), 1N914-like
  diodes Is = 2.52 nA, n Vt = 45.3 mV: the values of D. T. Yeh, J. S.
  Abel and J. O. Smith, "Simplified, physically-informed models of
  distortion and overdrive guitar effects pedals" (DAFx 2007) and of
  D. T. Yeh's thesis, "Digital implementation of musical distortion
  circuits by analysis and simulation" (Stanford, 2009); the same circuit
  is the benchmark of Yeh, Abel and Smith, "Numerical methods for
  simulation of guitar distortion circuits" (Computer Music Journal,
  2008), which compares explicit and implicit solvers on it.

  Discretisation, per sample of period T: the trapezoidal rule for the
  linear RC part (exactly the bilinear transform of the RC low-pass, so
  small signals see the analogue filter with its frequency warped) and
  backward Euler for the diode current.  With k = T / (2 R C):

      v[n] (1 + k) + (T / C) 2 Is sinh(v[n] / (n Vt))
          = v[n-1] (1 - k) + k (vin[n] + vin[n-1])

  solved for v[n] by bracketed Newton (parts.c), starting from v[n-1].
  Why not the trapezoidal rule for the diodes too: once they conduct, the
  node is very stiff (2 Is/(n Vt) cosh(v/(n Vt)) / C reaches 1e7/s), the
  trapezoidal rule's amplification factor for such a mode tends to -1, and
  any error then rings at the Nyquist frequency: after a 31 V step at
  48 kHz it leaves a +-8 mV alternation (-38 dB) that decays by only 1% a
  sample, where backward Euler (L-stable) settles in two samples.  The
  price is first-order accuracy while the diodes conduct.  The fixed
  point of either is the exact DC solution
  (vin - v) / R = 2 Is sinh(v / (n Vt)).

  Knob drive: the input gain, 0 to +30 dB (in dB, linear in the knob),
  with full scale = 1 V at the input; the output is v in volts, so
  full scale out = 1 V: the diodes hold it below about 0.7 V (-3 dBFS).
*/

#include "parts.h"

#include <math.h>

#define RESISTANCE 2.2e3         ///< R, ohms
#define CAPACITANCE 10e-9        ///< C, farads
#define DIODE_IS 2.52e-9         ///< Is, amperes
#define DIODE_NVT 45.3e-3        ///< n Vt, volts
#define MAX_DRIVE_DB 30.0        ///< Input gain at drive = 1

enum { DRIVE };

typedef struct diode_clipper {
  double gain;    ///< Input volts per full-scale unit
  double k;       ///< T / (2 R C)
  double beta;    ///< (T / C) 2 Is
  double v;       ///< v[n-1], volts
  double vin;     ///< vin[n-1], volts
} diode_clipper;

static void configure(void *state, double rate, const double *values)
{
  diode_clipper *d = state;
  const double period = 1.0 / rate;
  d->gain = effect_db_to_gain(MAX_DRIVE_DB * values[DRIVE]);
  d->k = period / (2.0 * RESISTANCE * CAPACITANCE);
  d->beta = period / CAPACITANCE * 2.0 * DIODE_IS;
}

static void reset(void *state)
{
  diode_clipper *d = state;
  d->v = 0.0;
  d->vin = 0.0;
}

static double step(diode_clipper *d, double vin, effect_stats *stats)
{
  const double c = d->v * (1.0 - d->k) + d->k * (vin + d->vin);
  d->v = effect_flush(solve_diode_pair(1.0 + d->k, d->beta, DIODE_NVT, c,
                                       d->v, stats));
  d->vin = vin;
  return d->v;
}

static void process(void *state, const float *in, float *out, size_t n,
                    effect_stats *stats)
{
  diode_clipper *d = state;
  for (size_t t = 0; t < n; ++t) {
    out[t] = (float)step(d, d->gain * effect_input(in[t]), stats);
  }
}

const effect_class diode_clipper_class = {
  .info = {
    .name = "diode_clipper",
    .summary = "RC low-pass (7.2 kHz) with antiparallel diodes, solved "
               "implicitly by Newton",
    .n_params = 1,
    .params = {
      {"drive", "input gain, 0 to +30 dB", 0.0, 1.0, 0.5},
    },
  },
  .state_size = sizeof(diode_clipper),
  .configure = configure,
  .reset = reset,
  .process = process,
};
