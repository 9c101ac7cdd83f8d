/*
  The Carry LV2 plugins (mono and stereo): the descriptor, the instance's
  life cycle, and run(), which reads as the table of contents of a cycle.
*/

#include "plugin.h"

#include <lv2/buf-size/buf-size.h>
#include <lv2/patch/patch.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

/** Times of the glides and fades, in seconds. */
#define GLIDE_SECONDS 0.02
#define ENABLE_SECONDS 0.01
#define FADE_SECONDS 0.03

static const char *const no_model_status =
  "no model loaded: passing audio through";

/* ------------------------------------------------------------------------ */
/* Instantiation */

static void map_uris(carry_uris *uris, LV2_URID_Map *map)
{
  uris->atom_Float = map->map(map->handle, LV2_ATOM__Float);
  uris->atom_Path = map->map(map->handle, LV2_ATOM__Path);
  uris->atom_String = map->map(map->handle, LV2_ATOM__String);
  uris->atom_URID = map->map(map->handle, LV2_ATOM__URID);
  uris->atom_Vector = map->map(map->handle, LV2_ATOM__Vector);
  uris->carry_knobs = map->map(map->handle, CARRY_NS "knobs");
  uris->carry_model = map->map(map->handle, CARRY_NS "model");
  uris->carry_modelName = map->map(map->handle, CARRY_NS "modelName");
  uris->carry_status = map->map(map->handle, CARRY_NS "status");
  uris->patch_Get = map->map(map->handle, LV2_PATCH__Get);
  uris->patch_Set = map->map(map->handle, LV2_PATCH__Set);
  uris->patch_property = map->map(map->handle, LV2_PATCH__property);
  uris->patch_value = map->map(map->handle, LV2_PATCH__value);
}

const void *carry_find_feature(const LV2_Feature *const *features,
                               const char *uri)
{
  for (int k = 0; features && features[k]; ++k) {
    if (!strcmp(features[k]->URI, uri)) {
      return features[k]->data;
    }
  }
  return NULL;
}

/** Takes the features; false (with a logged reason) if one we need is
    missing. */
static bool take_features(carry_plugin *self,
                          const LV2_Feature *const *features)
{
  self->map = (LV2_URID_Map *)carry_find_feature(features, LV2_URID__map);
  self->schedule =
    (LV2_Worker_Schedule *)carry_find_feature(features, LV2_WORKER__schedule);
  LV2_Log_Log *log = (LV2_Log_Log *)carry_find_feature(features, LV2_LOG__log);
  lv2_log_logger_init(&self->logger, self->map, log);
  if (!self->map) {
    lv2_log_error(&self->logger, "Carry: the host offers no urid:map\n");
    return false;
  }
  if (!self->schedule) {
    lv2_log_error(&self->logger,
                  "Carry: the host offers no worker (work:schedule), which "
                  "loads models off the audio thread\n");
    return false;
  }
  return true;
}

static void set_times(carry_plugin *self)
{
  const double rate = self->rate;
  self->glide_coef = (float)(1.0 - exp(-1.0 / (GLIDE_SECONDS * rate)));
  self->enable_step = (float)(1.0 / (ENABLE_SECONDS * rate));
  self->fade_step = (float)(1.0 / (FADE_SECONDS * rate));
}

static void set_defaults(carry_plugin *self)
{
  self->input_gain = (carry_glide){1.0f, 1.0f};
  self->output_gain = (carry_glide){1.0f, 1.0f};
  self->mix = (carry_glide){1.0f, 1.0f};
  self->enabled = (carry_glide){1.0f, 1.0f};
  self->normalized = (carry_glide){0.0f, 0.0f};
  for (int k = 0; k < CARRY_KNOB_PORTS; ++k) {
    self->knobs[k] = (carry_glide){0.5f, 0.5f};
    self->cell_knobs[k] = 0.5f;
  }
  carry_copy_text(self->status, sizeof(self->status), no_model_status);
  self->report = REPORT_ALL;
}

static LV2_Handle instantiate(const LV2_Descriptor *descriptor, double rate,
                              const char *bundle_path,
                              const LV2_Feature *const *features)
{
  (void)bundle_path;
  const int n_channels = strcmp(descriptor->URI, CARRY_STEREO_URI) ? 1 : 2;
  carry_plugin *self = calloc(1, carry_plugin_size(n_channels));
  if (!self) {
    return NULL;
  }
  if (!take_features(self, features)) {
    free(self);
    return NULL;
  }
  if (!(rate >= 1000.0 && rate <= 1e6)) {
    lv2_log_error(&self->logger, "Carry: unusable sample rate %g\n", rate);
    free(self);
    return NULL;
  }
  self->rate = rate;
  self->n_channels = n_channels;
  map_uris(&self->uris, self->map);
  lv2_atom_forge_init(&self->forge, self->map);
  pthread_mutex_init(&self->lock, NULL);
  atomic_init(&self->latest_request, 0u);
  atomic_init(&self->mailbox, NULL);
  atomic_init(&self->shared_rate_mode, (int)CARRY_RATE_AUTO);
  set_times(self);
  set_defaults(self);
  return (LV2_Handle)self;
}

static void connect_port(LV2_Handle instance, uint32_t port, void *data)
{
  carry_plugin *self = (carry_plugin *)instance;
  const uint32_t audio_end = PORT_AUDIO + 2u * (uint32_t)self->n_channels;
  if (port == PORT_CONTROL) {
    self->control = (const LV2_Atom_Sequence *)data;
  } else if (port == PORT_NOTIFY) {
    self->notify = (LV2_Atom_Sequence *)data;
  } else if (port < PORT_LATENCY) {
    self->params[port - PORT_INPUT_GAIN] = (const float *)data;
  } else if (port == PORT_LATENCY) {
    self->latency = (float *)data;
  } else if (port == PORT_NORMALIZE) {
    self->normalize = (const float *)data;
  } else if (port < audio_end && (port - PORT_AUDIO) % 2 == 0) {
    self->in[(port - PORT_AUDIO) / 2] = (const float *)data;
  } else if (port < audio_end) {
    self->out[(port - PORT_AUDIO) / 2] = (float *)data;
  } else if (port == carry_rate_mode_port(self->n_channels)) {
    self->rate_mode_port = (const float *)data;
  } else if (port == carry_quality_port(self->n_channels)) {
    self->quality_port = (const float *)data;
  }
}

static void activate(LV2_Handle instance)
{
  carry_plugin *self = (carry_plugin *)instance;
  carry_snap_params(self);
  carry_reset_engines(self); // LV2: a new activation forgets all history
  memset(self->dry_ring, 0,
         (size_t)self->n_channels * sizeof(self->dry_ring[0]));
  self->clock = 0;
  self->ends_fades = true; // in run(), where the worker may be called
}

/* ------------------------------------------------------------------------ */
/* The audio cycle */

/** An engine from a restore() that had no worker to load it. */
static void take_mailbox(carry_plugin *self)
{
  carry_engine *engine = atomic_exchange(&self->mailbox, NULL);
  if (engine) {
    carry_accept(self, engine);
  }
}

static void run(LV2_Handle instance, uint32_t n_samples)
{
  carry_plugin *self = (carry_plugin *)instance;
  carry_begin_notify(self);
  take_mailbox(self);
  if (self->ends_fades) {
    carry_end_fades(self);
    self->ends_fades = false;
  }
  carry_retry_retired(self);
  carry_read_params(self);
  carry_read_control(self); // a load settles with the knobs just read
  carry_follow_rate_mode(self);
  carry_apply_quality(self); // to every engine this cycle may run
  carry_process(self, n_samples);
  carry_end_notify(self);
  if (self->latency) {
    *self->latency = (float)carry_latency(self);
  }
}

/* ------------------------------------------------------------------------ */
/* Cleanup */

static void cleanup(LV2_Handle instance)
{
  carry_plugin *self = (carry_plugin *)instance;
  // Every engine alive is on the live list, wherever it was: running,
  // fading, waiting, retired, in a response or in the mailbox.
  while (self->live) {
    carry_engine *next = self->live->next_live;
    carry_engine_free(self->live);
    self->live = next;
  }
  pthread_mutex_destroy(&self->lock);
  free(self);
}

static const void *extension_data(const char *uri)
{
  static const LV2_Worker_Interface worker = {carry_work, carry_work_response,
                                              NULL};
  static const LV2_State_Interface state = {carry_save, carry_restore};
  if (!strcmp(uri, LV2_WORKER__interface)) {
    return &worker;
  }
  if (!strcmp(uri, LV2_STATE__interface)) {
    return &state;
  }
  return NULL;
}

static const LV2_Descriptor descriptors[] = {
  {CARRY_URI, instantiate, connect_port, activate, run, NULL, cleanup,
   extension_data},
  {CARRY_STEREO_URI, instantiate, connect_port, activate, run, NULL, cleanup,
   extension_data},
};

LV2_SYMBOL_EXPORT const LV2_Descriptor *lv2_descriptor(uint32_t index)
{
  return index < 2 ? &descriptors[index] : NULL;
}
