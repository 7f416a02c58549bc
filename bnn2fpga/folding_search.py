"""Automatic folding: PE/SIMD per layer for a target frame rate at the lowest resource cost.

(Graphs with forks and joins, residual networks: ``FoldingSearch.solve_graph``.)

The frame interval of the dataflow pipeline is the largest per-unit cycle count
(``folding.bottleneck``), and every unit's cycles depend only on its own (PE, SIMD)
(``folding.matvec_cycles``).  So for a cycle budget B = clock / target FPS the cheapest
design is the cheapest choice, over the whole divisor space, of legal (PE, SIMD) per layer
with cycles <= B.  The layers are independent once B is fixed except for the width
converter between two of them (it depends on the producer's PE and the consumer's SIMD):
``FoldingSearch.solve`` minimises exactly with a dynamic programme along the chain.  When
the target does not fit the device, the smallest budget that fits is found by bisection
over the finitely many cycle counts the layers can take (a larger budget never costs
more), and the error reports it as the highest frame rate the part can reach.

A layer's cost is ``estimate.matvec_layer_cost`` (calibrated LUT/FF, exact memory mapping)
plus its width converter, reduced to one number by ``objective_cost`` (weighted fractions
of the device); the final design is re-estimated whole before it is accepted.
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
    Unit,
    buffered_beats,
    estimate,
    estimate_unit,
    load_calibration,
    matvec_layer_cost,
    producer_beats,
    serialised_interval,
)
from bnn2fpga.ir import Dense, Graph, IRError, MaxPool2D, Node, Reshape
from bnn2fpga.ops.window import has_window
from bnn2fpga.plan import elem_bits, input_fifo_depth, swu_params, window_fifo_depth

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
                  objective: str = "balanced", cycles: str = "worst") -> list[Option]:
    """Every legal (PE, SIMD) of ``node`` with its own units' cost (sliding window, MVTU,
    output FIFO), sorted by cycles then cost.  ``cycles``: which figure of a data-dependent
    unit counts (``folding.layer_cycles``: "worst" or "expected")."""
    options = []
    for pe in folding.divisors(node.out_channels):
        for simd in folding.divisors(folding.simd_limit(node)):
            res = matvec_layer_cost(graph, node, pe, simd, device, calibration)
            options.append(Option(pe, simd,
                                  folding.layer_cycles(graph, node, pe, simd, cycles), res,
                                  objective_cost(res, device, objective)))
    options.sort(key=lambda o: (o.cycles, o.cost))
    return options


def pareto_front(options: list[Option]) -> list[Option]:
    """The options no other option beats on both cycles and cost (fastest first)."""
    front: list[Option] = []
    for opt in sorted(options, key=lambda o: (o.cycles, o.cost)):
        if not front or opt.cost < front[-1].cost:
            front.append(opt)
    return front


def fixed_cycles(graph: Graph) -> tuple[str, int]:
    """(name, cycles) of the slowest unit whose cycles no folding changes (pools, forks
    and joins, the real-valued units)."""
    fixed = [(n.name, folding.node_cycles(n, graph.producers(n)[0].out.shape))
             for n in graph.nodes[1:] if not isinstance(n, Dense)]
    return max(fixed, key=lambda t: t[1], default=("", 0))


def apply_folding(graph: Graph, fold: Folding) -> Graph:
    """A copy of ``graph`` with the given (PE, SIMD) per matrix-vector layer (arrays are
    shared, not copied)."""
    nodes = [dataclasses.replace(n, pe=fold[n.name][0], simd=fold[n.name][1])
             if isinstance(n, Dense) and n.name in fold else n for n in graph.nodes]
    return folding.refresh_gate_density(Graph(graph.name, nodes, dict(graph.meta)))


def prune(states: dict[tuple[int | None, int], _State]) -> dict[tuple[int | None, int], _State]:
    """Drop states another state with the same lanes beats on both cost and cycles (fewer
    producer cycles never make a serialisation worse)."""
    kept: dict[tuple[int | None, int], _State] = {}
    by_lanes: dict[int | None, list[tuple[int, _State]]] = {}
    for (lanes, cycles), st in states.items():
        by_lanes.setdefault(lanes, []).append((cycles, st))
    for lanes, items in by_lanes.items():
        best_cycles = None
        for cycles, st in sorted(items, key=lambda t: (t[1].cost, t[0])):
            if best_cycles is None or cycles < best_cycles:
                kept[(lanes, cycles)] = st
                best_cycles = cycles
    return kept


@dataclass
class _State:
    """Best partial folding (up to some layer) ending with a given stream width."""

    cost: float
    fold: dict[str, tuple[int, int]]


class FoldingSearch:
    """Exact minimum-cost folding of a dataflow chain for a cycle budget.

    Once the budget B is fixed, a layer's cost depends on its own (PE, SIMD) and on the
    width converter in front of it, which depends only on the stream width the previous
    unit emits (its PE, or all channels after a pool).  A dynamic programme over the chain
    with that width as the state is therefore exact: for each width, keep the cheapest
    partial folding that ends with it."""

    def __init__(self, graph: Graph, device: Device, part: str, clock_ns: float,
                 calibration: Calibration, objective: str = "balanced",
                 avoid_serialisation: bool = True, cycles: str = "worst") -> None:
        self.graph, self.device, self.part, self.clock_ns = graph, device, part, clock_ns
        self.calibration, self.objective = calibration, objective
        self.avoid_serialisation = avoid_serialisation
        self.options = {n.name: layer_options(graph, n, device, calibration, objective,
                                              cycles)
                        for n in graph.matvec_nodes()}
        self.front = {name: pareto_front(opts) for name, opts in self.options.items()}
        # a chain: the exact dynamic programme; a DAG (forks, joins): ``solve_graph``
        self.chain = dataflow_chain(graph) if is_chain(graph) else None
        self._dwc: dict[tuple[int, int], float] = {}

    def fastest(self) -> int:
        """The smallest frame interval any folding reaches."""
        floor = max((opts[0].cycles for opts in self.front.values()), default=0)
        return max(floor, fixed_cycles(self.graph)[1])

    def dwc_cost(self, in_width: int, out_width: int) -> float:
        """Objective cost of a width converter (0 when the widths agree)."""
        if in_width == out_width:
            return 0.0
        key = (in_width, out_width)
        if key not in self._dwc:
            unit = Unit("dwc", "bnn_dwc", "dwc", {"IWB": in_width, "OWB": out_width})
            res = estimate_unit(unit, self.device, self.calibration).resources
            self._dwc[key] = objective_cost(res, self.device, self.objective)
        return self._dwc[key]

    def solve(self, budget: int) -> Folding | None:
        """The cheapest folding (own units + width converters) whose every unit takes at
        most ``budget`` cycles and in which no pair of units serialises beyond ``budget``
        (``estimate.serialised_interval``); None if there is none."""
        if self.chain is None:
            return self.solve_graph(budget)
        # state: (lanes the last unit emits, its cycles) -> cheapest partial folding
        states: dict[tuple[int | None, int], _State] = {(None, 0): _State(0.0, {})}
        prev: Node | None = None
        for node in self.chain:
            choices = self.choices(node, budget)
            if not choices:
                return None
            bits = stream_bits(self.graph, node)
            new: dict[tuple[int | None, int], _State] = {}
            for (lanes, prod_cycles), state in states.items():
                for lanes_in, lanes_out, cost, fold, cycles in choices:
                    if lanes is not None and self.avoid_serialisation and self.serialises(
                            prev, node, fold, lanes, prod_cycles, bits, budget):
                        continue
                    dwc = 0.0 if lanes is None else self.dwc_cost(lanes * bits,
                                                                  lanes_in * bits)
                    total_cost = state.cost + cost + dwc
                    key = (lanes_out, cycles)
                    if key not in new or total_cost < new[key].cost - 1e-15:
                        folds = state.fold if fold is None else {**state.fold,
                                                                 node.name: fold}
                        new[key] = _State(total_cost, folds)
            if not new:
                return None
            states, prev = prune(new), node
        return dict(min(states.values(), key=lambda st: st.cost).fold)

    def solve_graph(self, budget: int) -> Folding | None:
        """``solve`` on a graph with forks and joins: the units whose cycles no folding
        changes (forks, joins, real-valued units, pools) must fit ``budget``; each
        matrix-vector node takes its cheapest (PE, SIMD) within ``budget`` that does not
        serialise with its producer (in dataflow order, the producer's choice made).  The
        layers' own costs are minimised exactly; the width converters between them (which
        the chain's dynamic programme prices) are not, but the final design's estimate
        includes them."""
        if fixed_cycles(self.graph)[1] > budget:
            return None
        fold: Folding = {}
        for node in self.graph.matvec_nodes():
            prod = self.graph.producer(node)
            while isinstance(prod, Reshape):
                prod = self.graph.producer(prod)
            bits = stream_bits(self.graph, node)
            if isinstance(prod, Dense):      # its lanes and cycles at the chosen folding
                lanes, prod_simd = fold[prod.name]
                prod_cycles = folding.matvec_cycles(prod, lanes, prod_simd)
            elif isinstance(prod, MaxPool2D):  # one pixel of all channels per beat
                lanes = prod.out.channels
                prod_cycles = folding.node_cycles(prod, self.graph.producer(prod).out.shape)
            else:                              # no serialisation rule applies
                lanes, prod_cycles = 0, 0
            best = None
            for opt in sorted(self.options[node.name], key=lambda o: o.cost):
                if opt.cycles > budget:
                    continue
                if self.avoid_serialisation and self.serialises(
                        prod, node, (opt.pe, opt.simd), lanes, prod_cycles, bits, budget):
                    continue
                best = opt
                break
            if best is None:
                return None
            fold[node.name] = (best.pe, best.simd)
        return fold

    def choices(self, node: Node, budget: int) -> list[tuple]:
        """(lanes in, lanes out, cost, (pe, simd) or None, cycles) of a chain unit."""
        if isinstance(node, Dense):
            return [(o.simd, o.pe, o.cost, (o.pe, o.simd), o.cycles)
                    for o in self.options[node.name] if o.cycles <= budget]
        c = node.out.channels       # a pool: one pixel, all channels, per beat
        cycles = folding.node_cycles(node, self.graph.producer(node).out.shape)
        return [(c, c, 0.0, None, cycles)] if cycles <= budget else []

    def serialises(self, prod: Node | None, node: Node, fold: tuple[int, int] | None,
                   lanes: int, prod_cycles: int, bits: int, budget: int) -> bool:
        """Whether ``prod`` (emitting ``lanes`` per beat) and ``node`` at ``fold`` would
        serialise to more than ``budget`` cycles per frame."""
        if fold is None or not isinstance(prod, (Dense, MaxPool2D)):
            return False
        pe, simd = fold
        dwc = None if lanes == simd else {"IWB": lanes * bits, "OWB": simd * bits}
        swu = None
        if has_window(node):  # the same window parameters the planner uses
            swu = swu_params(node, self.graph.producer(node).out.shape, simd, bits)
        beats = producer_beats(prod, lanes)
        # the consumer's input FIFOs follow the plan's rules (one source): its input-vector
        # FIFO and the FIFO in front of its window (a unit feeds it)
        in_fifo = input_fifo_depth(node, pe, simd) * simd
        if swu:
            in_fifo += window_fifo_depth(swu) * simd
        interval = serialised_interval(node, pe, simd, prod_cycles, beats,
                                       buffered_beats(lanes, dwc, swu, in_fifo_elems=in_fifo))
        return interval is not None and interval > budget

    def design(self, fold: Folding) -> DesignEstimate:
        return estimate(apply_folding(self.graph, fold), part=self.part,
                        clock_ns=self.clock_ns, calibration=self.calibration)

    def fits(self, budget: int) -> bool:
        fold = self.solve(budget)
        return fold is not None and self.design(fold).resources.fits(self.device)

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


def is_chain(graph: Graph) -> bool:
    """Whether every layer reads one tensor that no other layer reads."""
    index = graph.index()
    return all(len(n.inputs) == 1 and index.fan_out(n.inputs[0]) == 1
               for n in graph.nodes[1:])


def dataflow_chain(graph: Graph) -> list[Node]:
    """The units' nodes in dataflow order when they form a chain (the dynamic programme's
    state is the one stream between consecutive units); a fork or a join is refused, naming
    the tensor, until the search handles graphs."""
    index = graph.index()
    for node in graph.nodes[1:]:
        if len(node.inputs) != 1:
            raise IRError(f"layer {node.name!r} reads {len(node.inputs)} tensors: the folding "
                          "search handles chains of layers only (no add or concat yet)")
        if index.fan_out(node.inputs[0]) != 1:
            raise IRError(f"tensor {node.inputs[0]!r} feeds "
                          f"{[n.name for n in index.consumers[node.inputs[0]]]}: the folding "
                          "search handles chains of layers only (no forks yet)")
    return [n for n in graph.nodes[1:] if not isinstance(n, Reshape)]


def stream_bits(graph: Graph, node: Node) -> int:
    """Bits per element of the stream entering ``node`` (what its producer emits)."""
    src = graph.producer(node)
    while isinstance(src, Reshape):
        src = graph.producer(src)
    if isinstance(src, Dense):
        if src.thresholds is None:
            return src.acc_bits or src.out.bits
        return max(1, int(src.thresholds.shape[1]).bit_length())
    if isinstance(src, MaxPool2D):
        return stream_bits(graph, src)
    return elem_bits(src.out)


def cycles_text(budget: int) -> str:
    return ("less than one cycle per frame" if budget < 1
            else f"<= {budget:,} cycles per frame")


def fps_of(cycles: int, clock_ns: float) -> float:
    return 1e9 / (clock_ns * cycles)


def budget_for(target_fps: float, clock_ns: float) -> int:
    """Largest frame interval (cycles) that still reaches ``target_fps``."""
    if not target_fps > 0 or not clock_ns > 0:
        raise IRError(f"target FPS ({target_fps}) and clock period ({clock_ns} ns) must be "
                      "positive")
    return math.floor(1e9 / (clock_ns * target_fps) + 1e-9)


def choose_folding(graph: Graph, *, target_fps: float, clock_ns: float, part: str,
                   objective: str = "balanced", calibration: Calibration | None = None,
                   avoid_serialisation: bool = True, cycles: str = "worst") -> Folding:
    """PE/SIMD per matrix-vector layer reaching ``target_fps`` at ``clock_ns`` on ``part``
    with the lowest estimated resource cost (``objective``: see ``objective_cost``).
    ``avoid_serialisation``: the target applies to the expected interval (units that the
    RTL's buffers cannot decouple, ``estimate.serialisations``), not only to the slowest
    unit.  ``cycles``: a FracBNN PGConv2D counts at its worst case ("worst", every gate on)
    or at its measured gate density ("expected", ``folding.layer_cycles``).  Raises
    ``IRError`` saying what would fit."""
    device = get_device(part)
    objective_cost(Resources(), device, objective)   # reject an unknown objective early
    search = FoldingSearch(graph, device, part, clock_ns,
                           load_calibration() if calibration is None else calibration,
                           objective, avoid_serialisation, cycles)
    budget = budget_for(target_fps, clock_ns)
    fastest = search.fastest()
    if budget < fastest:
        raise IRError(unreachable_message(graph, search, target_fps, budget))
    fold = search.solve(budget)
    if fold is None:
        raise IRError(serialised_message(search, target_fps, budget))
    design = search.design(fold)
    if design.resources.fits(device):
        return fold
    raise IRError(too_big_message(search, target_fps, budget, design))


def serialised_message(search: FoldingSearch, target_fps: float, budget: int) -> str:
    """Every folding fast enough per unit makes some pair of units serialise."""
    clock = search.clock_ns
    msg = (f"target {target_fps:g} FPS at {clock:g} ns needs <= {budget} cycles per frame: "
           "every folding whose units are that fast makes a dense layer and its producer "
           "serialise (the consumer replays its input for its other neuron folds while "
           "the FIFO between them is full) to more than that")
    best = search.smallest_fitting_budget()
    if best is not None:
        msg += (f"; on {search.device.name} at most {fps_of(best, clock):,.1f} FPS is "
                "reachable")
    return msg


def unreachable_message(graph: Graph, search: FoldingSearch, target_fps: float, budget: int) -> str:
    """The target needs fewer cycles than the fastest folding: say which unit limits it."""
    clock = search.clock_ns
    name, pool_cycles = fixed_cycles(graph)
    limits = [(opts[0].cycles, f"layer {n!r} at full parallelism (PE={opts[0].pe}, "
                               f"SIMD={opts[0].simd}) takes {opts[0].cycles} cycles")
              for n, opts in search.front.items()]
    if name:
        limits.append((pool_cycles, f"{name!r} takes {pool_cycles} cycles at one pixel per "
                                    "cycle"))
    worst = max(limits)[1]
    msg = (f"target {target_fps:g} FPS at {clock:g} ns needs {cycles_text(budget)}, "
           f"but {worst}: no folding exceeds {fps_of(search.fastest(), clock):,.1f} FPS at "
           "this clock")
    best = search.smallest_fitting_budget()
    if best is not None:
        msg += f"; on {search.device.name} at most {fps_of(best, clock):,.1f} FPS fits"
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
    return (msg + f"; the most that fits is {fps_of(best, clock):,.1f} FPS "
            f"({best} cycles per frame) — lower --target-fps or choose a larger part")


def max_fps(graph: Graph, *, clock_ns: float, part: str, objective: str = "balanced",
            calibration: Calibration | None = None, cycles: str = "worst"
            ) -> tuple[float, Folding]:
    """The highest frame rate that fits ``part``, and the cheapest folding reaching it
    (``cycles``: as for ``choose_folding``)."""
    search = FoldingSearch(graph, get_device(part), part, clock_ns,
                           load_calibration() if calibration is None else calibration,
                           objective, cycles=cycles)
    best = search.smallest_fitting_budget()
    if best is None:
        raise IRError(f"graph {graph.name!r} does not fit {search.device.name} even with "
                      "PE=SIMD=1 everywhere")
    fold = search.solve(best)
    assert fold is not None
    return fps_of(best, clock_ns), fold


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
