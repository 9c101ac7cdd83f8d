#include "test_plugin_common.h"

#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <sndfile.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

plugin_fixture fixture;

/* ------------------------------------------------------------------------ */
/* Models made for the tests */

/** A random LSTM-8 with two knobs, one of them beyond [0, 1], so that the
    knob ports' mapping onto a model's range is exercised. */
static bool make_lstm_model(const char *path)
{
  test_rng rng = test_rng_new(2024);
  carry_model *model = test_random_model(CARRY_LAYER_LSTM, 8, 1, 3, false,
                                         &rng);
  carry_model_spec spec = *carry_model_get_spec(model);
  snprintf(spec.name, sizeof(spec.name), "Test LSTM");
  spec.sample_rate = 48000.0;
  spec.knobs[0] = (carry_knob){"drive", 0.0f, 1.0f, 0.5f};
  spec.knobs[1] = (carry_knob){"tone", -1.0f, 1.0f, 0.0f};
  carry_error err;
  const bool ok = carry_model_set_info(model, &spec, &err) == CARRY_SUCCESS &&
                  carry_model_save(model, path, &err) == CARRY_SUCCESS;
  if (!ok) {
    fprintf(stderr, "cannot make %s: %s\n", path, err.message);
  }
  carry_model_free(model);
  return ok;
}

/** y = tanh(3x): no state, so a crossfade into it can be predicted to the
    last bit. */
static bool make_shaper_model(const char *path)
{
  carry_model_spec spec;
  carry_model_spec_init(&spec);
  spec.layers[0] = (carry_layer_spec){.type = CARRY_LAYER_DENSE, .n_units = 1,
                                      .activation = CARRY_ACT_LINEAR};
  spec.layers[1] = (carry_layer_spec){.type = CARRY_LAYER_ACTIVATION,
                                      .activation = CARRY_ACT_TANH};
  spec.n_layers = 2;
  spec.sample_rate = 48000.0;
  snprintf(spec.name, sizeof(spec.name), "Test Shaper");
  carry_error err;
  carry_model *model = carry_model_create(&spec, &err);
  bool ok = model != NULL;
  if (ok) {
    carry_layer_weights dense = carry_model_layer(model, 0);
    dense.kernel[0] = 3.0f;
    dense.bias[0] = 0.0f;
    ok = carry_model_prepare(model, &err) == CARRY_SUCCESS &&
         carry_model_save(model, path, &err) == CARRY_SUCCESS;
  }
  if (!ok) {
    fprintf(stderr, "cannot make %s: %s\n", path, err.message);
  }
  carry_model_free(model);
  return ok;
}

/* ------------------------------------------------------------------------ */
/* Set-up */

static bool copy_env(const char *name, char *value, size_t size)
{
  const char *text = getenv(name);
  if (!text || !*text) {
    fprintf(stderr, "%s is not set: run the test through meson test\n", name);
    return false;
  }
  if ((size_t)snprintf(value, size, "%s", text) >= size) {
    fprintf(stderr, "%s is longer than %zu bytes\n", name, size - 1);
    return false;
  }
  return true;
}

static bool make_temp_dir(void)
{
  const char *tmp = getenv("TMPDIR");
  const size_t size = sizeof(fixture.temp_dir);
  if ((size_t)snprintf(fixture.temp_dir, size, "%s/carry-plugin-XXXXXX",
                       tmp && *tmp ? tmp : "/tmp") >= size ||
      !mkdtemp(fixture.temp_dir)) {
    perror("mkdtemp");
    return false;
  }
  return true;
}

/** `dir`/`name` into a PATH_SIZE buffer; false if it does not fit. */
static bool join_path(char *path, const char *dir, const char *name)
{
  return (size_t)snprintf(path, PATH_SIZE, "%s/%s", dir, name) < PATH_SIZE;
}

static bool set_model_paths(void)
{
  plugin_fixture *f = &fixture;
  const char *root = getenv("CARRY_SOURCE_ROOT");
  root = root ? root : ".";
  return join_path(f->demo_model, f->bundle_dir, "soft-clip.json") &&
         join_path(f->lstm_model, f->temp_dir, "test-lstm.json") &&
         join_path(f->shaper_model, f->temp_dir, "test-shaper.json") &&
         join_path(f->gru_model, root, "tests/models/gru_unit.json") &&
         join_path(f->bad_model, root, "tests/models/bad_kernel_rows.json");
}

bool fixture_set_up(void)
{
  char schemas[PATH_SIZE];
  if (!copy_env("CARRY_BUNDLE_DIR", fixture.bundle_dir, DIR_SIZE) ||
      !copy_env("CARRY_LV2_SCHEMAS", schemas, sizeof(schemas)) ||
      !make_temp_dir()) {
    return false;
  }
  if (!set_model_paths() || !make_lstm_model(fixture.lstm_model) ||
      !make_shaper_model(fixture.shaper_model)) {
    return false;
  }
  // The specifications only, then the bundle from the build tree: never
  // the user's ~/.lv2 or an installed Carry.
  fixture.host = lv2_host_new(schemas, fixture.bundle_dir);
  if (!fixture.host) {
    fprintf(stderr, "cannot create the LV2 host\n");
  }
  return fixture.host != NULL;
}

static int remove_entry(const char *path, const struct stat *info, int flag,
                        struct FTW *ftw)
{
  (void)info;
  (void)flag;
  (void)ftw;
  return remove(path);
}

void fixture_tear_down(void)
{
  lv2_host_free(fixture.host);
  fixture.host = NULL;
  if (fixture.temp_dir[0]) {
    nftw(fixture.temp_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  }
}

const char *temp_path(const char *name)
{
  static char paths[8][PATH_SIZE];
  static int next = 0;
  char *path = paths[next++ % 8];
  if ((size_t)snprintf(path, PATH_SIZE, "%s/%s", fixture.temp_dir, name) >=
      PATH_SIZE) {
    path[0] = '\0';  // no test names a file that long
  }
  return path;
}

/* ------------------------------------------------------------------------ */
/* Instances */

lv2_host_instance *open_inactive(const char *uri, double rate,
                                 uint32_t max_block)
{
  const lv2_host_config config = {.plugin_uri = uri, .sample_rate = rate,
                                  .max_block = max_block, .is_quiet = true};
  lv2_host_instance *instance = NULL;
  const lv2_host_status status = lv2_host_instance_new(fixture.host, &config,
                                                       &instance);
  CHECK(status == LV2_HOST_SUCCESS, "instantiate %s at %g Hz: %s", uri, rate,
        lv2_host_strerror(status));
  return instance;
}

lv2_host_instance *open_plugin(const char *uri, double rate,
                               uint32_t max_block)
{
  lv2_host_instance *instance = open_inactive(uri, rate, max_block);
  if (instance) {
    lv2_host_activate(instance);
  }
  return instance;
}

void set_unity(lv2_host_instance *instance, float knob1, float knob2,
               float knob3)
{
  lv2_host_set_control(instance, "input_gain", 0.0f);
  lv2_host_set_control(instance, "output_gain", 0.0f);
  lv2_host_set_control(instance, "mix", 1.0f);
  lv2_host_set_control(instance, "knob1", knob1);
  lv2_host_set_control(instance, "knob2", knob2);
  lv2_host_set_control(instance, "knob3", knob3);
}

lv2_host_instance *open_unity(const char *uri, float knob1, float knob2,
                              float knob3)
{
  lv2_host_instance *instance = open_inactive(uri, RATE, MAX_BLOCK);
  if (instance) {
    set_unity(instance, knob1, knob2, knob3);
    lv2_host_activate(instance);
  }
  return instance;
}

static bool is_load_result(const char *status)
{
  return !strncmp(status, "loaded: ", 8) || !strncmp(status, "error: ", 7);
}

const char *wait_load_status(lv2_host_instance *instance)
{
  const uint32_t block = lv2_host_max_block(instance) < 64
                           ? lv2_host_max_block(instance)
                           : 64;
  // A run sends the request, the worker loads, a later run reports.
  for (int k = 0; k < 400; ++k) {
    const char *status = last_value(instance, STATUS_URI);
    if (is_load_result(status)) {
      return status;
    }
    lv2_host_run(instance, NULL, NULL, block);
    lv2_host_wait_idle(instance, 10.0);
  }
  return "";
}

bool load_model(lv2_host_instance *instance, const char *path, char *status,
                size_t size, size_t settle_frames)
{
  lv2_host_clear_messages(instance);
  lv2_host_send_patch_set_path(instance, MODEL_URI, path);
  snprintf(status, size, "%s", wait_load_status(instance));
  const uint32_t block = lv2_host_max_block(instance) < 256
                           ? lv2_host_max_block(instance)
                           : 256;
  lv2_host_process(instance, NULL, NULL, settle_frames, block);
  lv2_host_wait_idle(instance, 10.0);
  return status[0] != '\0';
}

bool load_settled(lv2_host_instance *instance, const char *path)
{
  char status[STATUS_SIZE];
  const bool has_status = load_model(instance, path, status, sizeof(status),
                                     (size_t)(0.1 * RATE));
  return CHECK(has_status && !strncmp(status, "loaded: ", 8),
               "loading %s: status '%s'", path, status);
}

const char *last_value(lv2_host_instance *instance, const char *property)
{
  // Copied, so that later runs (which may move the messages) and clears
  // leave it alone.
  static char values[8][sizeof(((lv2_host_message *)0)->value)];
  static int next = 0;
  char *value = values[next++ % 8];
  const lv2_host_message *message = lv2_host_last_set(instance, property);
  snprintf(value, sizeof(values[0]), "%s", message ? message->value : "");
  return value;
}

const char *ask(lv2_host_instance *instance, const char *get_property,
                const char *property)
{
  lv2_host_clear_messages(instance);
  lv2_host_send_patch_get(instance, get_property);
  lv2_host_run(instance, NULL, NULL, 1);
  return last_value(instance, property);
}

void run_signal(lv2_host_instance *instance, const float *x, float *y,
                size_t n, uint32_t block)
{
  const float *in[2] = {x, x};
  float *out[2] = {y, NULL};
  lv2_host_process(instance, in, out, n, block);
}

/* ------------------------------------------------------------------------ */
/* Text and files */

bool ends_with(const char *text, const char *end)
{
  const size_t n = strlen(text), m = strlen(end);
  return n >= m && !strcmp(text + n - m, end);
}

bool starts_with(const char *text, const char *start)
{
  return !strncmp(text, start, strlen(start));
}

bool same_file(const char *a, const char *b)
{
  char real_a[PATH_MAX], real_b[PATH_MAX];
  return realpath(a, real_a) && realpath(b, real_b) && !strcmp(real_a, real_b);
}

/* ------------------------------------------------------------------------ */
/* Signals and measures */

void make_sine(float *x, size_t n, double frequency, double amplitude)
{
  for (size_t t = 0; t < n; ++t) {
    x[t] = (float)(amplitude * sin(2.0 * M_PI * frequency * (double)t / RATE));
  }
}

float *new_signal(size_t n)
{
  float *x = calloc(n ? n : 1, sizeof(float));
  if (!x) {
    fprintf(stderr, "out of memory for %zu samples\n", n);
    exit(99);
  }
  return x;
}

double max_step(const float *x, size_t from, size_t to)
{
  double worst = 0.0;
  for (size_t t = from; t + 1 < to; ++t) {
    const double step = fabs((double)x[t + 1] - (double)x[t]);
    worst = step > worst || isnan(step) ? step : worst;
  }
  return worst;
}

double max_abs(const float *x, size_t n)
{
  double worst = 0.0;
  for (size_t t = 0; t < n; ++t) {
    const double value = fabs((double)x[t]);
    worst = value > worst || isnan(value) ? value : worst;
  }
  return worst;
}

bool all_finite(const float *x, size_t n)
{
  for (size_t t = 0; t < n; ++t) {
    if (!isfinite(x[t])) {
      return false;
    }
  }
  return true;
}

bool all_zero(const float *x, size_t n)
{
  for (size_t t = 0; t < n; ++t) {
    if (x[t] != 0.0f) {
      return false;
    }
  }
  return true;
}

/* ------------------------------------------------------------------------ */
/* Files and the carry command */

bool write_wav(const char *path, const float *const *channels, int n_channels,
               size_t n)
{
  return write_wav_at(path, RATE, channels, n_channels, n);
}

bool write_wav_at(const char *path, double rate, const float *const *channels,
                  int n_channels, size_t n)
{
  SF_INFO info = {.samplerate = (int)rate, .channels = n_channels,
                  .format = SF_FORMAT_WAV | SF_FORMAT_FLOAT};
  SNDFILE *file = sf_open(path, SFM_WRITE, &info);
  float *frames = new_signal(n * (size_t)n_channels);
  for (size_t t = 0; t < n; ++t) {
    for (int c = 0; c < n_channels; ++c) {
      frames[t * (size_t)n_channels + (size_t)c] = channels[c][t];
    }
  }
  const bool ok = file && sf_writef_float(file, frames, (sf_count_t)n) ==
                            (sf_count_t)n;
  free(frames);
  return (!file || sf_close(file) == 0) && ok;
}

bool read_wav(const char *path, float *const *channels, int n_channels,
              size_t n)
{
  SF_INFO info = {0};
  SNDFILE *file = sf_open(path, SFM_READ, &info);
  if (!file) {
    return false;
  }
  float *frames = new_signal(n * (size_t)n_channels);
  const bool ok = info.channels == n_channels &&
                  info.frames == (sf_count_t)n &&
                  sf_readf_float(file, frames, (sf_count_t)n) == (sf_count_t)n;
  for (size_t t = 0; ok && t < n; ++t) {
    for (int c = 0; c < n_channels; ++c) {
      channels[c][t] = frames[t * (size_t)n_channels + (size_t)c];
    }
  }
  free(frames);
  sf_close(file);
  return ok;
}

int run_carry_process(const char *model, const char *const *params,
                      const char *in, const char *out)
{
  return run_carry_process_with(model, params, NULL, in, out);
}

int run_carry_process_with(const char *model, const char *const *params,
                           const char *const *options, const char *in,
                           const char *out)
{
  const char *exe = getenv("CARRY_EXE");
  const char *argv[40] = {exe, "process", "--model", model};
  int n = 4;
  for (int k = 0; params && params[k] && n < 26; ++k) {
    argv[n++] = "--param";
    argv[n++] = params[k];
  }
  for (int k = 0; options && options[k] && n < 36; ++k) {
    argv[n++] = options[k];
  }
  argv[n++] = in;
  argv[n++] = out;
  argv[n] = NULL;
  pid_t child;
  if (!exe || posix_spawn(&child, exe, NULL, NULL, (char *const *)argv,
                          environ)) {
    return -1;
  }
  int status = 0;
  waitpid(child, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool copy_file(const char *from, const char *to)
{
  FILE *in = fopen(from, "rb");
  FILE *out = in ? fopen(to, "wb") : NULL;
  bool ok = in && out;
  char buffer[8192];
  size_t n;
  while (ok && (n = fread(buffer, 1, sizeof(buffer), in)) > 0) {
    ok = fwrite(buffer, 1, n, out) == n;
  }
  if (out && fclose(out)) {
    ok = false;
  }
  if (in) {
    fclose(in);
  }
  return ok;
}
