"""PGConv2D: FracBNN's precision-gated binary convolution on 2-bit codes
(``ir.PGConv2D``): an MSB pass for every output, an LSB pass only where the gate is on."""

from __future__ import annotations

import numpy as np

from bnn2fpga.ir import IRError, PGConv2D, TensorType
from bnn2fpga.ops import FIFO_DEPTH, Cycles, OpType
from bnn2fpga.ops import dense as matvec
from bnn2fpga.ops.conv2d import im2col
from bnn2fpga.ops.window import check_window_input, is_pointwise, lower_window, window_cycles

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


def accumulator_bound_of(fan_in: int) -> int:
    """|2M + gL| <= 3 * fan_in."""
    return 3 * fan_in


def accumulator_bound(node: PGConv2D) -> int:
    """|2M + gL| <= 3 * fan_in."""
    return accumulator_bound_of(node.fan_in)


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


def groups(node: PGConv2D, pe: int | None = None) -> int:
    """Output groups per frame: pixels x neuron folds (each one MSB pass)."""
    pe = node.pe if pe is None else pe
    return node.out.shape[0] * node.out.shape[1] * (node.out_channels // pe)


def lsb_passes(node: PGConv2D, density: float | None = None, pe: int | None = None) -> int:
    """LSB passes per frame at a gate density (default the node's ``gate_density``)."""
    d = node.gate_density if density is None else density
    return int(round(d * groups(node, pe)))


def pg_cycles(node: PGConv2D, passes: int, pe: int | None = None,
              simd: int | None = None) -> int:
    """Cycles per frame of bnn_pg_mvtu / PrecisionGatedMVTU with ``passes`` LSB passes:
    groups * SF for the MSB passes + passes * SF (no bubble between passes or groups)."""
    pe = node.pe if pe is None else pe
    simd = node.simd if simd is None else simd
    sf = node.fan_in // simd
    return (groups(node, pe) + passes) * sf


def cycles(node: PGConv2D, in_shape: tuple[int, ...]) -> Cycles:
    """The one cycle formula of a PG layer (``pg_cycles``): an MSB pass (SF cycles) for
    every group, plus an LSB pass of SF cycles for each gated group: worst = every gate on,
    expected = at ``gate_density`` (``lsb_passes``).  The window's writer bounds both from
    below, as for a Conv2D."""
    window = window_cycles(node, in_shape, in_shape[-1] // node.simd)
    worst = max(pg_cycles(node, groups(node)), window)
    expected = max(pg_cycles(node, lsb_passes(node)), window)
    return Cycles(worst, expected)


def pg_params(node: PGConv2D, pe: int, simd: int, tap_valid: bool) -> dict[str, int]:
    """bnn_pg_mvtu / PrecisionGatedMVTU parameters of ``node`` at (pe, simd)."""
    p = matvec.mvtu_params(node, TensorType((1,), "bipolar"), pe, simd, tap_valid)
    if (1 << (node.acc_bits - 1)) - 1 < accumulator_bound(node) + 1:
        raise IRError(f"layer {node.name!r}: acc_bits={node.acc_bits} cannot hold "
                      f"+-{accumulator_bound(node) + 1}")
    return {"PE": pe, "SIMD": simd, "NF": p["NF"], "SF": p["SF"],
            "USE_TAP_VALID": int(tap_valid), "ACC_W": node.acc_bits, "NT": p["NT"],
            "TW": node.acc_bits, "OUT_W": p["OUT_W"],
            "LSB_PASSES": lsb_passes(node, pe=pe)}


def gate_memory(node: PGConv2D, pe: int) -> np.ndarray:
    """(PE, NF) gate thresholds, channel nf*PE + p at [p, nf], clamped to [-fan_in,
    fan_in + 1] (|M| <= fan_in, so the gates are unchanged) to fit the accumulator."""
    g = np.clip(np.asarray(node.gate_thresholds, np.int64), -node.fan_in, node.fan_in + 1)
    return g.reshape(-1, pe).T.copy()


def lower(b, node: PGConv2D, in_type: TensorType) -> None:
    """Sliding window (flagging padded taps: a padded 2-bit code would add -1 to both
    planes) -> a FIFO of one input vector (the unit replays every vector for its LSB pass,
    so its window must keep writing meanwhile, as for an MVTU with several folds) -> the
    two-pass unit."""
    pe, simd = matvec.check_folding(node, b.fold)
    tap_valid = any(node.pads)
    if not is_pointwise(node):
        lower_window(b, node, in_type, simd, tap_valid)
    params = pg_params(node, pe, simd, tap_valid)
    b.add_fifo(node.name, max(FIFO_DEPTH, params["SF"]), "in_fifo")
    pixels = node.out.shape[0] * node.out.shape[1]
    b.add("pg_mvtu", node.name, params, pe, params["OUT_W"], pixels * params["NF"],
          signed=node.thresholds is None)


OP = OpType("pgconv2d", check=check, infer=None, run=run, cycles=cycles,
            first_lanes=lambda node, fold: fold[node.name][1], lower=lower)
