/*
  Golden outputs: Carry against PyTorch.

  tools/make_golden.py built random networks in PyTorch, wrote them in the
  three formats Carry reads (RTNeural/AIDA-X Keras JSON, GuitarML PyTorch
  JSON, Neural Amp Modeler .nam: the model file NAME.io.json names) and
  stored a stimulus with torch's float32 output (NAME.io.json).  Every case
  is loaded with carry_model_load, which must tell the format from the
  content, and run from a fresh stream (no settling: a .nam model starts
  from its stored state, as torch did) with every kernel set this CPU has,
  once as one call and once in random block sizes; the output must be
  within TOLERANCE of torch's at every sample, and the two runs
  bit-identical.
*/

#include "harness.h"

#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GOLDEN_DIR "tests/data/golden"
#define CASE_SUFFIX ".io.json"
#define MAX_CASES 256
#define NAME_SIZE 256

/** Max |Carry - torch| per sample.  Both sides round in float32 with
    different sum orders and activation approximations; make_golden.py
    keeps torch itself within TOLERANCE / 4 of a float64 evaluation. */
#define TOLERANCE 1e-5

/** Fast quality against exact, on the same kernels: issue 8's bound. */
#define FAST_TOLERANCE 1e-4

/** Random block sizes: up to twice the stream's max_block, so that some
    calls are split inside Carry, and sometimes 0. */
#define BLOCK_MAX_BLOCK 128u
#define BLOCK_LONGEST 256

typedef struct {
  char name[NAME_SIZE];        ///< The io file's name without CASE_SUFFIX
  char model_path[4096];
  float knobs[CARRY_MAX_KNOBS];
  int n_knobs;
  bool knobs_from_defaults;    ///< Pass NULL: the file's defaults must apply
  float *input;                ///< (n)
  float *output;               ///< (n) torch's output
  size_t n;
  json_t *expect;              ///< Metadata the loader must find
} golden_case;

/** The formats the cases come in, as carry_format values (0 .. 3). */
#define N_FORMATS (CARRY_FORMAT_NAM + 1)

/** One kernel set's worst error, per format. */
typedef struct {
  carry_kernels kernels;
  double worst[N_FORMATS];
  char worst_case[N_FORMATS][NAME_SIZE];
  int n_cases[N_FORMATS];
  double worst_fast;              ///< max |fast - exact| over all cases
  char worst_fast_case[NAME_SIZE];
} kernel_result;

/* ------------------------------------------------------------------------ */
/* Finding and reading the cases */

static int compare_names(const void *a, const void *b)
{
  return strcmp(a, b);
}

static bool has_suffix(const char *s, const char *suffix)
{
  const size_t n = strlen(s), k = strlen(suffix);
  return n > k && strcmp(s + n - k, suffix) == 0;
}

/** The case names in the golden directory, sorted so that the report
    reads the same on every machine. */
static int list_cases(char names[][NAME_SIZE], int max_cases)
{
  DIR *dir = opendir(test_source_path(GOLDEN_DIR));
  if (!CHECK(dir, "cannot open %s", test_source_path(GOLDEN_DIR))) {
    return 0;
  }
  int n = 0;
  const struct dirent *entry;
  while ((entry = readdir(dir))) {
    const char *file = entry->d_name;
    if (!has_suffix(file, CASE_SUFFIX)) {
      continue;
    }
    const size_t length = strlen(file) - strlen(CASE_SUFFIX);
    if (CHECK(n < max_cases, "more than %d cases", max_cases) &&
        CHECK(length < NAME_SIZE, "name too long: %s", file)) {
      memcpy(names[n], file, length);
      names[n++][length] = '\0';
    }
  }
  closedir(dir);
  qsort(names, (size_t)n, NAME_SIZE, compare_names);
  return n;
}

/** A JSON array of numbers as floats (malloc'd), or NULL. */
static float *read_floats(const json_t *array, size_t *n)
{
  *n = json_array_size(array);
  float *values = malloc((*n ? *n : 1) * sizeof(float));
  for (size_t k = 0; values && k < *n; ++k) {
    const json_t *item = json_array_get(array, k);
    if (!json_is_number(item)) {
      free(values);
      return NULL;
    }
    values[k] = (float)json_number_value(item);
  }
  return values;
}

static void free_case(golden_case *c)
{
  free(c->input);
  free(c->output);
  json_decref(c->expect);
  memset(c, 0, sizeof(*c));
}

static bool read_knobs(const json_t *array, golden_case *c)
{
  size_t n = 0;
  float *knobs = read_floats(array, &n);
  const bool ok = knobs && json_is_array(array) && n <= CARRY_MAX_KNOBS;
  if (ok) {
    memcpy(c->knobs, knobs, n * sizeof(float));
    c->n_knobs = (int)n;
  }
  free(knobs);
  return ok;
}

/** Formats into `out`; false (a failed check) if it does not fit. */
static bool format_fits(char *out, size_t size, const char *format,
                        const char *arg)
{
  const int n = snprintf(out, size, format, arg);
  return CHECK(n >= 0 && (size_t)n < size, "too long: %s", arg);
}

/** Reads NAME.io.json; every failure is a failed check. */
static bool load_case(const char *name, golden_case *c)
{
  char relative[NAME_SIZE + 64];
  if (!format_fits(c->name, sizeof(c->name), "%s", name) ||
      !format_fits(relative, sizeof(relative), GOLDEN_DIR "/%s" CASE_SUFFIX,
                   name)) {
    return false;
  }
  json_error_t error;
  json_t *root = json_load_file(test_source_path(relative), 0, &error);
  if (!CHECK(root, "%s: %s (line %d)", relative, error.text, error.line)) {
    return false;
  }
  const char *model = json_string_value(json_object_get(root, "model"));
  size_t n_output = 0;
  c->input = read_floats(json_object_get(root, "input"), &c->n);
  c->output = read_floats(json_object_get(root, "output"), &n_output);
  c->knobs_from_defaults =
    json_is_true(json_object_get(root, "knobs_from_defaults"));
  c->expect = json_incref(json_object_get(root, "expect"));
  bool ok =
    CHECK(model, "%s: no \"model\" string", relative) &&
    CHECK(read_knobs(json_object_get(root, "knobs"), c),
          "%s: \"knobs\" is not an array of numbers", relative) &&
    CHECK(c->input && c->output && c->n > 0 && c->n == n_output,
          "%s: \"input\" and \"output\" must be number arrays of one length",
          relative);
  ok = ok &&
       format_fits(relative, sizeof(relative), GOLDEN_DIR "/%s", model) &&
       format_fits(c->model_path, sizeof(c->model_path), "%s",
                   test_source_path(relative));
  json_decref(root);
  return ok;
}

/* ------------------------------------------------------------------------ */
/* Checking a case */

/** The format "expect" names; the Keras cases predate the key (their files
    stay as they were), so no "format" means Keras. */
static bool expected_format(const json_t *expect, carry_format *format)
{
  static const struct {
    const char *name;
    carry_format format;
  } formats[] = {{"keras", CARRY_FORMAT_KERAS},
                 {"pytorch", CARRY_FORMAT_PYTORCH},
                 {"nam", CARRY_FORMAT_NAM}};
  const json_t *value = json_object_get(expect, "format");
  if (!value) {
    *format = CARRY_FORMAT_KERAS;
    return true;
  }
  for (size_t k = 0; k < sizeof(formats) / sizeof(formats[0]); ++k) {
    if (json_is_string(value) &&
        strcmp(json_string_value(value), formats[k].name) == 0) {
      *format = formats[k].format;
      return true;
    }
  }
  return false;
}

/** A loudness the file states must be reported as read, not measured. */
static void check_loudness(const golden_case *c, const carry_model_spec *spec)
{
  const json_t *loudness = json_object_get(c->expect, "loudness");
  if (loudness) {
    CHECK(spec->has_loudness && !spec->is_loudness_measured &&
            spec->loudness_db == (float)json_number_value(loudness),
          "%s: loudness %s%g dB, expected %g dB from the file", c->name,
          !spec->has_loudness           ? "(none) "
          : spec->is_loudness_measured ? "(measured) "
                                       : "",
          (double)spec->loudness_db, json_number_value(loudness));
  }
}

/** The loader must find what the case's "expect" object names. */
static void check_metadata(const golden_case *c, const carry_model *model)
{
  const carry_model_spec *spec = carry_model_get_spec(model);
  CHECK(spec->n_inputs == 1 + c->n_knobs, "%s: %d inputs, expected %d",
        c->name, spec->n_inputs, 1 + c->n_knobs);
  carry_format format = CARRY_FORMAT_NONE;
  if (CHECK(expected_format(c->expect, &format),
            "%s: \"expect\" names an unknown format", c->name)) {
    CHECK(spec->format == format, "%s: loaded as %s, expected %s", c->name,
          carry_format_name(spec->format), carry_format_name(format));
  }
  check_loudness(c, spec);
  const char *model_name =
    json_string_value(json_object_get(c->expect, "name"));
  if (model_name) {
    CHECK(strcmp(spec->name, model_name) == 0,
          "%s: named \"%s\", expected \"%s\"", c->name, spec->name,
          model_name);
  }
  const json_t *rate = json_object_get(c->expect, "sample_rate");
  if (rate) {
    CHECK(spec->sample_rate == json_number_value(rate),
          "%s: sample rate %g, expected %g", c->name, spec->sample_rate,
          json_number_value(rate));
  }
  const json_t *names = json_object_get(c->expect, "knob_names");
  for (size_t k = 0; k < json_array_size(names) && k < CARRY_MAX_KNOBS; ++k) {
    const char *name = json_string_value(json_array_get(names, k));
    CHECK(name && strcmp(spec->knobs[k].name, name) == 0,
          "%s: knob %zu is called \"%s\", expected \"%s\"", c->name, k,
          spec->knobs[k].name, name ? name : "(not a string)");
  }
}

static carry_stream *make_stream(const golden_case *c, const carry_model *m,
                                 uint32_t max_block, carry_kernels kernels,
                                 carry_quality quality)
{
  carry_error err = {0};
  carry_stream *stream = carry_stream_create_with(m, max_block, kernels, &err);
  CHECK(stream, "%s: %s stream: %s", c->name, carry_kernels_name(kernels),
        err.message);
  if (stream) {
    carry_stream_set_quality(stream, quality);
  }
  return stream;
}

static const float *knobs_of(const golden_case *c)
{
  return c->knobs_from_defaults || c->n_knobs == 0 ? NULL : c->knobs;
}

/** The whole stimulus in one call. */
static bool run_whole(const golden_case *c, const carry_model *m,
                      carry_kernels kernels, carry_quality quality, float *out)
{
  carry_stream *stream = make_stream(c, m, (uint32_t)c->n, kernels, quality);
  if (stream) {
    carry_stream_process(stream, c->input, knobs_of(c), out, (uint32_t)c->n);
  }
  carry_stream_free(stream);
  return stream != NULL;
}

/** The stimulus in random block sizes from a generator seeded by `seed`. */
static bool run_blocks(const golden_case *c, const carry_model *m,
                       carry_kernels kernels, uint64_t seed, float *out)
{
  carry_stream *stream = make_stream(c, m, BLOCK_MAX_BLOCK, kernels,
                                     CARRY_QUALITY_EXACT);
  test_rng rng = test_rng_new(seed);
  for (size_t t = 0; stream && t < c->n;) {
    size_t block = (size_t)test_rng_int(&rng, 0, BLOCK_LONGEST);
    block = block < c->n - t ? block : c->n - t;
    carry_stream_process(stream, c->input + t, knobs_of(c), out + t,
                         (uint32_t)block);
    t += block;
  }
  carry_stream_free(stream);
  return stream != NULL;
}

/** The sample where |a - b| is largest (a NaN counts as largest). */
static size_t worst_sample(const float *a, const float *b, size_t n)
{
  size_t worst = 0;
  double largest = -1.0;
  for (size_t t = 0; t < n; ++t) {
    const double d = fabs((double)a[t] - (double)b[t]);
    if (isnan(d) || d > largest) {
      worst = t;
      largest = isnan(d) ? INFINITY : d;
    }
  }
  return worst;
}

/** The first sample where a and b differ in any bit. */
static size_t first_difference(const float *a, const float *b, size_t n)
{
  size_t t = 0;
  while (t < n && memcmp(&a[t], &b[t], sizeof(float)) == 0) {
    ++t;
  }
  return t;
}

/** The fast quality on the same kernels stays within FAST_TOLERANCE of
    `exact`, the exact output. */
static void check_fast(const golden_case *c, const carry_model *m,
                       const float *exact, kernel_result *result)
{
  const char *kernels = carry_kernels_name(result->kernels);
  float *fast = calloc(c->n, sizeof(float));
  if (CHECK(fast, "out of memory") &&
      run_whole(c, m, result->kernels, CARRY_QUALITY_FAST, fast)) {
    const size_t t = worst_sample(fast, exact, c->n);
    double error = fabs((double)fast[t] - (double)exact[t]);
    error = isnan(error) ? INFINITY : error;
    CHECK(error <= FAST_TOLERANCE,
          "%s, %s kernels: fast quality gives %.9g at sample %zu, exact "
          "%.9g (difference %.3g)", c->name, kernels, (double)fast[t], t,
          (double)exact[t], error);
    if (error >= result->worst_fast) {
      result->worst_fast = error;
      snprintf(result->worst_fast_case, NAME_SIZE, "%s", c->name);
    }
  }
  free(fast);
}

/** Runs one case with one kernel set, checks it and records its max error
    (a NaN counts as infinite) in `result`. */
static void check_kernels(const golden_case *c, const carry_model *m,
                          uint64_t seed, kernel_result *result)
{
  const char *kernels = carry_kernels_name(result->kernels);
  float *whole = calloc(c->n, sizeof(float));
  float *blocks = calloc(c->n, sizeof(float));
  if (CHECK(whole && blocks, "out of memory") &&
      run_whole(c, m, result->kernels, CARRY_QUALITY_EXACT, whole) &&
      run_blocks(c, m, result->kernels, seed, blocks)) {
    const size_t t = worst_sample(whole, c->output, c->n);
    double error = fabs((double)whole[t] - (double)c->output[t]);
    error = isnan(error) ? INFINITY : error;
    printf("  %-36s %-9s max |carry - torch| %.3g at sample %zu\n", c->name,
           kernels, error, t);
    CHECK(error <= TOLERANCE,
          "%s, %s kernels: sample %zu is %.9g, torch gave %.9g (error %.3g)",
          c->name, kernels, t, (double)whole[t], (double)c->output[t], error);
    CHECK(memcmp(whole, blocks, c->n * sizeof(float)) == 0,
          "%s, %s kernels: random blocks differ from one call, first at "
          "sample %zu", c->name, kernels,
          first_difference(whole, blocks, c->n));
    const carry_format format = carry_model_get_spec(m)->format;
    const int f = format < N_FORMATS ? (int)format : CARRY_FORMAT_NONE;
    result->n_cases[f]++;
    if (error >= result->worst[f]) {
      result->worst[f] = error;
      snprintf(result->worst_case[f], sizeof(result->worst_case[f]), "%s",
               c->name);
    }
  }
  if (whole && result->kernels != CARRY_KERNELS_REFERENCE) {
    check_fast(c, m, whole, result);
  }
  free(whole);
  free(blocks);
}

/** FNV-1a: each case gets its own block sizes, whatever other cases exist. */
static uint64_t hash_name(const char *name)
{
  uint64_t hash = 0xcbf29ce484222325ull;
  for (; *name; ++name) {
    hash = (hash ^ (uint8_t)*name) * 0x100000001b3ull;
  }
  return hash;
}

static void check_case(const char *name, kernel_result *results,
                       int n_results)
{
  const uint64_t seed = hash_name(name);
  golden_case c = {0};
  if (load_case(name, &c)) {
    carry_error err = {0};
    carry_model *model = carry_model_load(c.model_path, &err);
    if (CHECK(model, "%s: %s", c.model_path, err.message)) {
      check_metadata(&c, model);
      for (int k = 0; k < n_results; ++k) {
        check_kernels(&c, model, seed, &results[k]);
      }
    }
    carry_model_free(model);
  }
  free_case(&c);
}

/* ------------------------------------------------------------------------ */

/** The kernel sets this CPU runs, as empty results. */
static const carry_kernels all_kernels[] = {
  CARRY_KERNELS_REFERENCE, CARRY_KERNELS_PORTABLE, CARRY_KERNELS_AVX2,
  CARRY_KERNELS_AVX512};
#define N_KERNEL_SETS (sizeof(all_kernels) / sizeof(all_kernels[0]))

static int available_kernels(kernel_result *results)
{
  const carry_kernels *all = all_kernels;
  int n = 0;
  for (size_t k = 0; k < N_KERNEL_SETS; ++k) {
    if (carry_kernels_available(all[k])) {
      results[n++] = (kernel_result){.kernels = all[k]};
    } else {
      printf("%s kernels: not available on this CPU or build, skipped\n",
             carry_kernels_name(all[k]));
    }
  }
  return n;
}

int main(void)
{
  // failures go to stderr: keep the two in order in a captured log
  setvbuf(stdout, NULL, _IOLBF, 0);
  static char names[MAX_CASES][NAME_SIZE];
  const int n_cases = list_cases(names, MAX_CASES);
  CHECK(n_cases > 0, "no *" CASE_SUFFIX " cases in %s",
        test_source_path(GOLDEN_DIR));
  kernel_result results[N_KERNEL_SETS];
  const int n_results = available_kernels(results);
  for (int k = 0; k < n_cases; ++k) {
    check_case(names[k], results, n_results);
  }
  double worst = 0.0;
  for (int k = 0; k < n_results; ++k) {
    for (int f = 0; f < N_FORMATS; ++f) {
      if (results[k].n_cases[f] == 0) {
        continue;
      }
      printf("%s kernels, %s: worst error %.3g (%s) over %d cases\n",
             carry_kernels_name(results[k].kernels),
             carry_format_name((carry_format)f), results[k].worst[f],
             results[k].worst_case[f], results[k].n_cases[f]);
      worst = results[k].worst[f] > worst ? results[k].worst[f] : worst;
    }
  }
  for (int f = CARRY_FORMAT_KERAS; n_results > 0 && f < N_FORMATS; ++f) {
    CHECK(results[0].n_cases[f] > 0, "no case ran in %s",
          carry_format_name((carry_format)f));
  }
  printf("worst error overall %.3g, tolerance %.3g\n", worst, TOLERANCE);
  for (int k = 0; k < n_results; ++k) {
    if (results[k].kernels == CARRY_KERNELS_REFERENCE) {
      continue;
    }
    printf("%s kernels, fast quality: worst |fast - exact| %.3g (%s), "
           "tolerance %.3g\n", carry_kernels_name(results[k].kernels),
           results[k].worst_fast, results[k].worst_fast_case, FAST_TOLERANCE);
    // the cases all have recurrent layers: fast must change something
    CHECK(results[k].worst_fast > 0.0,
          "%s kernels: fast quality gives exactly the exact output",
          carry_kernels_name(results[k].kernels));
  }
  return test_finish("golden");
}
