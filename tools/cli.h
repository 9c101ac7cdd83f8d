/*
  What the subcommands of the `carry` command share: the exit codes, the
  one error path, argument parsing helpers and safe output files.
*/

#ifndef CARRY_CLI_H
#define CARRY_CLI_H

#include <stdbool.h>
#include <stdint.h>

/** Exit codes, the same for every subcommand (documented in carry.1). */
enum {
  CLI_EXIT_OK = 0,       ///< Success
  CLI_EXIT_FAILED = 1,   ///< Processing failed (memory, interrupted, ...)
  CLI_EXIT_USAGE = 2,    ///< Bad arguments, or a knob the model lacks
  CLI_EXIT_MODEL = 3,    ///< The model file could not be loaded
  CLI_EXIT_FILE = 4,     ///< An audio file could not be read or written
};

/* ------------------------------------------------------------------------ */
/* Subcommands: each takes its own argv, argv[0] naming it ("carry process"),
   and returns an exit code. */

int carry_process(int argc, char **argv);
int carry_signal(int argc, char **argv);
int carry_reference(int argc, char **argv);
int carry_bench(int argc, char **argv);
int carry_train(int argc, char **argv);
int carry_check(int argc, char **argv);

/** `carry model VERB`: hands the rest of the command line to the verb. */
int carry_model_command(int argc, char **argv);

/* The verbs of `carry model`, each in its own file, argv[0] naming it
   ("carry model info"). */
int carry_model_info_command(int argc, char **argv);
int carry_model_verify_command(int argc, char **argv);
int carry_model_convert_command(int argc, char **argv);

/* ------------------------------------------------------------------------ */
/* Reporting */

/** Sets the subcommand named in messages ("process"); carry.c calls it
    before dispatching. */
void cli_set_command(const char *name);

/** The subcommand's full name for messages ("carry process"). */
const char *cli_command(void);

/** Prints "carry SUBCOMMAND: message" on stderr and returns `exit_code`,
    so that a caller can free what it holds and return the code. */
int cli_error(int exit_code, const char *format, ...)
  __attribute__((format(printf, 2, 3)));

/** Prints "carry SUBCOMMAND: warning: message" on stderr. */
void cli_warn(const char *format, ...) __attribute__((format(printf, 1, 2)));

/** Prints "carry SUBCOMMAND: message" then a hint to try --help, and
    returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *format, ...)
  __attribute__((format(printf, 1, 2)));

/** Prints "carry SUBCOMMAND: message" on stderr for information. */
void cli_note(const char *format, ...) __attribute__((format(printf, 1, 2)));

/** While a progress bar is on stderr's last line, messages first clear
    that line (the bar is redrawn after them).  Call with no other thread
    reporting.  Every message above is written whole, whatever the
    threads. */
void cli_clear_line_before_messages(bool is_cleared);

/* ------------------------------------------------------------------------ */
/* Arguments */

/** Prepares getopt_long for a fresh scan of a subcommand's argv: glibc
    keeps hidden state between scans that only optind = 0 resets. */
void cli_getopt_reset(void);

/** The return of getopt_long for an unknown option or a missing value,
    after getopt has printed its own message: adds the --help hint and
    returns CLI_EXIT_USAGE. */
int cli_bad_option(void);

/** Parses a whole decimal integer in [min, max]; false on junk or range. */
bool cli_parse_long(const char *text, long min, long max, long *value);

/** Parses a whole finite number; false on junk, NaN or infinity. */
bool cli_parse_double(const char *text, double *value);

/** Parses an unsigned 64-bit integer (decimal or 0x hex). */
bool cli_parse_u64(const char *text, uint64_t *value);

/* ------------------------------------------------------------------------ */
/* Models */

struct carry_model;

/** Loads the model file at `path` into `*model`; on failure reports
    "cannot load model: " and the loader's message, and returns
    CLI_EXIT_MODEL. */
int cli_load_model(const char *path, struct carry_model **model);

/* ------------------------------------------------------------------------ */
/* Output files: written under a temporary name beside the target and
   renamed into place only when complete, so a failure never leaves half
   a file and the output may replace the input. */

typedef struct cli_output {
  char *path;       ///< The file to produce
  char *temp_path;  ///< Where it is written meanwhile (exists until commit)
} cli_output;

/** Creates an empty temporary file beside `path`, named after it
    ("PATH.carry-tmp-XXXXXX"), for the caller to open by `temp_path`; on failure reports the error and
    returns CLI_EXIT_FILE (or CLI_EXIT_FAILED without memory). */
int cli_output_open(cli_output *output, const char *path);

/** Moves the finished file into place with the permissions a new file
    gets; reports and returns CLI_EXIT_FILE on failure. */
int cli_output_commit(cli_output *output);

/** Removes the temporary file if still there and frees the names.
    Safe to call after commit, after a failed open, or twice. */
void cli_output_discard(cli_output *output);

/* ------------------------------------------------------------------------ */
/* Interruption: Ctrl-C sets a flag that long loops poll, so they can clean
   up their temporary files instead of dying with them on disk. */

void cli_catch_interrupts(void);
bool cli_interrupted(void);

#endif /* CARRY_CLI_H */
