"""Whole-design estimate: every unit of the plan estimated (calibrated logic plus mapped
memories), grouped by layer, with the cycle model's interval and latency."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from bnn2fpga import folding
from bnn2fpga.devices import Device, get_device
from bnn2fpga.estimate.calibration import Calibration, load_calibration
from bnn2fpga.estimate.memory import Memory, map_memory
from bnn2fpga.estimate.resources import Resources, total
from bnn2fpga.estimate.schedule import Serialisation, pixel_schedule, serialisations
from bnn2fpga.ir import Dense, Graph, Reshape
from bnn2fpga.plan import Plan, Unit, build_plan, layer_plan_units
from bnn2fpga.units import unit_features, unit_memories


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
                      ff=max(0.0, calibration.linear(unit, "ff", mapped)),
                      # DSP slices are counted, not fitted (a unit's ``dsp`` feature)
                      dsp=unit_features(unit, mapped).get("dsp", 0.0))
    return UnitEstimate(unit, logic, mems)

MemoryStyles = dict[str, dict[str, str]]

def memory_styles(plan: Plan, part: str, calibration: Calibration | None = None
                  ) -> MemoryStyles:
    """{unit name: {memory name: style}} for every instance of ``plan`` on ``part``: each
    unit's declared memories (``unit_memories``) mapped by ``map_memory`` (``"none"`` for
    an empty one).  The one decision both the estimate and the HLS writer's storage
    bindings read."""
    device = get_device(part)
    calibration = load_calibration() if calibration is None else calibration
    return {u.name: {m.name: map_memory(m, device, calibration).style
                     for m in unit_memories(u)}
            for u in plan.instances()}

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
    # first frame in -> last output out (``pixel_schedule``), worked out when first asked
    # for: the folding search compares many designs by their resources alone
    latency_of: Callable[[], int] = field(repr=False, compare=False)
    calibration: str
    serialisations: list[Serialisation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @cached_property
    def latency_cycles(self) -> int:
        return self.latency_of()

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
    styles = memory_styles(plan, part, calibration)
    by_layer: dict[str, list[UnitEstimate]] = {}
    for unit in plan.instances():
        by_layer.setdefault(unit.layer, []).append(
            estimate_unit(unit, device, calibration, styles[unit.name]))
    layers = []
    for node in graph.nodes[1:]:
        if isinstance(node, Reshape):
            continue
        dense = isinstance(node, Dense)
        in_shape = graph.producers(node)[0].out.shape
        layers.append(LayerEstimate(
            node.name, node.op, in_shape, node.out.shape,
            node.pe if dense else None, node.simd if dense else None,
            folding.node_cycles(node, in_shape), by_layer.get(node.name, [])))
    name, interval = folding.bottleneck(graph)
    return DesignEstimate(graph.name, device, part, clock_ns, layers, name, interval,
                          lambda: int(pixel_schedule(graph, plan)[graph.output.name][-1]),
                          calibration.source, serialisations(graph, plan))

def matvec_layer_cost(graph: Graph, node: Dense, pe: int, simd: int, device: Device,
                      calibration: Calibration) -> Resources:
    """Resources of one matrix-vector layer at (pe, simd) without its input width
    converter (which depends on the neighbour's folding): the folding search's objective."""
    return total(estimate_unit(u, device, calibration).resources
                 for u in layer_plan_units(graph, node, pe, simd))
