"""Reshape (Flatten/Reshape): channels-last order is unchanged, so hardware sees a no-op and
the stream passes on to the next layer's unit."""

from __future__ import annotations

import numpy as np

from bnn2fpga.ir import IRError, Reshape, TensorType
from bnn2fpga.ops import Cycles, OpType


def run(node: Reshape, in_type: TensorType, codes: np.ndarray) -> np.ndarray:
    return codes.reshape((codes.shape[0],) + node.out.shape)


def check(node: Reshape, src: TensorType) -> None:
    if node.out.encoding != src.encoding:
        raise IRError(f"node {node.name!r} ({node.op}): encoding {node.out.encoding} != input "
                      f"{src.encoding}")
    if node.out.size != src.size:
        raise IRError(f"node {node.name!r} ({node.op}): reshape from {src.shape} to "
                      f"{node.out.shape}")


def lower(b, node: Reshape, in_type: TensorType) -> None:
    """No unit: the stream goes on to the next layer."""


OP = OpType("reshape", check=check, infer=lambda node, src: src.with_shape(node.out.shape),
            run=run, cycles=lambda node, in_shape: Cycles(0, 0), first_lanes=None,
            lower=lower)
