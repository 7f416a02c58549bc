"""FixedAffine: per-channel fixed-point affine with a sign-dependent slope (BatchNorm on a
real tensor, bias, ReLU/PReLU, RPReLU; ``ir.FixedAffine``)."""

from __future__ import annotations

import numpy as np

from bnn2fpga import fixed
from bnn2fpga.ir import FixedAffine, IRError, TensorType, signed_bits_for
from bnn2fpga.ops import OpType
from bnn2fpga.ops.realvalued import (
    check_codes,
    check_lanes,
    check_out_fixed,
    elementwise_cycles,
    max_abs,
    signed_input,
)


def add_neg(node: FixedAffine) -> np.ndarray:
    """The offset where u < 0 (``add_out`` unless the node has its own ``add_neg``)."""
    return node.add_out if node.add_neg.size == 0 else node.add_neg


def two_offsets(node: FixedAffine) -> bool:
    """Whether the unit holds a second offset per channel (some add_neg != add_out)."""
    return node.add_neg.size > 0 and bool(np.any(node.add_neg != node.add_out))


def run(node: FixedAffine, in_type: TensorType, codes: np.ndarray) -> np.ndarray:
    u = np.asarray(codes, np.int64) + node.add_in
    pos = u >= 0
    p = u * np.where(pos, node.mul_pos, node.mul_neg) + np.where(pos, node.add_out,
                                                                add_neg(node))
    return fixed.saturate(fixed.round_shift(p, node.shift), node.out, node.name)


def check(node: FixedAffine, src: TensorType) -> None:
    check_codes(node, src)
    check_out_fixed(node)
    c = src.channels
    for name in ("mul_pos", "mul_neg", "add_in", "add_out", "add_neg"):
        a = getattr(node, name)
        if name == "add_neg" and a.size == 0:
            continue
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


def affine_params(node: FixedAffine, in_type: TensorType) -> dict[str, int]:
    """bnn_fixed_affine / FixedAffineUnit parameters: the widths of every intermediate,
    sized from the input's code range and the constants so that only the final saturation
    can clip (u = x + add_in: UW bits; u * m + add_out + 2^(shift-1): PW bits)."""
    lo, hi = in_type.code_range()
    ai = np.asarray(node.add_in, np.int64)
    u_abs = max(abs(lo + int(ai.min(initial=0))), abs(hi + int(ai.max(initial=0))))
    half = (1 << (node.shift - 1)) if node.shift > 0 else 0
    add = max(max_abs(node.add_out), max_abs(add_neg(node)))
    p_abs = u_abs * (1 << (node.mul_bits - 1)) + add + half
    ob = int(node.out.bits)
    return {"PE": node.pe, "NF": in_type.channels // node.pe, "IB": int(in_type.bits),
            "IN_SIGNED": signed_input(in_type), "OB": ob, "MW": node.mul_bits,
            "AIW": signed_bits_for(max_abs(node.add_in)),
            "AOW": signed_bits_for(add), "AO2": int(two_offsets(node)),
            "UW": signed_bits_for(u_abs), "PW": max(signed_bits_for(p_abs), ob + 1),
            "SHIFT": node.shift}


def lower(b, node: FixedAffine, in_type: TensorType) -> None:
    check(node, in_type)
    params = affine_params(node, in_type)
    b.add("affine", node.name, params, node.pe, params["OB"], in_type.size // node.pe,
          signed=True)


OP = OpType("fixed_affine", check=check,
            infer=lambda node, src: node.out.with_shape(src.shape), run=run,
            cycles=elementwise_cycles, first_lanes=lambda node, fold: node.pe,
            lower=lower)
