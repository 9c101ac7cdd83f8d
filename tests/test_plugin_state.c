/*
  LV2 state through lilv, as hosts save and restore sessions: the model's
  path saved through state:mapPath (linked, as Ardour does) and restored
  into fresh instances with and without work:schedule, before activation
  (jalv), on a running instance (Ardour), from another thread
  (state:threadSafeRestore), from a session folder that moved, with the
  model file gone, and with no model saved.
*/

#include "test_plugin_common.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/** The Test LSTM's state that test_state_round_trip() saves, which later
    tests restore. */
#define LSTM_STATE "state-plain"

typedef struct restore_job {
  lv2_host_instance *instance;
  const char *dir;
} restore_job;

static void *restore_elsewhere(void *data)
{
  restore_job *job = data;
  lv2_host_state_restore_properties(job->instance, job->dir, true);
  return NULL;
}

/** The original, and its restored copies, run silence until their fades
    (and, for a restore into an active instance, the control glides) are
    done, then the same signal: the outputs must agree within 1e-6 (all sit
    at the model's settled state for the same knobs, which settling reaches
    within 1e-7).  Restored before activate() (as jalv does), the controls
    snap, so the 30 ms load fade is all the silence needed. */
static void check_same_output(lv2_host_instance **instances,
                              const size_t *silence, int n_instances,
                              const char *const *names)
{
  const size_t n = (size_t)RATE;
  float *x = new_signal(n), *y0 = new_signal(n), *y = new_signal(n);
  test_signal(x, n, 21);
  for (int k = 0; k < n_instances; ++k) {
    lv2_host_process(instances[k], NULL, NULL, silence[k], 256);
    run_signal(instances[k], x, k ? y : y0, n, 256);
    if (k) {
      const double diff = test_max_abs_diff(y0, y, n);
      CHECK(diff < 1e-6, "%s: output differs from the original's by %g "
            "after %zu frames of silence", names[k], diff, silence[k]);
      printf("state: %s matches the original within %.3g after %zu frames "
             "of silence\n", names[k], diff, silence[k]);
    }
  }
  free(x);
  free(y0);
  free(y);
}

static void set_state_controls(lv2_host_instance *instance)
{
  lv2_host_set_control(instance, "knob1", 0.25f);
  lv2_host_set_control(instance, "knob2", 0.75f);
  lv2_host_set_control(instance, "input_gain", 3.0f);
  lv2_host_set_control(instance, "mix", 0.8f);
}

static void check_restored(lv2_host_instance *instance, const char *what)
{
  float knob1 = 0.0f, gain = 0.0f, quality = -1.0f;
  const char *status = wait_load_status(instance);
  lv2_host_get_control(instance, "knob1", &knob1);
  lv2_host_get_control(instance, "input_gain", &gain);
  lv2_host_get_control(instance, "quality", &quality);
  CHECK(!strcmp(status, LSTM_STATUS), "%s: status '%s'", what, status);
  CHECK(knob1 == 0.25f && gain == 3.0f, "%s: control values restored", what);
  CHECK(quality == 0.0f, "%s: quality %g, not the default exact (0)", what,
        (double)quality);
  CHECK(same_file(ask(instance, MODEL_URI, MODEL_URI), fixture.lstm_model),
        "%s: patch:Get names the model", what);
}

/** When a host restores: jalv before activate(), Ardour on a running
    instance. */
typedef enum {
  BEFORE_ACTIVATE,
  AFTER_ACTIVATE,
  WHILE_RUNNING,
} restore_moment;

static lv2_host_instance *restore_fresh(const char *dir, bool with_worker,
                                        restore_moment moment)
{
  lv2_host_instance *instance = open_inactive(MONO_URI, RATE, MAX_BLOCK);
  if (!instance) {
    return NULL;
  }
  if (moment != BEFORE_ACTIVATE) {
    lv2_host_activate(instance);
  }
  if (moment == WHILE_RUNNING) {
    lv2_host_process(instance, NULL, NULL, 4096, 256);
  }
  lv2_host_clear_messages(instance);
  CHECK(lv2_host_state_restore(instance, dir, with_worker) == LV2_HOST_SUCCESS,
        "restore from %s", dir);
  lv2_host_activate(instance);
  return instance;
}

#define N_COPIES 7

static void test_state_round_trip(void)
{
  const char *dir = temp_path(LSTM_STATE), *linked = temp_path("state-link");
  const char *externals = temp_path("externals");
  mkdir(dir, 0700);
  mkdir(linked, 0700);
  mkdir(externals, 0700);
  lv2_host_instance *original = open_inactive(MONO_URI, RATE, MAX_BLOCK);
  if (!original) {
    return;
  }
  set_state_controls(original);  // different from the defaults
  lv2_host_activate(original);
  load_settled(original, fixture.lstm_model);
  CHECK(lv2_host_state_save(original, dir, NULL) == LV2_HOST_SUCCESS,
        "save the state to %s", dir);
  CHECK(lv2_host_state_save(original, linked, externals) == LV2_HOST_SUCCESS,
        "save the state to %s, linking through %s", linked, externals);
  lv2_host_instance *all[N_COPIES + 1] = {
    original,
    restore_fresh(dir, true, AFTER_ACTIVATE),
    restore_fresh(dir, false, AFTER_ACTIVATE),
    restore_fresh(dir, true, BEFORE_ACTIVATE),
    restore_fresh(dir, false, BEFORE_ACTIVATE),
    restore_fresh(dir, false, WHILE_RUNNING),
    restore_fresh(dir, true, WHILE_RUNNING),
    restore_fresh(linked, true, AFTER_ACTIVATE),
  };
  const char *names[N_COPIES + 1] = {
    "original",
    "restored with a worker",
    "restored without a worker",
    "restored with a worker before activate()",
    "restored without a worker before activate()",
    "restored without a worker while running",
    "restored with a worker while running",
    "restored through an externals/ link",
  };
  bool has_all = true;
  for (int k = 1; k <= N_COPIES; ++k) {
    has_all = has_all && all[k];
    if (all[k]) {
      check_restored(all[k], names[k]);
    }
  }
  // The fade and a grid cell; half a second for glides to land.
  const size_t fade = 2048, glides = 24000;
  const size_t silence[N_COPIES + 1] = {fade, glides, glides, fade, fade,
                                        glides, glides, glides};
  if (has_all) {
    check_same_output(all, silence, N_COPIES + 1, names);
  }
  for (int k = 0; k <= N_COPIES; ++k) {
    lv2_host_instance_free(all[k]);
  }
}

/** The quality is a port, so the host saves and restores it with the
    others: a state saved at fast restores fast.  (Its outputs are not
    compared: silence run at fast drifts from the state settled at exact,
    within the fast activations' error, so they would depend on how long
    each instance ran silence first.) */
static void test_state_quality(void)
{
  const char *dir = temp_path("state-fast");
  mkdir(dir, 0700);
  lv2_host_instance *original = open_inactive(MONO_URI, RATE, MAX_BLOCK);
  if (!original) {
    return;
  }
  lv2_host_set_control(original, "quality", 1.0f);
  lv2_host_activate(original);
  load_settled(original, fixture.lstm_model);
  CHECK(lv2_host_state_save(original, dir, NULL) == LV2_HOST_SUCCESS,
        "save the state to %s", dir);
  lv2_host_instance_free(original);
  const restore_moment moments[] = {BEFORE_ACTIVATE, WHILE_RUNNING};
  for (size_t k = 0; k < sizeof(moments) / sizeof(moments[0]); ++k) {
    lv2_host_instance *restored = restore_fresh(dir, true, moments[k]);
    float quality = -1.0f;
    if (restored) {
      lv2_host_get_control(restored, "quality", &quality);
      CHECK(quality == 1.0f, "a state saved at fast restores quality %g",
            (double)quality);
      CHECK(!strcmp(wait_load_status(restored), LSTM_STATUS),
            "the state saved at fast loads its model");
    }
    lv2_host_instance_free(restored);
  }
  printf("state: the quality port is saved and restored (fast)\n");
}

/** The plugin declares state:threadSafeRestore: restore() from another
    thread while the audio thread runs loads the model, without a crash. */
static void test_state_concurrent_restore(void)
{
  const char *dir = temp_path(LSTM_STATE);
  lv2_host_instance *instance = open_plugin(MONO_URI, RATE, MAX_BLOCK);
  if (!instance) {
    return;
  }
  restore_job job = {instance, dir};
  pthread_t thread;
  const bool has_thread = !pthread_create(&thread, NULL, restore_elsewhere,
                                          &job);
  CHECK(has_thread, "start a restore thread");
  for (int k = 0; has_thread && k < 200; ++k) {
    lv2_host_run(instance, NULL, NULL, 64);
  }
  if (has_thread) {
    pthread_join(thread, NULL);
  }
  const char *status = wait_load_status(instance);
  CHECK(!strcmp(status, LSTM_STATUS), "restored from another thread "
        "during run(): '%s'", status);
  lv2_host_instance_free(instance);
}

/** A state whose model file was removed restores to an error status. */
static void test_state_missing_file(void)
{
  const char *model = temp_path("vanishing.json");
  const char *dir = temp_path("state-vanished");
  mkdir(dir, 0700);
  lv2_host_instance *original = open_plugin(STEREO_URI, RATE, MAX_BLOCK);
  if (!original || !copy_file(fixture.demo_model, model)) {
    CHECK(false, "set up the vanishing model");
    lv2_host_instance_free(original);
    return;
  }
  load_settled(original, model);
  lv2_host_state_save(original, dir, NULL);
  remove(model);
  for (int k = 0; k < 3; ++k) {
    lv2_host_instance *instance = open_plugin(STEREO_URI, RATE, MAX_BLOCK);
    if (!instance) {
      continue;
    }
    if (k == 2) {
      load_settled(instance, fixture.lstm_model);
      lv2_host_clear_messages(instance);
    }
    lv2_host_state_restore(instance, dir, k != 1);
    const char *status = wait_load_status(instance);
    CHECK(starts_with(status, "error: ") && strstr(status, "vanishing.json") &&
          ends_with(status, k == 2 ? KEPT : NONE_LOADED),
          "restore with the model file gone (%s): '%s'",
          k == 1 ? "no worker" : "worker", status);
    printf("restore, model file gone: %s\n", status);
    lv2_host_instance_free(instance);
  }
  lv2_host_instance_free(original);
}

/** A session folder moved after saving, with the model inside it: the
    state holds a path relative to the folder (state:mapPath), so the
    model is found in the new place. */
static void test_state_moved_folder(void)
{
  const char *folder = temp_path("session"), *moved = temp_path("moved");
  char model[PATH_SIZE], moved_model[PATH_SIZE + 32];
  mkdir(folder, 0700);
  snprintf(model, sizeof(model), "%s", temp_path("session/model.json"));
  snprintf(moved_model, sizeof(moved_model), "%s/model.json", moved);
  lv2_host_instance *original = open_plugin(STEREO_URI, RATE, MAX_BLOCK);
  if (!original || !copy_file(fixture.lstm_model, model)) {
    CHECK(false, "set up the session folder");
    lv2_host_instance_free(original);
    return;
  }
  load_settled(original, model);
  lv2_host_state_save(original, folder, NULL);
  lv2_host_instance_free(original);
  CHECK(rename(folder, moved) == 0, "move the session folder");
  lv2_host_instance *instance = open_plugin(STEREO_URI, RATE, MAX_BLOCK);
  if (instance) {
    lv2_host_clear_messages(instance);
    lv2_host_state_restore(instance, moved, false);
    const char *status = wait_load_status(instance);
    CHECK(!strcmp(status, LSTM_STATUS), "restored from a moved folder: "
          "'%s'", status);
    CHECK(same_file(ask(instance, MODEL_URI, MODEL_URI), moved_model),
          "the model is found in the moved folder: '%s'",
          last_value(instance, MODEL_URI));
    printf("state: session folder moved, model found at %s\n",
           last_value(instance, MODEL_URI));
  }
  lv2_host_instance_free(instance);
}

/** A state saved with no model restores without an error; into an
    instance running a model, it keeps that model running. */
static void test_state_without_model(void)
{
  const char *dir = temp_path("state-empty");
  mkdir(dir, 0700);
  lv2_host_instance *empty = open_plugin(MONO_URI, RATE, MAX_BLOCK);
  lv2_host_instance *fresh = open_plugin(MONO_URI, RATE, MAX_BLOCK);
  if (empty && fresh) {
    lv2_host_run(empty, NULL, NULL, 64);
    CHECK(lv2_host_state_save(empty, dir, NULL) == LV2_HOST_SUCCESS,
          "save a state with no model");
    lv2_host_state_restore(fresh, dir, true);
    lv2_host_process(fresh, NULL, NULL, 4096, 256);
    lv2_host_wait_idle(fresh, 10.0);
    const char *status = ask(fresh, STATUS_URI, STATUS_URI);
    CHECK(!strcmp(status, NO_MODEL_STATUS), "a state with no model "
          "restores without an error: '%s'", status);
  }
  lv2_host_instance_free(empty);
  lv2_host_instance_free(fresh);
}

/** Two restores without a worker before run() takes the first: the
    second's model is the one that runs, and the first's is freed (the
    sanitizer build's leak check). */
static void test_state_restores_in_a_row(void)
{
  const char *first = temp_path("state-first");
  mkdir(first, 0700);
  lv2_host_instance *instance = open_plugin(MONO_URI, RATE, MAX_BLOCK);
  if (!instance || !load_settled(instance, fixture.shaper_model)) {
    lv2_host_instance_free(instance);
    return;
  }
  lv2_host_state_save(instance, first, NULL);
  lv2_host_instance_free(instance);
  instance = open_plugin(MONO_URI, RATE, MAX_BLOCK);
  if (instance) {
    lv2_host_run(instance, NULL, NULL, 64);
    lv2_host_clear_messages(instance);
    lv2_host_state_restore(instance, first, false);
    lv2_host_state_restore(instance, temp_path(LSTM_STATE), false);
    const char *status = wait_load_status(instance);
    lv2_host_process(instance, NULL, NULL, 4096, 256);
    CHECK(!strcmp(status, LSTM_STATUS) &&
          same_file(ask(instance, MODEL_URI, MODEL_URI), fixture.lstm_model),
          "two restores in a row: the second wins: '%s'", status);
  }
  lv2_host_instance_free(instance);
}

/** Saves `instance` to a new directory `name`, restores that into a fresh
    stereo instance, and returns the fresh one (to free) with its status. */
static lv2_host_instance *save_and_restore(lv2_host_instance *instance,
                                           const char *name,
                                           const char **status)
{
  const char *dir = temp_path(name);
  mkdir(dir, 0700);
  CHECK(lv2_host_state_save(instance, dir, NULL) == LV2_HOST_SUCCESS,
        "save to %s", dir);
  lv2_host_instance *copy = open_plugin(STEREO_URI, RATE, MAX_BLOCK);
  if (copy) {
    lv2_host_state_restore(copy, dir, true);
    *status = wait_load_status(copy);
  }
  return copy;
}

/** Saving after a failed load stores the model still running; saving
    after restoring a session whose model file is missing stores that
    file's path still, so the session works again once it is back. */
static void test_state_after_failures(void)
{
  const char *status = "";
  const char *model = temp_path("comes-back.json");
  lv2_host_instance *instance = open_plugin(STEREO_URI, RATE, MAX_BLOCK);
  if (!instance || !load_settled(instance, fixture.lstm_model) ||
      !copy_file(fixture.demo_model, model)) {
    lv2_host_instance_free(instance);
    return;
  }
  lv2_host_clear_messages(instance);
  lv2_host_send_patch_set_path(instance, MODEL_URI, fixture.bad_model);
  wait_load_status(instance);
  lv2_host_instance *copy = save_and_restore(instance, "after-bad", &status);
  CHECK(!strcmp(status, LSTM_STATUS), "saved after a failed load: the "
        "running model is restored: '%s'", status);
  lv2_host_instance_free(copy);
  load_settled(instance, model);
  lv2_host_instance *gone = save_and_restore(instance, "comes-back", &status);
  remove(model);
  lv2_host_instance_free(gone);
  gone = save_and_restore(instance, "comes-back", &status);
  CHECK(starts_with(status, "error: ") && ends_with(status, NONE_LOADED),
        "restored with the file gone: '%s'", status);
  lv2_host_instance *again = gone ? save_and_restore(gone, "saved-again",
                                                     &status)
                                  : NULL;
  CHECK(copy_file(fixture.demo_model, model), "the file comes back");
  lv2_host_instance_free(again);
  again = open_plugin(STEREO_URI, RATE, MAX_BLOCK);
  if (again) {
    lv2_host_state_restore(again, temp_path("saved-again"), false);
    status = wait_load_status(again);
    CHECK(starts_with(status, "loaded: \"Soft clip (demo)\""), "a session "
          "saved while its model was missing loads it once it is back: "
          "'%s'", status);
    printf("state: saved while the model was missing, restored once it is "
           "back: %s\n", status);
  }
  lv2_host_instance_free(again);
  lv2_host_instance_free(gone);
  lv2_host_instance_free(instance);
}

/** A model whose path has spaces, quotes, '#' and non-ASCII letters goes
    through patch:Set, notify, and state (Turtle) unchanged. */
static void test_state_odd_path(void)
{
  const char *dir = temp_path("Amp models (2)");
  char model[PATH_SIZE];
  mkdir(dir, 0700);
  snprintf(model, sizeof(model), "%s",
           temp_path("Amp models (2)/Vox \"AC30\" \xe2\x80\x94 cr\xc3\xbcnch "
                     "#2 100%.json"));
  lv2_host_instance *instance = open_plugin(MONO_URI, RATE, MAX_BLOCK);
  if (!instance || !copy_file(fixture.lstm_model, model)) {
    CHECK(false, "set up a model with an odd path");
    lv2_host_instance_free(instance);
    return;
  }
  char status[STATUS_SIZE];
  load_model(instance, model, status, sizeof(status), 4096);
  CHECK(!strcmp(status, LSTM_STATUS) &&
        !strcmp(last_value(instance, MODEL_URI), model),
        "an odd path loads and is reported as it is: '%s'",
        last_value(instance, MODEL_URI));
  const char *restored = "";
  lv2_host_instance *copy = save_and_restore(instance, "odd-path", &restored);
  CHECK(!strcmp(restored, LSTM_STATUS) && copy &&
        same_file(ask(copy, MODEL_URI, MODEL_URI), model),
        "an odd path survives state: '%s'", restored);
  printf("state: odd path %s\n", model);
  lv2_host_instance_free(copy);
  lv2_host_instance_free(instance);
}

/** The Test LSTM with slow cells: forget gates near 1 (bias 7, a time
    constant of about 1100 samples) and small input gates (bias -6), so
    that the settled state depends on the knobs and takes a while to move
    without saturating. */
static bool make_slow_model(const char *path)
{
  carry_error err;
  carry_model *model = carry_model_load(fixture.lstm_model, &err);
  if (!model) {
    return false;
  }
  carry_layer_weights lstm = carry_model_layer(model, 0);
  for (int j = 0; j < lstm.n_units; ++j) {
    lstm.bias[j] = -6.0f;                 // input gate
    lstm.bias[lstm.n_units + j] = 7.0f;   // forget gate
  }
  const bool ok = carry_model_prepare(model, &err) == CARRY_SUCCESS &&
                  carry_model_save(model, path, &err) == CARRY_SUCCESS;
  carry_model_free(model);
  return ok;
}

/** Restored before activate() (jalv), with knobs away from the model's
    defaults, with and without a worker: once the 30 ms load fade is over
    the output must be the original's within 1e-6, which needs the streams
    settled with the restored knob values (lilv sets the ports only after
    restore()). */
static void test_state_settles_with_restored_knobs(void)
{
  const char *model = temp_path("slow.json"), *dir = temp_path("state-slow");
  const size_t n = 48000, fade = 2048;
  mkdir(dir, 0700);
  lv2_host_instance *all[3] = {open_unity(MONO_URI, 0.25f, 0.75f, 0.5f),
                               open_inactive(MONO_URI, RATE, MAX_BLOCK),
                               open_inactive(MONO_URI, RATE, MAX_BLOCK)};
  float *x = new_signal(n), *y[3] = {new_signal(n), new_signal(n),
                                     new_signal(n)};
  test_signal(x, n, 23);
  if (all[0] && all[1] && all[2] &&
      CHECK(make_slow_model(model), "make the slow model") &&
      load_settled(all[0], model)) {
    lv2_host_state_save(all[0], dir, NULL);
    for (int k = 0; k < 3; ++k) {
      if (k) {
        lv2_host_state_restore(all[k], dir, k == 2);
        lv2_host_activate(all[k]);
        CHECK(!strcmp(wait_load_status(all[k]), LSTM_STATUS),
              "the slow model is restored");
      }
      lv2_host_process(all[k], NULL, NULL, fade, 256);
      run_signal(all[k], x, y[k], n, 256);
    }
    for (int k = 1; k < 3; ++k) {
      const double diff = test_max_abs_diff(y[0], y[k], n);
      CHECK(diff < 1e-6, "slow model restored %s a worker with knobs 0.25, "
            "0.75: output differs from the original's by %g after the load "
            "fade", k == 2 ? "with" : "without", diff);
      printf("state: slow model, knobs away from the defaults, restored %s a "
             "worker: within %.3g of the original after the load fade\n",
             k == 2 ? "with" : "without", diff);
    }
  }
  for (int k = 0; k < 3; ++k) {
    lv2_host_instance_free(all[k]);
    free(y[k]);
  }
  free(x);
}

int main(void)
{
  if (!fixture_set_up()) {
    fixture_tear_down();
    return 99;
  }
  test_state_round_trip();
  test_state_quality();
  test_state_concurrent_restore();
  test_state_missing_file();
  test_state_moved_folder();
  test_state_without_model();
  test_state_restores_in_a_row();
  test_state_after_failures();
  test_state_odd_path();
  test_state_settles_with_restored_knobs();
  fixture_tear_down();
  return test_finish("plugin_state");
}
