/*
  Models: shape checks, the single weight allocation, and the packed layout
  the kernels read.
*/

#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/** Floats per 64-byte line: every array starts on a line. */
#define LINE_FLOATS 16

static size_t round_line(size_t n)
{
  return (n + LINE_FLOATS - 1) / LINE_FLOATS * LINE_FLOATS;
}

const char *carry_format_name(carry_format format)
{
  switch (format) {
  case CARRY_FORMAT_NONE: return "made in code";
  case CARRY_FORMAT_KERAS: return "RTNeural/AIDA-X Keras JSON";
  case CARRY_FORMAT_PYTORCH: return "GuitarML/Automated-GuitarAmpModelling JSON";
  case CARRY_FORMAT_NAM: return "Neural Amp Modeler .nam";
  }
  return "unknown";
}

void carry_model_spec_init(carry_model_spec *spec)
{
  memset(spec, 0, sizeof(*spec));
  spec->n_inputs = 1;
  for (int k = 0; k < CARRY_MAX_KNOBS; ++k) {
    spec->knobs[k].max = 1.0f;
    spec->knobs[k].value = 0.5f;
  }
}

static bool is_recurrent(carry_layer_type type)
{
  return type == CARRY_LAYER_LSTM || type == CARRY_LAYER_GRU;
}

/** Gate rows per unit: 4 for an LSTM, 3 for a GRU, 1 for dense. */
static int gates_per_unit(carry_layer_type type)
{
  switch (type) {
  case CARRY_LAYER_LSTM: return 4;
  case CARRY_LAYER_GRU: return 3;
  case CARRY_LAYER_DENSE: return 1;
  case CARRY_LAYER_ACTIVATION: return 0;
  }
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Shape checks */

static carry_status check_layer(const carry_layer_spec *layer, int index,
                                carry_error *err)
{
  if (layer->type < CARRY_LAYER_DENSE || layer->type > CARRY_LAYER_ACTIVATION) {
    return carry_fail(err, CARRY_ERR_BAD_ARG, "layer %d: unknown type %d",
                      index, (int)layer->type);
  }
  if (layer->activation < CARRY_ACT_LINEAR ||
      layer->activation > CARRY_ACT_SOFTMAX) {
    return carry_fail(err, CARRY_ERR_BAD_ARG, "layer %d: unknown activation %d",
                      index, (int)layer->activation);
  }
  if (layer->type != CARRY_LAYER_ACTIVATION &&
      (layer->n_units < 1 || layer->n_units > CARRY_MAX_UNITS)) {
    return carry_fail(err, CARRY_ERR_LIMIT,
                      "layer %d: %d units is outside the supported 1 to %d",
                      index, layer->n_units, CARRY_MAX_UNITS);
  }
  return CARRY_SUCCESS;
}

static carry_status check_knob(const carry_knob *knob, int index,
                               carry_error *err)
{
  if (!isfinite(knob->min) || !isfinite(knob->max) || !isfinite(knob->value) ||
      knob->min > knob->max || knob->value < knob->min ||
      knob->value > knob->max) {
    return carry_fail(err, CARRY_ERR_VALUE,
                      "knob %d: default %g is not within [%g, %g]", index + 1,
                      (double)knob->value, (double)knob->min,
                      (double)knob->max);
  }
  return CARRY_SUCCESS;
}

/** Checks what can change without changing the shape. */
static carry_status check_info(const carry_model_spec *spec, carry_error *err)
{
  if (!isfinite(spec->in_gain_db) || fabsf(spec->in_gain_db) > 120.0f ||
      !isfinite(spec->out_gain_db) || fabsf(spec->out_gain_db) > 120.0f) {
    return carry_fail(err, CARRY_ERR_VALUE,
                      "gains must lie within +/-120 dB, found in %g, out %g",
                      (double)spec->in_gain_db, (double)spec->out_gain_db);
  }
  if (spec->has_loudness && !(fabsf(spec->loudness_db) <= 300.0f)) {
    return carry_fail(err, CARRY_ERR_VALUE,
                      "loudness %g dB is not a plausible level",
                      (double)spec->loudness_db);
  }
  if (!isfinite(spec->sample_rate) || spec->sample_rate < 0.0 ||
      spec->sample_rate > 1e7) {
    return carry_fail(err, CARRY_ERR_VALUE,
                      "sample rate %g Hz is not a plausible rate",
                      spec->sample_rate);
  }
  for (int k = 0; k + 1 < spec->n_inputs; ++k) {
    carry_status st = check_knob(&spec->knobs[k], k, err);
    if (st) {
      return st;
    }
  }
  return CARRY_SUCCESS;
}

static carry_status check_spec(const carry_model_spec *spec, carry_error *err)
{
  if (spec->n_inputs < 1 || spec->n_inputs > CARRY_MAX_INPUTS) {
    return carry_fail(err, CARRY_ERR_LIMIT,
                      "%d inputs is outside the supported 1 to %d",
                      spec->n_inputs, CARRY_MAX_INPUTS);
  }
  if (spec->n_layers < 1 || spec->n_layers > CARRY_MAX_LAYERS) {
    return carry_fail(err, CARRY_ERR_LIMIT,
                      "%d layers is outside the supported 1 to %d",
                      spec->n_layers, CARRY_MAX_LAYERS);
  }
  int n_recurrent = 0;
  int width = spec->n_inputs;
  for (int l = 0; l < spec->n_layers; ++l) {
    const carry_layer_spec *layer = &spec->layers[l];
    carry_status st = check_layer(layer, l, err);
    if (st) {
      return st;
    }
    n_recurrent += is_recurrent(layer->type);
    if (layer->type != CARRY_LAYER_ACTIVATION) {
      width = layer->n_units;
    }
  }
  if (n_recurrent > CARRY_MAX_RECURRENT) {
    return carry_fail(err, CARRY_ERR_LIMIT,
                      "%d recurrent layers exceeds the limit of %d",
                      n_recurrent, CARRY_MAX_RECURRENT);
  }
  if (width != 1) {
    return carry_fail(err, CARRY_ERR_SHAPE,
                      "the last layer has %d outputs, expected 1 (audio)",
                      width);
  }
  return check_info(spec, err);
}

/* ------------------------------------------------------------------------ */
/* Layout: the Keras arrays, then the packed ones, all in one allocation */

/** Hands out consecutive line-aligned arrays from `memory` (or, with
    `memory` NULL, only counts them). */
typedef struct {
  float *memory;
  size_t used;
} arena;

static float *arena_take(arena *a, size_t n_floats)
{
  float *p = a->memory ? a->memory + a->used : NULL;
  a->used += round_line(n_floats);
  return p;
}

static void lay_out_keras(carry_layer_weights *w, arena *a)
{
  const size_t I = (size_t)w->n_in, H = (size_t)w->n_units;
  const size_t G = (size_t)w->n_rows;
  if (w->type == CARRY_LAYER_ACTIVATION) {
    return;
  }
  w->kernel = arena_take(a, I * G);
  if (is_recurrent(w->type)) {
    w->recurrent = arena_take(a, H * G);
    w->h0 = arena_take(a, H);
  }
  w->c0 = w->type == CARRY_LAYER_LSTM ? arena_take(a, H) : NULL;
  w->recurrent_bias = w->type == CARRY_LAYER_GRU ? arena_take(a, G) : NULL;
  w->bias = arena_take(a, G); // always there, zero when the file has none
}

static void lay_out_packed(carry_packed_layer *p, arena *a)
{
  const size_t I = (size_t)p->n_in, H = (size_t)p->n_units;
  const size_t Hp = (size_t)p->n_padded, Gp = (size_t)p->n_rows;
  if (p->type == CARRY_LAYER_ACTIVATION) {
    return;
  }
  const size_t n_rows = is_recurrent(p->type) ? I + H : I;
  p->kernel = arena_take(a, n_rows * Gp);
  p->recurrent = is_recurrent(p->type) && p->kernel ? p->kernel + I * Gp : NULL;
  p->bias = arena_take(a, Gp);
  p->h0 = is_recurrent(p->type) ? arena_take(a, Hp) : NULL;
  p->c0 = p->type == CARRY_LAYER_LSTM ? arena_take(a, Hp) : NULL;
  p->bias_h = p->type == CARRY_LAYER_GRU ? arena_take(a, Hp) : NULL;
  p->kernel_t = p->type == CARRY_LAYER_DENSE
                  ? arena_take(a, H * (size_t)carry_round_lanes((int)I))
                  : NULL;
}

static size_t layer_n_weights(const carry_layer_weights *w)
{
  const size_t G = (size_t)w->n_rows;
  const size_t rows = (size_t)w->n_in + (w->recurrent ? (size_t)w->n_units : 0);
  return rows * G + (w->bias ? G : 0) + (w->recurrent_bias ? G : 0);
}

/** Fills in sizes of every layer and lays out all arrays in `a`. */
static void lay_out(carry_model *model, arena *a)
{
  const carry_model_spec *spec = &model->spec;
  int n_in = spec->n_inputs;
  model->widest = carry_round_lanes(n_in);
  model->widest_rows = 0;
  model->n_weights = 0;
  for (int l = 0; l < spec->n_layers; ++l) {
    const carry_layer_spec *ls = &spec->layers[l];
    const int H = ls->type == CARRY_LAYER_ACTIVATION ? n_in : ls->n_units;
    const int Hp = carry_round_lanes(H);
    carry_layer_weights *w = &model->layers[l];
    carry_packed_layer *p = &model->packed[l];
    *w = (carry_layer_weights){.type = ls->type,
                               .activation = ls->activation,
                               .n_in = n_in,
                               .n_units = H,
                               .n_rows = gates_per_unit(ls->type) * H};
    *p = (carry_packed_layer){.type = ls->type,
                              .activation = ls->activation,
                              .n_in = n_in,
                              .n_units = H,
                              .n_padded = Hp,
                              .n_rows = gates_per_unit(ls->type) * Hp};
    lay_out_keras(w, a);
    lay_out_packed(p, a);
    if (ls->type == CARRY_LAYER_DENSE && ls->omits_bias) {
      w->bias = NULL;
    }
    model->n_weights += layer_n_weights(w);
    model->widest = Hp > model->widest ? Hp : model->widest;
    model->widest_rows =
      p->n_rows > model->widest_rows ? p->n_rows : model->widest_rows;
    n_in = H;
  }
}

/* ------------------------------------------------------------------------ */
/* Life cycle */

carry_model *carry_model_create(const carry_model_spec *spec, carry_error *err)
{
  if (!spec) {
    carry_fail(err, CARRY_ERR_BAD_ARG, "no model description given");
    return NULL;
  }
  if (check_spec(spec, err)) {
    return NULL;
  }
  carry_model *model = calloc(1, sizeof(carry_model));
  if (!model) {
    carry_fail(err, CARRY_ERR_NO_MEMORY, "out of memory for a model");
    return NULL;
  }
  model->spec = *spec;
  model->spec.name[CARRY_NAME_SIZE - 1] = '\0';
  for (int k = 0; k < CARRY_MAX_KNOBS; ++k) {
    model->spec.knobs[k].name[CARRY_NAME_SIZE - 1] = '\0';
  }
  arena count = {NULL, 0};
  lay_out(model, &count);
  const size_t bytes = count.used * sizeof(float);
  model->memory = aligned_alloc(64, bytes ? bytes : 64);
  if (!model->memory) {
    free(model);
    carry_fail(err, CARRY_ERR_NO_MEMORY,
               "out of memory for %zu bytes of weights", bytes);
    return NULL;
  }
  memset(model->memory, 0, bytes);
  model->memory_bytes = bytes ? bytes : 64;
  arena real = {model->memory, 0};
  lay_out(model, &real);
  model->in_gain = powf(10.0f, spec->in_gain_db / 20.0f);
  model->out_gain = powf(10.0f, spec->out_gain_db / 20.0f);
  carry_succeed(err);
  return model;
}

void carry_model_free(carry_model *model)
{
  if (model) {
    free(model->metadata);
    free(model->memory);
    free(model);
  }
}

const carry_model_spec *carry_model_get_spec(const carry_model *model)
{
  return &model->spec;
}

carry_layer_weights carry_model_layer(carry_model *model, int index)
{
  if (index < 0 || index >= model->spec.n_layers) {
    return (carry_layer_weights){0};
  }
  model->is_prepared = false;
  return model->layers[index];
}

carry_layer_weights carry_model_layer_const(const carry_model *model, int index)
{
  if (index < 0 || index >= model->spec.n_layers) {
    return (carry_layer_weights){0};
  }
  return model->layers[index];
}

/* ------------------------------------------------------------------------ */
/* Preparing: finiteness, then packing */

static const char *array_names[] = {"kernel", "recurrent", "bias",
                                    "recurrent bias", "initial h",
                                    "initial c"};

static carry_status check_finite(const float *values, size_t n, size_t n_cols,
                                 int layer, int array, carry_error *err)
{
  for (size_t k = 0; values && k < n; ++k) {
    if (!isfinite(values[k])) {
      return carry_fail(err, CARRY_ERR_VALUE,
                        "layer %d %s[%zu][%zu]: expected a finite number, "
                        "found %g",
                        layer, array_names[array], k / n_cols, k % n_cols,
                        (double)values[k]);
    }
  }
  return CARRY_SUCCESS;
}

static carry_status check_layer_finite(const carry_layer_weights *w, int l,
                                       carry_error *err)
{
  const size_t I = (size_t)w->n_in, H = (size_t)w->n_units;
  const size_t G = (size_t)w->n_rows;
  carry_status st = CARRY_SUCCESS;
  if (!st) st = check_finite(w->kernel, I * G, G, l, 0, err);
  if (!st) st = check_finite(w->recurrent, H * G, G, l, 1, err);
  if (!st) st = check_finite(w->bias, G, G, l, 2, err);
  if (!st) st = check_finite(w->recurrent_bias, G, G, l, 3, err);
  if (!st) st = check_finite(w->h0, H, H, l, 4, err);
  if (!st) st = check_finite(w->c0, H, H, l, 5, err);
  return st;
}

/** Copies a (n_rows, gates * H) Keras matrix, gate blocks side by side,
    into (n_rows, gates * Hp) with the gates interleaved by group of
    CARRY_LANES units (see carry_packed_layer). */
static void pack_gates(const float *src, int n_rows, int gates, int H, int Hp,
                       float *dst)
{
  const size_t Gp = (size_t)gates * (size_t)Hp;
  for (size_t r = 0; r < (size_t)n_rows; ++r) {
    for (size_t q = 0; q < (size_t)gates; ++q) {
      for (size_t k = 0; k < (size_t)H; ++k) {
        const size_t group = k / CARRY_LANES, lane = k % CARRY_LANES;
        dst[r * Gp + (group * (size_t)gates + q) * CARRY_LANES + lane] =
          src[(r * (size_t)gates + q) * (size_t)H + k];
      }
    }
  }
}

static void pack_lstm(const carry_layer_weights *w, carry_packed_layer *p)
{
  const int H = w->n_units, Hp = p->n_padded;
  pack_gates(w->kernel, w->n_in, 4, H, Hp, (float *)p->kernel);
  pack_gates(w->recurrent, H, 4, H, Hp, (float *)p->recurrent);
  pack_gates(w->bias, 1, 4, H, Hp, (float *)p->bias);
  memcpy((float *)p->h0, w->h0, (size_t)H * sizeof(float));
  memcpy((float *)p->c0, w->c0, (size_t)H * sizeof(float));
}

static void pack_gru(const carry_layer_weights *w, carry_packed_layer *p)
{
  const int H = w->n_units, Hp = p->n_padded;
  float summed[3 * CARRY_MAX_UNITS];
  // z and r add both biases outside any product: fold them together
  for (int k = 0; k < 3 * H; ++k) {
    summed[k] = w->bias[k] + (k < 2 * H ? w->recurrent_bias[k] : 0.0f);
  }
  pack_gates(w->kernel, w->n_in, 3, H, Hp, (float *)p->kernel);
  pack_gates(w->recurrent, H, 3, H, Hp, (float *)p->recurrent);
  pack_gates(summed, 1, 3, H, Hp, (float *)p->bias);
  memcpy((float *)p->bias_h, w->recurrent_bias + 2 * H,
         (size_t)H * sizeof(float));
  memcpy((float *)p->h0, w->h0, (size_t)H * sizeof(float));
}

static void pack_dense(const carry_layer_weights *w, carry_packed_layer *p)
{
  const int I = w->n_in, H = w->n_units, Ip = carry_round_lanes(I);
  float *kernel_t = (float *)p->kernel_t;
  float *kernel = (float *)p->kernel;
  for (int i = 0; i < I; ++i) {
    memcpy(kernel + (size_t)i * (size_t)p->n_padded,
           w->kernel + (size_t)i * (size_t)H, (size_t)H * sizeof(float));
  }
  if (w->bias) {
    memcpy((float *)p->bias, w->bias, (size_t)H * sizeof(float));
  }
  for (int i = 0; i < I; ++i) {
    for (int k = 0; k < H; ++k) {
      kernel_t[(size_t)k * Ip + i] = w->kernel[(size_t)i * H + k];
    }
  }
}

carry_status carry_model_prepare(carry_model *model, carry_error *err)
{
  for (int l = 0; l < model->spec.n_layers; ++l) {
    carry_status st = check_layer_finite(&model->layers[l], l, err);
    if (st) {
      return st;
    }
  }
  for (int l = 0; l < model->spec.n_layers; ++l) {
    const carry_layer_weights *w = &model->layers[l];
    carry_packed_layer *p = &model->packed[l];
    switch (w->type) {
    case CARRY_LAYER_LSTM: pack_lstm(w, p); break;
    case CARRY_LAYER_GRU: pack_gru(w, p); break;
    case CARRY_LAYER_DENSE: pack_dense(w, p); break;
    case CARRY_LAYER_ACTIVATION: break;
    }
  }
  model->is_prepared = true;
  return carry_succeed(err);
}

/* ------------------------------------------------------------------------ */
/* Metadata */

carry_status carry_model_set_info(carry_model *model,
                                  const carry_model_spec *spec,
                                  carry_error *err)
{
  const carry_model_spec *old = &model->spec;
  if (spec->n_inputs != old->n_inputs || spec->n_layers != old->n_layers ||
      memcmp(spec->layers, old->layers,
             sizeof(carry_layer_spec) * (size_t)old->n_layers)) {
    return carry_fail(err, CARRY_ERR_BAD_ARG, "the layers or inputs differ");
  }
  carry_status st = check_info(spec, err);
  if (st) {
    return st;
  }
  model->spec = *spec;
  model->in_gain = powf(10.0f, spec->in_gain_db / 20.0f);
  model->out_gain = powf(10.0f, spec->out_gain_db / 20.0f);
  return carry_succeed(err);
}

size_t carry_model_memory(const carry_model *model)
{
  const char *metadata = model->metadata;
  return sizeof(carry_model) + model->memory_bytes +
         (metadata ? strlen(metadata) + 1 : 0);
}

const char *carry_model_get_metadata(const carry_model *model)
{
  return model->metadata;
}

carry_status carry_model_set_metadata(carry_model *model,
                                      const char *json_object,
                                      carry_error *err)
{
  char *copy = NULL;
  if (json_object) {
    const size_t len = strlen(json_object);
    if (!(copy = malloc(len + 1))) {
      return carry_fail(err, CARRY_ERR_NO_MEMORY, "out of memory for metadata");
    }
    memcpy(copy, json_object, len + 1);
  }
  free(model->metadata);
  model->metadata = copy;
  return carry_succeed(err);
}

size_t carry_model_macs(const carry_model *model)
{
  size_t macs = 0;
  for (int l = 0; l < model->spec.n_layers; ++l) {
    const carry_layer_weights *w = &model->layers[l];
    const size_t inputs = (size_t)w->n_in +
                          (is_recurrent(w->type) ? (size_t)w->n_units : 0);
    macs += inputs * (size_t)w->n_rows;
  }
  return macs;
}

size_t carry_model_n_weights(const carry_model *model)
{
  return model->n_weights;
}

int carry_model_find_knob(const carry_model *model, const char *name)
{
  for (int k = 0; k + 1 < model->spec.n_inputs; ++k) {
    if (!strcasecmp(model->spec.knobs[k].name, name)) {
      return k;
    }
  }
  return -1;
}
