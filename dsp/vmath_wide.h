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

#define CARRY_VF v16f
#define CARRY_VI v16i
#define CARRY_V(name) w_##name
#include "vmath_gates.h"
#undef CARRY_VF
#undef CARRY_VI
#undef CARRY_V

#endif /* __AVX512F__ */

#endif /* CARRY_VMATH_WIDE_H */
