/*
  carry model convert: writes any model Carry reads as Carry's Keras JSON
  (carry_model_to_json), with the input file's self-test if it has one.

  Carry writes every number in the shortest form that reads back to the
  same float, so converting the output again gives the same bytes, and
  every format runs bit for bit the same after conversion.
*/

#include "carry.h"
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct convert_args {
  const char *in_path;
  const char *out_path;
} convert_args;

/* ------------------------------------------------------------------------ */
/* Arguments */

static void print_help(void)
{
  printf(
    "Usage: carry model convert IN OUT.json\n"
    "\n"
    "Reads the model IN (RTNeural/AIDA-X Keras JSON, GuitarML PyTorch JSON\n"
    "or Neural Amp Modeler .nam LSTM) and writes it to OUT as Carry's\n"
    "Keras JSON: what the Keras format cannot say (knob names and ranges,\n"
    "an initial state) goes in its \"carry\" object and the file's\n"
    "metadata is kept, so the converted model runs bit for bit the same.\n"
    "A self-test in IN (input_batch, output_batch) is written to OUT too.\n"
    "OUT is written whole or not at all, and may not be IN.\n"
    "\n"
    "  -h, --help   shows this help\n"
    "\n"
    "Exit status: 0 success, 1 failed, 2 usage error (including OUT being\n"
    "IN), 3 model error, 4 OUT cannot be written.\n");
}

/** Returns -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, convert_args *args)
{
  static const struct option options[] = {
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
  };
  *args = (convert_args){NULL, NULL};
  int option;
  while ((option = getopt_long(argc, argv, "h", options, NULL)) != -1) {
    switch (option) {
    case 'h': print_help(); return CLI_EXIT_OK;
    default: return cli_bad_option();
    }
  }
  const int n_left = argc - optind;
  if (n_left < 2) {
    return cli_usage_error(n_left ? "missing output file OUT.json"
                                  : "missing model IN and output OUT.json");
  }
  if (n_left > 2) {
    return cli_usage_error("too many arguments: '%s' after IN and OUT",
                           argv[optind + 2]);
  }
  args->in_path = argv[optind];
  args->out_path = argv[optind + 1];
  return -1;
}

/** Whether OUT names the input file, by name or as the same file under
    another name (a link, "./x"). */
static bool is_same_file(const char *in_path, const char *out_path)
{
  struct stat in, out;
  return !strcmp(in_path, out_path) ||
         (stat(in_path, &in) == 0 && stat(out_path, &out) == 0 &&
          in.st_dev == out.st_dev && in.st_ino == out.st_ino);
}

/* ------------------------------------------------------------------------ */
/* The text */

/** The input's self-test as JSON members, or NULL if it has none or it
    cannot be kept (with a warning: the model is still worth writing). */
static char *self_test_json(const carry_model *model, const char *path,
                            size_t *n_samples)
{
  carry_error err = {CARRY_SUCCESS, ""};
  const int n_inputs = carry_model_get_spec(model)->n_inputs;
  carry_self_test *test = carry_self_test_load(path, n_inputs, &err);
  char *json = NULL;
  if (!test) {
    cli_warn("the self-test is not kept: %s", err.message);
  } else if (test->n_samples && !(json = carry_self_test_to_json(test, &err))) {
    cli_warn("the self-test is not kept: %s", err.message);
  }
  *n_samples = json ? test->n_samples : 0;
  carry_self_test_free(test);
  return json;
}

/** The model's JSON with the self-test's members added at the end of the
    top-level object (Carry's writer ends its text with "\n}\n"). */
static char *add_members(char *model_json, const char *members)
{
  static const char end[] = "\n}\n";
  const size_t length = strlen(model_json), end_length = strlen(end);
  if (length < end_length || strcmp(model_json + length - end_length, end)) {
    return NULL;
  }
  const size_t size = length + strlen(members) + 8;
  char *joined = malloc(size);
  if (joined) {
    snprintf(joined, size, "%.*s,\n  %s%s", (int)(length - end_length),
             model_json, members, end);
  }
  return joined;
}

/** The whole output file's text, to free(); NULL after reporting. */
static char *converted_text(const carry_model *model, const char *in_path,
                            size_t *n_test_samples)
{
  carry_error err = {CARRY_SUCCESS, ""};
  char *text = carry_model_to_json(model, &err);
  if (!text) {
    cli_error(CLI_EXIT_FAILED, "cannot write the model: %s", err.message);
    return NULL;
  }
  char *members = self_test_json(model, in_path, n_test_samples);
  char *joined = members ? add_members(text, members) : NULL;
  if (members && !joined) {
    cli_warn("the self-test is not kept: out of memory");
    *n_test_samples = 0;
  }
  free(members);
  if (joined) {
    free(text);
    return joined;
  }
  return text;
}

/* ------------------------------------------------------------------------ */
/* The file */

static int write_text(const char *text, const char *path)
{
  cli_output output = {NULL, NULL};
  int status = cli_output_open(&output, path);
  if (status != CLI_EXIT_OK) {
    return status;
  }
  FILE *file = fopen(output.temp_path, "wb");
  const size_t length = strlen(text);
  bool is_written = file && fwrite(text, 1, length, file) == length;
  is_written = file && fclose(file) == 0 && is_written;
  status = is_written ? cli_output_commit(&output)
                      : cli_error(CLI_EXIT_FILE, "cannot write '%s'", path);
  cli_output_discard(&output);
  return status;
}

static void report(const carry_model *model, const convert_args *args,
                   size_t n_test_samples)
{
  const carry_model_spec *spec = carry_model_get_spec(model);
  char name[CARRY_NAME_SIZE];
  snprintf(name, sizeof(name), "%s", spec->name);
  for (char *c = name; *c; ++c) { // a name from a file drives no terminal
    *c = (unsigned char)*c < 0x20u || *c == 0x7f ? '?' : *c;
  }
  char test[96] = "";
  if (n_test_samples) {
    snprintf(test, sizeof(test), ", with its self-test of %zu samples",
             n_test_samples);
  }
  cli_note("wrote '%s': \"%s\", %s \u2192 %s%s", args->out_path, name,
           carry_format_name(spec->format),
           carry_format_name(CARRY_FORMAT_KERAS), test);
}

int carry_model_convert_command(int argc, char **argv)
{
  convert_args args;
  int status = parse_args(argc, argv, &args);
  if (status >= 0) {
    return status;
  }
  if (is_same_file(args.in_path, args.out_path)) {
    return cli_usage_error("OUT '%s' is the input file: convert writes a new "
                           "file and never replaces its input",
                           args.out_path);
  }
  carry_model *model = NULL;
  size_t n_test_samples = 0;
  status = cli_load_model(args.in_path, &model);
  char *text = status == CLI_EXIT_OK
                 ? converted_text(model, args.in_path, &n_test_samples)
                 : NULL;
  if (status == CLI_EXIT_OK) {
    status = text ? write_text(text, args.out_path) : CLI_EXIT_FAILED;
  }
  if (status == CLI_EXIT_OK) {
    report(model, &args, n_test_samples);
  }
  free(text);
  carry_model_free(model);
  return status;
}
