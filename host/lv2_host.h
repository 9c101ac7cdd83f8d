/*
  A small LV2 host on lilv, for the plugin tests and for `carry check`.

  It loads plugins from the LV2 path it is given plus one bundle directory
  (the build tree's carry.lv2/), and gives each instance what real hosts
  give: URID map and unmap, a worker on a real second thread, a log that
  keeps what the plugin says, options (bufsz:minBlockLength,
  bufsz:maxBlockLength, bufsz:nominalBlockLength, param:sampleRate) and
  bufsz:boundedBlockLength, and lilv's state:mapPath, makePath and freePath
  for saving and restoring state.

  Threads: the thread that calls lv2_host_run() and the functions that
  deliver worker responses (lv2_host_wait_idle()) plays the audio thread;
  one instance is used by one such thread at a time.  The work:schedule the
  plugin gets in instantiate() is lock-free and allocation-free (a
  single-producer ring and a semaphore post), as in jalv and Ardour, so that
  whatever a real-time check counts inside run() is the plugin's.  Restore
  gets its own schedule (a second ring behind a mutex), since a plugin that
  declares state:threadSafeRestore may be restored from another thread.

  The host makes no test assertions: every function returns a status or a
  value, and the caller decides what is right.
*/

#ifndef CARRY_HOST_LV2_HOST_H
#define CARRY_HOST_LV2_HOST_H

#include <lilv/lilv.h>
#include <lv2/atom/atom.h>
#include <lv2/urid/urid.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------------ */
/** @name Status */

typedef enum {
  LV2_HOST_SUCCESS,
  LV2_HOST_ERR_BAD_ARG,      ///< A caller passed an invalid argument
  LV2_HOST_ERR_NO_MEMORY,    ///< An allocation failed
  LV2_HOST_ERR_NOT_FOUND,    ///< No such plugin, port, preset or file
  LV2_HOST_ERR_INSTANTIATE,  ///< The plugin's instantiate() returned NULL
  LV2_HOST_ERR_NO_SPACE,     ///< A port buffer or worker queue is full
  LV2_HOST_ERR_TIMEOUT,      ///< The worker did not go idle in time
  LV2_HOST_ERR_STATE,        ///< Saving or loading state failed
  LV2_HOST_ERR_THREAD,       ///< A thread or semaphore could not be made
} lv2_host_status;

/** A short English description of a status.  Thread: any. */
const char *lv2_host_strerror(lv2_host_status status);

/* ------------------------------------------------------------------------ */
/** @name The host: a lilv world and the URID table */

typedef struct lv2_host lv2_host;

/** Creates a world that discovers bundles on `lv2_path` (a colon-separated
    list of directories; NULL for the LV2_PATH environment variable or
    lilv's default) and then loads `bundle_dir` (NULL for none) if none of
    its plugins was found yet.  Returns NULL if out of memory. */
lv2_host *lv2_host_new(const char *lv2_path, const char *bundle_dir);

/** Frees the host.  Every instance must be freed first.  NULL is a no-op. */
void lv2_host_free(lv2_host *host);

LilvWorld *lv2_host_world(lv2_host *host);

/** The plugin with this URI, or NULL. */
const LilvPlugin *lv2_host_find_plugin(lv2_host *host, const char *uri);

/** The absolute path of the directory a plugin was loaded from, in a buffer
    of `size` bytes; false if the plugin is unknown or the path too long. */
bool lv2_host_plugin_bundle(lv2_host *host, const char *uri, char *path,
                            size_t size);

/** The URID map and unmap features' data (for forging atoms).  Mapping is
    guarded by a mutex, as URID maps need not be real-time safe. */
LV2_URID_Map *lv2_host_urid_map(lv2_host *host);
LV2_URID_Unmap *lv2_host_urid_unmap(lv2_host *host);
LV2_URID lv2_host_map(lv2_host *host, const char *uri);
/** The URI of `urid`, or NULL; valid as long as the host. */
const char *lv2_host_unmap(lv2_host *host, LV2_URID urid);

/* ------------------------------------------------------------------------ */
/** @name Logs: what a plugin said through log:log */

typedef struct lv2_host_log lv2_host_log;

typedef enum {
  LV2_HOST_LOG_ERROR,
  LV2_HOST_LOG_WARNING,
  LV2_HOST_LOG_NOTE,
  LV2_HOST_LOG_TRACE,
  LV2_HOST_LOG_OTHER,  ///< A type URID that is none of the above (a
                       ///< plugin without urid:map can only log type 0)
  LV2_HOST_LOG_ANY,    ///< For counting and finding: every type
} lv2_host_log_type;

/** A log that keeps messages (and prints them on stderr if `echoes`).
    Thread: any; the log itself is guarded by a mutex. */
lv2_host_log *lv2_host_log_new(bool echoes);
void lv2_host_log_free(lv2_host_log *log);
void lv2_host_log_clear(lv2_host_log *log);

/** The number of messages of a type kept so far. */
int lv2_host_log_count(lv2_host_log *log, lv2_host_log_type type);

/** The number of messages logged while the plugin's run() or
    work_response() was running (log calls from the audio thread). */
int lv2_host_log_count_from_audio(lv2_host_log *log);

/** Copies the last message of `type` that contains `needle` (compared
    without case; NULL or "" for any) into `text`; false if none. */
bool lv2_host_log_find(lv2_host_log *log, lv2_host_log_type type,
                       const char *needle, char *text, size_t size);

/* ------------------------------------------------------------------------ */
/** @name Instances */

typedef struct lv2_host_instance lv2_host_instance;

/** Features that a configuration can leave out, to play a poorer host. */
enum {
  LV2_HOST_OMIT_URID_MAP = 1u << 0,  ///< urid:map (and urid:unmap)
  LV2_HOST_OMIT_WORKER = 1u << 1,    ///< work:schedule
  LV2_HOST_OMIT_LOG = 1u << 2,       ///< log:log
  LV2_HOST_OMIT_OPTIONS = 1u << 3,   ///< options:options
  LV2_HOST_OMIT_BOUNDED = 1u << 4,   ///< bufsz:boundedBlockLength
};

typedef struct lv2_host_config {
  const char *plugin_uri;
  double sample_rate;    ///< Hz
  uint32_t max_block;    ///< Longest run() the host makes (and says so)
  unsigned omit;         ///< LV2_HOST_OMIT_* flags
  lv2_host_log *log;     ///< Borrowed, or NULL: the instance makes its own
  bool is_quiet;         ///< The instance's own log does not echo
  /** work() runs at once inside schedule_work(), on the caller's thread, as
      jalv's non-threaded worker and freewheeling hosts do (the worker
      extension allows it); responses still come after run(). */
  bool is_worker_immediate;
} lv2_host_config;

/** Instantiates a plugin and starts its worker thread; the instance is not
    activated yet.  Returns LV2_HOST_ERR_INSTANTIATE when the plugin refuses
    (its log messages, if any, are in `config->log`). */
lv2_host_status lv2_host_instance_new(lv2_host *host,
                                      const lv2_host_config *config,
                                      lv2_host_instance **instance);

/** Deactivates if active, lets the worker finish the requests already
    queued, stops it, drops responses never delivered (as jalv and Ardour
    do) and frees the instance.  NULL is a no-op. */
void lv2_host_instance_free(lv2_host_instance *instance);

void lv2_host_activate(lv2_host_instance *instance);
void lv2_host_deactivate(lv2_host_instance *instance);

lv2_host_log *lv2_host_instance_log(lv2_host_instance *instance);
LilvInstance *lv2_host_lilv_instance(lv2_host_instance *instance);

/** The longest run() this instance takes (the configuration's). */
uint32_t lv2_host_max_block(const lv2_host_instance *instance);

/** Audio channels (ports in index order, inputs and outputs apart). */
uint32_t lv2_host_n_inputs(const lv2_host_instance *instance);
uint32_t lv2_host_n_outputs(const lv2_host_instance *instance);

/** How the audio ports are connected to the host's buffers. */
typedef enum {
  LV2_HOST_BUFFERS_APART,     ///< A buffer per port
  LV2_HOST_BUFFERS_IN_PLACE,  ///< Output c on input c's buffer, as hosts
                              ///< that process in place do (the plugin does
                              ///< not declare lv2:inPlaceBroken)
  LV2_HOST_BUFFERS_SHARED,    ///< Every input on one buffer (a mono signal
                              ///< into a stereo plugin), output 0 on it too;
                              ///< only the first input signal is used
} lv2_host_buffers;

void lv2_host_set_buffers(lv2_host_instance *instance,
                          lv2_host_buffers layout);

/** Sets or reads a control port by symbol (outputs can only be read). */
lv2_host_status lv2_host_set_control(lv2_host_instance *instance,
                                     const char *symbol, float value);
lv2_host_status lv2_host_get_control(lv2_host_instance *instance,
                                     const char *symbol, float *value);

/** Called with `is_entering` true just before, and false just after, each
    call into the plugin's run(), work_response() and end_run(), on the
    calling thread: a real-time check counts what happens in between. */
typedef void (*lv2_host_audio_hook)(void *data, bool is_entering);
void lv2_host_set_audio_hook(lv2_host_instance *instance,
                             lv2_host_audio_hook hook, void *data);

/* ------------------------------------------------------------------------ */
/** @name Messages to the control port, queued for the next run() at frame 0 */

/** A patch:Set of `property` (a URI) to an atom:Path. */
lv2_host_status lv2_host_send_patch_set_path(lv2_host_instance *instance,
                                             const char *property,
                                             const char *path);

/** A patch:Get of `property`, or of everything when it is NULL. */
lv2_host_status lv2_host_send_patch_get(lv2_host_instance *instance,
                                        const char *property);

/** Any atom (for malformed messages). */
lv2_host_status lv2_host_send_atom(lv2_host_instance *instance,
                                   const LV2_Atom *atom);

/* ------------------------------------------------------------------------ */
/** @name Running */

/** One run() of `n_frames` (at most the configuration's max_block; 0 is
    allowed).  `in` holds one pointer per input channel, or is NULL for
    silence; `out` one per output channel, or NULL to discard.  Sends the
    queued messages, collects the notify port's messages, then delivers the
    worker's responses and calls end_run(), as hosts do. */
lv2_host_status lv2_host_run(lv2_host_instance *instance,
                             const float *const *in, float *const *out,
                             uint32_t n_frames);

/** Runs `n_frames` in blocks of `block` frames (the last may be shorter).
    `in` and `out` as for lv2_host_run(), pointing at whole signals. */
lv2_host_status lv2_host_process(lv2_host_instance *instance,
                                 const float *const *in, float *const *out,
                                 size_t n_frames, uint32_t block);

/** The same in blocks of random sizes from 0 to max_block, drawn from
    `*seed` (updated, so successive calls go on with the same sequence). */
lv2_host_status lv2_host_process_random(lv2_host_instance *instance,
                                        const float *const *in,
                                        float *const *out, size_t n_frames,
                                        uint64_t *seed);

/** Delivers responses until the worker has finished every request and
    every response has been delivered, or `timeout` seconds have passed
    (LV2_HOST_ERR_TIMEOUT).  Does not call run(). */
lv2_host_status lv2_host_wait_idle(lv2_host_instance *instance,
                                   double timeout);

/** Plays a host whose queues are full: the next `n_schedules` calls of
    work:schedule from the audio thread, and the next `n_responses` calls
    of the worker's respond(), return LV2_WORKER_ERR_NO_SPACE. */
void lv2_host_refuse_work(lv2_host_instance *instance, unsigned n_schedules,
                          unsigned n_responses);

/** Requests scheduled so far (from run(), work_response() and restore()). */
uint64_t lv2_host_n_work_requests(const lv2_host_instance *instance);

/* ------------------------------------------------------------------------ */
/** @name The notify port: patch messages the plugin sent */

typedef struct lv2_host_message {
  char kind[128];      ///< The object type's URI, e.g. patch:Set
  char property[256];  ///< patch:property's URI, or ""
  char type[128];      ///< The value's atom type URI, or ""
  char value[2048];    ///< The value for strings, paths and URIs, else ""
  bool is_truncated;   ///< The value did not fit
} lv2_host_message;

/** Messages collected since the last clear, in order. */
size_t lv2_host_n_messages(const lv2_host_instance *instance);
const lv2_host_message *lv2_host_message_at(const lv2_host_instance *instance,
                                            size_t index);
void lv2_host_clear_messages(lv2_host_instance *instance);

/** The value of the last patch:Set of `property` collected, or NULL. */
const lv2_host_message *lv2_host_last_set(const lv2_host_instance *instance,
                                          const char *property);

/** Notify events that were not atom objects, or that did not fit. */
size_t lv2_host_n_bad_events(const lv2_host_instance *instance);

/* ------------------------------------------------------------------------ */
/** @name State and presets */

/** Saves the instance's state (plugin properties and control inputs) as
    `dir`/state.ttl.  Files the plugin names outside `dir` are linked, as
    Ardour keeps a link to a model file: from `dir` into `link_dir` (as
    Ardour's externals/ directory) and from there to the file, or straight
    from `dir` to the file when `link_dir` is NULL. */
lv2_host_status lv2_host_state_save(lv2_host_instance *instance,
                                    const char *dir, const char *link_dir);

/** Restores `dir`/state.ttl into the instance: control values, then the
    plugin's restore(), given work:schedule only `with_worker`. */
lv2_host_status lv2_host_state_restore(lv2_host_instance *instance,
                                       const char *dir, bool with_worker);

/** The same without setting control values: for a restore() made from
    another thread while the audio thread runs (state:threadSafeRestore). */
lv2_host_status lv2_host_state_restore_properties(lv2_host_instance *instance,
                                                  const char *dir,
                                                  bool with_worker);

/** Applies a preset by URI as hosts do (lilv_state_new_from_world). */
lv2_host_status lv2_host_preset_apply(lv2_host_instance *instance,
                                      const char *preset_uri,
                                      bool with_worker);

#endif
