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
    join_arity,
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


def add_params(node: Add, ins: list[TensorType]) -> dict[str, int]:
    """bnn_add / FixedAdd parameters: per input k its bits IBk and exact left shift LSHk to
    the largest input frac; RSH, the one round-half-up right shift (negative: an exact left
    shift) to the output frac; OB output bits; SW the signed width of the aligned sum with
    its rounding constant (it cannot overflow), and of the saturation bounds."""
    from bnn2fpga.ops.dense import elem_bits

    top = max(frac_of(t) for t in ins)
    p: dict[str, int] = {"PE": node.pe}
    for k, t in enumerate(ins):
        p[f"IB{k}"], p[f"LSH{k}"] = elem_bits(t), top - frac_of(t)
    rsh = top - node.out.frac
    sw = max(p[f"IB{k}"] + p[f"LSH{k}"] for k in range(len(ins))) \
        + (len(ins) - 1).bit_length() + 1 + max(0, -rsh)
    # at least OB bits: the saturation bounds are SW-bit constants
    p.update(RSH=rsh, OB=node.out.bits, SW=max(sw, node.out.bits))
    return p


def lower(b, node: Add, streams) -> None:
    """Each input converted to PE lanes, one ``add`` unit emitting PE lanes per beat."""
    srcs, ins = streams
    join_arity(node)
    size = ins[0].size
    srcs = [b.converted(s, node.pe, node.name, size) for s in srcs]
    b.add_join("add", node.name, add_params(node, ins), srcs, node.pe, node.out.bits,
               size // node.pe, signed=True)


OP = OpType("add", check=check, infer=infer, run=run, cycles=elementwise_cycles,
            first_lanes=lambda node, fold: node.pe, lower=lower, arity=0)
