/*
  The parts the reference circuits share: see parts.h.
*/

#include "parts.h"

#include <math.h>

/* ------------------------------------------------------------------------ */
/* Samples */

double effect_input(float x)
{
  if (!isfinite(x)) {
    return 0.0;  // one bad sample must not poison the state for good
  }
  return fmax(-EFFECT_INPUT_LIMIT, fmin(EFFECT_INPUT_LIMIT, (double)x));
}

double effect_flush(double x)
{
  return fabs(x) < 1e-30 ? 0.0 : x;
}

double effect_db_to_gain(double db)
{
  return pow(10.0, db / 20.0);
}

/* ------------------------------------------------------------------------ */
/* First-order sections */

/** tan(wc T / 2), the prewarped cutoff of the bilinear transform. */
static double prewarp(double cutoff, double rate)
{
  const double limited = fmin(cutoff, 0.49 * rate);
  return tan(EFFECT_PI * limited / rate);
}

void one_pole_set_lowpass(one_pole *f, double cutoff, double rate)
{
  const double k = prewarp(cutoff, rate);
  f->b0 = k / (1.0 + k);
  f->b1 = f->b0;
  f->a1 = (k - 1.0) / (1.0 + k);
}

void one_pole_set_highpass(one_pole *f, double cutoff, double rate)
{
  const double k = prewarp(cutoff, rate);
  f->b0 = 1.0 / (1.0 + k);
  f->b1 = -f->b0;
  f->a1 = (k - 1.0) / (1.0 + k);
}

void one_pole_rest(one_pole *f, double x)
{
  f->x1 = x;
  f->y1 = f->b1 == -f->b0 ? 0.0 : x;
}

double one_pole_run(one_pole *f, double x)
{
  const double y = f->b0 * x + f->b1 * f->x1 - f->a1 * f->y1;
  f->x1 = x;
  f->y1 = effect_flush(y);
  return y;
}

/* ------------------------------------------------------------------------ */
/* Envelope follower */

void follower_set(follower *f, double attack_seconds, double release_seconds,
                  double rate)
{
  f->attack = 1.0 - exp(-1.0 / (attack_seconds * rate));
  f->release = 1.0 - exp(-1.0 / (release_seconds * rate));
}

double follower_run(follower *f, double x)
{
  const double rate = x > f->value ? f->attack : f->release;
  f->value = effect_flush(f->value + rate * (x - f->value));
  return f->value;
}

/* ------------------------------------------------------------------------ */
/* Bracketed Newton */

static void count_solve(effect_stats *stats, int n_iterations)
{
  stats->n_solves += 1;
  stats->n_iterations += (uint64_t)n_iterations;
  if (n_iterations > stats->max_iterations) {
    stats->max_iterations = n_iterations;
  }
}

double solve_increasing(increasing_fn g, const void *context, double lo,
                        double hi, double guess, double tolerance,
                        effect_stats *stats)
{
  double v = fmin(hi, fmax(lo, guess));
  for (int k = 1; k <= SOLVER_MAX_ITERATIONS; ++k) {
    double slope = 0.0;
    const double value = g(context, v, &slope);
    if (value == 0.0) {
      count_solve(stats, k);
      return v;
    }
    /* g increases, so the sign says which side of the root v is on. */
    if (value < 0.0) {
      lo = v;
    } else {
      hi = v;
    }
    const double next = slope > 0.0 ? v - value / slope : lo;
    if (fabs(next - v) < tolerance) {
      count_solve(stats, k);
      return fmin(hi, fmax(lo, next));
    }
    /* A Newton step that would leave the bracket is replaced by a
       bisection, so the bracket at least halves every other step. */
    v = next >= lo && next <= hi ? next : 0.5 * (lo + hi);
    if (hi - lo < tolerance) {
      count_solve(stats, k);
      return v;
    }
  }
  count_solve(stats, SOLVER_MAX_ITERATIONS);
  stats->n_unconverged += 1;
  return v;
}

typedef struct diode_pair_equation {
  double alpha, beta, vt, c;
} diode_pair_equation;

static double diode_pair_residual(const void *context, double v,
                                  double *slope)
{
  const diode_pair_equation *eq = context;
  const double x = v / eq->vt;
  *slope = eq->alpha + eq->beta / eq->vt * cosh(x);
  return eq->alpha * v + eq->beta * sinh(x) - eq->c;
}

double solve_diode_pair(double alpha, double beta, double vt, double c,
                        double guess, effect_stats *stats)
{
  /* The root lies between 0 and the root without diodes (c / alpha), and
     no further from 0 than the root without the linear part: that
     bracket keeps sinh from overflowing however far the guess is. */
  const double linear = fabs(c) / alpha;
  const double diodes_only = vt * asinh(fabs(c) / beta);
  const double bound = copysign(fmin(linear, diodes_only), c);
  const diode_pair_equation eq = {alpha, beta, vt, c};
  return solve_increasing(diode_pair_residual, &eq, fmin(0.0, bound),
                          fmax(0.0, bound), guess, 1e-12, stats);
}
