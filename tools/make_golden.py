#!/usr/bin/python3
"""Writes the golden test cases in tests/data/golden from PyTorch.

Each case is a random network built in PyTorch with a fixed seed (torch's
default initialisation, so the weights have realistic magnitudes), written
in one of the formats of ../shared/FORMATS.md and run by torch in float32 on
a seeded stimulus:

    CASES          RTNeural/AIDA-X Keras JSON (section 1), NAME.json
    PYTORCH_CASES  GuitarML/Automated-GuitarAmpModelling JSON (section 2),
                   pytorch_*.json, run from zero state
    NAM_CASES      Neural Amp Modeler LSTM (section 3), nam_*.nam, run from
                   the initial state stored in the file

NAME.io.json holds what tests/test_golden.c needs to check Carry against
torch:

    {"model": "NAME.json", "knobs": [...], "input": [...], "output": [...],
     "knobs_from_defaults": bool, "expect": {...}}

"output" is torch's final output: (net(x * g_in) [+ x * g_in]) * g_out.
With "knobs_from_defaults" the test passes NULL for the knobs, so that Carry
must take the values from the knob defaults in the model file (otherwise
they are passed by position).  "expect" holds metadata the loader must find
(format, sample rate, knob names, loudness, name); the Keras cases predate
"format", and the test takes its absence to mean Keras.

Re-run (Debian's python3-torch and python3-numpy live in /usr/bin/python3):

    /usr/bin/python3 tools/make_golden.py

The output is the same on every run on a given machine: every random draw
comes from a generator seeded by the case name, and torch runs on one
thread.  (Another CPU may change the last bit of torch's float32 sums; the
files are committed, so CI never re-runs this script.)

Tolerance.  The C test requires max |Carry - torch| <= 1e-5 for every
sample.  Both sides compute in float32 with different summation orders and
activation approximations, so neither is exact; to see how much of the
budget torch's own rounding uses, this script re-reads every file it wrote
with an independent float64 implementation of the Keras equations (which
also proves that the file layout, gate order and bias split match torch;
the new formats have readers of their own, taking the file as FORMATS.md
describes it)
and prints max |torch - float64| per case.  A case whose torch output is
not within TOLERANCE / 4 of float64 is refused: the network would be too
sensitive for a 1e-5 comparison to mean anything.

Numbers are written in the shortest decimal form that reads back (through
a double, as jansson's strtod does, then rounded to float) to exactly the
float32 value torch used; every written number is checked for that.
"""

import json
import math
import pathlib
import zlib

import numpy as np
import torch

ROOT = pathlib.Path(__file__).resolve().parent.parent
GOLDEN_DIR = ROOT / "tests" / "data" / "golden"
SAMPLE_RATE = 48000
TOLERANCE = 1e-5
SELF_CHECK_LIMIT = TOLERANCE / 4


# ---------------------------------------------------------------------------
# The cases

def lstm(units):
    return {"kind": "lstm", "units": units}


def gru(units):
    return {"kind": "gru", "units": units}


def dense(units, activation="", bias=True, time_distributed=False):
    return {"kind": "dense", "units": units, "activation": activation,
            "bias": bias, "time_distributed": time_distributed}


def activation(name):
    return {"kind": "activation", "activation": name}


HEAD = dense(1)


def case(name, layers, **options):
    """A case: its layers and the options that differ from the defaults."""
    defaults = {
        "skip": False,
        "knobs": [],                 # knob values fed to the model
        "knob_specs": None,          # "carry": {"knobs": [...]} entries
        "knobs_from_defaults": False,
        "in_gain": 0.0,              # dB
        "out_gain": 0.0,             # dB
        "sample_rate": None,         # None, "string" (top level), "number"
        "initial_state": False,
        "weight_scale": 1.0,
        "n_samples": 4096,
    }
    unknown = set(options) - set(defaults)
    assert not unknown, f"{name}: unknown options {unknown}"
    return {"name": name, "layers": layers, **defaults, **options}


DRIVE = {"name": "drive", "min": 0.0, "max": 1.0, "default": 0.65}

CASES = [
    # One LSTM layer at every width; odd widths leave padding lanes.
    case("lstm1", [lstm(1), HEAD]),
    case("lstm2_skip", [lstm(2), HEAD], skip=True),
    case("lstm3", [lstm(3), HEAD]),
    case("lstm5_skip", [lstm(5), HEAD], skip=True),
    case("lstm8_dense8_tanh", [lstm(8), dense(8, "tanh"), HEAD]),
    case("lstm12_cond2_drive_default", [lstm(12), HEAD], knobs=[0.65],
         knob_specs=[DRIVE], knobs_from_defaults=True),
    case("lstm16_skip", [lstm(16), HEAD], skip=True, n_samples=16384),
    case("lstm20_rate_string", [lstm(20), HEAD], sample_rate="string"),
    case("lstm32_gain_skip", [lstm(32), HEAD], skip=True, in_gain=-6.0,
         out_gain=3.5),
    case("lstm40_rate_number", [lstm(40), HEAD], sample_rate="number"),
    case("lstm64_skip", [lstm(64), HEAD], skip=True),
    # Stacks, heads and the other layer types.
    case("lstm2x12_skip", [lstm(12), lstm(12), HEAD], skip=True),
    case("lstm3x8", [lstm(8), lstm(8), lstm(8), HEAD], n_samples=16384),
    case("lstm2x8_state", [lstm(8), lstm(8), HEAD], initial_state=True),
    # Weights x3 and the input driven 24 dB hotter: many gates pinned at 0
    # or 1 and tanh at +/-1, where activation approximations differ most.
    case("lstm16_hot_x3", [lstm(16), HEAD], weight_scale=3.0, in_gain=24.0),
    case("lstm16_nobias_head", [lstm(16), dense(1, bias=False)]),
    case("lstm12_sigmoid_head", [lstm(12), dense(6, "sigmoid"), HEAD]),
    case("lstm8_softmax_head", [lstm(8), dense(4, "softmax"), HEAD]),
    case("tddense8_tanh_lstm8",
         [dense(8, "tanh", time_distributed=True), lstm(8), HEAD]),
    # One GRU layer at every width.
    case("gru1_skip", [gru(1), HEAD], skip=True),
    case("gru2", [gru(2), HEAD]),
    case("gru3_skip", [gru(3), HEAD], skip=True),
    case("gru5", [gru(5), HEAD]),
    case("gru8_cond3", [gru(8), HEAD], knobs=[0.7, 0.2]),
    case("gru12_relu_head", [gru(12), dense(8, "relu"), HEAD]),
    case("gru16_skip", [gru(16), HEAD], skip=True, n_samples=16384),
    case("gru20_elu_head", [gru(20), dense(8, "elu"), HEAD]),
    case("gru32", [gru(32), HEAD]),
    case("gru40_skip", [gru(40), HEAD], skip=True),
    case("gru64", [gru(64), HEAD]),
    # GRU stacks and the rest.
    case("gru2x16_skip", [gru(16), gru(16), HEAD], skip=True),
    case("gru3x5", [gru(5), gru(5), gru(5), HEAD]),
    case("gru12_state", [gru(12), HEAD], initial_state=True),
    case("gru16_hot_x3", [gru(16), HEAD], weight_scale=3.0, in_gain=24.0),
    case("gru8_dense4_activation_tanh",
         [gru(8), dense(4), activation("tanh"), HEAD]),
]


# ---------------------------------------------------------------------------
# The stimulus

def stimulus(n, rng):
    """A seeded test signal of n samples, float32, in stretches:
    decaying tones with noise bursts, an exponential chirp, exact silence,
    a loud stretch peaking at 1.5, and a quiet decaying tail."""
    t = np.arange(n) / SAMPLE_RATE
    duration = n / SAMPLE_RATE
    x = np.zeros(n)
    for note in range(6):  # plucked notes, the first at once, then anywhere
        onset = rng.randint(0, n * 3 // 4) if note else 0
        tau = np.clip(t - t[onset], 0.0, None)
        decay = rng.uniform(2.0, 10.0) / duration
        tone = np.sin(2 * np.pi * rng.uniform(70, 1200) * tau
                      + rng.uniform(0, 2 * np.pi))
        envelope = (t >= t[onset]) * np.exp(-decay * tau)
        x += rng.uniform(0.1, 0.4) * envelope * tone
    chirp = slice(int(0.35 * n), int(0.55 * n))
    tc = t[chirp] - t[chirp.start]
    span = tc[-1] + 1 / SAMPLE_RATE
    f0, f1 = 40.0, 8000.0  # exponential sweep: phase of f0 (f1/f0)^(t/span)
    k = math.log(f1 / f0)
    phase = 2 * np.pi * f0 * span / k * (np.exp(k * tc / span) - 1)
    x[chirp] += 0.5 * np.sin(phase)
    for _ in range(4):  # noise bursts
        start = rng.randint(0, n - n // 16)
        length = rng.randint(n // 64, n // 16)
        x[start:start + length] += rng.uniform(-0.3, 0.3, length)
    x /= max(1.0, np.max(np.abs(x)))
    x[int(0.55 * n):int(0.65 * n)] = 0.0
    loud = slice(int(0.65 * n), int(0.85 * n))
    tl = t[loud]
    burst = (np.sin(2 * np.pi * 150 * tl) + 0.5 * np.sin(2 * np.pi * 457 * tl)
             + rng.uniform(-0.2, 0.2, tl.size))
    x[loud] = 1.5 * burst / np.max(np.abs(burst))
    return x.astype(np.float32)


# ---------------------------------------------------------------------------
# Building and running the network in torch

ACTIVATIONS = {
    "": lambda y: y,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "elu": torch.nn.functional.elu,
    "softmax": lambda y: torch.softmax(y, dim=-1),
}


def build_layers(spec, n_inputs):
    """Torch modules for the case's layers, with torch's default init.
    The LSTM's two biases are folded into bias_ih (the file holds one
    summed bias), so that the file describes torch's network exactly."""
    modules, width = [], n_inputs
    for layer in spec["layers"]:
        kind = layer["kind"]
        if kind == "lstm":
            module = torch.nn.LSTM(width, layer["units"])
            module.bias_ih_l0 += module.bias_hh_l0
            module.bias_hh_l0.zero_()
        elif kind == "gru":
            module = torch.nn.GRU(width, layer["units"])
        elif kind == "dense":
            module = torch.nn.Linear(width, layer["units"], bias=layer["bias"])
        else:
            module = None
        if module is not None:
            for parameter in module.parameters():
                parameter *= spec["weight_scale"]
            width = layer["units"]
        modules.append(module)
    return modules


def initial_states(spec, rng):
    """A non-zero (h0, c0) per recurrent layer when the case asks for one;
    GRU states stay within (-1, 1), where a running GRU's state lives."""
    states = []
    for layer in spec["layers"]:
        if layer["kind"] not in ("lstm", "gru"):
            continue
        H = layer["units"]
        if not spec["initial_state"]:
            states.append(None)
        elif layer["kind"] == "lstm":
            states.append((np.float32(rng.uniform(-0.5, 0.5, H)),
                           np.float32(rng.uniform(-1.5, 1.5, H))))
        else:
            states.append((np.float32(rng.uniform(-0.8, 0.8, H)), None))
    return states


def db_to_gain(db):
    return np.float32(10.0 ** (db / 20.0))


def run_torch(spec, modules, states, x, knobs):
    """torch's float32 output for the audio x (T) and constant knobs."""
    xg = torch.from_numpy(x) * torch.tensor(db_to_gain(spec["in_gain"]))
    columns = [xg] + [torch.full_like(xg, float(k)) for k in np.float32(knobs)]
    y = torch.stack(columns, dim=1).unsqueeze(1)  # (T, batch 1, N)
    recurrent = iter(states)
    for layer, module in zip(spec["layers"], modules):
        kind = layer["kind"]
        if kind in ("lstm", "gru"):
            state = next(recurrent)
            H = layer["units"]
            h0 = torch.zeros(1, 1, H) if state is None else \
                torch.from_numpy(state[0]).view(1, 1, H)
            if kind == "lstm":
                c0 = torch.zeros(1, 1, H) if state is None else \
                    torch.from_numpy(state[1]).view(1, 1, H)
                y, _ = module(y, (h0, c0))
            else:
                y, _ = module(y, h0)
        elif kind == "dense":
            y = ACTIVATIONS[layer["activation"]](module(y))
        else:
            y = ACTIVATIONS[layer["activation"]](y)
    net = y[:, 0, 0]
    if spec["skip"]:
        net = net + xg
    return (net * torch.tensor(db_to_gain(spec["out_gain"]))).numpy()


# ---------------------------------------------------------------------------
# Writing the Keras JSON layout

def f32(tensor):
    return np.asarray(tensor.detach().numpy() if torch.is_tensor(tensor)
                      else tensor, dtype=np.float32)


def gru_blocks(matrix):
    """Torch's GRU blocks r, z, n (rows) in Keras order z, r, h."""
    r, z, n = np.split(f32(matrix), 3, axis=0)
    return np.concatenate([z, r, n], axis=0)


def layer_json(layer, module, width):
    kind, H = layer["kind"], layer.get("units", width)
    shape = [None, None, H]
    if kind == "lstm":
        weights = [f32(module.weight_ih_l0).T, f32(module.weight_hh_l0).T,
                   f32(module.bias_ih_l0)]  # bias_hh_l0 is zero, folded in
        return {"type": "lstm", "activation": "", "shape": shape,
                "weights": weights}
    if kind == "gru":
        weights = [gru_blocks(module.weight_ih_l0).T,
                   gru_blocks(module.weight_hh_l0).T,
                   np.stack([gru_blocks(module.bias_ih_l0),
                             gru_blocks(module.bias_hh_l0)])]
        return {"type": "gru", "activation": "tanh", "shape": shape,
                "weights": weights}
    if kind == "dense":
        weights = [f32(module.weight).T]
        if layer["bias"]:
            weights.append(f32(module.bias))
        kind_name = "time-distributed-dense" if layer["time_distributed"] \
            else "dense"
        return {"type": kind_name, "activation": layer["activation"],
                "shape": shape, "weights": weights}
    # RTNeural's minimal form of an activation layer: no shape, no weights.
    return {"type": "activation", "activation": layer["activation"]}


def model_json(spec, modules, states, n_inputs):
    layers, width = [], n_inputs
    for layer, module in zip(spec["layers"], modules):
        layers.append(layer_json(layer, module, width))
        width = layer.get("units", width)
    model = {"in_shape": [None, None, n_inputs]}
    if spec["skip"]:
        model["in_skip"] = 1
    if spec["in_gain"] or spec["out_gain"]:
        model["in_gain"] = spec["in_gain"]
        model["out_gain"] = spec["out_gain"]
    model["layers"] = layers
    metadata = {"name": spec["name"], "author": "tools/make_golden.py"}
    if spec["sample_rate"] == "number":
        metadata["samplerate"] = 44100
    model["metadata"] = metadata
    if spec["sample_rate"] == "string":
        model["samplerate"] = str(SAMPLE_RATE)  # older exports: top level
    carry = {}
    if spec["knob_specs"]:
        carry["knobs"] = spec["knob_specs"]
    if spec["initial_state"]:
        carry["initial_state"] = [
            {"h": s[0]} if s[1] is None else {"h": s[0], "c": s[1]}
            for s in states]
    if carry:
        model["carry"] = {"version": 1, **carry}
    return model


def expected_metadata(spec):
    expect = {}
    if spec["sample_rate"] == "string":
        expect["sample_rate"] = SAMPLE_RATE
    elif spec["sample_rate"] == "number":
        expect["sample_rate"] = 44100
    if spec["knob_specs"]:
        expect["knob_names"] = [k["name"] for k in spec["knob_specs"]]
    return expect


# ---------------------------------------------------------------------------
# A JSON writer with exact float32 numbers

def float_text(value):
    """The shortest text that reads back, via a double, to this float32."""
    value = np.float32(value)
    assert np.isfinite(value)
    text = min(np.format_float_positional(value, unique=True, trim="0"),
               np.format_float_scientific(value, unique=True, trim="0"),
               key=len)  # "1.0", never "1": jansson would read an integer
    assert np.float32(float(text)) == value, text
    return text


def is_scalar(obj):
    return not isinstance(obj, (list, dict, np.ndarray))


def to_text(obj, indent=0):
    """JSON text: numeric rows on one line, everything else indented."""
    pad, inner = " " * indent, " " * (indent + 2)
    if isinstance(obj, np.ndarray):
        obj = obj.tolist() if obj.dtype != np.float32 else list(obj)
    if obj is None:
        return "null"
    if isinstance(obj, bool):
        return "true" if obj else "false"
    if isinstance(obj, (np.floating, float)):
        return float_text(obj)
    if isinstance(obj, int):
        return str(obj)
    if isinstance(obj, str):
        return '"' + obj + '"'
    if isinstance(obj, list):
        if all(map(is_scalar, obj)):
            return "[" + ", ".join(to_text(v) for v in obj) + "]"
        items = [inner + to_text(v, indent + 2) for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    if isinstance(obj, dict):
        if all(is_scalar(v) or (isinstance(v, list) and len(v) <= 3 and
                                all(map(is_scalar, v)))
               for v in obj.values()):
            return "{" + ", ".join(f'"{k}": {to_text(v)}'
                                   for k, v in obj.items()) + "}"
        items = [f'{inner}"{k}": {to_text(v, indent + 2)}'
                 for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    raise TypeError(f"cannot write {type(obj)}")


def write(path, obj):
    path.write_text(to_text(obj) + "\n")
    return path.stat().st_size


# ---------------------------------------------------------------------------
# The independent float64 reader (the self-check)

def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


NUMPY_ACTIVATIONS = {
    "": lambda v: v,
    "tanh": np.tanh,
    "relu": lambda v: np.maximum(v, 0.0),
    "sigmoid": sigmoid,
    "elu": lambda v: np.where(v > 0, v, np.expm1(np.minimum(v, 0.0))),
    "softmax": lambda v: np.exp(v - v.max(axis=-1, keepdims=True)) /
    np.exp(v - v.max(axis=-1, keepdims=True)).sum(axis=-1, keepdims=True),
}


def keras_lstm(x, weights, state):
    """The FORMATS.md LSTM over x (T, I) in float64; gates i, f, g, o."""
    kernel, recurrent, bias = (np.array(w, dtype=np.float64) for w in weights)
    H = recurrent.shape[0]
    h = np.array(state["h"], np.float64) if state else np.zeros(H)
    c = np.array(state["c"], np.float64) if state else np.zeros(H)
    pre = x @ kernel + bias
    y = np.empty((len(x), H))
    for t in range(len(x)):
        z = pre[t] + h @ recurrent
        i, f = sigmoid(z[:H]), sigmoid(z[H:2 * H])
        g, o = np.tanh(z[2 * H:3 * H]), sigmoid(z[3 * H:])
        c = f * c + i * g
        h = y[t] = o * np.tanh(c)
    return y


def keras_gru(x, weights, state):
    """The FORMATS.md GRU (reset_after) over x (T, I) in float64."""
    kernel, recurrent, bias = (np.array(w, dtype=np.float64) for w in weights)
    H = recurrent.shape[0]
    h = np.array(state["h"], np.float64) if state else np.zeros(H)
    pre = x @ kernel + bias[0]
    y = np.empty((len(x), H))
    for t in range(len(x)):
        rec = h @ recurrent + bias[1]
        z = sigmoid(pre[t, :H] + rec[:H])
        r = sigmoid(pre[t, H:2 * H] + rec[H:2 * H])
        n = np.tanh(pre[t, 2 * H:] + r * rec[2 * H:])
        h = y[t] = (1.0 - z) * n + z * h
    return y


def keras_forward(model, io):
    """Reads a written case back and runs it in float64."""
    audio = np.array(io["input"], np.float64)
    xg = audio * 10.0 ** (model.get("in_gain", 0.0) / 20.0)
    x = np.column_stack([xg] + [np.full_like(xg, k) for k in io["knobs"]])
    states = iter(model.get("carry", {}).get("initial_state", []))
    for layer in model["layers"]:
        kind, weights = layer["type"], layer.get("weights")
        if kind == "lstm":
            x = keras_lstm(x, weights, next(states, None))
        elif kind == "gru":
            x = keras_gru(x, weights, next(states, None))
        elif kind in ("dense", "time-distributed-dense"):
            x = x @ np.array(weights[0], np.float64)
            if len(weights) > 1:
                x = x + np.array(weights[1], np.float64)
            x = NUMPY_ACTIVATIONS[layer["activation"]](x)
        else:
            x = NUMPY_ACTIVATIONS[layer["activation"]](x)
    net = x[:, 0] + (xg if model.get("in_skip", 0) else 0.0)
    return net * 10.0 ** (model.get("out_gain", 0.0) / 20.0)


def self_check(model_path, io_path):
    model = json.loads(model_path.read_text())
    io = json.loads(io_path.read_text())
    exact = keras_forward(model, io)
    return float(np.max(np.abs(exact - np.array(io["output"], np.float64))))


# ---------------------------------------------------------------------------

def make_case(spec):
    seed = zlib.crc32(spec["name"].encode())
    torch.manual_seed(seed)
    rng = np.random.RandomState(seed)
    n_inputs = 1 + len(spec["knobs"])
    with torch.no_grad():
        modules = build_layers(spec, n_inputs)
        states = initial_states(spec, rng)
        x = stimulus(spec["n_samples"], rng)
        y = run_torch(spec, modules, states, x, spec["knobs"])
    model = model_json(spec, modules, states, n_inputs)
    io = {"model": spec["name"] + ".json",
          "knobs": list(np.float32(spec["knobs"])),
          "knobs_from_defaults": spec["knobs_from_defaults"],
          "expect": expected_metadata(spec),
          "input": x, "output": y}
    model_path = GOLDEN_DIR / (spec["name"] + ".json")
    io_path = GOLDEN_DIR / (spec["name"] + ".io.json")
    size = write(model_path, model) + write(io_path, io)
    deviation = self_check(model_path, io_path)
    n_weights = sum(np.size(w) for layer in model["layers"]
                    for w in layer.get("weights", []))
    print(f"wrote {model_path.relative_to(ROOT)} and {io_path.name}: "
          f"{n_weights} weights, {len(x)} samples, {size / 1024:.0f} KiB, "
          f"peak out {np.max(np.abs(y)):.3f}, "
          f"|torch - float64| {deviation:.2e}")
    assert np.all(np.isfinite(y))
    assert deviation <= SELF_CHECK_LIMIT, \
        f"{spec['name']}: torch float32 is {deviation:.2e} from float64"
    return size


# ---------------------------------------------------------------------------
# GuitarML / Automated-GuitarAmpModelling PyTorch JSON (FORMATS.md section 2)
#
# The network is that project's SimpleRNN: one torch LSTM or GRU module of
# num_layers stacked layers, then Linear(H, 1), and y = lin(rec(x)) + x[0]
# with skip.  The file holds torch's own tensors (both biases apart, GRU
# rows r, z, n), so torch runs exactly the file; it starts from zero state,
# as the format stores none.  The knobs have no names: they are passed by
# position.

PYTORCH_RATE = 44100  # the format holds no rate: these models are 44.1 kHz


def pytorch_case(name, unit, hidden, n_layers=1, **options):
    defaults = {
        "skip": False,
        "knobs": [],         # constant conditioning inputs after the audio
        "bias_fl": True,     # whether lin has a bias
        "sample_rate": None, # an explicit "samplerate" override
        "n_samples": 4096,
    }
    unknown = set(options) - set(defaults)
    assert not unknown, f"{name}: unknown options {unknown}"
    return {"name": name, "unit": unit, "hidden": hidden,
            "n_layers": n_layers, **defaults, **options}


PYTORCH_CASES = [
    # The usual shapes: GuitarML LSTM 20 with skip, Proteus (LSTM 40 and a
    # gain knob), NeuralPi (LSTM 20, gain and master).
    pytorch_case("pytorch_lstm20_skip", "LSTM", 20, skip=True,
                 n_samples=16384),
    pytorch_case("pytorch_lstm40_cond2_skip", "LSTM", 40, skip=True,
                 knobs=[0.35]),
    pytorch_case("pytorch_lstm20_cond3_skip", "LSTM", 20, skip=True,
                 knobs=[0.6, 0.25]),
    pytorch_case("pytorch_lstm3", "LSTM", 3),
    pytorch_case("pytorch_lstm8_nobias", "LSTM", 8, bias_fl=False),
    pytorch_case("pytorch_lstm16_rate48000_skip", "LSTM", 16, skip=True,
                 sample_rate=48000),
    pytorch_case("pytorch_lstm2x16_skip", "LSTM", 16, 2, skip=True),
    pytorch_case("pytorch_lstm3x8_cond2", "LSTM", 8, 3, knobs=[0.8]),
    pytorch_case("pytorch_lstm2x3_cond3", "LSTM", 3, 2, knobs=[0.1, 0.9]),
    pytorch_case("pytorch_gru8", "GRU", 8),
    pytorch_case("pytorch_gru20_skip", "GRU", 20, skip=True),
    pytorch_case("pytorch_gru40_cond2_skip", "GRU", 40, skip=True,
                 knobs=[0.45]),
    pytorch_case("pytorch_gru16_cond3", "GRU", 16, knobs=[0.3, 0.75]),
    pytorch_case("pytorch_gru3_nobias_skip", "GRU", 3, skip=True,
                 bias_fl=False),
    pytorch_case("pytorch_gru2x20_skip", "GRU", 20, 2, skip=True),
    pytorch_case("pytorch_gru3x3_skip", "GRU", 3, 3, skip=True),
    pytorch_case("pytorch_gru3x16_cond2", "GRU", 16, 3, knobs=[0.55]),
]


def build_pytorch(spec, n_inputs):
    """SimpleRNN's modules with torch's default initialisation."""
    recurrent = getattr(torch.nn, spec["unit"])(
        n_inputs, spec["hidden"], spec["n_layers"])
    head = torch.nn.Linear(spec["hidden"], 1, bias=spec["bias_fl"])
    return recurrent, head


def run_pytorch(spec, recurrent, head, x, knobs):
    """torch's float32 output from zero state: lin(rec(x)) [+ x]."""
    audio = torch.from_numpy(x)
    columns = [audio] + [torch.full_like(audio, float(k))
                         for k in np.float32(knobs)]
    inputs = torch.stack(columns, dim=1).unsqueeze(1)  # (T, batch 1, N)
    y = head(recurrent(inputs)[0])[:, 0, 0]
    if spec["skip"]:
        y = y + audio
    return y.numpy()


def pytorch_json(spec, recurrent, head, n_inputs):
    model_data = {"model": "SimpleRNN", "input_size": n_inputs,
                  "skip": int(spec["skip"]), "output_size": 1,
                  "unit_type": spec["unit"], "num_layers": spec["n_layers"],
                  "hidden_size": spec["hidden"], "bias_fl": spec["bias_fl"]}
    state_dict = {}
    for layer in range(spec["n_layers"]):
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            key = f"{name}_l{layer}"
            state_dict["rec." + key] = f32(getattr(recurrent, key))
    state_dict["lin.weight"] = f32(head.weight)
    if spec["bias_fl"]:
        state_dict["lin.bias"] = f32(head.bias)
    model = {"model_data": model_data, "state_dict": state_dict}
    if spec["sample_rate"] is not None:
        model["samplerate"] = spec["sample_rate"]
    return model


def make_pytorch_case(spec):
    seed = zlib.crc32(spec["name"].encode())
    torch.manual_seed(seed)
    rng = np.random.RandomState(seed)
    n_inputs = 1 + len(spec["knobs"])
    with torch.no_grad():
        recurrent, head = build_pytorch(spec, n_inputs)
        x = stimulus(spec["n_samples"], rng)
        y = run_pytorch(spec, recurrent, head, x, spec["knobs"])
    expect = {"format": "pytorch",
              "sample_rate": spec["sample_rate"] or PYTORCH_RATE}
    return write_case(spec["name"] + ".json",
                      pytorch_json(spec, recurrent, head, n_inputs),
                      spec["knobs"], expect, x, y, pytorch_forward)


# ---------------------------------------------------------------------------
# Neural Amp Modeler .nam, architecture LSTM (FORMATS.md section 3)
#
# NAM's LSTM: torch LSTM(1, H, L) then Linear(H, 1), no skip, started from
# the stored initial state h0, c0 of every layer.  The file stores one
# summed bias, so torch runs with bias_ih = that sum and bias_hh = 0: it
# runs exactly the stored numbers.
#
# Real captures store the state their LSTM settles to, where some cells
# hold large values (a 1x16 capture has c0 = 121) behind a forget gate
# near 1.  So each layer has a few cells with |c0| between 8 and 30 whose
# forget bias is raised by 5: they decay over some 150 samples, through
# the range where tanh(c) is not yet flat, starting at sample 0.

NAM_DEFAULT_RATE = 48000  # files up to 0.5.2 have no sample_rate


def nam_case(name, hidden, n_layers=1, **options):
    defaults = {
        "version": "0.5.4",
        "sample_rate": 48000,   # None: no "sample_rate" key
        "metadata": None,       # None: no "metadata" key
        "n_samples": 4096,
    }
    unknown = set(options) - set(defaults)
    assert not unknown, f"{name}: unknown options {unknown}"
    return {"name": name, "hidden": hidden, "n_layers": n_layers,
            **defaults, **options}


# What NAM's trainer writes: the date, the user's fields (null when not
# given) and the measured loudness.
TRAINER_METADATA = {
    "date": {"year": 2024, "month": 3, "day": 9, "hour": 21, "minute": 4,
             "second": 41},
    "loudness": -20.75, "gain": 0.4461, "name": None, "modeled_by": None,
    "gear_type": None, "gear_make": None, "gear_model": None,
    "tone_type": None, "input_level_dbu": None, "output_level_dbu": None,
    "training": {"settings": {"ignore_checks": False},
                 "data": {"latency": {"manual": None, "calibration": {
                     "algorithm_version": 1, "delays": [-17],
                     "safety_factor": 1, "recommended": -18,
                     "warnings": {"matches_lookahead": False,
                                  "disagreement_too_high": False}}},
                     "checks": {"version": 3, "passed": True}},
                 "validation_esr": 0.00713}}

NAM_CASES = [
    nam_case("nam_lstm1x3_v052", 3, version="0.5.2", sample_rate=None),
    nam_case("nam_lstm1x16_loudness", 16, n_samples=16384, metadata={
        "name": "Golden 1x16", "modeled_by": "tools/make_golden.py",
        "gear_type": "amp", "gear_make": "Carry", "gear_model": "Golden",
        "tone_type": "crunch", "loudness": -12.5, "gain": 0.62,
        "input_level_dbu": 12.2, "output_level_dbu": 6.0}),
    nam_case("nam_lstm2x8_rate44100", 8, 2, sample_rate=44100,
             metadata={"name": "Golden 2x8", "loudness": -16.0}),
    nam_case("nam_lstm3x12_trainer", 12, 3, version="0.7.0",
             sample_rate=48000.0, metadata=TRAINER_METADATA),
    nam_case("nam_lstm1x40", 40, metadata={"name": "Golden 1x40"}),
]


def build_nam(spec, rng):
    """The core LSTM with folded biases, the head and the initial state
    (L, 1, H) each, with a few large, slowly decaying cells per layer."""
    H, L = spec["hidden"], spec["n_layers"]
    core, head = torch.nn.LSTM(1, H, L), torch.nn.Linear(H, 1)
    h0 = np.float32(rng.uniform(-0.9, 0.9, (L, 1, H)))
    c0 = np.float32(rng.uniform(-2.0, 2.0, (L, 1, H)))
    for layer in range(L):
        bias_ih = getattr(core, f"bias_ih_l{layer}")
        bias_ih += getattr(core, f"bias_hh_l{layer}")
        getattr(core, f"bias_hh_l{layer}").zero_()
        large = rng.choice(H, max(1, H // 4), replace=False)
        c0[layer, 0, large] = np.float32(
            rng.choice([-1.0, 1.0], large.size) *
            rng.uniform(8.0, 30.0, large.size))
        bias_ih[H + torch.from_numpy(large)] += 5.0  # forget gate rows
    return core, head, h0, c0


def run_nam(core, head, h0, c0, x):
    inputs = torch.from_numpy(x).view(-1, 1, 1)  # (T, batch 1, 1)
    state = (torch.from_numpy(h0), torch.from_numpy(c0))
    return head(core(inputs, state)[0])[:, 0, 0].numpy()


def nam_weights(spec, core, head, h0, c0):
    """The flat array in NAM's order: per layer W = [W_ih | W_hh] row by
    row, the summed bias, h0, c0; then the head's W and b."""
    flat = []
    for layer in range(spec["n_layers"]):
        w_ih = f32(getattr(core, f"weight_ih_l{layer}"))
        w_hh = f32(getattr(core, f"weight_hh_l{layer}"))
        flat += [np.concatenate([w_ih, w_hh], axis=1).ravel(),
                 f32(getattr(core, f"bias_ih_l{layer}")),  # bias_hh is 0
                 h0[layer, 0], c0[layer, 0]]
    flat += [f32(head.weight).ravel(), f32(head.bias)]
    return np.concatenate(flat)


def nam_count(H, L):
    """FORMATS.md's weight count for input and output size 1."""
    return sum(4 * H * ((1 if layer == 0 else H) + H) + 6 * H
               for layer in range(L)) + H + 1


def nam_file(spec, core, head, h0, c0):
    model = {"version": spec["version"]}
    if spec["metadata"] is not None:
        model["metadata"] = spec["metadata"]
    model["architecture"] = "LSTM"
    model["config"] = {"input_size": 1, "hidden_size": spec["hidden"],
                       "num_layers": spec["n_layers"]}
    model["weights"] = nam_weights(spec, core, head, h0, c0)
    assert model["weights"].size == nam_count(spec["hidden"],
                                              spec["n_layers"])
    if spec["sample_rate"] is not None:
        model["sample_rate"] = spec["sample_rate"]
    return model


def nam_expect(spec):
    expect = {"format": "nam",
              "sample_rate": int(spec["sample_rate"] or NAM_DEFAULT_RATE)}
    loudness = (spec["metadata"] or {}).get("loudness")
    if loudness is not None:
        expect["loudness"] = loudness
    name = (spec["metadata"] or {}).get("name")
    if name is not None:
        expect["name"] = name
    return expect


def make_nam_case(spec):
    seed = zlib.crc32(spec["name"].encode())
    torch.manual_seed(seed)
    rng = np.random.RandomState(seed)
    with torch.no_grad():
        core, head, h0, c0 = build_nam(spec, rng)
        x = stimulus(spec["n_samples"], rng)
        y = run_nam(core, head, h0, c0, x)
    return write_case(spec["name"] + ".nam",
                      nam_file(spec, core, head, h0, c0), [],
                      nam_expect(spec), x, y, nam_forward)


# ---------------------------------------------------------------------------
# Independent float64 readers of the new formats (the self-check)

def torch_gru(x, w_ih, w_hh, b_ih, b_hh):
    """torch's GRU over x (T, I) in float64: rows r, z, n, and the
    recurrent bias of n inside r * (...)."""
    H = w_hh.shape[1]
    h = np.zeros(H)
    pre = x @ w_ih.T + b_ih
    y = np.empty((len(x), H))
    for t in range(len(x)):
        rec = w_hh @ h + b_hh
        r = sigmoid(pre[t, :H] + rec[:H])
        z = sigmoid(pre[t, H:2 * H] + rec[H:2 * H])
        n = np.tanh(pre[t, 2 * H:] + r * rec[2 * H:])
        h = y[t] = (1.0 - z) * n + z * h
    return y


def pytorch_forward(model, io):
    """Reads a written PyTorch JSON case back and runs it in float64."""
    data, tensors = model["model_data"], model["state_dict"]

    def tensor(key):
        return np.array(tensors[key], np.float64)

    audio = np.array(io["input"], np.float64)
    x = np.column_stack([audio] + [np.full_like(audio, k)
                                   for k in io["knobs"]])
    assert x.shape[1] == data["input_size"]
    for layer in range(data["num_layers"]):
        w_ih, w_hh, b_ih, b_hh = (tensor(f"rec.{name}_l{layer}") for name in
                                  ("weight_ih", "weight_hh", "bias_ih",
                                   "bias_hh"))
        if data["unit_type"] == "LSTM":
            x = keras_lstm(x, [w_ih.T, w_hh.T, b_ih + b_hh], None)
        else:
            x = torch_gru(x, w_ih, w_hh, b_ih, b_hh)
    y = x @ tensor("lin.weight")[0]
    if data["bias_fl"]:
        y = y + tensor("lin.bias")[0]
    return y + audio if data["skip"] else y


def nam_forward(model, io):
    """Reads a written .nam case back and runs it in float64 from its
    stored state, taking the flat weights in FORMATS.md's order."""
    config = model["config"]
    H, I = config["hidden_size"], config["input_size"]
    weights = iter(np.array(model["weights"], np.float64))

    def take(*shape):
        n = int(np.prod(shape))
        return np.array([next(weights) for _ in range(n)]).reshape(shape)

    x = np.array(io["input"], np.float64)[:, None]
    for layer in range(config["num_layers"]):
        width = I if layer == 0 else H
        w = take(4 * H, width + H)
        bias, h0, c0 = take(4 * H), take(H), take(H)
        x = keras_lstm(x, [w[:, :width].T, w[:, width:].T, bias],
                       {"h": h0, "c": c0})
    w_head, b_head = take(1, H), take(1)
    assert next(weights, None) is None, "weights left over"
    return x @ w_head[0] + b_head[0]


def write_case(model_name, model, knobs, expect, x, y, forward):
    """Writes a case of a new format and checks it against float64."""
    name = model_name.rsplit(".", 1)[0]
    io = {"model": model_name, "knobs": list(np.float32(knobs)),
          "knobs_from_defaults": False, "expect": expect,
          "input": x, "output": y}
    model_path = GOLDEN_DIR / model_name
    io_path = GOLDEN_DIR / (name + ".io.json")
    size = write(model_path, model) + write(io_path, io)
    written = json.loads(model_path.read_text())
    exact = forward(written, json.loads(io_path.read_text()))
    deviation = float(np.max(np.abs(exact - np.array(y, np.float64))))
    print(f"wrote {model_path.relative_to(ROOT)} and {io_path.name}: "
          f"{len(x)} samples, {size / 1024:.0f} KiB, "
          f"peak out {np.max(np.abs(y)):.3f}, "
          f"|torch - float64| {deviation:.2e}")
    assert np.all(np.isfinite(y))
    assert deviation <= SELF_CHECK_LIMIT, \
        f"{name}: torch float32 is {deviation:.2e} from float64"
    return size


def main():
    torch.set_num_threads(1)
    GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
    for pattern in ("*.json", "*.nam"):
        for stale in sorted(GOLDEN_DIR.glob(pattern)):
            stale.unlink()  # so a renamed or dropped case leaves nothing
    all_cases = CASES + PYTORCH_CASES + NAM_CASES
    names = [spec["name"] for spec in all_cases]
    assert len(names) == len(set(names)), "case names must be unique"
    total = 0
    for cases, make in ((CASES, make_case), (PYTORCH_CASES, make_pytorch_case),
                        (NAM_CASES, make_nam_case)):
        size = sum(make(spec) for spec in cases)
        print(f"  {len(cases)} cases, {size / 1e6:.2f} MB")
        total += size
    print(f"{len(all_cases)} cases, {total / 1e6:.2f} MB in "
          f"{GOLDEN_DIR.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
