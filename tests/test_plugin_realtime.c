/*
  The plugin's audio thread is real-time safe, proven with the interposer
  (interposer.c): allocations, frees and lock waits are counted on the
  calling thread only, and only while the plugin's run(), work_response()
  or end_run() runs (the host's audio hook switches counting on and off
  around each call), so the worker thread's loading and freeing and the
  host's own bookkeeping do not count.  The counted session has model
  loads, swaps with their crossfades, a failed load, bursts of requests,
  patch:Get, bypass toggles, control changes, quality switches (alone, with
  a model arriving while fast, and mid-crossfade), NaN input, random block
  sizes and 0-frame runs; it runs once uncounted first (lazy binding,
  first touches).  There must be no call at all.

  Not built under the sanitizers, whose runtimes own malloc themselves.
*/

#include "interposer.h"
#include "test_plugin_common.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SESSION_FRAMES 48000u

static void count_plugin_calls(void *data, bool is_entering)
{
  (void)data;
  interposer_count_this_thread(is_entering);
}

/* ------------------------------------------------------------------------ */
/* The interposer counts this thread only */

static atomic_int go, done;

/** Waits for the signal, allocates and frees, says it is done. */
static void *allocate_elsewhere(void *data)
{
  while (!atomic_load(&go)) {
  }
  void *volatile p = malloc(64);
  free(p);
  atomic_store(&done, 1);
  return data;
}

static void test_thread_counting(void)
{
  interposer->n_allocs = interposer->n_frees = 0;
  interposer_count_this_thread(true);
  void *volatile p = malloc(16);
  free(p);
  interposer_count_this_thread(false);
  CHECK(interposer->n_allocs == 1 && interposer->n_frees == 1,
        "the interposer counts this thread's malloc and free");
  pthread_t thread;
  if (!CHECK(!pthread_create(&thread, NULL, allocate_elsewhere, NULL),
             "start a thread")) {
    return;
  }
  interposer->n_allocs = interposer->n_frees = 0;
  interposer_count_this_thread(true);
  atomic_store(&go, 1);
  while (!atomic_load(&done)) {
  }
  interposer_count_this_thread(false);
  pthread_join(thread, NULL);
  CHECK(interposer->n_allocs == 0 && interposer->n_frees == 0,
        "another thread's malloc and free are not counted");
}

/* ------------------------------------------------------------------------ */
/* The session */

typedef struct session {
  lv2_host_instance *instance;
  float *in[2];
  float *out[2];
  size_t at;        ///< Frames of the signal run so far
  uint64_t seed;    ///< Block sizes
} session;

/** Runs `n` more frames of the signal in random block sizes. */
static void play(session *s, size_t n)
{
  n = s->at + n > SESSION_FRAMES ? SESSION_FRAMES - s->at : n;
  const float *in[2] = {s->in[0] + s->at, s->in[1] + s->at};
  float *out[2] = {s->out[0] + s->at, s->out[1] + s->at};
  lv2_host_process_random(s->instance, in, out, n, &s->seed);
  s->at += n;
}

/** Requests a model and plays on until the worker answered. */
static void swap_to(session *s, const char *model, size_t frames_after)
{
  lv2_host_send_patch_set_path(s->instance, MODEL_URI, model);
  lv2_host_run(s->instance, NULL, NULL, 64);
  lv2_host_wait_idle(s->instance, 10.0);
  play(s, frames_after);
  lv2_host_wait_idle(s->instance, 10.0);
}

static void burst(session *s)
{
  const char *models[3] = {fixture.lstm_model, fixture.bad_model,
                           fixture.demo_model};
  for (int k = 0; k < 10; ++k) {
    lv2_host_send_patch_set_path(s->instance, MODEL_URI, models[k % 3]);
  }
  play(s, 2048);
  for (int k = 0; k < 10; ++k) {
    lv2_host_send_patch_set_path(s->instance, MODEL_URI, models[k % 3]);
    lv2_host_run(s->instance, NULL, NULL, 32);
  }
  lv2_host_wait_idle(s->instance, 10.0);
  play(s, 4096);
  lv2_host_wait_idle(s->instance, 10.0);
}

static void toggle_controls(session *s)
{
  lv2_host_set_control(s->instance, "enabled", 0.0f);
  play(s, 2048);
  lv2_host_set_control(s->instance, "enabled", 1.0f);
  lv2_host_set_control(s->instance, "input_gain", 9.0f);
  lv2_host_set_control(s->instance, "output_gain", -6.0f);
  lv2_host_set_control(s->instance, "mix", 0.4f);
  lv2_host_set_control(s->instance, "knob1", 0.9f);
  play(s, 2048);
  lv2_host_set_control(s->instance, "input_gain", 0.0f);
  lv2_host_set_control(s->instance, "mix", 1.0f);
}

/** Quality switches: alone, with a model swapped in while fast (run()
    switches the new engine), and back and forth during its crossfade. */
static void switch_quality(session *s)
{
  lv2_host_set_control(s->instance, "quality", 1.0f);
  play(s, 1024);
  lv2_host_send_patch_set_path(s->instance, MODEL_URI, fixture.demo_model);
  lv2_host_run(s->instance, NULL, NULL, 64);
  lv2_host_wait_idle(s->instance, 10.0);
  play(s, 256);                              // 30 ms fade under way
  lv2_host_set_control(s->instance, "quality", 0.0f);
  play(s, 256);
  lv2_host_set_control(s->instance, "quality", 1.0f);
  play(s, 2048);
  lv2_host_wait_idle(s->instance, 10.0);
}

static void inject_nan(session *s)
{
  const float saved = s->in[0][s->at + 10];
  s->in[0][s->at + 10] = NAN;
  play(s, 512);
  s->in[0][s->at - 512 + 10] = saved;
}

static void run_session(session *s)
{
  s->at = 0;
  swap_to(s, fixture.demo_model, 4096);      // dry -> model
  swap_to(s, fixture.lstm_model, 4096);      // model -> model
  swap_to(s, fixture.bad_model, 2048);       // a failed load
  burst(s);
  toggle_controls(s);
  switch_quality(s);                         // fast from here
  lv2_host_set_control(s->instance, "rate_mode", 2.0f); // reloads resampled
  play(s, 2048);
  lv2_host_set_control(s->instance, "rate_mode", 0.0f);
  lv2_host_set_control(s->instance, "quality", 0.0f);
  lv2_host_send_patch_get(s->instance, NULL);
  play(s, 1024);
  inject_nan(s);
  for (int k = 0; k < 4; ++k) {
    lv2_host_run(s->instance, NULL, NULL, 0);
  }
  swap_to(s, fixture.shaper_model, 1024);
  play(s, SESSION_FRAMES);                   // the rest
}

/** A session at `rate`: at 44100 Hz every model runs resampled. */
static void test_session(const char *uri, double rate)
{
  session s = {.seed = 5};
  s.instance = open_plugin(uri, rate, 1024);
  if (!s.instance) {
    return;
  }
  for (int c = 0; c < 2; ++c) {
    s.in[c] = new_signal(SESSION_FRAMES);
    s.out[c] = new_signal(SESSION_FRAMES);
    test_signal(s.in[c], SESSION_FRAMES, 60 + (uint64_t)c);
  }
  run_session(&s);  // warm-up, uncounted
  lv2_host_set_audio_hook(s.instance, count_plugin_calls, NULL);
  interposer->n_allocs = interposer->n_frees = interposer->n_locks = 0;
  const uint64_t n_requests = lv2_host_n_work_requests(s.instance);
  run_session(&s);
  lv2_host_set_audio_hook(s.instance, NULL, NULL);
  const uint64_t n_work = lv2_host_n_work_requests(s.instance) - n_requests;
  const char *status = ask(s.instance, NULL, STATUS_URI);
  CHECK(interposer->n_allocs == 0, "%s: allocations on the audio thread: %ld",
        uri, interposer->n_allocs);
  CHECK(interposer->n_frees == 0, "%s: frees on the audio thread: %ld", uri,
        interposer->n_frees);
  CHECK(interposer->n_locks == 0, "%s: locks on the audio thread: %ld", uri,
        interposer->n_locks);
  CHECK(n_work >= 6, "%s: the counted session went through the worker (%llu "
        "requests)", uri, (unsigned long long)n_work);
  CHECK(!strncmp(status, "loaded: \"Test Shaper\"", 21), "%s: the session "
        "ends on the shaper: '%s'", uri, status);
  CHECK(all_finite(s.out[0], SESSION_FRAMES), "%s: output finite", uri);
  printf("%s at %.0f Hz: %llu worker requests; on the audio thread %ld "
         "allocations, %ld frees, %ld locks\n", uri, rate,
         (unsigned long long)n_work,
         interposer->n_allocs, interposer->n_frees, interposer->n_locks);
  lv2_host_instance_free(s.instance);
  for (int c = 0; c < 2; ++c) {
    free(s.in[c]);
    free(s.out[c]);
  }
}

int main(void)
{
  interposer_init();
  test_thread_counting();
  if (!fixture_set_up()) {
    fixture_tear_down();
    return 99;
  }
  test_session(MONO_URI, RATE);
  test_session(STEREO_URI, RATE);
  test_session(MONO_URI, 44100.0);
  test_session(STEREO_URI, 44100.0);
  fixture_tear_down();
  return test_finish("plugin_realtime");
}
