/*
  Rate streams make no allocation, free, lock or system call while they
  process or reset, resampling or not: tests/interposer.c counts the calls
  after a warm-up, and a forked child then processes again under a
  seccomp filter that kills it on any system call but exit (as
  test_realtime does for the core).  Not under the sanitizers, whose
  runtimes own malloc.
*/

#define _GNU_SOURCE

#include "carry_rate.h"
#include "harness.h"
#include "interposer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

enum { N_SAMPLES = 40000, MAX_BLOCK = 512, N_STREAMS = 6 };

static float in[N_SAMPLES], out[N_SAMPLES];

static void check_interposer_works(void)
{
  interposer->is_counting = 1;
  void *volatile p = malloc(16);
  free(p);
  interposer->is_counting = 0;
  CHECK(interposer->n_allocs == 1 && interposer->n_frees == 1,
        "the interposer sees malloc and free");
  interposer->n_allocs = interposer->n_frees = 0;
}

/** Random blocks up to three times the maximum (so calls are split), a
    NaN now and then, and a reset halfway. */
static void process_all(carry_rate_stream **streams, uint64_t seed)
{
  test_rng rng = test_rng_new(seed);
  const float knobs[1] = {0.8f};
  for (int k = 0; k < N_STREAMS; ++k) {
    for (size_t t = 0; t < N_SAMPLES;) {
      size_t n = (size_t)test_rng_int(&rng, 0, 3 * MAX_BLOCK);
      n = n > N_SAMPLES - t ? N_SAMPLES - t : n;
      carry_rate_stream_process(streams[k], in + t, knobs, out + t,
                                (uint32_t)n);
      t += n;
    }
    carry_rate_stream_reset(streams[k]);
  }
}

static void check_no_calls(carry_rate_stream **streams)
{
  process_all(streams, 1); // warm-up: lazy binding, first touches
  interposer->is_counting = 1;
  process_all(streams, 2);
  interposer->is_counting = 0;
  CHECK(interposer->n_allocs == 0, "allocations while processing: %ld",
        interposer->n_allocs);
  CHECK(interposer->n_frees == 0, "frees while processing: %ld",
        interposer->n_frees);
  CHECK(interposer->n_locks == 0, "locks taken while processing: %ld",
        interposer->n_locks);
}

static void process_streams(void *context, uint64_t seed)
{
  process_all(context, seed);
}

static void check_no_system_calls(carry_rate_stream **streams)
{
  const int status =
    interposer_run_without_system_calls(process_streams, streams);
  if (status == -1) {
    printf("seccomp is not available here: system-call check skipped\n");
    return;
  }
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
        "processing under a no-system-call filter must survive (status %#x%s)",
        status, WIFSIGNALED(status) ? ", killed: a system call was made" : "");
}

int main(void)
{
  interposer_init();
  check_interposer_works();
  test_signal(in, N_SAMPLES, 4);
  in[1000] = NAN;
  test_rng rng = test_rng_new(9);
  carry_model *model = test_random_model(CARRY_LAYER_LSTM, 16, 1, 2, true,
                                         &rng);
  carry_model_spec spec = *carry_model_get_spec(model);
  spec.sample_rate = 48000.0;
  carry_model_set_info(model, &spec, NULL);
  const double hosts[N_STREAMS] = {44100, 88200, 96000, 192000, 48000, 22050};
  carry_rate_stream *streams[N_STREAMS];
  for (int k = 0; k < N_STREAMS; ++k) {
    streams[k] = carry_rate_stream_create(model, hosts[k], CARRY_RATE_AUTO,
                                          MAX_BLOCK, NULL);
    if (!streams[k]) {
      return 99;
    }
    carry_rate_stream_settle(streams[k], NULL, 4800);
  }
  check_no_calls(streams);
  check_no_system_calls(streams);
  for (int k = 0; k < N_STREAMS; ++k) {
    carry_rate_stream_free(streams[k]);
  }
  carry_model_free(model);
  return test_finish("rate_realtime");
}
