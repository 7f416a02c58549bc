"""Average pool of fixed-point codes (bnn_global_avgpool / AvgPoolReduce): a running
per-channel sum over HW beats, then a constant multiplier, rounding and saturation.  A global
pool sums a frame's pixels; a windowed pool sits behind a sliding window and sums each output
pixel's HW = KH*KW taps."""

from __future__ import annotations

import numpy as np

from bnn2fpga.units import HlsProcess, Params, UnitType, clog2, streaming_process
from bnn2fpga.units.fixed_affine import multiplier_dsps


def scale_dsps(p: Params) -> int:
    """DSP slices of one channel's constant multiplier ``sum * MUL``: none for a power of two
    (a shift: synthesis has no multiplier), else ``multiplier_dsps`` of SW x MW bits."""
    mul = abs(p["MUL"])
    if mul & (mul - 1) == 0:
        return 0
    return multiplier_dsps(p["SW"], p["MW"])


def saturates(p: Params) -> bool:
    """Whether ``round_shift(sum * MUL, SHIFT)`` can leave OB bits: PW - SHIFT bits remain."""
    return p["PW"] - p["SHIFT"] > p["OB"]


def features(p: Params, styles: dict[str, str]) -> dict[str, float]:
    """Per channel: the running sum (an SW-bit adder with the first-beat clear folded in);
    the constant multiplier (``scale_dsps``: DSPs, a shift for a power of two, else adders
    of the partial products in LUTs, one SW-bit adder per set bit beyond the first); the
    rounding increment on the PW - SHIFT + 1 bits the shift keeps (inside the DSP's
    post-adder when the product is there); the saturation: a compare of the top
    PW - SHIFT - OB + 1 bits and an OB-bit output mux, absent when nothing can saturate.
    The pixel counter.  Registers: the sums, the output, the counter and its valid."""
    c = p["C"]
    dsps = scale_dsps(p)
    mul = abs(p["MUL"])
    shifted = mul & (mul - 1) == 0
    kept = max(0, p["PW"] - p["SHIFT"] + 1)
    sat = saturates(p)
    return {"const": 1.0, "counters": clog2(p["HW"]),
            "sum_bits": c * p["SW"],
            "lut_mul_bits": 0.0 if dsps or shifted else c * p["SW"] * (bin(mul).count("1") - 1),
            "round_bits": 0.0 if dsps or p["SHIFT"] == 0 else c * kept,
            "sat_bits": c * (p["PW"] - p["SHIFT"] - p["OB"] + 1) if sat else 0.0,
            "sat_mux": c * p["OB"] if sat else 0.0,
            "dsp": c * dsps,
            "ff_regs": c * (p["SW"] + p["OB"]) + clog2(p["HW"]) + 1}


def hls_process(p: Params, frames: int) -> HlsProcess:
    """A read every iteration, each pooled pixel written with its HW-th beat (depth 1)."""
    hw = p["HW"]
    return streaming_process(p["OUT_BEATS"] * hw, 1, hw, 0, hw - 1, 1, frames)


def sweep_params(c: int, hw: int, ib: int, ob: int, mul: int, shift: int) -> Params:
    """bnn_global_avgpool parameters as ``ops.fixed_avgpool`` sizes them."""
    sw = max(2, (hw << (ib - 1)).bit_length() + 1)
    pw = max(ob + 1, ((hw << (ib - 1)) * mul + (1 << shift)).bit_length() + 1)
    return {"C": c, "HW": hw, "IB": ib, "OB": ob, "SW": sw, "MUL": mul,
            "MW": mul.bit_length() + 1, "PW": pw, "SHIFT": shift}


def sweep(rng: np.random.Generator) -> list[Params]:
    """Calibration points: channels, pixels (global pools and 2x2 / 3x3 windows), code
    widths, scales that are a shift (1, 2^k: no multiplier), DSP multipliers and ones with
    outputs that saturate or cannot."""
    return [sweep_params(*pt) for pt in (
        (8, 16, 8, 8, 1, 4), (16, 64, 8, 8, 1, 6), (32, 49, 8, 10, 669, 15),
        (4, 9, 12, 12, 455, 12), (64, 16, 6, 6, 1, 4), (10, 25, 8, 8, 41, 10),
        (16, 4, 8, 8, 1, 2), (32, 4, 6, 6, 1, 1), (8, 9, 8, 8, 7, 6), (16, 49, 8, 8, 21, 10),
        (2, 64, 10, 8, 1, 6), (24, 9, 8, 8, 57, 9))]


UNIT = UnitType(
    kind="avgpool",
    sv_files=("bnn_global_avgpool.sv",),
    hls_files=("avgpool.h",),
    delay=lambda p: 1,  # output register
    features=features, hls_process=hls_process,
    coefficients={"lut": {"const": 2, "counters": 1.0, "sum_bits": 1.0,
                          "lut_mul_bits": 1.1, "round_bits": 1.0},
                  "ff": {"ff_regs": 1.0}},
    sweep=sweep)
