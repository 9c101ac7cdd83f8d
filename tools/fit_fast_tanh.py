#!/usr/bin/python3
"""Fits the fast-quality tanh of dsp/vmath_gates.h (tanh_fast):
tanh x ~ x P(x^2) / Q(x^2), Q(0) = 1, on [0, CLAMP], near-minimax in the
absolute error by Lawson's iteration on the linearised error
x P - tanh(x) Q.  Prints the coefficients (rounded to float), the error
of a float32 evaluation, and the fast sigmoid's coefficients made from
them: sigmoid x = 1/2 + tanh(x/2)/2 = (x A(x^2) + Q(x^2/4)/2) / Q(x^2/4)
with A(u) = P(u/4)/4, so a_k = p_k / 4^(k+1) and d_k = q_k / 4^k.  Run with Debian's numpy:
    /usr/bin/python3 tools/fit_fast_tanh.py
"""
import numpy as np

P_TERMS, Q_TERMS, CLAMP = 4, 4, 9.0   # P: 4 coefficients; Q: 1 + 4


def fit(n_p, n_q, clamp, iterations=200):
    x = np.unique(np.concatenate([
        np.linspace(0, clamp, 6000),
        clamp * np.sin(np.linspace(0, np.pi / 2, 6000)) ** 2]))
    t, u = np.tanh(x), x * x
    a = np.hstack([np.stack([x * u ** k for k in range(n_p)], 1),
                   np.stack([-t * u ** k for k in range(1, n_q + 1)], 1)])
    weight, q_abs = np.ones_like(x) / len(x), np.ones_like(x)
    best = (np.inf, None, None)
    for _ in range(iterations):
        scale = np.sqrt(weight) / q_abs
        coef, *_ = np.linalg.lstsq(a * scale[:, None], t * scale, rcond=None)
        p, q = coef[:n_p], np.concatenate([[1.0], coef[n_p:]])
        q_val = np.polyval(q[::-1], u)
        err = x * np.polyval(p[::-1], u) / q_val - t
        if np.abs(err).max() < best[0]:
            best = (np.abs(err).max(), p, q)
        q_abs = np.abs(q_val)
        weight = weight * np.abs(err)
        weight /= weight.sum()
    return best


def float32_error(p, q, clamp):
    x = np.linspace(-clamp - 3, clamp + 3, 800001).astype(np.float32)
    xc = np.clip(x, -clamp, clamp).astype(np.float32)
    u = xc * xc
    num, den = np.float32(p[-1]), np.float32(q[-1])
    for c in p[-2::-1]:
        num = (num * u + np.float32(c)).astype(np.float32)
    for c in q[-2::-1]:
        den = (den * u + np.float32(c)).astype(np.float32)
    y = (xc * num / den).astype(np.float32)
    return np.abs(y.astype(np.float64) - np.tanh(x.astype(np.float64))).max()


err, p, q = fit(P_TERMS, Q_TERMS, CLAMP)
print("fit error %.3g, float32 error %.3g" % (err, float32_error(p, q, CLAMP)))
print("P:", [float(np.float32(c)) for c in p])
print("Q:", [float(np.float32(c)) for c in q])
print("sigmoid numerator:",
      [float(np.float32(c / 4.0 ** (k + 1))) for k, c in enumerate(p)])
print("sigmoid denominator:",
      [float(np.float32(c / 4.0 ** k)) for k, c in enumerate(q)])
