"""Majority pool reducer (bnn_majority_pool / MajorityReduce): average-pool of +-1 values
then sign, as a vote count per channel, behind a sliding window."""

from __future__ import annotations

import numpy as np

from bnn2fpga.units import (
    HlsProcess,
    Params,
    UnitType,
    bits_for,
    clog2,
    streaming_process,
)


def majority_pool_features(p: dict[str, int]) -> dict[str, float]:
    """bnn_majority_pool: per channel an NW = bits_for(KK)-bit vote counter (cleared on the
    first tap, +1 on a valid +1 tap) and the comparison 2*ones >= valid, a few LUTs per
    channel growing with NW (measured 4.4 at 2 bits, 5.0 at 3, 7.2 at 4); the shared
    valid-tap counter and tap counter; registers: the counts, the output, the tap
    counter."""
    nw = bits_for(p["KK"])
    tap = clog2(p["KK"])
    return {"const": 1.0, "counters": tap + nw, "channels": p["C"],
            "channel_bits": p["C"] * nw,
            "ff_regs": tap + nw + p["C"] * nw + p["C"] + 1}


def hls_process(p: Params, frames: int) -> HlsProcess:
    """The reducer's HLS loop: one tap read per iteration, the pooled pixel written with the
    window's last tap (depth 1)."""
    kk = p["KK"]
    return streaming_process(p["OUT_BEATS"] * kk, 1, kk, 0, kk - 1, 1, frames)


def sweep(rng: np.random.Generator) -> list[Params]:
    """Calibration points: channels x taps."""
    pts: list[Params] = []
    for c, kk in ((8, 4), (16, 4), (64, 4), (128, 4), (256, 4), (6, 9), (32, 9), (21, 9),
                  (16, 2), (64, 9), (10, 6), (3, 4)):
        pts.append({"C": c, "KK": kk})
    return pts


UNIT = UnitType(
    kind="majority_pool",
    sv_files=('bnn_majority_pool.sv',),
    hls_files=('majority_pool.h',),
    delay=lambda p: 1,  # output register
    features=lambda p, styles: majority_pool_features(p),
    hls_process=hls_process,
    coefficients={'lut': {'counters': 1.9, 'channels': 3.5, 'channel_bits': 0.6},
                  'ff': {'ff_regs': 1.0}},
    sweep=sweep, reads_tap_valid=True)
