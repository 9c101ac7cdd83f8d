/*
  carry reference: renders an audio file through one of the reference
  effects (effects/effects.h), one instance per channel, and writes the
  result in the input's format: the targets models are trained on.
*/

#include "cli.h"
#include "effects.h"

#include <getopt.h>
#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BLOCK 4096        ///< T: frames per read
#define MAX_PARAMS 64

/** The command line, checked for form and against the effect's knobs. */
typedef struct reference_args {
  const char *effect_name;
  const char *params[MAX_PARAMS];  ///< "NAME=VALUE" as typed
  int n_params;
  const char *in_path;
  const char *out_path;
} reference_args;

/** Everything a run holds, so that one function can free it all. */
typedef struct reference_job {
  effect **effects;       ///< (C) one per channel
  int n_channels;         ///< C
  SNDFILE *in;
  SNDFILE *out;
  SF_INFO in_info;
  SF_INFO out_info;
  cli_output output;
  bool counts_clipping;   ///< Integer output: libsndfile clips
  float *frames;          ///< (T, C) interleaved
  float *channel;         ///< (T) one channel, processed in place
  sf_count_t n_frames;    ///< Written so far
  float peak;             ///< Of the output so far
  size_t n_clipped;       ///< Output samples beyond full scale
} reference_job;

/* ------------------------------------------------------------------------ */
/* Arguments */

static void print_help(void)
{
  printf(
    "Usage: carry reference --effect NAME [--param NAME=VALUE]... IN OUT\n"
    "       carry reference --list\n"
    "\n"
    "Runs every channel of the audio file IN through its own instance of\n"
    "a reference effect, a circuit model that makes training targets, and\n"
    "writes OUT with IN's sample rate, format and sample type.  IN may be\n"
    "any file libsndfile reads, at %g to %g Hz; OUT may be the same file.\n"
    "The effects add no latency and give the same output for the same\n"
    "input, bit for bit.\n"
    "\n"
    "  -e, --effect NAME       diode_clipper, overdrive, fuzz or preamp\n"
    "  -p, --param NAME=VALUE  sets a knob of the effect within its range\n"
    "                          (all are 0..1); repeatable\n"
    "  -l, --list              lists the effects with their knobs, ranges\n"
    "                          and defaults\n"
    "  -h, --help              shows this help\n"
    "\n"
    "Reports frames, channels, duration, speed, output peak and clipped\n"
    "samples on stderr.  Exit status: 0 success, 1 processing failed,\n"
    "2 usage error (including an unknown effect or knob, or a value out of\n"
    "range), 4 audio file error.\n",
    EFFECT_MIN_RATE, EFFECT_MAX_RATE);
}

static void print_list(void)
{
  for (int k = 0; k < effect_count(); ++k) {
    const effect_info *info = effect_info_at(k);
    printf("%s%s\n  %s\n", k ? "\n" : "", info->name, info->summary);
    for (int p = 0; p < info->n_params; ++p) {
      const effect_param *param = &info->params[p];
      printf("  --param %s=%g..%g (default %g): %s\n", param->name,
             param->min, param->max, param->value, param->description);
    }
  }
}

static int add_param(reference_args *args, const char *text)
{
  if (args->n_params == MAX_PARAMS) {
    return cli_usage_error("more than %d --param options", MAX_PARAMS);
  }
  args->params[args->n_params++] = text;
  return -1;
}

static int check_positionals(reference_args *args, int n_left, char **left)
{
  if (!args->effect_name) {
    return cli_usage_error("missing --effect NAME (--list shows them)");
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
static int parse_args(int argc, char **argv, reference_args *args)
{
  static const struct option options[] = {
    {"effect", required_argument, NULL, 'e'},
    {"param", required_argument, NULL, 'p'},
    {"list", no_argument, NULL, 'l'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
  };
  memset(args, 0, sizeof(*args));
  int option, status = -1;
  while (status < 0 &&
         (option = getopt_long(argc, argv, "e:p:lh", options, NULL)) != -1) {
    switch (option) {
    case 'e': args->effect_name = optarg; break;
    case 'p': status = add_param(args, optarg); break;
    case 'l': print_list(); return CLI_EXIT_OK;
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
/* The effect and its knobs */

static int check_effect(const char *name)
{
  if (effect_find(name)) {
    return CLI_EXIT_OK;
  }
  char names[128] = "";
  for (int k = 0; k < effect_count(); ++k) {
    const size_t used = strlen(names);
    snprintf(names + used, sizeof(names) - used, "%s%s", k ? ", " : "",
             effect_info_at(k)->name);
  }
  return cli_usage_error("unknown effect '%s'; the effects are: %s", name,
                         names);
}

/** Applies one "NAME=VALUE" to `fx`. */
static int apply_param(effect *fx, const char *text)
{
  const char *equals = strrchr(text, '=');
  if (!equals || equals == text) {
    return cli_usage_error("--param '%s' is not NAME=VALUE", text);
  }
  char name[64];
  snprintf(name, sizeof(name), "%.*s", (int)(equals - text), text);
  double value = 0.0;
  if (effect_find_param(effect_get_info(fx), name) >= 0 &&
      !cli_parse_double(equals + 1, &value)) {
    return cli_usage_error("--param %s: '%s' is not a number", name,
                           equals + 1);
  }
  effect_error err = {EFFECT_SUCCESS, ""};
  if (effect_set_param(fx, name, value, &err) != EFFECT_SUCCESS) {
    return cli_error(CLI_EXIT_USAGE, "--param %s: %s", text, err.message);
  }
  return CLI_EXIT_OK;
}

/** Checks the knobs on an effect made for the purpose, before any file is
    touched; the channels' effects get them again in create_effects. */
static int check_params(const reference_args *args)
{
  effect *probe = effect_create(args->effect_name, 48000.0, NULL);
  if (!probe) {
    return cli_error(CLI_EXIT_FAILED, "out of memory");
  }
  int status = CLI_EXIT_OK;
  for (int p = 0; status == CLI_EXIT_OK && p < args->n_params; ++p) {
    status = apply_param(probe, args->params[p]);
  }
  effect_free(probe);
  return status;
}

/* ------------------------------------------------------------------------ */
/* Setting up */

static int open_input(reference_job *job, const char *path)
{
  job->in = sf_open(path, SFM_READ, &job->in_info);
  if (!job->in) {
    return cli_error(CLI_EXIT_FILE, "cannot read audio file '%s': %s", path,
                     sf_strerror(NULL));
  }
  job->n_channels = job->in_info.channels;
  return CLI_EXIT_OK;
}

static int create_effects(reference_job *job, const reference_args *args)
{
  job->effects = calloc((size_t)job->n_channels, sizeof(*job->effects));
  job->frames = malloc((size_t)BLOCK * (size_t)job->n_channels *
                       sizeof(float));
  job->channel = malloc((size_t)BLOCK * sizeof(float));
  if (!job->effects || !job->frames || !job->channel) {
    return cli_error(CLI_EXIT_FAILED, "out of memory for %d channels",
                     job->n_channels);
  }
  const double rate = job->in_info.samplerate;
  for (int c = 0; c < job->n_channels; ++c) {
    effect_error err = {EFFECT_SUCCESS, ""};
    job->effects[c] = effect_create(args->effect_name, rate, &err);
    if (!job->effects[c]) {
      return cli_error(err.status == EFFECT_ERR_RATE ? CLI_EXIT_FILE
                                                     : CLI_EXIT_FAILED,
                       "'%s': %s", args->in_path, err.message);
    }
    for (int p = 0; p < args->n_params; ++p) {
      apply_param(job->effects[c], args->params[p]);  // checked before
    }
  }
  return CLI_EXIT_OK;
}

/* ------------------------------------------------------------------------ */
/* The output format (as carry process chooses it) */

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
static void choose_output_format(reference_job *job)
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

static int open_output(reference_job *job, const char *path)
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

static int set_up(reference_job *job, const reference_args *args)
{
  int status = check_effect(args->effect_name);
  if (status == CLI_EXIT_OK) {
    status = check_params(args);
  }
  if (status == CLI_EXIT_OK) {
    status = open_input(job, args->in_path);
  }
  if (status == CLI_EXIT_OK) {
    status = create_effects(job, args);
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

/** Runs channel `c` of the interleaved frames through its effect. */
static void process_channel(reference_job *job, int c, size_t n_frames)
{
  const size_t n_channels = (size_t)job->n_channels;
  for (size_t t = 0; t < n_frames; ++t) {
    job->channel[t] = job->frames[t * n_channels + (size_t)c];
  }
  effect_process(job->effects[c], job->channel, job->channel, n_frames);
  for (size_t t = 0; t < n_frames; ++t) {
    job->frames[t * n_channels + (size_t)c] = job->channel[t];
  }
}

static void measure(reference_job *job, size_t n_values)
{
  for (size_t k = 0; k < n_values; ++k) {
    const float magnitude = fabsf(job->frames[k]);
    job->peak = magnitude > job->peak ? magnitude : job->peak;
    job->n_clipped += magnitude > 1.0f;
  }
}

static int process_block(reference_job *job, sf_count_t n_frames,
                         const char *out_path)
{
  for (int c = 0; c < job->n_channels; ++c) {
    process_channel(job, c, (size_t)n_frames);
  }
  measure(job, (size_t)n_frames * (size_t)job->n_channels);
  if (sf_writef_float(job->out, job->frames, n_frames) != n_frames) {
    return cli_error(CLI_EXIT_FILE, "cannot write '%s': %s", out_path,
                     sf_strerror(job->out));
  }
  job->n_frames += n_frames;
  return CLI_EXIT_OK;
}

static int process_file(reference_job *job, const reference_args *args)
{
  for (;;) {
    if (cli_interrupted()) {
      return cli_error(CLI_EXIT_FAILED, "interrupted; '%s' not written",
                       args->out_path);
    }
    const sf_count_t n_read = sf_readf_float(job->in, job->frames, BLOCK);
    if (n_read <= 0) {
      break;
    }
    const int status = process_block(job, n_read, args->out_path);
    if (status != CLI_EXIT_OK) {
      return status;
    }
  }
  if (sf_error(job->in) != SF_ERR_NO_ERROR) {
    return cli_error(CLI_EXIT_FILE, "cannot read '%s': %s", args->in_path,
                     sf_strerror(job->in));
  }
  return CLI_EXIT_OK;
}

/** Closes both files (the output's header is written now) and moves the
    output into place. */
static int finish(reference_job *job, const char *out_path)
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

static void report(const reference_job *job, const char *effect_name,
                   double seconds_spent)
{
  const double seconds = (double)job->n_frames / job->in_info.samplerate;
  const double speed = seconds_spent > 0.0 ? seconds / seconds_spent : 0.0;
  char peak[32] = "-inf";
  if (job->peak > 0.0f) {
    snprintf(peak, sizeof(peak), "%.1f", 20.0 * log10(job->peak));
  }
  char clipped[64] = "";
  if (job->n_clipped && job->counts_clipping) {
    snprintf(clipped, sizeof(clipped), ", %zu samples clipped",
             job->n_clipped);
  }
  cli_note("%s: %lld frames, %d channel%s, %.3f s in %.3f s (%.1fx real "
           "time), peak %s dBFS%s", effect_name, (long long)job->n_frames,
           job->n_channels, job->n_channels == 1 ? "" : "s", seconds,
           seconds_spent, speed, peak, clipped);
}

static void free_job(reference_job *job)
{
  if (job->out) {
    sf_close(job->out);
  }
  if (job->in) {
    sf_close(job->in);
  }
  cli_output_discard(&job->output);
  for (int c = 0; job->effects && c < job->n_channels; ++c) {
    effect_free(job->effects[c]);
  }
  free(job->effects);
  free(job->frames);
  free(job->channel);
}

int carry_reference(int argc, char **argv)
{
  reference_args args;
  int status = parse_args(argc, argv, &args);
  if (status >= 0) {
    return status;
  }
  reference_job job;
  memset(&job, 0, sizeof(job));
  cli_catch_interrupts();
  status = set_up(&job, &args);
  const double start = now_seconds();
  if (status == CLI_EXIT_OK) {
    status = process_file(&job, &args);
  }
  const double seconds_spent = now_seconds() - start;
  if (status == CLI_EXIT_OK) {
    status = finish(&job, args.out_path);
  }
  if (status == CLI_EXIT_OK) {
    report(&job, args.effect_name, seconds_spent);
  }
  free_job(&job);
  return status;
}
