"""Per-channel fixed-point affine (bnn_fixed_affine / FixedAffineUnit): BN on a real tensor,
bias, ReLU/PReLU, RPReLU, PE lanes of constant multipliers."""

from __future__ import annotations

import numpy as np

from bnn2fpga.units import (
    HlsProcess,
    MemorySpec,
    Params,
    UnitType,
    clog2,
    rom_read_registers,
    streaming_process,
)

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


def saturates(p: Params) -> bool:
    """Whether ``round_shift(p, SHIFT)`` can leave OB bits: PW - SHIFT bits remain."""
    return p["PW"] - p["SHIFT"] > p["OB"]


def features(p: Params, styles: dict[str, str]) -> dict[str, float]:
    """Per lane: the add_in adder (UW bits), the sign's multiplier select (MW, and AOW for
    the offset where the unit has two, AO2), the multiplier in LUTs where it is not a DSP
    (UW x MW partial-product bits), the add_out
    adder (PW bits: a DSP's post-adder where the product is in one) and the rounding
    increment on the PW - SHIFT + 1 bits the shift keeps, the saturation (a compare of the
    top PW - SHIFT - OB + 1 bits and an OB-bit mux, absent when nothing can saturate);
    the channel-fold counter.  Registers: ``affine_registers``."""
    pe, dsp = p["PE"], uses_dsp(p)
    sat = saturates(p)
    return {"const": 1.0,
            "counters": clog2(p["NF"]) if p["NF"] > 1 else 0.0,
            "add_bits": pe * p["UW"],
            "select_bits": pe * (p["MW"] + p.get("AO2", 0) * p["AOW"]),
            "lut_mul_bits": 0.0 if dsp else pe * p["UW"] * p["MW"],
            "add_out_bits": 0.0 if dsp else pe * p["PW"],
            "round_bits": pe * max(0, p["PW"] - p["SHIFT"] + 1) if p["SHIFT"] else 0.0,
            "sat_bits": pe * (p["PW"] - p["SHIFT"] - p["OB"] + 1) if sat else 0.0,
            "sat_mux": pe * p["OB"] if sat else 0.0,
            "dsp": pe * multiplier_dsps(p["UW"], p["MW"]),
            "ff_regs": affine_registers(p, styles)}


def affine_registers(p: Params, styles: dict[str, str]) -> float:
    """Flip-flops as yosys keeps them: per lane the output, and u, the selected multiplier
    and add_out where they are not a DSP's A/B/C registers (add_out is a constant for
    NF = 1 with one offset); the fold counter and two valid bits; the constants ROM's read register
    (``rom_read_registers``)."""
    pe, dsp = p["PE"], uses_dsp(p)
    nf = p["NF"]
    varies = nf > 1 or p.get("AO2", 0)   # add_out (or the selected offset) is not constant
    lane = p["OB"] + (0 if dsp else p["UW"] + p["MW"]) + (p["AOW"] if varies and not dsp
                                                          else 0)
    return (pe * lane + (clog2(nf) if nf > 1 else 0) + 2
            + rom_read_registers(memories(p)[0], styles.get("constants", "logic")))


def memories(p: Params) -> list[MemorySpec]:
    """The per-channel constants, one ROM of NF words per PE (``channel_table``'s fields:
    a second offset where AO2)."""
    return [MemorySpec("constants", p["NF"],
                       2 * p["MW"] + p["AIW"] + (1 + p.get("AO2", 0)) * p["AOW"], True,
                       p["PE"], rom_model="lut6")]


def hls_process(p: Params, frames: int) -> HlsProcess:
    """One beat read and written per iteration, two stages deep (the RTL's)."""
    return streaming_process(p["OUT_BEATS"], 1, 1, 0, 0, 2, frames)


def sweep_params(pe: int, nf: int, ib: int, ob: int, mw: int, shift: int) -> Params:
    aiw = aow = max(2, ib)
    uw = max(ib, aiw) + 1
    pw = max(uw + mw, aow) + 2
    return {"PE": pe, "NF": nf, "IB": ib, "OB": ob, "MW": mw, "AIW": aiw, "AOW": aow,
            "AO2": 0, "UW": uw, "PW": pw, "SHIFT": shift}


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
                          "lut_mul_bits": 1.1, "add_out_bits": 1.0, "round_bits": 0.5,
                          "sat_bits": 0.3, "sat_mux": 1.0},
                  "ff": {"ff_regs": 1.0}},
    sweep=sweep)
