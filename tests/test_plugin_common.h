/*
  What the plugin tests share: the host and the bundle from the build tree,
  the models they load, instances loaded and settled in one call, signals,
  WAV files, `carry process`, and measures of outputs (largest step,
  largest difference).

  Environment (set by tests/meson.build): CARRY_BUNDLE_DIR (the built
  carry.lv2/), CARRY_LV2_SCHEMAS (the LV2 specifications, /usr/lib/lv2),
  CARRY_EXE (the carry command), CARRY_SOURCE_ROOT.
*/

#ifndef CARRY_TEST_PLUGIN_COMMON_H
#define CARRY_TEST_PLUGIN_COMMON_H

#include "harness.h"
#include "lv2_host.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MONO_URI "https://carry.audio/lv2/carry"
#define STEREO_URI "https://carry.audio/lv2/carry-stereo"
#define PRESET_URI "https://carry.audio/lv2/presets/soft-clip"
#define CARRY_NS "https://carry.audio/lv2#"
#define MODEL_URI CARRY_NS "model"
#define MODEL_NAME_URI CARRY_NS "modelName"
#define STATUS_URI CARRY_NS "status"

#define NO_MODEL_STATUS "no model loaded: passing audio through"
#define KEPT " \xe2\x80\x94 kept the previous model"
#define NONE_LOADED " \xe2\x80\x94 no model loaded"
#define LSTM_STATUS \
  "loaded: \"Test LSTM\" LSTM-8, 2 knobs (drive, tone), 48000 Hz"

#define RATE 48000.0
#define MAX_BLOCK 4096u
#define PATH_SIZE 4096
#define DIR_SIZE 1024  ///< Short enough that any file name fits a path
#define STATUS_SIZE 1024

/** Frames of the crossfades the contract names, at `rate`. */
#define LOAD_FADE_FRAMES(rate) ((size_t)((rate) * 0.030 + 0.5))
#define BYPASS_FADE_FRAMES(rate) ((size_t)((rate) * 0.010 + 0.5))

typedef struct plugin_fixture {
  lv2_host *host;
  char bundle_dir[DIR_SIZE];
  char temp_dir[DIR_SIZE];
  char demo_model[PATH_SIZE];   ///< The bundle's soft-clip.json: LSTM-5,
                                ///< 1 knob (asymmetry), 48000 Hz
  char lstm_model[PATH_SIZE];   ///< Made here: "Test LSTM", LSTM-8, 2 knobs
                                ///< (drive 0..1, tone -1..1), 48000 Hz
  char shaper_model[PATH_SIZE]; ///< Made here: "Test Shaper", tanh(3x),
                                ///< memoryless, 48000 Hz
  char gru_model[PATH_SIZE];    ///< tests/models/gru_unit.json, 96000 Hz
  char bad_model[PATH_SIZE];    ///< tests/models/bad_kernel_rows.json
} plugin_fixture;

extern plugin_fixture fixture;

/** Creates the host, the temporary directory and the models; false (after
    saying why) if anything is missing. */
bool fixture_set_up(void);
void fixture_tear_down(void);

/** A path in the fixture's temporary directory (rotating static buffers). */
const char *temp_path(const char *name);

/* ------------------------------------------------------------------------ */
/* Instances */

/** Instantiates a plugin with the full set of features and a quiet log,
    not activated; NULL (with a failed check) if that fails. */
lv2_host_instance *open_inactive(const char *uri, double rate,
                                 uint32_t max_block);

/** open_inactive(), then activate(). */
lv2_host_instance *open_plugin(const char *uri, double rate,
                               uint32_t max_block);

/** Sets mix 1, gains 0 dB and the three knob ports. */
void set_unity(lv2_host_instance *instance, float knob1, float knob2,
               float knob3);

/** open_plugin() at RATE and MAX_BLOCK with set_unity() done before
    activate(), which snaps the glides: the knobs are in place at once. */
lv2_host_instance *open_unity(const char *uri, float knob1, float knob2,
                              float knob3);

/** Runs silence until the last carry:status on notify is the result of a
    load (`loaded: ...` or `error: ...`) and returns it; "" if none came
    in 400 runs.  Clear the messages first. */
const char *wait_load_status(lv2_host_instance *instance);

/** Sends a patch:Set of the model and runs silence until the notify port
    reports the load's status (wait_load_status()); then runs `settle_frames`
    more frames of silence (for the load fade) and waits for the worker.
    Copies the status into `status` (empty if none came).  Returns whether
    a status came. */
bool load_model(lv2_host_instance *instance, const char *path, char *status,
                size_t size, size_t settle_frames);

/** load_model() with the fade run off (0.1 s) and the status ignored
    unless it is not `loaded: ...`, which fails a check. */
bool load_settled(lv2_host_instance *instance, const char *path);

/** Runs `n` frames of `x` into `y` (on both channels of a stereo
    instance, whose right output is discarded). */
void run_signal(lv2_host_instance *instance, const float *x, float *y,
                size_t n, uint32_t block);

/** The value of the last patch:Set of `property` on notify, or "", in one
    of a few rotating static buffers. */
const char *last_value(lv2_host_instance *instance, const char *property);

/** Sends a patch:Get (NULL for every property), runs one block, and
    returns the value of `property` reported, or "". */
const char *ask(lv2_host_instance *instance, const char *get_property,
                const char *property);

/* ------------------------------------------------------------------------ */
/* Text and files */

bool starts_with(const char *text, const char *start);
bool ends_with(const char *text, const char *end);

/** Whether two paths name the same file (both resolve). */
bool same_file(const char *a, const char *b);

/* ------------------------------------------------------------------------ */
/* Signals and measures */

/** A sine of `frequency` Hz and `amplitude` at RATE. */
void make_sine(float *x, size_t n, double frequency, double amplitude);

/** `n` floats, or exits the test with a failure when out of memory. */
float *new_signal(size_t n);

/** The largest |x[t + 1] - x[t]| for t in [from, to - 1). */
double max_step(const float *x, size_t from, size_t to);

/** The largest |x[t]|. */
double max_abs(const float *x, size_t n);

bool all_finite(const float *x, size_t n);
bool all_zero(const float *x, size_t n);

/* ------------------------------------------------------------------------ */
/* Files and the carry command */

/** Writes float WAV at RATE from `n_channels` planar signals. */
bool write_wav(const char *path, const float *const *channels, int n_channels,
               size_t n);

/** The same at `rate`. */
bool write_wav_at(const char *path, double rate, const float *const *channels,
                  int n_channels, size_t n);

/** Reads a WAV into planar signals (each `n` long); false unless it has
    exactly `n_channels` channels and `n` frames. */
bool read_wav(const char *path, float *const *channels, int n_channels,
              size_t n);

/** Runs `carry process --model MODEL [--param P]... IN OUT`; `params` is
    NULL-terminated.  Returns the exit status (-1 if it did not run). */
int run_carry_process(const char *model, const char *const *params,
                      const char *in, const char *out);

/** The same with more options (NULL-terminated, e.g. "--keep-latency"). */
int run_carry_process_with(const char *model, const char *const *params,
                           const char *const *options, const char *in,
                           const char *out);

/** Copies a file; false on failure. */
bool copy_file(const char *from, const char *to);

#endif
