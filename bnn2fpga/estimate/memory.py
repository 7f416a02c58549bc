"""Memories: each unit's declared memories mapped onto ROM in logic, registers, LUTRAM,
BRAM18 or UltraRAM, the way yosys ``memory_libmap`` maps them."""

from __future__ import annotations

import math
from dataclasses import dataclass

from bnn2fpga.devices import Device
from bnn2fpga.estimate.calibration import Calibration
from bnn2fpga.estimate.resources import Resources
from bnn2fpga.ir import IRError
from bnn2fpga.units import MemorySpec, distinct_columns

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
        memory = calibration.memory if spec.rom_model == "mvtu" else LUT6_ROM
        return Resources(lut=rom_logic_luts(d, w * spec.count, memory))
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

# ROM-in-logic coefficients of a "lut6" ROM (MemorySpec.rom_model): one LUT per structural
# LUT6 of each distinct column, nothing per word
LUT6_ROM = {"rom_lut_per_column": 1.0, "rom_lut_per_bit": 0.0}


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
