/*
  carry bench: nanoseconds per sample of one stream, for a standard set of
  random models or for model files, with the real-time factor and the
  efficiency against this machine's peak multiply-add rate measured in the
  same process.  With --rate-ratio, each model is also timed as a
  sample-rate-corrected stream at each ratio given, in the same rounds, so
  that the cost of the correction per host sample is a ratio measured in
  one run.

  Each model runs in both qualities (exact and fast activations) by
  default, each quality its own stream timed in the same rounds.  The
  standard models carry fixed reference figures, measured elsewhere, and
  the goals set against them (issue 8); the table prints the speed-up and
  whether each goal is met.  `--plugin` (bench_plugin.c) times the LV2
  plugin's run() against the bare core instead.

  Machines drift between processes and over seconds, so the models are
  timed in turn, round after round, each round starting with a short
  measurement of the peak rate, and each model reports its median round
  and its median ratio to that round's peak.
*/

#include "bench.h"
#include "cli.h"
#include "peak.h"

#include "carry.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_CASES 64

/** What a case is measured against: a reference figure and the speed-up
    over it that is the goal.  No reference: `ns` is 0. */
typedef struct {
  double ns;    ///< Reference ns per sample
  double goal;  ///< Speed-up wanted over it
} bench_target;

typedef struct {
  char label[64];
  carry_model *model;
  bool owns_model;  ///< Else another case's model, timed at another ratio
                    ///< or quality
  double ratio;     ///< Rate ratio of a corrected stream; 1 for plain
  carry_quality quality;
  bench_target target;  ///< Plain standard models only
  carry_stream *stream;
  carry_stream *pair[2];  ///< --stereo: two more streams, run in step
  carry_batch *batch;     ///< --streams: a lockstep batch
  double ns_per_sample[BENCH_MAX_ROUNDS];
  double batch_ns[BENCH_MAX_ROUNDS];  ///< Per sample per stream, lockstep
  double stereo_ratio[BENCH_MAX_ROUNDS];  ///< A pair's time over one's
  double efficiency[BENCH_MAX_ROUNDS];  ///< Against the same round's peak
  double cycles[BENCH_MAX_ROUNDS];  ///< ns times the same round's clock
} bench_case;

/**
  The reference figures of issue 8, in ns per sample of one stream at
  48 kHz, measured on AMD EPYC machines with AVX2 and FMA (no AVX-512):
  "best exact" is the fastest of RTNeural (compile-time, xsimd and Eigen
  backends) and the NAM core with exact tanh; "fast" is the NAM core with
  its fast tanh (none for a GRU).  The goals: exact at least 1x best exact
  (1.5x for LSTM-32, LSTM-40 and LSTM-32x2, 1.25x for LSTM-64); fast at
  least 1.5x NAM's fast for every LSTM.
*/
static const struct {
  carry_layer_type type;
  int n_units;
  int n_stacked;
  bench_target exact;
  bench_target fast;
} standard_set[] = {
  {CARRY_LAYER_LSTM, 8, 1, {65, 1.0}, {94, 1.5}},
  {CARRY_LAYER_LSTM, 16, 1, {112, 1.0}, {135, 1.5}},
  {CARRY_LAYER_LSTM, 20, 1, {196, 1.0}, {177, 1.5}},
  {CARRY_LAYER_LSTM, 32, 1, {252, 1.5}, {240, 1.5}},
  {CARRY_LAYER_LSTM, 40, 1, {377, 1.5}, {363, 1.5}},
  {CARRY_LAYER_LSTM, 64, 1, {985, 1.25}, {1142, 1.5}},
  {CARRY_LAYER_LSTM, 16, 2, {253, 1.0}, {265, 1.5}},
  {CARRY_LAYER_LSTM, 32, 2, {803, 1.5}, {899, 1.5}},
  {CARRY_LAYER_GRU, 16, 1, {85, 1.0}, {0, 0}},
  {CARRY_LAYER_GRU, 32, 1, {203, 1.0}, {0, 0}},
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

/** Weights in PyTorch's default range 1/sqrt(H). */
carry_model *bench_random_model(carry_layer_type type, int n_units,
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
  spec.sample_rate = BENCH_RATE;
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

/** The first quality in `qualities` from `from` on, or -1. */
static int next_quality(unsigned qualities, int from)
{
  for (int q = from; q <= CARRY_QUALITY_FAST; ++q) {
    if (qualities & (1u << q)) {
      return q;
    }
  }
  return -1;
}

/** One case per quality asked for, after `cases[0]`, which holds the
    model; `targets` (NULL for a file) gives each quality's reference.
    Returns the number of cases made. */
static int add_qualities(const bench_options *opt, bench_case *cases,
                         const bench_target *targets)
{
  int n = 0;
  for (int q = next_quality(opt->qualities, 0); q >= 0;
       q = next_quality(opt->qualities, q + 1), ++n) {
    if (n) {
      cases[n].model = cases[0].model;
      memcpy(cases[n].label, cases[0].label, sizeof(cases[n].label));
    }
    cases[n].quality = (carry_quality)q;
    cases[n].target = targets ? targets[q] : (bench_target){0, 0};
  }
  return n;
}

/** "LSTM-16x2": standard model k's name. */
static void standard_label(int k, char *label, size_t size)
{
  snprintf(label, size, "%s-%d%s", type_name(standard_set[k].type),
           standard_set[k].n_units, standard_set[k].n_stacked > 1 ? "x2" : "");
}

static int add_standard_cases(const bench_options *opt, bench_case *cases)
{
  int n = 0;
  for (int k = 0; k < N_STANDARD; ++k) {
    carry_error err;
    bench_case *first = &cases[n];
    first->model = bench_random_model(standard_set[k].type,
                                      standard_set[k].n_units,
                                      standard_set[k].n_stacked, &err);
    if (!first->model) {
      cli_error(CLI_EXIT_FAILED, "%s", err.message);
      return -1;
    }
    standard_label(k, first->label, sizeof(first->label));
    first->owns_model = true;
    const bench_target targets[] = {standard_set[k].exact,
                                    standard_set[k].fast};
    n += add_qualities(opt, first, targets);
  }
  return n;
}

static int add_file_cases(const bench_options *opt, bench_case *cases)
{
  int n = 0;
  for (int k = 0; k < opt->n_files; ++k) {
    carry_error err;
    bench_case *first = &cases[n];
    if (!(first->model = carry_model_load(opt->files[k], &err))) {
      cli_error(CLI_EXIT_MODEL, "%s", err.message);
      return -1;
    }
    const char *base = strrchr(opt->files[k], '/');
    snprintf(first->label, sizeof(first->label), "%s",
             base ? base + 1 : opt->files[k]);
    first->owns_model = true;
    n += add_qualities(opt, first, NULL);
  }
  return n;
}

/** After the `n` plain cases, one per case and rate ratio (the caller
    checks that they fit); returns the number of cases in all. */
static int add_ratio_cases(const bench_options *opt, bench_case *cases, int n)
{
  int total = n;
  for (int k = 0; k < n; ++k) {
    cases[k].ratio = 1.0;
    for (int r = 0; r < opt->n_ratios; ++r, ++total) {
      cases[total].model = cases[k].model;
      cases[total].ratio = opt->ratios[r];
      cases[total].quality = cases[k].quality;
      snprintf(cases[total].label, sizeof(cases[total].label), "%.40s R=%g",
               cases[k].label, opt->ratios[r]);
    }
  }
  return total;
}

/* ------------------------------------------------------------------------ */
/* Timing */

double bench_now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/** Processes `n` samples of `in` in blocks; returns ns per sample. */
static double time_round(carry_stream *stream, const float *in, float *out,
                         size_t n, int block)
{
  const double start = bench_now_ns();
  for (size_t t = 0; t < n; t += (size_t)block) {
    const size_t count = n - t < (size_t)block ? n - t : (size_t)block;
    carry_stream_process(stream, in + t, NULL, out + t, (uint32_t)count);
  }
  return (bench_now_ns() - start) / (double)n;
}

/** The same for a stereo pair in step (carry_stream_process_pair): ns per
    sample of both channels. */
static double time_pair_round(carry_stream *const *pair, const float *in,
                              float *out, size_t n, int block)
{
  const double start = bench_now_ns();
  for (size_t t = 0; t < n; t += (size_t)block) {
    const size_t count = n - t < (size_t)block ? n - t : (size_t)block;
    // the left channel's output is overwritten by the right's: only the
    // time counts
    carry_stream_process_pair(pair[0], pair[1], in + t, in + t, NULL,
                              out + t, out + t, (uint32_t)count);
  }
  return (bench_now_ns() - start) / (double)n;
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
  const double start = bench_now_ns();
  for (size_t t = 0; t < n; t += (size_t)block) {
    const size_t count = n - t < (size_t)block ? n - t : (size_t)block;
    for (int s = 0; s < S; ++s) {
      lanes_in[s] = in + t;
      lanes_out[s] = out + t;  // the outputs are not looked at
    }
    carry_batch_process(batch, lanes_in, NULL, lanes_out, (uint32_t)count);
  }
  return (bench_now_ns() - start) / ((double)n * S);
}

static int compare_doubles(const void *a, const void *b)
{
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double bench_median(const double *values, int n)
{
  double sorted[BENCH_MAX_ROUNDS];
  memcpy(sorted, values, sizeof(double) * (size_t)n);
  qsort(sorted, (size_t)n, sizeof(double), compare_doubles);
  return n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
}

void bench_make_input(float *in, size_t n)
{
  uint64_t state = 99;
  for (size_t t = 0; t < n; ++t) {
    const double s = (double)t / BENCH_RATE;
    in[t] = (float)(0.5 * sin(2.0 * M_PI * 196.0 * s) * exp(-2.0 * fmod(s, 1.0)) +
                    0.01 * next_weight(&state));
  }
}

static double peak_rate(carry_kernels kernels, double seconds)
{
#if defined(CARRY_HAVE_AVX512)
  if (kernels == CARRY_KERNELS_AVX512) {
    return carry_peak_macs_per_ns_avx512(seconds);
  }
#endif
#if defined(CARRY_HAVE_AVX2)
  if (kernels == CARRY_KERNELS_AVX2) {
    return carry_peak_macs_per_ns_avx2(seconds);
  }
#endif
  (void)kernels;
  return carry_peak_macs_per_ns_portable(seconds);
}

/** The core's clock as this process sees it, in GHz: a chain of dependent
    integer additions (one cycle each on every x86-64 core) timed for about
    `seconds`, the best of repeated tries.  A virtual machine's clock and
    the time its host takes away both show in it, so that ns times it
    gives the cycles a sample took on this core.  0 where unknown. */
static double clock_ghz(double seconds)
{
#if defined(__x86_64__)
  const long n_loops = 200000;  // 20 million additions, some 10 ms
  double best = 0.0, spent = 0.0;
  uint64_t x = 0;
  while (spent < seconds * 1e9) {
    const double start = bench_now_ns();
    for (long k = 0; k < n_loops; ++k) {
      __asm__ volatile(".rept 100\n\tadd %1, %0\n\t.endr"
                       : "+r"(x)
                       : "r"((uint64_t)1));
    }
    const double elapsed = bench_now_ns() - start;
    best = fmax(best, 100.0 * (double)n_loops / elapsed);
    spent += elapsed;
  }
  return best;
#else
  (void)seconds;
  return 0.0;
#endif
}

/** Returns the median peak rate over the rounds, and their median clock
    in `ghz`.  Within a round the cases run in turn (a model's exact and
    fast streams one after the other), so that drift over seconds falls on
    all alike. */
static double run_rounds(const bench_options *opt, bench_case *cases,
                         int n_cases, const float *in, float *out, size_t n,
                         double *ghz)
{
  const carry_kernels kernels = carry_stream_kernels(cases[0].stream);
  double peaks[BENCH_MAX_ROUNDS], clocks[BENCH_MAX_ROUNDS];
  peak_rate(kernels, 0.1); // wake the clocks
  for (int k = 0; k < n_cases; ++k) { // warm caches
    time_round(cases[k].stream, in, out, n / 10, opt->block);
    if (cases[k].batch) {
      time_batch_round(cases[k].batch, in, out, n / 10, opt->block);
    }
  }
  for (int r = 0; r < opt->n_rounds; ++r) {
    peaks[r] = peak_rate(kernels, 0.03);
    clocks[r] = clock_ghz(0.03);
    for (int k = 0; k < n_cases; ++k) {
      const double macs = (double)carry_model_macs(cases[k].model);
      carry_stream_reset(cases[k].stream);
      cases[k].ns_per_sample[r] =
        time_round(cases[k].stream, in, out, n, opt->block);
      cases[k].efficiency[r] = macs / (cases[k].ns_per_sample[r] * peaks[r]);
      cases[k].cycles[r] = cases[k].ns_per_sample[r] * clocks[r];
      if (cases[k].batch) {
        cases[k].batch_ns[r] =
          time_batch_round(cases[k].batch, in, out, n, opt->block);
      }
      if (cases[k].pair[0]) {
        carry_stream_reset(cases[k].pair[0]);
        carry_stream_reset(cases[k].pair[1]);
        cases[k].stereo_ratio[r] =
          time_pair_round(cases[k].pair, in, out, n, opt->block) /
          cases[k].ns_per_sample[r];
      }
    }
  }
  *ghz = bench_median(clocks, opt->n_rounds);
  return bench_median(peaks, opt->n_rounds);
}

/* ------------------------------------------------------------------------ */
/* Report */

/** The median over the rounds of the one-stream ns over the lockstep ns
    per stream of the same round. */
static double batch_speedup(const bench_case *c, int n_rounds)
{
  double ratios[BENCH_MAX_ROUNDS];
  for (int r = 0; r < n_rounds; ++r) {
    ratios[r] = c->ns_per_sample[r] / c->batch_ns[r];
  }
  return bench_median(ratios, n_rounds);
}

static bool has_target(const bench_case *c)
{
  return c->target.ns > 0.0;
}

/** The reference's time over ours: above 1 is faster than the reference. */
static double speedup(const bench_case *c, double ns)
{
  return c->target.ns / ns;
}

/** Issue 8 gives its machines' clock as about 3.0 GHz. */
#define REFERENCE_GHZ 3.0

/** The reference's cycles over ours (at REFERENCE_GHZ): the speed-up at
    equal clocks; 0 where this machine's clock is unknown. */
static double cycle_speedup(const bench_case *c, double cycles)
{
  return cycles > 0.0 ? c->target.ns * REFERENCE_GHZ / cycles : 0.0;
}

static bool meets_goal(const bench_case *c, double ns)
{
  return speedup(c, ns) >= c->target.goal;
}

static void print_goal_cells(const bench_case *c, double ns, double cycles)
{
  if (!has_target(c)) {
    printf(" %9s %8s %9s %6s", "-", "-", "-", "-");
    return;
  }
  printf(" %9.0f %7.2fx %8.2fx %5.2fx %s", c->target.ns, speedup(c, ns),
         cycle_speedup(c, cycles), c->target.goal,
         meets_goal(c, ns) ? "met" : "MISSED");
}

static void print_table(const bench_options *opt, const bench_case *cases,
                        int n_cases, carry_kernels kernels, double peak,
                        double ghz)
{
  printf("kernels %s, block %d, %.3g s of 48 kHz audio per round, median of "
         "%d rounds\n",
         carry_kernels_name(kernels), opt->block, opt->seconds, opt->n_rounds);
  printf("peak: %.1f multiply-adds per ns (%d-lane vectors, median of the "
         "rounds' own measurements)\n",
         peak, kernels == CARRY_KERNELS_AVX512 ? 16 : 8);
  printf("clock: %.2f GHz as this process sees it (dependent additions, "
         "median of the rounds); cycles = ns x clock\n", ghz);
  if (opt->n_streams) {
    printf("lockstep: %d streams in one batch, ns per sample per stream; "
           "speed-up: one stream's ns / that, median of the rounds\n",
           opt->n_streams);
  }
  if (opt->is_stereo) {
    printf("stereo: two streams in step (carry_stream_process_pair), their "
           "time over one stream's, median of the rounds; goal 1.3x\n");
  }
  if (has_target(&cases[0])) {
    printf("reference: issue 8's figures from AMD EPYC (AVX2, FMA); exact "
           "against the best exact\nof RTNeural and NAM, fast against "
           "NAM's fast tanh; speed-up = reference / ours (the goal);\n"
           "per cycle = the reference's cycles at %.1f GHz / ours\n",
           REFERENCE_GHZ);
  }
  printf("\n");
  printf("%-18s %-5s %11s %9s %7s %11s %10s %9s %8s %9s %6s\n", "model",
         "qual.", "MACs/sample", "ns/sample", "cycles", "x real time",
         "efficiency", "reference", "speed-up", "per cycle", "goal");
  int n_goals = 0, n_met = 0;
  for (int k = 0; k < n_cases; ++k) {
    const bench_case *c = &cases[k];
    const double ns = bench_median(c->ns_per_sample, opt->n_rounds);
    const double macs = (double)carry_model_macs(c->model);
    const double cycles = bench_median(c->cycles, opt->n_rounds);
    printf("%-18s %-5s %11.0f %9.1f %7.0f %11.0f %9.1f%%", c->label,
           carry_quality_name(c->quality), macs, ns, cycles,
           1e9 / BENCH_RATE / ns,
           100.0 * bench_median(c->efficiency, opt->n_rounds));
    print_goal_cells(c, ns, cycles);
    if (c->batch) {
      printf("  lockstep %.1f ns %.2fx", bench_median(c->batch_ns, opt->n_rounds),
             batch_speedup(c, opt->n_rounds));
    }
    if (c->pair[0]) {
      const double ratio = bench_median(c->stereo_ratio, opt->n_rounds);
      printf("  stereo %.2fx %s", ratio, ratio <= 1.3 ? "met" : "MISSED");
      n_goals += 1;
      n_met += ratio <= 1.3;
    }
    printf("\n");
    n_goals += has_target(c);
    n_met += has_target(c) && meets_goal(c, ns);
  }
  if (n_goals) {
    printf("\ngoals met: %d of %d\n", n_met, n_goals);
  }
}

static void print_json_target(const bench_case *c, double ns, double cycles)
{
  if (!has_target(c)) {
    printf(", \"reference_ns_per_sample\": null, \"speedup\": null, "
           "\"speedup_per_cycle\": null, \"goal\": null, "
           "\"goal_met\": null");
    return;
  }
  printf(", \"reference_ns_per_sample\": %.0f, \"speedup\": %.3f, "
         "\"speedup_per_cycle\": %.3f, \"goal\": %.2f, \"goal_met\": %s",
         c->target.ns, speedup(c, ns), cycle_speedup(c, cycles),
         c->target.goal, meets_goal(c, ns) ? "true" : "false");
}

void bench_print_json_string(const char *text)
{
  putchar('"');
  for (const unsigned char *c = (const unsigned char *)text; *c; ++c) {
    if (*c == '"' || *c == '\\') {
      printf("\\%c", *c);
    } else if (*c < 0x20) {
      printf("\\u%04x", *c);
    } else {
      putchar(*c);
    }
  }
  putchar('"');
}

static void print_json(const bench_options *opt, const bench_case *cases,
                       int n_cases, carry_kernels kernels, double peak,
                       double ghz)
{
  printf("{\"kernels\": \"%s\", \"block\": %d, \"seconds\": %g, "
         "\"rounds\": %d, \"peak_macs_per_ns\": %.3f, \"clock_ghz\": %.3f, "
         "\"models\": [",
         carry_kernels_name(kernels), opt->block, opt->seconds, opt->n_rounds,
         peak, ghz);
  for (int k = 0; k < n_cases; ++k) {
    const bench_case *c = &cases[k];
    const double ns = bench_median(c->ns_per_sample, opt->n_rounds);
    const double macs = (double)carry_model_macs(c->model);
    printf("%s\n  {\"model\": ", k ? "," : "");
    bench_print_json_string(c->label);
    printf(", \"quality\": \"%s\", "
           "\"macs_per_sample\": %.0f, \"ns_per_sample\": %.2f, "
           "\"real_time_factor\": %.1f, \"efficiency\": %.4f",
           carry_quality_name(c->quality), macs, ns,
           1e9 / BENCH_RATE / ns,
           bench_median(c->efficiency, opt->n_rounds));
    const double cycles = bench_median(c->cycles, opt->n_rounds);
    printf(", \"cycles_per_sample\": %.1f", cycles);
    print_json_target(c, ns, cycles);
    if (c->batch) {
      printf(", \"streams\": %d, \"lockstep_ns_per_sample\": %.2f, "
             "\"lockstep_speedup\": %.3f", opt->n_streams,
             bench_median(c->batch_ns, opt->n_rounds),
             batch_speedup(c, opt->n_rounds));
    }
    if (c->pair[0]) {
      printf(", \"stereo_ratio\": %.3f",
             bench_median(c->stereo_ratio, opt->n_rounds));
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
    "Without --model, a standard set of random models is timed, each beside\n"
    "a reference figure from issue 8 and the speed-up that is its goal.\n\n"
    "  -m, --model FILE     time this model file (repeatable)\n"
    "  -s, --seconds S      audio per round, in seconds (default 10)\n"
    "  -r, --rounds N       rounds; each model reports its median (default 5)\n"
    "  -b, --block N        samples per process call (default 128)\n"
    "  -k, --kernels NAME   auto, avx512, avx2, portable or reference (default\n"
    "                       auto)\n"
    "  -q, --quality Q      exact, fast or both (default both, timed in the\n"
    "                       same rounds)\n"
    "  -R, --rate-ratio R   also time each model as a sample-rate-corrected\n"
    "                       stream at R times its rate, 1 to 16 (repeatable,\n"
    "                       up to 4 ratios; linear interpolation, the default)\n"
    "  -p, --plugin         time the LV2 plugins' run() (mono and stereo,\n"
    "                       found on LV2_PATH) against bare streams of the\n"
    "                       same model: the first --model, or the standard\n"
    "                       LSTM-32; prints the plugin's overhead in percent\n"
    "  -S, --streams N      also time N streams (1 to 16) in a lockstep batch,\n"
    "                       as `carry process` runs a batch of files: ns per\n"
    "                       sample per stream and the speed-up over one stream\n"
    "      --stereo         also time two streams of each model in step\n"
    "                       (carry_stream_process_pair, as the stereo\n"
    "                       plugin runs them) and print their time over one\n"
    "                       stream's: issue 8's goal is 1.3x at most\n"
    "      --json           print JSON instead of a table\n"
    "      --write-models DIR\n"
    "                       write the standard set as model files\n"
    "                       (DIR/LSTM-32.json and so on) instead of timing\n"
    "                       it: to time two builds in one process\n"
    "                       (tools/ab.sh)\n"
    "  -h, --help           show this help\n");
}

static bool parse_kernels(const char *name, carry_kernels *kernels)
{
  for (int k = CARRY_KERNELS_AUTO; k <= CARRY_KERNELS_AVX512; ++k) {
    if (!strcmp(name, carry_kernels_name((carry_kernels)k))) {
      *kernels = (carry_kernels)k;
      return true;
    }
  }
  return false;
}

static bool parse_quality(const char *name, unsigned *qualities)
{
  *qualities = !strcmp(name, "exact") ? BENCH_EXACT
               : !strcmp(name, "fast") ? BENCH_FAST
               : !strcmp(name, "both") ? BENCH_EXACT | BENCH_FAST
                                       : 0u;
  return *qualities != 0;
}

/** Returns -1 to go on, else an exit code. */
static int parse_option(int c, const char *arg, bench_options *opt)
{
  long value = 0;
  double seconds = 0.0;
  switch (c) {
  case 'm':
    if (opt->n_files == BENCH_MAX_FILES) {
      return cli_usage_error("at most %d models at a time", BENCH_MAX_FILES);
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
    if (!cli_parse_long(arg, 1, BENCH_MAX_ROUNDS, &value)) {
      return cli_usage_error("--rounds must be 1 to %d, not '%s'",
                             BENCH_MAX_ROUNDS, arg);
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
      return cli_usage_error("unknown kernels '%s' (auto, avx512, avx2, "
                             "portable, reference)", arg);
    }
    return -1;
  case 'q':
    if (!parse_quality(arg, &opt->qualities)) {
      return cli_usage_error("unknown quality '%s' (exact, fast, both)", arg);
    }
    return -1;
  case 'R':
    if (opt->n_ratios == BENCH_MAX_RATIOS) {
      return cli_usage_error("at most %d rate ratios", BENCH_MAX_RATIOS);
    }
    if (!cli_parse_double(arg, &seconds) || !(seconds >= 1.0) ||
        seconds > CARRY_MAX_RATE_RATIO) {
      return cli_usage_error("--rate-ratio must be 1 to %g, not '%s'",
                             CARRY_MAX_RATE_RATIO, arg);
    }
    opt->ratios[opt->n_ratios++] = seconds;
    return -1;
  case 'p': opt->is_plugin = true; return -1;
  case 'T': opt->is_stereo = true; return -1;
  case 'S':
    if (!cli_parse_long(arg, 1, CARRY_MAX_LANES, &value)) {
      return cli_usage_error("--streams must be 1 to %d, not '%s'",
                             CARRY_MAX_LANES, arg);
    }
    opt->n_streams = (int)value;
    return -1;
  case 'j': opt->is_json = true; return -1;
  case 'W': opt->models_dir = arg; return -1;
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
    {"quality", required_argument, NULL, 'q'},
    {"rate-ratio", required_argument, NULL, 'R'},
    {"plugin", no_argument, NULL, 'p'},
    {"stereo", no_argument, NULL, 'T'},
    {"streams", required_argument, NULL, 'S'},
    {"json", no_argument, NULL, 'j'},
    {"write-models", required_argument, NULL, 'W'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
  };
  *opt = (bench_options){.seconds = 10.0, .n_rounds = 5, .block = 128,
                         .qualities = BENCH_EXACT | BENCH_FAST};
  cli_getopt_reset();
  int c = 0;
  while ((c = getopt_long(argc, argv, "m:s:r:b:k:q:R:S:ph", options, NULL)) !=
         -1) {
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
  if (opt->is_plugin && opt->n_ratios) {
    return cli_usage_error("--plugin and --rate-ratio do not go together");
  }
  if (opt->is_plugin && opt->n_files > 1) {
    return cli_usage_error("--plugin times one model at a time");
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
    carry_stream_set_quality(cases[k].stream, cases[k].quality);
    if (opt->n_streams && cases[k].ratio == 1.0) {
      cases[k].batch = carry_batch_create(cases[k].model, opt->n_streams,
                                          opt->kernels, &err);
      if (!cases[k].batch) {
        return cli_error(CLI_EXIT_FAILED, "%s", err.message);
      }
      carry_batch_set_quality(cases[k].batch, cases[k].quality);
    }
    for (int c = 0; opt->is_stereo && cases[k].ratio == 1.0 && c < 2; ++c) {
      cases[k].pair[c] = carry_stream_create_with(
        cases[k].model, (uint32_t)opt->block, opt->kernels, &err);
      if (!cases[k].pair[c]) {
        return cli_error(CLI_EXIT_FAILED, "%s", err.message);
      }
      carry_stream_set_quality(cases[k].pair[c], cases[k].quality);
    }
  }
  return CLI_EXIT_OK;
}

static int bench(const bench_options *opt, bench_case *cases, int n_cases)
{
  const size_t n = (size_t)(opt->seconds * BENCH_RATE);
  float *in = malloc(n * sizeof(float)), *out = malloc(n * sizeof(float));
  int code = in && out ? create_streams(opt, cases, n_cases)
                       : cli_error(CLI_EXIT_FAILED, "out of memory");
  if (code == CLI_EXIT_OK) {
    const carry_kernels kernels = carry_stream_kernels(cases[0].stream);
    bench_make_input(in, n);
    double ghz = 0.0;
    const double peak = run_rounds(opt, cases, n_cases, in, out, n, &ghz);
    (opt->is_json ? print_json : print_table)(opt, cases, n_cases, kernels,
                                              peak, ghz);
  }
  free(in);
  free(out);
  return code;
}

static int count_bits(unsigned bits)
{
  return __builtin_popcount(bits);
}

/** --write-models: the standard set as model files (NAME.json) in `dir`,
    to time elsewhere (two builds side by side: tools/ab.sh). */
static int write_standard_models(const char *dir)
{
  for (int k = 0; k < N_STANDARD; ++k) {
    carry_error err;
    carry_model *model = bench_random_model(
      standard_set[k].type, standard_set[k].n_units, standard_set[k].n_stacked,
      &err);
    char label[32], path[4096];
    standard_label(k, label, sizeof(label));
    snprintf(path, sizeof(path), "%s/%s.json", dir, label);
    const carry_status status =
      model ? carry_model_save(model, path, &err) : CARRY_ERR_NO_MEMORY;
    carry_model_free(model);
    if (status) {
      return cli_error(CLI_EXIT_FAILED, "%s", err.message);
    }
  }
  return CLI_EXIT_OK;
}

int carry_bench(int argc, char **argv)
{
  bench_options opt;
  int code = parse_args(argc, argv, &opt);
  if (code >= 0) {
    return code;
  }
  if (opt.models_dir) {
    return write_standard_models(opt.models_dir);
  }
  if (opt.is_plugin) {
    return bench_plugin(&opt);
  }
  const int n_models = opt.n_files ? opt.n_files : N_STANDARD;
  if (n_models * count_bits(opt.qualities) * (1 + opt.n_ratios) > MAX_CASES) {
    return cli_usage_error("at most %d models times qualities times (1 + "
                           "rate ratios) at a time", MAX_CASES);
  }
  bench_case *cases = calloc(MAX_CASES, sizeof(bench_case));
  if (!cases) {
    return cli_error(CLI_EXIT_FAILED, "out of memory");
  }
  const int n_cases = opt.n_files ? add_file_cases(&opt, cases)
                                  : add_standard_cases(&opt, cases);
  code = n_cases < 0 ? (opt.n_files ? CLI_EXIT_MODEL : CLI_EXIT_FAILED)
                     : bench(&opt, cases, add_ratio_cases(&opt, cases,
                                                          n_cases));
  for (int k = 0; k < MAX_CASES; ++k) {
    carry_stream_free(cases[k].stream);
    carry_stream_free(cases[k].pair[0]);
    carry_stream_free(cases[k].pair[1]);
    carry_batch_free(cases[k].batch);
    if (cases[k].owns_model) {
      carry_model_free(cases[k].model);
    }
  }
  free(cases);
  return code;
}
