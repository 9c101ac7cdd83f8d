/*
  A fresh instance set up as a user would: see plugin_setup.h.
*/

#include "plugin_setup.h"

#include <lilv/lilv.h>

#include <stdio.h>
#include <string.h>

#define CARRY_MODEL "https://carry.audio/lv2#model"
#define CARRY_STATUS "https://carry.audio/lv2#status"
#define LOAD_POLLS 400  ///< Runs of 64 frames to wait for a model load

bool plugin_setup_is_carry(const char *plugin_uri)
{
  return !strncmp(plugin_uri, PLUGIN_SETUP_CARRY_PREFIX,
                  strlen(PLUGIN_SETUP_CARRY_PREFIX));
}

plugin_setup_failure plugin_setup_configure(lv2_host_instance *instance,
                                            const plugin_setup *setup,
                                            size_t *bad_control)
{
  if (setup->preset_uri &&
      lv2_host_preset_apply(instance, setup->preset_uri, true)) {
    return PLUGIN_SETUP_BAD_PRESET;
  }
  for (size_t k = 0; k < setup->n_controls; ++k) {
    const plugin_control *control = &setup->controls[k];
    if (lv2_host_set_control(instance, control->symbol, control->value)) {
      *bad_control = k;
      return PLUGIN_SETUP_BAD_CONTROL;
    }
  }
  if (setup->model_path &&
      lv2_host_send_patch_set_path(instance, CARRY_MODEL,
                                   setup->model_path)) {
    return PLUGIN_SETUP_BAD_MODEL;
  }
  return PLUGIN_SETUP_OK;
}

/** Runs silence until Carry says what became of its model. */
static bool wait_for_carry(lv2_host_instance *instance, char *message,
                           size_t size)
{
  for (int k = 0; k < LOAD_POLLS; ++k) {
    const lv2_host_message *status = lv2_host_last_set(instance,
                                                       CARRY_STATUS);
    if (status && !strncmp(status->value, "loaded: ", 8)) {
      return true;
    }
    if (status && !strncmp(status->value, "error", 5)) {
      snprintf(message, size, "the plugin says %s", status->value);
      return false;
    }
    lv2_host_run(instance, NULL, NULL, 64);
    lv2_host_wait_idle(instance, 10.0);
  }
  snprintf(message, size, "no model loaded after %d runs", LOAD_POLLS);
  return false;
}

/* A restarted Carry holds the model its preset or model file gave it,
   starts from the state it settles to, as after loading, and skips the
   cross-fade into it. */
bool plugin_setup_settle(lv2_host_instance *instance,
                         const plugin_setup *setup, char *message,
                         size_t size)
{
  lv2_host_activate(instance);
  const bool loads = plugin_setup_is_carry(setup->plugin_uri) &&
                     (setup->model_path || setup->preset_uri);
  if (loads && !wait_for_carry(instance, message, size)) {
    return false;
  }
  if (lv2_host_wait_idle(instance, 10.0)) {
    snprintf(message, size, "the plugin's worker did not finish in 10 s");
    return false;
  }
  lv2_host_deactivate(instance);
  lv2_host_activate(instance);
  return true;
}

float plugin_setup_latency(lv2_host *host, lv2_host_instance *instance,
                           const char *plugin_uri)
{
  const LilvPlugin *plugin = lv2_host_find_plugin(host, plugin_uri);
  const uint32_t index = plugin ? lilv_plugin_get_latency_port_index(plugin)
                                : UINT32_MAX;
  float latency = -1.0f;
  if (index == UINT32_MAX) {
    return latency;
  }
  const LilvPort *port = lilv_plugin_get_port_by_index(plugin, index);
  const LilvNode *symbol = lilv_port_get_symbol(plugin, port);
  lv2_host_get_control(instance, lilv_node_as_string(symbol), &latency);
  return latency;
}
