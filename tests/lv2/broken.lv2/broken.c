/*
  Two deliberately broken LV2 plugins, so that the tests can show that
  `carry check` catches what it should:

  - urn:carry:test:block-gain applies a gain that falls with every run()
    call, so its output depends on how the host cuts the stream;
  - urn:carry:test:forgetful has a gain in its state (set by a preset) that
    save() does not store, so a restored instance plays at another level.

  Both are otherwise ordinary: mono in, mono out, real-time safe.
*/

#include <lv2/atom/atom.h>
#include <lv2/core/lv2.h>
#include <lv2/state/state.h>
#include <lv2/urid/urid.h>

#include <stdlib.h>
#include <string.h>

#define BLOCK_GAIN_URI "urn:carry:test:block-gain"
#define FORGETFUL_URI "urn:carry:test:forgetful"
#define GAIN_KEY "urn:carry:test:gain"

typedef struct broken {
  const float *in;
  float *out;
  unsigned n_runs;     ///< block-gain: calls since activate()
  float gain;          ///< forgetful: from restore()
  LV2_URID gain_key;
  LV2_URID atom_Float;
  LV2_URID atom_Double;
} broken;

static LV2_Handle instantiate(const LV2_Descriptor *descriptor, double rate,
                              const char *bundle,
                              const LV2_Feature *const *features)
{
  (void)descriptor;
  (void)rate;
  (void)bundle;
  broken *self = calloc(1, sizeof(broken));
  if (!self) {
    return NULL;
  }
  self->gain = 1.0f;
  for (size_t k = 0; features && features[k]; ++k) {
    if (!strcmp(features[k]->URI, LV2_URID__map)) {
      LV2_URID_Map *map = features[k]->data;
      self->gain_key = map->map(map->handle, GAIN_KEY);
      self->atom_Float = map->map(map->handle, LV2_ATOM__Float);
      self->atom_Double = map->map(map->handle, LV2_ATOM__Double);
    }
  }
  return self;
}

static void connect_port(LV2_Handle instance, uint32_t port, void *data)
{
  broken *self = instance;
  if (port == 0) {
    self->in = data;
  } else if (port == 1) {
    self->out = data;
  }
}

static void activate(LV2_Handle instance)
{
  ((broken *)instance)->n_runs = 0;
}

/** The bug on purpose: the gain steps down at every call, not per sample. */
static void run_block_gain(LV2_Handle instance, uint32_t n_samples)
{
  broken *self = instance;
  const float gain = 1.0f / (1.0f + 0.01f * (float)self->n_runs++);
  for (uint32_t t = 0; t < n_samples; ++t) {
    self->out[t] = gain * self->in[t];
  }
}

static void run_forgetful(LV2_Handle instance, uint32_t n_samples)
{
  broken *self = instance;
  for (uint32_t t = 0; t < n_samples; ++t) {
    self->out[t] = self->gain * self->in[t];
  }
}

/** The bug on purpose: the gain is not stored. */
static LV2_State_Status save(LV2_Handle instance,
                             LV2_State_Store_Function store,
                             LV2_State_Handle handle, uint32_t flags,
                             const LV2_Feature *const *features)
{
  (void)instance;
  (void)store;
  (void)handle;
  (void)flags;
  (void)features;
  return LV2_STATE_SUCCESS;
}

static LV2_State_Status restore(LV2_Handle instance,
                                LV2_State_Retrieve_Function retrieve,
                                LV2_State_Handle handle, uint32_t flags,
                                const LV2_Feature *const *features)
{
  (void)flags;
  (void)features;
  broken *self = instance;
  size_t size = 0;
  uint32_t type = 0, value_flags = 0;
  const void *value = retrieve(handle, self->gain_key, &size, &type,
                               &value_flags);
  if (value && type == self->atom_Float && size == sizeof(float)) {
    self->gain = *(const float *)value;
  } else if (value && type == self->atom_Double && size == sizeof(double)) {
    self->gain = (float)*(const double *)value;
  }
  return LV2_STATE_SUCCESS;
}

static const void *extension_data(const char *uri)
{
  static const LV2_State_Interface state = {save, restore};
  return !strcmp(uri, LV2_STATE__interface) ? &state : NULL;
}

static const void *no_extension_data(const char *uri)
{
  (void)uri;
  return NULL;
}

static void cleanup(LV2_Handle instance)
{
  free(instance);
}

static const LV2_Descriptor descriptors[] = {
  {BLOCK_GAIN_URI, instantiate, connect_port, activate, run_block_gain, NULL,
   cleanup, no_extension_data},
  {FORGETFUL_URI, instantiate, connect_port, activate, run_forgetful, NULL,
   cleanup, extension_data},
};

LV2_SYMBOL_EXPORT const LV2_Descriptor *lv2_descriptor(uint32_t index)
{
  return index < 2 ? &descriptors[index] : NULL;
}
