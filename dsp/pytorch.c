/*
  The GuitarML / Automated-GuitarAmpModelling PyTorch JSON reader (facts in
  FORMATS.md, section 2).

  The file is a SimpleRNN: `num_layers` stacked LSTM or GRU layers and a
  linear head, with its state dict as nested arrays in PyTorch's (rows,
  columns) layout.  Tensors are transposed into Carry's Keras order as
  they are read, and a GRU's gate blocks r, z, n become z, r, h.  Passes
  as in loaders.h: the sizes from model_data, then every tensor checked,
  then the model allocated and filled.
*/

#include "loaders.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/** GuitarML's models are trained at 44.1 kHz and their files do not say. */
#define PYTORCH_DEFAULT_RATE 44100.0

/** What the reader knows about a file before it allocates. */
typedef struct pytorch_file {
  const json_t *root;
  const json_t *model_data;  ///< The "model_data" object
  const json_t *state_dict;  ///< The "state_dict" object
  const json_t *metadata;    ///< The "metadata" object, or NULL
  const carry_json_path *at;
  int n_recurrent;           ///< num_layers
  carry_model_spec spec;
} pytorch_file;

/** One tensor of the state dict: its PyTorch shape, how to name its rows
    and columns in messages, and where its elements go. */
typedef struct {
  char key[32];             ///< Its name in the state dict
  carry_layer_type type;    ///< The layer whose gate order its rows follow
  size_t H;                 ///< Units per gate block
  size_t n_rows;            ///< Gate rows, or entries of a vector
  size_t n_cols;            ///< Columns of a matrix
  char rows_what[80];
  char cols_what[48];
} tensor;

static const char *plural(size_t n)
{
  return n == 1 ? "" : "s";
}

/* ------------------------------------------------------------------------ */
/* Pass 1: model_data */

static carry_status read_int_key(const carry_json_path *at,
                                 const json_t *object, const char *key,
                                 int lo, int hi, const char *unit,
                                 carry_status range_status, int *out)
{
  const carry_json_path at_key = carry_json_path_key(at, key);
  const json_t *value = NULL;
  carry_status st = carry_json_require(at, object, key, &value);
  if (!st) st = carry_json_int(&at_key, value, lo, hi, unit, range_status,
                               out);
  return st;
}

/** Automated-GuitarAmpModelling names other networks too; only SimpleRNN
    is a plain recurrent stack. */
static carry_status check_network(const carry_json_path *at,
                                  const json_t *data)
{
  const carry_json_path at_model = carry_json_path_key(at, "model");
  const json_t *value = carry_json_optional(data, "model");
  const char *name = "SimpleRNN";
  carry_status st = value ? carry_json_string(&at_model, value, &name)
                          : CARRY_SUCCESS;
  if (!st && strcmp(name, "SimpleRNN")) {
    char found[96];
    carry_json_describe(value, found, sizeof(found));
    return carry_json_fail(&at_model, CARRY_ERR_UNSUPPORTED,
                           "expected \"SimpleRNN\", found %s (a network "
                           "Carry does not run)", found);
  }
  return st;
}

static carry_status read_unit_type(const carry_json_path *at,
                                   const json_t *data, carry_layer_type *type)
{
  const carry_json_path at_type = carry_json_path_key(at, "unit_type");
  const json_t *value = NULL;
  const char *name = NULL;
  carry_status st = carry_json_require(at, data, "unit_type", &value);
  if (!st) st = carry_json_string(&at_type, value, &name);
  if (st) {
    return st;
  }
  if (!strcasecmp(name, "LSTM") || !strcasecmp(name, "GRU")) {
    *type = !strcasecmp(name, "LSTM") ? CARRY_LAYER_LSTM : CARRY_LAYER_GRU;
    return CARRY_SUCCESS;
  }
  char found[96];
  carry_json_describe(value, found, sizeof(found));
  return carry_json_fail(&at_type, CARRY_ERR_UNSUPPORTED,
                         "expected \"LSTM\" or \"GRU\", found %s (%s)", found,
                         !strcasecmp(name, "RNN")
                           ? "Carry runs no vanilla RNN layers"
                           : "a layer Carry does not run");
}

/** PyTorch adds the first `skip` inputs to the output; Carry adds the
    audio input alone. */
static carry_status read_skip(const carry_json_path *at, const json_t *data,
                              carry_model_spec *spec)
{
  const carry_json_path at_skip = carry_json_path_key(at, "skip");
  int skip = 0;
  carry_status st = read_int_key(at, data, "skip", 0, INT_MAX, "inputs",
                                 CARRY_ERR_VALUE, &skip);
  if (!st && skip > spec->n_inputs) {
    return carry_json_fail(&at_skip, CARRY_ERR_VALUE,
                           "expected 0 to %d inputs (at most input_size), "
                           "found %d", spec->n_inputs, skip);
  }
  if (!st && skip > 1) {
    return carry_json_fail(&at_skip, CARRY_ERR_UNSUPPORTED,
                           "expected 0 or 1, found %d: Carry adds only the "
                           "audio input to the output", skip);
  }
  spec->has_skip = skip == 1;
  return st;
}

static carry_status check_output_size(const carry_json_path *at,
                                      const json_t *data)
{
  const carry_json_path at_size = carry_json_path_key(at, "output_size");
  int n_outputs = 0;
  carry_status st = read_int_key(at, data, "output_size", 0, INT_MAX,
                                 "outputs", CARRY_ERR_VALUE, &n_outputs);
  if (!st && n_outputs != 1) {
    return carry_json_fail(&at_size, CARRY_ERR_UNSUPPORTED,
                           "expected 1 output (the audio), found %d",
                           n_outputs);
  }
  return st;
}

/** A bidirectional layer needs the signal's future: it cannot stream. */
static carry_status check_direction(const carry_json_path *at,
                                    const json_t *data)
{
  const carry_json_path at_flag = carry_json_path_key(at, "bidirectional");
  const json_t *value = carry_json_optional(data, "bidirectional");
  bool is_bidirectional = false;
  carry_status st = value ? carry_json_flag(&at_flag, value,
                                            &is_bidirectional)
                          : CARRY_SUCCESS;
  if (!st && is_bidirectional) {
    return carry_json_fail(&at_flag, CARRY_ERR_UNSUPPORTED,
                           "expected false, found true (a bidirectional "
                           "layer needs the future of the signal)");
  }
  return st;
}

/** bias_fl is the head's bias; without the flag, the state dict tells. */
static carry_status read_head_bias(const pytorch_file *f,
                                   const carry_json_path *at, bool *has_bias)
{
  const carry_json_path at_flag = carry_json_path_key(at, "bias_fl");
  const json_t *value = carry_json_optional(f->model_data, "bias_fl");
  *has_bias = json_object_get(f->state_dict, "lin.bias") != NULL;
  return value ? carry_json_flag(&at_flag, value, has_bias) : CARRY_SUCCESS;
}

static carry_status read_layers(pytorch_file *f, const carry_json_path *at)
{
  carry_layer_type type = CARRY_LAYER_LSTM;
  int n_units = 0;
  bool has_head_bias = true;
  carry_status st = read_unit_type(at, f->model_data, &type);
  if (!st) st = read_int_key(at, f->model_data, "hidden_size", 1,
                             CARRY_MAX_UNITS, "units", CARRY_ERR_LIMIT,
                             &n_units);
  if (!st) st = read_int_key(at, f->model_data, "num_layers", 1,
                             CARRY_MAX_RECURRENT, "layers", CARRY_ERR_LIMIT,
                             &f->n_recurrent);
  if (!st) st = read_head_bias(f, at, &has_head_bias);
  if (st) {
    return st;
  }
  for (int l = 0; l < f->n_recurrent; ++l) {
    f->spec.layers[l] = (carry_layer_spec){type, n_units, CARRY_ACT_LINEAR,
                                           false};
  }
  f->spec.layers[f->n_recurrent] =
    (carry_layer_spec){CARRY_LAYER_DENSE, 1, CARRY_ACT_LINEAR, !has_head_bias};
  f->spec.n_layers = f->n_recurrent + 1;
  return CARRY_SUCCESS;
}

static carry_status read_model_data(pytorch_file *f)
{
  const carry_json_path at = carry_json_path_key(f->at, "model_data");
  const carry_json_path at_dict = carry_json_path_key(f->at, "state_dict");
  carry_status st = carry_json_require(f->at, f->root, "model_data",
                                       &f->model_data);
  if (!st) st = carry_json_object(&at, f->model_data);
  if (!st) st = carry_json_require(f->at, f->root, "state_dict",
                                   &f->state_dict);
  if (!st) st = carry_json_object(&at_dict, f->state_dict);
  if (!st) st = check_network(&at, f->model_data);
  if (!st) st = read_int_key(&at, f->model_data, "input_size", 1,
                             CARRY_MAX_INPUTS, "inputs", CARRY_ERR_LIMIT,
                             &f->spec.n_inputs);
  if (!st) st = read_layers(f, &at);
  if (!st) st = check_direction(&at, f->model_data);
  if (!st) st = read_skip(&at, f->model_data, &f->spec);
  if (!st) st = check_output_size(&at, f->model_data);
  return st;
}

/** The files hold no rate, but one written by hand or by a later
    exporter may: at the top, in model_data or in the metadata. */
static carry_status read_sample_rate(pytorch_file *f)
{
  static const char *const keys[] = {"samplerate", "sample_rate", NULL};
  const carry_json_path at_data = carry_json_path_key(f->at, "model_data");
  const carry_json_path at_meta = carry_json_path_key(f->at, "metadata");
  bool is_found = false;
  f->spec.sample_rate = PYTORCH_DEFAULT_RATE;
  carry_status st = carry_loader_read_rate(f->at, f->root, keys, &f->spec,
                                           &is_found);
  if (!st && !is_found) {
    st = carry_loader_read_rate(&at_data, f->model_data, keys, &f->spec,
                                &is_found);
  }
  if (!st && !is_found) {
    st = carry_loader_read_rate(&at_meta, f->metadata, keys, &f->spec,
                                &is_found);
  }
  return st;
}

/* ------------------------------------------------------------------------ */
/* Passes 2 and 3: the state dict */

/** Where PyTorch's gate row `r` goes among Carry's Keras-order columns:
    the same place, but for a GRU's first two blocks (r, z -> z, r). */
static size_t keras_column(const tensor *t, size_t r)
{
  if (t->type != CARRY_LAYER_GRU || r >= 2 * t->H) {
    return r;
  }
  return r < t->H ? r + t->H : r - t->H;
}

static void describe_gates(tensor *t, carry_layer_type type, size_t H,
                           const char *noun)
{
  t->type = type;
  t->H = H;
  t->n_rows = (type == CARRY_LAYER_LSTM ? 4 : 3) * H;
  snprintf(t->rows_what, sizeof(t->rows_what), "%s (%s of %zu unit%s)", noun,
           type == CARRY_LAYER_LSTM ? "4 gates i, f, g, o"
                                    : "3 gates r, z, n",
           H, plural(H));
}

/** A (n_rows, n_cols) matrix into the (n_cols, n_rows) Keras array `out`
    (NULL to check only): out[c][keras_column(r)] = m[r][c]. */
static carry_status read_transposed(const carry_json_path *at,
                                    const json_t *matrix, const tensor *t,
                                    float *out)
{
  carry_status st = carry_json_array(at, matrix, t->n_rows, t->rows_what);
  for (size_t r = 0; !st && r < t->n_rows; ++r) {
    const carry_json_path at_row = carry_json_path_index(at, r);
    const json_t *row = json_array_get(matrix, r);
    st = carry_json_array(&at_row, row, t->n_cols, t->cols_what);
    for (size_t c = 0; !st && c < t->n_cols; ++c) {
      const carry_json_path at_element = carry_json_path_index(&at_row, c);
      float value = 0.0f;
      st = carry_json_float(&at_element, json_array_get(row, c), &value);
      if (out) {
        out[c * t->n_rows + keras_column(t, r)] = value;
      }
    }
  }
  return st;
}

/** A vector of gate entries into `out` at Keras positions, added to what
    is there when `is_sum` (an LSTM's two biases, summed in float). */
static carry_status read_gate_vector(const carry_json_path *at,
                                     const json_t *vector, const tensor *t,
                                     bool is_sum, float *out)
{
  carry_status st = carry_json_array(at, vector, t->n_rows, t->rows_what);
  for (size_t r = 0; !st && r < t->n_rows; ++r) {
    const carry_json_path at_element = carry_json_path_index(at, r);
    float value = 0.0f;
    st = carry_json_float(&at_element, json_array_get(vector, r), &value);
    if (out) {
      const size_t k = keras_column(t, r);
      out[k] = is_sum ? out[k] + value : value;
    }
  }
  return st;
}

/** The tensor `t->key` of the state dict, which must be there. */
static carry_status find_tensor(const pytorch_file *f, const tensor *t,
                                const json_t **value)
{
  const carry_json_path at_dict = carry_json_path_key(f->at, "state_dict");
  return carry_json_require(&at_dict, f->state_dict, t->key, value);
}

static carry_status read_matrix_tensor(const pytorch_file *f, const tensor *t,
                                       float *out)
{
  const carry_json_path at_dict = carry_json_path_key(f->at, "state_dict");
  const carry_json_path at = carry_json_path_key(&at_dict, t->key);
  const json_t *value = NULL;
  carry_status st = find_tensor(f, t, &value);
  return st ? st : read_transposed(&at, value, t, out);
}

static carry_status read_vector_tensor(const pytorch_file *f, const tensor *t,
                                       bool is_sum, float *out)
{
  const carry_json_path at_dict = carry_json_path_key(f->at, "state_dict");
  const carry_json_path at = carry_json_path_key(&at_dict, t->key);
  const json_t *value = NULL;
  carry_status st = find_tensor(f, t, &value);
  return st ? st : read_gate_vector(&at, value, t, is_sum, out);
}

/** rec.weight_ih_lK (G, I) -> kernel (I, G) and rec.weight_hh_lK (G, H)
    -> recurrent (H, G). */
static carry_status read_recurrent_weights(const pytorch_file *f, int l,
                                           carry_layer_weights *w)
{
  const carry_layer_spec *ls = &f->spec.layers[l];
  const size_t H = (size_t)ls->n_units;
  const size_t I = l == 0 ? (size_t)f->spec.n_inputs : H;
  tensor t;
  describe_gates(&t, ls->type, H, "rows");
  t.n_cols = I;
  snprintf(t.key, sizeof(t.key), "rec.weight_ih_l%d", l);
  snprintf(t.cols_what, sizeof(t.cols_what), "column%s (%s)", plural(I),
           l == 0 ? "input_size" : "hidden_size");
  carry_status st = read_matrix_tensor(f, &t, w->kernel);
  t.n_cols = H;
  snprintf(t.key, sizeof(t.key), "rec.weight_hh_l%d", l);
  snprintf(t.cols_what, sizeof(t.cols_what), "column%s (hidden_size)",
           plural(H));
  return st ? st : read_matrix_tensor(f, &t, w->recurrent);
}

/** An LSTM sums its two biases, as PyTorch does at every step; a GRU keeps
    the recurrent one apart, inside r * (U h + b). */
static carry_status read_recurrent_biases(const pytorch_file *f, int l,
                                          carry_layer_weights *w)
{
  const carry_layer_spec *ls = &f->spec.layers[l];
  const bool is_lstm = ls->type == CARRY_LAYER_LSTM;
  tensor t;
  describe_gates(&t, ls->type, (size_t)ls->n_units, "numbers");
  snprintf(t.key, sizeof(t.key), "rec.bias_ih_l%d", l);
  carry_status st = read_vector_tensor(f, &t, false, w->bias);
  snprintf(t.key, sizeof(t.key), "rec.bias_hh_l%d", l);
  return st ? st : read_vector_tensor(f, &t, is_lstm,
                                      is_lstm ? w->bias : w->recurrent_bias);
}

/** lin.weight (1, H) -> kernel (H, 1); lin.bias (1). */
static carry_status read_head(const pytorch_file *f, carry_layer_weights *w)
{
  const carry_layer_spec *ls = &f->spec.layers[f->n_recurrent];
  const size_t H = (size_t)f->spec.layers[0].n_units;
  tensor t = {.key = "lin.weight", .type = CARRY_LAYER_DENSE, .H = 1,
              .n_rows = 1, .n_cols = H, .rows_what = "row (output_size)"};
  snprintf(t.cols_what, sizeof(t.cols_what), "column%s (hidden_size)",
           plural(H));
  carry_status st = read_matrix_tensor(f, &t, w->kernel);
  if (st || ls->omits_bias) {
    return st;
  }
  snprintf(t.key, sizeof(t.key), "lin.bias");
  snprintf(t.rows_what, sizeof(t.rows_what), "number (output_size)");
  return read_vector_tensor(f, &t, false, w->bias);
}

/** Passes 2 and 3 (see carry_loader_fill). */
static carry_status fill_weights(const void *file, carry_model *model)
{
  const pytorch_file *f = file;
  carry_status st = CARRY_SUCCESS;
  for (int l = 0; !st && l <= f->n_recurrent; ++l) {
    carry_layer_weights w = model ? carry_model_layer(model, l)
                                  : (carry_layer_weights){0};
    if (l == f->n_recurrent) {
      st = read_head(f, &w);
    } else {
      st = read_recurrent_weights(f, l, &w);
      if (!st) st = read_recurrent_biases(f, l, &w);
    }
  }
  if (!st) st = carry_extras_read_states(f->at, f->root, &f->spec, model);
  return st;
}

carry_model *carry_pytorch_read(const json_t *root, const carry_json_path *at,
                                const char *default_name)
{
  pytorch_file f = {.root = root, .at = at};
  carry_model_spec_init(&f.spec);
  f.spec.format = CARRY_FORMAT_PYTORCH;
  carry_status st = read_model_data(&f);
  if (!st) st = carry_loader_read_metadata(at, root, default_name, &f.spec,
                                           &f.metadata);
  if (!st) st = read_sample_rate(&f);
  if (!st) st = carry_extras_read_knobs(at, root, &f.spec);
  return st ? NULL
            : carry_loader_build(at, &f.spec, f.metadata, fill_weights, &f);
}
