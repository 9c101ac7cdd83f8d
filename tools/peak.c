/*
  The calibration loop behind `carry bench`'s efficiency column: this
  machine's sustained rate of float multiply-adds with the kernels' vector
  width, measured in the same process as the benchmark.  Compiled once per
  instruction set, like the kernels.
*/

#include "peak.h"

#include "../dsp/vmath.h"

#include <time.h>

#define PASTE_(a, b) a##_##b
#define PASTE(a, b) PASTE_(a, b)

static double now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/** Twelve independent chains hide the multiply-add latency (4 cycles at 2
    per cycle needs at least 8).  The values converge to 1, far from
    denormals and overflow. */
static float run_chains(long n_rounds)
{
  v8f acc[12];
  for (int k = 0; k < 12; ++k) {
    acc[k] = v_set1((float)k);
  }
  const v8f scale = v_set1(0.999f), offset = v_set1(0.001f);
  for (long r = 0; r < n_rounds; ++r) {
    for (int k = 0; k < 12; ++k) {
      acc[k] = acc[k] * scale + offset;
    }
  }
  float sum = 0.0f;
  for (int k = 0; k < 12; ++k) {
    sum += v_sum(acc[k]);
  }
  return sum;
}

double PASTE(carry_peak_macs_per_ns, CARRY_ISA)(double seconds)
{
  const long n_rounds = 1000000;
  volatile float sink = 0.0f;
  double best = 0.0, spent = 0.0;
  while (spent < seconds * 1e9) {
    const double start = now_ns();
    sink += run_chains(n_rounds);
    const double elapsed = now_ns() - start;
    const double rate = 12.0 * 8.0 * (double)n_rounds / elapsed;
    best = rate > best ? rate : best;
    spent += elapsed;
  }
  (void)sink;
  return best;
}
