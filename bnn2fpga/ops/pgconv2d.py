"""PGConv2D: FracBNN's precision-gated binary convolution on 2-bit codes
(``ir.PGConv2D``): an MSB pass for every output, an LSB pass only where the gate is on."""

from __future__ import annotations

import numpy as np

from bnn2fpga.ir import IRError, PGConv2D, TensorType
from bnn2fpga.ops import Cycles, OpType
from bnn2fpga.ops import dense as matvec
from bnn2fpga.ops.conv2d import im2col
from bnn2fpga.ops.realvalued import no_unit_yet
from bnn2fpga.ops.window import check_window_input, window_cycles

PLANE = TensorType((1,), "bipolar")


def plane_sums(node: PGConv2D, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(M, L): the binary convolution of the MSB and LSB planes, (N, P, OC) each (a padded
    tap adds 0: it is masked like a bipolar zero pad)."""
    q = np.asarray(codes, np.int64)
    n = q.shape[0]
    sums = []
    for plane in ((q >= 2).astype(np.int64), (q & 1).astype(np.int64)):
        patches, vmask = im2col(plane, node, 0)
        rows = patches.reshape(n * patches.shape[1], -1)
        valid = np.tile(vmask, (n, 1)) if vmask.min() == 0 else None
        sums.append(matvec.bipolar_dot(rows.astype(np.uint8), valid, node.weights)
                    .reshape(n, -1, node.out_channels))
    return sums[0], sums[1]


def gates(node: PGConv2D, m_sum: np.ndarray) -> np.ndarray:
    """g = [M >= gate_thresholds[c]] (0/1), the shape of ``m_sum``."""
    return (m_sum >= node.gate_thresholds).astype(np.int64)


def accumulators(node: PGConv2D, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(acc = 2M + g*L, g), (N, P, OC) each."""
    m_sum, l_sum = plane_sums(node, codes)
    g = gates(node, m_sum)
    return 2 * m_sum + g * l_sum, g


def group_density(node: PGConv2D, g: np.ndarray, pe: int | None = None) -> float:
    """Fraction of output groups (one pixel x the PE channels of a neuron fold) with a gate
    on: the fraction of LSB passes the unit runs."""
    pe = node.pe if pe is None else pe
    groups = g.reshape(g.shape[0], g.shape[1], -1, pe).max(axis=-1)
    return float(groups.mean()) if groups.size else 0.0


def run(node: PGConv2D, in_type: TensorType, codes: np.ndarray) -> np.ndarray:
    acc, _ = accumulators(node, codes)
    n = acc.shape[0]
    if node.thresholds is not None:
        acc = (acc[..., None] >= node.thresholds).sum(axis=-1)
    return acc.reshape((n,) + node.out.shape)


def accumulator_bound(node: PGConv2D) -> int:
    """|2M + gL| <= 3 * fan_in."""
    return 3 * node.fan_in


def check(node: PGConv2D, src: TensorType) -> None:
    where = f"node {node.name!r} (pgconv2d)"
    if src.encoding != "uint" or src.bits != 2:
        raise IRError(f"{where}: input {src.encoding} {src.bits}-bit, expected the 2-bit codes "
                      "of FracBNN's quantizer (uint 2)")
    check_window_input(node, src.shape)
    if node.pad != "zero":
        raise IRError(f"{where}: pad {node.pad!r}, expected 'zero' (the layer pads with 0)")
    if node.fan_in != node.kernel[0] * node.kernel[1] * src.shape[-1]:
        raise IRError(f"{where}: fan-in {node.fan_in} does not match the kernel {node.kernel} "
                      f"over the input {src.shape}")
    g = node.gate_thresholds
    if g.shape != (node.out_channels,) or g.dtype.kind != "i":
        raise IRError(f"{where}: gate_thresholds must be {node.out_channels} integers")
    bound = accumulator_bound(node)
    if node.acc_bits < 2 or (1 << (node.acc_bits - 1)) <= bound:
        raise IRError(f"{where}: accumulator width {node.acc_bits} cannot hold +-{bound + 1}")
    if node.thresholds is not None and np.any(np.diff(node.thresholds, axis=1) < 0):
        raise IRError(f"{where}: thresholds not ascending")
    if node.thresholds is None and node.output_affine is None:
        raise IRError(f"{where}: an accumulator output needs an output affine")
    if not 0.0 <= node.gate_density <= 1.0:
        raise IRError(f"{where}: gate_density {node.gate_density} outside [0, 1]")
    if err := matvec.folding_error(node, node.pe, node.simd):
        raise IRError(err)


def cycles(node: PGConv2D, in_shape: tuple[int, ...]) -> Cycles:
    """MSB pass (pixels * NF * SF) for every output, plus an LSB pass of the same length
    for each gated group: worst = every gate on, expected = at ``gate_density``.  The
    window's writer bounds both from below, as for a Conv2D."""
    msb = matvec.matvec_cycles(node)
    window = window_cycles(node, in_shape, in_shape[-1] // node.simd)
    worst = max(2 * msb, window)
    expected = max(int(round(msb * (1.0 + node.gate_density))), window)
    return Cycles(worst, expected)


OP = OpType("pgconv2d", check=check, infer=None, run=run, cycles=cycles,
            first_lanes=lambda node, fold: fold[node.name][1], lower=no_unit_yet)
