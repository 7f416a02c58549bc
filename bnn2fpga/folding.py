"""Folding rules and the cycle model: the one source used by passes, writers and estimator.

A matrix-vector unit with PE output lanes and SIMD input lanes takes
``(out_channels / PE) * (fan_in / SIMD)`` cycles per output pixel.  For a convolution the
sliding window emits SIMD channels of one tap per beat, so SIMD must divide the input
channels (as in FINN); this also keeps every beat inside one tap, so a padded tap is one
"invalid" flag per beat.  Each op's formula and legal foldings live with the op
(``bnn2fpga.ops``); this module is the graph-level view of them.
"""

from __future__ import annotations

from bnn2fpga.ir import Graph, Input, IRError, Node
from bnn2fpga.ops import Cycles, divisors, op_type, out_pixels
from bnn2fpga.ops.dense import (
    DEFAULT_MAX_PE,
    DEFAULT_MAX_SIMD,
    default_folding,
    folding_error,
    matvec_cycles,
    simd_limit,
)

__all__ = ["DEFAULT_MAX_PE", "DEFAULT_MAX_SIMD", "Cycles", "bottleneck", "default_folding",
           "divisors", "folding_error", "matvec_cycles", "node_cycles", "out_pixels",
           "simd_limit", "unit_cycles", "validate_folding"]


def validate_folding(graph: Graph) -> None:
    errors = [e for n in graph.matvec_nodes() if (e := folding_error(n, n.pe, n.simd))]
    if errors:
        raise IRError("invalid folding:\n  " + "\n  ".join(errors))


def unit_cycles(node: Node, in_shape: tuple[int, ...]) -> Cycles:
    """Worst-case and expected cycles per frame of ``node``'s units, as the RTL runs them,
    given the node's input tensor shape (its op's ``cycles``; the input costs none)."""
    if isinstance(node, Input):
        return Cycles(0, 0)
    return op_type(node).cycles(node, tuple(in_shape))


def node_cycles(node: Node, in_shape: tuple[int, ...]) -> int:
    """Worst-case cycles per frame of ``node`` (``unit_cycles(...).worst``)."""
    return unit_cycles(node, in_shape).worst


def bottleneck(graph: Graph) -> tuple[str, int]:
    """(name, cycles) of the slowest unit: the frame interval of the dataflow pipeline."""
    return max(((n.name, node_cycles(n, graph.producers(n)[0].out.shape))
                for n in graph.nodes[1:]),
               key=lambda t: t[1])
