"""ThermometerEncode: FracBNN's thermometer input on chip (``ir.ThermometerEncode``)."""

from __future__ import annotations

import numpy as np

from bnn2fpga.ir import IRError, TensorType, ThermometerEncode
from bnn2fpga.ops import Cycles, OpType
from bnn2fpga.ops.realvalued import no_unit_yet


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


OP = OpType("thermometer", check=check, infer=infer, run=run, cycles=cycles,
            first_lanes=lambda node, fold: 1, lower=no_unit_yet)
