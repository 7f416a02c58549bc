"""FixedAffine: per-channel fixed-point affine with a sign-dependent slope (BatchNorm on a
real tensor, bias, ReLU/PReLU, RPReLU; ``ir.FixedAffine``)."""

from __future__ import annotations

import numpy as np

from bnn2fpga import fixed
from bnn2fpga.ir import FixedAffine, IRError, TensorType
from bnn2fpga.ops import OpType
from bnn2fpga.ops.realvalued import (
    check_lanes,
    check_out_fixed,
    check_real,
    elementwise_cycles,
    no_unit_yet,
)


def run(node: FixedAffine, in_type: TensorType, codes: np.ndarray) -> np.ndarray:
    u = np.asarray(codes, np.int64) + node.add_in
    p = u * np.where(u >= 0, node.mul_pos, node.mul_neg) + node.add_out
    return fixed.saturate(fixed.round_shift(p, node.shift), node.out, node.name)


def check(node: FixedAffine, src: TensorType) -> None:
    check_real(node, src)
    check_out_fixed(node)
    c = src.channels
    for name in ("mul_pos", "mul_neg", "add_in", "add_out"):
        a = getattr(node, name)
        if a.shape != (c,) or a.dtype.kind != "i":
            raise IRError(f"node {node.name!r} (fixed_affine): {name} must be {c} integers, "
                          f"got {a.dtype} {a.shape}")
    lim = 1 << (node.mul_bits - 1)
    for name in ("mul_pos", "mul_neg"):
        a = getattr(node, name)
        if a.size and (a.min() < -lim or a.max() >= lim):
            raise IRError(f"node {node.name!r} (fixed_affine): {name} outside the "
                          f"{node.mul_bits}-bit signed range")
    if node.shift < 0:
        raise IRError(f"node {node.name!r} (fixed_affine): shift {node.shift} < 0")
    if node.out.shape != src.shape:
        raise IRError(f"node {node.name!r} (fixed_affine): output shape {node.out.shape} != "
                      f"input shape {src.shape}")
    check_lanes(node, c)


OP = OpType("fixed_affine", check=check,
            infer=lambda node, src: node.out.with_shape(src.shape), run=run,
            cycles=elementwise_cycles, first_lanes=lambda node, fold: node.pe,
            lower=no_unit_yet)
