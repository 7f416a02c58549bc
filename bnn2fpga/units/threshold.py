"""Thresholds on fixed-point / integer codes (bnn_threshold / ThresholdUnit): RSign, the
sign of a residual sum, multi-bit activations; PE lanes, a per-channel threshold ROM."""

from __future__ import annotations

import numpy as np

from bnn2fpga.units import (
    HlsProcess,
    MemorySpec,
    Params,
    UnitType,
    clog2,
    distinct_columns,
    rom_read_registers,
    streaming_process,
)


def compare_bits(p: Params) -> int:
    """Bits of each comparison: x, -x and every threshold."""
    return max(p["IB"] + 1, p["TW"])


def features(p: Params, styles: dict[str, str]) -> dict[str, float]:
    """Per lane the negation (XW bits: a subtract from 0 and a mux), NT comparators of XW
    bits (against the ROM's word: a bit of it is a constant, which is cheaper, with the
    probability ``distinct_columns`` gives, always when NF = 1) and
    the count of thresholds crossed (an adder of NT bits, OB wide); the fold counter.
    Registers: the output, the counter, the valid and the ROM's read register
    (``rom_read_registers``)."""
    pe, xw, nt = p["PE"], compare_bits(p), p["NT"]
    compares = pe * nt * xw
    live = distinct_columns(1, p["NF"])     # a ROM bit's chance not to be a constant
    return {"const": 1.0,
            "counters": clog2(p["NF"]) if p["NF"] > 1 else 0.0,
            "negate_bits": pe * xw,
            "compare_bits": compares * live,
            "compare_const_bits": compares * (1 - live),
            "count_bits": pe * nt * p["OB"] if nt > 1 else 0.0,
            "ff_regs": (pe * p["OB"] + (clog2(p["NF"]) if p["NF"] > 1 else 0) + 1
                        + rom_read_registers(memories(p)[0],
                                             styles.get("thresholds", "logic")))}


def memories(p: Params) -> list[MemorySpec]:
    """Thresholds and the negate flag per channel, one ROM of NF words per PE."""
    return [MemorySpec("thresholds", p["NF"], p["NT"] * p["TW"] + 1, True, p["PE"],
                       rom_model="lut6")]


def hls_process(p: Params, frames: int) -> HlsProcess:
    """One beat read and written per iteration, one stage deep (the RTL's)."""
    return streaming_process(p["OUT_BEATS"], 1, 1, 0, 0, 1, frames)


def sweep(rng: np.random.Generator) -> list[Params]:
    """Calibration points: lanes, folds, code widths, thresholds per channel."""
    pts = []
    for pe, nf, ib, nt, tw in ((1, 1, 8, 1, 8), (4, 1, 8, 1, 9), (8, 4, 12, 1, 12),
                               (2, 16, 8, 3, 9), (16, 2, 6, 1, 7), (4, 8, 16, 7, 16),
                               (1, 64, 8, 1, 9), (32, 1, 8, 1, 9), (8, 2, 10, 15, 10)):
        pts.append({"PE": pe, "NF": nf, "IB": ib, "NT": nt, "TW": tw,
                    "OB": max(1, nt.bit_length())})
    return pts


UNIT = UnitType(
    kind="threshold",
    sv_files=("bnn_threshold.sv",),
    hls_files=("threshold.h",),
    delay=lambda p: 1,  # output register
    memories=memories, features=features, hls_process=hls_process,
    coefficients={"lut": {"const": 1, "counters": 1.0, "negate_bits": 0.5,
                          "compare_bits": 0.6, "compare_const_bits": 0.4,
                          "count_bits": 1.0},
                  "ff": {"ff_regs": 1.0}},
    sweep=sweep)
