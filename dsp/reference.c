/*
  The naive reference: the equations of carry.h written as plainly as
  possible, one sample at a time over the Keras-order weights, with double
  sums and libm.  Tests compare the vectorised kernels against it.
*/

#include "internal.h"

#include <math.h>
#include <string.h>

static double sigmoid(double x)
{
  return 1.0 / (1.0 + exp(-x));
}

static double activate(carry_activation act, double x)
{
  switch (act) {
  case CARRY_ACT_TANH: return tanh(x);
  case CARRY_ACT_RELU: return x > 0.0 ? x : 0.0;
  case CARRY_ACT_SIGMOID: return sigmoid(x);
  case CARRY_ACT_ELU: return x > 0.0 ? x : expm1(x);
  case CARRY_ACT_LINEAR:
  case CARRY_ACT_SOFTMAX: break;
  }
  return x;
}

static void softmax(double *y, int n)
{
  double peak = y[0], sum = 0.0;
  for (int k = 1; k < n; ++k) {
    peak = fmax(peak, y[k]);
  }
  for (int k = 0; k < n; ++k) {
    sum += (y[k] = exp(y[k] - peak));
  }
  for (int k = 0; k < n; ++k) {
    y[k] /= sum;
  }
}

/** gates[k] = bias[k] + sum_i x[i] kernel[i][k] for k < G. */
static void affine(const carry_layer_weights *w, const double *x,
                   double *gates)
{
  const int G = w->n_rows;
  for (int k = 0; k < G; ++k) {
    double sum = w->bias ? w->bias[k] : 0.0;
    for (int i = 0; i < w->n_in; ++i) {
      sum += x[i] * w->kernel[(size_t)i * (size_t)G + (size_t)k];
    }
    gates[k] = sum;
  }
}

/** gates[k] += sum_j h[j] recurrent[j][k] for k in [from, to). */
static void add_recurrent(const carry_layer_weights *w, const double *h,
                          int from, int to, double *gates)
{
  const int G = w->n_rows;
  for (int k = from; k < to; ++k) {
    for (int j = 0; j < w->n_units; ++j) {
      gates[k] += h[j] * w->recurrent[(size_t)j * (size_t)G + (size_t)k];
    }
  }
}

static bool all_finite(const double *v, int n)
{
  for (int k = 0; k < n; ++k) {
    if (!isfinite(v[k])) {
      return false;
    }
  }
  return true;
}

/** The model's initial state of one layer. */
static void init_layer(const carry_layer_weights *w, double *h, double *c)
{
  for (int j = 0; j < w->n_units; ++j) {
    h[j] = w->h0[j];
    if (w->c0) {
      c[j] = w->c0[j];
    }
  }
}

/** A non-finite state gives way to the layer's reset state: `reset` holds
    h then c, as the state does. */
static void reset_layer(const carry_layer_weights *w, double *h,
                        const double *reset)
{
  const size_t n = (size_t)w->n_units * (w->c0 ? 2 : 1);
  memcpy(h, reset, n * sizeof(double));
}

static void lstm_step(const carry_layer_weights *w, const double *x,
                      double *h, double *c, const double *reset,
                      double *gates)
{
  const int H = w->n_units;
  affine(w, x, gates);
  add_recurrent(w, h, 0, 4 * H, gates);
  for (int j = 0; j < H; ++j) {
    const double i = sigmoid(gates[j]), f = sigmoid(gates[H + j]);
    const double g = tanh(gates[2 * H + j]), o = sigmoid(gates[3 * H + j]);
    c[j] = f * c[j] + i * g;
    h[j] = o * tanh(c[j]);
  }
  if (!all_finite(h, H) || !all_finite(c, H)) {
    reset_layer(w, h, reset);
  }
}

static void gru_step(const carry_layer_weights *w, const double *x, double *h,
                     const double *reset, double *gates)
{
  const int H = w->n_units;
  double *rec = gates + 3 * H; // (3H) recurrent part, with its own bias
  affine(w, x, gates);
  for (int k = 0; k < 3 * H; ++k) {
    rec[k] = w->recurrent_bias[k];
  }
  add_recurrent(w, h, 0, 3 * H, rec);
  for (int j = 0; j < H; ++j) {
    const double z = sigmoid(gates[j] + rec[j]);
    const double r = sigmoid(gates[H + j] + rec[H + j]);
    const double n = tanh(gates[2 * H + j] + r * rec[2 * H + j]);
    h[j] = (1.0 - z) * n + z * h[j];
  }
  if (!all_finite(h, H)) {
    reset_layer(w, h, reset);
  }
}

static void dense_step(const carry_layer_weights *w, const double *x,
                       double *y)
{
  affine(w, x, y);
  if (w->activation == CARRY_ACT_SOFTMAX) {
    softmax(y, w->n_units);
  }
  for (int k = 0; k < w->n_units; ++k) {
    y[k] = activate(w->activation, y[k]);
  }
}

static void activation_step(const carry_layer_weights *w, const double *x,
                            double *y)
{
  for (int k = 0; k < w->n_units; ++k) {
    y[k] = activate(w->activation, x[k]);
  }
  if (w->activation == CARRY_ACT_SOFTMAX) {
    softmax(y, w->n_units);
  }
}

size_t carry_reference_state_size(const carry_model *model)
{
  size_t n = 0;
  for (int l = 0; l < model->spec.n_layers; ++l) {
    n += model->layers[l].h0 ? 2 * (size_t)model->layers[l].n_units : 0;
  }
  return n;
}

size_t carry_reference_scratch_size(const carry_model *model)
{
  // Two layer vectors and the gates with the GRU's recurrent part.
  return 2 * (size_t)model->widest + 2 * (size_t)model->widest_rows;
}

void carry_reference_reset(const carry_model *model, double *state)
{
  for (int l = 0; l < model->spec.n_layers; ++l) {
    const carry_layer_weights *w = &model->layers[l];
    if (w->h0) {
      init_layer(w, state, state + w->n_units);
      state += 2 * w->n_units;
    }
  }
}

double carry_reference_step(const carry_model *model, const float *x,
                            double *state, const double *reset_state,
                            double *scratch)
{
  double *in = scratch, *out = scratch + model->widest;
  double *gates = scratch + 2 * model->widest;
  for (int i = 0; i < model->spec.n_inputs; ++i) {
    in[i] = x[i];
  }
  for (int l = 0; l < model->spec.n_layers; ++l) {
    const carry_layer_weights *w = &model->layers[l];
    double *h = state, *c = state + w->n_units;
    switch (w->type) {
    case CARRY_LAYER_LSTM: lstm_step(w, in, h, c, reset_state, gates); break;
    case CARRY_LAYER_GRU: gru_step(w, in, h, reset_state, gates); break;
    case CARRY_LAYER_DENSE: dense_step(w, in, out); break;
    case CARRY_LAYER_ACTIVATION: activation_step(w, in, out); break;
    }
    if (w->h0) {
      memcpy(out, h, (size_t)w->n_units * sizeof(double));
      state += 2 * w->n_units;
      reset_state += 2 * w->n_units;
    }
    double *swap = in;
    in = out;
    out = swap;
  }
  return in[0];
}
