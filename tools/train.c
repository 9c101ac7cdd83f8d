/*
  carry train: fits an LSTM or GRU model to pairs of dry and processed
  recordings (train/carry_train.h) and writes it as Keras JSON.
*/

#include "carry.h"
#include "carry_train.h"
#include "cli.h"

#include <getopt.h>
#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define MAX_PAIRS 1024
#define MAX_RANGES CARRY_MAX_KNOBS

/** One pair as the command line gives it. */
typedef struct pair_arg {
  const char *dry;
  const char *target;
  const char *knobs[CARRY_MAX_KNOBS];  ///< "NAME=VALUE" as typed
  int n_knobs;
  bool is_validation;
} pair_arg;

/** The command line, checked for form. */
typedef struct train_args {
  const char *arch;
  bool has_skip;
  const char *out_path;
  const char *manifest_path;
  const char *checkpoint_path;
  const char *resume_path;
  const char *name;
  pair_arg pairs[MAX_PAIRS];
  int n_pairs;
  const char *ranges[MAX_RANGES];    ///< "NAME=MIN:MAX" as typed
  int n_ranges;
  /* Options that decide the weights, and whether they were given. */
  bool has_seed, has_lr, has_segment, has_warmup, has_tbptt, has_batch;
  bool has_clip, has_threads, has_fraction;
  uint64_t seed;
  double lr, segment_seconds, clip, fraction;
  long warmup, tbptt, batch, threads;
  /* Limits, which a resumed run may change. */
  bool has_epochs, has_minutes, has_patience;
  long epochs, patience;
  double minutes;
} train_args;

/** One pair ready to read: file names and knob values in table order. */
typedef struct pair_spec {
  const char *dry;
  const char *target;
  float knobs[CARRY_MAX_KNOBS];
  bool is_validation;
} pair_spec;

/** Everything a run holds, so that one function can free it all. */
typedef struct train_job {
  carry_train_manifest *manifest;
  int n_knobs;
  char knob_names[CARRY_MAX_KNOBS][CARRY_NAME_SIZE];
  pair_spec *pairs;
  int n_pairs;
  carry_train_data *data;
  carry_trainer *trainer;
  char *checkpoint_path;
  cli_output output;
  bool is_terminal;       ///< stderr is a terminal: draw a progress bar
  double last_draw;       ///< When the bar was last drawn
} train_job;

/* ------------------------------------------------------------------------ */
/* Help */

static void print_help(void)
{
  printf(
    "Usage: carry train --arch TYPE:UNITS[xLAYERS] [--skip] --out MODEL.json\n"
    "         (--pair DRY TARGET [--knob NAME=VALUE]...)... | --manifest FILE\n"
    "         [--validation-pair DRY TARGET [--knob NAME=VALUE]...]...\n"
    "         [OPTION]...\n"
    "       carry train --resume CHECKPOINT --out MODEL.json (the same data)\n"
    "\n"
    "Trains a recurrent model to turn each DRY recording into its TARGET\n"
    "(the same audio through the effect to capture) and writes it as Keras\n"
    "JSON that Carry (and, for one LSTM or GRU layer of 8-80 units without\n"
    "knobs, AIDA-X) loads.  Files are mono, at one sample rate; a pair's two\n"
    "files have the same length.  Each pair gives a value for every knob.\n"
    "\n"
    "Model and data:\n"
    "  -a, --arch ARCH            lstm:32, gru:16, lstm:16x2 (stacked) ...\n"
    "      --skip                 output = network + dry input\n"
    "  -o, --out FILE             the model to write (always JSON)\n"
    "  -p, --pair DRY TARGET      a training pair; repeatable\n"
    "  -k, --knob NAME=VALUE      the knob value of the pair before it\n"
    "  -m, --manifest FILE        pairs listed in JSON (see the README)\n"
    "  -v, --validation-pair DRY TARGET  a pair used only to validate;\n"
    "                             without one, the last part of every pair\n"
    "      --validation-fraction F  that part, up to 0.95 [0.2]\n"
    "      --knob-range NAME=MIN:MAX  the knob's range in the model\n"
    "                             (default: the values the pairs span)\n"
    "      --name NAME            the model's name (default: OUT's)\n"
    "\n"
    "Training (defaults in brackets):\n"
    "  -e, --epochs N             at most N epochs [200]\n"
    "  -t, --max-minutes M        stop after M minutes [no limit]\n"
    "      --patience N           stop after N epochs without a better\n"
    "                             validation loss; 0 never [20]\n"
    "  -s, --seed N               initial weights and shuffles [1]\n"
    "      --lr X                 Adam's learning rate [0.005], halved\n"
    "                             after 5 epochs without improvement\n"
    "      --segment-seconds S    segment length [0.5]\n"
    "      --warmup N             samples run before the loss\n"
    "                             [1000 at 48 kHz, scaled to the rate]\n"
    "      --tbptt N              samples per update [1024]\n"
    "  -b, --batch B              segments per batch [16]\n"
    "      --clip X               clip the gradient norm to X [off]\n"
    "      --threads N            OpenBLAS threads [1]\n"
    "  -c, --checkpoint FILE      written after every epoch and on Ctrl-C\n"
    "                             [OUT.checkpoint]\n"
    "  -r, --resume FILE          continue a checkpoint's run exactly; its\n"
    "                             settings apply; give the same pairs\n"
    "  -h, --help                 shows this help\n"
    "\n"
    "Ctrl-C stops after the current batch and writes the best model so far\n"
    "and a checkpoint.  The same seed, data, settings and thread count on the\n"
    "same machine give the same weights.  Exit status: 0 success, 1 failed\n"
    "or interrupted, 2 usage error, 3 checkpoint error, 4 file error.\n");
}

/* ------------------------------------------------------------------------ */
/* Arguments */

enum {
  OPT_SKIP = 256, OPT_FRACTION, OPT_RANGE, OPT_NAME, OPT_PATIENCE, OPT_LR,
  OPT_SEGMENT, OPT_WARMUP, OPT_TBPTT, OPT_CLIP, OPT_THREADS,
};

static const struct option options[] = {
  {"arch", required_argument, NULL, 'a'},
  {"skip", no_argument, NULL, OPT_SKIP},
  {"out", required_argument, NULL, 'o'},
  {"pair", required_argument, NULL, 'p'},
  {"knob", required_argument, NULL, 'k'},
  {"manifest", required_argument, NULL, 'm'},
  {"validation-pair", required_argument, NULL, 'v'},
  {"validation-fraction", required_argument, NULL, OPT_FRACTION},
  {"knob-range", required_argument, NULL, OPT_RANGE},
  {"name", required_argument, NULL, OPT_NAME},
  {"epochs", required_argument, NULL, 'e'},
  {"max-minutes", required_argument, NULL, 't'},
  {"patience", required_argument, NULL, OPT_PATIENCE},
  {"seed", required_argument, NULL, 's'},
  {"lr", required_argument, NULL, OPT_LR},
  {"segment-seconds", required_argument, NULL, OPT_SEGMENT},
  {"warmup", required_argument, NULL, OPT_WARMUP},
  {"tbptt", required_argument, NULL, OPT_TBPTT},
  {"batch", required_argument, NULL, 'b'},
  {"clip", required_argument, NULL, OPT_CLIP},
  {"threads", required_argument, NULL, OPT_THREADS},
  {"checkpoint", required_argument, NULL, 'c'},
  {"resume", required_argument, NULL, 'r'},
  {"help", no_argument, NULL, 'h'},
  {NULL, 0, NULL, 0},
};

/** --pair and --validation-pair take two file names: getopt hands over the
    first, the second is the next word. */
static int add_pair(train_args *args, int argc, char **argv,
                    bool is_validation)
{
  const char *option = is_validation ? "--validation-pair" : "--pair";
  if (optind >= argc || argv[optind][0] == '-') {
    return cli_usage_error("%s needs two files, DRY and TARGET", option);
  }
  if (args->n_pairs == MAX_PAIRS) {
    return cli_usage_error("more than %d pairs", MAX_PAIRS);
  }
  pair_arg *pair = &args->pairs[args->n_pairs++];
  memset(pair, 0, sizeof(*pair));
  pair->dry = optarg;
  pair->target = argv[optind++];
  pair->is_validation = is_validation;
  return -1;
}

static int add_knob(train_args *args, const char *text)
{
  if (args->n_pairs == 0) {
    return cli_usage_error("--knob %s must follow the --pair or "
                           "--validation-pair it belongs to", text);
  }
  pair_arg *pair = &args->pairs[args->n_pairs - 1];
  if (pair->n_knobs == CARRY_MAX_KNOBS) {
    return cli_usage_error("more than %d knobs for one pair",
                           CARRY_MAX_KNOBS);
  }
  pair->knobs[pair->n_knobs++] = text;
  return -1;
}

static int add_range(train_args *args, const char *text)
{
  if (args->n_ranges == MAX_RANGES) {
    return cli_usage_error("more than %d --knob-range options", MAX_RANGES);
  }
  args->ranges[args->n_ranges++] = text;
  return -1;
}

static int parse_count(const char *option, long min, long max, long *value,
                       bool *given)
{
  if (!cli_parse_long(optarg, min, max, value)) {
    return cli_usage_error("%s must be a whole number from %ld to %ld, not "
                           "'%s'", option, min, max, optarg);
  }
  *given = true;
  return -1;
}

static int parse_number(const char *option, double min, double max,
                        bool open_min, double *value, bool *given)
{
  if (!cli_parse_double(optarg, value) || *value < min || *value > max ||
      (open_min && *value == min)) {
    return cli_usage_error("%s must be a number %s %g and at most %g, not "
                           "'%s'", option, open_min ? "above" : "from", min,
                           max, optarg);
  }
  *given = true;
  return -1;
}

static int parse_seed(train_args *args)
{
  if (!cli_parse_u64(optarg, &args->seed)) {
    return cli_usage_error("--seed must be a whole number from 0 to 2^64 - 1, "
                           "not '%s'", optarg);
  }
  args->has_seed = true;
  return -1;
}

/** The options that only store text. */
static bool parse_text_option(int option, train_args *args)
{
  switch (option) {
  case 'a': args->arch = optarg; return true;
  case OPT_SKIP: args->has_skip = true; return true;
  case 'o': args->out_path = optarg; return true;
  case 'm': args->manifest_path = optarg; return true;
  case OPT_NAME: args->name = optarg; return true;
  case 'c': args->checkpoint_path = optarg; return true;
  case 'r': args->resume_path = optarg; return true;
  default: return false;
  }
}

static int parse_training_option(int option, train_args *a)
{
  switch (option) {
  case 'e': return parse_count("--epochs", 0, 1000000, &a->epochs,
                               &a->has_epochs);
  case 't': return parse_number("--max-minutes", 0.0, 1e7, true, &a->minutes,
                                &a->has_minutes);
  case OPT_PATIENCE: return parse_count("--patience", 0, 1000000,
                                        &a->patience, &a->has_patience);
  case 's': return parse_seed(a);
  case OPT_LR: return parse_number("--lr", 0.0, 1.0, true, &a->lr,
                                   &a->has_lr);
  case OPT_SEGMENT: return parse_number("--segment-seconds", 0.0, 60.0, true,
                                        &a->segment_seconds, &a->has_segment);
  case OPT_WARMUP: return parse_count("--warmup", 0, 1000000, &a->warmup,
                                      &a->has_warmup);
  case OPT_TBPTT: return parse_count("--tbptt", 1, 1048576, &a->tbptt,
                                     &a->has_tbptt);
  case 'b': return parse_count("--batch", 1, 4096, &a->batch, &a->has_batch);
  case OPT_CLIP: return parse_number("--clip", 0.0, 1e9, false, &a->clip,
                                     &a->has_clip);
  case OPT_THREADS: return parse_count("--threads", 1, 256, &a->threads,
                                       &a->has_threads);
  case OPT_FRACTION: return parse_number("--validation-fraction", 0.0, 0.95,
                                         true, &a->fraction, &a->has_fraction);
  default: return cli_bad_option();
  }
}

static int parse_option(int option, int argc, char **argv, train_args *args)
{
  if (parse_text_option(option, args)) {
    return -1;
  }
  switch (option) {
  case 'p': return add_pair(args, argc, argv, false);
  case 'v': return add_pair(args, argc, argv, true);
  case 'k': return add_knob(args, optarg);
  case OPT_RANGE: return add_range(args, optarg);
  case 'h': print_help(); return CLI_EXIT_OK;
  default: return parse_training_option(option, args);
  }
}

static int check_args(const train_args *args, int n_left, char **left)
{
  if (n_left > 0) {
    return cli_usage_error("unexpected argument '%s'", left[0]);
  }
  if (!args->out_path) {
    return cli_usage_error("missing --out MODEL.json");
  }
  if (!args->arch && !args->resume_path) {
    return cli_usage_error("missing --arch (lstm:32, gru:16, lstm:16x2 ...)");
  }
  bool has_training_pair = false;
  for (int p = 0; p < args->n_pairs; ++p) {
    has_training_pair |= !args->pairs[p].is_validation;
  }
  if (args->manifest_path && has_training_pair) {
    return cli_usage_error("give the training pairs with --pair or with "
                           "--manifest, not both");
  }
  if (!args->manifest_path && !has_training_pair) {
    return cli_usage_error("missing training data: --pair DRY TARGET or "
                           "--manifest FILE");
  }
  return -1;
}

/** Returns -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, train_args *args)
{
  memset(args, 0, sizeof(*args));
  int option, status = -1;
  /* "+": stop at the first word that is not an option, so that a stray
     one is reported rather than moved to the end. */
  while (status < 0 && (option = getopt_long(argc, argv,
                                             "+a:o:p:k:m:v:e:t:s:b:c:r:h",
                                             options, NULL)) != -1) {
    status = parse_option(option, argc, argv, args);
  }
  if (status >= 0) {
    return status;
  }
  return check_args(args, argc - optind, argv + optind);
}

/* ------------------------------------------------------------------------ */
/* Knobs of the pairs given on the command line */

static int find_name(const train_job *job, const char *name)
{
  for (int k = 0; k < job->n_knobs; ++k) {
    if (!strcasecmp(job->knob_names[k], name)) {
      return k;
    }
  }
  return -1;
}

/** "NAME=VALUE" into its name and value. */
static int split_knob(const char *text, char *name, double *value)
{
  const char *equals = strrchr(text, '=');
  if (!equals || equals == text ||
      (size_t)(equals - text) >= CARRY_NAME_SIZE) {
    return cli_usage_error("--knob '%s' is not NAME=VALUE", text);
  }
  snprintf(name, CARRY_NAME_SIZE, "%.*s", (int)(equals - text), text);
  if (!cli_parse_double(equals + 1, value) || fabs(*value) > 1e30) {
    return cli_usage_error("--knob %s: '%s' is not a number", name,
                           equals + 1);
  }
  return -1;
}

/** The first pair names the knobs, in the order it gives them. */
static int name_knobs(train_job *job, const pair_arg *pair)
{
  for (int k = 0; k < pair->n_knobs; ++k) {
    char name[CARRY_NAME_SIZE];
    double value = 0.0;
    const int status = split_knob(pair->knobs[k], name, &value);
    if (status >= 0) {
      return status;
    }
    if (find_name(job, name) < 0) {
      snprintf(job->knob_names[job->n_knobs++], CARRY_NAME_SIZE, "%s", name);
    }
  }
  return -1;
}

static int read_pair_knobs(train_job *job, const pair_arg *pair, int index,
                           pair_spec *spec)
{
  bool seen[CARRY_MAX_KNOBS] = {false};
  for (int k = 0; k < pair->n_knobs; ++k) {
    char name[CARRY_NAME_SIZE];
    double value = 0.0;
    const int status = split_knob(pair->knobs[k], name, &value);
    if (status >= 0) {
      return status;
    }
    const int knob = find_name(job, name);
    if (knob < 0 || seen[knob]) {
      return cli_usage_error("pair %d ('%s'): knob '%s' %s", index + 1,
                             pair->target, name, knob < 0
                               ? "is not one the first pair names; every "
                                 "pair gives the same knobs"
                               : "is given twice");
    }
    seen[knob] = true;
    spec->knobs[knob] = (float)value;
  }
  for (int k = 0; k < job->n_knobs; ++k) {
    if (!seen[k]) {
      return cli_usage_error("pair %d ('%s'): no value for knob '%s'; every "
                             "pair gives a value for every knob", index + 1,
                             pair->target, job->knob_names[k]);
    }
  }
  return -1;
}

/* ------------------------------------------------------------------------ */
/* The list of pairs */

static int load_manifest(train_job *job, const char *path)
{
  carry_error err = {CARRY_SUCCESS, ""};
  job->manifest = carry_train_manifest_load(path, &err);
  if (!job->manifest) {
    return cli_error(err.status == CARRY_ERR_IO ? CLI_EXIT_FILE
                                                : CLI_EXIT_USAGE,
                     "%s", err.message);
  }
  job->n_knobs = job->manifest->n_knobs;
  memcpy(job->knob_names, job->manifest->knob_names,
         sizeof(job->knob_names));
  return -1;
}

static void add_manifest_pairs(train_job *job)
{
  const carry_train_manifest *m = job->manifest;
  for (int p = 0; m && p < m->n_pairs; ++p) {
    pair_spec *spec = &job->pairs[job->n_pairs++];
    spec->dry = m->pairs[p].dry;
    spec->target = m->pairs[p].target;
    spec->is_validation = m->pairs[p].is_validation;
    memcpy(spec->knobs, m->pairs[p].knobs, sizeof(spec->knobs));
  }
}

static int add_command_line_pairs(train_job *job, const train_args *args)
{
  int status = -1;
  if (!args->manifest_path && args->n_pairs) {
    status = name_knobs(job, &args->pairs[0]);
  }
  for (int p = 0; status < 0 && p < args->n_pairs; ++p) {
    pair_spec *spec = &job->pairs[job->n_pairs];
    spec->dry = args->pairs[p].dry;
    spec->target = args->pairs[p].target;
    spec->is_validation = args->pairs[p].is_validation;
    status = read_pair_knobs(job, &args->pairs[p], job->n_pairs, spec);
    job->n_pairs += status < 0;
  }
  return status;
}

/** The manifest's pairs, then the command line's. */
static int list_pairs(train_job *job, const train_args *args)
{
  int status = args->manifest_path ? load_manifest(job, args->manifest_path)
                                   : -1;
  if (status >= 0) {
    return status;
  }
  const int n_listed = job->manifest ? job->manifest->n_pairs : 0;
  if (n_listed + args->n_pairs > MAX_PAIRS) {
    return cli_error(CLI_EXIT_USAGE, "%d pairs; at most %d are allowed",
                     n_listed + args->n_pairs, MAX_PAIRS);
  }
  job->pairs = calloc((size_t)(n_listed + args->n_pairs),
                      sizeof(pair_spec));
  if (!job->pairs) {
    return cli_error(CLI_EXIT_FAILED, "out of memory");
  }
  add_manifest_pairs(job);
  return add_command_line_pairs(job, args);
}

/* ------------------------------------------------------------------------ */
/* Audio */

typedef struct mono_audio {
  float *samples;
  size_t n;
  int rate;
} mono_audio;

static int read_mono(const char *path, mono_audio *audio)
{
  SF_INFO info;
  memset(&info, 0, sizeof(info));
  SNDFILE *file = sf_open(path, SFM_READ, &info);
  if (!file) {
    return cli_error(CLI_EXIT_FILE, "cannot read audio file '%s': %s", path,
                     sf_strerror(NULL));
  }
  int status = -1;
  if (info.channels != 1) {
    status = cli_error(CLI_EXIT_FILE, "'%s' has %d channels; carry train "
                       "reads mono files", path, info.channels);
  } else if (!(audio->samples = malloc(((size_t)info.frames + 1) *
                                       sizeof(float)))) {
    status = cli_error(CLI_EXIT_FAILED, "out of memory for '%s'", path);
  } else if (sf_readf_float(file, audio->samples, info.frames) !=
             info.frames) {
    status = cli_error(CLI_EXIT_FILE, "cannot read '%s': %s", path,
                       sf_strerror(file));
  }
  audio->n = (size_t)info.frames;
  audio->rate = info.samplerate;
  sf_close(file);
  return status;
}

static int check_rates(const pair_spec *first, int rate, const char *path,
                       int file_rate)
{
  if (file_rate != rate) {
    return cli_error(CLI_EXIT_FILE, "'%s' is at %d Hz but '%s' is at %d Hz; "
                     "every file must have the same sample rate", path,
                     file_rate, first->dry, rate);
  }
  return -1;
}

static int check_pair_audio(const pair_spec *pair, const mono_audio *dry,
                            const mono_audio *target)
{
  if (dry->n != target->n) {
    return cli_error(CLI_EXIT_FILE, "'%s' has %zu samples but '%s' has %zu; "
                     "a pair's files must have the same length", pair->dry,
                     dry->n, pair->target, target->n);
  }
  return -1;
}

static int create_data(train_job *job, int rate)
{
  const char *names[CARRY_MAX_KNOBS];
  for (int k = 0; k < job->n_knobs; ++k) {
    names[k] = job->knob_names[k];
  }
  carry_error err = {CARRY_SUCCESS, ""};
  job->data = carry_train_data_create(rate, job->n_knobs, names, &err);
  if (!job->data) {
    return cli_error(CLI_EXIT_USAGE, "%s", err.message);
  }
  return -1;
}

/** Reads pair `p` and adds it to the data (created with the first rate). */
static int add_audio(train_job *job, int p)
{
  const pair_spec *pair = &job->pairs[p];
  mono_audio dry = {NULL, 0, 0}, target = {NULL, 0, 0};
  int status = read_mono(pair->dry, &dry);
  if (status < 0) {
    status = read_mono(pair->target, &target);
  }
  if (status < 0 && !job->data) {
    status = create_data(job, dry.rate);
  }
  const int rate = job->data ? (int)carry_train_data_sample_rate(job->data)
                             : 0;
  if (status < 0) {
    status = check_rates(&job->pairs[0], rate, pair->dry, dry.rate);
  }
  if (status < 0) {
    status = check_rates(&job->pairs[0], rate, pair->target, target.rate);
  }
  if (status < 0) {
    status = check_pair_audio(pair, &dry, &target);
  }
  carry_error err = {CARRY_SUCCESS, ""};
  if (status < 0 &&
      carry_train_data_add(job->data, dry.samples, target.samples, dry.n,
                           pair->knobs, pair->is_validation, pair->dry,
                           pair->target, &err)) {
    status = cli_error(CLI_EXIT_FILE, "'%s' and '%s': %s", pair->dry,
                       pair->target, err.message);
  }
  free(dry.samples);
  free(target.samples);
  return status;
}

/** "NAME=MIN:MAX" from the command line. */
static int apply_range(train_job *job, const char *text)
{
  const char *equals = strrchr(text, '=');
  const char *colon = equals ? strchr(equals, ':') : NULL;
  char name[CARRY_NAME_SIZE], low[64];
  double min = 0.0, max = 0.0;
  if (!equals || !colon || equals == text ||
      (size_t)(equals - text) >= sizeof(name) ||
      (size_t)(colon - equals) >= sizeof(low)) {
    return cli_usage_error("--knob-range '%s' is not NAME=MIN:MAX", text);
  }
  snprintf(name, sizeof(name), "%.*s", (int)(equals - text), text);
  snprintf(low, sizeof(low), "%.*s", (int)(colon - equals - 1), equals + 1);
  const int knob = carry_train_data_find_knob(job->data, name);
  if (knob < 0) {
    return cli_usage_error("--knob-range: no pair has a knob called '%s'",
                           name);
  }
  carry_error err = {CARRY_SUCCESS, ""};
  if (!cli_parse_double(low, &min) || !cli_parse_double(colon + 1, &max) ||
      carry_train_data_set_knob_range(job->data, knob, (float)min,
                                      (float)max, &err)) {
    return cli_usage_error("--knob-range '%s': %s", text,
                           err.message[0] ? err.message
                                          : "MIN and MAX must be numbers");
  }
  return -1;
}

static int apply_manifest_ranges(train_job *job)
{
  const carry_train_manifest *m = job->manifest;
  for (int k = 0; m && k < m->n_knobs; ++k) {
    carry_error err = {CARRY_SUCCESS, ""};
    if (m->has_range[k] &&
        carry_train_data_set_knob_range(job->data, k, m->range_min[k],
                                        m->range_max[k], &err)) {
      return cli_error(CLI_EXIT_USAGE, "%s", err.message);
    }
  }
  return -1;
}

static int load_data(train_job *job, const train_args *args)
{
  int status = list_pairs(job, args);
  for (int p = 0; status < 0 && p < job->n_pairs; ++p) {
    status = add_audio(job, p);
  }
  if (status < 0) {
    status = apply_manifest_ranges(job);
  }
  for (int r = 0; status < 0 && r < args->n_ranges; ++r) {
    status = apply_range(job, args->ranges[r]);
  }
  return status;
}

/* ------------------------------------------------------------------------ */
/* Settings */

static int settings_from_args(const train_args *args, double rate,
                              carry_train_settings *s)
{
  carry_train_settings_init(s, rate);
  carry_error err = {CARRY_SUCCESS, ""};
  if (carry_train_parse_arch(args->arch, &s->arch, &err)) {
    return cli_usage_error("--arch: %s", err.message);
  }
  s->arch.has_skip = args->has_skip;
  s->seed = args->has_seed ? args->seed : s->seed;
  s->learning_rate = args->has_lr ? args->lr : s->learning_rate;
  if (args->has_segment) {
    s->segment_samples = (int)lround(args->segment_seconds * rate);
  }
  s->warmup_samples = args->has_warmup ? (int)args->warmup : s->warmup_samples;
  s->tbptt_samples = args->has_tbptt ? (int)args->tbptt : s->tbptt_samples;
  s->batch_size = args->has_batch ? (int)args->batch : s->batch_size;
  s->clip_norm = args->has_clip ? args->clip : s->clip_norm;
  s->n_threads = args->has_threads ? (int)args->threads : s->n_threads;
  s->validation_fraction = args->has_fraction ? args->fraction
                                              : s->validation_fraction;
  s->max_epochs = args->has_epochs ? (int)args->epochs : s->max_epochs;
  s->max_minutes = args->has_minutes ? args->minutes : s->max_minutes;
  s->patience = args->has_patience ? (int)args->patience : s->patience;
  if (carry_train_settings_check(s, &err)) {
    return cli_usage_error("%s (segments of %d samples with a warm-up of "
                           "%d)", err.message, s->segment_samples,
                           s->warmup_samples);
  }
  return -1;
}

/** An option given to a resumed run must agree with the checkpoint. */
static int check_same(bool given, const char *option, double asked,
                      double kept)
{
  if (given && asked != kept) {
    return cli_usage_error("%s %g differs from the checkpoint's %g; a resumed "
                           "run keeps the settings it started with", option,
                           asked, kept);
  }
  return -1;
}

static int check_arch(const train_args *args, const carry_train_settings *s)
{
  carry_train_settings asked;
  if (!args->arch) {
    return args->has_skip && !s->arch.has_skip
             ? cli_usage_error("--skip differs from the checkpoint, which "
                               "has no skip connection")
             : -1;
  }
  carry_error err = {CARRY_SUCCESS, ""};
  if (carry_train_parse_arch(args->arch, &asked.arch, &err)) {
    return cli_usage_error("--arch: %s", err.message);
  }
  if (asked.arch.type != s->arch.type ||
      asked.arch.n_units != s->arch.n_units ||
      asked.arch.n_layers != s->arch.n_layers ||
      args->has_skip != s->arch.has_skip) {
    char kept[32];
    carry_train_format_arch(&s->arch, kept, sizeof(kept));
    return cli_usage_error("--arch %s%s differs from the checkpoint's %s%s",
                           args->arch, args->has_skip ? " --skip" : "", kept,
                           s->arch.has_skip ? " with skip" : "");
  }
  return -1;
}

static int check_resumed(const train_args *a, const carry_train_settings *s,
                         double rate)
{
  int status = check_arch(a, s);
  const double segment = a->has_segment ? lround(a->segment_seconds * rate)
                                        : 0.0;
  if (status < 0 && a->has_seed && a->seed != s->seed) {
    status = cli_usage_error("--seed %llu differs from the checkpoint's "
                             "%llu; a resumed run keeps the settings it "
                             "started with", (unsigned long long)a->seed,
                             (unsigned long long)s->seed);
  }
  const struct { bool given; const char *name; double asked, kept; } same[] = {
    {a->has_lr, "--lr", a->lr, s->learning_rate},
    {a->has_segment, "--segment-seconds (in samples)", segment,
     s->segment_samples},
    {a->has_warmup, "--warmup", (double)a->warmup, s->warmup_samples},
    {a->has_tbptt, "--tbptt", (double)a->tbptt, s->tbptt_samples},
    {a->has_batch, "--batch", (double)a->batch, s->batch_size},
    {a->has_clip, "--clip", a->clip, s->clip_norm},
    {a->has_threads, "--threads", (double)a->threads, s->n_threads},
    {a->has_fraction, "--validation-fraction", a->fraction,
     s->validation_fraction},
  };
  for (size_t k = 0; status < 0 && k < sizeof(same) / sizeof(same[0]); ++k) {
    status = check_same(same[k].given, same[k].name, same[k].asked,
                        same[k].kept);
  }
  return status;
}

static int resume(train_job *job, const train_args *args)
{
  carry_error err = {CARRY_SUCCESS, ""};
  job->trainer = carry_trainer_resume(args->resume_path, job->data, &err);
  if (!job->trainer) {
    return cli_error(err.status == CARRY_ERR_VALUE ? CLI_EXIT_USAGE
                                                   : CLI_EXIT_MODEL,
                     "cannot resume: %s", err.message);
  }
  const carry_train_settings *s = carry_trainer_settings(job->trainer);
  int status = check_resumed(args, s,
                             carry_train_data_sample_rate(job->data));
  if (status < 0 &&
      carry_trainer_set_limits(job->trainer,
                               args->has_epochs ? (int)args->epochs
                                                : s->max_epochs,
                               args->has_minutes ? args->minutes
                                                 : s->max_minutes,
                               args->has_patience ? (int)args->patience
                                                  : s->patience, &err)) {
    status = cli_usage_error("%s", err.message);
  }
  return status;
}

static int create_trainer(train_job *job, const train_args *args)
{
  if (args->resume_path) {
    return resume(job, args);
  }
  carry_train_settings settings;
  const int status = settings_from_args(
    args, carry_train_data_sample_rate(job->data), &settings);
  if (status >= 0) {
    return status;
  }
  carry_error err = {CARRY_SUCCESS, ""};
  job->trainer = carry_trainer_create(&settings, job->data, &err);
  if (!job->trainer) {
    return cli_error(err.status == CARRY_ERR_NO_MEMORY ? CLI_EXIT_FAILED
                                                       : CLI_EXIT_USAGE,
                     "%s", err.message);
  }
  return -1;
}

/* ------------------------------------------------------------------------ */
/* Progress */

static double now_seconds(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/** "1:02:03" or "2:03". */
static void format_duration(double seconds, char *text, size_t size)
{
  const long s = seconds > 0.0 && seconds < 1e8 ? lround(seconds) : 0;
  if (s >= 3600) {
    snprintf(text, size, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  } else {
    snprintf(text, size, "%ld:%02ld", s / 60, s % 60);
  }
}

/** The time left if every epoch runs (early stopping may end sooner). */
static double eta_seconds(const carry_train_progress *p,
                          const carry_train_settings *s, double run_seconds)
{
  const double per_epoch = p->epoch_seconds > 0.0 ? p->epoch_seconds
                           : p->batch ? run_seconds * p->n_batches / p->batch
                                      : 0.0;
  const double done = p->n_batches ? (double)p->batch / p->n_batches : 0.0;
  double left = per_epoch * ((double)(p->max_epochs - p->epoch) - done);
  if (s->max_minutes > 0.0) {
    left = fmin(left, s->max_minutes * 60.0 - run_seconds);
  }
  return fmax(left, 0.0);
}

static void draw_bar(train_job *job, const carry_train_progress *p)
{
  const double now = now_seconds();
  if (now - job->last_draw < 0.2 && p->batch < p->n_batches) {
    return;
  }
  job->last_draw = now;
  char bar[21], eta[32];
  const int filled = p->n_batches ? 20 * p->batch / p->n_batches : 0;
  for (int k = 0; k < 20; ++k) {
    bar[k] = k < filled ? '#' : '.';
  }
  bar[20] = '\0';
  format_duration(eta_seconds(p, carry_trainer_settings(job->trainer),
                              p->seconds), eta, sizeof(eta));
  fprintf(stderr, "\r\033[Kepoch %d/%d [%s] %d/%d  loss %.4g  val ESR %.4g  "
          "best %.4g (%d)  ETA %s", p->epoch + 1, p->max_epochs, bar,
          p->batch, p->n_batches, p->train_loss, p->val_esr, p->best_val_esr,
          p->best_epoch, eta);
}

static void print_epoch(train_job *job, const carry_train_progress *p)
{
  if (job->is_terminal) {
    fputs("\r\033[K", stderr);
  }
  if (p->epoch == 0) {
    fprintf(stderr, "%s: epoch 0 (initial weights): validation ESR %.4g, "
            "loss %.4g\n", cli_command(), p->val_esr, p->val_loss);
    return;
  }
  const double train_seconds = p->epoch_seconds - p->val_seconds;
  const double train_gemm = p->epoch_gemm_seconds - p->val_gemm_seconds;
  fprintf(stderr, "%s: epoch %d/%d: loss %.4g, validation ESR %.4g "
          "(pre-emphasised %.4g, loss %.4g), best %.4g at epoch %d, lr %.3g; "
          "%.1f s: training %.0f samples/s (%.0f%% in BLAS), validation "
          "%.1f s\n", cli_command(), p->epoch, p->max_epochs, p->train_loss,
          p->val_esr, p->val_esr_pre, p->val_loss, p->best_val_esr,
          p->best_epoch, p->learning_rate, p->epoch_seconds,
          train_seconds > 0.0 ? (double)p->epoch_samples / train_seconds
                              : 0.0,
          train_seconds > 0.0 ? 100.0 * train_gemm / train_seconds : 0.0,
          p->val_seconds);
}

static bool on_progress(const carry_train_progress *p, void *user)
{
  train_job *job = user;
  if (p->event == CARRY_TRAIN_VALIDATED) {
    print_epoch(job, p);
  } else if (job->is_terminal) {
    draw_bar(job, p);
  }
  return !cli_interrupted();
}

/* ------------------------------------------------------------------------ */
/* Training and the result */

/** Trains; a failure (a checkpoint that cannot be written) still leaves
    the best model so far to be saved, and its exit code in `*failure`. */
static void train(train_job *job, int *failure)
{
  carry_error err = {CARRY_SUCCESS, ""};
  cli_catch_interrupts();
  const carry_status st = carry_trainer_run(job->trainer,
                                            job->checkpoint_path,
                                            on_progress, job, &err);
  if (job->is_terminal) {
    fputs("\r\033[K", stderr);
  }
  if (st) {
    *failure = cli_error(st == CARRY_ERR_IO ? CLI_EXIT_FILE : CLI_EXIT_FAILED,
                         "%s; writing the best model so far", err.message);
  }
}

/** The model's name: --name, else OUT's base name without extension. */
static void model_name(const train_args *args, char *name, size_t size)
{
  if (args->name) {
    snprintf(name, size, "%s", args->name);
    return;
  }
  const char *slash = strrchr(args->out_path, '/');
  const char *base = slash ? slash + 1 : args->out_path;
  const char *dot = strrchr(base, '.');
  const int length = dot && dot != base ? (int)(dot - base)
                                        : (int)strlen(base);
  snprintf(name, size, "%.*s", length, base);
}

static int write_json(const char *path, const char *text)
{
  FILE *file = fopen(path, "wb");
  const size_t length = strlen(text);
  bool ok = file && fwrite(text, 1, length, file) == length;
  ok = file && fclose(file) == 0 && ok;
  return ok ? -1 : cli_error(CLI_EXIT_FILE, "cannot write the model");
}

static int save_model(train_job *job, const train_args *args)
{
  char name[CARRY_NAME_SIZE];
  model_name(args, name, sizeof(name));
  carry_error err = {CARRY_SUCCESS, ""};
  carry_model *model = carry_trainer_export(job->trainer, name, true, &err);
  char *text = model ? carry_model_to_json(model, &err) : NULL;
  carry_model_free(model);
  if (!text) {
    return cli_error(CLI_EXIT_FAILED, "cannot make the model: %s",
                     err.message);
  }
  int status = write_json(job->output.temp_path, text);
  free(text);
  if (status < 0) {
    status = cli_output_commit(&job->output);
  }
  return status == CLI_EXIT_OK ? -1 : status;
}

static const char *stop_reason(carry_train_stop stop)
{
  switch (stop) {
  case CARRY_TRAIN_EPOCHS_DONE: return "the last epoch";
  case CARRY_TRAIN_EARLY_STOP: return "early stop";
  case CARRY_TRAIN_TIME_UP: return "the time limit";
  case CARRY_TRAIN_INTERRUPTED: return "interrupted";
  case CARRY_TRAIN_RUNNING: break;
  }
  return "running";
}

static void report(const train_job *job, const train_args *args)
{
  const carry_train_progress *p = carry_trainer_progress(job->trainer);
  const carry_train_settings *s = carry_trainer_settings(job->trainer);
  char arch[32], time[32];
  carry_train_format_arch(&s->arch, arch, sizeof(arch));
  format_duration(p->seconds, time, sizeof(time));
  char knobs[32] = "no knobs";
  if (job->n_knobs) {
    snprintf(knobs, sizeof(knobs), "%d knob%s", job->n_knobs,
             job->n_knobs == 1 ? "" : "s");
  }
  cli_note("wrote '%s': %s%s, %s, %g Hz; best validation ESR %.4g "
           "(pre-emphasised %.4g) at epoch %d of %d (%s); validation loss "
           "%.4g -> %.4g; %s of training", args->out_path, arch,
           s->arch.has_skip ? " with skip" : "", knobs,
           carry_train_data_sample_rate(job->data), p->best_val_esr,
           p->best_val_esr_pre, p->best_epoch, p->epoch,
           stop_reason(p->stop), p->initial_val_loss, p->best_val_loss,
           time);
  if (carry_train_is_aidax_size(&s->arch, job->n_knobs)) {
    cli_note("AIDA-X can load this model as well");
  }
}

static int finish(train_job *job, const train_args *args, int failure)
{
  int status = save_model(job, args);
  if (status >= 0) {
    return status;
  }
  report(job, args);
  if (failure >= 0) {
    return failure;
  }
  if (carry_trainer_progress(job->trainer)->stop == CARRY_TRAIN_INTERRUPTED) {
    return cli_error(CLI_EXIT_FAILED, "interrupted: wrote the best model so "
                     "far to '%s' and a checkpoint to '%s'; continue with "
                     "--resume %s", args->out_path, job->checkpoint_path,
                     job->checkpoint_path);
  }
  return CLI_EXIT_OK;
}

/* ------------------------------------------------------------------------ */
/* The run */

static int set_up(train_job *job, const train_args *args)
{
  job->is_terminal = isatty(STDERR_FILENO);
  const char *given = args->checkpoint_path;
  const size_t n = strlen(args->out_path) + sizeof(".checkpoint");
  job->checkpoint_path = malloc(given ? strlen(given) + 1 : n);
  if (!job->checkpoint_path) {
    return cli_error(CLI_EXIT_FAILED, "out of memory");
  }
  snprintf(job->checkpoint_path, given ? strlen(given) + 1 : n, "%s%s",
           given ? given : args->out_path, given ? "" : ".checkpoint");
  int status = load_data(job, args);
  if (status < 0) {
    status = create_trainer(job, args);
  }
  if (status < 0) {
    /* Before training, so that a bad output directory fails at once. */
    status = cli_output_open(&job->output, args->out_path);
    status = status == CLI_EXIT_OK ? -1 : status;
  }
  carry_error err = {CARRY_SUCCESS, ""};
  if (status < 0 && carry_trainer_save_checkpoint(job->trainer,
                                                  job->checkpoint_path,
                                                  &err)) {
    status = cli_error(CLI_EXIT_FILE, "%s", err.message);
  }
  return status;
}

/** OpenBLAS falls back to its generic kernels on a processor it does not
    know (such as a recent one in a virtual machine), at half the speed. */
static void check_blas_kernels(void)
{
#if defined(__x86_64__)
  const char *kernels = carry_train_blas_kernels();
  if (!getenv("OPENBLAS_CORETYPE") && kernels &&
      (!strcmp(kernels, "Prescott") || !strcmp(kernels, "Core2")) &&
      __builtin_cpu_supports("avx2")) {
    cli_note("OpenBLAS does not recognise this processor and runs its "
             "generic %s kernels; OPENBLAS_CORETYPE=%s in the environment "
             "makes training about twice as fast", kernels,
             __builtin_cpu_supports("avx512f") ? "SkylakeX" : "Haswell");
  }
#endif
}

static void free_job(train_job *job)
{
  cli_output_discard(&job->output);
  carry_trainer_free(job->trainer);
  carry_train_data_free(job->data);
  carry_train_manifest_free(job->manifest);
  free(job->pairs);
  free(job->checkpoint_path);
}

int carry_train(int argc, char **argv)
{
  static train_args args;  // large (the pairs): kept off the stack
  int status = parse_args(argc, argv, &args);
  if (status >= 0) {
    return status;
  }
  train_job job;
  memset(&job, 0, sizeof(job));
  status = set_up(&job, &args);
  if (status < 0) {
    int failure = -1;
    check_blas_kernels();
    train(&job, &failure);
    status = finish(&job, &args, failure);
  }
  free_job(&job);
  return status;
}
