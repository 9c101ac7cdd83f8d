/*
  Lockstep batches: up to CARRY_MAX_LANES streams of one model run side by
  side, so that the recurrent layers' step becomes a matrix-matrix product
  (lockstep.c) while every lane's output stays bit for bit what a stream
  gives.

  A chunk runs layer-major as in stream.c.  Recurrent layers work on
  lane-major tensors (T, H, W), a lane's values W floats apart; dense and
  activation layers run the one-stream kernels lane by lane on lane rows
  (T, Hp), which they compute sample by sample anyway.  Between the two,
  the chunk's activations are transposed: a copy of T H W floats, small
  against a recurrent layer's T (I + H) 4H W multiply-adds, but for a
  one-output head after a recurrent layer (most models) as much as the
  head itself, so such a head runs on the lane-major rows of all lanes
  at once (dense_lanes).
*/

#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct carry_batch {
  const carry_model *model;
  carry_kernels kernels;
  const carry_kernel_table *table;
  carry_quality quality;
  int n_lanes;                       ///< S
  int n_vectors;                     ///< Vectors of lanes: W = 8 n_vectors
  carry_lanes_layer lanes[CARRY_MAX_LAYERS];  ///< Recurrent layers' weights
  float *h[CARRY_MAX_LAYERS];        ///< (Hp, W) per recurrent layer
  float *c[CARRY_MAX_LAYERS];        ///< (Hp, W) per LSTM layer
  float *h_reset[CARRY_MAX_LAYERS];  ///< (Hp, W) each lane's reset state
  float *c_reset[CARRY_MAX_LAYERS];  ///< (Hp, W)
  float *x0;                         ///< (W, chunk, N) the model's inputs,
                                     ///< lane rows of `widest` (>= N)
  float *rows[2];                    ///< (W, chunk, widest) lane rows
  float *lane_major[2];              ///< (chunk, widest, W)
  void *memory;                      ///< The one allocation
};

/** Where one layer's output (or the model's input) of a chunk is. */
typedef struct activations {
  const float *data;
  bool is_lane_major;  ///< (T, n, W); else lane rows (W, chunk, widest)
  int n;               ///< Values per sample
  int stride;          ///< Lane rows: floats from sample to sample
} activations;

static size_t width(const carry_batch *b)
{
  return 8 * (size_t)b->n_vectors;
}

/** Floats from one lane's rows to the next: a chunk of rows, and a cache
    line more, so that the lanes' rows do not all fall in one set of the
    cache (a chunk of 32 rows of 32 floats is exactly 4 KB). */
static size_t lane_rows_size(const carry_batch *b)
{
  return (size_t)CARRY_CHUNK * (size_t)b->model->widest + 16;
}

/* ------------------------------------------------------------------------ */
/* Life cycle */

/** Hands out 64-byte aligned pieces of one block (or only counts them). */
typedef struct {
  char *base;
  size_t used;
} arena;

static float *arena_floats(arena *a, size_t n)
{
  float *p = a->base ? (float *)(void *)(a->base + a->used) : NULL;
  a->used += (n * sizeof(float) + 63) / 64 * 64;
  return p;
}

static bool is_recurrent(const carry_packed_layer *p)
{
  return p->type == CARRY_LAYER_LSTM || p->type == CARRY_LAYER_GRU;
}

/** Gate columns per unit: 4 LSTM, 3 GRU. */
static int n_gates(const carry_packed_layer *p)
{
  return p->type == CARRY_LAYER_LSTM ? 4 : 3;
}

static void lay_out(carry_batch *b, arena *a)
{
  const carry_model *m = b->model;
  const size_t W = width(b);
  for (int l = 0; l < m->spec.n_layers; ++l) {
    const carry_packed_layer *p = &m->packed[l];
    if (!is_recurrent(p)) {
      continue;
    }
    const size_t H = (size_t)p->n_padded, QH = (size_t)n_gates(p) * H;
    b->lanes[l].weights = arena_floats(a, (size_t)(p->n_in + p->n_units) * QH);
    b->lanes[l].bias = arena_floats(a, QH);
    b->lanes[l].bias_h = arena_floats(a, H);
    b->h[l] = arena_floats(a, H * W);
    b->h_reset[l] = arena_floats(a, H * W);
    if (p->type == CARRY_LAYER_LSTM) {
      b->c[l] = arena_floats(a, H * W);
      b->c_reset[l] = arena_floats(a, H * W);
    }
  }
  b->x0 = arena_floats(a, W * lane_rows_size(b));
  for (int k = 0; k < 2; ++k) {
    b->rows[k] = arena_floats(a, W * lane_rows_size(b));
    b->lane_major[k] = arena_floats(a, W * lane_rows_size(b));
  }
}

/** The packed column of unit u's gate q (see carry_packed_layer). */
static size_t packed_column(const carry_packed_layer *p, int u, int q)
{
  return (size_t)(u / CARRY_LANES * n_gates(p) * CARRY_LANES +
                  q * CARRY_LANES + u % CARRY_LANES);
}

/** The same floats as the packed layer, each unit's gates side by side;
    the input x has `x_width` values a sample. */
static void fill_lanes_layer(const carry_packed_layer *p, int x_width,
                             carry_lanes_layer *lanes)
{
  const int Q = n_gates(p), H = p->n_padded;
  float *weights = (float *)lanes->weights, *bias = (float *)lanes->bias;
  float *bias_h = (float *)lanes->bias_h;
  for (int u = 0; u < H; ++u) {
    for (int q = 0; q < Q; ++q) {
      const size_t column = packed_column(p, u, q);
      for (int j = 0; j < p->n_in + p->n_units; ++j) {
        weights[(size_t)j * (size_t)(Q * H) + (size_t)(u * Q + q)] =
          p->kernel[(size_t)j * (size_t)p->n_rows + column];
      }
      bias[u * Q + q] = p->bias[column];
    }
    bias_h[u] = p->bias_h ? p->bias_h[u] : 0.0f;
  }
  lanes->wide_sums = NULL;
  lanes->n_in = p->n_in;
  lanes->n_units = p->n_units;
  lanes->n_padded = H;
  lanes->x_width = x_width;
}

/** The 16-lane products for a batch of 16 lanes on the AVX2 or AVX-512
    kernels, where the CPU has AVX-512F; else NULL (two halves of 8
    lanes). */
static carry_lanes_sums_fn wide_sums(const carry_batch *b)
{
#if defined(CARRY_HAVE_AVX512)
  const bool is_x86 = b->kernels == CARRY_KERNELS_AVX2 ||
                      b->kernels == CARRY_KERNELS_AVX512;
  if (b->n_vectors == 2 && is_x86 && __builtin_cpu_supports("avx512f")) {
    return carry_lanes_sums_avx512;
  }
#endif
  (void)b;
  return NULL;
}

static carry_status check_create(const carry_model *model, int n_lanes,
                                 carry_kernels kernels, carry_error *err)
{
  if (!model || !model->is_prepared) {
    return carry_fail(err, CARRY_ERR_BAD_ARG,
                      "a batch needs a prepared model");
  }
  if (n_lanes < 1 || n_lanes > CARRY_MAX_LANES) {
    return carry_fail(err, CARRY_ERR_BAD_ARG,
                      "a batch runs 1 to %d lanes, not %d", CARRY_MAX_LANES,
                      n_lanes);
  }
  if (kernels == CARRY_KERNELS_REFERENCE) {
    return carry_fail(err, CARRY_ERR_UNSUPPORTED,
                      "a batch runs the vectorised kernels, not the "
                      "reference ones");
  }
  if (!carry_kernels_available(kernels)) {
    return carry_fail(err, CARRY_ERR_UNSUPPORTED,
                      "this CPU or build cannot run the %s kernels",
                      carry_kernels_name(kernels));
  }
  return CARRY_SUCCESS;
}

carry_batch *carry_batch_create(const carry_model *model, int n_lanes,
                                carry_kernels kernels, carry_error *err)
{
  if (check_create(model, n_lanes, kernels, err)) {
    return NULL;
  }
  carry_batch *b = calloc(1, sizeof(carry_batch));
  if (!b) {
    carry_fail(err, CARRY_ERR_NO_MEMORY, "out of memory for a batch");
    return NULL;
  }
  b->model = model;
  b->n_lanes = n_lanes;
  b->n_vectors = n_lanes > 8 ? 2 : 1;
  b->kernels = carry_kernels_resolve(kernels);
  carry_batch_set_quality(b, CARRY_QUALITY_EXACT);
  arena count = {NULL, 0};
  lay_out(b, &count);
  if (!(b->memory = aligned_alloc(64, count.used))) {
    free(b);
    carry_fail(err, CARRY_ERR_NO_MEMORY,
               "out of memory for %zu bytes of batch buffers", count.used);
    return NULL;
  }
  memset(b->memory, 0, count.used);
  arena real = {b->memory, 0};
  lay_out(b, &real);
  for (int l = 0; l < model->spec.n_layers; ++l) {
    const carry_packed_layer *p = &model->packed[l];
    if (is_recurrent(p)) {
      const bool follows_recurrent = l > 0 && is_recurrent(p - 1);
      fill_lanes_layer(p, follows_recurrent ? p[-1].n_padded : p->n_in,
                       &b->lanes[l]);
      b->lanes[l].wide_sums = wide_sums(b);
    }
  }
  for (int lane = 0; lane < n_lanes; ++lane) {
    carry_batch_reset_lane(b, lane, NULL, NULL);
  }
  carry_succeed(err);
  return b;
}

void carry_batch_free(carry_batch *batch)
{
  if (batch) {
    free(batch->memory);
    free(batch);
  }
}

int carry_batch_n_lanes(const carry_batch *batch)
{
  return batch->n_lanes;
}

carry_kernels carry_batch_kernels(const carry_batch *batch)
{
  return batch->kernels;
}

void carry_batch_set_quality(carry_batch *batch, carry_quality quality)
{
  const bool fast = quality == CARRY_QUALITY_FAST;
  batch->quality = fast ? CARRY_QUALITY_FAST : CARRY_QUALITY_EXACT;
  batch->table = carry_kernel_table_of(batch->kernels, batch->quality);
}

carry_quality carry_batch_quality(const carry_batch *batch)
{
  return batch->quality;
}

/** Column `lane` of an (H, W) state becomes `values` (H). */
static void set_column(float *state, size_t W, int lane, const float *values,
                       int n)
{
  for (size_t u = 0; u < (size_t)n; ++u) {
    state[u * W + (size_t)lane] = values[u];
  }
}

carry_status carry_batch_reset_lane(carry_batch *batch, int lane,
                                    const carry_stream *from,
                                    carry_error *err)
{
  const carry_model *m = batch->model;
  if (lane < 0 || lane >= batch->n_lanes) {
    return carry_fail(err, CARRY_ERR_BAD_ARG, "no lane %d in a batch of %d",
                      lane, batch->n_lanes);
  }
  if (from && (carry_stream_model(from) != m ||
               carry_stream_rate_ratio(from) != 1.0)) {
    return carry_fail(err, CARRY_ERR_BAD_ARG,
                      "a lane takes its state from a plain stream of the "
                      "batch's own model");
  }
  const size_t W = width(batch);
  for (int l = 0; l < m->spec.n_layers; ++l) {
    const carry_packed_layer *p = &m->packed[l];
    if (!is_recurrent(p)) {
      continue;
    }
    const float *h = p->h0, *c = p->c0;
    if (from) {
      carry_stream_reset_state(from, l, &h, &c);
    }
    set_column(batch->h[l], W, lane, h, p->n_padded);
    set_column(batch->h_reset[l], W, lane, h, p->n_padded);
    if (batch->c[l]) {
      set_column(batch->c[l], W, lane, c, p->n_padded);
      set_column(batch->c_reset[l], W, lane, c, p->n_padded);
    }
  }
  return carry_succeed(err);
}

/* ------------------------------------------------------------------------ */
/* Processing */

/** Lane `lane`'s input rows (T, N), as stream.c's load_inputs fills them;
    an idle lane reads silence. */
static void load_lane(carry_batch *b, int lane, const float *in,
                      const float *knobs, int n_samples)
{
  const int N = b->model->spec.n_inputs;
  float *rows = b->x0 + (size_t)lane * lane_rows_size(b);
  for (int t = 0; t < n_samples; ++t) {
    float *row = rows + (size_t)t * (size_t)N;
    row[0] = in && isfinite(in[t]) ? in[t] * b->model->in_gain : 0.0f;
    memcpy(row + 1, knobs, (size_t)(N - 1) * sizeof(float));
  }
}

/** The first n values of lane rows (W, chunk, widest; `x->stride` apart)
    to lane-major (T, n, W). */
static void to_lane_major(const carry_batch *b, const activations *x, int n,
                          int n_samples, float *y)
{
  const size_t W = width(b), rows = lane_rows_size(b);
  for (size_t t = 0; t < (size_t)n_samples; ++t) {
    for (size_t j = 0; j < (size_t)n; ++j) {
      for (size_t lane = 0; lane < W; ++lane) {
        y[(t * (size_t)n + j) * W + lane] =
          x->data[lane * rows + t * (size_t)x->stride + j];
      }
    }
  }
}

/** Lane-major (T, n, W) to lane rows of round_lanes(n), padding zero as in
    a stream's rows.  Read in order: the W rows written are few. */
static void to_lane_rows(const carry_batch *b, const activations *x,
                         int n_samples, float *y)
{
  const size_t W = width(b), rows = lane_rows_size(b), n = (size_t)x->n;
  const size_t stride = (size_t)carry_round_lanes(x->n);
  for (size_t t = 0; t < (size_t)n_samples; ++t) {
    const float *from = x->data + t * n * W;
    for (size_t j = 0; j < n; ++j) {
      for (size_t lane = 0; lane < W; ++lane) {
        y[lane * rows + t * stride + j] = from[j * W + lane];
      }
    }
    for (size_t lane = 0; lane < W && stride > n; ++lane) {
      memset(y + lane * rows + t * stride + n, 0,
             (stride - n) * sizeof(float));
    }
  }
}

static activations run_recurrent(carry_batch *b, int l, activations x,
                                 int n_samples)
{
  const carry_packed_layer *p = &b->model->packed[l];
  if (!x.is_lane_major) {
    to_lane_major(b, &x, p->n_in, n_samples, b->lane_major[(l + 1) & 1]);
    x.data = b->lane_major[(l + 1) & 1];
  }
  float *y = b->lane_major[l & 1];
  if (p->type == CARRY_LAYER_LSTM) {
    b->table->lstm_lanes(&b->lanes[l], x.data, n_samples, b->n_vectors,
                         b->h[l], b->c[l], y, b->h_reset[l], b->c_reset[l]);
  } else {
    b->table->gru_lanes(&b->lanes[l], x.data, n_samples, b->n_vectors,
                        b->h[l], y, b->h_reset[l]);
  }
  return (activations){y, true, p->n_padded, 0};
}

/** Whether dense layer `p` can run on lane-major `x` as it is. */
static bool is_lanes_dense(const carry_packed_layer *p, const activations *x)
{
  return x->is_lane_major && p->type == CARRY_LAYER_DENSE &&
         p->n_units == 1 && p->activation != CARRY_ACT_SOFTMAX &&
         x->n >= carry_round_lanes(p->n_in);
}

/** A dense or activation layer, lane by lane (idle lanes are skipped), or
    a dense head of one output on all lanes at once. */
static activations run_rows(carry_batch *b, int l, activations x,
                            const float *const *in, int n_samples)
{
  const carry_packed_layer *p = &b->model->packed[l];
  if (is_lanes_dense(p, &x)) {  // x is in lane_major[(l + 1) & 1]
    float *y = b->lane_major[l & 1];
    b->table->dense_lanes(p, x.data, x.n, n_samples, b->n_vectors, y);
    return (activations){y, true, 1, 0};
  }
  const size_t rows = lane_rows_size(b);
  if (x.is_lane_major) {
    to_lane_rows(b, &x, n_samples, b->rows[(l + 1) & 1]);
    x = (activations){b->rows[(l + 1) & 1], false, x.n,
                      carry_round_lanes(x.n)};
  }
  float *y = b->rows[l & 1];
  for (int lane = 0; lane < b->n_lanes; ++lane) {
    if (in[lane]) {
      const float *x_lane = x.data + (size_t)lane * rows;
      float *y_lane = y + (size_t)lane * rows;
      (p->type == CARRY_LAYER_DENSE ? b->table->dense : b->table->activation)(
        p, x_lane, x.stride, n_samples, y_lane);
    }
  }
  return (activations){y, false, p->n_units, p->n_padded};
}

/** As stream.c's finish_sample. */
static float finish_sample(const carry_model *m, float net, float x)
{
  const float y = (m->spec.has_skip ? net + x : net) * m->out_gain;
  return isfinite(y) ? y : 0.0f;
}

static void finish_lane(const carry_batch *b, const activations *x, int lane,
                        int n_samples, float *out)
{
  const size_t W = width(b), N = (size_t)b->model->spec.n_inputs;
  const float *x0 = b->x0 + (size_t)lane * lane_rows_size(b);
  for (size_t t = 0; t < (size_t)n_samples; ++t) {
    const float net =
      x->is_lane_major
        ? x->data[t * (size_t)x->n * W + (size_t)lane]
        : x->data[(size_t)lane * lane_rows_size(b) + t * (size_t)x->stride];
    out[t] = finish_sample(b->model, net, x0[t * N]);
  }
}

static void run_chunk(carry_batch *b, const float *const *in,
                      const float *knobs, float *const *out, size_t done,
                      int n_samples)
{
  const carry_model *m = b->model;
  for (int lane = 0; lane < (int)width(b); ++lane) {
    const float *lane_in = lane < b->n_lanes && in[lane] ? in[lane] + done
                                                        : NULL;
    load_lane(b, lane, lane_in, knobs, n_samples);
  }
  activations x = {b->x0, false, m->spec.n_inputs, m->spec.n_inputs};
  for (int l = 0; l < m->spec.n_layers; ++l) {
    x = is_recurrent(&m->packed[l]) ? run_recurrent(b, l, x, n_samples)
                                    : run_rows(b, l, x, in, n_samples);
  }
  for (int lane = 0; lane < b->n_lanes; ++lane) {
    if (in[lane]) {
      finish_lane(b, &x, lane, n_samples, out[lane] + done);
    }
  }
}

void carry_batch_process(carry_batch *batch, const float *const *in,
                         const float *knobs, float *const *out, uint32_t n)
{
  const carry_model *m = batch->model;
  const uint64_t fp_mode = carry_flush_denormals();
  float knob_values[CARRY_MAX_KNOBS];
  for (int k = 0; k + 1 < m->spec.n_inputs; ++k) {
    const bool is_given = knobs && isfinite(knobs[k]);
    knob_values[k] = is_given ? knobs[k] : m->spec.knobs[k].value;
  }
  for (size_t done = 0; done < n;) {
    const int t = n - done < CARRY_CHUNK ? (int)(n - done) : CARRY_CHUNK;
    run_chunk(batch, in, knob_values, out, done, t);
    done += (size_t)t;
  }
  carry_restore_fp_mode(fp_mode);
}
