/*
  What careless or unusual hosts do to the plugin: run() with 0 frames,
  missing features, no options, blocks of 1 and of the maximum, in-place
  buffers, several instances side by side, sample rates from 22050 to
  192000 Hz, malformed messages, wild control values, the host's
  floating-point mode, and instances freed with loads in flight.
*/

#define _GNU_SOURCE

#include "test_plugin_common.h"

#include <lv2/atom/forge.h>
#include <lv2/patch/patch.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/** run() with 0 frames before, during and after a load; a patch:Set and a
    patch:Get sent with a 0-frame run are not lost. */
static void test_zero_frames(void)
{
  lv2_host_instance *instance = open_plugin(MONO_URI, RATE, MAX_BLOCK);
  if (!instance) {
    return;
  }
  for (int k = 0; k < 3; ++k) {
    lv2_host_run(instance, NULL, NULL, 0);
  }
  lv2_host_send_patch_set_path(instance, MODEL_URI, fixture.lstm_model);
  lv2_host_run(instance, NULL, NULL, 0);
  lv2_host_wait_idle(instance, 10.0);
  lv2_host_run(instance, NULL, NULL, 0);
  lv2_host_run(instance, NULL, NULL, 0);
  const char *status = wait_load_status(instance);
  CHECK(!strcmp(status, LSTM_STATUS), "a patch:Set in a 0-frame run loads: "
        "'%s'", status);
  lv2_host_clear_messages(instance);
  lv2_host_send_patch_get(instance, STATUS_URI);
  lv2_host_run(instance, NULL, NULL, 0);
  lv2_host_run(instance, NULL, NULL, 0);
  CHECK(!strcmp(last_value(instance, STATUS_URI), LSTM_STATUS),
        "a patch:Get in a 0-frame run is answered");
  float latency = -1.0f;
  lv2_host_get_control(instance, "latency", &latency);
  CHECK(latency == 0.0f, "latency port: %g", (double)latency);
  lv2_host_instance_free(instance);
}

static lv2_host_status try_instance(unsigned omit, lv2_host_log *log,
                                    lv2_host_instance **instance)
{
  const lv2_host_config config = {.plugin_uri = MONO_URI, .sample_rate = RATE,
                                  .max_block = MAX_BLOCK, .omit = omit,
                                  .log = log, .is_quiet = true};
  return lv2_host_instance_new(fixture.host, &config, instance);
}

/** Without urid:map a plugin cannot map log:Error, so any type counts. */
static void check_refused(unsigned omit, const char *feature,
                          lv2_host_log_type type, const char *needle)
{
  lv2_host_log *log = lv2_host_log_new(false);
  lv2_host_instance *instance = NULL;
  const lv2_host_status status = try_instance(omit, log, &instance);
  char said[1024] = "";
  CHECK(status == LV2_HOST_ERR_INSTANTIATE && !instance,
        "instantiate without %s returns NULL", feature);
  CHECK(lv2_host_log_find(log, type, needle, said, sizeof(said)),
        "instantiate without %s logs an error naming '%s'", feature, needle);
  CHECK(lv2_host_log_count(log, LV2_HOST_LOG_ANY) == 1,
        "instantiate without %s logs one message, the reason, not %d",
        feature, lv2_host_log_count(log, LV2_HOST_LOG_ANY));
  printf("without %s: NULL, logged: %s", feature, said[0] ? said : "-\n");
  lv2_host_instance_free(instance);
  lv2_host_log_free(log);
}

static void test_missing_features(void)
{
  check_refused(LV2_HOST_OMIT_URID_MAP, "urid:map", LV2_HOST_LOG_ANY,
                "urid:map");
  check_refused(LV2_HOST_OMIT_WORKER, "work:schedule", LV2_HOST_LOG_ERROR,
                "work:schedule");
  lv2_host_instance *instance = NULL;
  CHECK(try_instance(LV2_HOST_OMIT_URID_MAP | LV2_HOST_OMIT_WORKER |
                       LV2_HOST_OMIT_LOG, NULL, &instance) ==
          LV2_HOST_ERR_INSTANTIATE,
        "instantiate with no features at all returns NULL");
  lv2_host_instance_free(instance);
  CHECK(try_instance(LV2_HOST_OMIT_LOG | LV2_HOST_OMIT_OPTIONS |
                       LV2_HOST_OMIT_BOUNDED, NULL, &instance) ==
          LV2_HOST_SUCCESS,
        "instantiate without log, options or boundedBlockLength works");
  lv2_host_instance_free(instance);
}

/** Without options the plugin does not know the longest block: blocks of
    any length still give the same output as with them. */
static void test_without_options(void)
{
  const size_t n = 3 * 8192;
  const lv2_host_config config = {.plugin_uri = MONO_URI, .sample_rate = RATE,
                                  .max_block = 8192,
                                  .omit = LV2_HOST_OMIT_OPTIONS,
                                  .is_quiet = true};
  lv2_host_instance *bare = NULL;
  lv2_host_instance *normal = open_plugin(MONO_URI, RATE, MAX_BLOCK);
  lv2_host_instance_new(fixture.host, &config, &bare);
  float *x = new_signal(n), *y = new_signal(n), *y_bare = new_signal(n);
  test_signal(x, n, 17);
  if (CHECK(bare != NULL, "instantiate without options") && normal) {
    lv2_host_activate(bare);
    load_settled(bare, fixture.demo_model);
    load_settled(normal, fixture.demo_model);
    run_signal(normal, x, y, n, 256);
    run_signal(bare, x, y_bare, n, 8192);
    const double diff = test_max_abs_diff(y, y_bare, n);
    CHECK(diff == 0.0, "without options, blocks of 8192: output differs by "
          "%g", diff);
  }
  lv2_host_instance_free(bare);
  lv2_host_instance_free(normal);
  free(x);
  free(y);
  free(y_bare);
}

/** The stereo plugin's output for `in` with the buffers laid out as
    `layout`, into `out`. */
static void run_laid_out(lv2_host_buffers layout, const float *const *in,
                         float *const *out, size_t n)
{
  lv2_host_instance *instance = open_plugin(STEREO_URI, RATE, MAX_BLOCK);
  if (instance) {
    lv2_host_set_buffers(instance, layout);
    load_settled(instance, fixture.lstm_model);
    lv2_host_process(instance, in, out, n, 333);
  }
  lv2_host_instance_free(instance);
}

/** Hosts that process in place (output buffer = input buffer), or feed
    one mono buffer to both inputs with the left output on it too, get the
    output of separate buffers: the plugin reads every input before it
    writes an output. */
static void test_buffer_layouts(void)
{
  const size_t n = 20000;
  float *in[2] = {new_signal(n), new_signal(n)};
  float *apart[2] = {new_signal(n), new_signal(n)};
  float *out[2] = {new_signal(n), new_signal(n)};
  test_signal(in[0], n, 4);
  make_sine(in[1], n, 330.0, 0.3);
  run_laid_out(LV2_HOST_BUFFERS_APART, (const float *const *)in, apart, n);
  run_laid_out(LV2_HOST_BUFFERS_IN_PLACE, (const float *const *)in, out, n);
  const double in_place = fmax(test_max_abs_diff(apart[0], out[0], n),
                               test_max_abs_diff(apart[1], out[1], n));
  CHECK(in_place == 0.0, "in-place buffers: output differs by %g", in_place);
  const float *mono[2] = {in[0], in[0]};
  run_laid_out(LV2_HOST_BUFFERS_APART, mono, apart, n);
  run_laid_out(LV2_HOST_BUFFERS_SHARED, mono, out, n);
  const double shared = fmax(test_max_abs_diff(apart[0], out[0], n),
                             test_max_abs_diff(apart[1], out[1], n));
  CHECK(shared == 0.0, "one buffer for both inputs and the left output: "
        "output differs by %g", shared);
  printf("buffers in place, and one buffer for both inputs and an output: "
         "same output as separate buffers\n");
  for (int c = 0; c < 2; ++c) {
    free(in[c]);
    free(apart[c]);
    free(out[c]);
  }
}

/* Several instances side by side */

typedef struct side_by_side {
  const char *uri;
  const char *model;
  float knob1;
} side_by_side;

#define N_SIDE 6

static int n_channels_of(const side_by_side *setup)
{
  return strcmp(setup->uri, STEREO_URI) ? 1 : 2;
}

/** All six at once: loads requested together, then blocks of random
    sizes interleaved. */
static void run_together(const side_by_side *setups, float **outputs,
                         const float *const *in, size_t n)
{
  lv2_host_instance *instances[N_SIDE];
  uint64_t seeds[N_SIDE];
  for (int k = 0; k < N_SIDE; ++k) {
    instances[k] = open_unity(setups[k].uri, setups[k].knob1, 0.5f, 0.5f);
    lv2_host_send_patch_set_path(instances[k], MODEL_URI, setups[k].model);
    lv2_host_run(instances[k], NULL, NULL, 64);
    seeds[k] = (uint64_t)k + 1;
  }
  for (int k = 0; k < N_SIDE; ++k) {
    CHECK(starts_with(wait_load_status(instances[k]), "loaded: "),
          "instance %d loaded its model", k);
    lv2_host_process(instances[k], NULL, NULL, (size_t)(0.1 * RATE), 256);
    lv2_host_wait_idle(instances[k], 10.0);
  }
  for (size_t t = 0; t < n; t += 1024) {
    for (int k = 0; k < N_SIDE; ++k) {
      const float *at_in[2] = {in[0] + t, in[1] + t};
      float *at_out[2] = {outputs[2 * k] + t, outputs[2 * k + 1] + t};
      lv2_host_process_random(instances[k], at_in, at_out, 1024, &seeds[k]);
    }
  }
  for (int k = 0; k < N_SIDE; ++k) {
    lv2_host_instance_free(instances[k]);
  }
}

/** One at a time, each alone in the process. */
static void run_alone(const side_by_side *setup, float **outputs,
                      const float *const *in, size_t n)
{
  lv2_host_instance *instance = open_unity(setup->uri, setup->knob1, 0.5f,
                                           0.5f);
  load_settled(instance, setup->model);
  lv2_host_process(instance, in, outputs, n, 256);
  lv2_host_instance_free(instance);
}

static void test_side_by_side(void)
{
  const side_by_side setups[N_SIDE] = {
    {MONO_URI, fixture.demo_model, 0.0f},
    {MONO_URI, fixture.demo_model, 1.0f},
    {MONO_URI, fixture.lstm_model, 0.3f},
    {MONO_URI, fixture.gru_model, 0.5f},
    {STEREO_URI, fixture.lstm_model, 0.6f},
    {STEREO_URI, fixture.shaper_model, 0.5f},
  };
  const size_t n = 16 * 1024;
  float *left = new_signal(n), *right = new_signal(n);
  float *together[2 * N_SIDE], *alone[2 * N_SIDE];
  test_signal(left, n, 31);
  make_sine(right, n, 330.0, 0.3);
  for (int k = 0; k < 2 * N_SIDE; ++k) {
    together[k] = new_signal(n);
    alone[k] = new_signal(n);
  }
  const float *in[2] = {left, right};
  run_together(setups, together, in, n);
  for (int k = 0; k < N_SIDE; ++k) {
    run_alone(&setups[k], alone + 2 * k, in, n);
    double diff = 0.0;
    for (int c = 0; c < n_channels_of(&setups[k]); ++c) {
      diff = fmax(diff, test_max_abs_diff(together[2 * k + c],
                                          alone[2 * k + c], n));
    }
    CHECK(diff == 0.0, "instance %d side by side differs from running alone "
          "by %g", k, diff);
    CHECK(k == 0 || test_max_abs_diff(together[0], together[2 * k], n) > 1e-3,
          "instance %d's output differs from instance 0's", k);
  }
  printf("6 instances (4 mono, 2 stereo; 4 models) side by side: each "
         "equals its run alone\n");
  for (int k = 0; k < 2 * N_SIDE; ++k) {
    free(together[k]);
    free(alone[k]);
  }
  free(left);
  free(right);
}

/** Sample rates from 22050 to 192000 Hz instantiate and run the 48000 Hz
    demo model, resampled by default, and say so. */
static void test_sample_rates(void)
{
  const double rates[] = {22050.0, 44100.0, 48000.0, 96000.0, 192000.0};
  const size_t n = 24000;
  float *x = new_signal(n), *y = new_signal(n);
  test_signal(x, n, 12);
  for (size_t k = 0; k < sizeof(rates) / sizeof(rates[0]); ++k) {
    char status[STATUS_SIZE], expected[64];
    lv2_host_instance *instance = open_plugin(STEREO_URI, rates[k], 1024);
    if (!instance) {
      continue;
    }
    load_model(instance, fixture.demo_model, status, sizeof(status),
               (size_t)(0.1 * rates[k]));
    snprintf(expected, sizeof(expected), "model 48000 Hz, host %.0f Hz: ",
             rates[k]);
    CHECK(rates[k] == 48000.0 ? ends_with(status, "48000 Hz")
                              : strstr(status, expected) != NULL,
          "at %.0f Hz: '%s'", rates[k], status);
    run_signal(instance, x, y, n, 1024);
    CHECK(all_finite(y, n) && test_max_abs_diff(x, y, n) > 1e-3,
          "at %.0f Hz the model runs", rates[k]);
    printf("%.0f Hz: %s\n", rates[k], status);
    lv2_host_instance_free(instance);
  }
  free(x);
  free(y);
}

/* Malformed messages */

static void send_forged(lv2_host_instance *instance, LV2_Atom_Forge *forge,
                        uint8_t *buffer)
{
  (void)forge;
  lv2_host_send_atom(instance, (const LV2_Atom *)buffer);
}

/** Forges a patch:Set of `property` whose value is written by `kind`:
    0 none, 1 an atom:String path, 2 an atom:Int, 3 an empty path. */
static void send_odd_set(lv2_host_instance *instance, const char *property,
                         int kind)
{
  uint8_t buffer[1024];
  LV2_Atom_Forge forge;
  LV2_Atom_Forge_Frame frame;
  LV2_URID_Map *map = lv2_host_urid_map(fixture.host);
  lv2_atom_forge_init(&forge, map);
  lv2_atom_forge_set_buffer(&forge, buffer, sizeof(buffer));
  lv2_atom_forge_object(&forge, &frame, 0, map->map(map->handle,
                                                    LV2_PATCH__Set));
  lv2_atom_forge_key(&forge, map->map(map->handle, LV2_PATCH__property));
  lv2_atom_forge_urid(&forge, map->map(map->handle, property));
  if (kind) {
    lv2_atom_forge_key(&forge, map->map(map->handle, LV2_PATCH__value));
  }
  if (kind == 1) {
    lv2_atom_forge_string(&forge, fixture.shaper_model,
                          (uint32_t)strlen(fixture.shaper_model));
  } else if (kind == 2) {
    lv2_atom_forge_int(&forge, 42);
  } else if (kind == 3) {
    lv2_atom_forge_path(&forge, "", 0);
  }
  lv2_atom_forge_pop(&forge, &frame);
  send_forged(instance, &forge, buffer);
}

static void send_odd_atoms(lv2_host_instance *instance)
{
  uint8_t buffer[1024];
  LV2_Atom_Forge forge;
  LV2_Atom_Forge_Frame frame;
  LV2_URID_Map *map = lv2_host_urid_map(fixture.host);
  lv2_atom_forge_init(&forge, map);
  lv2_atom_forge_set_buffer(&forge, buffer, sizeof(buffer));
  lv2_atom_forge_int(&forge, 7);  // not an object
  send_forged(instance, &forge, buffer);
  lv2_atom_forge_set_buffer(&forge, buffer, sizeof(buffer));
  lv2_atom_forge_object(&forge, &frame, 0,
                        map->map(map->handle, LV2_PATCH__Patch));
  lv2_atom_forge_pop(&forge, &frame);
  send_forged(instance, &forge, buffer);
  char *long_path = malloc(5000);
  if (long_path) {
    memset(long_path, 'a', 4999);
    long_path[0] = '/';
    long_path[4999] = '\0';
    lv2_host_send_patch_set_path(instance, MODEL_URI, long_path);
    free(long_path);
  }
  lv2_host_send_patch_get(instance, CARRY_NS "noSuchProperty");
}

/** Messages a sloppy host or UI might send are ignored: the model and the
    output stay as they were. */
static void test_malformed_messages(void)
{
  const size_t n = 8192;
  lv2_host_instance *instance = open_plugin(MONO_URI, RATE, MAX_BLOCK);
  lv2_host_instance *twin = open_plugin(MONO_URI, RATE, MAX_BLOCK);
  float *x = new_signal(n), *y = new_signal(n), *y_twin = new_signal(n);
  test_signal(x, n, 8);
  if (instance && twin && load_settled(instance, fixture.lstm_model) &&
      load_settled(twin, fixture.lstm_model)) {
    send_odd_set(instance, MODEL_URI, 0);
    send_odd_set(instance, MODEL_URI, 2);
    send_odd_set(instance, MODEL_URI, 3);
    send_odd_set(instance, CARRY_NS "noSuchProperty", 1);
    send_odd_set(instance, STATUS_URI, 1);  // readable only
    send_odd_atoms(instance);
    run_signal(instance, x, y, n, 256);
    run_signal(twin, x, y_twin, n, 256);
    lv2_host_wait_idle(instance, 10.0);
    const double diff = test_max_abs_diff(y, y_twin, n);
    CHECK(diff == 0.0, "malformed messages leave the output alone (differs "
          "by %g)", diff);
    CHECK(!strcmp(ask(instance, MODEL_URI, MODEL_URI), fixture.lstm_model),
          "malformed messages leave the model alone");
  }
  lv2_host_instance_free(instance);
  lv2_host_instance_free(twin);
  free(x);
  free(y);
  free(y_twin);
}

/** Control ports holding NaN, infinities or values out of range give
    finite output. */
static void test_wild_controls(void)
{
  const char *symbols[] = {"input_gain", "output_gain", "mix", "knob1",
                           "knob2", "enabled", "quality"};
  const float resets[] = {0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 1.0f, 0.0f};
  const size_t n_symbols = sizeof(symbols) / sizeof(symbols[0]);
  const float values[] = {NAN, INFINITY, -INFINITY, 1e30f, -1e30f};
  const size_t n = 4096;
  float *x = new_signal(n), *y = new_signal(n);
  test_signal(x, n, 2);
  lv2_host_instance *instance = open_plugin(MONO_URI, RATE, MAX_BLOCK);
  bool is_finite = instance && load_settled(instance, fixture.lstm_model);
  for (size_t s = 0; is_finite && s < n_symbols; ++s) {
    for (size_t v = 0; v < 5; ++v) {
      lv2_host_set_control(instance, symbols[s], values[v]);
      run_signal(instance, x, y, n, 512);
      is_finite = is_finite && all_finite(y, n);
    }
    lv2_host_set_control(instance, symbols[s], resets[s]);
  }
  CHECK(is_finite, "wild control values give finite output");
  lv2_host_instance_free(instance);
  free(x);
  free(y);
}

/** A restore() without a worker leaves its engine for the next run(),
    which never comes. */
static void free_with_engine_in_mailbox(void)
{
  const char *dir = temp_path("state-hostile");
  mkdir(dir, 0700);
  lv2_host_instance *saved = open_plugin(STEREO_URI, RATE, MAX_BLOCK);
  if (saved && load_settled(saved, fixture.lstm_model)) {
    lv2_host_state_save(saved, dir, NULL);
  }
  lv2_host_instance_free(saved);
  lv2_host_instance *instance = open_plugin(STEREO_URI, RATE, MAX_BLOCK);
  if (instance) {
    lv2_host_run(instance, NULL, NULL, 64);
    lv2_host_state_restore(instance, dir, false);
  }
  lv2_host_instance_free(instance);
}

/** Freed with a load in flight and responses never delivered (as jalv and
    Ardour drop them): the sanitizer build's leak check sees the rest. */
static void test_free_while_loading(void)
{
  free_with_engine_in_mailbox();
  for (int k = 0; k < 3; ++k) {
    lv2_host_instance *instance = open_plugin(STEREO_URI, RATE, MAX_BLOCK);
    if (instance) {
      lv2_host_send_patch_set_path(instance, MODEL_URI, fixture.lstm_model);
      lv2_host_run(instance, NULL, NULL, 64);
      if (k == 1) {  // loaded and fading in, then freed
        wait_load_status(instance);
      }
      if (k == 2) {  // a response queued, never delivered
        lv2_host_send_patch_set_path(instance, MODEL_URI, fixture.demo_model);
        lv2_host_run(instance, NULL, NULL, 64);
        usleep(200000);
      }
    }
    lv2_host_instance_free(instance);
  }
  printf("freed 4 instances with loads in flight (leaks: see the sanitizer "
         "build)\n");
}

/** The longest and the shortest blocks a host may announce: an instance
    told 1 frame and run 1 at a time, and one told 4096 and run 4096 at a
    time, give the output of blocks of 256. */
static void test_block_extremes(void)
{
  const size_t n = 3 * MAX_BLOCK;
  const uint32_t max_blocks[] = {256, 1, MAX_BLOCK};
  float *x = new_signal(n), *y[3];
  test_signal(x, n, 6);
  for (int k = 0; k < 3; ++k) {
    y[k] = new_signal(n);
    lv2_host_instance *instance = open_plugin(STEREO_URI, RATE, max_blocks[k]);
    if (instance) {
      load_settled(instance, fixture.demo_model);
      run_signal(instance, x, y[k], n, max_blocks[k]);
    }
    lv2_host_instance_free(instance);
  }
  for (int k = 1; k < 3; ++k) {
    const double diff = test_max_abs_diff(y[0], y[k], n);
    CHECK(diff == 0.0, "maxBlockLength %u, blocks of %u: differs from "
          "blocks of 256 by %g", max_blocks[k], max_blocks[k], diff);
  }
  printf("maxBlockLength 1 and %u, run at that length: same output as "
         "blocks of 256\n", MAX_BLOCK);
  free(x);
  for (int k = 0; k < 3; ++k) {
    free(y[k]);
  }
}

#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>

/** MXCSR without the sticky exception flags (bits 0-5): the host's
    rounding, flush-to-zero and denormals-are-zero settings. */
static unsigned fp_mode(void)
{
  return _mm_getcsr() & ~0x3Fu;
}

/** run() flushes denormals for itself and gives the host its own
    floating-point mode back, whatever it was. */
static void test_fp_mode(void)
{
  const unsigned saved = _mm_getcsr();
  const unsigned modes[] = {
    0x1F80,                   // the default: round to nearest, no flushing
    0x1F80 | 0x8040,          // flush-to-zero and denormals-are-zero
    0x1F80 | 0x6000 | 0x8040, // and round toward zero
  };
  const size_t n = 4096;
  float *x = new_signal(n), *y = new_signal(n);
  test_signal(x, n, 3);
  lv2_host_instance *instance = open_plugin(MONO_URI, RATE, MAX_BLOCK);
  if (instance && load_settled(instance, fixture.lstm_model)) {
    for (size_t k = 0; k < sizeof(modes) / sizeof(modes[0]); ++k) {
      _mm_setcsr(modes[k]);
      run_signal(instance, x, y, n, 256);
      const unsigned after = fp_mode();
      _mm_setcsr(saved);
      CHECK(after == (modes[k] & ~0x3Fu), "the host's MXCSR %#x is %#x "
            "after run()", modes[k], after);
    }
    printf("MXCSR 0x1f80, 0x9fc0, 0xffc0 kept across run()\n");
  }
  lv2_host_instance_free(instance);
  free(x);
  free(y);
}
#else
static void test_fp_mode(void)
{
  printf("not x86: floating-point mode check skipped\n");
}
#endif

/** Makes directories under the temporary one and names a copy of the
    LSTM model inside them whose path is exactly `length` bytes long. */
static bool make_long_path(char *path, size_t length)
{
  size_t used = (size_t)snprintf(path, PATH_SIZE, "%s", fixture.temp_dir);
  for (int k = 0; k < 9; ++k) {  // 9 levels of 200-letter names
    used += (size_t)snprintf(path + used, PATH_SIZE - used, "/%0200d", k);
    mkdir(path, 0700);
  }
  const size_t name = length - used - 1;  // under 255 for these lengths
  if (length <= used + 6 || name > 255) {
    return false;
  }
  path[used++] = '/';
  memset(path + used, 'm', name - 5);
  snprintf(path + used + name - 5, PATH_SIZE - used - name + 5, ".json");
  return strlen(path) == length && copy_file(fixture.lstm_model, path);
}

/** The longest path the plugin takes (2047 bytes) loads and is reported
    whole; one byte more is refused with an error status, the model
    running on. */
static void test_long_paths(void)
{
  char longest[PATH_SIZE], too_long[PATH_SIZE], status[STATUS_SIZE];
  lv2_host_instance *instance = open_plugin(MONO_URI, RATE, MAX_BLOCK);
  if (!instance || !make_long_path(longest, 2047) ||
      !make_long_path(too_long, 2048)) {
    CHECK(false, "set up long paths");
    lv2_host_instance_free(instance);
    return;
  }
  load_model(instance, longest, status, sizeof(status), 0);
  CHECK(!strcmp(status, LSTM_STATUS) &&
        !strcmp(last_value(instance, MODEL_URI), longest),
        "a 2047-byte path loads and is reported whole: '%s'", status);
  load_settled(instance, fixture.shaper_model);
  lv2_host_clear_messages(instance);
  lv2_host_send_patch_set_path(instance, MODEL_URI, too_long);
  lv2_host_process(instance, NULL, NULL, 4096, 256);
  lv2_host_wait_idle(instance, 10.0);
  char refused[STATUS_SIZE];
  snprintf(refused, sizeof(refused), "%s", last_value(instance, STATUS_URI));
  CHECK(starts_with(refused, "error: ") &&
        !strcmp(ask(instance, MODEL_URI, MODEL_URI), fixture.shaper_model),
        "a 2048-byte path is refused, the model kept: '%s'", refused);
  printf("paths of 2047 bytes: %s; of 2048: %s\n", status, refused);
  lv2_host_instance_free(instance);
}

/* ------------------------------------------------------------------------ */
/* Hosts whose worker runs at once, or whose queues are full */

/** Loads `model` with the immediate worker: the request, the work and the
    response all happen in one run(), the report in the next. */
static const char *load_at_once(lv2_host_instance *instance,
                                const char *model)
{
  lv2_host_clear_messages(instance);
  lv2_host_send_patch_set_path(instance, MODEL_URI, model);
  lv2_host_run(instance, NULL, NULL, 64);
  lv2_host_run(instance, NULL, NULL, 64);
  return last_value(instance, STATUS_URI);
}

/** jalv's non-threaded worker and freewheeling hosts run work() inside
    schedule_work(), within run() or restore(): loads, swaps, failures,
    bursts and restores still work, and the audio is the same as with a
    worker thread. */
static void test_immediate_worker(const char *uri)
{
  const lv2_host_config config = {.plugin_uri = uri, .sample_rate = RATE,
                                  .max_block = MAX_BLOCK, .is_quiet = true,
                                  .is_worker_immediate = true};
  const size_t n = 16384;
  lv2_host_instance *instance = NULL, *threaded = open_plugin(uri, RATE,
                                                               MAX_BLOCK);
  lv2_host_instance_new(fixture.host, &config, &instance);
  float *x = new_signal(n), *y = new_signal(n), *y_threaded = new_signal(n);
  test_signal(x, n, 14);
  if (!CHECK(instance && threaded, "instantiate with an immediate worker")) {
    lv2_host_instance_free(instance);
    lv2_host_instance_free(threaded);
    free(x);
    free(y);
    free(y_threaded);
    return;
  }
  lv2_host_activate(instance);
  const char *status = load_at_once(instance, fixture.demo_model);
  CHECK(starts_with(status, "loaded: \"Soft clip (demo)\""), "immediate "
        "worker, %s: the first model loaded in the next run: '%s'", uri,
        status);
  status = load_at_once(instance, fixture.lstm_model);
  CHECK(!strcmp(status, LSTM_STATUS), "immediate worker, %s: loaded in the "
        "next run: '%s'", uri, status);
  status = load_at_once(instance, fixture.bad_model);
  CHECK(starts_with(status, "error: ") && ends_with(status, KEPT),
        "immediate worker, %s: a bad model: '%s'", uri, status);
  const char *burst[3] = {fixture.bad_model, fixture.shaper_model,
                          fixture.demo_model};
  for (int i = 0; i < 50; ++i) {
    lv2_host_send_patch_set_path(instance, MODEL_URI, burst[i % 3]);
    lv2_host_run(instance, NULL, NULL, i % 2 ? 64 : 0);
  }
  status = load_at_once(instance, fixture.lstm_model);
  CHECK(!strcmp(status, LSTM_STATUS), "immediate worker, %s: after a burst: "
        "'%s'", uri, status);
  lv2_host_process(instance, NULL, NULL, 4800, 256);
  load_settled(threaded, fixture.lstm_model);
  run_signal(instance, x, y, n, 256);
  run_signal(threaded, x, y_threaded, n, 256);
  const double diff = test_max_abs_diff(y, y_threaded, n);
  CHECK(diff == 0.0, "immediate worker, %s: output differs from a worker "
        "thread's by %g", uri, diff);
  printf("immediate worker, %s: loads, a failure and a burst of 50; output "
         "as with a worker thread (difference %g)\n", uri, diff);
  lv2_host_instance_free(instance);
  lv2_host_instance_free(threaded);
  free(x);
  free(y);
  free(y_threaded);
}

/** Runs silence until a load's status comes, at most `n_runs` runs; the
    number of runs it took, or -1. */
static int runs_until_status(lv2_host_instance *instance, int n_runs)
{
  for (int k = 1; k <= n_runs; ++k) {
    lv2_host_run(instance, NULL, NULL, 64);
    lv2_host_wait_idle(instance, 10.0);
    if (starts_with(last_value(instance, STATUS_URI), "loaded: ")) {
      return k;
    }
  }
  return -1;
}

/** The host's worker queue refuses requests for a while: the newest
    request still loads once there is room; a dropped response (the
    worker's respond() refused) loses that load but nothing else; engines
    whose free request is refused are freed later (the sanitizer build's
    leak check). */
static void test_full_queues(void)
{
  lv2_host_instance *instance = open_plugin(STEREO_URI, RATE, MAX_BLOCK);
  if (!instance || !load_settled(instance, fixture.demo_model)) {
    lv2_host_instance_free(instance);
    return;
  }
  lv2_host_refuse_work(instance, 5, 0);
  lv2_host_clear_messages(instance);
  lv2_host_send_patch_set_path(instance, MODEL_URI, fixture.lstm_model);
  const int n_runs = runs_until_status(instance, 50);
  CHECK(n_runs > 0 && !strcmp(last_value(instance, STATUS_URI), LSTM_STATUS),
        "5 refused schedules: the request loads later (after %d runs)",
        n_runs);
  lv2_host_refuse_work(instance, 0, 1);
  lv2_host_clear_messages(instance);
  lv2_host_send_patch_set_path(instance, MODEL_URI, fixture.shaper_model);
  lv2_host_process(instance, NULL, NULL, 4096, 64);
  lv2_host_wait_idle(instance, 10.0);
  CHECK(!strcmp(ask(instance, MODEL_URI, MODEL_URI), fixture.lstm_model),
        "a dropped response leaves the model running");
  lv2_host_send_patch_set_path(instance, MODEL_URI, fixture.shaper_model);
  lv2_host_run(instance, NULL, NULL, 64);
  lv2_host_wait_idle(instance, 10.0);
  lv2_host_refuse_work(instance, 40, 0);  // the retired model's free too
  const int n_more = runs_until_status(instance, 50);
  lv2_host_process(instance, NULL, NULL, 8192, 64);
  lv2_host_wait_idle(instance, 10.0);
  CHECK(n_more > 0 && starts_with(last_value(instance, STATUS_URI),
                                  "loaded: \"Test Shaper\""),
        "after a dropped response and refused frees, loads go on: '%s'",
        last_value(instance, STATUS_URI));
  printf("full queues: loaded after %d runs of 5 refusals; a dropped "
         "response lost its load only; refused frees survived\n", n_runs);
  lv2_host_instance_free(instance);
}

/** Sample rates no host should pass: instantiate refuses them cleanly
    (NULL, and a logged error naming the rate) instead of crashing. */
static void test_unusable_rates(void)
{
  const double rates[] = {0.0, -48000.0, 999.0, 2e6, NAN, INFINITY};
  for (size_t k = 0; k < sizeof(rates) / sizeof(rates[0]); ++k) {
    lv2_host_log *log = lv2_host_log_new(false);
    const lv2_host_config config = {.plugin_uri = MONO_URI,
                                    .sample_rate = rates[k],
                                    .max_block = MAX_BLOCK, .log = log};
    lv2_host_instance *instance = NULL;
    const lv2_host_status status = lv2_host_instance_new(fixture.host,
                                                         &config, &instance);
    CHECK(status == LV2_HOST_ERR_INSTANTIATE &&
          lv2_host_log_find(log, LV2_HOST_LOG_ERROR, "sample rate", NULL, 0),
          "at %g Hz instantiate returns NULL and logs why", rates[k]);
    lv2_host_instance_free(instance);
    lv2_host_log_free(log);
  }
  printf("sample rates 0, -48000, 999, 2e6, NaN, inf: refused with a "
         "logged error\n");
}

int main(void)
{
  if (!fixture_set_up()) {
    fixture_tear_down();
    return 99;
  }
  test_zero_frames();
  test_missing_features();
  test_without_options();
  test_buffer_layouts();
  test_block_extremes();
  test_fp_mode();
  test_side_by_side();
  test_sample_rates();
  test_unusable_rates();
  test_malformed_messages();
  test_long_paths();
  test_immediate_worker(MONO_URI);
  test_immediate_worker(STEREO_URI);
  test_full_queues();
  test_wild_controls();
  test_free_while_loading();
  fixture_tear_down();
  return test_finish("plugin_hostile");
}
