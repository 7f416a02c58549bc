"""First-frame latency of the join graphs (tests/test_graph_units.py's cases): Verilator
against ``pixel_schedule``, as planned and with every FIFO behind a fork deepened to
``--deep`` beats (the schedule holds a forked tensor to its slowest reader,
``estimate.schedule.fork_floor``, so both columns check that model; only FIFOs the plan
placed are deepened, a fork output of depth 0 stays unbuffered).  Prints a table and
writes bench/results/join_latency.json."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from test_graph_units import CASES, _written  # noqa: E402

from bnn2fpga.estimate import pixel_schedule  # noqa: E402
from bnn2fpga.plan import Plan, build_plan  # noqa: E402
from bnn2fpga.sim.rtl import simulate_many  # noqa: E402


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--deep", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        rows = {"planned": run(Path(d) / "planned", 0),
                f"fork_fifos_{args.deep}": run(Path(d) / "deep", args.deep)}
    print(f"{'case':<12}" + "".join(f"{k:>30}" for k in rows))
    for name, _ in CASES:
        cells = [f"{r[name]['verilator']} vs {r[name]['model']} "
                 f"({r[name]['model'] - r[name]['verilator']:+d})" for r in rows.values()]
        print(f"{name:<12}" + "".join(f"{c:>30}" for c in cells))
    path = ROOT / "bench" / "results" / "join_latency.json"
    path.write_text(json.dumps(rows, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
