"""Folding rules and the cycle model: the one source used by passes, writers and estimator.

A matrix-vector unit with PE output lanes and SIMD input lanes takes
``(out_channels / PE) * (fan_in / SIMD)`` cycles per output pixel.  For a convolution the
sliding window emits SIMD channels of one tap per beat, so SIMD must divide the input
channels (as in FINN); this also keeps every beat inside one tap, so a padded tap is one
"invalid" flag per beat.
"""

from __future__ import annotations

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


def window_in_shape(node: Conv2D | MaxPool2D | MajorityPool2D) -> tuple[int, int, int]:
    """The smallest input (H, W, C) that gives ``node``'s output (used when the caller does
    not pass the real input shape)."""
    oh, ow, c = node.out.shape
    kh, kw = node.kernel
    sh, sw = node.stride
    top, bottom, left, right = node.pads
    c_in = node.fan_in // (kh * kw) if isinstance(node, Conv2D) else c
    return ((oh - 1) * sh + kh - top - bottom, (ow - 1) * sw + kw - left - right, c_in)


def node_cycles(node: Node, in_shape: tuple[int, ...] | None = None) -> int:
    """Cycles per frame of a node in steady state, as the RTL units run it (0 for nodes
    that cost no cycles).  ``in_shape``: the node's input tensor shape (bottleneck() passes
    it; without it the smallest input consistent with the output is assumed).

    * Dense: the MVTU, (OC/PE) * (fan_in/SIMD) cycles per output pixel.
    * Conv2D: sliding window + MVTU.  The window unit writes one beat of SIMD input channels
      per cycle (IH * IW * C/SIMD) while it emits the taps the MVTU consumes; the slower of
      the two sets the rate (the writer wins for a stride larger than the kernel and NF = 1).
    * MaxPool2D, MajorityPool2D: sliding window with all channels in one beat + reducer
      (bnn_pool / bnn_majority_pool): max(input pixels, output pixels * KH * KW), one beat
      per cycle each.
    """
    if isinstance(node, (Conv2D, MaxPool2D, MajorityPool2D)):
        ih, iw, c = in_shape if in_shape is not None else window_in_shape(node)
        oh, ow = node.out.shape[0], node.out.shape[1]
        if isinstance(node, Conv2D):
            return max(matvec_cycles(node), ih * iw * (c // node.simd))
        return max(ih * iw, oh * ow * node.kernel[0] * node.kernel[1])
    if isinstance(node, Dense):
        return matvec_cycles(node)
    return 0


def bottleneck(graph: Graph) -> tuple[str, int]:
    """(name, cycles) of the slowest unit: the frame interval of the dataflow pipeline."""
    def cycles_of(node: Node) -> int:
        if isinstance(node, (Conv2D, MaxPool2D, MajorityPool2D)):
            return node_cycles(node, graph.producer(node).out.shape)
        return node_cycles(node)

    name, cycles = max(((n.name, cycles_of(n)) for n in graph.nodes), key=lambda t: t[1])
    return name, cycles
