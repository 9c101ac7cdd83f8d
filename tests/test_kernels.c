/*
  The vectorised kernels against the naive reference (double sums, libm),
  over many shapes: odd sizes exercise the padding, stacked and mixed layers
  the strides, knobs and skips the input rows.
*/

#include "harness.h"
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void carry_lstm_chunk_portable(const carry_packed_layer *layer,
                               const float *x, int x_stride, int n_samples,
                               float *h, float *c, float *y,
                               const float *h_reset, const float *c_reset);
void carry_lstm_chunk_avx2(const carry_packed_layer *layer, const float *x,
                           int x_stride, int n_samples, float *h, float *c,
                           float *y, const float *h_reset,
                           const float *c_reset);
#if defined(CARRY_HAVE_AVX512)
void carry_lstm_chunk_avx512(const carry_packed_layer *layer, const float *x,
                             int x_stride, int n_samples, float *h, float *c,
                             float *y, const float *h_reset,
                             const float *c_reset);
#endif
void carry_gru_chunk_portable(const carry_packed_layer *layer, const float *x,
                              int x_stride, int n_samples, float *h, float *y,
                              const float *h_reset);
void carry_gru_chunk_avx2(const carry_packed_layer *layer, const float *x,
                          int x_stride, int n_samples, float *h, float *y,
                          const float *h_reset);

enum { N_SAMPLES = 8192 };

typedef struct {
  const char *name;
  carry_layer_spec layers[6];
  int n_layers;
  int n_inputs;
  bool has_skip;
} shape;

#define LSTM(h) {.type = CARRY_LAYER_LSTM, .n_units = (h)}
#define GRU(h) {.type = CARRY_LAYER_GRU, .n_units = (h)}
#define DENSE(h, a) {.type = CARRY_LAYER_DENSE, .n_units = (h), .activation = (a)}
#define ACT(a) {.type = CARRY_LAYER_ACTIVATION, .activation = (a)}
#define OUT DENSE(1, CARRY_ACT_LINEAR)

static const shape shapes[] = {
  {"lstm1", {LSTM(1), OUT}, 2, 1, false},
  {"lstm3 skip", {LSTM(3), OUT}, 2, 1, true},
  {"lstm8", {LSTM(8), OUT}, 2, 1, false},
  {"lstm13 knobs", {LSTM(13), OUT}, 2, 3, false},
  {"lstm32", {LSTM(32), OUT}, 2, 1, true},
  {"lstm40", {LSTM(40), OUT}, 2, 2, false},
  {"lstm64", {LSTM(64), OUT}, 2, 1, false},
  {"lstm100", {LSTM(100), OUT}, 2, 1, false},
  {"lstm16x2", {LSTM(16), LSTM(16), OUT}, 3, 1, false},
  {"lstm5x3", {LSTM(5), LSTM(9), LSTM(6), OUT}, 4, 2, true},
  {"gru1", {GRU(1), OUT}, 2, 1, false},
  {"gru7", {GRU(7), OUT}, 2, 1, true},
  {"gru16", {GRU(16), OUT}, 2, 1, false},
  {"gru32 knobs", {GRU(32), OUT}, 2, 3, false},
  {"gru40", {GRU(40), OUT}, 2, 1, false},
  {"gru12x2", {GRU(12), GRU(20), OUT}, 3, 1, false},
  {"mixed", {GRU(10), LSTM(6), OUT}, 3, 2, false},
  {"td-dense", {DENSE(8, CARRY_ACT_TANH), LSTM(8), OUT}, 3, 1, false},
  {"heads",
   {LSTM(12), DENSE(9, CARRY_ACT_RELU), DENSE(5, CARRY_ACT_ELU),
    DENSE(3, CARRY_ACT_SIGMOID), OUT},
   5, 1, false},
  {"softmax", {LSTM(6), DENSE(4, CARRY_ACT_SOFTMAX), OUT}, 3, 1, false},
  {"activation", {LSTM(6), ACT(CARRY_ACT_TANH), OUT}, 3, 1, false},
  {"first activation", {ACT(CARRY_ACT_TANH), GRU(5), OUT}, 3, 3, false},
  {"tanh out", {LSTM(4), DENSE(1, CARRY_ACT_TANH)}, 2, 1, false},
};

static carry_model *make_model(const shape *s, test_rng *rng)
{
  carry_model_spec spec;
  carry_model_spec_init(&spec);
  spec.n_inputs = s->n_inputs;
  spec.n_layers = s->n_layers;
  spec.has_skip = s->has_skip;
  spec.in_gain_db = 3.0f;
  spec.out_gain_db = -2.0f;
  for (int l = 0; l < s->n_layers; ++l) {
    spec.layers[l] = s->layers[l];
  }
  carry_error err;
  carry_model *model = carry_model_create(&spec, &err);
  if (!model) {
    fprintf(stderr, "%s: %s\n", s->name, err.message);
    abort();
  }
  test_randomize_model(model, rng, 2.0f, true);
  return model;
}

static void run_quality(const carry_model *model, carry_kernels kernels,
                        carry_quality quality, const float *in,
                        const float *knobs, float *out)
{
  carry_error err;
  carry_stream *stream = carry_stream_create_with(model, 512, kernels, &err);
  CHECK(stream != NULL, "stream: %s", err.message);
  if (stream) {
    carry_stream_set_quality(stream, quality);
    carry_stream_process(stream, in, knobs, out, N_SAMPLES);
  }
  carry_stream_free(stream);
}

static void run(const carry_model *model, carry_kernels kernels,
                const float *in, const float *knobs, float *out)
{
  run_quality(model, kernels, CARRY_QUALITY_EXACT, in, knobs, out);
}

/** A carried state that is somehow not finite (nothing in the kernels
    should produce one: inputs are sanitised and the activations clamp) is
    replaced by the reset state after one step, by every implementation. */
static void test_state_guard(void)
{
  test_rng rng = test_rng_new(31);
  carry_model *lstm = test_random_model(CARRY_LAYER_LSTM, 12, 1, 1, false, &rng);
  carry_model *gru = test_random_model(CARRY_LAYER_GRU, 12, 1, 1, false, &rng);
  test_randomize_model(lstm, &rng, 1.0f, true);
  test_randomize_model(gru, &rng, 1.0f, true);
  const carry_packed_layer *pl = &lstm->packed[0], *pg = &gru->packed[0];
  static float h[16], c[16], y[16];
  const float x = 0.25f;
  const bool is_avx2 = carry_kernels_available(CARRY_KERNELS_AVX2);
  for (int isa = 0; isa < (is_avx2 ? 2 : 1); ++isa) {
    memset(h, 0, sizeof(h));
    memset(c, 0, sizeof(c));
    c[3] = NAN;
    (isa ? carry_lstm_chunk_avx2 : carry_lstm_chunk_portable)(
      pl, &x, 1, 1, h, c, y, pl->h0, pl->c0);
    CHECK(!memcmp(h, pl->h0, sizeof(h)) && !memcmp(c, pl->c0, sizeof(c)),
          "LSTM kernel %d: a NaN cell state is reset", isa);
    memset(h, 0, sizeof(h));
    h[5] = INFINITY;
    (isa ? carry_gru_chunk_avx2 : carry_gru_chunk_portable)(pg, &x, 1, 1, h,
                                                            y, pg->h0);
    CHECK(!memcmp(h, pg->h0, sizeof(h)), "GRU kernel %d: an infinite state "
          "is reset", isa);
  }
#if defined(CARRY_HAVE_AVX512)
  if (carry_kernels_available(CARRY_KERNELS_AVX512)) {
    memset(h, 0, sizeof(h));
    memset(c, 0, sizeof(c));
    c[11] = NAN;  // in the second group of the 16-lane tile
    carry_lstm_chunk_avx512(pl, &x, 1, 1, h, c, y, pl->h0, pl->c0);
    CHECK(!memcmp(h, pl->h0, sizeof(h)) && !memcmp(c, pl->c0, sizeof(c)),
          "LSTM kernel avx512: a NaN cell state is reset");
  }
#endif
  double state[48], reset[48], scratch[256];
  carry_reference_reset(lstm, reset);
  memcpy(state, reset, sizeof(state));
  state[12 + 3] = NAN;
  carry_reference_step(lstm, &x, state, reset, scratch);
  CHECK(state[0] == pl->h0[0] && state[12 + 3] == pl->c0[3],
        "reference LSTM: a NaN cell state is reset");
  carry_model_free(lstm);
  carry_model_free(gru);
}

/** The widest layers the limits allow, over a short signal (the reference
    is slow at 4 million multiply-adds a sample). */
static void test_widest(const float *in)
{
  enum { N = 48 };
  const carry_layer_type types[] = {CARRY_LAYER_LSTM, CARRY_LAYER_GRU};
  test_rng rng = test_rng_new(41);
  for (int k = 0; k < 2; ++k) {
    carry_model *model = test_random_model(types[k], CARRY_MAX_UNITS, 1, 2,
                                           false, &rng);
    float expected[N], actual[N];
    carry_stream *ref = carry_stream_create_with(model, N,
                                                 CARRY_KERNELS_REFERENCE, NULL);
    carry_stream *fast = carry_stream_create(model, N, NULL);
    carry_stream_process(ref, in, NULL, expected, N);
    carry_stream_process(fast, in, NULL, actual, N);
    const double error = test_max_abs_diff(expected, actual, N);
    printf("%s-1024 %-8s max |kernel - reference| = %.3g\n",
           k ? "gru" : "lstm", carry_kernels_name(carry_stream_kernels(fast)),
           error);
    CHECK(error <= 2e-6 && test_spread(expected, N) > 1e-3,
          "1024 units: error %g", error);
    carry_stream_free(ref);
    carry_stream_free(fast);
    carry_model_free(model);
  }
}

/** The AVX-512 set's 16-lane tiles compute every lane as the AVX2 set
    does: the same bits, so a stream, a stereo pair and a lockstep batch
    agree whichever of the two a machine picks. */
static void check_same_as_avx2(const char *name, const carry_model *model,
                               const float *in, const float *knobs,
                               const float *avx512_out)
{
  static float avx2_out[N_SAMPLES], fast[2][N_SAMPLES];
  run(model, CARRY_KERNELS_AVX2, in, knobs, avx2_out);
  CHECK(!memcmp(avx2_out, avx512_out, sizeof(avx2_out)),
        "%s: avx512 gives avx2's bits (differs by up to %g)", name,
        test_max_abs_diff(avx2_out, avx512_out, N_SAMPLES));
  run_quality(model, CARRY_KERNELS_AVX2, CARRY_QUALITY_FAST, in, knobs,
              fast[0]);
  run_quality(model, CARRY_KERNELS_AVX512, CARRY_QUALITY_FAST, in, knobs,
              fast[1]);
  CHECK(!memcmp(fast[0], fast[1], sizeof(fast[0])),
        "%s: fast avx512 gives fast avx2's bits (differs by up to %g)", name,
        test_max_abs_diff(fast[0], fast[1], N_SAMPLES));
}

int main(void)
{
  test_state_guard();
  static float in[N_SAMPLES], expected[N_SAMPLES], actual[N_SAMPLES];
  const carry_kernels sets[] = {CARRY_KERNELS_PORTABLE, CARRY_KERNELS_AVX2,
                                CARRY_KERNELS_AVX512};
  const float knobs[] = {0.25f, 0.8f};
  test_rng rng = test_rng_new(7);
  test_signal(in, N_SAMPLES, 3);
  test_widest(in);
  double worst = 0.0;
  for (size_t k = 0; k < sizeof(shapes) / sizeof(shapes[0]); ++k) {
    carry_model *model = make_model(&shapes[k], &rng);
    run(model, CARRY_KERNELS_REFERENCE, in, knobs, expected);
    CHECK(test_spread(expected, N_SAMPLES) > 1e-3,
          "%s: the reference output must move for the test to mean anything",
          shapes[k].name);
    for (size_t s = 0; s < sizeof(sets) / sizeof(sets[0]); ++s) {
      if (!carry_kernels_available(sets[s])) {
        continue;
      }
      run(model, sets[s], in, knobs, actual);
      if (sets[s] == CARRY_KERNELS_AVX512) {
        check_same_as_avx2(shapes[k].name, model, in, knobs, actual);
      }
      const double error = test_max_abs_diff(expected, actual, N_SAMPLES);
      printf("%-16s %-8s max |kernel - reference| = %.3g\n", shapes[k].name,
             carry_kernels_name(sets[s]), error);
      CHECK(error <= 2e-6, "%s %s: error %g", shapes[k].name,
            carry_kernels_name(sets[s]), error);
      worst = error > worst ? error : worst;
    }
    carry_model_free(model);
  }
  printf("worst: %.3g\n", worst);
  return test_finish("kernels");
}
