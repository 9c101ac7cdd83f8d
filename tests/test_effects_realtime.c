/*
  The reference effects make no allocation, free or lock while they
  process, set a knob or reset: tests/interposer.c counts the calls
  (not under the sanitizers, whose runtimes own malloc).
*/

#include "effects.h"
#include "guitar.h"
#include "harness.h"
#include "interposer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define RATE 48000.0

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

/** Knob changes, processing (with hostile samples) and a reset, counted. */
static void exercise(effect *fx, float *x, float *y, size_t n)
{
  const effect_info *info = effect_get_info(fx);
  for (int k = 0; k < info->n_params; ++k) {
    effect_set_param(fx, info->params[k].name, 1.0, NULL);
  }
  effect_process(fx, x, y, n / 2);
  effect_reset(fx);
  for (int k = 0; k < info->n_params; ++k) {
    effect_set_param(fx, info->params[k].name, 0.0, NULL);
  }
  effect_process(fx, x + n / 2, y + n / 2, n - n / 2);
}

static void check_effect(const char *name, float *x, float *y, size_t n)
{
  effect *fx = effect_create(name, RATE, NULL);
  exercise(fx, x, y, n);  // warm-up: lazy binding, first touches
  interposer->n_allocs = interposer->n_frees = interposer->n_locks = 0;
  interposer->is_counting = 1;
  exercise(fx, x, y, n);
  interposer->is_counting = 0;
  CHECK(interposer->n_allocs == 0 && interposer->n_frees == 0 &&
          interposer->n_locks == 0,
        "%s: %ld allocations, %ld frees, %ld locks", name,
        interposer->n_allocs, interposer->n_frees, interposer->n_locks);
  effect_free(fx);
}

int main(void)
{
  interposer_init();
  check_interposer_works();
  const size_t n = (size_t)RATE;
  float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
  if (!x || !y || !guitar_render_programme(x, n, RATE, 4)) {
    fprintf(stderr, "out of memory\n");
    return 1;
  }
  x[100] = NAN;
  x[200] = 1e30f;
  for (int e = 0; e < effect_count(); ++e) {
    check_effect(effect_info_at(e)->name, x, y, n);
  }
  free(x);
  free(y);
  return test_finish("effects_realtime");
}
