/*
  bench_ab: two builds of Carry's library timed in one process, round
  after round in turn, so that a change of a few percent shows on a
  machine whose speed drifts by tens of percent from one process to the
  next.  Each build is a shared object with the API exported
  (libcarry_ab.so, from `meson setup -Dab_library=true`); tools/ab.sh
  builds two revisions and runs this.  Both builds must share this
  tree's carry.h (its enums and structs).
*/

#include "carry.h"

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_ROUNDS 1001
#define LANES 16
#define BLOCK 128

typedef enum { MODE_ONE, MODE_STEREO, MODE_LOCKSTEP } ab_mode;

/** The part of the API timed, as one build has it. */
typedef struct ab_api {
  void *library;
  carry_model *(*load)(const char *, carry_error *);
  void (*free_model)(carry_model *);
  carry_stream *(*stream)(const carry_model *, uint32_t, carry_kernels,
                          carry_error *);
  void (*free_stream)(carry_stream *);
  void (*quality)(carry_stream *, carry_quality);
  void (*process)(carry_stream *, const float *, const float *, float *,
                  uint32_t);
  void (*pair)(carry_stream *, carry_stream *, const float *, const float *,
               const float *, float *, float *, uint32_t);
  carry_batch *(*batch)(const carry_model *, int, carry_kernels,
                        carry_error *);
  void (*free_batch)(carry_batch *);
  void (*batch_quality)(carry_batch *, carry_quality);
  void (*batch_process)(carry_batch *, const float *const *, const float *,
                        float *const *, uint32_t);
} ab_api;

typedef struct ab_options {
  carry_kernels kernels;
  carry_quality quality;
  int n_rounds;
  int n_samples;
  ab_mode mode;
} ab_options;

/** One build's model and what runs it. */
typedef struct ab_case {
  const ab_api *api;
  carry_model *model;
  carry_stream *streams[2];
  carry_batch *batch;
  double ns[MAX_ROUNDS];  ///< Per round, ns per sample per stream
} ab_case;

static float in[LANES][48000], out[LANES][48000];

/* ------------------------------------------------------------------------ */
/* Loading */

static void *symbol(void *library, const char *name, bool *is_ok)
{
  void *address = dlsym(library, name);
  if (!address) {
    fprintf(stderr, "bench_ab: %s not found\n", name);
    *is_ok = false;
  }
  return address;
}

static bool open_api(const char *path, ab_api *api)
{
  api->library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!api->library) {
    fprintf(stderr, "bench_ab: %s\n", dlerror());
    return false;
  }
  bool ok = true;
  void *l = api->library;
  *(void **)&api->load = symbol(l, "carry_model_load", &ok);
  *(void **)&api->free_model = symbol(l, "carry_model_free", &ok);
  *(void **)&api->stream = symbol(l, "carry_stream_create_with", &ok);
  *(void **)&api->free_stream = symbol(l, "carry_stream_free", &ok);
  *(void **)&api->quality = symbol(l, "carry_stream_set_quality", &ok);
  *(void **)&api->process = symbol(l, "carry_stream_process", &ok);
  *(void **)&api->pair = symbol(l, "carry_stream_process_pair", &ok);
  *(void **)&api->batch = symbol(l, "carry_batch_create", &ok);
  *(void **)&api->free_batch = symbol(l, "carry_batch_free", &ok);
  *(void **)&api->batch_quality = symbol(l, "carry_batch_set_quality", &ok);
  *(void **)&api->batch_process = symbol(l, "carry_batch_process", &ok);
  return ok;
}

/** The model at `path` in `api`'s build, with its streams or batch. */
static bool open_case(const ab_options *opt, const char *path, ab_case *c)
{
  carry_error err;
  const ab_api *api = c->api;
  c->model = api->load(path, &err);
  for (int k = 0; c->model && k < (opt->mode == MODE_STEREO ? 2 : 1); ++k) {
    c->streams[k] = api->stream(c->model, BLOCK, opt->kernels, &err);
    if (!c->streams[k]) {
      break;
    }
    api->quality(c->streams[k], opt->quality);
  }
  if (c->streams[0] && opt->mode == MODE_LOCKSTEP) {
    c->batch = api->batch(c->model, LANES, opt->kernels, &err);
    if (c->batch) {
      api->batch_quality(c->batch, opt->quality);
    }
  }
  const bool ok = c->streams[0] && (opt->mode != MODE_STEREO || c->streams[1]) &&
                  (opt->mode != MODE_LOCKSTEP || c->batch);
  if (!ok) {
    fprintf(stderr, "bench_ab: %s\n", err.message);
  }
  return ok;
}

static void close_case(ab_case *c)
{
  for (int k = 0; k < 2; ++k) {
    if (c->streams[k]) {
      c->api->free_stream(c->streams[k]);
    }
  }
  if (c->batch) {
    c->api->free_batch(c->batch);
  }
  if (c->model) {
    c->api->free_model(c->model);
  }
}

/* ------------------------------------------------------------------------ */
/* Timing */

static double now_ns(void)
{
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/** One round of `n` samples in blocks of BLOCK: ns per sample per stream. */
static double run_round(const ab_options *opt, const ab_case *c)
{
  const ab_api *api = c->api;
  const int n = opt->n_samples;
  const double start = now_ns();
  for (int t = 0; t < n; t += BLOCK) {
    const uint32_t m = (uint32_t)(n - t < BLOCK ? n - t : BLOCK);
    if (opt->mode == MODE_ONE) {
      api->process(c->streams[0], in[0] + t, NULL, out[0] + t, m);
    } else if (opt->mode == MODE_STEREO) {
      api->pair(c->streams[0], c->streams[1], in[0] + t, in[1] + t, NULL,
                out[0] + t, out[1] + t, m);
    } else {
      const float *lanes_in[LANES];
      float *lanes_out[LANES];
      for (int k = 0; k < LANES; ++k) {
        lanes_in[k] = in[k] + t;
        lanes_out[k] = out[k] + t;
      }
      api->batch_process(c->batch, lanes_in, NULL, lanes_out, m);
    }
  }
  const int streams = opt->mode == MODE_ONE      ? 1
                      : opt->mode == MODE_STEREO ? 2
                                                 : LANES;
  return (now_ns() - start) / ((double)n * streams);
}

static int compare(const void *a, const void *b)
{
  const double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/** The value a fraction `at` of the way through the sorted `values`. */
static double quantile(const double *values, int n, double at)
{
  double sorted[MAX_ROUNDS];
  memcpy(sorted, values, (size_t)n * sizeof(double));
  qsort(sorted, (size_t)n, sizeof(double), compare);
  return sorted[(int)(at * (n - 1) + 0.5)];
}

/** Rounds in turn (three untimed first); prints A's and B's medians and
    B over A: the median of the rounds' ratios, and its quartiles. */
static void time_cases(const ab_options *opt, const char *path, ab_case *ab)
{
  for (int r = -3; r < opt->n_rounds; ++r) {
    for (int k = 0; k < 2; ++k) {
      const double ns = run_round(opt, &ab[k]);
      if (r >= 0) {
        ab[k].ns[r] = ns;
      }
    }
  }
  double ratios[MAX_ROUNDS];
  for (int r = 0; r < opt->n_rounds; ++r) {
    ratios[r] = ab[1].ns[r] / ab[0].ns[r];
  }
  const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
  printf("%-24s %9.1f %9.1f %7.3f  [%.3f-%.3f]\n", name,
         quantile(ab[0].ns, opt->n_rounds, 0.5),
         quantile(ab[1].ns, opt->n_rounds, 0.5),
         quantile(ratios, opt->n_rounds, 0.5),
         quantile(ratios, opt->n_rounds, 0.25),
         quantile(ratios, opt->n_rounds, 0.75));
  fflush(stdout);
}

/* ------------------------------------------------------------------------ */
/* Arguments */

static void usage(void)
{
  fprintf(stderr,
    "Usage: bench_ab [-k KERNELS] [-q exact|fast] [-r ROUNDS] [-n SAMPLES]\n"
    "                [-m one|stereo|lockstep] A.so B.so MODEL...\n"
    "Times each model with two builds of Carry's library (libcarry_ab.so)\n"
    "in one process, a round of each in turn, and prints ns per sample per\n"
    "stream of each and B's over A's: the median of the rounds' ratios and\n"
    "its quartiles.  Defaults: auto kernels, exact, 41 rounds of 4800\n"
    "samples, one stream (stereo: two in step; lockstep: a batch of 16).\n");
}

static bool parse_mode(const char *name, ab_mode *mode)
{
  static const char *const names[] = {"one", "stereo", "lockstep"};
  for (int k = 0; k < 3; ++k) {
    if (!strcmp(name, names[k])) {
      *mode = (ab_mode)k;
      return true;
    }
  }
  return false;
}

static bool parse_kernels(const char *name, carry_kernels *kernels)
{
  static const char *const names[] = {"auto", "reference", "portable", "avx2",
                                      "avx512"};
  static const carry_kernels values[] = {
    CARRY_KERNELS_AUTO, CARRY_KERNELS_REFERENCE, CARRY_KERNELS_PORTABLE,
    CARRY_KERNELS_AVX2, CARRY_KERNELS_AVX512};
  for (int k = 0; k < 5; ++k) {
    if (!strcmp(name, names[k])) {
      *kernels = values[k];
      return true;
    }
  }
  return false;
}

static bool parse_option(const char *flag, const char *value,
                         ab_options *opt)
{
  if (!strcmp(flag, "-k")) {
    return parse_kernels(value, &opt->kernels);
  }
  if (!strcmp(flag, "-m")) {
    return parse_mode(value, &opt->mode);
  }
  if (!strcmp(flag, "-q")) {
    opt->quality = strcmp(value, "fast") ? CARRY_QUALITY_EXACT
                                          : CARRY_QUALITY_FAST;
    return !strcmp(value, "fast") || !strcmp(value, "exact");
  }
  if (!strcmp(flag, "-r")) {
    opt->n_rounds = atoi(value);
    return opt->n_rounds >= 1 && opt->n_rounds <= MAX_ROUNDS;
  }
  if (!strcmp(flag, "-n")) {
    opt->n_samples = atoi(value);
    return opt->n_samples >= BLOCK && opt->n_samples <= 48000;
  }
  return false;
}

/** Parses the options; returns the index of A.so in argv, or 0. */
static int parse_args(int argc, char **argv, ab_options *opt)
{
  *opt = (ab_options){CARRY_KERNELS_AUTO, CARRY_QUALITY_EXACT, 41, 4800,
                      MODE_ONE};
  int k = 1;
  for (; k + 1 < argc && argv[k][0] == '-'; k += 2) {
    if (!parse_option(argv[k], argv[k + 1], opt)) {
      fprintf(stderr, "bench_ab: bad option %s %s\n", argv[k], argv[k + 1]);
      return 0;
    }
  }
  return argc - k >= 3 ? k : 0;
}

static void make_input(void)
{
  for (int lane = 0; lane < LANES; ++lane) {
    for (int t = 0; t < 48000; ++t) {
      in[lane][t] = 0.5f * sinf(0.01f * (float)(t * (lane + 3))) *
                    expf(-0.0001f * (float)t);
    }
  }
}

int main(int argc, char **argv)
{
  ab_options opt;
  const int first = parse_args(argc, argv, &opt);
  ab_api apis[2];
  if (!first || !open_api(argv[first], &apis[0]) ||
      !open_api(argv[first + 1], &apis[1])) {
    usage();
    return 2;
  }
  make_input();
  printf("%-24s %9s %9s %7s  %s\n", "model", "A ns", "B ns", "B/A",
         "[quartiles]");
  int status = 0;
  for (int m = first + 2; m < argc; ++m) {
    ab_case ab[2] = {{.api = &apis[0]}, {.api = &apis[1]}};
    if (open_case(&opt, argv[m], &ab[0]) && open_case(&opt, argv[m], &ab[1])) {
      time_cases(&opt, argv[m], ab);
    } else {
      status = 1;
    }
    close_case(&ab[0]);
    close_case(&ab[1]);
  }
  return status;
}
