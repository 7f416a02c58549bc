"""Random hardware-IR graphs for tests and benchmarks (shared by every backend's tests)."""

from __future__ import annotations

import numpy as np

from bnn2fpga.ir import (
    Conv2D,
    Dense,
    Graph,
    Input,
    MaxPool2D,
    Reshape,
    TensorType,
    conv_out_size,
    same_pads,
    signed_bits_for,
)
from bnn2fpga.reference import accumulator_bound


def random_weights(rng: np.random.Generator, out_ch: int, fan_in: int) -> np.ndarray:
    return (2 * rng.integers(0, 2, (out_ch, fan_in)) - 1).astype(np.int8)


def random_thresholds(rng: np.random.Generator, out_ch: int, bound: int, n: int = 1
                      ) -> np.ndarray:
    """Thresholds spread over the reachable range, including the always/never extremes."""
    t = rng.integers(-bound, bound + 2, (out_ch, n))
    if out_ch >= 3:
        t[0, :] = -bound      # always on
        t[1, :] = bound + 1   # never on
    return np.sort(t, axis=1).astype(np.int64)


def input_node(shape: tuple[int, ...], encoding: str, bits: int = 1) -> Input:
    if encoding == "bipolar":
        return Input("input", [], TensorType(shape, "bipolar"))
    return Input("input", [], TensorType(shape, "uint", bits, 1.0))


def finish_matvec(node: Dense, in_type: TensorType, rng: np.random.Generator,
                  output: str, out_shape: tuple[int, ...]) -> Dense:
    bound = accumulator_bound(node, in_type)
    node.acc_bits = signed_bits_for(bound + 1)
    if output == "threshold":
        node.thresholds = random_thresholds(rng, node.out_channels, bound)
        node.out = TensorType(out_shape, "bipolar")
    else:
        node.out = TensorType(out_shape, "int", node.acc_bits)
        node.output_affine = (np.ones(node.out_channels), np.zeros(node.out_channels))
    return node


def random_conv_graph(rng: np.random.Generator, *, h: int = 6, w: int = 6, c: int = 4,
                      out_ch: int = 4, k: int = 3, stride: int = 1, padding: str = "same",
                      pad: str | int = "zero", encoding: str = "bipolar", bits: int = 1,
                      pe: int = 1, simd: int = 1, output: str = "threshold",
                      pool: bool = False) -> Graph:
    """Input -> Conv2D (-> MaxPool2D 2x2) as a hardware graph."""
    inp = input_node((h, w, c), encoding, bits)
    if padding == "same":
        (pt, pb), (pl, pr) = same_pads(h, k, stride), same_pads(w, k, stride)
    else:
        pt = pb = pl = pr = 0
    oh, ow = conv_out_size(h, k, stride, pt, pb), conv_out_size(w, k, stride, pl, pr)
    conv = Conv2D("conv", ["input"], TensorType((oh, ow, out_ch), "int", 2),
                  weights=random_weights(rng, out_ch, k * k * c), kernel=(k, k),
                  stride=(stride, stride), pads=(pt, pb, pl, pr), pad=pad, pe=pe, simd=simd)
    finish_matvec(conv, inp.out, rng, output, (oh, ow, out_ch))
    nodes = [inp, conv]
    if pool:
        ph, pw = oh // 2, ow // 2
        mins = tuple(int(i) for i in np.flatnonzero(rng.integers(0, 2, out_ch)))
        nodes.append(MaxPool2D("pool", ["conv"], conv.out.with_shape((ph, pw, out_ch)),
                               kernel=(2, 2), stride=(2, 2), min_channels=mins))
    return Graph("random_conv", nodes)


def random_dense_graph(rng: np.random.Generator, *, fan_in: int = 40, out_ch: int = 8,
                       encoding: str = "bipolar", bits: int = 1, pe: int = 1, simd: int = 1,
                       output: str = "threshold") -> Graph:
    """Input -> Dense as a hardware graph."""
    inp = input_node((fan_in,), encoding, bits)
    dense = Dense("dense", ["input"], TensorType((out_ch,), "int", 2),
                  weights=random_weights(rng, out_ch, fan_in), pe=pe, simd=simd)
    finish_matvec(dense, inp.out, rng, output, (out_ch,))
    return Graph("random_dense", [inp, dense])


def random_cnn_graph(rng: np.random.Generator, *, h: int = 8, w: int = 8, c: int = 1,
                     bits: int = 4) -> Graph:
    """A small complete network: uint input -> conv -> pool -> conv(stride 2) -> flatten ->
    dense (accumulator output).  Exercises every hardware node type together."""
    g = random_conv_graph(rng, h=h, w=w, c=c, out_ch=6, k=3, encoding="uint", bits=bits,
                          pool=True, pe=2, simd=1)
    pool = g.nodes[-1]
    ph, pw, pc = pool.out.shape
    (pt, pb), (pl, pr) = same_pads(ph, 3, 2), same_pads(pw, 3, 2)
    oh, ow = conv_out_size(ph, 3, 2, pt, pb), conv_out_size(pw, 3, 2, pl, pr)
    conv2 = Conv2D("conv2", [pool.name], TensorType((oh, ow, 5), "int", 2),
                   weights=random_weights(rng, 5, 9 * pc), kernel=(3, 3), stride=(2, 2),
                   pads=(pt, pb, pl, pr), pad="zero", pe=5, simd=3)
    finish_matvec(conv2, pool.out, rng, "threshold", (oh, ow, 5))
    flat = Reshape("flatten", ["conv2"], conv2.out.with_shape((oh * ow * 5,)))
    dense = Dense("dense", ["flatten"], TensorType((10,), "int", 2),
                  weights=random_weights(rng, 10, oh * ow * 5), pe=2, simd=oh * ow * 5)
    finish_matvec(dense, flat.out, rng, "accumulator", (10,))
    g.nodes += [conv2, flat, dense]
    g.name = "random_cnn"
    return g


def random_geometry_conv_graph(rng: np.random.Generator) -> Graph:
    """A conv of any geometry: kernel 1..4 and stride 1..3 per axis, asymmetric pads up to the
    kernel size (windows made only of padding included), any folding, encoding and pad value,
    one or two thresholds or the accumulator."""
    h, w = (int(v) for v in rng.integers(1, 9, 2))
    kh, kw = (int(v) for v in rng.integers(1, 5, 2))
    sh, sw = (int(v) for v in rng.integers(1, 4, 2))
    pt, pb = (int(v) for v in rng.integers(0, kh + 1, 2))
    pl, pr = (int(v) for v in rng.integers(0, kw + 1, 2))
    pb, pr = max(pb, kh - h - pt), max(pr, kw - w - pl)  # at least one output pixel
    c, out_ch = int(rng.choice([1, 2, 3, 4, 6])), int(rng.choice([1, 2, 3, 5, 8]))
    encoding = str(rng.choice(["bipolar", "uint"]))
    bits = 1 if encoding == "bipolar" else int(rng.integers(1, 5))
    pad = rng.choice(["zero", 0, 1 if encoding == "bipolar" else (1 << bits) - 1])
    pe = int(rng.choice([d for d in range(1, out_ch + 1) if out_ch % d == 0]))
    simd = int(rng.choice([d for d in range(1, c + 1) if c % d == 0]))
    inp = input_node((h, w, c), encoding, bits)
    oh, ow = conv_out_size(h, kh, sh, pt, pb), conv_out_size(w, kw, sw, pl, pr)
    conv = Conv2D("conv", ["input"], TensorType((oh, ow, out_ch), "int", 2),
                  weights=random_weights(rng, out_ch, kh * kw * c), kernel=(kh, kw),
                  stride=(sh, sw), pads=(pt, pb, pl, pr),
                  pad="zero" if pad == "zero" else int(pad), pe=pe, simd=simd)
    output = str(rng.choice(["threshold", "accumulator"]))
    finish_matvec(conv, inp.out, rng, output, (oh, ow, out_ch))
    if output == "threshold" and rng.integers(0, 2):
        conv.thresholds = random_thresholds(rng, out_ch, conv.fan_in, n=2)
        conv.out = TensorType(conv.out.shape, "uint", 2)
    return Graph("fuzz_conv", [inp, conv])


def random_input_codes(rng: np.random.Generator, graph: Graph, frames: int) -> np.ndarray:
    t = graph.input.out
    top = 2 if t.encoding == "bipolar" else (1 << t.bits)
    return rng.integers(0, top, (frames,) + t.shape).astype(np.int64)
