"""Folding rules and the cycle model: the one source used by passes, writers and estimator.

A matrix-vector unit with PE output lanes and SIMD input lanes takes
``(out_channels / PE) * (fan_in / SIMD)`` cycles per output pixel.  For a convolution the
sliding window emits SIMD channels of one tap per beat, so SIMD must divide the input
channels (as in FINN); this also keeps every beat inside one tap, so a padded tap is one
"invalid" flag per beat.
"""

from __future__ import annotations

from dataclasses import dataclass

from bnn2fpga.ir import Conv2D, Dense, Graph, IRError, MajorityPool2D, MaxPool2D, Node

DEFAULT_MAX_SIMD = 32
DEFAULT_MAX_PE = 8


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def simd_limit(node: Dense) -> int:
    """The number SIMD must divide: input channels for a conv, fan-in for a dense layer."""
    if isinstance(node, Conv2D):
        return node.fan_in // (node.kernel[0] * node.kernel[1])
    return node.fan_in


def folding_error(node: Dense, pe: int, simd: int) -> str | None:
    """Why (pe, simd) is not a legal folding for ``node``, or None if it is."""
    what = "input channels" if isinstance(node, Conv2D) else "fan-in"
    limit = simd_limit(node)
    problems = []
    if pe < 1 or node.out_channels % pe:
        problems.append(f"PE={pe} does not divide out_channels={node.out_channels} "
                        f"(valid PE: {divisors(node.out_channels)})")
    if simd < 1 or limit % simd:
        problems.append(f"SIMD={simd} does not divide {what}={limit} "
                        f"(valid SIMD: {divisors(limit)})")
    if not problems:
        return None
    return f"layer {node.name!r} ({type(node).__name__}): " + "; ".join(problems)


def validate_folding(graph: Graph) -> None:
    errors = [e for n in graph.matvec_nodes() if (e := folding_error(n, n.pe, n.simd))]
    if errors:
        raise IRError("invalid folding:\n  " + "\n  ".join(errors))


def default_folding(node: Dense) -> tuple[int, int]:
    pe = max(d for d in divisors(node.out_channels) if d <= DEFAULT_MAX_PE)
    simd = max(d for d in divisors(simd_limit(node)) if d <= DEFAULT_MAX_SIMD)
    return pe, simd


def out_pixels(node: Node) -> int:
    shape = node.out.shape
    return shape[0] * shape[1] if len(shape) == 3 else 1


def matvec_cycles(node: Dense, pe: int | None = None, simd: int | None = None) -> int:
    """Cycles per frame of a matrix-vector unit: pixels * (OC/PE) * (fan_in/SIMD)."""
    pe = node.pe if pe is None else pe
    simd = node.simd if simd is None else simd
    return out_pixels(node) * (node.out_channels // pe) * (node.fan_in // simd)


@dataclass(frozen=True)
class Cycles:
    """Cycles per frame of a unit in steady state: ``worst`` bounds every frame; ``expected``
    is the mean over the data (equal to ``worst`` for units whose time does not depend on
    the data, as every unit's today)."""

    worst: int
    expected: int


def unit_cycles(node: Node, in_shape: tuple[int, ...]) -> Cycles:
    """Worst-case and expected cycles per frame of ``node``'s units, as the RTL runs them
    (0 for nodes that cost no cycles), given the node's input tensor shape.

    * Dense: the MVTU, (OC/PE) * (fan_in/SIMD) cycles per output pixel.
    * Conv2D: sliding window + MVTU.  The window unit writes one beat of SIMD input channels
      per cycle (IH * IW * C/SIMD) while it emits the taps the MVTU consumes; the slower of
      the two sets the rate (the writer wins for a stride larger than the kernel and NF = 1).
    * MaxPool2D, MajorityPool2D: sliding window with all channels in one beat + reducer
      (bnn_pool / bnn_majority_pool): max(input pixels, output pixels * KH * KW), one beat
      per cycle each.
    """
    if isinstance(node, (Conv2D, MaxPool2D, MajorityPool2D)):
        if len(in_shape) != 3:
            raise IRError(f"node {node.name!r} ({node.op}): a windowed unit needs an (H, W, C) "
                          f"input shape, got {tuple(in_shape)}")
        ih, iw, c = in_shape
        oh, ow = node.out.shape[0], node.out.shape[1]
        if isinstance(node, Conv2D):
            cycles = max(matvec_cycles(node), ih * iw * (c // node.simd))
        else:
            cycles = max(ih * iw, oh * ow * node.kernel[0] * node.kernel[1])
    elif isinstance(node, Dense):
        cycles = matvec_cycles(node)
    else:
        cycles = 0
    return Cycles(cycles, cycles)


def node_cycles(node: Node, in_shape: tuple[int, ...]) -> int:
    """Worst-case cycles per frame of ``node`` (``unit_cycles(...).worst``)."""
    return unit_cycles(node, in_shape).worst


def bottleneck(graph: Graph) -> tuple[str, int]:
    """(name, cycles) of the slowest unit: the frame interval of the dataflow pipeline."""
    return max(((n.name, node_cycles(n, graph.producer(n).out.shape)) for n in graph.nodes[1:]),
               key=lambda t: t[1])
