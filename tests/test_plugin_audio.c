/*
  The Carry plugins' audio through a lilv host:

  - output equal to `carry process` (the real binary, on WAV files) for the
    same model, knobs and input, mono and stereo, in blocks of 1, 17, 256
    and random sizes;
  - the gains and dry/wet formula, with and without a model, and
    activate() snapping the smoothing to the ports;
  - controls gliding (about 20 ms) instead of jumping;
  - crossfades across model swaps and bypass: no step larger than the
    signals being crossfaded make, plus the fade's own slope;
  - NaN and infinite input: that block silent, the streams reset, the
    audio going on as a run that never saw it;
  - the quality port: fast within 1e-4 of exact on a trained preset, and
    what `carry process --quality fast` writes, on a model loaded before
    the switch, on one swapped in after it and across a crossfade.
*/

#include "test_plugin_common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIGNAL_FRAMES 48000  ///< 1 s at RATE

/** Runs `n` frames from per-channel `in` into per-channel `out`. */
static void run_channels(lv2_host_instance *instance, const float *const *in,
                         float *const *out, size_t n, uint32_t block)
{
  lv2_host_process(instance, in, out, n, block);
}

/* ------------------------------------------------------------------------ */
/* Against carry process */

typedef struct model_case {
  const char *name;
  const char *path;
  float knob_ports[3];
  const char *params[3];  ///< The same knob values for carry process
} model_case;

/** `carry process` on a WAV of `n_channels` signals; false if it failed. */
static bool carry_reference(const model_case *model, const float *const *in,
                            float *const *out, int n_channels)
{
  const char *wav_in = temp_path(n_channels == 1 ? "mono.wav" : "stereo.wav");
  const char *wav_out = temp_path("processed.wav");
  const int status = write_wav(wav_in, in, n_channels, SIGNAL_FRAMES)
                       ? run_carry_process(model->path, model->params, wav_in,
                                           wav_out)
                       : -1;
  return CHECK(status == 0, "carry process %s: exit status %d", model->name,
               status) &&
         CHECK(read_wav(wav_out, out, n_channels, SIGNAL_FRAMES),
               "read carry process's output");
}

#define REACTIVATED UINT32_MAX

/** The plugin's output after the load and its 30 ms fade, silence after
    it, then the signal; `block` 0 means random sizes, REACTIVATED blocks of
    256 after some noise and deactivate() + activate(), which return the
    streams to their settled state. */
static void plugin_output(const char *uri, const model_case *model,
                          const float *const *in, float *const *out,
                          uint32_t block)
{
  lv2_host_instance *instance = open_unity(uri, model->knob_ports[0],
                                           model->knob_ports[1],
                                           model->knob_ports[2]);
  if (!instance) {
    return;
  }
  load_settled(instance, model->path);
  uint64_t seed = 99;
  if (block == REACTIVATED) {
    const float *noise[2] = {in[1], in[0]};
    run_channels(instance, noise, out, SIGNAL_FRAMES / 4, 256);
    lv2_host_deactivate(instance);
    lv2_host_activate(instance);
    block = 256;
  }
  if (block) {
    run_channels(instance, in, out, SIGNAL_FRAMES, block);
  } else {
    lv2_host_process_random(instance, in, out, SIGNAL_FRAMES, &seed);
  }
  lv2_host_instance_free(instance);
}

/** Tolerance 1e-6: carry process starts the signal from the settled state
    itself; the plugin has also run the load fade and some silence after
    settling, and settling leaves the state within 1e-7 of a fixed point
    that silence does not move, so the two may differ by a few 1e-7. */
static void check_against_carry(const model_case *model, int n_channels,
                                const float *const *in, float *const *expected)
{
  const uint32_t blocks[] = {1, 17, 256, 0, REACTIVATED};
  float *out[2] = {new_signal(SIGNAL_FRAMES), new_signal(SIGNAL_FRAMES)};
  const char *uri = n_channels == 1 ? MONO_URI : STEREO_URI;
  for (size_t b = 0; b < sizeof(blocks) / sizeof(blocks[0]); ++b) {
    plugin_output(uri, model, in, out, blocks[b]);
    double diff = 0.0;
    for (int c = 0; c < n_channels; ++c) {
      diff = fmax(diff, test_max_abs_diff(out[c], expected[c], SIGNAL_FRAMES));
    }
    char how[64];
    snprintf(how, sizeof(how),
             blocks[b] == REACTIVATED ? "re-activated, blocks of 256"
             : blocks[b]              ? "blocks of %u"
                                      : "random blocks",
             blocks[b]);
    CHECK(diff <= 1e-6, "%s, %s, %s: differs from carry process by %g",
          model->name, n_channels == 1 ? "mono" : "stereo", how, diff);
    printf("%s, %s, %s: largest difference from carry process %.3g\n",
           model->name, n_channels == 1 ? "mono" : "stereo", how, diff);
  }
  free(out[0]);
  free(out[1]);
}

static void test_equals_carry_process(const model_case *model)
{
  float *left = new_signal(SIGNAL_FRAMES), *right = new_signal(SIGNAL_FRAMES);
  float *expected[2] = {new_signal(SIGNAL_FRAMES), new_signal(SIGNAL_FRAMES)};
  test_signal(left, SIGNAL_FRAMES, 11);
  test_signal(right, SIGNAL_FRAMES, 12);  // reversed and quieter: unlike left
  for (size_t t = 0; t < SIGNAL_FRAMES / 2; ++t) {
    const float swap = right[t];
    right[t] = 0.7f * right[SIGNAL_FRAMES - 1 - t];
    right[SIGNAL_FRAMES - 1 - t] = 0.7f * swap;
  }
  const float *in[2] = {left, right};
  if (carry_reference(model, in, expected, 1)) {
    check_against_carry(model, 1, in, expected);
  }
  if (carry_reference(model, in, expected, 2)) {
    check_against_carry(model, 2, in, expected);
  }
  free(left);
  free(right);
  free(expected[0]);
  free(expected[1]);
}

/** The knob ports beyond the model's inputs do nothing: the demo model
    has one knob, so knob2 and knob3 leave its output alone, knob1 not. */
static void test_unused_knobs(void)
{
  const float settings[3][3] = {{0.5f, 0.0f, 0.0f}, {0.5f, 1.0f, 1.0f},
                                {1.0f, 0.0f, 0.0f}};
  float *x = new_signal(SIGNAL_FRAMES), *y[3];
  test_signal(x, SIGNAL_FRAMES, 77);
  for (int k = 0; k < 3; ++k) {
    const float *const k3 = settings[k];
    y[k] = new_signal(SIGNAL_FRAMES);
    lv2_host_instance *instance = open_unity(MONO_URI, k3[0], k3[1], k3[2]);
    if (instance) {
      load_settled(instance, fixture.demo_model);
      run_channels(instance, (const float *[]){x}, (float *[]){y[k]},
                   SIGNAL_FRAMES, 256);
    }
    lv2_host_instance_free(instance);
  }
  const double unused = test_max_abs_diff(y[0], y[1], SIGNAL_FRAMES);
  const double used = test_max_abs_diff(y[0], y[2], SIGNAL_FRAMES);
  CHECK(unused == 0.0, "knob2 and knob3 on a one-knob model change the "
        "output by %g", unused);
  CHECK(used > 1e-3, "knob1 changes the output (by %g)", used);
  printf("one-knob model: knob2 and knob3 change nothing (%g), knob1 "
         "changes the output by %.3f\n", unused, used);
  for (int k = 0; k < 3; ++k) {
    free(y[k]);
  }
  free(x);
}

/* ------------------------------------------------------------------------ */
/* Gains and mix */

#define IN_DB 6.0
#define OUT_DB (-4.0)
#define MIX 0.3

/** Instantiated with the controls set, then activated: no glide. */
static lv2_host_instance *open_with_gains(const char *uri)
{
  const lv2_host_config config = {.plugin_uri = uri, .sample_rate = RATE,
                                  .max_block = MAX_BLOCK, .is_quiet = true};
  lv2_host_instance *instance = NULL;
  lv2_host_instance_new(fixture.host, &config, &instance);
  if (instance) {
    set_unity(instance, 0.5f, 0.5f, 0.5f);
    lv2_host_set_control(instance, "input_gain", (float)IN_DB);
    lv2_host_set_control(instance, "output_gain", (float)OUT_DB);
    lv2_host_set_control(instance, "mix", (float)MIX);
    lv2_host_activate(instance);
  }
  return instance;
}

/** out = mix * f(in * g_in) * g_out + (1 - mix) * in, f the identity
    without a model, tanh(3x) for the shaper. */
static double expected_output(double x, bool has_model)
{
  const double g_in = pow(10.0, IN_DB / 20.0), g_out = pow(10.0, OUT_DB / 20.0);
  const double wet = has_model ? tanh(3.0 * x * g_in) : x * g_in;
  return MIX * wet * g_out + (1.0 - MIX) * x;
}

static double formula_error(const float *x, const float *y, size_t n,
                            bool has_model)
{
  double worst = 0.0;
  for (size_t t = 0; t < n; ++t) {
    worst = fmax(worst, fabs(y[t] - expected_output(x[t], has_model)));
  }
  return worst;
}

/** Without a model the formula holds from the very first sample (activate
    snapped the glides); with the shaper, once loaded.  Tolerance 1e-5:
    float gains and Carry's tanh (1.5e-7) against double here; a wrong
    formula is off by 1e-2 or more. */
static void test_gains_and_mix(const char *uri)
{
  const size_t n = 8192;
  float *x = new_signal(n), *y[2] = {new_signal(n), new_signal(n)};
  make_sine(x, n, 440.0, 0.5);
  const float *in[2] = {x, x};
  lv2_host_instance *instance = open_with_gains(uri);
  if (CHECK(instance != NULL, "instantiate %s", uri)) {
    const int n_channels = strcmp(uri, STEREO_URI) ? 1 : 2;
    double dry_error = 0.0, wet_error = 0.0;
    run_channels(instance, in, y, n, 100);
    for (int c = 0; c < n_channels; ++c) {
      dry_error = fmax(dry_error, formula_error(x, y[c], n, false));
    }
    CHECK(dry_error < 1e-5, "%s without a model: off the formula by %g", uri,
          dry_error);
    load_settled(instance, fixture.shaper_model);
    run_channels(instance, in, y, n, 100);
    for (int c = 0; c < n_channels; ++c) {
      wet_error = fmax(wet_error, formula_error(x, y[c], n, true));
    }
    CHECK(wet_error < 1e-5, "%s with the shaper: off the formula by %g", uri,
          wet_error);
    printf("%s: +6 dB in, -4 dB out, mix 0.3: off the formula by %.3g "
           "(dry pass-through), %.3g (tanh(3x) model)\n", uri, dry_error,
           wet_error);
  }
  lv2_host_instance_free(instance);
  free(x);
  free(y[0]);
  free(y[1]);
}

/* ------------------------------------------------------------------------ */
/* Smoothing */

/** A control jumps at a block boundary with a constant input: the output
    glides to its new level along a one-pole of about 20 ms (its 63 % point
    between 16 and 25 ms), never stepping more than the glide's first step
    (the largest a one-pole makes) plus 10 %, and lands exactly. */
static void check_glide(const char *symbol, float value, const char *model,
                        double expected_end)
{
  const size_t n = 24000, jump = 4800;
  const double tau = 0.020 * RATE;
  float *x = new_signal(n), *y = new_signal(n);
  for (size_t t = 0; t < n; ++t) {
    x[t] = 0.25f;
  }
  lv2_host_instance *instance = open_unity(MONO_URI, 0.5f, 0.5f, 0.5f);
  if (!instance || (model && !load_settled(instance, model))) {
    lv2_host_instance_free(instance);
    free(x);
    free(y);
    return;
  }
  run_signal(instance, x, y, jump, 64);
  lv2_host_set_control(instance, symbol, value);
  run_signal(instance, x + jump, y + jump, n - jump, 64);
  const double start = y[jump - 1], end = y[n - 1];
  size_t t63 = jump;
  while (t63 < n && fabs(y[t63] - start) < 0.632 * fabs(end - start)) {
    ++t63;
  }
  const double ms = 1000.0 * (double)(t63 - jump + 1) / RATE;
  const double step = max_step(y, jump - 1, n);
  const double first_step = fabs(end - start) * (1.0 - exp(-1.0 / tau));
  CHECK(ms >= 16.0 && ms <= 25.0, "%s: 63%% of the way after %.1f ms, not "
        "about 20", symbol, ms);
  CHECK(step <= 1.1 * first_step, "%s: largest step %.3g above a 20 ms "
        "glide's first step %.3g (+10%%)", symbol, step, first_step);
  CHECK(fabs(end - expected_end) <= 1e-6, "%s: lands on %.7f, not %.7f",
        symbol, end, expected_end);
  printf("%s -> %g: 63%% after %.1f ms, largest step %.3g (a one-pole's "
         "first: %.3g), lands at %.7f\n", symbol, (double)value, ms, step,
         first_step, end);
  lv2_host_instance_free(instance);
  free(x);
  free(y);
}

static void test_smoothing(void)
{
  check_glide("input_gain", 12.0f, NULL, 0.25 * pow(10.0, 12.0 / 20.0));
  check_glide("output_gain", -12.0f, fixture.shaper_model,
              tanh(0.75) * pow(10.0, -12.0 / 20.0));
  check_glide("mix", 0.0f, fixture.shaper_model, 0.25);
}

/* ------------------------------------------------------------------------ */
/* Crossfades */

/** One crossfade: from model `from` (NULL: the dry pass-through) to `to`
    (NULL: bypass off at the switch, on again later). */
typedef struct fade_case {
  const char *name;
  const char *uri;
  const char *from;
  const char *to;
  size_t fade_frames;  ///< What the contract says: 30 ms, or 10 ms bypass
  double margin;       ///< Beyond the bound; see check_channel()
  const char *via;     ///< Requested first, overtaken by `to` mid-fade
} fade_case;

#define SWITCH_AT 12800u   ///< Frames into the signal (a multiple of 256)
#define BYPASS_ON_AT 32000u

typedef struct fade_signals {
  float *in[2];
  float *out[2];   ///< The instance under test
  float *a[2];     ///< What is faded from, alone
  float *b[2];     ///< What is faded to, alone
  float *via[2];   ///< What is faded through (or `a` again), alone
} fade_signals;

/** `model`'s output alone (NULL: the dry input). */
static void reference(const fade_case *fade, const char *model,
                      float *const *in, float *const *out)
{
  if (!model) {
    memcpy(out[0], in[0], SIGNAL_FRAMES * sizeof(float));
    memcpy(out[1], in[1], SIGNAL_FRAMES * sizeof(float));
    return;
  }
  lv2_host_instance *instance = open_plugin(fade->uri, RATE, MAX_BLOCK);
  load_settled(instance, model);
  run_channels(instance, (const float *const *)in, out, SIGNAL_FRAMES, 256);
  lv2_host_instance_free(instance);
}

/** Runs the signal through `instance` in blocks of 256 up to `to`. */
static void run_span(lv2_host_instance *instance, const fade_signals *s,
                     size_t from, size_t to)
{
  const float *in[2] = {s->in[0] + from, s->in[1] + from};
  float *out[2] = {s->out[0] + from, s->out[1] + from};
  run_channels(instance, in, out, to - from, 256);
}

static void run_fade(const fade_case *fade, const fade_signals *s)
{
  lv2_host_instance *instance = open_plugin(fade->uri, RATE, MAX_BLOCK);
  if (!instance) {
    return;
  }
  if (fade->from) {
    load_settled(instance, fade->from);
  }
  run_span(instance, s, 0, SWITCH_AT - (fade->via ? 512 : 0));
  if (fade->via) {
    lv2_host_send_patch_set_path(instance, MODEL_URI, fade->via);
    run_span(instance, s, SWITCH_AT - 512, SWITCH_AT - 256);
    lv2_host_wait_idle(instance, 10.0);  // `via` fades in from here
    run_span(instance, s, SWITCH_AT - 256, SWITCH_AT);
  }
  if (fade->to) {
    lv2_host_send_patch_set_path(instance, MODEL_URI, fade->to);
    run_span(instance, s, SWITCH_AT, SWITCH_AT + 256);
    lv2_host_wait_idle(instance, 10.0);  // the next run starts the fade
    run_span(instance, s, SWITCH_AT + 256, SIGNAL_FRAMES);
  } else {
    lv2_host_set_control(instance, "enabled", 0.0f);
    run_span(instance, s, SWITCH_AT, BYPASS_ON_AT);
    lv2_host_set_control(instance, "enabled", 1.0f);
    run_span(instance, s, BYPASS_ON_AT, SIGNAL_FRAMES);
  }
  lv2_host_instance_free(instance);
}

/** The frames from the first sample that leaves `a` to the first from
    which the output stays within 1e-6 of `b`, searched in [from, to). */
static size_t measured_fade(const float *out, const float *a, const float *b,
                            size_t from, size_t to)
{
  size_t start = from, end = to;
  while (start < to && out[start] == a[start]) {
    ++start;
  }
  while (end > start && fabsf(out[end - 1] - b[end - 1]) <= 1e-6f) {
    --end;
  }
  return end - start;
}

/** The bound for one channel: with out = (1 - g) a + g b and g rising by
    1/L a sample, |out[t+1] - out[t]| <= max(|a step|, |b step|) + |b - a| / L;
    the margin covers rounding (1e-6), and, for a stateful model faded in,
    its first few samples, which start from its settled state rather than
    mid-signal (2 / L: a transient under 2, weighted by g <= a few / L). */
static void check_channel(const fade_case *fade, const fade_signals *s, int c)
{
  const double step_a = max_step(s->a[c], 0, SIGNAL_FRAMES);
  const double step_b = max_step(s->b[c], 0, SIGNAL_FRAMES);
  const double step_via = max_step(s->via[c], 0, SIGNAL_FRAMES);
  const double gap = fmax(
    test_max_abs_diff(s->a[c], s->b[c], SIGNAL_FRAMES),
    fmax(test_max_abs_diff(s->a[c], s->via[c], SIGNAL_FRAMES),
         test_max_abs_diff(s->via[c], s->b[c], SIGNAL_FRAMES)));
  const double bound = fmax(fmax(step_a, step_b), step_via) +
                       gap / (double)fade->fade_frames + fade->margin;
  const double step = max_step(s->out[c], 0, SIGNAL_FRAMES);
  // Through `via`: two fades one after the other, the second waiting.
  const size_t expected = fade->fade_frames * (fade->via ? 2 : 1);
  const size_t from = SWITCH_AT - (fade->via ? 512 : 0);
  const size_t end = fade->to ? SIGNAL_FRAMES : BYPASS_ON_AT;
  const size_t length = measured_fade(s->out[c], s->a[c], s->b[c], from, end);
  CHECK(step <= bound, "%s, channel %d: largest step %.6f above the bound "
        "%.6f", fade->name, c, step, bound);
  CHECK(length + 2 >= expected && length <= expected + 64,
        "%s, channel %d: the fade took %zu frames, not about %zu", fade->name,
        c, length, expected);
  char via[48] = "";
  if (fade->via) {
    snprintf(via, sizeof(via), ", via %.5f", step_via);
  }
  printf("%s, channel %d: largest step %.5f <= bound %.5f (steps: from "
         "%.5f, to %.5f%s; gap %.3f over %zu frames; margin %.0e); fade "
         "measured %zu frames\n", fade->name, c, step, bound, step_a, step_b,
         via, gap, fade->fade_frames, fade->margin, length);
}

/** After bypass comes back on, the output returns to the model's. */
static void check_bypass_return(const fade_case *fade, const fade_signals *s,
                                int c)
{
  const size_t back = BYPASS_ON_AT + fade->fade_frames + 64;
  const double diff = test_max_abs_diff(s->out[c] + back, s->a[c] + back,
                                        SIGNAL_FRAMES - back);
  const double dry = test_max_abs_diff(s->out[c] + SWITCH_AT + 600,
                                       s->in[c] + SWITCH_AT + 600, 16000);
  CHECK(dry == 0.0, "%s: bypassed output is the dry input (differs by %g)",
        fade->name, dry);
  CHECK(diff <= 1e-6, "%s: after bypass the model's output again (differs "
        "by %g)", fade->name, diff);
  const double step = max_step(s->out[c], BYPASS_ON_AT - 256, back);
  printf("%s, channel %d: bypass back on: largest step %.5f\n", fade->name, c,
         step);
}

static void test_crossfade(const fade_case *fade)
{
  const int n_channels = strcmp(fade->uri, STEREO_URI) ? 1 : 2;
  fade_signals s;
  float **all[5] = {s.in, s.out, s.a, s.b, s.via};
  for (int k = 0; k < 5; ++k) {
    all[k][0] = new_signal(SIGNAL_FRAMES);
    all[k][1] = new_signal(SIGNAL_FRAMES);
  }
  make_sine(s.in[0], SIGNAL_FRAMES, 220.0, 0.4);
  make_sine(s.in[1], SIGNAL_FRAMES, 330.0, 0.25);
  reference(fade, fade->from, s.in, s.a);
  reference(fade, fade->to, s.in, s.b);
  reference(fade, fade->via ? fade->via : fade->from, s.in, s.via);
  run_fade(fade, &s);
  for (int c = 0; c < n_channels; ++c) {
    check_channel(fade, &s, c);
    if (!fade->to) {
      check_bypass_return(fade, &s, c);
    }
  }
  for (int k = 0; k < 5; ++k) {
    free(all[k][0]);
    free(all[k][1]);
  }
}

static void test_crossfades(void)
{
  const size_t load = LOAD_FADE_FRAMES(RATE), bypass = BYPASS_FADE_FRAMES(RATE);
  const fade_case cases[] = {
    {"first load: dry -> shaper", MONO_URI, NULL, fixture.shaper_model, load,
     1e-6, NULL},
    {"swap: soft-clip -> shaper", MONO_URI, fixture.demo_model,
     fixture.shaper_model, load, 1e-6, NULL},
    {"swap: soft-clip -> shaper, stereo", STEREO_URI, fixture.demo_model,
     fixture.shaper_model, load, 1e-6, NULL},
    {"swap: shaper -> soft-clip (stateful)", MONO_URI, fixture.shaper_model,
     fixture.demo_model, load, 2.0 / (double)load, NULL},
    {"bypass: soft-clip <-> dry", MONO_URI, fixture.demo_model, NULL, bypass,
     1e-6, NULL},
    {"bypass: LSTM <-> dry, stereo", STEREO_URI, fixture.lstm_model, NULL,
     bypass, 1e-6, NULL},
    {"swap overtaken mid-fade: soft-clip -> LSTM -> shaper", MONO_URI,
     fixture.demo_model, fixture.shaper_model, load, 2.0 / (double)load,
     fixture.lstm_model},
  };
  for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); ++k) {
    test_crossfade(&cases[k]);
  }
}

/* ------------------------------------------------------------------------ */
/* NaN and infinity */

typedef struct bad_input {
  const char *name;
  const char *uri;
  int channel;      ///< Which channel gets the bad sample
  size_t offset;    ///< Where in block BAD_BLOCK
  float value;
} bad_input;

#define BAD_BLOCK 40u  ///< Of 256 frames

/** Runs the signal in blocks of 256; in block BAD_BLOCK either puts the bad
    sample in, or (for the reference) silences the block on every channel:
    a reset returns the streams to the state silence settles them to. */
static void run_bad(const bad_input *bad, bool is_reference, bool is_clean,
                    float *const *in, float *const *out)
{
  lv2_host_instance *instance = open_unity(bad->uri, 0.5f, 0.5f, 0.5f);
  if (!instance) {
    return;
  }
  load_settled(instance, fixture.demo_model);
  const size_t at = BAD_BLOCK * 256;
  float saved[2][256];
  for (int c = 0; c < 2; ++c) {
    memcpy(saved[c], in[c] + at, sizeof(saved[c]));
    if (is_reference && !is_clean) {
      memset(in[c] + at, 0, sizeof(saved[c]));
    }
  }
  if (!is_reference) {
    in[bad->channel][at + bad->offset] = bad->value;
  }
  run_channels(instance, (const float *const *)in, out, SIGNAL_FRAMES, 256);
  for (int c = 0; c < 2; ++c) {
    memcpy(in[c] + at, saved[c], sizeof(saved[c]));
  }
  lv2_host_instance_free(instance);
}

static void check_bad_channel(const bad_input *bad, int c, float *const *out,
                              float *const *reset, float *const *clean)
{
  const size_t at = BAD_BLOCK * 256, after = at + 256;
  const size_t late = SIGNAL_FRAMES / 2;
  const double before = test_max_abs_diff(out[c], clean[c], at);
  const double resumed = test_max_abs_diff(out[c] + after, reset[c] + after,
                                           SIGNAL_FRAMES - after);
  const double recovered = test_max_abs_diff(out[c] + late, clean[c] + late,
                                             SIGNAL_FRAMES - late);
  CHECK(before == 0.0, "%s, channel %d: output before the bad block changed",
        bad->name, c);
  CHECK(all_zero(out[c] + at, 256), "%s, channel %d: the block with the bad "
        "sample is silent", bad->name, c);
  CHECK(all_finite(out[c], SIGNAL_FRAMES), "%s, channel %d: output finite",
        bad->name, c);
  CHECK(resumed <= 1e-6, "%s, channel %d: after the bad block the output is "
        "a reset run's (differs by %g)", bad->name, c, resumed);
  CHECK(recovered <= 1e-6, "%s, channel %d: 0.5 s later the output is the "
        "clean run's (differs by %g)", bad->name, c, recovered);
  printf("%s, channel %d: silent block, then within %.3g of a reset run and "
         "%.3g of the clean run 0.5 s on\n", bad->name, c, resumed, recovered);
}

static void test_bad_input(const bad_input *bad)
{
  const int n_channels = strcmp(bad->uri, STEREO_URI) ? 1 : 2;
  float *in[2], *out[2], *reset[2], *clean[2];
  for (int c = 0; c < 2; ++c) {
    in[c] = new_signal(SIGNAL_FRAMES);
    out[c] = new_signal(SIGNAL_FRAMES);
    reset[c] = new_signal(SIGNAL_FRAMES);
    clean[c] = new_signal(SIGNAL_FRAMES);
    test_signal(in[c], SIGNAL_FRAMES, 40 + (uint64_t)c);
  }
  run_bad(bad, false, false, in, out);
  run_bad(bad, true, false, in, reset);
  run_bad(bad, true, true, in, clean);
  for (int c = 0; c < n_channels; ++c) {
    check_bad_channel(bad, c, out, reset, clean);
  }
  for (int c = 0; c < 2; ++c) {
    free(in[c]);
    free(out[c]);
    free(reset[c]);
    free(clean[c]);
  }
}

/** A NaN while a model fades in: both models reset, the fade completes,
    and the new model's output follows. */
static void test_nan_during_fade(void)
{
  const size_t n = SIGNAL_FRAMES;
  float *x = new_signal(n), *y = new_signal(n);
  make_sine(x, n, 220.0, 0.4);
  lv2_host_instance *instance = open_plugin(MONO_URI, RATE, MAX_BLOCK);
  if (instance && load_settled(instance, fixture.demo_model)) {
    const float *in[1] = {x};
    float *out[1] = {y};
    lv2_host_send_patch_set_path(instance, MODEL_URI, fixture.shaper_model);
    lv2_host_run(instance, NULL, NULL, 256);
    lv2_host_wait_idle(instance, 10.0);
    lv2_host_process(instance, in, out, 512, 256);  // the fade under way
    x[600] = NAN;
    lv2_host_process(instance, (const float *[]){x + 512}, (float *[]){y + 512},
                     n - 512, 256);
    x[600] = 0.0f;
    double worst = 0.0;
    for (size_t t = n / 4; t < n; ++t) {
      worst = fmax(worst, fabs(y[t] - tanh(3.0 * x[t])));
    }
    CHECK(all_zero(y + 512, 256) && all_finite(y, n), "NaN during a fade: "
          "its block silent, all finite");
    CHECK(worst <= 1e-6, "NaN during a fade: the new model follows (off "
          "tanh(3x) by %g)", worst);
    printf("NaN during a fade: silent block, then off tanh(3x) by %.3g\n",
           worst);
  }
  lv2_host_instance_free(instance);
  free(x);
  free(y);
}

/** Without a model, and bypassed, a NaN block is silent too, and the
    next block passes the input through untouched. */
static void test_nan_passing_through(bool is_bypassed)
{
  const size_t n = 1024;
  float *x = new_signal(n), *y = new_signal(n);
  test_signal(x, n, 50);
  x[300] = NAN;
  lv2_host_instance *instance = open_unity(STEREO_URI, 0.5f, 0.5f, 0.5f);
  if (instance) {
    if (is_bypassed) {
      load_settled(instance, fixture.lstm_model);
      lv2_host_set_control(instance, "enabled", 0.0f);
      lv2_host_process(instance, NULL, NULL, 4800, 256);
    }
    run_signal(instance, x, y, n, 256);
    const double after = test_max_abs_diff(x + 512, y + 512, n - 512);
    CHECK(all_zero(y + 256, 256) && after == 0.0, "%s: the NaN block is "
          "silent (then the input again, off by %g)",
          is_bypassed ? "bypassed" : "no model", after);
  }
  lv2_host_instance_free(instance);
  free(x);
  free(y);
}

static void test_bad_inputs(void)
{
  const bad_input cases[] = {
    {"NaN, mono", MONO_URI, 0, 100, NAN},
    {"+Inf at a block's start, mono", MONO_URI, 0, 0, INFINITY},
    {"-Inf at a block's end, mono", MONO_URI, 0, 255, -INFINITY},
    {"NaN in the right channel, stereo", STEREO_URI, 1, 17, NAN},
    {"+Inf in the left channel, stereo", STEREO_URI, 0, 200, INFINITY},
  };
  for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); ++k) {
    test_bad_input(&cases[k]);
  }
  test_nan_during_fade();
  test_nan_passing_through(false);
  test_nan_passing_through(true);
}

/** The normalize toggle scales the model's output by the gain that brings
    its loudness to -18 dB (Carry's own measurement for a Keras file):
    after the toggle's glide, output on / output off is that gain. */
static void test_normalize(void)
{
  carry_model *model = carry_model_load(fixture.lstm_model, NULL);
  if (!CHECK(model && !carry_model_measure_loudness(model, NULL),
             "measure the Test LSTM's loudness")) {
    carry_model_free(model);
    return;
  }
  const double gain = pow(10.0, carry_model_normalize_gain_db(model) / 20.0);
  carry_model_free(model);
  const size_t n = 48000;
  float *x = new_signal(n), *off = new_signal(n), *on = new_signal(n);
  make_sine(x, n, 220.0, 0.3);
  lv2_host_instance *plain = open_unity(MONO_URI, 0.25f, 0.75f, 0.5f);
  lv2_host_instance *normal = open_unity(MONO_URI, 0.25f, 0.75f, 0.5f);
  if (plain && normal && load_settled(plain, fixture.lstm_model) &&
      load_settled(normal, fixture.lstm_model)) {
    lv2_host_set_control(normal, "normalize", 1.0f);
    run_signal(plain, x, off, n, 256);
    run_signal(normal, x, on, n, 256);
    double worst = 0.0; // after 0.5 s, far past the 20 ms glide
    for (size_t t = n / 2; t < n; ++t) {
      worst = fmax(worst, fabs(on[t] - gain * off[t]));
    }
    printf("normalize: gain %.3f dB, max |on - gain * off| = %.3g\n",
           20.0 * log10(gain), worst);
    CHECK(fabs(gain - 1.0) > 0.01 && worst <= 1e-5 * fmax(1.0, gain),
          "normalize scales the output by %g (error %g)", gain, worst);
  }
  lv2_host_instance_free(plain);
  lv2_host_instance_free(normal);
  free(x);
  free(off);
  free(on);
}

/** A restart (deactivate, activate) in the middle of the fade into a new
    model plays the model at once: what comes out is what a restart long
    after the fade gives, sample for sample. */
static void test_restart_ends_fade(void)
{
  const size_t n = 4096;
  float *x = new_signal(n), *mid = new_signal(n), *after = new_signal(n);
  test_signal(x, n, 31);
  lv2_host_instance *early = open_unity(MONO_URI, 0.5f, 0.5f, 0.5f);
  lv2_host_instance *late = open_unity(MONO_URI, 0.5f, 0.5f, 0.5f);
  char status[STATUS_SIZE];
  if (early && late &&
      load_model(early, fixture.shaper_model, status, sizeof(status), 0) &&
      load_settled(late, fixture.shaper_model)) {
    lv2_host_deactivate(early);
    lv2_host_activate(early);
    lv2_host_deactivate(late);
    lv2_host_activate(late);
    run_signal(early, x, mid, n, 256);
    run_signal(late, x, after, n, 256);
    CHECK(!memcmp(mid, after, n * sizeof(float)), "a restart during the "
          "fade still fades: up to %g off", test_max_abs_diff(mid, after, n));
    printf("restart during a fade: the model plays at once (largest "
           "difference %g)\n", test_max_abs_diff(mid, after, n));
  }
  lv2_host_instance_free(early);
  lv2_host_instance_free(late);
  free(x);
  free(mid);
  free(after);
}

/* ------------------------------------------------------------------------ */
/* Quality */

#define QUALITY_EXACT 0.0f
#define QUALITY_FAST 1.0f

/** When the quality port is set, relative to the model's load. */
typedef enum {
  SET_AFTER_LOAD,   ///< Loaded and settled at exact, then switched
  SET_BEFORE_LOAD,  ///< The engine is swapped in while the port says fast
  SET_BEFORE_SWAP,  ///< Another model plays; the preset fades in over it
} quality_timing;

/** The plugin's output over `in` with the preset at drive 0.25, tone 0.75
    and the quality port at `quality`, set as `timing` says. */
static void quality_output(const char *uri, const char *preset, float quality,
                           quality_timing timing, const float *const *in,
                           float *const *out)
{
  lv2_host_instance *instance = open_unity(uri, 0.25f, 0.75f, 0.5f);
  if (!instance) {
    return;
  }
  if (timing == SET_BEFORE_SWAP) {
    load_settled(instance, fixture.demo_model);
  }
  if (timing != SET_AFTER_LOAD) {
    lv2_host_set_control(instance, "quality", quality);
  }
  load_settled(instance, preset);
  lv2_host_set_control(instance, "quality", quality);
  run_channels(instance, in, out, SIGNAL_FRAMES, 256);
  lv2_host_instance_free(instance);
}

static double channels_diff(const float *const *a, const float *const *b,
                            int n_channels)
{
  double diff = 0.0;
  for (int c = 0; c < n_channels; ++c) {
    diff = fmax(diff, test_max_abs_diff(a[c], b[c], SIGNAL_FRAMES));
  }
  return diff;
}

/** `carry process --quality` on the preset; false if it failed. */
static bool quality_reference(const char *preset, const char *quality,
                              const float *const *in, float *const *out,
                              int n_channels)
{
  static const char *const params[] = {"drive=0.25", "tone=0.75", NULL};
  const char *options[] = {"--quality", quality, NULL};
  const char *wav_in = temp_path(n_channels == 1 ? "q_mono.wav"
                                                 : "q_stereo.wav");
  const char *wav_out = temp_path("q_processed.wav");
  const int status = write_wav(wav_in, in, n_channels, SIGNAL_FRAMES)
                       ? run_carry_process_with(preset, params, options,
                                                wav_in, wav_out)
                       : -1;
  return CHECK(status == 0, "carry process --quality %s: exit status %d",
               quality, status) &&
         CHECK(read_wav(wav_out, out, n_channels, SIGNAL_FRAMES),
               "read carry process's output");
}

/** The plugin switched to fast after the load: within 1e-4 of exact, and
    within 1e-6 (as in test_equals_carry_process) of `carry process
    --quality fast`, which the exact output misses by the fast
    activations' whole error: an ignored port fails, once they differ. */
static void check_quality_switch(int n_channels, const float *const *in,
                                 double reference_gap)
{
  const char *preset = test_source_path("presets/overdrive.json");
  const char *uri = n_channels == 1 ? MONO_URI : STEREO_URI;
  float *exact[2] = {new_signal(SIGNAL_FRAMES), new_signal(SIGNAL_FRAMES)};
  float *fast[2] = {new_signal(SIGNAL_FRAMES), new_signal(SIGNAL_FRAMES)};
  float *expected[2] = {new_signal(SIGNAL_FRAMES), new_signal(SIGNAL_FRAMES)};
  quality_output(uri, preset, QUALITY_EXACT, SET_AFTER_LOAD, in, exact);
  quality_output(uri, preset, QUALITY_FAST, SET_AFTER_LOAD, in, fast);
  const char *name = n_channels == 1 ? "mono" : "stereo";
  if (quality_reference(preset, "fast", in, expected, n_channels)) {
    const double gap = channels_diff((const float *const *)fast,
                                     (const float *const *)exact, n_channels);
    const double off = channels_diff((const float *const *)fast,
                                     (const float *const *)expected,
                                     n_channels);
    CHECK(gap <= 1e-4, "%s: fast quality is %g from exact, more than 1e-4",
          name, gap);
    CHECK(off <= 1e-6, "%s: fast quality differs from carry process "
          "--quality fast by %g (which is %g from exact)", name, off,
          reference_gap);
    printf("overdrive, %s, quality fast: %.3g from exact, %.3g from carry "
           "process --quality fast\n", name, gap, off);
  }
  for (int c = 0; c < 2; ++c) {
    free(exact[c]);
    free(fast[c]);
    free(expected[c]);
  }
}

/** A model that arrives while the port says fast, loaded alone or faded
    in over another, plays fast: within 1e-4 of exact, and not exact once
    the fast activations differ (the engine starts at exact; only run()
    can switch it). */
static void check_quality_on_arrival(quality_timing timing, const float *x,
                                     double reference_gap)
{
  const char *preset = test_source_path("presets/overdrive.json");
  const char *name = timing == SET_BEFORE_LOAD ? "loaded while fast"
                                               : "faded in while fast";
  float *exact = new_signal(SIGNAL_FRAMES), *fast = new_signal(SIGNAL_FRAMES);
  quality_output(MONO_URI, preset, QUALITY_EXACT, timing,
                 (const float *[]){x}, (float *[]){exact});
  quality_output(MONO_URI, preset, QUALITY_FAST, timing,
                 (const float *[]){x}, (float *[]){fast});
  const double gap = test_max_abs_diff(fast, exact, SIGNAL_FRAMES);
  CHECK(gap <= 1e-4, "%s: %g from exact, more than 1e-4", name, gap);
  CHECK(reference_gap <= 1e-6 || gap > 0.0, "%s: the output is exact's, "
        "sample for sample: the new engine was not switched to fast", name);
  printf("overdrive, %s: %.3g from exact\n", name, gap);
  free(exact);
  free(fast);
}

static void test_quality(void)
{
  const char *preset = test_source_path("presets/overdrive.json");
  float *left = new_signal(SIGNAL_FRAMES), *right = new_signal(SIGNAL_FRAMES);
  float *exact[2] = {new_signal(SIGNAL_FRAMES), new_signal(SIGNAL_FRAMES)};
  float *fast[2] = {new_signal(SIGNAL_FRAMES), new_signal(SIGNAL_FRAMES)};
  test_signal(left, SIGNAL_FRAMES, 21);
  test_signal(right, SIGNAL_FRAMES, 22);
  const float *in[2] = {left, right};
  if (quality_reference(preset, "exact", in, exact, 2) &&
      quality_reference(preset, "fast", in, fast, 2)) {
    const double gap = channels_diff((const float *const *)exact,
                                     (const float *const *)fast, 2);
    printf("overdrive: carry process --quality fast is %.3g from exact%s\n",
           gap, gap <= 1e-6 ? " (the fast activations are still the exact "
                              "ones: until they differ, these tests cannot "
                              "tell whether the port reaches the streams)"
                            : "");
    check_quality_switch(1, in, gap);
    check_quality_switch(2, in, gap);
    check_quality_on_arrival(SET_BEFORE_LOAD, left, gap);
    check_quality_on_arrival(SET_BEFORE_SWAP, left, gap);
  }
  free(left);
  free(right);
  for (int c = 0; c < 2; ++c) {
    free(exact[c]);
    free(fast[c]);
  }
}

int main(void)
{
  if (!fixture_set_up()) {
    fixture_tear_down();
    return 99;
  }
  const model_case models[] = {
    {"soft-clip, asymmetry 0.5", fixture.demo_model, {0.5f, 0.5f, 0.5f},
     {"asymmetry=0.5", NULL, NULL}},
    {"Test LSTM, drive 0.25, tone 0.5", fixture.lstm_model,
     {0.25f, 0.75f, 0.5f}, {"drive=0.25", "tone=0.5", NULL}},
  };
  for (size_t k = 0; k < sizeof(models) / sizeof(models[0]); ++k) {
    test_equals_carry_process(&models[k]);
  }
  test_unused_knobs();
  test_gains_and_mix(MONO_URI);
  test_gains_and_mix(STEREO_URI);
  test_smoothing();
  test_crossfades();
  test_bad_inputs();
  test_normalize();
  test_restart_ends_fade();
  test_quality();
  fixture_tear_down();
  return test_finish("plugin_audio");
}
