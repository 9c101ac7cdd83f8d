/*
  The worker side of loading: requests from run() (or restore()), engines
  built on the worker thread, handed back to run() as responses, and
  returned to the worker to be freed.  The newest request wins: the worker
  skips a request that a newer one has superseded, before loading and
  again before answering.
*/

#include "plugin.h"

#include <stdio.h>
#include <string.h>

typedef enum {
  REQUEST_LOAD = 1,
  REQUEST_FREE = 2,
} request_type;

/** Followed by `length` bytes of path (no NUL). */
typedef struct {
  uint32_t type;            ///< REQUEST_LOAD
  uint32_t sequence;        ///< latest_request when it was made
  uint32_t has_knobs;       ///< Whether knob_ports holds values
  uint32_t length;
  float knob_ports[CARRY_KNOB_PORTS];
} load_request;

typedef struct {
  uint32_t type;            ///< REQUEST_FREE
  carry_engine *engine;
} free_request;

/* ------------------------------------------------------------------------ */
/* Audio thread (and restore) */

bool carry_request_load(carry_plugin *self, LV2_Worker_Schedule *schedule,
                        const char *path, uint32_t length,
                        const float *knob_ports)
{
  struct {
    load_request head;
    char path[CARRY_PATH_SIZE];
  } message;
  if (length == 0 || length >= CARRY_PATH_SIZE) {
    return false;
  }
  message.head.type = REQUEST_LOAD;
  message.head.sequence = atomic_fetch_add(&self->latest_request, 1) + 1;
  message.head.has_knobs = knob_ports != NULL;
  message.head.length = length;
  for (int k = 0; k < CARRY_KNOB_PORTS; ++k) {
    message.head.knob_ports[k] = knob_ports ? knob_ports[k] : 0.0f;
  }
  memcpy(message.path, path, length);
  const uint32_t size = (uint32_t)(sizeof(load_request) + length);
  if (schedule->schedule_work(schedule->handle, size, &message) ==
      LV2_WORKER_SUCCESS) {
    return true;
  }
  // Not sent: the queued requests stay the newest (unless another one
  // came meanwhile, which then wins anyway).
  uint32_t expected = message.head.sequence;
  atomic_compare_exchange_strong(&self->latest_request, &expected,
                                 expected - 1);
  return false;
}

void carry_send_pending(carry_plugin *self)
{
  if (self->pending_length &&
      carry_request_load(self, self->schedule, self->pending_path,
                         self->pending_length, self->pending_knobs)) {
    memcpy(self->requested_path, self->pending_path, self->pending_length);
    self->requested_path[self->pending_length] = '\0';
    self->pending_length = 0;
  }
}

static carry_rate_mode read_rate_mode(const carry_plugin *self)
{
  const float *port = self->rate_mode_port;
  if (!port || !(*port >= 0.0f && *port <= (float)CARRY_RATE_CORRECT)) {
    return self->rate_mode; // unconnected or nonsense: keep the mode
  }
  return (carry_rate_mode)(int)(*port + 0.5f);
}

/** The path to load again: the newest asked for, pending or sent, else
    the one running (which a restore() may have loaded). */
static const char *newest_path(const carry_plugin *self)
{
  return self->requested_path[0] ? self->requested_path : self->path;
}

void carry_follow_rate_mode(carry_plugin *self)
{
  const carry_rate_mode mode = read_rate_mode(self);
  if (mode == self->rate_mode) {
    return;
  }
  self->rate_mode = mode;
  atomic_store(&self->shared_rate_mode, (int)mode);
  if (self->pending_length) {
    return; // not sent yet: it goes out in the new mode
  }
  const char *path = newest_path(self);
  const uint32_t length = (uint32_t)strlen(path);
  if (length == 0) {
    return; // no model: nothing runs at any rate
  }
  memmove(self->pending_path, path, length);
  self->pending_length = length;
  for (int k = 0; k < CARRY_KNOB_PORTS; ++k) {
    self->pending_knobs[k] = self->knobs[k].target;
  }
  carry_send_pending(self);
}

void carry_retire(carry_plugin *self, carry_engine *engine)
{
  const free_request request = {REQUEST_FREE, engine};
  if (!engine || self->schedule->schedule_work(self->schedule->handle,
                                               sizeof(request), &request) ==
                   LV2_WORKER_SUCCESS) {
    return;
  }
  if (self->n_retired < CARRY_MAX_RETIRED) {
    self->retired[self->n_retired++] = engine;
  }
  // Else it stays on the live list, and cleanup() frees it.
}

void carry_retry_retired(carry_plugin *self)
{
  const int n = self->n_retired;
  self->n_retired = 0;
  for (int k = 0; k < n; ++k) {
    carry_retire(self, self->retired[k]);
  }
}

static bool has_model(const carry_plugin *self)
{
  return self->current || self->incoming || self->waiting;
}

static void report_failure(carry_plugin *self, const carry_engine *failed)
{
  const size_t size = sizeof(self->status);
  const size_t used = carry_copy_text(self->status, size, failed->status);
  carry_copy_text(self->status + used, size - used,
                  has_model(self) ? " \xe2\x80\x94 kept the previous model"
                                  : " \xe2\x80\x94 no model loaded");
  self->report |= REPORT_STATUS;
}

static void report_loaded(carry_plugin *self, const carry_engine *engine)
{
  if (engine->sequence == atomic_load(&self->latest_request)) {
    // The newest request, which a restore() may have sent: the one to load
    // again if the rate mode changes.
    carry_copy_text(self->requested_path, sizeof(self->requested_path),
                    engine->path);
  }
  carry_copy_text(self->status, sizeof(self->status), engine->status);
  carry_copy_text(self->name, sizeof(self->name), engine->name);
  carry_copy_text(self->path, sizeof(self->path), engine->path);
  self->report |= REPORT_ALL;
}

void carry_accept(carry_plugin *self, carry_engine *engine)
{
  if (carry_is_older(engine->sequence, self->newest_accepted)) {
    carry_retire(self, engine); // overtaken while on its way
    return;
  }
  self->newest_accepted = engine->sequence;
  if (!engine->model) {
    report_failure(self, engine);
    carry_retire(self, engine);
    return;
  }
  report_loaded(self, engine);
  if (!self->incoming) {
    self->incoming = engine;
    self->fade = 0.0f;
  } else {
    carry_retire(self, self->waiting);
    self->waiting = engine;
  }
}

LV2_Worker_Status carry_work_response(LV2_Handle instance, uint32_t size,
                                      const void *data)
{
  carry_plugin *self = (carry_plugin *)instance;
  carry_engine *engine = NULL;
  if (size == sizeof(engine)) {
    memcpy(&engine, data, sizeof(engine));
    carry_accept(self, engine);
  }
  return LV2_WORKER_SUCCESS;
}

/* ------------------------------------------------------------------------ */
/* Worker thread */

void carry_track(carry_plugin *self, carry_engine *engine)
{
  pthread_mutex_lock(&self->lock);
  engine->prev_live = NULL;
  engine->next_live = self->live;
  if (self->live) {
    self->live->prev_live = engine;
  }
  self->live = engine;
  pthread_mutex_unlock(&self->lock);
}

void carry_set_saved_path(carry_plugin *self, const char *path)
{
  pthread_mutex_lock(&self->lock);
  snprintf(self->saved_path, sizeof(self->saved_path), "%s", path);
  pthread_mutex_unlock(&self->lock);
}

void carry_untrack_free(carry_plugin *self, carry_engine *engine)
{
  pthread_mutex_lock(&self->lock);
  if (engine->prev_live) {
    engine->prev_live->next_live = engine->next_live;
  } else {
    self->live = engine->next_live;
  }
  if (engine->next_live) {
    engine->next_live->prev_live = engine->prev_live;
  }
  pthread_mutex_unlock(&self->lock);
  carry_engine_free(engine);
}

void carry_log_outcome(carry_plugin *self, const carry_engine *engine)
{
  if (engine->model) {
    lv2_log_note(&self->logger, "Carry: %s\n", engine->status);
  } else {
    lv2_log_error(&self->logger, "Carry: %s\n", engine->status);
  }
}

static bool is_superseded(carry_plugin *self, uint32_t sequence)
{
  return sequence != atomic_load(&self->latest_request);
}

/** Loads the path of `request`, whose bytes follow it in `path_bytes`. */
static LV2_Worker_Status load(carry_plugin *self,
                              LV2_Worker_Respond_Function respond,
                              LV2_Worker_Respond_Handle handle,
                              const load_request *request,
                              const char *path_bytes)
{
  char path[CARRY_PATH_SIZE];
  if (is_superseded(self, request->sequence)) {
    return LV2_WORKER_SUCCESS;
  }
  memcpy(path, path_bytes, request->length);
  path[request->length] = '\0';
  const carry_rate_mode mode =
    (carry_rate_mode)atomic_load(&self->shared_rate_mode);
  carry_engine *engine =
    carry_engine_load(path, self->n_channels, self->rate, mode,
                      request->has_knobs ? request->knob_ports : NULL);
  if (!engine) {
    lv2_log_error(&self->logger, "Carry: out of memory loading %s\n", path);
    return LV2_WORKER_ERR_NO_SPACE;
  }
  if (is_superseded(self, request->sequence)) {
    carry_engine_free(engine);
    return LV2_WORKER_SUCCESS;
  }
  engine->sequence = request->sequence;
  carry_log_outcome(self, engine);
  carry_track(self, engine);
  if (respond(handle, sizeof(engine), &engine) != LV2_WORKER_SUCCESS) {
    lv2_log_error(&self->logger, "Carry: the host dropped the loaded model "
                                 "%s\n", path);
    carry_untrack_free(self, engine);
    return LV2_WORKER_ERR_NO_SPACE;
  }
  if (engine->model) {
    carry_set_saved_path(self, path);
  }
  return LV2_WORKER_SUCCESS;
}

LV2_Worker_Status carry_work(LV2_Handle instance,
                             LV2_Worker_Respond_Function respond,
                             LV2_Worker_Respond_Handle handle, uint32_t size,
                             const void *data)
{
  carry_plugin *self = (carry_plugin *)instance;
  uint32_t type = 0;
  if (size < sizeof(type)) {
    return LV2_WORKER_ERR_UNKNOWN;
  }
  memcpy(&type, data, sizeof(type));
  if (type == REQUEST_LOAD && size >= sizeof(load_request)) {
    load_request request;
    memcpy(&request, data, sizeof(request));
    if (size != sizeof(load_request) + request.length ||
        request.length >= CARRY_PATH_SIZE) {
      return LV2_WORKER_ERR_UNKNOWN;
    }
    return load(self, respond, handle, &request,
                (const char *)data + sizeof(load_request));
  }
  if (type == REQUEST_FREE && size == sizeof(free_request)) {
    free_request request;
    memcpy(&request, data, sizeof(request));
    carry_untrack_free(self, request.engine);
    return LV2_WORKER_SUCCESS;
  }
  return LV2_WORKER_ERR_UNKNOWN;
}
