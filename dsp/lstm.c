/*
  LSTM over a chunk of samples (gates i, f, g, o):
    z = b + W·x + U·h
    c = σ(z_f) ⊙ c + σ(z_i) ⊙ tanh(z_g)
    h = σ(z_o) ⊙ tanh(c)
  The input projection of the whole chunk comes first, since it does not
  depend on the state; then the recurrent product runs sample by sample, a
  register tile of one or two unit groups at a time (every gate of those
  units, see carry_packed_layer), each tile finishing its units' gates at
  once so that their activations overlap the next tile's products.  Each
  sample's h is written straight into its output row, which is where the
  next sample reads it.
*/

#include "kernels.h"

#include <string.h>

/** One tile: `n_groups` (1 or 2) groups of 8 units.  `pre` and `recurrent`
    point at the tile's first column, `c` and `h_out` at its first unit.
    Returns a vector that is NaN wherever the new state is not finite. */
static inline __attribute__((always_inline)) v8f
lstm_tile(const float *recurrent, int Gp, int H, const float *h,
          const float *pre, float *c, float *h_out, const int n_groups)
{
  v8f acc[8];
  for (int v = 0; v < 4 * n_groups; ++v) {
    acc[v] = v_load(pre + 8 * v);
  }
  for (int j = 0; j < H; ++j) {
    const v8f hj = v_set1(h[j]);
    const float *row = recurrent + (size_t)j * (size_t)Gp;
    for (int v = 0; v < 4 * n_groups; ++v) {
      acc[v] += hj * v_load(row + 8 * v);
    }
  }
  v8f check = v_set1(0.0f);
  for (int g = 0; g < n_groups; ++g) {
    const v8f i = v_sigmoid(acc[4 * g]);
    const v8f f = v_sigmoid(acc[4 * g + 1]);
    const v8f cell = v_tanh(acc[4 * g + 2]);
    const v8f o = v_sigmoid(acc[4 * g + 3]);
    const v8f c_new = f * v_load(c + 8 * g) + i * cell;
    const v8f h_new = o * v_tanh(c_new);
    v_store(c + 8 * g, c_new);
    v_store(h_out + 8 * g, h_new);
    check += c_new * 0.0f + h_new * 0.0f; // NaN if either is not finite
  }
  return check;
}

/** One sample: from h (Hp) and the gate inputs `pre` (Gp) to the new c
    (in place) and `h_out`.  Returns whether the new state is finite. */
static bool lstm_step(const carry_packed_layer *layer, const float *pre,
                      const float *h, float *c, float *h_out)
{
  const int H = layer->n_units, Gp = layer->n_rows;
  const int n_groups = layer->n_padded / 8;
  v8f check = v_set1(0.0f);
  int g = 0;
  for (; g + 2 <= n_groups; g += 2) {
    check += lstm_tile(layer->recurrent + 32 * g, Gp, H, h, pre + 32 * g,
                       c + 8 * g, h_out + 8 * g, 2);
  }
  if (g < n_groups) {
    check += lstm_tile(layer->recurrent + 32 * g, Gp, H, h, pre + 32 * g,
                       c + 8 * g, h_out + 8 * g, 1);
  }
  return !v_any_nan(check);
}

void carry_lstm_chunk(const carry_packed_layer *layer, const float *x,
                      int x_stride, int n_samples, float *h, float *c,
                      float *y, float *pre)
{
  const size_t Hp = (size_t)layer->n_padded, Gp = (size_t)layer->n_rows;
  const float *h_prev = h;
  carry_project_inputs(layer, x, x_stride, n_samples, pre);
  for (size_t t = 0; t < (size_t)n_samples; ++t) {
    float *h_out = y + t * Hp;
    if (!lstm_step(layer, pre + t * Gp, h_prev, c, h_out)) {
      memcpy(h_out, layer->h0, Hp * sizeof(float));
      memcpy(c, layer->c0, Hp * sizeof(float));
    }
    h_prev = h_out;
  }
  memcpy(h, h_prev, Hp * sizeof(float));
}
