/*
  Why the audio path does not call OpenBLAS: a benchmark, not a test.

  Times, in one process, the two products of a recurrent layer both ways:
  the per-sample recurrent product (cblas_sgemv against Carry's register
  tiles) and the input projection of a 128-sample block (one cblas_sgemm
  against a tile pass per sample); and counts, with an interposer, the
  allocations and mutex locks OpenBLAS makes inside those calls.

  Run with `meson test -C build --benchmark openblas` (built only when
  OpenBLAS is installed).  Results are printed, not asserted.
*/

#define _GNU_SOURCE

#include "interposer.h"
#include "kernels.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { BLOCK = 128, N_STEPS = 20000, N_ROUNDS = 7 };

/* ------------------------------------------------------------------------ */
/* Timing */

static double now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

typedef struct {
  int H, G;
  float *recurrent; // (H, G)
  float *h;         // (H)
  float *z;         // (G)
  float *x;         // (BLOCK, H)
  float *pre;       // (BLOCK, G)
} layer;

/** A step feeds back into h, as a recurrence does. */
static double time_sgemv(layer *l)
{
  const double start = now_ns();
  for (int n = 0; n < N_STEPS; ++n) {
    cblas_sgemv(CblasRowMajor, CblasTrans, l->H, l->G, 1.0f, l->recurrent,
                l->G, l->h, 1, 1.0f, l->z, 1);
    l->h[n % l->H] = l->z[n % l->G] * 1e-6f;
  }
  return (now_ns() - start) / N_STEPS;
}

static double time_tiles(layer *l)
{
  const double start = now_ns();
  for (int n = 0; n < N_STEPS; ++n) {
    carry_matvec_acc(l->recurrent, l->G, l->H, l->G, l->h, l->z, l->z);
    l->h[n % l->H] = l->z[n % l->G] * 1e-6f;
  }
  return (now_ns() - start) / N_STEPS;
}

/** Per sample of a block. */
static double time_sgemm(layer *l)
{
  const int n_blocks = N_STEPS / BLOCK;
  const double start = now_ns();
  for (int n = 0; n < n_blocks; ++n) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, BLOCK, l->G, l->H,
                1.0f, l->x, l->H, l->recurrent, l->G, 1.0f, l->pre, l->G);
  }
  return (now_ns() - start) / (n_blocks * BLOCK);
}

static double time_projection(layer *l)
{
  const int n_blocks = N_STEPS / BLOCK;
  const double start = now_ns();
  for (int n = 0; n < n_blocks; ++n) {
    for (int t = 0; t < BLOCK; ++t) {
      float *row = l->pre + (size_t)t * (size_t)l->G;
      carry_matvec_acc(l->recurrent, l->G, l->H, l->G,
                       l->x + (size_t)t * (size_t)l->H, row, row);
    }
  }
  return (now_ns() - start) / (n_blocks * BLOCK);
}

static double minimum(double a, double b)
{
  return a < b ? a : b;
}

static void count_calls(layer *l, long *counts)
{
  interposer->n_allocs = interposer->n_locks = 0;
  interposer->is_counting = 1;
  for (int n = 0; n < 100; ++n) {
    cblas_sgemv(CblasRowMajor, CblasTrans, l->H, l->G, 1.0f, l->recurrent,
                l->G, l->h, 1, 1.0f, l->z, 1);
  }
  interposer->is_counting = 0;
  counts[0] = interposer->n_allocs;
  counts[1] = interposer->n_locks;
  interposer->n_allocs = interposer->n_locks = 0;
  interposer->is_counting = 1;
  for (int n = 0; n < 100; ++n) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, BLOCK, l->G, l->H,
                1.0f, l->x, l->H, l->recurrent, l->G, 1.0f, l->pre, l->G);
  }
  interposer->is_counting = 0;
  counts[2] = interposer->n_allocs;
  counts[3] = interposer->n_locks;
}

static void compare(int H)
{
  const int G = 4 * H;
  layer l = {H, G, aligned_alloc(64, sizeof(float) * (size_t)(H * G)),
             aligned_alloc(64, sizeof(float) * (size_t)H),
             aligned_alloc(64, sizeof(float) * (size_t)G),
             aligned_alloc(64, sizeof(float) * (size_t)(BLOCK * H)),
             aligned_alloc(64, sizeof(float) * (size_t)(BLOCK * G))};
  for (int k = 0; k < H * G; ++k) {
    l.recurrent[k] = 0.01f * (float)(k % 7);
  }
  for (int k = 0; k < BLOCK * H; ++k) {
    l.x[k] = 0.01f;
  }
  memset(l.h, 0, sizeof(float) * (size_t)H);
  memset(l.z, 0, sizeof(float) * (size_t)G);
  memset(l.pre, 0, sizeof(float) * (size_t)(BLOCK * G));
  double t[4] = {1e30, 1e30, 1e30, 1e30};
  for (int round = 0; round < N_ROUNDS; ++round) {
    t[0] = minimum(t[0], time_sgemv(&l));
    t[1] = minimum(t[1], time_tiles(&l));
    t[2] = minimum(t[2], time_sgemm(&l));
    t[3] = minimum(t[3], time_projection(&l));
  }
  long counts[4];
  count_calls(&l, counts);
  printf("%4d %13.1f %12.1f %15.1f %12.1f   %ld/%ld %ld/%ld\n", H, t[0], t[1],
         t[2], t[3], counts[0], counts[1], counts[2], counts[3]);
  free(l.recurrent);
  free(l.h);
  free(l.z);
  free(l.x);
  free(l.pre);
}

int main(void)
{
  interposer_init();
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
    printf("this CPU has no AVX2 and FMA: nothing to compare\n");
    return 0;
  }
  printf("ns per sample, best of %d rounds; allocations/locks per 100 "
         "calls\n", N_ROUNDS);
  printf("%4s %13s %12s %15s %12s   %s\n", "H", "sgemv step", "tiles step",
         "sgemm project", "tiles proj.", "sgemv sgemm");
  for (int H = 16; H <= 64; H *= 2) {
    compare(H);
  }
  return 0;
}
