"""Precision-gated two-pass MVTU (bnn_pg_mvtu / PrecisionGatedMVTU): FracBNN's PGConv2D on
2-bit codes.  Per group (an output pixel x the PE lanes of a neuron fold) an MSB pass of SF
cycles, and an LSB pass of SF more only when a gate of the group is on."""

from __future__ import annotations

import numpy as np

from bnn2fpga.units import HlsProcess, MemorySpec, Params, UnitType, clog2, distinct_columns
from bnn2fpga.units.mvtu import adder_tree_bits


def gated_groups(groups: int, passes: int) -> np.ndarray:
    """Which of ``groups`` groups (0/1) run an LSB pass when ``passes`` of them do, spread
    evenly (the model's pattern for an expected density)."""
    k = np.arange(groups + 1, dtype=np.int64)
    edges = (k * passes) // max(groups, 1)
    return np.diff(edges).astype(bool)


def pg_iteration_flags(p: Params, gated: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-iteration (reads, writes) of the unit's loop over one frame whose groups run an
    LSB pass where ``gated`` (groups in output order: pixel-major, then neuron fold): MSB
    passes read in fold 0; the group's beat is written on its last iteration."""
    nf, sf = p["NF"], p["SF"]
    gated = np.asarray(gated, bool)
    passes = 1 + gated.astype(np.int64)                  # passes per group
    length = passes * sf
    start = np.concatenate([[0], np.cumsum(length)[:-1]])
    total = int(length.sum())
    reads = np.zeros(total, bool)
    writes = np.zeros(total, bool)
    first_fold = (np.arange(len(gated)) % nf) == 0
    for s in start[first_fold]:
        reads[s:s + sf] = True
    writes[start + length - 1] = True
    return reads, writes


def hls_process(p: Params, frames: int) -> HlsProcess:
    """hls/pg_mvtu.h's PrecisionGatedMVTU with ``LSB_PASSES`` gated groups per frame spread
    evenly (the expected figure; every group when it equals the groups): the while loop
    takes SF iterations per MSB pass and SF per LSB pass.  Depth 3, as the MVTU's."""
    groups = p["OUT_BEATS"]
    reads, writes = pg_iteration_flags(p, gated_groups(groups, p["LSB_PASSES"]))
    return HlsProcess.repeat(HlsProcess.from_flags(reads, writes, 3), frames)


def pg_features(p: Params, styles: dict[str, str]) -> dict[str, float]:
    """bnn_pg_mvtu: the MVTU's lanes (XNOR-popcount per PE), plus the plane select (a mux
    per lane), the gate comparator per PE, the doubling/gated accumulator, the pass state
    and the input buffer replay (always: the LSB pass replays)."""
    pe, simd, nf, sf = p["PE"], p["SIMD"], p["NF"], p["SF"]
    thr_bits = pe * p["NT"] * p["TW"]
    w_in_bram = styles.get("weights") in ("bram", "uram")
    live = 1.0 if w_in_bram else distinct_columns(1, nf * sf)
    counters = clog2(nf) + clog2(sf) + clog2(nf * sf)
    return {"const": 1.0,
            "counters": counters,
            "lanes": pe * simd * live,
            "plane_mux": simd,
            "tree_bits": pe * adder_tree_bits(simd, 1),
            "tap_gate": pe * p["ACC_W"] if p["USE_TAP_VALID"] else 0.0,
            "pe_acc": pe * p["ACC_W"],
            "gate_compare": pe * p["ACC_W"],
            "lsb_gate": pe * p["ACC_W"],
            "thr_compare": float(thr_bits),
            "acc_out": 0.0 if p["NT"] else pe * p["ACC_W"],
            "replay_mux": 2 * simd,
            "ff_regs": pg_registers(p, styles)}


def pg_registers(p: Params, styles: dict[str, str]) -> float:
    """bnn_pg_mvtu's flip-flops as yosys keeps them: the fold counters (none for a single
    fold) and ten control bits, the operand (SIMD), per PE the accumulator, its gate and
    the output; the ROM reads (weights, gate thresholds, thresholds and their delay) are
    registered per distinct non-constant column (``distinct_columns``; none where a BRAM's
    output register holds the weights, none for a constant per-channel ROM, NF = 1)."""
    pe, simd, nf, sf = p["PE"], p["SIMD"], p["NF"], p["SF"]
    thr_bits = pe * p["NT"] * p["TW"]
    w_in_bram = styles.get("weights") in ("bram", "uram")
    regs = ((clog2(nf) if nf > 1 else 0) + (clog2(sf) if sf > 1 else 0) + 10 + simd
            + pe * (p["ACC_W"] + 1 + p["OUT_W"]))
    regs += 0.0 if w_in_bram else distinct_columns(pe * simd, nf * sf)
    regs += distinct_columns(pe * p["ACC_W"], nf)
    regs += 2 * distinct_columns(thr_bits, nf) if p["NT"] else 0.0
    return regs


def memories(p: Params) -> list[MemorySpec]:
    """Weights, gate thresholds and thresholds (ROMs per PE); the input vector (SF beats of
    2*SIMD bits, and its tap-valid flags), replayed for the LSB pass and the folds nf > 0."""
    mems = [MemorySpec("weights", p["NF"] * p["SF"], p["SIMD"], True, p["PE"]),
            MemorySpec("gates", p["NF"], p["ACC_W"], True, p["PE"])]
    if p["NT"] > 0:
        mems.append(MemorySpec("thresholds", p["NF"], p["NT"] * p["TW"], True, p["PE"]))
    mems.append(MemorySpec("input_buffer", p["SF"], 2 * p["SIMD"], False, same_address=True))
    if p["USE_TAP_VALID"]:
        mems.append(MemorySpec("tap_valid", p["SF"], 1, False, same_address=True))
    return mems


def sweep_params(pe: int, simd: int, nf: int, sf: int, nt: int = 3,
                 tap_valid: bool = True) -> Params:
    acc = max(2, (3 * sf * simd + 1).bit_length() + 1)
    return {"PE": pe, "SIMD": simd, "NF": nf, "SF": sf, "USE_TAP_VALID": int(tap_valid),
            "ACC_W": acc, "NT": nt, "TW": acc, "OUT_W": max(1, nt.bit_length()) if nt else acc,
            "LSB_PASSES": 0}


def sweep(rng: np.random.Generator) -> list[Params]:
    """Calibration points: PE x SIMD, thresholds or accumulator output."""
    pts: list[Params] = []
    for pe in (1, 2, 4, 8):
        for simd in (4, 16, 32):
            pts.append(sweep_params(pe, simd, int(rng.choice([1, 2, 4])),
                                    int(rng.choice([9, 18])), nt=int(rng.choice([0, 3]))))
    return pts


UNIT = UnitType(
    kind="pg_mvtu",
    sv_files=("bnn_pg_mvtu.sv",),
    hls_files=("pg_mvtu.h",),
    delay=lambda p: 3,  # operand, accumulate and output registers (as the MVTU's)
    memories=memories, features=pg_features, hls_process=hls_process,
    coefficients={"lut": {"const": 8, "counters": 1.5, "lanes": 0.2, "plane_mux": 1.0,
                          "tree_bits": 0.8, "tap_gate": 0.4, "pe_acc": 1.0,
                          "gate_compare": 0.6, "lsb_gate": 0.5, "thr_compare": 1.4,
                          "acc_out": 1.0, "replay_mux": 1.0},
                  "ff": {"ff_regs": 1.0}},
    sweep=sweep, reads_tap_valid=True)
