"""Bit-exact reference executor of the hardware IR (the executable specification).

Tensors between nodes are integer codes with a leading batch axis: 0/1 for binary
encodings, k for ``uint``, the accumulator for ``int``.  Matrix-vector nodes pack their
operands into 64-bit words (``packing.pack_words``) and compute XNOR-popcount; a multi-bit
unsigned input is processed bit-plane by bit-plane with AND-popcounts, as hardware would.
"""

from __future__ import annotations

import numpy as np

from bnn2fpga.ir import (
    Conv2D,
    Dense,
    Graph,
    Input,
    IRError,
    MajorityPool2D,
    MaxPool2D,
    Node,
    Reshape,
    TensorType,
)
from bnn2fpga.packing import bipolar_to_bits, lane_mask, pack_words, popcount

_CHUNK_ELEMENTS = 1 << 22  # bound on rows * out_channels * words held at once


class InputError(ValueError):
    """Input frames that cannot be fed to the design exactly."""


# ----------------------------------------------------------------------------------------
# Host side: float frames -> input codes, output codes -> float results
# ----------------------------------------------------------------------------------------


def quantize_input(node: Input, x: np.ndarray) -> np.ndarray:
    """Float frames (N, *shape) -> integer codes, exactly as the model's input stage does.

    ``sign``: bit = x >= 0.  ``round_half_even``: QKeras ``quantized_bits``/``quantized_relu``
    (k = clip(rint(x / scale), 0, 2^bits - 1), scale a power of two).  ``None``: x must equal
    offset + scale * k exactly for an integer 0 <= k < 2^bits; otherwise an ``InputError``
    names the first element that is not representable.  Nothing is ever rounded silently.
    """
    t = node.out
    x = np.asarray(x, dtype=np.float32)
    if x.shape[1:] != t.shape:
        raise InputError(f"input frames have shape {x.shape[1:]}, the design expects "
                         f"{t.shape} (array shape (N, {', '.join(map(str, t.shape))}))")
    if not np.all(np.isfinite(x)):
        idx = tuple(int(i) for i in np.argwhere(~np.isfinite(x))[0])
        raise InputError(f"input element {idx} is {x[idx]!s}, not a finite number")
    if t.encoding == "bipolar":
        if node.quantizer == "sign":
            return (x >= 0).astype(np.int64)
        ok = (x == 1.0) | (x == -1.0)
        if not ok.all():
            idx = tuple(int(i) for i in np.argwhere(~ok)[0])
            raise InputError(f"input element {idx} = {x[idx]!r} is not -1 or +1, and the "
                             "design has a binary input without a quantizer")
        return (x > 0).astype(np.int64)
    if t.encoding != "uint":
        raise IRError(f"input encoding {t.encoding!r} is not supported by the host")
    top = (1 << t.bits) - 1
    if node.quantizer == "round_half_even":
        p = (x / np.float32(t.scale)).astype(np.float32)  # exact: scale is a power of two
        return np.clip(np.rint(p), 0, top).astype(np.int64)
    if node.quantizer is not None:
        raise IRError(f"unknown input quantizer {node.quantizer!r}")
    k = np.rint((x.astype(np.float64) - t.offset) / t.scale)
    back = (t.offset + k * t.scale).astype(np.float32)
    bad = (back != x) | (k < 0) | (k > top)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InputError(
            f"input element {idx} = {x[idx]!s} is not representable as "
            f"{t.offset} + {t.scale!r} * k with integer 0 <= k <= {top} "
            f"(--input-scale {t.scale!r} --input-bits {t.bits}); scale the data onto that "
            "grid, or compile with a scale/bit width that covers it")
    return k.astype(np.int64)


def codes_to_float(t: TensorType, codes: np.ndarray, affine=None) -> np.ndarray:
    """Output codes -> float32 values as the Keras model reports them."""
    if t.encoding == "bipolar":
        return np.where(codes > 0, 1.0, -1.0).astype(np.float32)
    if t.encoding == "unipolar":
        return codes.astype(np.float32)
    if t.encoding == "int" and affine is not None:
        scale, offset = affine
        return (codes.astype(np.float64) * scale + offset).astype(np.float32)
    return (t.offset + t.scale * codes.astype(np.float64)).astype(np.float32)


# ----------------------------------------------------------------------------------------
# Arithmetic bounds
# ----------------------------------------------------------------------------------------


def accumulator_bound(node: Dense, in_type: TensorType) -> int:
    """Largest |accumulator| a matrix-vector node can produce, from its fan-in."""
    if in_type.encoding == "bipolar":
        return node.fan_in
    if in_type.encoding in ("uint", "unipolar"):
        return node.fan_in * ((1 << in_type.bits) - 1)
    raise IRError(f"layer {node.name!r}: a {in_type.encoding!r} input to a binary-weight "
                  "unit is not supported (expected bipolar, unipolar or uint): binarise the "
                  "previous layer's output first (a QActivation('binary') or a Larq "
                  "input_quantizer)")


# ----------------------------------------------------------------------------------------
# Node kernels
# ----------------------------------------------------------------------------------------


def im2col(codes: np.ndarray, node: Conv2D, pad_code: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, H, W, C) codes -> (N, P, K) patches in (ky, kx, c) order and a (P, K) validity mask
    that is 0 on padded taps.  Padded taps hold ``pad_code``."""
    n = codes.shape[0]
    patches = window_view(codes, node, fill=pad_code).reshape(n, -1, node.fan_in)
    ones = np.ones((1,) + codes.shape[1:], dtype=np.int64)
    valid = window_view(ones, node, fill=0).reshape(-1, node.fan_in).astype(np.uint8)
    return patches, valid


def _popcount_dot(a_words: np.ndarray, w_words: np.ndarray, combine: str) -> np.ndarray:
    """sum over words of popcount(XNOR or AND of a (R, W) and w (O, W)) -> (R, O)."""
    rows, nwords = a_words.shape
    out = np.zeros((rows, w_words.shape[0]), dtype=np.int64)
    step = max(1, _CHUNK_ELEMENTS // max(1, w_words.shape[0] * nwords))
    for start in range(0, rows, step):
        a = a_words[start:start + step, None, :]
        x = ~(a ^ w_words[None]) if combine == "xnor" else (a & w_words[None])
        out[start:start + step] = popcount(x).sum(axis=-1)
    return out


def bipolar_dot(bits: np.ndarray, valid: np.ndarray | None, weights: np.ndarray) -> np.ndarray:
    """Signed dot products of bipolar activations with bipolar weights.

    bits: (R, K) 0/1; valid: (R, K) 0/1 or None; weights (O, K) in {-1,+1}.
    dot = 2 * popcount(XNOR(a, w) & valid) - popcount(valid): invalid lanes contribute 0."""
    k = bits.shape[-1]
    w_words = pack_words(bipolar_to_bits(weights))
    a_words = pack_words(bits)
    if valid is None:
        a_xnor = _popcount_dot(a_words, w_words, "xnor")
        # XNOR sets the lanes past K too (0 xnor 0 = 1): remove them once
        pad_lanes = w_words.shape[-1] * 64 - k
        return 2 * (a_xnor - pad_lanes) - k
    # mask invalid lanes: XNOR(a, w) & v = (a & w & v) | (~a & ~w & v)
    v_words = pack_words(valid)
    n_valid = popcount(v_words).sum(axis=-1)[:, None]
    ones = _popcount_dot(a_words & v_words, w_words, "and")
    zeros = _popcount_dot(~a_words & v_words & lane_mask(k), ~w_words & lane_mask(k), "and")
    return 2 * (ones + zeros) - n_valid


def unsigned_dot(codes: np.ndarray, bits: int, weights: np.ndarray) -> np.ndarray:
    """Dot products of unsigned codes (R, K) with bipolar weights (O, K), bit-serially:
    sum_b 2^b * (2 * popcount(plane_b & w) - popcount(plane_b))."""
    w_words = pack_words(bipolar_to_bits(weights))
    acc = np.zeros((codes.shape[0], weights.shape[0]), dtype=np.int64)
    for b in range(bits):
        plane = pack_words(((codes >> b) & 1).astype(np.uint8))
        pos = _popcount_dot(plane, w_words, "and")
        ones = popcount(plane).sum(axis=-1)[:, None]
        acc += (2 * pos - ones) << b
    return acc


def run_matvec(node: Dense, in_type: TensorType, codes: np.ndarray) -> np.ndarray:
    n = codes.shape[0]
    bound = accumulator_bound(node, in_type)
    if isinstance(node, Conv2D):
        pad_code = 0 if node.pad == "zero" else int(node.pad)
        patches, vmask = im2col(codes, node, pad_code)
        rows = patches.reshape(n * patches.shape[1], -1)
        masked = in_type.encoding == "bipolar" and node.pad == "zero" and vmask.min() == 0
        valid = np.tile(vmask, (n, 1)) if masked else None
    else:
        rows = codes.reshape(n, -1)
        valid = None
    if rows.shape[1] != node.fan_in:
        raise IRError(f"layer {node.name!r}: fan-in {node.fan_in} != input size {rows.shape[1]}")
    if in_type.encoding == "bipolar":
        acc = bipolar_dot(rows.astype(np.uint8), valid, node.weights)
    else:
        acc = unsigned_dot(rows, in_type.bits if in_type.encoding == "uint" else 1,
                           node.weights)
    # the accumulator width is derived from this bound (ir.signed_bits_for); overflow is
    # impossible by construction, and asserted here
    assert np.abs(acc).max(initial=0) <= bound, f"{node.name}: accumulator exceeds {bound}"
    if node.thresholds is not None:
        acc = (acc[:, :, None] >= node.thresholds[None, :, :]).sum(axis=-1)
    return acc.reshape((n,) + node.out.shape)


def run_maxpool(node: MaxPool2D, in_type: TensorType, codes: np.ndarray) -> np.ndarray:
    lo = np.iinfo(np.int64).min
    invert = np.zeros(codes.shape[-1], dtype=bool)
    invert[list(node.min_channels)] = True
    # min over x == -max over -x: pool the negated values of the min channels; padded
    # positions hold the lowest value, so they never win
    out = window_view(np.where(invert, -codes, codes), node, fill=lo).max(axis=3)
    assert (out > lo).all(), f"{node.name}: a window with no valid position"
    return np.where(invert, -out, out)


def window_view(codes: np.ndarray, node: Conv2D | MaxPool2D | MajorityPool2D, fill: int
                ) -> np.ndarray:
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


def run_majority_pool(node: MajorityPool2D, codes: np.ndarray) -> np.ndarray:
    # valid bits count +1 or -1; padded positions (fill 2 -> weight 0) count nothing
    windows = window_view(codes, node, fill=2)
    votes = np.where(windows == 2, 0, 2 * windows - 1).sum(axis=3)
    return (votes >= 0).astype(np.int64)


def run_node(node: Node, in_type: TensorType | None, codes: np.ndarray | None) -> np.ndarray:
    if isinstance(node, Dense):
        return run_matvec(node, in_type, codes)
    if isinstance(node, MaxPool2D):
        return run_maxpool(node, in_type, codes)
    if isinstance(node, MajorityPool2D):
        return run_majority_pool(node, codes)
    if isinstance(node, Reshape):
        return codes.reshape((codes.shape[0],) + node.out.shape)
    raise IRError(f"the reference cannot execute node {node.name!r} ({node.op}); run the "
                  "passes first so that only hardware nodes remain")


def execute(graph: Graph, codes: np.ndarray) -> dict[str, np.ndarray]:
    """Run integer input codes through the graph; returns every node's output codes."""
    values: dict[str, np.ndarray] = {graph.input.name: np.asarray(codes, dtype=np.int64)}
    types = {graph.input.name: graph.input.out}
    for node in graph.nodes[1:]:
        if len(node.inputs) != 1:
            raise IRError(f"the reference has no kernel for node {node.name!r} ({node.op}) "
                          f"with {len(node.inputs)} inputs")
        src = node.inputs[0]
        values[node.name] = run_node(node, types[src], values[src])
        types[node.name] = node.out
    return values


def output_codes_to_float(graph: Graph, codes: np.ndarray) -> np.ndarray:
    """The output node's codes -> the model's float32 outputs.  The last binary layer's
    affine (per channel, or per element of its output) applies also behind a Flatten."""
    node = graph.output
    while isinstance(node, Reshape):
        node = graph.producer(node)
    affine = node.output_affine if isinstance(node, Dense) else None
    if affine is None or graph.output.out.encoding != "int":
        return codes_to_float(graph.output.out, codes)
    scale, offset = (np.asarray(v, np.float64).reshape(-1) for v in affine)
    rows = codes.reshape(len(codes), -1, scale.size)  # channels-last: channel = index % C
    return codes_to_float(graph.output.out, rows, (scale, offset)).reshape(codes.shape)


def run(graph: Graph, x: np.ndarray) -> np.ndarray:
    """Float frames in, float32 model outputs out (batch-first, as Keras returns them)."""
    if not graph.is_hardware():
        raise IRError("the reference runs the hardware IR only; compile the model first")
    codes = quantize_input(graph.input, x)
    values = execute(graph, codes)
    return output_codes_to_float(graph, values[graph.output.name])
