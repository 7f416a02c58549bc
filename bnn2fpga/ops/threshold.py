"""Threshold: thresholds on a fixed-point tensor or on unsigned codes (RSign, the sign of a
residual sum, a multi-bit activation of a real path, a model's quantizer on quantized
codes; ``ir.Threshold``)."""

from __future__ import annotations

import numpy as np

from bnn2fpga.ir import IRError, TensorType, Threshold, signed_bits_for
from bnn2fpga.ops import OpType
from bnn2fpga.ops.dense import elem_bits
from bnn2fpga.ops.realvalued import (
    check_codes,
    check_lanes,
    elementwise_cycles,
    max_abs,
    signed_input,
)


def run(node: Threshold, in_type: TensorType, codes: np.ndarray) -> np.ndarray:
    x = np.asarray(codes, np.int64)
    if node.negate_channels:
        sign = np.ones(in_type.channels, np.int64)
        sign[list(node.negate_channels)] = -1
        x = x * sign
    return (x[..., None] >= node.thresholds).sum(axis=-1).astype(np.int64)


def infer(node: Threshold, src: TensorType) -> TensorType:
    n = node.thresholds.shape[1]
    if n == 1 and node.out.encoding in ("bipolar", "unipolar"):
        return node.out.with_shape(src.shape)
    return TensorType(src.shape, "uint", max(1, n.bit_length()), node.out.scale,
                      node.out.offset)


def check(node: Threshold, src: TensorType) -> None:
    check_codes(node, src)
    t = node.thresholds
    if t.ndim != 2 or t.shape[0] != src.channels or t.dtype.kind != "i":
        raise IRError(f"node {node.name!r} (threshold): thresholds must be integers of shape "
                      f"({src.channels}, n), got {t.dtype} {t.shape}")
    if np.any(np.diff(t, axis=1) < 0):
        raise IRError(f"node {node.name!r} (threshold): thresholds not ascending")
    if any(not 0 <= c < src.channels for c in node.negate_channels):
        raise IRError(f"node {node.name!r} (threshold): negate_channels outside "
                      f"[0, {src.channels})")
    check_lanes(node, src.channels)


def threshold_params(node: Threshold, in_type: TensorType) -> dict[str, int]:
    """bnn_threshold / ThresholdUnit parameters."""
    return {"PE": node.pe, "NF": in_type.channels // node.pe, "IB": int(in_type.bits),
            "IN_SIGNED": signed_input(in_type), "NT": int(node.thresholds.shape[1]),
            "TW": signed_bits_for(max_abs(node.thresholds)),
            "OB": elem_bits(node.out)}


def lower(b, node: Threshold, in_type: TensorType) -> None:
    check(node, in_type)
    params = threshold_params(node, in_type)
    b.add("threshold", node.name, params, node.pe, params["OB"], in_type.size // node.pe)


OP = OpType("threshold", check=check, infer=infer, run=run, cycles=elementwise_cycles,
            first_lanes=lambda node, fold: node.pe, lower=lower)
