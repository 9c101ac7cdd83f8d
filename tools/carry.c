/*
  The `carry` command: finds the subcommand and hands it the rest of the
  command line.  Each subcommand lives in its own file.
*/

#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

/* meson passes the project version; the fallback keeps a bare compile
   working. */
#ifndef CARRY_VERSION
#  define CARRY_VERSION "unknown" // meson defines it from the project version
#endif

typedef struct subcommand {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
} subcommand;

static const subcommand subcommands[] = {
  {"process", carry_process, "run a model over an audio file"},
  {"signal", carry_signal, "render the guitar-like test signal"},
  {"reference", carry_reference, "render audio through a reference effect"},
  {"bench", carry_bench, "measure how fast models run on this machine"},
  {"model", carry_model_command, "describe, verify and convert model files"},
  {"train", carry_train, "train a model on dry and processed recordings"},
  {"check", carry_check, "test LV2 plugins against a suite of cases"},
};

#define N_SUBCOMMANDS (sizeof(subcommands) / sizeof(subcommands[0]))

static void print_help(void)
{
  printf("Usage: carry [--help | --version]\n"
         "       carry SUBCOMMAND [OPTION]... [ARGUMENT]...\n"
         "\n"
         "Runs streaming recurrent-network audio models (LSTM, GRU) offline.\n"
         "\n"
         "Subcommands:\n");
  for (size_t k = 0; k < N_SUBCOMMANDS; ++k) {
    printf("  %-9s %s\n", subcommands[k].name, subcommands[k].summary);
  }
  printf("\n"
         "Run 'carry SUBCOMMAND --help' for its options.\n"
         "\n"
         "Exit status: 0 success, 1 processing failed, 2 usage error,\n"
         "3 model error, 4 audio file error.\n");
}

static const subcommand *find_subcommand(const char *name)
{
  for (size_t k = 0; k < N_SUBCOMMANDS; ++k) {
    if (!strcmp(subcommands[k].name, name)) {
      return &subcommands[k];
    }
  }
  return NULL;
}

/** Handles the options before the subcommand; returns -1 to go on to the
    subcommand, else the exit code. */
static int parse_top_options(int argc, char **argv)
{
  static const struct option options[] = {
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
  };
  int option;
  /* "+": stop at the subcommand, whose options are its own. */
  while ((option = getopt_long(argc, argv, "+hV", options, NULL)) != -1) {
    switch (option) {
    case 'h': print_help(); return CLI_EXIT_OK;
    case 'V': printf("carry %s\n", CARRY_VERSION); return CLI_EXIT_OK;
    default: return cli_bad_option();
    }
  }
  if (optind >= argc) {
    return cli_usage_error("missing subcommand (process, signal, "
                           "reference, bench, model, train or check)");
  }
  return -1;
}

int main(int argc, char **argv)
{
  cli_set_command(NULL);
  const int status = parse_top_options(argc, argv);
  if (status >= 0) {
    return status;
  }
  const subcommand *command = find_subcommand(argv[optind]);
  if (!command) {
    return cli_usage_error("unknown subcommand '%s'", argv[optind]);
  }
  cli_set_command(command->name);

  /* The subcommand sees its own name as argv[0], so getopt's messages
     read "carry process: unrecognized option ...". */
  char name[64];
  snprintf(name, sizeof(name), "%s", cli_command());
  const int sub_argc = argc - optind;
  char **sub_argv = argv + optind;
  sub_argv[0] = name;
  cli_getopt_reset();
  return command->run(sub_argc, sub_argv);
}
