/*
  carry process: runs a model over an audio file, one stream per channel,
  and writes the result in the input's format.
*/

#include "carry.h"
#include "cli.h"

#include <float.h>
#include <getopt.h>
#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
} process_args;

/** Everything a run holds, so that one function can free it all. */
typedef struct process_job {
  carry_model *model;
  carry_stream **streams;          ///< (C) one per channel
  int n_channels;                  ///< C
  SNDFILE *in;
  SNDFILE *out;
  SF_INFO in_info;
  SF_INFO out_info;
  cli_output output;
  bool counts_clipping;            ///< Integer output: libsndfile clips
  float *frames;                   ///< (T, C) interleaved
  float *channel;                  ///< (T) one channel, processed in place
  float knobs[CARRY_MAX_KNOBS];    ///< (N - 1) conditioning values
  float normalize_gain_db;         ///< Added to the output gain
} process_job;

/** What the closing report says. */
typedef struct process_totals {
  sf_count_t n_frames;
  float peak;
  size_t n_clipped;
  double seconds_spent;
} process_totals;

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
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
  };
  memset(args, 0, sizeof(*args));
  args->block = DEFAULT_BLOCK;
  int option, status = -1;
  while (status < 0 &&
         (option = getopt_long(argc, argv, "m:p:b:h", options, NULL)) != -1) {
    switch (option) {
    case 'm': args->model_path = optarg; break;
    case 'p': status = add_param(args, optarg); break;
    case 'b': status = parse_block(optarg, &args->block); break;
    case 'S': args->is_unsettled = true; break;
    case 'N': args->is_normalized = true; break;
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

static int open_input(process_job *job, const char *path)
{
  job->in = sf_open(path, SFM_READ, &job->in_info);
  if (!job->in) {
    return cli_error(CLI_EXIT_FILE, "cannot read audio file '%s': %s", path,
                     sf_strerror(NULL));
  }
  job->n_channels = job->in_info.channels;
  return CLI_EXIT_OK;
}

static void check_sample_rate(const process_job *job, const char *in_path)
{
  const double model_rate = carry_model_get_spec(job->model)->sample_rate;
  if (model_rate > 0.0 && fabs(model_rate - job->in_info.samplerate) > 0.5) {
    cli_warn("'%s' is at %d Hz but the model was made for %g Hz; processing "
             "without resampling", in_path, job->in_info.samplerate,
             model_rate);
  }
}

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
  for (int c = 0; c < job->n_channels; ++c) {
    carry_stream_settle(job->streams[c], has_knobs ? job->knobs : NULL,
                        CARRY_SETTLE_SAMPLES);
  }
}

static int create_streams(process_job *job, uint32_t block)
{
  const size_t n_values = (size_t)block * (size_t)job->n_channels;
  job->streams = calloc((size_t)job->n_channels, sizeof(*job->streams));
  job->frames = malloc(n_values * sizeof(float));
  job->channel = malloc((size_t)block * sizeof(float));
  if (!job->streams || !job->frames || !job->channel) {
    return cli_error(CLI_EXIT_FAILED, "out of memory for %d channels of "
                     "%u frames", job->n_channels, block);
  }
  for (int c = 0; c < job->n_channels; ++c) {
    carry_error err = {CARRY_SUCCESS, ""};
    job->streams[c] = carry_stream_create(job->model, block, &err);
    if (!job->streams[c]) {
      return cli_error(CLI_EXIT_FAILED, "cannot run the model: %s",
                       err.message);
    }
  }
  return CLI_EXIT_OK;
}

/* ------------------------------------------------------------------------ */
/* The output format */

static const char *format_name(int format)
{
  SF_FORMAT_INFO info = {format, NULL, NULL};
  if (sf_command(NULL, SFC_GET_FORMAT_INFO, &info, sizeof(info)) != 0 ||
      !info.name) {
    return "unknown";
  }
  return info.name;
}

static bool is_float_subtype(int format)
{
  const int subtype = format & SF_FORMAT_SUBMASK;
  return subtype == SF_FORMAT_FLOAT || subtype == SF_FORMAT_DOUBLE ||
         subtype == SF_FORMAT_VORBIS || subtype == SF_FORMAT_OPUS ||
         subtype == SF_FORMAT_MPEG_LAYER_I ||
         subtype == SF_FORMAT_MPEG_LAYER_II ||
         subtype == SF_FORMAT_MPEG_LAYER_III;
}

/** The input's format if libsndfile writes it, else WAV with the same
    sample type, else float WAV; says so when it differs. */
static void choose_output_format(process_job *job)
{
  const int format = job->in_info.format;
  SF_INFO *out = &job->out_info;
  memset(out, 0, sizeof(*out));
  out->samplerate = job->in_info.samplerate;
  out->channels = job->in_info.channels;
  out->format = format;
  if (sf_format_check(out)) {
    return;
  }
  const int subtype = format & SF_FORMAT_SUBMASK;
  out->format = SF_FORMAT_WAV | subtype;
  if (sf_format_check(out)) {
    cli_warn("libsndfile cannot write %s files; writing WAV (%s) instead",
             format_name(format & SF_FORMAT_TYPEMASK), format_name(subtype));
    return;
  }
  out->format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;
  cli_warn("libsndfile cannot write %s (%s) files; writing 32-bit float WAV "
           "instead", format_name(format & SF_FORMAT_TYPEMASK),
           format_name(subtype));
}

static int open_output(process_job *job, const char *path)
{
  choose_output_format(job);
  const int status = cli_output_open(&job->output, path);
  if (status != CLI_EXIT_OK) {
    return status;
  }
  job->out = sf_open(job->output.temp_path, SFM_WRITE, &job->out_info);
  if (!job->out) {
    return cli_error(CLI_EXIT_FILE, "cannot write '%s': %s", path,
                     sf_strerror(NULL));
  }
  /* No PEAK chunk: it holds a time stamp, and equal audio should give
     equal files. */
  sf_command(job->out, SFC_SET_ADD_PEAK_CHUNK, NULL, SF_FALSE);
  job->counts_clipping = !is_float_subtype(job->out_info.format);
  if (job->counts_clipping) {
    sf_command(job->out, SFC_SET_CLIPPING, NULL, SF_TRUE);
  }
  return CLI_EXIT_OK;
}

static int set_up(process_job *job, const process_args *args)
{
  int status = open_input(job, args->in_path);
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
    check_sample_rate(job, args->in_path);
    status = create_streams(job, args->block);
  }
  if (status == CLI_EXIT_OK && !args->is_unsettled) {
    settle_streams(job);
  }
  if (status == CLI_EXIT_OK) {
    status = open_output(job, args->out_path);
  }
  return status;
}

/* ------------------------------------------------------------------------ */
/* Processing */

static double now_seconds(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/** Runs channel `c` of the T interleaved frames through its stream. */
static void process_channel(process_job *job, int c, uint32_t n_frames)
{
  const int n_channels = job->n_channels;
  const bool has_knobs = carry_model_get_spec(job->model)->n_inputs > 1;
  for (uint32_t t = 0; t < n_frames; ++t) {
    job->channel[t] = job->frames[(size_t)t * n_channels + c];
  }
  carry_stream_process(job->streams[c], job->channel,
                       has_knobs ? job->knobs : NULL, job->channel, n_frames);
  for (uint32_t t = 0; t < n_frames; ++t) {
    job->frames[(size_t)t * n_channels + c] = job->channel[t];
  }
}

static void measure(const process_job *job, size_t n_values,
                    process_totals *totals)
{
  for (size_t k = 0; k < n_values; ++k) {
    const float magnitude = fabsf(job->frames[k]);
    totals->peak = magnitude > totals->peak ? magnitude : totals->peak;
    totals->n_clipped += magnitude > 1.0f;
  }
}

static int process_block(process_job *job, uint32_t n_frames,
                         process_totals *totals, const char *out_path)
{
  for (int c = 0; c < job->n_channels; ++c) {
    process_channel(job, c, n_frames);
  }
  measure(job, (size_t)n_frames * (size_t)job->n_channels, totals);
  if (sf_writef_float(job->out, job->frames, n_frames) != n_frames) {
    return cli_error(CLI_EXIT_FILE, "cannot write '%s': %s", out_path,
                     sf_strerror(job->out));
  }
  totals->n_frames += n_frames;
  return CLI_EXIT_OK;
}

static int process_file(process_job *job, const process_args *args,
                        process_totals *totals)
{
  const double start = now_seconds();
  for (;;) {
    if (cli_interrupted()) {
      return cli_error(CLI_EXIT_FAILED, "interrupted; '%s' not written",
                       args->out_path);
    }
    const sf_count_t n_read = sf_readf_float(job->in, job->frames,
                                             args->block);
    if (n_read <= 0) {
      break;
    }
    const int status = process_block(job, (uint32_t)n_read, totals,
                                     args->out_path);
    if (status != CLI_EXIT_OK) {
      return status;
    }
  }
  if (sf_error(job->in) != SF_ERR_NO_ERROR) {
    return cli_error(CLI_EXIT_FILE, "cannot read '%s': %s", args->in_path,
                     sf_strerror(job->in));
  }
  totals->seconds_spent = now_seconds() - start;
  return CLI_EXIT_OK;
}

/** Closes both files (the output's header is written now) and moves the
    output into place. */
static int finish(process_job *job, const char *out_path)
{
  const int out_error = sf_close(job->out);
  job->out = NULL;
  sf_close(job->in);
  job->in = NULL;
  if (out_error != SF_ERR_NO_ERROR) {
    return cli_error(CLI_EXIT_FILE, "cannot write '%s': %s", out_path,
                     sf_error_number(out_error));
  }
  return cli_output_commit(&job->output);
}

static void report(const process_job *job, const process_args *args,
                   const process_totals *totals)
{
  const double seconds = (double)totals->n_frames / job->in_info.samplerate;
  const double speed = totals->seconds_spent > 0.0
                         ? seconds / totals->seconds_spent : 0.0;
  char peak[32] = "-inf";
  if (totals->peak > 0.0f) {
    snprintf(peak, sizeof(peak), "%.1f", 20.0 * log10(totals->peak));
  }
  char clipped[64] = "";
  if (totals->n_clipped && job->counts_clipping) {
    snprintf(clipped, sizeof(clipped), ", %zu samples clipped",
             totals->n_clipped);
  }
  char normalized[96] = "";
  if (args->is_normalized) {
    const carry_model_spec *spec = carry_model_get_spec(job->model);
    snprintf(normalized, sizeof(normalized), ", normalized by %+.2f dB "
             "(loudness %.2f dB, %s)", (double)job->normalize_gain_db,
             (double)spec->loudness_db,
             spec->is_loudness_measured ? "measured" : "from the file");
  }
  cli_note("%lld frames, %d channel%s, %.3f s in %.3f s (%.1fx real time), "
           "peak %s dBFS%s%s", (long long)totals->n_frames, job->n_channels,
           job->n_channels == 1 ? "" : "s", seconds, totals->seconds_spent,
           speed, peak, clipped, normalized);
}

static void free_job(process_job *job)
{
  if (job->out) {
    sf_close(job->out);
  }
  if (job->in) {
    sf_close(job->in);
  }
  cli_output_discard(&job->output);
  for (int c = 0; job->streams && c < job->n_channels; ++c) {
    carry_stream_free(job->streams[c]);
  }
  free(job->streams);
  free(job->frames);
  free(job->channel);
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
  process_totals totals = {0, 0.0f, 0, 0.0};
  cli_catch_interrupts();
  status = set_up(&job, &args);
  if (status == CLI_EXIT_OK) {
    status = process_file(&job, &args, &totals);
  }
  if (status == CLI_EXIT_OK) {
    status = finish(&job, args.out_path);
  }
  if (status == CLI_EXIT_OK) {
    report(&job, &args, &totals);
  }
  free_job(&job);
  return status;
}
