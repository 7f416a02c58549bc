"""Folding rules and the cycle model: the one source used by passes, writers and estimator.

A matrix-vector unit with PE output lanes and SIMD input lanes takes
``(out_channels / PE) * (fan_in / SIMD)`` cycles per output pixel.  For a convolution the
sliding window emits SIMD channels of one tap per beat, so SIMD must divide the input
channels (as in FINN); this also keeps every beat inside one tap, so a padded tap is one
"invalid" flag per beat.  Each op's formula and legal foldings live with the op
(``bnn2fpga.ops``); this module is the graph-level view of them.
"""

from __future__ import annotations

import dataclasses

from bnn2fpga.ir import Graph, Input, IRError, Node, PGConv2D
from bnn2fpga.ops import Cycles, divisors, op_type, out_pixels
from bnn2fpga.ops.dense import (
    DEFAULT_MAX_PE,
    DEFAULT_MAX_SIMD,
    default_folding,
    folding_error,
    matvec_cycles,
    simd_limit,
)

__all__ = ["CYCLE_MODES", "DEFAULT_MAX_PE", "DEFAULT_MAX_SIMD", "Cycles", "bottleneck",
           "default_folding", "divisors", "folding_error", "gate_density_at", "layer_cycles",
           "matvec_cycles", "node_cycles", "out_pixels", "refresh_gate_density", "simd_limit",
           "unit_cycles", "validate_folding"]

# which figure of a data-dependent unit (FracBNN's gated LSB pass) the folding search
# budgets: "worst" (every gate on) or "expected" (at the gate density measured on the
# calibration frames)
CYCLE_MODES = ("worst", "expected")


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


def gate_density_at(graph: Graph, node: PGConv2D, pe: int) -> float:
    """The gate density of ``node`` at PE ``pe``: measured on the calibration frames
    (``passes.fracbnn.measure_gate_density`` keeps it for every legal PE, since a group is
    a pixel x PE lanes), else the node's own figure (1.0 until measured)."""
    layers = (graph.meta.get("gate_density") or {}).get("layers") or {}
    by_pe = (layers.get(node.name) or {}).get("by_pe") or {}
    return float(by_pe.get(str(int(pe)), node.gate_density if pe == node.pe else 1.0))


def refresh_gate_density(graph: Graph) -> Graph:
    """Every PGConv2D's ``gate_density`` at its current PE (after a folding change)."""
    for node in graph.nodes:
        if isinstance(node, PGConv2D):
            node.gate_density = gate_density_at(graph, node, node.pe)
    return graph


def layer_cycles(graph: Graph, node: Node, pe: int, simd: int, mode: str = "worst") -> int:
    """Cycles per frame of a matrix-vector layer at (pe, simd), as the folding search
    budgets them: ``matvec_cycles`` for a binary layer; a PGConv2D's own cycle formula
    (``ops.pgconv2d.cycles``) in ``mode`` "worst" (every gate on) or "expected" (at its
    measured gate density for that PE)."""
    if mode not in CYCLE_MODES:
        raise IRError(f"unknown cycle mode {mode!r}; choose one of {', '.join(CYCLE_MODES)}")
    if not isinstance(node, PGConv2D):
        return matvec_cycles(node, pe, simd)
    at = dataclasses.replace(node, pe=pe, simd=simd,
                             gate_density=gate_density_at(graph, node, pe))
    c = unit_cycles(at, graph.producer(node).out.shape)
    return c.worst if mode == "worst" else c.expected
