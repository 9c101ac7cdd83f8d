/*
  What `carry check` tells: one table row per case on stdout, and JUnit
  XML for CI systems.
*/

#include "check.h"
#include "cli.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROW_FORMAT "%-*s %-22s %10s %10s %10s %11s  %s\n"

int check_table_width(const check_suite *suite)
{
  int width = 4;  // "case"
  for (size_t k = 0; k < suite->n_cases; ++k) {
    const int n = (int)strlen(suite->cases[k].name);
    width = n > width ? n : width;
  }
  return width;
}

void check_table_header(int width)
{
  printf(ROW_FORMAT, width, "case", "blocks", "block diff", "max error",
         "ESR", "x real time", "result");
}

/** A measure, or "-" when there is none. */
static const char *measure(double value, char *text, size_t size)
{
  if (value < 0.0) {
    snprintf(text, size, "-");
  } else {
    snprintf(text, size, "%.3g", value);
  }
  return text;
}

void check_table_row(int width, const check_case *test,
                     const check_options *options, const check_result *result)
{
  char blocks[128], difference[32], error[32], esr[32], speed[32];
  char verdict[CHECK_MESSAGE_SIZE + 16];
  check_blocks_describe(options, blocks, sizeof(blocks));
  if (result->has_passed) {
    snprintf(verdict, sizeof(verdict), "pass%s%s",
             result->reason[0] ? ": " : "", result->reason);
  } else {
    snprintf(verdict, sizeof(verdict), "FAIL: %s", result->reason);
  }
  snprintf(difference, sizeof(difference), "%s",
           result->block_difference > 0.0 ? "" : "exact");
  if (result->block_difference > 0.0) {
    measure(result->block_difference, difference, sizeof(difference));
  }
  snprintf(speed, sizeof(speed), "%.1f", result->realtime_factor);
  printf(ROW_FORMAT, width, test->name, blocks, difference,
         measure(result->max_error, error, sizeof(error)),
         measure(result->esr, esr, sizeof(esr)), speed, verdict);
  fflush(stdout);
}

/* ------------------------------------------------------------------------ */
/* JUnit XML */

static void write_escaped(FILE *file, const char *text)
{
  for (const char *c = text; *c; ++c) {
    switch (*c) {
    case '&': fputs("&amp;", file); break;
    case '<': fputs("&lt;", file); break;
    case '>': fputs("&gt;", file); break;
    case '"': fputs("&quot;", file); break;
    default: fputc(*c, file);
    }
  }
}

static void write_case(FILE *file, const char *suite_name,
                       const check_case *test, const check_result *result,
                       double seconds)
{
  fputs("  <testcase classname=\"", file);
  write_escaped(file, suite_name);
  fputs("\" name=\"", file);
  write_escaped(file, test->name);
  fprintf(file, "\" time=\"%.3f\">\n", seconds);
  if (!result->has_passed) {
    fputs("    <failure message=\"", file);
    write_escaped(file, result->reason);
    fputs("\"/>\n", file);
  }
  fprintf(file, "    <system-out>max error %g, ESR %g, block difference %g, "
          "%.1fx real time</system-out>\n", result->max_error, result->esr,
          result->block_difference, result->realtime_factor);
  fputs("  </testcase>\n", file);
}

static void write_suite(FILE *file, const check_suite *suite,
                        const check_result *results, const double *seconds)
{
  size_t n_failed = 0;
  double total = 0.0;
  for (size_t k = 0; k < suite->n_cases; ++k) {
    n_failed += !results[k].has_passed;
    total += seconds[k];
  }
  char *path = strdup(suite->path);
  const char *name = path ? basename(path) : "suite";
  fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"",
        file);
  write_escaped(file, name);
  fprintf(file, "\" tests=\"%zu\" failures=\"%zu\" errors=\"0\" "
          "time=\"%.3f\">\n", suite->n_cases, n_failed, total);
  for (size_t k = 0; k < suite->n_cases; ++k) {
    write_case(file, name, &suite->cases[k], &results[k], seconds[k]);
  }
  fputs("</testsuite>\n", file);
  free(path);
}

bool check_junit_write(const char *path, const check_suite *suite,
                       const check_result *results, const double *seconds,
                       char *message, size_t size)
{
  cli_output output = {0};
  if (cli_output_open(&output, path) != CLI_EXIT_OK) {
    snprintf(message, size, "%s: cannot create the file", path);
    return false;
  }
  FILE *file = fopen(output.temp_path, "w");
  bool is_written = file != NULL;
  if (file) {
    write_suite(file, suite, results, seconds);
    is_written = !ferror(file);
    is_written = !fclose(file) && is_written;
  }
  is_written = is_written && cli_output_commit(&output) == CLI_EXIT_OK;
  if (!is_written) {
    snprintf(message, size, "%s: cannot write the JUnit report", path);
  }
  cli_output_discard(&output);
  return is_written;
}
