/*
  Engines: loading, settling, describing and running a model.
*/

#include "engine.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Describing a model */

/** snprintf for lines that may be cut short on purpose (a status line
    keeps its start), cut between UTF-8 characters. */
static void format_line(char *text, size_t size, const char *format, ...)
  __attribute__((format(printf, 3, 4)));

static void format_line(char *text, size_t size, const char *format, ...)
{
  char full[2 * CARRY_PATH_SIZE];
  va_list args;
  va_start(args, format);
  vsnprintf(full, sizeof(full), format, args);
  va_end(args);
  const size_t n = carry_utf8_prefix(full, size - 1);
  memcpy(text, full, n);
  text[n] = '\0';
}

static const char *type_name(carry_layer_type type)
{
  return type == CARRY_LAYER_GRU ? "GRU" : "LSTM";
}

/** "LSTM-32", "LSTM-16x2", "GRU-10/LSTM-6" or "dense". */
static void describe_layers(const carry_model_spec *spec, char *text,
                            size_t size)
{
  const carry_layer_spec *first = NULL;
  int n_recurrent = 0;
  bool is_uniform = true;
  size_t used = 0;
  text[0] = '\0';
  for (int l = 0; l < spec->n_layers; ++l) {
    const carry_layer_spec *layer = &spec->layers[l];
    if (layer->type != CARRY_LAYER_LSTM && layer->type != CARRY_LAYER_GRU) {
      continue;
    }
    first = first ? first : layer;
    is_uniform = is_uniform && layer->type == first->type &&
                 layer->n_units == first->n_units;
    used += (size_t)snprintf(text + used, used < size ? size - used : 0,
                             "%s%s-%d", n_recurrent ? "/" : "",
                             type_name(layer->type), layer->n_units);
    ++n_recurrent;
  }
  if (!first) {
    snprintf(text, size, "dense");
  } else if (is_uniform && n_recurrent > 1) {
    snprintf(text, size, "%s-%dx%d", type_name(first->type), first->n_units,
             n_recurrent);
  }
}

/** "no knobs", "1 knob (drive)", "2 knobs (drive, tone)"; an unnamed knob
    is "knob 2". */
static void describe_knobs(const carry_model_spec *spec, char *text,
                           size_t size)
{
  const int n = spec->n_inputs - 1;
  if (n == 0) {
    snprintf(text, size, "no knobs");
    return;
  }
  size_t used = (size_t)snprintf(text, size, "%d knob%s (", n,
                                 n == 1 ? "" : "s");
  for (int k = 0; k < n && used < size; ++k) {
    const char *name = spec->knobs[k].name;
    const char *separator = k ? ", " : "";
    used += (size_t)(name[0] ? snprintf(text + used, size - used, "%s%s",
                                        separator, name)
                             : snprintf(text + used, size - used,
                                        "%sknob %d", separator, k + 1));
  }
  if (used < size) {
    snprintf(text + used, size - used, ")");
  }
}

/** Cuts a list to `budget` bytes (with its NUL), between characters, and
    closes it with an ellipsis. */
static void shorten_list(char *list, size_t budget)
{
  static const char ending[] = "\xe2\x80\xa6)"; // "…)"
  if (strlen(list) < budget || budget < sizeof(ending)) {
    return;
  }
  const size_t n = carry_utf8_prefix(list, budget - sizeof(ending));
  memcpy(list + n, ending, sizeof(ending));
}

static void describe(carry_engine *engine)
{
  const carry_model_spec *spec = carry_model_get_spec(engine->model);
  char layers[256], knobs[CARRY_MAX_KNOBS * (CARRY_NAME_SIZE + 2) + 32];
  char rate[160];
  describe_layers(spec, layers, sizeof(layers));
  describe_knobs(spec, knobs, sizeof(knobs));
  carry_rate_stream_describe(engine->streams[0], rate, sizeof(rate));
  // The knob list gives way first: the rate matters more.
  const size_t fixed = strlen("loaded: \"\" , , ") + strlen(spec->name) +
                       strlen(layers) + strlen(rate) + 1;
  shorten_list(knobs, fixed < sizeof(engine->status)
                        ? sizeof(engine->status) - fixed
                        : 0);
  format_line(engine->status, sizeof(engine->status),
              "loaded: \"%s\" %s, %s, %s", spec->name, layers, knobs, rate);
}

/* ------------------------------------------------------------------------ */
/* Life cycle */

static carry_engine *new_engine(const char *path)
{
  carry_engine *engine = calloc(1, sizeof(carry_engine));
  if (engine) {
    format_line(engine->path, sizeof(engine->path), "%s", path);
  }
  return engine;
}

carry_engine *carry_engine_failed(const char *path, const char *status)
{
  carry_engine *engine = new_engine(path);
  if (engine) {
    format_line(engine->status, sizeof(engine->status), "%s", status);
  }
  return engine;
}

static carry_engine *load_failed(const char *path, const char *message)
{
  char status[CARRY_STATUS_SIZE];
  format_line(status, sizeof(status), "error: %s", message);
  return carry_engine_failed(path, status);
}

static const char *base_name(const char *path)
{
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

static void set_knobs(carry_engine *engine)
{
  const carry_model_spec *spec = carry_model_get_spec(engine->model);
  engine->n_knobs = spec->n_inputs - 1;
  for (int k = 0; k < engine->n_knobs; ++k) {
    engine->knob_min[k] = spec->knobs[k].min;
    engine->knob_span[k] = spec->knobs[k].max - spec->knobs[k].min;
    engine->knob_default[k] = spec->knobs[k].value;
  }
}

static bool make_streams(carry_engine *engine, double host_rate,
                         const float *knob_ports, carry_error *err)
{
  float knobs[CARRY_MAX_KNOBS];
  if (knob_ports) {
    carry_engine_knobs(engine, knob_ports, knobs);
  } else {
    memcpy(knobs, engine->knob_default, sizeof(knobs));
  }
  for (int c = 0; c < engine->n_channels; ++c) {
    engine->streams[c] = carry_rate_stream_create(
      engine->model, host_rate, engine->rate_mode, CARRY_ENGINE_MAX_BLOCK, err);
    if (!engine->streams[c]) {
      return false;
    }
    carry_rate_stream_settle(engine->streams[c], knobs,
                             CARRY_SETTLE_SAMPLES);
  }
  engine->latency = carry_rate_stream_latency(engine->streams[0]);
  if (engine->latency > CARRY_MAX_LATENCY) {
    carry_fail(err, CARRY_ERR_LIMIT, "running it at %.0f Hz adds %u samples "
               "of latency, more than the plugin's %d", host_rate,
               engine->latency, CARRY_MAX_LATENCY);
    return false;
  }
  return true;
}

carry_engine *carry_engine_load(const char *path, int n_channels,
                                double host_rate, carry_rate_mode rate_mode,
                                const float *knob_ports)
{
  carry_error err = {CARRY_SUCCESS, ""};
  // The status line names the file, not the whole path, which could crowd
  // out the place in the file and what was wrong there.
  carry_model *model = carry_model_load_as(path, base_name(path), &err);
  if (!model) {
    return load_failed(path, err.message);
  }
  carry_engine *engine = new_engine(path);
  if (!engine) {
    carry_model_free(model);
    return NULL;
  }
  engine->model = model;
  engine->n_channels = n_channels;
  engine->rate_mode = rate_mode;
  engine->quality = CARRY_QUALITY_EXACT; // run() sets the port's
  format_line(engine->name, sizeof(engine->name), "%s",
              carry_model_get_spec(model)->name);
  set_knobs(engine);
  if (carry_model_measure_loudness(model, &err) ||
      !make_streams(engine, host_rate, knob_ports, &err)) {
    carry_engine_free(engine);
    return load_failed(path, err.message);
  }
  engine->normalize_gain =
    powf(10.0f, carry_model_normalize_gain_db(model) / 20.0f);
  describe(engine);
  return engine;
}

void carry_engine_free(carry_engine *engine)
{
  if (engine) {
    for (int c = 0; c < CARRY_MAX_CHANNELS; ++c) {
      carry_rate_stream_free(engine->streams[c]);
    }
    carry_model_free(engine->model);
    free(engine);
  }
}

/* ------------------------------------------------------------------------ */
/* Running (audio thread) */

void carry_engine_knobs(const carry_engine *engine, const float *knob_ports,
                        float *knobs)
{
  for (int k = 0; k < engine->n_knobs; ++k) {
    knobs[k] = k < CARRY_KNOB_PORTS
                 ? engine->knob_min[k] + knob_ports[k] * engine->knob_span[k]
                 : engine->knob_default[k];
  }
}

void carry_engine_process(carry_engine *engine,
                          const float in[][CARRY_GRID], const float *knobs,
                          float out[][CARRY_GRID], uint32_t n)
{
  const float *k = engine->n_knobs ? knobs : NULL;
  if (engine->n_channels == 2) {
    carry_rate_stream_process_pair(engine->streams[0], engine->streams[1],
                                   in[0], in[1], k, out[0], out[1], n);
    return;
  }
  for (int c = 0; c < engine->n_channels; ++c) {
    carry_rate_stream_process(engine->streams[c], in[c], k, out[c], n);
  }
}

void carry_engine_reset(carry_engine *engine)
{
  for (int c = 0; c < engine->n_channels; ++c) {
    carry_rate_stream_reset(engine->streams[c]);
  }
}

void carry_engine_set_quality(carry_engine *engine, carry_quality quality)
{
  if (engine->quality == quality) {
    return;
  }
  engine->quality = quality;
  for (int c = 0; c < engine->n_channels && engine->streams[c]; ++c) {
    carry_stream_set_quality(carry_rate_stream_core(engine->streams[c]),
                             quality);
  }
}
