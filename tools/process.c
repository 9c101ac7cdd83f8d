/*
  carry process: runs a model over an audio file, one stream per channel,
  and writes the result in the input's format.
*/

#include "audio_job.h"
#include "carry.h"
#include "carry_rate.h"
#include "cli.h"

#include <float.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_BLOCK 256
#define MAX_BLOCK 1048576
#define MAX_PARAMS 64

/** The command line, checked for form but not yet against the model. */
typedef struct process_args {
  const char *model_path;
  const char *in_path;
  const char *out_path;
  const char *params[MAX_PARAMS];  ///< "NAME=VALUE" as typed
  int n_params;
  uint32_t block;                  ///< T: frames per read and per call
  bool is_unsettled;               ///< Start from the model's own state
  bool is_normalized;              ///< Bring the output to -18 dB
  carry_rate_mode rate_mode;       ///< How a model of another rate runs
  bool keeps_latency;              ///< Write the delay, as the plugin does
} process_args;

/** Everything a run holds, so that one function can free it all. */
typedef struct process_job {
  carry_model *model;
  carry_rate_stream **streams;     ///< (C) one per channel
  audio_job audio;
  float knobs[CARRY_MAX_KNOBS];    ///< (N - 1) conditioning values
  float normalize_gain_db;         ///< Added to the output gain
} process_job;

/* ------------------------------------------------------------------------ */
/* Arguments */

static void print_help(void)
{
  printf(
    "Usage: carry process --model FILE [OPTION]... IN OUT\n"
    "\n"
    "Runs every channel of the audio file IN through its own stream of the\n"
    "model and writes OUT with IN's sample rate, format and sample type.\n"
    "IN may be any file libsndfile reads; OUT may be the same file.\n"
    "\n"
    "  -m, --model FILE        the model: RTNeural/AIDA-X Keras JSON,\n"
    "                          GuitarML PyTorch JSON or NAM .nam (LSTM)\n"
    "  -p, --param NAME=VALUE  sets a knob, by name (any case) or by 1-based\n"
    "                          index, within the knob's range; repeatable\n"
    "  -b, --block N           frames per processing call, 1..%d\n"
    "                          (default %d); the output does not depend on it\n"
    "      --no-settle         start from the model's initial state instead\n"
    "                          of the state it settles to on silence (which\n"
    "                          is what the plugin starts from)\n"
    "      --normalize         brings the output to %g dB: adds the gain\n"
    "                          from the loudness the file states, or that\n"
    "                          Carry measures (as `carry model info` shows)\n"
    "  -r, --rate-mode MODE    how a model made for another sample rate than\n"
    "                          IN's runs: auto (default: correct for a whole\n"
    "                          multiple of the model's rate, else resample),\n"
    "                          resample (to the model's rate and back),\n"
    "                          correct (the recurrence's state delayed by the\n"
    "                          rate ratio; IN's rate at least the model's),\n"
    "                          off (run as it is)\n"
    "      --keep-latency      writes the resampler's delay as the plugin\n"
    "                          plays it; by default OUT is aligned with IN\n"
    "  -h, --help              shows this help\n"
    "\n"
    "Reports frames, channels, duration, speed, output peak, clipped\n"
    "samples and the normalising gain on stderr.  Exit status: 0 success,\n"
    "1 processing failed, 2 usage error (including an unknown knob or a\n"
    "value out of range), 3 model error, 4 audio file error.\n",
    MAX_BLOCK, DEFAULT_BLOCK, (double)CARRY_NORMALIZED_LOUDNESS_DB);
}

static int parse_block(const char *text, uint32_t *block)
{
  long value = 0;
  if (!cli_parse_long(text, 1, MAX_BLOCK, &value)) {
    return cli_usage_error("--block must be a whole number from 1 to %d, "
                           "not '%s'", MAX_BLOCK, text);
  }
  *block = (uint32_t)value;
  return -1;
}

static int parse_rate_mode(const char *text, carry_rate_mode *mode)
{
  static const char *const names[] = {"auto", "off", "resample", "correct"};
  static const carry_rate_mode modes[] = {CARRY_RATE_AUTO, CARRY_RATE_OFF,
                                          CARRY_RATE_RESAMPLE,
                                          CARRY_RATE_CORRECT};
  for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); ++k) {
    if (!strcmp(text, names[k])) {
      *mode = modes[k];
      return -1;
    }
  }
  return cli_usage_error("--rate-mode must be auto, off, resample or "
                         "correct, not '%s'", text);
}

static int add_param(process_args *args, const char *text)
{
  if (args->n_params == MAX_PARAMS) {
    return cli_usage_error("more than %d --param options", MAX_PARAMS);
  }
  args->params[args->n_params++] = text;
  return -1;
}

static int check_positionals(process_args *args, int n_left, char **left)
{
  if (!args->model_path) {
    return cli_usage_error("missing --model FILE");
  }
  if (n_left < 2) {
    return cli_usage_error(n_left ? "missing output file OUT"
                                  : "missing input file IN and output OUT");
  }
  if (n_left > 2) {
    return cli_usage_error("too many arguments: '%s' after IN and OUT",
                           left[2]);
  }
  args->in_path = left[0];
  args->out_path = left[1];
  return -1;
}

/** Returns -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, process_args *args)
{
  static const struct option options[] = {
    {"model", required_argument, NULL, 'm'},
    {"param", required_argument, NULL, 'p'},
    {"block", required_argument, NULL, 'b'},
    {"no-settle", no_argument, NULL, 'S'},
    {"normalize", no_argument, NULL, 'N'},
    {"rate-mode", required_argument, NULL, 'r'},
    {"keep-latency", no_argument, NULL, 'L'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
  };
  memset(args, 0, sizeof(*args));
  args->block = DEFAULT_BLOCK;
  int option, status = -1;
  while (status < 0 &&
         (option = getopt_long(argc, argv, "m:p:b:r:h", options, NULL)) != -1) {
    switch (option) {
    case 'm': args->model_path = optarg; break;
    case 'p': status = add_param(args, optarg); break;
    case 'b': status = parse_block(optarg, &args->block); break;
    case 'S': args->is_unsettled = true; break;
    case 'N': args->is_normalized = true; break;
    case 'r': status = parse_rate_mode(optarg, &args->rate_mode); break;
    case 'L': args->keeps_latency = true; break;
    case 'h': print_help(); return CLI_EXIT_OK;
    default: return cli_bad_option();
    }
  }
  if (status >= 0) {
    return status;
  }
  return check_positionals(args, argc - optind, argv + optind);
}

/* ------------------------------------------------------------------------ */
/* Knobs */

/** "'asymmetry'", or "(unnamed)" for a knob only its index can set. */
static void knob_label(const carry_model_spec *spec, int index, char *label,
                       size_t size)
{
  const char *name = spec->knobs[index].name;
  snprintf(label, size, name[0] ? "'%s'" : "(unnamed)", name);
}

static int unknown_knob(const carry_model *model, const char *name)
{
  const carry_model_spec *spec = carry_model_get_spec(model);
  const int n_knobs = spec->n_inputs - 1;
  if (n_knobs == 0) {
    return cli_error(CLI_EXIT_USAGE, "unknown knob '%s': the model has no "
                     "knobs", name);
  }
  char list[CARRY_MAX_KNOBS * (CARRY_NAME_SIZE + 48)] = "";
  for (int k = 0; k < n_knobs; ++k) {
    char label[CARRY_NAME_SIZE + 8];
    knob_label(spec, k, label, sizeof(label));
    const size_t used = strlen(list);
    snprintf(list + used, sizeof(list) - used, "%s%d %s [%g, %g]",
             k ? ", " : "", k + 1, label, (double)spec->knobs[k].min,
             (double)spec->knobs[k].max);
  }
  return cli_error(CLI_EXIT_USAGE, "unknown knob '%s'; the model's knobs "
                   "are: %s", name, list);
}

/** The knob a --param names: by name first, then by 1-based index. */
static int find_knob(const carry_model *model, const char *name)
{
  const int index = carry_model_find_knob(model, name);
  long number = 0;
  if (index >= 0 || !cli_parse_long(name, 1, CARRY_MAX_KNOBS, &number)) {
    return index;
  }
  const int n_knobs = carry_model_get_spec(model)->n_inputs - 1;
  return number <= n_knobs ? (int)number - 1 : -1;
}

static int apply_param(const carry_model *model, const char *text,
                       float *knobs)
{
  const char *equals = strrchr(text, '=');
  if (!equals || equals == text) {
    return cli_usage_error("--param '%s' is not NAME=VALUE", text);
  }
  char name[CARRY_NAME_SIZE + 1];
  snprintf(name, sizeof(name), "%.*s", (int)(equals - text), text);
  const int index = find_knob(model, name);
  if (index < 0) {
    return unknown_knob(model, name);
  }
  double value = 0.0;
  if (!cli_parse_double(equals + 1, &value)) {
    return cli_usage_error("--param %s: '%s' is not a number", name,
                           equals + 1);
  }
  const carry_knob *knob = &carry_model_get_spec(model)->knobs[index];
  /* Compared as the float the model will see; the first test keeps the
     conversion defined. */
  if (fabs(value) > FLT_MAX || (float)value < knob->min ||
      (float)value > knob->max) {
    return cli_error(CLI_EXIT_USAGE, "--param %s: %g is outside the knob's "
                     "range [%g, %g]", name, value, (double)knob->min,
                     (double)knob->max);
  }
  knobs[index] = (float)value;
  return CLI_EXIT_OK;
}

static int apply_params(process_job *job, const process_args *args)
{
  const carry_model_spec *spec = carry_model_get_spec(job->model);
  for (int k = 0; k + 1 < spec->n_inputs; ++k) {
    job->knobs[k] = spec->knobs[k].value;
  }
  for (int p = 0; p < args->n_params; ++p) {
    const int status = apply_param(job->model, args->params[p], job->knobs);
    if (status != CLI_EXIT_OK) {
      return status;
    }
  }
  return CLI_EXIT_OK;
}

/* ------------------------------------------------------------------------ */
/* Setting up */

/** --normalize: the gain that brings the model to the common loudness,
    from its file or measured, added to its output gain. */
static int normalize(process_job *job)
{
  carry_error err = {CARRY_SUCCESS, ""};
  if (carry_model_measure_loudness(job->model, &err) != CARRY_SUCCESS) {
    return cli_error(CLI_EXIT_FAILED, "cannot measure the model's loudness: "
                     "%s", err.message);
  }
  carry_model_spec spec = *carry_model_get_spec(job->model);
  job->normalize_gain_db = carry_model_normalize_gain_db(job->model);
  spec.out_gain_db += job->normalize_gain_db;
  if (carry_model_set_info(job->model, &spec, &err) != CARRY_SUCCESS) {
    return cli_error(CLI_EXIT_MODEL, "--normalize: cannot add %+.2f dB to "
                     "the model's loudness of %.2f dB: %s",
                     (double)job->normalize_gain_db,
                     (double)spec.loudness_db, err.message);
  }
  return CLI_EXIT_OK;
}

/** Each stream runs silence until its output settles, as the plugin does
    after loading, so that both start from the same state. */
static void settle_streams(process_job *job)
{
  const bool has_knobs = carry_model_get_spec(job->model)->n_inputs > 1;
  for (int c = 0; c < job->audio.n_channels; ++c) {
    carry_rate_stream_settle(job->streams[c], has_knobs ? job->knobs : NULL,
                             CARRY_SETTLE_SAMPLES);
  }
}

/** A stream per channel at the file's rate, in the rate mode asked for;
    the model's latency there is dropped from the output unless kept. */
static int create_streams(process_job *job, const process_args *args)
{
  const int n_channels = job->audio.n_channels;
  job->streams = calloc((size_t)n_channels, sizeof(*job->streams));
  if (!job->streams) {
    return cli_error(CLI_EXIT_FAILED, "out of memory for %d channels",
                     n_channels);
  }
  const double rate = job->audio.in_info.samplerate;
  for (int c = 0; c < n_channels; ++c) {
    carry_error err = {CARRY_SUCCESS, ""};
    job->streams[c] = carry_rate_stream_create(job->model, rate,
                                               args->rate_mode, args->block,
                                               &err);
    if (!job->streams[c]) {
      return cli_error(err.status == CARRY_ERR_NO_MEMORY ? CLI_EXIT_FAILED
                                                         : CLI_EXIT_USAGE,
                       "cannot run the model on '%s': %s", args->in_path,
                       err.message);
    }
  }
  if (!args->keeps_latency) {
    job->audio.latency = carry_rate_stream_latency(job->streams[0]);
  }
  return audio_job_allocate(&job->audio, args->block);
}

static int set_up(process_job *job, const process_args *args)
{
  int status = audio_job_open_input(&job->audio, args->in_path);
  if (status == CLI_EXIT_OK) {
    status = cli_load_model(args->model_path, &job->model);
  }
  if (status == CLI_EXIT_OK) {
    status = apply_params(job, args);
  }
  if (status == CLI_EXIT_OK && args->is_normalized) {
    status = normalize(job);
  }
  if (status == CLI_EXIT_OK) {
    status = create_streams(job, args);
  }
  if (status == CLI_EXIT_OK && !args->is_unsettled) {
    settle_streams(job);
  }
  if (status == CLI_EXIT_OK) {
    status = audio_job_open_output(&job->audio, args->out_path);
  }
  return status;
}

/* ------------------------------------------------------------------------ */
/* Processing */

/** Runs one channel through its stream (audio_job_channel_fn). */
static void process_channel(void *context, int c, float *samples,
                            uint32_t n)
{
  process_job *job = context;
  const bool has_knobs = carry_model_get_spec(job->model)->n_inputs > 1;
  carry_rate_stream_process(job->streams[c], samples,
                       has_knobs ? job->knobs : NULL, samples, n);
}

static void report(const process_job *job, const process_args *args)
{
  char summary[256];
  audio_job_describe(&job->audio, summary, sizeof(summary));
  char rate[160];
  carry_rate_stream_describe(job->streams[0], rate, sizeof(rate));
  char normalized[96] = "";
  if (args->is_normalized) {
    const carry_model_spec *spec = carry_model_get_spec(job->model);
    snprintf(normalized, sizeof(normalized), ", normalized by %+.2f dB "
             "(loudness %.2f dB, %s)", (double)job->normalize_gain_db,
             (double)spec->loudness_db,
             spec->is_loudness_measured ? "measured" : "from the file");
  }
  cli_note("%s%s; %s%s", summary, normalized, rate,
           job->audio.latency ? " (compensated)" : "");
}

static void free_job(process_job *job)
{
  for (int c = 0; job->streams && c < job->audio.n_channels; ++c) {
    carry_rate_stream_free(job->streams[c]);
  }
  free(job->streams);
  audio_job_free(&job->audio);
  carry_model_free(job->model);
}

int carry_process(int argc, char **argv)
{
  process_args args;
  int status = parse_args(argc, argv, &args);
  if (status >= 0) {
    return status;
  }
  process_job job;
  memset(&job, 0, sizeof(job));
  cli_catch_interrupts();
  status = set_up(&job, &args);
  if (status == CLI_EXIT_OK) {
    status = audio_job_run(&job.audio, process_channel, &job);
  }
  if (status == CLI_EXIT_OK) {
    status = audio_job_finish(&job.audio);
  }
  if (status == CLI_EXIT_OK) {
    report(&job, &args);
  }
  free_job(&job);
  return status;
}
