/*
  The GuitarML/PyTorch and NAM readers: small hand-written files whose
  outputs are computed here, in double, from the equations in FORMATS.md
  with the weights in each format's own layout (PyTorch's gate rows r, z,
  n for a GRU; NAM's flat rows of [weight_ih | weight_hh]), so the
  transposes and block swaps of the readers are checked, not repeated.
  Then the format is told from the content, and every format converts to
  Keras JSON and back bit for bit.
*/

#include "harness.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { N_SAMPLES = 8, MAX_H = 4 };

/** The same few samples go through every hand-computed model. */
static const float test_input[N_SAMPLES] = {0.5f, -0.25f, 1.0f, 0.0f,
                                            -0.8f, 0.3f,  0.9f, -0.6f};

static double sigmoid(double x)
{
  return 1.0 / (1.0 + exp(-x));
}

/* ------------------------------------------------------------------------ */
/* Helpers */

static const char *model_path(const char *file)
{
  char relative[256];
  snprintf(relative, sizeof(relative), "tests/models/%s", file);
  return test_source_path(relative);
}

static carry_model *load_model(const char *file)
{
  carry_error err;
  carry_model *model = carry_model_load(model_path(file), &err);
  CHECK(model && err.status == CARRY_SUCCESS && !err.message[0],
        "%s: loading failed: %s", file, err.message);
  return model;
}

/** The parsed file, for the references that read their weights. */
static json_t *load_json(const char *file)
{
  json_error_t jerr;
  json_t *root = json_load_file(model_path(file), 0, &jerr);
  CHECK(root != NULL, "%s: %s", file, jerr.text);
  return root;
}

/** Numbers of a (possibly nested) JSON array, flattened in order. */
static size_t flatten(const json_t *value, double *out, size_t n_max)
{
  if (json_is_number(value)) {
    if (n_max > 0) {
      out[0] = json_number_value(value);
    }
    return 1;
  }
  size_t n = 0, index;
  const json_t *element;
  json_array_foreach (value, index, element) {
    n += flatten(element, out + n, n_max > n ? n_max - n : 0);
  }
  return n;
}

/** state_dict[key], flattened; checks that it holds `n` numbers. */
static void tensor(const json_t *root, const char *key, double *out, size_t n)
{
  const json_t *value =
    json_object_get(json_object_get(root, "state_dict"), key);
  CHECK(flatten(value, out, n) == n, "state_dict.%s: expected %zu numbers",
        key, n);
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

/** Checks that the float view `got` holds the float of each of `want`. */
static void check_floats(const char *what, const float *got,
                         const double *want, int n)
{
  for (int k = 0; k < n; ++k) {
    CHECK(got && got[k] == (float)want[k], "%s[%d] is %.9g, expected %.9g",
          what, k, got ? (double)got[k] : NAN, want[k]);
  }
}

/* ------------------------------------------------------------------------ */
/* References, each in its format's own layout */

/** PyTorch's LSTM step: w_ih (4H, I), w_hh (4H, H), both biases; rows
    i, f, g, o. */
static void torch_lstm_step(const double *x, int I, int H, const double *w_ih,
                            const double *w_hh, const double *b_ih,
                            const double *b_hh, double *h, double *c)
{
  double z[4 * MAX_H];
  for (int r = 0; r < 4 * H; ++r) {
    z[r] = b_ih[r] + b_hh[r];
    for (int i = 0; i < I; ++i) {
      z[r] += w_ih[r * I + i] * x[i];
    }
    for (int j = 0; j < H; ++j) {
      z[r] += w_hh[r * H + j] * h[j];
    }
  }
  for (int k = 0; k < H; ++k) {
    c[k] = sigmoid(z[H + k]) * c[k] + sigmoid(z[k]) * tanh(z[2 * H + k]);
    h[k] = sigmoid(z[3 * H + k]) * tanh(c[k]);
  }
}

/** PyTorch's GRU step: rows r, z, n;
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h = (1 - z) n + z h. */
static void torch_gru_step(double x, int H, const double *w_ih,
                           const double *w_hh, const double *b_ih,
                           const double *b_hh, double *h)
{
  double gi[3 * MAX_H], gh[3 * MAX_H];
  for (int r = 0; r < 3 * H; ++r) {
    gi[r] = w_ih[r] * x + b_ih[r];
    gh[r] = b_hh[r];
    for (int j = 0; j < H; ++j) {
      gh[r] += w_hh[r * H + j] * h[j];
    }
  }
  for (int k = 0; k < H; ++k) {
    const double reset = sigmoid(gi[k] + gh[k]);
    const double update = sigmoid(gi[H + k] + gh[H + k]);
    const double n = tanh(gi[2 * H + k] + reset * gh[2 * H + k]);
    h[k] = (1.0 - update) * n + update * h[k];
  }
}

/** NAM's LSTM step: w (4H, I + H) row-major, rows [w_ih | w_hh], gates
    i, f, g, o, one summed bias. */
static void nam_lstm_step(const double *x, int I, int H, const double *w,
                          const double *b, double *h, double *c)
{
  double z[4 * MAX_H];
  for (int r = 0; r < 4 * H; ++r) {
    z[r] = b[r];
    for (int i = 0; i < I; ++i) {
      z[r] += w[r * (I + H) + i] * x[i];
    }
    for (int j = 0; j < H; ++j) {
      z[r] += w[r * (I + H) + I + j] * h[j];
    }
  }
  for (int k = 0; k < H; ++k) {
    c[k] = sigmoid(z[H + k]) * c[k] + sigmoid(z[k]) * tanh(z[2 * H + k]);
    h[k] = sigmoid(z[3 * H + k]) * tanh(c[k]);
  }
}

/* ------------------------------------------------------------------------ */
/* PyTorch JSON */

/* pytorch_lstm_unit.json, written out */
static const double unit_w_ih[4] = {0.5, -0.3, 0.8, 0.2};
static const double unit_w_hh[4] = {0.1, 0.4, -0.6, 0.3};
static const double unit_b_ih[4] = {0.05, 0.6, -0.1, 0.15};
static const double unit_b_hh[4] = {0.0, 0.4, 0.0, 0.05};

static void lstm_unit_reference(double h, double c, double *want)
{
  for (int t = 0; t < N_SAMPLES; ++t) {
    const double x = test_input[t];
    torch_lstm_step(&x, 1, 1, unit_w_ih, unit_w_hh, unit_b_ih, unit_b_hh, &h,
                    &c);
    want[t] = 1.5 * h + 0.1;
  }
}

static void test_pytorch_lstm(void)
{
  carry_model *model = load_model("pytorch_lstm_unit.json");
  if (!model) {
    return;
  }
  const carry_model_spec *spec = carry_model_get_spec(model);
  CHECK(spec->format == CARRY_FORMAT_PYTORCH && spec->n_inputs == 1 &&
          spec->n_layers == 2 && !spec->has_skip,
        "pytorch_lstm_unit: format %d, %d inputs, %d layers, skip %d",
        (int)spec->format, spec->n_inputs, spec->n_layers, spec->has_skip);
  CHECK(spec->layers[0].type == CARRY_LAYER_LSTM &&
          spec->layers[0].n_units == 1 &&
          spec->layers[1].type == CARRY_LAYER_DENSE &&
          !spec->layers[1].omits_bias,
        "pytorch_lstm_unit: expected LSTM(1) and a dense head with bias");
  CHECK(spec->sample_rate == 44100.0 && !strcmp(spec->name,
                                                "pytorch_lstm_unit"),
        "pytorch_lstm_unit: rate %g (expected the 44100 default), name "
        "\"%s\"", spec->sample_rate, spec->name);
  CHECK(!spec->has_loudness && !carry_model_get_metadata(model),
        "pytorch_lstm_unit: no loudness, no metadata");
  const carry_layer_weights w = carry_model_layer_const(model, 0);
  for (int k = 0; k < 4; ++k) { // summed in float, as PyTorch adds them
    CHECK(w.bias[k] == (float)unit_b_ih[k] + (float)unit_b_hh[k],
          "pytorch_lstm_unit: bias[%d] is %.9g", k, (double)w.bias[k]);
  }
  float out[N_SAMPLES];
  double want[N_SAMPLES];
  run_model(model, test_input, NULL, out, N_SAMPLES);
  lstm_unit_reference(0.0, 0.0, want);
  check_outputs("pytorch_lstm_unit", out, want, N_SAMPLES, 1e-5);
  carry_model_free(model);
}

/* pytorch_gru_pair.json, written out: rows r0 r1, z0 z1, n0 n1 */
static const double pair_w_ih[6] = {0.7, -0.2, -0.4, 0.3, 0.9, -0.5};
static const double pair_w_hh[12] = {0.3, -0.1, 0.2, 0.4,  0.5, 0.1,
                                     -0.3, 0.2, -0.8, 0.3, 0.1, 0.6};
static const double pair_b_ih[6] = {0.1, -0.2, 0.3, 0.05, -0.1, 0.2};
static const double pair_b_hh[6] = {-0.05, 0.15, 0.25, -0.1, 0.2, -0.3};

/** The same arrays in Keras order z, r, h: the first two blocks swap. */
static void swap_blocks(const double *torch, int H, int n_cols, double *keras)
{
  for (int r = 0; r < 3 * H; ++r) {
    const int to = r < H ? r + H : r < 2 * H ? r - H : r;
    for (int c = 0; c < n_cols; ++c) {
      keras[c * 3 * H + to] = torch[r * n_cols + c];
    }
  }
}

static void check_gru_views(const carry_model *model)
{
  const carry_layer_weights w = carry_model_layer_const(model, 0);
  double kernel[6], recurrent[12], bias[6], recurrent_bias[6];
  swap_blocks(pair_w_ih, 2, 1, kernel);
  swap_blocks(pair_w_hh, 2, 2, recurrent);
  swap_blocks(pair_b_ih, 2, 1, bias);
  swap_blocks(pair_b_hh, 2, 1, recurrent_bias);
  check_floats("gru kernel", w.kernel, kernel, 6);
  check_floats("gru recurrent", w.recurrent, recurrent, 12);
  check_floats("gru bias", w.bias, bias, 6);
  check_floats("gru recurrent_bias", w.recurrent_bias, recurrent_bias, 6);
}

static void test_pytorch_gru(void)
{
  carry_model *model = load_model("pytorch_gru_pair.json");
  if (!model) {
    return;
  }
  const carry_model_spec *spec = carry_model_get_spec(model);
  CHECK(spec->layers[0].type == CARRY_LAYER_GRU &&
          spec->layers[0].n_units == 2 && spec->has_skip,
        "pytorch_gru_pair: expected GRU(2) with skip");
  CHECK(!strcmp(spec->name, "GRU Pedal") && spec->sample_rate == 48000.0,
        "pytorch_gru_pair: name \"%s\", rate %g (the string \"48000\")",
        spec->name, spec->sample_rate);
  const char *metadata = carry_model_get_metadata(model);
  CHECK(metadata && strstr(metadata, "\"author\":\"Carry tests\""),
        "pytorch_gru_pair: metadata kept as %s", metadata ? metadata : "NULL");
  check_gru_views(model);
  float out[N_SAMPLES];
  double want[N_SAMPLES], h[2] = {0.0, 0.0};
  run_model(model, test_input, NULL, out, N_SAMPLES);
  for (int t = 0; t < N_SAMPLES; ++t) {
    torch_gru_step(test_input[t], 2, pair_w_ih, pair_w_hh, pair_b_ih,
                   pair_b_hh, h);
    want[t] = 1.2 * h[0] - 0.7 * h[1] + 0.05 + test_input[t];
  }
  check_outputs("pytorch_gru_pair", out, want, N_SAMPLES, 1e-5);
  carry_model_free(model);
}

/** Two LSTM(2) layers over [audio, gain], no head bias, skip. */
static void conditioned_reference(const json_t *root, double gain,
                                  double *want)
{
  double w_ih0[16], w_hh0[16], b_ih0[8], b_hh0[8];
  double w_ih1[16], w_hh1[16], b_ih1[8], b_hh1[8], head[2];
  tensor(root, "rec.weight_ih_l0", w_ih0, 16);
  tensor(root, "rec.weight_hh_l0", w_hh0, 16);
  tensor(root, "rec.bias_ih_l0", b_ih0, 8);
  tensor(root, "rec.bias_hh_l0", b_hh0, 8);
  tensor(root, "rec.weight_ih_l1", w_ih1, 16);
  tensor(root, "rec.weight_hh_l1", w_hh1, 16);
  tensor(root, "rec.bias_ih_l1", b_ih1, 8);
  tensor(root, "rec.bias_hh_l1", b_hh1, 8);
  tensor(root, "lin.weight", head, 2);
  double h0[2] = {0}, c0[2] = {0}, h1[2] = {0}, c1[2] = {0};
  for (int t = 0; t < N_SAMPLES; ++t) {
    const double x[2] = {test_input[t], gain};
    torch_lstm_step(x, 2, 2, w_ih0, w_hh0, b_ih0, b_hh0, h0, c0);
    torch_lstm_step(h0, 2, 2, w_ih1, w_hh1, b_ih1, b_hh1, h1, c1);
    want[t] = head[0] * h1[0] + head[1] * h1[1] + test_input[t];
  }
}

static void test_pytorch_conditioned(void)
{
  carry_model *model = load_model("pytorch_cond_skip.json");
  json_t *root = load_json("pytorch_cond_skip.json");
  if (!model || !root) {
    carry_model_free(model);
    json_decref(root);
    return;
  }
  const carry_model_spec *spec = carry_model_get_spec(model);
  CHECK(spec->n_inputs == 2 && spec->n_layers == 3 && spec->has_skip &&
          spec->layers[1].type == CARRY_LAYER_LSTM &&
          spec->layers[2].omits_bias,
        "pytorch_cond_skip: expected 2 inputs, 2 LSTMs, a head without "
        "bias and skip");
  CHECK(!strcmp(spec->knobs[0].name, "Gain") && spec->knobs[0].value == 0.25f,
        "pytorch_cond_skip: knob \"%s\" = %g from the carry object",
        spec->knobs[0].name, (double)spec->knobs[0].value);
  CHECK(spec->sample_rate == 88200.0,
        "pytorch_cond_skip: rate %g from model_data.samplerate",
        spec->sample_rate);
  float out[N_SAMPLES];
  double want[N_SAMPLES];
  run_model(model, test_input, NULL, out, N_SAMPLES);
  conditioned_reference(root, 0.25, want);
  check_outputs("pytorch_cond_skip, default gain", out, want, N_SAMPLES,
                1e-5);
  const float gain = 0.8f;
  run_model(model, test_input, &gain, out, N_SAMPLES);
  conditioned_reference(root, gain, want);
  check_outputs("pytorch_cond_skip, gain 0.8", out, want, N_SAMPLES, 1e-5);
  json_decref(root);
  carry_model_free(model);
}

/** pytorch_lstm_unit.json with a change made through jansson. */
static carry_model *load_edited(const char *key, json_t *value,
                                const char *parent, carry_error *err)
{
  json_t *root = load_json("pytorch_lstm_unit.json");
  json_t *object = parent ? json_object_get(root, parent) : root;
  if (parent && !object) {
    object = json_object();
    json_object_set_new(root, parent, object);
  }
  json_object_set_new(object, key, value);
  char *text = json_dumps(root, 0);
  carry_model *model =
    text ? carry_model_load_string(text, strlen(text), "edited.json", err)
         : NULL;
  free(text);
  json_decref(root);
  return model;
}

/** The rate is read at the top, in model_data or in the metadata. */
static void test_pytorch_rates(void)
{
  static const struct {
    const char *parent, *key;
    double rate;
  } cases[] = {{NULL, "samplerate", 96000.0},
               {NULL, "sample_rate", 22050.0},
               {"model_data", "sample_rate", 32000.0},
               {"metadata", "samplerate", 88200.0},
               {"metadata", "sample_rate", 0.0}}; // 0: unknown, the default
  for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); ++k) {
    char text[32];
    snprintf(text, sizeof(text), "%g", cases[k].rate);
    carry_error err;
    carry_model *model = load_edited(cases[k].key, json_string(text),
                                     cases[k].parent, &err);
    const double want = cases[k].rate > 0.0 ? cases[k].rate : 44100.0;
    CHECK(model && carry_model_get_spec(model)->sample_rate == want,
          "rate in %s.%s: %s", cases[k].parent ? cases[k].parent : "(top)",
          cases[k].key, model ? "wrong rate" : err.message);
    carry_model_free(model);
  }
}

/** Carry's extras give a PyTorch model its initial state, as in Keras. */
static void test_pytorch_initial_state(void)
{
  carry_error err;
  carry_model *model = load_edited(
    "carry", json_pack("{s:i, s:[{s:[f], s:[f]}]}", "version", 1,
                       "initial_state", "h", 0.3, "c", -0.7),
    NULL, &err);
  CHECK(model != NULL, "initial state: %s", err.message);
  if (!model) {
    return;
  }
  const carry_layer_weights w = carry_model_layer_const(model, 0);
  CHECK(w.h0[0] == 0.3f && w.c0[0] == -0.7f, "initial state not read");
  float out[N_SAMPLES];
  double want[N_SAMPLES];
  run_model(model, test_input, NULL, out, N_SAMPLES);
  lstm_unit_reference(0.3f, -0.7f, want);
  check_outputs("pytorch initial state", out, want, N_SAMPLES, 1e-5);
  carry_model_free(model);
}

/* ------------------------------------------------------------------------ */
/* NAM */

/** One NAM LSTM layer's slice of the flat weights. */
typedef struct {
  const double *w, *b, *h0, *c0;
} nam_layer;

/** Splits the flat array: per layer W, b, h0, c0, then the head. */
static const double *split_nam(const double *flat, int n_layers, int H,
                               nam_layer *layers)
{
  for (int l = 0; l < n_layers; ++l) {
    const int I = l == 0 ? 1 : H;
    layers[l].w = flat;                          // (4H, I + H)
    layers[l].b = layers[l].w + 4 * H * (I + H); // (4H)
    layers[l].h0 = layers[l].b + 4 * H;          // (H)
    layers[l].c0 = layers[l].h0 + H;             // (H)
    flat = layers[l].c0 + H;
  }
  return flat; // the head: W (1, H), then b (1)
}

/** A NAM model's output from its stored state, or from zero state. */
static void nam_reference(const char *file, int n_layers, int H,
                          bool from_zero, double *want)
{
  json_t *root = load_json(file);
  double flat[128];
  const size_t n = flatten(json_object_get(root, "weights"), flat, 128);
  nam_layer layers[2];
  const double *head = split_nam(flat, n_layers, H, layers);
  CHECK((size_t)(head + H + 1 - flat) == n, "%s: %zu weights", file, n);
  double h[2][MAX_H] = {{0}}, c[2][MAX_H] = {{0}};
  for (int l = 0; l < n_layers && !from_zero; ++l) {
    memcpy(h[l], layers[l].h0, sizeof(double) * (size_t)H);
    memcpy(c[l], layers[l].c0, sizeof(double) * (size_t)H);
  }
  for (int t = 0; t < N_SAMPLES; ++t) {
    const double x = test_input[t];
    for (int l = 0; l < n_layers; ++l) {
      nam_lstm_step(l == 0 ? &x : h[l - 1], l == 0 ? 1 : H, H, layers[l].w,
                    layers[l].b, h[l], c[l]);
    }
    want[t] = head[H];
    for (int j = 0; j < H; ++j) {
      want[t] += head[j] * h[n_layers - 1][j];
    }
  }
  json_decref(root);
}

static void check_nam_spec(const carry_model *model)
{
  const carry_model_spec *spec = carry_model_get_spec(model);
  CHECK(spec->format == CARRY_FORMAT_NAM && spec->n_inputs == 1 &&
          spec->n_layers == 2 && spec->layers[0].type == CARRY_LAYER_LSTM &&
          spec->layers[0].n_units == 3 && !spec->has_skip,
        "nam_lstm_1x3: expected a NAM LSTM(3) and a head");
  CHECK(!strcmp(spec->name, "Tiny Amp") && spec->sample_rate == 44100.0,
        "nam_lstm_1x3: name \"%s\", rate %g", spec->name, spec->sample_rate);
  CHECK(spec->has_loudness && !spec->is_loudness_measured &&
          spec->loudness_db == -12.5f,
        "nam_lstm_1x3: loudness %d %d %g", spec->has_loudness,
        spec->is_loudness_measured, (double)spec->loudness_db);
  CHECK(carry_model_normalize_gain_db(model) == -5.5f,
        "nam_lstm_1x3: normalising gain %g, expected -18 - -12.5",
        (double)carry_model_normalize_gain_db(model));
  const char *text = carry_model_get_metadata(model);
  json_t *metadata = text ? json_loads(text, 0, NULL) : NULL;
  CHECK(json_number_value(json_object_get(metadata, "input_level_dbu")) ==
            12.2 &&
          json_is_null(json_object_get(metadata, "output_level_dbu")) &&
          json_string_value(json_object_get(metadata, "gear_type")) &&
          json_integer_value(json_object_get(
            json_object_get(metadata, "date"), "year")) == 2024,
        "nam_lstm_1x3: metadata kept as %s", text ? text : "NULL");
  json_decref(metadata);
  const carry_layer_weights w = carry_model_layer_const(model, 0);
  const double h0[3] = {0.2, -0.1, 0.3}, c0[3] = {1.5, -0.8, 0.6};
  check_floats("nam h0", w.h0, h0, 3);
  check_floats("nam c0", w.c0, c0, 3);
}

/** The stream starts from the stored state, and reset returns to it. */
static void check_nam_stream(const carry_model *model)
{
  double want[N_SAMPLES], from_zero[N_SAMPLES];
  nam_reference("nam_lstm_1x3.nam", 1, 3, false, want);
  nam_reference("nam_lstm_1x3.nam", 1, 3, true, from_zero);
  CHECK(fabs(want[0] - from_zero[0]) > 1e-2,
        "nam_lstm_1x3: the stored state should change the first output");
  carry_error err;
  carry_stream *stream = carry_stream_create(model, 4, &err);
  if (!CHECK(stream != NULL, "stream: %s", err.message)) {
    return;
  }
  float first[N_SAMPLES], again[N_SAMPLES];
  carry_stream_process(stream, test_input, NULL, first, 5);
  carry_stream_process(stream, test_input + 5, NULL, first + 5, 3);
  check_outputs("nam_lstm_1x3", first, want, N_SAMPLES, 1e-5);
  carry_stream_reset(stream);
  carry_stream_process(stream, test_input, NULL, again, N_SAMPLES);
  CHECK(!memcmp(first, again, sizeof(first)),
        "nam_lstm_1x3: after reset the output differs");
  carry_stream_free(stream);
}

static void test_nam_single(void)
{
  carry_model *model = load_model("nam_lstm_1x3.nam");
  if (model) {
    check_nam_spec(model);
    check_nam_stream(model);
  }
  carry_model_free(model);
}

static void test_nam_stacked(void)
{
  carry_model *model = load_model("nam_lstm_2x2.nam");
  if (!model) {
    return;
  }
  const carry_model_spec *spec = carry_model_get_spec(model);
  CHECK(spec->n_layers == 3 && spec->layers[1].type == CARRY_LAYER_LSTM &&
          spec->layers[1].n_units == 2,
        "nam_lstm_2x2: expected two LSTM(2) layers and a head");
  CHECK(spec->sample_rate == 48000.0 && !strcmp(spec->name, "nam_lstm_2x2") &&
          !spec->has_loudness && !carry_model_get_metadata(model),
        "nam_lstm_2x2: rate %g (expected the 48000 default of 0.5.2), name "
        "\"%s\"", spec->sample_rate, spec->name);
  const double h0[2] = {-0.3, 0.05}, c0[2] = {-0.5, 0.9};
  check_floats("nam layer 1 h0", carry_model_layer_const(model, 1).h0, h0, 2);
  check_floats("nam layer 1 c0", carry_model_layer_const(model, 1).c0, c0, 2);
  float out[N_SAMPLES];
  double want[N_SAMPLES];
  run_model(model, test_input, NULL, out, N_SAMPLES);
  nam_reference("nam_lstm_2x2.nam", 2, 2, false, want);
  check_outputs("nam_lstm_2x2", out, want, N_SAMPLES, 1e-5);
  carry_model_free(model);
}

static void check_refused(const char *text, carry_status status,
                          const char *message)
{
  carry_error err;
  carry_model *model = carry_model_load_string(text, strlen(text),
                                               "amp.nam", &err);
  CHECK(!model && err.status == status && !strcmp(err.message, message),
        "got %s \"%s\", expected %s \"%s\"", carry_strerror(err.status),
        err.message, carry_strerror(status), message);
  carry_model_free(model);
}

static void test_nam_refusals(void)
{
  check_refused("{\"version\": \"0.5.4\", \"architecture\": \"WaveNet\", "
                "\"config\": {\"layers\": []}, \"weights\": [0.5]}",
                CARRY_ERR_UNSUPPORTED,
                "amp.nam: architecture \"WaveNet\" is not supported: Carry "
                "runs NAM's LSTM models");
  check_refused("{\"version\": \"0.7.0\", \"architecture\": \"CatLSTM\", "
                "\"config\": {}, \"weights\": []}",
                CARRY_ERR_UNSUPPORTED,
                "amp.nam: architecture \"CatLSTM\" is not supported: Carry "
                "runs NAM's LSTM models");
  check_refused("{\"version\": 5, \"architecture\": \"LSTM\", \"config\": "
                "{}, \"weights\": []}",
                CARRY_ERR_FORMAT,
                "amp.nam: version: expected a string, found a number");
}

/* ------------------------------------------------------------------------ */
/* Telling the formats apart */

static char *read_text(const char *path, size_t *size)
{
  FILE *file = fopen(path, "rb");
  char *text = file ? malloc(1 << 16) : NULL;
  *size = text ? fread(text, 1, 1 << 16, file) : 0;
  if (file) {
    fclose(file);
  }
  CHECK(text != NULL, "cannot read %s", path);
  return text;
}

/** A copy of `file` under another name in `dir`, loaded from there. */
static void check_renamed(const char *dir, const char *file,
                          const char *new_name, carry_format format)
{
  size_t size = 0;
  char *text = read_text(model_path(file), &size);
  char path[256];
  snprintf(path, sizeof(path), "%s/%s", dir, new_name);
  FILE *copy = fopen(path, "wb");
  if (copy && text) {
    fwrite(text, 1, size, copy);
  }
  if (copy) {
    fclose(copy);
  }
  carry_error err;
  carry_model *model = carry_model_load(path, &err);
  CHECK(model && carry_model_get_spec(model)->format == format,
        "%s as %s: %s", file, new_name,
        model ? "read as another format" : err.message);
  carry_model_free(model);
  remove(path);
  free(text);
}

static void test_detection(void)
{
  char dir[] = "/tmp/carry-formats-XXXXXX";
  if (!CHECK(mkdtemp(dir) != NULL, "mkdtemp failed")) {
    return;
  }
  check_renamed(dir, "nam_lstm_1x3.nam", "capture.json", CARRY_FORMAT_NAM);
  check_renamed(dir, "pytorch_gru_pair.json", "capture.nam",
                CARRY_FORMAT_PYTORCH);
  check_renamed(dir, "lstm_unit.json", "capture.aidax", CARRY_FORMAT_KERAS);
  check_renamed(dir, "nam_lstm_2x2.nam", "no_extension", CARRY_FORMAT_NAM);
  rmdir(dir);
}

/* ------------------------------------------------------------------------ */
/* Conversions to Keras JSON */

static bool same_floats(const float *a, const float *b, size_t n)
{
  return (!a && !b) || (a && b && !memcmp(a, b, n * sizeof(float)));
}

static void check_same_weights(const carry_model *a, const carry_model *b,
                               const char *what)
{
  for (int l = 0; l < carry_model_get_spec(a)->n_layers; ++l) {
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
          "%s: layer %d differs after conversion", what, l);
  }
}

static bool same_layers(const carry_model_spec *a, const carry_model_spec *b)
{
  bool same = a->n_layers == b->n_layers;
  for (int l = 0; same && l < a->n_layers; ++l) {
    same = !memcmp(&a->layers[l], &b->layers[l], sizeof(a->layers[l]));
  }
  return same;
}

static bool same_knobs(const carry_model_spec *a, const carry_model_spec *b)
{
  bool same = a->n_inputs == b->n_inputs;
  for (int k = 0; same && k + 1 < a->n_inputs; ++k) {
    same = !memcmp(&a->knobs[k], &b->knobs[k], sizeof(a->knobs[k]));
  }
  return same;
}

static void check_same_spec(const carry_model_spec *a,
                            const carry_model_spec *b, const char *what)
{
  CHECK(b->format == CARRY_FORMAT_KERAS, "%s: converted format %d", what,
        (int)b->format);
  CHECK(same_layers(a, b) && same_knobs(a, b), "%s: layers or knobs differ",
        what);
  CHECK(!strcmp(a->name, b->name) && a->sample_rate == b->sample_rate &&
          a->has_skip == b->has_skip && a->in_gain_db == b->in_gain_db &&
          a->out_gain_db == b->out_gain_db,
        "%s: name \"%s\" -> \"%s\", rate %g -> %g, skip %d -> %d", what,
        a->name, b->name, a->sample_rate, b->sample_rate, a->has_skip,
        b->has_skip);
  CHECK(a->has_loudness == b->has_loudness &&
          a->is_loudness_measured == b->is_loudness_measured &&
          a->loudness_db == b->loudness_db,
        "%s: loudness %d %g -> %d %g", what, a->has_loudness,
        (double)a->loudness_db, b->has_loudness, (double)b->loudness_db);
}

static void check_same_output(const carry_model *a, const carry_model *b,
                              const char *what)
{
  enum { N = 4000 };
  static float x[N], ya[N], yb[N];
  const float knob = 0.7f;
  test_signal(x, N, 3);
  for (int pass = 0; pass < 2; ++pass) { // the defaults, then a knob set
    run_model(a, x, pass ? &knob : NULL, ya, N);
    run_model(b, x, pass ? &knob : NULL, yb, N);
    CHECK(!memcmp(ya, yb, sizeof(ya)), "%s: outputs differ by up to %g", what,
          test_max_abs_diff(ya, yb, N));
  }
}

/** Converts, reads back, and converts the copy: the same text. */
static void check_conversion(const char *file)
{
  carry_model *model = load_model(file);
  carry_error err;
  char *text = model ? carry_model_to_json(model, &err) : NULL;
  CHECK(!model || text, "%s: to_json: %s", file, err.message);
  carry_model *copy =
    text ? carry_model_load_string(text, strlen(text), "copy.json", &err)
         : NULL;
  CHECK(!text || copy, "%s: reading the conversion back: %s", file,
        err.message);
  if (copy) {
    check_same_spec(carry_model_get_spec(model), carry_model_get_spec(copy),
                    file);
    check_same_weights(model, copy, file);
    check_same_output(model, copy, file);
    char *again = carry_model_to_json(copy, &err);
    CHECK(again && !strcmp(text, again), "%s: converting the copy differs",
          file);
    free(again);
  }
  carry_model_free(copy);
  carry_model_free(model);
  free(text);
}

static void test_conversions(void)
{
  static const char *const files[] = {
    "pytorch_lstm_unit.json", "pytorch_gru_pair.json",
    "pytorch_cond_skip.json", "nam_lstm_1x3.nam", "nam_lstm_2x2.nam"};
  for (size_t k = 0; k < sizeof(files) / sizeof(files[0]); ++k) {
    check_conversion(files[k]);
  }
}

/** The written metadata.loudness follows the model's figure. */
static void test_loudness_written(void)
{
  carry_model *model = load_model("nam_lstm_1x3.nam");
  if (!model) {
    return;
  }
  carry_error err;
  carry_model_spec spec = *carry_model_get_spec(model);
  for (int pass = 0; pass < 2; ++pass) { // changed, then removed
    spec.loudness_db = -9.25f;
    spec.has_loudness = pass == 0;
    CHECK(carry_model_set_info(model, &spec, &err) == CARRY_SUCCESS,
          "set_info: %s", err.message);
    char *text = carry_model_to_json(model, &err);
    carry_model *copy =
      text ? carry_model_load_string(text, strlen(text), "c.json", &err)
           : NULL;
    const carry_model_spec *got = copy ? carry_model_get_spec(copy) : NULL;
    CHECK(got && got->has_loudness == spec.has_loudness &&
            (!spec.has_loudness || got->loudness_db == -9.25f),
          "loudness pass %d: %s", pass, copy ? "not kept" : err.message);
    carry_model_free(copy);
    free(text);
  }
  carry_model_free(model);
}

int main(void)
{
  test_pytorch_lstm();
  test_pytorch_gru();
  test_pytorch_conditioned();
  test_pytorch_rates();
  test_pytorch_initial_state();
  test_nam_single();
  test_nam_stacked();
  test_nam_refusals();
  test_detection();
  test_conversions();
  test_loudness_written();
  return test_finish("formats");
}
