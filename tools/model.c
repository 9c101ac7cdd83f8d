/*
  carry model: finds the verb (info, verify, convert) and hands it the rest
  of the command line.  Each verb lives in its own file.
*/

#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

typedef struct model_verb {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
} model_verb;

static const model_verb verbs[] = {
  {"info", carry_model_info_command,
   "describe a model: layers, knobs, loudness, speed (--json)"},
  {"verify", carry_model_verify_command,
   "run a file's own self-test (input_batch, output_batch)"},
  {"convert", carry_model_convert_command,
   "write any model Carry reads as Carry's Keras JSON"},
};

#define N_VERBS (sizeof(verbs) / sizeof(verbs[0]))
#define VERB_LIST "info, verify or convert"

static void print_help(void)
{
  printf("Usage: carry model VERB [OPTION]... FILE...\n"
         "\n"
         "Describes, checks and converts model files (RTNeural/AIDA-X Keras\n"
         "JSON, GuitarML PyTorch JSON, Neural Amp Modeler .nam LSTM).\n"
         "\n"
         "Verbs:\n");
  for (size_t k = 0; k < N_VERBS; ++k) {
    printf("  %-8s %s\n", verbs[k].name, verbs[k].summary);
  }
  printf("\n"
         "Run 'carry model VERB --help' for a verb's options.\n"
         "\n"
         "Exit status: 0 success (verify: the test passed), 1 failed (verify:\n"
         "the test failed), 2 usage error, 3 model error (verify: the file\n"
         "has no self-test), 4 output file error.\n");
}

static const model_verb *find_verb(const char *name)
{
  for (size_t k = 0; k < N_VERBS; ++k) {
    if (!strcmp(verbs[k].name, name)) {
      return &verbs[k];
    }
  }
  return NULL;
}

/** Handles the options before the verb; returns -1 to go on to the verb,
    else the exit code. */
static int parse_model_options(int argc, char **argv)
{
  static const struct option options[] = {
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
  };
  int option;
  /* "+": stop at the verb, whose options are its own. */
  while ((option = getopt_long(argc, argv, "+h", options, NULL)) != -1) {
    switch (option) {
    case 'h': print_help(); return CLI_EXIT_OK;
    default: return cli_bad_option();
    }
  }
  if (optind >= argc) {
    return cli_usage_error("missing verb (" VERB_LIST ")");
  }
  return -1;
}

int carry_model_command(int argc, char **argv)
{
  const int status = parse_model_options(argc, argv);
  if (status >= 0) {
    return status;
  }
  const model_verb *verb = find_verb(argv[optind]);
  if (!verb) {
    return cli_usage_error("unknown verb '%s' (" VERB_LIST ")",
                           argv[optind]);
  }
  char command[64];
  snprintf(command, sizeof(command), "model %s", verb->name);
  cli_set_command(command);

  /* The verb sees its own name as argv[0], so getopt's messages read
     "carry model info: unrecognized option ...". */
  char name[64];
  snprintf(name, sizeof(name), "%s", cli_command());
  const int verb_argc = argc - optind;
  char **verb_argv = argv + optind;
  verb_argv[0] = name;
  cli_getopt_reset();
  return verb->run(verb_argc, verb_argv);
}
