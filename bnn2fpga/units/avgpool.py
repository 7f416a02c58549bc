"""Global average pool of fixed-point codes (bnn_global_avgpool / GlobalAvgPool): a running
per-channel sum, then a constant multiplier, rounding and saturation."""

from __future__ import annotations

import numpy as np

from bnn2fpga.units import HlsProcess, Params, UnitType, clog2, streaming_process
from bnn2fpga.units.fixed_affine import multiplier_dsps


def features(p: Params, styles: dict[str, str]) -> dict[str, float]:
    """Per channel the sum adder (SW bits), the constant multiplier in LUTs where it is not
    a DSP, the rounding adder and saturation (PW bits); the pixel counter.  Registers: the
    sums, the output, the counter."""
    c = p["C"]
    dsps = multiplier_dsps(p["SW"], p["MW"])
    return {"const": 1.0, "counters": clog2(p["HW"]),
            "sum_bits": c * p["SW"],
            "lut_mul_bits": 0.0 if dsps else c * p["SW"] * p["MW"],
            "round_bits": c * p["PW"],
            "dsp": c * dsps,
            "ff_regs": c * (p["SW"] + p["OB"]) + clog2(p["HW"]) + 1}


def hls_process(p: Params, frames: int) -> HlsProcess:
    """A read every iteration, the pooled pixel written with the frame's last (depth 1)."""
    hw = p["HW"]
    return streaming_process(hw, 1, hw, 0, hw - 1, 1, frames)


def sweep(rng: np.random.Generator) -> list[Params]:
    """Calibration points: channels, pixels, code widths, multipliers."""
    pts = []
    for c, hw, ib, ob, mul, shift in ((8, 16, 8, 8, 1, 4), (16, 64, 8, 8, 1, 6),
                                      (32, 49, 8, 10, 669, 15), (4, 9, 12, 12, 455, 12),
                                      (64, 16, 6, 6, 1, 4), (10, 25, 8, 8, 41, 10)):
        sw = max(2, (hw << (ib - 1)).bit_length() + 1)
        mw = mul.bit_length() + 1
        pw = max(ob + 1, ((hw << (ib - 1)) * mul + (1 << shift)).bit_length() + 1)
        pts.append({"C": c, "HW": hw, "IB": ib, "OB": ob, "SW": sw, "MUL": mul, "MW": mw,
                    "PW": pw, "SHIFT": shift})
    return pts


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
