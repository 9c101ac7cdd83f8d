/*
  The shipped presets against the reference effects they were trained on:
  on the validation material (seed 2, never seen in training) at three
  knob settings each, the model's output must be within the error
  to signal ratio of the effect's: 1% for the diode clipper and the
  overdrive, 3% for the fuzz and the preamp.  The model runs as the plugin
  runs it: settled on silence with the knobs, then streamed.
*/

#include "harness.h"

#include "../effects/effects.h"
#include "../tools/guitar.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RATE 48000.0
#define VALIDATION_SECONDS 20.0

typedef struct {
  const char *name;    ///< presets/NAME.json
  const char *effect;
  const char *knobs[2];  ///< Effect parameters, in the model's knob order
  float settings[3][2];  ///< Three settings of those knobs
  double max_esr;
} preset_case;

static const preset_case presets[] = {
  {"diode-clipper", "diode_clipper", {"drive", NULL},
   {{0.0f}, {0.5f}, {1.0f}}, 0.01},
  {"overdrive", "overdrive", {"drive", "tone"},
   {{0.0f, 0.0f}, {0.5f, 0.5f}, {1.0f, 1.0f}}, 0.01},
  {"fuzz", "fuzz", {"fuzz", NULL}, {{0.0f}, {0.5f}, {1.0f}}, 0.03},
  {"preamp", "preamp", {"gain", NULL}, {{0.0f}, {0.5f}, {1.0f}}, 0.03},
};

static double esr(const float *out, const float *target, size_t n)
{
  double error = 0.0, energy = 0.0;
  for (size_t t = 0; t < n; ++t) {
    const double e = (double)out[t] - (double)target[t];
    error += e * e;
    energy += (double)target[t] * (double)target[t];
  }
  return error / (energy + 1e-30);
}

static bool render_effect(const preset_case *p, const float *setting,
                          const float *in, float *out, size_t n)
{
  effect_error err;
  effect *fx = effect_create(p->effect, RATE, &err);
  for (int k = 0; fx && k < 2 && p->knobs[k]; ++k) {
    effect_set_param(fx, p->knobs[k], setting[k], &err);
  }
  if (!CHECK(fx != NULL, "effect %s: %s", p->effect, err.message)) {
    return false;
  }
  effect_process(fx, in, out, n);
  effect_free(fx);
  return true;
}

/** The model's knob values for the effect's parameter values: each knob's
    range is what the training pairs spanned. */
static void model_knobs(const carry_model *model, const float *setting,
                        float *knobs)
{
  const carry_model_spec *spec = carry_model_get_spec(model);
  for (int k = 0; k + 1 < spec->n_inputs; ++k) {
    knobs[k] = setting[k];
  }
}

static void render_model(const carry_model *model, const float *setting,
                         const float *in, float *out, size_t n)
{
  float knobs[CARRY_MAX_KNOBS];
  model_knobs(model, setting, knobs);
  carry_stream *stream = carry_stream_create(model, 256, NULL);
  carry_stream_settle(stream, knobs, CARRY_SETTLE_SAMPLES);
  carry_stream_process(stream, in, knobs, out, (uint32_t)n);
  carry_stream_free(stream);
}

static void check_preset(const preset_case *p, const float *in, float *target,
                         float *out, size_t n)
{
  char path[256];
  snprintf(path, sizeof(path), "presets/%s.json", p->name);
  carry_error err;
  carry_model *model = carry_model_load(test_source_path(path), &err);
  if (!CHECK(model != NULL, "preset %s: %s", p->name, err.message)) {
    return;
  }
  const int n_knobs = carry_model_get_spec(model)->n_inputs - 1;
  CHECK(n_knobs == (p->knobs[1] ? 2 : 1), "%s: conditioned on its knobs",
        p->name);
  for (int s = 0; s < 3; ++s) {
    const float *setting = p->settings[s];
    if (!render_effect(p, setting, in, target, n)) {
      break;
    }
    render_model(model, setting, in, out, n);
    const double e = esr(out, target, n);
    char knobs[64];
    int used = snprintf(knobs, sizeof(knobs), "%s=%.2f", p->knobs[0],
                        (double)setting[0]);
    if (p->knobs[1]) {
      snprintf(knobs + used, sizeof(knobs) - (size_t)used, " %s=%.2f",
               p->knobs[1], (double)setting[1]);
    }
    printf("%-14s %-20s ESR %.4f%% (at most %.0f%%)\n", p->name, knobs,
           100.0 * e, 100.0 * p->max_esr);
    CHECK(e <= p->max_esr, "%s at setting %d: ESR %g above %g", p->name, s,
          e, p->max_esr);
  }
  carry_model_free(model);
}

int main(void)
{
  const size_t n = (size_t)(VALIDATION_SECONDS * RATE);
  float *in = malloc(n * sizeof(float)), *target = malloc(n * sizeof(float));
  float *out = malloc(n * sizeof(float));
  if (!in || !target || !out || !guitar_render(in, n, RATE, 2)) {
    return 99;
  }
  for (size_t k = 0; k < sizeof(presets) / sizeof(presets[0]); ++k) {
    check_preset(&presets[k], in, target, out, n);
  }
  free(in);
  free(target);
  free(out);
  return test_finish("presets");
}
