"""Thermometer encoder (bnn_thermometer / Thermometer): FracBNN's input layer on chip, one
pixel of C 8-bit codes in, C*L bipolar bits out, L constant comparators per channel."""

from __future__ import annotations

import numpy as np

from bnn2fpga.units import HlsProcess, Params, UnitType, streaming_process


def thermometer_features(p: Params) -> dict[str, float]:
    """C*L comparators of an 8-bit code against a constant (about 2 LUTs each on the carry
    chain, fewer where thresholds repeat), the output register and its valid."""
    bits = p["C"] * p["L"]
    return {"const": 1.0, "compares": float(bits), "ff_regs": float(bits + 1)}


def hls_process(p: Params, frames: int) -> HlsProcess:
    """One pixel read and one written per iteration (depth 1)."""
    return streaming_process(p["OUT_BEATS"], 1, 1, 0, 0, 1, frames)


def sweep(rng: np.random.Generator) -> list[Params]:
    """Calibration points: channels x levels, each with evenly spaced thresholds (FracBNN's
    levels; ``testing_fracbnn.thermometer_thresholds``) as the SV literal ``THRESH``."""
    from bnn2fpga.testing_fracbnn import thermometer_thresholds

    def thresh(levels: int) -> str:
        word = sum(int(t) << (9 * k) for k, t in enumerate(thermometer_thresholds(levels)))
        return f"{9 * levels}'h{word:x}"

    return [{"C": c, "L": lv, "THRESH": thresh(lv)}
            for c, lv in ((1, 8), (1, 32), (3, 8), (3, 16), (3, 32), (2, 24), (4, 32),
                          (3, 64))]


UNIT = UnitType(
    kind="thermometer",
    sv_files=("bnn_thermometer.sv",),
    hls_files=("thermometer.h",),
    delay=lambda p: 1,  # output register
    features=lambda p, styles: thermometer_features(p),
    hls_process=hls_process,
    coefficients={"lut": {"const": 1, "compares": 1.5}, "ff": {"ff_regs": 1.0}},
    sweep=sweep)
