/*
  What the two halves of `carry bench` share: the options, the standard
  random models, the input signal and the timing helpers.  bench.c times
  bare streams; bench_plugin.c times the LV2 plugin's run() beside them.
*/

#ifndef CARRY_BENCH_H
#define CARRY_BENCH_H

#include "carry.h"

#include <stdbool.h>
#include <stddef.h>

#define BENCH_RATE 48000.0   ///< Hz of every benched model and plugin
#define BENCH_MAX_ROUNDS 64
#define BENCH_MAX_FILES 32
#define BENCH_MAX_RATIOS 4

/** Bits of bench_options.qualities. */
enum {
  BENCH_EXACT = 1u << CARRY_QUALITY_EXACT,
  BENCH_FAST = 1u << CARRY_QUALITY_FAST,
};

typedef struct bench_options {
  double seconds;        ///< Audio per round
  int n_rounds;
  int block;             ///< Samples per process call (and plugin run())
  carry_kernels kernels;
  unsigned qualities;    ///< BENCH_EXACT | BENCH_FAST bits
  bool is_json;
  bool is_plugin;        ///< Time the LV2 plugin against the bare core
  bool is_stereo;        ///< Also time two streams in step per model
  int n_streams;         ///< --streams: lanes of a lockstep batch, or 0
  const char *files[BENCH_MAX_FILES];
  int n_files;
  double ratios[BENCH_MAX_RATIOS];  ///< Corrected streams' rate ratios
  int n_ratios;
  const char *models_dir;  ///< --write-models: write the standard set here
} bench_options;

/** 1 input, `n_stacked` recurrent layers of `n_units`, dense(1), with
    the same pseudo-random weights every run, at BENCH_RATE.  NULL with
    `err` on failure. */
carry_model *bench_random_model(carry_layer_type type, int n_units,
                                int n_stacked, carry_error *err);

/** A guitar-like level: a decaying tone with a little noise. */
void bench_make_input(float *in, size_t n);

/** CLOCK_MONOTONIC in nanoseconds. */
double bench_now_ns(void);

/** The median of `n` values (at most BENCH_MAX_ROUNDS). */
double bench_median(const double *values, int n);

/** Prints `text` as a JSON string, quotes included, escaping what JSON
    needs escaped. */
void bench_print_json_string(const char *text);

/** `carry bench --plugin`: the plugin's run() against the bare core, mono
    and stereo.  Returns an exit code. */
int bench_plugin(const bench_options *opt);

#endif /* CARRY_BENCH_H */
