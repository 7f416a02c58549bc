"""Sliding window (bnn_swu / SlidingWindow): the im2col line buffer in front of a conv's MVTU
and a pool's reducer, with exact padding."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from bnn2fpga.units import (
    HlsProcess,
    MemorySpec,
    Params,
    UnitType,
    bits_for,
    clog2,
    reg_max,
)

HLS_DEPTH = 2     # SlidingWindow's pipeline: stream read | tap read from the RAM | write


def swu_rows(p: dict[str, int]) -> int:
    """bnn_swu's NROWS: the line buffer's ring of input rows (max(KH, SH) + SH, more when
    the frame edges need them), exactly as the RTL's localparams."""
    ks = max(p["KH"], p["SH"])
    first_rows = min(ks - p["PT"], p["IH"])
    last_top = max((p["OH"] - 1) * p["SH"] - p["PT"], 0)
    return max(ks + p["SH"], p["IH"] - last_top + first_rows)


def swu_features(p: dict[str, int], styles: dict[str, str]) -> dict[str, float]:
    """bnn_swu: writer and reader counters (a counter over one value is a constant), the
    tap address slot*RB + col*CG + cg (a constant multiplier costs an adder per extra set
    bit of a non-power-of-two constant), the ring slot arithmetic (a modulo and a wrap by
    NROWS, free for a power of two), the signed row/column arithmetic and comparisons a
    top/left padding brings (without it the padding tests fold to constants), and the
    padded-tap output mux (a LUT per bit).  Registers: the counters, the read data (held
    in a BRAM's output register instead), the padded-tap flag and the valid."""
    cg = p["C"] // p["SIMD"]
    rb = p["IW"] * cg
    nrows = swu_rows(p)
    depth = nrows * rb
    aw, dw = clog2(depth), p["SIMD"] * p["EB"]
    def counter(n: int) -> int:      # a counter over one value is a constant
        return clog2(n) if n > 1 else 0

    widths = {"w_col": counter(rb), "w_addr": counter(depth), "filled": bits_for(nrows),
              "oy": counter(p["OH"]), "ox": counter(p["OW"]), "ky": counter(p["KH"]),
              "kx": counter(p["KW"]), "cg": counter(cg), "lo": swu_lo_bits(p),
              "r_slot": swu_slot_bits(p)}
    row_w = widths["oy"] + widths["ky"]
    col_w = widths["ox"] + widths["kx"]
    nonpow2 = (nrows & (nrows - 1)) != 0
    const_mul = (bin(rb).count("1") - 1) + (bin(cg).count("1") - 1)
    q_in_bram = styles.get("line_buffer") in ("bram", "uram")
    adders, compares = swu_read_arithmetic(p)
    can_pad = swu_can_pad(p)
    return {"const": 1.0,
            "counters": sum(widths.values()),
            "addr_mul": aw * const_mul,
            "ring_mod": (bits_for(nrows) + widths["lo"] + aw) * nonpow2,
            "padded": ((p["PT"] > 0) * (row_w + widths["lo"] + widths["r_slot"])
                       + (p["PL"] > 0) * col_w),
            "read_adders": adders,
            "read_compares": compares,
            "width": dw,
            "pad_mux": dw if can_pad else 0,
            "ff_regs": sum(widths.values()) + (0 if q_in_bram else dw) + 1 + can_pad}


def swu_can_pad(p: dict[str, int]) -> bool:
    """Whether bnn_swu's padded-tap test can be true as synthesis sees it (from the
    counters' register widths): with no top/left padding and windows that cannot reach
    past the bottom/right edge, the flag, its register and the output mux fold away."""
    prow = reg_max(p["OH"]) * p["SH"] + reg_max(p["KH"])
    pcol = reg_max(p["OW"]) * p["SW"] + reg_max(p["KW"])
    return (p["PT"] > 0 or p["PL"] > 0 or prow >= p["PT"] + p["IH"]
            or pcol >= p["PL"] + p["IW"])


def swu_row_zeros(p: dict[str, int]) -> int:
    """Low bits that stay 0 in bnn_swu's ``lo`` (the lowest input row still needed): it
    only takes 0, IH and top + SH (top = oy*SH - PT), so the trailing zero bits common to
    SH, PT and IH; synthesis drops such a register bit (its next value is itself)."""
    g = math.gcd(math.gcd(p["SH"], p["PT"]), p["IH"])
    return (g & -g).bit_length() - 1


def swu_lo_bits(p: dict[str, int]) -> int:
    """Register bits of ``lo``: none when the frame has one output row (it is reset to 0
    at every row end), otherwise bits_for(IH) less its constant low bits."""
    return bits_for(p["IH"]) - swu_row_zeros(p) if p["OH"] > 1 else 0


def swu_slot_bits(p: dict[str, int]) -> int:
    """Register bits of the ring slot ``r_slot`` (advanced by next_lo - lo, modulo
    NROWS): when NROWS is a power of two the modulo is a truncation, so it keeps the low
    bits ``lo`` keeps at 0."""
    nrows = swu_rows(p)
    if nrows <= 1:
        return 0
    zeros = swu_row_zeros(p) if p["OH"] > 1 and nrows & (nrows - 1) == 0 else 0
    return max(clog2(nrows) - zeros, 0)


def swu_read_arithmetic(p: dict[str, int]) -> tuple[int, int]:
    """(adder bits, comparator bits) of bnn_swu's read side, as synthesis sizes them from
    the counters' register widths (it cannot know a counter stops at OH - 1):
    prow = oy*SH + ky and pcol = ox*SW + kx, the four padding tests against PT, PT + IH,
    PL, PL + IW (free when the constant is 0 or beyond the range), the ring slot
    r_slot + prow - PT - lo with its wrap by NROWS, and raddr = slot*RB + pcol*CG + cg.
    A constant multiplier costs an adder per extra set bit of the constant."""
    cg_n = p["C"] // p["SIMD"]
    nrows = swu_rows(p)
    adders = compares = 0

    def add(a: int, b: int) -> int:
        nonlocal adders
        if a and b:
            adders += bits_for(a + b)
        return a + b

    def cmul(a: int, c: int) -> int:
        nonlocal adders
        if a:
            adders += (bin(c).count("1") - 1) * bits_for(a * c)
        return a * c

    def compare(a: int, c: int) -> None:
        nonlocal compares
        if 0 < c <= a:
            compares += bits_for(a)

    prow = add(cmul(reg_max(p["OH"]), p["SH"]), reg_max(p["KH"]))
    pcol = add(cmul(reg_max(p["OW"]), p["SW"]), reg_max(p["KW"]))
    compare(prow, p["PT"])
    compare(prow, p["PT"] + p["IH"])
    compare(pcol, p["PL"])
    compare(pcol, p["PL"] + p["IW"])
    lo = (1 << swu_lo_bits(p)) - 1
    slot = add(reg_max(nrows), add(prow, p["PT"] + lo))   # r_slot + (prow - PT - lo)
    compare(slot, nrows)
    if nrows & (nrows - 1):                                # the wrap subtracts NROWS
        adders += bits_for(slot)
    add(add(cmul(nrows - 1, p["IW"] * cg_n), cmul(pcol, cg_n)), reg_max(cg_n))
    return adders, compares


def memories(p: Params) -> list[MemorySpec]:
    return [MemorySpec("line_buffer", swu_rows(p) * p["IW"] * (p["C"] // p["SIMD"]),
                       p["SIMD"] * p["EB"], False)]


def hls_read_lead(p: Params) -> int:
    """hls/swu.h's initial read credit: the largest need_rows(q) * ROW * EMITS - q * taps
    per row * READS over the output rows q (the reads' lead that keeps every output row's
    rows read before it starts), plus one beat (EMITS)."""
    ks = max(p["KH"], p["SH"])
    cg_n = p["C"] // p["SIMD"]
    row = p["IW"] * cg_n
    reads_f = p["IH"] * row
    row_taps = p["OW"] * p["KH"] * p["KW"] * cg_n
    emits_f = p["OH"] * row_taps
    lead = 0
    for q in range(p["OH"]):
        rows = q * p["SH"] - p["PT"] + ks
        need = p["IH"] if q == p["OH"] - 1 or rows > p["IH"] else max(rows, 0)
        lead = max(lead, need * row * emits_f - q * row_taps * reads_f)
    return lead + emits_f


def hls_process(p: Params, frames: int, tile: bool = True) -> HlsProcess:
    """hls/swu.h's SlidingWindow for a call of ``frames`` frames, iteration by iteration
    (its flat II=1 loop, the same state machine): an iteration emits when the output row's
    input rows are complete (bnn_swu's rule) and reads when the emitter waits or the read
    credit is positive and the ring has room.

    ``tile``: where the state at the end of a frame's last emit (ring position, rows
    filled, read credit) repeats that of an earlier frame's end, the iterations between
    repeat too for as long as reads and emits remain (the rest of the state is reset
    there, and the count of reads left matters only once it reaches 0), so they are
    copied instead of stepped; ``tile=False`` steps every iteration (the same flags)."""
    h, w, kh, kw, sh, sw = p["IH"], p["IW"], p["KH"], p["KW"], p["SH"], p["SW"]
    pt, pl, oh, ow = p["PT"], p["PL"], p["OH"], p["OW"]
    cg_n = p["C"] // p["SIMD"]
    row = w * cg_n
    reads_f, emits_f = h * row, oh * ow * kh * kw * cg_n
    nrows = swu_rows(p)
    wpos = filled = 0
    reads_left, emits_left = frames * reads_f, frames * emits_f
    oy = ox = ky = kx = cg = lo = 0
    credit = hls_read_lead(p)
    rd_flags: list[bool] = []
    em_flags: list[bool] = []
    row_taps = ow * kh * kw * cg_n
    tap = 0                       # tap of the current output row (ox, ky, kx, cg flattened)
    ends: dict[tuple[int, int, int], tuple[int, int, int]] = {}   # state at a frame's end
    diverge: int | None = None
    while emits_left > 0:
        top = oy * sh - pt
        last_row = oy == oh - 1
        hi = max(top + kh - 1, top + sh - 1)
        if hi > h - 1 or last_row:
            hi = h - 1
        next_lo = min(max(top + sh, 0), h)
        if last_row:
            next_lo = h
        complete = filled - (wpos != 0)
        go = tap != 0 or complete >= hi - lo + 1
        wants = (wpos != 0 or filled < nrows) and (not go or credit > 0)
        if wants and not reads_left and diverge is None:
            diverge = len(rd_flags)      # a call of more frames reads here
        rd = reads_left > 0 and wants
        released = 0
        if go:
            emits_left -= 1
            credit += reads_f
            tap += 1
            if tap == row_taps:
                tap = 0
                released = next_lo - lo
                lo = 0 if last_row else next_lo
                oy = 0 if last_row else oy + 1
        if rd:
            reads_left -= 1
            credit -= emits_f
            if wpos == 0:
                filled += 1
            wpos = 0 if wpos + 1 == row else wpos + 1
        filled -= released
        if not (go or rd):
            raise RuntimeError(f"SlidingWindow {p}: the schedule stalls (no room, no rows)")
        rd_flags.append(rd)
        em_flags.append(go)
        if tile and go and tap == 0 and oy == 0 and reads_left > 0:   # a frame's end
            key = (wpos, filled, credit)
            if key in ends:
                n0, r0, e0 = ends.pop(key)
                seg_r, seg_e = r0 - reads_left, e0 - emits_left
                copies = min(reads_left // seg_r, emits_left // seg_e)
                rd_seg, em_seg = rd_flags[n0:], em_flags[n0:]
                rd_flags += rd_seg * copies
                em_flags += em_seg * copies
                reads_left -= copies * seg_r
                emits_left -= copies * seg_e
            ends[key] = (len(rd_flags), reads_left, emits_left)
    del ox, ky, kx, cg, sw, pl   # the tap counters only matter for the data, not the schedule
    proc = HlsProcess.from_flags(np.array(rd_flags), np.array(em_flags), HLS_DEPTH)
    if diverge is None:
        return proc
    return dataclasses.replace(proc, shared=int(np.searchsorted(proc.at, diverge)))


def hls_process_phased(p: Params, frames: int, drain: int = HLS_DEPTH + 1) -> HlsProcess:
    """The sliding window before issue 14 (one call per frame, for the comparison): phase 0
    reads the rows output row 0 needs, phase p = 1..OH emits output row p-1 while it reads
    the rows output row p adds, reads and emits both from the phase's first iteration;
    each phase is its own pipelined loop (``drain`` idle cycles between two: the pipeline
    empties and the loop is entered again), and every frame starts with phase 0."""
    row = p["IW"] * (p["C"] // p["SIMD"])
    emits = p["OW"] * p["KH"] * p["KW"] * (p["C"] // p["SIMD"])
    reads, writes, ends = [], [], []
    loaded, n_total = 0, 0
    for ph in range(p["OH"] + 1):
        need = ph * p["SH"] - p["PT"] + p["KH"]
        target = p["IH"] if ph == p["OH"] or need > p["IH"] else max(need, 0)
        r, e = (target - loaded) * row, emits if ph else 0
        loaded = target
        n = max(r, e)
        i = np.arange(n, dtype=np.int64)
        reads.append(i < r)
        writes.append(i < e)
        n_total += n
        ends.append(n_total - 1)
    one = HlsProcess.from_flags(np.concatenate(reads), np.concatenate(writes), HLS_DEPTH)
    one = HlsProcess(one.iterations, one.at, one.reads, one.writes, one.depth,
                     np.array(ends, dtype=np.int64), np.full(len(ends), drain, dtype=np.int64))
    return HlsProcess.repeat(one, frames)

def sweep_params(simd: int, eb: int, c: int, hw: int, k: int, s: int, pad: int
               ) -> dict[str, int]:
    """A square sliding window ('same'-style padding ``pad`` on top/left)."""
    out = (hw + 2 * pad - k) // s + 1
    return {"SIMD": simd, "EB": eb, "C": c, "IH": hw, "IW": hw, "KH": k, "KW": k, "SH": s,
            "SW": s, "PT": pad, "PL": pad, "OH": out, "OW": out, "PAD_CODE": 0}



def sweep(rng: np.random.Generator) -> list[Params]:
    """Calibration points: channel/SIMD/kernel/stride/padding mixes."""
    pts: list[Params] = []
    for simd, eb, c, hw, k, s in ((1, 8, 3, 32, 3, 1), (3, 8, 3, 32, 3, 1), (8, 1, 64, 30, 3, 1),
                                  (32, 1, 64, 30, 3, 1), (64, 1, 64, 28, 2, 2),
                                  (16, 1, 128, 12, 3, 1), (32, 1, 128, 10, 3, 1),
                                  (4, 1, 256, 5, 3, 1), (128, 1, 128, 10, 2, 2),
                                  (1, 4, 1, 8, 3, 1), (6, 1, 6, 8, 2, 2), (3, 1, 6, 4, 3, 2),
                                  (2, 1, 16, 16, 5, 1), (8, 2, 16, 16, 3, 2),
                                  (15, 1, 15, 8, 2, 2), (128, 1, 128, 10, 2, 2),
                                  (32, 1, 64, 14, 3, 1), (1, 5, 1, 8, 3, 1),
                                  (21, 1, 21, 4, 3, 1), (256, 1, 256, 3, 3, 1)):
        pad = 1 if k == 3 and s == 1 and hw < 16 else 0
        pts.append(sweep_params(simd, eb, c, hw, k, s, pad))
    for simd, c, hw, k, s, pad in ((15, 15, 4, 3, 2, 1), (21, 21, 2, 3, 1, 1),
                                   (7, 21, 2, 3, 1, 1), (5, 15, 4, 3, 2, 1),
                                   (13, 26, 6, 3, 1, 1), (6, 6, 7, 2, 2, 0),
                                   # small padded windows, stride 2, odd sizes
                                   (4, 8, 4, 3, 2, 1), (8, 8, 6, 3, 2, 1), (3, 9, 5, 3, 2, 1),
                                   (16, 16, 6, 3, 2, 1), (2, 6, 3, 3, 2, 1), (6, 12, 5, 3, 1, 1),
                                   (1, 1, 5, 3, 2, 1), (10, 10, 7, 3, 2, 1), (4, 4, 9, 3, 2, 1),
                                   (12, 24, 3, 3, 1, 1), (8, 16, 8, 3, 2, 1), (32, 32, 4, 3, 2, 1),
                                   (5, 5, 3, 2, 2, 0), (9, 9, 6, 2, 2, 0), (7, 7, 5, 3, 1, 1),
                                   (16, 32, 7, 3, 1, 1), (2, 2, 11, 3, 2, 1), (4, 12, 10, 5, 1, 2)):
        pts.append(sweep_params(simd, 1, c, hw, k, s, pad))
    return pts


UNIT = UnitType(
    kind="swu",
    sv_files=('bnn_swu.sv',),
    hls_files=('swu.h',),
    delay=lambda p: 2,  # synchronous read + output register
    memories=memories, features=swu_features, hls_process=hls_process,
    coefficients={'lut': {'counters': 0.5,
                          'addr_mul': 1.7,
                          'ring_mod': 1.1,
                          'read_compares': 3.9,
                          'width': 1.0},
                  'ff': {'ff_regs': 1.0}},
    sweep=sweep, drives_tap_valid=True)
