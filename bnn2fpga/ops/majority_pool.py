"""MajorityPool2D: average-pool of bipolar values then a sign, as a vote over each window's
valid taps (a tie gives +1): a sliding window with all channels in one beat, then a vote
counter per channel."""

from __future__ import annotations

import numpy as np

from bnn2fpga.ir import IRError, MajorityPool2D, TensorType
from bnn2fpga.ops import OpType
from bnn2fpga.ops.maxpool import pool_cycles
from bnn2fpga.ops.window import check_window_input, lower_window, uses_tap_valid, window_view


def run(node: MajorityPool2D, in_type: TensorType, codes: np.ndarray) -> np.ndarray:
    # valid bits count +1 or -1; padded positions (fill 2 -> weight 0) count nothing
    windows = window_view(codes, node, fill=2)
    votes = np.where(windows == 2, 0, 2 * windows - 1).sum(axis=3)
    return (votes >= 0).astype(np.int64)


def check(node: MajorityPool2D, src: TensorType) -> None:
    check_window_input(node, src.shape)
    if src.encoding != "bipolar":
        raise IRError(f"layer {node.name!r}: a majority pool takes a bipolar (H, W, C) "
                      f"tensor, not {src.encoding}")


def lower(b, node: MajorityPool2D, in_type: TensorType) -> None:
    check(node, in_type)
    c, kk = in_type.channels, node.kernel[0] * node.kernel[1]
    lower_window(b, node, in_type, c, uses_tap_valid(node, in_type))
    b.add("majority_pool", node.name, {"C": c, "KK": kk}, c, 1,
          node.out.shape[0] * node.out.shape[1], suffix="pool")


OP = OpType("majoritypool2d", check=check,
            infer=lambda node, src: TensorType(node.out.shape, "bipolar"), run=run,
            cycles=pool_cycles, first_lanes=lambda node, fold: node.out.channels, lower=lower)
