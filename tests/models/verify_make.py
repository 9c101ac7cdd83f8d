#!/usr/bin/python3
"""Writes the self-test files tests/models/verify_*.json from PyTorch.

A self-test, as AIDA-X exports write it, is a stimulus ("input_batch", N
numbers per time step for a model of N inputs) and the network's output
for it ("output_batch"): the network alone, from its initial state, without
the skip connection and without the input and output gains.  These files
give `carry model verify` (tests/test_model_cli.c) something to pass and
something to fail:

    verify_lstm_knob.json   LSTM(6) with a knob that steps mid-block, a
                            stored initial state, and a skip connection and
                            gains that the self-test must leave out; the
                            arrays nested [1][T][N] and [1][T][1]
    verify_gru_stack.json   GRU(4), GRU(3), dense(3, tanh), dense(1); flat
                            arrays
    verify_off.json         verify_gru_stack with output_batch[123] moved
                            by 0.01: the test must fail there

verify_dense_exact.json and verify_bad_*.json are small enough to be
written by hand.  The layout and the number format come from
tools/make_golden.py.  Re-run with Debian's python3-torch:

    /usr/bin/python3 tests/models/verify_make.py
"""

import pathlib
import sys
import zlib

import numpy as np
import torch

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "tools"))
import make_golden as golden  # noqa: E402  (the path is set just above)


def run_network(spec, modules, states, inputs):
    """torch's float32 output of the network alone for inputs (T, N)."""
    y = torch.from_numpy(inputs).unsqueeze(1)  # (T, batch 1, N)
    recurrent = iter(states)
    for layer, module in zip(spec["layers"], modules):
        kind = layer["kind"]
        if kind in ("lstm", "gru"):
            state, H = next(recurrent), layer["units"]
            h0 = torch.zeros(1, 1, H) if state is None else \
                torch.from_numpy(state[0]).view(1, 1, H)
            if kind == "lstm":
                c0 = torch.zeros(1, 1, H) if state is None else \
                    torch.from_numpy(state[1]).view(1, 1, H)
                y, _ = module(y, (h0, c0))
            else:
                y, _ = module(y, h0)
        elif kind == "dense":
            y = golden.ACTIVATIONS[layer["activation"]](module(y))
        else:
            y = golden.ACTIVATIONS[layer["activation"]](y)
    return y[:, 0, 0].detach().numpy().astype(np.float32)


def knob_steps(n, steps):
    """A knob that holds each (start, value) from its start on."""
    knob = np.zeros(n, dtype=np.float32)
    for start, value in steps:
        knob[start:] = value
    return knob


def make(spec, n_samples, knob=None, nested=False):
    """The model file of `spec` with its self-test, as a dict."""
    seed = zlib.crc32(spec["name"].encode())
    torch.manual_seed(seed)
    rng = np.random.RandomState(seed)
    n_inputs = 1 if knob is None else 2
    with torch.no_grad():
        modules = golden.build_layers(spec, n_inputs)
        states = golden.initial_states(spec, rng)
        audio = golden.stimulus(n_samples, rng)
        columns = [audio] if knob is None else [audio, knob]
        inputs = np.stack(columns, axis=1).astype(np.float32)  # (T, N)
        expected = run_network(spec, modules, states, inputs)
    model = golden.model_json(spec, modules, states, n_inputs)
    if nested:  # as [batch][time][features]
        model["input_batch"] = [inputs]
        model["output_batch"] = [expected.reshape(-1, 1)]
    else:
        model["input_batch"] = inputs.reshape(-1)
        model["output_batch"] = expected
    return model


def main():
    lstm_knob = golden.case(
        "Verify LSTM knob", [golden.lstm(6), golden.HEAD], skip=True,
        in_gain=6.0, out_gain=-3.0, initial_state=True,
        knob_specs=[{"name": "drive", "min": 0.0, "max": 1.0,
                     "default": 0.5}])
    knob = knob_steps(600, [(0, 0.2), (150, 0.7), (400, 0.45)])
    golden.write(HERE / "verify_lstm_knob.json",
                 make(lstm_knob, 600, knob, nested=True))

    gru_stack = golden.case(
        "Verify GRU stack", [golden.gru(4), golden.gru(3),
                             golden.dense(3, "tanh"), golden.HEAD])
    model = make(gru_stack, 300)
    golden.write(HERE / "verify_gru_stack.json", model)

    model["metadata"]["name"] = "Verify off"
    model["output_batch"] = model["output_batch"].copy()
    model["output_batch"][123] += np.float32(0.01)
    golden.write(HERE / "verify_off.json", model)


if __name__ == "__main__":
    main()
