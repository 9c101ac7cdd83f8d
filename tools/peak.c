/*
  The calibration loop behind `carry bench`'s efficiency column: this
  machine's sustained rate of float multiply-adds with the kernels' vector
  width, measured in the same process as the benchmark.  Compiled once per
  instruction set, like the kernels.
*/

#include "peak.h"

#include "../dsp/vmath_wide.h"

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
#if defined(__AVX512F__)
typedef v16f peak_vector;  // the AVX-512 kernels' recurrent tiles
#  define peak_set1 w_set1
#else
typedef v8f peak_vector;
#  define peak_set1 v_set1
#endif
#define PEAK_LANES ((int)(sizeof(peak_vector) / sizeof(float)))

static float run_chains(long n_rounds)
{
  peak_vector acc[12];
  for (int k = 0; k < 12; ++k) {
    acc[k] = peak_set1((float)k);
  }
  const peak_vector scale = peak_set1(0.999f), offset = peak_set1(0.001f);
  for (long r = 0; r < n_rounds; ++r) {
    for (int k = 0; k < 12; ++k) {
      acc[k] = acc[k] * scale + offset;
    }
  }
  float sum = 0.0f;
  for (int k = 0; k < 12; ++k) {
    for (int lane = 0; lane < PEAK_LANES; ++lane) {
      sum += acc[k][lane];
    }
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
    const double rate = 12.0 * PEAK_LANES * (double)n_rounds / elapsed;
    best = rate > best ? rate : best;
    spent += elapsed;
  }
  (void)sink;
  return best;
}
