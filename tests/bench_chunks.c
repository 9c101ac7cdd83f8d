/*
  What the core's chunk size costs: a benchmark, not a test.

  A stream works through any call in chunks of at most CARRY_CHUNK_SIZE
  samples (fewer when its maximum block is smaller), and its scratch is one
  chunk's layer outputs, so the chunk is what keeps memory from growing
  with the host's block (issue 8, goal 6).  Here streams of the same model
  with chunks of 4, 8, 16 and 32 samples (maximum blocks of that size)
  run the same signal in host blocks of 128, in turn, round after round,
  in one process; each reports its median ns per sample, its ratio to the
  32-sample chunk's, and its scratch in bytes (carry_stream_memory()).
  Larger chunks need the core built with another CARRY_CHUNK_SIZE.

  Run with `meson test -C build --benchmark chunks`.  Results are printed,
  nothing is asserted.
*/

#include "carry.h"
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N_CHUNKS 4
#define N_ROUNDS 15
#define ROUND_SAMPLES 9600  ///< 0.2 s at 48 kHz
#define HOST_BLOCK 128

static const uint32_t chunks[N_CHUNKS] = {4, 8, 16, 32};

static double now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static double time_round(carry_stream *stream, const float *in, float *out)
{
  const double start = now_ns();
  for (size_t t = 0; t < ROUND_SAMPLES; t += HOST_BLOCK) {
    carry_stream_process(stream, in + t, NULL, out + t, HOST_BLOCK);
  }
  return (now_ns() - start) / ROUND_SAMPLES;
}

static int compare_doubles(const void *a, const void *b)
{
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *values, int n)
{
  qsort(values, (size_t)n, sizeof(double), compare_doubles);
  return values[n / 2];
}

static void bench_model(const char *label, carry_layer_type type,
                        int n_units, const float *in, float *out)
{
  test_rng rng = test_rng_new(7);
  carry_model *model = test_random_model(type, n_units, 1, 1, false, &rng);
  carry_stream *streams[N_CHUNKS] = {NULL};
  double ns[N_CHUNKS][N_ROUNDS];
  for (int k = 0; k < N_CHUNKS; ++k) {
    streams[k] = carry_stream_create(model, chunks[k], NULL);
    time_round(streams[k], in, out); // warm up
  }
  for (int r = 0; r < N_ROUNDS; ++r) {
    for (int j = 0; j < N_CHUNKS; ++j) {
      const int k = (j + r) % N_CHUNKS; // a different one first each round
      ns[k][r] = time_round(streams[k], in, out);
    }
  }
  double medians[N_CHUNKS];
  for (int k = 0; k < N_CHUNKS; ++k) {
    medians[k] = median(ns[k], N_ROUNDS);
  }
  for (int k = 0; k < N_CHUNKS; ++k) {
    const carry_memory memory =
      carry_stream_memory(model, chunks[k], CARRY_KERNELS_AUTO);
    printf("%-8s chunk %2u: %7.1f ns/sample, %.2fx the 32-sample chunk's "
           "time, scratch %zu bytes\n",
           label, chunks[k], medians[k], medians[k] / medians[N_CHUNKS - 1],
           memory.scratch);
    carry_stream_free(streams[k]);
  }
  carry_model_free(model);
}

int main(void)
{
  float *in = calloc(ROUND_SAMPLES, sizeof(float));
  float *out = calloc(ROUND_SAMPLES, sizeof(float));
  if (!in || !out) {
    return 1;
  }
  test_signal(in, ROUND_SAMPLES, 3);
  printf("streams of one model with chunks of 4 to 32 samples, host blocks "
         "of %d, median of %d rounds of %d samples\n",
         HOST_BLOCK, N_ROUNDS, ROUND_SAMPLES);
  bench_model("LSTM-16", CARRY_LAYER_LSTM, 16, in, out);
  bench_model("LSTM-32", CARRY_LAYER_LSTM, 32, in, out);
  bench_model("LSTM-64", CARRY_LAYER_LSTM, 64, in, out);
  bench_model("GRU-32", CARRY_LAYER_GRU, 32, in, out);
  free(in);
  free(out);
  return 0;
}
