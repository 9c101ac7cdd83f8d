/*
  Writing a model as RTNeural / AIDA-X Keras JSON with Carry's extras.

  The structure is fixed, so the text is written directly; jansson only
  escapes strings and re-emits the kept metadata.  Every float is written
  in the shortest form that reads back to the same float, in the C locale
  whatever the host has set, so a saved model reloads bit for bit.
*/

#include "json_path.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/** A growing text; a failed allocation or a non-finite number is
    remembered and reported once at the end. */
typedef struct {
  char *data;
  size_t length;
  size_t capacity;
  bool is_out_of_memory;
  bool has_non_finite;
} text_buffer;

static void put_bytes(text_buffer *b, const char *bytes, size_t n)
{
  if (b->is_out_of_memory) {
    return;
  }
  if (b->length + n + 1 > b->capacity) {
    size_t capacity = b->capacity ? b->capacity : 4096;
    while (capacity < b->length + n + 1) {
      capacity *= 2;
    }
    char *bigger = realloc(b->data, capacity);
    if (!bigger) {
      b->is_out_of_memory = true;
      return;
    }
    b->data = bigger;
    b->capacity = capacity;
  }
  memcpy(b->data + b->length, bytes, n);
  b->length += n;
  b->data[b->length] = '\0';
}

static void put(text_buffer *b, const char *text)
{
  put_bytes(b, text, strlen(text));
}

static void put_format(text_buffer *b, const char *format, ...)
  __attribute__((format(printf, 2, 3)));

static void put_format(text_buffer *b, const char *format, ...)
{
  char text[256];
  va_list args;
  va_start(args, format);
  const int n = vsnprintf(text, sizeof(text), format, args);
  va_end(args);
  put_bytes(b, text, n < 0 ? 0 : (size_t)n < sizeof(text) ? (size_t)n
                                                           : sizeof(text) - 1);
}

/* ------------------------------------------------------------------------ */
/* Numbers and strings */

/** The shortest "%.Ng" that reads back as `value`.  Negative zero gets a
    decimal point: jansson reads "-0" as the integer 0 and loses the sign. */
static void put_float(text_buffer *b, float value)
{
  char text[32] = "0";
  if (!isfinite(value)) {
    b->has_non_finite = true;
  } else if (value == 0.0f) {
    snprintf(text, sizeof(text), "%s", signbit(value) ? "-0.0" : "0");
  } else {
    for (int digits = 6; digits <= 9; ++digits) {
      snprintf(text, sizeof(text), "%.*g", digits, (double)value);
      if ((float)strtod(text, NULL) == value) {
        break;
      }
    }
  }
  put(b, text);
}

static void put_double(text_buffer *b, double value)
{
  char text[40];
  for (int digits = 15; digits <= 17; ++digits) {
    snprintf(text, sizeof(text), "%.*g", digits, value);
    if (strtod(text, NULL) == value) {
      break;
    }
  }
  put(b, text);
}

/** A string that jansson accepts: names cut by a fixed-size buffer or set
    by a program may not be valid UTF-8, so other bytes become '?'. */
static json_t *make_string(const char *text)
{
  json_t *string = json_string(text);
  if (!string) {
    char ascii[CARRY_NAME_SIZE];
    carry_json_copy_utf8(ascii, sizeof(ascii), text);
    for (char *c = ascii; *c; ++c) {
      *c = (unsigned char)*c >= 0x80u ? '?' : *c;
    }
    string = json_string(ascii);
  }
  return string;
}

/** Writes `value` as JSON (a string escaped, an object on one line). */
static void put_json(text_buffer *b, json_t *value)
{
  char *text = value ? json_dumps(value, JSON_ENCODE_ANY) : NULL;
  if (!text) {
    b->is_out_of_memory = true;
    return;
  }
  put(b, text);
  free(text);
}

static void put_string(text_buffer *b, const char *text)
{
  json_t *string = make_string(text);
  put_json(b, string);
  json_decref(string);
}

/* ------------------------------------------------------------------------ */
/* Arrays */

static void put_vector(text_buffer *b, const float *values, size_t n)
{
  put(b, "[");
  for (size_t k = 0; k < n; ++k) {
    put(b, k ? ", " : "");
    put_float(b, values[k]);
  }
  put(b, "]");
}

/** A (n_rows, n_cols) matrix, one row per line. */
static void put_matrix(text_buffer *b, const char *indent, const float *values,
                       size_t n_rows, size_t n_cols)
{
  put(b, "[\n");
  for (size_t r = 0; r < n_rows; ++r) {
    put_format(b, "%s  ", indent);
    put_vector(b, values + r * n_cols, n_cols);
    put(b, r + 1 < n_rows ? ",\n" : "\n");
  }
  put_format(b, "%s]", indent);
}

/* ------------------------------------------------------------------------ */
/* Layers */

static const char *layer_type_name(carry_layer_type type)
{
  switch (type) {
  case CARRY_LAYER_DENSE: return "dense";
  case CARRY_LAYER_LSTM: return "lstm";
  case CARRY_LAYER_GRU: return "gru";
  case CARRY_LAYER_ACTIVATION: return "activation";
  }
  return "";
}

/** RTNeural writes "" for a linear dense layer; a standalone activation
    layer reads better named. */
static const char *activation_name(const carry_layer_weights *w)
{
  switch (w->type == CARRY_LAYER_DENSE || w->type == CARRY_LAYER_ACTIVATION
            ? w->activation
            : CARRY_ACT_LINEAR) {
  case CARRY_ACT_LINEAR:
    return w->type == CARRY_LAYER_ACTIVATION ? "linear" : "";
  case CARRY_ACT_TANH: return "tanh";
  case CARRY_ACT_RELU: return "relu";
  case CARRY_ACT_SIGMOID: return "sigmoid";
  case CARRY_ACT_ELU: return "elu";
  case CARRY_ACT_SOFTMAX: return "softmax";
  }
  return "";
}

static void put_weights(text_buffer *b, const carry_layer_weights *w)
{
  static const char *const indent = "        ";
  const size_t I = (size_t)w->n_in, H = (size_t)w->n_units;
  const size_t G = (size_t)w->n_rows;
  put(b, ",\n      \"weights\": [\n");
  put(b, indent);
  put_matrix(b, indent, w->kernel, I, G);
  if (w->recurrent) {
    put_format(b, ",\n%s", indent);
    put_matrix(b, indent, w->recurrent, H, G);
  }
  if (w->type == CARRY_LAYER_GRU) {
    put_format(b, ",\n%s[\n%s  ", indent, indent);
    put_vector(b, w->bias, G);
    put_format(b, ",\n%s  ", indent);
    put_vector(b, w->recurrent_bias, G);
    put_format(b, "\n%s]", indent);
  } else if (w->bias) {
    put_format(b, ",\n%s", indent);
    put_vector(b, w->bias, G);
  }
  put(b, "\n      ]");
}

static void put_layer(text_buffer *b, const carry_layer_weights *w)
{
  put(b, "    {\n      \"type\": ");
  put_string(b, layer_type_name(w->type));
  put(b, ",\n      \"activation\": ");
  put_string(b, activation_name(w));
  put_format(b, ",\n      \"shape\": [null, null, %d]", w->n_units);
  if (w->type != CARRY_LAYER_ACTIVATION) {
    put_weights(b, w);
  }
  put(b, "\n    }");
}

static void put_layers(text_buffer *b, const carry_model *model)
{
  const int n_layers = carry_model_get_spec(model)->n_layers;
  put(b, "  \"layers\": [\n");
  for (int l = 0; l < n_layers; ++l) {
    const carry_layer_weights w = carry_model_layer_const(model, l);
    put_layer(b, &w);
    put(b, l + 1 < n_layers ? ",\n" : "\n");
  }
  put(b, "  ]");
}

/* ------------------------------------------------------------------------ */
/* Metadata and Carry's extras */

/** Whether the kept name is `name`, or a longer one that CARRY_NAME_SIZE
    cut to `name`: then the whole one is kept. */
static bool is_kept_name(const json_t *metadata, const char *name)
{
  const json_t *kept = json_object_get(metadata, "name");
  char cut[CARRY_NAME_SIZE];
  if (!json_is_string(kept)) {
    return false;
  }
  carry_json_copy_utf8(cut, sizeof(cut), json_string_value(kept));
  return !strcmp(cut, name);
}

/** Sets the rate under whichever spelling the metadata used ("samplerate"
    if none), or removes it when unknown. */
static void set_metadata_rate(json_t *metadata, double rate)
{
  const bool has_samplerate = json_object_get(metadata, "samplerate");
  const bool has_sample_rate = json_object_get(metadata, "sample_rate");
  if (rate <= 0.0) {
    json_object_del(metadata, "samplerate");
    json_object_del(metadata, "sample_rate");
    return;
  }
  if (has_sample_rate) {
    json_object_set_new(metadata, "sample_rate", json_real(rate));
  }
  if (has_samplerate || !has_sample_rate) {
    json_object_set_new(metadata, "samplerate", json_real(rate));
  }
}

/** metadata.loudness is where readers find a file's own loudness figure:
    it follows the model's, and is removed when the model has none of its
    own (Carry's measurement is made again on loading).  A figure that
    reads as the model's float is left as written. */
static void set_metadata_loudness(json_t *metadata,
                                  const carry_model_spec *spec)
{
  const json_t *kept = json_object_get(metadata, "loudness");
  if (!spec->has_loudness || spec->is_loudness_measured) {
    if (json_is_number(kept)) {
      json_object_del(metadata, "loudness");
    }
  } else if (!json_is_number(kept) ||
             (float)json_number_value(kept) != spec->loudness_db) {
    json_object_set_new(metadata, "loudness",
                        json_real((double)spec->loudness_db));
  }
}

/** The kept metadata object with the model's own name, sample rate and
    loudness, which may have changed since it was read.  Setting a key that
    exists keeps its place, so the file's key order survives. */
static json_t *make_metadata(const carry_model *model)
{
  const carry_model_spec *spec = carry_model_get_spec(model);
  const char *kept = carry_model_get_metadata(model);
  json_t *metadata = kept ? json_loads(kept, JSON_DECODE_ANY, NULL) : NULL;
  if (!json_is_object(metadata)) {
    json_decref(metadata);
    metadata = json_object();
  }
  if (!spec->name[0]) {
    json_object_del(metadata, "name");
  } else if (!is_kept_name(metadata, spec->name)) {
    json_object_set_new(metadata, "name", make_string(spec->name));
  }
  set_metadata_rate(metadata, spec->sample_rate);
  set_metadata_loudness(metadata, spec);
  return metadata;
}

static void put_metadata(text_buffer *b, const carry_model *model)
{
  json_t *metadata = make_metadata(model);
  if (!metadata) {
    b->is_out_of_memory = true;
  } else if (json_object_size(metadata) > 0) {
    put(b, ",\n  \"metadata\": ");
    put_json(b, metadata);
  }
  json_decref(metadata);
}

static void put_knobs(text_buffer *b, const carry_model_spec *spec)
{
  put(b, ",\n    \"knobs\": [\n");
  for (int k = 0; k + 1 < spec->n_inputs; ++k) {
    const carry_knob *knob = &spec->knobs[k];
    put(b, "      {\"name\": ");
    put_string(b, knob->name);
    put(b, ", \"min\": ");
    put_float(b, knob->min);
    put(b, ", \"max\": ");
    put_float(b, knob->max);
    put(b, ", \"default\": ");
    put_float(b, knob->value);
    put(b, k + 2 < spec->n_inputs ? "},\n" : "}\n");
  }
  put(b, "    ]");
}

static bool is_zero(const float *values, size_t n)
{
  for (size_t k = 0; values && k < n; ++k) {
    if (values[k] != 0.0f || signbit(values[k])) {
      return false;
    }
  }
  return true;
}

static bool has_initial_state(const carry_model *model)
{
  for (int l = 0; l < carry_model_get_spec(model)->n_layers; ++l) {
    const carry_layer_weights w = carry_model_layer_const(model, l);
    const size_t H = (size_t)w.n_units;
    if (!is_zero(w.h0, H) || !is_zero(w.c0, H)) {
      return true;
    }
  }
  return false;
}

static void put_initial_state(text_buffer *b, const carry_model *model)
{
  const int n_layers = carry_model_get_spec(model)->n_layers;
  const char *separator = "\n";
  put(b, ",\n    \"initial_state\": [");
  for (int l = 0; l < n_layers; ++l) {
    const carry_layer_weights w = carry_model_layer_const(model, l);
    if (w.h0) {
      put_format(b, "%s      {\"h\": ", separator);
      put_vector(b, w.h0, (size_t)w.n_units);
      if (w.c0) {
        put(b, ", \"c\": ");
        put_vector(b, w.c0, (size_t)w.n_units);
      }
      put(b, "}");
      separator = ",\n";
    }
  }
  put(b, "\n    ]");
}

static void put_extras(text_buffer *b, const carry_model *model)
{
  const carry_model_spec *spec = carry_model_get_spec(model);
  put(b, ",\n  \"carry\": {\n    \"version\": 1");
  if (spec->n_inputs > 1) {
    put_knobs(b, spec);
  }
  if (has_initial_state(model)) {
    put_initial_state(b, model);
  }
  put(b, "\n  }");
}

/* ------------------------------------------------------------------------ */
/* The document */

static void put_model(text_buffer *b, const carry_model *model)
{
  const carry_model_spec *spec = carry_model_get_spec(model);
  put_format(b, "{\n  \"in_shape\": [null, null, %d],\n", spec->n_inputs);
  put_format(b, "  \"in_skip\": %d,\n  \"in_gain\": ", spec->has_skip ? 1 : 0);
  put_float(b, spec->in_gain_db);
  put(b, ",\n  \"out_gain\": ");
  put_float(b, spec->out_gain_db);
  if (spec->sample_rate > 0.0) {
    put(b, ",\n  \"samplerate\": ");
    put_double(b, spec->sample_rate);
  }
  put(b, ",\n");
  put_layers(b, model);
  put_metadata(b, model);
  put_extras(b, model);
  put(b, "\n}\n");
}

/** Writes in the C locale on this thread only: a host may have set a
    decimal comma for the whole process. */
static carry_status write_in_c_locale(text_buffer *b, const carry_model *model,
                                      carry_error *err)
{
  locale_t c_numeric = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
  if (!c_numeric) {
    return carry_fail(err, CARRY_ERR_NO_MEMORY, "out of memory for a locale");
  }
  const locale_t previous = uselocale(c_numeric);
  put_model(b, model);
  uselocale(previous);
  freelocale(c_numeric);
  if (b->is_out_of_memory) {
    return carry_fail(err, CARRY_ERR_NO_MEMORY,
                      "out of memory writing a model");
  }
  if (b->has_non_finite) {
    return carry_fail(err, CARRY_ERR_VALUE,
                      "the model holds a non-finite weight, which JSON "
                      "cannot represent");
  }
  return carry_succeed(err);
}

char *carry_model_to_json(const carry_model *model, carry_error *err)
{
  if (!model) {
    carry_fail(err, CARRY_ERR_BAD_ARG, "no model given");
    return NULL;
  }
  text_buffer b = {0};
  if (write_in_c_locale(&b, model, err)) {
    free(b.data);
    return NULL;
  }
  return b.data;
}

/* ------------------------------------------------------------------------ */
/* Files */

static carry_status fail_io(carry_error *err, const char *path, int errnum)
{
  char reason[128] = "unknown error";
  strerror_r(errnum, reason, sizeof(reason));
  return carry_fail(err, CARRY_ERR_IO, "%s: %s", path, reason);
}

/** Writes, flushes to disk and closes `file`; returns 0 or an errno. */
static int write_and_close(FILE *file, const void *data, size_t size)
{
  int errnum = 0;
  if (fwrite(data, 1, size, file) != size || fflush(file) != 0 ||
      fsync(fileno(file)) != 0) {
    errnum = errno ? errno : EIO;
  }
  if (fclose(file) != 0 && !errnum) {
    errnum = errno ? errno : EIO;
  }
  return errnum;
}

int carry_write_file_atomically(const char *path, const void *data,
                                size_t size)
{
  const size_t length = strlen(path);
  char *temporary = malloc(length + sizeof(".tmp"));
  if (!temporary) {
    return ENOMEM;
  }
  memcpy(temporary, path, length);
  memcpy(temporary + length, ".tmp", sizeof(".tmp"));
  FILE *file = fopen(temporary, "wb");
  int errnum = file ? write_and_close(file, data, size) : errno;
  if (!errnum && rename(temporary, path) != 0) {
    errnum = errno;
  }
  if (errnum && file) {
    remove(temporary);
  }
  free(temporary);
  return errnum;
}

carry_status carry_model_save(const carry_model *model, const char *path,
                              carry_error *err)
{
  if (!path) {
    return carry_fail(err, CARRY_ERR_BAD_ARG, "no file name given");
  }
  carry_error local;
  err = err ? err : &local;
  char *text = carry_model_to_json(model, err);
  if (!text) {
    return err->status;
  }
  const int errnum = carry_write_file_atomically(path, text, strlen(text));
  free(text);
  return errnum ? fail_io(err, path, errnum) : carry_succeed(err);
}
