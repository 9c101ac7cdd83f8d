/*
  The RTNeural / AIDA-X Keras JSON reader (facts in FORMATS.md, section 1).

  A file is read in three passes over the parsed document: the shape (layer
  types, widths, inputs, gains, knobs), then every weight checked without
  being stored, and only then the model is allocated and filled.  So a
  file that declares a huge model but holds garbage costs no allocation,
  and every failure names the JSON path of the value at fault.
*/

#include "json_path.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/** What the reader knows about a file before it allocates. */
typedef struct keras_file {
  const json_t *root;
  const json_t *layers;     ///< The "layers" array
  const json_t *metadata;   ///< The "metadata" object, or NULL
  const json_t *extras;     ///< The "carry" object, or NULL
  const carry_json_path *at;
  bool has_in_shape;
  carry_model_spec spec;
} keras_file;

typedef struct {
  const char *name;
  carry_layer_type type;
} layer_name;

static const layer_name layer_names[] = {
  {"lstm", CARRY_LAYER_LSTM},
  {"gru", CARRY_LAYER_GRU},
  {"dense", CARRY_LAYER_DENSE},
  {"time-distributed-dense", CARRY_LAYER_DENSE},
  {"activation", CARRY_LAYER_ACTIVATION},
};

typedef struct {
  const char *name;
  carry_activation activation;
} activation_name;

static const activation_name activation_names[] = {
  {"", CARRY_ACT_LINEAR},         {"linear", CARRY_ACT_LINEAR},
  {"tanh", CARRY_ACT_TANH},       {"relu", CARRY_ACT_RELU},
  {"sigmoid", CARRY_ACT_SIGMOID}, {"elu", CARRY_ACT_ELU},
  {"softmax", CARRY_ACT_SOFTMAX},
};

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

static bool is_recurrent(carry_layer_type type)
{
  return type == CARRY_LAYER_LSTM || type == CARRY_LAYER_GRU;
}

/** An optional member: absent and null both mean "not given", as Python
    exporters write None for what they do not know. */
static const json_t *optional(const json_t *object, const char *key)
{
  const json_t *value = json_object_get(object, key);
  return json_is_null(value) ? NULL : value;
}

/** A file-level failure from a carry_* call that knows no file name. */
static void name_the_file(const carry_json_path *at)
{
  if (at->err) {
    char message[CARRY_MESSAGE_SIZE];
    memcpy(message, at->err->message, sizeof(message));
    carry_fail(at->err, at->err->status, "%s: %s", at->file, message);
  }
}

/* ------------------------------------------------------------------------ */
/* Pass 1: the shape */

static carry_status read_layer_type(const carry_json_path *at,
                                    const json_t *layer,
                                    carry_layer_type *type)
{
  const carry_json_path at_type = carry_json_path_key(at, "type");
  const json_t *value = NULL;
  const char *name = NULL;
  carry_status st = carry_json_require(at, layer, "type", &value);
  if (!st) st = carry_json_string(&at_type, value, &name);
  if (st) {
    return st;
  }
  for (size_t k = 0; k < N_ELEMENTS(layer_names); ++k) {
    if (!strcasecmp(name, layer_names[k].name)) {
      *type = layer_names[k].type;
      return CARRY_SUCCESS;
    }
  }
  char found[96];
  carry_json_describe(value, found, sizeof(found));
  return carry_json_fail(&at_type, CARRY_ERR_UNSUPPORTED,
                         "expected lstm, gru, dense, time-distributed-dense "
                         "or activation, found %s (a layer Carry does not run)",
                         found);
}

/** Recurrent layers always use sigmoid and tanh, so their field is not
    read at all. */
static carry_status read_activation(const carry_json_path *at,
                                    const json_t *layer,
                                    carry_layer_spec *ls)
{
  const carry_json_path at_act = carry_json_path_key(at, "activation");
  const json_t *value = optional(layer, "activation");
  const char *name = NULL;
  if (is_recurrent(ls->type) || !value) {
    return CARRY_SUCCESS;
  }
  carry_status st = carry_json_string(&at_act, value, &name);
  if (st) {
    return st;
  }
  for (size_t k = 0; k < N_ELEMENTS(activation_names); ++k) {
    if (!strcasecmp(name, activation_names[k].name)) {
      ls->activation = activation_names[k].activation;
      return CARRY_SUCCESS;
    }
  }
  char found[96];
  carry_json_describe(value, found, sizeof(found));
  return carry_json_fail(&at_act, CARRY_ERR_UNSUPPORTED,
                         "expected \"\", linear, tanh, relu, sigmoid, elu or "
                         "softmax, found %s (an activation Carry does not run)",
                         found);
}

/** The width at the end of a Keras shape such as [null, null, 8]. */
static carry_status read_shape_width(const carry_json_path *at,
                                     const json_t *shape, int max,
                                     const char *unit, int *width)
{
  const size_t n = json_array_size(shape);
  if (n == 0) {
    char found[96];
    carry_json_describe(shape, found, sizeof(found));
    return carry_json_fail(at, CARRY_ERR_FORMAT,
                           "expected a shape [null, null, %s], found %s", unit,
                           found);
  }
  const carry_json_path last = carry_json_path_index(at, n - 1);
  return carry_json_int(&last, json_array_get(shape, n - 1), 1, max, unit,
                        CARRY_ERR_LIMIT, width);
}

static carry_status read_units(const carry_json_path *at, const json_t *layer,
                               int *n_units)
{
  const carry_json_path at_shape = carry_json_path_key(at, "shape");
  const json_t *shape = NULL;
  carry_status st = carry_json_require(at, layer, "shape", &shape);
  if (!st) st = read_shape_width(&at_shape, shape, CARRY_MAX_UNITS, "units",
                                 n_units);
  return st;
}

/** Checks that a layer with weights has a "weights" array, and tells from
    its length whether a dense layer has a bias. */
static carry_status read_weights_presence(const carry_json_path *at,
                                          const json_t *layer,
                                          carry_layer_spec *ls)
{
  const carry_json_path at_w = carry_json_path_key(at, "weights");
  const json_t *weights = NULL;
  carry_status st = carry_json_require(at, layer, "weights", &weights);
  if (st) {
    return st;
  }
  if (!json_is_array(weights)) {
    return carry_json_fail(&at_w, CARRY_ERR_FORMAT,
                           "expected an array of weight arrays, found %s",
                           carry_json_kind(weights));
  }
  const size_t n = json_array_size(weights);
  if (ls->type == CARRY_LAYER_DENSE && n != 1 && n != 2) {
    return carry_json_fail(&at_w, CARRY_ERR_SHAPE,
                           "expected 1 or 2 arrays (kernel, optional bias), "
                           "found %zu", n);
  }
  ls->omits_bias = ls->type == CARRY_LAYER_DENSE && n == 1;
  return CARRY_SUCCESS;
}

static carry_status read_layer_spec(const carry_json_path *at,
                                    const json_t *layer, carry_layer_spec *ls)
{
  carry_status st = carry_json_object(at, layer);
  if (!st) st = read_layer_type(at, layer, &ls->type);
  if (!st) st = read_activation(at, layer, ls);
  if (!st && ls->type != CARRY_LAYER_ACTIVATION) {
    st = read_units(at, layer, &ls->n_units);
    if (!st) st = read_weights_presence(at, layer, ls);
  }
  return st;
}

static carry_status check_layer_count(const carry_json_path *at,
                                      const json_t *layers)
{
  const size_t n = json_array_size(layers);
  if (!json_is_array(layers)) {
    return carry_json_fail(at, CARRY_ERR_FORMAT,
                           "expected an array of layers, found %s",
                           carry_json_kind(layers));
  }
  if (n < 1 || n > CARRY_MAX_LAYERS) {
    return carry_json_fail(at, n ? CARRY_ERR_LIMIT : CARRY_ERR_SHAPE,
                           "expected 1 to %d layers, found %zu",
                           CARRY_MAX_LAYERS, n);
  }
  return CARRY_SUCCESS;
}

static carry_status read_layer_specs(keras_file *f)
{
  const carry_json_path at = carry_json_path_key(f->at, "layers");
  carry_status st = carry_json_require(f->at, f->root, "layers", &f->layers);
  if (!st) st = check_layer_count(&at, f->layers);
  const size_t n = st ? 0 : json_array_size(f->layers);
  int n_recurrent = 0;
  for (size_t l = 0; !st && l < n; ++l) {
    const carry_json_path at_layer = carry_json_path_index(&at, l);
    carry_layer_spec *ls = &f->spec.layers[l];
    st = read_layer_spec(&at_layer, json_array_get(f->layers, l), ls);
    if (!st && is_recurrent(ls->type) && ++n_recurrent > CARRY_MAX_RECURRENT) {
      st = carry_json_fail(&at_layer, CARRY_ERR_LIMIT,
                           "expected at most %d recurrent layers, found a "
                           "%dth here", CARRY_MAX_RECURRENT, n_recurrent);
    }
  }
  f->spec.n_layers = (int)n;
  return st;
}

/** Without an in_shape, the first kernel's rows are the inputs. */
static carry_status read_inputs_from_kernel(keras_file *f)
{
  for (int l = 0; l < f->spec.n_layers; ++l) {
    if (f->spec.layers[l].type == CARRY_LAYER_ACTIVATION) {
      continue;
    }
    const json_t *layer = json_array_get(f->layers, (size_t)l);
    const json_t *kernel =
      json_array_get(json_object_get(layer, "weights"), 0);
    const size_t n_rows = json_array_size(kernel);
    if (json_is_array(kernel) && (n_rows < 1 || n_rows > CARRY_MAX_INPUTS)) {
      const carry_json_path at_layers = carry_json_path_key(f->at, "layers");
      const carry_json_path at_layer =
        carry_json_path_index(&at_layers, (size_t)l);
      const carry_json_path at_w = carry_json_path_key(&at_layer, "weights");
      const carry_json_path at_kernel = carry_json_path_index(&at_w, 0);
      return carry_json_fail(&at_kernel, CARRY_ERR_LIMIT,
                             "expected 1 to %d rows (the model's inputs), "
                             "found %zu", CARRY_MAX_INPUTS, n_rows);
    }
    f->spec.n_inputs = n_rows ? (int)n_rows : 1;
    return CARRY_SUCCESS;
  }
  return CARRY_SUCCESS;
}

static carry_status read_inputs(keras_file *f)
{
  const json_t *in_shape = optional(f->root, "in_shape");
  if (!in_shape) {
    return read_inputs_from_kernel(f);
  }
  const carry_json_path at = carry_json_path_key(f->at, "in_shape");
  f->has_in_shape = true;
  return read_shape_width(&at, in_shape, CARRY_MAX_INPUTS, "inputs",
                          &f->spec.n_inputs);
}

/** An activation layer keeps its input's width; a shape it declares must
    agree. */
static carry_status check_activation_width(const carry_json_path *at,
                                           const json_t *layer, int width)
{
  const carry_json_path at_shape = carry_json_path_key(at, "shape");
  const json_t *shape = optional(layer, "shape");
  int declared = width;
  carry_status st = shape ? read_shape_width(&at_shape, shape,
                                             CARRY_MAX_UNITS, "units",
                                             &declared)
                          : CARRY_SUCCESS;
  if (!st && declared != width) {
    return carry_json_fail(&at_shape, CARRY_ERR_SHAPE,
                           "expected %d units (an activation layer keeps its "
                           "input's width), found %d", width, declared);
  }
  return st;
}

static carry_status check_widths(const keras_file *f)
{
  const carry_json_path at = carry_json_path_key(f->at, "layers");
  int width = f->spec.n_inputs;
  for (int l = 0; l < f->spec.n_layers; ++l) {
    const carry_json_path at_layer = carry_json_path_index(&at, (size_t)l);
    const carry_layer_spec *ls = &f->spec.layers[l];
    if (ls->type == CARRY_LAYER_ACTIVATION) {
      carry_status st = check_activation_width(
        &at_layer, json_array_get(f->layers, (size_t)l), width);
      if (st) {
        return st;
      }
    } else {
      width = ls->n_units;
    }
  }
  if (width != 1) {
    const carry_json_path at_last =
      carry_json_path_index(&at, (size_t)f->spec.n_layers - 1);
    return carry_json_fail(&at_last, CARRY_ERR_SHAPE,
                           "expected 1 output from the last layer (the audio), "
                           "found %d", width);
  }
  return CARRY_SUCCESS;
}

/* ------------------------------------------------------------------------ */
/* Pass 1: gains, sample rate, name, knobs */

static carry_status read_gain(const keras_file *f, const char *key, float *db)
{
  const carry_json_path at = carry_json_path_key(f->at, key);
  const json_t *value = optional(f->root, key);
  double number = 0.0;
  carry_status st = value ? carry_json_number(&at, value, -120.0, 120.0,
                                              "a gain within +/-120 dB",
                                              &number)
                          : CARRY_SUCCESS;
  *db = (float)number;
  return st;
}

static carry_status read_skip(keras_file *f)
{
  const carry_json_path at = carry_json_path_key(f->at, "in_skip");
  const json_t *value = optional(f->root, "in_skip");
  return value ? carry_json_flag(&at, value, &f->spec.has_skip)
               : CARRY_SUCCESS;
}

/** Older exports put the rate at the top level, newer ones in the
    metadata, under either spelling, and often as a string. */
static carry_status read_sample_rate(keras_file *f)
{
  static const char *const what =
    "a sample rate in Hz (0 for unknown, or 1000 to 10000000)";
  const carry_json_path at_meta = carry_json_path_key(f->at, "metadata");
  carry_json_path at = carry_json_path_key(f->at, "samplerate");
  const json_t *value = optional(f->root, "samplerate");
  if (!value && (value = optional(f->metadata, "samplerate"))) {
    at = carry_json_path_key(&at_meta, "samplerate");
  }
  if (!value && (value = optional(f->metadata, "sample_rate"))) {
    at = carry_json_path_key(&at_meta, "sample_rate");
  }
  double rate = 0.0;
  carry_status st =
    value ? carry_json_numeric(&at, value, 0.0, 1e7, what, &rate)
          : CARRY_SUCCESS;
  if (!st && rate > 0.0 && rate < 1000.0) {
    char found[96];
    carry_json_describe(value, found, sizeof(found));
    st = carry_json_fail(&at, CARRY_ERR_VALUE, "expected %s, found %s", what,
                         found);
  }
  f->spec.sample_rate = rate;
  return st;
}

static carry_status read_metadata(keras_file *f, const char *default_name)
{
  const carry_json_path at = carry_json_path_key(f->at, "metadata");
  const carry_json_path at_name = carry_json_path_key(&at, "name");
  f->metadata = optional(f->root, "metadata");
  carry_status st = f->metadata ? carry_json_object(&at, f->metadata)
                                : CARRY_SUCCESS;
  const json_t *value = optional(f->metadata, "name");
  const char *name = "";
  if (!st && value) {
    st = carry_json_string(&at_name, value, &name);
  }
  carry_json_copy_utf8(f->spec.name, sizeof(f->spec.name),
                       name[0] ? name : default_name);
  return st;
}

static carry_status read_knob_number(const carry_json_path *at,
                                     const json_t *knob, const char *key,
                                     float *out)
{
  const carry_json_path at_key = carry_json_path_key(at, key);
  const json_t *value = optional(knob, key);
  return value ? carry_json_float(&at_key, value, out) : CARRY_SUCCESS;
}

static carry_status check_knob_range(const carry_json_path *at,
                                     const carry_knob *knob)
{
  const carry_json_path at_default = carry_json_path_key(at, "default");
  if (knob->min > knob->max) {
    return carry_json_fail(at, CARRY_ERR_VALUE,
                           "expected min <= max, found min %g and max %g",
                           (double)knob->min, (double)knob->max);
  }
  if (knob->value < knob->min || knob->value > knob->max) {
    return carry_json_fail(&at_default, CARRY_ERR_VALUE,
                           "expected a value within [%g, %g], found %g",
                           (double)knob->min, (double)knob->max,
                           (double)knob->value);
  }
  return CARRY_SUCCESS;
}

/** A knob without a default starts in the middle of its range (0.5 for
    the usual [0, 1]). */
static carry_status read_knob(const carry_json_path *at, const json_t *json,
                              carry_knob *knob)
{
  const carry_json_path at_name = carry_json_path_key(at, "name");
  const json_t *name = optional(json, "name");
  const char *text = "";
  carry_status st = carry_json_object(at, json);
  if (!st && name) st = carry_json_string(&at_name, name, &text);
  if (!st) st = read_knob_number(at, json, "min", &knob->min);
  if (!st) st = read_knob_number(at, json, "max", &knob->max);
  if (st) {
    return st;
  }
  knob->value = 0.5f * knob->min + 0.5f * knob->max; // cannot overflow
  st = read_knob_number(at, json, "default", &knob->value);
  carry_json_copy_utf8(knob->name, sizeof(knob->name), text);
  return st ? st : check_knob_range(at, knob);
}

static carry_status read_knobs(const carry_json_path *at, const json_t *knobs,
                               carry_model_spec *spec)
{
  const size_t n = (size_t)spec->n_inputs - 1;
  carry_status st =
    carry_json_array(at, knobs, n, "knobs (one per conditioning input)");
  for (size_t k = 0; !st && k < n; ++k) {
    const carry_json_path at_knob = carry_json_path_index(at, k);
    st = read_knob(&at_knob, json_array_get(knobs, k), &spec->knobs[k]);
  }
  return st;
}

/** Version 1 is the only one so far; a later one may mean something else
    by the same keys. */
static carry_status check_version(const carry_json_path *at,
                                  const json_t *version)
{
  double number = 0.0;
  carry_status st = carry_json_number(at, version, -INFINITY, INFINITY,
                                      "a version number", &number);
  if (!st && number != 1.0) {
    return carry_json_fail(at, CARRY_ERR_UNSUPPORTED,
                           "expected version 1, found %g (from a newer Carry)",
                           number);
  }
  return st;
}

/** Carry's own extras; unknown keys are left for later versions. */
static carry_status read_extras(keras_file *f)
{
  const carry_json_path at = carry_json_path_key(f->at, "carry");
  const carry_json_path at_version = carry_json_path_key(&at, "version");
  const carry_json_path at_knobs = carry_json_path_key(&at, "knobs");
  f->extras = optional(f->root, "carry");
  if (!f->extras) {
    return CARRY_SUCCESS;
  }
  const json_t *version = optional(f->extras, "version");
  carry_status st = carry_json_object(&at, f->extras);
  if (!st && version) st = check_version(&at_version, version);
  const json_t *knobs = optional(f->extras, "knobs");
  return !st && knobs ? read_knobs(&at_knobs, knobs, &f->spec) : st;
}

static carry_status read_info(keras_file *f, const char *default_name)
{
  carry_status st = read_skip(f);
  if (!st) st = read_gain(f, "in_gain", &f->spec.in_gain_db);
  if (!st) st = read_gain(f, "out_gain", &f->spec.out_gain_db);
  if (!st) st = read_metadata(f, default_name);
  if (!st) st = read_sample_rate(f);
  if (!st) st = read_extras(f);
  return st;
}

/* ------------------------------------------------------------------------ */
/* Passes 2 and 3: weights, checked first (into NULL), then stored */

/** Sizes of one layer's arrays and how to name them in messages. */
typedef struct {
  size_t I, H, G;
  const char *rows_what;   ///< What the kernel's rows are
  char cols_what[96];      ///< What the gate columns are
} layer_dims;

/** The three arrays of a recurrent layer, of which this reads the first
    two: the kernel (I, G) and the recurrent kernel (H, G). */
static carry_status read_kernels(const carry_json_path *at,
                                 const json_t *weights, const layer_dims *d,
                                 carry_layer_weights *w)
{
  const carry_json_path at_kernel = carry_json_path_index(at, 0);
  const carry_json_path at_recurrent = carry_json_path_index(at, 1);
  carry_status st = carry_json_array(at, weights, 3, "arrays (kernel, "
                                     "recurrent kernel, bias)");
  if (!st) st = carry_json_matrix(&at_kernel, json_array_get(weights, 0),
                                  d->I, d->rows_what, d->G, d->cols_what,
                                  w->kernel);
  if (!st) st = carry_json_matrix(&at_recurrent, json_array_get(weights, 1),
                                  d->H, "rows (the hidden size)", d->G,
                                  d->cols_what, w->recurrent);
  return st;
}

static carry_status read_lstm(const carry_json_path *at, const json_t *weights,
                              const layer_dims *d, carry_layer_weights *w)
{
  const carry_json_path at_bias = carry_json_path_index(at, 2);
  carry_status st = read_kernels(at, weights, d, w);
  if (!st) st = carry_json_vector(&at_bias, json_array_get(weights, 2), d->G,
                                  d->cols_what, w->bias);
  return st;
}

/** Keras GRUs with reset_after=True keep two biases; a flat one means
    reset_after=False, whose candidate gate Carry does not compute. */
static carry_status read_gru_bias(const carry_json_path *at,
                                  const json_t *bias, const layer_dims *d,
                                  carry_layer_weights *w)
{
  const carry_json_path at_input = carry_json_path_index(at, 0);
  const carry_json_path at_recurrent = carry_json_path_index(at, 1);
  if (json_is_number(json_array_get(bias, 0))) {
    return carry_json_fail(at, CARRY_ERR_UNSUPPORTED,
                           "expected 2 rows of %zu biases (Keras "
                           "reset_after=True), found a flat array of %zu: "
                           "GRUs with reset_after=False are not supported",
                           d->G, json_array_size(bias));
  }
  carry_status st = carry_json_array(at, bias, 2, "bias rows (input and "
                                     "recurrent, Keras reset_after=True)");
  if (!st) st = carry_json_vector(&at_input, json_array_get(bias, 0), d->G,
                                  d->cols_what, w->bias);
  if (!st) st = carry_json_vector(&at_recurrent, json_array_get(bias, 1),
                                  d->G, d->cols_what, w->recurrent_bias);
  return st;
}

static carry_status read_gru(const carry_json_path *at, const json_t *weights,
                             const layer_dims *d, carry_layer_weights *w)
{
  const carry_json_path at_bias = carry_json_path_index(at, 2);
  carry_status st = read_kernels(at, weights, d, w);
  if (!st) st = read_gru_bias(&at_bias, json_array_get(weights, 2), d, w);
  return st;
}

static carry_status read_dense(const carry_json_path *at,
                               const json_t *weights, const layer_dims *d,
                               carry_layer_weights *w)
{
  const carry_json_path at_kernel = carry_json_path_index(at, 0);
  const carry_json_path at_bias = carry_json_path_index(at, 1);
  carry_status st = carry_json_matrix(&at_kernel, json_array_get(weights, 0),
                                      d->I, d->rows_what, d->G, d->cols_what,
                                      w->kernel);
  if (!st && json_array_size(weights) == 2) {
    st = carry_json_vector(&at_bias, json_array_get(weights, 1), d->G,
                           d->cols_what, w->bias);
  }
  return st;
}

static carry_status check_no_weights(const carry_json_path *at,
                                     const json_t *weights)
{
  if (weights && !json_is_array(weights)) {
    return carry_json_fail(at, CARRY_ERR_FORMAT,
                           "expected an empty array, found %s",
                           carry_json_kind(weights));
  }
  if (json_array_size(weights) > 0) {
    return carry_json_fail(at, CARRY_ERR_SHAPE,
                           "expected no weights (an activation layer has "
                           "none), found %zu arrays", json_array_size(weights));
  }
  return CARRY_SUCCESS;
}

static void describe_dims(const carry_layer_spec *ls, int n_in,
                          const char *rows_what, layer_dims *d)
{
  d->I = (size_t)n_in;
  d->H = (size_t)ls->n_units;
  d->rows_what = rows_what;
  switch (ls->type) {
  case CARRY_LAYER_LSTM:
    d->G = 4 * d->H;
    snprintf(d->cols_what, sizeof(d->cols_what),
             "columns (4 gates i, f, g, o of %zu units)", d->H);
    break;
  case CARRY_LAYER_GRU:
    d->G = 3 * d->H;
    snprintf(d->cols_what, sizeof(d->cols_what),
             "columns (3 gates z, r, h of %zu units)", d->H);
    break;
  default:
    d->G = d->H;
    snprintf(d->cols_what, sizeof(d->cols_what), "columns (the layer's units)");
    break;
  }
}

/** Reads layer `l`'s weights into `w`, or only checks them if `w` holds
    NULL pointers. */
static carry_status read_layer_weights(const keras_file *f, int l, int n_in,
                                       carry_layer_weights *w)
{
  const carry_layer_spec *ls = &f->spec.layers[l];
  const json_t *weights =
    json_object_get(json_array_get(f->layers, (size_t)l), "weights");
  const carry_json_path at_layers = carry_json_path_key(f->at, "layers");
  const carry_json_path at_layer = carry_json_path_index(&at_layers,
                                                         (size_t)l);
  const carry_json_path at = carry_json_path_key(&at_layer, "weights");
  const char *rows_what = l > 0            ? "rows (the previous layer's width)"
                          : f->has_in_shape ? "rows (the inputs in in_shape)"
                                            : "rows (the model's inputs)";
  layer_dims d;
  describe_dims(ls, n_in, rows_what, &d);
  switch (ls->type) {
  case CARRY_LAYER_LSTM: return read_lstm(&at, weights, &d, w);
  case CARRY_LAYER_GRU: return read_gru(&at, weights, &d, w);
  case CARRY_LAYER_DENSE: return read_dense(&at, weights, &d, w);
  case CARRY_LAYER_ACTIVATION: return check_no_weights(&at, weights);
  }
  return CARRY_SUCCESS;
}

static carry_status read_all_weights(const keras_file *f, carry_model *model)
{
  int n_in = f->spec.n_inputs;
  for (int l = 0; l < f->spec.n_layers; ++l) {
    carry_layer_weights w = model ? carry_model_layer(model, l)
                                  : (carry_layer_weights){0};
    carry_status st = read_layer_weights(f, l, n_in, &w);
    if (st) {
      return st;
    }
    if (f->spec.layers[l].type != CARRY_LAYER_ACTIVATION) {
      n_in = f->spec.layers[l].n_units;
    }
  }
  return CARRY_SUCCESS;
}

/** One entry of carry.initial_state: {"h": [H], "c": [H]}, "c" for an LSTM
    only; a missing array stays zero. */
static carry_status read_state(const carry_json_path *at, const json_t *entry,
                               const carry_layer_spec *ls, float *h, float *c)
{
  const carry_json_path at_h = carry_json_path_key(at, "h");
  const carry_json_path at_c = carry_json_path_key(at, "c");
  const json_t *h_json = optional(entry, "h");
  const json_t *c_json = optional(entry, "c");
  const size_t H = (size_t)ls->n_units;
  carry_status st = carry_json_object(at, entry);
  if (!st && c_json && ls->type != CARRY_LAYER_LSTM) {
    return carry_json_fail(&at_c, CARRY_ERR_FORMAT,
                           "expected no cell state for a GRU layer, found %s",
                           carry_json_kind(c_json));
  }
  if (!st && h_json) {
    st = carry_json_vector(&at_h, h_json, H, "numbers (the hidden size)", h);
  }
  if (!st && c_json) {
    st = carry_json_vector(&at_c, c_json, H, "numbers (the hidden size)", c);
  }
  return st;
}

/** Reads carry.initial_state into `model`, or only checks it if NULL. */
static carry_status read_initial_states(const keras_file *f,
                                        carry_model *model)
{
  const carry_json_path at_extras = carry_json_path_key(f->at, "carry");
  const carry_json_path at = carry_json_path_key(&at_extras, "initial_state");
  const json_t *states = optional(f->extras, "initial_state");
  size_t n_recurrent = 0;
  for (int l = 0; l < f->spec.n_layers; ++l) {
    n_recurrent += is_recurrent(f->spec.layers[l].type);
  }
  carry_status st = states ? carry_json_array(&at, states, n_recurrent,
                                              "entries (one per recurrent "
                                              "layer)")
                           : CARRY_SUCCESS;
  for (int l = 0, k = 0; states && !st && l < f->spec.n_layers; ++l) {
    const carry_layer_spec *ls = &f->spec.layers[l];
    if (is_recurrent(ls->type)) {
      const carry_json_path at_entry = carry_json_path_index(&at, (size_t)k);
      carry_layer_weights w = model ? carry_model_layer(model, l)
                                    : (carry_layer_weights){0};
      st = read_state(&at_entry, json_array_get(states, (size_t)k++), ls,
                      w.h0, w.c0);
    }
  }
  return st;
}

/* ------------------------------------------------------------------------ */
/* Building */

/** Keeps the metadata object, compact, so writing the model loses
    nothing. */
static carry_status keep_metadata(const keras_file *f, carry_model *model)
{
  if (!f->metadata) {
    return CARRY_SUCCESS;
  }
  char *text = json_dumps(f->metadata, JSON_COMPACT);
  if (!text) {
    return carry_json_fail(f->at, CARRY_ERR_NO_MEMORY,
                           "out of memory for the metadata");
  }
  carry_status st = carry_model_set_metadata(model, text, f->at->err);
  free(text);
  return st;
}

static carry_model *build_model(const keras_file *f)
{
  carry_model *model = carry_model_create(&f->spec, f->at->err);
  if (!model) {
    name_the_file(f->at);
    return NULL;
  }
  carry_status st = read_all_weights(f, model);
  if (!st) st = read_initial_states(f, model);
  if (!st) st = keep_metadata(f, model);
  if (!st && (st = carry_model_prepare(model, f->at->err))) {
    name_the_file(f->at);
  }
  if (st) {
    carry_model_free(model);
    return NULL;
  }
  return model;
}

carry_model *carry_keras_read(const json_t *root, const carry_json_path *at,
                              const char *default_name)
{
  keras_file f = {.root = root, .at = at};
  carry_model_spec_init(&f.spec);
  carry_status st = read_layer_specs(&f);
  if (!st) st = read_inputs(&f);
  if (!st) st = check_widths(&f);
  if (!st) st = read_info(&f, default_name);
  if (!st) st = read_all_weights(&f, NULL);
  if (!st) st = read_initial_states(&f, NULL);
  if (st) {
    return NULL;
  }
  carry_model *model = build_model(&f);
  if (model) {
    carry_succeed(at->err);
  }
  return model;
}
