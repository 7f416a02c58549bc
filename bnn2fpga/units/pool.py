"""Max/min pool reducer (bnn_pool / PoolReduce) behind a sliding window."""

from __future__ import annotations

import math

import numpy as np

from bnn2fpga.units import (
    HlsProcess,
    MemorySpec,
    Params,
    UnitType,
    clog2,
    streaming_process,
)


def pool_features(p: dict[str, int]) -> dict[str, float]:
    """bnn_pool: per lane the fold of the kept value and the new tap: one LUT per bit for
    1-bit codes (OR/AND with the padded-tap and first-tap selects) and for the mux of wider
    codes; codes wider than 2 bits also need a comparator (a LUT per 2 bits on the carry
    chain); tap/group counters and the per-group 'seen' bits."""
    width, cgw = p["SIMD"] * p["EB"], clog2(p["CG"])
    return {"const": 1.0,
            "tap_counter": clog2(p["KK"]),
            "groups": cgw + p["CG"] if p["CG"] > 1 else 0.0,      # group counter, seen bits
            "or_bits": width if p["EB"] == 1 else 0.0,
            "mux_bits": width if p["EB"] > 1 else 0.0,
            "compare_luts": p["SIMD"] * math.ceil(p["EB"] / 2) if p["EB"] > 2 else 0.0,
            # with groups, yosys keeps a copy of the group counter as the LUTRAM's
            # read address (as for the FIFO's read pointer)
            "ff_regs": (width + (width if p["CG"] == 1 else 0) + clog2(p["KK"])
                        + (2 * cgw if p["CG"] > 1 else 0) + p["CG"] + 1)}


def hls_process(p: Params, frames: int) -> HlsProcess:
    """The reducer's HLS loop: one tap read per iteration, the pooled pixel written with the
    window's last tap (depth 1)."""
    kk = p["KK"]
    return streaming_process(p["OUT_BEATS"] * kk, 1, kk, 0, kk - 1, 1, frames)


def memories(p: Params) -> list[MemorySpec]:
    """With channel groups, the partial maxima of each group (yosys maps it as a dual-port
    RAM32M, 6 bits per 4 LUTs, although it reads where it writes)."""
    if p["CG"] > 1:
        return [MemorySpec("partial", p["CG"], p["SIMD"] * p["EB"], False)]
    return []


def sweep(rng: np.random.Generator) -> list[Params]:
    """Calibration points: widths, channel groups, taps, signed codes."""
    pts: list[Params] = []
    for simd, eb, cg, kk, signed in ((64, 1, 1, 4, 0), (128, 1, 1, 4, 0), (256, 1, 1, 4, 0),
                                     (16, 1, 1, 9, 0), (8, 4, 1, 4, 0), (8, 8, 1, 4, 1),
                                     (16, 1, 4, 4, 0), (6, 1, 1, 4, 0), (32, 2, 2, 4, 0),
                                     (15, 1, 1, 4, 0), (32, 1, 1, 9, 0), (12, 12, 1, 4, 1),
                                     (8, 1, 3, 4, 0), (64, 1, 2, 4, 0), (16, 2, 1, 4, 0),
                                     (8, 3, 1, 4, 0), (4, 6, 1, 4, 1), (16, 4, 2, 4, 0),
                                     (32, 1, 4, 9, 0), (6, 16, 1, 4, 1)):
        pts.append({"SIMD": simd, "EB": eb, "CG": cg, "KK": kk, "SIGNED": signed})
    return pts


UNIT = UnitType(
    kind="pool",
    sv_files=('bnn_pool.sv',),
    hls_files=('maxpool.h',),
    delay=lambda p: 1,  # output register
    memories=memories, features=lambda p, styles: pool_features(p),
    hls_process=hls_process,
    coefficients={'lut': {'const': 1,
                          'tap_counter': 1,
                          'groups': 2,
                          'or_bits': 1.0,
                          'mux_bits': 1.0,
                          'compare_luts': 1.5},
                  'ff': {'ff_regs': 1.0}},
    sweep=sweep, reads_tap_valid=True)
