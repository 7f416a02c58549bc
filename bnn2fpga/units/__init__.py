"""Hardware units: one module per unit, each holding what the tools know of it.

A unit module defines one ``UnitType``: the SystemVerilog files and HLS headers it owns (its
header first, its top module last), its register delay, the memories it declares for given
parameters, the structural features its LUT/FF are linear in (with first-principles default
coefficients that ``bench/calibrate.py`` refits against yosys) and its calibration sweep
points.  ``UNITS`` is the registry: adding a unit is a new module here, its files in
``bnn2fpga/rtl`` and ``bnn2fpga/hls``, its HLS call in ``templates/hls/units/<kind>.j2``,
one line in ``_MODULES`` and the op lowering that appends it (``bnn2fpga.ops``).  The C++
and SystemVerilog libraries stay flat (they are copied whole); ``tests/test_units.py``
checks that every library file belongs to exactly one unit.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from bnn2fpga.ir import IRError

if TYPE_CHECKING:
    from bnn2fpga.plan import Unit

Params = dict[str, int]
Coefficients = dict[str, dict[str, float]]


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
    # a ROM left in logic: "mvtu" (read at a counter's next address with an enable, its
    # cost the memory coefficients fitted on the MVTU) or "lut6" (a per-channel ROM whose
    # fold counter yosys moves into the read port: its structural LUT6 per distinct
    # column, the unit's own features fitting the rest)
    rom_model: str = "mvtu"

    @property
    def bits(self) -> int:
        return self.depth * self.width * self.count


@dataclass(frozen=True)
class HlsProcess:
    """The HLS dataflow process of a unit as written: one II=1 pipelined loop over
    ``iterations`` iterations (a call's worth: ``frames`` frames), of which those at the
    sorted indices ``at`` read one beat from its input stream (``reads``) and/or write one
    beat to its output stream (``writes``); the other iterations only take their cycle.
    ``depth``: cycles from an iteration's read to its write (its pipeline depth).  A
    phase-structured loop (the old sliding window) adds ``gaps``: idle cycles after
    iteration ``gap_at[k]`` (a drained pipeline and the loop's re-entry).  ``shared``: how
    many of its events a call of more frames has too, the same (None: all of them, as in
    a loop that repeats per frame; a sliding window differs once it has no more frames to
    read while it emits its last rows)."""

    iterations: int
    at: np.ndarray
    reads: np.ndarray
    writes: np.ndarray
    depth: int
    gap_at: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    gaps: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    shared: int | None = None

    @staticmethod
    def from_flags(reads: np.ndarray, writes: np.ndarray, depth: int) -> HlsProcess:
        """From per-iteration read/write flags (an iteration without I/O is kept only as
        time)."""
        reads, writes = np.asarray(reads, bool), np.asarray(writes, bool)
        at = np.flatnonzero(reads | writes)
        return HlsProcess(len(reads), at, reads[at], writes[at], depth)

    @staticmethod
    def repeat(one: HlsProcess, frames: int) -> HlsProcess:
        """``frames`` calls of a one-frame loop back to back, as one free-running loop (a
        loop over the frames of a call, flattened)."""
        n = one.iterations
        offs = (np.arange(frames, dtype=np.int64) * n)[:, None]
        return HlsProcess(n * frames, (one.at[None, :] + offs).ravel(),
                          np.tile(one.reads, frames), np.tile(one.writes, frames), one.depth,
                          (one.gap_at[None, :] + offs).ravel(), np.tile(one.gaps, frames))


def streaming_process(iterations: int, read_every: int, write_every: int, read_phase: int,
                      write_phase: int, depth: int, frames: int) -> HlsProcess:
    """A loop that reads on iterations i % read_every == read_phase and writes on
    i % write_every == write_phase (a counter-driven process: converters, reducers,
    adapters), for ``frames`` frames of ``iterations`` iterations each."""
    i = np.arange(iterations, dtype=np.int64)
    return HlsProcess.repeat(HlsProcess.from_flags(i % read_every == read_phase,
                                                   i % write_every == write_phase, depth),
                             frames)


@dataclass(frozen=True)
class UnitType:
    """What the tools know of one kind of hardware unit."""

    kind: str                    # the plan's name for it (Unit.kind)
    sv_files: tuple[str, ...]    # bnn2fpga/rtl files it owns, its top module's file last
    hls_files: tuple[str, ...]   # bnn2fpga/hls files it owns (its header first)
    delay: Callable[[Params], int]          # register stages, last input -> output beat
    features: Callable[[Params, dict[str, str]], dict[str, float]]
    coefficients: dict[str, Coefficients]   # default LUT/FF per feature ({"lut", "ff"})
    memories: Callable[[Params], list[MemorySpec]] = field(default=lambda p: [])
    sweep: Callable[[np.random.Generator], list[Params]] = field(default=lambda rng: [])
    # the SV module's tap-valid ports: an s_tuser input (it reads a sliding window's flag),
    # an m_tuser output (it is the window)
    reads_tap_valid: bool = False
    drives_tap_valid: bool = False
    # its HLS process for ``frames`` frames (None: HLS has the unit as a stream's FIFO)
    hls_process: Callable[[Params, int], HlsProcess] | None = None

    @property
    def module(self) -> str:
        """The SystemVerilog module a plan instantiates."""
        return self.sv_files[-1].removesuffix(".sv")

    @property
    def header(self) -> str:
        """The HLS header that defines the unit ("" for units HLS has as a stream FIFO)."""
        return self.hls_files[0] if self.hls_files else ""


def clog2(n: int) -> int:
    """Address bits for n entries (at least 1), as the RTL's ``$clog2`` guards do."""
    return max(1, math.ceil(math.log2(max(n, 2))))


def bits_for(n: int) -> int:
    """``$clog2(n + 1)``: bits of a counter that reaches n (at least 1)."""
    return max(1, math.ceil(math.log2(n + 1)))


def reg_max(n: int) -> int:
    """Largest value synthesis sees in a counter over n values: its register is clog2(n)
    bits wide (a counter over one value is the constant 0)."""
    return 0 if n <= 1 else (1 << clog2(n)) - 1


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


def rom_read_registers(spec: MemorySpec, style: str) -> float:
    """Flip-flops yosys adds for a per-channel ROM in logic read at a fold counter
    (``rom_model`` "lut6"): it moves the counter's register into the read port
    (memory_dff), so each distinct non-constant column (``distinct_columns``, shared across
    the copies) is registered; none for a one-word ROM (a constant) or another style."""
    if spec.depth <= 1 or style != "logic":
        return 0.0
    return distinct_columns(spec.width * spec.count, spec.depth)


# kind -> module of bnn2fpga.units.  Order: the RTL library's (each unit's files are in
# dependency order) and the calibration sweep's (bench/calibrate.py samples it by index)
_MODULES = {"mvtu": "mvtu", "swu": "swu", "pool": "pool", "dwc": "dwc",
            "majority_pool": "majority_pool", "fifo": "fifo", "ports": "ports",
            "affine": "fixed_affine", "threshold": "threshold", "avgpool": "avgpool",
            "fork": "fork", "add": "fixed_add", "concat": "concat",
            "thermometer": "thermometer", "pg_mvtu": "pg_mvtu"}

UNITS: dict[str, UnitType] = {
    kind: importlib.import_module(f"bnn2fpga.units.{mod}").UNIT for kind, mod in _MODULES.items()}
BY_MODULE: dict[str, UnitType] = {u.module: u for u in UNITS.values()}


def unit_type(unit: Unit) -> UnitType:
    """The type of a planned unit (looked up by its SystemVerilog module)."""
    try:
        return BY_MODULE[unit.module]
    except KeyError:
        raise IRError(f"unit {unit.name!r}: no hardware unit type for module "
                      f"{unit.module!r}; known: {sorted(BY_MODULE)}") from None


def unit_memories(unit: Unit) -> list[MemorySpec]:
    """The memories the unit's RTL module declares for its parameters."""
    return unit_type(unit).memories(unit.params)


def unit_features(unit: Unit, styles: dict[str, str] | None = None) -> dict[str, float]:
    """Structural features of a unit's logic; its LUT and FF are linear in these.
    ``styles`` (memory name -> mapped style) matter where a memory's output register is
    absorbed by a BRAM."""
    return unit_type(unit).features(unit.params, styles or {})


def unit_delay(unit: Unit) -> int:
    return unit_type(unit).delay(unit.params)


def rtl_library() -> tuple[str, ...]:
    """Every SystemVerilog file of the library, leaves before the modules using them."""
    return tuple(f for u in UNITS.values() for f in u.sv_files)


def hls_library() -> tuple[str, ...]:
    return tuple(f for u in UNITS.values() for f in u.hls_files)


def default_coefficients() -> dict[str, dict[str, Coefficients]]:
    """module -> {"lut": {...}, "ff": {...}}: the built-in resource-model coefficients."""
    return {u.module: {r: dict(c) for r, c in u.coefficients.items()} for u in UNITS.values()
            if u.coefficients}


__all__ = ["BY_MODULE", "UNITS", "HlsProcess", "MemorySpec", "UnitType", "bits_for", "clog2",
           "default_coefficients", "distinct_columns", "hls_library", "reg_max",
           "rom_read_registers", "rtl_library",
           "streaming_process",
           "unit_delay", "unit_features", "unit_memories", "unit_type"]
