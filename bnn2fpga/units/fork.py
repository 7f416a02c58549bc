"""Stream fork (bnn_fork / StreamFork): one input stream copied to two outputs, behind a
layer whose tensor several layers read (the plan builds a tree of them for more)."""

from __future__ import annotations

import numpy as np

from bnn2fpga.units import HlsProcess, Params, UnitType, streaming_process


def fork_features(p: Params, styles: dict[str, str]) -> dict[str, float]:
    """bnn_fork: one output register of W bits, a pending flag per output and the ready
    logic (a LUT per output)."""
    return {"const": 1.0, "outputs": p["N"], "ff_regs": p["W"] + p["N"]}


def hls_process(p: Params, frames: int) -> HlsProcess:
    """StreamFork: one beat read and written to every output per iteration (depth 1)."""
    return streaming_process(p["IN_BEATS"], 1, 1, 0, 0, 1, frames)


def sweep(rng: np.random.Generator) -> list[Params]:
    return [{"W": w, "N": 2} for w in (1, 8, 32, 64, 256)]


UNIT = UnitType(
    kind="fork",
    sv_files=("bnn_fork.sv",),
    hls_files=("fork.h",),
    delay=lambda p: 1,  # output register
    features=fork_features,
    hls_process=hls_process,
    coefficients={"lut": {"const": 1, "outputs": 1}, "ff": {"ff_regs": 1.0}},
    sweep=sweep)
