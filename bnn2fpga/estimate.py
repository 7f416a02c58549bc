"""Resource and throughput estimation of a hardware graph.

Cycles come from ``bnn2fpga.folding`` (``node_cycles``, ``matvec_cycles``, ``bottleneck``):
the one cycle model the RTL realises.  This module only composes them: ``pixel_schedule``
places each unit's per-pixel steps in time (plus the RTL units' register stages) for the
first-frame latency, and ``serialisations`` finds pairs of units whose buffering cannot
decouple them (a dense MVTU replaying its input while its producer waits), which makes the
expected frame interval larger than the folding's bottleneck.

Resources are estimated per unit of the one hardware plan (``bnn2fpga.plan``: width
converter, sliding window, MVTU, pool, and each stream's FIFO), exactly what both writers
instantiate, from the units' own integer parameters.  Each unit has

* memories (``unit_memories``: MVTU weights/thresholds as ROMs, its input replay buffer, the
  sliding window's line buffer, FIFO storage), each mapped onto a primitive style -- ROM in
  logic, registers, LUTRAM, BRAM18, UltraRAM -- by ``map_memory`` (the style that uses the
  smallest fraction of the device), LUTRAM and ROM-in-logic counted as yosys maps them;
* logic, linear in structural features of what the RTL builds (``unit_features``: adder
  tree output bits, comparator and counter widths, the width converter's shifter selects,
  the sliding window's constant multipliers, ring arithmetic and padding logic, ...), and
  flip-flops from the RTL's register count (``ff_regs``).

The coefficients (logic per feature, ROM-in-logic cost) are fitted against yosys
``synth_xilinx`` of our own RTL units by ``bench/calibrate.py``, which writes
``bnn2fpga/data/calibration.json`` with its in-sample and leave-one-out error per unit;
built-in first-principles coefficients stand in for any unit the file does not cover.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from bnn2fpga import folding
from bnn2fpga.devices import RESOURCES, Device, get_device
from bnn2fpga.ir import Conv2D, Dense, Graph, IRError, MajorityPool2D, MaxPool2D, Node, Reshape
from bnn2fpga.plan import (
    FIFO_DEPTH,
    Plan,
    Unit,
    build_plan,
    input_fifo_depth,
    layer_plan_units,
)

CALIBRATION_FILE = Path(__file__).resolve().parent / "data" / "calibration.json"

# ----------------------------------------------------------------------------------------
# Resource vectors
# ----------------------------------------------------------------------------------------


@dataclass
class Resources:
    """LUT, FF, BRAM18, URAM, DSP counts (floats while summing; round for display)."""

    lut: float = 0.0
    ff: float = 0.0
    bram18: float = 0.0
    uram: float = 0.0
    dsp: float = 0.0

    def __add__(self, other: Resources) -> Resources:
        return Resources(*(getattr(self, r) + getattr(other, r) for r in RESOURCES))

    def scaled(self, k: float) -> Resources:
        return Resources(*(getattr(self, r) * k for r in RESOURCES))

    def as_dict(self) -> dict[str, int]:
        return {r: int(round(getattr(self, r))) for r in RESOURCES}

    def fits(self, device: Device) -> bool:
        return all(getattr(self, r) <= getattr(device, r) for r in RESOURCES)

    def utilisation(self, device: Device) -> dict[str, float]:
        """Fraction of the device per resource (0 where none is used; inf where the device
        has none and some is used)."""
        out = {}
        for r in RESOURCES:
            used, cap = getattr(self, r), getattr(device, r)
            out[r] = used / cap if cap else (0.0 if used == 0 else math.inf)
        return out

    def cost(self, device: Device) -> float:
        """Summed fraction of the device used (the balanced objective)."""
        return sum(self.utilisation(device).values())

    def over(self, device: Device) -> list[str]:
        """The resources that exceed ``device``, as text ("LUT 61234 > 53200")."""
        return [f"{r.upper()} {getattr(self, r):.0f} > {getattr(device, r)}"
                for r in RESOURCES if getattr(self, r) > getattr(device, r)]


def total(items: Iterable[Resources]) -> Resources:
    out = Resources()
    for r in items:
        out = out + r
    return out


# ----------------------------------------------------------------------------------------
# Calibration
# ----------------------------------------------------------------------------------------

# First-principles coefficients (LUT6 / FF per feature; the register features ``ff_regs``
# count the RTL's flip-flops, so their coefficient is 1), replaced by calibration.json.
DEFAULT_COEFFICIENTS: dict[str, dict[str, dict[str, float]]] = {
    "bnn_mvtu": {"lut": {"const": 5, "counters": 1.3, "lanes": 0.2, "lane_bits": 1.8,
                         "tree_bits": 0.8, "dot_sub": 0.4, "tap_gate": 0.4,
                         "pe_acc": 0.8,
                         "thr_compare": 1.4, "thr_const": 0.8, "acc_out": 1.0,
                         "replay_mux": 1.3, "bram_xnor": 0.6},
                 "ff": {"ff_regs": 1.0}},
    "bnn_swu": {"lut": {"counters": 0.5, "addr_mul": 1.7, "ring_mod": 1.1,
                        "read_compares": 3.9, "width": 1.0},
                "ff": {"ff_regs": 1.0}},
    "bnn_pool": {"lut": {"const": 1, "counters": 2, "or_bits": 1.0, "mux_bits": 1.0,
                         "compare_luts": 1.5},
                 "ff": {"ff_regs": 1.0}},
    "bnn_dwc": {"lut": {"const": 3, "cap": 0.9, "counter": 1.7, "shift_select": 0.42,
                        "arith": 1.25, "up_const": 5, "up_counter": 0.5, "up_odd": 1.0,
                        "down_const": 3, "down_counter": 5, "down_mux2": 1.0},
                "ff": {"ff_regs": 1.0}},
    "bnn_fifo": {"lut": {"const": 2, "counters": 1.6, "bram_bypass": 1.1},
                 "ff": {"ff_regs": 1.0}},
    "bnn_majority_pool": {"lut": {"counters": 1.9, "channels": 3.5, "channel_bits": 0.6},
                          "ff": {"ff_regs": 1.0}},
}
# ROM left in logic, per distinct column: LUTs per LUT6 of the structural count
# ``rom_lut6`` (one LUT6 up to 64 words, MUXF7/F8 trees above) plus LUTs per word (the
# MVTU reads its ROMs at a counter's next address; see ``rom_logic_luts``)
DEFAULT_MEMORY = {"rom_lut_per_bit": 0.07, "rom_lut_per_column": 1.0, "lutram_scale": 1.0}


@dataclass(frozen=True)
class Calibration:
    """LUT/FF coefficients per RTL module, memory coefficients, and where they came from."""

    coefficients: dict[str, dict[str, dict[str, float]]]
    memory: dict[str, float]
    source: str
    fit_error: dict[str, Any] = field(default_factory=dict)

    def linear(self, unit: Unit, resource: str, styles: dict[str, str] | None = None
               ) -> float:
        coefs = self.coefficients[unit.module][resource]
        feats = unit_features(unit, styles)
        return sum(c * feats.get(name, 0.0) for name, c in coefs.items())


def load_calibration(path: Path | None = None) -> Calibration:
    """Coefficients from ``path`` (default ``bnn2fpga/data/calibration.json``), with the
    built-in ones for every module the file does not cover."""
    return _load_calibration_cached(str(CALIBRATION_FILE if path is None else Path(path)))


@lru_cache(maxsize=4)
def _load_calibration_cached(path: str) -> Calibration:
    coefs = {k: {r: dict(v) for r, v in d.items()} for k, d in DEFAULT_COEFFICIENTS.items()}
    memory = dict(DEFAULT_MEMORY)
    if not Path(path).is_file():
        return Calibration(coefs, memory, "built-in defaults (no calibration.json)")
    data = json.loads(Path(path).read_text())
    for module, by_resource in data.get("coefficients", {}).items():
        coefs.setdefault(module, {}).update({r: dict(v) for r, v in by_resource.items()})
    memory.update(data.get("memory", {}))
    return Calibration(coefs, memory, data.get("source", path), data.get("fit_error", {}))


# ----------------------------------------------------------------------------------------
# Memories: mapping onto logic / registers / LUTRAM / BRAM18 / URAM
# ----------------------------------------------------------------------------------------

LIBMAP_MUX, LIBMAP_DEMUX = 0.5, 0.5       # memory_libmap's cost per read-mux / write-enable bit

# yosys memory_libmap's block RAM candidates for 7-series (share/xilinx/brams_xc4v.txt with
# HAS_SIZE_36 and HAS_CASCADE): (library cost, base address bits, widths offered, BRAM18s
# per cell).  Width index i in BRAM_WIDTHS halves the depth: 2**(abits - i) words.
# UltraScale+ (RAMB18E2/RAMB36E2) makes the same choices on the memories we checked.
BRAM_WIDTHS = (1, 2, 4, 9, 18, 36, 72)
BRAM_CELLS = (
    (129, 14, (1, 2, 4, 9, 18), 1),         # RAMB18E1, true dual-port
    (257, 15, (1, 2, 4, 9, 18, 36), 2),     # RAMB36E1, true dual-port
    (513, 16, (1, 2, 4, 9), 4),             # two RAMB36E1 cascaded, 64K deep
    (129, 14, (36,), 1),                    # RAMB18E1, simple dual-port 512 x 36
    (257, 15, (72,), 2),                    # RAMB36E1, simple dual-port 512 x 72
)
BRAM_BYTE = 9                               # write-enable granularity of a wide port
URAM_SHAPE = (4096, 72)
ROM_STYLES = ("logic", "bram")     # UltraRAM has no initial contents on UltraScale+
RAM_STYLES = ("register", "lutram", "bram", "uram")


@dataclass(frozen=True)
class MemorySpec:
    """``count`` identical memories of ``depth`` x ``width`` bits inside a unit.

    ``rom``: read-only, initialised from a file (weights, thresholds).  Otherwise a RAM
    with one write and one read port: simple dual-port, or single-port when both use the
    same address (``same_address``: the MVTU input buffer, the pool's partial maxima)."""

    name: str
    depth: int
    width: int
    rom: bool
    count: int = 1
    same_address: bool = False   # written and read at one address (single-port RAM)

    @property
    def bits(self) -> int:
        return self.depth * self.width * self.count


@dataclass(frozen=True)
class Memory:
    """A memory spec mapped onto one primitive style."""

    spec: MemorySpec
    style: str
    resources: Resources


def bank_mux_luts(banks: int) -> int:
    """LUTs per data bit of the read mux across a memory's depth banks, as yosys/ABC map
    it: about one per two banks (measured on LUTRAM line buffers of 2 to 20 banks and on
    block-RAM ROMs of 5 to 16 banks; a LUT6 tree of 4:1 muxes would need one per three)."""
    return math.ceil((banks - 1) / 2)


def libmap_banking_cost(banks: int, width: int, writes: bool) -> float:
    """memory_libmap's cost of splitting a memory into depth banks: 0.5 per read-mux input
    beyond the first, per bit, and 0.5 per bank write enable (a RAM, when banked)."""
    if banks == 1:
        return 0.0
    return LIBMAP_MUX * (banks - 1) * width + (LIBMAP_DEMUX * banks if writes else 0.0)


def bank_luts(banks: int, width: int, writes: bool = True) -> int:
    """LUTs around a memory split into depth banks: a read mux per bit
    (``bank_mux_luts``) and, for a RAM, a write enable per bank (the address's bank bits
    decoded with the write, a LUT)."""
    if banks == 1:
        return 0
    return width * bank_mux_luts(banks) + (banks if writes else 0)


def bram_geometry(depth: int, width: int, rom: bool = False) -> tuple[int, int]:
    """(BRAM18s, depth banks) of the block RAM yosys maps a depth x width memory to: the
    candidate of least memory_libmap cost, cost * cells + 0.5*(banks - 1)*width (read mux)
    + 0.5*banks (write enables, when banked).  Bits of all banks share cells: a bank's word
    is padded to the write-enable granularity (none for a ROM), and the cells hold
    banks * padded bits.  So a 32768 x 8 ROM is 15 RAMB18 of 2048 x 9, 16 banks deep
    (not 8 RAMB36 of 32768 x 1), and a 16385 x 1 ROM fits one RAMB18.  Within one cell type a
    later width must beat the integer part of the best cost so far, as in yosys."""
    best: tuple[float, int, int] | None = None
    for cost, abits, widths, per_cell in BRAM_CELLS:
        cell_best: tuple[float, int, int] | None = None
        for w in widths:
            banks = math.ceil(depth / (1 << (abits - BRAM_WIDTHS.index(w))))
            unit = w if rom or w < BRAM_BYTE else BRAM_BYTE
            padded = width if rom else math.ceil(width / unit) * unit
            cells = math.ceil(banks * padded / w)
            score = cost * cells + libmap_banking_cost(banks, width, writes=not rom)
            if cell_best is None or score < int(cell_best[0]):
                cell_best = (score, cells * per_cell, banks)
        assert cell_best is not None
        if best is None or cell_best[0] < best[0]:
            best = cell_best
    assert best is not None
    return best[1], best[2]


def bram18_count(depth: int, width: int, rom: bool = False) -> int:
    """BRAM18s yosys uses for a depth x width memory (``bram_geometry``)."""
    return bram_geometry(depth, width, rom)[0]


def bram_luts(depth: int, width: int, rom: bool = False) -> int:
    """LUTs around a block RAM split into depth banks (``bank_luts``; a ROM has no write
    enables)."""
    return bank_luts(bram_geometry(depth, width, rom)[1], width, writes=not rom)


@dataclass(frozen=True)
class LutramLibrary:
    """yosys memory_libmap's LUTRAM candidates of one family (share/xilinx/lutrams_*.txt):
    address bits -> data bits of one cell group, the library's cost and the part of it
    that scales with the bits used ("widthscale"), and the LUTs of a multi-bit cell."""

    sdp: dict[int, int]        # simple dual-port (separate write and read addresses)
    sp: dict[int, int]         # single-port (read where it writes)
    cost: float
    widthscale: float
    cell_luts: int


LUTRAM_LIBRARIES = {
    # RAM32M (32x6) / RAM64M (64x3), 4 LUTs; single-port RAM32M (32x8) or one
    # RAM64X1S/RAM128X1S/RAM256X1S per bit (lutrams_xc5v.txt)
    "xc7": LutramLibrary({5: 6, 6: 3}, {5: 8, 6: 4, 7: 2, 8: 1}, 8.0, 7.0, 4),
    # RAM32M16 (32x14) / RAM64M8 (64x7), 8 LUTs; single-port RAM32M16 (32x16) or per-bit
    # cells up to RAM512X1S (lutrams_xcu.txt)
    "xcup": LutramLibrary({5: 14, 6: 7}, {5: 16, 6: 8, 7: 4, 8: 2, 16: 1}, 16.0, 16.0, 8),
}


def lutram_geometry(depth: int, width: int, same_address: bool = False,
                    family: str = "xc7") -> tuple[int, int, int]:
    """(address bits, banks, cell groups) of the LUTRAM yosys maps a depth x width memory
    to: the candidate of least memory_libmap cost, (C - S)*cells + S*banks*width/cell width
    + 0.5*(banks - 1)*width (read mux) + 0.5*banks (write enables, when banked); a tie
    goes to the shallower cell.  On 7-series, simple dual-port picks RAM32M (32x6) or
    RAM64M (64x3) by it: deep, narrow memories go to RAM32M banks when their extra read mux
    costs less than RAM64M's unused bits."""
    lib = LUTRAM_LIBRARIES[family]
    best: tuple[float, int, int, int] | None = None
    for abits, cell_width in (lib.sp if same_address else lib.sdp).items():
        banks = math.ceil(depth / (1 << abits))
        groups = banks * math.ceil(width / cell_width)
        score = ((lib.cost - lib.widthscale) * groups
                 + lib.widthscale * banks * width / cell_width
                 + libmap_banking_cost(banks, width, writes=True))
        if best is None or score < best[0]:
            best = (score, abits, banks, groups)
    assert best is not None
    return best[1:]


def lutram_cell_luts(depth: int, width: int, same_address: bool = False,
                     family: str = "xc7") -> int:
    """LUTs inside the LUTRAM cells (``lutram_geometry``): a multi-bit cell (RAM32M,
    RAM64M; RAM32M16, RAM64M8) takes all its LUTs whether its bits are used or not;
    single-port memories deeper than 32 take one cell per bit, a LUT per 64 words (up to
    RAM512X1S)."""
    abits, banks, groups = lutram_geometry(depth, width, same_address, family)
    if same_address and abits > 5:
        return width * banks * 2 ** (min(abits, 9) - 6)
    return LUTRAM_LIBRARIES[family].cell_luts * groups


def lutram_luts(depth: int, width: int, same_address: bool = False,
                family: str = "xc7") -> int:
    """LUTs of a LUTRAM as yosys maps it: its cells (``lutram_cell_luts``) and the logic
    across its depth banks (``bank_luts``)."""
    _, banks, _ = lutram_geometry(depth, width, same_address, family)
    return lutram_cell_luts(depth, width, same_address, family) + bank_luts(banks, width)


def style_resources(spec: MemorySpec, style: str, calibration: Calibration,
                    family: str = "xc7") -> Resources:
    """Resources of ``spec`` in ``style`` (all ``count`` copies) on a ``family``
    (``Device.yosys_family``) die."""
    d, w = spec.depth, spec.width
    if style == "logic":      # copies share the address: identical columns are shared
        return Resources(lut=rom_logic_luts(d, w * spec.count, calibration.memory))
    if style == "register":
        one = Resources(lut=w * (d - 1), ff=d * w)
    elif style == "lutram":
        one = Resources(lut=calibration.memory["lutram_scale"]
                        * lutram_luts(d, w, spec.same_address, family))
    elif style == "bram":
        one = Resources(bram18=bram18_count(d, w, spec.rom), lut=bram_luts(d, w, spec.rom))
    elif style == "uram":
        one = Resources(uram=math.ceil(w / URAM_SHAPE[1]) * math.ceil(d / URAM_SHAPE[0]))
    else:
        raise IRError(f"memory {spec.name!r}: unknown style {style!r}")
    return one.scaled(spec.count)


def distinct_columns(columns: float, depth: int) -> float:
    """Expected number of distinct, non-constant columns among ``columns`` random columns
    of a ``depth``-word ROM (2**depth possible columns): synthesis shares identical
    columns and drops constant ones, which matters for ROMs only a few words deep."""
    if depth <= 1:
        return 0.0
    if depth >= 16:
        return float(columns)
    kinds = 2.0 ** depth
    return (kinds - 2) / kinds * kinds * (1 - (1 - 1 / kinds) ** columns)


def rom_lut6(depth: int) -> float:
    """LUT6 per (distinct) output column of a ROM in logic, as yosys/ABC map random
    contents: none up to 4 words (two address bits fold into the output register's
    set/reset), one LUT up to 64 words, 64-word LUTs joined by MUXF7/MUXF8 up to 256 words,
    LUT muxes beyond (measured 8.3 per column at 512 words, 19.4 at 1024)."""
    if depth <= 4:
        return 0.0
    if depth <= 8:
        return 0.9
    luts = math.ceil(depth / 64)
    return luts + max(0, math.ceil(depth / 256) - 1) * (1 + (depth > 512))


def rom_logic_luts(depth: int, width: int, memory: dict[str, float]) -> float:
    """LUTs of a depth x width ROM of random contents left in logic (``width``: every
    column of every copy sharing the address), per distinct column (``distinct_columns``):
    ``rom_lut_per_column`` per structural LUT6 (``rom_lut6``) plus ``rom_lut_per_bit`` per
    word.  The per-word term is real: the MVTU's ROMs are read at a counter's next address
    with an enable, and yosys/ABC then build each column from the counter logic as well
    (measured on bnn_mvtu, PE 1, SIMD 32, LUTs over the same unit with a BRAM: 0.2 per
    column at 4 words, 1.0 at 16, 2.1 at 32, 4.4 at 64, 10.5 at 96).  Up to 4 words the
    columns fold into the output register's set/reset: no LUTs."""
    if depth <= 4:
        return 0.0
    return distinct_columns(width, depth) * (memory.get("rom_lut_per_column", 1.0)
                                             * rom_lut6(depth)
                                             + memory.get("rom_lut_per_bit", 0.0) * depth)


def allowed_styles(spec: MemorySpec, device: Device) -> tuple[str, ...]:
    styles = ROM_STYLES if spec.rom else RAM_STYLES
    if not spec.rom and spec.depth > 2:
        styles = tuple(s for s in styles if s != "register")
    return tuple(s for s in styles if s != "uram" or device.uram)


def map_memory(spec: MemorySpec, device: Device, calibration: Calibration,
               style: str = "auto") -> Memory:
    """``spec`` in ``style``, or (``"auto"``) in the style using the smallest fraction of
    the device (ties go to the earlier style: logic/registers, LUTRAM, BRAM, URAM)."""
    if spec.depth <= 0 or spec.width <= 0:
        return Memory(spec, "none", Resources())
    styles = allowed_styles(spec, device)
    if style != "auto":
        if style not in styles:
            raise IRError(f"memory {spec.name!r} ({spec.depth}x{spec.width}) cannot be "
                          f"mapped to {style!r} on {device.name}; choose one of {styles}")
        return Memory(spec, style, style_resources(spec, style, calibration,
                                                   device.yosys_family))
    options = [Memory(spec, s, style_resources(spec, s, calibration, device.yosys_family))
               for s in styles]
    return min(options, key=lambda m: m.resources.cost(device))


# ----------------------------------------------------------------------------------------
# Units: RTL modules with their integer parameters
# ----------------------------------------------------------------------------------------


def clog2(n: int) -> int:
    """Address bits for n entries (at least 1), as the RTL's ``$clog2`` guards do."""
    return max(1, math.ceil(math.log2(max(n, 2))))


def bits_for(n: int) -> int:
    """``$clog2(n + 1)``: bits of a counter that reaches n (at least 1)."""
    return max(1, math.ceil(math.log2(n + 1)))


def swu_rows(p: dict[str, int]) -> int:
    """bnn_swu's NROWS: the line buffer's ring of input rows (max(KH, SH) + SH, more when
    the frame edges need them), exactly as the RTL's localparams."""
    ks = max(p["KH"], p["SH"])
    first_rows = min(ks - p["PT"], p["IH"])
    last_top = max((p["OH"] - 1) * p["SH"] - p["PT"], 0)
    return max(ks + p["SH"], p["IH"] - last_top + first_rows)


def unit_memories(unit: Unit) -> list[MemorySpec]:
    """The memories the RTL module declares for these parameters."""
    p = unit.params
    if unit.module == "bnn_mvtu":
        mems = [MemorySpec("weights", p["NF"] * p["SF"], p["SIMD"], True, p["PE"])]
        if p["NT"] > 0:
            mems.append(MemorySpec("thresholds", p["NF"], p["NT"] * p["TW"], True, p["PE"]))
        if p["NF"] > 1:   # the input vector kept for the neuron folds nf > 0
            mems.append(MemorySpec("input_buffer", p["SF"], p["SIMD"] * p["IN_BITS"], False,
                                   same_address=True))
            if p["USE_TAP_VALID"]:
                mems.append(MemorySpec("tap_valid", p["SF"], 1, False, same_address=True))
        return mems
    if unit.module == "bnn_swu":
        return [MemorySpec("line_buffer", swu_rows(p) * p["IW"] * (p["C"] // p["SIMD"]),
                           p["SIMD"] * p["EB"], False)]
    if unit.module == "bnn_fifo":
        return [MemorySpec("storage", p["DEPTH"], p["W"], False)]
    if unit.module == "bnn_pool" and p["CG"] > 1:
        # partial maxima of each channel group (yosys maps it as a dual-port RAM32M, 6 bits
        # per 4 LUTs, although it reads where it writes)
        return [MemorySpec("partial", p["CG"], p["SIMD"] * p["EB"], False)]
    return []


def unit_features(unit: Unit, styles: dict[str, str] | None = None) -> dict[str, float]:
    """Structural features of a unit's logic; its LUT and FF are linear in these.
    ``styles`` (memory name -> mapped style) matter where a memory's output register is
    absorbed by a BRAM."""
    p, styles = unit.params, styles or {}
    if unit.module == "bnn_mvtu":
        return mvtu_features(p, styles)
    if unit.module == "bnn_swu":
        return swu_features(p, styles)
    if unit.module == "bnn_pool":
        return pool_features(p)
    if unit.module == "bnn_majority_pool":
        return majority_pool_features(p)
    if unit.module == "bnn_dwc":
        return dwc_features(p["IWB"], p["OWB"])
    if unit.module == "bnn_fifo":
        return fifo_features(p, styles)
    raise IRError(f"unit {unit.name!r}: no resource model for module {unit.module!r}")


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


def reg_max(n: int) -> int:
    """Largest value synthesis sees in a counter over n values: its register is clog2(n)
    bits wide (a counter over one value is the constant 0)."""
    return 0 if n <= 1 else (1 << clog2(n)) - 1


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


def pool_features(p: dict[str, int]) -> dict[str, float]:
    """bnn_pool: per lane the fold of the kept value and the new tap: one LUT per bit for
    1-bit codes (OR/AND with the padded-tap and first-tap selects) and for the mux of wider
    codes; codes wider than 2 bits also need a comparator (a LUT per 2 bits on the carry
    chain); tap/group counters and the per-group 'seen' bits."""
    width, cgw = p["SIMD"] * p["EB"], clog2(p["CG"])
    return {"const": 1.0,
            "tap_counter": clog2(p["KK"]),
            "groups": cgw + p["CG"] if p["CG"] > 1 else 0.0,      # group counter, seen bits
            "or_bits": width if p["EB"] == 1 else 0.0,
            "mux_bits": width if p["EB"] > 1 else 0.0,
            "compare_luts": p["SIMD"] * math.ceil(p["EB"] / 2) if p["EB"] > 2 else 0.0,
            # with groups, yosys keeps a copy of the group counter as the LUTRAM's
            # read address (as for the FIFO's read pointer)
            "ff_regs": (width + (width if p["CG"] == 1 else 0) + clog2(p["KK"])
                        + (2 * cgw if p["CG"] > 1 else 0) + p["CG"] + 1)}


def majority_pool_features(p: dict[str, int]) -> dict[str, float]:
    """bnn_majority_pool: per channel an NW = bits_for(KK)-bit vote counter (cleared on the
    first tap, +1 on a valid +1 tap) and the comparison 2*ones >= valid, a few LUTs per
    channel growing with NW (measured 4.4 at 2 bits, 5.0 at 3, 7.2 at 4); the shared
    valid-tap counter and tap counter; registers: the counts, the output, the tap
    counter."""
    nw = bits_for(p["KK"])
    tap = clog2(p["KK"])
    return {"const": 1.0, "counters": tap + nw, "channels": p["C"],
            "channel_bits": p["C"] * nw,
            "ff_regs": tap + nw + p["C"] * nw + p["C"] + 1}


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


@dataclass
class UnitEstimate:
    unit: Unit
    logic: Resources
    memories: list[Memory]

    @property
    def resources(self) -> Resources:
        return self.logic + total(m.resources for m in self.memories)


def estimate_unit(unit: Unit, device: Device, calibration: Calibration,
                  styles: dict[str, str] | None = None) -> UnitEstimate:
    """Logic (calibrated) plus memories (``styles`` forces a style per memory name)."""
    styles = styles or {}
    mems = [map_memory(m, device, calibration, styles.get(m.name, "auto"))
            for m in unit_memories(unit)]
    mapped = {m.spec.name: m.style for m in mems}
    logic = Resources(lut=max(0.0, calibration.linear(unit, "lut", mapped)),
                      ff=max(0.0, calibration.linear(unit, "ff", mapped)))
    return UnitEstimate(unit, logic, mems)


# ----------------------------------------------------------------------------------------
# Graph -> units
# ----------------------------------------------------------------------------------------


def design_units(plan: Plan) -> list[Unit]:
    """Every instance the plan puts in the design (units and stream FIFOs)."""
    return plan.instances()


# ----------------------------------------------------------------------------------------
# Cycles: per-pixel schedule built from folding.node_cycles
# ----------------------------------------------------------------------------------------

# Register stages each RTL unit adds between its last input beat (or compute step) and its
# output beat (bnn2fpga/rtl/*.sv): dwc word register, swu sync read + output register,
# mvtu operand/accumulate/output registers, pool output register, fifo.
UNIT_DELAY = {"bnn_dwc": 1, "bnn_swu": 2, "bnn_mvtu": 3, "bnn_pool": 1, "bnn_fifo": 1}


def dwc_delay(iwb: int, owb: int) -> int:
    """Cycles from a beat entering a ``bnn_dwc`` to the last beat it makes leaving: one
    register stage, except the down converter, whose word passes its holding register
    and then leaves in R = IWB/OWB slices, one per cycle."""
    if dwc_kind(iwb, owb) == "down":
        return UNIT_DELAY["bnn_dwc"] + iwb // owb
    return UNIT_DELAY["bnn_dwc"]


def input_arrival(graph: Graph, plan: Plan) -> np.ndarray:
    """Cycle (1 = first beat) at which each input pixel's last beat arrives, the host
    sending one beat per cycle on the plan's input stream."""
    t = graph.input.out
    pixels = folding.out_pixels(graph.input)
    per_pixel = (t.channels if len(t.shape) == 3 else t.size) / plan.input_stream.lanes
    return np.ceil((np.arange(pixels) + 1) * per_pixel - 1e-9).astype(np.int64)


def path_delay(plan: Plan, stream: str) -> int:
    """Register stages from a beat entering ``stream`` to its consumer's main unit: one per
    FIFO on the way, plus each width converter's delay (``dwc_delay``)."""
    delay = 0
    while True:
        s = plan.stream(stream)
        delay += UNIT_DELAY["bnn_fifo"] if s.depth else 0
        dwc = next((u for u in plan.units if u.name == s.consumer and u.kind == "dwc"), None)
        if dwc is None:
            return delay
        delay += dwc_delay(dwc.params["IWB"], dwc.params["OWB"])
        stream = dwc.out


def pixel_schedule(graph: Graph, plan: Plan | None = None) -> dict[str, np.ndarray]:
    """Cycle at which each output pixel (raster order) of each node leaves its last unit,
    for the first frame entering an idle pipeline (1 = first input beat); the output
    node's entry is where the frame's beats reach the top's output port.

    A unit spends ``folding.node_cycles / out_pixels`` compute steps per output pixel, one
    per cycle.  Its last step for pixel p comes no earlier than ``per_pixel`` after the
    last step for pixel p-1, nor before the input p waits for has arrived plus what is left
    to do after it (the sliding window's read latency and tap burst, the neuron folds that
    replay the stored input).  Unit register stages (``UNIT_DELAY``) and the FIFOs and
    width converters of the plan's streams (``path_delay``) are then added."""
    plan = plan or build_plan(graph)
    avail: dict[str, np.ndarray] = {graph.input.name: input_arrival(graph, plan)}
    leaving = {graph.input.name: plan.input}    # node -> the stream its last unit drives
    for node in graph.nodes[1:]:
        src = graph.producer(node)
        if isinstance(node, Reshape):
            avail[node.name] = np.full(folding.out_pixels(node), avail[src.name][-1],
                                       dtype=np.int64)
            leaving[node.name] = leaving[src.name]
            continue
        t_in = avail[src.name] + path_delay(plan, leaving[src.name])
        per_pixel = steps_per_pixel(node)
        lead = after_last_input(node, per_pixel)
        needed = needed_input_pixel(node, src)
        # a window wholly in the top padding waits for no input at all
        ready = np.where(needed >= 0, t_in[np.maximum(needed, 0)], 0) + lead
        last = np.empty(len(ready), dtype=np.int64)
        prev = 0
        for i, r in enumerate(ready):
            prev = max(prev + per_pixel, int(r))
            last[i] = prev
        unit = "bnn_mvtu" if isinstance(node, Dense) else "bnn_pool"
        avail[node.name] = last + UNIT_DELAY[unit]
        leaving[node.name] = plan.layer_units(node.name)[-1].out
    out = graph.output.name
    avail[out] = avail[out] + path_delay(plan, leaving[out])
    return avail


def steps_per_pixel(node: Node) -> int:
    """Compute steps a unit spends per output pixel.  A conv or dense layer: its MVTU folds
    (OC/PE * fan_in/SIMD); its sliding window's writer, which can be slower (a stride
    larger than the kernel), shows in the input's arrival times instead.  A pool: the
    folded cycles of its window over the input its windows cover (``window_footprint``;
    the rows and columns no window uses are drained after the last output)."""
    if isinstance(node, Dense):
        return folding.matvec_cycles(node) // folding.out_pixels(node)
    return folding.node_cycles(node, window_footprint(node)) // folding.out_pixels(node)


def window_footprint(node: MaxPool2D | MajorityPool2D) -> tuple[int, int, int]:
    """The part of a pool's input (H, W, C) that its windows cover."""
    oh, ow, c = node.out.shape
    kh, kw = node.kernel
    sh, sw = node.stride
    top, bottom, left, right = node.pads
    return ((oh - 1) * sh + kh - top - bottom, (ow - 1) * sw + kw - left - right, c)


def after_last_input(node: Node, per_pixel: int) -> int:
    """Steps a unit still takes for a pixel once the last input it waits for is there."""
    if isinstance(node, Conv2D):     # window read latency, then the pixel's whole work
        return UNIT_DELAY["bnn_swu"] + per_pixel - 1
    if isinstance(node, Dense):      # the remaining neuron folds replay the stored input
        nf = node.out_channels // node.pe
        return (nf - 1) * (per_pixel // nf)
    return UNIT_DELAY["bnn_swu"] + per_pixel - 1      # pool: the window's taps


def needed_input_pixel(node: Node, src: Node) -> np.ndarray:
    """For each output pixel, the raster index of the last input pixel it waits for.

    A sliding window (convs and pools, ``bnn_swu``) starts output row oy once every input
    row it covers is complete, and its last output row waits for the whole input frame;
    a dense layer needs its whole input vector.  -1: an output row whose windows lie wholly
    in the top padding waits for no input."""
    n_out = folding.out_pixels(node)
    windowed = isinstance(node, Conv2D) or hasattr(node, "kernel")   # convs and pools
    if len(src.out.shape) != 3 or not windowed:
        return np.full(n_out, folding.out_pixels(src) - 1, dtype=np.int64)
    h, w = src.out.shape[0], src.out.shape[1]
    oh, ow = node.out.shape[0], node.out.shape[1]
    kh, sh, top = node.kernel[0], node.stride[0], node.pads[0]
    oy = np.arange(oh)
    last_row = np.clip(oy * sh - top + max(kh, sh) - 1, -1, h - 1)
    last_row[-1] = h - 1
    return np.repeat(np.where(last_row >= 0, (last_row + 1) * w - 1, -1), ow)


@dataclass(frozen=True)
class Serialisation:
    """Two units whose steps cannot overlap across frames (see ``serialisations``)."""

    producer: str
    consumer: str
    interval_cycles: int
    buffered_beats: int
    producer_beats: int

    def message(self) -> str:
        return (f"layer {self.consumer!r} reads its whole input vector during its first "
                f"neuron fold only, and the {self.buffered_beats} beats of buffering in "
                f"front of it cannot hold the {self.producer_beats} output beats per frame "
                f"of layer {self.producer!r}: the two serialise, about "
                f"{self.interval_cycles:,} cycles per frame instead of the folding's "
                "bottleneck.  Deeper FIFOs (or a double-buffered MVTU input) would restore "
                "the folding's rate")


def serialisations(graph: Graph, plan: Plan | None = None) -> list[Serialisation]:
    """Pairs of units the RTL serialises, slowing the pipeline below ``folding.bottleneck``.

    An MVTU with one output pixel (a dense layer, or a conv whose window covers its whole
    input) takes its input vector only while computing its first neuron fold and replays it
    for the other NF-1 folds.  While it replays, its producer can only fill the buffers in
    between (FIFO, width converter, its own output register, spare sliding-window rows);
    when those cannot hold a frame of the producer's output, the producer stalls, and one
    frame costs the producer's cycles plus the consumer's replay, less what the buffers
    absorbed (``serialised_interval``)."""
    plan = plan or build_plan(graph)
    _, bottleneck_cycles = folding.bottleneck(graph)
    out = []
    for node in graph.nodes[1:]:
        prod = source_node(graph, node) if isinstance(node, Dense) else None
        if not isinstance(prod, (Dense, MaxPool2D)):
            continue
        lanes = prod.pe if isinstance(prod, Dense) else prod.out.channels
        dwc, swu = plan.unit(node.name, "dwc"), plan.unit(node.name, "swu")
        buffered = buffered_beats(lanes, dwc and dwc.params, swu and swu.params,
                                  in_fifo_elems=(input_fifo_depth(node, node.pe, node.simd)
                                                 * node.simd))
        cycles = serialised_interval(node, node.pe, node.simd,
                                     folding.node_cycles(prod, graph.producer(prod).out.shape),
                                     producer_beats(prod, lanes), buffered)
        if cycles is not None and cycles > bottleneck_cycles:
            out.append(Serialisation(prod.name, node.name, cycles, buffered,
                                     producer_beats(prod, lanes)))
    return out


def producer_beats(prod: Node, lanes: int) -> int:
    """Output beats per frame of a unit emitting ``lanes`` channels per beat."""
    return folding.out_pixels(prod) * prod.out.channels // lanes


def buffered_beats(lanes: int, dwc: dict[str, int] | None, swu: dict[str, int] | None,
                   fifo_depth: int | None = None, in_fifo_elems: int = 0) -> int:
    """Producer beats the path into a consumer holds: the producer's FIFO (default the RTL
    writer's depth) and output register, the width converter (``dwc_capacity_beats``), the
    consumer's input-vector FIFO (``in_fifo_elems`` codes, ``plan.input_fifo_depth``)
    and the sliding window's spare rows."""
    beats = (FIFO_DEPTH if fifo_depth is None else fifo_depth) + 1
    if dwc:
        beats += dwc_capacity_beats(dwc["IWB"], dwc["OWB"])
    beats += in_fifo_elems // lanes
    if swu:  # ring rows that do not hold the current frame (the RTL's NROWS, swu_rows)
        spare_rows = max(0, swu_rows(swu) - swu["IH"])
        beats += spare_rows * swu["IW"] * swu["C"] // lanes
    return beats


def serialised_interval(node: Dense, pe: int, simd: int, producer_cycles: int,
                        beats: int, buffered: int) -> int | None:
    """Frame interval of producer + ``node`` at (pe, simd) when they serialise, or None
    when they do not (``node`` has several output pixels or one neuron fold, or the
    buffers hold a whole frame of the producer's beats)."""
    nf, sf = node.out_channels // pe, node.fan_in // simd
    if folding.out_pixels(node) != 1 or nf == 1 or buffered >= beats:
        return None
    return round(producer_cycles + (nf - 1) * sf - buffered * producer_cycles / beats)


def source_node(graph: Graph, node: Node) -> Node:
    """The unit-producing node upstream of ``node`` (Reshape is a no-op in hardware)."""
    src = graph.producer(node)
    while isinstance(src, Reshape):
        src = graph.producer(src)
    return src


# ----------------------------------------------------------------------------------------
# Whole-design estimate
# ----------------------------------------------------------------------------------------


@dataclass
class LayerEstimate:
    name: str
    op: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    pe: int | None
    simd: int | None
    cycles: int
    units: list[UnitEstimate]

    @property
    def resources(self) -> Resources:
        return total(u.resources for u in self.units)


@dataclass
class DesignEstimate:
    graph_name: str
    device: Device
    part: str
    clock_ns: float
    layers: list[LayerEstimate]
    bottleneck: str
    interval_cycles: int        # steady-state cycles per frame (slowest unit)
    latency_cycles: int         # first frame in -> last output out (schedule estimate)
    calibration: str
    serialisations: list[Serialisation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def expected_interval_cycles(self) -> int:
        """The frame interval once pairs of units that serialise are accounted for."""
        return max([self.interval_cycles, *(s.interval_cycles for s in self.serialisations)])

    @property
    def resources(self) -> Resources:
        return total(layer.resources for layer in self.layers)

    @property
    def fps(self) -> float:
        """Frames/s at the expected interval (serialisation included)."""
        return 1e9 / (self.clock_ns * self.expected_interval_cycles)

    @property
    def fps_folding(self) -> float:
        """Frames/s the folding is designed for (the slowest unit alone)."""
        return 1e9 / (self.clock_ns * self.interval_cycles)

    @property
    def latency_us(self) -> float:
        return self.latency_cycles * self.clock_ns / 1e3

    def to_json(self) -> dict[str, Any]:
        dev, res = self.device, self.resources
        return {
            "graph": self.graph_name, "part": self.part, "device": dev.name,
            "device_resources": dev.capacity(), "clock_ns": self.clock_ns,
            "clock_mhz": 1e3 / self.clock_ns, "calibration": self.calibration,
            "bottleneck": self.bottleneck, "interval_cycles": self.interval_cycles,
            "fps": self.fps, "fps_folding": self.fps_folding,
            "latency_cycles": self.latency_cycles,
            "latency_us": self.latency_us, "total": res.as_dict(),
            "expected_interval_cycles": self.expected_interval_cycles,
            "warnings": [x.message() for x in self.serialisations] + self.notes,
            "utilisation_pct": {r: round(100 * v, 2) for r, v in res.utilisation(dev).items()},
            "fits": res.fits(dev),
            "layers": [layer_to_json(layer, dev, layer.name == self.bottleneck)
                       for layer in self.layers],
        }


def layer_to_json(layer: LayerEstimate, device: Device, is_bottleneck: bool) -> dict[str, Any]:
    res = layer.resources
    return {
        "name": layer.name, "op": layer.op, "in_shape": list(layer.in_shape),
        "out_shape": list(layer.out_shape), "pe": layer.pe, "simd": layer.simd,
        "cycles": layer.cycles, "bottleneck": is_bottleneck, **res.as_dict(),
        "utilisation_pct": {r: round(100 * v, 3) for r, v in res.utilisation(device).items()},
        "units": [{"name": u.unit.name, "module": u.unit.module, "params": u.unit.params,
                   **u.resources.as_dict(),
                   "memories": [{"name": m.spec.name, "depth": m.spec.depth,
                                 "width": m.spec.width, "count": m.spec.count,
                                 "style": m.style} for m in u.memories]}
                  for u in layer.units],
    }


def estimate(graph: Graph, *, part: str, clock_ns: float,
             calibration: Calibration | None = None, plan: Plan | None = None
             ) -> DesignEstimate:
    """Estimate a hardware graph at its own folding (node.pe / node.simd), unit by unit
    of its hardware plan (``plan``: the one ``build_plan`` gives, built when not given)."""
    folding.validate_folding(graph)
    device = get_device(part)
    calibration = load_calibration() if calibration is None else calibration
    plan = plan or build_plan(graph)
    by_layer: dict[str, list[UnitEstimate]] = {}
    for unit in design_units(plan):
        by_layer.setdefault(unit.layer, []).append(estimate_unit(unit, device, calibration))
    layers = []
    for node in graph.nodes[1:]:
        if isinstance(node, Reshape):
            continue
        dense = isinstance(node, Dense)
        in_shape = graph.producer(node).out.shape
        layers.append(LayerEstimate(
            node.name, node.op, in_shape, node.out.shape,
            node.pe if dense else None, node.simd if dense else None,
            folding.node_cycles(node, in_shape), by_layer.get(node.name, [])))
    name, interval = folding.bottleneck(graph)
    schedule = pixel_schedule(graph, plan)
    return DesignEstimate(graph.name, device, part, clock_ns, layers, name, interval,
                          int(schedule[graph.output.name][-1]), calibration.source,
                          serialisations(graph, plan))


def matvec_layer_cost(graph: Graph, node: Dense, pe: int, simd: int, device: Device,
                      calibration: Calibration) -> Resources:
    """Resources of one matrix-vector layer at (pe, simd) without its input width
    converter (which depends on the neighbour's folding): the folding search's objective."""
    return total(estimate_unit(u, device, calibration).resources
                 for u in layer_plan_units(graph, node, pe, simd))
