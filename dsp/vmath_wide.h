/*
  Sixteen-lane float vectors for AVX-512 (the kernel set compiled with
  -mavx512f): the recurrent kernels run two unit groups' gates in one
  vector, and the gate activations come from the same text as v8f's
  (vmath_gates.h), so each lane gives the bits it gives in a v8f.
*/

#ifndef CARRY_VMATH_WIDE_H
#define CARRY_VMATH_WIDE_H

#include "vmath.h"

#if defined(__AVX512F__)

typedef float v16f __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));

static inline v16f w_load(const float *p)
{
  v16f v;
  memcpy(&v, p, sizeof(v));
  return v;
}

static inline void w_store(float *p, v16f v)
{
  memcpy(p, &v, sizeof(v));
}

static inline v16f w_set1(float a)
{
  return (v16f)_mm512_set1_ps(a);
}

/** As v_min: `b` where `a` is NaN. */
static inline v16f w_min(v16f a, v16f b)
{
  return (v16f)_mm512_min_ps((__m512)a, (__m512)b);
}

/** As v_max: `b` where `a` is NaN. */
static inline v16f w_max(v16f a, v16f b)
{
  return (v16f)_mm512_max_ps((__m512)a, (__m512)b);
}

static inline int w_any_nan(v16f v)
{
  return _mm512_cmp_ps_mask((__m512)v, (__m512)v, _CMP_UNORD_Q) != 0;
}

/** The low halves of a and b: [a0..7, b0..7]. */
static inline v16f w_low_halves(v16f a, v16f b)
{
  return (v16f)_mm512_shuffle_f32x4((__m512)a, (__m512)b, 0x44);
}

/** The high halves of a and b: [a8..15, b8..15]. */
static inline v16f w_high_halves(v16f a, v16f b)
{
  return (v16f)_mm512_shuffle_f32x4((__m512)a, (__m512)b, 0xEE);
}

/** The low half of a, the high half of b: [a0..7, b8..15]. */
static inline v16f w_low_high(v16f a, v16f b)
{
  return (v16f)_mm512_shuffle_f32x4((__m512)a, (__m512)b, 0xE4);
}

/** The high half of a, the low half of b: [a8..15, b0..7]. */
static inline v16f w_high_low(v16f a, v16f b)
{
  return (v16f)_mm512_shuffle_f32x4((__m512)a, (__m512)b, 0x4E);
}

/** Lanes 0-7 of v as a v8f. */
static inline v8f w_low(v16f v)
{
  return (v8f)_mm512_castps512_ps256((__m512)v);
}

/** Lanes 8-15 of v as a v8f. */
static inline v8f w_high(v16f v)
{
  const __m512d bits = _mm512_castps_pd((__m512)v);
  return (v8f)_mm256_castpd_ps(_mm512_extractf64x4_pd(bits, 1));
}

#define CARRY_VF v16f
#define CARRY_VI v16i
#define CARRY_V(name) w_##name
#include "vmath_gates.h"
#undef CARRY_VF
#undef CARRY_VI
#undef CARRY_V

/* One group's [g o] sums in one vector: tanh in lanes 0-7, sigmoid in lanes
   8-15, each lane with the bits of w_tanh_gate / w_sigmoid_gate (or the
   fast ones): one exponential and one division instead of two of each. */
#define CARRY_LOW_LANES ((__mmask16)0x00FF)

static inline v16f w_tanh_sigmoid_gate(v16f x)
{
  const v16f doubled = (v16f)_mm512_mask_add_ps((__m512)x, CARRY_LOW_LANES,
                                                (__m512)x, (__m512)x);
  const v16f e = w_exp_neg_gate(doubled);
  // 1 - e and 1 + e as in w_tanh_gate, so that both fuse alike
  const v16f numerator = (v16f)_mm512_mask_blend_ps(
    CARRY_LOW_LANES, (__m512)w_set1(1.0f), (__m512)(1.0f - e));
  return numerator / (1.0f + e);
}

/** Lanes 0-7 `low`, lanes 8-15 `high`. */
static inline v16f w_halves(float low, float high)
{
  return (v16f)_mm512_mask_blend_ps(CARRY_LOW_LANES, _mm512_set1_ps(high),
                                    _mm512_set1_ps(low));
}

/* tanh_fast and sigmoid_fast are one rational form with their own
   constants: (x P(u) + k Q(u)) / Q(u) with k = -0 (adds nothing, not even
   to a zero's sign) for tanh and 1/2 for sigmoid. */
static inline v16f w_tanh_sigmoid_fast(v16f x)
{
  const float *tp = carry_fast_tanh_p, *tq = carry_fast_tanh_q;
  const float *sp = carry_fast_sigmoid_p, *sq = carry_fast_sigmoid_q;
  const v16f bound = w_halves(9.0f, 18.0f);
  x = w_max(w_min(x, bound), -bound);
  const v16f u = x * x, u2 = u * u;
  const v16f odd = (w_halves(tp[0], sp[0]) + w_halves(tp[1], sp[1]) * u) +
                   u2 * (w_halves(tp[2], sp[2]) + w_halves(tp[3], sp[3]) * u);
  const v16f den =
    (w_halves(tq[0], sq[0]) + w_halves(tq[1], sq[1]) * u) +
    u2 * ((w_halves(tq[2], sq[2]) + w_halves(tq[3], sq[3]) * u) +
          w_halves(tq[4], sq[4]) * u2);
  return (x * odd + w_halves(-0.0f, 0.5f) * den) / den;
}

#endif /* __AVX512F__ */

#endif /* CARRY_VMATH_WIDE_H */
