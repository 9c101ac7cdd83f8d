/*
  Lockstep batches (dsp/batch.c, dsp/lockstep.c): every lane's output is
  bit for bit what a plain stream gives its signal, for LSTM and GRU
  models of many shapes, 1 to 16 lanes, lanes starting at different times
  and idle in between, settled and initial states, non-finite input, both
  qualities and every kernel set.
*/

#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
  BLOCK = 50,      ///< Samples per batch call; lanes start on block edges
  N_BLOCKS = 14,   ///< Length of a run
  N_TOTAL = BLOCK * N_BLOCKS,
};

/** One signal a lane runs: from block `start` for `n_samples` (not a whole
    number of blocks: the rest of its last block is padding). */
typedef struct segment {
  int start;
  int n_samples;
  float in[N_TOTAL];
  float expected[N_TOTAL];
  float out[N_TOTAL];
} segment;

/** Two segments per lane, one after the other, with idle blocks around. */
enum { MAX_SEGMENTS = 2 * CARRY_MAX_LANES };

typedef struct run_case {
  const char *name;
  const carry_model *model;
  carry_kernels kernels;
  carry_quality quality;
  bool is_settled;
  const float *knobs;
} run_case;

static int n_blocks_of(const segment *s)
{
  return (s->n_samples + BLOCK - 1) / BLOCK;
}

/** Lane `lane`'s segments: lengths and starts vary with the lane; the
    third lane's first signal has a NaN, an infinity and huge values. */
static void plan_segments(segment *seg, int lane, test_rng *rng)
{
  const int first_start = lane % 3;
  seg[0].start = first_start;
  seg[0].n_samples = test_rng_int(rng, 1, 5 * BLOCK);
  seg[1].start = seg[0].start + n_blocks_of(&seg[0]) + lane % 2;
  seg[1].n_samples = test_rng_int(rng, 1, (N_BLOCKS - seg[1].start) * BLOCK);
  for (int k = 0; k < 2; ++k) {
    memset(seg[k].in, 0, sizeof(seg[k].in));
    test_signal(seg[k].in, (size_t)seg[k].n_samples,
                (uint64_t)(lane * 2 + k + 1));
  }
  if (lane == 2 && seg[0].n_samples > 40) {
    seg[0].in[10] = NAN;
    seg[0].in[20] = INFINITY;
    seg[0].in[30] = 3e38f;
    seg[0].in[31] = -3e38f;
  }
}

static carry_stream *start_stream(const run_case *rc)
{
  carry_error err;
  carry_stream *s = carry_stream_create_with(rc->model, 4096, rc->kernels,
                                             &err);
  CHECK(s != NULL, "%s: stream: %s", rc->name, err.message);
  carry_stream_set_quality(s, rc->quality);
  if (rc->is_settled) {
    carry_stream_settle(s, rc->knobs, 4000);
  }
  return s;
}

/** Runs the segments of `n_lanes` lanes through one batch, block by
    block, each lane reset from `from` when a segment starts. */
static void run_batch(const run_case *rc, const carry_stream *from,
                      int n_lanes, segment *seg)
{
  carry_error err;
  carry_batch *b = carry_batch_create(rc->model, n_lanes, rc->kernels, &err);
  CHECK(b != NULL, "%s: batch: %s", rc->name, err.message);
  if (!b) {
    return;
  }
  carry_batch_set_quality(b, rc->quality);
  for (int block = 0; block < N_BLOCKS; ++block) {
    const float *in[CARRY_MAX_LANES] = {NULL};
    float *out[CARRY_MAX_LANES] = {NULL};
    for (int lane = 0; lane < n_lanes; ++lane) {
      for (int k = 0; k < 2; ++k) {
        segment *s = &seg[2 * lane + k];
        const int at = block - s->start;
        if (at == 0) {
          carry_batch_reset_lane(b, lane, from, NULL);
        }
        if (at >= 0 && at < n_blocks_of(s)) {
          in[lane] = s->in + at * BLOCK;
          out[lane] = s->out + at * BLOCK;
        }
      }
    }
    carry_batch_process(b, in, rc->knobs, out, BLOCK);
  }
  carry_batch_free(b);
}

static void check_lanes(const run_case *rc, int n_lanes)
{
  static segment seg[MAX_SEGMENTS];
  test_rng rng = test_rng_new((uint64_t)n_lanes * 7 + 1);
  carry_stream *stream = start_stream(rc);
  if (!stream) {
    return;
  }
  for (int lane = 0; lane < n_lanes; ++lane) {
    plan_segments(&seg[2 * lane], lane, &rng);
    for (int k = 0; k < 2; ++k) {
      segment *s = &seg[2 * lane + k];
      carry_stream_reset(stream);
      carry_stream_process(stream, s->in, rc->knobs, s->expected,
                           (uint32_t)s->n_samples);
    }
  }
  run_batch(rc, stream, n_lanes, seg);
  for (int k = 0; k < 2 * n_lanes; ++k) {
    const segment *s = &seg[k];
    CHECK(!memcmp(s->out, s->expected, (size_t)s->n_samples * sizeof(float)),
          "%s %s %s%s, %d lanes: lane %d signal %d differs by %g", rc->name,
          carry_kernels_name(rc->kernels), carry_quality_name(rc->quality),
          rc->is_settled ? " settled" : "", n_lanes, k / 2, k % 2,
          test_max_abs_diff(s->out, s->expected, (size_t)s->n_samples));
  }
  carry_stream_free(stream);
}

static void check_model(const char *name, const carry_model *model)
{
  static const int lane_counts[] = {1, 3, 8, 16};
  static const float knobs[] = {0.3f, 0.8f};
  for (int k = CARRY_KERNELS_PORTABLE; k <= CARRY_KERNELS_AVX512; ++k) {
    if (!carry_kernels_available((carry_kernels)k)) {
      continue;
    }
    for (int q = CARRY_QUALITY_EXACT; q <= CARRY_QUALITY_FAST; ++q) {
      for (size_t n = 0; n < sizeof(lane_counts) / sizeof(*lane_counts);
           ++n) {
        const run_case rc = {name, model, (carry_kernels)k, (carry_quality)q,
                             n % 2 == 0, knobs};
        check_lanes(&rc, lane_counts[n]);
      }
    }
  }
}

/* ------------------------------------------------------------------------ */
/* Models */

static carry_model *make_model(const carry_model_spec *spec, test_rng *rng,
                               float scale)
{
  carry_error err;
  carry_model *model = carry_model_create(spec, &err);
  if (!model) {
    fprintf(stderr, "create failed: %s\n", err.message);
    abort();
  }
  test_randomize_model(model, rng, scale, true);
  return model;
}

/** Dense and activation layers around and between recurrent ones, gains,
    skip and two knobs. */
static carry_model *mixed_model(carry_layer_type type, test_rng *rng)
{
  carry_model_spec spec;
  carry_model_spec_init(&spec);
  spec.n_inputs = 3;
  spec.has_skip = true;
  spec.in_gain_db = 3.0f;
  spec.out_gain_db = -2.0f;
  const carry_layer_spec layers[] = {
    {CARRY_LAYER_DENSE, 4, CARRY_ACT_ELU, false},
    {type, 11, CARRY_ACT_LINEAR, false},
    {CARRY_LAYER_DENSE, 6, CARRY_ACT_TANH, false},
    {CARRY_LAYER_ACTIVATION, 0, CARRY_ACT_RELU, false},
    {type, 9, CARRY_ACT_LINEAR, false},
    {type, 8, CARRY_ACT_LINEAR, false},
    {CARRY_LAYER_DENSE, 3, CARRY_ACT_SIGMOID, false},
    {CARRY_LAYER_DENSE, 1, CARRY_ACT_LINEAR, false},
  };
  spec.n_layers = (int)(sizeof(layers) / sizeof(layers[0]));
  memcpy(spec.layers, layers, sizeof(layers));
  return make_model(&spec, rng, 1.0f);
}

/** A recurrent layer of one unit as the output layer. */
static carry_model *bare_model(carry_layer_type type, test_rng *rng)
{
  carry_model_spec spec;
  carry_model_spec_init(&spec);
  spec.layers[0] = (carry_layer_spec){.type = type, .n_units = 1};
  spec.n_layers = 1;
  return make_model(&spec, rng, 1.0f);
}

/** A recurrent layer straight into a one-output dense head with an
    activation, as the lanes run it at once on lane-major rows. */
static carry_model *tanh_head_model(carry_layer_type type, test_rng *rng)
{
  carry_model_spec spec;
  carry_model_spec_init(&spec);
  spec.layers[0] = (carry_layer_spec){.type = type, .n_units = 13};
  spec.layers[1] = (carry_layer_spec){CARRY_LAYER_DENSE, 1, CARRY_ACT_TANH,
                                      false};
  spec.n_layers = 2;
  return make_model(&spec, rng, 1.0f);
}

/** A dense layer with absurd weights overflows to infinities that turn the
    recurrent layer's state NaN: the lanes must recover as streams do. */
static carry_model *hostile_model(carry_layer_type type, test_rng *rng)
{
  carry_model_spec spec;
  carry_model_spec_init(&spec);
  spec.layers[0] = (carry_layer_spec){CARRY_LAYER_DENSE, 3, CARRY_ACT_LINEAR,
                                      false};
  spec.layers[1] = (carry_layer_spec){.type = type, .n_units = 5};
  spec.layers[2] = (carry_layer_spec){.type = CARRY_LAYER_DENSE, .n_units = 1};
  spec.n_layers = 3;
  carry_model *model = make_model(&spec, rng, 1.0f);
  carry_layer_weights dense = carry_model_layer(model, 0);
  for (int k = 0; k < dense.n_rows; ++k) {
    dense.kernel[k] = k % 2 ? 1e30f : -1e30f;
  }
  carry_error err;
  CHECK(carry_model_prepare(model, &err) == CARRY_SUCCESS, "%s", err.message);
  return model;
}

static void check_random(carry_layer_type type, int n_units, int n_stacked,
                         int n_inputs, bool has_skip, test_rng *rng)
{
  carry_model *model = test_random_model(type, n_units, n_stacked, n_inputs,
                                         has_skip, rng);
  char name[64];
  snprintf(name, sizeof(name), "%s-%d%s%s",
           type == CARRY_LAYER_LSTM ? "LSTM" : "GRU", n_units,
           n_stacked > 1 ? "x2" : "", n_inputs > 1 ? " knobs" : "");
  check_model(name, model);
  carry_model_free(model);
}

static void test_errors(const carry_model *model)
{
  carry_error err;
  CHECK(!carry_batch_create(model, 0, CARRY_KERNELS_AUTO, &err) &&
          err.status == CARRY_ERR_BAD_ARG, "0 lanes refused");
  CHECK(!carry_batch_create(model, CARRY_MAX_LANES + 1, CARRY_KERNELS_AUTO,
                            &err) && err.status == CARRY_ERR_BAD_ARG,
        "too many lanes refused");
  CHECK(!carry_batch_create(model, 4, CARRY_KERNELS_REFERENCE, &err) &&
          err.status == CARRY_ERR_UNSUPPORTED, "reference kernels refused");
  carry_batch *b = carry_batch_create(model, 4, CARRY_KERNELS_AUTO, &err);
  CHECK(carry_batch_n_lanes(b) == 4, "4 lanes");
  CHECK(carry_batch_kernels(b) != CARRY_KERNELS_AUTO, "kernels resolved");
  CHECK(carry_batch_reset_lane(b, 4, NULL, &err) == CARRY_ERR_BAD_ARG,
        "lane out of range refused");
  carry_stream *corrected =
    carry_stream_create_corrected(model, 64, 2.0, &err);
  CHECK(carry_batch_reset_lane(b, 0, corrected, &err) == CARRY_ERR_BAD_ARG,
        "a corrected stream's state refused");
  carry_stream_free(corrected);
  carry_batch_free(b);
  carry_batch_free(NULL);
}

int main(void)
{
  test_rng rng = test_rng_new(77);
  static const int lstm_sizes[] = {1, 3, 8, 12, 32, 40, 64};
  static const int gru_sizes[] = {1, 5, 16, 20, 32};
  for (size_t k = 0; k < sizeof(lstm_sizes) / sizeof(*lstm_sizes); ++k) {
    check_random(CARRY_LAYER_LSTM, lstm_sizes[k], 1, 1, false, &rng);
  }
  for (size_t k = 0; k < sizeof(gru_sizes) / sizeof(*gru_sizes); ++k) {
    check_random(CARRY_LAYER_GRU, gru_sizes[k], 1, 1, false, &rng);
  }
  check_random(CARRY_LAYER_LSTM, 12, 2, 3, true, &rng);
  check_random(CARRY_LAYER_GRU, 16, 2, 2, true, &rng);
  for (int t = 0; t < 2; ++t) {
    const carry_layer_type type = t ? CARRY_LAYER_GRU : CARRY_LAYER_LSTM;
    carry_model *models[] = {mixed_model(type, &rng), bare_model(type, &rng),
                             hostile_model(type, &rng),
                             tanh_head_model(type, &rng)};
    const char *names[] = {"mixed", "bare", "hostile", "tanh head"};
    for (int m = 0; m < 4; ++m) {
      char name[32];
      snprintf(name, sizeof(name), "%s %s", names[m], t ? "GRU" : "LSTM");
      check_model(name, models[m]);
      if (m == 0) {
        test_errors(models[m]);
      }
      carry_model_free(models[m]);
    }
  }
  return test_finish("lockstep");
}
