/*
  LSTM over a chunk of samples (gates i, f, g, o):
    z = b + W·x + U·h
    c = σ(z_f) ⊙ c + σ(z_i) ⊙ tanh(z_g)
    h = σ(z_o) ⊙ tanh(c)
  The input projection of the whole chunk comes first, since it does not
  depend on the state; then only the recurrent product runs sample by
  sample.
*/

#include "kernels.h"

#include <string.h>

/** Applies the gates in `z` (4 blocks of Hp) to the state.  Returns
    whether the new state is finite. */
static int lstm_gates(const float *z, int Hp, float *h, float *c)
{
  v8f check = v_set1(0.0f);
  for (int k = 0; k < Hp; k += 8) {
    const v8f i = v_sigmoid(v_load(z + k));
    const v8f f = v_sigmoid(v_load(z + Hp + k));
    const v8f g = v_tanh(v_load(z + 2 * Hp + k));
    const v8f o = v_sigmoid(v_load(z + 3 * Hp + k));
    const v8f c_new = f * v_load(c + k) + i * g;
    const v8f h_new = o * v_tanh(c_new);
    v_store(c + k, c_new);
    v_store(h + k, h_new);
    check += c_new * 0.0f + h_new * 0.0f; // NaN if either is not finite
  }
  return !v_any_nan(check);
}

void carry_lstm_chunk(const carry_packed_layer *layer, const float *x,
                      int x_stride, int n_samples, float *h, float *c,
                      float *y, float *pre)
{
  const int H = layer->n_units, Hp = layer->n_padded, Gp = layer->n_rows;
  const size_t state_bytes = (size_t)Hp * sizeof(float);
  carry_project_inputs(layer, x, x_stride, n_samples, pre);
  for (int t = 0; t < n_samples; ++t) {
    float *z = pre + (size_t)t * (size_t)Gp; // (Gp)
    carry_matvec_acc(layer->recurrent, Gp, H, Gp, h, z, z);
    if (!lstm_gates(z, Hp, h, c)) {
      memcpy(h, layer->h0, state_bytes);
      memcpy(c, layer->c0, state_bytes);
    }
    memcpy(y + (size_t)t * (size_t)Hp, h, state_bytes);
  }
}
