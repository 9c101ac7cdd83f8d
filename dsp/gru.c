/*
  GRU over a chunk of samples, Keras reset_after=True (gates z, r, h):
    z = σ(Wz·x + bz + Uz·h + b'z)
    r = σ(Wr·x + br + Ur·h + b'r)
    n = tanh(Wh·x + bh + r ⊙ (Uh·h + b'h))
    h = (1 - z) ⊙ n + z ⊙ h  =  n + z ⊙ (h - n)
  The packed bias already holds bz + b'z and br + b'r.  Tiles and output
  rows work as in lstm.c.
*/

#include "kernels.h"

#include <string.h>

/** One tile of `n_groups` (1 or 2) groups of 8 units: `h` is the whole
    previous state, `h_units` the tile's part of it.  Returns a vector that
    is NaN wherever the new state is not finite. */
static inline __attribute__((always_inline)) v8f
gru_tile(const float *recurrent, int Gp, int H, const float *h,
         const float *h_units, const float *pre, const float *bias_h,
         float *h_out, const int n_groups)
{
  v8f acc[6];
  for (int g = 0; g < n_groups; ++g) {
    acc[3 * g] = v_load(pre + 24 * g);          // z
    acc[3 * g + 1] = v_load(pre + 24 * g + 8);  // r
    acc[3 * g + 2] = v_load(bias_h + 8 * g);    // recurrent part of h
  }
  for (int j = 0; j < H; ++j) {
    const v8f hj = v_set1(h[j]);
    const float *row = recurrent + (size_t)j * (size_t)Gp;
    for (int v = 0; v < 3 * n_groups; ++v) {
      acc[v] += hj * v_load(row + 8 * v);
    }
  }
  v8f check = v_set1(0.0f);
  for (int g = 0; g < n_groups; ++g) {
    const v8f update = v_sigmoid(acc[3 * g]);
    const v8f reset = v_sigmoid(acc[3 * g + 1]);
    const v8f n = v_tanh(v_load(pre + 24 * g + 16) + reset * acc[3 * g + 2]);
    const v8f h_new = n + update * (v_load(h_units + 8 * g) - n);
    v_store(h_out + 8 * g, h_new);
    check += h_new * 0.0f;
  }
  return check;
}

static bool gru_step(const carry_packed_layer *layer, const float *pre,
                     const float *h, float *h_out)
{
  const int H = layer->n_units, Gp = layer->n_rows;
  const int n_groups = layer->n_padded / 8;
  v8f check = v_set1(0.0f);
  int g = 0;
  for (; g + 2 <= n_groups; g += 2) {
    check += gru_tile(layer->recurrent + 24 * g, Gp, H, h, h + 8 * g,
                      pre + 24 * g, layer->bias_h + 8 * g, h_out + 8 * g, 2);
  }
  if (g < n_groups) {
    check += gru_tile(layer->recurrent + 24 * g, Gp, H, h, h + 8 * g,
                      pre + 24 * g, layer->bias_h + 8 * g, h_out + 8 * g, 1);
  }
  return !v_any_nan(check);
}

void carry_gru_chunk(const carry_packed_layer *layer, const float *x,
                     int x_stride, int n_samples, float *h, float *y,
                     float *pre)
{
  const size_t Hp = (size_t)layer->n_padded, Gp = (size_t)layer->n_rows;
  const float *h_prev = h;
  carry_project_inputs(layer, x, x_stride, n_samples, pre);
  for (size_t t = 0; t < (size_t)n_samples; ++t) {
    float *h_out = y + t * Hp;
    if (!gru_step(layer, pre + t * Gp, h_prev, h_out)) {
      memcpy(h_out, layer->h0, Hp * sizeof(float));
    }
    h_prev = h_out;
  }
  memcpy(h, h_prev, Hp * sizeof(float));
}
