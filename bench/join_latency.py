"""First-frame latency of graphs with forks, joins and width converters: Verilator against
the cycle model (``estimate.pixel_schedule``, whose back-pressure is the beat-level timing
of ``estimate.streams``).

- The join graphs of tests/test_graph_units.py, as planned and with every FIFO behind a
  fork deepened to ``--deep`` beats (only FIFOs the plan placed are deepened: a fork
  output of depth 0 stays unbuffered).
- ``--random N`` random DAGs (``testing_graphs.random_dag``) per seed of ``--seeds``:
  model - Verilator per graph, and how many are exact.

Prints tables and writes bench/results/join_latency.json.

    python bench/join_latency.py [--deep 200] [--random 40] [--seeds 1212,7]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from test_graph_units import CASES, _written  # noqa: E402

from bnn2fpga.backends import CompileOptions  # noqa: E402
from bnn2fpga.backends import rtl as rtl_backend  # noqa: E402
from bnn2fpga.estimate import pixel_schedule  # noqa: E402
from bnn2fpga.plan import Plan, build_plan  # noqa: E402
from bnn2fpga.sim.rtl import simulate_many  # noqa: E402
from bnn2fpga.testing_graphs import random_codes, random_dag  # noqa: E402


def deepened(plan: Plan, depth: int) -> Plan:
    """``plan`` with each FIFO a fork drives at least ``depth`` beats deep."""
    forks = {u.name for u in plan.units if u.kind == "fork"}
    for s in plan.streams:
        if s.depth and s.producer in forks:
            s.depth = max(s.depth, depth)
    return plan


def run(tmp: Path, deep: int) -> dict[str, dict[str, int]]:
    plans = {n: build_plan(g, f"g_{n}") for n, g in CASES}
    if deep:
        plans = {n: deepened(p, deep) for n, p in plans.items()}
    jobs = _written(tmp, "rtl", plans=plans)
    out = {}
    for (name, _), (_, graph, _), res in zip(CASES, jobs, simulate_many(jobs, tmp / "cache",
                                                                         seed=3), strict=True):
        out[name] = {"verilator": res.summary["first_frame_latency_cycles"],
                     "model": int(pixel_schedule(graph, plans[name])[graph.output.name][-1])}
    return out


def run_random(tmp: Path, seed: int, count: int) -> dict[str, dict[str, float]]:
    """Verilator and the model on ``count`` random DAGs of ``seed`` (one build)."""
    jobs = []
    for b in range(count):
        g = random_dag(np.random.default_rng([seed, b]), name=f"g{seed}_{b}")
        rtl_backend.write_project(g, tmp / g.name / "rtl", CompileOptions(top=f"r_{g.name}"))
        jobs.append((tmp / g.name, g, random_codes(np.random.default_rng(b), g, 2)))
    out = {}
    for (_, g, _), res in zip(jobs, simulate_many(jobs, tmp / "cache", seed=9,
                                                  name=f"rg{seed}"), strict=True):
        t = time.perf_counter()
        model = int(pixel_schedule(g)[g.output.name][-1])
        out[g.name] = {"verilator": res.summary["first_frame_latency_cycles"], "model": model,
                       "model_seconds": round(time.perf_counter() - t, 4)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--deep", type=int, default=200)
    ap.add_argument("--random", type=int, default=40, help="random DAGs per seed")
    ap.add_argument("--seeds", default="1212,7")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        rows = {"planned": run(Path(d) / "planned", 0),
                f"fork_fifos_{args.deep}": run(Path(d) / "deep", args.deep)}
        randoms = {s: run_random(Path(d) / f"random{s}", int(s), args.random)
                   for s in args.seeds.split(",")} if args.random else {}
    print(f"{'case':<12}" + "".join(f"{k:>30}" for k in rows))
    for name, _ in CASES:
        cells = [f"{r[name]['verilator']} vs {r[name]['model']} "
                 f"({r[name]['model'] - r[name]['verilator']:+d})" for r in rows.values()]
        print(f"{name:<12}" + "".join(f"{c:>30}" for c in cells))
    summary = {}
    for seed, graphs in randoms.items():
        off = {n: int(r["model"] - r["verilator"]) for n, r in graphs.items()
               if r["model"] != r["verilator"]}
        summary[seed] = {"graphs": len(graphs), "exact": len(graphs) - len(off), "off": off,
                         "worst_relative": max((abs(v) / graphs[n]["verilator"]
                                                for n, v in off.items()), default=0.0)}
        print(f"random seed {seed}: {len(graphs) - len(off)} of {len(graphs)} exact; "
              f"model - Verilator elsewhere: {off or '-'}")
    path = ROOT / "bench" / "results" / "join_latency.json"
    path.write_text(json.dumps({**rows, "random": randoms, "random_summary": summary},
                               indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
