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

void carry_dense_chunk(const carry_packed_layer *layer, const float *x,
                       int x_stride, int n_samples, float *y)
{
  const int Hp = layer->n_padded;
  if (layer->n_units == 1 && layer->activation != CARRY_ACT_SOFTMAX) {
    dense_single(layer, x, x_stride, n_samples, y);
    return;
  }
  for (int t = 0; t < n_samples; ++t) {
    float *row = y + (size_t)t * (size_t)Hp;
    carry_matvec_acc(layer->kernel, Hp, layer->n_in, Hp,
                     x + (size_t)t * (size_t)x_stride, layer->bias, row);
    carry_activate_row(layer->activation, row, layer->n_units, row);
  }
}
