/*
  carry reference: renders an audio file through one of the reference
  effects (effects/effects.h), one instance per channel, and writes the
  result in the input's format: the targets models are trained on.
*/

#include "audio_job.h"
#include "cli.h"
#include "effects.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
  audio_job audio;
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

static int create_effects(reference_job *job, const reference_args *args)
{
  const int n_channels = job->audio.n_channels;
  job->effects = calloc((size_t)n_channels, sizeof(*job->effects));
  if (!job->effects) {
    return cli_error(CLI_EXIT_FAILED, "out of memory for %d channels",
                     n_channels);
  }
  const double rate = job->audio.in_info.samplerate;
  for (int c = 0; c < n_channels; ++c) {
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
  return audio_job_allocate(&job->audio, BLOCK);
}

static int set_up(reference_job *job, const reference_args *args)
{
  int status = check_effect(args->effect_name);
  if (status == CLI_EXIT_OK) {
    status = check_params(args);
  }
  if (status == CLI_EXIT_OK) {
    status = audio_job_open_input(&job->audio, args->in_path);
  }
  if (status == CLI_EXIT_OK) {
    status = create_effects(job, args);
  }
  if (status == CLI_EXIT_OK) {
    status = audio_job_open_output(&job->audio, args->out_path);
  }
  return status;
}

/* ------------------------------------------------------------------------ */
/* Processing */

/** Runs one channel through its effect (audio_job_channel_fn). */
static void process_channel(void *context, int c, float *samples,
                            uint32_t n)
{
  reference_job *job = context;
  effect_process(job->effects[c], samples, samples, n);
}

static void free_job(reference_job *job)
{
  for (int c = 0; job->effects && c < job->audio.n_channels; ++c) {
    effect_free(job->effects[c]);
  }
  free(job->effects);
  audio_job_free(&job->audio);
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
  if (status == CLI_EXIT_OK) {
    status = audio_job_run(&job.audio, process_channel, &job);
  }
  if (status == CLI_EXIT_OK) {
    status = audio_job_finish(&job.audio);
  }
  if (status == CLI_EXIT_OK) {
    char summary[256];
    audio_job_describe(&job.audio, summary, sizeof(summary));
    cli_note("%s: %s", args.effect_name, summary);
  }
  free_job(&job);
  return status;
}
