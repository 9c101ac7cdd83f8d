/*
  The trainer's forward pass (float, OpenBLAS) against Carry's inference on
  the exported model: LSTM, GRU and stacked models with knobs and skip,
  after a little training, within 1e-5 on every sample with the vectorised
  kernels and with the double-precision reference; the exported file
  reloads bit for bit; the knobs, rate and metadata are what was trained.
*/

#include "carry_train.h"
#include "harness.h"

#include <cblas.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RATE 16000.0
#define N_SAMPLES 16000      // one second per pair
#define N_CHECK 20000        // samples compared (more than a chunk)
#define TOLERANCE 1e-5

typedef struct forward_case {
  const char *arch;
  bool has_skip;
  int n_knobs;
} forward_case;

static const char *const knob_names[] = {"drive", "tone", "bias"};

/** tanh(g x) through a one-pole low-pass, g from the first knob. */
static void make_target(const float *dry, float *target, size_t n, float knob)
{
  const double gain = 1.0 + 3.0 * knob, a = exp(-2.0 * M_PI * 3000.0 / RATE);
  double state = 0.0;
  for (size_t t = 0; t < n; ++t) {
    state = (1.0 - a) * tanh(gain * dry[t]) + a * state;
    target[t] = (float)state;
  }
}

static carry_train_data *make_data(int n_knobs)
{
  carry_error err;
  carry_train_data *data = carry_train_data_create(RATE, n_knobs, knob_names,
                                                   &err);
  float *dry = malloc(N_SAMPLES * sizeof(float));
  float *target = malloc(N_SAMPLES * sizeof(float));
  for (int p = 0; data && p < 2; ++p) {
    const float knobs[3] = {0.25f + 0.5f * (float)p, 0.5f, 0.25f};
    test_signal(dry, N_SAMPLES, 10 + (uint64_t)p);
    make_target(dry, target, N_SAMPLES, knobs[0]);
    CHECK(!carry_train_data_add(data, dry, target, N_SAMPLES, knobs, false,
                                "dry.wav", "target.wav", &err),
          "%s", err.message);
  }
  free(dry);
  free(target);
  return data;
}

static carry_trainer *train_briefly(const forward_case *c,
                                    const carry_train_data *data)
{
  carry_train_settings s;
  carry_train_settings_init(&s, RATE);
  carry_error err;
  CHECK(!carry_train_parse_arch(c->arch, &s.arch, &err), "%s", err.message);
  s.arch.has_skip = c->has_skip;
  s.segment_samples = 2000;
  s.warmup_samples = 100;
  s.tbptt_samples = 700;   // chunks of 700: the forward check crosses them
  s.batch_size = 4;
  s.max_epochs = 1;
  s.n_threads = 1;
  carry_trainer *t = carry_trainer_create(&s, data, &err);
  CHECK(t != NULL, "%s: %s", c->arch, err.message);
  if (t) {
    CHECK(!carry_trainer_run(t, NULL, NULL, NULL, &err), "%s", err.message);
  }
  return t;
}

/* ------------------------------------------------------------------------ */
/* Output against Carry's inference */

/** Carry's output for `dry` with `knobs`, from the model's initial state. */
static void run_carry(const carry_model *model, carry_kernels kernels,
                      const float *dry, const float *knobs, float *out)
{
  carry_error err;
  carry_stream *stream = carry_stream_create_with(model, 256, kernels, &err);
  if (!CHECK(stream != NULL, "%s", err.message)) {
    return;
  }
  carry_stream_process(stream, dry, knobs, out, N_CHECK);
  carry_stream_free(stream);
}

static void compare_outputs(const forward_case *c, const carry_trainer *t,
                            const carry_model *model)
{
  float *dry = malloc(N_CHECK * sizeof(float));
  float *mine = malloc(N_CHECK * sizeof(float));
  float *theirs = malloc(N_CHECK * sizeof(float));
  const float knobs[3] = {0.6f, 0.5f, 0.25f};
  test_signal(dry, N_CHECK, 99);
  carry_error err;
  CHECK(!carry_trainer_forward(t, false, dry, knobs, N_CHECK, mine, &err),
        "%s", err.message);
  static const carry_kernels kernels[] = {CARRY_KERNELS_AUTO,
                                          CARRY_KERNELS_REFERENCE};
  for (size_t k = 0; k < 2; ++k) {
    memset(theirs, 0, N_CHECK * sizeof(float));
    run_carry(model, kernels[k], dry, knobs, theirs);
    const double diff = test_max_abs_diff(mine, theirs, N_CHECK);
    CHECK(diff < TOLERANCE, "%s: trainer and Carry (%s kernels) differ by "
          "%.3g", c->arch, carry_kernels_name(kernels[k]), diff);
    printf("%-10s %-5s %d knob%s  largest difference from Carry (%s): "
           "%.2e\n", c->arch, c->has_skip ? "skip" : "", c->n_knobs,
           c->n_knobs == 1 ? " " : "s", carry_kernels_name(kernels[k]), diff);
  }
  CHECK(test_spread(mine, N_CHECK) > 0.02, "%s: the output is flat",
        c->arch);
  free(dry);
  free(mine);
  free(theirs);
}

/* ------------------------------------------------------------------------ */
/* The exported model */

static void check_spec(const forward_case *c, const carry_model *model)
{
  const carry_model_spec *spec = carry_model_get_spec(model);
  CHECK(spec->n_inputs == 1 + c->n_knobs, "%s: %d inputs", c->arch,
        spec->n_inputs);
  CHECK(spec->has_skip == c->has_skip, "%s: skip", c->arch);
  CHECK(spec->sample_rate == RATE, "%s: rate %g", c->arch, spec->sample_rate);
  CHECK(!strcmp(spec->name, "forward test"), "name '%s'", spec->name);
  for (int k = 0; k < c->n_knobs; ++k) {
    const carry_knob *knob = &spec->knobs[k];
    // The pairs span drive 0.25 .. 0.75; the others one value each.
    const float lo = k == 0 ? 0.25f : (k == 1 ? 0.5f : 0.25f);
    const float hi = k == 0 ? 0.75f : lo;
    CHECK(!strcmp(knob->name, knob_names[k]) && knob->min == lo &&
            knob->max == hi && knob->value == 0.5f * (lo + hi),
          "%s: knob %d is '%s' [%g, %g] default %g", c->arch, k,
          knob->name, (double)knob->min, (double)knob->max,
          (double)knob->value);
  }
}

static void check_metadata(const forward_case *c, const carry_model *model)
{
  const char *text = carry_model_get_metadata(model);
  json_t *meta = text ? json_loads(text, 0, NULL) : NULL;
  if (!CHECK(meta != NULL, "%s: no metadata", c->arch)) {
    return;
  }
  const json_t *training = json_object_get(meta, "training");
  const json_t *data = json_object_get(training, "data");
  CHECK(!strcmp(json_string_value(json_object_get(training, "arch")),
                c->arch), "%s: metadata arch", c->arch);
  CHECK(json_integer_value(json_object_get(training, "tbptt_samples")) == 700,
        "%s: metadata tbptt", c->arch);
  CHECK(json_array_size(data) == 2 &&
          !strcmp(json_string_value(json_object_get(
                    json_array_get(data, 0), "target")), "target.wav"),
        "%s: metadata data files", c->arch);
  const double esr = json_number_value(json_object_get(meta, "esr"));
  CHECK(esr > 0.0 && esr < 10.0, "%s: metadata esr %g", c->arch, esr);
  json_decref(meta);
}

/** Saved and loaded again, the model is the same bit for bit. */
static void check_reload(const forward_case *c, const carry_model *model)
{
  carry_error err;
  char *text = carry_model_to_json(model, &err);
  carry_model *again = text ? carry_model_load_string(text, strlen(text),
                                                      "exported", &err)
                            : NULL;
  if (CHECK(again != NULL, "%s: reload: %s", c->arch, err.message)) {
    const int n_layers = carry_model_get_spec(model)->n_layers;
    for (int l = 0; l < n_layers; ++l) {
      const carry_layer_weights a = carry_model_layer_const(model, l);
      const carry_layer_weights b = carry_model_layer_const(again, l);
      const size_t n = (size_t)a.n_in * (size_t)a.n_rows;
      CHECK(!memcmp(a.kernel, b.kernel, n * sizeof(float)),
            "%s: layer %d kernel changed on reload", c->arch, l);
    }
    CHECK(carry_model_get_metadata(again) != NULL, "%s: metadata lost",
          c->arch);
  }
  carry_model_free(again);
  free(text);
}

static void check_case(const forward_case *c)
{
  carry_train_data *data = make_data(c->n_knobs);
  carry_trainer *t = data ? train_briefly(c, data) : NULL;
  carry_error err;
  carry_model *model = t ? carry_trainer_export(t, "forward test", false,
                                                &err)
                         : NULL;
  if (CHECK(model != NULL, "%s: export: %s", c->arch, err.message)) {
    compare_outputs(c, t, model);
    check_spec(c, model);
    check_metadata(c, model);
    check_reload(c, model);
  }
  carry_model_free(model);
  carry_trainer_free(t);
  carry_train_data_free(data);
}

int main(void)
{
  static const forward_case cases[] = {
    {"lstm:8", true, 2},
    {"lstm:12", false, 0},
    {"gru:8", false, 1},
    {"gru:16", true, 3},
    {"lstm:8x2", true, 1},
    {"gru:6x3", false, 0},
  };
  for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); ++k) {
    check_case(&cases[k]);
  }
  return test_finish("train_forward");
}
