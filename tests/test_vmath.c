/*
  The exact activations against double-precision libm, over a dense sweep
  and the special values, for every compiled instruction set.
*/

#include "harness.h"
#include "internal.h"
#include "vmath.h"

#include <math.h>
#include <stdio.h>

void carry_activate_row_portable(carry_activation act, const float *x, int n,
                                 float *y);
void carry_activate_row_avx2(carry_activation act, const float *x, int n,
                             float *y);

typedef void (*activate_fn)(carry_activation, const float *, int, float *);

static double reference(carry_activation act, double x)
{
  switch (act) {
  case CARRY_ACT_TANH: return tanh(x);
  case CARRY_ACT_SIGMOID: return 1.0 / (1.0 + exp(-x));
  case CARRY_ACT_ELU: return x > 0 ? x : expm1(x);
  case CARRY_ACT_RELU: return x > 0 ? x : 0.0;
  default: return x;
  }
}

/** Error in units of the float spacing at the exact value (ulp), with the
    spacing floored at that of 2^-60 so that tiny results count by their
    absolute error. */
static double ulp_error(float got, double exact)
{
  const double spacing = ldexp(1.0, ilogb(fmax(fabs(exact), 0x1p-60)) - 23);
  return fabs((double)got - exact) / spacing;
}

enum { N_SWEEP = 400000 };

/** Checks the activation over [lo, hi]: its error in ulp (relative) when
    `max_ulp` > 0, else its absolute error against `max_abs`. */
static void check_sweep(const char *isa, activate_fn fn, carry_activation act,
                        const char *name, double lo, double hi,
                        double max_ulp, double max_abs)
{
  static float x[N_SWEEP], y[N_SWEEP + 8];
  for (int k = 0; k < N_SWEEP; ++k) {
    x[k] = (float)(lo + (hi - lo) * k / (N_SWEEP - 1));
  }
  fn(act, x, N_SWEEP, y);
  double worst = 0.0, worst_x = 0.0;
  for (int k = 0; k < N_SWEEP; ++k) {
    const double exact = reference(act, x[k]);
    const double e = max_ulp > 0 ? ulp_error(y[k], exact)
                                 : fabs((double)y[k] - exact);
    if (!(e <= worst)) {
      worst = e;
      worst_x = x[k];
    }
  }
  const char *unit = max_ulp > 0 ? "ulp" : "absolute";
  printf("%-9s %-8s on [%g, %g]: max error %.3g %s at x = %.9g\n", isa, name,
         lo, hi, worst, unit, worst_x);
  CHECK(worst <= (max_ulp > 0 ? max_ulp : max_abs),
        "%s %s: error %.3g %s at %.9g exceeds the bound", isa, name, worst,
        unit, worst_x);
}

static void check_special(const char *isa, activate_fn fn)
{
  const float x[8] = {0.0f, -0.0f, 100.0f, -100.0f, 1e-30f, -1e-30f, 1e30f,
                      -1e30f};
  float t[8], s[8];
  fn(CARRY_ACT_TANH, x, 8, t);
  fn(CARRY_ACT_SIGMOID, x, 8, s);
  CHECK(t[0] == 0.0f && t[2] == 1.0f && t[3] == -1.0f && t[6] == 1.0f &&
          t[7] == -1.0f,
        "%s tanh of 0, +-100, +-1e30 must be exact", isa);
  CHECK(t[1] == 0.0f && fabsf(t[4]) <= 1e-30f && fabsf(t[5]) <= 1e-30f,
        "%s tanh of zero and tiny values", isa);
  CHECK(s[0] == 0.5f && s[2] == 1.0f && s[3] >= 0.0f && s[3] < 1e-37f &&
          s[6] == 1.0f && s[7] >= 0.0f && s[7] < 1e-37f,
        "%s sigmoid limits", isa);
}

static void check_isa(const char *isa, activate_fn fn)
{
  check_sweep(isa, fn, CARRY_ACT_TANH, "tanh", -0.6, 0.6, 0, 1.5e-7);
  check_sweep(isa, fn, CARRY_ACT_TANH, "tanh", -50.0, 50.0, 0, 1.5e-7);
  check_sweep(isa, fn, CARRY_ACT_SIGMOID, "sigmoid", -30.0, 30.0, 3.0, 0);
  check_sweep(isa, fn, CARRY_ACT_SIGMOID, "sigmoid", -86.0, 20.0, 3.0, 0);
  check_sweep(isa, fn, CARRY_ACT_ELU, "elu", -20.0, 5.0, 3.0, 0);
  check_sweep(isa, fn, CARRY_ACT_RELU, "relu", -5.0, 5.0, 0, 0.0);
  check_special(isa, fn);
}

typedef v8f (*vector_fn)(v8f);

/** A gate activation's largest absolute error over [lo, hi]
    against `exact`, checked against `max_abs`; and a NaN gives a finite
    value, infinities the limits. */
static void check_gate(const char *name, vector_fn fn, double (*exact)(double),
                       double lo, double hi, double max_abs)
{
  double worst = 0.0, worst_x = 0.0;
  for (int k = 0; k < N_SWEEP; k += 8) {
    float lanes[8];
    for (int i = 0; i < 8; ++i) {
      lanes[i] = (float)(lo + (hi - lo) * (k + i) / (N_SWEEP - 1));
    }
    const v8f y = fn(v_load(lanes));
    for (int i = 0; i < 8; ++i) {
      const double e = fabs((double)y[i] - exact(lanes[i]));
      if (!(e <= worst)) {
        worst = e;
        worst_x = lanes[i];
      }
    }
  }
  printf("gate      %-12s on [%g, %g]: max error %.3g absolute at x = %.9g\n",
         name, lo, hi, worst, worst_x);
  CHECK(worst <= max_abs, "%s: error %.3g at %.9g exceeds %.3g", name,
        worst, worst_x, max_abs);
  const v8f special = fn((v8f){NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 1e-30f,
                               1e30f, -1e30f});
  for (int i = 0; i < 8; ++i) {  // lane 0, NaN: any finite value
    const double x = i == 0 ? 0.0 : (double)(float[]){
      NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 1e-30f, 1e30f, -1e30f}[i];
    CHECK(isfinite(special[i]) &&
            (i == 0 || fabs((double)special[i] - exact(x)) <= max_abs),
          "%s of a special value (lane %d) gives %.9g", name, i,
          (double)special[i]);
  }
}

static double sigmoid(double x)
{
  return 1.0 / (1.0 + exp(-x));
}

int main(void)
{
  check_gate("exact tanh", v_tanh_gate, tanh, -20.0, 20.0, 2e-7);
  check_gate("exact sigmoid", v_sigmoid_gate, sigmoid, -40.0, 40.0, 1e-7);
  check_gate("fast tanh", v_tanh_fast, tanh, -20.0, 20.0, 7e-7);
  check_gate("fast sigmoid", v_sigmoid_fast, sigmoid, -40.0, 40.0, 4e-7);
  check_isa("portable", carry_activate_row_portable);
#if defined(CARRY_HAVE_AVX2)
  if (carry_kernels_available(CARRY_KERNELS_AVX2)) {
    check_isa("avx2", carry_activate_row_avx2);
  }
#endif
  return test_finish("vmath");
}
