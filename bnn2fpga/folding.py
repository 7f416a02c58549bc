"""Folding rules and the cycle model: the one source used by passes, writers and estimator.

A matrix-vector unit with PE output lanes and SIMD input lanes takes
``(out_channels / PE) * (fan_in / SIMD)`` cycles per output pixel.  For a convolution the
sliding window emits SIMD channels of one tap per beat, so SIMD must divide the input
channels (as in FINN); this also keeps every beat inside one tap, so a padded tap is one
"invalid" flag per beat.
"""

from __future__ import annotations

from bnn2fpga.ir import Conv2D, Dense, Graph, IRError, MaxPool2D, Node

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


def node_cycles(node: Node) -> int:
    """Cycles per frame of a node in steady state (0 for nodes that cost no cycles)."""
    if isinstance(node, Dense):
        return matvec_cycles(node)
    if isinstance(node, MaxPool2D):
        # one input pixel per cycle (all channels in one beat)
        shape = node.out.shape
        return shape[0] * shape[1] * node.stride[0] * node.stride[1]
    return 0


def bottleneck(graph: Graph) -> tuple[str, int]:
    """(name, cycles) of the slowest unit: the frame interval of the dataflow pipeline."""
    name, cycles = max(((n.name, node_cycles(n)) for n in graph.nodes), key=lambda t: t[1])
    return name, cycles
