/*
  The shared error path and helpers of the `carry` subcommands.
*/

#include "cli.h"

#include "carry.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The one piece of global state: which subcommand is speaking.  A command
   line tool runs one subcommand per process, so a static is the honest
   shape for it. */
static char command_name[64] = "carry";

/* Set by the signal handler, read by the workers of a batch: a lock-free
   atomic is safe in both places, where a volatile sig_atomic_t is only
   safe within one thread. */
static atomic_int interrupt_flag = 0;

/* Set while a progress bar is drawn on stderr, so that messages first
   clear its line; changed only while no other thread reports. */
static bool clears_line = false;

/* ------------------------------------------------------------------------ */
/* Reporting */

void cli_set_command(const char *name)
{
  snprintf(command_name, sizeof(command_name), "carry%s%s", name ? " " : "",
           name ? name : "");
}

const char *cli_command(void)
{
  return command_name;
}

void cli_clear_line_before_messages(bool is_cleared)
{
  clears_line = is_cleared;
}

/** One message, whole: the workers of a batch report at the same time. */
static void vreport(const char *prefix, const char *format, va_list args)
{
  flockfile(stderr);
  fprintf(stderr, "%s%s: %s", clears_line ? "\r\033[K" : "", command_name,
          prefix);
  vfprintf(stderr, format, args);
  fputc('\n', stderr);
  funlockfile(stderr);
}

int cli_error(int exit_code, const char *format, ...)
{
  va_list args;
  va_start(args, format);
  vreport("", format, args);
  va_end(args);
  return exit_code;
}

void cli_warn(const char *format, ...)
{
  va_list args;
  va_start(args, format);
  vreport("warning: ", format, args);
  va_end(args);
}

void cli_note(const char *format, ...)
{
  va_list args;
  va_start(args, format);
  vreport("", format, args);
  va_end(args);
}

int cli_usage_error(const char *format, ...)
{
  va_list args;
  va_start(args, format);
  flockfile(stderr);  // the hint stays with its message
  vreport("", format, args);
  va_end(args);
  fprintf(stderr, "Try '%s --help' for more information.\n", command_name);
  funlockfile(stderr);
  return CLI_EXIT_USAGE;
}

/* ------------------------------------------------------------------------ */
/* Arguments */

void cli_getopt_reset(void)
{
  optind = 0;
  opterr = 1;
}

int cli_bad_option(void)
{
  fprintf(stderr, "Try '%s --help' for more information.\n", command_name);
  return CLI_EXIT_USAGE;
}

bool cli_parse_long(const char *text, long min, long max, long *value)
{
  char *end = NULL;
  errno = 0;
  const long parsed = strtol(text, &end, 10);
  if (end == text || *end != '\0' || errno == ERANGE || parsed < min ||
      parsed > max) {
    return false;
  }
  *value = parsed;
  return true;
}

bool cli_parse_double(const char *text, double *value)
{
  char *end = NULL;
  const double parsed = strtod(text, &end);
  if (end == text || *end != '\0' || !isfinite(parsed)) {
    return false;
  }
  *value = parsed;
  return true;
}

bool cli_parse_u64(const char *text, uint64_t *value)
{
  char *end = NULL;
  errno = 0;
  if (text[0] == '-' || text[0] == '\0') {
    return false;  // strtoull would quietly wrap a negative number
  }
  const unsigned long long parsed = strtoull(text, &end, 0);
  if (*end != '\0' || errno == ERANGE) {
    return false;
  }
  *value = (uint64_t)parsed;
  return true;
}

/* ------------------------------------------------------------------------ */
/* Models */

int cli_load_model(const char *path, carry_model **model)
{
  carry_error err = {CARRY_SUCCESS, ""};
  *model = carry_model_load(path, &err);
  if (!*model) {
    return cli_error(CLI_EXIT_MODEL, "cannot load model: %s",
                     err.message[0] ? err.message
                                    : carry_strerror(err.status));
  }
  return CLI_EXIT_OK;
}

/* ------------------------------------------------------------------------ */
/* Output files */

int cli_output_open(cli_output *output, const char *path)
{
  /* Named so that one left by a killed run says what it is, and ends in
     no audio extension, so that a later batch does not take it as
     input. */
  static const char suffix[] = ".carry-tmp-XXXXXX";
  output->path = strdup(path);
  output->temp_path = malloc(strlen(path) + sizeof(suffix));
  if (!output->path || !output->temp_path) {
    cli_output_discard(output);
    return cli_error(CLI_EXIT_FAILED, "out of memory");
  }
  strcpy(output->temp_path, path);
  strcat(output->temp_path, suffix);
  const int fd = mkstemp(output->temp_path);
  if (fd < 0) {
    const int saved = errno;
    free(output->temp_path);
    output->temp_path = NULL;  // nothing was created: nothing to remove
    cli_output_discard(output);
    return cli_error(CLI_EXIT_FILE, "cannot create '%s': %s", path,
                     strerror(saved));
  }
  close(fd);
  return CLI_EXIT_OK;
}

static mode_t file_mode = 0;

/** Reading the umask means setting it; done once, as worker threads may
    create files and folders meanwhile. */
static void read_umask(void)
{
  const mode_t mask = umask(0);
  umask(mask);
  file_mode = 0666 & ~mask;
}

/** mkstemp makes files only the owner may read; a finished output should
    look like any new file, so apply the usual mode under the umask. */
static int new_file_mode(void)
{
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, read_umask);
  return (int)file_mode;
}

int cli_output_commit(cli_output *output)
{
  if (chmod(output->temp_path, (mode_t)new_file_mode()) != 0 ||
      rename(output->temp_path, output->path) != 0) {
    return cli_error(CLI_EXIT_FILE, "cannot write '%s': %s", output->path,
                     strerror(errno));
  }
  free(output->temp_path);
  output->temp_path = NULL;
  return CLI_EXIT_OK;
}

void cli_output_discard(cli_output *output)
{
  if (output->temp_path) {
    unlink(output->temp_path);
  }
  free(output->temp_path);
  free(output->path);
  output->temp_path = NULL;
  output->path = NULL;
}

/* ------------------------------------------------------------------------ */
/* Interruption */

static void on_interrupt(int signal_number)
{
  (void)signal_number;
  atomic_store(&interrupt_flag, 1);
}

void cli_catch_interrupts(void)
{
  struct sigaction action;
  memset(&action, 0, sizeof(action));
  action.sa_handler = on_interrupt;
  action.sa_flags = (int)SA_RESETHAND;  // a second Ctrl-C stops at once
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, NULL);
  sigaction(SIGTERM, &action, NULL);
}

bool cli_interrupted(void)
{
  return atomic_load(&interrupt_flag) != 0;
}
