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
    unknown one; resampling otherwise.  (Where rate correction is cheaper
    and good enough, for a host rate a whole multiple of the model's, this
    is the place to choose it once dsp/ runs it.) */
carry_rate_mode carry_rate_choose_mode(carry_rate_mode mode, double model_rate,
                                       double host_rate)
{
  if (mode != CARRY_RATE_AUTO) {
    return mode;
  }
  const bool is_same = fabs(model_rate - host_rate) <= CARRY_RATE_TOLERANCE;
  return model_rate <= 0.0 || is_same ? CARRY_RATE_OFF : CARRY_RATE_RESAMPLE;
}
