"""Random DAGs of the hardware IR with real-valued paths (issue 12), for property tests and
``bench/random_graphs.py``.

``random_dag(rng)`` builds a valid hardware graph (it passes ``check_hardware_graph``):

* a ``uint`` or ``fixed`` input (H, W, C);
* blocks on the current real tensor: FixedAffine chains (random signed multipliers, negative
  slopes, offsets, shifts; narrow outputs so that some values saturate), multi-bit and
  binary-weight convolutions with ``int`` accumulators, Threshold -> bipolar -> binary
  convolutions, residual blocks (a fork; an Add of two inputs in different formats:
  different bits/frac, ``int`` + ``fixed``; sometimes a second Add reading the forked
  tensor a third time), Concat blocks (inputs aligned to one type);
* a tail: global FixedAvgPool (or Threshold -> Flatten) and a final Dense with an output
  affine (multi-bit weights on a real input, binary weights on bits);
* random legal foldings (PE/SIMD divisors) on every unit.

``windowed=True`` also places windowed FixedAvgPools (a sliding window + average-pool
reducer in hardware).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from bnn2fpga.ir import (
    Add,
    Concat,
    Conv2D,
    Dense,
    FixedAffine,
    FixedAvgPool,
    Graph,
    Input,
    Node,
    Reshape,
    TensorType,
    Threshold,
    conv_out_size,
    same_pads,
    signed_bits_for,
)
from bnn2fpga.ops import divisors
from bnn2fpga.ops.dense import accumulator_bound, simd_limit
from bnn2fpga.passes.io import assign_accumulator_widths
from bnn2fpga.passes.structure import check_hardware_graph, propagate_types


@dataclass
class _Dag:
    rng: np.random.Generator
    windowed: bool = False
    nodes: list[Node] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    features: set[str] = field(default_factory=set)

    # ---- helpers ----------------------------------------------------------------------

    def coin(self, p: float = 0.5) -> bool:
        return bool(self.rng.random() < p)

    def pick(self, options: list) -> int:
        return options[int(self.rng.integers(0, len(options)))]

    def name(self, prefix: str) -> str:
        k = self.counts.get(prefix, 0)
        self.counts[prefix] = k + 1
        return f"{prefix}{k}"

    def add(self, node: Node) -> Node:
        self.nodes.append(node)
        return node

    def lanes(self, channels: int) -> int:
        return self.pick(divisors(channels))

    def fixed_format(self, shape: tuple[int, ...], lo: int = 4, hi: int = 10) -> TensorType:
        bits = int(self.rng.integers(lo, hi + 1))
        frac = int(self.rng.integers(0, min(bits - 1, 5) + 1))
        return TensorType.fixed(shape, bits, frac)

    # ---- single-input ops -------------------------------------------------------------

    def affine(self, src: Node, out: TensorType | None = None) -> Node:
        """Per-channel u = x + add_in, p = u * (mul_pos | mul_neg) + add_out, y =
        saturate(round_shift(p, shift)): signed multipliers (some slopes negative), the
        shift chosen so that the largest product lands 0.5-4x the output range (so some
        values saturate, most do not)."""
        t = src.out
        c = t.channels
        out = out or self.fixed_format(t.shape)
        mul_bits = int(self.rng.integers(2, 11))
        lim = 1 << (mul_bits - 1)
        mul_pos = self.rng.integers(-lim, lim, c).astype(np.int64)
        mul_neg = self.rng.integers(-lim, lim, c).astype(np.int64)
        if c > 1 and self.coin(0.5):
            mul_neg[1] = 0                                   # ReLU
        if self.coin(0.5):
            mul_pos[0], mul_neg[0] = lim - 1, -lim           # the extremes
        if np.any(mul_neg < 0) or np.any(mul_pos < 0):
            self.features.add("negative slope")
        lo, hi = t.code_range()
        add_in = self.rng.integers(lo // 4, hi // 4 + 1, c).astype(np.int64)
        u_abs = max(abs(lo) + int(np.abs(add_in).max()), 1)
        out_hi = out.code_range()[1]
        target = out_hi * float(self.rng.uniform(0.5, 4.0))
        shift = max(0, round(math.log2(max(u_abs * lim / target, 1.0))))
        span = max(1, out_hi << shift)
        add_out = self.rng.integers(-span // 4, span // 4 + 1, c).astype(np.int64)
        self.features.add("affine")
        return self.add(FixedAffine(self.name("aff"), [src.name], out, mul_pos=mul_pos,
                                    mul_neg=mul_neg, add_in=add_in, add_out=add_out,
                                    shift=shift, mul_bits=mul_bits, pe=self.lanes(c)))

    def threshold(self, src: Node, n: int = 1) -> Node:
        """Thresholds on a real tensor (negated channels included), within the central part
        of its code range (where accumulators and sums mostly lie)."""
        t = src.out
        c = t.channels
        lo, hi = t.code_range()
        th = np.sort(self.rng.integers(lo // 8 - 1, hi // 8 + 2, (c, n)), axis=1)
        if c >= 3 and self.coin(0.3):
            th[0, :], th[1, :] = lo, hi + 1                  # always on, never on
        neg = tuple(int(i) for i in np.flatnonzero(self.rng.integers(0, 2, c)))
        out = (TensorType(t.shape, "bipolar") if n == 1
               else TensorType(t.shape, "uint", max(1, n.bit_length())))
        self.features.add("threshold")
        return self.add(Threshold(self.name("thr"), [src.name], out,
                                  thresholds=th.astype(np.int64), negate_channels=neg,
                                  pe=self.lanes(c)))

    def conv(self, src: Node, out_ch: int, *, k: int = 3, weight_bits: int = 1,
             valid: bool = False, thresholds: bool = False) -> Node:
        """A Conv2D (stride 1, 'same' or 'valid'), weights of ``weight_bits`` (1: +-1),
        the int accumulator out (thresholds: a bipolar output)."""
        h, w, c = src.out.shape
        if valid:
            pt = pb = pl = pr = 0
        else:
            (pt, pb), (pl, pr) = same_pads(h, k, 1), same_pads(w, k, 1)
        oh, ow = conv_out_size(h, k, 1, pt, pb), conv_out_size(w, k, 1, pl, pr)
        fan_in = k * k * c
        if weight_bits == 1:
            weights = (2 * self.rng.integers(0, 2, (out_ch, fan_in)) - 1).astype(np.int8)
        else:
            lim = 1 << (weight_bits - 1)
            weights = self.rng.integers(-lim, lim, (out_ch, fan_in)).astype(np.int64)
            self.features.add("multi-bit conv")
        if src.out.is_signed:
            self.features.add("real-input conv")
        node = Conv2D(self.name("conv"), [src.name], TensorType((oh, ow, out_ch), "int", 2),
                      weights=weights, weight_bits=weight_bits, kernel=(k, k), stride=(1, 1),
                      pads=(pt, pb, pl, pr), pad="zero")
        return self.add(self.finish_matvec(node, src.out, thresholds))

    def finish_matvec(self, node: Dense, in_type: TensorType, thresholds: bool) -> Dense:
        bound = accumulator_bound(node, in_type)
        node.acc_bits = signed_bits_for(bound + 1)
        shape = node.out.shape
        if thresholds:
            spread = max(1, int(math.sqrt(node.fan_in)) * max(1, bound // node.fan_in))
            t = self.rng.integers(-spread, spread + 1, (node.out_channels, 1))
            node.thresholds = np.clip(t, -bound, bound + 1).astype(np.int64)
            node.out = TensorType(shape, "bipolar")
        else:
            node.out = TensorType(shape, "int", node.acc_bits)
            node.output_affine = (np.ones(node.out_channels), np.zeros(node.out_channels))
        node.pe = self.lanes(node.out_channels)
        node.simd = self.pick(divisors(simd_limit(node)))
        return node

    def binary_path(self, src: Node, out_ch: int) -> Node:
        """Threshold to bipolar, one or two binary convs (bipolar between), the int
        accumulator out."""
        x = self.threshold(src)
        if self.coin(0.4):
            x = self.conv(x, self.pick([2, 3, 4]), k=self.pick([1, 3]), thresholds=True)
        self.features.add("binary conv")
        return self.conv(x, out_ch, k=self.pick([1, 3]))

    def branch_op(self, src: Node, out_ch: int) -> Node:
        """One op from a real tensor to a real tensor of ``out_ch`` channels, same H, W."""
        kind = self.pick(["affine", "conv", "binary"] if out_ch == src.out.channels
                         else ["conv", "binary"])
        if kind == "affine":
            return self.affine(src)
        if kind == "conv":
            return self.conv(src, out_ch, k=self.pick([1, 3]), weight_bits=self.pick([1, 2, 4]))
        return self.binary_path(src, out_ch)

    # ---- blocks -----------------------------------------------------------------------

    def residual(self, x: Node) -> Node:
        """A fork of x: long branch of 1-2 ops, short branch x itself or an affine of it,
        joined by an Add into a random (often narrower) format; sometimes a second Add
        reads x again (three reads: a tree of forks)."""
        c = x.out.channels
        long = x
        for _ in range(int(self.rng.integers(1, 3))):
            long = self.branch_op(long, c)
        short = x if self.coin(0.5) else self.affine(x)
        out = self.add_node([long, short])
        if self.coin(0.3):
            out = self.add_node([out, x])
        return out

    def add_node(self, srcs: list[Node]) -> Node:
        from bnn2fpga.ops.realvalued import frac_of

        ins = [s.out for s in srcs]
        top = max(frac_of(t) for t in ins)
        width = max(t.bits + top - frac_of(t) for t in ins) + 1
        if len({(t.encoding, t.bits, frac_of(t)) for t in ins}) > 1:
            self.features.add("add of different formats")
        if {t.encoding for t in ins} == {"int", "fixed"}:
            self.features.add("add int + fixed")
        if srcs[0] is srcs[1]:
            self.features.add("add x + x")
        frac = int(self.rng.integers(max(0, top - 3), top + 2))
        bits = int(np.clip(width - (top - frac) - int(self.rng.integers(0, 4)), frac + 1, 24))
        bits = max(bits, 2, frac + 1)
        out = TensorType.fixed(ins[0].shape, bits, frac)
        self.features.add("add")
        return self.add(Add(self.name("add"), [s.name for s in srcs], out,
                            pe=self.lanes(ins[0].channels)))

    def concat(self, x: Node) -> Node:
        """A fork of x into two branches whose channels are concatenated: both brought to
        one fixed format by an affine each (or x kept, the other branch aligned to it)."""
        c = x.out.channels
        a = self.branch_op(x, self.pick([c, 2, 3]))
        b = x if self.coin(0.4) and x.out.encoding == "fixed" else \
            self.branch_op(x, self.pick([c, 2]))
        fmt = b.out if b is x else self.fixed_format(x.out.shape[:-1] + (1,))
        parts = []
        for s in (a, b):
            if s.out.encoding == "fixed" and (s.out.bits, s.out.frac) == (fmt.bits, fmt.frac):
                parts.append(s)
            else:
                parts.append(self.affine(s, fmt.with_shape(s.out.shape)))
        shape = x.out.shape[:-1] + (sum(p.out.channels for p in parts),)
        self.features.add("concat")
        return self.add(Concat(self.name("cat"), [p.name for p in parts],
                               fmt.with_shape(shape)))

    def windowed_pool(self, x: Node) -> Node:
        h, w, c = x.out.shape
        k = self.pick([2, 3] if min(h, w) >= 3 else [2])
        s = self.pick([1, 2])
        shape = (conv_out_size(h, k, s, 0, 0), conv_out_size(w, k, s, 0, 0), c)
        shift = int(self.rng.integers(2, 9))
        mul = max(1, round((1 << shift) / (k * k) * float(self.rng.uniform(0.7, 2.0))))
        self.features.add("windowed avgpool")
        return self.add(FixedAvgPool(self.name("pool"), [x.name],
                                     TensorType.fixed(shape, x.out.bits, 0), kernel=(k, k),
                                     stride=(s, s), mul=mul, shift=shift))

    def block(self, x: Node) -> Node:
        kinds = ["affine", "conv", "binary", "residual", "residual", "concat"]
        h, w, _ = x.out.shape
        if self.windowed and min(h, w) >= 3:
            kinds.append("pool")
        kind = self.pick(kinds)
        if kind == "affine":
            return self.affine(x)
        if kind == "conv":
            valid = min(h, w) >= 4 and self.coin(0.3)
            return self.conv(x, self.pick([2, 3, 4, 6]), k=3 if valid else self.pick([1, 3]),
                             weight_bits=self.pick([1, 3, 6]), valid=valid)
        if kind == "binary":
            return self.binary_path(x, self.pick([2, 4]))
        if kind == "residual":
            return self.residual(x)
        if kind == "concat":
            return self.concat(x)
        return self.windowed_pool(x)

    def tail(self, x: Node) -> Node:
        """Global average pool then a multi-bit Dense, or Threshold -> Flatten -> binary
        Dense; the final accumulator with a (float) output affine."""
        h, w, c = x.out.shape
        out_ch = self.pick([2, 3, 4, 5])
        if self.coin(0.6):
            shift = int(self.rng.integers(0, 10))
            mul = max(1, round((1 << shift) / (h * w) * float(self.rng.uniform(0.7, 3.0))))
            x = self.add(FixedAvgPool(self.name("gap"), [x.name],
                                      self.fixed_format((c,), 4, 9), kernel=(h, w),
                                      stride=(1, 1), mul=mul, shift=shift, global_pool=True))
            self.features.add("global avgpool")
            if self.coin(0.4):
                x = self.affine(x)
            weight_bits = self.pick([2, 4, 8])
            lim = 1 << (weight_bits - 1)
            weights = self.rng.integers(-lim, lim, (out_ch, c)).astype(np.int64)
            self.features.add("multi-bit dense")
        else:
            x = self.threshold(x)
            x = self.add(Reshape(self.name("flat"), [x.name], x.out.with_shape((x.out.size,))))
            weight_bits = 1
            weights = (2 * self.rng.integers(0, 2, (out_ch, x.out.size)) - 1).astype(np.int8)
            self.features.add("binary dense")
        fc = Dense("fc", [x.name], TensorType((out_ch,), "int", 2), weights=weights,
                   weight_bits=weight_bits)
        self.finish_matvec(fc, x.out, thresholds=False)
        fc.output_affine = (self.rng.normal(size=out_ch), self.rng.normal(size=out_ch))
        return self.add(fc)


def random_dag(rng: np.random.Generator, *, blocks: tuple[int, int] = (2, 4),
               windowed: bool = False, name: str = "random_dag") -> Graph:
    """A random valid hardware graph (see the module docstring); ``graph.meta["features"]``
    lists what it contains."""
    d = _Dag(rng, windowed)
    h, w = (int(v) for v in rng.integers(3, 6, 2))
    c = d.pick([2, 3, 4])
    if d.coin(0.5):
        inp = Input("input", [], TensorType((h, w, c), "uint", int(rng.integers(2, 5)), 1.0))
        d.features.add("uint input")
    else:
        inp = Input("input", [], d.fixed_format((h, w, c), 5, 8))
        d.features.add("fixed input")
    x: Node = d.add(inp)
    if inp.out.encoding == "uint":  # a real-valued op needs a signed input: a conv first
        x = d.conv(x, d.pick([2, 3, 4]), k=d.pick([1, 3]), weight_bits=d.pick([1, 4]))
    for _ in range(int(rng.integers(blocks[0], blocks[1] + 1))):
        x = d.block(x)
    d.tail(x)
    g = Graph(name, d.nodes)
    finish(g)
    reads: dict[str, int] = {}
    for n in g.nodes:
        for i in n.inputs:
            reads[i] = reads.get(i, 0) + 1
    if any(r >= 2 for r in reads.values()):
        d.features.add("fork")
    if any(r >= 3 for r in reads.values()):
        d.features.add("fork tree")
    g.meta["features"] = sorted(d.features)
    return g


def finish(graph: Graph) -> Graph:
    """The passes a hardware graph goes through: accumulator widths (the worst case),
    types propagated, every invariant checked."""
    assign_accumulator_widths(graph)
    propagate_types(graph)
    return check_hardware_graph(graph)


def random_codes(rng: np.random.Generator, graph: Graph, frames: int) -> np.ndarray:
    """Input codes over the whole range of the input type."""
    lo, hi = graph.input.out.code_range()
    return rng.integers(lo, hi + 1, (frames,) + graph.input.out.shape).astype(np.int64)
