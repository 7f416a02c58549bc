"""How long planning takes on big residual networks: ``compile_model``, the folding, and
``build_plan`` (its HLS skip-FIFO sizing, ``estimate.hls_schedule.hls_skip_depths``) on
FracBNN's ResNet-20 (bench/fracbnn_model.py, as bench/fracbnn.py folds it) and larq-zoo's
Bi-Real Net (``bnn2fpga.architectures.birealnet``, 64 filters, 32x32, folded per layer as
bench/birealnet.py does where the search finds no folding that fits).

    python bench/plan_speed.py [--label after] [--nets resnet20,birealnet] [--no-check]

Per network: seconds of ``compile_model`` (with calibration), of the folding, of the first
``build_plan`` (nothing memoised) and of a second one (the skip depths memoised), the skip
FIFOs (count, total beats) and, unless ``--no-check``, whether the HLS dataflow model with
the plan's depths runs at the rate it has with unbounded skip FIFOs (4 frames, the host
offering the input at once, and paced at the bottleneck).  ``--label`` names the run
(``before``: the same script with PYTHONPATH at an older checkout); rows of other labels
already in bench/results/plan_speed.json are kept and printed beside.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

RESULTS = Path(__file__).parent / "results" / "plan_speed.json"
UNBOUNDED = 1 << 40


def resnet20():
    import fracbnn_model

    from bnn2fpga.compile import compile_model
    from bnn2fpga.folding_search import apply_folding, choose_folding

    cal = fracbnn_model.random_pixels(16, seed=1)
    model, _ = fracbnn_model.fracbnn_resnet20(calibration=cal, density=0.25)
    t0 = time.perf_counter()
    g0 = compile_model(model, calibration=cal, name="fracbnn_resnet20")
    t1 = time.perf_counter()
    fold = choose_folding(g0, target_fps=2806.9, clock_ns=4.0, part="xczu3eg-sbva484-1-e",
                          cycles="expected")
    g = apply_folding(g0, fold)
    return g, t1 - t0, time.perf_counter() - t1, "folding_search.choose_folding"


def birealnet():
    import tensorflow as tf

    from bnn2fpga import folding_search
    from bnn2fpga.architectures import birealnet as zoo_birealnet
    from bnn2fpga.architectures import randomize_batchnorm
    from bnn2fpga.compile import compile_model
    from bnn2fpga.devices import get_device
    from bnn2fpga.estimate import load_calibration
    from bnn2fpga.ir import IRError
    from bnn2fpga.passes import assign_folding

    tf.keras.utils.set_random_seed(0)
    model = randomize_batchnorm(zoo_birealnet(input_shape=(32, 32, 3), filters=64), seed=1)
    import birealnet as bench_birealnet
    x = bench_birealnet.calibration_frames()
    t0 = time.perf_counter()
    g0 = compile_model(model, input_scale=bench_birealnet.INPUT_SCALE,
                       input_bits=bench_birealnet.INPUT_BITS, calibration=x)
    t1 = time.perf_counter()
    part, clock_ns, fps = "xczu7ev-ffvc1156-2-e", 5.0, 2000.0
    try:
        fold = folding_search.choose_folding(g0, target_fps=fps, clock_ns=clock_ns, part=part)
        how = "folding_search.choose_folding"
    except IRError:     # it does not fit the part: each layer its cheapest within budget
        device, cal = get_device(part), load_calibration()
        budget = folding_search.budget_for(fps, clock_ns)
        fold = {}
        for node in g0.matvec_nodes():
            options = folding_search.layer_options(g0, node, device, cal)
            fits = [o for o in options if o.cycles <= budget] or options[:1]
            best = min(fits, key=lambda o: (o.cost, o.cycles))
            fold[node.name] = (best.pe, best.simd)
        how = "per layer: cheapest folding_search.layer_options within the budget"
    g = assign_folding(g0, fold)
    return g, t1 - t0, time.perf_counter() - t1, how


NETS = {"resnet20": resnet20, "birealnet": birealnet}


def measure(name: str, check: bool) -> dict:
    from bnn2fpga.estimate import hls_schedule
    from bnn2fpga.plan import build_plan

    g, compile_s, fold_s, how = NETS[name]()
    hls_schedule._SKIP_DEPTHS.clear()
    t0 = time.perf_counter()
    plan = build_plan(g)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    build_plan(g)
    again = time.perf_counter() - t0
    skips = [s for s in plan.streams if s.skip]
    row = {"net": name, "nodes": len(g.nodes), "units": len(plan.units),
           "windows": sum(u.kind == "swu" for u in plan.units),
           "compile_model_s": round(compile_s, 2), "folding_s": round(fold_s, 2),
           "folding_by": how, "build_plan_s": round(first, 2),
           "build_plan_again_s": round(again, 2), "skip_fifos": len(skips),
           "skip_beats": sum(s.depth for s in skips),
           "skip_depths": {s.name: s.depth for s in skips}}
    if check:
        from bnn2fpga import folding

        unbounded = {s.name: UNBOUNDED for s in skips}
        paced = max(folding.bottleneck(g)[1], plan.input_stream.beats)
        t0 = time.perf_counter()
        for key, interval in (("free", None), ("paced", paced)):
            got = hls_schedule.simulate(plan, 4, input_interval=interval)
            want = hls_schedule.simulate(plan, 4, input_interval=interval,
                                         extra_depth=unbounded)
            row[f"hls_interval_{key}"] = got.cycles_per_frame
            row[f"hls_interval_{key}_unbounded"] = want.cycles_per_frame
            row[f"hls_latency_{key}"] = got.first_frame_latency_cycles
            row[f"hls_latency_{key}_unbounded"] = want.first_frame_latency_cycles
        row["check_s"] = round(time.perf_counter() - t0, 2)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--label", default="after")
    ap.add_argument("--nets", default=",".join(NETS))
    ap.add_argument("--no-check", action="store_true",
                    help="skip the HLS-model runs with the plan's and unbounded depths")
    args = ap.parse_args()
    old = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    runs = old.get("runs", {})
    rows = runs.get(args.label, {})
    for name in args.nets.split(","):
        rows[name] = measure(name, not args.no_check)
        print(f"{args.label} {name}: {rows[name]['build_plan_s']} s", file=sys.stderr)
    runs[args.label] = rows
    print(f"{'run':<8} {'net':<10} {'nodes':>5} {'units':>5} {'compile s':>9} "
          f"{'fold s':>8} {'plan s':>8} {'again s':>7} {'skips':>5} {'beats':>6} "
          f"{'HLS II (unbnd)':>16} {'HLS paced II (unbnd)':>21}")
    for label, by_net in runs.items():
        for r in by_net.values():
            ii = (f"{r['hls_interval_free']:g} ({r['hls_interval_free_unbounded']:g})"
                  if "hls_interval_free" in r else "-")
            pii = (f"{r['hls_interval_paced']:g} ({r['hls_interval_paced_unbounded']:g})"
                   if "hls_interval_paced" in r else "-")
            print(f"{label:<8} {r['net']:<10} {r['nodes']:>5} {r['units']:>5} "
                  f"{r['compile_model_s']:>9} {r['folding_s']:>8} {r['build_plan_s']:>8} "
                  f"{r['build_plan_again_s']:>7} {r['skip_fifos']:>5} {r['skip_beats']:>6} "
                  f"{ii:>16} {pii:>21}")
    RESULTS.write_text(json.dumps({"runs": runs, "note": (
        "seconds on the shared 2-core machine (other jobs running: compare within a run); "
        "'before' is commit 641f732 (event-by-event HLS model over every frame)")},
        indent=1) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
