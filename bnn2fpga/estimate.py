"""Resource and throughput estimation of a hardware graph.

Cycles come from ``bnn2fpga.folding`` (``node_cycles``, ``matvec_cycles``, ``bottleneck``):
the one cycle model the RTL realises.  This module only composes them: ``pixel_schedule``
places each unit's per-pixel steps in time (plus the RTL units' register stages) for the
first-frame latency, and ``serialisations`` finds pairs of units whose buffering cannot
decouple them (a dense MVTU replaying its input while its producer waits), which makes the
expected frame interval larger than the folding's bottleneck.

Resources are estimated per RTL unit, exactly the units the RTL writer instantiates
(``bnn2fpga.backends.rtl.plan_design``: width converter, sliding window, MVTU, pool, FIFO),
from the units' own integer parameters.  Each unit has

* memories (``unit_memories``: MVTU weights/thresholds as ROMs, its input replay buffer, the
  sliding window's line buffer, FIFO storage), each mapped onto a primitive style -- ROM in
  logic, registers, LUTRAM, BRAM18, UltraRAM -- by ``map_memory`` (the style that uses the
  smallest fraction of the device);
* logic, linear in structural features (``unit_features``: PE*SIMD popcount inputs,
  PE*ACC_W accumulator bits, counter widths, ...).

The coefficients (logic per feature, LUTs per bit of ROM-in-logic) are fitted against
yosys ``synth_xilinx`` of our own RTL units by ``bench/calibrate.py``, which writes
``bnn2fpga/data/calibration.json``; built-in first-principles coefficients stand in for any
unit the file does not cover.
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
from bnn2fpga.ir import (
    Conv2D,
    Dense,
    Graph,
    IRError,
    MaxPool2D,
    Node,
    Reshape,
    TensorType,
    signed_bits_for,
)
from bnn2fpga.reference import accumulator_bound

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

# First-principles coefficients (LUT6 / FF per feature), replaced by calibration.json.
DEFAULT_COEFFICIENTS: dict[str, dict[str, dict[str, float]]] = {
    "bnn_mvtu": {"lut": {"counters": 2, "lanes": 3.0, "lanes_bits": 4.0, "pe_acc": 0.5,
                         "thr_compare": 0.7, "thr_const": 0.3, "pe_out": 2.0, "acc_out": 0.2,
                         "replay_mux": 0.5},
                 "ff": {"counters": 2, "x_width": 1, "w_regs": 1.0, "pe_acc": 1.0,
                        "thr_regs": 1.0, "pe_out": 1.0, "acc_out": 1.0}},
    "bnn_swu": {"lut": {"counters": 0.3, "width": 1.2, "tap_index": 7.0, "ring_addr": 0.1},
                "ff": {"const": 5, "counters": 1, "width": 0.6}},
    "bnn_pool": {"lut": {"const": 6, "or_bits": 1.0, "compare_bits": 1.5, "counters": 1},
                 "ff": {"const": 2, "counters": 1, "out": 1.0, "acc_regs": 1.0}},
    "bnn_dwc": {"lut": {"const": 10, "cap": 1.0, "mux_inputs": 0.2, "in": 0.5},
                "ff": {"cap": 1.0, "const": 4}},
    "bnn_fifo": {"lut": {"const": 1.3, "counters": 2.4}, "ff": {"counters": 1.8}},
}
# LUTs per bit of a ROM left in logic (random contents; yosys/ABC measured about 0.09)
DEFAULT_MEMORY = {"rom_lut_per_bit": 0.09, "rom_lut_per_column": 0.0, "lutram_scale": 1.0}


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

# BRAM18 aspect ratios (depth, width) in simple dual-port mode, 7-series and UltraScale+
BRAM18_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))
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


def bram18_count(depth: int, width: int) -> int:
    """Fewest BRAM18s holding depth x width over the BRAM18 aspect ratios."""
    return min(math.ceil(width / w) * math.ceil(depth / d) for d, w in BRAM18_SHAPES)


def lutram_luts(depth: int, width: int, same_address: bool = False) -> int:
    """LUTs of a LUTRAM.  Up to 32 deep: RAM32M, 4 LUTs for 32x6 (32x8 when the read
    address is the write address).  Deeper, single-port: RAM64X1S/RAM128X1S/RAM256X1S, one
    LUT per 64 bits of depth per bit; simple dual-port: RAM64M banks (64x3 in 4 LUTs) plus
    a read mux across banks."""
    if depth <= 32:
        return 4 * math.ceil(width / (8 if same_address else 6))
    banks = math.ceil(depth / 64)
    if same_address:
        return width * banks
    return 4 * math.ceil(width / 3) * banks + (width * (banks - 1) if banks > 1 else 0)


def style_resources(spec: MemorySpec, style: str, calibration: Calibration) -> Resources:
    """Resources of ``spec`` in ``style`` (all ``count`` copies)."""
    d, w = spec.depth, spec.width
    if style == "logic":
        one = Resources(lut=rom_logic_luts(d, w, calibration.memory))
    elif style == "register":
        one = Resources(lut=w * (d - 1), ff=d * w)
    elif style == "lutram":
        one = Resources(lut=calibration.memory["lutram_scale"]
                        * lutram_luts(d, w, spec.same_address))
    elif style == "bram":
        one = Resources(bram18=bram18_count(d, w))
    elif style == "uram":
        one = Resources(uram=math.ceil(w / URAM_SHAPE[1]) * math.ceil(d / URAM_SHAPE[0]))
    else:
        raise IRError(f"memory {spec.name!r}: unknown style {style!r}")
    return one.scaled(spec.count)


def rom_logic_luts(depth: int, width: int, memory: dict[str, float]) -> float:
    """LUTs of a depth x width ROM of random contents left in logic: a cost per output
    bit plus one per stored bit; a ROM of depth <= 2 folds into the logic it feeds."""
    if depth <= 2:
        return 0.0
    return width * (memory.get("rom_lut_per_column", 0.0)
                    + memory["rom_lut_per_bit"] * depth)


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
        return Memory(spec, style, style_resources(spec, style, calibration))
    options = [Memory(spec, s, style_resources(spec, s, calibration)) for s in styles]
    return min(options, key=lambda m: m.resources.cost(device))


# ----------------------------------------------------------------------------------------
# Units: RTL modules with their integer parameters
# ----------------------------------------------------------------------------------------


@dataclass
class Unit:
    """One RTL unit instance: ``module`` (bnn_mvtu, bnn_swu, bnn_pool, bnn_dwc, bnn_fifo)
    with its integer parameters, as ``backends.rtl.plan_design`` instantiates it."""

    name: str
    module: str
    layer: str
    params: dict[str, int]


def clog2(n: int) -> int:
    """Address bits for n entries (at least 1), as the RTL's ``$clog2`` guards do."""
    return max(1, math.ceil(math.log2(max(n, 2))))


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
        nrows = max(p["KH"], p["SH"]) + p["SH"]
        return [MemorySpec("line_buffer", nrows * p["IW"] * (p["C"] // p["SIMD"]),
                           p["SIMD"] * p["EB"], False)]
    if unit.module == "bnn_fifo":
        return [MemorySpec("storage", p["DEPTH"], p["W"], False)]
    if unit.module == "bnn_pool" and p["CG"] > 1:   # partial maxima of each channel group
        return [MemorySpec("partial", p["CG"], p["SIMD"] * p["EB"], False, same_address=True)]
    return []


def unit_features(unit: Unit, styles: dict[str, str] | None = None) -> dict[str, float]:
    """Structural features of a unit's logic; its LUT and FF are linear in these.
    ``styles`` (memory name -> mapped style) matter where a memory's output register is
    absorbed by a BRAM."""
    p, styles = unit.params, styles or {}
    if unit.module == "bnn_mvtu":
        return mvtu_features(p, styles)
    if unit.module == "bnn_swu":
        cg = p["C"] // p["SIMD"]
        nrows = max(p["KH"], p["SH"]) + p["SH"]
        return {"const": 1.0,
                "counters": sum(clog2(n) for n in (p["OH"], p["OW"], p["KH"], p["KW"], cg,
                                                   p["IW"] * cg, p["IH"] + 1, nrows)),
                "width": p["SIMD"] * p["EB"],
                "tap_index": clog2(p["OW"]) * clog2(p["KW"]) + clog2(p["OH"]) * clog2(p["KH"]),
                "ring_addr": clog2(nrows * p["IW"] * cg) * clog2(nrows)}
    if unit.module == "bnn_pool":
        width = p["SIMD"] * p["EB"]
        return {"const": 1.0, "counters": clog2(p["KK"]) + clog2(p["CG"]) + p["CG"],
                "or_bits": width if p["EB"] == 1 else 0.0,
                "compare_bits": width if p["EB"] > 1 else 0.0,
                "out": width, "acc_regs": width if p["CG"] == 1 else 0.0}
    if unit.module == "bnn_dwc":
        return dwc_features(p["IWB"], p["OWB"])
    if unit.module == "bnn_fifo":
        return {"const": 1.0, "counters": clog2(p["DEPTH"]) + clog2(p["DEPTH"] + 1),
                "width": p["W"]}
    raise IRError(f"unit {unit.name!r}: no resource model for module {unit.module!r}")


def mvtu_features(p: dict[str, int], styles: dict[str, str]) -> dict[str, float]:
    """bnn_mvtu: operand/weight registers, XNOR-popcount or +/- adder trees, accumulators,
    threshold comparators (against constants when NF = 1), output register."""
    uint = p["IN_UINT"] != 0
    lanes = p["PE"] * p["SIMD"]
    varying_w = p["NF"] * p["SF"] > 1            # weights change from cycle to cycle
    varying_t = p["NF"] > 1                      # thresholds change per neuron fold
    thr_bits = p["PE"] * p["NT"] * p["TW"]
    w_in_bram = styles.get("weights") in ("bram", "uram")
    t_in_bram = styles.get("thresholds") in ("bram", "uram")
    return {"const": 1.0,
            "counters": clog2(p["NF"]) + clog2(p["SF"]) + clog2(p["NF"] * p["SF"]),
            "lanes": 0.0 if uint else lanes,                         # XNOR + popcount
            "lanes_bits": lanes * p["IN_BITS"] if uint else 0.0,     # +/- adder trees
            "pe_acc": p["PE"] * p["ACC_W"],                          # accumulators
            "thr_compare": thr_bits if varying_t else 0.0,           # acc >= T
            "thr_const": thr_bits if not varying_t else 0.0,         # acc >= constant
            "thr_regs": (1 if t_in_bram else 2) * thr_bits if varying_t else 0.0,
            "w_regs": lanes if varying_w and not w_in_bram else 0.0,
            "pe_out": p["PE"] * p["OUT_W"] if p["NT"] else 0.0,     # thresholds crossed
            "acc_out": 0.0 if p["NT"] else p["PE"] * p["ACC_W"],     # accumulator output
            "x_width": p["SIMD"] * p["IN_BITS"],                     # operand register
            "replay_mux": p["SIMD"] * p["IN_BITS"] if p["NF"] > 1 else 0.0}


def dwc_features(iwb: int, owb: int) -> dict[str, float]:
    """Width converter: a CAP = IWB + 2*OWB - 1 bit shift buffer.  Buffer bit i takes
    input bit i - k for every fill count k that can place one there; the fill count is
    always a multiple of the power-of-two common factor g of the widths (synthesis sees
    its low bits stay 0), so bit i is a mux over min(i/g + 1, IWB/g) inputs."""
    cap = iwb + 2 * owb - 1
    common = math.gcd(iwb, owb) & -math.gcd(iwb, owb)
    mux = sum(min(i // common + 1, math.ceil(iwb / common)) for i in range(cap))
    return {"const": 1.0, "cap": cap, "mux_inputs": mux, "in": iwb}


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


def int_params(params: dict[str, str]) -> dict[str, int]:
    """The integer parameters of a planned RTL unit (file names and masks dropped)."""
    out = {}
    for k, v in params.items():
        try:
            out[k] = int(v)
        except ValueError:
            continue
    return out


def design_units(graph: Graph) -> list[Unit]:
    """The units the RTL writer instantiates for ``graph`` (its plan, not re-derived)."""
    from bnn2fpga.backends.rtl import plan_design

    units = [Unit(u.name, u.module, u.layer, int_params(u.params))
             for u in plan_design(graph).units]
    # units with no resource model yet (bnn_majority_pool): leave their layers to
    # plan_units(skipped=...), which names them, as when the writer had no unit for them
    unmodelled = sorted({u.layer for u in units
                         if u.module not in load_calibration().coefficients})
    if unmodelled:
        raise IRError(f"no resource model for the RTL units of {unmodelled}")
    return units


def matvec_layer_units(graph: Graph, node: Dense, pe: int, simd: int) -> list[Unit]:
    """The units of one matrix-vector layer at (pe, simd), built directly (no weight
    images) for the folding search: sliding window (convs), MVTU, output FIFO.  Their
    parameters equal ``plan_design``'s (tests check this)."""
    from bnn2fpga.backends.rtl import elem_bits

    in_type = graph.producer(node).out
    bits = elem_bits(in_type)
    units = []
    if isinstance(node, Conv2D):
        units.append(swu_unit(node, in_type, simd, bits))
    acc = node.acc_bits or signed_bits_for(accumulator_bound(node, in_type) + 1)
    nt = 0 if node.thresholds is None else int(node.thresholds.shape[1])
    out_w = max(1, nt.bit_length()) if nt else acc
    units.append(Unit(f"{node.name}_mvtu", "bnn_mvtu", node.name, {
        "PE": pe, "SIMD": simd, "NF": node.out_channels // pe, "SF": node.fan_in // simd,
        "IN_BITS": bits, "IN_UINT": int(in_type.encoding != "bipolar"),
        "USE_TAP_VALID": int(isinstance(node, Conv2D) and in_type.encoding == "bipolar"
                             and node.pad == "zero"),
        "ACC_W": acc, "NT": nt, "TW": acc, "OUT_W": out_w}))
    from bnn2fpga.backends.rtl import fifo_depth

    beats = folding.out_pixels(node) * node.out_channels // pe
    units.append(Unit(f"{node.name}_fifo", "bnn_fifo", node.name,
                      {"W": pe * out_w, "DEPTH": fifo_depth(graph, node, beats)}))
    return units


def swu_unit(node: Conv2D | MaxPool2D, in_type: TensorType, simd: int, bits: int) -> Unit:
    ih, iw, c = in_type.shape
    oh, ow = node.out.shape[0], node.out.shape[1]
    pad = getattr(node, "pad", "zero")
    return Unit(f"{node.name}_swu", "bnn_swu", node.name, {
        "SIMD": simd, "EB": bits, "C": c, "IH": ih, "IW": iw, "KH": node.kernel[0],
        "KW": node.kernel[1], "SH": node.stride[0], "SW": node.stride[1], "PT": node.pads[0],
        "PL": node.pads[2], "OH": oh, "OW": ow,
        "PAD_CODE": 0 if pad == "zero" else int(pad)})


def pool_units(node: MaxPool2D, in_type: TensorType, bits: int,
               fifo_depth: int | None = None) -> list[Unit]:
    """Sliding window + reducer + FIFO of a max-pool (one pixel, all channels, per beat);
    ``fifo_depth``: the writer's (``backends.rtl.fifo_depth``), default ``FIFO_DEPTH``."""
    from bnn2fpga.backends.rtl import FIFO_DEPTH

    c = in_type.shape[-1]
    return [swu_unit(node, in_type, c, bits),
            Unit(f"{node.name}_pool", "bnn_pool", node.name, {
                "SIMD": c, "EB": bits, "CG": 1, "KK": node.kernel[0] * node.kernel[1],
                "SIGNED": int(in_type.encoding == "int")}),
            Unit(f"{node.name}_fifo", "bnn_fifo", node.name, {
                "W": c * bits, "DEPTH": FIFO_DEPTH if fifo_depth is None else fifo_depth})]


def plan_units(graph: Graph, fold: dict[str, tuple[int, int]] | None = None,
               skipped: list[str] | None = None) -> list[Unit]:
    """The units of ``graph`` at folding ``fold`` (default: the graph's), built without
    weight images: the folding search's fast stand-in for ``design_units`` (equal to it;
    tests check this).  A node with no unit model raises ``IRError``, or, when ``skipped``
    is given, is appended to it and left out (its stream assumed one pixel per beat)."""
    from bnn2fpga.backends.rtl import elem_bits, fifo_depth, lanes_needed

    fold = fold or {n.name: (n.pe, n.simd) for n in graph.matvec_nodes()}
    units: list[Unit] = []
    lanes, bits = lanes_needed(graph, graph.nodes[1]), elem_bits(graph.input.out)
    for node in graph.nodes[1:]:
        if isinstance(node, Reshape):
            continue
        in_type = graph.producer(node).out
        want = fold[node.name][1] if isinstance(node, Dense) else node.out.channels
        if want != lanes:
            units.append(Unit(f"{node.name}_dwc", "bnn_dwc", node.name,
                              {"IWB": lanes * bits, "OWB": want * bits}))
        if isinstance(node, Dense):
            units += matvec_layer_units(graph, node, *fold[node.name])
            lanes, bits = fold[node.name][0], units[-1].params["W"] // fold[node.name][0]
        elif isinstance(node, MaxPool2D):
            units += pool_units(node, in_type, bits,
                                fifo_depth(graph, node, folding.out_pixels(node)))
            lanes = node.out.channels
        elif skipped is not None:
            skipped.append(node.name)
            lanes = node.out.channels
        else:
            raise IRError(f"the estimator has no model for node {node.name!r} ({node.op})")
    return units


# ----------------------------------------------------------------------------------------
# Cycles: per-pixel schedule built from folding.node_cycles
# ----------------------------------------------------------------------------------------

# Register stages each RTL unit adds between its last input beat (or compute step) and its
# output beat (bnn2fpga/rtl/*.sv): dwc shift buffer, swu sync read + output register,
# mvtu operand/accumulate/output registers, pool output register, fifo.
UNIT_DELAY = {"bnn_dwc": 1, "bnn_swu": 2, "bnn_mvtu": 3, "bnn_pool": 1, "bnn_fifo": 1}


def input_arrival(graph: Graph) -> np.ndarray:
    """Cycle (1 = first beat) at which each input pixel's last beat arrives, the host
    sending one beat per cycle of the first unit's width."""
    from bnn2fpga.backends.rtl import lanes_needed

    t = graph.input.out
    pixels = folding.out_pixels(graph.input)
    per_pixel = (t.channels if len(t.shape) == 3 else t.size) / lanes_needed(graph,
                                                                              graph.nodes[1])
    return np.ceil((np.arange(pixels) + 1) * per_pixel - 1e-9).astype(np.int64)


def pixel_schedule(graph: Graph) -> dict[str, np.ndarray]:
    """Cycle at which each output pixel (raster order) of each node is available to the
    next unit, for the first frame entering an idle pipeline (1 = first input beat).

    A unit spends ``folding.node_cycles / out_pixels`` compute steps per output pixel, one
    per cycle.  Its last step for pixel p comes no earlier than ``per_pixel`` after the
    last step for pixel p-1, nor before the input p waits for has arrived plus what is left
    to do after it (the sliding window's read latency and tap burst, the neuron folds that
    replay the stored input).  Unit register stages (``UNIT_DELAY``) are then added."""
    modules = {(u.layer, u.module) for u in plan_units(graph, skipped=[])}
    avail: dict[str, np.ndarray] = {graph.input.name: input_arrival(graph)}
    for node in graph.nodes[1:]:
        src = graph.producer(node)
        t_in = avail[src.name]
        if isinstance(node, Reshape):
            avail[node.name] = np.full(folding.out_pixels(node), t_in[-1], dtype=np.int64)
            continue
        if (node.name, "bnn_dwc") in modules:
            t_in = t_in + UNIT_DELAY["bnn_dwc"]
        per_pixel = folding.node_cycles(node) // folding.out_pixels(node)
        lead = after_last_input(node, per_pixel)
        ready = t_in[needed_input_pixel(node, src)] + lead
        last = np.empty(len(ready), dtype=np.int64)
        prev = 0
        for i, r in enumerate(ready):
            prev = max(prev + per_pixel, int(r))
            last[i] = prev
        unit = "bnn_mvtu" if isinstance(node, Dense) else "bnn_pool"
        avail[node.name] = last + UNIT_DELAY[unit] + UNIT_DELAY["bnn_fifo"]
    return avail


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
    a dense layer needs its whole input vector."""
    n_out = folding.out_pixels(node)
    windowed = isinstance(node, Conv2D) or hasattr(node, "kernel")   # convs and pools
    if len(src.out.shape) != 3 or not windowed:
        return np.full(n_out, folding.out_pixels(src) - 1, dtype=np.int64)
    h, w = src.out.shape[0], src.out.shape[1]
    oh, ow = node.out.shape[0], node.out.shape[1]
    kh, sh, top = node.kernel[0], node.stride[0], node.pads[0]
    oy = np.arange(oh)
    last_row = np.clip(oy * sh - top + max(kh, sh) - 1, 0, h - 1)
    last_row[-1] = h - 1
    return np.repeat((last_row + 1) * w - 1, ow)


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


def serialisations(graph: Graph) -> list[Serialisation]:
    """Pairs of units the RTL serialises, slowing the pipeline below ``folding.bottleneck``.

    An MVTU with one output pixel (a dense layer, or a conv whose window covers its whole
    input) takes its input vector only while computing its first neuron fold and replays it
    for the other NF-1 folds.  While it replays, its producer can only fill the buffers in
    between (FIFO, width converter, its own output register, spare sliding-window rows);
    when those cannot hold a frame of the producer's output, the producer stalls, and one
    frame costs the producer's cycles plus the consumer's replay, less what the buffers
    absorbed (``serialised_interval``)."""
    units = {(u.layer, u.module): u.params for u in plan_units(graph, skipped=[])}
    _, bottleneck_cycles = folding.bottleneck(graph)
    out = []
    for node in graph.nodes[1:]:
        prod = source_node(graph, node) if isinstance(node, Dense) else None
        if not isinstance(prod, (Dense, MaxPool2D)):
            continue
        lanes = prod.pe if isinstance(prod, Dense) else prod.out.channels
        fifo = units.get((prod.name, "bnn_fifo"), {})
        buffered = buffered_beats(lanes, units.get((node.name, "bnn_dwc")),
                                  units.get((node.name, "bnn_swu")), fifo.get("DEPTH"))
        cycles = serialised_interval(node, node.pe, node.simd, folding.node_cycles(prod),
                                     producer_beats(prod, lanes), buffered)
        if cycles is not None and cycles > bottleneck_cycles:
            out.append(Serialisation(prod.name, node.name, cycles, buffered,
                                     producer_beats(prod, lanes)))
    return out


def producer_beats(prod: Node, lanes: int) -> int:
    """Output beats per frame of a unit emitting ``lanes`` channels per beat."""
    return folding.out_pixels(prod) * prod.out.channels // lanes


def buffered_beats(lanes: int, dwc: dict[str, int] | None, swu: dict[str, int] | None,
                   fifo_depth: int | None = None) -> int:
    """Producer beats the path into a consumer holds: FIFO (the planned depth, default the
    RTL writer's), the producer's output register, the width converter's buffer, the
    sliding window's spare rows."""
    from bnn2fpga.backends.rtl import FIFO_DEPTH

    beats = (FIFO_DEPTH if fifo_depth is None else fifo_depth) + 1
    if dwc:
        beats += (dwc["IWB"] + 2 * dwc["OWB"] - 1) // dwc["IWB"]
    if swu:
        spare_rows = max(0, max(swu["KH"], swu["SH"]) + swu["SH"] - swu["IH"])
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
             calibration: Calibration | None = None, fast: bool = False) -> DesignEstimate:
    """Estimate a hardware graph at its own folding (node.pe / node.simd).

    Units come from the RTL writer's plan; ``fast`` builds the same units without the
    weight images (``plan_units``), for searches that estimate many foldings."""
    folding.validate_folding(graph)
    device = get_device(part)
    calibration = load_calibration() if calibration is None else calibration
    skipped: list[str] = []
    by_layer: dict[str, list[UnitEstimate]] = {}
    for unit in graph_units(graph, fast, skipped):
        by_layer.setdefault(unit.layer, []).append(estimate_unit(unit, device, calibration))
    layers = []
    for node in graph.nodes[1:]:
        if isinstance(node, Reshape):
            continue
        dense = isinstance(node, Dense)
        layers.append(LayerEstimate(
            node.name, node.op, graph.producer(node).out.shape, node.out.shape,
            node.pe if dense else None, node.simd if dense else None,
            folding.node_cycles(node), by_layer.get(node.name, [])))
    name, interval = folding.bottleneck(graph)
    schedule = pixel_schedule(graph)
    notes = [f"layer {n!r} ({graph[n].op}): no RTL unit and no resource model yet; its "
             "resources and cycles are not counted" for n in skipped]
    return DesignEstimate(graph.name, device, part, clock_ns, layers, name, interval,
                          int(schedule[graph.output.name][-1]), calibration.source,
                          serialisations(graph), notes)


def graph_units(graph: Graph, fast: bool, skipped: list[str]) -> list[Unit]:
    """The RTL writer's units (``fast``: the same built without weight images); nodes the
    RTL writer cannot build yet are left out and named in ``skipped``."""
    if not fast:
        try:
            return design_units(graph)
        except IRError:
            pass
    return plan_units(graph, skipped=skipped)


def matvec_layer_cost(graph: Graph, node: Dense, pe: int, simd: int, device: Device,
                      calibration: Calibration) -> Resources:
    """Resources of one matrix-vector layer at (pe, simd) without its input width
    converter (which depends on the neighbour's folding): the folding search's objective."""
    return total(estimate_unit(u, device, calibration).resources
                 for u in matvec_layer_units(graph, node, pe, simd))
