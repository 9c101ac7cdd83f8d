/*
  What the model readers share: the metadata object, the sample rate,
  Carry's "carry" extras object (knobs and initial state), and building the
  model once the file has been checked.
*/

#include "loaders.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool is_recurrent(carry_layer_type type)
{
  return type == CARRY_LAYER_LSTM || type == CARRY_LAYER_GRU;
}

/* ------------------------------------------------------------------------ */
/* Metadata and sample rate */

static carry_status read_name(const carry_json_path *at,
                              const json_t *metadata, const char *default_name,
                              carry_model_spec *spec)
{
  const carry_json_path at_name = carry_json_path_key(at, "name");
  const json_t *value = carry_json_optional(metadata, "name");
  const char *name = "";
  carry_status st = value ? carry_json_string(&at_name, value, &name)
                          : CARRY_SUCCESS;
  carry_json_copy_utf8(spec->name, sizeof(spec->name),
                       name[0] ? name : default_name);
  return st;
}

/** NAM measures its models' loudness when it exports them; a Keras file
    converted from one keeps the figure in the same place. */
static carry_status read_loudness(const carry_json_path *at,
                                  const json_t *metadata,
                                  carry_model_spec *spec)
{
  const carry_json_path at_loudness = carry_json_path_key(at, "loudness");
  const json_t *value = carry_json_optional(metadata, "loudness");
  double db = 0.0;
  carry_status st =
    value ? carry_json_numeric(&at_loudness, value, -300.0, 300.0,
                               "a loudness in dB within +/-300", &db)
          : CARRY_SUCCESS;
  spec->has_loudness = value && !st;
  spec->is_loudness_measured = false;
  spec->loudness_db = (float)db;
  return st;
}

carry_status carry_loader_read_metadata(const carry_json_path *at,
                                        const json_t *root,
                                        const char *default_name,
                                        carry_model_spec *spec,
                                        const json_t **metadata)
{
  const carry_json_path at_meta = carry_json_path_key(at, "metadata");
  *metadata = carry_json_optional(root, "metadata");
  carry_status st = *metadata ? carry_json_object(&at_meta, *metadata)
                              : CARRY_SUCCESS;
  if (!st) st = read_name(&at_meta, *metadata, default_name, spec);
  if (!st) st = read_loudness(&at_meta, *metadata, spec);
  return st;
}

carry_status carry_loader_read_rate(const carry_json_path *at,
                                    const json_t *object,
                                    const char *const *keys,
                                    carry_model_spec *spec, bool *is_found)
{
  static const char *const what =
    "a sample rate in Hz (0 for unknown, or 1000 to 10000000)";
  const json_t *value = NULL;
  const char *const *key = keys;
  for (; *key && !(value = carry_json_optional(object, *key)); ++key) {
  }
  *is_found = value != NULL;
  if (!value) {
    return CARRY_SUCCESS;
  }
  const carry_json_path at_rate = carry_json_path_key(at, *key);
  double rate = 0.0;
  carry_status st = carry_json_numeric(&at_rate, value, 0.0, 1e7, what, &rate);
  if (!st && rate > 0.0 && rate < 1000.0) {
    char found[96];
    carry_json_describe(value, found, sizeof(found));
    st = carry_json_fail(&at_rate, CARRY_ERR_VALUE, "expected %s, found %s",
                         what, found);
  }
  if (!st && rate > 0.0) {
    spec->sample_rate = rate;
  }
  return st;
}

/* ------------------------------------------------------------------------ */
/* Carry's extras: knobs */

static carry_status read_knob_number(const carry_json_path *at,
                                     const json_t *knob, const char *key,
                                     float *out)
{
  const carry_json_path at_key = carry_json_path_key(at, key);
  const json_t *value = carry_json_optional(knob, key);
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
  const json_t *name = carry_json_optional(json, "name");
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

/** Unknown keys are left for later versions. */
carry_status carry_extras_read_knobs(const carry_json_path *at,
                                     const json_t *root,
                                     carry_model_spec *spec)
{
  const carry_json_path at_extras = carry_json_path_key(at, "carry");
  const carry_json_path at_version = carry_json_path_key(&at_extras,
                                                         "version");
  const carry_json_path at_knobs = carry_json_path_key(&at_extras, "knobs");
  const json_t *extras = carry_json_optional(root, "carry");
  if (!extras) {
    return CARRY_SUCCESS;
  }
  const json_t *version = carry_json_optional(extras, "version");
  carry_status st = carry_json_object(&at_extras, extras);
  if (!st && version) st = check_version(&at_version, version);
  const json_t *knobs = carry_json_optional(extras, "knobs");
  return !st && knobs ? read_knobs(&at_knobs, knobs, spec) : st;
}

/* ------------------------------------------------------------------------ */
/* Carry's extras: initial state */

/** One entry of carry.initial_state: {"h": [H], "c": [H]}, "c" for an LSTM
    only; a missing array keeps what the format gave (zero elsewhere). */
static carry_status read_state(const carry_json_path *at, const json_t *entry,
                               const carry_layer_spec *ls, float *h, float *c)
{
  const carry_json_path at_h = carry_json_path_key(at, "h");
  const carry_json_path at_c = carry_json_path_key(at, "c");
  const json_t *h_json = carry_json_optional(entry, "h");
  const json_t *c_json = carry_json_optional(entry, "c");
  const size_t H = (size_t)ls->n_units;
  const char *what = H == 1 ? "number (the hidden size)"
                            : "numbers (the hidden size)";
  carry_status st = carry_json_object(at, entry);
  if (!st && c_json && ls->type != CARRY_LAYER_LSTM) {
    return carry_json_fail(&at_c, CARRY_ERR_FORMAT,
                           "expected no cell state for a GRU layer, found %s",
                           carry_json_kind(c_json));
  }
  if (!st && h_json) {
    st = carry_json_vector(&at_h, h_json, H, what, h);
  }
  if (!st && c_json) {
    st = carry_json_vector(&at_c, c_json, H, what, c);
  }
  return st;
}

carry_status carry_extras_read_states(const carry_json_path *at,
                                      const json_t *root,
                                      const carry_model_spec *spec,
                                      carry_model *model)
{
  const carry_json_path at_extras = carry_json_path_key(at, "carry");
  const carry_json_path at_states = carry_json_path_key(&at_extras,
                                                        "initial_state");
  const json_t *states =
    carry_json_optional(carry_json_optional(root, "carry"), "initial_state");
  size_t n_recurrent = 0;
  for (int l = 0; l < spec->n_layers; ++l) {
    n_recurrent += is_recurrent(spec->layers[l].type);
  }
  carry_status st = states ? carry_json_array(&at_states, states, n_recurrent,
                                              "entries (one per recurrent "
                                              "layer)")
                           : CARRY_SUCCESS;
  for (int l = 0, k = 0; states && !st && l < spec->n_layers; ++l) {
    const carry_layer_spec *ls = &spec->layers[l];
    if (is_recurrent(ls->type)) {
      const carry_json_path at_entry = carry_json_path_index(&at_states,
                                                             (size_t)k);
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

/** A file-level failure from a carry_* call that knows no file name. */
static void name_the_file(const carry_json_path *at)
{
  if (at->err) {
    char message[CARRY_MESSAGE_SIZE];
    memcpy(message, at->err->message, sizeof(message));
    carry_fail(at->err, at->err->status, "%s: %s", at->file, message);
  }
}

/** Keeps the metadata object, compact, so writing the model loses
    nothing. */
static carry_status keep_metadata(const carry_json_path *at,
                                  const json_t *metadata, carry_model *model)
{
  if (!metadata) {
    return CARRY_SUCCESS;
  }
  char *text = json_dumps(metadata, JSON_COMPACT);
  if (!text) {
    return carry_json_fail(at, CARRY_ERR_NO_MEMORY,
                           "out of memory for the metadata");
  }
  carry_status st = carry_model_set_metadata(model, text, at->err);
  free(text);
  return st;
}

carry_model *carry_loader_build(const carry_json_path *at,
                                const carry_model_spec *spec,
                                const json_t *metadata,
                                carry_loader_fill fill, const void *file)
{
  if (fill(file, NULL)) {
    return NULL;
  }
  carry_model *model = carry_model_create(spec, at->err);
  if (!model) {
    name_the_file(at);
    return NULL;
  }
  carry_status st = fill(file, model);
  if (!st) st = keep_metadata(at, metadata, model);
  if (!st && (st = carry_model_prepare(model, at->err))) {
    name_the_file(at);
  }
  if (st) {
    carry_model_free(model);
    return NULL;
  }
  carry_succeed(at->err);
  return model;
}
