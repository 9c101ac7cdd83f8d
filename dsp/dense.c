/*
  Dense and activation layers over a chunk: y = act(b + x·W), y = act(x).
*/

#include "kernels.h"

#include <math.h>
#include <string.h>

/** Softmax over the n real outputs of one sample; padding lanes get 0. */
static void softmax_row(const float *x, int n, float *y)
{
  float peak = x[0];
  for (int k = 1; k < n; ++k) {
    peak = x[k] > peak ? x[k] : peak;
  }
  float sum = 0.0f;
  for (int k = 0; k < n; ++k) {
    y[k] = expf(x[k] - peak);
    sum += y[k];
  }
  for (int k = 0; k < carry_round_lanes(n); ++k) {
    y[k] = k < n ? y[k] / sum : 0.0f;
  }
}

static v8f activate(carry_activation act, v8f x)
{
  switch (act) {
  case CARRY_ACT_TANH: return v_tanh(x);
  case CARRY_ACT_RELU: return v_relu(x);
  case CARRY_ACT_SIGMOID: return v_sigmoid(x);
  case CARRY_ACT_ELU: return v_elu(x);
  case CARRY_ACT_LINEAR:
  case CARRY_ACT_SOFTMAX: break;
  }
  return x;
}

void carry_activate_row(carry_activation act, const float *x, int n, float *y)
{
  if (act == CARRY_ACT_SOFTMAX) {
    softmax_row(x, n, y);
    return;
  }
  for (int k = 0; k < n; k += 8) {
    float lanes[8] = {0};
    memcpy(lanes, x + k, (size_t)(n - k < 8 ? n - k : 8) * sizeof(float));
    v_store(y + k, activate(act, v_load(lanes)));
  }
}

void carry_activation_chunk(const carry_packed_layer *layer, const float *x,
                            int x_stride, int n_samples, float *y)
{
  const int Hp = layer->n_padded;
  for (int t = 0; t < n_samples; ++t) {
    carry_activate_row(layer->activation, x + (size_t)t * (size_t)x_stride,
                       layer->n_units, y + (size_t)t * (size_t)Hp);
  }
}

/** b + x·w for one output: vectors over the inputs, then a fixed-order
    sum, so the result never depends on the chunk. */
static float dot_row(const float *w, const float *x, int n_in, float bias)
{
  v8f acc = v_set1(0.0f);
  int i = 0;
  for (; i + 8 <= n_in; i += 8) {
    acc += v_load(x + i) * v_load(w + i);
  }
  float tail = 0.0f;
  for (; i < n_in; ++i) {
    tail += x[i] * w[i];
  }
  return (bias + v_sum(acc)) + tail;
}

/** One output: eight samples' dot products share one activation call. */
static void dense_single(const carry_packed_layer *layer, const float *x,
                         int x_stride, int n_samples, float *y)
{
  const int Hp = layer->n_padded;
  for (int t0 = 0; t0 < n_samples; t0 += 8) {
    const int n = n_samples - t0 < 8 ? n_samples - t0 : 8;
    float lanes[8] = {0};
    for (int t = 0; t < n; ++t) {
      lanes[t] = dot_row(layer->kernel_t,
                         x + (size_t)(t0 + t) * (size_t)x_stride, layer->n_in,
                         layer->bias[0]);
    }
    v_store(lanes, activate(layer->activation, v_load(lanes)));
    for (int t = 0; t < n; ++t) {
      y[(size_t)(t0 + t) * (size_t)Hp] = lanes[t];
    }
  }
}

/** The eight sums of v[0..7]'s lanes, sum k in lane k, each in the same
    order (pairs, then pairs of pairs, then the two halves). */
static v8f sum_lanes_of_8(const v8f *v)
{
  v8f pairs[4], quads[2];
  for (int k = 0; k < 4; ++k) {
    const v8f a = v[2 * k], b = v[2 * k + 1];
    pairs[k] = __builtin_shufflevector(a, b, 0, 2, 8, 10, 4, 6, 12, 14) +
               __builtin_shufflevector(a, b, 1, 3, 9, 11, 5, 7, 13, 15);
  }
  for (int k = 0; k < 2; ++k) {
    const v8f a = pairs[2 * k], b = pairs[2 * k + 1];
    quads[k] = __builtin_shufflevector(a, b, 0, 2, 8, 10, 4, 6, 12, 14) +
               __builtin_shufflevector(a, b, 1, 3, 9, 11, 5, 7, 13, 15);
  }
  // quads[0] = s0 s1 s2 s3 | t0 t1 t2 t3 halves of samples 0-3, quads[1]
  // likewise for 4-7: each sample's two half sums are 4 lanes apart
  const v8f lo = __builtin_shufflevector(quads[0], quads[1], 0, 1, 2, 3, 8, 9,
                                         10, 11);
  const v8f hi = __builtin_shufflevector(quads[0], quads[1], 4, 5, 6, 7, 12,
                                         13, 14, 15);
  return lo + hi;
}

/** One output of a layer whose input rows are padded to whole vectors
    (zero weights there): eight samples at a time, each sample's products
    in a vector of its own, summed across in one go. */
static void dense_single_padded(const carry_packed_layer *layer,
                                const float *x, int x_stride, int n_samples,
                                float *y)
{
  const int Hp = layer->n_padded, Ip = carry_round_lanes(layer->n_in);
  const v8f bias = v_set1(layer->bias[0]);
  for (int t0 = 0; t0 < n_samples; t0 += 8) {
    const int n = n_samples - t0 < 8 ? n_samples - t0 : 8;
    v8f products[8];
    for (int t = 0; t < 8; ++t) {
      const float *row = x + (size_t)(t0 + (t < n ? t : 0)) * (size_t)x_stride;
      v8f acc = v_load(row) * v_load(layer->kernel_t);
      for (int i = 8; i < Ip; i += 8) {
        acc += v_load(row + i) * v_load(layer->kernel_t + i);
      }
      products[t] = acc;
    }
    float lanes[8];
    v_store(lanes, activate(layer->activation, bias + sum_lanes_of_8(products)));
    for (int t = 0; t < n; ++t) {
      y[(size_t)(t0 + t) * (size_t)Hp] = lanes[t];
    }
  }
}

/** dense_single_padded() for 8 lanes of lane-major rows (`W` floats
    apart): lane for lane the same products in the same order, summed in
    the order sum_lanes_of_8() gives. */
static v8f dense_lanes_8(const carry_packed_layer *layer, const float *x,
                         size_t W)
{
  const int Ip = carry_round_lanes(layer->n_in);
  const float *w = layer->kernel_t;
  v8f p[8];
  for (int k = 0; k < 8; ++k) {
    p[k] = v_load(x + (size_t)k * W) * v_set1(w[k]);
  }
  for (int i = 8; i < Ip; i += 8) {
    for (int k = 0; k < 8; ++k) {
      p[k] += v_load(x + (size_t)(i + k) * W) * v_set1(w[i + k]);
    }
  }
  const v8f sum = ((p[0] + p[1]) + (p[2] + p[3])) +
                  ((p[4] + p[5]) + (p[6] + p[7]));
  return activate(layer->activation, v_set1(layer->bias[0]) + sum);
}

void carry_dense_lanes_chunk(const carry_packed_layer *layer, const float *x,
                             int x_rows, int n_samples, int n_vectors,
                             float *y)
{
  const size_t W = 8 * (size_t)n_vectors;
  for (size_t t = 0; t < (size_t)n_samples; ++t) {
    for (size_t v = 0; v < W; v += 8) {
      v_store(y + t * W + v,
              dense_lanes_8(layer, x + t * (size_t)x_rows * W + v, W));
    }
  }
}

void carry_dense_chunk(const carry_packed_layer *layer, const float *x,
                       int x_stride, int n_samples, float *y)
{
  const int Hp = layer->n_padded;
  if (layer->n_units == 1 && layer->activation != CARRY_ACT_SOFTMAX) {
    // rows of a previous layer's output are padded with finite values
    if (x_stride >= carry_round_lanes(layer->n_in)) {
      dense_single_padded(layer, x, x_stride, n_samples, y);
    } else {
      dense_single(layer, x, x_stride, n_samples, y);
    }
    return;
  }
  for (int t = 0; t < n_samples; ++t) {
    float *row = y + (size_t)t * (size_t)Hp;
    carry_matvec_acc(layer->kernel, Hp, layer->n_in, Hp,
                     x + (size_t)t * (size_t)x_stride, layer->bias, row);
    carry_activate_row(layer->activation, row, layer->n_units, row);
  }
}
