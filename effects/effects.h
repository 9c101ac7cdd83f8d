/*
  Carry's reference effects: white-box models of classic guitar circuits
  (a diode clipper, a green-pedal overdrive, a fuzz, a valve preamp with
  supply sag), used only to make training and validation data for the
  networks Carry runs.  They are not part of the plugin.

  Each effect has one or two knobs in [0, 1], processes one sample at a
  time with state carried between calls (so the output never depends on
  how a stream is cut into blocks), runs at any rate from 8 kHz to
  384 kHz, is deterministic (same input, same output, bit for bit, on a
  given machine) and adds no latency: a training target must stay
  sample-aligned with its dry input.  For that reason they do not
  oversample: the band-limiting filters around a 2x stage would delay the
  target by tens of samples, which a small recurrent network cannot
  learn; what they alias instead is a deterministic function of the input
  and far below the error the presets are held to.  The circuits, their
  equations, component values and sources are described in each effect's
  file.

  Usage:

      effect_error err;
      effect *fx = effect_create("overdrive", 48000.0, &err);
      effect_set_param(fx, "drive", 0.7, &err);
      effect_process(fx, in, out, n);   // as often as needed
      effect_free(fx);
*/

#ifndef CARRY_EFFECTS_H
#define CARRY_EFFECTS_H

#include <stddef.h>
#include <stdint.h>

#define EFFECT_MAX_PARAMS 2          ///< Knobs per effect, at most
#define EFFECT_MIN_RATE 8000.0       ///< Lowest sample rate, Hz
#define EFFECT_MAX_RATE 384000.0     ///< Highest sample rate, Hz
#define EFFECT_INPUT_LIMIT 1000.0    ///< Inputs clamped to +-this (+60 dBFS)
#define EFFECT_MESSAGE_SIZE 256

/** What went wrong, for effect_error. */
typedef enum effect_status {
  EFFECT_SUCCESS,             ///< No error
  EFFECT_ERR_UNKNOWN_EFFECT,  ///< No effect has that name
  EFFECT_ERR_UNKNOWN_PARAM,   ///< The effect has no knob of that name
  EFFECT_ERR_VALUE,           ///< A knob value is not finite or out of range
  EFFECT_ERR_RATE,            ///< The sample rate is outside the range
  EFFECT_ERR_NO_MEMORY,       ///< An allocation failed
} effect_status;

/** A status and a message naming what was wrong and what was expected. */
typedef struct effect_error {
  effect_status status;
  char message[EFFECT_MESSAGE_SIZE];
} effect_error;

/** A short description of a status ("unknown effect"); any thread. */
const char *effect_strerror(effect_status status);

/* ------------------------------------------------------------------------ */
/* The registry: which effects exist and what their knobs are. */

/** One knob. */
typedef struct effect_param {
  const char *name;         ///< "drive", "tone", ...
  const char *description;  ///< One line for --list
  double min;               ///< Lowest value (0 for every knob so far)
  double max;               ///< Highest value (1 for every knob so far)
  double value;             ///< Default
} effect_param;

/** One effect. */
typedef struct effect_info {
  const char *name;         ///< "diode_clipper", ...
  const char *summary;      ///< One line for --list
  int n_params;             ///< Knobs, 1..EFFECT_MAX_PARAMS
  effect_param params[EFFECT_MAX_PARAMS];
} effect_info;

/** How many effects there are; any thread. */
int effect_count(void);

/** The effect at `index` (0 to effect_count() - 1), else NULL; any
    thread. */
const effect_info *effect_info_at(int index);

/** The effect called `name` (exactly), else NULL; any thread. */
const effect_info *effect_find(const char *name);

/** The index of `info`'s knob called `name` (any case), else -1; any
    thread. */
int effect_find_param(const effect_info *info, const char *name);

/* ------------------------------------------------------------------------ */
/* Running an effect */

typedef struct effect effect;

/** Newton solver figures since creation or the last reset (effects that
    solve no implicit equation report zeros). */
typedef struct effect_stats {
  uint64_t n_solves;       ///< Nonlinear equations solved
  uint64_t n_iterations;   ///< Newton (or bisection) steps, in all
  int max_iterations;      ///< The most steps one solve took
  uint64_t n_unconverged;  ///< Solves that hit the iteration cap
} effect_stats;

/** Creates the effect called `name` for `sample_rate` Hz, knobs at their
    defaults, in its rest state.  Returns NULL and fills `err` (which may
    be NULL) on an unknown name, a rate outside [EFFECT_MIN_RATE,
    EFFECT_MAX_RATE] or no memory.  Allocates; not for the audio thread. */
effect *effect_create(const char *name, double sample_rate, effect_error *err);

/** The effect's name and knobs; any thread. */
const effect_info *effect_get_info(const effect *fx);

/** The sample rate the effect was created for; any thread. */
double effect_get_rate(const effect *fx);

/** Sets a knob by name (any case) to a value within its range; takes
    effect from the next sample, without smoothing, and keeps the state.
    On an unknown knob or a bad value, changes nothing, fills `err` (may be
    NULL) and returns its status.  No allocation; not concurrently with
    effect_process. */
effect_status effect_set_param(effect *fx, const char *name, double value,
                               effect_error *err);

/** The value of knob `index`, or NAN for no such knob; any thread. */
double effect_get_param(const effect *fx, int index);

/** Processes n samples.  `in` and `out` may be the same buffer.  A NaN or
    infinite input sample is taken as 0, and finite ones are clamped to
    +-EFFECT_INPUT_LIMIT, so the output is always finite.  Real-time safe:
    no allocation, locks or system calls, bounded work per sample. */
void effect_process(effect *fx, const float *in, float *out, size_t n);

/** Returns to the rest state (as just created, knobs kept) and clears the
    statistics.  No allocation. */
void effect_reset(effect *fx);

/** The solver statistics; any thread, not during effect_process. */
effect_stats effect_get_stats(const effect *fx);

/** Frees the effect; NULL is a no-op.  Not for the audio thread. */
void effect_free(effect *fx);

#endif /* CARRY_EFFECTS_H */
