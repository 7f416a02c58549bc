"""Automatic folding: PE/SIMD per layer for a target frame rate at the lowest resource cost.

The frame interval of the dataflow pipeline is the largest per-unit cycle count
(``folding.bottleneck``), and every unit's cycles depend only on its own (PE, SIMD)
(``folding.matvec_cycles``).  So for a cycle budget B = clock / target FPS the cheapest
design is, exactly, the sum over layers of the cheapest legal (PE, SIMD) whose cycles are
<= B: the layers are independent once B is fixed.  ``choose_folding`` does that per-layer
minimisation over the whole divisor space.  When the target does not fit the device, the
smallest budget that fits is found by bisection over the finitely many cycle counts the
layers can take (a larger budget never costs more), and the error reports it as the
highest frame rate the part can reach.

The per-layer objective is ``estimate.matvec_layer_cost`` (calibrated LUT/FF, exact memory
mapping) reduced to one number by ``Resources.cost`` (summed fraction of the device); the
final design is re-estimated whole (with its width converters) before it is accepted.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
from dataclasses import dataclass
from pathlib import Path

from bnn2fpga import folding
from bnn2fpga.devices import Device, get_device
from bnn2fpga.estimate import (
    Calibration,
    DesignEstimate,
    Resources,
    estimate,
    load_calibration,
    matvec_layer_cost,
)
from bnn2fpga.ir import Dense, Graph, IRError

Folding = dict[str, tuple[int, int]]

# objective name -> weight per resource of its fraction of the device
OBJECTIVES: dict[str, dict[str, float]] = {
    "balanced": {"lut": 1.0, "ff": 1.0, "bram18": 1.0, "uram": 1.0, "dsp": 1.0},
    "lut": {"lut": 1.0, "ff": 1e-3, "bram18": 1e-3, "uram": 1e-3, "dsp": 1e-3},
}


def objective_cost(res: Resources, device: Device, objective: str) -> float:
    """One number to minimise: weighted sum of the fractions of the device used.
    ``balanced`` weighs every resource alike; ``lut`` minimises LUTs (the others only break
    ties; they still must fit)."""
    if objective not in OBJECTIVES:
        raise IRError(f"unknown folding objective {objective!r}; choose one of "
                      f"{', '.join(OBJECTIVES)}")
    util = res.utilisation(device)
    return sum(w * util[r] for r, w in OBJECTIVES[objective].items() if util[r])


@dataclass(frozen=True)
class Option:
    """One legal folding of one layer, with its cycles and estimated resources."""

    pe: int
    simd: int
    cycles: int
    resources: Resources
    cost: float


def layer_options(graph: Graph, node: Dense, device: Device, calibration: Calibration,
                  objective: str = "balanced") -> list[Option]:
    """Every legal (PE, SIMD) of ``node``, pruned to the Pareto front of (cycles, cost),
    sorted by cycles ascending (so cost descending)."""
    options = []
    for pe in folding.divisors(node.out_channels):
        for simd in folding.divisors(folding.simd_limit(node)):
            res = matvec_layer_cost(graph, node, pe, simd, device, calibration)
            options.append(Option(pe, simd, folding.matvec_cycles(node, pe, simd), res,
                                  objective_cost(res, device, objective)))
    options.sort(key=lambda o: (o.cycles, o.cost))
    front: list[Option] = []
    for opt in options:      # fastest first: a slower option is kept only if cheaper
        if not front or opt.cost < front[-1].cost:
            front.append(opt)
    return front


def cheapest_within(options: list[Option], budget: int) -> Option | None:
    """The lowest-cost option taking at most ``budget`` cycles (None if none does)."""
    fitting = [o for o in options if o.cycles <= budget]
    return min(fitting, key=lambda o: (o.cost, o.cycles)) if fitting else None


def fixed_cycles(graph: Graph) -> tuple[str, int]:
    """(name, cycles) of the slowest unit whose cycles no folding changes (max-pool)."""
    fixed = [(n.name, folding.node_cycles(n)) for n in graph.nodes
             if not isinstance(n, Dense)]
    return max(fixed, key=lambda t: t[1], default=("", 0))


def apply_folding(graph: Graph, fold: Folding) -> Graph:
    """A copy of ``graph`` with the given (PE, SIMD) per matrix-vector layer (arrays are
    shared, not copied)."""
    nodes = [dataclasses.replace(n, pe=fold[n.name][0], simd=fold[n.name][1])
             if isinstance(n, Dense) and n.name in fold else n for n in graph.nodes]
    return Graph(graph.name, nodes, dict(graph.meta))


class FoldingSearch:
    """The per-layer option tables of one graph on one device."""

    def __init__(self, graph: Graph, device: Device, part: str, clock_ns: float,
                 calibration: Calibration, objective: str = "balanced") -> None:
        self.graph, self.device, self.part, self.clock_ns = graph, device, part, clock_ns
        self.calibration = calibration
        self.options = {n.name: layer_options(graph, n, device, calibration, objective)
                        for n in graph.matvec_nodes()}

    def fastest(self) -> int:
        """The smallest frame interval any folding reaches."""
        floor = max((opts[0].cycles for opts in self.options.values()), default=0)
        return max(floor, fixed_cycles(self.graph)[1])

    def solve(self, budget: int) -> Folding:
        """The cheapest folding whose every layer takes at most ``budget`` cycles."""
        out = {}
        for name, opts in self.options.items():
            best = cheapest_within(opts, budget)
            if best is None:
                raise IRError(f"layer {name!r} cannot run in {budget} cycles per frame "
                              f"(its fastest folding takes {opts[0].cycles})")
            out[name] = (best.pe, best.simd)
        return out

    def design(self, fold: Folding) -> DesignEstimate:
        return estimate(apply_folding(self.graph, fold), part=self.part,
                        clock_ns=self.clock_ns, calibration=self.calibration, fast=True)

    def fits(self, budget: int) -> bool:
        return self.design(self.solve(budget)).resources.fits(self.device)

    def candidate_budgets(self) -> list[int]:
        """Every frame interval a folding can produce, from the fastest up."""
        values = {o.cycles for opts in self.options.values() for o in opts}
        values.add(fixed_cycles(self.graph)[1])
        lo = self.fastest()
        return sorted(v for v in values if v >= lo)

    def smallest_fitting_budget(self) -> int | None:
        """Bisection over candidate budgets (a larger budget never costs more)."""
        budgets = self.candidate_budgets()
        if not budgets or not self.fits(budgets[-1]):
            return None
        lo, hi = 0, len(budgets) - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if self.fits(budgets[mid]):
                hi = mid
            else:
                lo = mid + 1
        return budgets[lo]


def fps_of(cycles: int, clock_ns: float) -> float:
    return 1e9 / (clock_ns * cycles)


def budget_for(target_fps: float, clock_ns: float) -> int:
    """Largest frame interval (cycles) that still reaches ``target_fps``."""
    if not target_fps > 0 or not clock_ns > 0:
        raise IRError(f"target FPS ({target_fps}) and clock period ({clock_ns} ns) must be "
                      "positive")
    return math.floor(1e9 / (clock_ns * target_fps) + 1e-9)


def choose_folding(graph: Graph, *, target_fps: float, clock_ns: float, part: str,
                   objective: str = "balanced", calibration: Calibration | None = None
                   ) -> Folding:
    """PE/SIMD per matrix-vector layer reaching ``target_fps`` at ``clock_ns`` on ``part``
    with the lowest estimated resource cost (``objective``: see ``objective_cost``).
    Raises ``IRError`` saying what would fit."""
    device = get_device(part)
    objective_cost(Resources(), device, objective)   # reject an unknown objective early
    search = FoldingSearch(graph, device, part, clock_ns,
                     load_calibration() if calibration is None else calibration, objective)
    budget = budget_for(target_fps, clock_ns)
    fastest = search.fastest()
    if budget < fastest:
        raise IRError(unreachable_message(graph, search, target_fps, budget))
    fold = search.solve(budget)
    design = search.design(fold)
    if design.resources.fits(device):
        return fold
    raise IRError(too_big_message(search, target_fps, budget, design))


def unreachable_message(graph: Graph, search: FoldingSearch, target_fps: float, budget: int) -> str:
    """The target needs fewer cycles than the fastest folding: say which unit limits it."""
    clock = search.clock_ns
    name, pool_cycles = fixed_cycles(graph)
    limits = [(opts[0].cycles, f"layer {n!r} at full parallelism (PE={opts[0].pe}, "
                               f"SIMD={opts[0].simd}) takes {opts[0].cycles} cycles")
              for n, opts in search.options.items()]
    if name:
        limits.append((pool_cycles, f"{name!r} takes {pool_cycles} cycles at one pixel per "
                                    "cycle"))
    worst = max(limits)[1]
    msg = (f"target {target_fps:g} FPS at {clock:g} ns needs <= {budget} cycles per frame, "
           f"but {worst}: no folding exceeds {fps_of(search.fastest(), clock):.1f} FPS at "
           "this clock")
    best = search.smallest_fitting_budget()
    if best is not None:
        msg += f"; on {search.device.name} at most {fps_of(best, clock):.1f} FPS fits"
    return msg


def too_big_message(search: FoldingSearch, target_fps: float, budget: int,
                    design: DesignEstimate) -> str:
    dev, clock = search.device, search.clock_ns
    msg = (f"target {target_fps:g} FPS at {clock:g} ns (<= {budget} cycles per frame) does "
           f"not fit {dev.name}: the cheapest folding needs "
           f"{', '.join(design.resources.over(dev))}")
    best = search.smallest_fitting_budget()
    if best is None:
        return msg + "; even the smallest folding (PE=SIMD=1) does not fit this part"
    return (msg + f"; the most that fits is {fps_of(best, clock):.1f} FPS "
            f"({best} cycles per frame) — lower --target-fps or choose a larger part")


def max_fps(graph: Graph, *, clock_ns: float, part: str, objective: str = "balanced",
            calibration: Calibration | None = None) -> tuple[float, Folding]:
    """The highest frame rate that fits ``part``, and the cheapest folding reaching it."""
    search = FoldingSearch(graph, get_device(part), part, clock_ns,
                     load_calibration() if calibration is None else calibration, objective)
    best = search.smallest_fitting_budget()
    if best is None:
        raise IRError(f"graph {graph.name!r} does not fit {search.device.name} even with "
                      "PE=SIMD=1 everywhere")
    return fps_of(best, clock_ns), search.solve(best)


# ----------------------------------------------------------------------------------------
# Manual folding from a JSON file
# ----------------------------------------------------------------------------------------


def load_folding_file(path: str | Path, graph: Graph) -> Folding:
    """Read ``{"layer": {"pe": P, "simd": S}, ...}`` and check it against ``graph``.

    Returns (PE, SIMD) for every matrix-vector layer: the file's value where it gives one,
    the graph's current folding otherwise.  Raises ``IRError`` for unreadable JSON, unknown
    or non-matrix-vector layer names, malformed entries and foldings that do not divide."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as e:
        raise IRError(f"cannot read folding file {path}: {e.strerror}") from e
    except json.JSONDecodeError as e:
        raise IRError(f"folding file {path} is not valid JSON: {e.msg} at line {e.lineno}, "
                      f"column {e.colno}") from e
    if not isinstance(data, dict):
        raise IRError(f"folding file {path} must hold a JSON object "
                      '{"layer_name": {"pe": P, "simd": S}, ...}, '
                      f"not a {type(data).__name__}")
    return folding_from_dict(data, graph, source=str(path))


def folding_from_dict(data: dict, graph: Graph, source: str = "folding") -> Folding:
    """Validate a {"layer": {"pe": P, "simd": S}} mapping against ``graph``."""
    layers = {n.name: n for n in graph.matvec_nodes()}
    fold: Folding = {name: (n.pe, n.simd) for name, n in layers.items()}
    errors = []
    for name, entry in data.items():
        if name not in layers:
            errors.append(unknown_layer_message(graph, name, list(layers)))
            continue
        pe_simd = parse_entry(name, entry, fold[name])
        if isinstance(pe_simd, str):
            errors.append(pe_simd)
            continue
        err = folding.folding_error(layers[name], *pe_simd)
        if err:
            errors.append(err)
        fold[name] = pe_simd
    if errors:
        raise IRError(f"{source}: invalid folding:\n  " + "\n  ".join(errors))
    return fold


def unknown_layer_message(graph: Graph, name: str, known: list[str]) -> str:
    names = [n.name for n in graph.nodes]
    if name in names:
        return (f"layer {name!r} is a {graph[name].op} node, which has no PE/SIMD; "
                f"foldable layers: {', '.join(known)}")
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown layer {name!r}{hint}; foldable layers: {', '.join(known)}"


def parse_entry(name: str, entry: object, current: tuple[int, int]) -> tuple[int, int] | str:
    """(pe, simd) from one file entry (a missing key keeps ``current``), or the message
    saying what is wrong with it."""
    if not isinstance(entry, dict) or set(entry) - {"pe", "simd"} or not entry:
        return (f"layer {name!r}: expected {{\"pe\": P, \"simd\": S}}, got "
                f"{json.dumps(entry)}")
    values = []
    for key, default in zip(("pe", "simd"), current, strict=True):
        v = entry.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int):
            return f"layer {name!r}: {key} must be a positive integer, got {json.dumps(v)}"
        values.append(v)
    return values[0], values[1]
