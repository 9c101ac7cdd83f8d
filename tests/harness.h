/*
  A tiny test harness shared by the tests: checks that count failures
  instead of stopping, paths into the source tree, a seeded generator and
  random models.
*/

#ifndef CARRY_TEST_HARNESS_H
#define CARRY_TEST_HARNESS_H

#include "carry.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Failures so far; main() returns test_finish(). */
extern int test_failures;
extern int test_checks;

/** Records a check; prints the message (printf-style) when it fails. */
#define CHECK(cond, ...) test_check((cond), __FILE__, __LINE__, __VA_ARGS__)

bool test_check(bool ok, const char *file, int line, const char *format, ...)
  __attribute__((format(printf, 4, 5)));

/** Prints a summary line and gives the exit status (0 if all passed). */
int test_finish(const char *name);

/** A path under the source tree ($CARRY_SOURCE_ROOT, else the current
    directory), in a static buffer overwritten by the next call. */
const char *test_source_path(const char *relative);

/** xorshift64*: deterministic across machines. */
typedef struct {
  uint64_t state;
} test_rng;

test_rng test_rng_new(uint64_t seed);
uint64_t test_rng_next(test_rng *rng);
/** Uniform in [lo, hi). */
float test_rng_uniform(test_rng *rng, float lo, float hi);
/** Uniform integer in [lo, hi]. */
int test_rng_int(test_rng *rng, int lo, int hi);

/** Fills every weight and initial state of `model` with uniform values in
    +/-`scale` / sqrt(H) (PyTorch's default initialisation range) and
    prepares it.  Initial states are set only when `with_state`. */
void test_randomize_model(carry_model *model, test_rng *rng, float scale,
                          bool with_state);

/** A prepared random model: `type` layers of `n_units`, `n_stacked` deep,
    N inputs, then a linear dense head of one output. */
carry_model *test_random_model(carry_layer_type type, int n_units,
                               int n_stacked, int n_inputs, bool has_skip,
                               test_rng *rng);

/** Dense(2) whose weights overflow to +inf and -inf for an input sample
    near 1e9, then a recurrent layer of `type` (4 units, whose sums then
    meet inf - inf), then dense(1): the stream must come back from it. */
carry_model *test_hostile_model(carry_layer_type type);

/** A test signal: a few decaying tones, a chirp and noise, peak ~0.8. */
void test_signal(float *x, size_t n, uint64_t seed);

/** The difference between the largest and smallest value. */
double test_spread(const float *x, size_t n);

/** The largest |a[i] - b[i]|. */
double test_max_abs_diff(const float *a, const float *b, size_t n);

#endif
