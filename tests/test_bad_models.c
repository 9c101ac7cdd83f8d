/*
  Broken model files: each gets the exact status and message from the
  table, and mutated copies of the good files (truncated at every byte,
  bytes overwritten at random) never crash, and always fail with a message
  or load a working model.
*/

#include "harness.h"

#include <jansson.h>

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
  const char *file;
  carry_status status;
  const char *message;  ///< What follows the file name
} bad_case;

static const bad_case bad_cases[] = {
  /* Not JSON */
  {"bad_empty.json", CARRY_ERR_SYNTAX,
   ": the file is empty, expected a JSON model"},
  {"bad_truncated.json", CARRY_ERR_SYNTAX,
   ":7:28: the text ends too early, the file may be truncated (']' expected "
   "near end of file)"},
  {"bad_binary.json", CARRY_ERR_SYNTAX,
   ":1:1: invalid JSON (invalid token near '?')"},
  {"bad_utf8.json", CARRY_ERR_SYNTAX,
   ":3:28: the text is not valid UTF-8 (unable to decode byte 0xff near "
   "'\"Amp ')"},
  {"bad_nul.json", CARRY_ERR_SYNTAX,
   ":3:33: a string holds a NUL character (\\u0000)"},
  {"bad_nan.json", CARRY_ERR_SYNTAX,
   ":6:40: found NaN, but non-finite numbers are not valid JSON: weights "
   "must be finite"},
  {"bad_infinity.json", CARRY_ERR_SYNTAX,
   ":10:97: found Infinity, but non-finite numbers are not valid JSON: "
   "weights must be finite"},
  {"bad_negative_infinity.json", CARRY_ERR_SYNTAX,
   ":9:29: found -Infinity, but non-finite numbers are not valid JSON: "
   "weights must be finite"},
  {"bad_overflow.json", CARRY_ERR_SYNTAX,
   ":4:93: a number is out of range: weights must be finite (real number "
   "overflow near '1e999')"},
  {"bad_big_integer.json", CARRY_ERR_SYNTAX,
   ":3:43: a number is out of range: weights must be finite (too big "
   "integer)"},
  {"bad_deep_nesting.json", CARRY_ERR_SYNTAX,
   ":1:2049: arrays or objects nest too deeply (maximum parsing depth "
   "reached near '[')"},
  {"bad_trailing.json", CARRY_ERR_SYNTAX,
   ":7:1: invalid JSON (end of file expected near '}')"},

  /* Not a model Carry reads */
  {"bad_top_array.json", CARRY_ERR_FORMAT,
   ": expected a JSON object at the top level, found an array"},
  {"bad_unknown_format.json", CARRY_ERR_FORMAT,
   ": expected a model: \"layers\" (Keras, RTNeural, AIDA-X), "
   "\"architecture\", \"config\" and \"weights\" (Neural Amp Modeler) or "
   "\"model_data\" and \"state_dict\" (PyTorch), found none of these keys"},
  {"bad_conv1d.json", CARRY_ERR_UNSUPPORTED,
   ": layers[0].type: expected lstm, gru, dense, time-distributed-dense or "
   "activation, found the string \"conv1d\" (a layer Carry does not run)"},
  {"bad_activation.json", CARRY_ERR_UNSUPPORTED,
   ": layers[1].activation: expected \"\", linear, tanh, relu, sigmoid, elu "
   "or softmax, found the string \"gelu\" (an activation Carry does not "
   "run)"},
  {"bad_gru_flat_bias.json", CARRY_ERR_UNSUPPORTED,
   ": layers[0].weights[2]: expected 2 rows of 3 biases (Keras "
   "reset_after=True), found a flat array of 3: GRUs with "
   "reset_after=False are not supported"},
  {"bad_version.json", CARRY_ERR_UNSUPPORTED,
   ": carry.version: expected version 1, found 2 (from a newer Carry)"},

  /* Wrong keys and types */
  {"bad_missing_layers.json", CARRY_ERR_FORMAT,
   ": expected a \"layers\" key, found none"},
  {"bad_missing_weights.json", CARRY_ERR_FORMAT,
   ": layers[0]: expected a \"weights\" key, found none"},
  {"bad_missing_shape.json", CARRY_ERR_FORMAT,
   ": layers[0]: expected a \"shape\" key, found none"},
  {"bad_type_missing.json", CARRY_ERR_FORMAT,
   ": layers[0]: expected a \"type\" key, found none"},
  {"bad_layer_not_object.json", CARRY_ERR_FORMAT,
   ": layers[0]: expected an object, found a string"},
  {"bad_object_weights.json", CARRY_ERR_FORMAT,
   ": layers[0].weights: expected an array of weight arrays, found an "
   "object"},
  {"bad_string_number.json", CARRY_ERR_FORMAT,
   ": layers[1].weights[0][1][0]: expected a number, found a string"},
  {"bad_metadata_type.json", CARRY_ERR_FORMAT,
   ": metadata: expected an object, found a string"},
  {"bad_units_fraction.json", CARRY_ERR_FORMAT,
   ": layers[0].shape[2]: expected a whole number of units, found 1.5"},
  {"bad_gru_cell_state.json", CARRY_ERR_FORMAT,
   ": carry.initial_state[0].c: expected no cell state for a GRU layer, "
   "found an array"},

  /* Array sizes */
  {"bad_no_layers.json", CARRY_ERR_SHAPE,
   ": layers: expected 1 to 16 layers, found 0"},
  {"bad_in_shape.json", CARRY_ERR_SHAPE,
   ": layers[0].weights[0]: expected 2 rows (the inputs in in_shape), found "
   "1"},
  {"bad_kernel_rows.json", CARRY_ERR_SHAPE,
   ": layers[1].weights[0]: expected 2 rows (the previous layer's width), "
   "found 3"},
  {"bad_recurrent_columns.json", CARRY_ERR_SHAPE,
   ": layers[0].weights[1][1]: expected 8 columns (4 gates i, f, g, o of 2 "
   "units), found 7"},
  {"bad_bias_length.json", CARRY_ERR_SHAPE,
   ": layers[0].weights[2]: expected 8 columns (4 gates i, f, g, o of 2 "
   "units), found 7"},
  {"bad_gru_reset.json", CARRY_ERR_SHAPE,
   ": layers[0].weights[2]: expected 2 bias rows (input and recurrent, "
   "Keras reset_after=True), found 1"},
  {"bad_dense_arrays.json", CARRY_ERR_SHAPE,
   ": layers[0].weights: expected 1 or 2 arrays (kernel, optional bias), "
   "found 3"},
  {"bad_last_layer.json", CARRY_ERR_SHAPE,
   ": layers[0]: expected 1 output from the last layer (the audio), found "
   "2"},
  {"bad_activation_width.json", CARRY_ERR_SHAPE,
   ": layers[1].shape: expected 2 units (an activation layer keeps its "
   "input's width), found 3"},
  {"bad_knob_count.json", CARRY_ERR_SHAPE,
   ": carry.knobs: expected 2 knobs (one per conditioning input), found 1"},
  {"bad_initial_state.json", CARRY_ERR_SHAPE,
   ": carry.initial_state[0].c: expected 2 numbers (the hidden size), found "
   "1"},

  /* Values */
  {"bad_float_range.json", CARRY_ERR_VALUE,
   ": layers[0].weights[1][0]: expected a number within float range "
   "(+/-3.4e38), found 1e+39"},
  {"bad_gain.json", CARRY_ERR_VALUE,
   ": in_gain: expected a gain within +/-120 dB, found 1e+06"},
  {"bad_samplerate_string.json", CARRY_ERR_VALUE,
   ": samplerate: expected a sample rate in Hz (0 for unknown, or 1000 to "
   "10000000), found the string \"fast\""},
  {"bad_samplerate_negative.json", CARRY_ERR_VALUE,
   ": metadata.samplerate: expected a sample rate in Hz (0 for unknown, or "
   "1000 to 10000000), found -48000"},
  {"bad_skip.json", CARRY_ERR_VALUE,
   ": in_skip: expected 0, 1, true or false, found 2"},
  {"bad_knob_default.json", CARRY_ERR_VALUE,
   ": carry.knobs[1].default: expected a value within [0, 1], found 1.5"},
  {"bad_knob_range.json", CARRY_ERR_VALUE,
   ": carry.knobs[0]: expected min <= max, found min 1 and max 0"},

  /* Limits, checked before anything is allocated */
  {"bad_huge_units.json", CARRY_ERR_LIMIT,
   ": layers[0].shape[2]: expected 1 to 1024 units, found 1000000000"},
  {"bad_zero_units.json", CARRY_ERR_LIMIT,
   ": layers[0].shape[2]: expected 1 to 1024 units, found 0"},
  {"bad_too_many_layers.json", CARRY_ERR_LIMIT,
   ": layers: expected 1 to 16 layers, found 17"},
  {"bad_too_many_recurrent.json", CARRY_ERR_LIMIT,
   ": layers[8]: expected at most 8 recurrent layers, found a 9th here"},
  {"bad_too_many_inputs.json", CARRY_ERR_LIMIT,
   ": in_shape[2]: expected 1 to 16 inputs, found 17"},
  {"bad_kernel_inputs.json", CARRY_ERR_LIMIT,
   ": layers[0].weights[0]: expected 1 to 16 rows (the model's inputs), "
   "found 0"},

  /* Neural Amp Modeler .nam */
  {"bad_nam_empty.nam", CARRY_ERR_SYNTAX,
   ": the file is empty, expected a JSON model"},
  {"bad_nam_truncated.nam", CARRY_ERR_SYNTAX,
   ":29:6: the text ends too early, the file may be truncated (']' "
   "expected near end of file)"},
  {"bad_nam_nan.nam", CARRY_ERR_SYNTAX,
   ":21:3: found NaN, but non-finite numbers are not valid JSON: weights "
   "must be finite"},
  {"bad_nam_utf8.nam", CARRY_ERR_SYNTAX,
   ":87:16: the text is not valid UTF-8 (unable to decode byte 0xff near "
   "'\"Tiny ')"},
  {"bad_nam_deep_nesting.nam", CARRY_ERR_SYNTAX,
   ":90:2062: arrays or objects nest too deeply (maximum parsing depth "
   "reached near '[')"},
  {"bad_nam_wavenet.nam", CARRY_ERR_UNSUPPORTED,
   ": architecture \"WaveNet\" is not supported: Carry runs NAM's LSTM "
   "models"},
  {"bad_nam_input_size.nam", CARRY_ERR_UNSUPPORTED,
   ": config.input_size: expected 1 input (the audio: NAM's LSTMs take no "
   "conditioning), found 2"},
  {"bad_nam_out_channels.nam", CARRY_ERR_UNSUPPORTED,
   ": config.out_channels: expected 1 channel (mono audio out), found 2"},
  {"bad_nam_architecture_type.nam", CARRY_ERR_FORMAT,
   ": architecture: expected a string, found a number"},
  {"bad_nam_version_number.nam", CARRY_ERR_FORMAT,
   ": version: expected a string, found a number"},
  {"bad_nam_missing_config.nam", CARRY_ERR_FORMAT,
   ": expected a \"config\" key, found none"},
  {"bad_nam_hidden_fraction.nam", CARRY_ERR_FORMAT,
   ": config.hidden_size: expected a whole number of units, found 2.5"},
  {"bad_nam_weights_object.nam", CARRY_ERR_FORMAT,
   ": weights: expected an array of 70 numbers (1 LSTM layer of 3 units and "
   "the head), found an object"},
  {"bad_nam_string_weight.nam", CARRY_ERR_FORMAT,
   ": weights[12]: expected a number, found a string"},
  {"bad_nam_name_type.nam", CARRY_ERR_FORMAT,
   ": metadata.name: expected a string, found an array"},
  {"bad_nam.nam", CARRY_ERR_SHAPE,
   ": weights: expected 16 numbers (1 LSTM layer of 1 unit and the head), "
   "found 19"},
  {"bad_nam_count.nam", CARRY_ERR_SHAPE,
   ": weights: expected 70 numbers (1 LSTM layer of 3 units and the head), "
   "found 69"},
  {"bad_nam_float_range.nam", CARRY_ERR_VALUE,
   ": weights[68]: expected a number within float range (+/-3.4e38), found "
   "1e+39"},
  {"bad_nam_sample_rate.nam", CARRY_ERR_VALUE,
   ": sample_rate: expected a sample rate in Hz (0 for unknown, or 1000 to "
   "10000000), found -48000"},
  {"bad_nam_loudness.nam", CARRY_ERR_VALUE,
   ": metadata.loudness: expected a loudness in dB within +/-300, found the "
   "string \"loud\""},
  {"bad_nam_huge_hidden.nam", CARRY_ERR_LIMIT,
   ": config.hidden_size: expected 1 to 1024 units, found 1000000000"},
  {"bad_nam_many_layers.nam", CARRY_ERR_LIMIT,
   ": config.num_layers: expected 1 to 8 layers, found 1000000"},

  /* GuitarML / Automated-GuitarAmpModelling PyTorch JSON */
  {"bad_pytorch_truncated.json", CARRY_ERR_SYNTAX,
   ":53:2: the text ends too early, the file may be truncated (string or "
   "'}' expected near end of file)"},
  {"bad_pytorch_nan.json", CARRY_ERR_SYNTAX,
   ":35:5: found NaN, but non-finite numbers are not valid JSON: weights "
   "must be finite"},
  {"bad_pytorch_binary.json", CARRY_ERR_SYNTAX,
   ":1:1: the text is not valid UTF-8 (unable to decode byte 0x89)"},
  {"bad_pytorch_utf8.json", CARRY_ERR_SYNTAX,
   ":3:18: the text is not valid UTF-8 (unable to decode byte 0xc3 near "
   "'\"Simple')"},
  {"bad_pytorch_deep_nesting.json", CARRY_ERR_SYNTAX,
   ":13:2062: arrays or objects nest too deeply (maximum parsing depth "
   "reached near '[')"},
  {"bad_pytorch_rnn.json", CARRY_ERR_UNSUPPORTED,
   ": model_data.unit_type: expected \"LSTM\" or \"GRU\", found the string "
   "\"RNN\" (Carry runs no vanilla RNN layers)"},
  {"bad_pytorch_unit_type.json", CARRY_ERR_UNSUPPORTED,
   ": model_data.unit_type: expected \"LSTM\" or \"GRU\", found the string "
   "\"Transformer\" (a layer Carry does not run)"},
  {"bad_pytorch_model.json", CARRY_ERR_UNSUPPORTED,
   ": model_data.model: expected \"SimpleRNN\", found the string "
   "\"ConvSimpleRNN\" (a network Carry does not run)"},
  {"bad_pytorch_skip2.json", CARRY_ERR_UNSUPPORTED,
   ": model_data.skip: expected 0 or 1, found 2: Carry adds only the audio "
   "input to the output"},
  {"bad_pytorch_output2.json", CARRY_ERR_UNSUPPORTED,
   ": model_data.output_size: expected 1 output (the audio), found 2"},
  {"bad_pytorch_bidirectional.json", CARRY_ERR_UNSUPPORTED,
   ": model_data.bidirectional: expected false, found true (a "
   "bidirectional layer needs the future of the signal)"},
  {"bad_pytorch_missing_model_data.json", CARRY_ERR_FORMAT,
   ": expected a \"model_data\" key, found none"},
  {"bad_pytorch_missing_unit_type.json", CARRY_ERR_FORMAT,
   ": model_data: expected a \"unit_type\" key, found none"},
  {"bad_pytorch_input_size_type.json", CARRY_ERR_FORMAT,
   ": model_data.input_size: expected a whole number of inputs, found the "
   "string \"1\""},
  {"bad_pytorch_state_dict_array.json", CARRY_ERR_FORMAT,
   ": state_dict: expected an object, found an array"},
  {"bad_pytorch_missing_hh.json", CARRY_ERR_FORMAT,
   ": state_dict: expected a \"rec.weight_hh_l0\" key, found none"},
  {"bad_pytorch_missing_layer.json", CARRY_ERR_FORMAT,
   ": state_dict: expected a \"rec.weight_ih_l1\" key, found none"},
  {"bad_pytorch_missing_lin_bias.json", CARRY_ERR_FORMAT,
   ": state_dict: expected a \"lin.bias\" key, found none"},
  {"bad_pytorch_columns.json", CARRY_ERR_SHAPE,
   ": state_dict.\"rec.weight_ih_l0\"[3]: expected 1 column (input_size), "
   "found 2"},
  {"bad_pytorch_gru_rows.json", CARRY_ERR_SHAPE,
   ": state_dict.\"rec.weight_ih_l0\": expected 3 rows (3 gates r, z, n of "
   "1 unit), found 4"},
  {"bad_pytorch_bias_length.json", CARRY_ERR_SHAPE,
   ": state_dict.\"rec.bias_hh_l0\": expected 4 numbers (4 gates i, f, g, o "
   "of 1 unit), found 3"},
  {"bad_pytorch_knob_count.json", CARRY_ERR_SHAPE,
   ": carry.knobs: expected 2 knobs (one per conditioning input), found 1"},
  {"bad_pytorch_initial_state.json", CARRY_ERR_SHAPE,
   ": carry.initial_state[0].h: expected 1 number (the hidden size), found "
   "2"},
  {"bad_pytorch_float_range.json", CARRY_ERR_VALUE,
   ": state_dict.\"lin.weight\"[0][0]: expected a number within float "
   "range (+/-3.4e38), found 1e+39"},
  {"bad_pytorch_skip_inputs.json", CARRY_ERR_VALUE,
   ": model_data.skip: expected 0 to 1 inputs (at most input_size), found "
   "3"},
  {"bad_pytorch_samplerate.json", CARRY_ERR_VALUE,
   ": model_data.samplerate: expected a sample rate in Hz (0 for unknown, "
   "or 1000 to 10000000), found the string \"fast\""},
  {"bad_pytorch_huge_hidden.json", CARRY_ERR_LIMIT,
   ": model_data.hidden_size: expected 1 to 1024 units, found 1000000000"},
  {"bad_pytorch_many_layers.json", CARRY_ERR_LIMIT,
   ": model_data.num_layers: expected 1 to 8 layers, found 1000000"},
  {"bad_pytorch_many_inputs.json", CARRY_ERR_LIMIT,
   ": model_data.input_size: expected 1 to 16 inputs, found 17"},
};

/** The good files the mutations start from. */
static const char *const good_files[] = {
  "dense_linear.json",      "dense_tanh.json",       "lstm_unit.json",
  "lstm_state.json",        "gru_unit.json",         "gains_skip.json",
  "knobs.json",             "stacked.json",          "pytorch_lstm_unit.json",
  "pytorch_gru_pair.json",  "pytorch_cond_skip.json", "nam_lstm_1x3.nam",
  "nam_lstm_2x2.nam",
};

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

static char *model_path(const char *file)
{
  char relative[256];
  snprintf(relative, sizeof(relative), "tests/models/%s", file);
  return strdup(test_source_path(relative));
}

/** The whole file; NULL (with a failed check) if it cannot be read. */
static char *read_text(const char *path, size_t *size)
{
  FILE *file = fopen(path, "rb");
  char *text = file ? malloc(1 << 20) : NULL;
  *size = text ? fread(text, 1, (1 << 20) - 1, file) : 0;
  if (file) {
    fclose(file);
  }
  CHECK(text != NULL, "cannot read %s", path);
  return text;
}

/* ------------------------------------------------------------------------ */
/* The table */

static void check_failure(const carry_model *model, const carry_error *err,
                          const char *name, const bad_case *c)
{
  char expected[CARRY_MESSAGE_SIZE];
  snprintf(expected, sizeof(expected), "%s%s", name, c->message);
  CHECK(!model && err->status == c->status && !strcmp(err->message, expected),
        "%s: got status %s and\n  \"%s\"\nexpected %s and\n  \"%s\"", c->file,
        carry_strerror(err->status), err->message, carry_strerror(c->status),
        expected);
}

static void test_bad_file(const bad_case *c)
{
  char *path = model_path(c->file);
  carry_error err;
  carry_model *model = carry_model_load(path, &err);
  check_failure(model, &err, path, c);
  carry_model_free(model);

  // The same text under another name gives the same message
  size_t size = 0;
  char *text = read_text(path, &size);
  model = text ? carry_model_load_string(text, size, "in memory", &err) : NULL;
  if (text) {
    check_failure(model, &err, "in memory", c);
  }
  carry_model_free(model);
  free(text);
  free(path);
}

/* ------------------------------------------------------------------------ */
/* Files that are not there, too big, or not files */

static void check_error(carry_status got, const carry_error *err,
                        carry_status status, const char *message)
{
  CHECK(got == status && err->status == status &&
          !strcmp(err->message, message),
        "got %s \"%s\", expected %s \"%s\"", carry_strerror(err->status),
        err->message, carry_strerror(status), message);
}

static void test_file_errors(void)
{
  char dir[] = "/tmp/carry-bad-XXXXXX";
  if (!CHECK(mkdtemp(dir) != NULL, "mkdtemp failed")) {
    return;
  }
  char path[128], expected[256];
  carry_error err;
  carry_model *model;

  snprintf(path, sizeof(path), "%s/missing.json", dir);
  snprintf(expected, sizeof(expected), "%s: No such file or directory", path);
  model = carry_model_load(path, &err);
  check_error(model ? CARRY_SUCCESS : err.status, &err, CARRY_ERR_IO, expected);

  snprintf(expected, sizeof(expected), "%s: Is a directory", dir);
  model = carry_model_load(dir, &err);
  check_error(model ? CARRY_SUCCESS : err.status, &err, CARRY_ERR_IO, expected);

  // A sparse file: over the limit without using the disk
  snprintf(path, sizeof(path), "%s/huge.json", dir);
  const int fd = open(path, O_CREAT | O_WRONLY, 0600);
  CHECK(fd >= 0 && ftruncate(fd, (64 << 20) + 1) == 0, "cannot make %s",
        path);
  close(fd);
  snprintf(expected, sizeof(expected),
           "%s: the file is larger than the 64 MiB a model file may have",
           path);
  model = carry_model_load(path, &err);
  check_error(model ? CARRY_SUCCESS : err.status, &err, CARRY_ERR_LIMIT,
              expected);
  remove(path);
  rmdir(dir);
}

static void test_argument_errors(void)
{
  carry_error err;
  carry_model *model = carry_model_load(NULL, &err);
  check_error(model ? CARRY_SUCCESS : err.status, &err, CARRY_ERR_BAD_ARG,
              "no model file given");
  model = carry_model_load_string(NULL, 10, "x.json", &err);
  check_error(model ? CARRY_SUCCESS : err.status, &err, CARRY_ERR_BAD_ARG,
              "x.json: no text given");

  // Refused by its size alone: the pages are never touched
  const size_t size = (64u << 20) + 1;
  char *text = calloc(1, size);
  model = text ? carry_model_load_string(text, size, "big", &err) : NULL;
  check_error(model ? CARRY_SUCCESS : err.status, &err, CARRY_ERR_LIMIT,
              "big: 67108865 bytes is more than the 64 MiB a model file may "
              "have");
  free(text);

  // Within the byte limit, but too many values for the parser's memory
  const size_t n_values = 10000001;
  text = malloc(2 * n_values + 1);
  if (text) {
    text[0] = '[';
    for (size_t k = 0; k < n_values; ++k) {
      memcpy(text + 1 + 2 * k, k + 1 < n_values ? "0," : "0]", 2);
    }
  }
  model = text ? carry_model_load_string(text, 2 * n_values + 1, "zeros", &err)
               : NULL;
  check_error(model ? CARRY_SUCCESS : err.status, &err, CARRY_ERR_LIMIT,
              "zeros: more than 10 million values, the most a model file "
              "may hold");
  free(text);
  CHECK(carry_model_load("/nonexistent/x.json", NULL) == NULL,
        "a NULL error pointer is allowed");
}

/* ------------------------------------------------------------------------ */
/* Mutations */

/** One load of mutated text: a failure must say why, a success must run.
    Returns false (and describes it) if neither; counts what loaded. */
static bool check_mutant(const char *text, size_t size, int *n_loaded,
                         char *problem, size_t problem_size)
{
  carry_error err;
  carry_model *model = carry_model_load_string(text, size, "mutant", &err);
  bool ok = model ? err.status == CARRY_SUCCESS && !err.message[0]
                  : err.status != CARRY_SUCCESS &&
                      !strncmp(err.message, "mutant", 6) &&
                      strlen(err.message) > 10;
  if (model) {
    ++*n_loaded;
    carry_stream *stream = carry_stream_create(model, 16, &err);
    float x[16] = {0.5f, -0.5f, 1.0f}, y[16];
    if (stream) {
      carry_stream_process(stream, x, NULL, y, 16);
      for (int t = 0; t < 16; ++t) {
        ok = ok && isfinite(y[t]);
      }
    }
    ok = ok && stream;
    carry_stream_free(stream);
  }
  if (!ok) {
    snprintf(problem, problem_size, "status %s, message \"%s\"",
             carry_strerror(err.status), err.message);
  }
  carry_model_free(model);
  return ok;
}

static void test_truncations(const char *file, const char *text, size_t size)
{
  char problem[CARRY_MESSAGE_SIZE + 64] = "";
  size_t n_bad = 0, first_bad = 0;
  int n_loaded = 0;
  for (size_t n = 0; n < size; ++n) {
    // An exact copy, so the sanitizers see any read past the end
    char *copy = malloc(n ? n : 1);
    if (copy) {
      memcpy(copy, text, n);
    }
    if (copy && !check_mutant(copy, n, &n_loaded, problem, sizeof(problem)) &&
        !n_bad++) {
      first_bad = n;
    }
    free(copy);
  }
  CHECK(n_bad == 0, "%s: %zu bad truncations, first at %zu bytes: %s", file,
        n_bad, first_bad, problem);
}

/** Overwrites 1 to 4 bytes, half the time with a character that matters
    to JSON. */
static void mutate(char *text, size_t size, test_rng *rng)
{
  static const char syntax[] = "[]{}\",:-+.0123456789eEnulltruefalseNI \n\\";
  const int n_edits = test_rng_int(rng, 1, 4);
  for (int k = 0; k < n_edits; ++k) {
    const size_t at = (size_t)test_rng_int(rng, 0, (int)size - 1);
    text[at] = test_rng_int(rng, 0, 1)
                 ? syntax[test_rng_int(rng, 0, (int)sizeof(syntax) - 2)]
                 : (char)test_rng_int(rng, 0, 255);
  }
}

static void test_mutations(const char *file, const char *text, size_t size,
                           uint64_t seed)
{
  enum { N_MUTANTS = 3000 };
  char *copy = malloc(size);
  char problem[CARRY_MESSAGE_SIZE + 64] = "";
  test_rng rng = test_rng_new(seed);
  int n_bad = 0, n_loaded = 0;
  for (int k = 0; copy && k < N_MUTANTS; ++k) {
    memcpy(copy, text, size);
    mutate(copy, size, &rng);
    n_bad += !check_mutant(copy, size, &n_loaded, problem, sizeof(problem));
  }
  printf("%s: %d mutants, %d still loaded\n", file, N_MUTANTS, n_loaded);
  CHECK(n_bad == 0, "%s: %d bad mutants, the last: %s", file, n_bad, problem);
  free(copy);
}

/** Where a value sits in a parsed document. */
typedef struct {
  json_t *parent;
  const char *key;  ///< NULL in an array
  size_t index;
} json_slot;

enum { MAX_SLOTS = 4096 };

static void collect_slots(json_t *value, json_slot *slots, size_t *n)
{
  const char *key;
  json_t *child;
  size_t index;
  if (json_is_object(value)) {
    json_object_foreach (value, key, child) {
      if (*n < MAX_SLOTS) {
        slots[(*n)++] = (json_slot){value, key, 0};
        collect_slots(child, slots, n);
      }
    }
  } else if (json_is_array(value)) {
    json_array_foreach (value, index, child) {
      if (*n < MAX_SLOTS) {
        slots[(*n)++] = (json_slot){value, NULL, index};
        collect_slots(child, slots, n);
      }
    }
  }
}

/** A value of another type or an awkward size. */
static json_t *make_replacement(test_rng *rng)
{
  switch (test_rng_int(rng, 0, 11)) {
  case 0: return json_null();
  case 1: return json_true();
  case 2: return json_string("48000");
  case 3: return json_integer(0);
  case 4: return json_integer(-1);
  case 5: return json_integer(1000000000);
  case 6: return json_real(2.5);
  case 7: return json_real(1e39);
  case 8: return json_array();
  case 9: return json_object();
  case 10: return json_pack("[[f], f]", 0.5, 0.25);
  default: return json_integer(test_rng_int(rng, 1, 20));
  }
}

/** Replaces (or, now and then, removes) one value anywhere in `root`. */
static void mutate_tree(json_t *root, test_rng *rng)
{
  static json_slot slots[MAX_SLOTS];
  size_t n = 0;
  collect_slots(root, slots, &n);
  if (n == 0) {
    return;
  }
  const json_slot *slot = &slots[test_rng_int(rng, 0, (int)n - 1)];
  const bool is_removal = test_rng_int(rng, 0, 7) == 0;
  if (slot->key && is_removal) {
    json_object_del(slot->parent, slot->key);
  } else if (slot->key) {
    json_object_set_new(slot->parent, slot->key, make_replacement(rng));
  } else if (is_removal) {
    json_array_remove(slot->parent, slot->index);
  } else {
    json_array_set_new(slot->parent, slot->index, make_replacement(rng));
  }
}

/** Well-formed JSON with one value changed: the checks behind the parser
    see every wrong type and size. */
static void test_tree_mutations(const char *file, const char *text,
                                size_t size, uint64_t seed)
{
  enum { N_MUTANTS = 1000 };
  char problem[CARRY_MESSAGE_SIZE + 64] = "";
  test_rng rng = test_rng_new(seed);
  int n_bad = 0, n_loaded = 0;
  for (int k = 0; k < N_MUTANTS; ++k) {
    json_t *root = json_loadb(text, size, 0, NULL);
    mutate_tree(root, &rng);
    if (test_rng_int(&rng, 0, 1)) { // sometimes two changes
      mutate_tree(root, &rng);
    }
    char *mutant = json_dumps(root, 0);
    if (mutant) {
      n_bad += !check_mutant(mutant, strlen(mutant), &n_loaded, problem,
                             sizeof(problem));
    }
    free(mutant);
    json_decref(root);
  }
  printf("%s: %d changed trees, %d still loaded\n", file, N_MUTANTS,
         n_loaded);
  CHECK(n_bad == 0, "%s: %d bad tree mutants, the last: %s", file, n_bad,
        problem);
}

static void test_fuzz(void)
{
  for (size_t k = 0; k < N_ELEMENTS(good_files); ++k) {
    char *path = model_path(good_files[k]);
    size_t size = 0;
    char *text = read_text(path, &size);
    if (text) {
      test_truncations(good_files[k], text, size);
      test_mutations(good_files[k], text, size, 100 + k);
      test_tree_mutations(good_files[k], text, size, 200 + k);
    }
    free(text);
    free(path);
  }
}

/** A written model with every extra (knobs, initial states, GRU biases,
    escapes in names), truncated and mutated. */
static void test_fuzz_written(void)
{
  test_rng rng = test_rng_new(11);
  carry_model *model = test_random_model(CARRY_LAYER_GRU, 3, 2, 3, true, &rng);
  test_randomize_model(model, &rng, 1.0f, true);
  carry_model_spec spec = *carry_model_get_spec(model);
  snprintf(spec.name, sizeof(spec.name), "escapes \"\\\t\\");
  snprintf(spec.knobs[0].name, sizeof(spec.knobs[0].name), "\\u00fc \"");
  carry_error err;
  CHECK(carry_model_set_info(model, &spec, &err) == CARRY_SUCCESS,
        "set_info: %s", err.message);
  char *text = carry_model_to_json(model, &err);
  CHECK(text != NULL, "to_json: %s", err.message);
  const size_t size = text ? strlen(text) : 0;
  if (text) {
    test_truncations("written model", text, size);
    test_mutations("written model", text, size, 99);
    test_tree_mutations("written model", text, size, 98);
  }
  free(text);
  carry_model_free(model);
}

int main(void)
{
  for (size_t k = 0; k < N_ELEMENTS(bad_cases); ++k) {
    test_bad_file(&bad_cases[k]);
  }
  test_file_errors();
  test_argument_errors();
  test_fuzz();
  test_fuzz_written();
  printf("bad_models: %zu bad files, %zu good files mutated\n",
         N_ELEMENTS(bad_cases), N_ELEMENTS(good_files));
  return test_finish("bad_models");
}
