/*
  Rate modes: their names and what AUTO stands for.
*/

#include "carry_rate.h"

#include <math.h>

const char *carry_rate_mode_name(carry_rate_mode mode)
{
  switch (mode) {
  case CARRY_RATE_AUTO: return "auto";
  case CARRY_RATE_OFF: return "off";
  case CARRY_RATE_RESAMPLE: return "resampling";
  case CARRY_RATE_CORRECT: return "rate correction";
  }
  return "unknown";
}

/** AUTO: nothing to do for the same rate, nothing known to do for an
    unknown one; for a host rate a whole multiple of the model's, rate
    correction: no latency for a player, at an ESR well under 1% (0.3 to
    0.9% on the trained diode clipper at 2x and 4x, most of it the model's
    own aliasing above 5 kHz; resampling gives 0.08 to 0.13% but 2.7 ms
    late: tests/test_corrected.c, tests/test_rate.c); resampling
    otherwise, since below the model's rate correction cannot run and
    between whole ratios it leaves more error (1% at 88.2 kHz). */
carry_rate_mode carry_rate_choose_mode(carry_rate_mode mode, double model_rate,
                                       double host_rate)
{
  if (mode != CARRY_RATE_AUTO) {
    return mode;
  }
  const bool is_same = fabs(model_rate - host_rate) <= CARRY_RATE_TOLERANCE;
  if (model_rate <= 0.0 || is_same) {
    return CARRY_RATE_OFF;
  }
  const double ratio = host_rate / model_rate;
  const double whole = round(ratio);
  const bool is_multiple = whole >= 2.0 &&
                           fabs(host_rate - whole * model_rate) <=
                             CARRY_RATE_TOLERANCE;
  return is_multiple ? CARRY_RATE_CORRECT : CARRY_RATE_RESAMPLE;
}
