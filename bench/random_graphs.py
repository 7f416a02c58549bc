"""Random hardware-IR DAGs with real-valued paths (``testing_graphs.random_dag``): for many
seeds, whether each graph is valid, lowers to a plan, round-trips design.json/plan.json,
saturates, and whether the HLS dataflow model runs at the cycle model's bottleneck; for a
subset, Verilator RTL (no stalls and random stalls) and HLS C-sim against the reference,
and the model-vs-RTL interval errors.

    python bench/random_graphs.py [--cases 100] [--hw 16] [--seed 1212]

Writes bench/results/random_graphs.json (every case: features, status, errors).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results" / "random_graphs.json"
FRAMES = 5


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=100)
    ap.add_argument("--hw", type=int, default=16, help="cases also run on Verilator and C-sim")
    ap.add_argument("--seed", type=int, default=1212)
    args = ap.parse_args()

    from bnn2fpga import fixed, folding, reference
    from bnn2fpga.backends import CompileOptions
    from bnn2fpga.backends import hls as hls_backend
    from bnn2fpga.backends import rtl as rtl_backend
    from bnn2fpga.estimate.hls_schedule import simulate as hls_model
    from bnn2fpga.ir import graph_from_json, graph_to_json, graphs_equal
    from bnn2fpga.plan import build_plan, plan_to_json
    from bnn2fpga.testing_graphs import random_codes, random_dag

    start = time.perf_counter()
    cases, features = [], Counter()
    for i in range(args.cases):
        case: dict = {"seed": [args.seed, i]}
        try:
            g = random_dag(np.random.default_rng([args.seed, i]), name=f"rg{i}")
            features.update(g.meta["features"])
            case.update(features=g.meta["features"], nodes=len(g.nodes))
            codes = random_codes(np.random.default_rng([args.seed, 77, i]), g, FRAMES)
            sat = fixed.Saturation()
            want = reference.execute(g, codes, sat)[g.output.name]
            case["saturated"] = sum(sat.counts.values())
            again = graph_from_json(json.loads(json.dumps(graph_to_json(g))))
            plan = build_plan(g)
            case["round_trip"] = bool(graphs_equal(g, again) and plan_to_json(build_plan(again))
                                      == plan_to_json(plan))
            case["bottleneck"] = folding.bottleneck(g)[1]
            try:
                case["hls_model"] = hls_model(plan, FRAMES).cycles_per_frame
            except Exception as e:  # noqa: BLE001 - a deadlock of the model is a result
                case["hls_model_error"] = str(e)[:300]
            case["status"] = "ok"
            case["_graph"], case["_codes"], case["_want"] = g, codes, want
        except Exception as e:  # noqa: BLE001 - every failure is a row
            case.update(status="error", error=f"{type(e).__name__}: {e}"[:400])
        cases.append(case)

    hw = [c for c in cases if c["status"] == "ok"][:args.hw]
    if hw:
        from bnn2fpga.sim import csim
        from bnn2fpga.sim.rtl import RtlSimError, simulate_many

        with tempfile.TemporaryDirectory() as tmp:
            base = Path(tmp)
            jobs = []
            for c in hw:
                g = c["_graph"]
                rtl_backend.write_project(g, base / g.name / "rtl",
                                          CompileOptions(top=f"r_{g.name}"))
                (base / g.name / "hls").mkdir(parents=True)
                hls_backend.write_project(g, base / g.name / "hls",
                                          CompileOptions(top=f"h_{g.name}"))
                jobs.append((base / g.name, g, c["_codes"]))
            for stall in (0.0, 0.3):
                try:
                    runs = simulate_many(jobs, base / "cache", stall_prob=stall, seed=9,
                                         name="random_graphs")
                except RtlSimError as e:
                    for c in hw:
                        c[f"rtl_{stall}"] = f"hang: {str(e)[:300]}"
                    continue
                for c, r in zip(hw, runs, strict=True):
                    c[f"rtl_exact_{stall}"] = bool(np.array_equal(r.codes, c["_want"]))
                    if stall == 0.0:
                        c["rtl_interval"] = r.summary["steady_state_cycles_per_frame"]
            for c, r in zip(hw, csim.simulate_many(jobs, cache_dir=base / "csim"), strict=True):
                c["csim_exact"] = bool(np.array_equal(r.codes, c["_want"]))

    for c in cases:
        for k in ("_graph", "_codes", "_want"):
            c.pop(k, None)
    ok = [c for c in cases if c["status"] == "ok"]

    def err(a: str, b: str) -> list[float]:
        return [abs(c[a] - c[b]) / c[b] for c in ok if a in c and b in c]

    hls_vs_bn = err("hls_model", "bottleneck")
    rtl_vs_bn = err("rtl_interval", "bottleneck")
    hls_vs_rtl = err("hls_model", "rtl_interval")
    summary = {
        "cases": len(cases), "valid": len(ok),
        "round_trip": sum(c.get("round_trip", False) for c in ok),
        "saturating": sum(c.get("saturated", 0) > 0 for c in ok),
        "hls_model_deadlocks": sum("hls_model_error" in c for c in ok),
        "hls_model_within_1pct": sum(e <= 0.01 for e in hls_vs_bn),
        "hw_cases": len(hw),
        "rtl_exact_stall0": sum(c.get("rtl_exact_0.0", False) for c in hw),
        "rtl_exact_stall0.3": sum(c.get("rtl_exact_0.3", False) for c in hw),
        "csim_exact": sum(c.get("csim_exact", False) for c in hw),
        "rtl_interval_within_1pct_of_bottleneck": sum(e <= 0.01 for e in rtl_vs_bn),
        "max_rel_error_rtl_vs_bottleneck": max(rtl_vs_bn, default=0.0),
        "max_rel_error_hls_model_vs_rtl": max(hls_vs_rtl, default=0.0),
        "features": dict(sorted(features.items())),
        "seconds": round(time.perf_counter() - start, 1),
    }
    for k, v in summary.items():
        if k != "features":
            print(f"{k:42s} {v}")
    print("features:", ", ".join(f"{k} {v}" for k, v in summary["features"].items()))
    slow = [(c["seed"], c["rtl_interval"], c["bottleneck"]) for c in hw
            if "rtl_interval" in c and abs(c["rtl_interval"] - c["bottleneck"])
            > 0.01 * c["bottleneck"]]
    for seed, got, want in slow:
        print(f"  RTL slower than the model: seed {seed}: {got} vs {want} cycles/frame")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"summary": summary, "cases": cases}, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
