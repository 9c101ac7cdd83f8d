/*
  Overdrive in the style of the classic green pedal (the Ibanez TS-808
  Tube Screamer): its clipping stage, a non-inverting op-amp with
  antiparallel diodes in the feedback path, then a tone low-pass.

                 +------[ Rd ]------+
                 +------| Cf |------+
                 +--->|-----|<------+
                 |                  |
      vin --(+)--+--(-)  op-amp  ---+-- vout = vin + vf
                 |
                [ R4 ]
                 |
                === C3
                 |
                ---

  With an ideal op-amp the inverting input follows vin, so the current
  i through the R4-C3 leg to ground depends on vin alone, and the same
  current flows through the feedback network, whose voltage is vf:

      C3 dvc/dt = i,              i = (vin - vc) / R4
      Cf dvf/dt = i - vf / Rd - 2 Is sinh(vf / (n Vt))
      vout = vin + vf

  R4 = 4.7 kOhm and C3 = 47 nF put the corner of the gain shelf at
  1 / (2 pi R4 C3) = 720 Hz: below it the stage passes the guitar at unity
  gain and clean, above it the gain is 1 + Rd / R4 (12 to 118), which the
  diodes clip; Cf = 51 pF rolls the gain off again above 1 / (2 pi Rd Cf)
  (5.7 kHz at full drive).  Rd = 51 kOhm plus the 500 kOhm drive pot, an
  audio-taper pot approximated by 500k (10^(2 drive) - 1) / 99; diodes
  1N914, Is = 2.52 nA, n Vt = 45.3 mV.  Values and analysis from D. T.
  Yeh, J. S. Abel and J. O. Smith, "Simplified, physically-informed models
  of distortion and overdrive guitar effects pedals" (DAFx 2007), and
  D. T. Yeh's thesis (Stanford, 2009), chapter on the Tube Screamer.

  Discretisation, per sample of period T: the R4-C3 leg by the trapezoidal
  rule; the feedback node as in diode_clipper.c, the trapezoidal rule for
  Rd and Cf and backward Euler for the diodes (stiff when they conduct),
  with k = T / (2 Rd Cf):

      vf[n] (1 + k) + (T / Cf) 2 Is sinh(vf[n] / (n Vt))
          = vf[n-1] (1 - k) + T / (2 Cf) (i[n] + i[n-1])

  solved by bracketed Newton.

  Tone: the pedal's tone network (a fixed 723 Hz low-pass and an active
  shelving stage) is reduced to what it does to the clipped signal, a
  one-pole low-pass whose -3 dB point the knob sweeps logarithmically,
  fc = 600 Hz x 10^tone (600 Hz to 6 kHz), prewarped so that the digital
  filter's -3 dB point is exactly fc.  Full scale at the input is 1 V; the
  output is vout / 2, so the loudest clipped output stays near -3 dBFS.
  The pedal runs on 9 V with the signal biased at 4.5 V, so its input
  buffer cannot pass more than +-4.5 V: inputs beyond +13 dBFS are
  clipped there, which also bounds the output for any input.
*/

#include "parts.h"

#include <math.h>

#define R4 4.7e3                ///< Ohms, in series with C3
#define C3 47e-9                ///< Farads: the 720 Hz shelf
#define R_DRIVE_MIN 51e3        ///< Ohms, in series with the pot
#define R_DRIVE_POT 500e3       ///< Ohms, the drive pot
#define CF 51e-12               ///< Farads, across the feedback
#define DIODE_IS 2.52e-9        ///< Amperes
#define DIODE_NVT 45.3e-3       ///< Volts
#define TONE_MIN_HZ 600.0       ///< Cutoff at tone = 0
#define TONE_DECADES 1.0        ///< Decades the knob sweeps
#define OUTPUT_GAIN 0.5         ///< Full scale per volt out
#define RAIL_V 4.5              ///< Half the 9 V supply

enum { DRIVE, TONE };

typedef struct overdrive {
  double m;           ///< T / (2 R4 C3)
  double half_c3;     ///< T / (2 C3)
  double k;           ///< T / (2 Rd Cf)
  double half_cf;     ///< T / (2 Cf)
  double beta;        ///< (T / Cf) 2 Is
  double vc;          ///< vc[n-1], volts across C3
  double i;           ///< i[n-1], amperes
  double vf;          ///< vf[n-1], volts across the feedback
  one_pole tone;
} overdrive;

/** An audio-taper (logarithmic) pot: the resistance for a rotation. */
static double audio_taper(double rotation)
{
  return (pow(10.0, 2.0 * rotation) - 1.0) / 99.0;
}

static void configure(void *state, double rate, const double *values)
{
  overdrive *o = state;
  const double period = 1.0 / rate;
  const double r_drive = R_DRIVE_MIN + R_DRIVE_POT * audio_taper(values[DRIVE]);
  o->m = period / (2.0 * R4 * C3);
  o->half_c3 = period / (2.0 * C3);
  o->k = period / (2.0 * r_drive * CF);
  o->half_cf = period / (2.0 * CF);
  o->beta = period / CF * 2.0 * DIODE_IS;
  one_pole_set_lowpass(&o->tone,
                       TONE_MIN_HZ * pow(10.0, TONE_DECADES * values[TONE]),
                       rate);
}

static void reset(void *state)
{
  overdrive *o = state;
  o->vc = 0.0;
  o->i = 0.0;
  o->vf = 0.0;
  one_pole_rest(&o->tone, 0.0);
}

/** The current through the R4-C3 leg for this sample's input. */
static double ground_leg(overdrive *o, double vin)
{
  o->vc = effect_flush((o->vc + o->half_c3 * o->i + o->m * vin) /
                       (1.0 + o->m));
  return (vin - o->vc) / R4;
}

static double clipping_stage(overdrive *o, double vin, effect_stats *stats)
{
  const double i = ground_leg(o, vin);
  const double c = o->vf * (1.0 - o->k) + o->half_cf * (i + o->i);
  o->vf = effect_flush(solve_diode_pair(1.0 + o->k, o->beta, DIODE_NVT, c,
                                        o->vf, stats));
  o->i = effect_flush(i);
  return vin + o->vf;
}

static void process(void *state, const float *in, float *out, size_t n,
                    effect_stats *stats)
{
  overdrive *o = state;
  for (size_t t = 0; t < n; ++t) {
    const double vin = fmax(-RAIL_V, fmin(RAIL_V, effect_input(in[t])));
    const double vout = clipping_stage(o, vin, stats);
    out[t] = (float)(OUTPUT_GAIN * one_pole_run(&o->tone, vout));
  }
}

const effect_class overdrive_class = {
  .info = {
    .name = "overdrive",
    .summary = "green-pedal overdrive: 720 Hz shelf, diodes in the op-amp "
               "feedback, tone low-pass",
    .n_params = 2,
    .params = {
      {"drive", "drive pot: stage gain 12 to 118 above 720 Hz", 0.0, 1.0,
       0.5},
      {"tone", "tone low-pass, 600 Hz to 6 kHz (logarithmic)", 0.0, 1.0,
       0.5},
    },
  },
  .state_size = sizeof(overdrive),
  .configure = configure,
  .reset = reset,
  .process = process,
};
