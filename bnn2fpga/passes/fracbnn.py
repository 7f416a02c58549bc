"""FracBNN to integers: the thermometer's pixel thresholds, the gate's integer thresholds,
the 2-bit quantizer and the BatchNorm + sign after a PGConv2D folded into thresholds, and the
gate density measured on calibration frames.

Every fold here is *exact by exhaustion*: the model's own float32 layers (its ``Thermometer``,
its ``PGConv2D.gate``, its BatchNorm and the layer's quantizer, ``third_of``) are evaluated
on every integer their input can take (all 256 pixels; every M in [-F-1, F+1]; every
accumulator in [-bound, bound]) and the integer thresholds are read off those decisions.
Where a channel's decision is not a monotone staircase in the accumulator (a float32 effect
the model may have), the best thresholds are kept and a warning says how many accumulator
values of which channels differ (``graph.meta["warnings"]``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bnn2fpga.ir import (
    BatchNorm,
    ChannelAffine,
    Conv2D,
    Dense,
    FloatPGConv2D,
    FloatQuantize2Bit,
    Graph,
    IRError,
    MaxPool2D,
    Node,
    PGConv2D,
    Reshape,
    Sign,
    TensorType,
)
from bnn2fpga.passes.structure import propagate_types
from bnn2fpga.passes.thresholds import evaluate_float32, input_scale, sign_bits
from bnn2fpga.reference import accumulator_bound

# the real value of a 2-bit code q of FracBNN's quantizer: (2q - 3) / 3 = -1 + (2/3) q
CODE_TYPE = dict(encoding="uint", bits=2, scale=2.0 / 3.0, offset=-1.0)


# ---- exhaustive evaluations of the layers -----------------------------------------------


def thermometer_thresholds(layer: Any) -> np.ndarray:
    """T[k] = the smallest pixel p in 0..255 whose bit k the layer sets (256: never), from
    the layer itself on x = float32(p) / 255 for all 256 pixels (exact by exhaustion)."""
    import tensorflow as tf

    p = np.arange(256, dtype=np.float32)
    bits = layer(tf.constant((p / np.float32(255))[:, None])).numpy() > 0   # (256, L)
    if np.any(np.diff(bits.astype(np.int8), axis=0) < 0):
        raise IRError(f"layer {layer.name!r} (Thermometer): a bit is not monotone in the "
                      "pixel value; it cannot be one threshold per level")
    return np.array([int(np.argmax(b)) if b.any() else 256 for b in bits.T], np.int64)


def gate_thresholds(layer: Any, fan_in: int) -> np.ndarray:
    """G[c] = the smallest integer M that ``layer.gate`` turns on (fan_in + 1: never), from
    the layer's own gate on every M in [-fan_in - 1, fan_in + 1] (exact by exhaustion: |M|
    <= fan_in)."""
    import tensorflow as tf

    m = np.arange(-fan_in - 1, fan_in + 2, dtype=np.float32)
    on = layer.gate(tf.constant(np.repeat(m[:, None], layer.filters, 1))).numpy() > 0
    if np.any(np.diff(on.astype(np.int8), axis=0) < 0):
        raise IRError(f"layer {layer.name!r} (PGConv2D): the gate is not monotone in the MSB "
                      "sum M; it cannot be one integer threshold per channel")
    return np.array([int(m[np.argmax(c)]) if c.any() else fan_in + 1 for c in on.T],
                    np.int64)


def quantizer_codes(x: np.ndarray) -> np.ndarray:
    """PGConv2D's built-in 2-bit quantizer on float32 values, as the layer computes it
    (``ste_bit_planes``): q = 2 [msb] + [lsb] in {0, 1, 2, 3}."""
    import tensorflow as tf

    from bnn2fpga.layers.ste import ste_bit_planes

    m, lsb = ste_bit_planes(tf.constant(np.asarray(x, np.float32)))
    return 2 * (m.numpy() > 0).astype(np.int64) + (lsb.numpy() > 0).astype(np.int64)


def third_of(acc: np.ndarray) -> np.ndarray:
    """A PGConv2D's float32 output for its integer accumulator 3y = 2M + gL (the layer's
    ``third_of``: float64 division rounded once to float32)."""
    return (np.asarray(acc, np.float64) / 3.0).astype(np.float32)


def accumulator_values(node: Dense, in_type: TensorType) -> tuple[np.ndarray, np.ndarray]:
    """Every integer accumulator d in [-bound, bound] of a binary layer and the float32
    value the model computes from it before its next float step (``third_of(d)`` for a
    PGConv2D, d times the input scale otherwise)."""
    bound = accumulator_bound(node, in_type)
    d = np.arange(-bound, bound + 1, dtype=np.int64)
    if isinstance(node, PGConv2D):
        return d, third_of(d)
    return d, (d.astype(np.float32) * np.float32(input_scale(in_type))).astype(np.float32)


# ---- staircases ---------------------------------------------------------------------------


def staircase(d: np.ndarray, codes: np.ndarray, levels: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thresholds for codes (n, C) in 0..levels decided at the ascending integers d (n,):
    per channel (T (C, levels) ascending, inverted (C,), differing (C,)), with code =
    #{j : d >= T[c, j]} (for an ``inverted`` channel, levels - code: a decreasing
    staircase); ``differing`` counts the d whose decision that staircase gets wrong (0 for
    every channel the model decides monotonically).  The best step per level is taken."""
    bound = int(d[-1]) + 1  # "never"
    cand = np.concatenate([d, [bound]])

    def fit(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = np.empty((v.shape[1], levels), np.int64)
        for j in range(1, levels + 1):
            on = (v >= j).astype(np.int64)
            on_before = np.concatenate([np.zeros((1, v.shape[1]), np.int64),
                                        np.cumsum(on, axis=0)])
            off = 1 - on
            off_after = np.concatenate([np.cumsum(off[::-1], axis=0)[::-1],
                                        np.zeros((1, v.shape[1]), np.int64)])
            t[:, j - 1] = cand[np.argmin(on_before + off_after, axis=0)]
        t = np.maximum.accumulate(t, axis=1)
        got = (d[:, None, None] >= t[None]).sum(axis=-1)
        return t, (got != v).sum(axis=0)

    up, up_bad = fit(codes)
    down, down_bad = fit(levels - codes)
    inverted = down_bad < up_bad
    return (np.where(inverted[:, None], down, up), inverted,
            np.where(inverted, down_bad, up_bad))


def not_monotone_warning(layer: str, what: str, differing: np.ndarray, total: int,
                         domain: str = "accumulator") -> str | None:
    bad = np.flatnonzero(differing)
    if bad.size == 0:
        return None
    return (f"layer {layer!r}: {what} is not a monotone staircase in the {domain} on "
            f"channels {bad.tolist()[:8]}{' ...' if bad.size > 8 else ''}: the thresholds "
            f"differ from the model on {int(differing.sum())} of {total} {domain} values "
            f"(at most {int(differing.max())} per channel); the design may differ from Keras "
            "there")


def negate_input_channels(graph: Graph, name: str, channels: np.ndarray) -> None:
    """The tensor ``name`` now carries the complement of the model's value on ``channels``
    (a bit inverted, or a 2-bit code 3 - q: both bit planes inverted), which negates that
    channel's +-1 value: negate the matching weight columns of every layer that reads it
    (through Flatten/Reshape), so that their sums are unchanged."""
    inverted = np.asarray(channels, bool)
    c = inverted.size
    for node in graph.consumers(name):
        if isinstance(node, Reshape):
            negate_input_channels(graph, node.name, inverted)
            continue
        if isinstance(node, Conv2D) and node.pad != "zero":
            raise IRError(f"layer {node.name!r}: its input channels "
                          f"{np.flatnonzero(inverted).tolist()} follow a BatchNorm with a "
                          f"negative scale behind a PGConv2D, and it pads with {node.pad!r}; "
                          "supported: zero padding there")
        if not isinstance(node, (Dense, FloatPGConv2D)) or getattr(node, "weight_bits", 1) != 1:
            raise IRError(f"channels {np.flatnonzero(inverted).tolist()} of {name!r} follow a "
                          f"BatchNorm with a negative scale behind a PGConv2D and feed "
                          f"{node.name!r} ({node.op}); supported: a binary Dense, Conv2D or "
                          "PGConv2D reading them (its weights absorb the inversion)")
        cols = inverted[np.arange(node.weights.shape[1]) % c]
        node.weights = np.where(cols[None, :], -node.weights, node.weights).astype(np.int8)


# ---- the passes ------------------------------------------------------------------------


def input_chain(graph: Graph, pg: FloatPGConv2D) -> tuple[Dense, list[Node]]:
    """The binary layer whose accumulator feeds ``pg``'s quantizer, and the float steps
    (scale, bias, BatchNorm) between them."""
    ops: list[Node] = []
    node = graph.producer(pg)
    while isinstance(node, (ChannelAffine, BatchNorm)) and len(graph.consumers(node.name)) == 1:
        ops.insert(0, node)
        node = graph.producer(node)
    if not isinstance(node, Dense) or not type(node).hardware or node.thresholds is not None \
            or len(graph.consumers(node.name)) != 1 or node.weight_bits != 1:
        raise IRError(f"layer {pg.name!r} (PGConv2D): its input comes from {node.name!r} "
                      f"({node.op}); supported: the accumulator of a binary Dense, Conv2D or "
                      "PGConv2D, through scale, bias and BatchNorm, read by this layer alone "
                      "(a PGConv2D on a real-valued residual stream is not supported yet)")
    return node, ops


def fold_quantizer_into_thresholds(graph: Graph, pg: FloatPGConv2D) -> Dense:
    """The float steps before ``pg`` and its 2-bit quantizer -> 3 thresholds on the previous
    binary layer's accumulator (its output: uint 2-bit codes q).  Exhaustive over every
    accumulator value; a decreasing channel (negative BatchNorm scale) outputs 3 - q, and
    ``pg``'s weights of that input channel are negated instead."""
    matvec, ops = input_chain(graph, pg)
    d, values = accumulator_values(matvec, graph.producer(matvec).out)
    x = np.repeat(values[:, None], matvec.out_channels, axis=1)
    codes = quantizer_codes(evaluate_float32(ops, x))
    thresholds, inverted, differing = staircase(d, codes, 3)
    layer = pg.name
    if (w := not_monotone_warning(layer, "the 2-bit quantizer of its input", differing,
                                  d.size)):
        graph.meta.setdefault("warnings", []).append(w)
    matvec.thresholds = thresholds
    matvec.out = TensorType(matvec.out.shape, **CODE_TYPE)
    graph.replace([matvec, *ops], [matvec])
    if inverted.any():
        negate_input_channels(graph, matvec.name, inverted)
    keras = (ops[-1] if ops else matvec).name.split("/")[0]
    graph.meta.setdefault("keras_codes", {})[matvec.name] = keras
    record_inverted(graph, matvec.name, inverted)
    return matvec


def record_inverted(graph: Graph, name: str, inverted: np.ndarray) -> None:
    """Note which channels of tensor ``name`` the design inverts (of how many channels),
    so that comparisons with the model (``testing.keras_mismatches``) can undo it."""
    if inverted.any():
        graph.meta.setdefault("inverted_channels", {})[name] = {
            "channels": int(inverted.size),
            "inverted": [int(c) for c in np.flatnonzero(inverted)]}


def hardware_pgconv2d(pg: FloatPGConv2D) -> PGConv2D:
    """The hardware node of a float-stage PGConv2D (its accumulator as the output until a
    fold gives it thresholds); gate thresholds from the layer's own gate."""
    return PGConv2D(pg.name, list(pg.inputs), TensorType(pg.out.shape, "int", 2),
                    weights=pg.weights, kernel=pg.kernel, stride=pg.stride, pads=pg.pads,
                    pad="zero", gate_thresholds=gate_thresholds(pg.layer, pg.fan_in))


def lower_pgconv2d(graph: Graph) -> Graph:
    """Every float-stage PGConv2D, first in graph order: its input quantizer into the
    previous layer's thresholds (``fold_quantizer_into_thresholds``), then the hardware
    ``PGConv2D`` node with integer gate thresholds."""
    while (pg := next((n for n in graph.nodes if isinstance(n, FloatPGConv2D)), None)):
        if reads_accumulator(graph, pg):
            fold_quantizer_into_thresholds(graph, pg)
            graph.replace([pg], [hardware_pgconv2d(pg)])
        else:  # a real-valued input: the quantizer stays for passes.real (a Threshold)
            quantizer = FloatQuantize2Bit(f"{pg.name}/quantizer", list(pg.inputs),
                                          TensorType(graph.producer(pg).out.shape,
                                                     **CODE_TYPE))
            hw = hardware_pgconv2d(pg)
            hw.inputs = [quantizer.name]
            graph.replace([pg], [quantizer, hw])
        graph = propagate_types(graph)
    return graph


def reads_accumulator(graph: Graph, pg: FloatPGConv2D) -> bool:
    """Whether ``pg``'s input is a binary layer's accumulator through scale, bias and
    BatchNorm that nothing else reads (its quantizer then folds into that layer's
    thresholds); otherwise the input is a real-valued tensor (a residual stream)."""
    node = graph.producer(pg)
    while isinstance(node, (ChannelAffine, BatchNorm)) and len(graph.consumers(node.name)) == 1:
        node = graph.producer(node)
    return isinstance(node, Dense) and type(node).hardware and node.thresholds is None \
        and node.weight_bits == 1 and len(graph.consumers(node.name)) == 1


def quantizer_thresholds(codes_lo: int, codes_hi: int, step: float, a: np.ndarray,
                         b: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """The 2-bit quantizer of a * (k * step) + b per channel on the fixed-point codes k in
    [codes_lo, codes_hi], as 3 thresholds on k (on -k for the channels returned, a < 0):
    exhaustive over every code whose value lies in the quantizer's range [-1, 1] (and two
    codes on either side; outside it the code is constant).  The quantizer is the layer's
    formula in float32 on the float32 value (numpy's round is half to even, as TF's)."""
    channels = a.size
    thresholds = np.empty((channels, 3), np.int64)
    negate: list[int] = []
    for c in range(channels):
        if a[c] == 0:
            q = int(np.asarray(quantizer_codes(np.full((1, 1), b[c], np.float32)))[0, 0])
            thresholds[c] = [codes_lo] * q + [codes_hi + 1] * (3 - q)
            continue
        ends = np.sort([(-1.0 - b[c]) / (a[c] * step), (1.0 - b[c]) / (a[c] * step)])
        lo = int(np.clip(np.floor(ends[0]) - 2, codes_lo, codes_hi))
        hi = int(np.clip(np.ceil(ends[1]) + 2, codes_lo, codes_hi))
        k = np.arange(lo, hi + 1, dtype=np.int64)
        x = (a[c] * (k * step) + b[c]).astype(np.float32)
        q = np.round((np.clip(x, np.float32(-1), np.float32(1)) + np.float32(1))
                     * np.float32(1.5)).astype(np.int64)
        if a[c] < 0:
            negate.append(c)
            k, q = -k[::-1], q[::-1]
        t, _, differing = staircase(k, q[:, None], 3)
        if differing[0]:
            raise IRError(f"the 2-bit quantizer of channel {c} is not monotone in its input "
                          "code")  # cannot happen: a monotone function of a monotone one
        lo_end = -codes_hi if a[c] < 0 else codes_lo
        thresholds[c] = np.where(t[0] == k[-1] + 1, k[-1] + 1,
                                 np.where(t[0] == k[0], lo_end, t[0]))
    return thresholds, tuple(negate)


def fold_sign_after_pgconv2d(graph: Graph, pg: PGConv2D, ops: list[Node], sign: Sign) -> None:
    """BatchNorm (+ scale, bias, Flatten) + sign after a PGConv2D -> one threshold on its
    accumulator acc = 3y: the model's float32 chain on ``third_of(acc)`` for every acc in
    [-3F, 3F].  A decreasing channel is inverted and the next layer's weights absorb it."""
    if any(isinstance(op, MaxPool2D) for op in ops):
        raise IRError(f"layer {sign.name.split('/')[0]!r}: a max-pool between PGConv2D "
                      f"{pg.name!r} and its binarisation is not supported yet")
    d, values = accumulator_values(pg, graph.producer(pg).out)
    x = np.repeat(values[:, None], pg.out_channels, axis=1)
    bits = sign_bits(sign, evaluate_float32(ops, x)).astype(np.int64)
    thresholds, inverted, differing = staircase(d, bits, 1)
    if (w := not_monotone_warning(sign.name.split("/")[0], f"the sign after {pg.name!r}",
                                  differing, d.size)):
        graph.meta.setdefault("warnings", []).append(w)
    pg.thresholds = thresholds
    pg.out = TensorType(pg.out.shape, "bipolar")
    kept: list[Node] = [pg]
    for op in ops:
        if isinstance(op, Reshape):
            op.inputs = [kept[-1].name]
            kept.append(op)
    graph.replace([pg, *ops, sign], kept)
    if inverted.any():
        negate_input_channels(graph, kept[-1].name, inverted)
    before_sign = (ops[-1] if ops else pg).name.split("/")[0]
    graph.meta.setdefault("keras_activations", {})[kept[-1].name] = before_sign
    graph.meta.setdefault("binarisations", {})[kept[-1].name] = sign.name
    record_inverted(graph, kept[-1].name, inverted)


def measure_gate_density(graph: Graph, codes: np.ndarray,
                         values: dict[str, np.ndarray] | None = None) -> dict[str, float]:
    """Run the reference on input codes (or take its ``values`` on them, from a run made
    anyway) and set every PGConv2D's ``gate_density``: the
    fraction of output groups (a pixel x the PE lanes of a neuron fold, at the node's PE)
    with a gate on (``ops.pgconv2d.group_density``).  Returns {node: density}.
    ``graph.meta["gate_density"]`` keeps, per layer, that density, the fraction of single
    gates on, and the density at every legal PE (``by_pe``: the folding search's expected
    cycles, ``folding.gate_density_at``)."""
    from bnn2fpga import reference
    from bnn2fpga.ops import divisors
    from bnn2fpga.ops.pgconv2d import accumulators, group_density

    if values is None:
        values = reference.execute(graph, codes)
    density: dict[str, float] = {}
    layers: dict[str, dict[str, Any]] = {}
    for node in graph.nodes:
        if isinstance(node, PGConv2D):
            _, g = accumulators(node, values[node.inputs[0]])
            node.gate_density = group_density(node, g)
            density[node.name] = node.gate_density
            layers[node.name] = {
                "density": node.gate_density, "pe": node.pe,
                "gates_on": float(g.mean()) if g.size else 0.0,
                "by_pe": {str(pe): group_density(node, g, pe)
                          for pe in divisors(node.out_channels)}}
    graph.meta["gate_density"] = {"frames": int(len(codes)), "layers": layers}
    return density
