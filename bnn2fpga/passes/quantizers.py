"""A model's multi-bit quantizer after an integer accumulator -> multi-thresholds, exact by
exhaustion.

For a Dense/Conv2D accumulator d followed by scale/bias/BatchNorm and a QKeras
``quantized_relu``/``quantized_bits`` (``ir.Quantize``), the model's own float32 layers and
its own quantizer (round half to even, clip) are run on *every* accumulator value in the
reachable range [-bound, bound] (``reference.accumulator_bound``).  That finite domain is
the whole proof: the code k(d) the model gives each d is known exactly, so
thresholds T_j = min{d : k(d) - lo >= j} reproduce it on every input, provided k is
monotone in d (checked on the whole domain; a decreasing channel, a negative BatchNorm
scale, has its weights negated first, as for signs).  The unit outputs the count k - lo as
an unsigned code of step ``step`` and offset ``lo * step``.  Where the model's output is
not on the quantizer's grid or not monotone, the pass refuses, naming layer and channel.
"""

from __future__ import annotations

import numpy as np

from bnn2fpga.ir import (
    BatchNorm,
    ChannelAffine,
    Dense,
    Graph,
    IRError,
    MaxPool2D,
    Node,
    Quantize,
    Reshape,
    TensorType,
)
from bnn2fpga.passes.structure import propagate_types
from bnn2fpga.passes.thresholds import evaluate_float32, input_scale
from bnn2fpga.reference import accumulator_bound

CHAIN = (ChannelAffine, BatchNorm)
MAX_DOMAIN = 1 << 22      # accumulator values evaluated per channel at most


def quantizer_chain(graph: Graph, q: Quantize) -> tuple[Dense, list[Node]] | None:
    """The binary/multi-bit layer whose accumulator ``q`` quantizes and the affine ops in
    between, or None when ``q`` reads something else (a real path)."""
    ops: list[Node] = []
    node = graph.producer(q)
    while isinstance(node, CHAIN):
        if len(graph.consumers(node.name)) != 1:
            return None
        ops.insert(0, node)
        node = graph.producer(node)
    if not isinstance(node, Dense) or node.thresholds is not None or \
            len(graph.consumers(node.name)) != 1:
        return None
    return node, ops


GRID_TOLERANCE = 2.0 ** -10   # codes: float32 renderings of code / n are this close


def grid_codes(y: np.ndarray, step: float) -> np.ndarray:
    """y / step; on a grid that is not a power of two (DoReFa's 1/n), a value is on the grid
    when it is within float32 rounding of code * step (Keras's float32 ``round(.) / n``, a
    division or a multiplication by float32(1/n) depending on TensorFlow's kernels)."""
    k = y / step
    if float(np.exp2(np.round(np.log2(step)))) == step:
        return k
    near = np.round(k)
    return np.where(np.abs(k - near) <= GRID_TOLERANCE, near, k)


def keras_tensor(quantizer: str) -> str:
    """The model tensor a ``Quantize`` node's codes equal: a layer's output (``layer``,
    ``layer/activation``), or ``layer/input_quantizer`` (that layer's quantized input)."""
    layer, _, role = quantizer.partition("/")
    return quantizer if role == "input_quantizer" else layer


def model_codes(q: Quantize, ops: list[Node], scale: float, d: np.ndarray, where: str
                ) -> np.ndarray:
    """The model's quantizer codes k for accumulator values d (n, channels), checked to be
    integers in [lo, hi] on the quantizer's grid."""
    x = (d.astype(np.float32) * np.float32(scale)).astype(np.float32)
    y = np.asarray(q.evaluate(evaluate_float32(ops, x)), np.float64)  # type: ignore[misc]
    k = grid_codes(y, q.step)
    if not np.all(k == np.round(k)) or k.min() < q.lo or k.max() > q.hi:
        bad = np.argwhere((k != np.round(k)) | (k < q.lo) | (k > q.hi))[0]
        raise IRError(f"{where}: the model's quantizer gives {y[tuple(bad)]!r}, not a code of "
                      f"{q.lo}..{q.hi} x {q.step!r} (float32 trouble at large magnitudes); "
                      "cannot be reproduced exactly")
    return k.astype(np.int64)


def quantizer_thresholds(matvec: Dense, in_type: TensorType, ops: list[Node], q: Quantize
                         ) -> tuple[np.ndarray, np.ndarray]:
    """(thresholds (C, hi - lo), flip (C,)): code - lo = #{j : acc' >= T[c, j]}, acc' = -acc
    on flipped channels; from the model's codes on every accumulator value."""
    bound = accumulator_bound(matvec, in_type)
    if 2 * bound + 1 > MAX_DOMAIN:
        raise IRError(f"layer {matvec.name!r}: accumulator range +-{bound} is too large to "
                      f"check the quantizer {q.name!r} exhaustively (at most {MAX_DOMAIN} "
                      "values)")
    c = matvec.out_channels
    d = np.arange(-bound, bound + 1, dtype=np.int64)
    k = model_codes(q, ops, input_scale(in_type), np.repeat(d[:, None], c, axis=1),
                    f"quantizer {q.name!r} after {matvec.name!r}")
    n = q.hi - q.lo
    thresholds = np.empty((c, n), np.int64)
    flip = np.zeros(c, bool)
    for ch in range(c):
        col = k[:, ch] - q.lo
        steps = np.diff(col)
        if np.all(steps >= 0):
            dd, cc = d, col
        elif np.all(steps <= 0):
            flip[ch] = True
            dd, cc = -d[::-1], col[::-1]
        else:
            raise IRError(f"layer {matvec.name!r} channel {ch}: the model's quantizer "
                          f"{q.name!r} is not monotone in the accumulator; cannot fold into "
                          "thresholds")
        # T_j = the first acc' whose count reaches j (bound + 1: never)
        for j in range(1, n + 1):
            hit = np.flatnonzero(cc >= j)
            thresholds[ch, j - 1] = dd[hit[0]] if hit.size else bound + 1
    return thresholds, flip


def hoist_quantizers_over_pools(graph: Graph) -> Graph:
    """A Quantize behind max-pools and reshapes (DoReFaNet: BatchNorm, MaxPool, then the
    next layer's input quantizer; BatchNorm, Flatten, a QuantDense's) moves in front of
    them: a quantizer is elementwise and non-decreasing, so q(maxpool(y)) = maxpool(q(y))
    and q(reshape(y)) = reshape(q(y)) exactly, and the fold finds it behind the BatchNorm.
    ``meta["hoisted_quantizers"]``: {quantizer: the node whose codes now equal the model's
    quantized tensor (the last pool/reshape)}."""
    for q in [n for n in graph.nodes if isinstance(n, Quantize)]:
        while isinstance(p := graph.producer(q), (MaxPool2D, Reshape)) and \
                len(graph.consumers(p.name)) == 1:
            last = graph.consumers(q.name)
            graph.meta.setdefault("hoisted_quantizers", {}).setdefault(q.name, p.name)
            q.inputs, p.inputs = list(p.inputs), [q.name]
            q.out = q.out.with_shape(graph.producer(q).out.shape)
            graph.replace([p, q], [q, p])
            assert all(p.name in n.inputs for n in last)
    return propagate_types(graph)


def fold_quantizers_into_thresholds(graph: Graph) -> Graph:
    """Every Quantize behind an accumulator's affine chain -> multi-thresholds on the layer;
    its output becomes ``uint`` codes k - lo with scale ``step`` and offset ``lo * step``."""
    graph = propagate_types(graph)
    for q in [n for n in graph.nodes if isinstance(n, Quantize)]:
        found = quantizer_chain(graph, q)
        if found is None:
            continue
        matvec, ops = found
        in_type = graph.producer(matvec).out
        thresholds, flip = quantizer_thresholds(matvec, in_type, ops, q)
        matvec.weights = np.where(flip[:, None], -matvec.weights,
                                  matvec.weights).astype(matvec.weights.dtype)
        matvec.thresholds = thresholds
        n = q.hi - q.lo
        matvec.out = TensorType(matvec.out.shape, "uint", max(1, n.bit_length()), q.step,
                                q.lo * q.step)
        graph.replace([matvec, *ops, q], [matvec])
        # the model tensor (a layer's output) whose codes this output equals
        at = (graph.meta.get("hoisted_quantizers") or {}).get(q.name, matvec.name)
        graph.meta.setdefault("keras_quantized", {})[at] = [keras_tensor(q.name), q.step, q.lo]
        graph.meta.setdefault("exhaustive_checks", {})[matvec.name] = \
            int(thresholds.shape[0]) * (2 * accumulator_bound(matvec, in_type) + 1)
    return propagate_types(graph)
