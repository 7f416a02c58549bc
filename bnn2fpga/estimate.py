"""Resource and throughput estimation of a hardware graph.

Cycles come from ``bnn2fpga.folding`` (``node_cycles``, ``matvec_cycles``, ``bottleneck``):
the one cycle model the RTL realises.  This module only *schedules* those per-pixel costs
(``pixel_schedule``) to estimate the first-frame latency.

Resources are estimated per hardware *unit* (what the RTL instantiates for a node: sliding
window, matrix-vector-threshold unit, max-pool, width converter, FIFO).  Each unit kind has
structural features (``unit_features``: e.g. PE*SIMD popcount inputs, PE*acc_bits
accumulator bits); LUT and FF are linear in those features with coefficients fitted against
yosys ``synth_xilinx`` of our own RTL (``bench/calibrate.py`` writes
``bnn2fpga/data/calibration.json``; built-in first-principles coefficients are used for any
kind the file lacks).  Memories (weights, thresholds, line buffers, FIFOs) are mapped
exactly onto BRAM18 / UltraRAM / LUTRAM shapes by ``map_memory``.
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
    Input,
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

    def as_dict(self) -> dict[str, int]:
        return {r: int(round(getattr(self, r))) for r in RESOURCES}

    def fits(self, device: Device) -> bool:
        return all(getattr(self, r) <= getattr(device, r) for r in RESOURCES)

    def utilisation(self, device: Device) -> dict[str, float]:
        """Fraction of the device per resource (0 where the device has none and none is
        used; inf where it has none and some is used)."""
        out = {}
        for r in RESOURCES:
            used, cap = getattr(self, r), getattr(device, r)
            out[r] = used / cap if cap else (0.0 if used == 0 else math.inf)
        return out

    def cost(self, device: Device) -> float:
        """Scalar cost for the folding search: summed fraction of the device used."""
        return sum(self.utilisation(device).values())

    def over(self, device: Device) -> list[str]:
        """Human-readable list of the resources that exceed ``device``."""
        return [f"{r.upper()} {getattr(self, r):.0f} > {getattr(device, r)}"
                for r in RESOURCES if getattr(self, r) > getattr(device, r)]


def total(items: Iterable[Resources]) -> Resources:
    out = Resources()
    for r in items:
        out = out + r
    return out


# ----------------------------------------------------------------------------------------
# Memories: exact mapping onto BRAM18 / URAM / LUTRAM primitives
# ----------------------------------------------------------------------------------------

# BRAM18 aspect ratios (depth, width) in simple dual-port mode, 7-series and UltraScale+
BRAM18_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))
URAM_SHAPE = (4096, 72)
LUTRAM_DEPTH = 64          # one LUT6 holds a 64x1 single-port RAM/ROM
SRL_DEPTH = 32             # one LUT6 is a 32-deep shift register (SRLC32E)


@dataclass(frozen=True)
class Memory:
    """A memory of ``depth`` words of ``width`` bits mapped to one primitive style."""

    depth: int
    width: int
    style: str            # "register", "lutram", "bram", "uram"
    resources: Resources

    @property
    def bits(self) -> int:
        return self.depth * self.width


def bram18_count(depth: int, width: int) -> int:
    """Fewest BRAM18s holding depth x width over the BRAM18 aspect ratios."""
    return min(math.ceil(width / w) * math.ceil(depth / d) for d, w in BRAM18_SHAPES)


def memory_options(depth: int, width: int, device: Device) -> list[Memory]:
    """Every legal primitive mapping of a depth x width read-only or simple dual-port
    memory."""
    if depth <= 0 or width <= 0:
        return [Memory(depth, width, "register", Resources())]
    options = []
    if depth <= 2:
        options.append(Memory(depth, width, "register", Resources(lut=width * (depth - 1),
                                                                  ff=depth * width)))
    options.append(Memory(depth, width, "lutram",
                          Resources(lut=width * math.ceil(depth / LUTRAM_DEPTH))))
    options.append(Memory(depth, width, "bram", Resources(bram18=bram18_count(depth, width))))
    if device.uram:
        n = math.ceil(width / URAM_SHAPE[1]) * math.ceil(depth / URAM_SHAPE[0])
        options.append(Memory(depth, width, "uram", Resources(uram=n)))
    return options


def map_memory(depth: int, width: int, device: Device, style: str = "auto") -> Memory:
    """The mapping of a memory: ``style`` forces one, ``"auto"`` takes the one using the
    smallest fraction of the device (ties: LUTRAM before BRAM before URAM)."""
    options = memory_options(depth, width, device)
    if style != "auto":
        chosen = [m for m in options if m.style == style]
        if not chosen:
            raise IRError(f"memory style {style!r} is not available for a {depth}x{width} "
                          f"memory on {device.name}; choose one of "
                          f"{[m.style for m in options]}")
        return chosen[0]
    return min(options, key=lambda m: m.resources.cost(device))


# ----------------------------------------------------------------------------------------
# Units and their structural features
# ----------------------------------------------------------------------------------------


@dataclass
class Unit:
    """One hardware unit the RTL instantiates, with its parameters."""

    name: str
    kind: str                 # "mvtu", "mvtu_uint", "swu", "pool", "dwc", "fifo"
    layer: str                # the graph node it belongs to
    params: dict[str, int]
    memories: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> depth,width


def clog2(n: int) -> int:
    return max(1, math.ceil(math.log2(max(n, 2))))


def beat_width(t: TensorType, lanes: int) -> int:
    """Bits of one stream beat that carries ``lanes`` channels of tensor type ``t``."""
    return lanes * t.bits


def acc_bits_of(node: Dense, in_type: TensorType) -> int:
    if node.acc_bits:
        return node.acc_bits
    return signed_bits_for(accumulator_bound(node, in_type) + 1)


def mvtu_unit(node: Dense, in_type: TensorType, pe: int, simd: int) -> Unit:
    """The matrix-vector-threshold unit of a Dense/Conv2D node at folding (pe, simd)."""
    nf, sf = node.out_channels // pe, node.fan_in // simd
    acc = acc_bits_of(node, in_type)
    n_thr = 0 if node.thresholds is None else int(node.thresholds.shape[1])
    uint_in = in_type.encoding == "uint"
    params = {"pe": pe, "simd": simd, "nf": nf, "sf": sf, "acc_bits": acc, "n_thr": n_thr,
              "in_bits": in_type.bits if uint_in else 1,
              "out_bits": node.out.bits}
    memories = {"weights": (nf * sf, pe * simd)}
    if n_thr:
        memories["thresholds"] = (nf, pe * n_thr * acc)
    return Unit(f"{node.name}.mvtu", "mvtu_uint" if uint_in else "mvtu", node.name, params,
                memories)


def swu_unit(node: Conv2D, in_type: TensorType, simd: int) -> Unit:
    """The sliding-window (im2col) unit feeding a Conv2D: a line buffer of K rows."""
    h, w, c = in_type.shape
    kh, kw = node.kernel
    bits = in_type.bits
    padded_w = w + node.pads[2] + node.pads[3]
    params = {"c": c, "simd": simd, "bits": bits, "k": kh * kw, "kh": kh, "w": padded_w}
    depth = kh * padded_w * (c // simd)
    return Unit(f"{node.name}.swu", "swu", node.name, params,
                {"line_buffer": (depth, simd * bits)})


def pool_unit(node: MaxPool2D, in_type: TensorType) -> Unit:
    """Max-pool over KxK: one row of partial maxima of C channels."""
    h, w, c = in_type.shape
    ow = node.out.shape[1]
    params = {"c": c, "bits": in_type.bits, "k": node.kernel[0] * node.kernel[1], "ow": ow}
    return Unit(f"{node.name}.pool", "pool", node.name, params,
                {"row_buffer": (ow, c * in_type.bits)})


def dwc_unit(layer: str, in_width: int, out_width: int) -> Unit:
    return Unit(f"{layer}.dwc", "dwc", layer, {"in_width": in_width, "out_width": out_width,
                                               "max_width": max(in_width, out_width)})


FIFO_DEPTH = 2


def fifo_unit(layer: str, width: int, depth: int = FIFO_DEPTH) -> Unit:
    return Unit(f"{layer}.fifo", "fifo", layer, {"width": width, "depth": depth},
                {"storage": (depth, width)} if depth > 2 else {})


def unit_features(unit: Unit) -> dict[str, float]:
    """Structural features of a unit; LUT and FF are linear in these."""
    p = unit.params
    if unit.kind in ("mvtu", "mvtu_uint"):
        counter = clog2(p["nf"] * p["sf"])
        lanes = p["pe"] * p["simd"]
        popcount_bits = clog2(p["simd"] * p["in_bits"] + 1)
        f = {"const": 1.0, "counter": counter,
             "lanes": lanes,                                   # XNOR/AND + popcount inputs
             "pe_acc": p["pe"] * p["acc_bits"],                # accumulator adders + regs
             "pe_popcount": p["pe"] * popcount_bits,           # popcount result registers
             "pe_thr": p["pe"] * p["n_thr"] * p["acc_bits"],   # threshold comparators
             "out": p["pe"] * p["out_bits"]}
        if unit.kind == "mvtu_uint":
            f["lanes_bits"] = lanes * p["in_bits"]             # multi-bit adder tree
        return f
    if unit.kind == "swu":
        return {"const": 1.0, "counter": clog2(p["w"]) + clog2(p["k"]) + clog2(p["c"]),
                "width": p["simd"] * p["bits"], "k_width": p["k"] * p["simd"] * p["bits"]}
    if unit.kind == "pool":
        return {"const": 1.0, "counter": clog2(p["ow"]), "width": p["c"] * p["bits"],
                "k_width": p["k"] * p["c"] * p["bits"]}
    if unit.kind == "dwc":
        return {"const": 1.0, "in": p["in_width"], "out": p["out_width"],
                "max": p["max_width"]}
    if unit.kind == "fifo":
        return {"const": 1.0, "width": p["width"], "counter": clog2(p["depth"])}
    raise IRError(f"unit {unit.name!r}: unknown unit kind {unit.kind!r}")


# First-principles coefficients, replaced by calibration.json where it has the kind.
DEFAULT_COEFFICIENTS: dict[str, dict[str, dict[str, float]]] = {
    "mvtu": {"lut": {"const": 20, "counter": 3, "lanes": 1.0, "pe_acc": 1.0, "pe_thr": 0.5},
             "ff": {"const": 10, "counter": 2, "lanes": 1.0, "pe_acc": 1.0,
                    "pe_popcount": 1.0, "out": 1.0}},
    "mvtu_uint": {"lut": {"const": 20, "counter": 3, "lanes_bits": 1.2, "pe_acc": 1.0,
                          "pe_thr": 0.5},
                  "ff": {"const": 10, "counter": 2, "lanes_bits": 1.0, "pe_acc": 1.0,
                         "out": 1.0}},
    "swu": {"lut": {"const": 20, "counter": 3, "width": 2.0},
            "ff": {"const": 10, "counter": 2, "width": 2.0}},
    "pool": {"lut": {"const": 10, "counter": 2, "k_width": 0.5},
             "ff": {"const": 5, "counter": 1, "width": 2.0}},
    "dwc": {"lut": {"const": 5, "max": 1.0}, "ff": {"const": 5, "max": 1.0, "out": 1.0}},
    "fifo": {"lut": {"const": 5, "width": 0.5}, "ff": {"const": 4, "width": 2.0}},
}


@dataclass(frozen=True)
class Calibration:
    """LUT/FF coefficients per unit kind, and where they came from."""

    coefficients: dict[str, dict[str, dict[str, float]]]
    source: str
    fit_error: dict[str, Any] = field(default_factory=dict)

    def linear(self, unit: Unit, resource: str) -> float:
        coefs = self.coefficients.get(unit.kind, DEFAULT_COEFFICIENTS[unit.kind])[resource]
        feats = unit_features(unit)
        return sum(c * feats.get(name, 0.0) for name, c in coefs.items())


def load_calibration(path: Path | None = None) -> Calibration:
    """Coefficients from ``path`` (default ``bnn2fpga/data/calibration.json``), falling back
    to the built-in ones for every kind the file does not cover."""
    path = CALIBRATION_FILE if path is None else Path(path)
    return _load_calibration_cached(str(path))


@lru_cache(maxsize=4)
def _load_calibration_cached(path: str) -> Calibration:
    coefs = {k: {r: dict(v) for r, v in d.items()} for k, d in DEFAULT_COEFFICIENTS.items()}
    if not Path(path).is_file():
        return Calibration(coefs, "built-in defaults (no calibration.json)")
    data = json.loads(Path(path).read_text())
    for kind, by_resource in data.get("coefficients", {}).items():
        coefs.setdefault(kind, {}).update({r: dict(v) for r, v in by_resource.items()})
    return Calibration(coefs, data.get("source", path), data.get("fit_error", {}))


def unit_resources(unit: Unit, device: Device, calibration: Calibration,
                   memory_style: str = "auto") -> tuple[Resources, dict[str, Memory]]:
    """LUT/FF of the unit's logic (calibrated) plus its memories (mapped exactly)."""
    logic = Resources(lut=max(0.0, calibration.linear(unit, "lut")),
                      ff=max(0.0, calibration.linear(unit, "ff")))
    mems = {name: map_memory(d, w, device, memory_style)
            for name, (d, w) in unit.memories.items()}
    return logic + total(m.resources for m in mems.values()), mems


# ----------------------------------------------------------------------------------------
# Graph -> units
# ----------------------------------------------------------------------------------------


def out_beat_lanes(node: Node, folding_of: dict[str, tuple[int, int]]) -> int:
    """Channels per beat on a node's output stream."""
    if isinstance(node, Dense):
        return folding_of[node.name][0]
    return node.out.channels


def layer_units(graph: Graph, node: Node, folding_of: dict[str, tuple[int, int]]
                ) -> list[Unit]:
    """The units the RTL builds for ``node``: width converter (if beat widths differ),
    sliding window (convs), MVTU or pool, and the FIFO on its output."""
    if isinstance(node, (Input, Reshape)):
        return []
    src = source_node(graph, node)
    in_type = graph.producer(node).out
    units: list[Unit] = []
    pe, simd = folding_of.get(node.name, (1, 1))
    consumes = simd if isinstance(node, Dense) else node.out.channels
    produces = out_beat_lanes(src, folding_of)
    if produces != consumes:
        units.append(dwc_unit(node.name, beat_width(in_type, produces),
                              beat_width(in_type, consumes)))
    if isinstance(node, Conv2D):
        units.append(swu_unit(node, in_type, simd))
    if isinstance(node, Dense):
        units.append(mvtu_unit(node, in_type, pe, simd))
    elif isinstance(node, MaxPool2D):
        units.append(pool_unit(node, in_type))
    else:
        raise IRError(f"the estimator has no model for node {node.name!r} ({node.op})")
    units.append(fifo_unit(node.name, beat_width(node.out, out_beat_lanes(node, folding_of))))
    return units


def source_node(graph: Graph, node: Node) -> Node:
    """The unit-producing node upstream of ``node`` (skipping Reshape, which is a no-op)."""
    src = graph.producer(node)
    while isinstance(src, Reshape):
        src = graph.producer(src)
    return src


def graph_folding(graph: Graph) -> dict[str, tuple[int, int]]:
    return {n.name: (n.pe, n.simd) for n in graph.matvec_nodes()}


# ----------------------------------------------------------------------------------------
# Cycles: per-pixel schedule built from folding.node_cycles
# ----------------------------------------------------------------------------------------

UNIT_PIPELINE_DELAY = 2   # register stages between a unit's input and output (per unit)


def pixel_schedule(graph: Graph, input_cycles_per_pixel: int = 1) -> dict[str, np.ndarray]:
    """Cycle at which each output pixel (raster order) of each node is complete, for the
    first frame entering an idle pipeline.  A node spends ``node_cycles / out_pixels``
    cycles per output pixel (``folding.node_cycles``); it starts a pixel when the previous
    one is done and the last input pixel that pixel needs has arrived."""
    inp = graph.input
    n_in = folding.out_pixels(inp)
    done: dict[str, np.ndarray] = {
        inp.name: np.arange(1, n_in + 1, dtype=np.int64) * input_cycles_per_pixel}
    for node in graph.nodes[1:]:
        src = graph.producer(node)
        t_in = done[src.name]
        if isinstance(node, Reshape):
            done[node.name] = np.full(folding.out_pixels(node), t_in[-1], dtype=np.int64)
            continue
        need = needed_input_pixel(node, src)
        per_pixel = folding.node_cycles(node) // folding.out_pixels(node)
        tail = tail_cycles(node, per_pixel)
        t = np.empty(len(need), dtype=np.int64)
        prev = 0
        for i, j in enumerate(need):
            prev = max(prev + per_pixel, int(t_in[j]) + tail)
            t[i] = prev
        done[node.name] = t + UNIT_PIPELINE_DELAY
    return done


def tail_cycles(node: Node, per_pixel: int) -> int:
    """Cycles a unit still needs after the last input it waits for has arrived."""
    if isinstance(node, Dense):
        nf = node.out_channels // node.pe
        sf = per_pixel // max(nf, 1)
        return (nf - 1) * sf + 1   # the rest of the neuron folds after the input pass
    return 1


def needed_input_pixel(node: Node, src: Node) -> np.ndarray:
    """For each output pixel, the raster index of the last input pixel it depends on."""
    n_out = folding.out_pixels(node)
    if len(src.out.shape) != 3 or not isinstance(node, (Conv2D, MaxPool2D)):
        return np.full(n_out, folding.out_pixels(src) - 1, dtype=np.int64)
    h, w = src.out.shape[0], src.out.shape[1]
    oh, ow = node.out.shape[0], node.out.shape[1]
    kh, kw = node.kernel
    sh, sw = node.stride
    top, _, left, _ = node.pads
    oy, ox = np.meshgrid(np.arange(oh), np.arange(ow), indexing="ij")
    iy = np.clip(oy * sh + kh - 1 - top, 0, h - 1)
    ix = np.clip(ox * sw + kw - 1 - left, 0, w - 1)
    # the window is complete once the input raster reaches (iy, ix); rows are complete
    # before it, so the stream position is iy*w + ix (bottom-right tap)
    return (iy * w + ix).reshape(-1)


# ----------------------------------------------------------------------------------------
# Whole-design estimate
# ----------------------------------------------------------------------------------------


@dataclass
class UnitEstimate:
    unit: Unit
    resources: Resources
    memories: dict[str, Memory]


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

    @property
    def resources(self) -> Resources:
        return total(layer.resources for layer in self.layers)

    @property
    def fps(self) -> float:
        return 1e9 / (self.clock_ns * self.interval_cycles)

    @property
    def latency_us(self) -> float:
        return self.latency_cycles * self.clock_ns / 1e3

    def to_json(self) -> dict[str, Any]:
        dev = self.device
        return {
            "graph": self.graph_name, "part": self.part, "device": dev.name,
            "device_resources": dev.capacity(), "clock_ns": self.clock_ns,
            "clock_mhz": 1e3 / self.clock_ns, "calibration": self.calibration,
            "bottleneck": self.bottleneck, "interval_cycles": self.interval_cycles,
            "fps": self.fps, "latency_cycles": self.latency_cycles,
            "latency_us": self.latency_us,
            "total": self.resources.as_dict(),
            "utilisation": {r: round(100 * v, 2)
                            for r, v in self.resources.utilisation(dev).items()},
            "layers": [layer_to_json(layer, dev, layer.name == self.bottleneck)
                       for layer in self.layers],
        }


def layer_to_json(layer: LayerEstimate, device: Device, is_bottleneck: bool) -> dict[str, Any]:
    res = layer.resources
    return {
        "name": layer.name, "op": layer.op, "in_shape": list(layer.in_shape),
        "out_shape": list(layer.out_shape), "pe": layer.pe, "simd": layer.simd,
        "cycles": layer.cycles, "bottleneck": is_bottleneck, **res.as_dict(),
        "utilisation": {r: round(100 * v, 3) for r, v in res.utilisation(device).items()},
        "units": [{"name": u.unit.name, "kind": u.unit.kind, "params": u.unit.params,
                   **u.resources.as_dict(),
                   "memories": {k: {"depth": m.depth, "width": m.width, "style": m.style}
                                for k, m in u.memories.items()}}
                  for u in layer.units],
    }


def estimate_layer(graph: Graph, node: Node, folding_of: dict[str, tuple[int, int]],
                   device: Device, calibration: Calibration) -> LayerEstimate:
    units = [UnitEstimate(u, *unit_resources(u, device, calibration))
             for u in layer_units(graph, node, folding_of)]
    pe, simd = folding_of.get(node.name, (None, None))
    in_shape = graph.producer(node).out.shape if node.inputs else ()
    return LayerEstimate(node.name, node.op, in_shape, node.out.shape, pe, simd,
                         folding.node_cycles(node), units)


def estimate(graph: Graph, *, part: str, clock_ns: float,
             calibration: Calibration | None = None) -> DesignEstimate:
    """Estimate a hardware graph at its own folding (node.pe / node.simd)."""
    folding.validate_folding(graph)
    device = get_device(part)
    calibration = load_calibration() if calibration is None else calibration
    fold = graph_folding(graph)
    layers = [estimate_layer(graph, n, fold, device, calibration) for n in graph.nodes[1:]
              if not isinstance(n, Reshape)]
    name, interval = folding.bottleneck(graph)
    schedule = pixel_schedule(graph)
    return DesignEstimate(graph.name, device, part, clock_ns, layers, name, interval,
                          int(schedule[graph.output.name][-1]), calibration.source)


def matvec_layer_cost(graph: Graph, node: Dense, pe: int, simd: int, device: Device,
                      calibration: Calibration) -> Resources:
    """Resources of one matrix-vector layer at (pe, simd), with its own input width
    converter assumed absent (the search's per-layer objective)."""
    in_type = graph.producer(node).out
    units = [mvtu_unit(node, in_type, pe, simd),
             fifo_unit(node.name, beat_width(node.out, pe))]
    if isinstance(node, Conv2D):
        units.insert(0, swu_unit(node, in_type, simd))
    return total(unit_resources(u, device, calibration)[0] for u in units)
