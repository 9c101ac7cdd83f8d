/*
  The gate activations of the recurrent kernels on one vector type: the
  body is written once and included once per type, with CARRY_VF (the
  float vector), CARRY_VI (the int32 vector of the same width) and
  CARRY_V(name) (the type's prefix: v_ for v8f in vmath.h, w_ for v16f in
  vmath_wide.h) defined, so that every width computes every lane with the
  same operations and gives the same bits.  The type's set1, min and max
  must be defined first.  No include guard, on purpose.
*/

#ifndef CARRY_FAST_GATE_COEFFICIENTS
#define CARRY_FAST_GATE_COEFFICIENTS
/* The fast tanh's P and Q (see tanh_fast), and the fast sigmoid's
   numerator and denominator made from them (see sigmoid_fast). */
static const float carry_fast_tanh_p[4] = {
  0.9999983906745911f, 0.12820152938365936f, 0.0028404914774000645f,
  1.0296642358298413e-05f};
static const float carry_fast_tanh_q[5] = {
  1.0f, 0.4615292251110077f, 0.023355945944786072f, 0.00022341212024912238f,
  2.1100632352499815e-07f};
static const float carry_fast_sigmoid_p[4] = {
  0.24999959766864777f, 0.00801259558647871f, 4.438267933437601e-05f,
  4.022125921210318e-08f};
static const float carry_fast_sigmoid_q[5] = {
  1.0f, 0.11538230627775192f, 0.0014597466215491295f, 3.490814378892537e-06f,
  8.24243451269524e-10f};
#endif

/**
  e^-x for the gates (exact quality): -x = n ln2 + s with n whole and
  |s| <= ln2 / 2 in one fused step (the error of ln2 in float, 2e-9 n, is
  below 5e-8 of the result for |x| < 16 and negligible against 1 beyond),
  e^s by Carry's own minimax polynomial of degree 6 (relative error 3e-9
  before rounding: tools/fit_gate_exp.py), with the signs of its odd terms
  folded in so that no negation is needed.  test_vmath measures the gates:
  1.3e-7 (tanh) and 9e-8 (sigmoid) absolute.  Three fewer operations than
  v_exp(-x); the dense layers and the trainer keep v_exp.
*/
static inline CARRY_VF CARRY_V(exp_neg_gate)(CARRY_VF x)
{
  const float round_magic = 12582912.0f;  // as in v_exp
  const int32_t magic_bits = 0x4B400000;
  x = CARRY_V(max)(CARRY_V(min)(x, CARRY_V(set1)(87.0f)),
                   CARRY_V(set1)(-88.0f));
  const CARRY_VF shifted = x * -1.44269504f + round_magic;
  const CARRY_VF n = shifted - round_magic;
  const CARRY_VF r = x + n * 0.693147182f;  // s = -r
  const CARRY_VF r2 = r * r;
  const CARRY_VF p = (0.4999999404f - 0.1666652113f * r) +
                r2 * ((0.041668389f - 0.0083687101f * r) +
                      r2 * 0.0013814600f);
  const CARRY_VF e = 1.0f + (r2 * p - r);
  const CARRY_VI scale = ((CARRY_VI)shifted - (magic_bits - 127)) << 23;
  return e * (CARRY_VF)scale;
}

/** Exact-quality gate sigmoid: 1 / (1 + e^-x). */
static inline CARRY_VF CARRY_V(sigmoid_gate)(CARRY_VF x)
{
  return 1.0f / (1.0f + CARRY_V(exp_neg_gate)(x));
}

/** Exact-quality gate tanh: (1 - e) / (1 + e) with e = e^-2x. */
static inline CARRY_VF CARRY_V(tanh_gate)(CARRY_VF x)
{
  const CARRY_VF e = CARRY_V(exp_neg_gate)(x + x);
  return (1.0f - e) / (1.0f + e);
}

/** P(u) (4 coefficients) and Q(u) (5) by Estrin's scheme: pairs, then u^2
    (three multiply-add latencies instead of four). */
static inline void CARRY_V(fast_polynomials)(CARRY_VF u, const float *p,
                                             const float *q, CARRY_VF *p_u,
                                             CARRY_VF *q_u)
{
  const CARRY_VF u2 = u * u;
  *p_u = (p[0] + p[1] * u) + u2 * (p[2] + p[3] * u);
  *q_u = (q[0] + q[1] * u) + u2 * ((q[2] + q[3] * u) + q[4] * u2);
}

/**
  Fast quality: tanh x ~ x P(x^2) / Q(x^2), P of degree 3 and Q of degree
  4 in x^2, with x clamped to +-9 (where tanh is 1 within 3e-8).  The
  coefficients are Carry's own near-minimax fit (Lawson's iteration on the
  linearised error: tools/fit_fast_tanh.py); in float arithmetic the
  absolute error stays below 7e-7 (tests/test_vmath.c measures it).
  Twelve vector operations and a division, against some twenty for the
  exact exp-based form, and a shorter chain of dependent ones.
*/
static inline CARRY_VF CARRY_V(tanh_fast)(CARRY_VF x)
{
  x = CARRY_V(max)(CARRY_V(min)(x, CARRY_V(set1)(9.0f)),
                   CARRY_V(set1)(-9.0f));
  CARRY_VF num, den;
  CARRY_V(fast_polynomials)(x * x, carry_fast_tanh_p, carry_fast_tanh_q,
                            &num, &den);
  return x * num / den;
}

/**
  Fast quality: sigmoid x = 1/2 + tanh(x/2) / 2 with tanh's rational
  above, written as one fraction: (Q(x^2/4) / 2 + x P(x^2/4) / 4) /
  Q(x^2/4), the quarter powers folded into the coefficients (p_k / 4^(k+1)
  and q_k / 4^k), x clamped to +-18.  No halving before nor
  multiply-add after: two fewer latencies than through tanh_fast.
  Absolute error below 4e-7 (tests/test_vmath.c).
*/
static inline CARRY_VF CARRY_V(sigmoid_fast)(CARRY_VF x)
{
  x = CARRY_V(max)(CARRY_V(min)(x, CARRY_V(set1)(18.0f)),
                   CARRY_V(set1)(-18.0f));
  CARRY_VF odd, den;
  CARRY_V(fast_polynomials)(x * x, carry_fast_sigmoid_p, carry_fast_sigmoid_q,
                            &odd, &den);
  return (x * odd + 0.5f * den) / den;  // den / 2 is exact: one rounding
}
