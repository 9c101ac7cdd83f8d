/*
  Eight-lane float vectors (GCC/Clang vector extensions) and the exact
  activations on them.  Compiled once per instruction set: with AVX2 a
  vector is one register, on the x86-64 baseline two SSE registers.

  "Exact" means as accurate as float32 arithmetic allows for audio: errors
  of a float step or two (1e-7 near full scale), which keeps whole networks
  within a few 1e-7 of PyTorch; tests/test_vmath.c measures the error
  against double precision over the whole useful range.
*/

#ifndef CARRY_VMATH_H
#define CARRY_VMATH_H

#include <stdint.h>
#include <string.h>

#if defined(__AVX__)
#  include <immintrin.h>
#endif

typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

static inline v8f v_load(const float *p)
{
  v8f v;
  memcpy(&v, p, sizeof(v));
  return v;
}

static inline void v_store(float *p, v8f v)
{
  memcpy(p, &v, sizeof(v));
}

static inline v8f v_set1(float a)
{
  return (v8f){a, a, a, a, a, a, a, a};
}

/** Lanes of `a` where `mask` is set, else lanes of `b`. */
static inline v8f v_select(v8i mask, v8f a, v8f b)
{
#if defined(__AVX__)
  return (v8f)_mm256_blendv_ps((__m256)b, (__m256)a, (__m256)mask);
#else
  return (v8f)((mask & (v8i)a) | (~mask & (v8i)b));
#endif
}

/** The smaller of each pair; `b` where `a` is NaN, so that clamping a NaN
    gives a finite bound. */
static inline v8f v_min(v8f a, v8f b)
{
#if defined(__AVX__)
  return (v8f)_mm256_min_ps((__m256)a, (__m256)b);
#else
  return v_select(a < b, a, b);
#endif
}

/** The larger of each pair; `b` where `a` is NaN. */
static inline v8f v_max(v8f a, v8f b)
{
#if defined(__AVX__)
  return (v8f)_mm256_max_ps((__m256)a, (__m256)b);
#else
  return v_select(a > b, a, b);
#endif
}

/** Sums the lanes in a fixed order, so results never depend on the caller. */
static inline float v_sum(v8f v)
{
  return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]));
}

/** Whether any lane is NaN (a product with zero turns infinities to NaN). */
static inline int v_any_nan(v8f v)
{
#if defined(__AVX__)
  return _mm256_movemask_ps(_mm256_cmp_ps((__m256)v, (__m256)v, _CMP_UNORD_Q));
#else
  const v8i nan = v != v;
  return (nan[0] | nan[1] | nan[2] | nan[3] | nan[4] | nan[5] | nan[6] |
          nan[7]) != 0;
#endif
}

/**
  e^x: x = n ln2 + r with |r| <= ln2 / 2 (ln2 split in two so that n ln2 is
  exact), e^r by its Taylor series to r^7 (truncation below 6e-9 relative),
  and 2^n built in the exponent bits.  x is clamped so that 2^n stays a
  normal number (e^-87 is far below anything audible); the clamp also
  turns a NaN into a finite value, so no activation ever returns NaN.
*/
static inline v8f v_exp(v8f x)
{
  const float ln2_hi = 0.693359375f;
  const float ln2_lo = -2.12194440e-4f;
  const float round_magic = 12582912.0f; // 1.5 * 2^23: adding it rounds,
  const int32_t magic_bits = 0x4B400000; // and leaves n in the low bits
  x = v_max(v_min(x, v_set1(88.0f)), v_set1(-87.0f));
  const v8f shifted = x * 1.44269504f + round_magic;
  const v8f n = shifted - round_magic;
  const v8f r = (x - n * ln2_hi) - n * ln2_lo;
  // e^r - 1 by Estrin's scheme (independent pairs, then two levels: four
  // multiply-add latencies instead of seven), and the 1 added last so that
  // the rounding of the pairs stays small against it.
  const v8f r2 = r * r, r4 = r2 * r2;
  const v8f p23 = 0.5f + r * (1.0f / 6.0f);
  const v8f p45 = 1.0f / 24.0f + r * (1.0f / 120.0f);
  const v8f p67 = 1.0f / 720.0f + r * (1.0f / 5040.0f);
  const v8f p = 1.0f + ((r + r2 * p23) + r4 * (p45 + r2 * p67));
  const v8i scale = ((v8i)shifted - (magic_bits - 127)) << 23;
  return p * (v8f)scale;
}

/** 1 / (1 + e^-x): within 3 ulp wherever the result is a normal float. */
static inline v8f v_sigmoid(v8f x)
{
  return 1.0f / (1.0f + v_exp(-x));
}

/**
  tanh x = (1 - e) / (1 + e) with e = e^-2x: absolute error below 1.5e-7
  (about one float step at 1) everywhere, which is what matters for audio
  and inside the cells, where tanh's output is scaled and summed.  Near 0
  the relative error grows (the subtraction cancels) while the absolute
  error shrinks; a polynomial branch for small x would double the cost.
*/
static inline v8f v_tanh(v8f x)
{
  const v8f e = v_exp(-2.0f * x);
  return (1.0f - e) / (1.0f + e);
}

/* The gate activations, e^-x and the fast tanh, for v8f (vmath_gates.h is
   included again for AVX-512's v16f by vmath_wide.h). */
#define CARRY_VF v8f
#define CARRY_VI v8i
#define CARRY_V(name) v_##name
#include "vmath_gates.h"
#undef CARRY_VF
#undef CARRY_VI
#undef CARRY_V

static inline v8f v_relu(v8f x)
{
  return v_max(x, v_set1(0.0f));
}

/** e^x - 1 without the cancellation near 0: there the Taylor series to
    x^8 (truncation below 1e-9 relative for |x| < ln2 / 2). */
static inline v8f v_expm1(v8f x)
{
  v8f p = v_set1(1.0f / 40320.0f);
  p = p * x + 1.0f / 5040.0f;
  p = p * x + 1.0f / 720.0f;
  p = p * x + 1.0f / 120.0f;
  p = p * x + 1.0f / 24.0f;
  p = p * x + 1.0f / 6.0f;
  p = p * x + 0.5f;
  const v8f small = x + x * x * p;
  const v8i is_small = (x < 0.3466f) & (x > -0.3466f);
  return v_select(is_small, small, v_exp(x) - 1.0f);
}

static inline v8f v_elu(v8f x)
{
  return v_select(x > 0.0f, x, v_expm1(x));
}

#endif /* CARRY_VMATH_H */
