/*
  Setting up an instance of an LV2 plugin as a user would, shared by
  `carry check` (check_run.c) and `carry process --plugin`
  (process_plugin.c): a preset, control values and, for Carry, a model
  file sent as patch:Set; then the worker's load awaited and the plugin
  restarted, so that every rendering starts from the same history.

  Not real-time code; functions report failures into a message buffer.
*/

#ifndef CARRY_PLUGIN_SETUP_H
#define CARRY_PLUGIN_SETUP_H

#include "lv2_host.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PLUGIN_SETUP_CARRY_PREFIX "https://carry.audio/lv2/"

/** A control input's value, by port symbol. */
typedef struct plugin_control {
  char *symbol;
  float value;
} plugin_control;

/** What to apply to a fresh instance, in this order. */
typedef struct plugin_setup {
  const char *plugin_uri;
  const char *preset_uri;          ///< Or NULL
  const plugin_control *controls;  ///< (n_controls)
  size_t n_controls;
  const char *model_path;          ///< Absolute, for Carry; or NULL
} plugin_setup;

/** Where a failure happened, for the caller's own wording. */
typedef enum {
  PLUGIN_SETUP_OK,
  PLUGIN_SETUP_BAD_PRESET,
  PLUGIN_SETUP_BAD_CONTROL,   ///< `*bad_control` says which
  PLUGIN_SETUP_BAD_MODEL,
} plugin_setup_failure;

/** The URI names one of Carry's plugins (mono or stereo). */
bool plugin_setup_is_carry(const char *plugin_uri);

/** Applies the preset, the controls and the model; on failure sets
    `*bad_control` to the control's index (for BAD_CONTROL). */
plugin_setup_failure plugin_setup_configure(lv2_host_instance *instance,
                                            const plugin_setup *setup,
                                            size_t *bad_control);

/** Activates, waits for Carry to report its model loaded (when a preset
    or model was given), lets the worker finish, and restarts the plugin
    (Carry then runs the model from its settled state, with no fade).
    False with `message` on failure. */
bool plugin_setup_settle(lv2_host_instance *instance,
                         const plugin_setup *setup, char *message,
                         size_t size);

/** The latency the plugin reports on its lv2:reportsLatency port, or -1
    if it has none. */
float plugin_setup_latency(lv2_host *host, lv2_host_instance *instance,
                           const char *plugin_uri);

#endif /* CARRY_PLUGIN_SETUP_H */
