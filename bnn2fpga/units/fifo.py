"""AXI-stream FIFO (bnn_fifo) on a plan stream with a depth; in HLS, the stream's own
hls::stream depth."""

from __future__ import annotations

import numpy as np

from bnn2fpga.units import (
    MemorySpec,
    Params,
    UnitType,
    bits_for,
    clog2,
)


def fifo_features(p: dict[str, int], styles: dict[str, str]) -> dict[str, float]:
    """bnn_fifo: read/write pointers with wrap, occupancy counter with full/empty compares
    (the storage and its read mux are the mapped memory).  The FIFO reads asynchronously:
    in a BRAM (synchronous read) synthesis adds a W-bit read register and a bypass mux.
    Depths beyond 2 map to LUTRAM (RAM32M/RAM64M banks, ``lutram_luts``) or BRAM."""
    depth = p["DEPTH"]
    aw, cw = clog2(depth), bits_for(depth)
    in_bram = styles.get("storage") in ("bram", "uram")
    bypass = p["W"] if in_bram else 0
    # yosys keeps a second copy of the read pointer for the LUTRAM/register read address
    return {"const": 1.0, "counters": 2 * aw + cw, "bram_bypass": bypass,
            "ff_regs": 2 * aw + cw + (bypass if in_bram else aw)}


def memories(p: Params) -> list[MemorySpec]:
    return [MemorySpec("storage", p["DEPTH"], p["W"], False)]


def sweep(rng: np.random.Generator) -> list[Params]:
    """Calibration points: widths x depths (registers, LUTRAM, BRAM)."""
    pts: list[Params] = []
    for w, depth in ((1, 2), (8, 2), (64, 2), (256, 2), (8, 16), (32, 32), (16, 64),
                     (8, 128), (64, 8), (128, 4), (16, 2), (512, 2), (12, 32),
                     (8, 256), (32, 512), (64, 1024), (16, 4), (256, 16), (3, 64)):
        pts.append({"W": w, "DEPTH": depth})
    return pts


UNIT = UnitType(
    kind="fifo",
    sv_files=('bnn_fifo.sv',),
    hls_files=(),
    delay=lambda p: 1,  # a beat is readable the cycle after it is written
    memories=memories, features=fifo_features,
    coefficients={'lut': {'const': 2, 'counters': 1.6, 'bram_bypass': 1.1},
                  'ff': {'ff_regs': 1.0}},
    sweep=sweep)
