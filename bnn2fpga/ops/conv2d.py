"""Conv2D: a binary-weight convolution = sliding window + the matrix-vector core of
``dense`` (fan-in order (ky, kx, c); padded taps exactly as ``Conv2D.pad`` says)."""

from __future__ import annotations

import numpy as np

from bnn2fpga.ir import Conv2D, IRError, TensorType
from bnn2fpga.ops import Cycles, OpType
from bnn2fpga.ops import dense as matvec
from bnn2fpga.ops.window import (
    check_window_input,
    is_pointwise,
    lower_window,
    uses_tap_valid,
    window_cycles,
    window_view,
)


def im2col(codes: np.ndarray, node: Conv2D, pad_code: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, H, W, C) codes -> (N, P, K) patches in (ky, kx, c) order and a (P, K) validity mask
    that is 0 on padded taps.  Padded taps hold ``pad_code``."""
    n = codes.shape[0]
    patches = window_view(codes, node, fill=pad_code).reshape(n, -1, node.fan_in)
    ones = np.ones((1,) + codes.shape[1:], dtype=np.int64)
    valid = window_view(ones, node, fill=0).reshape(-1, node.fan_in).astype(np.uint8)
    return patches, valid


def run(node: Conv2D, in_type: TensorType, codes: np.ndarray) -> np.ndarray:
    n = codes.shape[0]
    pad_code = 0 if node.pad == "zero" else int(node.pad)
    patches, vmask = im2col(codes, node, pad_code)
    rows = patches.reshape(n * patches.shape[1], -1)
    masked = in_type.encoding == "bipolar" and node.pad == "zero" and vmask.min() == 0
    valid = np.tile(vmask, (n, 1)) if masked else None
    return matvec.matvec_rows(node, in_type, rows, valid).reshape((n,) + node.out.shape)


def check(node: Conv2D, src: TensorType) -> None:
    check_window_input(node, src.shape)
    if node.fan_in != node.kernel[0] * node.kernel[1] * src.shape[-1]:
        raise IRError(f"layer {node.name!r}: fan-in {node.fan_in} does not match the kernel "
                      f"{node.kernel} over the input {src.shape}")
    matvec.check(node, src)


def cycles(node: Conv2D, in_shape: tuple[int, ...]) -> Cycles:
    """Sliding window + MVTU.  The window writes one beat of SIMD input channels per cycle
    (IH * IW * C/SIMD) while it emits the taps the MVTU consumes; the slower of the two sets
    the rate (the writer wins for a stride larger than the kernel and NF = 1).  A pointwise
    conv's MVTU reads those beats itself, within its own cycles."""
    c = max(matvec.matvec_cycles(node),
            window_cycles(node, in_shape, in_shape[-1] // node.simd))
    return Cycles(c, c)


def lower(b, node: Conv2D, in_type: TensorType) -> None:
    """Sliding window + MVTU; a pointwise conv (1x1, stride 1, unpadded) has no window: its
    MVTU reads each pixel's channels as a dense layer reads its vector."""
    simd = matvec.check_folding(node, b.fold)[1]
    if node.out.shape[-1] != node.out_channels or len(in_type.shape) != 3:
        raise IRError(f"layer {node.name!r}: conv shapes do not match")
    tap_valid = uses_tap_valid(node, in_type)
    if not is_pointwise(node):
        lower_window(b, node, in_type, simd, tap_valid)
    matvec.lower_mvtu(b, node, in_type, node.out.shape[0] * node.out.shape[1], tap_valid)


OP = OpType("conv2d", check=check, infer=None, run=run, cycles=cycles,
            first_lanes=lambda node, fold: fold[node.name][1], lower=lower)
