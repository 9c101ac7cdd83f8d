/*
  State: the model's path, mapped through state:mapPath so that a session
  can move, and the knob ports' values, which the model settles with (the
  host restores the ports themselves only after restore()).  restore()
  loads through the worker when the host gives one for it, and otherwise
  loads at once (Ardour restores a running instance without a worker) and
  hands the engine to run() through the mailbox.
*/

#include "plugin.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void free_mapped(const LV2_Feature *const *features, char *path)
{
  const LV2_State_Free_Path *free_path =
    (const LV2_State_Free_Path *)carry_find_feature(features,
                                                    LV2_STATE__freePath);
  if (free_path) {
    free_path->free_path(free_path->handle, path);
  } else {
    free(path);
  }
}

/** The knob ports as an atom:Vector of floats. */
typedef struct {
  LV2_Atom_Vector_Body head;
  float values[CARRY_KNOB_PORTS];
} knob_vector;

static LV2_State_Status save_knobs(carry_plugin *self,
                                   LV2_State_Store_Function store,
                                   LV2_State_Handle handle)
{
  knob_vector knobs = {{sizeof(float), self->uris.atom_Float}, {0}};
  for (int k = 0; k < CARRY_KNOB_PORTS; ++k) {
    const uint32_t bits =
      atomic_load_explicit(&self->knob_bits[k], memory_order_relaxed);
    memcpy(&knobs.values[k], &bits, sizeof(bits));
  }
  return store(handle, self->uris.carry_knobs, &knobs, sizeof(knobs),
               self->uris.atom_Vector,
               LV2_STATE_IS_POD | LV2_STATE_IS_PORTABLE);
}

/** The saved knob values into `values`; false if there are none. */
static bool restore_knobs(carry_plugin *self,
                          LV2_State_Retrieve_Function retrieve,
                          LV2_State_Handle handle, float *values)
{
  size_t size = 0;
  uint32_t type = 0, flags = 0;
  const void *data =
    retrieve(handle, self->uris.carry_knobs, &size, &type, &flags);
  knob_vector knobs;
  if (!data || type != self->uris.atom_Vector || size != sizeof(knobs)) {
    return false;
  }
  memcpy(&knobs, data, sizeof(knobs));
  if (knobs.head.child_type != self->uris.atom_Float ||
      knobs.head.child_size != sizeof(float)) {
    return false;
  }
  for (int k = 0; k < CARRY_KNOB_PORTS; ++k) {
    const float v = knobs.values[k];
    values[k] = isfinite(v) ? (v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v) : 0.5f;
  }
  return true;
}

LV2_State_Status carry_save(LV2_Handle instance, LV2_State_Store_Function store,
                            LV2_State_Handle handle, uint32_t flags,
                            const LV2_Feature *const *features)
{
  (void)flags;
  carry_plugin *self = (carry_plugin *)instance;
  const LV2_State_Map_Path *map_path =
    (const LV2_State_Map_Path *)carry_find_feature(features,
                                                   LV2_STATE__mapPath);
  char path[CARRY_PATH_SIZE];
  pthread_mutex_lock(&self->lock);
  memcpy(path, self->saved_path, sizeof(path));
  pthread_mutex_unlock(&self->lock);
  if (!path[0]) {
    return LV2_STATE_SUCCESS; // no model: nothing to save
  }
  char *abstract = map_path ? map_path->abstract_path(map_path->handle, path)
                            : NULL;
  const char *stored = abstract ? abstract : path;
  LV2_State_Status status =
    store(handle, self->uris.carry_model, stored, strlen(stored) + 1,
          self->uris.atom_Path, LV2_STATE_IS_POD | LV2_STATE_IS_PORTABLE);
  if (abstract) {
    free_mapped(features, abstract);
  }
  return status ? status : save_knobs(self, store, handle);
}

/** Loads here and now, and leaves the engine (or the failure) in the
    mailbox for run(). */
static LV2_State_Status restore_now(carry_plugin *self, const char *path,
                                    const float *knob_ports)
{
  // Overtakes loads under way, and is overtaken by any that comes later
  const uint32_t sequence = atomic_fetch_add(&self->latest_request, 1) + 1;
  const carry_rate_mode mode =
    (carry_rate_mode)atomic_load(&self->shared_rate_mode);
  carry_engine *engine = carry_engine_load(path, self->n_channels, self->rate,
                                           mode, knob_ports);
  if (!engine) {
    return LV2_STATE_ERR_UNKNOWN;
  }
  if (sequence != atomic_load(&self->latest_request)) {
    carry_engine_free(engine);
    return LV2_STATE_SUCCESS;
  }
  engine->sequence = sequence;
  carry_log_outcome(self, engine);
  carry_track(self, engine);
  carry_engine *unread = atomic_exchange(&self->mailbox, engine);
  if (unread) {
    carry_untrack_free(self, unread); // run() never saw it
  }
  return LV2_STATE_SUCCESS;
}

LV2_State_Status carry_restore(LV2_Handle instance,
                               LV2_State_Retrieve_Function retrieve,
                               LV2_State_Handle handle, uint32_t flags,
                               const LV2_Feature *const *features)
{
  (void)flags;
  carry_plugin *self = (carry_plugin *)instance;
  size_t size = 0;
  uint32_t type = 0, value_flags = 0;
  const char *value = (const char *)retrieve(handle, self->uris.carry_model,
                                             &size, &type, &value_flags);
  if (!value) {
    return LV2_STATE_SUCCESS; // nothing stored: keep what runs
  }
  if (type != self->uris.atom_Path || size == 0 || value[size - 1]) {
    return LV2_STATE_ERR_BAD_TYPE;
  }
  const LV2_State_Map_Path *map_path =
    (const LV2_State_Map_Path *)carry_find_feature(features,
                                                   LV2_STATE__mapPath);
  char *absolute = map_path ? map_path->absolute_path(map_path->handle, value)
                            : NULL;
  const char *path = absolute ? absolute : value;
  LV2_Worker_Schedule *schedule = (LV2_Worker_Schedule *)carry_find_feature(
    features, LV2_WORKER__schedule);
  float knobs[CARRY_KNOB_PORTS];
  const float *knob_ports =
    restore_knobs(self, retrieve, handle, knobs) ? knobs : NULL;
  LV2_State_Status status = LV2_STATE_SUCCESS;
  // The session names this file even if it cannot be loaded now, so that
  // saving again keeps the link for when it is back.
  carry_set_saved_path(self, path);
  if (!schedule || !carry_request_load(self, schedule, path,
                                       (uint32_t)strlen(path), knob_ports)) {
    status = restore_now(self, path, knob_ports);
  }
  if (absolute) {
    free_mapped(features, absolute);
  }
  return status;
}
