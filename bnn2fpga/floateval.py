"""Float evaluation of a float-stage graph (what the Keras model computes), in numpy float64.

The compiler runs the frontend's graph on calibration frames to measure each real-valued
tensor's range (``passes.formats``) and, after lowering, to measure how often the
fixed-point design's binarisations differ from the float model's.  Sign nodes use the
model's own quantizer where the frontend attached it (``Sign.evaluate``), so ties are
decided as in Keras; everything else is the layer's formula in float64.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bnn2fpga.ir import (
    Add,
    AvgPool2D,
    BatchNorm,
    ChannelAffine,
    Concat,
    Conv2D,
    Dense,
    FloatConv2D,
    FloatDense,
    FloatPGConv2D,
    FloatPReLU,
    GlobalAvgPool,
    Graph,
    Input,
    IRError,
    MaxPool2D,
    Node,
    Quantize,
    Reshape,
    Sign,
    ThermometerEncode,
)

Kernel = Callable[[Node, list[np.ndarray]], np.ndarray]


def float_windows(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
                  pads: tuple[int, int, int, int], out_hw: tuple[int, int],
                  fill: float) -> np.ndarray:
    """(N, OH, OW, KH*KW, C) windows of float values; padded positions hold ``fill``."""
    n, h, w, c = x.shape
    (kh, kw), (sh, sw) = kernel, stride
    top, bottom, left, right = pads
    oh, ow = out_hw
    padded = np.full((n, h + top + bottom, w + left + right, c), fill, dtype=np.float64)
    padded[:, top:top + h, left:left + w, :] = x
    taps = [padded[:, ky:ky + sh * (oh - 1) + 1:sh, kx:kx + sw * (ow - 1) + 1:sw, :]
            for ky in range(kh) for kx in range(kw)]
    return np.stack(taps, axis=3)


def _matvec(node: Node, x: np.ndarray, weights: np.ndarray, kernel: tuple[int, int],
            stride: tuple[int, int], pads: tuple[int, int, int, int], fill: float,
            conv: bool) -> np.ndarray:
    w = np.asarray(weights, np.float64)
    n = len(x)
    if not conv:
        return x.reshape(n, -1) @ w.T
    oh, ow = node.out.shape[0], node.out.shape[1]
    patches = float_windows(x, kernel, stride, pads, (oh, ow), fill).reshape(n, oh, ow, -1)
    return patches @ w.T


def _binary_matvec(node: Dense, ins: list[np.ndarray]) -> np.ndarray:
    if isinstance(node, Conv2D):
        fill = 0.0 if node.pad == "zero" else float(node.pad)
        return _matvec(node, ins[0], node.weights, node.kernel, node.stride, node.pads, fill,
                       conv=True)
    return _matvec(node, ins[0], node.weights, (1, 1), (1, 1), (0, 0, 0, 0), 0.0, conv=False)


def _float_matvec(node: FloatDense, ins: list[np.ndarray]) -> np.ndarray:
    conv = isinstance(node, FloatConv2D)
    y = _matvec(node, ins[0], node.kernel,
                node.kernel_size if conv else (1, 1), node.stride if conv else (1, 1),
                node.pads if conv else (0, 0, 0, 0), 0.0, conv)
    return y if node.bias is None else y + np.asarray(node.bias, np.float64)


def _channel_affine(node: ChannelAffine, ins: list[np.ndarray]) -> np.ndarray:
    y = ins[0]
    if node.mul is not None:
        y = y * np.asarray(node.mul, np.float64)
    if node.add is not None:
        y = y + np.asarray(node.add, np.float64)
    return y


def _batchnorm(node: BatchNorm, ins: list[np.ndarray]) -> np.ndarray:
    s, t = node.scale_shift()
    return ins[0] * s + t


def _prelu(node: FloatPReLU, ins: list[np.ndarray]) -> np.ndarray:
    u = ins[0] + np.asarray(node.shift_in, np.float64)
    return np.where(u >= 0, u, np.asarray(node.slope, np.float64) * u) + \
        np.asarray(node.shift_out, np.float64)


def _avgpool(node: AvgPool2D, ins: list[np.ndarray]) -> np.ndarray:
    oh, ow = node.out.shape[0], node.out.shape[1]
    x = ins[0]
    sums = float_windows(x, node.kernel, node.stride, node.pads, (oh, ow), 0.0).sum(axis=3)
    count = float_windows(np.ones((1,) + x.shape[1:]), node.kernel, node.stride, node.pads,
                          (oh, ow), 0.0).sum(axis=3)
    return sums / count


def _maxpool(node: MaxPool2D, ins: list[np.ndarray]) -> np.ndarray:
    oh, ow = node.out.shape[0], node.out.shape[1]
    return float_windows(ins[0], node.kernel, node.stride, node.pads, (oh, ow),
                         -np.inf).max(axis=3)


def _sign(node: Sign, ins: list[np.ndarray]) -> np.ndarray:
    x = ins[0]
    if node.evaluate is not None:
        flat = x.reshape(-1, x.shape[-1]).astype(np.float32)
        bits = np.asarray(node.evaluate(flat)).reshape(x.shape) > 0
    else:
        bits = x >= 0
    return np.where(bits, 1.0, -1.0)


def _thermometer(node: ThermometerEncode, ins: list[np.ndarray]) -> np.ndarray:
    """Pixels / 255 -> +-1 bits [p >= T[k]], p = rint(255 x) (the input is on that grid)."""
    p = np.rint(ins[0] * 255.0)
    bits = p[..., None] >= node.thresholds
    return np.where(bits, 1.0, -1.0).reshape(p.shape[:-1] + (-1,))


def _pgconv2d(node: FloatPGConv2D, ins: list[np.ndarray]) -> np.ndarray:
    """The Keras layer itself (its quantizer, gate and float32 output)."""
    import tensorflow as tf

    return np.asarray(node.layer(tf.constant(ins[0].astype(np.float32))), np.float64)


def _quantize(node: Quantize, ins: list[np.ndarray]) -> np.ndarray:
    """The model's own multi-bit quantizer (QKeras, Larq DoReFa) in float32."""
    if node.evaluate is None:
        raise IRError(f"node {node.name!r} (quantize) has no evaluator (loaded from JSON?)")
    x = ins[0]
    flat = x.reshape(-1, x.shape[-1]).astype(np.float32)
    return np.asarray(node.evaluate(flat), np.float64).reshape(x.shape)


KERNELS: dict[type[Node], Kernel] = {
    Dense: _binary_matvec,
    Conv2D: _binary_matvec,
    FloatDense: _float_matvec,
    FloatConv2D: _float_matvec,
    ChannelAffine: _channel_affine,
    BatchNorm: _batchnorm,
    FloatPReLU: _prelu,
    AvgPool2D: _avgpool,
    MaxPool2D: _maxpool,
    GlobalAvgPool: lambda node, ins: ins[0].mean(axis=(1, 2)),
    Sign: _sign,
    Quantize: _quantize,
    ThermometerEncode: _thermometer,
    FloatPGConv2D: _pgconv2d,
    Reshape: lambda node, ins: ins[0].reshape((len(ins[0]),) + node.out.shape),
    Add: lambda node, ins: np.sum(ins, axis=0),
    Concat: lambda node, ins: np.concatenate(ins, axis=-1),
}


def evaluate_float(graph: Graph, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every node's float64 output on float frames ``x`` (N, *input shape), for a
    float-stage graph as the frontend produced it (before the passes)."""
    x = np.asarray(x, np.float64)
    inp = graph.input
    if x.shape[1:] != inp.out.shape:
        raise IRError(f"calibration frames have shape {x.shape[1:]}, the model's input is "
                      f"{inp.out.shape}")
    if inp.out.encoding == "uint" and inp.quantizer is not None:  # the model's quantizer
        from bnn2fpga.reference import quantize_input

        x = inp.out.offset + inp.out.scale * quantize_input(inp, x).astype(np.float64)
    values: dict[str, np.ndarray] = {}
    for node in graph.nodes:
        if isinstance(node, Input):
            values[node.name] = x
            continue
        kernel = KERNELS.get(type(node))
        if kernel is None:
            raise IRError(f"node {node.name!r} ({node.op}) has no float evaluator")
        values[node.name] = kernel(node, [values[i] for i in node.inputs])
    return values


def softmax(z: np.ndarray) -> np.ndarray:
    """Softmax over the last axis (the host's final step where the model ends in one)."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
