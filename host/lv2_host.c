#include "lv2_host.h"

#include <lv2/atom/forge.h>
#include <lv2/atom/util.h>
#include <lv2/buf-size/buf-size.h>
#include <lv2/core/lv2.h>
#include <lv2/log/log.h>
#include <lv2/options/options.h>
#include <lv2/parameters/parameters.h>
#include <lv2/patch/patch.h>
#include <lv2/state/state.h>
#include <lv2/worker/worker.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_CHANNELS 8
#define ATOM_PORT_SIZE 65536u       ///< Bytes in each atom port buffer
#define RING_SIZE (1u << 20)        ///< Bytes in each worker queue
#define LOG_CAPACITY 1024           ///< Messages a log keeps
#define LOG_TEXT_SIZE 1024
#define STATE_FILE "state.ttl"

/* ------------------------------------------------------------------------ */
/* Status */

const char *lv2_host_strerror(lv2_host_status status)
{
  switch (status) {
  case LV2_HOST_SUCCESS: return "success";
  case LV2_HOST_ERR_BAD_ARG: return "invalid argument";
  case LV2_HOST_ERR_NO_MEMORY: return "out of memory";
  case LV2_HOST_ERR_NOT_FOUND: return "not found";
  case LV2_HOST_ERR_INSTANTIATE: return "the plugin refused to instantiate";
  case LV2_HOST_ERR_NO_SPACE: return "no space in a buffer or queue";
  case LV2_HOST_ERR_TIMEOUT: return "the worker did not go idle in time";
  case LV2_HOST_ERR_STATE: return "saving or loading state failed";
  case LV2_HOST_ERR_THREAD: return "a thread could not be started";
  }
  return "unknown status";
}

/* ------------------------------------------------------------------------ */
/* URIDs: a growable table behind a mutex */

typedef struct urid_table {
  pthread_mutex_t lock;
  char **uris;        ///< (n) URID k + 1 is uris[k]
  size_t n;
  size_t capacity;
} urid_table;

static LV2_URID urid_table_map(LV2_URID_Map_Handle handle, const char *uri)
{
  urid_table *table = handle;
  LV2_URID urid = 0;
  pthread_mutex_lock(&table->lock);
  for (size_t k = 0; k < table->n && !urid; ++k) {
    urid = strcmp(table->uris[k], uri) ? 0 : (LV2_URID)(k + 1);
  }
  if (!urid && table->n == table->capacity) {
    const size_t capacity = table->capacity ? 2 * table->capacity : 256;
    char **uris = realloc(table->uris, capacity * sizeof(*uris));
    if (uris) {
      table->uris = uris;
      table->capacity = capacity;
    }
  }
  if (!urid && table->n < table->capacity) {
    table->uris[table->n] = strdup(uri);
    urid = table->uris[table->n] ? (LV2_URID)++table->n : 0;
  }
  pthread_mutex_unlock(&table->lock);
  return urid;
}

static const char *urid_table_unmap(LV2_URID_Unmap_Handle handle,
                                    LV2_URID urid)
{
  urid_table *table = handle;
  pthread_mutex_lock(&table->lock);
  const char *uri = urid && urid <= table->n ? table->uris[urid - 1] : NULL;
  pthread_mutex_unlock(&table->lock);
  return uri;
}

static void urid_table_clear(urid_table *table)
{
  for (size_t k = 0; k < table->n; ++k) {
    free(table->uris[k]);
  }
  free(table->uris);
  pthread_mutex_destroy(&table->lock);
}

/** The URIDs the host itself uses. */
typedef struct host_urids {
  LV2_URID atom_Chunk, atom_Float, atom_Double, atom_Int, atom_Long,
    atom_Object, atom_Path, atom_Sequence, atom_String, atom_URI, atom_URID,
    atom_Blank, atom_Resource, atom_eventTransfer, bufsz_minBlockLength,
    bufsz_maxBlockLength, bufsz_nominalBlockLength, param_sampleRate,
    patch_Get, patch_Set, patch_property, patch_value, log_Error,
    log_Warning, log_Note, log_Trace;
} host_urids;

/* ------------------------------------------------------------------------ */
/* The host */

struct lv2_host {
  LilvWorld *world;
  urid_table urids;
  LV2_URID_Map map;
  LV2_URID_Unmap unmap;
  host_urids uris;
};

static void map_host_urids(lv2_host *host)
{
  host_urids *u = &host->uris;
  struct {
    LV2_URID *urid;
    const char *uri;
  } table[] = {
    {&u->atom_Chunk, LV2_ATOM__Chunk},
    {&u->atom_Float, LV2_ATOM__Float},
    {&u->atom_Double, LV2_ATOM__Double},
    {&u->atom_Int, LV2_ATOM__Int},
    {&u->atom_Long, LV2_ATOM__Long},
    {&u->atom_Object, LV2_ATOM__Object},
    {&u->atom_Path, LV2_ATOM__Path},
    {&u->atom_Sequence, LV2_ATOM__Sequence},
    {&u->atom_String, LV2_ATOM__String},
    {&u->atom_URI, LV2_ATOM__URI},
    {&u->atom_URID, LV2_ATOM__URID},
    {&u->atom_Blank, LV2_ATOM__Blank},
    {&u->atom_Resource, LV2_ATOM__Resource},
    {&u->atom_eventTransfer, LV2_ATOM__eventTransfer},
    {&u->bufsz_minBlockLength, LV2_BUF_SIZE__minBlockLength},
    {&u->bufsz_maxBlockLength, LV2_BUF_SIZE__maxBlockLength},
    {&u->bufsz_nominalBlockLength, LV2_BUF_SIZE__nominalBlockLength},
    {&u->param_sampleRate, LV2_PARAMETERS__sampleRate},
    {&u->patch_Get, LV2_PATCH__Get},
    {&u->patch_Set, LV2_PATCH__Set},
    {&u->patch_property, LV2_PATCH__property},
    {&u->patch_value, LV2_PATCH__value},
    {&u->log_Error, LV2_LOG__Error},
    {&u->log_Warning, LV2_LOG__Warning},
    {&u->log_Note, LV2_LOG__Note},
    {&u->log_Trace, LV2_LOG__Trace},
  };
  for (size_t k = 0; k < sizeof(table) / sizeof(table[0]); ++k) {
    *table[k].urid = lv2_host_map(host, table[k].uri);
  }
}

static bool has_plugin_from(lv2_host *host, const LilvNode *bundle)
{
  const LilvPlugins *plugins = lilv_world_get_all_plugins(host->world);
  LILV_FOREACH (plugins, i, plugins) {
    const LilvPlugin *plugin = lilv_plugins_get(plugins, i);
    if (lilv_node_equals(lilv_plugin_get_bundle_uri(plugin), bundle)) {
      return true;
    }
  }
  return false;
}

/** Loads the bundle unless discovery on the LV2 path found it already. */
static void load_bundle(lv2_host *host, const char *bundle_dir)
{
  char real[PATH_MAX], with_slash[PATH_MAX + 2];
  if (!realpath(bundle_dir, real)) {
    return;
  }
  snprintf(with_slash, sizeof(with_slash), "%s/", real);
  LilvNode *bundle = lilv_new_file_uri(host->world, NULL, with_slash);
  if (bundle && !has_plugin_from(host, bundle)) {
    lilv_world_load_bundle(host->world, bundle);
  }
  lilv_node_free(bundle);
}

lv2_host *lv2_host_new(const char *lv2_path, const char *bundle_dir)
{
  lv2_host *host = calloc(1, sizeof(*host));
  if (!host) {
    return NULL;
  }
  pthread_mutex_init(&host->urids.lock, NULL);
  host->map = (LV2_URID_Map){&host->urids, urid_table_map};
  host->unmap = (LV2_URID_Unmap){&host->urids, urid_table_unmap};
  map_host_urids(host);
  host->world = lilv_world_new();
  if (!host->world) {
    lv2_host_free(host);
    return NULL;
  }
  if (lv2_path) {
    LilvNode *path = lilv_new_string(host->world, lv2_path);
    lilv_world_set_option(host->world, LILV_OPTION_LV2_PATH, path);
    lilv_node_free(path);
  }
  lilv_world_load_all(host->world);
  if (bundle_dir) {
    load_bundle(host, bundle_dir);
  }
  return host;
}

void lv2_host_free(lv2_host *host)
{
  if (host) {
    lilv_world_free(host->world);
    urid_table_clear(&host->urids);
    free(host);
  }
}

LilvWorld *lv2_host_world(lv2_host *host)
{
  return host->world;
}

const LilvPlugin *lv2_host_find_plugin(lv2_host *host, const char *uri)
{
  LilvNode *node = lilv_new_uri(host->world, uri);
  const LilvPlugins *plugins = lilv_world_get_all_plugins(host->world);
  const LilvPlugin *plugin = node ? lilv_plugins_get_by_uri(plugins, node)
                                  : NULL;
  lilv_node_free(node);
  return plugin;
}

bool lv2_host_plugin_bundle(lv2_host *host, const char *uri, char *path,
                            size_t size)
{
  const LilvPlugin *plugin = lv2_host_find_plugin(host, uri);
  if (!plugin) {
    return false;
  }
  const char *bundle = lilv_node_as_uri(lilv_plugin_get_bundle_uri(plugin));
  char *file = lilv_file_uri_parse(bundle, NULL);
  char real[PATH_MAX];
  const bool ok = file && realpath(file, real) &&
                  (size_t)snprintf(path, size, "%s", real) < size;
  lilv_free(file);
  return ok;
}

LV2_URID_Map *lv2_host_urid_map(lv2_host *host)
{
  return &host->map;
}

LV2_URID_Unmap *lv2_host_urid_unmap(lv2_host *host)
{
  return &host->unmap;
}

LV2_URID lv2_host_map(lv2_host *host, const char *uri)
{
  return urid_table_map(&host->urids, uri);
}

const char *lv2_host_unmap(lv2_host *host, LV2_URID urid)
{
  return urid_table_unmap(&host->urids, urid);
}

/* ------------------------------------------------------------------------ */
/* Logs */

/* Set while the plugin's run(), work_response() or end_run() runs on this
   thread, so that a log call can tell it came from the audio thread. */
static _Thread_local bool is_in_audio_call;

typedef struct log_entry {
  lv2_host_log_type type;
  bool is_from_audio;
  char text[LOG_TEXT_SIZE];
} log_entry;

struct lv2_host_log {
  pthread_mutex_t lock;
  bool echoes;
  log_entry *entries;  ///< (LOG_CAPACITY) the oldest are kept
  int n;
};

lv2_host_log *lv2_host_log_new(bool echoes)
{
  lv2_host_log *log = calloc(1, sizeof(*log));
  log_entry *entries = calloc(LOG_CAPACITY, sizeof(*entries));
  if (!log || !entries) {
    free(log);
    free(entries);
    return NULL;
  }
  pthread_mutex_init(&log->lock, NULL);
  log->echoes = echoes;
  log->entries = entries;
  return log;
}

void lv2_host_log_free(lv2_host_log *log)
{
  if (log) {
    pthread_mutex_destroy(&log->lock);
    free(log->entries);
    free(log);
  }
}

void lv2_host_log_clear(lv2_host_log *log)
{
  pthread_mutex_lock(&log->lock);
  log->n = 0;
  pthread_mutex_unlock(&log->lock);
}

int lv2_host_log_count(lv2_host_log *log, lv2_host_log_type type)
{
  int count = 0;
  pthread_mutex_lock(&log->lock);
  for (int k = 0; k < log->n; ++k) {
    count += type == LV2_HOST_LOG_ANY || log->entries[k].type == type;
  }
  pthread_mutex_unlock(&log->lock);
  return count;
}

int lv2_host_log_count_from_audio(lv2_host_log *log)
{
  int count = 0;
  pthread_mutex_lock(&log->lock);
  for (int k = 0; k < log->n; ++k) {
    count += log->entries[k].is_from_audio;
  }
  pthread_mutex_unlock(&log->lock);
  return count;
}

static bool contains_without_case(const char *text, const char *needle)
{
  const size_t length = needle ? strlen(needle) : 0;
  for (const char *at = text; length && *at; ++at) {
    if (!strncasecmp(at, needle, length)) {
      return true;
    }
  }
  return length == 0;
}

bool lv2_host_log_find(lv2_host_log *log, lv2_host_log_type type,
                       const char *needle, char *text, size_t size)
{
  bool is_found = false;
  pthread_mutex_lock(&log->lock);
  for (int k = log->n - 1; k >= 0 && !is_found; --k) {
    const log_entry *entry = &log->entries[k];
    is_found = (type == LV2_HOST_LOG_ANY || entry->type == type) &&
               contains_without_case(entry->text, needle);
    if (is_found && text && size) {
      snprintf(text, size, "%s", entry->text);
    }
  }
  pthread_mutex_unlock(&log->lock);
  return is_found;
}

static const char *log_type_name(lv2_host_log_type type)
{
  static const char *const names[] = {"error", "warning", "note", "trace",
                                      "log", "log"};
  return names[type];
}

static void log_add(lv2_host_log *log, lv2_host_log_type type,
                    const char *format, va_list args)
{
  pthread_mutex_lock(&log->lock);
  if (log->n < LOG_CAPACITY) {
    log_entry *entry = &log->entries[log->n++];
    entry->type = type;
    entry->is_from_audio = is_in_audio_call;
    vsnprintf(entry->text, sizeof(entry->text), format, args);
    if (log->echoes) {
      fprintf(stderr, "[plugin %s%s] %s", log_type_name(type),
              entry->is_from_audio ? ", audio thread" : "", entry->text);
    }
  }
  pthread_mutex_unlock(&log->lock);
}

/* ------------------------------------------------------------------------ */
/* Single-producer single-consumer byte rings for the worker */

/** Messages are a uint32_t size and that many bytes; `head` and `tail`
    count bytes written and read, modulo 2^32. */
typedef struct byte_ring {
  uint8_t *bytes;  ///< (RING_SIZE)
  _Atomic uint32_t head;
  _Atomic uint32_t tail;
} byte_ring;

static void ring_copy_in(byte_ring *ring, uint32_t at, const void *data,
                         uint32_t size)
{
  const uint32_t offset = at & (RING_SIZE - 1);
  const uint32_t first = size < RING_SIZE - offset ? size : RING_SIZE - offset;
  memcpy(ring->bytes + offset, data, first);
  memcpy(ring->bytes, (const uint8_t *)data + first, size - first);
}

static void ring_copy_out(const byte_ring *ring, uint32_t at, void *data,
                          uint32_t size)
{
  const uint32_t offset = at & (RING_SIZE - 1);
  const uint32_t first = size < RING_SIZE - offset ? size : RING_SIZE - offset;
  memcpy(data, ring->bytes + offset, first);
  memcpy((uint8_t *)data + first, ring->bytes, size - first);
}

static bool ring_write(byte_ring *ring, uint32_t size, const void *data)
{
  const uint32_t head = atomic_load_explicit(&ring->head, memory_order_relaxed);
  const uint32_t tail = atomic_load_explicit(&ring->tail, memory_order_acquire);
  const uint64_t used = head - tail;
  if (used + sizeof(size) + size > RING_SIZE) {
    return false;
  }
  ring_copy_in(ring, head, &size, sizeof(size));
  ring_copy_in(ring, head + (uint32_t)sizeof(size), data, size);
  atomic_store_explicit(&ring->head, head + (uint32_t)sizeof(size) + size,
                        memory_order_release);
  return true;
}

/** Reads one message into `data` (RING_SIZE bytes); false if empty. */
static bool ring_read(byte_ring *ring, void *data, uint32_t *size)
{
  const uint32_t tail = atomic_load_explicit(&ring->tail, memory_order_relaxed);
  const uint32_t head = atomic_load_explicit(&ring->head, memory_order_acquire);
  if (head == tail) {
    return false;
  }
  ring_copy_out(ring, tail, size, sizeof(*size));
  ring_copy_out(ring, tail + (uint32_t)sizeof(*size), data, *size);
  atomic_store_explicit(&ring->tail, tail + (uint32_t)sizeof(*size) + *size,
                        memory_order_release);
  return true;
}

static bool ring_is_empty(byte_ring *ring)
{
  return atomic_load_explicit(&ring->head, memory_order_acquire) ==
         atomic_load_explicit(&ring->tail, memory_order_acquire);
}

/* ------------------------------------------------------------------------ */
/* The worker: a thread that calls work() for requests from two rings */

typedef struct host_worker {
  const LV2_Worker_Interface *iface;
  LV2_Handle handle;
  byte_ring requests;          ///< From the audio thread
  byte_ring restore_requests;  ///< From restore(), behind `restore_lock`
  byte_ring responses;         ///< To the audio thread
  pthread_mutex_t restore_lock;
  sem_t wake;
  bool has_sync;               ///< `restore_lock` and `wake` exist
  pthread_t thread;
  bool has_thread;
  atomic_bool is_stopping;
  bool is_immediate;           ///< work() inside schedule_work()
  atomic_uint n_to_refuse;     ///< Schedules to refuse from now on
  atomic_uint n_responses_to_refuse;
  _Atomic uint64_t n_scheduled;
  _Atomic uint64_t n_done;
  uint8_t *work_buffer;        ///< (RING_SIZE) the request being worked on
  uint8_t *response_buffer;    ///< (RING_SIZE) the response being delivered
} host_worker;

/** Takes one from a count of calls to refuse; true if this one is. */
static bool take_refusal(atomic_uint *count)
{
  unsigned n = atomic_load(count);
  while (n && !atomic_compare_exchange_weak(count, &n, n - 1)) {
  }
  return n != 0;
}

static LV2_Worker_Status worker_respond(LV2_Worker_Respond_Handle handle,
                                        uint32_t size, const void *data)
{
  host_worker *worker = handle;
  if (take_refusal(&worker->n_responses_to_refuse)) {
    return LV2_WORKER_ERR_NO_SPACE;
  }
  return ring_write(&worker->responses, size, data) ? LV2_WORKER_SUCCESS
                                                     : LV2_WORKER_ERR_NO_SPACE;
}

static bool worker_work_one(host_worker *worker, byte_ring *ring)
{
  uint32_t size = 0;
  if (!ring_read(ring, worker->work_buffer, &size)) {
    return false;
  }
  worker->iface->work(worker->handle, worker_respond, worker, size,
                      worker->work_buffer);
  atomic_fetch_add(&worker->n_done, 1);
  return true;
}

static void *worker_main(void *data)
{
  host_worker *worker = data;
  for (;;) {
    while (sem_wait(&worker->wake) && errno == EINTR) {
    }
    while (worker_work_one(worker, &worker->requests) ||
           worker_work_one(worker, &worker->restore_requests)) {
    }
    if (atomic_load(&worker->is_stopping)) {
      return NULL;
    }
  }
}

/** The audio thread's schedule: lock-free, allocation-free. */
/** The immediate worker: work() here and now. */
static LV2_Worker_Status work_at_once(host_worker *worker, uint32_t size,
                                      const void *data)
{
  atomic_fetch_add(&worker->n_scheduled, 1);
  if (worker->iface && worker->iface->work) {
    worker->iface->work(worker->handle, worker_respond, worker, size, data);
  }
  atomic_fetch_add(&worker->n_done, 1);
  return LV2_WORKER_SUCCESS;
}

static LV2_Worker_Status worker_schedule(LV2_Worker_Schedule_Handle handle,
                                         uint32_t size, const void *data)
{
  host_worker *worker = handle;
  if (take_refusal(&worker->n_to_refuse)) {
    return LV2_WORKER_ERR_NO_SPACE;
  }
  if (worker->is_immediate) {
    return work_at_once(worker, size, data);
  }
  if (!ring_write(&worker->requests, size, data)) {
    return LV2_WORKER_ERR_NO_SPACE;
  }
  atomic_fetch_add(&worker->n_scheduled, 1);
  sem_post(&worker->wake);
  return LV2_WORKER_SUCCESS;
}

/** Restore's schedule, from whichever thread calls restore(). */
static LV2_Worker_Status worker_schedule_restore(
  LV2_Worker_Schedule_Handle handle, uint32_t size, const void *data)
{
  host_worker *worker = handle;
  if (worker->is_immediate) {
    return work_at_once(worker, size, data);
  }
  pthread_mutex_lock(&worker->restore_lock);
  const bool ok = ring_write(&worker->restore_requests, size, data);
  pthread_mutex_unlock(&worker->restore_lock);
  if (!ok) {
    return LV2_WORKER_ERR_NO_SPACE;
  }
  atomic_fetch_add(&worker->n_scheduled, 1);
  sem_post(&worker->wake);
  return LV2_WORKER_SUCCESS;
}

static lv2_host_status worker_init(host_worker *worker)
{
  if (sem_init(&worker->wake, 0, 0)) {
    return LV2_HOST_ERR_THREAD;
  }
  pthread_mutex_init(&worker->restore_lock, NULL);
  worker->has_sync = true;
  worker->requests.bytes = malloc(RING_SIZE);
  worker->restore_requests.bytes = malloc(RING_SIZE);
  worker->responses.bytes = malloc(RING_SIZE);
  worker->work_buffer = malloc(RING_SIZE);
  worker->response_buffer = malloc(RING_SIZE);
  if (!worker->requests.bytes || !worker->restore_requests.bytes ||
      !worker->responses.bytes || !worker->work_buffer ||
      !worker->response_buffer) {
    return LV2_HOST_ERR_NO_MEMORY;
  }
  return LV2_HOST_SUCCESS;
}

static lv2_host_status worker_start(host_worker *worker,
                                    const LV2_Worker_Interface *iface,
                                    LV2_Handle handle)
{
  worker->iface = iface;
  worker->handle = handle;
  if (!iface || !iface->work || worker->is_immediate) {
    return LV2_HOST_SUCCESS;  // no thread: nothing to run, or run at once
  }
  worker->has_thread =
    pthread_create(&worker->thread, NULL, worker_main, worker) == 0;
  return worker->has_thread ? LV2_HOST_SUCCESS : LV2_HOST_ERR_THREAD;
}

static void worker_stop(host_worker *worker)
{
  if (worker->has_thread) {
    atomic_store(&worker->is_stopping, true);
    sem_post(&worker->wake);
    pthread_join(worker->thread, NULL);
    worker->has_thread = false;
  }
}

static void worker_clear(host_worker *worker)
{
  worker_stop(worker);
  free(worker->requests.bytes);
  free(worker->restore_requests.bytes);
  free(worker->responses.bytes);
  free(worker->work_buffer);
  free(worker->response_buffer);
  if (worker->has_sync) {
    pthread_mutex_destroy(&worker->restore_lock);
    sem_destroy(&worker->wake);
  }
}

static bool worker_is_idle(host_worker *worker)
{
  return atomic_load(&worker->n_done) == atomic_load(&worker->n_scheduled) &&
         ring_is_empty(&worker->responses);
}

/* ------------------------------------------------------------------------ */
/* Instances */

typedef enum {
  PORT_OTHER,
  PORT_CONTROL_IN,
  PORT_CONTROL_OUT,
  PORT_AUDIO_IN,
  PORT_AUDIO_OUT,
  PORT_ATOM_IN,
  PORT_ATOM_OUT,
} port_kind;

struct lv2_host_instance {
  lv2_host *host;
  const LilvPlugin *plugin;
  LilvInstance *lilv;
  lv2_host_config config;
  lv2_host_log *log;
  bool owns_log;
  bool is_active;
  lv2_host_buffers layout;

  uint32_t n_ports;
  port_kind *kinds;       ///< (n_ports)
  float *controls;        ///< (n_ports) values of control ports
  uint32_t inputs[MAX_CHANNELS], outputs[MAX_CHANNELS];  ///< Port indices
  uint32_t n_inputs, n_outputs;
  float *audio;           ///< (n_inputs + n_outputs, max_block)
  LV2_Atom_Sequence *control;  ///< ATOM_PORT_SIZE bytes
  LV2_Atom_Sequence *notify;   ///< ATOM_PORT_SIZE bytes
  LV2_Atom_Forge forge;
  LV2_Atom_Forge_Frame sequence_frame;
  bool has_open_sequence;
  bool has_forge_overflow;

  lv2_host_audio_hook hook;
  void *hook_data;

  host_worker worker;
  LV2_Worker_Schedule schedule;
  LV2_Worker_Schedule restore_schedule;
  LV2_Log_Log log_feature;
  int32_t block_lengths[3];  ///< min, max, nominal
  float sample_rate;
  LV2_Options_Option options[5];
  LV2_Feature features[6];
  const LV2_Feature *feature_list[7];
  LV2_Feature restore_schedule_feature;

  lv2_host_message *messages;
  size_t n_messages, message_capacity;
  size_t n_bad_events;
};

/* The log:log callbacks */

static int log_vprintf(LV2_Log_Handle handle, LV2_URID type,
                       const char *format, va_list args)
{
  lv2_host_instance *instance = handle;
  const host_urids *u = &instance->host->uris;
  const lv2_host_log_type kind =
    type == u->log_Error     ? LV2_HOST_LOG_ERROR
    : type == u->log_Warning ? LV2_HOST_LOG_WARNING
    : type == u->log_Note    ? LV2_HOST_LOG_NOTE
    : type == u->log_Trace   ? LV2_HOST_LOG_TRACE
                             : LV2_HOST_LOG_OTHER;
  log_add(instance->log, kind, format, args);
  return 0;
}

static int log_printf(LV2_Log_Handle handle, LV2_URID type,
                      const char *format, ...)
{
  va_list args;
  va_start(args, format);
  const int result = log_vprintf(handle, type, format, args);
  va_end(args);
  return result;
}

/* Features */

static void set_option(LV2_Options_Option *option, LV2_URID key,
                       uint32_t size, LV2_URID type, const void *value)
{
  *option = (LV2_Options_Option){LV2_OPTIONS_INSTANCE, 0, key, size, type,
                                 value};
}

static void make_options(lv2_host_instance *instance)
{
  const host_urids *u = &instance->host->uris;
  instance->block_lengths[0] = 0;
  instance->block_lengths[1] = (int32_t)instance->config.max_block;
  instance->block_lengths[2] = (int32_t)instance->config.max_block;
  instance->sample_rate = (float)instance->config.sample_rate;
  set_option(&instance->options[0], u->bufsz_minBlockLength, sizeof(int32_t),
             u->atom_Int, &instance->block_lengths[0]);
  set_option(&instance->options[1], u->bufsz_maxBlockLength, sizeof(int32_t),
             u->atom_Int, &instance->block_lengths[1]);
  set_option(&instance->options[2], u->bufsz_nominalBlockLength,
             sizeof(int32_t), u->atom_Int, &instance->block_lengths[2]);
  set_option(&instance->options[3], u->param_sampleRate, sizeof(float),
             u->atom_Float, &instance->sample_rate);
  memset(&instance->options[4], 0, sizeof(instance->options[4]));
}

static void add_feature(lv2_host_instance *instance, int *n, const char *uri,
                        void *data)
{
  instance->features[*n] = (LV2_Feature){uri, data};
  instance->feature_list[*n] = &instance->features[*n];
  ++*n;
}

static void make_features(lv2_host_instance *instance)
{
  const unsigned omit = instance->config.omit;
  lv2_host *host = instance->host;
  int n = 0;
  make_options(instance);
  instance->schedule = (LV2_Worker_Schedule){&instance->worker,
                                             worker_schedule};
  instance->restore_schedule = (LV2_Worker_Schedule){&instance->worker,
                                                     worker_schedule_restore};
  instance->restore_schedule_feature = (LV2_Feature){
    LV2_WORKER__schedule, &instance->restore_schedule};
  instance->log_feature = (LV2_Log_Log){instance, log_printf, log_vprintf};
  if (!(omit & LV2_HOST_OMIT_URID_MAP)) {
    add_feature(instance, &n, LV2_URID__map, &host->map);
    add_feature(instance, &n, LV2_URID__unmap, &host->unmap);
  }
  if (!(omit & LV2_HOST_OMIT_WORKER)) {
    add_feature(instance, &n, LV2_WORKER__schedule, &instance->schedule);
  }
  if (!(omit & LV2_HOST_OMIT_LOG)) {
    add_feature(instance, &n, LV2_LOG__log, &instance->log_feature);
  }
  if (!(omit & LV2_HOST_OMIT_OPTIONS)) {
    add_feature(instance, &n, LV2_OPTIONS__options, instance->options);
  }
  if (!(omit & LV2_HOST_OMIT_BOUNDED)) {
    add_feature(instance, &n, LV2_BUF_SIZE__boundedBlockLength, NULL);
  }
  instance->feature_list[n] = NULL;
}

/* Ports */

static port_kind classify_port(lv2_host_instance *instance,
                               const LilvPort *port)
{
  LilvWorld *world = instance->host->world;
  LilvNode *input = lilv_new_uri(world, LV2_CORE__InputPort);
  LilvNode *control = lilv_new_uri(world, LV2_CORE__ControlPort);
  LilvNode *audio = lilv_new_uri(world, LV2_CORE__AudioPort);
  LilvNode *atom = lilv_new_uri(world, LV2_ATOM__AtomPort);
  const LilvPlugin *plugin = instance->plugin;
  const bool is_input = lilv_port_is_a(plugin, port, input);
  const port_kind kind =
    lilv_port_is_a(plugin, port, control) ? (is_input ? PORT_CONTROL_IN
                                                      : PORT_CONTROL_OUT)
    : lilv_port_is_a(plugin, port, audio) ? (is_input ? PORT_AUDIO_IN
                                                      : PORT_AUDIO_OUT)
    : lilv_port_is_a(plugin, port, atom)  ? (is_input ? PORT_ATOM_IN
                                                      : PORT_ATOM_OUT)
                                          : PORT_OTHER;
  lilv_node_free(input);
  lilv_node_free(control);
  lilv_node_free(audio);
  lilv_node_free(atom);
  return kind;
}

static lv2_host_status find_ports(lv2_host_instance *instance)
{
  const uint32_t n = lilv_plugin_get_num_ports(instance->plugin);
  instance->n_ports = n;
  instance->kinds = calloc(n, sizeof(*instance->kinds));
  instance->controls = calloc(n, sizeof(*instance->controls));
  if (!instance->kinds || !instance->controls) {
    return LV2_HOST_ERR_NO_MEMORY;
  }
  lilv_plugin_get_port_ranges_float(instance->plugin, NULL, NULL,
                                    instance->controls);
  for (uint32_t p = 0; p < n; ++p) {
    const LilvPort *port = lilv_plugin_get_port_by_index(instance->plugin, p);
    instance->kinds[p] = classify_port(instance, port);
    if (instance->controls[p] != instance->controls[p]) {
      instance->controls[p] = 0.0f;  // no default given
    }
    if (instance->kinds[p] == PORT_AUDIO_IN && instance->n_inputs < MAX_CHANNELS) {
      instance->inputs[instance->n_inputs++] = p;
    } else if (instance->kinds[p] == PORT_AUDIO_OUT &&
               instance->n_outputs < MAX_CHANNELS) {
      instance->outputs[instance->n_outputs++] = p;
    }
  }
  return LV2_HOST_SUCCESS;
}

static lv2_host_status make_buffers(lv2_host_instance *instance)
{
  const size_t n_channels = instance->n_inputs + instance->n_outputs;
  const size_t block = instance->config.max_block ? instance->config.max_block
                                                  : 1;
  instance->audio = calloc(n_channels * block, sizeof(float));
  instance->control = calloc(1, ATOM_PORT_SIZE);
  instance->notify = calloc(1, ATOM_PORT_SIZE);
  if (!instance->audio || !instance->control || !instance->notify) {
    return LV2_HOST_ERR_NO_MEMORY;
  }
  lv2_atom_forge_init(&instance->forge, &instance->host->map);
  return LV2_HOST_SUCCESS;
}

static float *input_buffer(lv2_host_instance *instance, uint32_t channel)
{
  if (instance->layout == LV2_HOST_BUFFERS_SHARED) {
    channel = 0;
  }
  return instance->audio + (size_t)channel * instance->config.max_block;
}

static float *output_buffer(lv2_host_instance *instance, uint32_t channel)
{
  const lv2_host_buffers layout = instance->layout;
  if ((layout == LV2_HOST_BUFFERS_IN_PLACE && channel < instance->n_inputs) ||
      (layout == LV2_HOST_BUFFERS_SHARED && channel == 0)) {
    return input_buffer(instance, channel);
  }
  return instance->audio +
         (size_t)(instance->n_inputs + channel) * instance->config.max_block;
}

static void connect_ports(lv2_host_instance *instance)
{
  for (uint32_t p = 0; p < instance->n_ports; ++p) {
    const port_kind kind = instance->kinds[p];
    void *buffer = kind == PORT_CONTROL_IN || kind == PORT_CONTROL_OUT
                     ? (void *)&instance->controls[p]
                   : kind == PORT_ATOM_IN  ? (void *)instance->control
                   : kind == PORT_ATOM_OUT ? (void *)instance->notify
                                           : NULL;
    if (buffer) {
      lilv_instance_connect_port(instance->lilv, p, buffer);
    }
  }
  for (uint32_t c = 0; c < instance->n_inputs; ++c) {
    lilv_instance_connect_port(instance->lilv, instance->inputs[c],
                               input_buffer(instance, c));
  }
  for (uint32_t c = 0; c < instance->n_outputs; ++c) {
    lilv_instance_connect_port(instance->lilv, instance->outputs[c],
                               output_buffer(instance, c));
  }
}

/* Creating and freeing */

static lv2_host_status prepare(lv2_host_instance *instance)
{
  lv2_host_status status = find_ports(instance);
  if (!status) {
    status = make_buffers(instance);
  }
  if (!status) {
    status = worker_init(&instance->worker);
    instance->worker.is_immediate = instance->config.is_worker_immediate;
  }
  if (!status) {
    make_features(instance);
  }
  return status;
}

static lv2_host_status instantiate(lv2_host_instance *instance)
{
  instance->lilv = lilv_plugin_instantiate(instance->plugin,
                                           instance->config.sample_rate,
                                           instance->feature_list);
  if (!instance->lilv) {
    return LV2_HOST_ERR_INSTANTIATE;
  }
  const LV2_Worker_Interface *iface =
    lilv_instance_get_extension_data(instance->lilv, LV2_WORKER__interface);
  connect_ports(instance);
  return worker_start(&instance->worker, iface,
                      lilv_instance_get_handle(instance->lilv));
}

static lv2_host_status attach_log(lv2_host_instance *instance)
{
  instance->log = instance->config.log;
  if (!instance->log) {
    instance->log = lv2_host_log_new(!instance->config.is_quiet);
    instance->owns_log = true;
  }
  return instance->log ? LV2_HOST_SUCCESS : LV2_HOST_ERR_NO_MEMORY;
}

lv2_host_status lv2_host_instance_new(lv2_host *host,
                                      const lv2_host_config *config,
                                      lv2_host_instance **result)
{
  *result = NULL;
  if (!config->plugin_uri || config->max_block == 0) {
    return LV2_HOST_ERR_BAD_ARG;
  }
  lv2_host_instance *instance = calloc(1, sizeof(*instance));
  if (!instance) {
    return LV2_HOST_ERR_NO_MEMORY;
  }
  instance->host = host;
  instance->config = *config;
  instance->plugin = lv2_host_find_plugin(host, config->plugin_uri);
  lv2_host_status status = instance->plugin ? attach_log(instance)
                                            : LV2_HOST_ERR_NOT_FOUND;
  if (!status) {
    status = prepare(instance);
  }
  if (!status) {
    status = instantiate(instance);
  }
  if (status) {
    lv2_host_instance_free(instance);
    return status;
  }
  *result = instance;
  return LV2_HOST_SUCCESS;
}

void lv2_host_instance_free(lv2_host_instance *instance)
{
  if (!instance) {
    return;
  }
  lv2_host_deactivate(instance);
  worker_stop(&instance->worker);
  if (instance->lilv) {
    lilv_instance_free(instance->lilv);
  }
  worker_clear(&instance->worker);
  if (instance->owns_log) {
    lv2_host_log_free(instance->log);
  }
  free(instance->kinds);
  free(instance->controls);
  free(instance->audio);
  free(instance->control);
  free(instance->notify);
  free(instance->messages);
  free(instance);
}

void lv2_host_activate(lv2_host_instance *instance)
{
  if (!instance->is_active) {
    lilv_instance_activate(instance->lilv);
    instance->is_active = true;
  }
}

void lv2_host_deactivate(lv2_host_instance *instance)
{
  if (instance->is_active) {
    lilv_instance_deactivate(instance->lilv);
    instance->is_active = false;
  }
}

lv2_host_log *lv2_host_instance_log(lv2_host_instance *instance)
{
  return instance->log;
}

LilvInstance *lv2_host_lilv_instance(lv2_host_instance *instance)
{
  return instance->lilv;
}

uint32_t lv2_host_max_block(const lv2_host_instance *instance)
{
  return instance->config.max_block;
}

uint32_t lv2_host_n_inputs(const lv2_host_instance *instance)
{
  return instance->n_inputs;
}

uint32_t lv2_host_n_outputs(const lv2_host_instance *instance)
{
  return instance->n_outputs;
}

void lv2_host_set_buffers(lv2_host_instance *instance,
                          lv2_host_buffers layout)
{
  instance->layout = layout;
  connect_ports(instance);
}

static int find_port(lv2_host_instance *instance, const char *symbol)
{
  LilvNode *node = lilv_new_string(instance->host->world, symbol);
  const LilvPort *port =
    lilv_plugin_get_port_by_symbol(instance->plugin, node);
  lilv_node_free(node);
  return port ? (int)lilv_port_get_index(instance->plugin, port) : -1;
}

lv2_host_status lv2_host_set_control(lv2_host_instance *instance,
                                     const char *symbol, float value)
{
  const int p = find_port(instance, symbol);
  if (p < 0 || instance->kinds[p] != PORT_CONTROL_IN) {
    return LV2_HOST_ERR_NOT_FOUND;
  }
  instance->controls[p] = value;
  return LV2_HOST_SUCCESS;
}

lv2_host_status lv2_host_get_control(lv2_host_instance *instance,
                                     const char *symbol, float *value)
{
  const int p = find_port(instance, symbol);
  if (p < 0 || (instance->kinds[p] != PORT_CONTROL_IN &&
                instance->kinds[p] != PORT_CONTROL_OUT)) {
    return LV2_HOST_ERR_NOT_FOUND;
  }
  *value = instance->controls[p];
  return LV2_HOST_SUCCESS;
}

void lv2_host_set_audio_hook(lv2_host_instance *instance,
                             lv2_host_audio_hook hook, void *data)
{
  instance->hook = hook;
  instance->hook_data = data;
}

/* ------------------------------------------------------------------------ */
/* The control port */

static void open_sequence(lv2_host_instance *instance)
{
  if (!instance->has_open_sequence) {
    lv2_atom_forge_set_buffer(&instance->forge, (uint8_t *)instance->control,
                              ATOM_PORT_SIZE);
    lv2_atom_forge_sequence_head(&instance->forge, &instance->sequence_frame,
                                 0);
    instance->has_open_sequence = true;
    instance->has_forge_overflow = false;
  }
}

/** Ends forging an event; an event that did not fit is reported. */
static lv2_host_status finish_event(lv2_host_instance *instance,
                                    LV2_Atom_Forge_Ref ref)
{
  if (!ref) {
    instance->has_forge_overflow = true;
    return LV2_HOST_ERR_NO_SPACE;
  }
  return LV2_HOST_SUCCESS;
}

lv2_host_status lv2_host_send_patch_set_path(lv2_host_instance *instance,
                                             const char *property,
                                             const char *path)
{
  const host_urids *u = &instance->host->uris;
  LV2_Atom_Forge *forge = &instance->forge;
  LV2_Atom_Forge_Frame frame;
  open_sequence(instance);
  LV2_Atom_Forge_Ref ref = lv2_atom_forge_frame_time(forge, 0);
  ref = ref ? lv2_atom_forge_object(forge, &frame, 0, u->patch_Set) : 0;
  ref = ref ? lv2_atom_forge_key(forge, u->patch_property) : 0;
  ref = ref ? lv2_atom_forge_urid(forge, lv2_host_map(instance->host,
                                                      property))
            : 0;
  ref = ref ? lv2_atom_forge_key(forge, u->patch_value) : 0;
  ref = ref ? lv2_atom_forge_path(forge, path, (uint32_t)strlen(path)) : 0;
  if (ref) {
    lv2_atom_forge_pop(forge, &frame);
  }
  return finish_event(instance, ref);
}

lv2_host_status lv2_host_send_patch_get(lv2_host_instance *instance,
                                        const char *property)
{
  const host_urids *u = &instance->host->uris;
  LV2_Atom_Forge *forge = &instance->forge;
  LV2_Atom_Forge_Frame frame;
  open_sequence(instance);
  LV2_Atom_Forge_Ref ref = lv2_atom_forge_frame_time(forge, 0);
  ref = ref ? lv2_atom_forge_object(forge, &frame, 0, u->patch_Get) : 0;
  if (ref && property) {
    ref = lv2_atom_forge_key(forge, u->patch_property);
    ref = ref ? lv2_atom_forge_urid(forge, lv2_host_map(instance->host,
                                                        property))
              : 0;
  }
  if (ref) {
    lv2_atom_forge_pop(forge, &frame);
  }
  return finish_event(instance, ref);
}

lv2_host_status lv2_host_send_atom(lv2_host_instance *instance,
                                   const LV2_Atom *atom)
{
  LV2_Atom_Forge *forge = &instance->forge;
  open_sequence(instance);
  LV2_Atom_Forge_Ref ref = lv2_atom_forge_frame_time(forge, 0);
  ref = ref ? lv2_atom_forge_write(forge, atom, lv2_atom_total_size(atom))
            : 0;
  if (ref) {
    lv2_atom_forge_pad(forge, lv2_atom_total_size(atom));
  }
  return finish_event(instance, ref);
}

/** Closes the queued sequence, or leaves an empty one. */
static void prepare_atom_ports(lv2_host_instance *instance)
{
  if (instance->has_open_sequence) {
    lv2_atom_forge_pop(&instance->forge, &instance->sequence_frame);
    instance->has_open_sequence = false;
  } else {
    instance->control->atom.size = sizeof(LV2_Atom_Sequence_Body);
    instance->control->atom.type = instance->host->uris.atom_Sequence;
    instance->control->body.unit = 0;
    instance->control->body.pad = 0;
  }
  // An output sequence starts as a chunk of the buffer's capacity.
  instance->notify->atom.size = ATOM_PORT_SIZE - sizeof(LV2_Atom);
  instance->notify->atom.type = instance->host->uris.atom_Chunk;
}

static void clear_control_port(lv2_host_instance *instance)
{
  instance->control->atom.size = sizeof(LV2_Atom_Sequence_Body);
  instance->control->atom.type = instance->host->uris.atom_Sequence;
}

/* ------------------------------------------------------------------------ */
/* The notify port */

static void copy_text(char *to, size_t size, const char *from,
                      uint32_t length, bool *is_truncated)
{
  const size_t n = strnlen(from, length);
  *is_truncated = *is_truncated || n >= size;
  snprintf(to, size, "%.*s", (int)(n < size ? n : size - 1), from);
}

static void describe_value(lv2_host_instance *instance, const LV2_Atom *value,
                           lv2_host_message *message)
{
  const host_urids *u = &instance->host->uris;
  const char *type = lv2_host_unmap(instance->host, value->type);
  snprintf(message->type, sizeof(message->type), "%s", type ? type : "");
  if (value->type == u->atom_String || value->type == u->atom_Path ||
      value->type == u->atom_URI) {
    copy_text(message->value, sizeof(message->value),
              (const char *)LV2_ATOM_BODY_CONST(value), value->size,
              &message->is_truncated);
  } else if (value->type == u->atom_URID && value->size >= sizeof(LV2_URID)) {
    const char *uri = lv2_host_unmap(instance->host,
                                     ((const LV2_Atom_URID *)value)->body);
    snprintf(message->value, sizeof(message->value), "%s", uri ? uri : "");
  }
}

static void decode_object(lv2_host_instance *instance,
                          const LV2_Atom_Object *object,
                          lv2_host_message *message)
{
  const host_urids *u = &instance->host->uris;
  const LV2_Atom *property = NULL, *value = NULL;
  lv2_atom_object_get(object, u->patch_property, &property, u->patch_value,
                      &value, 0);
  const char *kind = lv2_host_unmap(instance->host, object->body.otype);
  snprintf(message->kind, sizeof(message->kind), "%s", kind ? kind : "");
  if (property && property->type == u->atom_URID) {
    const char *uri = lv2_host_unmap(instance->host,
                                     ((const LV2_Atom_URID *)property)->body);
    snprintf(message->property, sizeof(message->property), "%s",
             uri ? uri : "");
  }
  if (value) {
    describe_value(instance, value, message);
  }
}

static lv2_host_message *new_message(lv2_host_instance *instance)
{
  if (instance->n_messages == instance->message_capacity) {
    const size_t capacity = instance->message_capacity
                              ? 2 * instance->message_capacity
                              : 64;
    lv2_host_message *messages =
      realloc(instance->messages, capacity * sizeof(*messages));
    if (!messages) {
      return NULL;
    }
    instance->messages = messages;
    instance->message_capacity = capacity;
  }
  lv2_host_message *message = &instance->messages[instance->n_messages++];
  memset(message, 0, sizeof(*message));
  return message;
}

static bool is_object(const host_urids *u, LV2_URID type)
{
  return type == u->atom_Object || type == u->atom_Blank ||
         type == u->atom_Resource;
}

static void collect_notify(lv2_host_instance *instance)
{
  const host_urids *u = &instance->host->uris;
  const LV2_Atom_Sequence *sequence = instance->notify;
  if (sequence->atom.type != u->atom_Sequence ||
      sequence->atom.size > ATOM_PORT_SIZE - sizeof(LV2_Atom)) {
    // The plugin left the chunk: it wrote nothing (or broke the buffer).
    instance->n_bad_events += sequence->atom.type != u->atom_Chunk;
    return;
  }
  LV2_ATOM_SEQUENCE_FOREACH (sequence, event) {
    lv2_host_message *message =
      is_object(u, event->body.type) ? new_message(instance) : NULL;
    if (message) {
      decode_object(instance, (const LV2_Atom_Object *)&event->body, message);
    } else {
      ++instance->n_bad_events;
    }
  }
}

size_t lv2_host_n_messages(const lv2_host_instance *instance)
{
  return instance->n_messages;
}

const lv2_host_message *lv2_host_message_at(const lv2_host_instance *instance,
                                            size_t index)
{
  return index < instance->n_messages ? &instance->messages[index] : NULL;
}

void lv2_host_clear_messages(lv2_host_instance *instance)
{
  instance->n_messages = 0;
  instance->n_bad_events = 0;
}

const lv2_host_message *lv2_host_last_set(const lv2_host_instance *instance,
                                          const char *property)
{
  for (size_t k = instance->n_messages; k-- > 0;) {
    const lv2_host_message *message = &instance->messages[k];
    if (!strcmp(message->kind, LV2_PATCH__Set) &&
        !strcmp(message->property, property)) {
      return message;
    }
  }
  return NULL;
}

size_t lv2_host_n_bad_events(const lv2_host_instance *instance)
{
  return instance->n_bad_events;
}

/* ------------------------------------------------------------------------ */
/* Running */

static void enter_plugin(lv2_host_instance *instance)
{
  is_in_audio_call = true;
  if (instance->hook) {
    instance->hook(instance->hook_data, true);
  }
}

static void leave_plugin(lv2_host_instance *instance)
{
  if (instance->hook) {
    instance->hook(instance->hook_data, false);
  }
  is_in_audio_call = false;
}

/** Delivers the worker's responses, then (after a run) calls end_run(). */
static void deliver_responses(lv2_host_instance *instance, bool ends_run)
{
  host_worker *worker = &instance->worker;
  uint32_t size = 0;
  while (ring_read(&worker->responses, worker->response_buffer, &size)) {
    if (worker->iface && worker->iface->work_response) {
      enter_plugin(instance);
      worker->iface->work_response(worker->handle, size,
                                   worker->response_buffer);
      leave_plugin(instance);
    }
  }
  if (ends_run && worker->iface && worker->iface->end_run) {
    enter_plugin(instance);
    worker->iface->end_run(worker->handle);
    leave_plugin(instance);
  }
}

static void copy_inputs(lv2_host_instance *instance, const float *const *in,
                        size_t offset, uint32_t n)
{
  const uint32_t n_buffers =
    instance->layout == LV2_HOST_BUFFERS_SHARED ? 1 : instance->n_inputs;
  for (uint32_t c = 0; c < n_buffers; ++c) {
    float *buffer = input_buffer(instance, c);
    if (in && in[c]) {
      memcpy(buffer, in[c] + offset, n * sizeof(float));
    } else {
      memset(buffer, 0, n * sizeof(float));
    }
  }
}

static void copy_outputs(lv2_host_instance *instance, float *const *out,
                         size_t offset, uint32_t n)
{
  for (uint32_t c = 0; out && c < instance->n_outputs; ++c) {
    if (out[c]) {
      memcpy(out[c] + offset, output_buffer(instance, c), n * sizeof(float));
    }
  }
}

/** One run() reading from and writing to whole signals at `offset`. */
static lv2_host_status run_at(lv2_host_instance *instance,
                              const float *const *in, float *const *out,
                              size_t offset, uint32_t n)
{
  if (n > instance->config.max_block) {
    return LV2_HOST_ERR_BAD_ARG;
  }
  const bool had_overflow = instance->has_forge_overflow;
  copy_inputs(instance, in, offset, n);
  prepare_atom_ports(instance);
  enter_plugin(instance);
  lilv_instance_run(instance->lilv, n);
  leave_plugin(instance);
  clear_control_port(instance);
  collect_notify(instance);
  deliver_responses(instance, true);
  copy_outputs(instance, out, offset, n);
  return had_overflow ? LV2_HOST_ERR_NO_SPACE : LV2_HOST_SUCCESS;
}

lv2_host_status lv2_host_run(lv2_host_instance *instance,
                             const float *const *in, float *const *out,
                             uint32_t n_frames)
{
  return run_at(instance, in, out, 0, n_frames);
}

lv2_host_status lv2_host_process(lv2_host_instance *instance,
                                 const float *const *in, float *const *out,
                                 size_t n_frames, uint32_t block)
{
  if (block == 0 || block > instance->config.max_block) {
    return LV2_HOST_ERR_BAD_ARG;
  }
  lv2_host_status status = LV2_HOST_SUCCESS;
  for (size_t t = 0; t < n_frames && !status; t += block) {
    const uint32_t n = n_frames - t < block ? (uint32_t)(n_frames - t) : block;
    status = run_at(instance, in, out, t, n);
  }
  return status;
}

/** xorshift64*, so that the host needs nothing from the test harness. */
static uint64_t next_random(uint64_t *state)
{
  uint64_t x = *state ? *state : 0x9E3779B97F4A7C15ull;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return x * 0x2545F4914F6CDD1Dull;
}

lv2_host_status lv2_host_process_random(lv2_host_instance *instance,
                                        const float *const *in,
                                        float *const *out, size_t n_frames,
                                        uint64_t *seed)
{
  lv2_host_status status = LV2_HOST_SUCCESS;
  const uint64_t n_sizes = (uint64_t)instance->config.max_block + 1;
  for (size_t t = 0; t < n_frames && !status;) {
    uint32_t n = (uint32_t)(next_random(seed) % n_sizes);
    n = n_frames - t < n ? (uint32_t)(n_frames - t) : n;
    status = run_at(instance, in, out, t, n);
    t += n;
  }
  return status;
}

static double now_seconds(void)
{
  struct timespec time;
  clock_gettime(CLOCK_MONOTONIC, &time);
  return (double)time.tv_sec + 1e-9 * (double)time.tv_nsec;
}

lv2_host_status lv2_host_wait_idle(lv2_host_instance *instance,
                                   double timeout)
{
  const double deadline = now_seconds() + timeout;
  for (;;) {
    deliver_responses(instance, false);
    if (worker_is_idle(&instance->worker)) {
      return LV2_HOST_SUCCESS;
    }
    if (now_seconds() > deadline) {
      return LV2_HOST_ERR_TIMEOUT;
    }
    nanosleep(&(struct timespec){0, 200000}, NULL);
  }
}

void lv2_host_refuse_work(lv2_host_instance *instance, unsigned n_schedules,
                          unsigned n_responses)
{
  atomic_store(&instance->worker.n_to_refuse, n_schedules);
  atomic_store(&instance->worker.n_responses_to_refuse, n_responses);
}

uint64_t lv2_host_n_work_requests(const lv2_host_instance *instance)
{
  return atomic_load(&instance->worker.n_scheduled);
}

/* ------------------------------------------------------------------------ */
/* State and presets */

static const void *get_port_value(const char *symbol, void *data,
                                  uint32_t *size, uint32_t *type)
{
  lv2_host_instance *instance = data;
  const int p = find_port(instance, symbol);
  if (p < 0 || instance->kinds[p] != PORT_CONTROL_IN) {
    *size = *type = 0;
    return NULL;
  }
  *size = sizeof(float);
  *type = instance->host->uris.atom_Float;
  return &instance->controls[p];
}

static void set_port_value(const char *symbol, void *data, const void *value,
                           uint32_t size, uint32_t type)
{
  lv2_host_instance *instance = data;
  const host_urids *u = &instance->host->uris;
  float number = 0.0f;
  if (type == u->atom_Float && size == sizeof(float)) {
    memcpy(&number, value, sizeof(number));
  } else if (type == u->atom_Double && size == sizeof(double)) {
    double wide;
    memcpy(&wide, value, sizeof(wide));
    number = (float)wide;
  } else if (type == u->atom_Int && size == sizeof(int32_t)) {
    int32_t whole;
    memcpy(&whole, value, sizeof(whole));
    number = (float)whole;
  } else {
    return;
  }
  lv2_host_set_control(instance, symbol, number);
}

/** The features save() and restore() get: the instance's but its
    schedule, plus restore's own schedule when asked.  `list` has room for
    8. */
static void restore_features(lv2_host_instance *instance, bool with_worker,
                             const LV2_Feature **list)
{
  int n = 0;
  for (int k = 0; instance->feature_list[k]; ++k) {
    if (strcmp(instance->feature_list[k]->URI, LV2_WORKER__schedule)) {
      list[n++] = instance->feature_list[k];
    }
  }
  if (with_worker) {
    list[n++] = &instance->restore_schedule_feature;
  }
  list[n] = NULL;
}

/* lilv 0.24 needs a link directory: with none, lilv_state_save() deletes
   the file an absolute path names and leaves a symlink to itself
   (lv2/lilv#73). */
lv2_host_status lv2_host_state_save(lv2_host_instance *instance,
                                    const char *dir, const char *link_dir)
{
  lv2_host *host = instance->host;
  const LV2_Feature *features[8];
  restore_features(instance, false, features);
  LilvState *state = lilv_state_new_from_instance(
    instance->plugin, instance->lilv, &host->map, NULL, NULL,
    link_dir ? link_dir : dir, dir, get_port_value, instance,
    LV2_STATE_IS_POD | LV2_STATE_IS_PORTABLE, features);
  if (!state) {
    return LV2_HOST_ERR_STATE;
  }
  const int failed = lilv_state_save(host->world, &host->map, &host->unmap,
                                     state, NULL, dir, STATE_FILE);
  lilv_state_free(state);
  return failed ? LV2_HOST_ERR_STATE : LV2_HOST_SUCCESS;
}

static lv2_host_status restore(lv2_host_instance *instance, const char *dir,
                               bool with_worker, bool sets_controls)
{
  char path[PATH_MAX];
  if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, STATE_FILE) >=
      sizeof(path)) {
    return LV2_HOST_ERR_BAD_ARG;
  }
  LilvState *state = lilv_state_new_from_file(instance->host->world,
                                              &instance->host->map, NULL, path);
  if (!state) {
    return LV2_HOST_ERR_STATE;
  }
  const LV2_Feature *features[8];
  restore_features(instance, with_worker, features);
  lilv_state_restore(state, instance->lilv,
                     sets_controls ? set_port_value : NULL, instance, 0,
                     features);
  lilv_state_free(state);
  return LV2_HOST_SUCCESS;
}

lv2_host_status lv2_host_state_restore(lv2_host_instance *instance,
                                       const char *dir, bool with_worker)
{
  return restore(instance, dir, with_worker, true);
}

lv2_host_status lv2_host_state_restore_properties(lv2_host_instance *instance,
                                                  const char *dir,
                                                  bool with_worker)
{
  return restore(instance, dir, with_worker, false);
}

lv2_host_status lv2_host_preset_apply(lv2_host_instance *instance,
                                      const char *preset_uri,
                                      bool with_worker)
{
  LilvWorld *world = instance->host->world;
  LilvNode *preset = lilv_new_uri(world, preset_uri);
  if (!preset) {
    return LV2_HOST_ERR_BAD_ARG;
  }
  lilv_world_load_resource(world, preset);
  LilvState *state = lilv_state_new_from_world(world, &instance->host->map,
                                               preset);
  if (state) {
    const LV2_Feature *features[8];
    restore_features(instance, with_worker, features);
    lilv_state_restore(state, instance->lilv, set_port_value, instance, 0,
                       features);
    lilv_state_free(state);
  }
  lilv_world_unload_resource(world, preset);
  lilv_node_free(preset);
  return state ? LV2_HOST_SUCCESS : LV2_HOST_ERR_NOT_FOUND;
}
