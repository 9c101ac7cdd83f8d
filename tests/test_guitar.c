/*
  The guitar-like signal (tools/guitar.c): the tour stays what it was for
  short lengths, the training programme is seeded, prefix-stable, peaks at
  no more than -3 dBFS and has what training needs: a wide range of
  levels, silences, broadband noise, at every sample rate.
*/

#include "guitar.h"
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RATE 48000.0

static float *render(bool (*renderer)(float *, size_t, double, uint64_t),
                     size_t n, double rate, uint64_t seed)
{
  float *x = malloc((n ? n : 1) * sizeof(float));
  if (!x || !renderer(x, n, rate, seed)) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
  return x;
}

static bool same(const float *a, const float *b, size_t n)
{
  return !memcmp(a, b, n * sizeof(float));
}

static double peak_dbfs(const float *x, size_t n)
{
  float p = 0.0f;
  for (size_t t = 0; t < n; ++t) {
    p = fmaxf(p, fabsf(x[t]));
  }
  return 20.0 * log10(p);
}

static int compare_doubles(const void *a, const void *b)
{
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* ------------------------------------------------------------------------ */

/** Up to 12 s guitar_render gives the tour, beyond it the programme. */
static void test_dispatch(void)
{
  const size_t tour_n = (size_t)(GUITAR_TOUR_SECONDS * RATE);
  float *a = render(guitar_render, tour_n, RATE, 1);
  float *b = render(guitar_render_tour, tour_n, RATE, 1);
  CHECK(same(a, b, tour_n), "12 s is not the tour");
  free(a);
  free(b);
  a = render(guitar_render, tour_n + 1, RATE, 1);
  b = render(guitar_render_programme, tour_n + 1, RATE, 1);
  CHECK(same(a, b, tour_n + 1), "12 s and a frame is not the programme");
  free(a);
  free(b);
}

static void test_seeds(void)
{
  const size_t n = (size_t)(20 * RATE), second = (size_t)RATE;
  float *a = render(guitar_render_programme, n, RATE, 1);
  float *b = render(guitar_render_programme, n, RATE, 1);
  float *c = render(guitar_render_programme, n, RATE, 2);
  CHECK(same(a, b, n), "the same seed gave different signals");
  CHECK(!same(a, c, second), "seeds 1 and 2 begin alike");
  /* A longer render starts with the shorter one. */
  float *shorter = render(guitar_render_programme, n / 2, RATE, 1);
  CHECK(same(a, shorter, n / 2), "the first 10 s depend on the length");
  free(a);
  free(b);
  free(c);
  free(shorter);
}

/** The RMS of each 100 ms window, in dBFS (-inf for silence). */
static double *window_levels(const float *x, size_t n, size_t *n_windows)
{
  const size_t width = (size_t)(0.1 * RATE);
  *n_windows = n / width;
  double *levels = malloc(*n_windows * sizeof(double));
  for (size_t w = 0; levels && w < *n_windows; ++w) {
    double sum = 0.0;
    for (size_t t = w * width; t < (w + 1) * width; ++t) {
      sum += (double)x[t] * x[t];
    }
    levels[w] = 10.0 * log10(sum / (double)width);
  }
  return levels;
}

/** The spread between the 5th and 95th percentiles of the levels of the
    windows that are not silent, in dB. */
static double level_spread(const float *x, size_t n)
{
  size_t n_windows = 0, n_sounding = 0;
  double *levels = window_levels(x, n, &n_windows);
  for (size_t w = 0; w < n_windows; ++w) {
    if (levels[w] > -100.0) {
      levels[n_sounding++] = levels[w];
    }
  }
  qsort(levels, n_sounding, sizeof(double), compare_doubles);
  const double spread = n_sounding ? levels[95 * n_sounding / 100] -
                                       levels[5 * n_sounding / 100]
                                   : 0.0;
  free(levels);
  return spread;
}

/** The longest run of exact zeros, in seconds, and the share of zeros. */
static double longest_silence(const float *x, size_t n, double *share)
{
  size_t longest = 0, current = 0, zeros = 0;
  for (size_t t = 0; t < n; ++t) {
    current = x[t] == 0.0f ? current + 1 : 0;
    zeros += x[t] == 0.0f;
    longest = current > longest ? current : longest;
  }
  *share = (double)zeros / (double)n;
  return (double)longest / RATE;
}

/** 50 ms windows above -50 dBFS whose signal changes sign in over 30% of
    its samples: noise or the top of a sweep, not a plucked string. */
static int broadband_windows(const float *x, size_t n)
{
  const size_t width = (size_t)(0.05 * RATE);
  int count = 0;
  for (size_t start = 0; start + width <= n; start += width) {
    size_t crossings = 0;
    double sum = 0.0;
    for (size_t t = start + 1; t < start + width; ++t) {
      crossings += (x[t] > 0.0f) != (x[t - 1] > 0.0f);
      sum += (double)x[t] * x[t];
    }
    count += crossings > 3 * width / 10 &&
             10.0 * log10(sum / (double)width) > -50.0;
  }
  return count;
}

static void test_programme_content(void)
{
  const size_t n = (size_t)(180 * RATE);
  for (uint64_t seed = 1; seed <= 2; ++seed) {
    float *x = render(guitar_render, n, RATE, seed);
    double zero_share = 0.0;
    const double silence = longest_silence(x, n, &zero_share);
    const double spread = level_spread(x, n), top = peak_dbfs(x, n);
    const int n_broadband = broadband_windows(x, n);
    /* Phrases have their own levels, the loudest at GUITAR_PEAK_DBFS. */
    CHECK(top <= GUITAR_PEAK_DBFS + 1e-4 && top > GUITAR_PEAK_DBFS - 0.1,
          "seed %llu: peak %.3f dBFS", (unsigned long long)seed, top);
    CHECK(spread > 30.0, "seed %llu: levels span only %.1f dB",
          (unsigned long long)seed, spread);
    CHECK(silence >= 0.3 && zero_share > 0.02 && zero_share < 0.4,
          "seed %llu: longest silence %.2f s, %.0f%% zeros",
          (unsigned long long)seed, silence, 100.0 * zero_share);
    CHECK(n_broadband >= 20, "seed %llu: %d broadband windows",
          (unsigned long long)seed, n_broadband);
    printf("note: programme, seed %llu, 180 s: peak %.2f dBFS, 100 ms "
           "levels span %.1f dB (5th to 95th percentile), longest silence "
           "%.2f s, %.1f%% exact zeros, %d broadband 50 ms windows\n",
           (unsigned long long)seed, top, spread, silence,
           100.0 * zero_share, n_broadband);
    free(x);
  }
}

static void test_rates(void)
{
  static const double rates[] = {8000, 22050, 44100, 96000, 192000, 384000};
  for (size_t r = 0; r < sizeof(rates) / sizeof(rates[0]); ++r) {
    const size_t n = (size_t)(13.0 * rates[r]);
    float *x = render(guitar_render, n, rates[r], 3);
    bool finite = true;
    for (size_t t = 0; t < n; ++t) {
      finite = finite && isfinite(x[t]);
    }
    const double top = peak_dbfs(x, n);
    CHECK(finite && top <= GUITAR_PEAK_DBFS + 1e-4 && top > -20.0,
          "%g Hz: finite %d, peak %.2f dBFS", rates[r], finite, top);
    free(x);
  }
}

int main(void)
{
  test_dispatch();
  test_seeds();
  test_programme_content();
  test_rates();
  return test_finish("guitar");
}
