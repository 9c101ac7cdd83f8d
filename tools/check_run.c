/*
  Running one case of `carry check`: a fresh instance per rendering, so
  that every run starts from the same state, at each block size and once
  more from saved state; then the comparisons.
*/

#include "check.h"
#include "plugin_setup.h"

#include <lilv/lilv.h>

#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_MAX_BLOCK 4096u
#define RANDOM_SEED 1u
#define LATENCY_SEARCH 4096  ///< Lags tried when measuring latency

/** One case on its way through the runs. */
typedef struct runner {
  lv2_host *host;
  const check_case *test;
  const check_options *options;
  check_result *result;
  uint32_t max_block;
  double seconds_run;   ///< In lv2_host_process* calls
  double audio_seconds; ///< Rendered in them
  float latency;        ///< Reported by the reference run, or -1
} runner;

static double now_seconds(void)
{
  struct timespec time;
  clock_gettime(CLOCK_MONOTONIC, &time);
  return (double)time.tv_sec + 1e-9 * (double)time.tv_nsec;
}

/** Records the first failure; later ones do not hide it. */
static bool fail(runner *run, const char *format, ...)
  __attribute__((format(printf, 2, 3)));

static bool fail(runner *run, const char *format, ...)
{
  if (run->result->has_passed) {
    va_list args;
    va_start(args, format);
    vsnprintf(run->result->reason, sizeof(run->result->reason), format, args);
    va_end(args);
    run->result->has_passed = false;
  }
  return false;
}

/* ------------------------------------------------------------------------ */
/* Instances */

static plugin_setup case_setup(const check_case *test)
{
  const plugin_setup setup = {test->plugin, test->preset, test->controls,
                              test->n_controls, test->model};
  return setup;
}

/** Applies the preset, the controls and the model, as a user would. */
static bool configure(runner *run, lv2_host_instance *instance)
{
  const check_case *test = run->test;
  const plugin_setup setup = case_setup(test);
  size_t bad = 0;
  switch (plugin_setup_configure(instance, &setup, &bad)) {
  case PLUGIN_SETUP_BAD_PRESET:
    return fail(run, "preset %s: not found or not loadable", test->preset);
  case PLUGIN_SETUP_BAD_CONTROL:
    return fail(run, "controls.%s: %s has no control input of that symbol",
                test->controls[bad].symbol, test->plugin);
  case PLUGIN_SETUP_BAD_MODEL:
    return fail(run, "model %s: cannot send it to the plugin", test->model);
  case PLUGIN_SETUP_OK:
    break;
  }
  return true;
}

static bool settle(runner *run, lv2_host_instance *instance)
{
  const plugin_setup setup = case_setup(run->test);
  char message[CHECK_MESSAGE_SIZE];
  return plugin_setup_settle(instance, &setup, message, sizeof(message)) ||
         fail(run, "%s", message);
}

/** A fresh instance, configured from the case or restored from
    `state_dir`, activated and settled; NULL after fail(). */
static lv2_host_instance *open_instance(runner *run, const char *state_dir)
{
  const lv2_host_config config = {
    .plugin_uri = run->test->plugin, .sample_rate = run->test->rate,
    .max_block = run->max_block, .is_quiet = true};
  lv2_host_instance *instance = NULL;
  const lv2_host_status status = lv2_host_instance_new(run->host, &config,
                                                       &instance);
  if (status) {
    fail(run, "plugin %s: %s", run->test->plugin, lv2_host_strerror(status));
    return NULL;
  }
  const bool is_ready =
    state_dir ? !lv2_host_state_restore(instance, state_dir, true) ||
                  fail(run, "cannot restore the saved state")
              : configure(run, instance);
  if (!is_ready || !settle(run, instance)) {
    lv2_host_instance_free(instance);
    return NULL;
  }
  return instance;
}

/* ------------------------------------------------------------------------ */
/* Rendering */

static bool render(runner *run, lv2_host_instance *instance, uint32_t block,
                   check_signal *output)
{
  const check_signal *input = &run->result->input;
  const uint32_t n_in = lv2_host_n_inputs(instance);
  const uint32_t n_out = lv2_host_n_outputs(instance);
  if (n_in && input->n_channels != 1 && (uint32_t)input->n_channels != n_in) {
    return fail(run, "the input has %d channels, the plugin %u inputs",
                input->n_channels, n_in);
  }
  if (!check_signal_alloc(output, (int)n_out, input->n_frames)) {
    return fail(run, "the plugin has %u audio outputs (1 to %d work)", n_out,
                CHECK_MAX_CHANNELS);
  }
  const float *in[CHECK_MAX_CHANNELS];
  for (uint32_t c = 0; c < n_in && c < CHECK_MAX_CHANNELS; ++c) {
    in[c] = input->channels[input->n_channels == 1 ? 0 : c];
  }
  uint64_t seed = RANDOM_SEED;
  const double start = now_seconds();
  const lv2_host_status status =
    block == CHECK_BLOCK_RANDOM
      ? lv2_host_process_random(instance, in, output->channels,
                                input->n_frames, &seed)
      : lv2_host_process(instance, in, output->channels, input->n_frames,
                         block);
  run->seconds_run += now_seconds() - start;
  run->audio_seconds += (double)input->n_frames / run->test->rate;
  return !status || fail(run, "running the plugin: %s",
                         lv2_host_strerror(status));
}

/** Largest difference; `*first` the first frame that differs at all. */
static double difference(const check_signal *a, const check_signal *b,
                         size_t *first)
{
  double largest = 0.0;
  *first = SIZE_MAX;
  for (int c = 0; c < a->n_channels; ++c) {
    for (size_t t = 0; t < a->n_frames; ++t) {
      const float x = a->channels[c][t], y = b->channels[c][t];
      if (memcmp(&x, &y, sizeof(x))) {
        const double d = fabs((double)x - (double)y);
        largest = isnan(d) ? INFINITY : fmax(largest, d);
        *first = t < *first ? t : *first;
      }
    }
  }
  return largest;
}

static void describe_block(uint32_t block, char *text, size_t size)
{
  if (block == CHECK_BLOCK_RANDOM) {
    snprintf(text, size, "random blocks");
  } else {
    snprintf(text, size, "block %u", block);
  }
}

/** Keeps the first rendering that differs, for the plot. */
static void keep_differing(runner *run, check_signal *output,
                           const char *label)
{
  if (!run->result->differing.n_channels) {
    run->result->differing = *output;
    snprintf(run->result->differing_label,
             sizeof(run->result->differing_label), "%s", label);
    describe_block(run->options->blocks[0], run->result->reference_label,
                   sizeof(run->result->reference_label));
    memset(output, 0, sizeof(*output));
  }
}

/** Compares a rendering with the reference (the first block size). */
static void compare_with_reference(runner *run, check_signal *output,
                                   const char *label)
{
  size_t first;
  const double d = difference(&run->result->output, output, &first);
  if (first == SIZE_MAX) {
    return;
  }
  char reference[32];
  describe_block(run->options->blocks[0], reference, sizeof(reference));
  if (strcmp(label, "restored state")) {
    run->result->block_difference = fmax(run->result->block_difference, d);
    fail(run, "output depends on the block size: %s differs from %s by up "
         "to %.3g (first at frame %zu)", label, reference, d, first);
  } else {
    fail(run, "state does not restore: a fresh instance restored from the "
         "saved state differs by up to %.3g (first at frame %zu)", d, first);
  }
  keep_differing(run, output, label);
}

/** The reference run at the first block size, then its state saved into
    `state_dir`. */
static bool run_reference(runner *run, const char *state_dir)
{
  lv2_host_instance *instance = open_instance(run, NULL);
  if (!instance) {
    return false;
  }
  bool is_done = render(run, instance, run->options->blocks[0],
                        &run->result->output);
  run->latency = plugin_setup_latency(run->host, instance,
                                      run->test->plugin);
  if (is_done && lv2_host_state_save(instance, state_dir, NULL)) {
    is_done = fail(run, "cannot save the plugin's state");
  }
  lv2_host_instance_free(instance);
  return is_done;
}

static void run_other(runner *run, uint32_t block, const char *state_dir)
{
  char label[32];
  if (state_dir) {
    snprintf(label, sizeof(label), "restored state");
  } else {
    describe_block(block, label, sizeof(label));
  }
  lv2_host_instance *instance = open_instance(run, state_dir);
  check_signal output = {0};
  if (instance && render(run, instance, block, &output)) {
    compare_with_reference(run, &output, label);
  }
  check_signal_free(&output);
  lv2_host_instance_free(instance);
}

/* ------------------------------------------------------------------------ */
/* Judging */

static void compare_expected(runner *run, const check_case *test)
{
  check_result *result = run->result;
  char message[CHECK_MESSAGE_SIZE];
  double rate = 0.0;
  if (!check_signal_read(test->expect_file, &result->expected, &rate,
                         message, sizeof(message))) {
    fail(run, "%s (--record writes it)", message);
    return;
  }
  const check_signal *y = &result->output, *e = &result->expected;
  if (e->n_channels != y->n_channels || e->n_frames != y->n_frames ||
      rate != test->rate) {
    fail(run, "%s: %d channels, %zu frames at %g Hz; the output has %d, %zu "
         "at %g Hz", test->expect_file, e->n_channels, e->n_frames, rate,
         y->n_channels, y->n_frames, test->rate);
    return;
  }
  double error_energy = 0.0, target_energy = 0.0, worst = 0.0;
  for (int c = 0; c < y->n_channels; ++c) {
    for (size_t t = 0; t < y->n_frames; ++t) {
      const double d = (double)y->channels[c][t] - (double)e->channels[c][t];
      worst = isnan(d) ? INFINITY : fmax(worst, fabs(d));
      error_energy += d * d;
      target_energy += (double)e->channels[c][t] * e->channels[c][t];
    }
  }
  result->max_error = worst;
  result->esr = target_energy > 0.0 ? error_energy / target_energy
                : error_energy > 0.0 ? INFINITY : 0.0;
  if (test->max_abs >= 0.0 && !(worst <= test->max_abs)) {
    fail(run, "max abs error %.3g above %.3g", worst, test->max_abs);
  }
  if (test->esr >= 0.0 && !(result->esr <= test->esr)) {
    fail(run, "ESR %.3g above %.3g", result->esr, test->esr);
  }
}

static void check_samples(runner *run, const check_case *test)
{
  const check_signal *y = &run->result->output;
  size_t n_bad = 0, n_denormal = 0, first_bad = 0, first_denormal = 0;
  double energy = 0.0;
  for (int c = 0; c < y->n_channels; ++c) {
    for (size_t t = 0; t < y->n_frames; ++t) {
      const float x = y->channels[c][t];
      first_bad = !n_bad ? t : first_bad;
      n_bad += !isfinite(x);
      first_denormal = !n_denormal ? t : first_denormal;
      n_denormal += fpclassify(x) == FP_SUBNORMAL;
      energy += (double)x * x;
    }
  }
  if (test->expects_finite && n_bad) {
    fail(run, "%zu samples are NaN or infinite (first at frame %zu)", n_bad,
         first_bad);
  }
  if (test->expects_no_denormals && n_denormal) {
    fail(run, "%zu samples are denormal (first at frame %zu)", n_denormal,
         first_denormal);
  }
  const double n = (double)y->n_frames * y->n_channels;
  const double level = 10.0 * log10(energy / (n > 0 ? n : 1.0) + 1e-30);
  if (test->has_level &&
      !(level >= test->level_min_db && level <= test->level_max_db)) {
    fail(run, "level %.1f dBFS outside [%g, %g]", level, test->level_min_db,
         test->level_max_db);
  }
}

/** The lag at which the output best matches the input (first channels). */
static size_t measure_latency(const check_signal *x, const check_signal *y)
{
  size_t best_lag = 0;
  double best = -1.0;
  const size_t n = x->n_frames;
  for (size_t lag = 0; lag < LATENCY_SEARCH && lag < n; ++lag) {
    double sum = 0.0;
    for (size_t t = 0; t + lag < n; ++t) {
      sum += (double)x->channels[0][t] * y->channels[0][t + lag];
    }
    if (fabs(sum) > best) {
      best = fabs(sum);
      best_lag = lag;
    }
  }
  return best_lag;
}

static void check_latency(runner *run)
{
  if (run->latency < 0.0f) {
    fail(run, "latency: the plugin reports none (no lv2:latency port)");
    return;
  }
  const size_t measured = measure_latency(&run->result->input,
                                          &run->result->output);
  if ((double)measured != (double)run->latency) {
    fail(run, "latency: measured %zu samples, reported %g", measured,
         (double)run->latency);
  }
}

/** Writes the output as the expected file, unless the runs disagree: an
    output that depends on the block size is no reference. */
static void record(runner *run, const check_case *test)
{
  char message[CHECK_MESSAGE_SIZE];
  if (!run->result->has_passed) {
    return;
  }
  if (!check_signal_write(test->expect_file, &run->result->output,
                          test->rate, message, sizeof(message))) {
    fail(run, "%s", message);
  } else if (run->result->has_passed) {
    snprintf(run->result->reason, sizeof(run->result->reason),
             "recorded %s", test->expect_file);
  }
}

static void judge(runner *run, const check_case *test)
{
  if (test->expect_file && run->options->is_recording) {
    record(run, test);
  } else if (test->expect_file) {
    compare_expected(run, test);
  }
  check_samples(run, test);
  if (test->expects_latency) {
    check_latency(run);
  }
}

/* ------------------------------------------------------------------------ */
/* A case */

static int remove_entry(const char *path, const struct stat *info, int flag,
                        struct FTW *ftw)
{
  (void)info;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static uint32_t largest_block(const check_options *options)
{
  uint32_t largest = DEFAULT_MAX_BLOCK;
  for (size_t k = 0; k < options->n_blocks; ++k) {
    largest = options->blocks[k] > largest ? options->blocks[k] : largest;
  }
  return largest;
}

static void run_all(runner *run, const char *state_dir)
{
  if (!run_reference(run, state_dir)) {
    return;
  }
  for (size_t k = 1; k < run->options->n_blocks; ++k) {
    run_other(run, run->options->blocks[k], NULL);
  }
  run_other(run, run->options->blocks[0], state_dir);
  judge(run, run->test);
}

void check_case_run(lv2_host *host, const check_case *test,
                    const check_options *options, check_result *result)
{
  memset(result, 0, sizeof(*result));
  result->has_passed = true;
  result->max_error = result->esr = -1.0;
  result->rate = test->rate;
  runner run = {host, test, options, result, largest_block(options), 0.0,
                0.0, -1.0f};
  char message[CHECK_MESSAGE_SIZE];
  char state_dir[] = "/tmp/carry-check-XXXXXX";
  if (!check_input_make(test, &result->input, message, sizeof(message))) {
    fail(&run, "%s", message);
  } else if (!mkdtemp(state_dir)) {
    fail(&run, "cannot make a temporary directory for the state");
  } else {
    run_all(&run, state_dir);
    nftw(state_dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
  }
  result->realtime_factor = run.seconds_run > 0.0
                              ? run.audio_seconds / run.seconds_run
                              : 0.0;
}

void check_result_free(check_result *result)
{
  check_signal_free(&result->input);
  check_signal_free(&result->output);
  check_signal_free(&result->expected);
  check_signal_free(&result->differing);
}

void check_blocks_describe(const check_options *options, char *text,
                           size_t size)
{
  size_t used = 0;
  text[0] = '\0';
  for (size_t k = 0; k < options->n_blocks && used < size; ++k) {
    const uint32_t block = options->blocks[k];
    int n = block == CHECK_BLOCK_RANDOM
              ? snprintf(text + used, size - used, "%srandom", k ? "," : "")
              : snprintf(text + used, size - used, "%s%u", k ? "," : "",
                         block);
    used += n > 0 ? (size_t)n : 0;
  }
}
