"""Skip-branch FIFO depths: the plan's (sized from the schedule, no simulation) against the
smallest depths at which Verilator shows no slowdown (issue 12).

    python bench/skip_fifos.py [--frames 6] [--work /tmp/bnn2fpga_skip_fifos]

Designs: the synthetic residual graphs of ``bnn2fpga.testing.residual_graph`` (the ones
tests/test_graph_units.py runs: an add whose short branch is read twice, a long-branch add
at PE 4 / add PE 1, a concat join) and the trained Larq ResNet of
``bnn2fpga.zoo.train_larq_resnet`` at two foldings, where the hardware plans it.  For each
design: the interval and latency at the plan's depths (the reference: the bottleneck's
rate); then for each skip FIFO (``Stream.skip``; plan.json's ``skip_fifo``), the others at
the plan's depth, its depth bisected over [1, plan depth] for the smallest at which the
design neither hangs nor runs slower than at the plan's depths (an interval, and a
first-frame latency, no larger).  Monotone in depth is assumed (a deeper FIFO never slows
the design).  Prints a table; writes bench/results/skip_fifos.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bnn2fpga import folding, reference, testing  # noqa: E402
from bnn2fpga.backends import CompileOptions, rtl  # noqa: E402
from bnn2fpga.plan import Plan, build_plan  # noqa: E402
from bnn2fpga.sim.rtl import RtlSimError, simulate  # noqa: E402

HANG_CYCLES = 20000


def synthetic() -> list[tuple[str, object]]:
    rng = np.random.default_rng
    return [("add", testing.residual_graph(rng(0))),
            ("add_long", testing.residual_graph(rng(1), long_convs=3, pe=4, add_pe=1,
                                                out_bits=5, out_frac=0)),
            ("concat", testing.residual_graph(rng(2), join="concat"))]


def larq_resnets(foldings: list[int]) -> list[tuple[str, object]]:
    """The trained Larq ResNet, compiled at the default folding and with every
    matrix-vector layer's PE divided by each of ``foldings`` (where it divides)."""
    from bnn2fpga import zoo
    from bnn2fpga.compile import compile_model
    from bnn2fpga.passes import assign_folding, check_hardware_graph

    data = zoo.digits_data()
    model = zoo.train_larq_resnet(0, data)
    x = data.x_train[:64]
    out = []
    for k in foldings:
        g = compile_model(model, input_scale=0.0625, input_bits=5, calibration=x,
                          name=f"larq_resnet_pe{k}")
        if k > 1:
            fold = {n.name: (max(1, n.pe // k) if n.pe % k == 0 else n.pe, n.simd)
                    for n in g.matvec_nodes()}
            check_hardware_graph(assign_folding(g, fold))
        out.append((f"larq_resnet/{k}", g))
    return out


def run(graph, codes, work: Path, tag: str, depths: dict[str, int],
        plan: Plan | None = None) -> dict:
    """One Verilator run with the skip streams at ``depths``: interval, latency or hang
    (``plan``: the graph's plan, built once by the caller and copied here; default: built)."""
    top = f"{graph.name}_{tag}".replace("/", "_").replace("-", "_")
    if plan is None:
        plan = build_plan(graph, top)
    else:
        plan = copy.deepcopy(plan)
        plan.top = top
    for s in plan.streams:
        if s.name in depths:
            s.depth = depths[s.name]
    out = work / tag
    rtl.write_project(graph, out / "rtl", CompileOptions(top=plan.top), plan)
    try:
        res = simulate(out, graph, codes, cache_dir=work / "cache", hang_cycles=HANG_CYCLES)
    except RtlSimError as e:
        return {"hang": True, "error": str(e).splitlines()[0][:200]}
    exact = bool(np.array_equal(res.codes, reference.execute(graph, codes)[graph.output.name]))
    return {"hang": False, "exact": exact,
            "interval": res.summary["steady_state_cycles_per_frame"],
            "latency": res.summary["first_frame_latency_cycles"]}


def no_slower(r: dict, base: dict) -> bool:
    return (not r["hang"] and r["interval"] <= base["interval"]
            and r["latency"] <= base["latency"])


def measure(name: str, graph, frames: int, work: Path, plan: Plan | None = None,
            streams: list[str] | None = None) -> dict:
    """The design's interval and latency at the plan's skip depths, then each skip FIFO's
    smallest depth without slowdown, bisected (``plan``: the graph's plan if already built;
    ``streams``: bisect only these skip streams, default all)."""
    t0 = time.perf_counter()
    codes = testing.random_input_codes(np.random.default_rng(9), graph, frames)
    plan = plan or build_plan(graph)
    chosen = {s.name: s.depth for s in plan.streams if s.skip}
    if streams is not None and not set(streams) <= set(chosen):
        raise ValueError(f"{name}: not skip streams of the plan: "
                         f"{sorted(set(streams) - set(chosen))}; skip streams: {sorted(chosen)}")
    work = work / name.replace("/", "_")
    base = run(graph, codes, work, "plan", chosen, plan)
    row = {"design": name, "bottleneck_cycles": folding.bottleneck(graph)[1],
           "at_plan_depths": base, "fifos": []}
    if base["hang"]:
        row["seconds"] = round(time.perf_counter() - t0, 1)
        return row
    for s, depth in chosen.items():
        if streams is not None and s not in streams:
            continue
        lo, hi = 0, depth          # lo: slower (or hangs) at lo (0: untested), hi: no slower
        tried = {}
        while hi - lo > 1:
            mid = (lo + hi) // 2
            r = run(graph, codes, work, f"{s}_{mid}", {**chosen, s: mid}, plan)
            tried[mid] = ("hang" if r["hang"] else r["interval"])
            if no_slower(r, base):
                hi = mid
            else:
                lo = mid
        row["fifos"].append({"stream": s, "plan_depth": depth, "smallest_no_slowdown": hi,
                             "ratio": round(depth / hi, 2), "tried": tried})
        print(f"  {name} {s}: plan {depth}, smallest without slowdown {hi}; tried {tried}",
              file=sys.stderr)
    row["seconds"] = round(time.perf_counter() - t0, 1)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--larq-foldings", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--work", type=Path, default=Path("/tmp/bnn2fpga_skip_fifos"))
    args = ap.parse_args()
    designs = synthetic()
    refused = {}
    try:
        designs += larq_resnets(args.larq_foldings)
    except Exception as e:      # recorded: the table says which designs could not be built
        refused["larq_resnet"] = f"{type(e).__name__}: {str(e).splitlines()[0][:240]}"
    rows = []
    for name, g in designs:
        try:
            build_plan(g)
        except Exception as e:
            refused[name] = f"{type(e).__name__}: {str(e).splitlines()[0][:240]}"
            continue
        rows.append(measure(name, g, args.frames, args.work))
    print(f"\n{'design':<16} {'bottleneck':>10} {'II plan':>8} {'lat plan':>8} "
          f"{'skip stream':<34} {'plan depth':>10} {'smallest':>8} {'ratio':>6}")
    for r in rows:
        b = r["at_plan_depths"]
        ii = "hang" if b["hang"] else b["interval"]
        lat = "-" if b["hang"] else b["latency"]
        for i, f in enumerate(r["fifos"] or [{}]):
            head = (f"{r['design']:<16} {r['bottleneck_cycles']:>10} {ii!s:>8} {lat!s:>8}"
                    if i == 0 else " " * 45)
            print(f"{head} {f.get('stream', '-'):<34} {f.get('plan_depth', '-')!s:>10} "
                  f"{f.get('smallest_no_slowdown', '-')!s:>8} {f.get('ratio', '-')!s:>6}")
    for name, why in refused.items():
        print(f"{name}: not built ({why})")
    out = {"frames": args.frames, "hang_cycles": HANG_CYCLES, "designs": rows,
           "refused": refused}
    path = Path(__file__).parent / "results" / "skip_fifos.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
