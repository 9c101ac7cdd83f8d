/*
  Models: limits, shapes, the weight views, preparing, metadata.
*/

#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static carry_model_spec lstm_spec(int n_units)
{
  carry_model_spec spec;
  carry_model_spec_init(&spec);
  spec.n_layers = 2;
  spec.layers[0] = (carry_layer_spec){.type = CARRY_LAYER_LSTM,
                                      .n_units = n_units};
  spec.layers[1] = (carry_layer_spec){.type = CARRY_LAYER_DENSE, .n_units = 1};
  return spec;
}

static void expect_refused(const carry_model_spec *spec, carry_status status,
                           const char *message)
{
  carry_error err;
  carry_model *model = carry_model_create(spec, &err);
  CHECK(!model, "expected refusal: %s", message);
  CHECK(err.status == status, "status %d, expected %d", err.status, status);
  CHECK(!strcmp(err.message, message), "message \"%s\", expected \"%s\"",
        err.message, message);
  carry_model_free(model);
}

static void test_limits(void)
{
  carry_model_spec spec = lstm_spec(CARRY_MAX_UNITS);
  carry_error err;
  carry_model *model = carry_model_create(&spec, &err);
  CHECK(model != NULL, "1024 units must be accepted: %s", err.message);
  carry_model_free(model);

  spec = lstm_spec(CARRY_MAX_UNITS + 1);
  expect_refused(&spec, CARRY_ERR_LIMIT,
                 "layer 0: 1025 units is outside the supported 1 to 1024");
  spec = lstm_spec(0);
  expect_refused(&spec, CARRY_ERR_LIMIT,
                 "layer 0: 0 units is outside the supported 1 to 1024");

  carry_model_spec_init(&spec);
  for (int l = 0; l < 9; ++l) {
    spec.layers[l] = (carry_layer_spec){.type = CARRY_LAYER_GRU, .n_units = 4};
  }
  spec.layers[9] = (carry_layer_spec){.type = CARRY_LAYER_DENSE, .n_units = 1};
  spec.n_layers = 10;
  expect_refused(&spec, CARRY_ERR_LIMIT,
                 "9 recurrent layers exceeds the limit of 8");
  spec.layers[8] = (carry_layer_spec){.type = CARRY_LAYER_DENSE, .n_units = 1};
  spec.n_layers = 9;
  model = carry_model_create(&spec, &err);
  CHECK(model != NULL, "8 stacked GRUs must be accepted: %s", err.message);
  carry_model_free(model);

  spec = lstm_spec(8);
  spec.n_inputs = CARRY_MAX_INPUTS + 1;
  expect_refused(&spec, CARRY_ERR_LIMIT,
                 "17 inputs is outside the supported 1 to 16");
  spec = lstm_spec(8);
  spec.layers[1].n_units = 2;
  expect_refused(&spec, CARRY_ERR_SHAPE,
                 "the last layer has 2 outputs, expected 1 (audio)");
  spec = lstm_spec(8);
  spec.n_inputs = 2;
  spec.knobs[0].value = 2.0f;
  expect_refused(&spec, CARRY_ERR_VALUE, "knob 1: default 2 is not within [0, 1]");
  spec = lstm_spec(8);
  spec.sample_rate = -48000.0;
  expect_refused(&spec, CARRY_ERR_VALUE,
                 "sample rate -48000 Hz is not a plausible rate");
}

static void test_views(void)
{
  carry_model_spec spec;
  carry_model_spec_init(&spec);
  spec.n_inputs = 3;
  spec.n_layers = 4;
  spec.layers[0] = (carry_layer_spec){.type = CARRY_LAYER_DENSE, .n_units = 5,
                                      .activation = CARRY_ACT_TANH};
  spec.layers[1] = (carry_layer_spec){.type = CARRY_LAYER_LSTM, .n_units = 7};
  spec.layers[2] = (carry_layer_spec){.type = CARRY_LAYER_GRU, .n_units = 3};
  spec.layers[3] = (carry_layer_spec){.type = CARRY_LAYER_DENSE, .n_units = 1,
                                      .omits_bias = true};
  carry_error err;
  carry_model *model = carry_model_create(&spec, &err);
  CHECK(model != NULL, "create: %s", err.message);
  if (!model) {
    return;
  }
  const carry_layer_weights d = carry_model_layer(model, 0);
  const carry_layer_weights l = carry_model_layer(model, 1);
  const carry_layer_weights g = carry_model_layer(model, 2);
  const carry_layer_weights o = carry_model_layer(model, 3);
  CHECK(d.n_in == 3 && d.n_units == 5 && d.n_rows == 5 && d.kernel && d.bias &&
          !d.recurrent && !d.h0,
        "dense view");
  CHECK(l.n_in == 5 && l.n_units == 7 && l.n_rows == 28 && l.recurrent &&
          l.h0 && l.c0 && !l.recurrent_bias,
        "lstm view");
  CHECK(g.n_in == 7 && g.n_units == 3 && g.n_rows == 9 && g.recurrent_bias &&
          g.h0 && !g.c0,
        "gru view");
  CHECK(o.n_in == 3 && o.n_units == 1 && !o.bias, "bias-free dense view");
  // Kernels, recurrent matrices and biases: 3*5+5, 5*28+7*28+28,
  // 7*9+3*9+9+9, 3*1.
  CHECK(carry_model_n_weights(model) == 20 + 364 + 108 + 3,
        "n_weights %zu", carry_model_n_weights(model));
  CHECK(carry_model_macs(model) == 15 + 12 * 28 + 10 * 9 + 3, "macs %zu",
        carry_model_macs(model));
  for (int k = 0; k < l.n_in * l.n_rows; ++k) {
    CHECK(l.kernel[k] == 0.0f, "weights start at zero");
  }
  carry_stream *early = carry_stream_create(model, 64, &err);
  CHECK(!early && err.status == CARRY_ERR_BAD_ARG,
        "a stream needs a prepared model");
  carry_stream_free(early);
  l.recurrent[3 * 28 + 5] = NAN;
  CHECK(carry_model_prepare(model, &err) == CARRY_ERR_VALUE &&
          !strcmp(err.message,
                  "layer 1 recurrent[3][5]: expected a finite number, "
                  "found nan"),
        "non-finite weight: %s", err.message);
  l.recurrent[3 * 28 + 5] = 0.0f;
  g.h0[2] = INFINITY;
  CHECK(carry_model_prepare(model, &err) == CARRY_ERR_VALUE &&
          !strcmp(err.message,
                  "layer 2 initial h[0][2]: expected a finite number, "
                  "found inf"),
        "non-finite state: %s", err.message);
  g.h0[2] = 0.0f;
  CHECK(carry_model_prepare(model, &err) == CARRY_SUCCESS, "prepare: %s",
        err.message);
  carry_model_free(model);
}

static void test_info(void)
{
  carry_model_spec spec = lstm_spec(4);
  spec.n_inputs = 3;
  snprintf(spec.knobs[0].name, CARRY_NAME_SIZE, "Drive");
  snprintf(spec.knobs[1].name, CARRY_NAME_SIZE, "tone");
  carry_error err;
  carry_model *model = carry_model_create(&spec, &err);
  CHECK(carry_model_find_knob(model, "drive") == 0, "knob by name");
  CHECK(carry_model_find_knob(model, "TONE") == 1, "knob by name");
  CHECK(carry_model_find_knob(model, "level") == -1, "no such knob");
  spec.sample_rate = 44100.0;
  snprintf(spec.name, CARRY_NAME_SIZE, "renamed");
  CHECK(carry_model_set_info(model, &spec, &err) == CARRY_SUCCESS,
        "set_info: %s", err.message);
  CHECK(carry_model_get_spec(model)->sample_rate == 44100.0 &&
          !strcmp(carry_model_get_spec(model)->name, "renamed"),
        "info updated");
  spec.layers[0].n_units = 5;
  CHECK(carry_model_set_info(model, &spec, &err) == CARRY_ERR_BAD_ARG,
        "set_info must not change the layers");
  spec.layers[0].n_units = 4;
  spec.has_skip = true;
  CHECK(carry_model_set_info(model, &spec, &err) == CARRY_SUCCESS &&
          carry_model_get_spec(model)->has_skip,
        "set_info may change the skip connection: %s", err.message);
  CHECK(carry_model_get_metadata(model) == NULL, "no metadata by default");
  carry_model_set_metadata(model, "{\"author\": \"x\"}", &err);
  CHECK(!strcmp(carry_model_get_metadata(model), "{\"author\": \"x\"}"),
        "metadata kept");
  carry_model_set_metadata(model, NULL, &err);
  CHECK(carry_model_get_metadata(model) == NULL, "metadata cleared");
  carry_model_free(model);
  carry_model_free(NULL);
  carry_stream_free(NULL);
}

int main(void)
{
  test_limits();
  test_views();
  test_info();
  return test_finish("model");
}
