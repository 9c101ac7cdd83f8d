#!/usr/bin/python3
"""Writes presets/demo/soft-clip.json, Carry's bundled demo model.

This is a small, hand-designed test model, NOT a trained one: every weight
below is set by the equations in this docstring.  It exists so that
`make demo` and the tests have an honest model that audibly does something
musical (a soft-clipping drive with a gentle low-pass and an asymmetry knob)
until trained presets exist.

Format: RTNeural/AIDA-X Keras JSON (see FORMATS.md section 1) with two
inputs, the audio sample x and the knob k ("asymmetry", 0..1), an LSTM of
five units and a dense output of one.

The LSTM, per unit j (gate order i, f, g, o):

    c[n] = sigma(z_f) c[n-1] + sigma(z_i) tanh(z_g)
    h[n] = sigma(z_o) tanh(c[n])

All kernel and recurrent weights are zero except those of the cell
candidate, so the gates are constants set by their biases alone:

  * forget gate bias  b_f = logit(a), so sigma(z_f) = a;
  * input gate bias   b_i = -b_f,     so sigma(z_i) = 1 - a;
  * output gate bias  b_o = 8,        so sigma(z_o) = 0.9997 (almost open);
  * cell candidate    z_g = drive_j * x + BETA * k.

The cell is then a leaky integrator (a one-pole low-pass with unity gain at
DC) of tanh(drive_j * x + BETA * k):

    c[n] = a c[n-1] + (1 - a) tanh(drive_j x[n] + BETA k)

with a = exp(-2 pi fc / fs), fc = CUTOFF_HZ: the clipped signal is smoothed,
taking the edge off the harmonics the clipping makes.  tanh(c) adds a second,
milder saturation.

Units 0-3 have rising drives (DRIVES); the dense layer mixes them so that
each contributes an equal share (SHARES) of the small-signal gain GAIN: soft
playing is amplified almost linearly, loud playing is compressed smoothly
by the high-drive units saturating first.

The knob shifts every drive unit's operating point by BETA * k, so the
positive and negative half-waves clip differently (even harmonics, as in a
single-ended stage).  That shift alone would also put a DC offset on the
output.  Unit 4 has drive 0: it sees only BETA * k, so in silence it follows
exactly the same trajectory as each drive unit, and the dense layer gives it
minus the sum of the drive units' weights.  Silence in therefore gives
silence out, for every knob value and from the very first sample.

Run with /usr/bin/python3 (numpy).  It prints the static curve and the
harmonics of a test tone, computed by a direct numpy simulation of the
equations above, so the design can be checked without the C code.
"""

import json
import math
import os
import sys

import numpy as np

SAMPLE_RATE = 48000
CUTOFF_HZ = 7000.0
DRIVES = [1.0, 3.0, 9.0, 27.0]  # units 0-3; unit 4 is the DC reference
SHARES = [0.25, 0.25, 0.25, 0.25]
GAIN = 2.0  # small-signal gain with the knob at 0
BETA = 0.5  # how far the knob moves the operating point
OUTPUT_GATE_BIAS = 8.0
KNOB = {"name": "asymmetry", "min": 0.0, "max": 1.0, "default": 0.0}

N_UNITS = len(DRIVES) + 1
N_INPUTS = 2


def f32(value):
    """The shortest decimal that reads back as the same float32."""
    return float(np.format_float_positional(np.float32(value), unique=True))


def design():
    """Returns the Keras-order arrays: kernel (N, 4H), recurrent (H, 4H),
    bias (4H), dense kernel (H, 1) and dense bias (1)."""
    h = N_UNITS
    pole = math.exp(-2.0 * math.pi * CUTOFF_HZ / SAMPLE_RATE)
    forget_bias = math.log(pole / (1.0 - pole))
    kernel = np.zeros((N_INPUTS, 4 * h))
    recurrent = np.zeros((h, 4 * h))
    bias = np.zeros(4 * h)
    bias[0:h] = -forget_bias
    bias[h:2 * h] = forget_bias
    bias[3 * h:4 * h] = OUTPUT_GATE_BIAS
    for j, drive in enumerate(DRIVES + [0.0]):
        kernel[0, 2 * h + j] = drive
        kernel[1, 2 * h + j] = BETA
    output_gate = 1.0 / (1.0 + math.exp(-OUTPUT_GATE_BIAS))
    mix = [GAIN * share / (drive * output_gate)
           for drive, share in zip(DRIVES, SHARES)]
    dense = np.array(mix + [-sum(mix)]).reshape(h, 1)
    return kernel, recurrent, bias, dense, np.zeros(1)


def rounded(arrays):
    """The arrays as the file will hold them (float32)."""
    return [np.float32(a).astype(np.float64) for a in arrays]


def simulate(arrays, x, knob):
    """Runs the model over x (float64) per FORMATS.md; zero initial state."""
    kernel, recurrent, bias, dense, dense_bias = arrays
    h = N_UNITS
    sigmoid = lambda v: 1.0 / (1.0 + np.exp(-v))
    hidden, cell = np.zeros(h), np.zeros(h)
    y = np.empty_like(x)
    for n, sample in enumerate(x):
        z = np.array([sample, knob]) @ kernel + hidden @ recurrent + bias
        cell = sigmoid(z[h:2 * h]) * cell + \
            sigmoid(z[0:h]) * np.tanh(z[2 * h:3 * h])
        hidden = sigmoid(z[3 * h:4 * h]) * np.tanh(cell)
        y[n] = hidden @ dense[:, 0] + dense_bias[0]
    return y


def to_json(arrays):
    kernel, recurrent, bias, dense, dense_bias = arrays
    as_list = lambda a: [f32(v) for v in a] if a.ndim == 1 \
        else [as_list(row) for row in a]
    return {
        "in_shape": [None, None, N_INPUTS],
        "layers": [
            {"type": "lstm", "activation": "", "shape": [None, None, N_UNITS],
             "weights": [as_list(kernel), as_list(recurrent), as_list(bias)]},
            {"type": "dense", "activation": "", "shape": [None, None, 1],
             "weights": [as_list(dense), as_list(dense_bias)]},
        ],
        "metadata": {
            "name": "Soft clip (demo)",
            "author": "Carry project",
            "note": "Hand-built test model, not trained: an LSTM whose gates "
                    "are set by their biases, so that each unit is a leaky "
                    "integrator of tanh(drive * x + 0.5 * asymmetry); a "
                    "soft-clipping drive with a gentle 7 kHz low-pass. "
                    "Made by tools/make_demo_model.py.",
            "samplerate": SAMPLE_RATE,
        },
        "carry": {"version": 1, "knobs": [KNOB]},
    }


def dump(value, depth=0):
    """JSON text with a list of numbers on one line, the rest indented."""
    pad, inner = " " * depth, " " * (depth + 1)
    if isinstance(value, dict):
        items = [f"{inner}{json.dumps(k)}: {dump(v, depth + 1)}"
                 for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list) and any(isinstance(v, (list, dict))
                                       for v in value):
        items = [inner + dump(v, depth + 1) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(value)


def harmonics(y, f0, rate):
    """Levels of the first five harmonics in dB relative to the first."""
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    bins = [int(round(k * f0 * len(y) / rate)) for k in range(1, 6)]
    levels = [spectrum[b - 2:b + 3].max() for b in bins]
    return [20 * math.log10(level / levels[0] + 1e-12) for level in levels]


def report(arrays):
    """Prints what the model does, from the simulation."""
    n = SAMPLE_RATE // 10
    silence = simulate(arrays, np.zeros(256), KNOB["max"])
    print(f"silence in, knob at max: peak out {abs(silence).max():.2e}")
    for knob in (KNOB["min"], KNOB["max"]):
        print(f"asymmetry {knob}:")
        for level in (0.01, 0.1, 0.3, 0.7, 1.0):
            y = simulate(arrays, np.full(n // 4, level), knob)
            z = simulate(arrays, np.full(n // 4, -level), knob)
            print(f"  static {level:4}: +{y[-1]:.3f} {z[-1]:.3f}")
        tone = 0.5 * np.sin(2 * math.pi * 250.0 * np.arange(n) / SAMPLE_RATE)
        y = simulate(arrays, tone, knob)[n // 2:]
        levels = ", ".join(f"{v:.0f}" for v in harmonics(y, 250.0,
                                                            SAMPLE_RATE))
        print(f"  250 Hz at -6 dBFS: peak {abs(y).max():.3f}, "
              f"harmonics 1-5 (dB) {levels}")


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(root, "presets", "demo", "soft-clip.json")
    arrays = design()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as out:
        out.write(dump(to_json(arrays)) + "\n")
    print(f"wrote {os.path.relpath(path, root)}")
    if "--quiet" not in sys.argv:
        report(rounded(arrays))


if __name__ == "__main__":
    main()
