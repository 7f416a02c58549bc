"""Matrix-vector-threshold unit (bnn_mvtu / MatrixVectorActivate): XNOR-popcount or
unsigned-code dot products over PE x SIMD lanes, thresholds or the raw accumulator."""

from __future__ import annotations

import numpy as np

from bnn2fpga.units import (
    HlsProcess,
    MemorySpec,
    Params,
    UnitType,
    bits_for,
    clog2,
    distinct_columns,
)
from bnn2fpga.units.fixed_affine import multiplier_dsps


def adder_tree_bits(n: int, w: int) -> int:
    """Adder output bits of ``bnn_adder_tree`` (N inputs of W bits, a heap over the next
    power of two): each adder whose two subtrees hold inputs, as wide as its largest sum
    (synthesis trims the constant-zero upper bits)."""
    m = 1 << clog2(n) if n > 1 else 1
    top = (1 << w) - 1
    total_bits = 0

    def node(k: int) -> int:        # largest sum of node k
        nonlocal total_bits
        if k >= m:
            return top if k - m < n else 0
        a, b = node(2 * k), node(2 * k + 1)
        if a and b:
            total_bits += bits_for(a + b)
        return a + b

    node(1)
    return total_bits


def mvtu_features(p: dict[str, int], styles: dict[str, str]) -> dict[str, float]:
    """bnn_mvtu: fold counters, input replay mux, per PE the XNOR-popcount (or the +/- adder
    trees of unsigned codes), the dot's subtraction, the accumulator, threshold comparators
    (against constants when NF = 1) and the output register.

    FF features count the RTL's registers: operand (x1), weights read (w1: the distinct
    non-constant ROM columns, none when a BRAM's output register holds them), thresholds
    read and delayed (t1, t2), accumulators, outputs, counters, control."""
    if p.get("WB", 1) > 1:
        return int_mvtu_features(p, styles)
    uint = p["IN_UINT"] != 0
    pe, simd, nf, sf = p["PE"], p["SIMD"], p["NF"], p["SF"]
    xw = simd * p["IN_BITS"]
    trees = 2 if uint else 1
    sw = bits_for(simd * ((1 << p["IN_BITS"]) - 1))
    thr_bits = pe * p["NT"] * p["TW"]
    w_in_bram = styles.get("weights") in ("bram", "uram")
    t_in_bram = styles.get("thresholds") in ("bram", "uram")
    counters = clog2(nf) + clog2(sf) + clog2(nf * sf)
    # the fraction of weight columns that are not constant (a constant weight's XNOR is an
    # inverter, absorbed by the popcount's LUTs): matters for ROMs a few words deep
    live_weights = 1.0 if w_in_bram else distinct_columns(1, nf * sf)
    w_regs = 0.0 if w_in_bram else distinct_columns(pe * simd, nf * sf)
    t_regs = 0.0
    if nf > 1 and p["NT"]:
        t_regs = (1 if t_in_bram else 2) * distinct_columns(thr_bits, nf)
    return {"const": 1.0,
            "counters": counters,
            "lanes": 0.0 if uint else pe * simd * live_weights,      # XNOR
            "lane_bits": pe * xw if uint else 0.0,                   # +1/-1 weight gating
            "tree_bits": pe * trees * adder_tree_bits(simd, p["IN_BITS"]),
            "dot_sub": pe * (sw + 1) if uint else 0.0,               # sum(+) - sum(-)
            "tap_gate": pe * (sw + 1) if p["USE_TAP_VALID"] else 0.0,  # padded tap: 0
            "pe_acc": pe * p["ACC_W"] if sf > 1 else 0.0,            # accumulators
            "thr_compare": thr_bits if nf > 1 else 0.0,              # acc >= T
            "thr_const": thr_bits if nf == 1 else 0.0,               # acc >= constant
            "pe_out": pe * p["OUT_W"] if p["NT"] > 1 else 0.0,       # thresholds crossed
            "acc_out": 0.0 if p["NT"] else pe * p["ACC_W"],          # accumulator output
            "replay_mux": xw if nf > 1 else 0.0,                     # stream or ibuf
            # weights from a BRAM: the XNORs cannot fold into the weight ROM's LUTs
            "bram_xnor": pe * simd if w_in_bram and not uint else 0.0,
            # registers
            "ff_regs": (xw + 6 + counters + w_regs + t_regs + pe * p["ACC_W"]
                        + pe * p["OUT_W"])}


# a DSP48's accumulator (P register fed back through its post-adder) is 48 bits wide
DSP_P_BITS = 48


def int_operand_bits(p: Params) -> int:
    """Bits of bnn_int_dot's input operand as synthesis sees it: a signed code's own B bits
    (its sign extension to B+1 is trimmed), an unsigned code's B+1 (the zero sign bit
    stays), a bipolar bit's 2 (+-1)."""
    if p.get("IN_SIGNED", 0):
        return p["IN_BITS"]
    return p["IN_BITS"] + 1 if p["IN_UINT"] else 2


def int_lane_dsps(p: Params) -> int:
    """DSP slices of one lane's product (``multiplier_dsps`` of the operands' bits)."""
    return multiplier_dsps(int_operand_bits(p), p["WB"])


def int_dsp_accumulates(p: Params) -> bool:
    """Whether yosys (xilinx_dsp) packs a multi-bit PE's accumulator into its DSP: a lone
    product per beat (SIMD = 1) on a DSP, no tap-valid mux between them, within P's bits."""
    return (p["SIMD"] == 1 and not p["USE_TAP_VALID"] and p["ACC_W"] <= DSP_P_BITS
            and int_lane_dsps(p) > 0)


def int_lane_sum_bits(p: Params) -> int:
    """Adder bits of bnn_int_dot's chain of SIMD products in LUTs (partial sum i is as wide
    as i+1 products can reach, synthesis trims the rest): 0 where the products are DSPs,
    whose post-adders cascade the chain."""
    if int_lane_dsps(p) > 0:
        return 0
    prod = int_operand_bits(p) + p["WB"]
    return sum(min(p["ACC_W"], prod + bits_for(i)) for i in range(1, p["SIMD"]))


def int_mvtu_features(p: dict[str, int], styles: dict[str, str]) -> dict[str, float]:
    """The multi-bit MVTU (bnn_int_dot): per PE, SIMD multipliers (DSPs where
    ``int_lane_dsps`` says so: the lane sum is then their post-adder cascade, and a lone
    product's accumulator their P register, ``int_dsp_accumulates``; else the operands'
    partial-product bits and the lane adder chain in LUTs), the accumulator, the fold
    counters, thresholds (against the ROM or constants), the output, the input replay.
    Its own features (``int_*``), fitted apart from the binary MVTU's: its DSP-packed
    datapath leaves little of the binary MVTU's fixed logic.  Registers: operand, weights
    read, accumulators (none in a DSP), outputs, counters, control."""
    pe, simd, nf, sf = p["PE"], p["SIMD"], p["NF"], p["SF"]
    dsps = int_lane_dsps(p)
    in_dsp = int_dsp_accumulates(p)
    thr_bits = pe * p["NT"] * p["TW"]
    counters = clog2(nf) + clog2(sf) + clog2(nf * sf)
    acc = 0 if in_dsp else pe * p["ACC_W"]
    return {"int_const": 1.0, "int_counters": counters,
            "int_mul_bits": 0.0 if dsps else pe * simd * int_operand_bits(p) * p["WB"],
            "int_sum_bits": pe * int_lane_sum_bits(p),
            "int_acc": acc if sf > 1 else 0.0,
            "int_thr": thr_bits if nf > 1 else 0.5 * thr_bits,
            "int_out": pe * p["OUT_W"] if p["NT"] != 1 else 0.0,
            "int_replay": simd * p["IN_BITS"] if nf > 1 else 0.0,
            "dsp": pe * simd * dsps,
            "ff_int_regs": (simd * p["IN_BITS"] + 6 + counters + pe * simd * p["WB"]
                            + (acc if sf > 1 else 0) + pe * p["OUT_W"])}


def hls_process(p: Params, frames: int) -> HlsProcess:
    """hls/mvtu.h's MatrixVectorActivate: PIXELS * NF * SF iterations per frame; it reads
    while nf == 0 (the vector is replayed for the other folds) and writes at sf == SF - 1.
    Pipeline depth: operand, dot + accumulate, threshold + write (the RTL's 3 stages)."""
    nf, sf = p["NF"], p["SF"]
    i = np.arange(p["OUT_BEATS"] // nf * nf * sf, dtype=np.int64)
    one = HlsProcess.from_flags((i // sf) % nf == 0, i % sf == sf - 1, 3)
    return HlsProcess.repeat(one, frames)


def memories(p: Params) -> list[MemorySpec]:
    """Weights and thresholds (ROMs, one per PE); the input vector kept for the neuron folds
    nf > 0 and, with a tap-valid flag, its flags."""
    mems = [MemorySpec("weights", p["NF"] * p["SF"], p["SIMD"] * p.get("WB", 1), True,
                       p["PE"])]
    if p["NT"] > 0:
        mems.append(MemorySpec("thresholds", p["NF"], p["NT"] * p["TW"], True, p["PE"]))
    if p["NF"] > 1:
        mems.append(MemorySpec("input_buffer", p["SF"], p["SIMD"] * p["IN_BITS"], False,
                               same_address=True))
        if p["USE_TAP_VALID"]:
            mems.append(MemorySpec("tap_valid", p["SF"], 1, False, same_address=True))
    return mems


def sweep_params(pe: int, simd: int, nf: int, sf: int, in_bits: int = 1, uint: bool = False,
                nt: int = 1, tap_valid: bool = False) -> dict[str, int]:
    bound = sf * simd * ((1 << in_bits) - 1 if uint else 1)
    acc = max(2, (bound + 1).bit_length() + 1)
    return {"PE": pe, "SIMD": simd, "NF": nf, "SF": sf, "IN_BITS": in_bits,
            "IN_UINT": int(uint), "USE_TAP_VALID": int(tap_valid), "ACC_W": acc, "NT": nt,
            "TW": acc, "OUT_W": max(1, nt.bit_length()) if nt else acc}



def sweep(rng: np.random.Generator) -> list[Params]:
    """Calibration points: PE x SIMD grids (binary, uint), ROM depths, BRAM ROMs."""
    pts: list[Params] = []
    for pe in (1, 2, 4, 8):                       # binary MVTU: PE x SIMD grid
        for simd in (1, 4, 8, 16, 32, 64):
            nf = int(rng.choice([1, 2, 4, 8]))
            sf = int(rng.choice([1, 3, 9, 16, 36, 64]))
            pts.append(sweep_params(pe, simd, nf, sf,
                                                 tap_valid=bool(rng.integers(0, 2))))
    for pe, simd, nf, sf, nt in ((4, 32, 16, 72, 1), (2, 64, 32, 16, 1), (1, 32, 256, 8, 1),
                                 (8, 8, 4, 9, 3), (4, 16, 2, 4, 0), (16, 16, 4, 16, 1),
                                 (32, 8, 2, 8, 1), (1, 128, 4, 4, 1), (16, 64, 2, 4, 1),
                                 (5, 32, 2, 1, 0), (2, 16, 5, 2, 0), (10, 8, 1, 4, 0),
                                 (1, 64, 10, 8, 0), (5, 26, 2, 1, 0), (7, 15, 3, 9, 1),
                                 (1, 21, 13, 9, 1)):
        pts.append(sweep_params(pe, simd, nf, sf, nt=nt))
    for pe in (1, 2, 4, 8, 16):                   # first-layer uint x binary MVTU
        for simd, bits in ((1, 8), (3, 8), (4, 4), (8, 2), (3, 4)):
            nf = int(rng.choice([1, 2, 4, 8]))
            sf = int(rng.choice([9, 27, 16]))
            pts.append(sweep_params(pe, simd, nf, sf, bits, uint=True))
    for pe, simd, nf, sf, nt in ((1, 32, 1, 6, 0), (1, 32, 2, 6, 0), (1, 32, 1, 24, 0),
                                 (1, 32, 2, 16, 1), (1, 32, 1, 48, 1), (2, 16, 2, 32, 0),
                                 (1, 32, 3, 32, 1), (2, 32, 1, 12, 1), (8, 16, 1, 4, 1),
                                 (4, 32, 2, 2, 1), (6, 8, 1, 4, 0), (3, 24, 2, 2, 0)):
        # ROMs in logic over depth (3..96 words), shallow ROMs folded into registers
        pts.append(sweep_params(pe, simd, nf, sf, nt=nt))
    for pe, simd, nf, sf in ((1, 16, 256, 64), (2, 8, 128, 72), (1, 4, 512, 32),
                             (2, 32, 64, 48)):
        # deep weight ROMs in block RAM, several banks deep (a read mux across them)
        pts.append(sweep_params(pe, simd, nf, sf))
    for pe, simd, nf, sf, bits, wb, signed, nt in (
            (1, 3, 2, 9, 8, 8, 0, 0), (2, 4, 2, 4, 8, 4, 1, 0), (4, 1, 1, 27, 6, 3, 1, 0),
            (1, 8, 4, 8, 4, 2, 0, 1), (2, 6, 3, 2, 8, 5, 1, 1), (8, 2, 1, 16, 4, 8, 1, 0),
            (1, 4, 1, 9, 8, 8, 1, 0), (2, 1, 2, 16, 8, 6, 1, 1), (4, 4, 1, 4, 3, 2, 0, 0),
            (2, 8, 2, 4, 2, 3, 1, 1), (1, 16, 2, 4, 4, 4, 1, 0), (3, 2, 2, 9, 8, 2, 1, 0)):
        # multi-bit MVTU: integer weights over signed / unsigned codes (LUT and DSP MACs)
        pt = sweep_params(pe, simd, nf, sf, bits, uint=True, nt=nt)
        acc = max(2, (sf * simd * (1 << bits) * (1 << (wb - 1)) + 1).bit_length() + 1)
        pt.update(WB=wb, IN_SIGNED=signed, ACC_W=acc, TW=acc,
                  OUT_W=max(1, nt.bit_length()) if nt else acc)
        pts.append(pt)
    return pts


UNIT = UnitType(
    kind="mvtu",
    sv_files=('bnn_adder_tree.sv', 'bnn_xnor_popcount.sv', 'bnn_uint_dot.sv', 'bnn_int_dot.sv',
              'bnn_mvtu.sv'),
    hls_files=('mvtu.h', 'adder_tree.h'),
    delay=lambda p: 3,  # operand, accumulate and output registers
    memories=memories, features=mvtu_features, hls_process=hls_process,
    coefficients={'lut': {'const': 5,
                          'counters': 1.3,
                          'lanes': 0.2,
                          'lane_bits': 1.8,
                          'tree_bits': 0.8,
                          'dot_sub': 0.4,
                          'tap_gate': 0.4,
                          'pe_acc': 0.8,
                          'thr_compare': 1.4,
                          'thr_const': 0.8,
                          'acc_out': 1.0,
                          'replay_mux': 1.3,
                          'bram_xnor': 0.6,
                          'int_const': 5, 'int_counters': 1.3, 'int_mul_bits': 1.0,
                          'int_sum_bits': 1.0, 'int_acc': 1.0, 'int_thr': 1.0,
                          'int_out': 1.0, 'int_replay': 1.0},
                  'ff': {'ff_regs': 1.0, 'ff_int_regs': 1.0}},
    sweep=sweep, reads_tap_valid=True)
