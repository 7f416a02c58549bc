"""Add: the residual join of two or more fixed-point tensors (``ir.Add``)."""

from __future__ import annotations

import numpy as np

from bnn2fpga import fixed
from bnn2fpga.ir import Add, IRError, TensorType
from bnn2fpga.ops import OpType
from bnn2fpga.ops.realvalued import (
    check_lanes,
    check_out_fixed,
    check_real,
    elementwise_cycles,
    frac_of,
    no_unit_yet,
)


def run(node: Add, ins: list[TensorType], values: list[np.ndarray]) -> np.ndarray:
    top = max(frac_of(t) for t in ins)
    total = sum(fixed.align(v, frac_of(t), top) for t, v in zip(ins, values, strict=True))
    return fixed.saturate(fixed.align(total, top, node.out.frac), node.out, node.name)


def check(node: Add, ins: list[TensorType]) -> None:
    for t in ins:
        check_real(node, t)
    if len({t.shape for t in ins}) != 1:
        raise IRError(f"node {node.name!r} (add): input shapes differ: "
                      f"{[t.shape for t in ins]}")
    check_out_fixed(node)
    if node.out.shape != ins[0].shape:
        raise IRError(f"node {node.name!r} (add): output shape {node.out.shape} != input "
                      f"shape {ins[0].shape}")
    check_lanes(node, ins[0].channels)


def infer(node: Add, ins: list[TensorType]) -> TensorType:
    """The shape follows the inputs; the format is the pass's (kept)."""
    return node.out.with_shape(ins[0].shape)


OP = OpType("add", check=check, infer=infer, run=run, cycles=elementwise_cycles,
            first_lanes=lambda node, fold: node.pe, lower=no_unit_yet, arity=0)
