"""Kernel scales that are not powers of two (Larq ``MagnitudeAwareSign``, Bi-Real Net):
how many accumulator values a fold into thresholds may decide differently from Keras.

Keras evaluates sum_i (alpha * w_i) * x_i in float32 with alpha = mean|w| per output
channel; the design computes the integer d = sum_i w_i * x_i and decides its sign after
alpha * d.  The two agree unless alpha * d lies within float32's summation error of the
decision boundary.  ``count_ambiguous`` checks every accumulator value of every channel
(exhaustive over [-bound, bound]): d is counted when the decision (the model's own BatchNorm
and quantizer, in float32) differs anywhere in [alpha*d - e, alpha*d + e], taken at both ends
and at the centre, with e the recursive-summation bound gamma_n * sum|terms|,
gamma_n = n*u / (1 - n*u), u = 2^-24, n the fan-in (so the count is an upper bound on the
values that can differ, for any summation order).

The same bound covers inputs on a grid that is not a power of two (Larq DoReFa codes
k / n, n = 2^bits - 1): Keras sums the float32 values fl(k / n) * w, the design the integer
sum d of k * w (``warn_inexact_input_scales``; the rounding of each fl(k / n) adds one unit
roundoff per term, so the bound takes gamma_{n+1}).

Where such a layer feeds a real-valued path instead (BatchNorm + residual add, as in every
Bi-Real block), the scale is one more per-channel factor of a FixedAffine, and the
agreement is measured on the calibration frames like every real path.
"""

from __future__ import annotations

import numpy as np

from bnn2fpga.ir import (
    ChannelAffine,
    Dense,
    Graph,
    Input,
    IRError,
    MaxPool2D,
    Node,
    Quantize,
    Reshape,
    Sign,
    TensorType,
)
from bnn2fpga.ops.dense import accumulator_bound
from bnn2fpga.passes.thresholds import (
    CHAIN_OPS,
    collect_chain,
    evaluate_float32,
    input_scale,
    sign_bits,
)

UNIT_ROUNDOFF = 2.0 ** -24


def sign_after(graph: Graph, node_name: str) -> Sign | None:
    """The Sign reached from ``node_name`` through single-consumer chain ops, if any."""
    name = node_name
    while True:
        consumers = graph.consumers(name)
        if len(consumers) != 1:
            return None
        nxt = consumers[0]
        if isinstance(nxt, Sign):
            return nxt
        if not isinstance(nxt, CHAIN_OPS):
            return None
        name = nxt.name


def count_ambiguous(graph: Graph, dense: Dense, affine: ChannelAffine, sign: Sign
                    ) -> tuple[int, int]:
    """(accumulator values whose decision may differ from Keras's, values checked)."""
    _, ops = collect_chain(graph, sign)
    if not ops or ops[0] is not affine:
        raise IRError(f"{affine.name!r} is not the first op after {dense.name!r}")
    in_type = graph.producer(dense).out
    bound = accumulator_bound(dense, in_type)
    scale = input_scale(in_type)
    channels = dense.out_channels
    alpha = np.asarray(affine.mul, np.float64).reshape(-1)
    alpha = np.broadcast_to(alpha, (channels,)) if alpha.size == 1 else alpha
    n = dense.fan_in
    gamma = n * UNIT_ROUNDOFF / (1 - n * UNIT_ROUNDOFF)
    d = np.arange(-bound, bound + 1, dtype=np.float64)[:, None]        # (values, 1)
    centre = d * scale * alpha[None, :]
    err = gamma * bound * scale * alpha[None, :]                        # >= gamma * sum|terms|
    rest = [ChannelAffine(affine.name, list(affine.inputs), affine.out, mul=None,
                          add=affine.add), *ops[1:]]
    decisions = []
    for x in (centre - err, centre, centre + err):
        decisions.append(sign_bits(sign, evaluate_float32(rest, x.astype(np.float32))))
    differ = (decisions[0] != decisions[1]) | (decisions[1] != decisions[2])
    return int(differ.sum()), int(differ.size)


def warn_inexact_kernel_scales(graph: Graph) -> Graph:
    """For every layer whose frontend recorded a non-power-of-two kernel scale
    (``meta["inexact_kernel_scales"]``: {scale node: layer}) and whose accumulator goes to a
    sign through scale/BatchNorm/max-pool (a fold into thresholds), a warning with the number
    of accumulator values that may be decided differently from Keras."""
    for affine_name, layer in (graph.meta.get("inexact_kernel_scales") or {}).items():
        if affine_name not in [n.name for n in graph.nodes]:
            continue
        affine = graph[affine_name]
        dense = graph.producer(affine)
        sign = sign_after(graph, affine_name)
        if sign is None or not isinstance(affine, ChannelAffine) or not isinstance(dense, Dense):
            continue
        try:
            differ, total = count_ambiguous(graph, dense, affine, sign)
        except IRError:
            continue   # not a fold into thresholds: the real-path passes take it
        graph.meta.setdefault("inexact_folds", {})[layer] = [differ, total]
        if differ:
            graph.meta.setdefault("warnings", []).append(
                f"layer {layer!r}: its kernel scale mean|w| (MagnitudeAwareSign) is not a "
                "power of two and Keras sums the scaled weights in float32, so the fold of "
                f"its BatchNorm and sign into thresholds may decide {differ} of the {total} "
                "accumulator values (all channels, the whole accumulator range, checked "
                "exhaustively against float32's summation error bound) differently from "
                "Keras")
    return graph


def is_power_of_two(x: float) -> bool:
    return x > 0 and float(np.exp2(np.round(np.log2(x)))) == x


def uint_input_of(graph: Graph, dense: Dense) -> TensorType | None:
    """The uint type ``dense`` reads (through max-pools and reshapes) when its scale is not
    a power of two: a graph input (a DoReFa input quantizer) or a ``Quantize`` of step 1/n
    (as its fold will give it)."""
    src = graph.producer(dense)
    while isinstance(src, (MaxPool2D, Reshape)):   # they carry the codes unchanged
        src = graph.producer(src)
    if isinstance(src, Input) and src.out.encoding == "uint" and \
            not is_power_of_two(src.out.scale):
        return src.out
    if isinstance(src, Quantize) and src.lo == 0 and not is_power_of_two(src.step):
        return TensorType(src.out.shape, "uint", max(1, src.hi.bit_length()), src.step)
    return None


def decision_after(graph: Graph, dense: Dense) -> tuple[list[Node], Node] | None:
    """The single-consumer scale/BatchNorm/max-pool/reshape ops after ``dense`` and the
    Sign or Quantize that ends them (a fold into thresholds), or None."""
    ops: list[Node] = []
    name = dense.name
    while len(consumers := graph.consumers(name)) == 1:
        nxt = consumers[0]
        if isinstance(nxt, (Sign, Quantize)):
            return ops, nxt
        if not isinstance(nxt, CHAIN_OPS):
            return None
        ops.append(nxt)
        name = nxt.name
    return None


def decisions(end: Node, x: np.ndarray) -> np.ndarray:
    """The model's sign bits or quantizer outputs for float32 pre-activations x."""
    if isinstance(end, Sign):
        return sign_bits(end, x)
    assert isinstance(end, Quantize) and end.evaluate is not None
    return np.asarray(end.evaluate(x), np.float32)


def input_error_bound(dense: Dense, in_type: TensorType) -> float:
    """Largest |Keras's float32 sum of fl(k / n) * w - d / n|: gamma_{fan_in + 1} * bound
    * scale (the recursive-summation bound, one more roundoff for each fl(k / n))."""
    n = dense.fan_in + 1
    gamma = n * UNIT_ROUNDOFF / (1 - n * UNIT_ROUNDOFF)
    return gamma * accumulator_bound(dense, in_type) * input_scale(in_type)


def all_chain_to_output(graph: Graph, dense: Dense) -> bool:
    """``dense`` reaches the graph's output through single-consumer chain ops only."""
    name = dense.name
    while len(consumers := graph.consumers(name)) == 1 and \
            isinstance(consumers[0], CHAIN_OPS):
        name = consumers[0].name
    return not graph.consumers(name)


def count_ambiguous_inputs(dense: Dense, in_type: TensorType, ops: list[Node], end: Node
                           ) -> tuple[int, int]:
    """(accumulator values whose decision may differ from Keras's, values checked), with
    Keras's sum of fl(k / n) * w within gamma_{fan_in + 1} * bound * scale of d * scale."""
    bound = accumulator_bound(dense, in_type)
    d = np.arange(-bound, bound + 1, dtype=np.float64)[:, None]
    d = np.repeat(d, dense.out_channels, axis=1)
    centre, err = d * input_scale(in_type), input_error_bound(dense, in_type)
    got = [decisions(end, evaluate_float32(ops, x.astype(np.float32)))
           for x in (centre - err, centre, centre + err)]
    differ = (got[0] != got[1]) | (got[1] != got[2])
    return int(differ.sum()), int(differ.size)


def warn_inexact_input_scales(graph: Graph) -> Graph:
    """For every binary layer that reads codes on a non-power-of-two grid (DoReFa) and
    whose accumulator goes to a sign or a quantizer through scale/BatchNorm (a fold into
    thresholds): ``meta["inexact_folds"][layer] = [may differ, checked]``, and a warning
    where some accumulator value may be decided differently from Keras.  An output layer
    gets ``meta["inexact_outputs"][layer]``, the bound on its difference before the output
    affine, and a warning."""
    for dense in graph.matvec_nodes():
        in_type = uint_input_of(graph, dense)
        if in_type is None:
            continue
        why = (f"layer {dense.name!r}: its input codes have the step {in_type.scale!r} (not "
               "a power of two: DoReFa's 1/n, or an --input-scale) and Keras sums them in "
               "float32")
        found = decision_after(graph, dense)
        if found is None:
            if all_chain_to_output(graph, dense):
                bound = input_error_bound(dense, in_type)
                graph.meta.setdefault("inexact_outputs", {})[dense.name] = bound
                graph.meta.setdefault("warnings", []).append(
                    f"{why}: the outputs (from the exact integer sums) differ from Keras's "
                    f"by up to {bound:.3g} before the output affine")
            continue
        ops, end = found
        try:
            differ, total = count_ambiguous_inputs(dense, in_type, ops, end)
        except IRError:
            continue   # per-feature parameters after a Flatten: the folds refuse it
        graph.meta.setdefault("inexact_folds", {})[dense.name] = [differ, total]
        if differ:
            graph.meta.setdefault("warnings", []).append(
                f"{why}, so the fold of its BatchNorm and {end.op} into thresholds may decide "
                f"{differ} of the {total} accumulator values (all channels, the whole "
                "accumulator range, checked exhaustively against float32's summation error "
                "bound) differently from Keras")
    return graph
