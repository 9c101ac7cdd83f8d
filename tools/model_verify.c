/*
  carry model verify: runs the self-test a model file carries (AIDA-X's
  "input_batch" and "output_batch") and compares Carry's output with the
  one the file expects.

  The expected output is the network's alone, from its initial state: the
  model runs with its skip connection and gains turned off and without
  settling, in blocks of 256 as a host would run it.
*/

#include "carry.h"
#include "cli.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VERIFY_BLOCK 256
#define DEFAULT_TOLERANCE 1e-4

typedef struct verify_args {
  const char *path;
  double tolerance;
} verify_args;

/** How far Carry's output is from the expected one. */
typedef struct verify_result {
  double max_error;     ///< max |actual - expected|
  size_t at;            ///< The sample where it is
  double rms_error;
} verify_result;

/* ------------------------------------------------------------------------ */
/* Arguments */

static void print_help(void)
{
  printf(
    "Usage: carry model verify [--tolerance T] FILE\n"
    "\n"
    "Runs the self-test in FILE: the stimulus \"input_batch\" through the\n"
    "network, from its initial state, without its skip connection and\n"
    "gains, compared with \"output_batch\" (as AIDA-X exports write them;\n"
    "the arrays may nest in any depth, N numbers per time step for a model\n"
    "of N inputs).  Reports the largest error, the sample where it is and\n"
    "the RMS error.\n"
    "\n"
    "  -t, --tolerance T   the largest error that passes (default %g)\n"
    "  -h, --help          shows this help\n"
    "\n"
    "Exit status: 0 the test passed, 1 it failed, 2 usage error, 3 model\n"
    "error or no self-test in the file.\n",
    DEFAULT_TOLERANCE);
}

static int parse_tolerance(const char *text, double *tolerance)
{
  if (!cli_parse_double(text, tolerance) || *tolerance < 0.0) {
    return cli_usage_error("--tolerance must be a number of 0 or more, not "
                           "'%s'", text);
  }
  return -1;
}

/** Returns -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, verify_args *args)
{
  static const struct option options[] = {
    {"tolerance", required_argument, NULL, 't'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
  };
  *args = (verify_args){NULL, DEFAULT_TOLERANCE};
  int option, status = -1;
  while (status < 0 &&
         (option = getopt_long(argc, argv, "t:h", options, NULL)) != -1) {
    switch (option) {
    case 't': status = parse_tolerance(optarg, &args->tolerance); break;
    case 'h': print_help(); return CLI_EXIT_OK;
    default: return cli_bad_option();
    }
  }
  if (status >= 0) {
    return status;
  }
  if (optind >= argc) {
    return cli_usage_error("missing model FILE");
  }
  if (optind + 1 < argc) {
    return cli_usage_error("too many arguments: '%s' after FILE",
                           argv[optind + 1]);
  }
  args->path = argv[optind];
  return -1;
}

/* ------------------------------------------------------------------------ */
/* Running the test */

/** The network alone: the self-test's output has no skip and no gains. */
static int strip_model(carry_model *model)
{
  carry_model_spec spec = *carry_model_get_spec(model);
  spec.has_skip = false;
  spec.in_gain_db = 0.0f;
  spec.out_gain_db = 0.0f;
  carry_error err = {CARRY_SUCCESS, ""};
  if (carry_model_set_info(model, &spec, &err) != CARRY_SUCCESS) {
    return cli_error(CLI_EXIT_FAILED, "cannot run the network alone: %s",
                     err.message);
  }
  return CLI_EXIT_OK;
}

/** How many samples from `t` keep the knobs of sample `t`: a stream takes
    one set of knob values per call. */
static size_t same_knobs(const carry_self_test *test, size_t t, size_t end)
{
  const size_t N = (size_t)test->n_inputs;
  const float *first = test->input + t * N + 1;
  size_t n = 1;
  while (t + n < end &&
         !memcmp(test->input + (t + n) * N + 1, first,
                 (N - 1) * sizeof(float))) {
    ++n;
  }
  return n;
}

/** Runs samples [t, end) (at most a block) into `out`. */
static void run_block(carry_stream *stream, const carry_self_test *test,
                      size_t t, size_t end, float *audio, float *out)
{
  const size_t N = (size_t)test->n_inputs;
  for (size_t s = t; s < end; ++s) {
    audio[s - t] = test->input[s * N];
  }
  for (size_t s = t; s < end;) {
    const size_t n = N > 1 ? same_knobs(test, s, end) : end - s;
    carry_stream_process(stream, audio + (s - t),
                         N > 1 ? test->input + s * N + 1 : NULL, out + s,
                         (uint32_t)n);
    s += n;
  }
}

/** Runs the whole stimulus from the initial state into `out` (T). */
static int run_test(const carry_model *model, const carry_self_test *test,
                    float *out)
{
  carry_error err = {CARRY_SUCCESS, ""};
  carry_stream *stream = carry_stream_create(model, VERIFY_BLOCK, &err);
  if (!stream) {
    return cli_error(CLI_EXIT_FAILED, "cannot run the model: %s",
                     err.message);
  }
  float audio[VERIFY_BLOCK];
  for (size_t t = 0; t < test->n_samples; t += VERIFY_BLOCK) {
    const size_t end = test->n_samples - t < VERIFY_BLOCK
                         ? test->n_samples : t + VERIFY_BLOCK;
    run_block(stream, test, t, end, audio, out);
  }
  carry_stream_free(stream);
  return CLI_EXIT_OK;
}

static verify_result compare(const float *out, const float *expected,
                             size_t n)
{
  verify_result result = {0.0, 0, 0.0};
  double sum = 0.0;
  for (size_t t = 0; t < n; ++t) {
    const double error = fabs((double)out[t] - (double)expected[t]);
    if (error > result.max_error || isnan(error)) {
      result.max_error = error;
      result.at = t;
    }
    sum += error * error;
  }
  result.rms_error = sqrt(sum / (double)n);
  return result;
}

/* ------------------------------------------------------------------------ */

static int report(const verify_args *args, const carry_self_test *test,
                  const float *out, const verify_result *r)
{
  const bool passed = r->max_error <= args->tolerance;
  printf("%s: self-test of %zu samples, %d input%s per sample (the network "
         "alone, from its initial state)\n", args->path, test->n_samples,
         test->n_inputs, test->n_inputs == 1 ? "" : "s");
  printf("max |error|: %.3g at sample %zu (expected %.9g, got %.9g)\n",
         r->max_error, r->at, (double)test->expected[r->at],
         (double)out[r->at]);
  printf("RMS error:   %.3g\n", r->rms_error);
  printf("%s: the largest error is %s the tolerance %g\n",
         passed ? "pass" : "FAIL", passed ? "within" : "beyond",
         args->tolerance);
  return passed ? CLI_EXIT_OK : CLI_EXIT_FAILED;
}

static int verify(carry_model *model, const verify_args *args)
{
  carry_error err = {CARRY_SUCCESS, ""};
  const int n_inputs = carry_model_get_spec(model)->n_inputs;
  carry_self_test *test = carry_self_test_load(args->path, n_inputs, &err);
  if (!test) {
    return cli_error(CLI_EXIT_MODEL, "%s", err.message);
  }
  int status = CLI_EXIT_OK;
  float *out = NULL;
  if (!test->n_samples) {
    status = cli_error(CLI_EXIT_MODEL, "%s: no self-test: expected "
                       "\"input_batch\" and \"output_batch\" (as AIDA-X "
                       "exports write them), found neither", args->path);
  } else if (!(out = malloc(test->n_samples * sizeof(float)))) {
    status = cli_error(CLI_EXIT_FAILED, "out of memory");
  }
  if (status == CLI_EXIT_OK) status = strip_model(model);
  if (status == CLI_EXIT_OK) status = run_test(model, test, out);
  if (status == CLI_EXIT_OK) {
    const verify_result result = compare(out, test->expected,
                                         test->n_samples);
    status = report(args, test, out, &result);
  }
  free(out);
  carry_self_test_free(test);
  return status;
}

int carry_model_verify_command(int argc, char **argv)
{
  verify_args args;
  int status = parse_args(argc, argv, &args);
  if (status >= 0) {
    return status;
  }
  carry_model *model = NULL;
  status = cli_load_model(args.path, &model);
  if (status == CLI_EXIT_OK) {
    status = verify(model, &args);
  }
  carry_model_free(model);
  return status;
}
