/*
  Stream properties: bit-identical output whatever the block sizes, reset,
  determinism, in-place processing, knobs per call, and recovery from
  non-finite input and hostile weights.
*/

#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N_SAMPLES = 20000 };

static float input[N_SAMPLES];

/** Runs the input through a fresh stream in blocks chosen by `next_block`
    (fixed size when `block` > 0, else random sizes up to 5000). */
static void run_blocks(const carry_model *model, carry_kernels kernels,
                       uint32_t max_block, int block, const float *knobs,
                       float *out)
{
  carry_error err;
  carry_stream *s = carry_stream_create_with(model, max_block, kernels, &err);
  test_rng rng = test_rng_new(99);
  for (size_t t = 0; t < N_SAMPLES;) {
    size_t n = block > 0 ? (size_t)block : (size_t)test_rng_int(&rng, 0, 5000);
    n = n > N_SAMPLES - t ? N_SAMPLES - t : n;
    carry_stream_process(s, input + t, knobs, out + t, (uint32_t)n);
    t += n;
  }
  carry_stream_free(s);
}

static void test_block_invariance(const char *name, const carry_model *model)
{
  static float whole[N_SAMPLES], pieces[N_SAMPLES];
  const float knobs[] = {0.3f, 0.9f};
  const int blocks[] = {1, 7, 64, 4096, 0};
  const uint32_t max_blocks[] = {1, 48, 4096};
  for (int k = CARRY_KERNELS_REFERENCE; k <= CARRY_KERNELS_AVX512; ++k) {
    if (!carry_kernels_available((carry_kernels)k)) {
      continue;
    }
    run_blocks(model, (carry_kernels)k, 8192, N_SAMPLES, knobs, whole);
    CHECK(test_spread(whole, N_SAMPLES) > 1e-3, "%s: output moves", name);
    for (size_t b = 0; b < sizeof(blocks) / sizeof(blocks[0]); ++b) {
      for (size_t m = 0; m < sizeof(max_blocks) / sizeof(max_blocks[0]); ++m) {
        run_blocks(model, (carry_kernels)k, max_blocks[m], blocks[b], knobs,
                   pieces);
        CHECK(!memcmp(whole, pieces, sizeof(whole)),
              "%s %s: blocks of %d (max %u) differ from one block by %g",
              name, carry_kernels_name((carry_kernels)k), blocks[b],
              max_blocks[m], test_max_abs_diff(whole, pieces, N_SAMPLES));
      }
    }
  }
}

static void test_reset_and_determinism(const carry_model *model)
{
  static float first[N_SAMPLES], second[N_SAMPLES], other[N_SAMPLES];
  carry_error err;
  carry_stream *s = carry_stream_create(model, 256, &err);
  carry_stream *t = carry_stream_create(model, 256, &err);
  carry_stream_process(s, input, NULL, first, N_SAMPLES);
  carry_stream_reset(s);
  carry_stream_process(s, input, NULL, second, N_SAMPLES);
  CHECK(!memcmp(first, second, sizeof(first)),
        "after reset the output must repeat exactly");
  carry_stream_process(t, input, NULL, other, N_SAMPLES);
  CHECK(!memcmp(first, other, sizeof(first)),
        "two streams of one model must agree exactly");
  carry_stream_process(s, input + 1, NULL, second, N_SAMPLES - 1);
  CHECK(memcmp(first, second, sizeof(float) * 100) != 0,
        "without reset the state carries over");
  memcpy(other, input, sizeof(other));
  carry_stream_reset(s);
  carry_stream_process(s, other, NULL, other, N_SAMPLES);
  CHECK(!memcmp(first, other, sizeof(first)), "in-place processing");
  carry_stream_process(s, input, NULL, second, 0);
  carry_stream_free(s);
  carry_stream_free(t);
}

static void test_initial_state(carry_model *model)
{
  static float out[64], again[64];
  test_rng rng = test_rng_new(5);
  test_randomize_model(model, &rng, 1.0f, true);
  const carry_layer_weights w = carry_model_layer_const(model, 0);
  carry_error err;
  carry_stream *s = carry_stream_create_with(model, 64, CARRY_KERNELS_REFERENCE,
                                             &err);
  carry_stream *p = carry_stream_create(model, 64, &err);
  const float zeros[64] = {0};
  carry_stream_process(s, zeros, NULL, out, 64);
  carry_stream_process(p, zeros, NULL, again, 64);
  CHECK(test_max_abs_diff(out, again, 64) < 1e-6,
        "kernels start from the stored state like the reference");
  carry_stream_reset(p);
  carry_stream_process(p, zeros, NULL, out, 64);
  CHECK(!memcmp(out, again, sizeof(out)), "reset returns to the stored state");
  CHECK(w.h0[0] != 0.0f && w.c0[0] != 0.0f, "the state is not zero");
  carry_stream_free(s);
  carry_stream_free(p);
}

static void test_knobs(const carry_model *model)
{
  static float a[4096], b[4096];
  const float low[] = {0.0f, 0.0f}, high[] = {1.0f, 1.0f};
  const float nan_knobs[] = {NAN, INFINITY};
  carry_error err;
  carry_stream *s = carry_stream_create(model, 256, &err);
  carry_stream_process(s, input, low, a, 4096);
  carry_stream_reset(s);
  carry_stream_process(s, input, high, b, 4096);
  CHECK(test_max_abs_diff(a, b, 4096) > 1e-3, "knobs change the output");
  carry_stream_reset(s);
  carry_stream_process(s, input, NULL, a, 4096);
  carry_stream_reset(s);
  carry_stream_process(s, input, nan_knobs, b, 4096);
  CHECK(!memcmp(a, b, sizeof(a)), "non-finite knobs fall back to defaults");
  carry_stream_free(s);
}

static bool all_finite(const float *x, size_t n)
{
  for (size_t k = 0; k < n; ++k) {
    if (!isfinite(x[k])) {
      return false;
    }
  }
  return true;
}

static void test_non_finite_input(const carry_model *model)
{
  static float in[4096], out[4096], clean[4096];
  memcpy(in, input, sizeof(in));
  in[100] = NAN;
  in[200] = INFINITY;
  in[300] = -INFINITY;
  in[400] = 3e38f;
  in[401] = -3e38f;
  carry_error err;
  carry_stream *s = carry_stream_create(model, 256, &err);
  carry_stream_process(s, in, NULL, out, 4096);
  CHECK(all_finite(out, 4096), "output stays finite");
  carry_stream_reset(s);
  carry_stream_process(s, input, NULL, clean, 4096);
  CHECK(!memcmp(out, clean, 100 * sizeof(float)),
        "identical until the first bad sample");
  CHECK(test_max_abs_diff(out + 3000, clean + 3000, 1096) < 1e-4,
        "recovers from bad samples (the state forgets them)");
  carry_stream_free(s);
}

/** A dense layer that overflows (on a finite but absurd input sample) to +inf and -inf feeds an LSTM, whose
    gates then compute inf - inf = NaN: the state must go back to the
    initial state, not stay NaN (and the output silent) for ever. */
static void test_hostile_weights(void)
{
  carry_model *model = test_hostile_model(CARRY_LAYER_LSTM);
  static float in[8192], out[8192], clean[8192];
  for (int k = 0; k < 8192; ++k) {
    in[k] = 0.5f * sinf((float)k * 0.05f);
  }
  for (int k = CARRY_KERNELS_REFERENCE; k <= CARRY_KERNELS_AVX512; ++k) {
    if (!carry_kernels_available((carry_kernels)k)) {
      continue;
    }
    carry_stream *s = carry_stream_create_with(model, 64, (carry_kernels)k, NULL);
    carry_stream_process(s, in, NULL, clean, 8192);
    carry_stream_reset(s);
    in[1000] = 1e9f; // 1e9 * 3e30 overflows
    carry_stream_process(s, in, NULL, out, 8192);
    in[1000] = clean[1000];
    CHECK(all_finite(out, 8192), "%s: hostile weights, finite output",
          carry_kernels_name((carry_kernels)k));
    CHECK(test_spread(out + 6000, 2192) > 1e-3 &&
            test_max_abs_diff(out + 6000, clean + 6000, 2192) < 1e-4,
          "%s: the stream recovers after the overflow",
          carry_kernels_name((carry_kernels)k));
    carry_stream_free(s);
  }
  carry_model_free(model);
}

/** With a linear model y = x, a denormal input comes out as zero because
    denormals are flushed during the call; the caller's mode comes back. */
static void test_denormals(void)
{
  carry_model_spec spec;
  carry_model_spec_init(&spec);
  spec.n_layers = 1;
  spec.layers[0] = (carry_layer_spec){.type = CARRY_LAYER_DENSE, .n_units = 1};
  carry_model *model = carry_model_create(&spec, NULL);
  carry_model_layer(model, 0).kernel[0] = 1.0f;
  carry_model_prepare(model, NULL);
  const float in[4] = {1e-39f, -1e-40f, 0.5f, 1e-39f};
  float out[4];
  volatile float tiny = 1e-39f;
  carry_stream *s = carry_stream_create(model, 64, NULL);
  carry_stream_process(s, in, NULL, out, 4);
  CHECK(out[0] == 0.0f && out[1] == 0.0f && out[2] == 0.5f && out[3] == 0.0f,
        "denormals flushed: %g %g %g %g", (double)out[0], (double)out[1],
        (double)out[2], (double)out[3]);
  CHECK(tiny * 1.0f != 0.0f, "the caller's floating-point mode is restored");
  carry_stream_free(s);
  carry_model_free(model);
}

/** Settling runs off the zero-state transient: silence then gives a flat
    output from the first sample, reset() returns to the settled state, and
    two streams settle alike. */
static void test_settle(const carry_model *model)
{
  static float out[2048], again[2048];
  const float zeros[2048] = {0.0f};
  const float knobs[] = {0.8f, 0.1f};
  carry_stream *fresh = carry_stream_create(model, 256, NULL);
  carry_stream *a = carry_stream_create(model, 256, NULL);
  carry_stream *b = carry_stream_create(model, 64, NULL);
  carry_stream_process(fresh, zeros, knobs, out, 2048);
  CHECK(test_spread(out, 2048) > 1e-4,
        "from zero state, silence gives a transient (spread %g)",
        test_spread(out, 2048));
  const uint32_t n = carry_stream_settle(a, knobs, 96000);
  CHECK(n > 0 && n < 96000, "the model settles (after %u samples)", n);
  CHECK(carry_stream_settle(b, knobs, 96000) == n, "settling is repeatable");
  carry_stream_process(a, zeros, knobs, out, 2048);
  CHECK(test_spread(out, 2048) < 1e-6, "settled: silence stays flat (%g)",
        test_spread(out, 2048));
  carry_stream_process(a, input, knobs, out, 2048);
  carry_stream_reset(a);
  carry_stream_process(a, input, knobs, again, 2048);
  CHECK(!memcmp(out, again, sizeof(out)), "reset returns to the settled state");
  carry_stream_process(b, input, knobs, again, 2048);
  CHECK(!memcmp(out, again, sizeof(out)), "two settled streams agree");
  carry_stream_free(fresh);
  carry_stream_free(a);
  carry_stream_free(b);
}

/** Two channels through a pair of streams in random blocks, and each alone:
    every output must be the same bits, with either channel carrying
    hostile samples. */
static void check_pair(const char *name, const carry_model *model,
                       carry_kernels kernels, carry_quality quality,
                       const float *in_a, const float *in_b)
{
  static float pair_a[N_SAMPLES], pair_b[N_SAMPLES];
  static float alone_a[N_SAMPLES], alone_b[N_SAMPLES];
  carry_stream *s[4];
  for (int k = 0; k < 4; ++k) {
    s[k] = carry_stream_create_with(model, 512, kernels, NULL);
    carry_stream_set_quality(s[k], quality);
  }
  const float knobs[] = {0.7f, 0.2f};
  test_rng rng = test_rng_new(5);
  for (size_t t = 0; t < N_SAMPLES;) {
    size_t n = (size_t)test_rng_int(&rng, 0, 1500);
    n = n > N_SAMPLES - t ? N_SAMPLES - t : n;
    carry_stream_process_pair(s[0], s[1], in_a + t, in_b + t, knobs,
                              pair_a + t, pair_b + t, (uint32_t)n);
    carry_stream_process(s[2], in_a + t, knobs, alone_a + t, (uint32_t)n);
    carry_stream_process(s[3], in_b + t, knobs, alone_b + t, (uint32_t)n);
    t += n;
  }
  CHECK(!memcmp(pair_a, alone_a, sizeof(pair_a)) &&
          !memcmp(pair_b, alone_b, sizeof(pair_b)),
        "%s %s %s: a pair differs from each stream alone by %g and %g", name,
        carry_kernels_name(kernels), carry_quality_name(quality),
        test_max_abs_diff(pair_a, alone_a, N_SAMPLES),
        test_max_abs_diff(pair_b, alone_b, N_SAMPLES));
  CHECK(all_finite(pair_a, N_SAMPLES) && test_spread(pair_b, N_SAMPLES) > 1e-3,
        "%s: finite and moving", name);
  for (int k = 0; k < 4; ++k) {
    carry_stream_free(s[k]);
  }
}

static void test_pairs(void)
{
  static float hostile[N_SAMPLES], other[N_SAMPLES];
  memcpy(hostile, input, sizeof(hostile));
  for (size_t t = 1000; t < N_SAMPLES; t += 3000) {
    hostile[t] = NAN;
    hostile[t + 1] = 3e38f;
    hostile[t + 2] = -INFINITY;
    hostile[t + 3] = 1e9f;  // overflows in test_hostile_model()
  }
  test_signal(other, N_SAMPLES, 7);
  test_rng rng = test_rng_new(31);
  const struct {
    carry_layer_type type;
    int units, stacked, inputs;
    bool skip, is_wide_only;  ///< only the AVX-512 set's tiles are new
  } shapes[] = {
    {CARRY_LAYER_LSTM, 1, 1, 1, false, false},
    {CARRY_LAYER_LSTM, 8, 1, 1, true, false},
    {CARRY_LAYER_LSTM, 20, 2, 3, true, false},
    {CARRY_LAYER_LSTM, 32, 1, 1, false, false},
    {CARRY_LAYER_GRU, 13, 1, 3, false, false},
    {CARRY_LAYER_GRU, 32, 2, 1, true, false},
    // every shape of the AVX-512 pair tiles: 3, 5 and 6 groups
    {CARRY_LAYER_LSTM, 40, 1, 1, false, true},
    {CARRY_LAYER_LSTM, 41, 1, 2, true, true},
    {CARRY_LAYER_GRU, 20, 1, 1, false, true},
    {CARRY_LAYER_GRU, 40, 1, 1, false, true},
    {CARRY_LAYER_GRU, 41, 1, 2, true, true},
  };
  for (size_t m = 0; m < sizeof(shapes) / sizeof(shapes[0]); ++m) {
    carry_model *model =
      test_random_model(shapes[m].type, shapes[m].units, shapes[m].stacked,
                        shapes[m].inputs, shapes[m].skip, &rng);
    char name[64];
    snprintf(name, sizeof(name), "%s-%dx%d",
             shapes[m].type == CARRY_LAYER_LSTM ? "lstm" : "gru",
             shapes[m].units, shapes[m].stacked);
    const int first = shapes[m].is_wide_only ? CARRY_KERNELS_AVX512
                                              : CARRY_KERNELS_REFERENCE;
    for (int k = first; k <= CARRY_KERNELS_AVX512; ++k) {
      for (int q = CARRY_QUALITY_EXACT; q <= CARRY_QUALITY_FAST; ++q) {
        if (carry_kernels_available((carry_kernels)k)) {
          check_pair(name, model, (carry_kernels)k, (carry_quality)q,
                     hostile, other);
          check_pair(name, model, (carry_kernels)k, (carry_quality)q, other,
                     hostile);
        }
      }
    }
    carry_model_free(model);
  }
  for (int type = CARRY_LAYER_LSTM; type <= CARRY_LAYER_GRU; ++type) {
    carry_model *model = test_hostile_model((carry_layer_type)type);
    for (int k = CARRY_KERNELS_PORTABLE; k <= CARRY_KERNELS_AVX512; ++k) {
      if (carry_kernels_available((carry_kernels)k)) {
        check_pair("hostile", model, (carry_kernels)k, CARRY_QUALITY_EXACT,
                   hostile, other);
        check_pair("hostile", model, (carry_kernels)k, CARRY_QUALITY_FAST,
                   other, hostile);
      }
    }
    carry_model_free(model);
  }
}

int main(void)
{
  test_signal(input, N_SAMPLES, 1);
  test_rng rng = test_rng_new(2024);
  carry_model *lstm = test_random_model(CARRY_LAYER_LSTM, 20, 2, 3, true, &rng);
  carry_model *gru = test_random_model(CARRY_LAYER_GRU, 13, 1, 3, false, &rng);
  test_block_invariance("lstm20x2", lstm);
  test_block_invariance("gru13", gru);
  test_reset_and_determinism(lstm);
  test_knobs(lstm);
  test_knobs(gru);
  test_non_finite_input(lstm);
  test_non_finite_input(gru);
  test_settle(lstm);
  test_settle(gru);
  test_initial_state(lstm);
  test_hostile_weights();
  test_denormals();
  test_pairs();
  carry_model_free(lstm);
  carry_model_free(gru);
  return test_finish("stream");
}
