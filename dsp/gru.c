/*
  GRU over a chunk of samples, Keras reset_after=True (gates z, r, h):
    z = σ(Wz·x + bz + Uz·h + b'z)
    r = σ(Wr·x + br + Ur·h + b'r)
    n = tanh(Wh·x + bh + r ⊙ (Uh·h + b'h))
    h = (1 - z) ⊙ n + z ⊙ h  =  n + z ⊙ (h - n)
  The packed bias already holds bz + b'z and br + b'r.
*/

#include "kernels.h"

#include <string.h>

/** Applies the gates to `h`: `z` holds the z and r pre-activations and the
    h block's input part, `rec` the h block's recurrent part.  Returns
    whether the new state is finite. */
static int gru_gates(const float *z, const float *rec, int Hp, float *h)
{
  v8f check = v_set1(0.0f);
  for (int k = 0; k < Hp; k += 8) {
    const v8f update = v_sigmoid(v_load(z + k));
    const v8f reset = v_sigmoid(v_load(z + Hp + k));
    const v8f n = v_tanh(v_load(z + 2 * Hp + k) + reset * v_load(rec + k));
    const v8f h_new = n + update * (v_load(h + k) - n);
    v_store(h + k, h_new);
    check += h_new * 0.0f;
  }
  return !v_any_nan(check);
}

void carry_gru_chunk(const carry_packed_layer *layer, const float *x,
                     int x_stride, int n_samples, float *h, float *y,
                     float *pre)
{
  const int H = layer->n_units, Hp = layer->n_padded, Gp = layer->n_rows;
  const size_t state_bytes = (size_t)Hp * sizeof(float);
  float *rec = pre + (size_t)n_samples * (size_t)Gp; // (Hp) after the chunk
  carry_project_inputs(layer, x, x_stride, n_samples, pre);
  for (int t = 0; t < n_samples; ++t) {
    float *z = pre + (size_t)t * (size_t)Gp; // (Gp)
    carry_matvec_acc(layer->recurrent, Gp, H, 2 * Hp, h, z, z);
    carry_matvec_acc(layer->recurrent + 2 * Hp, Gp, H, Hp, h, layer->bias_h,
                     rec);
    if (!gru_gates(z, rec, Hp, h)) {
      memcpy(h, layer->h0, state_bytes);
    }
    memcpy(y + (size_t)t * (size_t)Hp, h, state_bytes);
  }
}
