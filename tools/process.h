/*
  carry process, shared between its two forms: one file (process.c) and
  a batch of files on worker threads (process_batch.c).
*/

#ifndef CARRY_PROCESS_H
#define CARRY_PROCESS_H

#include "carry.h"
#include "carry_rate.h"
#include "plugin_setup.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROCESS_MAX_PARAMS 64
#define PROCESS_MAX_CONTROLS 64

/** The command line, checked for form but not yet against the model. */
typedef struct process_args {
  const char *model_path;
  const char *in_path;             ///< One-file form
  const char *out_path;            ///< One-file form
  const char *params[PROCESS_MAX_PARAMS];  ///< "NAME=VALUE" as typed
  int n_params;
  uint32_t block;                  ///< T: frames per read and per call
  bool is_unsettled;               ///< Start from the model's own state
  bool is_normalized;              ///< Bring the output to -18 dB
  carry_rate_mode rate_mode;       ///< How a model of another rate runs
  carry_quality quality;           ///< --quality: the gate activations
                                   ///< the streams run after settling
  bool keeps_latency;              ///< Write the delay, as the plugin does
  int out_type;                    ///< --format: SF_FORMAT_WAV ..., or 0
  int out_subtype;                 ///< --bits: SF_FORMAT_PCM_16 ..., or 0
  double tail_seconds;             ///< --tail: silence run after IN
  /* An LV2 plugin instead of the core: set by --plugin or --preset. */
  const char *plugin_uri;          ///< --plugin, or NULL
  const char *preset_uri;          ///< --preset, or NULL
  plugin_control controls[PROCESS_MAX_CONTROLS];  ///< --control, checked
                                   ///< for form ("SYMBOL=number")
  int n_controls;
  /* The batch form: set when --output-dir is given. */
  const char *out_dir;             ///< Where the outputs go (-o)
  char **inputs;                   ///< Files and folders as typed
  int n_inputs;
  const char *list_path;           ///< --list: one input per line ("-":
                                   ///< standard input)
  const char *pattern;             ///< --pattern: a glob on file names
  bool is_forced;                  ///< --force: overwrite existing outputs
  bool is_resumed;                 ///< --resume: skip them (the default,
                                   ///< said explicitly)
  int n_jobs;                      ///< -j: worker threads
  long shard_index;                ///< --shard K/N: K, from 0
  long n_shards;                   ///< --shard K/N: N (1: no sharding)
} process_args;

struct process_plugin;

/** The model with its knobs set, or the LV2 plugin, ready to be shared by
    any number of jobs on any threads. */
typedef struct process_model {
  struct process_plugin *plugin;   ///< With --plugin or --preset, else NULL
  carry_model *model;
  float knobs[CARRY_MAX_KNOBS];    ///< (N - 1) conditioning values
  float normalize_gain_db;         ///< Added to the output gain
} process_model;

/** What one file's run gives back for reports. */
typedef struct process_outcome {
  double seconds_of_audio;         ///< Written to the output
  double seconds_spent;            ///< Reading, processing and writing
  char summary[640];               ///< The one-file form's report
} process_outcome;

/** Loads the model, applies --param and --normalize (or, with --plugin or
    --preset, finds the plugin and checks the preset and controls);
    reports and returns the exit code on failure. */
int process_model_prepare(process_model *prepared, const process_args *args);

/** Frees the model; a zeroed process_model is fine. */
void process_model_free(process_model *prepared);

/** Runs `in_path` through fresh streams of the shared model into
    `out_path` (written under a temporary name, renamed when complete).
    Reports errors itself and returns the exit code; fills `outcome` on
    success.  While it runs, adds the microseconds of audio processed to
    `meter` (if not NULL), for a progress bar.  Thread: any; several may
    run at once on one model. */
int process_one_file(const process_model *prepared, const process_args *args,
                     const char *in_path, const char *out_path,
                     atomic_uint_least64_t *meter, process_outcome *outcome);

struct audio_job;

/** Sets an audio job's --format, --bits and --tail (once its input is
    open: the tail is counted at the input's rate). */
void process_audio_options(struct audio_job *audio, const process_args *args);

/** A file's closing report: frames, time, peak, the gain --normalize
    added, what ran at the file's rate (`stream`: one of its channels). */
void process_describe(const process_model *prepared, const process_args *args,
                      const struct audio_job *audio,
                      const carry_rate_stream *stream, char *text,
                      size_t size);

/** Where a batch's workers take their files from and report them to
    (process_batch.c), for process_lockstep_work(). */
struct batch_item;
typedef struct process_feed {
  /// The next file, or NULL when there is none or Ctrl-C was pressed.
  const struct batch_item *(*take)(void *context);
  /// A file done: `status` is its exit code, `outcome` filled on success.
  void (*finish)(void *context, const struct batch_item *item, int status,
                 const process_outcome *outcome);
  void *context;
  /// Lanes a lockstep worker fills at most while it runs other files: a
  /// batch's files spread over its workers instead of the first taking
  /// them all (CARRY_MAX_LANES: no limit)
  int max_lanes;
} process_feed;

/** Whether a batch may run its files in lockstep groups: the model's core
    (not a plugin), at the default kernels and quality. */
bool process_lockstep_fits(const process_model *prepared,
                           const process_args *args);

/** One worker of a batch in lockstep: takes files from `feed` and runs
    their channels as the lanes of one carry_batch, a lane refilled with
    the next file's channel when one ends, each output byte for byte what
    process_one_file() writes.  A file the lanes cannot run bit for bit
    (another sample rate than the model's, more channels than lanes, a
    lossy output format) goes through process_one_file().  Returns an exit
    code for a failure of the worker itself (memory), reported. */
int process_lockstep_work(const process_model *prepared,
                          const process_args *args, const process_feed *feed,
                          atomic_uint_least64_t *meter);

/** True when the arguments ask for an LV2 plugin rather than the core. */
bool process_uses_plugin(const process_args *args);

/** With --plugin or --preset: opens the LV2 world, resolves the plugin
    (from the preset's lv2:appliesTo if --plugin is missing) and checks
    the preset, the control symbols and the model against it. */
int process_plugin_prepare(process_model *prepared, const process_args *args);
void process_plugin_free(struct process_plugin *plugin);

/** process_one_file() through fresh instances of the plugin. */
int process_plugin_file(struct process_plugin *plugin,
                        const process_args *args, const char *in_path,
                        const char *out_path, atomic_uint_least64_t *meter,
                        process_outcome *outcome);

/** The batch form: every input into `args->out_dir`. */
int process_batch(const process_args *args);

#endif /* CARRY_PROCESS_H */
