"""FracBNN hardware-IR graphs built directly (no frontend): uint 8 pixels -> thermometer ->
binary conv with 3 thresholds (2-bit codes) -> precision-gated convs -> ... -> binary dense
with an output affine.  Gate thresholds can be set for a target fraction of groups gated on,
measured on given inputs (``set_gate_density``).  Shared by the tests and bench/fracbnn.py."""

from __future__ import annotations

import numpy as np

from bnn2fpga import reference
from bnn2fpga.ir import (
    Conv2D,
    Dense,
    Graph,
    Input,
    PGConv2D,
    Reshape,
    TensorType,
    ThermometerEncode,
    conv_out_size,
    same_pads,
    signed_bits_for,
)
from bnn2fpga.ops import pgconv2d as pg
from bnn2fpga.testing import random_weights


def thermometer_thresholds(levels: int) -> np.ndarray:
    """Ascending pixel thresholds of ``levels`` evenly spaced levels (bit k = [p >= T_k])."""
    return np.array([int(round((k + 0.5) * 256 / levels)) for k in range(levels)], np.int64)


def _geometry(h: int, w: int, k: int, stride: int, padding: str
              ) -> tuple[tuple[int, int, int, int], int, int]:
    if padding == "same":
        (pt, pb), (pl, pr) = same_pads(h, k, stride), same_pads(w, k, stride)
    else:
        pt = pb = pl = pr = 0
    return (pt, pb, pl, pr), conv_out_size(h, k, stride, pt, pb), conv_out_size(w, k, stride,
                                                                                pl, pr)


def _spread_thresholds(rng: np.random.Generator, out_ch: int, n: int, scale: float
                       ) -> np.ndarray:
    """n ascending thresholds per channel around 0 (spread ``scale``): codes of every value."""
    t = np.round(rng.normal(0.0, scale, (out_ch, n))).astype(np.int64)
    return np.sort(t, axis=1)


def pg_conv(rng: np.random.Generator, name: str, src: str, in_shape: tuple[int, int, int],
            out_ch: int, *, k: int = 3, stride: int = 1, padding: str = "same", pe: int = 1,
            simd: int = 1, nt: int = 3) -> PGConv2D:
    """A random PGConv2D on a (H, W, C) 2-bit input: ``nt`` thresholds (3: 2-bit codes for
    the next PG layer; 1: bipolar; 0: the accumulator with an output affine); every gate on
    until ``set_gate_density``."""
    h, w, c = in_shape
    pads, oh, ow = _geometry(h, w, k, stride, padding)
    fan_in = k * k * c
    node = PGConv2D(name, [src], TensorType((oh, ow, out_ch), "uint", 2),
                    weights=random_weights(rng, out_ch, fan_in), kernel=(k, k),
                    stride=(stride, stride), pads=pads, pad="zero", pe=pe, simd=simd,
                    acc_bits=signed_bits_for(pg.accumulator_bound_of(fan_in) + 1),
                    gate_thresholds=np.full(out_ch, -fan_in, np.int64))
    scale = max(1.0, np.sqrt(3.0 * fan_in))
    if nt == 3:
        node.thresholds = _spread_thresholds(rng, out_ch, 3, scale)
    elif nt == 1:
        node.thresholds = _spread_thresholds(rng, out_ch, 1, scale)
        node.out = TensorType((oh, ow, out_ch), "bipolar")
    else:
        node.out = TensorType((oh, ow, out_ch), "int", node.acc_bits)
        node.output_affine = (np.full(out_ch, 1.0 / 3.0), np.zeros(out_ch))
    return node


def fracbnn_chain(rng: np.random.Generator, *, h: int = 6, w: int = 6, levels: int = 8,
                  first: tuple[int, int, int] = (8, 2, 4),
                  pgs: tuple[dict, ...] = (dict(out_ch=6, pe=2, simd=4),),
                  dense: tuple[int, int, int] | None = (5, 1, 2),
                  name: str = "fracbnn_chain") -> Graph:
    """uint 8 (H, W, 3) -> ThermometerEncode(levels) -> binary 3x3 'same' conv with 3
    thresholds (``first`` = (out_ch, pe, simd)) -> the PGConv2D layers ``pgs`` (kwargs of
    ``pg_conv``) -> [flatten -> binary dense with an output affine (``dense`` = (out, pe,
    simd)), after a PG layer with 1 threshold]."""
    inp = Input("input", [], TensorType((h, w, 3), "uint", 8, 1.0))
    levels_t = thermometer_thresholds(levels)
    therm = ThermometerEncode("thermometer", ["input"], TensorType((h, w, 3 * levels),
                                                                   "bipolar"),
                              thresholds=levels_t)
    oc, pe, simd = first
    pads, oh, ow = _geometry(h, w, 3, 1, "same")
    fan_in = 9 * 3 * levels
    conv = Conv2D("conv0", ["thermometer"], TensorType((oh, ow, oc), "uint", 2),
                  weights=random_weights(rng, oc, fan_in), kernel=(3, 3), pads=pads,
                  pad="zero", pe=pe, simd=simd, acc_bits=signed_bits_for(fan_in + 1),
                  thresholds=_spread_thresholds(rng, oc, 3, np.sqrt(fan_in)))
    nodes = [inp, therm, conv]
    for i, kw in enumerate(pgs):
        src = nodes[-1]
        nodes.append(pg_conv(rng, f"pg{i + 1}", src.name, src.out.shape, **kw))
    if dense is not None:
        src = nodes[-1]
        flat = Reshape("flatten", [src.name], src.out.with_shape((src.out.size,)))
        out, pe, simd = dense
        d = Dense("fc", ["flatten"], TensorType((out,), "int", 2),
                  weights=random_weights(rng, out, src.out.size), pe=pe, simd=simd,
                  acc_bits=signed_bits_for(src.out.size + 1))
        d.out = TensorType((out,), "int", d.acc_bits)
        d.output_affine = (np.full(out, 0.5), np.arange(out, dtype=np.float64))
        nodes += [flat, d]
    return Graph(name, nodes)


def random_pixels(rng: np.random.Generator, graph: Graph, frames: int) -> np.ndarray:
    return rng.integers(0, 256, (frames,) + graph.input.out.shape).astype(np.int64)


def pg_nodes(graph: Graph) -> list[PGConv2D]:
    return [n for n in graph.nodes if isinstance(n, PGConv2D)]


def measured_density(graph: Graph, node: PGConv2D, codes: np.ndarray) -> float:
    """Fraction of ``node``'s groups (pixel x PE lanes) gated on over the frames ``codes``."""
    src = reference.execute(graph, codes)[node.inputs[0]]
    _, g = pg.accumulators(node, src)
    return pg.group_density(node, g)


def set_gate_density(graph: Graph, node: PGConv2D, codes: np.ndarray, target: float
                     ) -> float:
    """Give every channel of ``node`` one gate threshold such that the fraction of groups
    gated on over ``codes`` is as close to ``target`` as it gets; sets and returns the
    measured ``gate_density``."""
    src = reference.execute(graph, codes)[node.inputs[0]]
    m_sum, _ = pg.plane_sums(node, src)
    best = None
    for t in range(-node.fan_in, node.fan_in + 2):
        g = (m_sum >= t).astype(np.int64)
        d = pg.group_density(node, g)
        if best is None or abs(d - target) < abs(best[1] - target):
            best = (t, d)
    assert best is not None
    node.gate_thresholds = np.full(node.out_channels, best[0], np.int64)
    node.gate_density = best[1]
    return best[1]


def measure_densities(graph: Graph, codes: np.ndarray) -> dict[str, float]:
    """Set every PG layer's ``gate_density`` to the one measured on ``codes``."""
    out = {}
    for n in pg_nodes(graph):
        n.gate_density = measured_density(graph, n, codes)
        out[n.name] = n.gate_density
    return out
