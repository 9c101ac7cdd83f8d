/*
  The Carry plugins through a lilv host (tests/lv2_host.c), as hosts drive
  them: discovery from the build tree, loading models with patch:Set
  through the worker, patch:Get and the notify port, status lines, broken
  and missing model files, bursts of requests, and the shipped presets.
  The other plugin suites: test_plugin_audio.c (output against `carry
  process`, gains and mix, smoothing, crossfades, NaN input),
  test_plugin_state.c (save and restore), test_plugin_hostile.c (what
  careless hosts do), test_plugin_realtime.c (allocations and locks on the
  audio thread), test_plugin_ttl.c (lv2info, serdi, sord_validate).
*/

#include "test_plugin_common.h"

#include <lv2/presets/presets.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------------------ */
/* Discovery */

static void check_found(const char *uri, uint32_t n_ports)
{
  char bundle[PATH_SIZE];
  const LilvPlugin *plugin = lv2_host_find_plugin(fixture.host, uri);
  if (!CHECK(plugin != NULL, "plugin %s found", uri)) {
    return;
  }
  CHECK(lilv_plugin_get_num_ports(plugin) == n_ports, "%s has %u ports", uri,
        n_ports);
  CHECK(lv2_host_plugin_bundle(fixture.host, uri, bundle, sizeof(bundle)) &&
        same_file(bundle, fixture.bundle_dir),
        "%s comes from the build tree's bundle %s, not %s", uri,
        fixture.bundle_dir, bundle);
  LilvWorld *world = lv2_host_world(fixture.host);
  LilvNode *preset_class = lilv_new_uri(world, LV2_PRESETS__Preset);
  LilvNodes *presets = lilv_plugin_get_related(plugin, preset_class);
  LilvNode *preset = lilv_new_uri(world, PRESET_URI);
  CHECK(presets && lilv_nodes_contains(presets, preset),
        "%s lists the preset %s", uri, PRESET_URI);
  printf("found %s in %s, %u ports, %u presets\n", uri, bundle,
         lilv_plugin_get_num_ports(plugin),
         presets ? lilv_nodes_size(presets) : 0);
  lilv_node_free(preset);
  lilv_nodes_free(presets);
  lilv_node_free(preset_class);
}

static void test_discovery(void)
{
  check_found(MONO_URI, 15);
  check_found(STEREO_URI, 17);
}

/* ------------------------------------------------------------------------ */
/* patch:Set, patch:Get and notify */

static void check_reports(lv2_host_instance *instance, const char *path,
                          const char *name, const char *status)
{
  const lv2_host_message *model = lv2_host_last_set(instance, MODEL_URI);
  const lv2_host_message *model_name = lv2_host_last_set(instance,
                                                         MODEL_NAME_URI);
  const lv2_host_message *line = lv2_host_last_set(instance, STATUS_URI);
  CHECK(model && !strcmp(model->type, LV2_ATOM__Path) &&
        !strcmp(model->value, path),
        "notify: carry:model is the atom:Path '%s', got %s '%s'", path,
        model ? model->type : "nothing", model ? model->value : "");
  CHECK(model_name && !strcmp(model_name->type, LV2_ATOM__String) &&
        !strcmp(model_name->value, name),
        "notify: carry:modelName is the atom:String '%s', got '%s'", name,
        model_name ? model_name->value : "");
  CHECK(line && !strcmp(line->type, LV2_ATOM__String) &&
        !strcmp(line->value, status),
        "notify: carry:status is the atom:String '%s', got '%s'", status,
        line ? line->value : "");
}

static void check_get_one(lv2_host_instance *instance, const char *property,
                          const char *expected)
{
  const char *value = ask(instance, property, property);
  CHECK(lv2_host_n_messages(instance) == 1 && !strcmp(value, expected),
        "patch:Get of %s answers with that one patch:Set '%s': %zu "
        "messages, '%s'", property, expected, lv2_host_n_messages(instance),
        value);
}

static void test_patch_messages(void)
{
  lv2_host_instance *instance = open_plugin(MONO_URI, RATE, MAX_BLOCK);
  if (!instance) {
    return;
  }
  const char *status = ask(instance, NULL, STATUS_URI);
  CHECK(!strcmp(status, NO_MODEL_STATUS), "before any load: '%s'", status);
  const uint64_t n_requests = lv2_host_n_work_requests(instance);
  char loaded[STATUS_SIZE];
  load_model(instance, fixture.lstm_model, loaded, sizeof(loaded), 0);
  printf("patch:Set %s -> %s\n", fixture.lstm_model, loaded);
  check_reports(instance, fixture.lstm_model, "Test LSTM", LSTM_STATUS);
  CHECK(lv2_host_n_work_requests(instance) > n_requests,
        "the load went through the worker");
  ask(instance, NULL, STATUS_URI);
  CHECK(lv2_host_n_messages(instance) == 3, "patch:Get of everything "
        "answers with 3 patch:Sets, got %zu", lv2_host_n_messages(instance));
  check_reports(instance, fixture.lstm_model, "Test LSTM", LSTM_STATUS);
  check_get_one(instance, MODEL_URI, fixture.lstm_model);
  check_get_one(instance, MODEL_NAME_URI, "Test LSTM");
  check_get_one(instance, STATUS_URI, LSTM_STATUS);
  CHECK(lv2_host_n_bad_events(instance) == 0, "notify held only objects");
  lv2_host_instance_free(instance);
}

/** At 44100 Hz the 48000 Hz model runs as is, and the status says so;
    the demo model's status line names its one knob. */
static void test_status_lines(void)
{
  char status[STATUS_SIZE];
  lv2_host_instance *instance = open_plugin(MONO_URI, 44100.0, MAX_BLOCK);
  if (!instance) {
    return;
  }
  load_model(instance, fixture.lstm_model, status, sizeof(status), 0);
  CHECK(!strcmp(status, "loaded: \"Test LSTM\" LSTM-8, 2 knobs (drive, "
                        "tone), model 48000 Hz, host 44100 Hz: resampling, "
                        "latency 130 samples"),
        "status at 44100 Hz: '%s'", status);
  load_model(instance, fixture.demo_model, status, sizeof(status), 0);
  CHECK(starts_with(status, "loaded: \"Soft clip (demo)\" LSTM-5, 1 knob") &&
        strstr(status, "asymmetry") &&
        ends_with(status, "model 48000 Hz, host 44100 Hz: resampling, "
                          "latency 130 samples"),
        "demo status at 44100 Hz: '%s'", status);
  printf("status at 44100 Hz: %s\n", status);
  lv2_host_instance_free(instance);
}

/** Whether `text` is well-formed UTF-8 (hosts show these strings). */
static bool is_utf8(const char *text)
{
  const unsigned char *at = (const unsigned char *)text;
  while (*at) {
    const int n = *at < 0x80 ? 0 : (*at & 0xE0) == 0xC0 ? 1
                : (*at & 0xF0) == 0xE0 ? 2 : (*at & 0xF8) == 0xF0 ? 3 : -1;
    if (n < 0) {
      return false;
    }
    ++at;
    for (int k = 0; k < n; ++k, ++at) {
      if ((*at & 0xC0) != 0x80) {
        return false;
      }
    }
  }
  return true;
}

/** A model with 15 knobs whose names are `shift` ASCII letters and then
    two-byte letters (u-umlaut) up to 127 bytes, so that its status line is
    longer than any buffer a plugin would keep for it. */
static bool make_wide_model(const char *path, int shift)
{
  test_rng rng = test_rng_new(7);
  carry_model *model = test_random_model(CARRY_LAYER_LSTM, 4, 1, 16, false,
                                         &rng);
  carry_model_spec spec = *carry_model_get_spec(model);
  snprintf(spec.name, sizeof(spec.name), "Gr\xc3\xbc\xc3\x9f" "e");
  for (int k = 0; k < 15; ++k) {
    char *name = spec.knobs[k].name;
    memset(name, 'k', (size_t)shift);
    for (size_t at = (size_t)shift; at + 2 < CARRY_NAME_SIZE; at += 2) {
      memcpy(name + at, "\xc3\xbc", 2);
      name[at + 2] = '\0';
    }
  }
  carry_error err;
  const bool ok = carry_model_set_info(model, &spec, &err) == CARRY_SUCCESS &&
                  carry_model_save(model, path, &err) == CARRY_SUCCESS;
  carry_model_free(model);
  return ok;
}

/** A broken model deep in directories with long non-ASCII names (`shift`
    ASCII letters first, to move the character boundaries): the status
    line still names the file, the place in it and what was expected, is
    well-formed UTF-8, and ends with what happened to the previous model. */
static void check_long_error_line(lv2_host_instance *instance, int shift)
{
  char path[PATH_SIZE], status[STATUS_SIZE];
  size_t used = (size_t)snprintf(path, sizeof(path), "%s/%.*s",
                                 fixture.temp_dir, shift, "abc");
  for (int level = 0; level < 3; ++level) {
    for (int k = 0; k < 120; ++k, used += 2) {
      memcpy(path + used, "\xc3\xbc", 2);
    }
    path[used] = '\0';
    mkdir(path, 0700);
    path[used++] = '/';
  }
  snprintf(path + used, sizeof(path) - used, "%s", "broken.json");
  if (!CHECK(copy_file(fixture.bad_model, path), "copy a broken model "
             "deep down")) {
    return;
  }
  load_model(instance, path, status, sizeof(status), 0);
  const size_t length = strlen(status);
  CHECK(starts_with(status, "error: broken.json: layers[1].weights[0]: "
                            "expected 2 rows") &&
        ends_with(status, KEPT),
        "a model %zu bytes deep: the status names the file, the place and "
        "what was expected: '%.50s ...%s'", strlen(path), status,
        status + (length > 40 ? length - 40 : 0));
  CHECK(is_utf8(status), "the error status line (%zu bytes) is well-formed "
        "UTF-8", length);
}

/** A status line cut to fit is cut between characters: every string on
    the notify port is well-formed UTF-8 (Turtle, JSON and GUI toolkits
    refuse anything else). */
static void test_long_status_lines(void)
{
  lv2_host_instance *instance = open_plugin(MONO_URI, 44100.0, MAX_BLOCK);
  for (int shift = 0; instance && shift < 4; ++shift) {
    char path[PATH_SIZE], status[STATUS_SIZE];
    snprintf(path, sizeof(path), "%s", temp_path("wide.json"));
    if (!CHECK(make_wide_model(path, shift), "make a model with long knob "
               "names")) {
      break;
    }
    load_model(instance, path, status, sizeof(status), 0);
    CHECK(starts_with(status, "loaded: \"Gr\xc3\xbc\xc3\x9f" "e\" LSTM-4, "
                              "15 knobs ("),
          "a model with 15 long knob names loads: '%.60s...'", status);
    CHECK(is_utf8(status), "shift %d: the status line (%zu bytes) is "
          "well-formed UTF-8: ...%s", shift, strlen(status),
          status + (strlen(status) > 40 ? strlen(status) - 40 : 0));
    CHECK(is_utf8(last_value(instance, MODEL_NAME_URI)), "the model name is "
          "well-formed UTF-8");
    if (shift == 0) {
      printf("status line of a model with 15 long knob names: %zu bytes\n",
             strlen(status));
    }
  }
  for (int shift = 0; instance && shift < 2; ++shift) {
    check_long_error_line(instance, shift);
  }
  lv2_host_instance_free(instance);
}

/* ------------------------------------------------------------------------ */
/* Broken models */

/** A bad file keeps the previous model running: the output does not change
    against a twin instance that never saw the request. */
static void test_broken_model_keeps_previous(void)
{
  const size_t n = 256 * 188;  // about 1 s in whole blocks
  float *x = new_signal(n), *y = new_signal(n), *twin_y = new_signal(n);
  test_signal(x, n, 5);
  lv2_host_instance *instance = open_plugin(MONO_URI, RATE, MAX_BLOCK);
  lv2_host_instance *twin = open_plugin(MONO_URI, RATE, MAX_BLOCK);
  if (instance && twin && load_settled(instance, fixture.demo_model) &&
      load_settled(twin, fixture.demo_model)) {
    lv2_host_log_clear(lv2_host_instance_log(instance));
    lv2_host_clear_messages(instance);
    lv2_host_send_patch_set_path(instance, MODEL_URI, fixture.bad_model);
    for (size_t t = 0; t < n; t += 256) {  // the load fails meanwhile
      run_signal(instance, x + t, y + t, 256, 256);
      run_signal(twin, x + t, twin_y + t, 256, 256);
      lv2_host_wait_idle(instance, 10.0);
    }
    const char *status = last_value(instance, STATUS_URI);
    char logged[1024] = "";
    printf("broken model: %s\n", status);
    CHECK(starts_with(status, "error: ") && ends_with(status, KEPT) &&
          strstr(status, "bad_kernel_rows.json: layers[1].weights[0]: "
                         "expected 2 rows"),
          "status after a broken model: '%s'", status);
    CHECK(lv2_host_log_find(lv2_host_instance_log(instance),
                            LV2_HOST_LOG_ERROR, "bad_kernel_rows.json",
                            logged, sizeof(logged)),
          "the failure is logged as log:Error");
    CHECK(lv2_host_log_count_from_audio(lv2_host_instance_log(instance)) == 0,
          "nothing logged from the audio thread");
    CHECK(lv2_host_last_set(instance, MODEL_URI) == NULL,
          "a failed load does not report a new carry:model");
    const double diff = test_max_abs_diff(y, twin_y, n);
    CHECK(diff == 0.0, "output across a failed load equals the twin's: "
          "largest difference %g", diff);
    CHECK(same_file(ask(instance, MODEL_URI, MODEL_URI), fixture.demo_model),
          "patch:Get still names the previous model");
  }
  lv2_host_instance_free(instance);
  lv2_host_instance_free(twin);
  free(x);
  free(y);
  free(twin_y);
}

/** With no model before it, a bad file leaves the dry pass-through. */
static void test_broken_model_first(void)
{
  char status[STATUS_SIZE];
  const char *missing = temp_path("no-such-model.json");
  lv2_host_instance *instance = open_plugin(STEREO_URI, RATE, MAX_BLOCK);
  if (!instance) {
    return;
  }
  load_model(instance, fixture.bad_model, status, sizeof(status), 0);
  CHECK(starts_with(status, "error: ") && ends_with(status, NONE_LOADED) &&
        strstr(status, "bad_kernel_rows.json"),
        "a bad first model: '%s'", status);
  load_model(instance, missing, status, sizeof(status), 0);
  CHECK(starts_with(status, "error: ") && ends_with(status, NONE_LOADED) &&
        strstr(status, "no-such-model.json"),
        "a missing file: '%s'", status);
  printf("missing file: %s\n", status);
  const size_t n = 4096;
  float *x = new_signal(n), *y = new_signal(n);
  test_signal(x, n, 9);
  run_signal(instance, x, y, n, 512);
  CHECK(test_max_abs_diff(x, y, n) == 0.0, "no model: audio passes through "
        "unchanged at unity gains");
  free(x);
  free(y);
  lv2_host_instance_free(instance);
}

/* ------------------------------------------------------------------------ */
/* Bursts of requests */

/** The burst's i-th model: a bad one, the shaper, the LSTM, and so on;
    the 50th (i = 49) is the shaper. */
static const char *burst_model(int i)
{
  const char *models[3] = {fixture.bad_model, fixture.shaper_model,
                           fixture.lstm_model};
  return models[i % 3];
}

/** After a burst the shaper runs: the output is tanh(3x) to float
    precision, reported by patch:Get. */
static void check_burst_result(lv2_host_instance *instance, const char *how,
                               const float *x, size_t n)
{
  lv2_host_wait_idle(instance, 10.0);
  lv2_host_process(instance, NULL, NULL, (size_t)(0.2 * RATE), 256);
  lv2_host_wait_idle(instance, 10.0);
  const char *status = ask(instance, NULL, STATUS_URI);
  CHECK(starts_with(status, "loaded: \"Test Shaper\""),
        "after a burst %s the last model is loaded: '%s'", how, status);
  CHECK(!strcmp(last_value(instance, MODEL_URI), fixture.shaper_model),
        "after a burst %s carry:model is the last path", how);
  float *y = new_signal(n);
  double worst = 0.0;
  run_signal(instance, x, y, n, 256);
  for (size_t t = 0; t < n; ++t) {
    worst = fmax(worst, fabs(y[t] - tanh(3.0 * x[t])));
  }
  CHECK(worst < 1e-6, "after a burst %s the output is the last model's: "
        "largest difference from tanh(3x) %g", how, worst);
  printf("burst %s: %s; |y - tanh(3x)| <= %.3g\n", how, status, worst);
  free(y);
}

static int count_loads(lv2_host_instance *instance)
{
  lv2_host_log *log = lv2_host_instance_log(instance);
  return lv2_host_log_count(log, LV2_HOST_LOG_NOTE) +
         lv2_host_log_count(log, LV2_HOST_LOG_ERROR);
}

/** How the 50 requests of a burst arrive. */
typedef enum {
  IN_50_RUNS,     ///< One per run, 64 frames apart
  IN_ONE_BUFFER,  ///< All in one control buffer
  RACING,         ///< One per run, the worker catching up every 5th
} burst_kind;

static void send_burst(lv2_host_instance *instance, burst_kind kind,
                       const float *x, float *y)
{
  for (int i = 0; i < 50; ++i) {
    lv2_host_send_patch_set_path(instance, MODEL_URI, burst_model(i));
    if (kind != IN_ONE_BUFFER) {
      run_signal(instance, x + 64 * i, y + 64 * i, 64, 64);
    }
    if (kind == RACING && i % 5 == 4) {
      lv2_host_wait_idle(instance, 10.0);
    }
  }
  if (kind == IN_ONE_BUFFER) {
    run_signal(instance, x, y, 64, 64);
  }
}

static void test_burst(burst_kind kind)
{
  const char *names[] = {"in 50 runs", "in one buffer",
                         "racing the worker"};
  const size_t n = (size_t)(0.5 * RATE);
  float *x = new_signal(n), *y = new_signal(50 * 64);
  make_sine(x, n, 220.0, 0.4);
  lv2_host_instance *instance = open_plugin(MONO_URI, RATE, MAX_BLOCK);
  if (instance && load_settled(instance, fixture.demo_model)) {
    lv2_host_log_clear(lv2_host_instance_log(instance));
    send_burst(instance, kind, x, y);
    CHECK(all_finite(y, 50 * 64), "output during a burst %s is finite",
          names[kind]);
    check_burst_result(instance, names[kind], x, n);
    printf("burst %s: %d of 50 requests were loaded (the others skipped as "
           "superseded)\n", names[kind], count_loads(instance));
  }
  lv2_host_instance_free(instance);
  free(x);
  free(y);
}

/** Requests that finish while a fade is under way: one model fades in,
    one waits, and a newer one replaces the waiting one (which is freed),
    so the last request is running after two fades, not four. */
static void test_queued_swaps(void)
{
  const size_t n = 24000, fade = LOAD_FADE_FRAMES(RATE);
  const char *order[] = {fixture.lstm_model, fixture.demo_model,
                         fixture.lstm_model, fixture.shaper_model};
  float *x = new_signal(n), *y = new_signal(n);
  make_sine(x, n, 220.0, 0.4);
  lv2_host_instance *instance = open_plugin(MONO_URI, RATE, MAX_BLOCK);
  if (!instance || !load_settled(instance, fixture.demo_model)) {
    lv2_host_instance_free(instance);
    free(x);
    free(y);
    return;
  }
  lv2_host_log_clear(lv2_host_instance_log(instance));
  for (size_t k = 0; k < 4; ++k) {  // 64 frames apart, all within one fade
    lv2_host_send_patch_set_path(instance, MODEL_URI, order[k]);
    run_signal(instance, x + 64 * k, y + 64 * k, 64, 64);
    lv2_host_wait_idle(instance, 10.0);
  }
  run_signal(instance, x + 256, y + 256, n - 256, 128);
  size_t settled = n;  // from here on the output is tanh(3x)
  while (settled > 0 && fabs(y[settled - 1] - tanh(3.0 * x[settled - 1])) <=
                          1e-6) {
    --settled;
  }
  const int n_loads = lv2_host_log_count(lv2_host_instance_log(instance),
                                         LV2_HOST_LOG_NOTE);
  CHECK(n_loads == 4, "4 requests, each finished before the next: %d loads",
        n_loads);
  CHECK(settled <= 2 * fade + 256 + 64, "the last of 4 queued models runs "
        "after two fades (%zu frames), not more: %zu frames", 2 * fade,
        settled);
  CHECK(all_finite(y, n), "output finite across queued swaps");
  printf("4 swaps queued within one fade: the last model runs from frame "
         "%zu (two fades: %zu)\n", settled, 2 * fade);
  lv2_host_instance_free(instance);
  free(x);
  free(y);
}

/* ------------------------------------------------------------------------ */
/* The shipped presets */

typedef struct preset_case {
  const char *uri;
  const char *file;    ///< The model file in the bundle
  const char *status;  ///< How the status line starts once it is loaded
  float knob1;         ///< What the preset sets
} preset_case;

static const preset_case shipped_presets[] = {
  {PRESET_URI, "soft-clip.json", "loaded: \"Soft clip (demo)\" LSTM-5", 0.0f},
  {"https://carry.audio/lv2/presets/diode-clipper", "diode-clipper.json",
   "loaded: \"Diode clipper (trained)\" LSTM-16, 1 knob (drive)", 0.5f},
  {"https://carry.audio/lv2/presets/overdrive", "overdrive.json",
   "loaded: \"Overdrive (trained)\" LSTM-32, 2 knobs (drive, tone)", 0.5f},
  {"https://carry.audio/lv2/presets/fuzz", "fuzz.json",
   "loaded: \"Fuzz (trained)\" LSTM-32, 1 knob (fuzz)", 0.5f},
  {"https://carry.audio/lv2/presets/preamp", "preamp.json",
   "loaded: \"Valve preamp with sag (trained)\" LSTM-32, 1 knob (gain)",
   0.5f},
};

static void test_preset(const char *uri, const preset_case *p,
                        bool with_worker)
{
  lv2_host_instance *instance = open_plugin(uri, RATE, MAX_BLOCK);
  if (!instance) {
    return;
  }
  lv2_host_set_control(instance, "knob1", 0.9f);
  lv2_host_set_control(instance, "mix", 0.3f);
  const lv2_host_status applied = lv2_host_preset_apply(instance, p->uri,
                                                        with_worker);
  CHECK(applied == LV2_HOST_SUCCESS, "apply %s: %s", p->uri,
        lv2_host_strerror(applied));
  const char *status = wait_load_status(instance);
  float knob1 = -1.0f, mix = -1.0f;
  lv2_host_get_control(instance, "knob1", &knob1);
  lv2_host_get_control(instance, "mix", &mix);
  CHECK(starts_with(status, p->status), "%s loads %s (%s, %s): '%s'", p->uri,
        p->file, uri, with_worker ? "worker" : "no worker", status);
  char expected[PATH_SIZE];
  snprintf(expected, sizeof(expected), "%s/%s", fixture.bundle_dir, p->file);
  CHECK(same_file(last_value(instance, MODEL_URI), expected),
        "%s's model is the bundle's %s, got '%s'", p->uri, p->file,
        last_value(instance, MODEL_URI));
  CHECK(knob1 == p->knob1 && mix == 1.0f, "%s sets knob1 %g and mix 1: "
        "%g, %g", p->uri, (double)p->knob1, (double)knob1, (double)mix);
  printf("%s on %s (%s): %s\n", p->uri, uri,
         with_worker ? "worker" : "no worker", status);
  lv2_host_instance_free(instance);
}

static void test_presets(void)
{
  const size_t n = sizeof(shipped_presets) / sizeof(shipped_presets[0]);
  for (size_t k = 0; k < n; ++k) {
    test_preset(MONO_URI, &shipped_presets[k], k % 2 == 0);
    test_preset(STEREO_URI, &shipped_presets[k], k % 2 == 1);
  }
}

int main(void)
{
  if (!fixture_set_up()) {
    fixture_tear_down();
    return 99;
  }
  test_discovery();
  test_patch_messages();
  test_status_lines();
  test_long_status_lines();
  test_broken_model_keeps_previous();
  test_broken_model_first();
  test_burst(IN_50_RUNS);
  test_burst(IN_ONE_BUFFER);
  test_burst(RACING);
  test_queued_swaps();
  test_presets();
  fixture_tear_down();
  return test_finish("plugin");
}
