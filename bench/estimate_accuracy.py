"""Estimated cycles vs Verilator, and estimated LUT/FF vs yosys, on real designs.

    python bench/estimate_accuracy.py [--frames 4] [--synth] [--only NAME ...]

Designs: the trained digits models (QKeras MLP, QKeras CNN, Larq CNN; bnn2fpga.zoo) and
the FINN CNV-W1A1 topology with random weights (bench/folding_vs_greedy.cnv_w1a1) at two
foldings: BNN-PYNQ's published one and the one ``choose_folding`` picks for 3,000 FPS at
100 MHz on xc7z020; FINN LFC-W1A1 (random weights) folded for 30,000 FPS (wide-SIMD dense
layers behind narrow producers).  Each is written with the RTL backend and simulated in Verilator
(``bnn2fpga.sim.rtl.simulate``); the estimator's frame interval and first-frame latency
are compared with Verilator's steady-state cycles per frame and first-frame latency.  The
interval is shown twice: the folding's bottleneck (``folding.bottleneck``, the rate the
design is folded for) and the estimator's expected interval, which adds the serialisation
of units whose buffering cannot decouple them (``estimate.serialisations``).
``--synth`` also synthesises every RTL unit of each design with yosys (as ``bnn2fpga
report --synth``) and compares the per-unit LUT/FF estimates (held-out data: real weights,
not the calibration sweep).  Prints tables; writes bench/results/estimate_accuracy.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from folding_vs_greedy import BNN_PYNQ_CNV, cnv_w1a1, lfc_w1a1  # noqa: E402

from bnn2fpga import estimate as E  # noqa: E402
from bnn2fpga.backends import CompileOptions  # noqa: E402
from bnn2fpga.backends.rtl import write_project  # noqa: E402
from bnn2fpga.folding_search import apply_folding, choose_folding  # noqa: E402
from bnn2fpga.ir import Graph, IRError  # noqa: E402
from bnn2fpga.testing import random_input_codes  # noqa: E402

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "estimate_accuracy.json"
PART, CLOCK = "xc7z020clg400-1", 10.0


def digits_graphs() -> dict[str, tuple[Graph, np.ndarray]]:
    """The trained digits models as hardware graphs, with real input codes."""
    from bnn2fpga import reference, zoo
    from bnn2fpga.compile import compile_model

    data = zoo.digits_data(seed=0)
    x = data.x_test
    out = {}
    for name, train, kwargs in (
            ("digits_qkeras_mlp", zoo.train_qkeras_mlp, {}),
            ("digits_qkeras_cnn", zoo.train_qkeras_cnn, {}),
            ("digits_larq_cnn", zoo.train_larq_cnn,
             {"input_scale": zoo.DIGITS_INPUT_SCALE, "input_bits": zoo.DIGITS_INPUT_BITS})):
        graph = compile_model(train(seed=0, data=data), name=name, **kwargs)
        frames = x.reshape((len(x), *graph.input.out.shape))
        out[name] = (graph, reference.quantize_input(graph.input, frames))
    return out


def cnv_graphs(rng: np.random.Generator) -> dict[str, tuple[Graph, np.ndarray]]:
    base = cnv_w1a1(rng)
    pynq = apply_folding(base, BNN_PYNQ_CNV)
    auto = apply_folding(base, choose_folding(base, target_fps=3000, clock_ns=CLOCK,
                                              part=PART))
    codes = random_input_codes(rng, base, 64)
    lfc = lfc_w1a1(rng)
    lfc_auto = apply_folding(lfc, choose_folding(lfc, target_fps=30000, clock_ns=CLOCK,
                                                 part=PART))
    return {"cnv_w1a1_bnn_pynq_folding": (pynq, codes), "cnv_w1a1_auto_3000fps": (auto, codes),
            "lfc_w1a1_auto_30000fps": (lfc_auto, random_input_codes(rng, lfc, 64))}


def simulate(name: str, graph: Graph, codes: np.ndarray, frames: int, work: Path) -> dict:
    from bnn2fpga.sim.rtl import simulate as rtl_simulate

    proj = work / name
    write_project(graph, proj / "rtl", CompileOptions(top=name, clock_ns=CLOCK))
    t0 = time.time()
    result = rtl_simulate(proj, graph, codes[:frames], clock_ns=CLOCK,
                          cache_dir=work / ".cache")
    summary = dict(result.summary)
    summary["seconds"] = round(time.time() - t0, 1)
    return summary


def compare_cycles(graph: Graph, sim: dict) -> dict:
    design = E.estimate(graph, part=PART, clock_ns=CLOCK)
    interval, latency = sim["steady_state_cycles_per_frame"], sim["first_frame_latency_cycles"]
    expected = design.expected_interval_cycles
    return {"bottleneck": design.bottleneck,
            "folding": {n.name: [n.pe, n.simd] for n in graph.matvec_nodes()},
            "interval": {"estimate": expected, "verilator": interval,
                         "error_pct": round(100 * (expected - interval) / interval, 3),
                         "folding_bottleneck": design.interval_cycles,
                         "folding_bottleneck_error_pct": round(
                             100 * (design.interval_cycles - interval) / interval, 3)},
            "warnings": [w.message() for w in design.serialisations],
            "latency": {"estimate": design.latency_cycles, "verilator": latency,
                        "error_pct": round(100 * (design.latency_cycles - latency)
                                           / latency, 3)},
            "frames": sim["frames"], "sim_seconds": sim["seconds"]}


def compare_synth(name: str, graph: Graph, work: Path) -> dict:
    """Per-unit yosys vs estimate, through the report's synthesis path."""
    from bnn2fpga.plan import build_plan
    from bnn2fpga.report import synth_units

    proj = work / name
    plan = build_plan(graph, name)
    design = E.estimate(graph, part=PART, clock_ns=CLOCK, plan=plan)
    graph.meta["top"] = name
    measured = synth_units(proj, graph, design, plan)
    units = []
    for layer in design.layers:
        for u in layer.units:
            m = measured[u.unit.name]
            r = u.resources
            units.append({"unit": u.unit.name, "module": u.unit.module,
                          "lut": {"estimate": round(r.lut), "yosys": m["lut"],
                                  "error_pct": round(100 * (r.lut - m["lut"])
                                                     / max(m["lut"], 1), 1)},
                          "ff": {"estimate": round(r.ff), "yosys": m["ff"],
                                 "error_pct": round(100 * (r.ff - m["ff"])
                                                    / max(m["ff"], 1), 1)},
                          "bram18": {"estimate": r.bram18, "yosys": m["bram18"]}})
    total_est = sum(u["lut"]["estimate"] for u in units)
    total_ys = sum(u["lut"]["yosys"] for u in units)
    errs = np.abs([u["lut"]["error_pct"] for u in units])
    return {"units": units, "lut_total": {"estimate": total_est, "yosys": total_ys,
                                          "error_pct": round(100 * (total_est - total_ys)
                                                             / total_ys, 2)},
            "unit_lut_error": {"mean_abs_pct": round(float(errs.mean()), 2),
                               "max_abs_pct": round(float(errs.max()), 2),
                               "within_10pct": f"{int((errs <= 10).sum())}/{len(errs)}"}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--synth", action="store_true", help="also compare LUT/FF with yosys")
    ap.add_argument("--only", nargs="*", help="design names to run (default: all)")
    ap.add_argument("--reuse-sim", action="store_true",
                    help="reuse the Verilator figures stored in the results file")
    ap.add_argument("--work", type=Path, default=Path("/tmp/bnn2fpga_estimate_accuracy"))
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    designs = {**digits_graphs(), **cnv_graphs(np.random.default_rng(0))}
    if args.only:
        designs = {k: v for k, v in designs.items() if k in args.only}
    old = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    results = old.get("designs", {})
    print(f"{'design':<28} {'bottleneck':<10} {'folding':>8} {'interval est':>12} "
          f"{'Verilator':>10} {'err':>7} | {'latency est':>11} {'Verilator':>10} {'err':>7}")
    for name, (graph, codes) in designs.items():
        print(f"{name}: simulating {args.frames} frames ...", file=sys.stderr)
        try:
            old_row = results.get(name, {})
            same = old_row.get("folding") == {n.name: [n.pe, n.simd]
                                              for n in graph.matvec_nodes()}
            sim = old_row.get("sim") if args.reuse_sim and same else None
            sim = sim or simulate(name, graph, codes, args.frames, args.work)
            row = {**compare_cycles(graph, sim), "sim": sim}
        except IRError as e:   # a node the RTL backend does not build yet
            results[name] = {"skipped": str(e)}
            print(f"{name:<28} skipped: {e}")
            continue
        if args.synth:
            try:
                row["synth"] = compare_synth(name, graph, args.work)
            except RuntimeError as e:     # a unit the report's yosys run cannot build
                row["synth_error"] = str(e)[-500:]
        results[name] = row
        i, la = row["interval"], row["latency"]
        print(f"{name:<28} {row['bottleneck']:<10} {i['folding_bottleneck']:>8,} "
              f"{i['estimate']:>12,} "
              f"{i['verilator']:>10,.1f} {i['error_pct']:>+6.2f}% | {la['estimate']:>11,} "
              f"{la['verilator']:>10,} {la['error_pct']:>+6.2f}%")
        if args.synth and "synth" in row:
            s = row["synth"]
            print(f"{'':<28} LUT total est {s['lut_total']['estimate']:,} vs yosys "
                  f"{s['lut_total']['yosys']:,} ({s['lut_total']['error_pct']:+.1f}%); per "
                  f"unit |err| mean {s['unit_lut_error']['mean_abs_pct']}% max "
                  f"{s['unit_lut_error']['max_abs_pct']}%, "
                  f"{s['unit_lut_error']['within_10pct']} within 10%")
        RESULTS.write_text(json.dumps({"part": PART, "clock_ns": CLOCK, "designs": results},
                                      indent=1) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
