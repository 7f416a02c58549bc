"""Stream width converter (bnn_dwc / StreamingDataWidthConverter): an up converter
(shift register), a down converter (held word shifted out) or, for widths that do not
divide, a shift buffer."""

from __future__ import annotations

import math

import numpy as np

from bnn2fpga.units import (
    HlsProcess,
    Params,
    UnitType,
    bits_for,
    clog2,
    streaming_process,
)


def dwc_first_delay(iwb: int, owb: int) -> int:
    """Cycles from a beat entering an idle ``bnn_dwc`` to the first beat it makes leaving:
    one register stage, two for the down converter (its holding register, then the word
    register that shifts the slices out)."""
    return 2 if dwc_kind(iwb, owb) == "down" else 1


def dwc_delay(iwb: int, owb: int) -> int:
    """Cycles from a beat entering an idle ``bnn_dwc`` to the last beat it makes leaving:
    ``dwc_first_delay``, and for the down converter the other R - 1 of its R = IWB/OWB
    slices, one per cycle."""
    if dwc_kind(iwb, owb) == "down":
        return dwc_first_delay(iwb, owb) + iwb // owb - 1
    return dwc_first_delay(iwb, owb)


def dwc_pixel_beats(iwb: int, owb: int, arrivals: np.ndarray) -> np.ndarray:
    """Cycles at which the output beats of one pixel leave a ``bnn_dwc``, its input beats
    arriving at ``arrivals`` (ascending; whole beats on both sides) and nothing waiting
    downstream.

    Output beat j (1-based) holds bits up to j*OWB, so it leaves ``dwc_first_delay`` after
    input beat ceil(j*OWB/IWB) at the earliest, and at most one beat leaves per cycle.
    When a pixel's beats arrive faster than the converter sends them (a down converter of
    R slices fed one beat per cycle), its output beats queue: the last leaves
    (R - 1)(beats - 1) cycles later than ``dwc_delay`` after the last input beat."""
    first = dwc_first_delay(iwb, owb)
    out = np.empty(len(arrivals) * iwb // owb)
    t = -np.inf
    for j in range(len(out)):
        t = max(arrivals[-(-(j + 1) * owb // iwb) - 1] + first, t + 1)
        out[j] = t
    return out


def dwc_kind(iwb: int, owb: int) -> str:
    """The structure ``bnn_dwc`` builds for a pair of widths: "up" (OWB = R*IWB), "down"
    (IWB = R*OWB) or "shift" (any other pair)."""
    if owb > iwb and owb % iwb == 0:
        return "up"
    if iwb > owb and iwb % owb == 0:
        return "down"
    return "shift"


def dwc_capacity_beats(iwb: int, owb: int) -> int:
    """Input beats a ``bnn_dwc`` holds: up, R-1 collected plus an R-beat output word; down,
    the word being sent plus the holding register; shift, its buffer of IWB + 2*OWB - G
    bits (G = gcd(IWB, OWB))."""
    kind = dwc_kind(iwb, owb)
    if kind == "up":
        return 2 * (owb // iwb) - 1
    if kind == "down":
        return 2
    return (iwb + 2 * owb - 1) // iwb


def dwc_features(iwb: int, owb: int) -> dict[str, float]:
    """Width converter (``dwc_kind``).

    up: flip-flops with clock enables only (the collected beats shift by a fixed amount,
    the word loads at once): a beat counter and its compare, no LUT per bit.
    down: per word bit below the top slice a 2:1 mux (held word / shifted word), one LUT;
    the top slice loads or clears (the flip-flop's reset); and the slice counter.
    shift: in units of G = gcd(IWB, OWB) bits (IU = IWB/G, OU = OWB/G), a buffer of
    CAPU = IU + 2*OU - 1 units and a CW-bit fill count; each bit is its kept value (shifted
    by OWB on an output beat) or an input bit placed by the fill count: per bit plane a
    shifter by whole units whose select is the count's low log2(2*OU) bits (a beat enters
    only below 2*OU); a bit's mux costs about the select bits its fan-in needs.  When IU
    or OU is not a power of two, the count's updates and compares are real adders
    (``arith``)."""
    kind = dwc_kind(iwb, owb)
    if kind == "up":
        r = owb // iwb
        cw = clog2(r)
        return {"up_const": 1.0, "up_counter": cw,
                "up_odd": cw if r & (r - 1) else 0,     # count compare against R - 1
                "ff_regs": 2 * owb - iwb + cw + 1}
    if kind == "down":
        cw = bits_for(iwb // owb)
        return {"down_const": 1.0, "down_counter": cw,
                "down_mux2": iwb - owb,     # held / shifted-down bit
                "ff_regs": 2 * iwb + cw + 1}
    g = math.gcd(iwb, owb)
    iu, ou = iwb // g, owb // g
    capu = iu + 2 * ou - 1
    cw = bits_for(capu)
    odd = any(v & (v - 1) for v in (iu, ou))
    shifts = 1 << clog2(2 * ou)            # the shifter's select range
    # per buffer unit u, the input units that can land there: shifts s with 0 <= u-s < IU
    fan_in = [min(u, shifts - 1) - max(0, u - iu + 1) + 1 for u in range(capu)]
    return {"const": 1.0, "cap": capu * g, "counter": cw,
            "shift_select": g * sum(bits_for(n) for n in fan_in if n > 0),
            "arith": cw * odd,
            "ff_regs": capu * g + cw}


def hls_process(p: Params, frames: int) -> HlsProcess:
    """hls/dwc.h's loop for the widths' structure (depth 1): up, a read per iteration and a
    write every R; down, a read every R and a write per iteration; shift, a write when it
    holds OUT_W bits and a read when the rest would not make the next beat (the frames of
    a call run on, so the loop is simulated over all of them)."""
    iwb, owb, n_in = p["IWB"], p["OWB"], p["IN_BEATS"]
    kind = dwc_kind(iwb, owb)
    if kind == "up":
        return streaming_process(n_in, 1, owb // iwb, 0, owb // iwb - 1, 1, frames)
    if kind == "down":
        return streaming_process(n_in * (iwb // owb), iwb // owb, 1, 0, 0, 1, frames)
    reads_left, writes_left = frames * n_in, frames * n_in * iwb // owb
    reads, writes = [], []
    held = 0
    while writes_left > 0:      # hls/dwc.h's shift loop, iteration by iteration
        wr = held >= owb
        left = held - owb if wr else held
        rd = reads_left > 0 and left < owb
        writes_left -= wr
        reads_left -= rd
        held = left + (iwb if rd else 0)
        reads.append(rd)
        writes.append(wr)
    return HlsProcess.from_flags(np.array(reads), np.array(writes), 1)


def sweep(rng: np.random.Generator) -> list[Params]:
    """Calibration points: width pairs of every structure."""
    pts: list[Params] = []
    for iwb, owb in ((8, 24), (24, 8), (16, 3), (3, 48), (64, 32), (32, 64), (128, 16),
                     (16, 128), (2, 6), (5, 20), (256, 64), (64, 256), (48, 27),
                     (1, 8), (8, 1), (1, 4), (4, 32), (32, 4), (16, 64), (12, 36),
                     (3, 64), (7, 35), (64, 3), (2, 32), (35, 5), (15, 5), (21, 7),
                     (13, 26), (6, 15), (5, 26), (14, 21), (30, 6), (7, 21), (15, 21),
                     (10, 26),
                     # ratio pairs (bnn_dwc_up / bnn_dwc_down): PE -> SIMD of typical foldings
                     (1, 32), (2, 64), (4, 64), (64, 4), (32, 1), (3, 24), (24, 3), (5, 10),
                     (10, 5), (96, 32), (32, 96), (512, 64), (64, 512), (9, 27), (27, 9)):
        pts.append({"IWB": iwb, "OWB": owb})
    for iwb, owbs in ((8, (2, 3, 4, 5, 6, 7, 12, 16, 40, 64)),       # ratio/gcd families
                      (12, (1, 2, 3, 4, 6, 8, 9, 16, 18, 24, 48)),
                      (32, (8, 16, 24, 48, 96, 128)), (24, (16, 32, 48, 96))):
        for owb in owbs:
            pts.append({"IWB": iwb, "OWB": owb})
    return pts


UNIT = UnitType(
    kind="dwc",
    sv_files=('bnn_dwc_up.sv', 'bnn_dwc_down.sv', 'bnn_dwc_shift.sv', 'bnn_dwc.sv'),
    hls_files=('dwc.h',),
    delay=lambda p: dwc_delay(p["IWB"], p["OWB"]),
    features=lambda p, styles: dwc_features(p["IWB"], p["OWB"]),
    hls_process=hls_process,
    coefficients={'lut': {'const': 3,
                          'cap': 0.9,
                          'counter': 1.7,
                          'shift_select': 0.42,
                          'arith': 1.25,
                          'up_const': 5,
                          'up_counter': 0.5,
                          'up_odd': 1.0,
                          'down_const': 3,
                          'down_counter': 5,
                          'down_mux2': 1.0},
                  'ff': {'ff_regs': 1.0}},
    sweep=sweep)
