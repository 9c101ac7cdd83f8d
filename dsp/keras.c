/*
  The RTNeural / AIDA-X Keras JSON reader (facts in FORMATS.md, section 1).

  A file is read in three passes over the parsed document (see loaders.h):
  the shape (layer types, widths, inputs, gains, knobs), then every weight
  checked without being stored, and only then the model is allocated and
  filled.
*/

#include "loaders.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/** What the reader knows about a file before it allocates. */
typedef struct keras_file {
  const json_t *root;
  const json_t *layers;     ///< The "layers" array
  const json_t *metadata;   ///< The "metadata" object, or NULL
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
  const json_t *value = carry_json_optional(layer, "activation");
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
  const json_t *in_shape = carry_json_optional(f->root, "in_shape");
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
  const json_t *shape = carry_json_optional(layer, "shape");
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
  const json_t *value = carry_json_optional(f->root, key);
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
  const json_t *value = carry_json_optional(f->root, "in_skip");
  return value ? carry_json_flag(&at, value, &f->spec.has_skip)
               : CARRY_SUCCESS;
}

/** Older exports put the rate at the top level, newer ones in the
    metadata, under either spelling, and often as a string. */
static carry_status read_sample_rate(keras_file *f)
{
  static const char *const top_keys[] = {"samplerate", NULL};
  static const char *const metadata_keys[] = {"samplerate", "sample_rate",
                                              NULL};
  const carry_json_path at_meta = carry_json_path_key(f->at, "metadata");
  bool is_found = false;
  carry_status st = carry_loader_read_rate(f->at, f->root, top_keys, &f->spec,
                                           &is_found);
  if (!st && !is_found) {
    st = carry_loader_read_rate(&at_meta, f->metadata, metadata_keys,
                                &f->spec, &is_found);
  }
  return st;
}

static carry_status read_info(keras_file *f, const char *default_name)
{
  carry_status st = read_skip(f);
  if (!st) st = read_gain(f, "in_gain", &f->spec.in_gain_db);
  if (!st) st = read_gain(f, "out_gain", &f->spec.out_gain_db);
  if (!st) st = carry_loader_read_metadata(f->at, f->root, default_name,
                                           &f->spec, &f->metadata);
  if (!st) st = read_sample_rate(f);
  if (!st) st = carry_extras_read_knobs(f->at, f->root, &f->spec);
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

/* ------------------------------------------------------------------------ */
/* Building */

/** Passes 2 and 3 (see carry_loader_fill). */
static carry_status fill_weights(const void *file, carry_model *model)
{
  const keras_file *f = file;
  carry_status st = read_all_weights(f, model);
  if (!st) st = carry_extras_read_states(f->at, f->root, &f->spec, model);
  return st;
}

carry_model *carry_keras_read(const json_t *root, const carry_json_path *at,
                              const char *default_name)
{
  keras_file f = {.root = root, .at = at};
  carry_model_spec_init(&f.spec);
  f.spec.format = CARRY_FORMAT_KERAS;
  carry_status st = read_layer_specs(&f);
  if (!st) st = read_inputs(&f);
  if (!st) st = check_widths(&f);
  if (!st) st = read_info(&f, default_name);
  return st ? NULL
            : carry_loader_build(at, &f.spec, f.metadata, fill_weights, &f);
}
