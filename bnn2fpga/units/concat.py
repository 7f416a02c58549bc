"""Channel concat (bnn_concat / StreamConcat): one pixel of each input per beat, written as
one pixel of their channels in input order."""

from __future__ import annotations

import numpy as np

from bnn2fpga.units import HlsProcess, Params, UnitType, streaming_process


def concat_features(p: Params, styles: dict[str, str]) -> dict[str, float]:
    """bnn_concat: wires and the output register of W0 + W1 bits."""
    return {"const": 1.0, "ff_regs": p["W0"] + p["W1"] + 1}


def hls_process(p: Params, frames: int) -> HlsProcess:
    """StreamConcat: one beat of each input read, one written per iteration (depth 1)."""
    return streaming_process(p["OUT_BEATS"], 1, 1, 0, 0, 1, frames)


def sweep(rng: np.random.Generator) -> list[Params]:
    return [{"W0": a, "W1": b} for a, b in ((4, 4), (16, 8), (64, 64))]


UNIT = UnitType(
    kind="concat",
    sv_files=("bnn_concat.sv",),
    hls_files=("concat.h",),
    delay=lambda p: 1,  # output register
    features=concat_features,
    hls_process=hls_process,
    coefficients={"lut": {"const": 1}, "ff": {"ff_regs": 1.0}},
    sweep=sweep)
