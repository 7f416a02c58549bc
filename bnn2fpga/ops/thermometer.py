"""ThermometerEncode: FracBNN's thermometer input on chip (``ir.ThermometerEncode``)."""

from __future__ import annotations

import numpy as np

from bnn2fpga.ir import IRError, TensorType, ThermometerEncode
from bnn2fpga.ops import Cycles, OpType


def run(node: ThermometerEncode, in_type: TensorType, codes: np.ndarray) -> np.ndarray:
    """(N, ..., C) pixel codes -> (N, ..., C*L) bits, channel c*L + k = [p >= T[k]]."""
    p = np.asarray(codes, np.int64)
    bits = (p[..., None] >= node.thresholds).astype(np.int64)
    return bits.reshape(p.shape[:-1] + (p.shape[-1] * node.thresholds.size,))


def infer(node: ThermometerEncode, src: TensorType) -> TensorType:
    return TensorType(src.shape[:-1] + (src.channels * node.thresholds.size,), "bipolar")


def check(node: ThermometerEncode, src: TensorType) -> None:
    if src.encoding != "uint" or src.bits != 8:
        raise IRError(f"node {node.name!r} (thermometer): input {src.encoding} {src.bits}-bit, "
                      "expected 8-bit pixel codes (uint 8)")
    t = node.thresholds
    ascending = t.ndim == 1 and t.size >= 1 and t.dtype.kind == "i" and \
        not np.any(np.diff(t) < 0)
    if not ascending or t.min() < 0 or t.max() > 256:
        raise IRError(f"node {node.name!r} (thermometer): thresholds must be ascending "
                      "integers in [0, 256]")
    if node.out != infer(node, src):
        raise IRError(f"node {node.name!r} (thermometer): output {node.out} != "
                      f"{infer(node, src)}")


def cycles(node: ThermometerEncode, in_shape: tuple[int, ...]) -> Cycles:
    """One input pixel (all colour channels) per cycle."""
    c = int(np.prod(in_shape[:-1])) if len(in_shape) > 1 else 1
    return Cycles(c, c)


def channels_in(node: ThermometerEncode) -> int:
    """Colour channels of the input pixel (the unit's 8-bit lanes per beat)."""
    return node.out.shape[-1] // node.thresholds.size


def thermometer_params(node: ThermometerEncode) -> dict[str, int]:
    """bnn_thermometer / Thermometer parameters (the thresholds are rendered apart)."""
    return {"C": channels_in(node), "L": int(node.thresholds.size)}


def lower(b, node: ThermometerEncode, in_type: TensorType) -> None:
    """One thermometer unit: a pixel of C bytes per beat in, its C*L bits per beat out."""
    params = thermometer_params(node)
    pixels = in_type.size // params["C"]
    b.add("thermometer", node.name, params, params["C"] * params["L"], 1, pixels)


OP = OpType("thermometer", check=check, infer=infer, run=run, cycles=cycles,
            first_lanes=lambda node, fold: channels_in(node), lower=lower)
