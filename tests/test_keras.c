/*
  The Keras JSON reader and writer: small hand-written files whose outputs
  are computed here from the equations in FORMATS.md (in double), and
  random models written out and read back bit for bit.
*/

#include "harness.h"

#include <jansson.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { N_SAMPLES = 8 };

/** The same few samples go through every hand-computed model. */
static const float test_input[N_SAMPLES] = {0.5f, -0.25f, 1.0f, 0.0f,
                                            -0.8f, 0.3f,  0.9f, -0.6f};

static double sigmoid(double x)
{
  return 1.0 / (1.0 + exp(-x));
}

/* ------------------------------------------------------------------------ */
/* Helpers */

static carry_model *load_model(const char *file)
{
  char relative[256];
  snprintf(relative, sizeof(relative), "tests/models/%s", file);
  carry_error err;
  carry_model *model = carry_model_load(test_source_path(relative), &err);
  CHECK(model && err.status == CARRY_SUCCESS && !err.message[0],
        "%s: loading failed: %s", file, err.message);
  return model;
}

/** Runs `n` samples from a fresh stream, in blocks of at most 3 so that
    the carried state is exercised across calls. */
static void run_model(const carry_model *model, const float *in,
                      const float *knobs, float *out, uint32_t n)
{
  carry_error err;
  carry_stream *stream = carry_stream_create(model, 3, &err);
  CHECK(stream != NULL, "stream: %s", err.message);
  for (uint32_t t = 0; stream && t < n; t += 3) {
    carry_stream_process(stream, in + t, knobs, out + t, n - t < 3 ? n - t : 3);
  }
  carry_stream_free(stream);
}

static void check_outputs(const char *what, const float *got,
                          const double *want, int n, double tolerance)
{
  for (int t = 0; t < n; ++t) {
    CHECK(fabs(got[t] - want[t]) <= tolerance,
          "%s: sample %d is %.9g, expected %.9g", what, t, (double)got[t],
          want[t]);
  }
}

/** One LSTM step in double with Keras-order weights: kernel (I, 4H),
    recurrent (H, 4H), gates i, f, g, o. */
static void lstm_step(const double *x, int I, int H, const double *kernel,
                      const double *recurrent, const double *bias, double *h,
                      double *c)
{
  double z[4 * 8];
  for (int g = 0; g < 4 * H; ++g) {
    z[g] = bias[g];
    for (int i = 0; i < I; ++i) {
      z[g] += x[i] * kernel[i * 4 * H + g];
    }
    for (int j = 0; j < H; ++j) {
      z[g] += h[j] * recurrent[j * 4 * H + g];
    }
  }
  for (int k = 0; k < H; ++k) {
    c[k] = sigmoid(z[H + k]) * c[k] + sigmoid(z[k]) * tanh(z[2 * H + k]);
    h[k] = sigmoid(z[3 * H + k]) * tanh(c[k]);
  }
}

/* ------------------------------------------------------------------------ */
/* Hand-computed models */

static void test_dense_linear(void)
{
  carry_model *model = load_model("dense_linear.json");
  if (!model) {
    return;
  }
  const carry_model_spec *spec = carry_model_get_spec(model);
  CHECK(spec->n_inputs == 1 && spec->n_layers == 1 && !spec->has_skip,
        "dense_linear: wrong shape");
  CHECK(spec->layers[0].type == CARRY_LAYER_DENSE &&
          spec->layers[0].n_units == 1 && !spec->layers[0].omits_bias,
        "dense_linear: wrong layer");
  CHECK(!strcmp(spec->name, "dense_linear"),
        "dense_linear: name \"%s\", expected the file's base name", spec->name);
  CHECK(spec->sample_rate == 0.0, "dense_linear: rate %g, expected unknown",
        spec->sample_rate);
  CHECK(carry_model_get_metadata(model) == NULL, "dense_linear: metadata");
  float out[N_SAMPLES];
  double want[N_SAMPLES];
  run_model(model, test_input, NULL, out, N_SAMPLES);
  for (int t = 0; t < N_SAMPLES; ++t) {
    want[t] = 2.0 * test_input[t] + 1.0; // exact in float too
  }
  check_outputs("dense_linear", out, want, N_SAMPLES, 0.0);
  carry_model_free(model);
}

static void test_activation_layer(void)
{
  carry_model *model = load_model("dense_tanh.json");
  if (!model) {
    return;
  }
  const carry_model_spec *spec = carry_model_get_spec(model);
  CHECK(spec->n_layers == 2 && spec->layers[1].type == CARRY_LAYER_ACTIVATION &&
          spec->layers[1].activation == CARRY_ACT_TANH,
        "dense_tanh: expected an activation layer with tanh");
  CHECK(!strcmp(spec->name, "Tanh Drive"), "dense_tanh: name \"%s\"",
        spec->name);
  CHECK(spec->sample_rate == 48000.0,
        "dense_tanh: rate %g from the string \"48000\"", spec->sample_rate);
  const char *metadata = carry_model_get_metadata(model);
  CHECK(metadata && strstr(metadata, "\"author\":\"Carry tests\""),
        "dense_tanh: metadata kept as \"%s\"", metadata ? metadata : "NULL");
  float out[N_SAMPLES];
  double want[N_SAMPLES];
  run_model(model, test_input, NULL, out, N_SAMPLES);
  for (int t = 0; t < N_SAMPLES; ++t) {
    want[t] = tanh(2.0 * test_input[t] + 1.0);
  }
  check_outputs("dense_tanh", out, want, N_SAMPLES, 1e-6);
  carry_model_free(model);
}

/** The 1-unit LSTM of lstm_unit.json and lstm_state.json from (h, c). */
static void lstm_unit_reference(double h, double c, double *want)
{
  static const double kernel[4] = {0.5, -0.3, 0.8, 0.2};
  static const double recurrent[4] = {0.1, 0.4, -0.6, 0.3};
  static const double bias[4] = {0.05, 1.0, -0.1, 0.2};
  for (int t = 0; t < N_SAMPLES; ++t) {
    const double x = test_input[t];
    lstm_step(&x, 1, 1, kernel, recurrent, bias, &h, &c);
    want[t] = 1.5 * h + 0.1;
  }
}

static void test_lstm_unit(void)
{
  carry_model *model = load_model("lstm_unit.json");
  if (!model) {
    return;
  }
  const carry_model_spec *spec = carry_model_get_spec(model);
  CHECK(spec->layers[0].type == CARRY_LAYER_LSTM &&
          spec->layers[0].n_units == 1,
        "lstm_unit: expected a 1-unit LSTM");
  CHECK(spec->sample_rate == 44100.0, "lstm_unit: rate %g", spec->sample_rate);
  float out[N_SAMPLES];
  double want[N_SAMPLES];
  run_model(model, test_input, NULL, out, N_SAMPLES);
  lstm_unit_reference(0.0, 0.0, want);
  check_outputs("lstm_unit", out, want, N_SAMPLES, 1e-5);
  carry_model_free(model);
}

static void test_initial_state(void)
{
  carry_model *model = load_model("lstm_state.json");
  if (!model) {
    return;
  }
  const carry_layer_weights w = carry_model_layer_const(model, 0);
  CHECK(w.h0 && w.c0 && w.h0[0] == 0.3f && w.c0[0] == -0.7f,
        "lstm_state: initial state not read");
  float out[N_SAMPLES];
  double want[N_SAMPLES];
  run_model(model, test_input, NULL, out, N_SAMPLES);
  lstm_unit_reference(0.3f, -0.7f, want);
  check_outputs("lstm_state", out, want, N_SAMPLES, 1e-5);
  carry_model_free(model);
}

/** GRU, Keras reset_after=True, gates z, r, h; then y = 2h (no bias). */
static void gru_unit_reference(double *want)
{
  static const double W[3] = {0.7, -0.4, 0.9}, U[3] = {0.3, 0.5, -0.8};
  static const double b0[3] = {0.1, -0.2, 0.3}, b1[3] = {-0.05, 0.15, 0.25};
  double h = 0.0;
  for (int t = 0; t < N_SAMPLES; ++t) {
    const double x = test_input[t];
    const double z = sigmoid(W[0] * x + b0[0] + U[0] * h + b1[0]);
    const double r = sigmoid(W[1] * x + b0[1] + U[1] * h + b1[1]);
    const double candidate = tanh(W[2] * x + b0[2] + r * (U[2] * h + b1[2]));
    h = (1.0 - z) * candidate + z * h;
    want[t] = 2.0 * h;
  }
}

static void test_gru_unit(void)
{
  carry_model *model = load_model("gru_unit.json");
  if (!model) {
    return;
  }
  const carry_model_spec *spec = carry_model_get_spec(model);
  CHECK(spec->layers[0].type == CARRY_LAYER_GRU &&
          spec->layers[1].omits_bias,
        "gru_unit: expected a GRU and a dense layer without bias");
  CHECK(!strcmp(spec->name, "GRU test"), "gru_unit: name \"%s\"", spec->name);
  CHECK(spec->sample_rate == 96000.0,
        "gru_unit: rate %g from metadata.samplerate", spec->sample_rate);
  float out[N_SAMPLES];
  double want[N_SAMPLES];
  run_model(model, test_input, NULL, out, N_SAMPLES);
  gru_unit_reference(want);
  check_outputs("gru_unit", out, want, N_SAMPLES, 1e-5);
  carry_model_free(model);
}

static void test_gains_and_skip(void)
{
  carry_model *model = load_model("gains_skip.json");
  if (!model) {
    return;
  }
  const carry_model_spec *spec = carry_model_get_spec(model);
  CHECK(spec->has_skip && spec->in_gain_db == 6.0f &&
          spec->out_gain_db == -3.0f,
        "gains_skip: skip %d, gains %g %g", spec->has_skip,
        (double)spec->in_gain_db, (double)spec->out_gain_db);
  CHECK(spec->sample_rate == 22050.0,
        "gains_skip: rate %g from metadata.sample_rate", spec->sample_rate);
  const double in_gain = pow(10.0, 6.0 / 20.0);
  const double out_gain = pow(10.0, -3.0 / 20.0);
  float out[N_SAMPLES];
  double want[N_SAMPLES];
  run_model(model, test_input, NULL, out, N_SAMPLES);
  for (int t = 0; t < N_SAMPLES; ++t) {
    const double x = test_input[t] * in_gain;
    want[t] = ((2.0 * x + 1.0) + x) * out_gain;
  }
  check_outputs("gains_skip", out, want, N_SAMPLES, 1e-6);
  carry_model_free(model);
}

static void check_knob(const carry_knob *knob, const char *name, float min,
                       float max, float value)
{
  CHECK(!strcmp(knob->name, name) && knob->min == min && knob->max == max &&
          knob->value == value,
        "knob \"%s\" [%g, %g] = %g, expected \"%s\" [%g, %g] = %g",
        knob->name, (double)knob->min, (double)knob->max, (double)knob->value,
        name, (double)min, (double)max, (double)value);
}

static void test_knobs(void)
{
  carry_model *model = load_model("knobs.json");
  if (!model) {
    return;
  }
  const carry_model_spec *spec = carry_model_get_spec(model);
  CHECK(spec->n_inputs == 3 && spec->has_skip, "knobs: inputs %d, skip %d",
        spec->n_inputs, spec->has_skip);
  check_knob(&spec->knobs[0], "drive", 0.0f, 1.0f, 0.25f);
  check_knob(&spec->knobs[1], "tone", -1.0f, 1.0f, 0.0f); // default: middle
  CHECK(carry_model_find_knob(model, "TONE") == 1, "knobs: find \"TONE\"");
  float out[N_SAMPLES];
  double want[N_SAMPLES];
  run_model(model, test_input, NULL, out, N_SAMPLES);
  for (int t = 0; t < N_SAMPLES; ++t) {
    want[t] = 2.0 * test_input[t] + 2.0 * 0.25; // y = x + 2 k1 + 3 k2, + x
  }
  check_outputs("knobs at their defaults", out, want, N_SAMPLES, 1e-6);
  const float knobs[2] = {0.75f, -0.25f};
  run_model(model, test_input, knobs, out, N_SAMPLES);
  for (int t = 0; t < N_SAMPLES; ++t) {
    want[t] = 2.0 * test_input[t] + 2.0 * 0.75 + 3.0 * -0.25;
  }
  check_outputs("knobs set", out, want, N_SAMPLES, 1e-6);
  carry_model_free(model);
}

/** TD-dense(2, tanh) -> LSTM(2) -> dense(1), as in RTNeural's tests; the
    file has no in_shape, so N comes from the first kernel. */
static void stacked_reference(double *want)
{
  static const double dense_kernel[2] = {0.9, -0.6}, dense_bias[2] = {0.1, 0.2};
  static const double kernel[2 * 8] = {
    0.2, -0.1, 0.4, 0.3, 0.5, 0.1, -0.7, 0.6,
    -0.3, 0.2, 0.1, -0.4, 0.2, 0.3, 0.8, -0.2};
  static const double recurrent[2 * 8] = {
    0.1, 0.0, -0.2, 0.1, 0.3, -0.1, 0.4, 0.2,
    0.0, 0.2, 0.1, -0.3, -0.2, 0.1, 0.3, 0.1};
  static const double bias[8] = {0.0, 0.1, 0.9, 1.1, -0.1, 0.05, 0.2, -0.2};
  double h[2] = {0.0, 0.0}, c[2] = {0.0, 0.0};
  for (int t = 0; t < N_SAMPLES; ++t) {
    double x[2];
    for (int k = 0; k < 2; ++k) {
      x[k] = tanh(test_input[t] * dense_kernel[k] + dense_bias[k]);
    }
    lstm_step(x, 2, 2, kernel, recurrent, bias, h, c);
    want[t] = 0.8 * h[0] - 1.2 * h[1] + 0.05;
  }
}

static void test_stacked(void)
{
  carry_model *model = load_model("stacked.json");
  if (!model) {
    return;
  }
  const carry_model_spec *spec = carry_model_get_spec(model);
  CHECK(spec->n_inputs == 1 && spec->n_layers == 3 &&
          spec->layers[0].type == CARRY_LAYER_DENSE &&
          spec->layers[0].activation == CARRY_ACT_TANH &&
          spec->layers[1].type == CARRY_LAYER_LSTM,
        "stacked: wrong shape");
  float out[N_SAMPLES];
  double want[N_SAMPLES];
  run_model(model, test_input, NULL, out, N_SAMPLES);
  stacked_reference(want);
  check_outputs("stacked", out, want, N_SAMPLES, 1e-5);
  carry_model_free(model);
}

/** A file and the same text given as a string load the same model. */
static void test_load_string(void)
{
  const char *text = "{\"layers\": [{\"type\": \"dense\", \"shape\": [1], "
                     "\"weights\": [[[3]]]}], \"samplerate\": \"44100.5\"}";
  carry_error err;
  carry_model *model =
    carry_model_load_string(text, strlen(text), "dir.v2/My Amp.json", &err);
  CHECK(model != NULL, "load_string: %s", err.message);
  if (!model) {
    return;
  }
  const carry_model_spec *spec = carry_model_get_spec(model);
  CHECK(!strcmp(spec->name, "My Amp"), "load_string: name \"%s\"", spec->name);
  CHECK(spec->sample_rate == 44100.5, "load_string: rate %g",
        spec->sample_rate);
  CHECK(spec->layers[0].omits_bias, "load_string: a kernel alone has no bias");
  float out[N_SAMPLES];
  double want[N_SAMPLES];
  run_model(model, test_input, NULL, out, N_SAMPLES);
  for (int t = 0; t < N_SAMPLES; ++t) {
    want[t] = 3.0f * test_input[t];
  }
  check_outputs("load_string", out, want, N_SAMPLES, 0.0);
  carry_model_free(model);
}

/** A name longer than CARRY_NAME_SIZE is cut on a character boundary,
    and writing the model keeps the whole name in its metadata. */
static void test_long_name(void)
{
  char name[200];
  memset(name, 'a', 126);
  snprintf(name + 126, sizeof(name) - 126, "\xc3\xbc and more");
  char text[600];
  snprintf(text, sizeof(text),
           "{\"metadata\": {\"name\": \"%s\"}, \"layers\": [{\"type\": "
           "\"dense\", \"shape\": [1], \"weights\": [[[1]]]}]}", name);
  carry_error err;
  carry_model *model =
    carry_model_load_string(text, strlen(text), "long.json", &err);
  CHECK(model != NULL, "long name: %s", err.message);
  if (!model) {
    return;
  }
  CHECK(strlen(carry_model_get_spec(model)->name) == 126,
        "long name: cut to %zu bytes, expected 126 (before the \"\xc3\xbc\")",
        strlen(carry_model_get_spec(model)->name));
  char *json = carry_model_to_json(model, &err);
  CHECK(json && strstr(json, name), "long name: not kept whole in\n%s",
        json ? json : err.message);
  free(json);
  carry_model_free(model);
}

/* ------------------------------------------------------------------------ */
/* Round trips */

static void set_knobs(carry_model_spec *spec)
{
  static const char *const names[] = {"drive", "tone \"bright\"", "lev\\el"};
  for (int k = 0; k + 1 < spec->n_inputs; ++k) {
    carry_knob *knob = &spec->knobs[k];
    snprintf(knob->name, sizeof(knob->name), "%s", names[k % 3]);
    knob->min = -0.5f * (float)k;
    knob->max = 1.0f + 0.1f * (float)k;
    knob->value = 1.0f / 3.0f;
  }
}

/** Values whose text form is easy to get wrong: negative zero, a
    denormal, the smallest normal, thirds and tenths. */
static void plant_awkward_values(carry_model *model)
{
  static const float awkward[] = {-0.0f, 1e-40f, 1.0f / 3.0f, 0.1f, 1e-7f,
                                  -1.17549435e-38f, 3.0e-5f, 1234.5678f};
  carry_layer_weights w = carry_model_layer(model, 0);
  const size_t n = (size_t)w.n_in * (size_t)w.n_rows;
  for (size_t k = 0; k < sizeof(awkward) / sizeof(awkward[0]) && k < n; ++k) {
    w.kernel[k] = awkward[k];
  }
  carry_error err;
  CHECK(carry_model_prepare(model, &err) == CARRY_SUCCESS, "prepare: %s",
        err.message);
}

/** A random model with every extra the format carries. */
static carry_model *make_model(const carry_layer_spec *layers, int n_layers,
                               int n_inputs, bool with_extras, uint64_t seed)
{
  carry_model_spec spec;
  carry_model_spec_init(&spec);
  spec.n_inputs = n_inputs;
  spec.n_layers = n_layers;
  memcpy(spec.layers, layers, sizeof(*layers) * (size_t)n_layers);
  if (with_extras) {
    spec.has_skip = true;
    spec.in_gain_db = 3.3f;
    spec.out_gain_db = -7.1f;
    spec.sample_rate = 44100.0;
    snprintf(spec.name, sizeof(spec.name), "Crunch \"Box\" \\ \xc3\xbc");
    set_knobs(&spec);
  }
  carry_error err;
  carry_model *model = carry_model_create(&spec, &err);
  if (!model) {
    CHECK(false, "create: %s", err.message);
    return NULL;
  }
  test_rng rng = test_rng_new(seed);
  test_randomize_model(model, &rng, 1.0f, with_extras);
  plant_awkward_values(model);
  return model;
}

static bool same_floats(const float *a, const float *b, size_t n)
{
  return (!a && !b) || (a && b && !memcmp(a, b, n * sizeof(float)));
}

static void check_same_weights(const carry_model *a, const carry_model *b,
                               const char *what)
{
  const int n_layers = carry_model_get_spec(a)->n_layers;
  for (int l = 0; l < n_layers; ++l) {
    const carry_layer_weights x = carry_model_layer_const(a, l);
    const carry_layer_weights y = carry_model_layer_const(b, l);
    const size_t I = (size_t)x.n_in, H = (size_t)x.n_units;
    const size_t G = (size_t)x.n_rows;
    CHECK(x.type == y.type && x.n_in == y.n_in && x.n_units == y.n_units &&
            same_floats(x.kernel, y.kernel, I * G) &&
            same_floats(x.recurrent, y.recurrent, H * G) &&
            same_floats(x.bias, y.bias, G) &&
            same_floats(x.recurrent_bias, y.recurrent_bias, G) &&
            same_floats(x.h0, y.h0, H) && same_floats(x.c0, y.c0, H),
          "%s: layer %d differs after the round trip", what, l);
  }
}

static bool same_knob(const carry_knob *a, const carry_knob *b)
{
  return !strcmp(a->name, b->name) && a->min == b->min && a->max == b->max &&
         a->value == b->value;
}

/** `b` is `a` read back from a file called `base_name`, which names a
    model that had no name. */
static void check_same_spec(const carry_model_spec *a,
                            const carry_model_spec *b, const char *base_name,
                            const char *what)
{
  const char *name = a->name[0] ? a->name : base_name;
  bool same_layers = a->n_layers == b->n_layers;
  for (int l = 0; same_layers && l < a->n_layers; ++l) {
    const carry_layer_spec *x = &a->layers[l], *y = &b->layers[l];
    same_layers = x->type == y->type && x->activation == y->activation &&
                  x->omits_bias == y->omits_bias &&
                  (x->type == CARRY_LAYER_ACTIVATION ||
                   x->n_units == y->n_units);
  }
  bool same_knobs = true;
  for (int k = 0; k + 1 < a->n_inputs; ++k) {
    same_knobs = same_knobs && same_knob(&a->knobs[k], &b->knobs[k]);
  }
  CHECK(same_layers && same_knobs && a->n_inputs == b->n_inputs &&
          a->has_skip == b->has_skip && a->in_gain_db == b->in_gain_db &&
          a->out_gain_db == b->out_gain_db &&
          a->sample_rate == b->sample_rate && !strcmp(name, b->name),
        "%s: the description differs after the round trip (name \"%s\" vs "
        "\"%s\")", what, name, b->name);
}

static void check_same_output(const carry_model *a, const carry_model *b,
                              const char *what)
{
  enum { N = 3000 };
  static float x[N], ya[N], yb[N];
  const float knobs[CARRY_MAX_KNOBS] = {0.2f, 0.9f, 0.5f};
  test_signal(x, N, 7);
  run_model(a, x, knobs, ya, N);
  run_model(b, x, knobs, yb, N);
  CHECK(!memcmp(ya, yb, sizeof(ya)), "%s: outputs differ by up to %g", what,
        test_max_abs_diff(ya, yb, N));
}

static void check_same_model(const carry_model *a, const carry_model *b,
                             const char *base_name, const char *what)
{
  check_same_spec(carry_model_get_spec(a), carry_model_get_spec(b), base_name,
                  what);
  check_same_weights(a, b, what);
  check_same_output(a, b, what);
}

/** The kept metadata survives, with the model's own name and rate. */
static void check_metadata(const carry_model *model, const char *what)
{
  const char *text = carry_model_get_metadata(model);
  json_t *metadata = text ? json_loads(text, 0, NULL) : NULL;
  json_t *nested = json_loads("{\"a\": [1, 2.5, {\"b\": null}]}", 0, NULL);
  const carry_model_spec *spec = carry_model_get_spec(model);
  CHECK(json_is_object(metadata) &&
          !strcmp(json_string_value(json_object_get(metadata, "author")),
                  "Me") &&
          json_equal(json_object_get(metadata, "nested"), nested) &&
          !strcmp(json_string_value(json_object_get(metadata, "name")),
                  spec->name) &&
          json_number_value(json_object_get(metadata, "samplerate")) ==
            spec->sample_rate,
        "%s: metadata came back as %s", what, text ? text : "NULL");
  json_decref(nested);
  json_decref(metadata);
}

/** Writes `model`, reads it back, and checks that nothing changed and
    that writing the copy gives the same text. */
static void check_round_trip(const carry_model *model, const char *what)
{
  carry_error err;
  char *text = carry_model_to_json(model, &err);
  CHECK(text != NULL, "%s: to_json: %s", what, err.message);
  carry_model *copy =
    text ? carry_model_load_string(text, strlen(text), "copy.json", &err)
         : NULL;
  CHECK(copy != NULL, "%s: reading back: %s", what, err.message);
  if (copy) {
    check_same_model(model, copy, "copy", what);
    // An unnamed model comes back named after the file, so its text differs
    char *again = carry_model_to_json(copy, &err);
    CHECK(again && (!carry_model_get_spec(model)->name[0] ||
                    !strcmp(text, again)),
          "%s: writing the copy differs", what);
    free(again);
  }
  carry_model_free(copy);
  free(text);
}

static void test_round_trips(void)
{
  const carry_layer_spec lstm_stack[] = {
    {CARRY_LAYER_LSTM, 8, CARRY_ACT_LINEAR, false},
    {CARRY_LAYER_LSTM, 6, CARRY_ACT_LINEAR, false},
    {CARRY_LAYER_DENSE, 1, CARRY_ACT_LINEAR, false}};
  const carry_layer_spec mixed[] = {
    {CARRY_LAYER_DENSE, 4, CARRY_ACT_TANH, false},
    {CARRY_LAYER_GRU, 5, CARRY_ACT_LINEAR, false},
    {CARRY_LAYER_LSTM, 3, CARRY_ACT_LINEAR, false},
    {CARRY_LAYER_DENSE, 2, CARRY_ACT_SIGMOID, true},
    {CARRY_LAYER_ACTIVATION, 0, CARRY_ACT_SOFTMAX, false},
    {CARRY_LAYER_DENSE, 1, CARRY_ACT_ELU, true}};
  carry_model *a = make_model(lstm_stack, 3, 4, true, 1);
  carry_model *b = make_model(mixed, 6, 2, true, 2);
  carry_model *c = make_model(mixed, 6, 1, false, 3);
  test_rng rng = test_rng_new(4);
  carry_model *d = test_random_model(CARRY_LAYER_GRU, 16, 2, 1, false, &rng);
  if (a && b && c) {
    check_round_trip(a, "LSTM stack with extras");
    check_round_trip(b, "mixed layers with extras");
    check_round_trip(c, "mixed layers, plain");
    check_round_trip(d, "GRU stack");
  }
  carry_model_free(a);
  carry_model_free(b);
  carry_model_free(c);
  carry_model_free(d);
}

/** Nothing written for what the model does not have. */
static void test_plain_output(void)
{
  test_rng rng = test_rng_new(5);
  carry_model *model = test_random_model(CARRY_LAYER_LSTM, 4, 1, 1, false,
                                         &rng);
  carry_error err;
  char *text = carry_model_to_json(model, &err);
  CHECK(text && !strstr(text, "initial_state") && !strstr(text, "knobs") &&
          !strstr(text, "samplerate") && !strstr(text, "metadata"),
        "plain model: unexpected extras in\n%s", text ? text : err.message);
  free(text);
  carry_model_free(model);
}

static void test_metadata_survives(void)
{
  const carry_layer_spec layers[] = {
    {CARRY_LAYER_LSTM, 3, CARRY_ACT_LINEAR, false},
    {CARRY_LAYER_DENSE, 1, CARRY_ACT_LINEAR, false}};
  carry_model *model = make_model(layers, 2, 1, true, 6);
  carry_error err;
  CHECK(carry_model_set_metadata(model,
                                 "{\"author\":\"Me\",\"name\":\"old\","
                                 "\"nested\":{\"a\":[1,2.5,{\"b\":null}]}}",
                                 &err) == CARRY_SUCCESS,
        "set_metadata: %s", err.message);
  char *text = carry_model_to_json(model, &err);
  carry_model *copy =
    text ? carry_model_load_string(text, strlen(text), "m.json", &err) : NULL;
  CHECK(copy != NULL, "metadata round trip: %s", err.message);
  if (copy) {
    check_metadata(copy, "metadata round trip");
  }
  carry_model_free(copy);
  carry_model_free(model);
  free(text);
}

/** Loading a file and saving it keeps its metadata object as it was. */
static void test_file_metadata_survives(void)
{
  carry_model *model = load_model("gru_unit.json");
  carry_error err;
  char *text = model ? carry_model_to_json(model, &err) : NULL;
  CHECK(text && strstr(text, "\"metadata\": {\"name\": \"GRU test\", "
                             "\"samplerate\": 96000.0, \"author\": "
                             "\"Carry tests\", \"esr\": 0.0123, \"tags\": "
                             "[\"gru\", \"unit\"]}"),
        "gru_unit: metadata written as\n%s", text ? text : "NULL");
  free(text);
  carry_model_free(model);
}

/* ------------------------------------------------------------------------ */
/* Files */

static void test_save(void)
{
  char dir[] = "/tmp/carry-keras-XXXXXX";
  if (!CHECK(mkdtemp(dir) != NULL, "mkdtemp failed")) {
    return;
  }
  char path[256], temporary[280], missing[256];
  snprintf(path, sizeof(path), "%s/model.json", dir);
  snprintf(temporary, sizeof(temporary), "%s.tmp", path);
  snprintf(missing, sizeof(missing), "%s/no/such/dir/model.json", dir);
  test_rng rng = test_rng_new(8);
  carry_model *model = test_random_model(CARRY_LAYER_LSTM, 12, 1, 2, true,
                                         &rng);
  carry_error err;
  for (int pass = 0; pass < 2; ++pass) { // the second replaces the first
    CHECK(carry_model_save(model, path, &err) == CARRY_SUCCESS, "save: %s",
          err.message);
    CHECK(access(temporary, F_OK) != 0, "save left %s behind", temporary);
    carry_model *copy = carry_model_load(path, &err);
    CHECK(copy != NULL, "loading the saved file: %s", err.message);
    if (copy) {
      check_same_model(model, copy, "model", "saved file");
    }
    carry_model_free(copy);
  }
  char expected[600];
  snprintf(expected, sizeof(expected), "%s: No such file or directory",
           missing);
  CHECK(carry_model_save(model, missing, &err) == CARRY_ERR_IO &&
          !strcmp(err.message, expected),
        "saving into a missing directory: \"%s\"", err.message);
  carry_model_free(model);
  remove(path);
  rmdir(dir);
}

/** JSON has no NaN: a model holding one (not prepared) is refused. */
static void test_write_errors(void)
{
  test_rng rng = test_rng_new(10);
  carry_model *model = test_random_model(CARRY_LAYER_LSTM, 2, 1, 1, false,
                                         &rng);
  carry_model_layer(model, 0).recurrent[3] = NAN;
  carry_error err;
  char *text = carry_model_to_json(model, &err);
  CHECK(!text && err.status == CARRY_ERR_VALUE &&
          !strcmp(err.message, "the model holds a non-finite weight, which "
                               "JSON cannot represent"),
        "non-finite weight: \"%s\"", err.message);
  free(text);
  CHECK(carry_model_to_json(NULL, &err) == NULL &&
          err.status == CARRY_ERR_BAD_ARG,
        "no model: \"%s\"", err.message);
  carry_model_free(model);
}

/* ------------------------------------------------------------------------ */
/* Locale */

static char locale_folder[] = "/tmp/carry-locale-XXXXXX";

static void remove_locale_folder(void)
{
  char command[256];
  if (strcmp(locale_folder + strlen(locale_folder) - 6, "XXXXXX")) {
    snprintf(command, sizeof(command), "rm -rf %s", locale_folder);
    CHECK(system(command) == 0, "removing %s", locale_folder);
  }
}

static const char *find_comma_locale(void)
{
  static const char *const names[] = {
    "de_DE.UTF-8", "de_DE.utf8",  "de_DE",      "fr_FR.UTF-8",
    "fr_FR.utf8",  "nl_NL.UTF-8", "ru_RU.UTF-8"};
  for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); ++k) {
    if (setlocale(LC_NUMERIC, names[k]) &&
        !strcmp(localeconv()->decimal_point, ",")) {
      return names[k];
    }
  }
  setlocale(LC_NUMERIC, "C");
  return NULL;
}

/** A locale with a decimal comma, as a host may set.  Machines (and CI)
    often have none installed, so one is compiled into a temporary folder
    with localedef from the definitions of Debian's `locales` package.
    NULL if even that is impossible. */
static const char *set_comma_locale(void)
{
  const char *name = find_comma_locale();
  if (name || !mkdtemp(locale_folder)) {
    return name;
  }
  char command[256];
  snprintf(command, sizeof(command),
           "localedef -i de_DE -f UTF-8 %s/de_DE.UTF-8 >/dev/null 2>&1",
           locale_folder);
  if (system(command) == 0) {
    setenv("LOCPATH", locale_folder, 1);
    name = find_comma_locale();
  }
  return name;
}

static void test_locale(void)
{
  test_rng rng = test_rng_new(9);
  carry_model *model = test_random_model(CARRY_LAYER_GRU, 6, 1, 3, true,
                                         &rng);
  carry_error err;
  char *c_text = carry_model_to_json(model, &err);
  const char *locale = set_comma_locale();
  if (!locale) {
    printf("keras: no locale with a decimal comma here, locale test skipped\n");
  } else {
    char *text = carry_model_to_json(model, &err);
    CHECK(text && c_text && !strcmp(text, c_text),
          "%s: the text differs from the C locale's", locale);
    check_round_trip(model, locale);
    carry_model *file = load_model("gains_skip.json");
    CHECK(file && carry_model_get_spec(file)->in_gain_db == 6.0f,
          "%s: reading a file", locale);
    carry_model_free(file);
    free(text);
    setlocale(LC_NUMERIC, "C");
  }
  remove_locale_folder();
  free(c_text);
  carry_model_free(model);
}

int main(void)
{
  test_dense_linear();
  test_activation_layer();
  test_lstm_unit();
  test_initial_state();
  test_gru_unit();
  test_gains_and_skip();
  test_knobs();
  test_stacked();
  test_load_string();
  test_long_name();
  test_round_trips();
  test_plain_output();
  test_metadata_survives();
  test_file_metadata_survives();
  test_save();
  test_write_errors();
  test_locale();
  return test_finish("keras");
}
