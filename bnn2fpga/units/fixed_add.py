"""Fixed-point add (bnn_add / FixedAdd): the residual join of two fixed/int streams, PE
lanes per beat, aligned exactly as ``bnn2fpga.fixed`` defines (ops/add.py)."""

from __future__ import annotations

import numpy as np

from bnn2fpga.units import HlsProcess, Params, UnitType, streaming_process


def add_features(p: Params, styles: dict[str, str]) -> dict[str, float]:
    """bnn_add: per lane an SW-bit adder of the aligned inputs, the rounding add and the
    saturation compare (carry chains, about a LUT per bit each); the output register."""
    return {"const": 1.0, "adder_bits": 2 * p["PE"] * p["SW"],
            "ff_regs": p["PE"] * p["OB"] + 1}


def hls_process(p: Params, frames: int) -> HlsProcess:
    """FixedAdd: one beat of each input read, one written per iteration (depth 1)."""
    return streaming_process(p["OUT_BEATS"], 1, 1, 0, 0, 1, frames)


def sweep(rng: np.random.Generator) -> list[Params]:
    return [{"PE": pe, "IB0": 8, "IB1": 6, "LSH0": 0, "LSH1": 2, "RSH": 1, "OB": 8, "SW": 12}
            for pe in (1, 2, 4, 8)]


UNIT = UnitType(
    kind="add",
    sv_files=("bnn_add.sv",),
    hls_files=("fixed_add.h",),
    delay=lambda p: 1,  # output register
    features=add_features,
    hls_process=hls_process,
    coefficients={"lut": {"const": 2, "adder_bits": 1.0}, "ff": {"ff_regs": 1.0}},
    sweep=sweep)
