/*
  GRU over a chunk of T steps of B segments, forward and backward, in the
  Keras reset_after=True form that Carry runs:

    a = x·W + b            (B, 3H), blocks z r h
    u = h·U + b_h          (B, 3H)
    z = σ(a_z + u_z)   r = σ(a_r + u_r)   n = tanh(a_h + r ⊙ u_h)
    h' = (1 − z) ⊙ n + z ⊙ h

  As for the LSTM: one GEMM for the input product of the chunk, one per
  step for u, one per step back, and the weight gradients over the chunk.
*/

#include "train_internal.h"

#include <string.h>

/* ------------------------------------------------------------------------ */
/* Forward */

/** Activates one step: `a` (B, G) becomes z, r, n; `u` (B, G) is kept. */
TRAIN_CLONES
static void gru_cell_forward(real *a, const real *u, const real *h_prev,
                             real *h, int n_batch, int H)
{
  const int G = 3 * H;
  for (int b = 0; b < n_batch; ++b) {
    real *ab = a + (size_t)b * G;          // (3H) z r h
    const real *ub = u + (size_t)b * G;    // (3H)
    train_add_into(ab, ub, 2 * (size_t)H);
    train_sigmoid(ab, 2 * (size_t)H);
    for (int j = 0; j < H; ++j) {
      ab[2 * H + j] += ab[H + j] * ub[2 * H + j];
    }
    train_tanh(ab + 2 * H, ab + 2 * H, (size_t)H);
    const size_t row = (size_t)b * H;
    for (int j = 0; j < H; ++j) {
      const real z = ab[j];
      h[row + j] = (1 - z) * ab[2 * H + j] + z * h_prev[row + j];
    }
  }
}

void train_gru_forward(train_layer *layer, const real *x, int n_steps,
                       int n_batch, train_profile *profile)
{
  const int I = layer->n_in, H = layer->n_units, G = layer->n_rows;
  const size_t step_gates = (size_t)n_batch * G;  // (B, G) per step
  const size_t step_units = (size_t)n_batch * H;  // (B, H) per step
  const int rows = n_steps * n_batch;
  train_fill_rows(layer->gates, layer->bias, (size_t)rows, G);
  train_gemm(false, false, rows, G, I, 1, x, I, layer->kernel, G, 1,
             layer->gates, G, profile);
  for (int t = 0; t < n_steps; ++t) {
    real *u = layer->gates_h + (size_t)t * step_gates;       // (B, G)
    const real *h_prev = layer->h + (size_t)t * step_units;  // (B, H)
    train_fill_rows(u, layer->recurrent_bias, (size_t)n_batch, G);
    train_gemm(false, false, n_batch, G, H, 1, h_prev, H, layer->recurrent,
               G, 1, u, G, profile);
    gru_cell_forward(layer->gates + (size_t)t * step_gates, u, h_prev,
                     layer->h + (size_t)(t + 1) * step_units, n_batch, H);
  }
}

/* ------------------------------------------------------------------------ */
/* Backward */

/** One step back: from dL/dh' (d_h), writes dL/da over the step's gates,
    dL/du over its `u`, and the direct part of dL/dh (z ⊙ dL/dh') into
    d_h; the part through u is added by the caller. */
TRAIN_CLONES
static void gru_cell_backward(real *a, real *u, const real *h_prev,
                              real *d_h, int n_batch, int H)
{
  const int G = 3 * H;
  for (int b = 0; b < n_batch; ++b) {
    real *ab = a + (size_t)b * G;   // (3H) z r n in, dL/da out
    real *ub = u + (size_t)b * G;   // (3H) u in, dL/du out
    const size_t row = (size_t)b * H;
    for (int j = 0; j < H; ++j) {
      const real z = ab[j], r = ab[H + j], n = ab[2 * H + j];
      const real dh = d_h[row + j];
      const real dn = dh * (1 - z) * (1 - n * n);   // through tanh
      const real dz = dh * (h_prev[row + j] - n) * z * (1 - z);
      const real dr = dn * ub[2 * H + j] * r * (1 - r);
      ab[j] = dz;
      ab[H + j] = dr;
      ab[2 * H + j] = dn;
      ub[j] = dz;
      ub[H + j] = dr;
      ub[2 * H + j] = dn * r;
      d_h[row + j] = dh * z;
    }
  }
}

static void gru_weight_grads(train_layer *layer, const real *x, int rows,
                             train_profile *profile)
{
  const int I = layer->n_in, H = layer->n_units, G = layer->n_rows;
  // dW (I, G) = xᵀ (I, T·B) · dA (T·B, G)
  train_gemm(true, false, I, G, rows, 1, x, I, layer->gates, G, 0,
             layer->d_kernel, G, profile);
  // dU (H, G) = h[0..T-1]ᵀ (H, T·B) · dU (T·B, G)
  train_gemm(true, false, H, G, rows, 1, layer->h, H, layer->gates_h, G, 0,
             layer->d_recurrent, G, profile);
  train_column_sums(layer->gates, rows, G, layer->d_bias);
  train_column_sums(layer->gates_h, rows, G, layer->d_recurrent_bias);
}

void train_gru_backward(train_layer *layer, const real *x, int n_steps,
                        int n_batch, real *d_x, train_profile *profile)
{
  const int I = layer->n_in, H = layer->n_units, G = layer->n_rows;
  const size_t step_gates = (size_t)n_batch * G;
  const size_t step_units = (size_t)n_batch * H;
  const int rows = n_steps * n_batch;
  memset(layer->d_h, 0, step_units * sizeof(real));
  for (int t = n_steps - 1; t >= 0; --t) {
    real *du = layer->gates_h + (size_t)t * step_gates;  // (B, G)
    train_add_into(layer->d_h, layer->d_out + (size_t)t * step_units,
                   step_units);
    gru_cell_backward(layer->gates + (size_t)t * step_gates, du,
                      layer->h + (size_t)t * step_units, layer->d_h, n_batch,
                      H);
    // dL/dh[t] (B, H) += dU (B, G) · Uᵀ (G, H)
    train_gemm(false, true, n_batch, H, G, 1, du, G, layer->recurrent, G, 1,
               layer->d_h, H, profile);
  }
  gru_weight_grads(layer, x, rows, profile);
  if (d_x) {
    // dL/dx (T·B, I) = dA (T·B, G) · Wᵀ (G, I)
    train_gemm(false, true, rows, I, G, 1, layer->gates, G, layer->kernel, G,
               0, d_x, I, profile);
  }
}
