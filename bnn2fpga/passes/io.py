"""Passes at the graph's edges: the input format and the output affine."""

from __future__ import annotations

import math

import numpy as np

from bnn2fpga.ir import (
    BatchNorm,
    ChannelAffine,
    Dense,
    Graph,
    IRError,
    MaxPool2D,
    Node,
    PGConv2D,
    Reshape,
    Sign,
    TensorType,
    signed_bits_for,
)
from bnn2fpga.passes.structure import propagate_types
from bnn2fpga.passes.thresholds import affine_terms, input_scale
from bnn2fpga.reference import accumulator_bound

MAX_INPUT_BITS = 16


def fold_input_sign(graph: Graph) -> Graph:
    """A sign on a real-valued input binarises on the host: the input is bipolar.

    The sign may stand behind Flatten/Reshape and max-pool layers: a sign commutes with them
    (it is monotone), so binarising first gives the same bits."""
    inp = graph.input
    if inp.out.encoding != "float":
        return graph
    node: Node = inp
    while True:
        consumers = graph.consumers(node.name)
        if len(consumers) != 1:
            return graph
        node = consumers[0]
        if isinstance(node, Sign):
            break
        if not isinstance(node, (Reshape, MaxPool2D)):
            return graph
    inp.out = TensorType(inp.out.shape, "bipolar")
    inp.quantizer = "sign"
    graph.bypass(node)
    return propagate_types(graph)


def set_input_format(graph: Graph, scale: float | None = None, bits: int | None = None
                     ) -> Graph:
    """A real-valued input becomes unsigned fixed point x = scale * k, 0 <= k < 2^bits.

    The format comes from the model's input quantizer (set by the frontend) or from the
    user's --input-scale/--input-bits; giving both and disagreeing is an error."""
    inp = graph.input
    given = scale is not None or bits is not None
    if given and (scale is None or bits is None):
        raise IRError("--input-scale and --input-bits go together (x = k * S, 0 <= k < 2^B)")
    if given:
        if not (isinstance(bits, int) and 1 <= bits <= MAX_INPUT_BITS):
            raise IRError(f"--input-bits {bits}: expected an integer in 1..{MAX_INPUT_BITS}")
        if not (scale > 0 and math.isfinite(scale)):
            raise IRError(f"--input-scale {scale}: expected a positive finite number")
    if inp.out.encoding == "float":
        if not given:
            raise IRError(f"model {graph.name!r} has a real-valued input and no input "
                          "quantizer: give its fixed-point format with --input-scale S "
                          "--input-bits B (x = k * S, 0 <= k < 2^B; e.g. 8-bit pixels "
                          "scaled to [0, 1) are --input-scale 0.00390625 --input-bits 8)")
        inp.out = TensorType(inp.out.shape, "uint", int(bits), float(scale))
        inp.quantizer = None
        if float(np.exp2(np.round(np.log2(scale)))) != float(scale):
            graph.meta.setdefault("warnings", []).append(
                f"--input-scale {scale} is not a power of two: Keras rounds the first "
                "layer's float32 sums, so a first-layer activation exactly on a threshold "
                "may differ from the model")
    elif given:
        t = inp.out
        if t.encoding != "uint" or t.scale != scale or t.bits != bits:
            raise IRError(f"the model's own input quantizer fixes the input format "
                          f"({t.encoding}, {t.bits} bits, scale {t.scale}); drop "
                          "--input-scale/--input-bits or make them match")
    return graph


def fold_output_affine(graph: Graph) -> Graph:
    """The last binary layer keeps its integer accumulator; the float steps after it (scale,
    bias, BatchNorm, also behind a Flatten/Reshape) become one affine that only the host
    applies: per channel, or per output element where a step after a Flatten is per feature.
    Flatten/Reshape steps stay in the graph (the output keeps the model's shape)."""
    tail: list[Node] = []
    node = graph.output
    while isinstance(node, (ChannelAffine, BatchNorm, Reshape)):
        tail.insert(0, node)
        node = graph.producer(node)
    steps = [op for op in tail if not isinstance(op, Reshape)]
    if not isinstance(node, Dense) or node.thresholds is not None:
        if steps:
            raise IRError(f"the float output steps {[n.name for n in steps]} follow "
                          f"{node.name!r} ({node.op}); supported: a binary Dense/Conv2D "
                          "followed by scale, bias or BatchNorm at the output (before or "
                          "after a Flatten)")
        return graph
    if not steps and node.output_affine is not None:
        return graph   # already folded (by the real-path sweep): folding again would reset it
    a, b = output_affine_terms(node, graph.producer(node).out, tail)
    node.output_affine = (a, b)
    node.out = TensorType(node.out.shape, "int", node.acc_bits or 2)
    for op in steps:
        graph.bypass(op)
    return propagate_types(graph)


def output_affine_terms(node: Dense, in_type: TensorType, tail: list[Node]
                        ) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) in float64 with output = a * acc + b, per channel of ``node`` when every step is
    per channel, else per element of its output (flattened channels-last)."""
    # a PGConv2D's accumulator is 3x its output (its input codes carry no scale)
    unit = 1.0 / 3.0 if isinstance(node, PGConv2D) else input_scale(in_type)
    a = np.full(node.out.size, unit, dtype=np.float64)
    b = np.zeros(node.out.size, dtype=np.float64)
    for op in tail:
        if isinstance(op, Reshape):
            continue
        features = op.out.shape[-1]
        mul, add = affine_terms(op, features)
        rows = (-1, features)
        a = (a.reshape(rows) * mul).reshape(-1)
        b = (b.reshape(rows) * mul + add).reshape(-1)
    per_channel = (a.reshape(-1, node.out_channels), b.reshape(-1, node.out_channels))
    if all(np.all(v == v[:1]) for v in per_channel):
        return per_channel[0][0].copy(), per_channel[1][0].copy()
    return a, b


def assign_accumulator_widths(graph: Graph) -> Graph:
    """acc_bits of every binary layer from its worst-case |acc|; thresholds are clamped to
    [-bound, bound + 1] (always-on and never-on), so the same width holds them."""
    for node in graph.matvec_nodes():
        in_type = graph.producer(node).out
        bound = accumulator_bound(node, in_type)
        node.acc_bits = signed_bits_for(bound + 1)
        if node.thresholds is not None:
            node.thresholds = np.clip(node.thresholds, -bound, bound + 1).astype(np.int64)
        elif node.out.encoding == "int":
            node.out = TensorType(node.out.shape, "int", node.acc_bits)
    return propagate_types(graph)  # a Flatten behind an accumulator output takes its width
