"""FracBNN's CIFAR-10 ResNet-20 on the dataflow pipeline, against FracBNN's published design
(issue 13).

    python bench/fracbnn.py [--target-fps 2806.9] [--cycles expected] [--frames 3]
                            [--calibration-frames 16] [--density 0.25] [--synth]
                            [--work /tmp/bnn2fpga_fracbnn20]

The network (bench/fracbnn_model.py): FracBNN's ResNet-20 topology as a Keras model of
bnn2fpga.layers -- thermometer (96 bits), binary conv 96 -> 16 + BN, 3 stages x 3 blocks at
16/32/64 channels (18 PGConv2D, each x = BN(RPReLU(BN(PG(x)))) + shortcut(x), AvgPool +
concat shortcuts where the channels double), global pool, float FC 64 -> 10 -- with random
weights, BN statistics randomized around those of each layer's input, and per-channel gate
thresholds for ``--density`` of the gates on the calibration frames (random pixel frames).
It is compiled with ``compile_model(..., calibration=...)``; the folding is the search's
(``folding_search.choose_folding``) on xczu3eg at 4 ns for ``--target-fps``, with the PG
layers counted at ``--cycles`` (expected: at the measured gate density; worst: every gate
on).  Reported: per layer PE/SIMD, gate density (single gates, and groups of a pixel x the
PE lanes, which is what the LSB pass skips) and cycles worst/expected; for the design, the
model's cycles/frame worst and expected, Verilator's (``--frames`` random frames, checked
against the reference bit for bit), FPS at 250 MHz, the estimator's LUT/FF/BRAM18/DSP and,
with ``--synth``, yosys's (``synth_xilinx`` per RTL unit, as ``bnn2fpga report --synth``:
units separately, identical units once, top-level glue not included); the comparison with
FracBNN's published 2,806.9 FPS, 51,444 LUT (FPS per LUT, target 2x).  Prints a table and
writes the "resnet20" entry of bench/results/fracbnn.json (bench/fracbnn_chain.py writes
the "chain" entry: the PG chain at the same sizes without shortcuts).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import fracbnn_model  # noqa: E402

from bnn2fpga import folding, reference  # noqa: E402
from bnn2fpga.backends import CompileOptions  # noqa: E402
from bnn2fpga.backends import rtl as rtl_backend  # noqa: E402
from bnn2fpga.compile import compile_model  # noqa: E402
from bnn2fpga.estimate import estimate  # noqa: E402
from bnn2fpga.folding_search import apply_folding, choose_folding  # noqa: E402
from bnn2fpga.ir import PGConv2D  # noqa: E402
from bnn2fpga.plan import build_plan  # noqa: E402
from bnn2fpga.report import synth_totals, synth_units  # noqa: E402

PART, CLOCK_NS, TOP = "xczu3eg-sbva484-1-e", 4.0, "fracbnn_resnet20"
# FracBNN's published design (FPGA'21): 2,806.9 FPS at 250 MHz, 51,444 LUT, 126 DSP, 212 BRAM18
FRACBNN = {"fps": 2806.9, "clock_mhz": 250, "lut": 51444, "dsp": 126, "bram18": 212}
RESULTS = Path(__file__).parent / "results" / "fracbnn.json"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--target-fps", type=float, default=FRACBNN["fps"])
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
    fold = choose_folding(g0, target_fps=args.target_fps, clock_ns=CLOCK_NS, part=PART,
                          cycles=args.cycles)
    g = apply_folding(g0, fold)
    t_compile = time.time() - t0
    gd = g.meta["gate_density"]["layers"]

    layers = []
    for node in g.nodes[1:]:
        c = folding.unit_cycles(node, g.producers(node)[0].out.shape)
        pg = isinstance(node, PGConv2D)
        layers.append({"layer": node.name, "op": node.op, "shape": list(node.out.shape),
                       "pe": getattr(node, "pe", None), "simd": getattr(node, "simd", None),
                       "gates_on": gd[node.name]["gates_on"] if pg else None,
                       "group_density": node.gate_density if pg else None,
                       "worst_cycles": c.worst, "expected_cycles": c.expected})
    worst = max(x["worst_cycles"] for x in layers)
    expected = max(x["expected_cycles"] for x in layers)
    est = estimate(g, part=PART, clock_ns=CLOCK_NS)
    res = est.resources
    est_layer = {le.name: le.resources for le in est.layers}
    for x in layers:
        r = est_layer.get(x["layer"])
        x["estimate_lut"] = round(r.lut) if r else None
        x["estimate_bram18"] = round(r.bram18) if r else None
    by_op: dict[str, dict[str, float]] = {}
    for le in est.layers:
        d = by_op.setdefault(le.op, {"layers": 0, "lut": 0.0, "ff": 0.0, "bram18": 0.0})
        d["layers"] += 1
        for k in ("lut", "ff", "bram18"):
            d[k] += getattr(le.resources, k)
    by_op = {k: {kk: round(vv) for kk, vv in v.items()} for k, v in by_op.items()}

    rtl = {}
    proj = args.work / "proj"
    rtl_backend.write_project(g, proj / "rtl", CompileOptions(top=TOP, clock_ns=CLOCK_NS,
                                                               part=PART))
    if not args.no_rtl:
        from bnn2fpga.sim.rtl import simulate
        t1 = time.time()
        codes = reference.quantize_input(g.input, fracbnn_model.random_pixels(args.frames,
                                                                              seed=2))
        sim = simulate(proj, g, codes, cache_dir=args.work / "cache")
        rtl = {"frames": args.frames,
               "exact": bool(np.array_equal(sim.codes,
                                            reference.execute(g, codes)[g.output.name])),
               "cycles_per_frame": sim.summary["steady_state_cycles_per_frame"],
               "first_frame_latency": sim.summary["first_frame_latency_cycles"],
               "seconds": round(time.time() - t1, 1)}
    synth = (synth_totals(synth_units(proj, g, est, build_plan(g, TOP), args.work / "synth"))
             if args.synth else None)

    # ---- table
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
    others = max((x for x in layers if x["op"] not in ("conv2d", "pgconv2d", "dense")),
                 key=lambda x: x["worst_cycles"])
    print(f"(slowest other unit: {others['layer']} ({others['op']}) {others['worst_cycles']})")
    mhz = 1e3 / CLOCK_NS
    measured = rtl.get("cycles_per_frame") or expected
    fps = {"worst": 1e9 / (CLOCK_NS * worst), "expected": 1e9 / (CLOCK_NS * expected),
           "verilator": 1e9 / (CLOCK_NS * rtl["cycles_per_frame"]) if rtl else None}
    theirs = FRACBNN["fps"] / FRACBNN["lut"]
    luts = {"estimate": res.lut, "yosys": synth["lut"] if synth else None}
    ratio = {k: (1e9 / (CLOCK_NS * measured)) / v / theirs for k, v in luts.items() if v}
    print(f"\nfolding: choose_folding on {PART} at {CLOCK_NS} ns, target "
          f"{args.target_fps:g} FPS, --cycles {args.cycles}")
    print(f"cycles/frame: model worst {worst} ({fps['worst']:.0f} FPS), expected {expected} "
          f"({fps['expected']:.0f} FPS)" + (
              f", Verilator {rtl['cycles_per_frame']} ({fps['verilator']:.0f} FPS at "
              f"{mhz:.0f} MHz; latency {rtl['first_frame_latency']}; {args.frames} frames, "
              f"output exact: {rtl['exact']})" if rtl else ""))
    print(f"estimate: LUT {res.lut:.0f} FF {res.ff:.0f} BRAM18 {res.bram18:.0f} "
          f"DSP {res.dsp:.0f}; by op: " + ", ".join(
              f"{k} x{v['layers']} {v['lut']} LUT" for k, v in
              sorted(by_op.items(), key=lambda kv: -kv[1]["lut"])))
    if synth:
        print(f"yosys (per unit, {synth['distinct_units']} distinct of {synth['units']}): "
              f"LUT {synth['lut']} FF {synth['ff']} BRAM18 {synth['bram18']} "
              f"DSP {synth['dsp']}")
    print(f"FracBNN: {FRACBNN['fps']} FPS, {FRACBNN['lut']} LUT, {FRACBNN['bram18']} BRAM18, "
          f"{FRACBNN['dsp']} DSP: {theirs:.4f} FPS/LUT")
    for k, r in ratio.items():
        print(f"ours ({'Verilator' if rtl else 'model expected'} FPS / {k} LUT): "
              f"{r * theirs:.4f} FPS/LUT = x{r:.2f} FracBNN's (target x2: "
              f"{'met' if r >= 2 else 'not met'})")

    out = {"graph": g.name, "part": PART, "clock_ns": CLOCK_NS,
           "target_fps": args.target_fps, "cycles_mode": args.cycles,
           "calibration_frames": args.calibration_frames, "target_density": args.density,
           "binary_weights": fracbnn_model.binary_weights(model), "nodes": len(g.nodes),
           "folding": {k: list(v) for k, v in fold.items()},
           "keras_gates_on": keras_gates, "layers": layers,
           "model_worst_cycles": worst, "model_expected_cycles": expected,
           "estimate_interval_cycles": est.expected_interval_cycles,
           "agreement_argmax": g.meta["agreement"].get("argmax_agreement"),
           "rtl": rtl, "fps": fps, "estimate": {k: round(v) for k, v in res.as_dict().items()},
           "estimate_by_op": by_op,
           "yosys": synth, "fracbnn": FRACBNN, "fracbnn_fps_per_lut": theirs,
           "fps_per_lut_ratio": ratio, "compile_seconds": round(t_compile, 1),
           "seconds": round(time.time() - t0, 1)}
    old = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    prev = old.get("resnet20") or {}
    if prev.get("folding") == out["folding"]:   # keep measurements this run skipped
        for key in ("rtl", "yosys"):
            out[key] = out[key] or prev.get(key)
    RESULTS.write_text(json.dumps({**old, "resnet20": out}, indent=1) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
