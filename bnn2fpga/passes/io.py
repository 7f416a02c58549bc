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
    Sign,
    TensorType,
    signed_bits_for,
)
from bnn2fpga.passes.thresholds import affine_terms, input_scale
from bnn2fpga.reference import accumulator_bound

MAX_INPUT_BITS = 16


def fold_input_sign(graph: Graph) -> Graph:
    """A sign right after a real-valued input binarises on the host: the input is bipolar."""
    inp = graph.input
    consumers = graph.consumers(inp.name)
    if inp.out.encoding == "float" and len(consumers) == 1 and isinstance(consumers[0], Sign):
        inp.out = TensorType(inp.out.shape, "bipolar")
        inp.quantizer = "sign"
        graph.bypass(consumers[0])
    return graph


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
    bias, BatchNorm) become one per-class affine that only the host applies."""
    tail = []
    node = graph.output
    while isinstance(node, (ChannelAffine, BatchNorm)):
        tail.insert(0, node)
        node = graph.producer(node)
    if not isinstance(node, Dense) or node.thresholds is not None:
        if tail:
            raise IRError(f"the float output steps {[n.name for n in tail]} follow "
                          f"{node.name!r} ({node.op}); supported: a binary Dense/Conv2D "
                          "followed by scale, bias or BatchNorm at the output")
        return graph
    channels = node.out_channels
    in_type = graph.producer(node).out
    a = np.full(channels, input_scale(in_type), dtype=np.float64)
    b = np.zeros(channels, dtype=np.float64)
    for op in tail:
        mul, add = affine_terms(op, channels)
        a, b = a * mul, b * mul + add
    node.output_affine = (a, b)
    node.out = TensorType(node.out.shape, "int", node.acc_bits or 2)
    for op in tail:
        graph.bypass(op)
    return graph


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
    return graph
