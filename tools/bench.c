/*
  carry bench: nanoseconds per sample of one stream, for a standard set of
  random models or for model files, with the real-time factor and the
  efficiency against this machine's peak multiply-add rate measured in the
  same process.  With --rate-ratio, each model is also timed as a
  sample-rate-corrected stream at each ratio given, in the same rounds, so
  that the cost of the correction per host sample is a ratio measured in
  one run.

  Machines drift between processes and over seconds, so the models are
  timed in turn, round after round, each round starting with a short
  measurement of the peak rate, and each model reports its median round
  and its median ratio to that round's peak.
*/

#include "cli.h"
#include "peak.h"

#include "carry.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_MODELS 32
#define MAX_ROUNDS 64
#define MAX_RATIOS 4
#define RATE 48000.0

typedef struct {
  char label[64];
  carry_model *model;
  bool owns_model;  ///< Else another case's model, timed at another ratio
  double ratio;     ///< Rate ratio of a corrected stream; 1 for plain
  carry_stream *stream;
  carry_batch *batch;               ///< With --streams
  double ns_per_sample[MAX_ROUNDS];
  double batch_ns[MAX_ROUNDS];      ///< Per sample per stream, lockstep
  double efficiency[MAX_ROUNDS];  ///< Against the same round's peak
} bench_case;

typedef struct {
  double seconds;        ///< Audio per round
  int n_rounds;
  int block;
  carry_kernels kernels;
  bool is_json;
  const char *files[MAX_MODELS];
  int n_files;
  double ratios[MAX_RATIOS];  ///< Corrected streams' rate ratios
  int n_ratios;
  int n_streams;              ///< --streams: lanes of a lockstep batch, or 0
} bench_options;

static const struct {
  carry_layer_type type;
  int n_units;
  int n_stacked;
} standard_set[] = {
  {CARRY_LAYER_LSTM, 8, 1},  {CARRY_LAYER_LSTM, 16, 1},
  {CARRY_LAYER_LSTM, 20, 1}, {CARRY_LAYER_LSTM, 32, 1},
  {CARRY_LAYER_LSTM, 40, 1}, {CARRY_LAYER_LSTM, 64, 1},
  {CARRY_LAYER_LSTM, 16, 2}, {CARRY_LAYER_LSTM, 32, 2},
  {CARRY_LAYER_GRU, 16, 1},  {CARRY_LAYER_GRU, 32, 1},
};

/* ------------------------------------------------------------------------ */
/* Models */

/** Uniform in [-1, 1) from a fixed sequence, so every run benches the same
    weights. */
static float next_weight(uint64_t *state)
{
  *state = *state * 6364136223846793005ull + 1442695040888963407ull;
  return (float)((double)(*state >> 40) / 8388608.0 - 1.0);
}

static void fill(float *values, size_t n, float scale, uint64_t *state)
{
  for (size_t k = 0; values && k < n; ++k) {
    values[k] = scale * next_weight(state);
  }
}

/** 1 input, `n_stacked` recurrent layers, dense(1), weights in PyTorch's
    default range 1/sqrt(H). */
static carry_model *random_model(carry_layer_type type, int n_units,
                                 int n_stacked, carry_error *err)
{
  carry_model_spec spec;
  carry_model_spec_init(&spec);
  for (int l = 0; l < n_stacked; ++l) {
    spec.layers[l] = (carry_layer_spec){.type = type, .n_units = n_units};
  }
  spec.layers[n_stacked] =
    (carry_layer_spec){.type = CARRY_LAYER_DENSE, .n_units = 1};
  spec.n_layers = n_stacked + 1;
  spec.sample_rate = RATE;
  carry_model *model = carry_model_create(&spec, err);
  uint64_t state = 12345;
  for (int l = 0; model && l < spec.n_layers; ++l) {
    carry_layer_weights w = carry_model_layer(model, l);
    const float scale = 1.0f / sqrtf((float)w.n_units);
    const size_t G = (size_t)w.n_rows;
    fill(w.kernel, (size_t)w.n_in * G, scale, &state);
    fill(w.recurrent, (size_t)w.n_units * G, scale, &state);
    fill(w.bias, G, scale, &state);
    fill(w.recurrent_bias, G, scale, &state);
  }
  if (model && carry_model_prepare(model, err)) {
    carry_model_free(model);
    return NULL;
  }
  return model;
}

static const char *type_name(carry_layer_type type)
{
  return type == CARRY_LAYER_GRU ? "GRU" : "LSTM";
}

#define N_STANDARD ((int)(sizeof(standard_set) / sizeof(standard_set[0])))

static int add_standard_cases(bench_case *cases)
{
  const int n = N_STANDARD;
  for (int k = 0; k < n; ++k) {
    carry_error err;
    cases[k].model = random_model(standard_set[k].type,
                                  standard_set[k].n_units,
                                  standard_set[k].n_stacked, &err);
    if (!cases[k].model) {
      cli_error(CLI_EXIT_FAILED, "%s", err.message);
      return -1;
    }
    snprintf(cases[k].label, sizeof(cases[k].label), "%s-%d%s",
             type_name(standard_set[k].type), standard_set[k].n_units,
             standard_set[k].n_stacked > 1 ? "x2" : "");
    cases[k].owns_model = true;
  }
  return n;
}

static int add_file_cases(const bench_options *opt, bench_case *cases)
{
  for (int k = 0; k < opt->n_files; ++k) {
    carry_error err;
    if (!(cases[k].model = carry_model_load(opt->files[k], &err))) {
      cli_error(CLI_EXIT_MODEL, "%s", err.message);
      return -1;
    }
    const char *base = strrchr(opt->files[k], '/');
    snprintf(cases[k].label, sizeof(cases[k].label), "%s",
             base ? base + 1 : opt->files[k]);
    cases[k].owns_model = true;
  }
  return opt->n_files;
}

/** After the `n` plain cases, one per model and rate ratio (the caller
    checks that they fit); returns the number of cases in all. */
static int add_ratio_cases(const bench_options *opt, bench_case *cases, int n)
{
  int total = n;
  for (int k = 0; k < n; ++k) {
    cases[k].ratio = 1.0;
    for (int r = 0; r < opt->n_ratios; ++r, ++total) {
      cases[total].model = cases[k].model;
      cases[total].ratio = opt->ratios[r];
      snprintf(cases[total].label, sizeof(cases[total].label), "%.40s R=%g",
               cases[k].label, opt->ratios[r]);
    }
  }
  return total;
}

/* ------------------------------------------------------------------------ */
/* Timing */

static double now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/** Processes `n` samples of `in` in blocks; returns ns per sample. */
static double time_round(carry_stream *stream, const float *in, float *out,
                         size_t n, int block)
{
  const double start = now_ns();
  for (size_t t = 0; t < n; t += (size_t)block) {
    const size_t count = n - t < (size_t)block ? n - t : (size_t)block;
    carry_stream_process(stream, in + t, NULL, out + t, (uint32_t)count);
  }
  return (now_ns() - start) / (double)n;
}

/** The same for a lockstep batch, every lane running `in`; returns ns per
    sample per stream. */
static double time_batch_round(carry_batch *batch, const float *in,
                               float *out, size_t n, int block)
{
  const int S = carry_batch_n_lanes(batch);
  const float *lanes_in[CARRY_MAX_LANES];
  float *lanes_out[CARRY_MAX_LANES];
  for (int s = 0; s < S; ++s) {
    carry_batch_reset_lane(batch, s, NULL, NULL);
  }
  const double start = now_ns();
  for (size_t t = 0; t < n; t += (size_t)block) {
    const size_t count = n - t < (size_t)block ? n - t : (size_t)block;
    for (int s = 0; s < S; ++s) {
      lanes_in[s] = in + t;
      lanes_out[s] = out + t;  // the outputs are not looked at
    }
    carry_batch_process(batch, lanes_in, NULL, lanes_out, (uint32_t)count);
  }
  return (now_ns() - start) / ((double)n * S);
}

static int compare_doubles(const void *a, const void *b)
{
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(const double *values, int n)
{
  double sorted[MAX_ROUNDS];
  memcpy(sorted, values, sizeof(double) * (size_t)n);
  qsort(sorted, (size_t)n, sizeof(double), compare_doubles);
  return n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
}

/** A guitar-like level: a decaying tone with a little noise. */
static void make_input(float *in, size_t n)
{
  uint64_t state = 99;
  for (size_t t = 0; t < n; ++t) {
    const double s = (double)t / RATE;
    in[t] = (float)(0.5 * sin(2.0 * M_PI * 196.0 * s) * exp(-2.0 * fmod(s, 1.0)) +
                    0.01 * next_weight(&state));
  }
}

static double peak_rate(carry_kernels kernels, double seconds)
{
#if defined(CARRY_HAVE_AVX2)
  if (kernels == CARRY_KERNELS_AVX2) {
    return carry_peak_macs_per_ns_avx2(seconds);
  }
#endif
  (void)kernels;
  return carry_peak_macs_per_ns_portable(seconds);
}

/** Returns the median peak rate over the rounds. */
static double run_rounds(const bench_options *opt, bench_case *cases,
                         int n_cases, const float *in, float *out, size_t n)
{
  const carry_kernels kernels = carry_stream_kernels(cases[0].stream);
  double peaks[MAX_ROUNDS];
  peak_rate(kernels, 0.1); // wake the clocks
  for (int k = 0; k < n_cases; ++k) { // warm caches
    time_round(cases[k].stream, in, out, n / 10, opt->block);
    if (cases[k].batch) {
      time_batch_round(cases[k].batch, in, out, n / 10, opt->block);
    }
  }
  for (int r = 0; r < opt->n_rounds; ++r) {
    peaks[r] = peak_rate(kernels, 0.03);
    for (int k = 0; k < n_cases; ++k) {
      const double macs = (double)carry_model_macs(cases[k].model);
      carry_stream_reset(cases[k].stream);
      cases[k].ns_per_sample[r] =
        time_round(cases[k].stream, in, out, n, opt->block);
      cases[k].efficiency[r] = macs / (cases[k].ns_per_sample[r] * peaks[r]);
      if (cases[k].batch) {
        cases[k].batch_ns[r] =
          time_batch_round(cases[k].batch, in, out, n, opt->block);
      }
    }
  }
  return median(peaks, opt->n_rounds);
}

/* ------------------------------------------------------------------------ */
/* Report */

/** The median over the rounds of the one-stream ns over the lockstep ns
    per stream of the same round. */
static double batch_speedup(const bench_case *c, int n_rounds)
{
  double ratios[MAX_ROUNDS];
  for (int r = 0; r < n_rounds; ++r) {
    ratios[r] = c->ns_per_sample[r] / c->batch_ns[r];
  }
  return median(ratios, n_rounds);
}

static void print_table(const bench_options *opt, const bench_case *cases,
                        int n_cases, carry_kernels kernels, double peak)
{
  printf("kernels %s, block %d, %.3g s of 48 kHz audio per round, median of "
         "%d rounds\n",
         carry_kernels_name(kernels), opt->block, opt->seconds, opt->n_rounds);
  printf("peak: %.1f multiply-adds per ns (8-lane vectors, median of the "
         "rounds' own measurements)\n\n", peak);
  if (opt->n_streams) {
    printf("lockstep: %d streams in one batch, ns per sample per stream; "
           "speed-up: one stream's ns / that, median of the rounds\n\n",
           opt->n_streams);
  }
  printf("%-20s %12s %11s %12s %11s", "model", "MACs/sample", "ns/sample",
         "x real time", "efficiency");
  printf(opt->n_streams ? " %11s %9s\n" : "\n", "lockstep ns", "speed-up");
  for (int k = 0; k < n_cases; ++k) {
    const double ns = median(cases[k].ns_per_sample, opt->n_rounds);
    const double macs = (double)carry_model_macs(cases[k].model);
    printf("%-20s %12.0f %11.1f %12.0f %10.1f%%", cases[k].label, macs, ns,
           1e9 / RATE / ns,
           100.0 * median(cases[k].efficiency, opt->n_rounds));
    if (cases[k].batch) {
      printf(" %11.1f %8.2fx", median(cases[k].batch_ns, opt->n_rounds),
             batch_speedup(&cases[k], opt->n_rounds));
    }
    printf("\n");
  }
}

static void print_json(const bench_options *opt, const bench_case *cases,
                       int n_cases, carry_kernels kernels, double peak)
{
  printf("{\"kernels\": \"%s\", \"block\": %d, \"seconds\": %g, "
         "\"rounds\": %d, \"peak_macs_per_ns\": %.3f, \"models\": [",
         carry_kernels_name(kernels), opt->block, opt->seconds, opt->n_rounds,
         peak);
  for (int k = 0; k < n_cases; ++k) {
    const double ns = median(cases[k].ns_per_sample, opt->n_rounds);
    const double macs = (double)carry_model_macs(cases[k].model);
    printf("%s\n  {\"model\": \"%s\", \"macs_per_sample\": %.0f, "
           "\"ns_per_sample\": %.2f, \"real_time_factor\": %.1f, "
           "\"efficiency\": %.4f",
           k ? "," : "", cases[k].label, macs, ns, 1e9 / RATE / ns,
           median(cases[k].efficiency, opt->n_rounds));
    if (cases[k].batch) {
      printf(", \"streams\": %d, \"lockstep_ns_per_sample\": %.2f, "
             "\"lockstep_speedup\": %.3f", opt->n_streams,
             median(cases[k].batch_ns, opt->n_rounds),
             batch_speedup(&cases[k], opt->n_rounds));
    }
    printf("}");
  }
  printf("\n]}\n");
}

/* ------------------------------------------------------------------------ */
/* Arguments */

static void print_help(void)
{
  printf(
    "Usage: carry bench [OPTION]... [--model FILE]...\n"
    "Time one stream per model: the median ns per sample over several\n"
    "rounds, the real-time factor at 48 kHz, and the efficiency (the\n"
    "model's multiply-adds per sample over this machine's peak rate).\n"
    "Without --model, a standard set of random models is timed.\n\n"
    "  -m, --model FILE     time this model file (repeatable)\n"
    "  -s, --seconds S      audio per round, in seconds (default 10)\n"
    "  -r, --rounds N       rounds; each model reports its median (default 5)\n"
    "  -b, --block N        samples per process call (default 128)\n"
    "  -k, --kernels NAME   auto, avx2, portable or reference (default auto)\n"
    "  -R, --rate-ratio R   also time each model as a sample-rate-corrected\n"
    "                       stream at R times its rate, 1 to 16 (repeatable,\n"
    "                       up to 4 ratios; linear interpolation, the default)\n"
    "  -S, --streams N      also time N streams (1 to 16) in a lockstep batch,\n"
    "                       as `carry process` runs a batch of files: ns per\n"
    "                       sample per stream and the speed-up over one stream\n"
    "      --json           print JSON instead of a table\n"
    "  -h, --help           show this help\n");
}

static bool parse_kernels(const char *name, carry_kernels *kernels)
{
  for (int k = CARRY_KERNELS_AUTO; k <= CARRY_KERNELS_AVX2; ++k) {
    if (!strcmp(name, carry_kernels_name((carry_kernels)k))) {
      *kernels = (carry_kernels)k;
      return true;
    }
  }
  return false;
}

/** Returns -1 to go on, else an exit code. */
static int parse_option(int c, const char *arg, bench_options *opt)
{
  long value = 0;
  double seconds = 0.0;
  switch (c) {
  case 'm':
    if (opt->n_files == MAX_MODELS) {
      return cli_usage_error("at most %d models at a time", MAX_MODELS);
    }
    opt->files[opt->n_files++] = arg;
    return -1;
  case 's':
    if (!cli_parse_double(arg, &seconds) || seconds < 0.01 || seconds > 600) {
      return cli_usage_error("--seconds must be 0.01 to 600, not '%s'", arg);
    }
    opt->seconds = seconds;
    return -1;
  case 'r':
    if (!cli_parse_long(arg, 1, MAX_ROUNDS, &value)) {
      return cli_usage_error("--rounds must be 1 to %d, not '%s'", MAX_ROUNDS,
                             arg);
    }
    opt->n_rounds = (int)value;
    return -1;
  case 'b':
    if (!cli_parse_long(arg, 1, 65536, &value)) {
      return cli_usage_error("--block must be 1 to 65536, not '%s'", arg);
    }
    opt->block = (int)value;
    return -1;
  case 'k':
    if (!parse_kernels(arg, &opt->kernels)) {
      return cli_usage_error("unknown kernels '%s' (auto, avx2, portable, "
                             "reference)", arg);
    }
    return -1;
  case 'R':
    if (opt->n_ratios == MAX_RATIOS) {
      return cli_usage_error("at most %d rate ratios", MAX_RATIOS);
    }
    if (!cli_parse_double(arg, &seconds) || !(seconds >= 1.0) ||
        seconds > CARRY_MAX_RATE_RATIO) {
      return cli_usage_error("--rate-ratio must be 1 to %g, not '%s'",
                             CARRY_MAX_RATE_RATIO, arg);
    }
    opt->ratios[opt->n_ratios++] = seconds;
    return -1;
  case 'S':
    if (!cli_parse_long(arg, 1, CARRY_MAX_LANES, &value)) {
      return cli_usage_error("--streams must be 1 to %d, not '%s'",
                             CARRY_MAX_LANES, arg);
    }
    opt->n_streams = (int)value;
    return -1;
  case 'j': opt->is_json = true; return -1;
  case 'h': print_help(); return CLI_EXIT_OK;
  default: return cli_bad_option();
  }
}

static int parse_args(int argc, char **argv, bench_options *opt)
{
  static const struct option options[] = {
    {"model", required_argument, NULL, 'm'},
    {"seconds", required_argument, NULL, 's'},
    {"rounds", required_argument, NULL, 'r'},
    {"block", required_argument, NULL, 'b'},
    {"kernels", required_argument, NULL, 'k'},
    {"rate-ratio", required_argument, NULL, 'R'},
    {"streams", required_argument, NULL, 'S'},
    {"json", no_argument, NULL, 'j'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
  };
  *opt = (bench_options){.seconds = 10.0, .n_rounds = 5, .block = 128};
  cli_getopt_reset();
  int c = 0;
  while ((c = getopt_long(argc, argv, "m:s:r:b:k:R:S:h", options, NULL)) != -1) {
    const int code = parse_option(c, optarg, opt);
    if (code >= 0) {
      return code;
    }
  }
  if (optind < argc) {
    return cli_usage_error("unexpected argument '%s'", argv[optind]);
  }
  if (!carry_kernels_available(opt->kernels)) {
    return cli_error(CLI_EXIT_USAGE, "this CPU cannot run the %s kernels",
                     carry_kernels_name(opt->kernels));
  }
  return -1;
}

/* ------------------------------------------------------------------------ */

static int create_streams(const bench_options *opt, bench_case *cases,
                          int n_cases)
{
  for (int k = 0; k < n_cases; ++k) {
    carry_error err;
    cases[k].stream =
      cases[k].ratio > 1.0
        ? carry_stream_create_corrected_with(
            cases[k].model, (uint32_t)opt->block, cases[k].ratio,
            opt->kernels, CARRY_INTERP_LINEAR, &err)
        : carry_stream_create_with(cases[k].model, (uint32_t)opt->block,
                                   opt->kernels, &err);
    if (!cases[k].stream) {
      return cli_error(CLI_EXIT_FAILED, "%s", err.message);
    }
    if (opt->n_streams && cases[k].ratio == 1.0 &&
        !(cases[k].batch = carry_batch_create(cases[k].model, opt->n_streams,
                                              opt->kernels, &err))) {
      return cli_error(CLI_EXIT_FAILED, "%s", err.message);
    }
  }
  return CLI_EXIT_OK;
}

static int bench(const bench_options *opt, bench_case *cases, int n_cases)
{
  const size_t n = (size_t)(opt->seconds * RATE);
  float *in = malloc(n * sizeof(float)), *out = malloc(n * sizeof(float));
  int code = in && out ? create_streams(opt, cases, n_cases)
                       : cli_error(CLI_EXIT_FAILED, "out of memory");
  if (code == CLI_EXIT_OK) {
    const carry_kernels kernels = carry_stream_kernels(cases[0].stream);
    make_input(in, n);
    const double peak = run_rounds(opt, cases, n_cases, in, out, n);
    (opt->is_json ? print_json : print_table)(opt, cases, n_cases, kernels,
                                              peak);
  }
  free(in);
  free(out);
  return code;
}

int carry_bench(int argc, char **argv)
{
  bench_options opt;
  int code = parse_args(argc, argv, &opt);
  if (code >= 0) {
    return code;
  }
  bench_case cases[MAX_MODELS];
  memset(cases, 0, sizeof(cases));
  const int n_models = opt.n_files ? opt.n_files : N_STANDARD;
  if (n_models * (1 + opt.n_ratios) > MAX_MODELS) {
    return cli_usage_error("at most %d models times (1 + rate ratios) at a "
                           "time", MAX_MODELS);
  }
  const int n_cases = opt.n_files ? add_file_cases(&opt, cases)
                                  : add_standard_cases(cases);
  code = n_cases < 0 ? (opt.n_files ? CLI_EXIT_MODEL : CLI_EXIT_FAILED)
                     : bench(&opt, cases, add_ratio_cases(&opt, cases,
                                                          n_cases));
  for (int k = 0; k < MAX_MODELS; ++k) {
    carry_stream_free(cases[k].stream);
    carry_batch_free(cases[k].batch);
    if (cases[k].owns_model) {
      carry_model_free(cases[k].model);
    }
  }
  return code;
}
