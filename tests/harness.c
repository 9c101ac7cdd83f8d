#include "harness.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int test_failures = 0;
int test_checks = 0;

bool test_check(bool ok, const char *file, int line, const char *format, ...)
{
  ++test_checks;
  if (!ok) {
    ++test_failures;
    fprintf(stderr, "%s:%d: FAIL: ", file, line);
    va_list args;
    va_start(args, format);
    vfprintf(stderr, format, args);
    va_end(args);
    fputc('\n', stderr);
  }
  return ok;
}

int test_finish(const char *name)
{
  printf("%s: %d checks, %d failed\n", name, test_checks, test_failures);
  return test_failures ? 1 : 0;
}

const char *test_source_path(const char *relative)
{
  static char path[4096];
  const char *root = getenv("CARRY_SOURCE_ROOT");
  snprintf(path, sizeof(path), "%s/%s", root ? root : ".", relative);
  return path;
}

test_rng test_rng_new(uint64_t seed)
{
  test_rng rng = {seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull};
  return rng;
}

uint64_t test_rng_next(test_rng *rng)
{
  uint64_t x = rng->state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  rng->state = x;
  return x * 0x2545F4914F6CDD1Dull;
}

float test_rng_uniform(test_rng *rng, float lo, float hi)
{
  const double unit = (double)(test_rng_next(rng) >> 11) / 9007199254740992.0;
  return (float)(lo + (hi - lo) * unit);
}

int test_rng_int(test_rng *rng, int lo, int hi)
{
  return lo + (int)(test_rng_next(rng) % (uint64_t)(hi - lo + 1));
}

static void fill(float *values, size_t n, test_rng *rng, float range)
{
  for (size_t k = 0; values && k < n; ++k) {
    values[k] = test_rng_uniform(rng, -range, range);
  }
}

void test_randomize_model(carry_model *model, test_rng *rng, float scale,
                          bool with_state)
{
  const carry_model_spec *spec = carry_model_get_spec(model);
  for (int l = 0; l < spec->n_layers; ++l) {
    carry_layer_weights w = carry_model_layer(model, l);
    const size_t I = (size_t)w.n_in, H = (size_t)w.n_units;
    const size_t G = (size_t)w.n_rows;
    const float range = scale / sqrtf((float)w.n_units);
    fill(w.kernel, I * G, rng, range);
    fill(w.recurrent, H * G, rng, range);
    fill(w.bias, G, rng, range);
    fill(w.recurrent_bias, G, rng, range);
    if (with_state) {
      fill(w.h0, H, rng, 0.5f);
      fill(w.c0, H, rng, 2.0f);
    }
  }
  carry_error err;
  if (carry_model_prepare(model, &err)) {
    fprintf(stderr, "prepare failed: %s\n", err.message);
    abort();
  }
}

carry_model *test_random_model(carry_layer_type type, int n_units,
                               int n_stacked, int n_inputs, bool has_skip,
                               test_rng *rng)
{
  carry_model_spec spec;
  carry_model_spec_init(&spec);
  spec.n_inputs = n_inputs;
  spec.has_skip = has_skip;
  for (int l = 0; l < n_stacked; ++l) {
    spec.layers[spec.n_layers++] = (carry_layer_spec){.type = type, .n_units = n_units};
  }
  spec.layers[spec.n_layers++] =
    (carry_layer_spec){.type = CARRY_LAYER_DENSE, .n_units = 1};
  carry_error err;
  carry_model *model = carry_model_create(&spec, &err);
  if (!model) {
    fprintf(stderr, "create failed: %s\n", err.message);
    abort();
  }
  test_randomize_model(model, rng, 1.0f, false);
  return model;
}

carry_model *test_hostile_model(carry_layer_type type)
{
  carry_model_spec spec;
  carry_model_spec_init(&spec);
  spec.n_layers = 3;
  spec.layers[0] = (carry_layer_spec){.type = CARRY_LAYER_DENSE, .n_units = 2};
  spec.layers[1] = (carry_layer_spec){.type = type, .n_units = 4};
  spec.layers[2] = (carry_layer_spec){.type = CARRY_LAYER_DENSE, .n_units = 1};
  carry_model *model = carry_model_create(&spec, NULL);
  test_rng rng = test_rng_new(11);
  test_randomize_model(model, &rng, 1.0f, false);
  carry_layer_weights dense = carry_model_layer(model, 0);
  carry_layer_weights recurrent = carry_model_layer(model, 1);
  dense.kernel[0] = 3e30f;
  dense.kernel[1] = -3e30f;
  for (int k = 0; k < 2 * recurrent.n_rows; ++k) {
    recurrent.kernel[k] = fabsf(recurrent.kernel[k]) * 1e-30f;
  }
  carry_model_prepare(model, NULL);
  return model;
}

void test_signal(float *x, size_t n, uint64_t seed)
{
  test_rng rng = test_rng_new(seed);
  const double rate = 48000.0;
  for (size_t t = 0; t < n; ++t) {
    const double s = (double)t / rate;
    const double decay = exp(-3.0 * fmod(s, 0.5));
    const double tones = 0.3 * sin(2 * M_PI * 110.0 * s) * decay +
                         0.2 * sin(2 * M_PI * 329.6 * s) * decay;
    const double chirp = 0.2 * sin(2 * M_PI * (50.0 + 2000.0 * s) * s);
    const double noise = 0.05 * test_rng_uniform(&rng, -1.0f, 1.0f);
    x[t] = (float)(tones + chirp + noise);
  }
}

double test_max_abs_diff(const float *a, const float *b, size_t n)
{
  double worst = 0.0;
  for (size_t k = 0; k < n; ++k) {
    const double d = fabs((double)a[k] - (double)b[k]);
    worst = d > worst || isnan(d) ? d : worst;
  }
  return worst;
}

double test_spread(const float *x, size_t n)
{
  double lo = x[0], hi = x[0];
  for (size_t k = 1; k < n; ++k) {
    lo = x[k] < lo ? x[k] : lo;
    hi = x[k] > hi ? x[k] : hi;
  }
  return hi - lo;
}
