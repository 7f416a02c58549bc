"""Shared rules of the ops on real-valued (``fixed``/``int``) tensors: which inputs they take,
their fraction widths, and the element-wise cycle formula."""

from __future__ import annotations

import numpy as np

from bnn2fpga import packing
from bnn2fpga.ir import IRError, Node, TensorType
from bnn2fpga.ops import Cycles


def frac_of(t: TensorType) -> int:
    """Fraction bits of a real-valued tensor's codes (an ``int`` accumulator counts as 0)."""
    return t.frac if t.encoding == "fixed" else 0


def check_real(node: Node, t: TensorType, what: str = "input") -> None:
    if t.encoding not in ("fixed", "int"):
        raise IRError(f"node {node.name!r} ({node.op}): its {what} is {t.encoding}, expected "
                      "a fixed-point or integer tensor")


def check_codes(node: Node, t: TensorType, what: str = "input") -> None:
    """An op that reads integer codes as they are (threshold, fixed_affine): fixed, int, or
    the unsigned codes of a model's quantizer (``uint``, read zero-extended)."""
    if t.encoding not in ("fixed", "int", "uint"):
        raise IRError(f"node {node.name!r} ({node.op}): its {what} is {t.encoding}, expected "
                      "fixed-point, integer or unsigned codes")


def signed_input(t: TensorType) -> int:
    """The units' IN_SIGNED parameter: 1 for signed input codes, 0 for unsigned (``uint``)."""
    return int(t.is_signed)


def check_out_fixed(node: Node) -> None:
    if node.out.encoding != "fixed":
        raise IRError(f"node {node.name!r} ({node.op}): output {node.out.encoding}, expected "
                      "fixed (the format pass sets it)")


def check_lanes(node: Node, channels: int) -> None:
    pe = getattr(node, "pe", 1)
    if pe < 1 or channels % pe:
        raise IRError(f"node {node.name!r} ({node.op}): PE={pe} does not divide its "
                      f"{channels} channels")


def elementwise_cycles(node: Node, in_shape: tuple[int, ...]) -> Cycles:
    """One beat of PE lanes per cycle: elements / PE."""
    size = 1
    for s in in_shape:
        size *= s
    c = size // getattr(node, "pe", 1)
    return Cycles(c, c)


def no_unit_yet(b, node: Node, in_type) -> None:
    """Lowering of an op whose hardware unit does not exist yet: a clear refusal."""
    raise IRError(f"layer {node.name!r} ({node.op}): the reference runs it, but the hardware "
                  "has no unit for it yet; `bnn2fpga compile` writes design.json for the "
                  "reference only (--backend none)")


def max_abs(a: np.ndarray) -> int:
    return int(np.abs(np.asarray(a, np.int64)).max(initial=0))


def channel_table(node: Node, kind: str, p: dict[str, int]) -> tuple[np.ndarray, list[int]]:
    """The per-channel ROM of a ``fixed_affine`` (kind ``affine``) or ``threshold`` unit: a
    (C, K) table of signed fields and their widths, word field 0 lowest."""
    if kind == "affine":     # the second offset (add_neg) only where the unit has one
        cols = [node.mul_pos, node.mul_neg, node.add_in, node.add_out]
        widths = [p["MW"], p["MW"], p["AIW"], p["AOW"]]
        if p.get("AO2"):
            cols.append(node.add_neg)
            widths.append(p["AOW"])
        return np.stack([np.asarray(c, np.int64) for c in cols], axis=1), widths
    if kind == "threshold":
        c = node.thresholds.shape[0]
        neg = np.zeros((c, 1), np.int64)
        neg[list(node.negate_channels), 0] = 1
        return (np.concatenate([np.asarray(node.thresholds, np.int64), neg], axis=1),
                [p["TW"]] * p["NT"] + [1])
    raise IRError(f"unit kind {kind!r} has no per-channel table")


def channel_rom(node: Node, kind: str, p: dict[str, int]) -> tuple[list[list[int]], int]:
    """The ROM words of ``channel_table`` folded PE-wise ([PE][NF], channel nf*PE + pe,
    ``packing.channel_memory``) and packed (``packing.pack_fields``), with the word width:
    the one image both writers render (hex for $readmemh, ap_uint literals for HLS)."""
    table, widths = channel_table(node, kind, p)
    folded = packing.channel_memory(table, p["PE"])
    words = [[packing.pack_fields(row, widths) for row in per_pe] for per_pe in folded]
    return words, sum(widths)


MAX_JOIN_INPUTS = 2


def join_arity(node: Node) -> None:
    """The join units (add, concat) take two streams."""
    if len(node.inputs) > MAX_JOIN_INPUTS:
        raise IRError(f"layer {node.name!r} ({node.op}) reads {len(node.inputs)} tensors; "
                      f"its hardware unit takes {MAX_JOIN_INPUTS} (split it into a chain of "
                      "two-input nodes)")
