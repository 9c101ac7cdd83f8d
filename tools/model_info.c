/*
  carry model info: what a model file holds and what it costs to run:
  format, layers, knobs, gains, sample rate, loudness, the metadata people
  look for (author, gear, calibration), multiply-adds, and the share of one
  core that running it in real time at 48 kHz takes on this machine, and
  the memory one plugin instance of it costs (plugin/memory.h).
*/

#include "carry.h"
#include "cli.h"
#include "guitar.h"
#include "memory.h"

#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CPU_RATE 48000.0       ///< The real-time rate the share is for
#define CPU_BLOCK 128          ///< Samples per process call, as a host
#define CPU_ROUNDS 5           ///< The share is the median round's
#define CPU_SECONDS 2.0        ///< Audio per round, at most
#define CPU_ROUND_NS 0.4e9     ///< Wall time per round, at most
#define CPU_CALIBRATION 1024   ///< Samples timed to size the rounds
#define TEXT_SIZE 512
#define DEFAULT_MAX_BLOCK 4096  ///< The host's longest block, for memory

typedef struct info_args {
  const char *path;
  bool is_json;
  uint32_t max_block;  ///< The host's, for the memory figures
  int n_channels;      ///< Of the plugin, for the memory figures
} info_args;

/** What the file's metadata says about where the model came from. */
typedef struct model_highlights {
  char author[TEXT_SIZE];        ///< "author" or NAM's "modeled_by"; or ""
  char gear[TEXT_SIZE];          ///< "gear", or NAM's make, model, type
  bool has_input_level;
  bool has_output_level;
  double input_level_dbu;        ///< NAM: the interface level at 0 dBFS in
  double output_level_dbu;       ///< NAM: the same for the output
} model_highlights;

/** How much of one core the model takes in real time. */
typedef struct cpu_share {
  carry_kernels kernels;
  double ns_per_sample;          ///< Median over the rounds
  double percent;                ///< Of one core at CPU_RATE
  int n_rounds;
  double seconds_per_round;      ///< Audio timed per round
} cpu_share;

typedef struct model_report {
  const char *path;
  const carry_model *model;
  model_highlights highlights;
  bool has_stored_state;
  cpu_share cpu;
  uint32_t max_block;
  int n_channels;
  carry_plugin_memory memory;
} model_report;

/* ------------------------------------------------------------------------ */
/* Arguments */

static void print_help(void)
{
  printf(
    "Usage: carry model info [--json] [--max-block N] [--channels C] FILE\n"
    "\n"
    "Describes the model in FILE (any format Carry reads): its format,\n"
    "layers, inputs and knobs, skip connection, gains, sample rate,\n"
    "loudness (from the file, or measured by Carry on its reference\n"
    "signal) and the gain that normalises it to %g dB, the author, gear\n"
    "and calibration levels from its metadata, its initial state, the\n"
    "multiply-adds per sample and weights, and the share of one core it\n"
    "takes in real time at 48 kHz on this machine (one stream, blocks of\n"
    "%d, median of %d rounds of up to %g s of guitar-like audio), and\n"
    "what one instance of the LV2 plugin running it costs in memory:\n"
    "weights, stream state and scratch, the plugin's own buffers, in all,\n"
    "and while a new model fades in over it (host at the model's rate).\n"
    "\n"
    "  -j, --json          prints one JSON object (keys in carry(1))\n"
    "  -b, --max-block N   the host's longest block, 1 to 65536 (default\n"
    "                      %d; Carry works in chunks, so the memory is the\n"
    "                      same at any)\n"
    "  -c, --channels C    1 (mono plugin, the default) or 2 (stereo)\n"
    "  -h, --help          shows this help\n"
    "\n"
    "Exit status: 0 success, 1 failed, 2 usage error, 3 model error.\n",
    (double)CARRY_NORMALIZED_LOUDNESS_DB, CPU_BLOCK, CPU_ROUNDS, CPU_SECONDS,
    DEFAULT_MAX_BLOCK);
}

/** Returns -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, info_args *args)
{
  static const struct option options[] = {
    {"json", no_argument, NULL, 'j'},
    {"max-block", required_argument, NULL, 'b'},
    {"channels", required_argument, NULL, 'c'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
  };
  *args = (info_args){NULL, false, DEFAULT_MAX_BLOCK, 1};
  int option;
  long value = 0;
  while ((option = getopt_long(argc, argv, "jb:c:h", options, NULL)) != -1) {
    switch (option) {
    case 'j': args->is_json = true; break;
    case 'b':
      if (!cli_parse_long(optarg, 1, 65536, &value)) {
        return cli_usage_error("--max-block must be 1 to 65536, not '%s'",
                               optarg);
      }
      args->max_block = (uint32_t)value;
      break;
    case 'c':
      if (!cli_parse_long(optarg, 1, 2, &value)) {
        return cli_usage_error("--channels must be 1 or 2, not '%s'", optarg);
      }
      args->n_channels = (int)value;
      break;
    case 'h': print_help(); return CLI_EXIT_OK;
    default: return cli_bad_option();
    }
  }
  if (optind >= argc) {
    return cli_usage_error("missing model FILE");
  }
  if (optind + 1 < argc) {
    return cli_usage_error("too many arguments: '%s' after FILE",
                           argv[optind + 1]);
  }
  args->path = argv[optind];
  return -1;
}

/* ------------------------------------------------------------------------ */
/* Metadata */

static const char *meta_string(const json_t *metadata, const char *key)
{
  const json_t *value = json_object_get(metadata, key);
  return json_is_string(value) && json_string_length(value)
           ? json_string_value(value) : NULL;
}

static bool meta_number(const json_t *metadata, const char *key,
                        double *value)
{
  const json_t *number = json_object_get(metadata, key);
  if (json_is_number(number)) {
    *value = json_number_value(number);
  }
  return json_is_number(number);
}

/** Appends `word` to `text` after a space, if there is a word. */
static void append_word(char *text, size_t size, const char *word)
{
  const size_t used = strlen(text);
  if (word) {
    snprintf(text + used, size - used, "%s%s", used ? " " : "", word);
  }
}

/** "gear", or NAM's gear_make and gear_model, with gear_type after them
    ("Fender Deluxe Reverb (amp)"). */
static void read_gear(const json_t *metadata, char *gear, size_t size)
{
  const char *named = meta_string(metadata, "gear");
  const char *type = meta_string(metadata, "gear_type");
  gear[0] = '\0';
  if (named) {
    snprintf(gear, size, "%s", named);
    return;
  }
  append_word(gear, size, meta_string(metadata, "gear_make"));
  append_word(gear, size, meta_string(metadata, "gear_model"));
  if (type) {
    const size_t used = strlen(gear);
    snprintf(gear + used, size - used, used ? " (%s)" : "%s", type);
  }
}

static void read_highlights(const carry_model *model, model_highlights *h)
{
  memset(h, 0, sizeof(*h));
  const char *text = carry_model_get_metadata(model);
  json_t *metadata = text ? json_loads(text, 0, NULL) : NULL;
  if (json_is_object(metadata)) {
    const char *author = meta_string(metadata, "author");
    author = author ? author : meta_string(metadata, "modeled_by");
    snprintf(h->author, sizeof(h->author), "%s", author ? author : "");
    read_gear(metadata, h->gear, sizeof(h->gear));
    h->has_input_level =
      meta_number(metadata, "input_level_dbu", &h->input_level_dbu);
    h->has_output_level =
      meta_number(metadata, "output_level_dbu", &h->output_level_dbu);
  }
  json_decref(metadata);
}

static bool is_nonzero(const float *values, int n)
{
  for (int k = 0; values && k < n; ++k) {
    if (values[k] != 0.0f) {
      return true;
    }
  }
  return false;
}

static bool has_stored_state(const carry_model *model)
{
  for (int l = 0; l < carry_model_get_spec(model)->n_layers; ++l) {
    const carry_layer_weights w = carry_model_layer_const(model, l);
    if (is_nonzero(w.h0, w.n_units) || is_nonzero(w.c0, w.n_units)) {
      return true;
    }
  }
  return false;
}

/* ------------------------------------------------------------------------ */
/* Real-time CPU share */

static double now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/** Runs `n` samples in blocks as a host would; returns ns per sample. */
static double time_samples(carry_stream *stream, const float *in, float *out,
                           size_t n)
{
  const double start = now_ns();
  for (size_t t = 0; t < n; t += CPU_BLOCK) {
    const size_t count = n - t < CPU_BLOCK ? n - t : CPU_BLOCK;
    carry_stream_process(stream, in + t, NULL, out + t, (uint32_t)count);
  }
  return (now_ns() - start) / (double)n;
}

static int compare_doubles(const void *a, const void *b)
{
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/** Rounds of CPU_SECONDS of audio, or shorter for a model so slow that
    they would take longer than CPU_ROUND_NS each. */
static void time_rounds(carry_stream *stream, const float *in, float *out,
                        size_t n_max, cpu_share *cpu)
{
  const double warm = time_samples(stream, in, out, CPU_CALIBRATION);
  const double fitting = CPU_ROUND_NS / (warm > 0.0 ? warm : 1.0);
  size_t n = fitting < (double)n_max ? (size_t)fitting : n_max;
  n = n < CPU_BLOCK ? CPU_BLOCK : n;
  double ns[CPU_ROUNDS];
  for (int r = 0; r < CPU_ROUNDS; ++r) {
    carry_stream_reset(stream);
    ns[r] = time_samples(stream, in, out, n);
  }
  qsort(ns, CPU_ROUNDS, sizeof(double), compare_doubles);
  cpu->ns_per_sample = ns[CPU_ROUNDS / 2];
  cpu->percent = cpu->ns_per_sample * CPU_RATE / 1e9 * 100.0;
  cpu->n_rounds = CPU_ROUNDS;
  cpu->seconds_per_round = (double)n / CPU_RATE;
}

static int measure_cpu(const carry_model *model, cpu_share *cpu)
{
  const size_t n_max = (size_t)(CPU_SECONDS * CPU_RATE);
  float *in = malloc(n_max * sizeof(float));
  float *out = malloc(n_max * sizeof(float));
  carry_error err = {CARRY_SUCCESS, ""};
  carry_stream *stream = carry_stream_create(model, CPU_BLOCK, &err);
  int status = CLI_EXIT_OK;
  if (!stream) {
    status = cli_error(CLI_EXIT_FAILED, "cannot run the model: %s",
                       err.message);
  } else if (!in || !out || !guitar_render(in, n_max, CPU_RATE, 1)) {
    status = cli_error(CLI_EXIT_FAILED, "out of memory");
  } else {
    cpu->kernels = carry_stream_kernels(stream);
    time_rounds(stream, in, out, n_max, cpu);
  }
  carry_stream_free(stream);
  free(in);
  free(out);
  return status;
}

/* ------------------------------------------------------------------------ */
/* Names */

static const char *format_id(carry_format format)
{
  switch (format) {
  case CARRY_FORMAT_NONE: return "none";
  case CARRY_FORMAT_KERAS: return "keras";
  case CARRY_FORMAT_PYTORCH: return "pytorch";
  case CARRY_FORMAT_NAM: return "nam";
  }
  return "unknown";
}

static const char *layer_id(carry_layer_type type)
{
  switch (type) {
  case CARRY_LAYER_DENSE: return "dense";
  case CARRY_LAYER_LSTM: return "lstm";
  case CARRY_LAYER_GRU: return "gru";
  case CARRY_LAYER_ACTIVATION: return "activation";
  }
  return "unknown";
}

static const char *activation_id(carry_activation activation)
{
  switch (activation) {
  case CARRY_ACT_LINEAR: return "linear";
  case CARRY_ACT_TANH: return "tanh";
  case CARRY_ACT_RELU: return "relu";
  case CARRY_ACT_SIGMOID: return "sigmoid";
  case CARRY_ACT_ELU: return "elu";
  case CARRY_ACT_SOFTMAX: return "softmax";
  }
  return "unknown";
}

/** "dense 1", "dense 8 (tanh)", "dense 1 (tanh, no bias)". */
static void describe_dense(const carry_layer_spec *layer, char *text,
                           size_t size)
{
  const char *activation =
    layer->activation ? activation_id(layer->activation) : NULL;
  const char *bias = layer->omits_bias ? "no bias" : NULL;
  if (activation && bias) {
    snprintf(text, size, "dense %d (%s, %s)", layer->n_units, activation,
             bias);
  } else if (activation || bias) {
    snprintf(text, size, "dense %d (%s)", layer->n_units,
             activation ? activation : bias);
  } else {
    snprintf(text, size, "dense %d", layer->n_units);
  }
}

/** "LSTM 32", "GRU 16", "dense 8 (tanh)", "tanh". */
static void describe_layer(const carry_layer_spec *layer, char *text,
                           size_t size)
{
  switch (layer->type) {
  case CARRY_LAYER_LSTM: snprintf(text, size, "LSTM %d", layer->n_units); break;
  case CARRY_LAYER_GRU: snprintf(text, size, "GRU %d", layer->n_units); break;
  case CARRY_LAYER_DENSE: describe_dense(layer, text, size); break;
  case CARRY_LAYER_ACTIVATION:
    snprintf(text, size, "%s", activation_id(layer->activation));
    break;
  }
}

/* ------------------------------------------------------------------------ */
/* Text */

/** Prints a label and a value from a file, with control characters (which
    could drive the terminal) shown as '?'. */
static void print_clean(const char *label, const char *value)
{
  printf("%-15s ", label);
  for (const char *c = value; *c; ++c) {
    const unsigned char byte = (unsigned char)*c;
    putchar(byte < 0x20u || byte == 0x7fu ? '?' : *c);
  }
  putchar('\n');
}

static void print_layers(const carry_model_spec *spec)
{
  char text[TEXT_SIZE] = "";
  for (int l = 0; l < spec->n_layers; ++l) {
    char layer[64];
    describe_layer(&spec->layers[l], layer, sizeof(layer));
    const size_t used = strlen(text);
    snprintf(text + used, sizeof(text) - used, "%s%s", l ? " \u2192 " : "",
             layer);
  }
  printf("%-15s %s\n", "layers:", text);
}

static void print_knobs(const carry_model_spec *spec)
{
  const int n_knobs = spec->n_inputs - 1;
  if (n_knobs) {
    printf("%-15s %d (audio and %d knob%s)\n", "inputs:", spec->n_inputs,
           n_knobs, n_knobs == 1 ? "" : "s");
  } else {
    printf("%-15s 1 (audio)\n", "inputs:");
  }
  for (int k = 0; k < n_knobs; ++k) {
    const carry_knob *knob = &spec->knobs[k];
    char label[CARRY_NAME_SIZE + 32], line[CARRY_NAME_SIZE + 128];
    snprintf(label, sizeof(label), "knob %d", k + 1);
    snprintf(line, sizeof(line), "%s [%g, %g], default %g",
             knob->name[0] ? knob->name : label, (double)knob->min,
             (double)knob->max, (double)knob->value);
    print_clean(k ? "" : "knobs:", line);
  }
}

static void print_levels(const carry_model_spec *spec,
                         const carry_model *model)
{
  printf("%-15s %s\n", "skip:", spec->has_skip ? "yes (output += input)"
                                                : "no");
  printf("%-15s in %+g dB, out %+g dB\n", "gains:",
         (double)spec->in_gain_db, (double)spec->out_gain_db);
  if (spec->sample_rate > 0.0) {
    printf("%-15s %g Hz\n", "sample rate:", spec->sample_rate);
  } else {
    printf("%-15s unknown\n", "sample rate:");
  }
  printf("%-15s %.2f dB (%s)\n", "loudness:", (double)spec->loudness_db,
         spec->is_loudness_measured ? "measured by Carry" : "from the file");
  printf("%-15s %+.2f dB (to %g dB)\n", "normalizing:",
         (double)carry_model_normalize_gain_db(model),
         (double)CARRY_NORMALIZED_LOUDNESS_DB);
}

static void print_highlights(const model_highlights *h)
{
  if (h->author[0]) {
    print_clean("author:", h->author);
  }
  if (h->gear[0]) {
    print_clean("gear:", h->gear);
  }
  if (h->has_input_level) {
    printf("%-15s %g dBu at 0 dBFS\n", "input level:", h->input_level_dbu);
  }
  if (h->has_output_level) {
    printf("%-15s %g dBu at 0 dBFS\n", "output level:", h->output_level_dbu);
  }
}

static void print_bytes(const char *label, size_t bytes, const char *note)
{
  printf("  %-13s %9zu bytes %8.1f KiB  %s\n", label, bytes,
         (double)bytes / 1024.0, note);
}

static void print_memory(const model_report *r)
{
  const carry_plugin_memory *m = &r->memory;
  printf("%-15s one %s plugin instance, host blocks up to %u samples "
         "(the same at any)\n", "memory:", r->n_channels == 1 ? "mono"
                                                               : "stereo",
         (unsigned)r->max_block);
  print_bytes("weights", m->weights, "the model, once per instance");
  print_bytes("state", m->state, "h and c, and their reset copy, every channel");
  char note[80];
  snprintf(note, sizeof(note), "stream buffers for chunks of %d samples, "
           "every channel", CARRY_CHUNK_SIZE);
  print_bytes("scratch", m->scratch, note);
  print_bytes("plugin", m->instance + m->engine, "dry delay lines, a grid "
                                                 "cell's scratch, paths");
  print_bytes("total", m->total, "one model loaded");
  print_bytes("changing", m->total_changing, "while a new model fades in "
                                             "over it (two engines)");
}

static void print_text(const model_report *r)
{
  const carry_model_spec *spec = carry_model_get_spec(r->model);
  print_clean("file:", r->path);
  print_clean("name:", spec->name);
  printf("%-15s %s\n", "format:", carry_format_name(spec->format));
  print_layers(spec);
  print_knobs(spec);
  print_levels(spec, r->model);
  print_highlights(&r->highlights);
  printf("%-15s %s\n", "initial state:", r->has_stored_state ? "stored"
                                                              : "zero");
  printf("%-15s %zu per sample\n", "multiply-adds:",
         carry_model_macs(r->model));
  printf("%-15s %zu\n", "weights:", carry_model_n_weights(r->model));
  printf("%-15s %.3g%% of one core in real time at 48 kHz (%.1f ns/sample, "
         "%s kernels, median of %d rounds)\n", "CPU:", r->cpu.percent,
         r->cpu.ns_per_sample, carry_kernels_name(r->cpu.kernels),
         r->cpu.n_rounds);
  print_memory(r);
}

/* ------------------------------------------------------------------------ */
/* JSON */

/** A float as the shortest decimal that reads back to it, so that 0.1f
    prints as 0.1 and not 0.100000001. */
static json_t *json_float(float value)
{
  char text[32];
  for (int digits = 1; digits <= 9; ++digits) {
    snprintf(text, sizeof(text), "%.*g", digits, (double)value);
    if (strtof(text, NULL) == value) {
      break;
    }
  }
  return json_real(strtod(text, NULL));
}

/** A measurement rounded to `digits` significant digits. */
static json_t *json_rounded(double value, int digits)
{
  char text[32];
  snprintf(text, sizeof(text), "%.*g", digits, value);
  return json_real(strtod(text, NULL));
}

/** A string for JSON; a file name that is not UTF-8 keeps its ASCII and
    shows other bytes as '?', so that the key is never missing. */
static json_t *json_text(const char *text)
{
  json_t *string = json_string(text);
  if (string) {
    return string;
  }
  char ascii[TEXT_SIZE];
  size_t k = 0;
  for (; text[k] && k + 1 < sizeof(ascii); ++k) {
    ascii[k] = (unsigned char)text[k] < 0x80u ? text[k] : '?';
  }
  ascii[k] = '\0';
  return json_string(ascii);
}

static json_t *json_text_or_null(const char *text)
{
  return text[0] ? json_text(text) : json_null();
}

static json_t *layers_json(const carry_model_spec *spec)
{
  json_t *layers = json_array();
  for (int l = 0; l < spec->n_layers; ++l) {
    const carry_layer_spec *layer = &spec->layers[l];
    json_t *entry = json_object();
    json_object_set_new(entry, "type", json_string(layer_id(layer->type)));
    if (layer->type != CARRY_LAYER_ACTIVATION) {
      json_object_set_new(entry, "units", json_integer(layer->n_units));
    }
    if (layer->type == CARRY_LAYER_DENSE ||
        layer->type == CARRY_LAYER_ACTIVATION) {
      json_object_set_new(entry, "activation",
                          json_string(activation_id(layer->activation)));
    }
    if (layer->type == CARRY_LAYER_DENSE) {
      json_object_set_new(entry, "bias", json_boolean(!layer->omits_bias));
    }
    json_array_append_new(layers, entry);
  }
  return layers;
}

static json_t *knobs_json(const carry_model_spec *spec)
{
  json_t *knobs = json_array();
  for (int k = 0; k + 1 < spec->n_inputs; ++k) {
    const carry_knob *knob = &spec->knobs[k];
    json_t *entry = json_object();
    json_object_set_new(entry, "name", json_text(knob->name));
    json_object_set_new(entry, "min", json_float(knob->min));
    json_object_set_new(entry, "max", json_float(knob->max));
    json_object_set_new(entry, "default", json_float(knob->value));
    json_array_append_new(knobs, entry);
  }
  return knobs;
}

static void add_description(json_t *o, const model_report *r)
{
  const carry_model_spec *spec = carry_model_get_spec(r->model);
  json_object_set_new(o, "file", json_text(r->path));
  json_object_set_new(o, "name", json_text(spec->name));
  json_object_set_new(o, "format", json_string(format_id(spec->format)));
  json_object_set_new(o, "format_name",
                      json_string(carry_format_name(spec->format)));
  json_object_set_new(o, "layers", layers_json(spec));
  json_object_set_new(o, "inputs", json_integer(spec->n_inputs));
  json_object_set_new(o, "knobs", knobs_json(spec));
  json_object_set_new(o, "skip", json_boolean(spec->has_skip));
  json_object_set_new(o, "in_gain_db", json_float(spec->in_gain_db));
  json_object_set_new(o, "out_gain_db", json_float(spec->out_gain_db));
  json_object_set_new(o, "sample_rate", spec->sample_rate > 0.0
                                          ? json_real(spec->sample_rate)
                                          : json_null());
}

static void add_levels(json_t *o, const model_report *r)
{
  const carry_model_spec *spec = carry_model_get_spec(r->model);
  const model_highlights *h = &r->highlights;
  json_object_set_new(o, "loudness_db", json_float(spec->loudness_db));
  json_object_set_new(o, "loudness_source",
                      json_string(spec->is_loudness_measured ? "measured"
                                                             : "file"));
  json_object_set_new(o, "normalize_gain_db",
                      json_float(carry_model_normalize_gain_db(r->model)));
  json_object_set_new(o, "author", json_text_or_null(h->author));
  json_object_set_new(o, "gear", json_text_or_null(h->gear));
  json_object_set_new(o, "input_level_dbu",
                      h->has_input_level ? json_real(h->input_level_dbu)
                                         : json_null());
  json_object_set_new(o, "output_level_dbu",
                      h->has_output_level ? json_real(h->output_level_dbu)
                                          : json_null());
}

static void add_costs(json_t *o, const model_report *r)
{
  json_object_set_new(o, "initial_state",
                      json_string(r->has_stored_state ? "stored" : "zero"));
  json_object_set_new(o, "macs_per_sample",
                      json_integer((json_int_t)carry_model_macs(r->model)));
  json_object_set_new(o, "weights", json_integer((json_int_t)
                                      carry_model_n_weights(r->model)));
  json_object_set_new(o, "kernels",
                      json_string(carry_kernels_name(r->cpu.kernels)));
  json_object_set_new(o, "ns_per_sample",
                      json_rounded(r->cpu.ns_per_sample, 4));
  json_object_set_new(o, "cpu_percent", json_rounded(r->cpu.percent, 4));
  json_object_set_new(o, "cpu_rounds", json_integer(r->cpu.n_rounds));
  json_object_set_new(o, "cpu_seconds_per_round",
                      json_rounded(r->cpu.seconds_per_round, 4));
  const carry_plugin_memory *m = &r->memory;
  json_t *memory = json_object();
  json_object_set_new(memory, "max_block", json_integer(r->max_block));
  json_object_set_new(memory, "channels", json_integer(r->n_channels));
  json_object_set_new(memory, "weights", json_integer((json_int_t)m->weights));
  json_object_set_new(memory, "state", json_integer((json_int_t)m->state));
  json_object_set_new(memory, "scratch", json_integer((json_int_t)m->scratch));
  json_object_set_new(memory, "plugin_instance",
                      json_integer((json_int_t)m->instance));
  json_object_set_new(memory, "plugin_engine",
                      json_integer((json_int_t)m->engine));
  json_object_set_new(memory, "total", json_integer((json_int_t)m->total));
  json_object_set_new(memory, "total_changing",
                      json_integer((json_int_t)m->total_changing));
  json_object_set_new(o, "memory", memory);
}

static int print_json(const model_report *r)
{
  json_t *o = json_object();
  add_description(o, r);
  add_levels(o, r);
  add_costs(o, r);
  char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
                               JSON_REAL_PRECISION(15));
  json_decref(o);
  if (!text) {
    return cli_error(CLI_EXIT_FAILED, "out of memory");
  }
  printf("%s\n", text);
  free(text);
  return CLI_EXIT_OK;
}

/* ------------------------------------------------------------------------ */

/** Measures the loudness where the file states none, then the speed. */
static int gather(carry_model *model, model_report *report)
{
  carry_error err = {CARRY_SUCCESS, ""};
  if (carry_model_measure_loudness(model, &err) != CARRY_SUCCESS) {
    return cli_error(CLI_EXIT_FAILED, "cannot measure the loudness: %s",
                     err.message);
  }
  report->model = model;
  read_highlights(model, &report->highlights);
  report->has_stored_state = has_stored_state(model);
  report->memory = carry_plugin_memory_of(model, report->n_channels);
  return measure_cpu(model, &report->cpu);
}

int carry_model_info_command(int argc, char **argv)
{
  info_args args;
  int status = parse_args(argc, argv, &args);
  if (status >= 0) {
    return status;
  }
  carry_model *model = NULL;
  model_report report;
  memset(&report, 0, sizeof(report));
  report.path = args.path;
  report.max_block = args.max_block;
  report.n_channels = args.n_channels;
  status = cli_load_model(args.path, &model);
  if (status == CLI_EXIT_OK) {
    status = gather(model, &report);
  }
  if (status == CLI_EXIT_OK && args.is_json) {
    status = print_json(&report);
  } else if (status == CLI_EXIT_OK) {
    print_text(&report);
  }
  carry_model_free(model);
  return status;
}
