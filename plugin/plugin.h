/*
  The Carry LV2 plugin: the instance and what its files share.

  Threads:
  - audio: run(), work_response(), activate() — never allocate, free, lock
    or wait;
  - worker: work() — loads and frees engines;
  - others: instantiate(), cleanup(), save(), restore().
  Engines travel from the worker to run() as work responses (or from a
  synchronous restore() through `mailbox`) and back to the worker to be
  freed.  `lock` guards only what the non-audio threads share.
*/

#ifndef CARRY_PLUGIN_H
#define CARRY_PLUGIN_H

#include "engine.h"

#include <lv2/atom/atom.h>
#include <lv2/atom/forge.h>
#include <lv2/core/lv2.h>
#include <lv2/log/log.h>
#include <lv2/log/logger.h>
#include <lv2/state/state.h>
#include <lv2/urid/urid.h>
#include <lv2/worker/worker.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define CARRY_URI "https://carry.audio/lv2/carry"
#define CARRY_STEREO_URI "https://carry.audio/lv2/carry-stereo"
#define CARRY_NS "https://carry.audio/lv2#"

/** Port indices, shared by both plugins; audio ports come last, in and out
    per channel. */
enum {
  PORT_CONTROL = 0,
  PORT_NOTIFY = 1,
  PORT_INPUT_GAIN = 2,
  PORT_OUTPUT_GAIN = 3,
  PORT_MIX = 4,
  PORT_KNOB = 5,        ///< PORT_KNOB + k for knob k < CARRY_KNOB_PORTS
  PORT_ENABLED = 8,
  PORT_LATENCY = 9,
  PORT_NORMALIZE = 10,
  PORT_AUDIO = 11,      ///< in of channel c at 11 + 2c, out at 12 + 2c
};

/** The rate-mode port comes after the audio ports (added later, so that
    the older ports kept their indices): 13 (mono) or 15 (stereo). */
static inline uint32_t carry_rate_mode_port(int n_channels)
{
  return PORT_AUDIO + 2u * (uint32_t)n_channels;
}

/** The quality port comes after the rate-mode port, for the same reason:
    14 (mono) or 16 (stereo). */
static inline uint32_t carry_quality_port(int n_channels)
{
  return carry_rate_mode_port(n_channels) + 1u;
}

/** The dry delay lines: a power of two above the most latency plus a
    grid cell. */
#define CARRY_DRY_RING 8192

/** Ramps that are constants in the steady state: input gain, output
    gain, mix (with bypass), normalisation, fade. */
#define CARRY_STEADY_RAMPS 5

/** Engines whose free request the worker could not take yet. */
#define CARRY_MAX_RETIRED 16

typedef struct {
  LV2_URID atom_Float;
  LV2_URID atom_Path;
  LV2_URID atom_String;
  LV2_URID atom_URID;
  LV2_URID atom_Vector;
  LV2_URID carry_knobs;
  LV2_URID carry_model;
  LV2_URID carry_modelName;
  LV2_URID carry_status;
  LV2_URID patch_Get;
  LV2_URID patch_Set;
  LV2_URID patch_property;
  LV2_URID patch_value;
} carry_uris;

/** A value that glides to its target sample by sample (a one-pole, or a
    straight line for `step` > 0). */
typedef struct {
  float value;
  float target;
} carry_glide;

/** What the notify port has to say at the end of this run(). */
typedef enum {
  REPORT_MODEL = 1 << 0,
  REPORT_NAME = 1 << 1,
  REPORT_STATUS = 1 << 2,
  REPORT_ALL = REPORT_MODEL | REPORT_NAME | REPORT_STATUS,
} carry_report;

typedef struct carry_plugin {
  /* Host features and fixed facts */
  LV2_URID_Map *map;
  LV2_Worker_Schedule *schedule;
  LV2_Log_Logger logger;
  carry_uris uris;
  LV2_Atom_Forge forge;
  double rate;
  int n_channels;

  /* Ports */
  const LV2_Atom_Sequence *control;
  LV2_Atom_Sequence *notify;
  const float *params[PORT_LATENCY - PORT_INPUT_GAIN]; ///< Ports 2..8
  float *latency;
  const float *normalize;
  const float *rate_mode_port;
  const float *quality_port;
  const float *in[CARRY_MAX_CHANNELS];
  float *out[CARRY_MAX_CHANNELS];

  /* Audio thread */
  carry_engine *current;    ///< Running; NULL: dry pass-through
  carry_engine *incoming;   ///< Fading in over `current`
  carry_engine *waiting;    ///< Next to fade in (the newest request)
  carry_engine *retired[CARRY_MAX_RETIRED];  ///< Not yet handed back
  int n_retired;
  float fade;               ///< 0..1 from current to incoming
  bool ends_fades;          ///< Activated: the next run() skips to the
                            ///< newest model at once
  float fade_step;          ///< Per sample
  float enable_step;        ///< Per sample
  float glide_coef;         ///< One-pole coefficient per sample
  uint64_t clock;           ///< Samples since activate()
  float cell_knobs[CARRY_KNOB_PORTS];  ///< Knob ports at this grid cell
  carry_glide input_gain;   ///< Linear
  carry_glide output_gain;  ///< Linear
  carry_glide mix;
  carry_glide enabled;
  carry_glide normalized;   ///< 0..1: how much of the normalising gain
  carry_glide knobs[CARRY_KNOB_PORTS];
  float last_gain_db[2];    ///< Port values the gain targets came from
  carry_rate_mode rate_mode;  ///< The port's, as the last load asked
  carry_quality quality;    ///< The port's, applied to every engine run
  char requested_path[CARRY_PATH_SIZE];  ///< Of the newest load run() sent
  unsigned report;          ///< carry_report bits due on notify
  uint32_t newest_accepted; ///< Sequence of the newest engine taken
  char pending_path[CARRY_PATH_SIZE];  ///< A load the worker has not taken
  uint32_t pending_length;  ///< 0: none
  float pending_knobs[CARRY_KNOB_PORTS];
  LV2_Atom_Forge_Frame notify_frame;
  char status[CARRY_STATUS_SIZE];
  char name[CARRY_NAME_SIZE];
  char path[CARRY_PATH_SIZE];

  /* Shared between threads */
  atomic_uint latest_request;         ///< Sequence of the newest load
  atomic_int shared_rate_mode;        ///< rate_mode, for the worker
  atomic_uint knob_bits[CARRY_KNOB_PORTS];  ///< Knob ports, for save()
  _Atomic(carry_engine *) mailbox;    ///< From a restore() without worker

  /* Non-audio threads, under `lock` */
  pthread_mutex_t lock;
  carry_engine *live;                 ///< Every engine not yet freed
  char saved_path[CARRY_PATH_SIZE];   ///< What save() stores

  /* Scratch for one grid cell (audio thread) */
  float dry[CARRY_MAX_CHANNELS][CARRY_GRID];  ///< The inputs as they came
  float x[CARRY_MAX_CHANNELS][CARRY_GRID];  ///< After the input gain
  float delayed[CARRY_GRID];  ///< The dry input, delayed as the output
  float y[CARRY_MAX_CHANNELS][CARRY_GRID];  ///< The current model's output
  float z[CARRY_MAX_CHANNELS][CARRY_GRID];  ///< The incoming model's
  float ramp_in[CARRY_GRID];
  float ramp_out[CARRY_GRID];
  float ramp_mix[CARRY_GRID];
  float ramp_enabled[CARRY_GRID];
  float ramp_fade[CARRY_GRID];
  float ramp_normalized[CARRY_GRID];
  bool has_steady_ramps;    ///< The ramps hold `steady_ramps` over a cell
  float steady_ramps[CARRY_STEADY_RAMPS];  ///< Their constants, if so

  /* Audio thread: the inputs of the last CARRY_DRY_RING samples, from
     which the dry signal is taken as late as the model's output; one ring
     per channel, allocated with the record (carry_plugin_size()) */
  float dry_ring[][CARRY_DRY_RING];
} carry_plugin;

/** Bytes of an instance record of `n_channels` channels (dry rings
    included). */
static inline size_t carry_plugin_size(int n_channels)
{
  return sizeof(carry_plugin) +
         (size_t)n_channels * sizeof(float[CARRY_DRY_RING]);
}

/* ------------------------------------------------------------------------ */
/* carry_lv2.c */

/** The data of the feature `uri`, or NULL. */
const void *carry_find_feature(const LV2_Feature *const *features,
                               const char *uri);

/* ------------------------------------------------------------------------ */
/* worker.c */

/** Asks the worker to load `path` (`length` bytes, no NUL needed) and to
    settle it with the knob port values `knob_ports`, or the model's
    defaults for NULL; the newest request wins.  `schedule` is the
    instance's or the one given to restore().  Returns false if the path is
    empty or too long or the worker would not take it (the request then
    supersedes nothing).  Thread: audio (run) or restore(). */
bool carry_request_load(carry_plugin *self, LV2_Worker_Schedule *schedule,
                        const char *path, uint32_t length,
                        const float *knob_ports);

/** Sends the load that run() keeps pending, if any, until the worker takes
    it.  Thread: audio. */
void carry_send_pending(carry_plugin *self);

/** Reads the rate-mode port; a change loads the newest model again in the
    new mode.  Thread: audio. */
void carry_follow_rate_mode(carry_plugin *self);

/** Whether sequence `a` is older than `b` (wrapping). */
static inline bool carry_is_older(uint32_t a, uint32_t b)
{
  return (int32_t)(a - b) < 0;
}

/** Hands an engine back to the worker to be freed, or keeps it to retry.
    Thread: audio. */
void carry_retire(carry_plugin *self, carry_engine *engine);

/** Retries engines the worker could not take before.  Thread: audio. */
void carry_retry_retired(carry_plugin *self);

/** Takes a new engine (or a failed load) into the fade queue and reports
    it.  Thread: audio. */
void carry_accept(carry_plugin *self, carry_engine *engine);

/** Adds an engine to the live list (`lock` held inside).  Thread: not
    audio. */
void carry_track(carry_plugin *self, carry_engine *engine);

/** Removes an engine from the live list and frees it.  Thread: not audio. */
void carry_untrack_free(carry_plugin *self, carry_engine *engine);

/** Sets what save() stores (`lock` held inside).  Thread: not audio. */
void carry_set_saved_path(carry_plugin *self, const char *path);

/** Logs a load's status line: a note, or an error.  Thread: not audio. */
void carry_log_outcome(carry_plugin *self, const carry_engine *engine);

LV2_Worker_Status carry_work(LV2_Handle instance,
                             LV2_Worker_Respond_Function respond,
                             LV2_Worker_Respond_Handle handle, uint32_t size,
                             const void *data);

LV2_Worker_Status carry_work_response(LV2_Handle instance, uint32_t size,
                                      const void *data);

/* ------------------------------------------------------------------------ */
/* messages.c */

/** Reads the control port: patch:Set of the model, patch:Get.
    Thread: audio. */
void carry_read_control(carry_plugin *self);

/** Starts the notify sequence.  Thread: audio. */
void carry_begin_notify(carry_plugin *self);

/** Writes the due reports and closes the sequence.  Thread: audio. */
void carry_end_notify(carry_plugin *self);

/** Copies `text` into a fixed buffer, cut between UTF-8 characters to fit
    (no printf on the audio thread).  Returns the length written. */
size_t carry_copy_text(char *buffer, size_t size, const char *text);

/* ------------------------------------------------------------------------ */
/* mixer.c */

/** Sets the glide targets from the control ports.  Thread: audio. */
void carry_read_params(carry_plugin *self);

/** Moves every glide to its target at once.  Thread: audio. */
void carry_snap_params(carry_plugin *self);

/** Processes `n` frames of every channel.  Thread: audio. */
void carry_process(carry_plugin *self, uint32_t n);

/** Returns every model's streams to their settled state.  Thread: audio. */
void carry_reset_engines(carry_plugin *self);

/** Reads the quality port and sets it on every engine that may run in
    this cycle (current, incoming, waiting), which includes one just
    swapped in; engines already at it are skipped.  Thread: audio. */
void carry_apply_quality(carry_plugin *self);

/** Makes the newest model current at once, without a fade: after an
    activation there is no sound to fade from.  Thread: audio (run). */
void carry_end_fades(carry_plugin *self);

/** The latency of the newest model, the one the output is fading to (and
    the only one after a restart), in samples.  Thread: audio. */
uint32_t carry_latency(const carry_plugin *self);

/* ------------------------------------------------------------------------ */
/* state.c */

LV2_State_Status carry_save(LV2_Handle instance, LV2_State_Store_Function store,
                            LV2_State_Handle handle, uint32_t flags,
                            const LV2_Feature *const *features);

LV2_State_Status carry_restore(LV2_Handle instance,
                               LV2_State_Retrieve_Function retrieve,
                               LV2_State_Handle handle, uint32_t flags,
                               const LV2_Feature *const *features);

#endif
