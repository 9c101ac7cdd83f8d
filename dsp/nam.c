/*
  The Neural Amp Modeler .nam reader, architecture "LSTM" (facts in
  FORMATS.md, section 3).

  All weights sit in one flat array: per layer the gate matrix W, 4H rows
  of [weight_ih | weight_hh] (gates i, f, g, o, as Keras), the summed
  bias, and the initial state h0 and c0; then the head.  The count is
  checked against the config before any element is read, and every
  element before anything is allocated (passes as in loaders.h).
*/

#include "loaders.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

/** NAM files up to version 0.5.2 hold no rate; they were made at 48 kHz. */
#define NAM_DEFAULT_RATE 48000.0

/** What the reader knows about a file before it allocates. */
typedef struct nam_file {
  const json_t *root;
  const json_t *config;    ///< The "config" object
  const json_t *weights;   ///< The flat "weights" array
  const json_t *metadata;  ///< The "metadata" object, or NULL
  const carry_json_path *at;
  int n_recurrent;         ///< L: config.num_layers
  int n_units;             ///< H: config.hidden_size
  carry_model_spec spec;
} nam_file;

/** Walks the flat weight array, naming each element by its index. */
typedef struct {
  const json_t *weights;
  carry_json_path at;      ///< The array's path
  size_t next;             ///< Index of the next element
} flat_reader;

/* ------------------------------------------------------------------------ */
/* Pass 1: architecture, version, config */

static carry_status check_architecture(const nam_file *f)
{
  const carry_json_path at = carry_json_path_key(f->at, "architecture");
  const json_t *value = NULL;
  const char *name = NULL;
  carry_status st = carry_json_require(f->at, f->root, "architecture",
                                       &value);
  if (!st) st = carry_json_string(&at, value, &name);
  if (!st && strcmp(name, "LSTM")) {
    char quoted[64];
    carry_json_quote(name, quoted, sizeof(quoted));
    return carry_json_fail(f->at, CARRY_ERR_UNSUPPORTED,
                           "architecture %s is not supported: Carry runs "
                           "NAM's LSTM models", quoted);
  }
  return st;
}

/** Versions 0.5 to 0.7 share the LSTM layout; the number is only checked
    to be one, as NAM itself writes it. */
static carry_status check_version(const nam_file *f)
{
  const carry_json_path at = carry_json_path_key(f->at, "version");
  const json_t *value = NULL;
  const char *version = NULL;
  carry_status st = carry_json_require(f->at, f->root, "version", &value);
  return st ? st : carry_json_string(&at, value, &version);
}

/** A config size that must be 1, where given (or always, if required). */
static carry_status check_exact(const carry_json_path *at,
                                const json_t *config, const char *key,
                                bool is_required, const char *unit,
                                const char *why)
{
  const carry_json_path at_key = carry_json_path_key(at, key);
  const json_t *value = carry_json_optional(config, key);
  int n = 1;
  carry_status st = CARRY_SUCCESS;
  if (is_required) {
    st = carry_json_require(at, config, key, &value);
  }
  if (!st && value) {
    st = carry_json_int(&at_key, value, 0, INT_MAX, unit, CARRY_ERR_VALUE,
                        &n);
  }
  if (!st && n != 1) {
    return carry_json_fail(&at_key, CARRY_ERR_UNSUPPORTED,
                           "expected 1 %s (%s), found %d", unit, why, n);
  }
  return st;
}

static carry_status read_config(nam_file *f)
{
  const carry_json_path at = carry_json_path_key(f->at, "config");
  const carry_json_path at_units = carry_json_path_key(&at, "hidden_size");
  const carry_json_path at_layers = carry_json_path_key(&at, "num_layers");
  const json_t *units = NULL, *layers = NULL;
  carry_status st = carry_json_require(f->at, f->root, "config", &f->config);
  if (!st) st = carry_json_object(&at, f->config);
  if (!st) st = check_exact(&at, f->config, "input_size", true, "input",
                            "the audio: NAM's LSTMs take no conditioning");
  if (!st) st = check_exact(&at, f->config, "in_channels", false, "channel",
                            "mono audio in");
  if (!st) st = check_exact(&at, f->config, "out_channels", false, "channel",
                            "mono audio out");
  if (!st) st = carry_json_require(&at, f->config, "hidden_size", &units);
  if (!st) st = carry_json_int(&at_units, units, 1, CARRY_MAX_UNITS, "units",
                               CARRY_ERR_LIMIT, &f->n_units);
  if (!st) st = carry_json_require(&at, f->config, "num_layers", &layers);
  if (!st) st = carry_json_int(&at_layers, layers, 1, CARRY_MAX_RECURRENT,
                               "layers", CARRY_ERR_LIMIT, &f->n_recurrent);
  return st;
}

/** Σ_l [4H(I_l + H) + 4H + 2H] + H + 1, with I_0 = 1 and I_l = H after. */
static size_t count_weights(const nam_file *f)
{
  const size_t H = (size_t)f->n_units;
  size_t n = 0;
  for (int l = 0; l < f->n_recurrent; ++l) {
    const size_t I = l == 0 ? 1 : H;
    n += 4 * H * (I + H) + 4 * H + 2 * H;
  }
  return n + H + 1;
}

static carry_status check_weight_count(nam_file *f)
{
  const carry_json_path at = carry_json_path_key(f->at, "weights");
  char what[128];
  snprintf(what, sizeof(what),
           "numbers (%d LSTM layer%s of %d unit%s and the head)",
           f->n_recurrent, f->n_recurrent == 1 ? "" : "s", f->n_units,
           f->n_units == 1 ? "" : "s");
  carry_status st = carry_json_require(f->at, f->root, "weights",
                                       &f->weights);
  return st ? st : carry_json_array(&at, f->weights, count_weights(f), what);
}

static void describe_layers(nam_file *f)
{
  for (int l = 0; l < f->n_recurrent; ++l) {
    f->spec.layers[l] = (carry_layer_spec){CARRY_LAYER_LSTM, f->n_units,
                                           CARRY_ACT_LINEAR, false};
  }
  f->spec.layers[f->n_recurrent] =
    (carry_layer_spec){CARRY_LAYER_DENSE, 1, CARRY_ACT_LINEAR, false};
  f->spec.n_layers = f->n_recurrent + 1;
}

static carry_status read_sample_rate(nam_file *f)
{
  static const char *const keys[] = {"sample_rate", NULL};
  bool is_found = false;
  f->spec.sample_rate = NAM_DEFAULT_RATE;
  return carry_loader_read_rate(f->at, f->root, keys, &f->spec, &is_found);
}

/* ------------------------------------------------------------------------ */
/* Passes 2 and 3: the flat weights */

/** The next `n` weights into out[0], out[stride], ... (NULL to check). */
static carry_status read_run(flat_reader *r, size_t n, size_t stride,
                             float *out)
{
  carry_status st = CARRY_SUCCESS;
  for (size_t k = 0; !st && k < n; ++k, ++r->next) {
    const carry_json_path at = carry_json_path_index(&r->at, r->next);
    float value = 0.0f;
    st = carry_json_float(&at, json_array_get(r->weights, r->next), &value);
    if (out) {
      out[k * stride] = value;
    }
  }
  return st;
}

/** W (4H, I + H), row r = [weight_ih[r] | weight_hh[r]]: row r is column r
    of Carry's kernel (I, 4H) and recurrent (H, 4H) matrices. */
static carry_status read_gate_rows(flat_reader *r, const carry_layer_weights *w,
                                   size_t I, size_t H)
{
  const size_t G = 4 * H;
  carry_status st = CARRY_SUCCESS;
  for (size_t row = 0; !st && row < G; ++row) {
    st = read_run(r, I, G, w->kernel ? w->kernel + row : NULL);
    if (!st) st = read_run(r, H, G, w->recurrent ? w->recurrent + row : NULL);
  }
  return st;
}

static carry_status read_lstm(flat_reader *r, const carry_layer_weights *w,
                              size_t I, size_t H)
{
  carry_status st = read_gate_rows(r, w, I, H);
  if (!st) st = read_run(r, 4 * H, 1, w->bias);
  if (!st) st = read_run(r, H, 1, w->h0);
  if (!st) st = read_run(r, H, 1, w->c0);
  return st;
}

/** Passes 2 and 3 (see carry_loader_fill). */
static carry_status fill_weights(const void *file, carry_model *model)
{
  const nam_file *f = file;
  const size_t H = (size_t)f->n_units;
  flat_reader r = {f->weights, carry_json_path_key(f->at, "weights"), 0};
  carry_status st = CARRY_SUCCESS;
  for (int l = 0; !st && l < f->n_recurrent; ++l) {
    const carry_layer_weights w = model ? carry_model_layer(model, l)
                                        : (carry_layer_weights){0};
    st = read_lstm(&r, &w, l == 0 ? 1 : H, H);
  }
  const carry_layer_weights head =
    model ? carry_model_layer(model, f->n_recurrent)
          : (carry_layer_weights){0};
  if (!st) st = read_run(&r, H, 1, head.kernel);  // (1, H) is (H, 1)
  if (!st) st = read_run(&r, 1, 1, head.bias);
  return st;
}

carry_model *carry_nam_read(const json_t *root, const carry_json_path *at,
                            const char *default_name)
{
  nam_file f = {.root = root, .at = at};
  carry_model_spec_init(&f.spec);
  f.spec.format = CARRY_FORMAT_NAM;
  carry_status st = check_architecture(&f);
  if (!st) st = check_version(&f);
  if (!st) st = read_config(&f);
  if (!st) st = check_weight_count(&f);
  if (!st) st = carry_loader_read_metadata(at, root, default_name, &f.spec,
                                           &f.metadata);
  if (!st) st = read_sample_rate(&f);
  if (st) {
    return NULL;
  }
  describe_layers(&f);
  return carry_loader_build(at, &f.spec, f.metadata, fill_weights, &f);
}
