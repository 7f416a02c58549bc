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
not on the quantizer's grid, the pass refuses, naming the layer; where it is not monotone
(float32 effects), the best staircase is kept and a warning gives the number of
accumulator values decided differently.

The same exhaustion makes a quantized residual stream exact (``fold_code_quantizer``,
``lower_quantized_add``): where a quantizer or a sign (through scale/bias/BatchNorm/
ReLU/PReLU) reads *codes* -- the uint output of such a fold, or a fixed-point sum -- the
model's own layers run on every code of that tensor, and a ``Threshold`` on the codes
reproduces the model's output on each; a decision that is not a monotone staircase keeps
the best thresholds and warns with the number of codes that differ.  An ``Add`` of
quantized tensors is exact in fixed point: each uint input becomes its real value
offset + step * k by an identity ``FixedAffine`` (add_in = offset / step), and the sum
keeps the finest input step in enough bits for every sum (Keras's float32 sum of two grid
values below 2^24 steps is exact too); an average pool of a power-of-two count of quantized
values is its window sum with that many more fraction bits (``lower_quantized_pool``).
"""

from __future__ import annotations

import math

import numpy as np

from bnn2fpga.ir import (
    Add,
    AvgPool2D,
    BatchNorm,
    ChannelAffine,
    Dense,
    FixedAvgPool,
    FloatPReLU,
    GlobalAvgPool,
    Graph,
    IRError,
    MaxPool2D,
    Node,
    Quantize,
    Reshape,
    Sign,
    TensorType,
    Threshold,
    signed_bits_for,
)
from bnn2fpga.passes.fracbnn import not_monotone_warning, staircase
from bnn2fpga.passes.real import affine_node
from bnn2fpga.passes.structure import propagate_types
from bnn2fpga.passes.thresholds import FLOAT32_EXACT, evaluate_float32, input_scale, sign_bits
from bnn2fpga.reference import accumulator_bound

CHAIN = (ChannelAffine, BatchNorm)
CODE_CHAIN = (ChannelAffine, BatchNorm, FloatPReLU)
CODE_SOURCES = ("uint", "fixed")  # tensors whose codes a fold can enumerate
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


def model_codes(q: Quantize, ops: list[Node], x: np.ndarray, where: str) -> np.ndarray:
    """The model's quantizer codes k for its float32 inputs x (n, channels) to ``ops``,
    checked to be integers in [lo, hi] on the quantizer's grid."""
    y = np.asarray(q.evaluate(evaluate_float32(ops, x)), np.float64)  # type: ignore[misc]
    k = grid_codes(y, q.step)
    if not np.all(k == np.round(k)) or k.min() < q.lo or k.max() > q.hi:
        bad = np.argwhere((k != np.round(k)) | (k < q.lo) | (k > q.hi))[0]
        raise IRError(f"{where}: the model's quantizer gives {y[tuple(bad)]!r}, not a code of "
                      f"{q.lo}..{q.hi} x {q.step!r} (float32 trouble at large magnitudes); "
                      "cannot be reproduced exactly")
    return k.astype(np.int64)


def negated(t: np.ndarray) -> np.ndarray:
    """Thresholds T of a decreasing staircase, code = levels - #{x >= T}, as thresholds on
    -x: #{x < T} = #{-x >= 1 - T} (ascending again)."""
    return (1 - np.asarray(t, np.int64))[..., ::-1]


def quantizer_thresholds(matvec: Dense, in_type: TensorType, ops: list[Node], q: Quantize
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(thresholds (C, hi - lo), flip (C,), differing (C,)): code - lo = #{j : acc' >=
    T[c, j]}, acc' = -acc on flipped channels; from the model's codes on every accumulator
    value.  A channel that is not monotone gets the best staircase (``staircase``) and
    counts the accumulator values it decides differently."""
    bound = accumulator_bound(matvec, in_type)
    if 2 * bound + 1 > MAX_DOMAIN:
        raise IRError(f"layer {matvec.name!r}: accumulator range +-{bound} is too large to "
                      f"check the quantizer {q.name!r} exhaustively (at most {MAX_DOMAIN} "
                      "values)")
    c = matvec.out_channels
    d = np.arange(-bound, bound + 1, dtype=np.int64)
    x = (d.astype(np.float32) * np.float32(input_scale(in_type))).astype(np.float32)
    k = model_codes(q, ops, np.repeat(x[:, None], c, axis=1),
                    f"quantizer {q.name!r} after {matvec.name!r}")
    n = q.hi - q.lo
    thresholds = np.empty((c, n), np.int64)
    flip = np.zeros(c, bool)
    differing = np.zeros(c, np.int64)
    for ch in range(c):
        col = k[:, ch] - q.lo
        steps = np.diff(col)
        if np.all(steps >= 0):
            dd, cc = d, col
        elif np.all(steps <= 0):
            flip[ch] = True
            dd, cc = -d[::-1], col[::-1]
        else:
            t, inverted, bad = staircase(d, col[:, None], n)
            flip[ch], differing[ch] = inverted[0], bad[0]
            thresholds[ch] = negated(t[0]) if inverted[0] else t[0]
            continue
        # T_j = the first acc' whose count reaches j (bound + 1: never)
        for j in range(1, n + 1):
            hit = np.flatnonzero(cc >= j)
            thresholds[ch, j - 1] = dd[hit[0]] if hit.size else bound + 1
    return thresholds, flip, differing


def fold_accumulator_quantizer(graph: Graph, q: Quantize, matvec: Dense, ops: list[Node]
                               ) -> None:
    """A Quantize behind ``matvec``'s affine chain -> multi-thresholds on the layer; its
    output becomes ``uint`` codes k - lo with scale ``step`` and offset ``lo * step``."""
    in_type = graph.producer(matvec).out
    thresholds, flip, differing = quantizer_thresholds(matvec, in_type, ops, q)
    if (w := not_monotone_warning(q.name.split("/")[0], f"the model's quantizer after "
                                  f"{matvec.name!r}", differing, differing.size
                                  * (2 * accumulator_bound(matvec, in_type) + 1))):
        graph.meta.setdefault("warnings", []).append(w)
    matvec.weights = np.where(flip[:, None], -matvec.weights,
                              matvec.weights).astype(matvec.weights.dtype)
    matvec.thresholds = thresholds
    matvec.out = code_type(matvec.out.shape, q)
    graph.replace([matvec, *ops, q], [matvec])
    # the model tensor whose codes this output equals: the layer's output, or where the
    # quantizer was hoisted over pools/reshapes, the last of them
    at = (graph.meta.get("hoisted_quantizers") or {}).get(q.name, matvec.name)
    record_codes(graph, at, keras_tensor(q.name), q.step, q.lo, None)
    graph.meta.setdefault("exhaustive_checks", {})[matvec.name] = \
        int(thresholds.shape[0]) * (2 * accumulator_bound(matvec, in_type) + 1)


def code_type(shape: tuple[int, ...], q: Quantize) -> TensorType:
    """The unit's output for a model quantizer: uint codes k - lo, step, offset lo * step."""
    return TensorType(shape, "uint", max(1, (q.hi - q.lo).bit_length()), q.step,
                      q.lo * q.step)


def record_codes(graph: Graph, node: str, layer: str, step: float, lo: int,
                 checks: int | None) -> None:
    """``node``'s codes equal the Keras layer's output / step - lo; ``checks`` values were
    evaluated to prove it (None: exact by construction)."""
    graph.meta.setdefault("keras_quantized", {})[node] = [layer, step, lo]
    if checks is not None:
        graph.meta.setdefault("exhaustive_checks", {})[node] = int(checks)


# ---- quantizers and signs on codes ------------------------------------------------------

def code_source(graph: Graph, act: Quantize | Sign) -> tuple[Node, list[Node]] | None:
    """The hardware tensor of enumerable codes (``uint`` or ``fixed``) that ``act`` reads
    through single-consumer scale/bias/BatchNorm/ReLU/PReLU steps, and those steps; None
    where it reads something else (an accumulator, a float tensor, the input)."""
    ops: list[Node] = []
    node = graph.producer(act)
    while isinstance(node, CODE_CHAIN) and len(graph.consumers(node.name)) == 1:
        ops.insert(0, node)
        node = graph.producer(node)
    if not type(node).hardware or node is graph.input or node.out.encoding not in CODE_SOURCES:
        return None
    return node, ops


def code_values(t: TensorType, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(every code of ``t`` ascending, its real value as float32): exact, or an error."""
    lo, hi = t.code_range()
    if hi - lo + 1 > MAX_DOMAIN:
        raise IRError(f"{where}: its input has {hi - lo + 1} codes, too many to check "
                      f"exhaustively (at most {MAX_DOMAIN})")
    k = np.arange(lo, hi + 1, dtype=np.int64)
    real = t.offset + t.step * k.astype(np.float64)
    values = real.astype(np.float32)
    if not np.array_equal(values.astype(np.float64), real):
        raise IRError(f"{where}: its input's values are not exact in float32")
    return k, values


def fold_code_quantizer(graph: Graph, act: Quantize | Sign, src: Node, ops: list[Node]
                        ) -> Threshold:
    """The model's quantizer (or sign) on ``src``'s codes, through ``ops`` -> a
    ``Threshold`` on those codes, from the model's output on every code of every channel.
    A decreasing channel compares -x; a decision that is no staircase keeps the best
    thresholds, and a warning gives the number of codes that differ."""
    layer = act.name.split("/")[0]
    where = f"layer {layer!r}"
    k, values = code_values(src.out, where)
    c = src.out.channels
    x = evaluate_float32(ops, np.repeat(values[:, None], c, axis=1))
    if isinstance(act, Sign):
        codes, levels, out = sign_bits(act, x).astype(np.int64), 1, TensorType(
            act.out.shape, "bipolar")
    else:
        codes = model_codes(act, [], x, where) - act.lo
        levels, out = act.hi - act.lo, code_type(act.out.shape, act)
    t, inverted, differing = staircase(k, codes, levels)
    thresholds = np.where(inverted[:, None], negated(t), t)
    if (w := not_monotone_warning(layer, f"the model's {act.op} on the codes of {src.name!r}",
                                  differing, c * k.size, "input code")):
        graph.meta.setdefault("warnings", []).append(w)
    node = Threshold(act.name, [src.name], out, thresholds=thresholds,
                     negate_channels=tuple(int(i) for i in np.flatnonzero(inverted)))
    graph.replace([*ops, act], [node])
    checks = c * k.size
    if isinstance(act, Sign):
        graph.meta.setdefault("keras_activations", {})[node.name] = layer
        graph.meta.setdefault("exhaustive_checks", {})[node.name] = checks
    else:
        record_codes(graph, node.name, keras_tensor(act.name), act.step, act.lo, checks)
    return node


# ---- an add of quantized tensors ----------------------------------------------------------

def quantized_add(graph: Graph, add: Add) -> bool:
    """Whether ``add`` is a float-stage Add whose inputs are all quantized codes."""
    return add.out.encoding == "float" and all(
        type(graph[i]).hardware and graph[i].out.encoding in CODE_SOURCES
        for i in add.inputs)


def code_to_fixed(graph: Graph, src: Node, name: str) -> Node:
    """An identity ``FixedAffine`` from ``src``'s uint codes (offset + step * k, step a power
    of two) to fixed point of the same value, exact: add_in = offset / step, one integer
    multiplier step * 2^frac, no rounding (inserted after ``src``)."""
    t = src.out
    frac = max(0, -math.frexp(t.scale)[1] + 1)
    lo = t.offset / t.scale
    mul = t.scale * math.ldexp(1.0, frac)
    if math.frexp(t.scale)[0] != 0.5 or lo != round(lo) or mul != round(mul):
        raise IRError(f"tensor {src.name!r}: codes offset {t.offset!r} + {t.scale!r} * k are "
                      "not on a power-of-two grid; a quantized add needs quantized_bits/"
                      "quantized_relu codes (alpha None/1)")
    top = max(abs(lo), abs(lo + (1 << t.bits) - 1)) * mul
    out = TensorType.fixed(t.shape, max(frac + 1, signed_bits_for(int(top))), frac)
    c = t.channels
    node = affine_node(name, src.name, t.scale, out, np.ones(c), np.ones(c), np.zeros(c),
                       np.full(c, t.offset), signed_bits_for(int(mul)) + 1)
    graph.nodes.insert(graph.nodes.index(src) + 1, node)
    return node


def lower_quantized_add(graph: Graph, add: Add) -> None:
    """An Add of quantized tensors -> a fixed-point Add that is exact: uint inputs to fixed
    (``code_to_fixed``), the output at the finest input step, wide enough for every sum."""
    srcs = []
    for i, name in enumerate(add.inputs):
        src = graph[name]
        if src.out.encoding == "uint":
            src = code_to_fixed(graph, src, f"{add.name}/in{i}")
        srcs.append(src)
    frac = max(s.out.frac for s in srcs)
    top = sum(max(abs(v) for v in s.out.code_range()) << (frac - s.out.frac) for s in srcs)
    if top >= FLOAT32_EXACT:
        raise IRError(f"layer {add.name!r}: sums up to {top} steps of 2^-{frac} are not exact "
                      "in Keras's float32")
    add.inputs = [s.name for s in srcs]
    add.out = TensorType.fixed(add.out.shape, max(frac + 1, signed_bits_for(top)), frac)
    record_codes(graph, add.name, add.name, math.ldexp(1.0, -frac), 0, None)


# ---- an average pool of quantized codes ---------------------------------------------------

def quantized_pool(graph: Graph, pool: Node) -> bool:
    """Whether ``pool`` is a float-stage average pool (global, or unpadded windows) of
    quantized codes."""
    if not isinstance(pool, (GlobalAvgPool, AvgPool2D)):
        return False
    if isinstance(pool, AvgPool2D) and any(pool.pads):
        return False
    src = graph.producer(pool)
    return type(src).hardware and src.out.encoding in CODE_SOURCES


def lower_quantized_pool(graph: Graph, pool: GlobalAvgPool | AvgPool2D) -> None:
    """An average pool of quantized codes -> a ``FixedAvgPool`` that is exact: the window
    sum with log2(count) more fraction bits (mul 1, no rounding), wide enough for every
    sum; Keras's float32 mean of a power-of-two count of grid values is exact too."""
    src = graph.producer(pool)
    if src.out.encoding == "uint":
        src = code_to_fixed(graph, src, f"{pool.name}/in")
    h, w, _ = src.out.shape
    glob = isinstance(pool, GlobalAvgPool)
    count = h * w if glob else pool.kernel[0] * pool.kernel[1]
    if count & (count - 1):
        raise IRError(f"layer {pool.name!r}: an average of {count} quantized values is not "
                      "exact in Keras's float32 (nor in fixed point); supported: pools of a "
                      "power-of-two number of values (global 2x2, 4x4, 8x8; windows 2x2, 4x4)")
    frac = src.out.frac + count.bit_length() - 1
    top = count * max(abs(v) for v in src.out.code_range())
    if top >= FLOAT32_EXACT:
        raise IRError(f"layer {pool.name!r}: window sums up to {top} steps are not exact in "
                      "Keras's float32")
    out = TensorType.fixed(pool.out.shape, max(frac + 1, signed_bits_for(top)), frac)
    geometry = {} if glob else dict(kernel=pool.kernel, stride=pool.stride)
    hw = FixedAvgPool(pool.name, [src.name], out, mul=1, shift=0, global_pool=glob,
                      **geometry)
    graph.replace([pool], [hw])
    record_codes(graph, pool.name, pool.name, math.ldexp(1.0, -frac), 0, None)


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


# ---- the pass -----------------------------------------------------------------------------

def fold_one_quantizer(graph: Graph, node: Node) -> bool:
    """Fold ``node`` if it is a quantizer, a sign, an add or an average pool of what the
    model quantizes."""
    if isinstance(node, Quantize) and (found := quantizer_chain(graph, node)):
        fold_accumulator_quantizer(graph, node, *found)
    elif isinstance(node, (Quantize, Sign)) and (found := code_source(graph, node)):
        fold_code_quantizer(graph, node, *found)
    elif isinstance(node, Add) and quantized_add(graph, node):
        lower_quantized_add(graph, node)
    elif quantized_pool(graph, node):
        lower_quantized_pool(graph, node)  # type: ignore[arg-type]
    else:
        return False
    return True


def fold_quantizers_into_thresholds(graph: Graph) -> Graph:
    """In topological order, until none is left: every Quantize behind an accumulator's
    affine chain -> multi-thresholds on the layer (``fold_accumulator_quantizer``); every
    Quantize or sign on quantized codes -> a ``Threshold`` (``fold_code_quantizer``); every
    Add of quantized tensors -> an exact fixed-point Add (``lower_quantized_add``); every
    average pool of quantized codes -> an exact FixedAvgPool (``lower_quantized_pool``)."""
    graph = propagate_types(graph)
    while any(fold_one_quantizer(graph, n) for n in list(graph.nodes)):
        graph = propagate_types(graph)
    return graph
