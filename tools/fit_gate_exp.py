#!/usr/bin/python3
"""Fits the polynomial of the exact-quality gates' exponential in
dsp/vmath.h (v_exp_neg_gate): e^s ~ 1 + s + s^2 (c2 + c3 s + ... + c6 s^4)
on |s| <= ln2 / 2, near-minimax in the relative error by Lawson's
iteration.  Prints the float coefficients and the error of their float32
evaluation.  Run with Debian's numpy: /usr/bin/python3 tools/fit_gate_exp.py
"""
import numpy as np

DEGREE = 6

half = np.log(2) / 2
s = np.linspace(-half, half, 20001)
exact = np.exp(s)
powers = np.stack([s ** k for k in range(2, DEGREE + 1)], 1)
target = exact - 1 - s
weight = np.ones_like(s)
best = (np.inf, None)
for _ in range(300):
    scale = np.sqrt(weight) / exact
    coef, *_ = np.linalg.lstsq(powers * scale[:, None], target * scale,
                               rcond=None)
    err = (1 + s + powers @ coef - exact) / exact
    if np.abs(err).max() < best[0]:
        best = (np.abs(err).max(), coef)
    weight = weight * np.abs(err)
    weight /= weight.sum()

coef = best[1].astype(np.float32)
s32 = s.astype(np.float32)
poly = np.float32(coef[-1])
for c in coef[-2::-1]:
    poly = (poly * s32 + c).astype(np.float32)
value = (np.float32(1) + (s32 + (s32 * s32) * poly)).astype(np.float32)
print("fit relative error %.3g, float32 %.3g"
      % (best[0], np.abs(value / exact - 1).max()))
print("c2..c%d:" % DEGREE, [float(c) for c in coef])
