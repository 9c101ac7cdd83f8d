/*
  carry check: runs a suite of cases through LV2 plugins in a lilv host and
  says which pass.  The parts are in check_*.c (see check.h).
*/

#include "check.h"
#include "cli.h"

#include <cairo.h>
#include <fontconfig/fontconfig.h>

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define MAX_BLOCK 1048576

typedef struct check_args {
  const char *suite_path;
  const char *junit_path;
  const char *plot_dir;
  bool plots_all;
  const char *case_name;
  check_options options;
} check_args;

static void print_help(void)
{
  printf(
    "Usage: carry check SUITE.json [OPTION]...\n"
    "\n"
    "Runs each case of the suite through its LV2 plugin in a lilv host\n"
    "(worker thread, options, log, state) at several block sizes, checks\n"
    "that the output is the same bit for bit at every size and after the\n"
    "plugin's state is saved and restored into a fresh instance, compares\n"
    "it with the expected file or properties, and prints a table.\n"
    "\n"
    "  -j, --junit FILE   also writes a JUnit XML report\n"
    "  -p, --plot DIR     writes DIR/CASE.png for each failing case: the\n"
    "                     expected and actual waveforms and their difference\n"
    "      --plot-all     ... for every case\n"
    "  -r, --record       writes the outputs as the cases' expected files\n"
    "  -b, --blocks LIST  block sizes, comma-separated, 1..%d or 'random'\n"
    "                     (default 1,64,256,4096,random); the first is the\n"
    "                     reference the others are compared with\n"
    "  -c, --case NAME    runs only the case of this name\n"
    "  -h, --help         shows this help\n"
    "\n"
    "The plugins are found on LV2_PATH.  Exit status: 0 every case passed,\n"
    "1 a case failed, 2 usage error or invalid suite, 4 a report or plot\n"
    "could not be written.\n",
    MAX_BLOCK);
}

static int parse_blocks(const char *text, check_options *options)
{
  char copy[512];
  snprintf(copy, sizeof(copy), "%s", text);
  options->n_blocks = 0;
  char *saved = NULL;
  for (char *item = strtok_r(copy, ",", &saved); item;
       item = strtok_r(NULL, ",", &saved)) {
    long value = 0;
    if (options->n_blocks == CHECK_MAX_BLOCKS) {
      return cli_usage_error("--blocks: at most %d sizes", CHECK_MAX_BLOCKS);
    }
    if (strcmp(item, "random") && !cli_parse_long(item, 1, MAX_BLOCK, &value)) {
      return cli_usage_error("--blocks: expected sizes from 1 to %d or "
                             "'random', not '%s'", MAX_BLOCK, item);
    }
    options->blocks[options->n_blocks++] = (uint32_t)value;
  }
  return options->n_blocks ? -1
                           : cli_usage_error("--blocks: no block size given");
}

static int parse_args(int argc, char **argv, check_args *args)
{
  static const struct option options[] = {
    {"junit", required_argument, NULL, 'j'},
    {"plot", required_argument, NULL, 'p'},
    {"plot-all", no_argument, NULL, 'a'},
    {"record", no_argument, NULL, 'r'},
    {"blocks", required_argument, NULL, 'b'},
    {"case", required_argument, NULL, 'c'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
  };
  int option, status = -1;
  while (status < 0 &&
         (option = getopt_long(argc, argv, "j:p:rb:c:h", options, NULL)) != -1) {
    switch (option) {
    case 'j': args->junit_path = optarg; break;
    case 'p': args->plot_dir = optarg; break;
    case 'a': args->plots_all = true; break;
    case 'r': args->options.is_recording = true; break;
    case 'b': status = parse_blocks(optarg, &args->options); break;
    case 'c': args->case_name = optarg; break;
    case 'h': print_help(); return CLI_EXIT_OK;
    default: return cli_bad_option();
    }
  }
  if (status >= 0) {
    return status;
  }
  if (args->plots_all && !args->plot_dir) {
    return cli_usage_error("--plot-all needs --plot DIR");
  }
  if (optind != argc - 1) {
    return cli_usage_error(optind == argc ? "missing the suite file"
                                          : "one suite file at a time");
  }
  args->suite_path = argv[optind];
  return -1;
}

/* ------------------------------------------------------------------------ */
/* Running the suite */

static double now_seconds(void)
{
  struct timespec time;
  clock_gettime(CLOCK_MONOTONIC, &time);
  return (double)time.tv_sec + 1e-9 * (double)time.tv_nsec;
}

static int plot(const check_args *args, const check_case *test,
                const check_result *result)
{
  if (!args->plot_dir || (result->has_passed && !args->plots_all)) {
    return CLI_EXIT_OK;
  }
  char message[CHECK_MESSAGE_SIZE];
  if (mkdir(args->plot_dir, 0777) && errno != EEXIST) {
    return cli_error(CLI_EXIT_FILE, "%s: cannot create the directory: %s",
                     args->plot_dir, strerror(errno));
  }
  if (!check_plot_write(args->plot_dir, test, result, message,
                        sizeof(message))) {
    cli_warn("%s", message);
    return result->output.n_channels ? CLI_EXIT_FILE : CLI_EXIT_OK;
  }
  return CLI_EXIT_OK;
}

/** Runs every case (or the one asked for); returns the exit code. */
static int run_suite(const check_args *args, lv2_host *host,
                     const check_suite *suite, check_result *results,
                     double *seconds)
{
  int status = CLI_EXIT_OK;
  const int width = check_table_width(suite);
  check_table_header(width);
  for (size_t k = 0; k < suite->n_cases; ++k) {
    const double start = now_seconds();
    check_case_run(host, &suite->cases[k], &args->options, &results[k]);
    seconds[k] = now_seconds() - start;
    check_table_row(width, &suite->cases[k], &args->options, &results[k]);
    if (!results[k].has_passed && status == CLI_EXIT_OK) {
      status = CLI_EXIT_FAILED;
    }
    const int plot_status = plot(args, &suite->cases[k], &results[k]);
    status = plot_status ? plot_status : status;
  }
  return status;
}

static int write_junit(const check_args *args, const check_suite *suite,
                       const check_result *results, const double *seconds)
{
  char message[CHECK_MESSAGE_SIZE];
  if (args->junit_path &&
      !check_junit_write(args->junit_path, suite, results, seconds, message,
                         sizeof(message))) {
    return cli_error(CLI_EXIT_FILE, "%s", message);
  }
  return CLI_EXIT_OK;
}

static void summarise(const check_suite *suite, const check_result *results)
{
  size_t n_failed = 0;
  for (size_t k = 0; k < suite->n_cases; ++k) {
    n_failed += !results[k].has_passed;
  }
  printf("%zu of %zu cases passed\n", suite->n_cases - n_failed,
         suite->n_cases);
}

static int check_all(const check_args *args, check_suite *suite)
{
  lv2_host *host = lv2_host_new(NULL, NULL);
  check_result *results = calloc(suite->n_cases, sizeof(check_result));
  double *seconds = calloc(suite->n_cases, sizeof(double));
  int status = CLI_EXIT_FAILED;
  if (!host || !results || !seconds) {
    cli_error(CLI_EXIT_FAILED, "out of memory");
  } else {
    status = run_suite(args, host, suite, results, seconds);
    summarise(suite, results);
    const int junit_status = write_junit(args, suite, results, seconds);
    status = junit_status ? junit_status : status;
  }
  for (size_t k = 0; results && k < suite->n_cases; ++k) {
    check_result_free(&results[k]);
  }
  free(results);
  free(seconds);
  lv2_host_free(host);
  return status;
}

int carry_check(int argc, char **argv)
{
  check_args args = {.options = {{1, 64, 256, 4096, CHECK_BLOCK_RANDOM}, 5,
                                 false}};
  const int parse_status = parse_args(argc, argv, &args);
  if (parse_status >= 0) {
    return parse_status;
  }
  check_suite suite;
  char message[CHECK_MESSAGE_SIZE];
  if (!check_suite_load(args.suite_path, &suite, message, sizeof(message))) {
    return cli_error(CLI_EXIT_USAGE, "%s", message);
  }
  if (args.case_name && !check_suite_select(&suite, args.case_name)) {
    check_suite_free(&suite);
    return cli_usage_error("%s: no case named '%s'", args.suite_path,
                           args.case_name);
  }
  const int status = check_all(&args, &suite);
  check_suite_free(&suite);
  // cairo and fontconfig keep caches for the life of the process; freed
  // here so that a leak checker sees only real leaks.
  cairo_debug_reset_static_data();
  FcFini();
  return status;
}
