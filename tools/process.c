/*
  carry process: runs a model over an audio file, one stream per channel,
  and writes the result in the input's format; the arguments of both
  forms, and the one-file form.
*/

#include "process.h"

#include "audio_job.h"
#include "cli.h"

#include <float.h>
#include <getopt.h>
#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_BLOCK 256
#define MAX_BLOCK 1048576
#define MAX_JOBS 1024
#define MAX_SHARDS 1000000
#define MAX_TAIL_SECONDS 3600.0

/** What parsing saw beyond process_args: options only the core path
    takes, and spellings for messages. */
typedef struct core_options {
  const char *first;    ///< The first one given, for the message; or NULL
  bool has_jobs;
  bool has_quality;     ///< --quality, which has its own message
  const char *format_text;  ///< --format and --bits as typed, for messages
  const char *bits_text;
} core_options;

/** One file's run: the shared model, and this file's streams and audio. */
typedef struct process_job {
  const process_model *shared;
  carry_rate_stream **streams;     ///< (C) one per channel
  audio_job audio;
  atomic_uint_least64_t *meter;    ///< Microseconds of audio run, or NULL
} process_job;

/* ------------------------------------------------------------------------ */
/* Arguments */

static void print_more_help(void);

static void print_help(void)
{
  printf(
    "Usage: carry process --model FILE [OPTION]... IN OUT\n"
    "  or:  carry process --model FILE [OPTION]... IN... -o OUTDIR\n"
    "  or:  carry process --model FILE [OPTION]... --list FILE -o OUTDIR\n"
    "  or:  carry process --plugin URI [--preset URI] [--control SYMBOL=VALUE]...\n"
    "                     [--model FILE] [OPTION]... (IN OUT | IN... -o OUTDIR)\n"
    "  or:  carry process --preset URI [OPTION]... (IN OUT | IN... -o OUTDIR)\n"
    "\n"
    "Runs every channel of the audio file IN through its own stream of the\n"
    "model and writes OUT with IN's sample rate, format and sample type.\n"
    "IN may be any file libsndfile reads; OUT may be the same file.\n"
    "With -o, each IN is a file or a folder (searched recursively) and the\n"
    "outputs go into OUTDIR, mirroring each folder's tree; a file given\n"
    "directly goes to OUTDIR/its name.\n"
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
    "  -q, --quality Q         the model's gate activations: exact (default)\n"
    "                          or fast (cheaper approximations, output\n"
    "                          within 1e-4 of exact); with --plugin, set\n"
    "                          Carry's control instead: --control quality=1\n"
    "      --keep-latency      writes the resampler's (or the plugin's)\n"
    "                          delay as the plugin plays it; by default OUT\n"
    "                          is aligned with IN\n"
    "      --format TYPE       OUT's file type: wav, flac, aiff or ogg\n"
    "                          (default: IN's)\n"
    "      --bits B            OUT's samples: 16, 24, 32 (integers) or float\n"
    "                          (default: IN's)\n"
    "      --tail SECONDS      runs silence after IN ends, so that decays are\n"
    "                          not cut; OUT is longer by that much\n",
    MAX_BLOCK, DEFAULT_BLOCK, (double)CARRY_NORMALIZED_LOUDNESS_DB);
  print_more_help();
}

/** The rest of --help: one string literal would be too long for C11. */
static void print_more_help(void)
{
  printf(
    "\n"
    "An LV2 plugin (through lilv, found on LV2_PATH) instead of the core:\n"
    "      --plugin URI        the plugin; IN's channels go to its audio\n"
    "                          inputs together if it has as many, else a\n"
    "                          mono plugin runs once per channel\n"
    "      --preset URI        applies the preset (its plugin, from\n"
    "                          lv2:appliesTo, if --plugin is not given)\n"
    "      --control SYMBOL=VALUE  sets a control input by port symbol;\n"
    "                          repeatable\n"
    "      --model FILE        with Carry's plugin: sends the model file\n"
    "  -h, --help              shows this help\n"
    "\n"
    "Batches (with -o):\n"
    "  -o, --output-dir DIR    where the outputs go (created if missing)\n"
    "      --list FILE         reads inputs from FILE, one path a line\n"
    "                          ('-': standard input), besides any IN\n"
    "      --pattern GLOB      the file names taken from folders (default:\n"
    "                          .wav .flac .aiff .aif .ogg in any case)\n"
    "  -f, --force             overwrites existing outputs; without it they\n"
    "                          are skipped, so a stopped batch can be rerun\n"
    "      --resume            skips existing outputs (the default, said\n"
    "                          explicitly); not with --force\n"
    "  -j, --jobs N            files processed at once, 1..%d (default: the\n"
    "                          number of online cores)\n"
    "      --shard K/N         processes only the K-th of N parts of the\n"
    "                          sorted input list; K counts from 0\n"
    "\n"
    "Reports frames, channels, duration, speed, output peak, clipped\n"
    "samples and the normalising gain on stderr; a batch shows a progress\n"
    "bar on a terminal, else a line per file.  Exit status: 0 success (in\n"
    "a batch: every file processed or skipped), 1 processing failed or\n"
    "interrupted, 2 usage error (including an unknown knob or a value out\n"
    "of range), 3 model error, 4 audio file error (in a batch: some files\n"
    "failed, the others were written).\n",
    MAX_JOBS);
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

static int parse_jobs(const char *text, int *n_jobs)
{
  long value = 0;
  if (!cli_parse_long(text, 1, MAX_JOBS, &value)) {
    return cli_usage_error("--jobs must be a whole number from 1 to %d, "
                           "not '%s'", MAX_JOBS, text);
  }
  *n_jobs = (int)value;
  return -1;
}

/** "K/N" with 0 <= K < N. */
static int parse_shard(const char *text, process_args *args)
{
  const char *slash = strchr(text, '/');
  char index[32] = "";
  if (slash && slash - text < (long)sizeof(index)) {
    memcpy(index, text, (size_t)(slash - text));
  }
  if (!slash || !cli_parse_long(slash + 1, 1, MAX_SHARDS, &args->n_shards) ||
      !cli_parse_long(index, 0, args->n_shards - 1, &args->shard_index)) {
    return cli_usage_error("--shard must be K/N with N from 1 to %d and K "
                           "from 0 to N-1, not '%s'", MAX_SHARDS, text);
  }
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

static int parse_quality(const char *text, carry_quality *quality)
{
  static const carry_quality qualities[] = {CARRY_QUALITY_EXACT,
                                            CARRY_QUALITY_FAST};
  for (size_t k = 0; k < sizeof(qualities) / sizeof(qualities[0]); ++k) {
    if (!strcmp(text, carry_quality_name(qualities[k]))) {
      *quality = qualities[k];
      return -1;
    }
  }
  return cli_usage_error("--quality must be exact or fast, not '%s'", text);
}

static int parse_format(const char *text, int *type)
{
  static const char *const names[] = {"wav", "flac", "aiff", "ogg"};
  static const int types[] = {SF_FORMAT_WAV, SF_FORMAT_FLAC, SF_FORMAT_AIFF,
                              SF_FORMAT_OGG};
  for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); ++k) {
    if (!strcmp(text, names[k])) {
      *type = types[k];
      return -1;
    }
  }
  return cli_usage_error("--format must be wav, flac, aiff or ogg, not "
                         "'%s'", text);
}

static int parse_bits(const char *text, int *subtype)
{
  static const char *const names[] = {"16", "24", "32", "float"};
  static const int subtypes[] = {SF_FORMAT_PCM_16, SF_FORMAT_PCM_24,
                                 SF_FORMAT_PCM_32, SF_FORMAT_FLOAT};
  for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); ++k) {
    if (!strcmp(text, names[k])) {
      *subtype = subtypes[k];
      return -1;
    }
  }
  return cli_usage_error("--bits must be 16, 24, 32 or float, not '%s'",
                         text);
}

static int parse_tail(const char *text, double *seconds)
{
  if (!cli_parse_double(text, seconds) || *seconds < 0.0 ||
      *seconds > MAX_TAIL_SECONDS) {
    return cli_usage_error("--tail must be a number of seconds from 0 to "
                           "%g, not '%s'", MAX_TAIL_SECONDS, text);
  }
  return -1;
}

/** "SYMBOL=VALUE" with a number; the symbol is checked against the
    plugin later, when it is known. */
static int add_control(process_args *args, char *text)
{
  char *equals = strrchr(text, '=');
  double value = 0.0;
  if (args->n_controls == PROCESS_MAX_CONTROLS) {
    return cli_usage_error("more than %d --control options",
                           PROCESS_MAX_CONTROLS);
  }
  if (!equals || equals == text || !cli_parse_double(equals + 1, &value) ||
      fabs(value) > FLT_MAX) {
    return cli_usage_error("--control '%s' is not SYMBOL=NUMBER", text);
  }
  *equals = '\0';  // argv is ours to cut: the symbol ends here
  args->controls[args->n_controls++] = (plugin_control){text, (float)value};
  return -1;
}

static int add_param(process_args *args, const char *text)
{
  if (args->n_params == PROCESS_MAX_PARAMS) {
    return cli_usage_error("more than %d --param options",
                           PROCESS_MAX_PARAMS);
  }
  args->params[args->n_params++] = text;
  return -1;
}

/** The batch options given without -o, for the message; NULL if none. */
static const char *batch_option_without_dir(const process_args *args,
                                            bool has_jobs)
{
  return args->list_path ? "--list"
         : args->pattern ? "--pattern"
         : args->is_forced ? "--force"
         : args->is_resumed ? "--resume"
         : has_jobs ? "--jobs"
         : args->n_shards > 1 ? "--shard"
         : NULL;
}

static int check_batch_inputs(process_args *args, int n_left, char **left)
{
  if (n_left == 0 && !args->list_path) {
    return cli_usage_error("missing input files or folders (IN... or "
                           "--list FILE) before -o %s", args->out_dir);
  }
  args->inputs = left;
  args->n_inputs = n_left;
  return -1;
}

bool process_uses_plugin(const process_args *args)
{
  return args->plugin_uri || args->preset_uri;
}

/** Options that cannot go together, or that need another. */
static int check_combinations(const process_args *args,
                              const core_options *core)
{
  if (args->is_forced && args->is_resumed) {
    return cli_usage_error("--force and --resume contradict each other: "
                           "give one (--force overwrites existing outputs, "
                           "--resume skips them)");
  }
  if (process_uses_plugin(args) && core->has_quality) {
    return cli_usage_error("--quality works on the model core, not with "
                           "--plugin or --preset: set Carry's quality "
                           "control instead (--control quality=1 for fast)");
  }
  if (process_uses_plugin(args) && core->first) {
    return cli_usage_error("%s works on the model core, not with --plugin "
                           "or --preset (set the plugin's controls with "
                           "--control SYMBOL=VALUE)", core->first);
  }
  if (!process_uses_plugin(args) && args->n_controls) {
    return cli_usage_error("--control sets a plugin's control: give "
                           "--plugin URI or --preset URI (a model's knobs "
                           "are set with --param)");
  }
  if (!process_uses_plugin(args) && !args->model_path) {
    return cli_usage_error("missing --model FILE (or --plugin URI)");
  }
  SF_INFO probe = {0, 48000, 1, (args->out_type ? args->out_type
                                 : SF_FORMAT_WAV) | args->out_subtype, 0, 0};
  if (args->out_subtype && !sf_format_check(&probe)) {
    return cli_usage_error("--format %s cannot hold --bits %s samples "
                           "(flac: 16 or 24; ogg: none, it is Vorbis)",
                           core->format_text, core->bits_text);
  }
  return -1;
}

static int check_positionals(process_args *args, int n_left, char **left,
                             const core_options *core)
{
  const int status = check_combinations(args, core);
  if (status >= 0) {
    return status;
  }
  if (args->out_dir) {
    return check_batch_inputs(args, n_left, left);
  }
  const char *option = batch_option_without_dir(args, core->has_jobs);
  if (option) {
    return cli_usage_error("%s works on batches: give the output folder "
                           "with -o OUTDIR", option);
  }
  if (n_left < 2) {
    return cli_usage_error(n_left ? "missing output file OUT"
                                  : "missing input file IN and output OUT");
  }
  if (n_left > 2) {
    return cli_usage_error("too many arguments: '%s' after IN and OUT "
                           "(for many inputs, give the output folder with "
                           "-o OUTDIR)", left[2]);
  }
  args->in_path = left[0];
  args->out_path = left[1];
  return -1;
}

static int online_cores(void)
{
  const long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n > MAX_JOBS ? MAX_JOBS : (int)n;
}

static void set_defaults(process_args *args)
{
  memset(args, 0, sizeof(*args));
  args->block = DEFAULT_BLOCK;
  args->n_jobs = online_cores();
  args->n_shards = 1;
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
    {"quality", required_argument, NULL, 'q'},
    {"keep-latency", no_argument, NULL, 'L'},
    {"output-dir", required_argument, NULL, 'o'},
    {"list", required_argument, NULL, 'l'},
    {"pattern", required_argument, NULL, 'P'},
    {"force", no_argument, NULL, 'f'},
    {"jobs", required_argument, NULL, 'j'},
    {"shard", required_argument, NULL, 'K'},
    {"format", required_argument, NULL, 'F'},
    {"bits", required_argument, NULL, 'B'},
    {"tail", required_argument, NULL, 'T'},
    {"resume", no_argument, NULL, 'R'},
    {"plugin", required_argument, NULL, 'u'},
    {"preset", required_argument, NULL, 's'},
    {"control", required_argument, NULL, 'c'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
  };
  set_defaults(args);
  core_options core = {NULL, false, false, NULL, NULL};
  int option, status = -1;
  while (status < 0 && (option = getopt_long(argc, argv, "m:p:b:r:q:o:fj:h",
                                             options, NULL)) != -1) {
    switch (option) {
    case 'm': args->model_path = optarg; break;
    case 'p': status = add_param(args, optarg); core.first = "--param";
              break;
    case 'b': status = parse_block(optarg, &args->block); break;
    case 'S': args->is_unsettled = true; core.first = "--no-settle"; break;
    case 'N': args->is_normalized = true; core.first = "--normalize"; break;
    case 'r': status = parse_rate_mode(optarg, &args->rate_mode);
              core.first = "--rate-mode"; break;
    case 'q': status = parse_quality(optarg, &args->quality);
              core.first = "--quality"; core.has_quality = true; break;
    case 'L': args->keeps_latency = true; break;
    case 'o': args->out_dir = optarg; break;
    case 'l': args->list_path = optarg; break;
    case 'P': args->pattern = optarg; break;
    case 'f': args->is_forced = true; break;
    case 'j': status = parse_jobs(optarg, &args->n_jobs);
              core.has_jobs = true; break;
    case 'K': status = parse_shard(optarg, args); break;
    case 'F': status = parse_format(optarg, &args->out_type);
              core.format_text = optarg; break;
    case 'B': status = parse_bits(optarg, &args->out_subtype);
              core.bits_text = optarg; break;
    case 'T': status = parse_tail(optarg, &args->tail_seconds); break;
    case 'R': args->is_resumed = true; break;
    case 'u': args->plugin_uri = optarg; break;
    case 's': args->preset_uri = optarg; break;
    case 'c': status = add_control(args, optarg); break;
    case 'h': print_help(); return CLI_EXIT_OK;
    default: return cli_bad_option();
    }
  }
  if (status >= 0) {
    return status;
  }
  return check_positionals(args, argc - optind, argv + optind, &core);
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

static int apply_params(process_model *prepared, const process_args *args)
{
  const carry_model_spec *spec = carry_model_get_spec(prepared->model);
  for (int k = 0; k + 1 < spec->n_inputs; ++k) {
    prepared->knobs[k] = spec->knobs[k].value;
  }
  for (int p = 0; p < args->n_params; ++p) {
    const int status = apply_param(prepared->model, args->params[p],
                                   prepared->knobs);
    if (status != CLI_EXIT_OK) {
      return status;
    }
  }
  return CLI_EXIT_OK;
}

/* ------------------------------------------------------------------------ */
/* The model, prepared once */

/** --normalize: the gain that brings the model to the common loudness,
    from its file or measured, added to its output gain. */
static int normalize(process_model *prepared)
{
  carry_error err = {CARRY_SUCCESS, ""};
  carry_model *model = prepared->model;
  if (carry_model_measure_loudness(model, &err) != CARRY_SUCCESS) {
    return cli_error(CLI_EXIT_FAILED, "cannot measure the model's loudness: "
                     "%s", err.message);
  }
  carry_model_spec spec = *carry_model_get_spec(model);
  prepared->normalize_gain_db = carry_model_normalize_gain_db(model);
  spec.out_gain_db += prepared->normalize_gain_db;
  if (carry_model_set_info(model, &spec, &err) != CARRY_SUCCESS) {
    return cli_error(CLI_EXIT_MODEL, "--normalize: cannot add %+.2f dB to "
                     "the model's loudness of %.2f dB: %s",
                     (double)prepared->normalize_gain_db,
                     (double)spec.loudness_db, err.message);
  }
  return CLI_EXIT_OK;
}

int process_model_prepare(process_model *prepared, const process_args *args)
{
  memset(prepared, 0, sizeof(*prepared));
  if (process_uses_plugin(args)) {
    return process_plugin_prepare(prepared, args);
  }
  int status = cli_load_model(args->model_path, &prepared->model);
  if (status == CLI_EXIT_OK) {
    status = apply_params(prepared, args);
  }
  if (status == CLI_EXIT_OK && args->is_normalized) {
    status = normalize(prepared);
  }
  return status;
}

void process_model_free(process_model *prepared)
{
  carry_model_free(prepared->model);
  prepared->model = NULL;
  process_plugin_free(prepared->plugin);
  prepared->plugin = NULL;
}

void process_audio_options(audio_job *audio, const process_args *args)
{
  audio->out_type = args->out_type;
  audio->out_subtype = args->out_subtype;
  audio->tail = (sf_count_t)lround(args->tail_seconds *
                                   audio->in_info.samplerate);
}

/* ------------------------------------------------------------------------ */
/* One file's streams */

static const float *job_knobs(const process_job *job)
{
  const bool has_knobs =
    carry_model_get_spec(job->shared->model)->n_inputs > 1;
  return has_knobs ? job->shared->knobs : NULL;
}

/** Each stream runs silence until its output settles, as the plugin does
    after loading, so that both start from the same state. */
static void settle_streams(process_job *job)
{
  for (int c = 0; c < job->audio.n_channels; ++c) {
    carry_rate_stream_settle(job->streams[c], job_knobs(job),
                             CARRY_SETTLE_SAMPLES);
  }
}

/** --quality, once the streams have settled: like the plugin, which loads
    and settles a model at exact, they settle to a state that does not
    depend on the quality, and so give the plugin's output at either. */
static void set_quality(process_job *job, const process_args *args)
{
  for (int c = 0; c < job->audio.n_channels; ++c) {
    carry_stream_set_quality(carry_rate_stream_core(job->streams[c]),
                             args->quality);
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
    job->streams[c] = carry_rate_stream_create(job->shared->model, rate,
                                               args->rate_mode, args->block,
                                               &err);
    if (!job->streams[c]) {
      return cli_error(err.status == CARRY_ERR_NO_MEMORY ? CLI_EXIT_FAILED
                                                         : CLI_EXIT_USAGE,
                       "cannot run the model on '%s': %s",
                       job->audio.in_path, err.message);
    }
  }
  if (!args->keeps_latency) {
    job->audio.latency = carry_rate_stream_latency(job->streams[0]);
  }
  return audio_job_allocate(&job->audio, args->block);
}

/* ------------------------------------------------------------------------ */
/* Processing */

/** Runs one channel through its stream (audio_job_channel_fn). */
static void process_channel(void *context, int c, float *samples,
                            uint32_t n)
{
  process_job *job = context;
  carry_rate_stream_process(job->streams[c], samples, job_knobs(job),
                            samples, n);
  if (c == 0 && job->meter) {
    const double rate = job->audio.in_info.samplerate;
    atomic_fetch_add_explicit(job->meter, (uint_least64_t)(1e6 * n / rate),
                              memory_order_relaxed);
  }
}

/** Everything after the input is open: streams, output, the run. */
static int run_opened(process_job *job, const process_args *args,
                      const char *out_path)
{
  process_audio_options(&job->audio, args);
  int status = create_streams(job, args);
  if (status == CLI_EXIT_OK && !args->is_unsettled) {
    settle_streams(job);
  }
  if (status == CLI_EXIT_OK) {
    set_quality(job, args);
  }
  if (status == CLI_EXIT_OK) {
    status = audio_job_open_output(&job->audio, out_path);
  }
  if (status == CLI_EXIT_OK) {
    status = audio_job_run(&job->audio, process_channel, job);
  }
  if (status == CLI_EXIT_OK) {
    status = audio_job_finish(&job->audio);
  }
  return status;
}

static void free_job(process_job *job)
{
  for (int c = 0; job->streams && c < job->audio.n_channels; ++c) {
    carry_rate_stream_free(job->streams[c]);
  }
  free(job->streams);
  job->streams = NULL;
  audio_job_free(&job->audio);
}

/** The closing report of a file: frames, time, peak, the gain
    --normalize added, what ran at the file's rate, a fast quality. */
static void describe_run(const process_job *job, const process_args *args,
                         char *text, size_t size)
{
  process_describe(job->shared, args, &job->audio, job->streams[0], text,
                   size);
}

void process_describe(const process_model *prepared, const process_args *args,
                      const audio_job *audio, const carry_rate_stream *stream,
                      char *text, size_t size)
{
  char summary[256];
  audio_job_describe(audio, summary, sizeof(summary));
  char rate[160];
  carry_rate_stream_describe(stream, rate, sizeof(rate));
  char normalized[96] = "";
  if (args->is_normalized) {
    const carry_model_spec *spec = carry_model_get_spec(prepared->model);
    snprintf(normalized, sizeof(normalized), ", normalized by %+.2f dB "
             "(loudness %.2f dB, %s)", (double)prepared->normalize_gain_db,
             (double)spec->loudness_db,
             spec->is_loudness_measured ? "measured" : "from the file");
  }
  snprintf(text, size, "%s%s; %s%s%s", summary, normalized, rate,
           audio->latency ? " (compensated)" : "",
           args->quality == CARRY_QUALITY_FAST ? "; fast quality" : "");
}

int process_one_file(const process_model *prepared, const process_args *args,
                     const char *in_path, const char *out_path,
                     atomic_uint_least64_t *meter, process_outcome *outcome)
{
  if (prepared->plugin) {
    return process_plugin_file(prepared->plugin, args, in_path, out_path,
                               meter, outcome);
  }
  process_job job;
  memset(&job, 0, sizeof(job));
  job.shared = prepared;
  job.meter = meter;
  int status = audio_job_open_input(&job.audio, in_path);
  if (status == CLI_EXIT_OK) {
    status = run_opened(&job, args, out_path);
  }
  if (status == CLI_EXIT_OK) {
    outcome->seconds_of_audio = (double)job.audio.n_frames /
                                job.audio.in_info.samplerate;
    outcome->seconds_spent = job.audio.seconds_spent;
    describe_run(&job, args, outcome->summary, sizeof(outcome->summary));
  }
  free_job(&job);
  return status;
}

/* ------------------------------------------------------------------------ */
/* One file */

/** IN to OUT through the plugin. */
static int process_single_plugin(const process_args *args)
{
  process_model prepared;
  process_outcome outcome;
  memset(&outcome, 0, sizeof(outcome));
  int status = process_model_prepare(&prepared, args);
  if (status == CLI_EXIT_OK) {
    status = process_one_file(&prepared, args, args->in_path,
                              args->out_path, NULL, &outcome);
  }
  if (status == CLI_EXIT_OK) {
    cli_note("%s", outcome.summary);
  }
  process_model_free(&prepared);
  return status;
}

/** IN to OUT.  The input is opened before the model is loaded, so that
    an unreadable input is reported first, as it always was. */
static int process_single(const process_args *args)
{
  if (process_uses_plugin(args)) {
    return process_single_plugin(args);
  }
  process_model prepared;
  memset(&prepared, 0, sizeof(prepared));
  process_job job;
  memset(&job, 0, sizeof(job));
  job.shared = &prepared;
  int status = audio_job_open_input(&job.audio, args->in_path);
  if (status == CLI_EXIT_OK) {
    status = process_model_prepare(&prepared, args);
  }
  if (status == CLI_EXIT_OK) {
    status = run_opened(&job, args, args->out_path);
  }
  if (status == CLI_EXIT_OK) {
    char text[640];
    describe_run(&job, args, text, sizeof(text));
    cli_note("%s", text);
  }
  free_job(&job);
  process_model_free(&prepared);
  return status;
}

int carry_process(int argc, char **argv)
{
  process_args args;
  const int status = parse_args(argc, argv, &args);
  if (status >= 0) {
    return status;
  }
  cli_catch_interrupts();
  return args.out_dir ? process_batch(&args) : process_single(&args);
}
