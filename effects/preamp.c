/*
  Valve preamp with power-supply sag: one 12AX7 common-cathode stage with
  grid current, an output coupling capacitor, and a supply that droops
  under load.

      B+ (sags) --[ RL ]--+-- plate --| Cc |-- out
                          |
      in --[ Rs ]-- grid  triode
                          |
                        cathode, bypassed: fixed at Vk

  Plate current: N. Koren's triode model, "Improved VT models for Spice
  simulations" (Glass Audio, 1996), with his 12AX7 constants mu = 100,
  Ex = 1.4, Kg1 = 1060, Kp = 600, Kvb = 300:

      E1 = (Vpk / Kp) ln(1 + exp(Kp (1 / mu + Vgk / sqrt(Kvb + Vpk^2))))
      Ip = 2 E1^Ex / Kg1

  The plate sits on the load line of RL = 100 kOhm from the supply B:

      Vpk + RL Ip(Vgk, Vpk) = B - Vk

  (Vk = 1.5 V, from a bypassed 1.5 kOhm cathode resistor at about 1 mA).
  Grid current: once the grid nears the cathode it conducts, with the
  smooth exponential-to-power-law curve of K. Dempwolf and U. Zölzer,
  "A physically-motivated triode model for circuit simulations" (DAFx
  2011), Ig = Gg (ln(1 + exp(Cg Vgk)) / Cg)^xi, with round values of the
  order of their 12AX7 fit, Gg = 6e-4 A/V^xi, Cg = 10 /V, xi = 1.3 (and
  no constant offset: at rest the grid draws 1e-13 A); the source
  resistance Rs = 68 kOhm then clamps the grid:

      (vs - Vgk) / Rs = Ig(Vgk),      vs = G x - Vk

  Both equations are increasing in their unknown and are solved per
  sample by bracketed Newton (parts.c).  The stage cuts off softly on
  negative grid swings (the 1.4-power law) and is clamped hard on
  positive ones: an asymmetric waveshaper.  No capacitor is in the loop,
  so nothing is stiff and the solves are algebraic.

  Coupling: the plate is AC-coupled through Cc = 22 nF into the next
  stage's 1 MOhm grid resistor, a 7.2 Hz high-pass; the output is
  inverted back, so it has the input's polarity.

  Sag: the supply is shared with a power stage that draws a current in
  proportion to the output power.  Its reservoir capacitor discharges
  under that load in about 20 ms and recharges through the rectifier in
  about 200 ms, so the supply follows the smoothed output power P:

      P[n] = P[n-1] + a (y[n-1]^2 - P[n-1]),  a = 1 - exp(-1 / (tau rate))
      B[n] = B0 (1 - S P[n]),                 B0 = 300 V, S = 0.8

  and the power stage's swing, the output, scales with B / B0.  The
  triode's load line uses the sagging B too.  Loud playing thus lowers the
  gain (at full gain, a second at -3 dBFS lowers a small tone's gain by
  2.6 dB; 0.7 dB is left 200 ms later, 0.01 dB after 1 s).

  Knob gain: the input gain G, 0 to +30 dB (in dB, linear in the knob),
  with full scale = 1 V at the grid.  The output is the plate swing over
  160 V, times B / B0.
*/

#include "parts.h"

#include <math.h>

#define MU 100.0              ///< Koren 12AX7: amplification factor
#define EX 1.4                ///< Koren 12AX7: exponent
#define KG1 1060.0            ///< Koren 12AX7
#define KP 600.0              ///< Koren 12AX7
#define KVB 300.0             ///< Koren 12AX7, V^2
#define GRID_G 6e-4           ///< Gg, A/V^xi
#define GRID_C 10.0           ///< Cg, 1/V
#define GRID_XI 1.3           ///< xi
#define LOAD 100e3            ///< RL, ohms
#define SOURCE 68e3           ///< Rs, ohms
#define CATHODE_V 1.5         ///< Vk, volts
#define SUPPLY_V 300.0        ///< B0, volts
#define COUPLING_HZ 7.2       ///< 22 nF into 1 MOhm
#define OUTPUT_SWING_V 160.0  ///< Plate volts per full scale out
#define SAG_DEPTH 0.8         ///< S
#define SAG_ATTACK_S 0.02
#define SAG_RELEASE_S 0.2
#define MAX_GAIN_DB 30.0
#define MAX_SOURCE_V 400.0    ///< Grid drive beyond any supply: clamped
#define PLATE_TOLERANCE_V 1e-9
#define GRID_TOLERANCE_V 1e-12

enum { GAIN };

typedef struct preamp {
  double gain;        ///< G: grid volts per full-scale unit
  double vgk;         ///< Vgk[n-1]
  double vpk;         ///< Vpk[n-1]
  double y;           ///< y[n-1], the output before scaling
  follower power;     ///< P, the smoothed output power
  one_pole coupling;  ///< Cc into the next grid
} preamp;

/* ------------------------------------------------------------------------ */
/* The triode */

/** ln(1 + exp(z)) without overflow, and its derivative (the logistic). */
static double softplus(double z, double *slope)
{
  *slope = 1.0 / (1.0 + exp(-z));
  return z > 30.0 ? z : log1p(exp(z));
}

static double grid_current(double vgk, double *slope)
{
  double logistic = 0.0;
  const double base = softplus(GRID_C * vgk, &logistic) / GRID_C;
  const double current = GRID_G * pow(base, GRID_XI);
  *slope = base > 0.0 ? GRID_XI * current / base * logistic : 0.0;
  return current;
}

/** Koren's plate current at (Vgk, Vpk), and its slope in Vpk. */
static double plate_current(double vgk, double vpk, double *slope)
{
  const double root = sqrt(KVB + vpk * vpk);
  const double z = KP * (1.0 / MU + vgk / root);
  const double dz = -KP * vgk * vpk / (root * root * root);
  double logistic = 0.0;
  const double log_term = softplus(z, &logistic);
  const double e1 = vpk / KP * log_term;
  const double de1 = log_term / KP + vpk / KP * logistic * dz;
  if (e1 <= 0.0) {
    *slope = 0.0;
    return 0.0;
  }
  const double current = 2.0 * pow(e1, EX) / KG1;
  *slope = EX * current / e1 * de1;
  return current;
}

typedef struct grid_equation {
  double source;  ///< vs, volts relative to the cathode
} grid_equation;

static double grid_residual(const void *context, double vgk, double *slope)
{
  const grid_equation *eq = context;
  double di = 0.0;
  const double current = grid_current(vgk, &di);
  *slope = 1.0 + SOURCE * di;
  return vgk + SOURCE * current - eq->source;
}

static double solve_grid(double source, double guess, effect_stats *stats)
{
  /* Ig >= 0, so Vgk <= vs; and for Vgk >= 0, Ig >= Gg Vgk^xi, so Vgk <=
     (vs / (Rs Gg))^(1 / xi).  Below, Vgk >= min(vs, 0) unless the grid
     already conducts there, when vs - Rs Ig(vs) bounds it. */
  const grid_equation eq = {source};
  double unused = 0.0;
  double hi = source;
  if (source > 0.0) {
    hi = fmin(hi, pow(source / (SOURCE * GRID_G), 1.0 / GRID_XI));
  }
  double lo = fmin(source, 0.0);
  if (grid_residual(&eq, lo, &unused) > 0.0) {
    lo = source - SOURCE * grid_current(source, &unused);
  }
  return solve_increasing(grid_residual, &eq, lo, hi, guess,
                          GRID_TOLERANCE_V, stats);
}

typedef struct plate_equation {
  double vgk;     ///< The grid, solved first
  double supply;  ///< B - Vk
} plate_equation;

static double plate_residual(const void *context, double vpk, double *slope)
{
  const plate_equation *eq = context;
  double di = 0.0;
  const double current = plate_current(eq->vgk, vpk, &di);
  *slope = 1.0 + LOAD * di;
  return vpk + LOAD * current - eq->supply;
}

/** The plate voltage on the load line: Ip = 0 at Vpk = 0, and the whole
    supply across the valve bounds it above. */
static double solve_plate(double vgk, double supply, double guess,
                          effect_stats *stats)
{
  const plate_equation eq = {vgk, supply - CATHODE_V};
  return solve_increasing(plate_residual, &eq, 0.0, eq.supply, guess,
                          PLATE_TOLERANCE_V, stats);
}

/* ------------------------------------------------------------------------ */
/* The stage */

static void configure(void *state, double rate, const double *values)
{
  preamp *p = state;
  p->gain = effect_db_to_gain(MAX_GAIN_DB * values[GAIN]);
  follower_set(&p->power, SAG_ATTACK_S, SAG_RELEASE_S, rate);
  one_pole_set_highpass(&p->coupling, COUPLING_HZ, rate);
}

/** At rest: no signal, the grid at -Vk, the plate at its quiescent point
    on the full supply, the coupling capacitor charged to it. */
static void reset(void *state)
{
  preamp *p = state;
  effect_stats unused = {0, 0, 0, 0};
  p->vgk = solve_grid(-CATHODE_V, -CATHODE_V, &unused);
  p->vpk = solve_plate(p->vgk, SUPPLY_V, 0.5 * SUPPLY_V, &unused);
  p->y = 0.0;
  p->power.value = 0.0;
  one_pole_rest(&p->coupling, p->vpk);
}

static double step(preamp *p, double x, effect_stats *stats)
{
  const double sag = 1.0 - SAG_DEPTH * follower_run(&p->power, p->y * p->y);
  const double source = fmax(-MAX_SOURCE_V,
                             fmin(MAX_SOURCE_V, p->gain * x)) - CATHODE_V;
  p->vgk = solve_grid(source, p->vgk, stats);
  p->vpk = solve_plate(p->vgk, sag * SUPPLY_V, p->vpk, stats);
  /* The valve inverts; the output is turned back to the input's sign. */
  const double swing = -one_pole_run(&p->coupling, p->vpk) / OUTPUT_SWING_V;
  p->y = sag * swing;
  return p->y;
}

static void process(void *state, const float *in, float *out, size_t n,
                    effect_stats *stats)
{
  preamp *p = state;
  for (size_t t = 0; t < n; ++t) {
    out[t] = (float)step(p, effect_input(in[t]), stats);
  }
}

const effect_class preamp_class = {
  .info = {
    .name = "preamp",
    .summary = "12AX7 stage (Koren plate, grid current), coupling "
               "high-pass, supply sag (20 ms / 200 ms)",
    .n_params = 1,
    .params = {
      {"gain", "input gain, 0 to +30 dB", 0.0, 1.0, 0.5},
    },
  },
  .state_size = sizeof(preamp),
  .configure = configure,
  .reset = reset,
  .process = process,
};
