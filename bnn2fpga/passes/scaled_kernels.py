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

Where such a layer feeds a real-valued path instead (BatchNorm + residual add, as in every
Bi-Real block), the scale is one more per-channel factor of a FixedAffine, and the
agreement is measured on the calibration frames like every real path.
"""

from __future__ import annotations

import numpy as np

from bnn2fpga.ir import ChannelAffine, Dense, Graph, IRError, Sign
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
