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

/** Returns whether the new state is finite. */
static bool lstm_step(const carry_layer_weights *w, const double *x,
                      double *h, double *c, double *gates)
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
  return all_finite(h, H) && all_finite(c, H);
}

static bool gru_step(const carry_layer_weights *w, const double *x, double *h,
                     double *gates)
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
  return all_finite(h, H);
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

/** One layer's step; a recurrent layer updates `h` (then c, in the H
    doubles after it) in place, any other writes `out`.  Returns whether
    a recurrent layer's new state is finite. */
static bool layer_step(const carry_layer_weights *w, const double *in,
                       double *h, double *out, double *gates)
{
  switch (w->type) {
  case CARRY_LAYER_LSTM: return lstm_step(w, in, h, h + w->n_units, gates);
  case CARRY_LAYER_GRU: return gru_step(w, in, h, gates);
  case CARRY_LAYER_DENSE: dense_step(w, in, out); break;
  case CARRY_LAYER_ACTIVATION: activation_step(w, in, out); break;
  }
  return true;
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
    double *h = state;
    if (!layer_step(w, in, h, out, gates)) {
      reset_layer(w, h, reset_state);
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

/* ------------------------------------------------------------------------ */
/* Sample-rate-corrected steps: the delayed state, interpolated */

size_t carry_reference_history_size(const carry_model *model,
                                    const carry_delay_taps *taps)
{
  return (size_t)taps->n_slots * carry_reference_state_size(model);
}

void carry_reference_reset_history(const carry_model *model,
                                   const carry_delay_taps *taps,
                                   double *history)
{
  for (int l = 0; l < model->spec.n_layers; ++l) {
    const carry_layer_weights *w = &model->layers[l];
    for (int slot = 0; w->h0 && slot < taps->n_slots; ++slot) {
      init_layer(w, history, history + w->n_units);
      history += 2 * w->n_units;
    }
  }
}

/** state (n) = sum over the taps of weight * the slot `delay` samples
    before `write_slot` in `ring` (D slots of n). */
static void mix_delayed(const carry_delay_taps *taps, const double *ring,
                        size_t n, int write_slot, double *state)
{
  for (size_t j = 0; j < n; ++j) {
    state[j] = 0.0;
  }
  for (int k = 0; k < taps->n_taps; ++k) {
    const int slot = (write_slot - taps->delay[k] + taps->n_slots) %
                     taps->n_slots;
    const double *past = ring + (size_t)slot * n;
    for (size_t j = 0; j < n; ++j) {
      state[j] += taps->weight_exact[k] * past[j];
    }
  }
}

/** Every slot of a ring of D states of n doubles becomes `reset`. */
static void refill(const carry_delay_taps *taps, double *ring, size_t n,
                   const double *reset)
{
  for (int slot = 0; slot < taps->n_slots; ++slot) {
    memcpy(ring + (size_t)slot * n, reset, n * sizeof(double));
  }
}

double carry_reference_step_delayed(const carry_model *model, const float *x,
                                    const carry_delay_taps *taps,
                                    int write_slot, double *history,
                                    const double *reset_history,
                                    int reset_slot, double *scratch)
{
  double *in = scratch, *out = scratch + model->widest;
  double *gates = scratch + 2 * model->widest;
  for (int i = 0; i < model->spec.n_inputs; ++i) {
    in[i] = x[i];
  }
  for (int l = 0; l < model->spec.n_layers; ++l) {
    const carry_layer_weights *w = &model->layers[l];
    const size_t n = 2 * (size_t)w->n_units; // h then c, as the state
    double *h = w->h0 ? history + (size_t)write_slot * n : NULL;
    if (h) {
      mix_delayed(taps, history, n, write_slot, h);
    }
    if (!layer_step(w, in, h, out, gates)) {
      refill(taps, history, n, reset_history + (size_t)reset_slot * n);
    }
    if (w->h0) {
      memcpy(out, h, (size_t)w->n_units * sizeof(double));
      history += (size_t)taps->n_slots * n;
      reset_history += (size_t)taps->n_slots * n;
    }
    double *swap = in;
    in = out;
    out = swap;
  }
  return in[0];
}
