"""FracBNN's CIFAR-10 ResNet-20 on the dataflow pipeline, against FracBNN's published design
(issue 13).

    python bench/fracbnn.py [--targets 2806.9,4000,6000,8000,12000] [--target-fps F]
                            [--cycles expected] [--frames 3] [--calibration-frames 16]
                            [--density 0.25] [--synth] [--no-rtl]
                            [--work /tmp/bnn2fpga_fracbnn20]

The network (bench/fracbnn_model.py): FracBNN's ResNet-20 topology as a Keras model of
bnn2fpga.layers -- thermometer (96 bits), binary conv 96 -> 16 + BN, 3 stages x 3 blocks at
16/32/64 channels (18 PGConv2D, each x = BN(RPReLU(BN(PG(x)))) + shortcut(x), AvgPool +
concat shortcuts where the channels double), global pool, float FC 64 -> 10 -- with random
weights, BN statistics randomized around those of each layer's input, and per-channel gate
thresholds for ``--density`` of the gates on the calibration frames (random pixel frames).
It is compiled with ``compile_model(..., calibration=...)``.

The folding is the search's (``folding_search.FoldingSearch``, as ``choose_folding``: the
cheapest folding per target, PG layers counted at ``--cycles``) on xczu3eg at 4 ns, for each
of ``--targets`` (frames/s): each design is estimated whole (its own plan), and the one of
highest FPS per LUT that fits the device is chosen (``--target-fps F``: that target only).
At the chosen folding: per layer PE/SIMD, gate density (single gates, and groups of a pixel
x the PE lanes, which is what the LSB pass skips) and cycles worst/expected; the estimate
per layer kind and per unit kind; Verilator's cycles/frame on ``--frames`` random frames
(expected: the calibrated gates) and on the same frames with every gate on (worst), both
checked against the reference bit for bit; with ``--synth``, yosys's LUT/FF/BRAM/DSP
(``synth_xilinx`` per RTL unit, as ``bnn2fpga report --synth``: identical units once, cached
under --work/synth, top-level glue not included).  Compared with FracBNN's published
2,806.9 FPS, 51,444 LUT (FPS per LUT, target 2x).  Prints tables and writes the "resnet20"
entry of bench/results/fracbnn.json (bench/fracbnn_chain.py writes the "chain" entry).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import fracbnn_model  # noqa: E402

from bnn2fpga import folding, reference  # noqa: E402
from bnn2fpga.backends import CompileOptions  # noqa: E402
from bnn2fpga.backends import rtl as rtl_backend  # noqa: E402
from bnn2fpga.compile import compile_model  # noqa: E402
from bnn2fpga.devices import get_device  # noqa: E402
from bnn2fpga.estimate import DesignEstimate, estimate, load_calibration  # noqa: E402
from bnn2fpga.folding_search import FoldingSearch, apply_folding, budget_for  # noqa: E402
from bnn2fpga.ir import Graph, PGConv2D  # noqa: E402
from bnn2fpga.plan import build_plan  # noqa: E402
from bnn2fpga.report import synth_totals, synth_units  # noqa: E402

PART, CLOCK_NS, TOP = "xczu3eg-sbva484-1-e", 4.0, "fracbnn_resnet20"
# FracBNN's published design (FPGA'21): 2,806.9 FPS at 250 MHz, 51,444 LUT, 126 DSP, 212 BRAM18
FRACBNN = {"fps": 2806.9, "clock_mhz": 250, "lut": 51444, "dsp": 126, "bram18": 212}
THEIRS = FRACBNN["fps"] / FRACBNN["lut"]
TARGETS = (2806.9, 4000.0, 6000.0, 8000.0, 12000.0)
RESULTS = Path(__file__).parent / "results" / "fracbnn.json"


def fps_at(cycles: float) -> float:
    return 1e9 / (CLOCK_NS * cycles)


def layer_rows(g: Graph, est: DesignEstimate) -> list[dict]:
    """Per layer: folding, gate density, cycles worst/expected, estimated LUT/BRAM18/DSP."""
    gd = g.meta["gate_density"]["layers"]
    est_layer = {le.name: le.resources for le in est.layers}
    rows = []
    for node in g.nodes[1:]:
        c = folding.unit_cycles(node, g.producers(node)[0].out.shape)
        pg = isinstance(node, PGConv2D)
        r = est_layer.get(node.name)
        rows.append({"layer": node.name, "op": node.op, "shape": list(node.out.shape),
                     "pe": getattr(node, "pe", None), "simd": getattr(node, "simd", None),
                     "gates_on": gd[node.name]["gates_on"] if pg else None,
                     "group_density": node.gate_density if pg else None,
                     "worst_cycles": c.worst, "expected_cycles": c.expected,
                     "estimate_lut": round(r.lut) if r else None,
                     "estimate_bram18": round(r.bram18) if r else None,
                     "estimate_dsp": round(r.dsp) if r else None})
    return rows


def breakdown(est: DesignEstimate) -> tuple[dict, dict]:
    """The estimate summed per layer op and per unit kind (count, LUT, FF, BRAM18, DSP; and
    for unit kinds the LUTs of their memories)."""
    by_op: dict = defaultdict(lambda: dict.fromkeys(("n", "lut", "ff", "bram18", "dsp"), 0.0))
    by_kind: dict = defaultdict(lambda: dict.fromkeys(("n", "lut", "ff", "bram18", "dsp",
                                                       "memory_lut"), 0.0))
    for le in est.layers:
        d = by_op[le.op]
        d["n"] += 1
        for k in ("lut", "ff", "bram18", "dsp"):
            d[k] += getattr(le.resources, k)
        for u in le.units:
            d = by_kind[u.unit.kind]
            d["n"] += 1
            for k in ("lut", "ff", "bram18", "dsp"):
                d[k] += getattr(u.resources, k)
            d["memory_lut"] += sum(m.resources.lut for m in u.memories)
    def rounded(t: dict) -> dict:
        return {k: {kk: round(vv) for kk, vv in v.items()}
                for k, v in sorted(t.items(), key=lambda kv: -kv[1]["lut"])}
    return rounded(by_op), rounded(by_kind)


def sweep(g0: Graph, targets: list[float], cycles: str) -> list[dict]:
    """The search's folding per target, each design estimated whole (one plan each)."""
    device = get_device(PART)
    search = FoldingSearch(g0, device, PART, CLOCK_NS, load_calibration(), "balanced", True,
                           cycles)
    fastest = search.fastest()
    out = []
    for target in targets:
        t0 = time.time()
        budget = budget_for(target, CLOCK_NS)
        fold = search.solve(budget) if budget >= fastest else None
        if fold is None:
            out.append({"target_fps": target, "budget": budget, "fold": None,
                        "note": f"unreachable: the fastest folding takes {fastest} cycles"})
            print(f"[sweep] {target:g} FPS: unreachable", file=sys.stderr)
            continue
        g = apply_folding(g0, fold)
        plan = build_plan(g, TOP)
        est = estimate(g, part=PART, clock_ns=CLOCK_NS, plan=plan)
        rows = layer_rows(g, est)
        worst = max(x["worst_cycles"] for x in rows)
        expected = max(x["expected_cycles"] for x in rows)
        res = est.resources
        entry = {"target_fps": target, "budget": budget,
                 "fold": {k: list(v) for k, v in fold.items()},
                 "worst_cycles": worst, "expected_cycles": expected,
                 "estimate_interval_cycles": est.expected_interval_cycles,
                 "fps_expected": fps_at(expected), "fps_worst": fps_at(worst),
                 "estimate": res.as_dict(), "fits": res.fits(device),
                 "fps_per_lut_ratio": fps_at(expected) / res.lut / THEIRS,
                 "seconds": round(time.time() - t0, 1),
                 "_graph": g, "_plan": plan, "_est": est}
        out.append(entry)
        print(f"[sweep] {target:g} FPS: expected {expected} cycles, LUT {res.lut:.0f}, "
              f"x{entry['fps_per_lut_ratio']:.2f} ({entry['seconds']} s)", file=sys.stderr)
    return out


def all_gates_on(g: Graph) -> Graph:
    """``g`` with every PG gate on (gate threshold -fan_in: M >= -fan_in always): the
    worst case the LSB pass can meet."""
    nodes = [dataclasses.replace(n, gate_thresholds=np.full_like(n.gate_thresholds,
                                                                 -n.fan_in),
                                 gate_density=1.0) if isinstance(n, PGConv2D) else n
             for n in g.nodes]
    return Graph(g.name, nodes, dict(g.meta))


def verilator(g: Graph, proj: Path, frames: int, cache: Path) -> dict:
    """Verilator cycles/frame on ``frames`` random frames, checked against the reference."""
    from bnn2fpga.sim.rtl import simulate
    t1 = time.time()
    rtl_backend.write_project(g, proj / "rtl", CompileOptions(top=TOP, clock_ns=CLOCK_NS,
                                                               part=PART))
    codes = reference.quantize_input(g.input, fracbnn_model.random_pixels(frames, seed=2))
    sim = simulate(proj, g, codes, cache_dir=cache)
    return {"frames": frames,
            "exact": bool(np.array_equal(sim.codes,
                                         reference.execute(g, codes)[g.output.name])),
            "cycles_per_frame": sim.summary["steady_state_cycles_per_frame"],
            "first_frame_latency": sim.summary["first_frame_latency_cycles"],
            "seconds": round(time.time() - t1, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--targets", default=",".join(f"{t:g}" for t in TARGETS),
                    help="frames/s targets of the sweep (comma-separated)")
    ap.add_argument("--target-fps", type=float, default=None, help="only this target")
    ap.add_argument("--cycles", choices=("worst", "expected"), default="expected")
    ap.add_argument("--frames", type=int, default=3)
    ap.add_argument("--calibration-frames", type=int, default=16)
    ap.add_argument("--density", type=float, default=0.25)
    ap.add_argument("--synth", action="store_true", help="yosys per RTL unit")
    ap.add_argument("--no-rtl", action="store_true", help="skip Verilator")
    ap.add_argument("--work", type=Path, default=Path("/tmp/bnn2fpga_fracbnn20"))
    args = ap.parse_args()
    t0 = time.time()

    cal = fracbnn_model.random_pixels(args.calibration_frames, seed=1)
    model, keras_gates = fracbnn_model.fracbnn_resnet20(calibration=cal, density=args.density)
    g0 = compile_model(model, calibration=cal, name=TOP)
    t_compile = time.time() - t0
    targets = ([args.target_fps] if args.target_fps else
               [float(t) for t in args.targets.split(",")])
    points = sweep(g0, targets, args.cycles)
    fitting = [p for p in points if p["fold"] and p["fits"]]
    if not fitting:
        print("no target fits the device", file=sys.stderr)
        return 1
    chosen = max(fitting, key=lambda p: p["fps_per_lut_ratio"])
    g, plan, est = chosen["_graph"], chosen["_plan"], chosen["_est"]
    layers = layer_rows(g, est)
    by_op, by_kind = breakdown(est)
    res = est.resources

    rtl = {}
    proj = args.work / "proj"
    if not args.no_rtl:
        rtl = {"expected": verilator(g, proj, args.frames, args.work / "cache"),
               "worst": verilator(all_gates_on(g), args.work / "proj_worst", args.frames,
                                  args.work / "cache")}
    else:
        rtl_backend.write_project(g, proj / "rtl", CompileOptions(top=TOP, clock_ns=CLOCK_NS,
                                                                   part=PART))
    synth = synth_totals(synth_units(proj, g, est, plan, args.work / "synth")) \
        if args.synth else None

    # ---- tables
    print(f"{'target FPS':>10} {'worst':>7} {'expected':>8} {'FPS exp':>8} {'LUT':>6} "
          f"{'FF':>6} {'BRAM18':>6} {'DSP':>4} {'fits':>4} {'FPS/LUT vs FracBNN':>18}")
    for pt in points:
        if not pt["fold"]:
            print(f"{pt['target_fps']:>10g}  {pt['note']}")
            continue
        e = pt["estimate"]
        print(f"{pt['target_fps']:>10g} {pt['worst_cycles']:>7} {pt['expected_cycles']:>8} "
              f"{pt['fps_expected']:>8.0f} {e['lut']:>6} {e['ff']:>6} {e['bram18']:>6} "
              f"{e['dsp']:>4} {'yes' if pt['fits'] else 'no':>4} "
              f"{'x' + format(pt['fps_per_lut_ratio'], '.2f'):>18}"
              + ("   <- chosen" if pt is chosen else ""))
    print(f"\nchosen: target {chosen['target_fps']:g} FPS (highest FPS/LUT that fits)")
    print(f"{'layer':<14} {'op':<10} {'shape':<13} {'PE':>3} {'SIMD':>4} {'gates':>6} "
          f"{'groups':>6} {'worst':>7} {'expected':>8} {'est LUT':>7}")
    for x in layers:
        if x["op"] not in ("conv2d", "pgconv2d", "dense", "thermometer"):
            continue
        d = "" if x["gates_on"] is None else f"{100 * x['gates_on']:.1f}%"
        gr = "" if x["group_density"] is None else f"{100 * x['group_density']:.1f}%"
        print(f"{x['layer']:<14} {x['op']:<10} {str(tuple(x['shape'])):<13} "
              f"{x['pe'] or '':>3} {x['simd'] or '':>4} {d:>6} {gr:>6} "
              f"{x['worst_cycles']:>7} {x['expected_cycles']:>8} {x['estimate_lut'] or '':>7}")
    for title, table in (("layer op", by_op), ("unit kind", by_kind)):
        print(f"\n{title:<14} {'n':>4} {'LUT':>7} {'%':>5} {'FF':>7} {'BRAM18':>6} {'DSP':>4}"
              + (f" {'mem LUT':>7}" if title == "unit kind" else ""))
        for k, v in table.items():
            print(f"{k:<14} {v['n']:>4} {v['lut']:>7} {100 * v['lut'] / res.lut:>5.1f} "
                  f"{v['ff']:>7} {v['bram18']:>6} {v['dsp']:>4}"
                  + (f" {v['memory_lut']:>7}" if "memory_lut" in v else ""))
    worst, expected = chosen["worst_cycles"], chosen["expected_cycles"]
    measured = rtl["expected"]["cycles_per_frame"] if rtl else expected
    print(f"\ncycles/frame: model worst {worst} ({fps_at(worst):.0f} FPS), expected "
          f"{expected} ({fps_at(expected):.0f} FPS)")
    for k, r in rtl.items():
        print(f"Verilator {k} ({'every gate on' if k == 'worst' else 'calibrated gates'}): "
              f"{r['cycles_per_frame']} cycles/frame ({fps_at(r['cycles_per_frame']):.0f} FPS "
              f"at {1e3 / CLOCK_NS:.0f} MHz), latency {r['first_frame_latency']}, "
              f"{r['frames']} frames, output exact: {r['exact']}")
    print(f"estimate: LUT {res.lut:.0f} FF {res.ff:.0f} BRAM18 {res.bram18:.0f} "
          f"DSP {res.dsp:.0f}")
    luts = {"estimate": res.lut, "yosys": synth["lut"] if synth else None}
    if synth:
        print(f"yosys (per unit, {synth['distinct_units']} distinct of {synth['units']}): "
              f"LUT {synth['lut']} FF {synth['ff']} BRAM18 {synth['bram18']} "
              f"DSP {synth['dsp']}")
    print(f"FracBNN: {FRACBNN['fps']} FPS, {FRACBNN['lut']} LUT, {FRACBNN['bram18']} BRAM18, "
          f"{FRACBNN['dsp']} DSP: {THEIRS:.4f} FPS/LUT")
    ratio = {k: fps_at(measured) / v / THEIRS for k, v in luts.items() if v}
    for k, r in ratio.items():
        print(f"ours ({'Verilator' if rtl else 'model expected'} FPS / {k} LUT): "
              f"{r * THEIRS:.4f} FPS/LUT = x{r:.2f} FracBNN's (target x2: "
              f"{'met' if r >= 2 else 'not met'})")

    out = {"graph": g.name, "part": PART, "clock_ns": CLOCK_NS,
           "targets": targets, "target_fps": chosen["target_fps"], "cycles_mode": args.cycles,
           "calibration_frames": args.calibration_frames, "target_density": args.density,
           "binary_weights": fracbnn_model.binary_weights(model), "nodes": len(g.nodes),
           "sweep": [{k: v for k, v in pt.items() if not k.startswith("_")} for pt in points],
           "folding": chosen["fold"], "keras_gates_on": keras_gates, "layers": layers,
           "model_worst_cycles": worst, "model_expected_cycles": expected,
           "estimate_interval_cycles": est.expected_interval_cycles,
           "agreement_argmax": g.meta["agreement"].get("argmax_agreement"),
           "rtl": rtl, "estimate": res.as_dict(), "estimate_by_op": by_op,
           "estimate_by_unit_kind": by_kind, "yosys": synth, "fracbnn": FRACBNN,
           "fracbnn_fps_per_lut": THEIRS, "fps_per_lut_ratio": ratio,
           "compile_seconds": round(t_compile, 1), "seconds": round(time.time() - t0, 1)}
    old = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    prev = old.get("resnet20") or {}
    if prev.get("folding") == out["folding"]:   # keep measurements this run skipped
        for key in ("rtl", "yosys"):
            out[key] = out[key] or prev.get(key)
        ran = {pt["target_fps"] for pt in out["sweep"]}   # and the other targets' points
        out["sweep"] = sorted([pt for pt in prev.get("sweep", []) if pt["target_fps"] not in ran]
                              + out["sweep"], key=lambda pt: pt["target_fps"])
        out["targets"] = [pt["target_fps"] for pt in out["sweep"]]
    RESULTS.write_text(json.dumps({**old, "resnet20": out}, indent=1) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
