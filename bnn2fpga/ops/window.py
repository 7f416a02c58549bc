"""The sliding window shared by convolutions and pools: its reference view of the input,
its unit's parameters and when it flags padded taps.  Not an op of its own."""

from __future__ import annotations

import numpy as np

from bnn2fpga.ir import (
    Conv2D,
    FixedAvgPool,
    IRError,
    MajorityPool2D,
    MaxPool2D,
    Node,
    TensorType,
)

Windowed = Conv2D | MaxPool2D | MajorityPool2D | FixedAvgPool


def is_pointwise(node: Node) -> bool:
    """A 1x1, stride-1, unpadded convolution: its window is the identity, so it has no
    sliding window unit (its MVTU reads the pixels as a dense layer reads a vector, behind
    an input-vector FIFO)."""
    return (isinstance(node, Conv2D) and tuple(node.kernel) == (1, 1)
            and tuple(node.stride) == (1, 1) and not any(node.pads))


def has_window(node: Node) -> bool:
    """Whether ``node``'s units start with a sliding window (convs and pools, not a
    pointwise conv nor a global average pool)."""
    if isinstance(node, FixedAvgPool):
        return not node.global_pool
    return isinstance(node, (Conv2D, MaxPool2D, MajorityPool2D)) and not is_pointwise(node)


def window_view(codes: np.ndarray, node: Windowed, fill: int) -> np.ndarray:
    """(N, OH, OW, KH*KW, C) sliding windows of a conv or pool; padded positions hold
    ``fill``."""
    n, h, w, c = codes.shape
    kh, kw = node.kernel
    sh, sw = node.stride
    top, bottom, left, right = node.pads
    oh, ow = node.out.shape[0], node.out.shape[1]
    padded = np.full((n, h + top + bottom, w + left + right, c), fill, dtype=np.int64)
    padded[:, top:top + h, left:left + w, :] = codes
    taps = [padded[:, ky:ky + sh * (oh - 1) + 1:sh, kx:kx + sw * (ow - 1) + 1:sw, :]
            for ky in range(kh) for kx in range(kw)]
    return np.stack(taps, axis=3)


def check_window_input(node: Node, in_shape: tuple[int, ...]) -> None:
    if len(in_shape) != 3:
        raise IRError(f"layer {node.name!r} ({node.op}): a sliding window needs an (H, W, C) "
                      f"input, got {tuple(in_shape)}")


def window_cycles(node: Windowed, in_shape: tuple[int, ...], beats_per_pixel: int) -> int:
    """Cycles per frame of the sliding window's writer: one beat per cycle, the input
    frame's ``IH * IW * beats_per_pixel`` beats."""
    check_window_input(node, in_shape)
    return in_shape[0] * in_shape[1] * beats_per_pixel


def uses_tap_valid(node: Node, in_type: TensorType) -> bool:
    """Whether the sliding window in front of ``node`` flags padded taps: a bipolar conv
    padded with zeros (a padded tap adds exactly 0, a value bipolar bits cannot hold), and a
    padded pool (a padded position is ignored).  Without padding no tap is ever invalid."""
    if not any(getattr(node, "pads", ())):
        return False
    if isinstance(node, Conv2D):
        return in_type.encoding == "bipolar" and node.pad == "zero"
    return isinstance(node, (MaxPool2D, MajorityPool2D))


def pad_code(node: Conv2D, bits: int) -> int:
    """The code a padded tap of ``node``'s window carries when it is not flagged invalid."""
    if node.pad == "zero":
        return 0
    if isinstance(node.pad, int) and 0 <= node.pad < (1 << bits):
        return node.pad
    raise IRError(f"layer {node.name!r}: pad {node.pad!r} is not 'zero' or a {bits}-bit code")


def swu_params(node: Windowed, in_shape: tuple[int, ...], simd: int, bits: int
               ) -> dict[str, int]:
    """bnn_swu / SlidingWindow parameters for ``node``'s window over ``in_shape``."""
    if len(in_shape) != 3:
        raise IRError(f"layer {node.name!r}: a sliding window needs an (H, W, C) input, got "
                      f"{in_shape}")
    ih, iw, c = in_shape
    oh, ow = node.out.shape[0], node.out.shape[1]
    return {"SIMD": simd, "EB": bits, "C": c, "IH": ih, "IW": iw, "KH": node.kernel[0],
            "KW": node.kernel[1], "SH": node.stride[0], "SW": node.stride[1],
            "PT": node.pads[0], "PL": node.pads[2], "OH": oh, "OW": ow,
            "PAD_CODE": pad_code(node, bits) if isinstance(node, Conv2D) else 0}


def window_first_rows(p: dict[str, int]) -> int:
    """Input rows the window's first output row covers (bnn_swu's / swu.h's FIRST; all IH
    rows when the frame has one output row, which waits for the whole frame)."""
    if p["OH"] == 1:
        return p["IH"]
    return min(max(max(p["KH"], p["SH"]) - p["PT"], 0), p["IH"])


def window_fifo_depth(p: dict[str, int]) -> int:
    """Beats of the FIFO in front of a sliding window fed by a unit: the input beats the
    window needs before its first output row can start (its first rows).

    An HLS window called once per frame (``ap_ctrl_none``) cannot read the next frame's
    first rows while it emits the last output row, and must read them again before its
    first tap: without this FIFO its producer waits meanwhile (CNV-W1A1: 36,753 instead
    of 32,768 cycles per frame in the HLS model; with it 32,773).  One row less leaves the
    producer a row's time per frame (CNV-W1A1: 32,990), which a window with few rows
    cannot afford.  A window fed by the top's input needs none (the host offers a beat
    every cycle)."""
    return window_first_rows(p) * p["IW"] * (p["C"] // p["SIMD"])


def lower_window(b, node: Windowed, in_type: TensorType, simd: int, tap_valid: bool) -> None:
    """Append the sliding window in front of ``node``'s reducer or MVTU to plan builder
    ``b`` (it emits OH*OW*KH*KW*C/SIMD beats of SIMD codes), behind a FIFO of its first
    rows when a unit feeds it (``window_fifo_depth``)."""
    s = b.cur
    params = swu_params(node, in_type.shape, simd, s.bits)
    if not b.fed_by_input(s):
        b.add_fifo(node.name, window_fifo_depth(params), "win_fifo")
    taps = node.out.shape[0] * node.out.shape[1] * node.kernel[0] * node.kernel[1]
    b.add("swu", node.name, params, simd, s.bits, taps * (params["C"] // simd), s.signed,
          tap_valid=tap_valid)
