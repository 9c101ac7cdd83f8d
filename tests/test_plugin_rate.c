/*
  The plugins with a model made for another sample rate: the rate-mode
  port, the status line, the latency port against the latency measured
  (an impulse through the dry path, noise through a memoryless model),
  dry and wet in time at every mix and in bypass, block-size invariance
  with resampling active, and a change of mode reloading the model.
*/

#include "test_plugin_common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MODE_AUTO, MODE_OFF, MODE_RESAMPLE, MODE_CORRECT };

typedef struct rate_case {
  double host_rate;
  int mode;              ///< The port's value
  const char *expected;  ///< In the status line
  bool has_latency;
} rate_case;

static const rate_case rate_cases[] = {
  {48000.0, MODE_AUTO, ", 48000 Hz", false},
  {44100.0, MODE_AUTO, "model 48000 Hz, host 44100 Hz: resampling", true},
  {88200.0, MODE_AUTO, "model 48000 Hz, host 88200 Hz: resampling", true},
  {96000.0, MODE_AUTO, "model 48000 Hz, host 96000 Hz: rate correction", false},
  {96000.0, MODE_RESAMPLE, "model 48000 Hz, host 96000 Hz: resampling", true},
  {192000.0, MODE_RESAMPLE, "model 48000 Hz, host 192000 Hz: resampling",
   true},
  {88200.0, MODE_CORRECT, "model 48000 Hz, host 88200 Hz: rate correction",
   false},
  {44100.0, MODE_OFF, "model 48000 Hz, host 44100 Hz: off", false},
};

#define NOISE_SECONDS 0.5
#define MAX_LAG 2048

static lv2_host_instance *open_at(const char *uri, double rate, int mode)
{
  lv2_host_instance *instance = open_inactive(uri, rate, MAX_BLOCK);
  if (instance) {
    set_unity(instance, 0.5f, 0.5f, 0.5f);
    lv2_host_set_control(instance, "rate_mode", (float)mode);
    lv2_host_activate(instance);
  }
  return instance;
}

/** Loads `model` and returns the latency port's value after the fade, or
    -1 (with a failed check) if the status is not the expected one. */
static long load_at(lv2_host_instance *instance, const char *model,
                    const rate_case *rc)
{
  char status[STATUS_SIZE];
  load_model(instance, model, status, sizeof(status),
             (size_t)(0.1 * rc->host_rate));
  if (!CHECK(strstr(status, rc->expected) != NULL,
             "at %.0f Hz, mode %d: status '%s' says '%s'", rc->host_rate,
             rc->mode, status, rc->expected)) {
    return -1;
  }
  float latency = -1.0f;
  lv2_host_get_control(instance, "latency", &latency);
  const char *said = strstr(status, "latency ");
  const long stated = said ? strtol(said + 8, NULL, 10) : 0;
  CHECK((double)latency == (double)stated, "at %.0f Hz: the latency port "
        "(%g) says what the status line says (%ld)", rc->host_rate,
        (double)latency, stated);
  CHECK((latency > 0.0f) == rc->has_latency, "at %.0f Hz, mode %d: latency "
        "%g", rc->host_rate, rc->mode, (double)latency);
  return (long)latency;
}

/** Starts again from the settled state at clock 0, as after a transport
    relocation, so that runs compare sample for sample. */
static void restart(lv2_host_instance *instance)
{
  lv2_host_deactivate(instance);
  lv2_host_activate(instance);
}

/** Where the impulse comes out of the dry path (mix 0, or bypassed):
    exactly `latency` samples late, exactly as it went in. */
static void check_dry_delay(lv2_host_instance *instance, const char *control,
                            float value, long latency, double rate)
{
  const size_t n = 4096, at = 1000;
  float *x = new_signal(n), *y = new_signal(n);
  x[at] = 0.5f;
  lv2_host_set_control(instance, control, value);
  restart(instance);
  run_signal(instance, x, y, n, 256);
  size_t peak = 0;
  for (size_t t = 0; t < n; ++t) {
    peak = fabsf(y[t]) > fabsf(y[peak]) ? t : peak;
  }
  const bool exact = y[peak] == 0.5f && max_abs(y, peak) == 0.0 &&
                     max_abs(y + peak + 1, n - peak - 1) == 0.0;
  CHECK(peak == at + (size_t)latency && exact, "at %.0f Hz, %s %g: the dry "
        "impulse comes out %ld samples late (%s), latency %ld", rate, control,
        (double)value, (long)peak - (long)at,
        exact ? "untouched" : "changed", latency);
  lv2_host_set_control(instance, "mix", 1.0f);
  lv2_host_set_control(instance, "enabled", 1.0f);
  free(x);
  free(y);
}

static void make_noise(float *x, size_t n, uint64_t seed, float amplitude)
{
  test_rng rng = test_rng_new(seed);
  for (size_t t = 0; t < n; ++t) {
    x[t] = test_rng_uniform(&rng, -amplitude, amplitude);
  }
}

/** The lag in [0, MAX_LAG) at which y correlates best with x. */
static long best_lag(const float *x, const float *y, size_t n)
{
  long best = 0;
  double best_value = -INFINITY;
  for (long lag = 0; lag < MAX_LAG; ++lag) {
    double sum = 0.0;
    for (size_t t = 0; t + (size_t)lag < n; ++t) {
      sum += (double)x[t] * (double)y[t + (size_t)lag];
    }
    if (sum > best_value) {
      best_value = sum;
      best = lag;
    }
  }
  return best;
}

/** Quiet noise through the memoryless tanh(3x): the wet output is 3x, late
    by the resamplers' delay, which must be the latency reported. */
static void check_wet_delay(lv2_host_instance *instance, long latency,
                            double rate)
{
  const size_t n = (size_t)(NOISE_SECONDS * rate);
  float *x = new_signal(n), *y = new_signal(n);
  make_noise(x, n, 7, 0.01f);
  restart(instance);
  run_signal(instance, x, y, n, 256);
  const long lag = best_lag(x, y, n);
  CHECK(lag == latency, "at %.0f Hz: noise through the model comes out %ld "
        "samples late; the latency port says %ld", rate, lag, latency);
  printf("at %.0f Hz: latency %ld reported, %ld measured (wet), dry "
         "exact\n", rate, latency, lag);
  free(x);
  free(y);
}

/** Identical output in blocks of 1, 64, 4096 and random sizes. */
static void check_block_invariance(lv2_host_instance *instance, double rate)
{
  const size_t n = (size_t)(NOISE_SECONDS * rate);
  float *x = new_signal(n), *first = new_signal(n), *y = new_signal(n);
  make_noise(x, n, 11, 0.5f);
  const uint32_t blocks[] = {4096, 1, 64, 0};
  for (size_t b = 0; b < sizeof(blocks) / sizeof(blocks[0]); ++b) {
    restart(instance);
    float *out = b == 0 ? first : y;
    if (blocks[b]) {
      run_signal(instance, x, out, n, blocks[b]);
    } else {
      const float *in[2] = {x, x};
      float *outs[2] = {out, NULL};
      uint64_t seed = 3;
      lv2_host_process_random(instance, in, outs, n, &seed);
    }
    if (b > 0) {
      CHECK(!memcmp(first, y, n * sizeof(float)), "at %.0f Hz: blocks of "
            "%u give the output of blocks of 4096 (largest difference %g)",
            rate, blocks[b], test_max_abs_diff(first, y, n));
    }
  }
  free(x);
  free(first);
  free(y);
}

static void test_rate_case(const char *uri, const rate_case *rc)
{
  lv2_host_instance *instance = open_at(uri, rc->host_rate, rc->mode);
  if (!instance) {
    return;
  }
  const long latency = load_at(instance, fixture.shaper_model, rc);
  if (latency >= 0) {
    check_dry_delay(instance, "mix", 0.0f, latency, rc->host_rate);
    check_dry_delay(instance, "enabled", 0.0f, latency, rc->host_rate);
    if (rc->mode != MODE_OFF) {
      check_wet_delay(instance, latency, rc->host_rate);
    }
    check_block_invariance(instance, rc->host_rate);
  }
  lv2_host_instance_free(instance);
}

/** The plugin plays what `carry process --keep-latency` writes, sample for
    sample, in every mode. */
static void test_equals_carry_process(double rate, const char *mode_name,
                                      int mode)
{
  const size_t n = (size_t)(NOISE_SECONDS * rate);
  float *x = new_signal(n), *y = new_signal(n), *z = new_signal(n);
  test_signal(x, n, 21);
  lv2_host_instance *instance = open_at(MONO_URI, rate, mode);
  const char *params[] = {"drive=0.5", "tone=0", NULL};
  const char *options[] = {"--rate-mode", mode_name, "--keep-latency", NULL};
  const char *in = temp_path("rate-in.wav"), *out = temp_path("rate-out.wav");
  if (instance && load_settled(instance, fixture.lstm_model) &&
      write_wav_at(in, rate, (const float *const *)&x, 1, n) &&
      CHECK(run_carry_process_with(fixture.lstm_model, params, options, in,
                                   out) == 0, "carry process %s", mode_name) &&
      CHECK(read_wav(out, &z, 1, n), "read %s", out)) {
    restart(instance);
    run_signal(instance, x, y, n, 256);
    CHECK(!memcmp(y, z, n * sizeof(float)), "at %.0f Hz, %s: the plugin "
          "and carry process differ by up to %g", rate, mode_name,
          test_max_abs_diff(y, z, n));
    printf("at %.0f Hz, %s: the plugin plays what carry process writes "
           "(largest difference %g)\n", rate, mode_name,
           test_max_abs_diff(y, z, n));
  }
  lv2_host_instance_free(instance);
  free(x);
  free(y);
  free(z);
}

/** A mode the model cannot run in is a load error that keeps the model
    running before. */
static void test_impossible_mode(void)
{
  lv2_host_instance *instance = open_at(MONO_URI, 44100.0, MODE_AUTO);
  if (!instance || !load_settled(instance, fixture.shaper_model)) {
    lv2_host_instance_free(instance);
    return;
  }
  lv2_host_clear_messages(instance);
  lv2_host_set_control(instance, "rate_mode", (float)MODE_CORRECT);
  const char *status = wait_load_status(instance);
  CHECK(starts_with(status, "error: ") && ends_with(status, KEPT),
        "correcting a 48000 Hz model at 44100 Hz is refused, keeping the "
        "model: '%s'", status);
  printf("correct at 44100 Hz: %s\n", status);
  lv2_host_instance_free(instance);
}

/** Turning the mode port loads the model again in each mode. */
static void test_mode_changes(void)
{
  lv2_host_instance *instance = open_at(STEREO_URI, 96000.0, MODE_AUTO);
  if (!instance || !load_settled(instance, fixture.shaper_model)) {
    lv2_host_instance_free(instance);
    return;
  }
  const struct {
    int mode;
    const char *expected;
  } steps[] = {{MODE_RESAMPLE, ": resampling, latency "},
               {MODE_OFF, ": off, latency 0 samples"},
               {MODE_AUTO, ": rate correction, latency 0 samples"}};
  for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); ++k) {
    lv2_host_clear_messages(instance);
    lv2_host_set_control(instance, "rate_mode", (float)steps[k].mode);
    const char *status = wait_load_status(instance);
    CHECK(strstr(status, steps[k].expected) != NULL, "mode %d at 96000 Hz: "
          "'%s'", steps[k].mode, status);
    CHECK(same_file(last_value(instance, MODEL_URI), fixture.shaper_model),
          "mode %d reloads the same model", steps[k].mode);
  }
  lv2_host_instance_free(instance);
}

int main(void)
{
  if (!fixture_set_up()) {
    fixture_tear_down();
    return 99;
  }
  const size_t n = sizeof(rate_cases) / sizeof(rate_cases[0]);
  for (size_t k = 0; k < n; ++k) {
    test_rate_case(k % 2 ? STEREO_URI : MONO_URI, &rate_cases[k]);
  }
  test_equals_carry_process(44100.0, "resample", MODE_RESAMPLE);
  test_equals_carry_process(44100.0, "off", MODE_OFF);
  test_equals_carry_process(88200.0, "correct", MODE_CORRECT);
  test_impossible_mode();
  test_mode_changes();
  fixture_tear_down();
  return test_finish("plugin_rate");
}
