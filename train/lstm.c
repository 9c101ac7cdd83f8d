/*
  LSTM over a chunk of T steps of B segments, forward and backward.

    z = x·W + h·U + b      (B, 4H), blocks i f g o (Keras and PyTorch order)
    i = σ(z_i)  f = σ(z_f)  g = tanh(z_g)  o = σ(z_o)
    c' = f ⊙ c + i ⊙ g     h' = o ⊙ tanh(c')

  The input product of the whole chunk is one GEMM, (T·B, I)·(I, 4H); each
  step adds its recurrent product (B, H)·(H, 4H).  Backward, each step
  takes one GEMM (B, 4H)·(4H, H) to send the gradient to the previous
  step, and the weight gradients of the whole chunk are three GEMMs over
  T·B rows.
*/

#include "train_internal.h"

#include <string.h>

/* ------------------------------------------------------------------------ */
/* Forward */

/** Activates the gates of one step in place and advances the state. */
TRAIN_CLONES
static void lstm_cell_forward(real *gates, const real *c_prev, real *c,
                              real *tanh_c, real *h, int n_batch, int H)
{
  const int G = 4 * H;
  for (int b = 0; b < n_batch; ++b) {
    real *z = gates + (size_t)b * G;   // (4H) this segment's i f g o
    train_sigmoid(z, 2 * (size_t)H);
    train_tanh(z + 2 * H, z + 2 * H, (size_t)H);
    train_sigmoid(z + 3 * H, (size_t)H);
    const size_t row = (size_t)b * H;
    for (int j = 0; j < H; ++j) {
      c[row + j] = z[H + j] * c_prev[row + j] + z[j] * z[2 * H + j];
    }
  }
  train_tanh(c, tanh_c, (size_t)n_batch * H);
  for (int b = 0; b < n_batch; ++b) {
    const real *o = gates + (size_t)b * G + 3 * H;  // (H)
    const size_t row = (size_t)b * H;
    for (int j = 0; j < H; ++j) {
      h[row + j] = o[j] * tanh_c[row + j];
    }
  }
}

void train_lstm_forward(train_layer *layer, const real *x, int n_steps,
                        int n_batch, train_profile *profile)
{
  const int I = layer->n_in, H = layer->n_units, G = layer->n_rows;
  const size_t step_gates = (size_t)n_batch * G;  // (B, G) per step
  const size_t step_units = (size_t)n_batch * H;  // (B, H) per step
  const int rows = n_steps * n_batch;             // T·B
  train_fill_rows(layer->gates, layer->bias, (size_t)rows, G);
  train_gemm(false, false, rows, G, I, 1, x, I, layer->kernel, G, 1,
             layer->gates, G, profile);
  for (int t = 0; t < n_steps; ++t) {
    real *z = layer->gates + (size_t)t * step_gates;       // (B, G)
    const real *h_prev = layer->h + (size_t)t * step_units; // (B, H)
    train_gemm(false, false, n_batch, G, H, 1, h_prev, H, layer->recurrent,
               G, 1, z, G, profile);
    lstm_cell_forward(z, layer->c + (size_t)t * step_units,
                      layer->c + (size_t)(t + 1) * step_units,
                      layer->tanh_c + (size_t)t * step_units,
                      layer->h + (size_t)(t + 1) * step_units, n_batch, H);
  }
}

/* ------------------------------------------------------------------------ */
/* Backward */

/** One step back through the cell: from dL/dh (d_h) and dL/dc' (d_c, in:
    from the next step; out: for the previous one), overwrites the step's
    gates with dL/dz. */
TRAIN_CLONES
static void lstm_cell_backward(real *gates, const real *c_prev,
                               const real *tanh_c, const real *d_h,
                               real *d_c, int n_batch, int H)
{
  const int G = 4 * H;
  for (int b = 0; b < n_batch; ++b) {
    real *z = gates + (size_t)b * G;   // (4H) activations in, dL/dz out
    const size_t row = (size_t)b * H;
    for (int j = 0; j < H; ++j) {
      const real i = z[j], f = z[H + j], g = z[2 * H + j], o = z[3 * H + j];
      const real tc = tanh_c[row + j];
      const real dc = d_c[row + j] + d_h[row + j] * o * (1 - tc * tc);
      z[j] = dc * g * i * (1 - i);
      z[H + j] = dc * c_prev[row + j] * f * (1 - f);
      z[2 * H + j] = dc * i * (1 - g * g);
      z[3 * H + j] = d_h[row + j] * tc * o * (1 - o);
      d_c[row + j] = dc * f;
    }
  }
}

/** The weight gradients of the whole chunk from dL/dz (T·B, G). */
static void lstm_weight_grads(train_layer *layer, const real *x, int rows,
                              train_profile *profile)
{
  const int I = layer->n_in, H = layer->n_units, G = layer->n_rows;
  // dW (I, G) = xᵀ (I, T·B) · dZ (T·B, G)
  train_gemm(true, false, I, G, rows, 1, x, I, layer->gates, G, 0,
             layer->d_kernel, G, profile);
  // dU (H, G) = h[0..T-1]ᵀ (H, T·B) · dZ (T·B, G)
  train_gemm(true, false, H, G, rows, 1, layer->h, H, layer->gates, G, 0,
             layer->d_recurrent, G, profile);
  train_column_sums(layer->gates, rows, G, layer->d_bias);
}

void train_lstm_backward(train_layer *layer, const real *x, int n_steps,
                         int n_batch, real *d_x, train_profile *profile)
{
  const int I = layer->n_in, H = layer->n_units, G = layer->n_rows;
  const size_t step_gates = (size_t)n_batch * G;
  const size_t step_units = (size_t)n_batch * H;
  const int rows = n_steps * n_batch;
  memset(layer->d_h, 0, step_units * sizeof(real));
  memset(layer->d_c, 0, step_units * sizeof(real));
  for (int t = n_steps - 1; t >= 0; --t) {
    real *dz = layer->gates + (size_t)t * step_gates;  // (B, G)
    train_add_into(layer->d_h, layer->d_out + (size_t)t * step_units,
                   step_units);
    lstm_cell_backward(dz, layer->c + (size_t)t * step_units,
                       layer->tanh_c + (size_t)t * step_units, layer->d_h,
                       layer->d_c, n_batch, H);
    // dL/dh[t] (B, H) = dZ (B, G) · Uᵀ (G, H)
    train_gemm(false, true, n_batch, H, G, 1, dz, G, layer->recurrent, G, 0,
               layer->d_h, H, profile);
  }
  lstm_weight_grads(layer, x, rows, profile);
  if (d_x) {
    // dL/dx (T·B, I) = dZ (T·B, G) · Wᵀ (G, I)
    train_gemm(false, true, rows, I, G, 1, layer->gates, G, layer->kernel, G,
               0, d_x, I, profile);
  }
}
