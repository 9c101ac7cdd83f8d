/*
  The whole network over a chunk: the layout of its parameters and chunk
  buffers (one allocation each, handed out as named views, as llm.c does),
  initialisation, and the forward and backward passes through the stack.
*/

#include "train_internal.h"

#include <stdlib.h>
#include <string.h>

/** Hands out consecutive arrays from `memory` (or, with `memory` NULL,
    only counts them). */
typedef struct arena {
  real *memory;
  size_t used;
} arena;

static real *arena_take(arena *a, size_t n)
{
  real *p = a->memory ? a->memory + a->used : NULL;
  a->used += n;
  return p;
}

static bool is_lstm(const train_layer *layer)
{
  return layer->type == CARRY_LAYER_LSTM;
}

/* ------------------------------------------------------------------------ */
/* Layout */

static void shape_layers(train_net *net)
{
  const int H = net->arch.n_units;
  const int per_unit = net->arch.type == CARRY_LAYER_LSTM ? 4 : 3;
  for (int l = 0; l < net->n_layers; ++l) {
    train_layer *layer = &net->layers[l];
    layer->type = net->arch.type;
    layer->n_in = l ? H : net->n_inputs;
    layer->n_units = H;
    layer->n_rows = per_unit * H;
  }
  net->head.n_in = H;
}

/** Parameters (or, with `grads`, their gradients) of every layer in Keras
    order: kernel, recurrent, bias, GRU recurrent bias; then the head. */
static void lay_out_params(train_net *net, arena *a, bool grads)
{
  for (int l = 0; l < net->n_layers; ++l) {
    train_layer *layer = &net->layers[l];
    const size_t I = (size_t)layer->n_in, H = (size_t)layer->n_units;
    const size_t G = (size_t)layer->n_rows;
    real *kernel = arena_take(a, I * G);
    real *recurrent = arena_take(a, H * G);
    real *bias = arena_take(a, G);
    real *recurrent_bias = is_lstm(layer) ? NULL : arena_take(a, G);
    *(grads ? &layer->d_kernel : &layer->kernel) = kernel;
    *(grads ? &layer->d_recurrent : &layer->recurrent) = recurrent;
    *(grads ? &layer->d_bias : &layer->bias) = bias;
    *(grads ? &layer->d_recurrent_bias : &layer->recurrent_bias) =
      recurrent_bias;
  }
  real *kernel = arena_take(a, (size_t)net->head.n_in);
  real *bias = arena_take(a, 1);
  *(grads ? &net->head.d_kernel : &net->head.kernel) = kernel;
  *(grads ? &net->head.d_bias : &net->head.bias) = bias;
}

static void lay_out_layer_activations(train_layer *layer, size_t TB,
                                      size_t B, arena *a)
{
  const size_t H = (size_t)layer->n_units, G = (size_t)layer->n_rows;
  layer->gates = arena_take(a, TB * G);
  layer->gates_h = is_lstm(layer) ? NULL : arena_take(a, TB * G);
  layer->tanh_c = is_lstm(layer) ? arena_take(a, TB * H) : NULL;
  layer->h = arena_take(a, TB * H + B * H);
  layer->c = is_lstm(layer) ? arena_take(a, TB * H + B * H) : NULL;
  layer->d_out = arena_take(a, TB * H);
  layer->d_h = arena_take(a, B * H);
  layer->d_c = is_lstm(layer) ? arena_take(a, B * H) : NULL;
}

static void lay_out_activations(train_net *net, arena *a)
{
  const size_t B = (size_t)net->max_batch;
  const size_t TB = (size_t)net->max_steps * B;
  for (int l = 0; l < net->n_layers; ++l) {
    lay_out_layer_activations(&net->layers[l], TB, B, a);
  }
  net->x = arena_take(a, TB * (size_t)net->n_inputs);
  net->y = arena_take(a, TB);
  net->d_y = arena_take(a, TB);
}

/** Counts, allocates (zeroed) and hands out one arena's arrays. */
static real *allocate(train_net *net, void (*lay_out)(train_net *, arena *))
{
  arena count = {NULL, 0};
  lay_out(net, &count);
  arena a = {calloc(count.used, sizeof(real)), 0};
  if (a.memory) {
    lay_out(net, &a);
  }
  return a.memory;
}

static void lay_out_values(train_net *net, arena *a)
{
  lay_out_params(net, a, false);
}

static void lay_out_grads(train_net *net, arena *a)
{
  lay_out_params(net, a, true);
}

train_net *train_net_create(const carry_train_arch *arch, int n_inputs,
                            int max_steps, int max_batch)
{
  train_net *net = calloc(1, sizeof(*net));
  if (!net) {
    return NULL;
  }
  net->arch = *arch;
  net->n_inputs = n_inputs;
  net->max_steps = max_steps;
  net->max_batch = max_batch;
  net->n_layers = arch->n_layers;
  shape_layers(net);
  arena count = {NULL, 0};
  lay_out_params(net, &count, false);
  net->n_params = count.used;
  net->params = allocate(net, lay_out_values);
  net->grads = allocate(net, lay_out_grads);
  net->activations = allocate(net, lay_out_activations);
  if (!net->params || !net->grads || !net->activations) {
    train_net_free(net);
    return NULL;
  }
  return net;
}

void train_net_free(train_net *net)
{
  if (net) {
    free(net->params);
    free(net->grads);
    free(net->activations);
    free(net);
  }
}

/* ------------------------------------------------------------------------ */
/* Initialisation */

static void fill_uniform(real *values, size_t n, double bound,
                         train_rng *rng)
{
  for (size_t k = 0; k < n; ++k) {
    values[k] = (real)(bound * (2.0 * train_rng_unit(rng) - 1.0));
  }
}

static void init_layer(train_layer *layer, train_rng *rng)
{
  const size_t I = (size_t)layer->n_in, H = (size_t)layer->n_units;
  const size_t G = (size_t)layer->n_rows;
  const double bound = 1.0 / sqrt((double)H);
  fill_uniform(layer->kernel, I * G, bound, rng);
  fill_uniform(layer->recurrent, H * G, bound, rng);
  fill_uniform(layer->bias, G, bound, rng);
  if (is_lstm(layer)) {
    // Keras keeps one LSTM bias: PyTorch's b_ih + b_hh, two draws.
    for (size_t k = 0; k < G; ++k) {
      layer->bias[k] += (real)(bound * (2.0 * train_rng_unit(rng) - 1.0));
    }
  } else {
    fill_uniform(layer->recurrent_bias, G, bound, rng);
  }
}

void train_net_init(train_net *net, train_rng *rng)
{
  for (int l = 0; l < net->n_layers; ++l) {
    init_layer(&net->layers[l], rng);
  }
  const double bound = 1.0 / sqrt((double)net->head.n_in);
  fill_uniform(net->head.kernel, (size_t)net->head.n_in, bound, rng);
  fill_uniform(net->head.bias, 1, bound, rng);
}

/* ------------------------------------------------------------------------ */
/* State */

void train_net_reset_state(train_net *net, int n_batch)
{
  for (int l = 0; l < net->n_layers; ++l) {
    train_layer *layer = &net->layers[l];
    const size_t n = (size_t)n_batch * (size_t)layer->n_units;
    memset(layer->h, 0, n * sizeof(real));
    if (layer->c) {
      memset(layer->c, 0, n * sizeof(real));
    }
  }
}

void train_net_carry_state(train_net *net, int n_steps, int n_batch)
{
  for (int l = 0; l < net->n_layers; ++l) {
    train_layer *layer = &net->layers[l];
    const size_t n = (size_t)n_batch * (size_t)layer->n_units;
    memcpy(layer->h, layer->h + (size_t)n_steps * n, n * sizeof(real));
    if (layer->c) {
      memcpy(layer->c, layer->c + (size_t)n_steps * n, n * sizeof(real));
    }
  }
}

/* ------------------------------------------------------------------------ */
/* Passes */

/** Layer l's outputs h[1..T] (T, B, H), the next layer's input. */
static const real *layer_output(const train_layer *layer, int n_batch)
{
  return layer->h + (size_t)n_batch * (size_t)layer->n_units;
}

void train_net_forward(train_net *net, int n_steps, int n_batch)
{
  const real *in = net->x;  // (T, B, I) the first layer's input
  for (int l = 0; l < net->n_layers; ++l) {
    train_layer *layer = &net->layers[l];
    if (is_lstm(layer)) {
      train_lstm_forward(layer, in, n_steps, n_batch, &net->profile);
    } else {
      train_gru_forward(layer, in, n_steps, n_batch, &net->profile);
    }
    in = layer_output(layer, n_batch);
  }
  const int rows = n_steps * n_batch;
  train_dense_forward(&net->head, in, rows, net->y, &net->profile);
  for (int r = 0; net->arch.has_skip && r < rows; ++r) {
    net->y[r] += net->x[(size_t)r * (size_t)net->n_inputs];
  }
}

void train_net_backward(train_net *net, int n_steps, int n_batch)
{
  const int L = net->n_layers;
  train_layer *last = &net->layers[L - 1];
  train_dense_backward(&net->head, layer_output(last, n_batch), net->d_y,
                       n_steps * n_batch, last->d_out, &net->profile);
  for (int l = L - 1; l >= 0; --l) {
    train_layer *layer = &net->layers[l];
    const real *in = l ? layer_output(&net->layers[l - 1], n_batch) : net->x;
    real *d_in = l ? net->layers[l - 1].d_out : NULL;
    if (is_lstm(layer)) {
      train_lstm_backward(layer, in, n_steps, n_batch, d_in, &net->profile);
    } else {
      train_gru_backward(layer, in, n_steps, n_batch, d_in, &net->profile);
    }
  }
}
