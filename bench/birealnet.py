"""Bi-Real Net 18 at 32x32 (larq-zoo's BiRealNet, ``bnn2fpga.architectures.birealnet``) on
the dataflow pipeline: compile time, reference frames/s, folding, estimate, RTL cycles,
yosys resources and the skip FIFO depths (issue 12).

    python bench/birealnet.py [--filters 64] [--sim-filters 64] [--synth-filters 8]
                              [--synth-layers 26] [--target-fps 2000] [--frames 3]
                              [--fifo-adds 1 4]
                              [--steps estimate rtl fifos synth]
                              [--part xczu9eg-ffvb1156-2-e] [--clock-ns 5]
                              [--check-parts xczu7ev-ffvc1156-2-e]
                              [--work /tmp/bnn2fpga_birealnet]

The network is larq-zoo's own Bi-Real Net (float 7x7/2 conv + BN + 3x3/2 max pool, 16
binary 3x3 conv blocks with real-valued shortcuts, AvgPool 2/2 + float 1x1 conv + BN where
the channels double, global pool, float Dense, softmax) with random weights (seed 0) and
randomised BatchNorm statistics (``randomize_batchnorm``, negative gammas included).  The
real-valued paths take their formats from 32 random frames on the 4-bit input grid
(``compile_model(..., calibration=...)``, input_scale 1/16, the default --precision).

The part is xczu9eg (ZCU102, 1,824 BRAM18): at 64 filters the binary weights alone are
10.98 Mb (8.26 Mb in stage 4) and the float 1x1 shortcut convs add 172k weights, more than
xczu7ev's 624 BRAM18 (11.2 Mb) hold once packed, and weight ROMs cannot go to UltraRAM (no
initial contents); the search's verdict on each of ``--check-parts`` at ``--filters`` is
recorded (``part_checks``).

Every width is compiled once (timed: Keras -> hardware graph, the agreement measurement
included), folded by ``folding_search.choose_folding`` for ``--target-fps`` at
``--clock-ns`` on ``--part`` (timed), and its hardware plan is built once (timed; the plan
sizes the skip FIFOs from the schedule) and reused by everything below.  Steps:

- estimate (at ``--filters``, 64 = the Bi-Real-Net-18 size): the bit-exact numpy
  reference's frames/s and the estimator's interval, latency and LUT/FF/BRAM18/DSP.
- rtl (at ``--sim-filters``, default 64: the full size): Verilator cycles/frame (steady
  state) and first-frame latency on ``--frames`` frames, against the estimator's, and
  whether the output equals the reference bit for bit; the verilated build's time is
  measured (a cold build, in an emptied cache).  Measured: about 28 s at 64 filters and
  42 s at 8 on a quiet machine (100-120 s under load), so the full size is simulated.
- fifos (at ``--sim-filters``): the skip FIFO depths the plan chose against the smallest
  depths at which Verilator shows no slowdown, by ``bench/skip_fifos.py``'s bisection
  (``skip_fifos.measure``) on the skip streams of the adds ``--fifo-adds`` (indices in
  plan order; every bisection step is a verilated build of its own, so not all 16 adds are
  bisected by default: add 1 is an identity block of stage 1, add 4 the first
  downsampling block; ``--fifo-adds all`` bisects every one).
- synth (at ``--synth-filters``): yosys LUT/FF/BRAM/DSP per RTL unit
  (``report.synth_units`` + ``synth_totals``: units separately, identical units once,
  top-level glue not included) beside the estimator's figures for the same units, cached
  by content in ``--work``/synth so that a restarted run resumes.  The network has 277
  units at every width and each yosys run takes about 30 s on the shared machine, so
  ``--synth-layers N`` synthesises the units of the first N layers only (26, the default:
  the stem, stage 1 and the first downsampling block, 96 units; 0: all, about 2.5 hours).

Prints a table; writes bench/results/birealnet.json.  A run of some ``--steps`` keeps the
stored results of the other steps where their width and folding are unchanged.
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import skip_fifos  # noqa: E402

from bnn2fpga import reference  # noqa: E402
from bnn2fpga.architectures import birealnet, randomize_batchnorm  # noqa: E402
from bnn2fpga.backends import CompileOptions  # noqa: E402
from bnn2fpga.backends import rtl as rtl_backend  # noqa: E402
from bnn2fpga.compile import compile_model  # noqa: E402
from bnn2fpga.estimate import estimate  # noqa: E402
from bnn2fpga.estimate.resources import total  # noqa: E402
from bnn2fpga.folding_search import apply_folding, choose_folding  # noqa: E402
from bnn2fpga.ir import IRError  # noqa: E402
from bnn2fpga.plan import build_plan  # noqa: E402
from bnn2fpga.report import synth_totals, synth_units  # noqa: E402
from bnn2fpga.sim.rtl import RtlSimError, simulate  # noqa: E402

INPUT_BITS, INPUT_SCALE, CAL_FRAMES = 4, 1 / 16, 32
STEPS = ("estimate", "rtl", "fifos", "synth")
RESULTS = Path(__file__).parent / "results" / "birealnet.json"


def calibration_frames() -> np.ndarray:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 1 << INPUT_BITS, (CAL_FRAMES, 32, 32, 3)).astype(np.float32)
    return x * INPUT_SCALE


def build(filters: int, target_fps: float, part: str, clock_ns: float) -> dict[str, Any]:
    """larq-zoo's Bi-Real Net at ``filters`` -> graph (timed), the search's folding for
    ``target_fps`` (timed), and its hardware plan (timed), built once."""
    import tensorflow as tf

    tf.keras.backend.clear_session()           # the same layer names at every width
    tf.keras.utils.set_random_seed(0)
    model = randomize_batchnorm(birealnet(input_shape=(32, 32, 3), filters=filters), seed=1)
    x = calibration_frames()
    t0, c0 = time.perf_counter(), time.process_time()
    g0 = compile_model(model, input_scale=INPUT_SCALE, input_bits=INPUT_BITS,
                       calibration=x, name=f"birealnet_f{filters}")
    compile_s, compile_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    fold = choose_folding(g0, target_fps=target_fps, clock_ns=clock_ns, part=part)
    search_s, search_cpu = time.perf_counter() - t0, time.process_time() - c0
    g = apply_folding(g0, fold)
    t0, c0 = time.perf_counter(), time.process_time()
    plan = build_plan(g, f"birealnet_f{filters}")
    plan_s, plan_cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"filters {filters}: compiled in {compile_s:.1f} s, folding search {search_s:.1f} s,"
          f" plan {plan_s:.1f} s", file=sys.stderr)
    return {"filters": filters, "model": model, "graph": g, "plan": plan,
            "codes": np.rint(x / INPUT_SCALE).astype(np.int64), "folding": fold,
            "head": {"filters": filters, "keras_params": int(model.count_params()),
                     "nodes": len(g.nodes), "target_fps": target_fps,
                     "compile_s": round(compile_s, 1), "folding_search_s": round(search_s, 1),
                     "build_plan_s": round(plan_s, 1),
                     "cpu_s": {"compile": round(compile_cpu, 1),
                               "folding_search": round(search_cpu, 1),
                               "build_plan": round(plan_cpu, 1)},
                     "folding": {k: list(v) for k, v in fold.items()},
                     "agreement": {k: g.meta["agreement"][k]
                                   for k in ("frames", "argmax_agreement")}}}


def part_check(g, target_fps: float, part: str, clock_ns: float) -> str:
    """The folding search's verdict for ``target_fps`` on ``part``: fits, or its refusal."""
    try:
        choose_folding(g, target_fps=target_fps, clock_ns=clock_ns, part=part)
    except IRError as e:
        return f"refused: {e}"
    return "fits"


def reference_fps(g, codes: np.ndarray) -> float:
    reference.execute(g, codes[:1])                    # warm-up
    t0 = time.perf_counter()
    reference.execute(g, codes)
    return len(codes) / (time.perf_counter() - t0)


def estimate_step(b: dict, part: str, clock_ns: float) -> dict:
    est = estimate(b["graph"], part=part, clock_ns=clock_ns, plan=b["plan"])
    return {"reference_fps": round(reference_fps(b["graph"], b["codes"][:8]), 2),
            "interval_cycles": est.interval_cycles,
            "expected_interval_cycles": est.expected_interval_cycles,
            "latency_cycles": est.latency_cycles, "bottleneck": est.bottleneck,
            **{k: round(v) for k, v in est.resources.as_dict().items()}}


def skip_streams(plan) -> list[dict]:
    """The plan's skip FIFOs grouped by the add (join) they feed, in plan order."""
    by_join: dict[str, list] = {}
    for s in plan.streams:
        if s.skip:
            by_join.setdefault(s.consumer, []).append(
                {"stream": s.name, "depth": s.depth, "bits": s.width})
    return [{"join": k, "streams": v} for k, v in by_join.items()]


def rtl_step(b: dict, work: Path, frames: int, part: str, clock_ns: float) -> dict:
    """Verilator on ``frames`` frames: cycles, latency, exactness, build and run time."""
    g, proj = b["graph"], work / f"f{b['filters']}"
    rtl_backend.write_project(g, proj / "rtl", CompileOptions(
        top=b["plan"].top, clock_ns=clock_ns, part=part), b["plan"])
    codes = b["codes"][:frames]
    cold = work / "cache_cold"          # emptied: build_seconds is a cold verilated build
    shutil.rmtree(cold, ignore_errors=True)
    t0 = time.perf_counter()
    try:
        sim = simulate(proj, g, codes, cache_dir=cold)
    except RtlSimError as e:      # recorded, not hidden: a hang is a finding
        return {"frames": frames, "error": str(e).splitlines()[0],
                "seconds": round(time.perf_counter() - t0, 1)}
    total = time.perf_counter() - t0
    est = estimate(g, part=part, clock_ns=clock_ns, plan=b["plan"])
    return {"frames": frames,
            "cycles_per_frame": sim.summary["steady_state_cycles_per_frame"],
            "first_frame_latency": sim.summary["first_frame_latency_cycles"],
            "estimate_interval_cycles": est.expected_interval_cycles,
            "estimate_latency_cycles": est.latency_cycles,
            "exact": bool(np.array_equal(sim.codes,
                                         reference.execute(g, codes)[g.output.name])),
            "seconds": round(total, 1), "sim_seconds": sim.summary.get("sim_seconds"),
            "build_seconds": round(total - (sim.summary.get("sim_seconds") or 0), 1)}


def fifos_step(b: dict, work: Path, frames: int, adds: list[int] | None) -> dict:
    joins = skip_streams(b["plan"])
    chosen = joins if adds is None else [joins[i] for i in adds]
    names = [s["stream"] for j in chosen for s in j["streams"]]
    row = skip_fifos.measure(b["plan"].top, b["graph"], frames, work / "fifos",
                             plan=b["plan"], streams=names)
    return {"adds_bisected": [j["join"] for j in chosen], "frames": frames, **row}


def synth_step(b: dict, work: Path, part: str, clock_ns: float, layers: int) -> dict:
    """yosys per RTL unit of the first ``layers`` graph layers (0: all), and the
    estimator's figures for the same units."""
    t0 = time.perf_counter()
    g, plan = b["graph"], b["plan"]
    est = estimate(g, part=part, clock_ns=clock_ns, plan=plan)
    names = [n.name for n in g.nodes[1:]][:layers or None]
    sub = copy.deepcopy(plan)
    sub.units = [u for u in plan.units if u.layer in names]
    results = synth_units(work / f"f{b['filters']}", g, est, sub, cache=work / "synth")
    totals = synth_totals(results)
    units = [u for le in est.layers for u in le.units if u.unit.name in results]
    same = total(u.resources for u in units)
    return {**{k: v for k, v in totals.items() if k != "layers"},
            "layers_synthesised": len(names), "last_layer": names[-1],
            "plan_units": len(plan.instances()),
            "estimate_same_units": {k: round(v) for k, v in same.as_dict().items()},
            "estimate": {k: round(v) for k, v in est.resources.as_dict().items()},
            "seconds": round(time.perf_counter() - t0, 1)}


def merge(old: dict, new: dict) -> dict:
    """``new``'s widths, each keeping the stored steps of ``old`` that this run skipped,
    where the stored width had the same folding."""
    widths = {**old.get("widths", {})}
    for key, row in new["widths"].items():
        prev = widths.get(key, {})
        keep = {k: v for k, v in prev.items()
                if k in (*STEPS, "part_checks") and prev.get("folding") == row.get("folding")}
        widths[key] = {**keep, **row}
    return {**new, "widths": widths}


def print_table(out: dict) -> None:
    print(f"\nlarq-zoo Bi-Real Net 18 at 32x32, {out['part']} at {out['clock_ns']} ns, "
          f"target {out['target_fps']:g} FPS")
    print(f"{'filters':>7} {'params':>9} {'compile s':>9} {'search s':>8} {'plan s':>7} "
          f"{'ref fps':>8} {'est II':>7} {'est lat':>8} {'RTL II':>7} {'RTL lat':>8} "
          f"{'exact':>5} {'build s':>7} {'LUT':>7} {'FF':>7} {'BRAM18':>6} {'DSP':>5}")
    for key in sorted(out["widths"], key=int):
        r = out["widths"][key]
        e, s = r.get("estimate", {}), r.get("rtl", {})
        print(f"{r['filters']:>7} {r['keras_params']:>9} {r['compile_s']:>9} "
              f"{r['folding_search_s']:>8} {r['build_plan_s']:>7} "
              f"{e.get('reference_fps', '-')!s:>8} {e.get('expected_interval_cycles', '-')!s:>7} "
              f"{e.get('latency_cycles', '-')!s:>8} {s.get('cycles_per_frame', '-')!s:>7} "
              f"{s.get('first_frame_latency', s.get('error', '-')[:8])!s:>8} "
              f"{s.get('exact', '-')!s:>5} {s.get('build_seconds', '-')!s:>7} "
              f"{e.get('lut', '-')!s:>7} {e.get('ff', '-')!s:>7} {e.get('bram18', '-')!s:>6} "
              f"{e.get('dsp', '-')!s:>5}")
        y = r.get("synth")
        if y:
            e = y["estimate_same_units"]
            print(f"{'':>7} yosys on the {y['units']} units ({y['distinct_units']} distinct; "
                  f"of {y['plan_units']}) of the first {y['layers_synthesised']} layers "
                  f"(to {y['last_layer']}), glue not included: LUT {y['lut']} FF {y['ff']} "
                  f"BRAM18 {y['bram18']} DSP {y['dsp']}; the estimate of the same units: "
                  f"LUT {e['lut']} FF {e['ff']} BRAM18 {e['bram18']} DSP {e['dsp']}")
    print("(compile/search/plan: wall seconds on the shared machine; CPU seconds in the JSON)")
    for key in sorted(out["widths"], key=int):
        r = out["widths"][key]
        print(f"folding at filters {key} (PE, SIMD): {r['folding']}")
        for part, verdict in r.get("part_checks", {}).items():
            print(f"folding search at filters {key} on {part}: {verdict}")
        f = r.get("fifos")
        if not f:
            continue
        base = f["at_plan_depths"]
        print(f"skip FIFOs at filters {key} (plan depths: interval "
              f"{base.get('interval', 'hang')}, latency {base.get('latency', '-')}; "
              f"{f['frames']} frames):")
        print(f"  {'skip stream':<36} {'plan depth':>10} {'smallest':>8} {'ratio':>6}")
        for x in f["fifos"]:
            print(f"  {x['stream']:<36} {x['plan_depth']:>10} {x['smallest_no_slowdown']:>8} "
                  f"{x['ratio']:>6}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--filters", type=int, default=64)
    ap.add_argument("--sim-filters", type=int, default=64)
    ap.add_argument("--synth-filters", type=int, default=8)
    ap.add_argument("--target-fps", type=float, default=2000.0)
    ap.add_argument("--frames", type=int, default=3)
    ap.add_argument("--fifo-adds", nargs="*", default=["1", "4"],
                    help="indices (plan order) of the adds whose skip FIFOs are bisected, "
                         "or 'all'")
    ap.add_argument("--synth-layers", type=int, default=26,
                    help="synthesise the units of the first N graph layers only (0: all)")
    ap.add_argument("--steps", nargs="*", choices=STEPS, default=list(STEPS))
    ap.add_argument("--part", default="xczu9eg-ffvb1156-2-e")
    ap.add_argument("--check-parts", nargs="*", default=["xczu7ev-ffvc1156-2-e"],
                    help="parts on which the search's verdict at --filters is recorded")
    ap.add_argument("--clock-ns", type=float, default=5.0)
    ap.add_argument("--work", type=Path, default=Path("/tmp/bnn2fpga_birealnet"))
    args = ap.parse_args()
    adds = None if args.fifo_adds == ["all"] else [int(a) for a in args.fifo_adds]

    wants = [(args.filters, {"estimate"}), (args.sim_filters, {"rtl", "fifos"}),
             (args.synth_filters, {"synth"})]
    steps: dict[int, set[str]] = {}
    for f, s in wants:
        if f:
            steps.setdefault(f, set()).update(s & set(args.steps))
    widths = {}
    for filters, todo in sorted(steps.items()):
        if not todo:
            continue
        b = build(filters, args.target_fps, args.part, args.clock_ns)
        row = {**b["head"], "skip_fifos": skip_streams(b["plan"])}
        if "estimate" in todo:
            row["estimate"] = estimate_step(b, args.part, args.clock_ns)
            row["part_checks"] = {p: part_check(b["graph"], args.target_fps, p, args.clock_ns)
                                  for p in args.check_parts}
        if "rtl" in todo:
            row["rtl"] = rtl_step(b, args.work, args.frames, args.part, args.clock_ns)
            print(f"filters {filters} RTL: {row['rtl']}", file=sys.stderr)
        if "fifos" in todo:
            row["fifos"] = fifos_step(b, args.work, args.frames, adds)
        if "synth" in todo:
            row["synth"] = synth_step(b, args.work, args.part, args.clock_ns,
                                      args.synth_layers)
        widths[str(filters)] = row
    new = {"part": args.part, "clock_ns": args.clock_ns, "target_fps": args.target_fps,
           "input_bits": INPUT_BITS, "calibration_frames": CAL_FRAMES, "widths": widths,
           "note": "one row per width built; the steps measured at each width are its keys "
                   "(estimate, rtl, fifos, synth)"}
    old = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    out = merge(old if "widths" in old else {}, new)
    print_table(out)
    RESULTS.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
