"""Bi-Real-Net-18 at 32x32 (larq-zoo's BiRealNet, ``bnn2fpga.architectures.birealnet``):
compile time, reference frames/s, estimate, and RTL cycles under Verilator (issue 12).

    python bench/birealnet.py [--filters 64] [--sim-filters 8] [--target-fps 2000]
                              [--frames 3] [--part xczu7ev-ffvc1156-2-e] [--clock-ns 5]

Random weights (seed 0), randomised BatchNorm statistics (``randomize_batchnorm``); the
real-valued paths take their formats from 32 random frames on the 4-bit input grid
(``compile_model(..., calibration=...)``, input_scale 1/16, the default --precision).  For
the network at ``--filters`` (64: the Bi-Real-Net-18 size) it measures the compile time
(Keras -> hardware graph, the agreement measurement included), the bit-exact numpy
reference's frames/s, the folding the folding search chooses for ``--target-fps`` at
``--clock-ns`` on ``--part`` and the estimator's interval, latency and LUT/FF/BRAM18/DSP at
that folding.  Verilator runs a few frames of the network at ``--sim-filters`` (the same
topology, narrower: the full-size design's verilated model takes too long to build on the
shared 2-core machines; ``--sim-filters 64`` simulates the full size) at the folding the
search chooses for it, and reports the steady-state cycles/frame and first-frame latency
against the estimator's, and whether the RTL output equals the reference.  Prints a table;
writes bench/results/birealnet.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bnn2fpga import folding_search, reference  # noqa: E402
from bnn2fpga.architectures import birealnet, randomize_batchnorm  # noqa: E402
from bnn2fpga.backends import CompileOptions  # noqa: E402
from bnn2fpga.backends import rtl as rtl_backend  # noqa: E402
from bnn2fpga.compile import compile_model  # noqa: E402
from bnn2fpga.devices import get_device  # noqa: E402
from bnn2fpga.estimate import estimate, load_calibration  # noqa: E402
from bnn2fpga.ir import IRError  # noqa: E402
from bnn2fpga.passes import assign_folding, check_hardware_graph  # noqa: E402
from bnn2fpga.sim.rtl import RtlSimError, simulate  # noqa: E402

INPUT_BITS, INPUT_SCALE, CAL_FRAMES = 4, 1 / 16, 32


def birealnet_strided(filters: int, num_classes: int = 10):
    """``architectures.birealnet`` with the downsampling shortcuts' AvgPool 2/2 + 1x1 conv
    replaced by a stride-2 1x1 conv (the same layer sizes; the hardware has no windowed
    average pool unit yet)."""
    import larq as lq
    import tensorflow as tf

    init = "glorot_normal"

    def block(x, out_filters):
        in_filters = x.shape[-1]
        shortcut = x
        if in_filters != out_filters:
            shortcut = tf.keras.layers.Conv2D(out_filters, (1, 1), strides=2,
                                              kernel_initializer=init, use_bias=False)(x)
            shortcut = tf.keras.layers.BatchNormalization(momentum=0.8)(shortcut)
        x = lq.layers.QuantConv2D(out_filters, (3, 3),
                                  strides=1 if out_filters == in_filters else 2,
                                  padding="same", input_quantizer="approx_sign",
                                  kernel_quantizer="magnitude_aware_sign",
                                  kernel_constraint="weight_clip", kernel_initializer=init,
                                  use_bias=False)(x)
        x = tf.keras.layers.BatchNormalization(momentum=0.8)(x)
        return tf.keras.layers.add([x, shortcut])

    inp = tf.keras.layers.Input(shape=(32, 32, 3))
    out = tf.keras.layers.Conv2D(filters, (7, 7), strides=2, kernel_initializer=init,
                                 padding="same", use_bias=False)(inp)
    out = tf.keras.layers.BatchNormalization(momentum=0.8)(out)
    out = tf.keras.layers.MaxPool2D((3, 3), strides=2, padding="same")(out)
    out = block(out, filters)
    for _ in range(3):
        out = block(out, out.shape[-1])
    for _ in range(3):
        out = block(out, 2 * out.shape[-1])
        for _ in range(3):
            out = block(out, out.shape[-1])
    out = tf.keras.layers.GlobalAveragePooling2D()(out)
    out = tf.keras.layers.Dense(num_classes)(out)
    out = tf.keras.layers.Activation("softmax", dtype="float32")(out)
    return tf.keras.Model(inputs=inp, outputs=out, name="birealnet18_strided")


def calibration_frames() -> np.ndarray:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 1 << INPUT_BITS, (CAL_FRAMES, 32, 32, 3)).astype(np.float32)
    return x * INPUT_SCALE


def zoo_birealnet(filters: int) -> dict:
    """larq-zoo's Bi-Real Net as published: compile time and reference frames/s (its
    AvgPool shortcut has no hardware unit yet: the plan's refusal is recorded)."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    model = randomize_batchnorm(birealnet(input_shape=(32, 32, 3), filters=filters), seed=1)
    x = calibration_frames()
    t0 = time.perf_counter()
    g = compile_model(model, input_scale=INPUT_SCALE, input_bits=INPUT_BITS, calibration=x)
    compile_s = time.perf_counter() - t0
    codes = np.rint(x / INPUT_SCALE).astype(np.int64)
    try:
        estimate(g, part="xczu7ev-ffvc1156-2-e", clock_ns=5.0)
        hardware = "plans"
    except IRError as e:
        hardware = str(e).split(";")[0]
    return {"filters": filters, "keras_params": int(model.count_params()),
            "compile_s": round(compile_s, 1),
            "reference_fps": round(reference_fps(g, codes[:8]), 2),
            "agreement": {k: g.meta["agreement"][k] for k in ("frames", "argmax_agreement")},
            "hardware": hardware}


def build(filters: int, target_fps: float, part: str, clock_ns: float) -> dict:
    """Model -> graph (timed), then the folding search's folding for ``target_fps``."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    model = randomize_batchnorm(birealnet_strided(filters), seed=1)
    x = calibration_frames()
    t0 = time.perf_counter()
    g = compile_model(model, input_scale=INPUT_SCALE, input_bits=INPUT_BITS, calibration=x)
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    fold, how = choose_folding(g, target_fps, part, clock_ns)
    check_hardware_graph(assign_folding(g, fold))
    search_s = time.perf_counter() - t0
    codes = np.rint(x / INPUT_SCALE).astype(np.int64)
    return {"model": model, "graph": g, "codes": codes, "folding": fold, "how": how,
            "compile_s": compile_s, "search_s": search_s,
            "params": int(model.count_params())}


def choose_folding(g, target_fps: float, part: str, clock_ns: float):
    """The folding search's folding for ``target_fps``; where it refuses the graph (it
    handles chains only, until it works on graphs) each matrix-vector layer independently
    takes its cheapest legal (PE, SIMD) within the frame budget
    (``folding_search.layer_options``): the search's per-layer options without its
    serialisation constraint."""
    try:
        return (folding_search.choose_folding(g, target_fps=target_fps, clock_ns=clock_ns,
                                              part=part), "folding_search.choose_folding")
    except IRError as e:
        if "chains of layers only" not in str(e):
            raise
    device, cal = get_device(part), load_calibration()
    budget = folding_search.budget_for(target_fps, clock_ns)
    fold = {}
    for node in g.matvec_nodes():
        options = folding_search.layer_options(g, node, device, cal)
        fits = [o for o in options if o.cycles <= budget] or options[:1]
        best = min(fits, key=lambda o: (o.cost, o.cycles))
        fold[node.name] = (best.pe, best.simd)
    return fold, "per layer: cheapest folding_search.layer_options within the budget"


def reference_fps(g, codes: np.ndarray) -> float:
    reference.execute(g, codes[:1])                    # warm-up
    t0 = time.perf_counter()
    reference.execute(g, codes)
    return len(codes) / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--filters", type=int, default=64)
    ap.add_argument("--sim-filters", type=int, default=8,
                    help="width of the network simulated in Verilator (0: no simulation)")
    ap.add_argument("--target-fps", type=float, default=2000.0)
    ap.add_argument("--sim-target-fps", type=float, default=None,
                    help="target of the simulated network (default --target-fps)")
    ap.add_argument("--frames", type=int, default=3)
    ap.add_argument("--part", default="xczu7ev-ffvc1156-2-e")
    ap.add_argument("--clock-ns", type=float, default=5.0)
    ap.add_argument("--work", type=Path, default=Path("/tmp/bnn2fpga_birealnet"))
    args = ap.parse_args()

    zoo = zoo_birealnet(args.filters)
    print(f"larq-zoo BiRealNet, filters {args.filters}: {zoo}", file=sys.stderr)
    rows = []
    for filters, simulate_it in ((args.filters, args.sim_filters == args.filters),
                                 (args.sim_filters, True)):
        if not filters or (rows and filters == rows[0]["filters"]):
            continue
        target = args.target_fps if not rows else (args.sim_target_fps or args.target_fps)
        b = build(filters, target, args.part, args.clock_ns)
        g, codes = b["graph"], b["codes"]
        est = estimate(g, part=args.part, clock_ns=args.clock_ns)
        res = est.resources
        row = {"filters": filters, "keras_params": b["params"],
               "layers": len(g.nodes), "compile_s": round(b["compile_s"], 1),
               "folding_search_s": round(b["search_s"], 1),
               "folding": {k: list(v) for k, v in b["folding"].items()},
               "folding_chosen_by": b["how"],
               "target_fps": target,
               "reference_fps": round(reference_fps(g, codes[:8]), 2),
               "agreement": {k: g.meta["agreement"][k] for k in ("frames", "argmax_agreement")},
               "estimate": {"interval_cycles": est.interval_cycles,
                            "expected_interval_cycles": est.expected_interval_cycles,
                            "latency_cycles": est.latency_cycles,
                            "bottleneck": est.bottleneck,
                            **{k: round(v) for k, v in res.as_dict().items()}}}
        if simulate_it:
            t0 = time.perf_counter()
            proj = args.work / f"f{filters}"
            rtl_backend.write_project(g, proj / "rtl", CompileOptions(
                top=f"birealnet_f{filters}", clock_ns=args.clock_ns, part=args.part))
            frames = codes[:args.frames]
            try:
                sim = simulate(proj, g, frames, cache_dir=args.work / "cache")
            except RtlSimError as e:      # recorded, not hidden: a hang is a finding
                row["rtl"] = {"frames": args.frames, "error": str(e).splitlines()[0],
                              "seconds": round(time.perf_counter() - t0, 1)}
                print(f"RTL at filters {filters}: {row['rtl']['error']}", file=sys.stderr)
            else:
                ref = reference.execute(g, frames)[g.output.name]
                row["rtl"] = {"frames": args.frames,
                              "cycles_per_frame": sim.summary["steady_state_cycles_per_frame"],
                              "first_frame_latency": sim.summary["first_frame_latency_cycles"],
                              "exact": bool(np.array_equal(sim.codes, ref)),
                              "seconds": round(time.perf_counter() - t0, 1)}
        rows.append(row)
        print(f"filters {filters}: compiled in {row['compile_s']} s, "
              f"folding search {row['folding_search_s']} s", file=sys.stderr)

    print(f"\nBi-Real-Net-18 topology at 32x32, {args.part} at {args.clock_ns} ns")
    print(f"{'filters':>7} {'params':>9} {'compile s':>9} {'ref fps':>8} {'target':>7} "
          f"{'est II':>8} {'est lat':>8} {'RTL II':>8} {'RTL lat':>8} {'exact':>5} "
          f"{'LUT':>8} {'FF':>8} {'BRAM18':>6} {'DSP':>5}")
    for r in rows:
        e, s = r["estimate"], r.get("rtl", {})
        print(f"{r['filters']:>7} {r['keras_params']:>9} {r['compile_s']:>9} "
              f"{r['reference_fps']:>8} {r['target_fps']:>7.0f} "
              f"{e['expected_interval_cycles']:>8} {e['latency_cycles']:>8} "
              f"{s.get('cycles_per_frame', '-')!s:>8} {s.get('first_frame_latency', '-')!s:>8} "
              f"{s.get('exact', '-')!s:>5} {e['lut']:>8} {e['ff']:>8} {e['bram18']:>6} "
              f"{e['dsp']:>5}")
    for r in rows:
        print(f"folding at filters {r['filters']} (PE, SIMD): {r['folding']}")
    print(f"larq-zoo's Bi-Real Net (AvgPool 2/2 + 1x1 conv shortcuts) at filters "
          f"{zoo['filters']}: {zoo['keras_params']} parameters, compiled in {zoo['compile_s']} s, "
          f"reference {zoo['reference_fps']} frames/s, argmax agreement "
          f"{zoo['agreement']['argmax_agreement']}; hardware: {zoo['hardware']}")
    out = {"zoo_birealnet": zoo, "part": args.part, "clock_ns": args.clock_ns,
           "input_bits": INPUT_BITS,
           "calibration_frames": CAL_FRAMES, "rows": rows,
           "note": "estimate at every width; RTL (Verilator) only at the widths simulated"}
    path = Path(__file__).parent / "results" / "birealnet.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
