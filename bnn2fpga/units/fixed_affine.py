"""Per-channel fixed-point affine (bnn_fixed_affine / FixedAffineUnit): BN on a real tensor,
bias, ReLU/PReLU, RPReLU, PE lanes of constant multipliers."""

from __future__ import annotations

import numpy as np

from bnn2fpga.units import HlsProcess, MemorySpec, Params, UnitType, clog2, streaming_process

# yosys synth_xilinx (mul2dsp) puts a multiplier on a DSP48 when both operands are at least
# 2 bits and the product at least 9 bits wide (its DSP_A/B_MINWIDTH, DSP_Y_MINWIDTH), one
# DSP per 25 x 18 tile; Vivado's default is the same for products of this size.
DSP_MIN_OPERAND = 2
DSP_MIN_PRODUCT = 9
DSP_A, DSP_B = 25, 18


def multiplier_dsps(a_bits: int, b_bits: int) -> int:
    """DSP slices of one a_bits x b_bits signed multiplier, 0 where it stays in LUTs."""
    lo, hi = sorted((a_bits, b_bits))
    if lo < DSP_MIN_OPERAND or lo + hi < DSP_MIN_PRODUCT:
        return 0
    return -(-hi // DSP_A) * -(-lo // DSP_B)


def uses_dsp(p: Params) -> bool:
    """Whether the unit's multipliers are DSPs (the report states it)."""
    return multiplier_dsps(p["UW"], p["MW"]) > 0


def features(p: Params, styles: dict[str, str]) -> dict[str, float]:
    """Per lane: the add_in adder (UW bits), the multiplier select (MW), the multiplier in
    LUTs where it is not a DSP (UW x MW partial-product bits), the add_out + rounding adder
    and the saturation (PW bits); the channel-fold counter.  Registers: u, the multiplier
    and add_out per lane, the output, the counter and two valid bits."""
    pe = p["PE"]
    lut_mul = 0.0 if uses_dsp(p) else pe * p["UW"] * p["MW"]
    return {"const": 1.0,
            "counters": clog2(p["NF"]) if p["NF"] > 1 else 0.0,
            "add_bits": pe * (p["UW"] + p["PW"]),
            "select_bits": pe * p["MW"],
            "lut_mul_bits": lut_mul,
            "sat_bits": pe * p["OB"],
            "dsp": pe * multiplier_dsps(p["UW"], p["MW"]),
            "ff_regs": (pe * (p["UW"] + p["MW"] + p["AOW"] + p["OB"])
                        + (clog2(p["NF"]) if p["NF"] > 1 else 0) + 2)}


def memories(p: Params) -> list[MemorySpec]:
    """The per-channel constants, one ROM of NF words per PE."""
    return [MemorySpec("constants", p["NF"], 2 * p["MW"] + p["AIW"] + p["AOW"], True,
                       p["PE"], rom_model="lut6")]


def hls_process(p: Params, frames: int) -> HlsProcess:
    """One beat read and written per iteration, two stages deep (the RTL's)."""
    return streaming_process(p["OUT_BEATS"], 1, 1, 0, 0, 2, frames)


def sweep_params(pe: int, nf: int, ib: int, ob: int, mw: int, shift: int) -> Params:
    aiw = aow = max(2, ib)
    uw = max(ib, aiw) + 1
    pw = max(uw + mw, aow) + 2
    return {"PE": pe, "NF": nf, "IB": ib, "OB": ob, "MW": mw, "AIW": aiw, "AOW": aow,
            "UW": uw, "PW": pw, "SHIFT": shift}


def sweep(rng: np.random.Generator) -> list[Params]:
    """Calibration points: lanes, channel folds, code and multiplier widths (LUT and DSP
    multipliers)."""
    pts = []
    for pe, nf, ib, ob, mw in ((1, 1, 8, 8, 2), (4, 1, 8, 8, 4), (8, 4, 8, 8, 8),
                               (2, 16, 12, 8, 6), (16, 2, 6, 6, 3), (4, 8, 16, 12, 12),
                               (1, 64, 8, 8, 8), (8, 1, 4, 4, 2), (32, 1, 8, 8, 5),
                               (2, 2, 10, 10, 16)):
        # a shift at most the multiplier's width: beyond it the product's bits that count
        # are constant and synthesis removes the multiplier (a point no design has)
        pts.append(sweep_params(pe, nf, ib, ob, mw, int(rng.integers(0, min(8, mw) + 1))))
    return pts


UNIT = UnitType(
    kind="affine",
    sv_files=("bnn_fixed_affine.sv",),
    hls_files=("fixed_affine.h",),
    delay=lambda p: 2,  # operand and output registers
    memories=memories, features=features, hls_process=hls_process,
    coefficients={"lut": {"const": 2, "counters": 1.0, "add_bits": 1.0, "select_bits": 1.0,
                          "lut_mul_bits": 1.1, "sat_bits": 1.0},
                  "ff": {"ff_regs": 1.0}},
    sweep=sweep)
