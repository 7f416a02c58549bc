"""FixedAvgPool: average pooling of fixed-point values, global pooling included
(``ir.FixedAvgPool``)."""

from __future__ import annotations

import numpy as np

from bnn2fpga import fixed
from bnn2fpga.ir import FixedAvgPool, IRError, TensorType, conv_out_size, signed_bits_for
from bnn2fpga.ops import Cycles, OpType
from bnn2fpga.ops.realvalued import check_out_fixed, check_real, no_unit_yet


def window_sums(node: FixedAvgPool, codes: np.ndarray) -> np.ndarray:
    """Sum of each unpadded window: (N, OH, OW, C), or (N, C) for a global pool."""
    x = np.asarray(codes, np.int64)
    if node.global_pool:
        return x.sum(axis=(1, 2))
    kh, kw = node.kernel
    sh, sw = node.stride
    n, h, w, c = x.shape
    oh, ow = conv_out_size(h, kh, sh, 0, 0), conv_out_size(w, kw, sw, 0, 0)
    out = np.zeros((n, oh, ow, c), np.int64)
    for dy in range(kh):
        for dx in range(kw):
            out += x[:, dy:dy + sh * (oh - 1) + 1:sh, dx:dx + sw * (ow - 1) + 1:sw, :]
    return out


def run(node: FixedAvgPool, in_type: TensorType, codes: np.ndarray) -> np.ndarray:
    total = window_sums(node, codes) * np.int64(node.mul)
    return fixed.saturate(fixed.round_shift(total, node.shift), node.out, node.name)


def out_shape(node: FixedAvgPool, src: TensorType) -> tuple[int, ...]:
    h, w, c = src.shape
    if node.global_pool:
        return (c,)
    (kh, kw), (sh, sw) = node.kernel, node.stride
    return (conv_out_size(h, kh, sh, 0, 0), conv_out_size(w, kw, sw, 0, 0), c)


def check(node: FixedAvgPool, src: TensorType) -> None:
    check_real(node, src)
    check_out_fixed(node)
    if len(src.shape) != 3:
        raise IRError(f"node {node.name!r} (fixed_avgpool): input shape {src.shape}, "
                      "expected (H, W, C)")
    if node.out.shape != out_shape(node, src):
        raise IRError(f"node {node.name!r} (fixed_avgpool): output shape {node.out.shape} "
                      f"!= {out_shape(node, src)}")
    if node.shift < 0 or node.mul < 1:
        raise IRError(f"node {node.name!r} (fixed_avgpool): mul {node.mul} / shift "
                      f"{node.shift} must be >= 1 / >= 0")


def avgpool_params(node: FixedAvgPool, in_type: TensorType) -> dict[str, int]:
    """bnn_global_avgpool / GlobalAvgPool parameters: sum, multiplier and product widths
    from the input range and the constants (only the final saturation clips)."""
    h, w, c = in_type.shape
    bound = h * w * (1 << (in_type.bits - 1))
    half = (1 << (node.shift - 1)) if node.shift > 0 else 0
    ob = int(node.out.bits)
    return {"C": c, "HW": h * w, "IB": int(in_type.bits), "OB": ob,
            "SW": signed_bits_for(bound), "MUL": node.mul, "MW": int(node.mul).bit_length() + 1,
            "PW": max(ob + 1, signed_bits_for(bound * node.mul + half)), "SHIFT": node.shift}


def lower(b, node: FixedAvgPool, in_type: TensorType) -> None:
    """Global pooling: one unit keeping a running per-channel sum.  Windowed pooling (a
    sliding window and a summing reducer) has no unit yet."""
    check(node, in_type)
    if not node.global_pool:
        no_unit_yet(b, node, in_type)
    params = avgpool_params(node, in_type)
    b.add("avgpool", node.name, params, params["C"], params["OB"], 1, signed=True)


def cycles(node: FixedAvgPool, in_shape: tuple[int, ...]) -> Cycles:
    """One input pixel of C channels per cycle (the reducer reads each input once)."""
    c = in_shape[0] * in_shape[1]
    return Cycles(c, c)


OP = OpType("fixed_avgpool", check=check,
            infer=lambda node, src: node.out.with_shape(out_shape(node, src)), run=run,
            cycles=cycles, first_lanes=lambda node, fold: node.out.shape[-1], lower=lower)
