#!/usr/bin/python3
"""Fits the odd polynomial that dsp/vmath.h uses for tanh(x) on |x| < 0.55.

tanh(x) = x + x^3 P(x^2), P of degree 4, fitted by iteratively reweighted
least squares on Chebyshev nodes to near-minimax relative error, then
checked in float32 Horner evaluation.  Above 0.55, vmath.h uses
1 - 2 / (exp(2x) + 1), where the subtraction loses at most one bit because
the result is at least tanh(0.55) = 0.5.  Run with Debian's python3-numpy.
"""
import numpy as np

LIMIT = 0.55
DEGREE = 4


def fit():
    n = 4000
    s = (1 - np.cos(np.linspace(0, np.pi, n))) / 2 * LIMIT * LIMIT
    s[0] = 1e-8
    x = np.sqrt(s)
    q = (np.tanh(x) - x) / x**3
    relative = s / (np.tanh(x) / x)  # how an error in P shows in tanh
    basis = np.vstack([s**k for k in range(DEGREE + 1)]).T
    weight = np.ones(n)
    for _ in range(50):
        scale = relative * weight
        coef, *_ = np.linalg.lstsq(basis * scale[:, None], q * scale, rcond=None)
        error = np.abs((basis @ coef - q) * relative)
        weight *= np.sqrt(error / error.max()) + 1e-3
    return coef.astype(np.float32)


def check(coef):
    x = np.linspace(0, LIMIT, 1_000_001).astype(np.float32)[1:]
    s = x * x
    p = coef[-1]
    for c in coef[-2::-1]:
        p = p * s + c
    t = x + x * s * p
    exact = np.tanh(x.astype(np.float64))
    return np.max(np.abs(t - exact) / exact) / 2.0**-23


if __name__ == "__main__":
    coef = fit()
    for k, c in enumerate(coef):
        print(f"#define TANH_P{k} {c:.9g}f")
    print(f"/* max relative error {check(coef):.2f} ulp on (0, {LIMIT}) */")
