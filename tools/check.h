/*
  `carry check`: the offline test runner.  A suite (JSON) names cases; each
  case runs a plugin through the lilv host of host/ at several block sizes
  and through a state save and restore, and is compared with an expected
  file or with properties.

  check_suite.c parses the suite, check_stimulus.c makes the inputs,
  check_run.c renders and judges a case, check_report.c prints the table
  and writes JUnit XML, check_plot.c draws the PNGs, check.c is the
  command line.  None of it is real-time code: everything allocates.
*/

#ifndef CARRY_CHECK_H
#define CARRY_CHECK_H

#include "lv2_host.h"
#include "plugin_setup.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CHECK_MESSAGE_SIZE 1024
#define CHECK_MAX_CHANNELS 8
#define CHECK_MAX_BLOCKS 16
#define CHECK_BLOCK_RANDOM 0u  ///< In a block list: random sizes

/* ------------------------------------------------------------------------ */
/* Signals */

/** Audio held one array per channel. */
typedef struct check_signal {
  int n_channels;                       ///< C
  size_t n_frames;                      ///< N
  float *channels[CHECK_MAX_CHANNELS];  ///< C arrays of (N)
} check_signal;

/** Allocates C zeroed channels of N frames; false without memory. */
bool check_signal_alloc(check_signal *signal, int n_channels,
                        size_t n_frames);
void check_signal_free(check_signal *signal);

/** Reads any file libsndfile reads; false with `message` on failure. */
bool check_signal_read(const char *path, check_signal *signal, double *rate,
                       char *message, size_t size);

/** Writes a 32-bit float WAV (under a temporary name, then renamed). */
bool check_signal_write(const char *path, const check_signal *signal,
                        double rate, char *message, size_t size);

/* ------------------------------------------------------------------------ */
/* The suite */

typedef plugin_control check_control;

typedef struct check_stimulus {
  char kind[16];     ///< impulse, sine, sweep, noise or guitar
  double seconds;    ///< Default 1
  double frequency;  ///< Hz, for sine (default 1000)
  double level_db;   ///< Peak level, dBFS (default -6; guitar: -3)
  uint64_t seed;     ///< For noise and guitar (default 1)
} check_stimulus;

typedef struct check_case {
  char *name;
  char *plugin;       ///< URI
  char *preset;       ///< URI, or NULL
  char *model;        ///< Absolute path (patch:Set of carry:model), or NULL
  check_control *controls;
  size_t n_controls;
  double rate;        ///< Hz
  char *input_file;   ///< Absolute path, or NULL for the stimulus
  check_stimulus stimulus;
  char *expect_file;  ///< Absolute path, or NULL
  double max_abs;     ///< Tolerance, or a negative number for none
  double esr;         ///< Tolerance, or a negative number for none
  bool expects_finite;
  bool expects_no_denormals;
  bool has_level;
  double level_min_db, level_max_db;  ///< RMS level of the output, dBFS
  bool expects_latency;               ///< Measured latency == reported
} check_case;

typedef struct check_suite {
  char *path;
  check_case *cases;
  size_t n_cases;
} check_suite;

/** Reads and validates a suite; false with a message such as
    "suite.json: cases[2].expect.esr: expected a number". */
bool check_suite_load(const char *path, check_suite *suite, char *message,
                      size_t size);
void check_suite_free(check_suite *suite);

/** Keeps only the case named `name`; false (the suite unchanged) if there
    is none. */
bool check_suite_select(check_suite *suite, const char *name);

/* ------------------------------------------------------------------------ */
/* Inputs */

/** The case's input: its file, or its stimulus at its rate, one channel;
    false with a message naming the case. */
bool check_input_make(const check_case *test, check_signal *input,
                      char *message, size_t size);

/* ------------------------------------------------------------------------ */
/* Running */

typedef struct check_options {
  uint32_t blocks[CHECK_MAX_BLOCKS];  ///< Sizes, CHECK_BLOCK_RANDOM random
  size_t n_blocks;
  bool is_recording;                  ///< Write outputs as expected files
} check_options;

/** What running a case found. */
typedef struct check_result {
  bool has_passed;
  char reason[CHECK_MESSAGE_SIZE];  ///< Why it failed, or a note
  double block_difference;  ///< Largest difference between block sizes
  double max_error;         ///< Against the expected file, or -1
  double esr;               ///< Against the expected file, or -1
  double realtime_factor;   ///< Audio seconds per second of run() calls
  double rate;
  check_signal input;
  check_signal output;      ///< At the first block size
  check_signal expected;    ///< The expected file, or empty
  check_signal differing;   ///< The run that differed, or empty
  char differing_label[64]; ///< "block 64", "restored state"
  char reference_label[64]; ///< What it differed from: "block 1"
} check_result;

/** Runs one case in fresh instances from `host`; always fills `result`. */
void check_case_run(lv2_host *host, const check_case *test,
                    const check_options *options, check_result *result);
void check_result_free(check_result *result);

/** The block list as text ("1,64,256,4096,random"). */
void check_blocks_describe(const check_options *options, char *text,
                           size_t size);

/* ------------------------------------------------------------------------ */
/* Reports */

/** The width of the case column: the longest name. */
int check_table_width(const check_suite *suite);
void check_table_header(int width);
void check_table_row(int width, const check_case *test,
                     const check_options *options, const check_result *result);

/** Writes JUnit XML for every case; false with a message on failure. */
bool check_junit_write(const char *path, const check_suite *suite,
                       const check_result *results, const double *seconds,
                       char *message, size_t size);

/** Draws expected, actual and their difference over time into
    `dir`/NAME.png; false with a message on failure. */
bool check_plot_write(const char *dir, const check_case *test,
                      const check_result *result, char *message, size_t size);

#endif /* CARRY_CHECK_H */
