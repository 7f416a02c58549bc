"""Fixed-point formats of the real-valued tensors, from calibration data or a JSON file.

``calibrate_ranges`` runs the float-stage graph (``bnn2fpga.floateval``) and takes each
tensor's largest |value|; ``choose_formats`` gives every real tensor ``fixed.format_for``
of that range with a margin and ``precision`` fraction bits; ``load_formats_file`` reads
per-tensor overrides.  Formats are kept by the float-stage node's name in
``graph.meta["formats"]`` ({name: [bits, frac]}); the lowering passes read them there.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bnn2fpga import fixed
from bnn2fpga.floateval import evaluate_float
from bnn2fpga.ir import (
    Add,
    AvgPool2D,
    BatchNorm,
    ChannelAffine,
    Concat,
    Dense,
    FloatDense,
    FloatPReLU,
    GlobalAvgPool,
    Graph,
    IRError,
    Node,
    TensorType,
)

DEFAULT_PRECISION = 12   # fraction bits of every real tensor (--precision); weights get 14
DEFAULT_MARGIN = 2.0     # headroom over the calibration range: one more integer bit
REAL_OPS = (ChannelAffine, BatchNorm, FloatPReLU, AvgPool2D, GlobalAvgPool, Add, Concat,
            FloatDense, Dense)

Formats = dict[str, list[int]]


def calibrate_ranges(graph: Graph, x: np.ndarray) -> dict[str, float]:
    """Largest |value| of every node's float output on calibration frames ``x``."""
    values = evaluate_float(graph, x)
    return {name: float(np.abs(v).max(initial=0.0)) for name, v in values.items()}


def is_real(node: Node) -> bool:
    """Whether a float-stage node's output is a real-valued tensor that needs a format (a
    binary layer's accumulator counts: it may feed a real path)."""
    return isinstance(node, REAL_OPS)


def choose_formats(graph: Graph, ranges: dict[str, float], precision: int = DEFAULT_PRECISION,
                   margin: float = DEFAULT_MARGIN, overrides: Formats | None = None) -> Graph:
    """Every real tensor's format: ``overrides`` where given, else ``fixed.format_for`` of
    its calibration range; the inputs of a Concat share the widest of their formats."""
    if precision < 0:
        raise IRError(f"--precision {precision}: expected a number of fraction bits >= 0")
    overrides = dict(overrides or {})
    real = [n for n in graph.nodes if is_real(n)]
    unknown = sorted(set(overrides) - {n.name for n in real})
    if unknown:
        raise IRError(f"--formats names unknown tensors {unknown}; the real-valued tensors "
                      f"are {sorted(n.name for n in real)}")
    formats: Formats = {}
    for node in real:
        if node.name in overrides:
            bits, frac = (int(v) for v in overrides[node.name])
            TensorType.fixed(node.out.shape, bits, frac)  # IRError for a bad format
            formats[node.name] = [bits, frac]
            continue
        if node.name not in ranges:
            raise IRError(f"no calibration range for tensor {node.name!r}")
        t = fixed.format_for(node.out.shape, ranges[node.name], precision, margin)
        formats[node.name] = [t.bits, t.frac]
    for node in graph.nodes:
        if isinstance(node, Concat):
            group = [node.name, *node.inputs]
            known = [formats[n] for n in group if n in formats]
            if known:
                frac = max(f for _, f in known)
                ints = max(b - f for b, f in known)
                for n in group:
                    if n in formats and n not in overrides:
                        formats[n] = [ints + frac, frac]
    graph.meta["formats"] = formats
    return graph


def load_formats_file(path: str | Path) -> Formats:
    """A JSON file {tensor name: [bits, frac]} or {name: {"bits": B, "frac": F}}."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise IRError(f"--formats file {str(p)!r} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise IRError(f"--formats file {str(p)!r} is not JSON: {e}") from None
    if not isinstance(data, dict):
        raise IRError(f"--formats file {str(p)!r}: expected an object {{tensor: [bits, frac]}}")
    out: Formats = {}
    for name, v in data.items():
        if isinstance(v, dict) and {"bits", "frac"} <= set(v):
            v = [v["bits"], v["frac"]]
        if not (isinstance(v, list) and len(v) == 2 and all(isinstance(i, int) for i in v)):
            raise IRError(f"--formats file {str(p)!r}: tensor {name!r} has {v!r}; expected "
                          "[bits, frac] or {\"bits\": B, \"frac\": F}")
        out[str(name)] = [int(v[0]), int(v[1])]
    return out
