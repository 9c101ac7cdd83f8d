/*
  An engine: one loaded model with a settled stream per channel, its knob
  mapping and the status line that describes it.  Built and freed off the
  audio thread; the audio thread only runs it.  A failed load is an engine
  too, with no model and the error as its status, so that every outcome of
  a load reaches run() the same way.
*/

#ifndef CARRY_PLUGIN_ENGINE_H
#define CARRY_PLUGIN_ENGINE_H

#include "carry.h"
#include "carry_rate.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CARRY_MAX_CHANNELS 2
#define CARRY_KNOB_PORTS 3      ///< Knob ports on the plugin
#define CARRY_PATH_SIZE 2048    ///< Bytes of a model path, with its NUL
#define CARRY_STATUS_SIZE 768   ///< Bytes of a status line, with its NUL

/** Samples between parameter updates of the streams: run() cuts audio on
    a fixed grid of this many samples counted from activate(), so that the
    output does not depend on the host's block sizes. */
#define CARRY_GRID 32

/** The most latency an engine may add, in host samples: the plugin's dry
    delay lines hold this much (resampling adds far less, see carry_rate.h). */
#define CARRY_MAX_LATENCY 4096

/** Samples a stream runs per call inside the plugin (run() works on
    cells of CARRY_GRID, fewer than this): the streams' maximum block,
    whatever the host's. */
#define CARRY_ENGINE_MAX_BLOCK 64

typedef struct carry_engine {
  struct carry_engine *prev_live;  ///< The instance's list of live engines
  struct carry_engine *next_live;
  uint32_t sequence;               ///< The load request it answers
  carry_model *model;              ///< NULL for a failed load
  carry_rate_stream *streams[CARRY_MAX_CHANNELS];
  int n_channels;
  carry_rate_mode rate_mode;       ///< As requested (AUTO included)
  carry_quality quality;           ///< The streams' (EXACT when loaded)
  uint32_t latency;                ///< Host samples the streams delay by
  int n_knobs;                     ///< N - 1 of the model
  float knob_min[CARRY_MAX_KNOBS];
  float knob_span[CARRY_MAX_KNOBS];  ///< max - min
  float knob_default[CARRY_MAX_KNOBS];
  float normalize_gain;            ///< Linear: to -18 dB
  char path[CARRY_PATH_SIZE];
  char name[CARRY_NAME_SIZE];
  char status[CARRY_STATUS_SIZE];
} carry_engine;

/** Loads the model at `path`, makes a stream per channel running it at
    `host_rate` as `rate_mode` says (resampled, corrected or as it is), and
    settles each with the knob port values `knob_ports` (CARRY_KNOB_PORTS of
    them, 0..1), or with the model's own defaults when `knob_ports` is NULL.
    Never returns NULL unless out of memory: a failed load gives an engine
    without a model whose status says why.  Thread: worker.  Allocates. */
carry_engine *carry_engine_load(const char *path, int n_channels,
                                double host_rate, carry_rate_mode rate_mode,
                                const float *knob_ports);

/** An engine without a model carrying `status`.  Thread: worker. */
carry_engine *carry_engine_failed(const char *path, const char *status);

/** Frees an engine; NULL is a no-op.  Thread: worker.  Frees. */
void carry_engine_free(carry_engine *engine);

/** The model's knob values for the knob ports' values (0..1) mapped onto
    each knob's range; knobs without a port keep their defaults.
    Thread: audio. */
void carry_engine_knobs(const carry_engine *engine, const float *knob_ports,
                        float *knobs);

/** Runs `n` samples of every channel, in[c] into out[c] (two channels in
    step, each weight read once for both).  Thread: audio. */
void carry_engine_process(carry_engine *engine,
                          const float in[][CARRY_GRID], const float *knobs,
                          float out[][CARRY_GRID], uint32_t n);

/** Returns every stream to its settled state.  Thread: audio. */
void carry_engine_reset(carry_engine *engine);

/** Sets the gate activations of every stream; the state carries on.  An
    engine is loaded and settled at EXACT, so that the state it settles to
    (and resets to) does not depend on the quality; `quality` applies to
    what it runs after.  Skips the work when nothing changes; a failed load
    has nothing to set.  Thread: audio.  No allocation. */
void carry_engine_set_quality(carry_engine *engine, carry_quality quality);

#endif
