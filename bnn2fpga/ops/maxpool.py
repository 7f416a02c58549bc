"""MaxPool2D: a sliding window with all channels in one beat, then a max reducer (a min for
``min_channels``: OR / AND of bits).  Padded positions are ignored."""

from __future__ import annotations

import numpy as np

from bnn2fpga.ir import IRError, MaxPool2D, TensorType
from bnn2fpga.ops import Cycles, OpType
from bnn2fpga.ops.window import check_window_input, lower_window, uses_tap_valid, window_view


def run(node: MaxPool2D, in_type: TensorType, codes: np.ndarray) -> np.ndarray:
    lo = np.iinfo(np.int64).min
    invert = np.zeros(codes.shape[-1], dtype=bool)
    invert[list(node.min_channels)] = True
    # min over x == -max over -x: pool the negated values of the min channels; padded
    # positions hold the lowest value, so they never win
    out = window_view(np.where(invert, -codes, codes), node, fill=lo).max(axis=3)
    assert (out > lo).all(), f"{node.name}: a window with no valid position"
    return np.where(invert, -out, out)


def infer(node: MaxPool2D, src: TensorType) -> TensorType:
    return src.with_shape(node.out.shape)


def check(node: MaxPool2D, src: TensorType) -> None:
    check_window_input(node, src.shape)
    if node.out.encoding != src.encoding:
        raise IRError(f"node {node.name!r} ({node.op}): encoding {node.out.encoding} != input "
                      f"{src.encoding}")
    if any(not 0 <= ch < src.channels for ch in node.min_channels):
        raise IRError(f"layer {node.name!r}: min_channels {node.min_channels} outside "
                      f"0..{src.channels - 1}")


def pool_cycles(node, in_shape: tuple[int, ...]) -> Cycles:
    """Sliding window with all channels in one beat + reducer: max(input pixels, output
    pixels * KH * KW), one beat per cycle each."""
    check_window_input(node, in_shape)
    oh, ow = node.out.shape[0], node.out.shape[1]
    c = max(in_shape[0] * in_shape[1], oh * ow * node.kernel[0] * node.kernel[1])
    return Cycles(c, c)


def lower(b, node: MaxPool2D, in_type: TensorType) -> None:
    check(node, in_type)
    c, s = in_type.channels, b.cur
    lower_window(b, node, in_type, c, uses_tap_valid(node, in_type))
    b.add("pool", node.name, {"SIMD": c, "EB": s.bits, "CG": 1,
                              "KK": node.kernel[0] * node.kernel[1], "SIGNED": int(s.signed)},
          c, s.bits, node.out.shape[0] * node.out.shape[1], s.signed)


OP = OpType("maxpool2d", check=check, infer=infer, run=run, cycles=pool_cycles,
            first_lanes=lambda node, fold: node.out.channels, lower=lower)
