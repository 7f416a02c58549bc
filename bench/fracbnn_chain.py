"""FracBNN at CIFAR-10 size on the dataflow pipeline: a chain of precision-gated layers with
random weights and gate thresholds set for about 25% of groups on (issue 13).

    python bench/fracbnn_chain.py [--frames 3] [--density 0.25] [--work /tmp/bnn2fpga_fracbnn]

FracBNN's ResNet-20 is residual (add, AvgPool + concat shortcuts, global pool): this bench
measures its convolution trunk without the shortcuts, as a chain at the same sizes:
uint 8 pixels 32x32x3 -> on-chip thermometer (32 levels: 96 bits) -> binary 3x3 conv 96->16
with 3 thresholds (2-bit codes) -> PG 16->16 (32x32) -> PG 16->32 stride 2 -> PG 32->32
(16x16) -> PG 32->64 stride 2 -> PG 64->64 (8x8, 1 threshold) -> flatten -> binary dense
4096 -> 10 with an output affine.  For each PG layer: the gate density measured on the
frames (the reference), cycles worst (every gate on) and expected (at that density, the one
cycle formula ops.pgconv2d.cycles); for the design: the Verilator steady-state cycles per
frame and first-frame latency against the model's bottleneck, worst and expected, and the
estimator's LUT/FF/BRAM18/DSP on xczu3eg.  Prints a table; writes the "chain" entry of
bench/results/fracbnn.json (bench/fracbnn.py measures the ResNet-20 itself).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bnn2fpga import folding  # noqa: E402
from bnn2fpga import testing_fracbnn as F  # noqa: E402
from bnn2fpga.backends import CompileOptions  # noqa: E402
from bnn2fpga.backends import rtl as rtl_backend  # noqa: E402
from bnn2fpga.estimate import (
    estimate,  # noqa: E402
    hls_schedule,  # noqa: E402
)
from bnn2fpga.plan import build_plan  # noqa: E402
from bnn2fpga.sim.rtl import simulate  # noqa: E402

PART, CLOCK_NS = "xczu3eg-sbva484-1-e", 4.0
# FracBNN's published design (FPGA'21): 2,806.9 FPS at 250 MHz, 51,444 LUT, 126 DSP, 212 BRAM18
FRACBNN = {"fps": 2806.9, "clock_mhz": 250, "lut": 51444, "dsp": 126, "bram18": 212}


def cifar_chain(seed: int = 0):
    pgs = (dict(out_ch=16, pe=16, simd=16),
           dict(out_ch=32, pe=8, simd=16, stride=2),
           dict(out_ch=32, pe=8, simd=16),
           dict(out_ch=64, pe=8, simd=16, stride=2),
           dict(out_ch=64, pe=8, simd=32, nt=1))
    return F.fracbnn_chain(np.random.default_rng(seed), h=32, w=32, levels=32,
                           first=(16, 16, 96), pgs=pgs, dense=(10, 2, 64),
                           name="fracbnn_cifar_chain")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=3)
    ap.add_argument("--density", type=float, default=0.25)
    ap.add_argument("--work", type=Path, default=Path("/tmp/bnn2fpga_fracbnn"))
    args = ap.parse_args()

    g = cifar_chain()
    codes = F.random_pixels(np.random.default_rng(1), g, args.frames)
    for node in F.pg_nodes(g):          # in order: each layer's input depends on the gates
        F.set_gate_density(g, node, codes, args.density)   # before it
    h = args.frames // 2 if args.frames >= 4 else 0   # sim.rtl.cycle_summary's interval
    for node in F.pg_nodes(g):
        node.gate_density = F.measured_density(g, node, codes[h + 1:] if h else codes[1:])

    layers = []
    for node in g.nodes[1:]:
        if node.op == "reshape":
            continue
        c = folding.unit_cycles(node, g.producer(node).out.shape)
        layers.append({"layer": node.name, "op": node.op, "shape": list(node.out.shape),
                       "pe": getattr(node, "pe", None), "simd": getattr(node, "simd", None),
                       "gate_density": getattr(node, "gate_density", None),
                       "worst_cycles": c.worst, "expected_cycles": c.expected})
    worst = max(x["worst_cycles"] for x in layers)
    expected = max(x["expected_cycles"] for x in layers)

    est = estimate(g, part=PART, clock_ns=CLOCK_NS)
    res = est.resources
    hls = hls_schedule.hls_cycles(g, build_plan(g))

    t0 = time.time()
    proj = args.work / "proj"
    rtl_backend.write_project(g, proj / "rtl", CompileOptions(top="fracbnn_chain",
                                                               clock_ns=CLOCK_NS, part=PART))
    sim = simulate(proj, g, codes, cache_dir=args.work / "cache")
    from bnn2fpga import reference
    exact = bool(np.array_equal(sim.codes, reference.execute(g, codes)[g.output.name]))
    rtl_cycles = sim.summary["steady_state_cycles_per_frame"]
    latency = sim.summary["first_frame_latency_cycles"]

    print(f"{'layer':<12} {'op':<12} {'shape':<14} {'PE':>3} {'SIMD':>4} {'gates on':>8} "
          f"{'worst':>8} {'expected':>8}")
    for x in layers:
        d = "" if x["gate_density"] is None else f"{100 * x['gate_density']:.1f}%"
        print(f"{x['layer']:<12} {x['op']:<12} {str(tuple(x['shape'])):<14} "
              f"{x['pe'] or '':>3} {x['simd'] or '':>4} {d:>8} {x['worst_cycles']:>8} "
              f"{x['expected_cycles']:>8}")
    fps = 1e9 / (CLOCK_NS * rtl_cycles)
    per_lut = fps / res.lut
    theirs = FRACBNN["fps"] / FRACBNN["lut"]
    print(f"\ncycles/frame: worst {worst}, expected {expected}, Verilator {rtl_cycles} "
          f"(latency {latency}), HLS model {hls['cycles_per_frame']}; output exact: {exact}")
    print(f"estimate on xczu3eg: LUT {res.lut:.0f} FF {res.ff:.0f} BRAM18 {res.bram18:.0f} "
          f"DSP {res.dsp:.0f}")
    print(f"FPS at {1e3 / CLOCK_NS:.0f} MHz: {fps:.0f} ({fps / res.lut:.3f} FPS/LUT; "
          f"FracBNN {FRACBNN['fps']} FPS, {theirs:.3f} FPS/LUT: x{per_lut / theirs:.1f}) -- "
          "a chain without the residual shortcuts, not the ResNet-20")
    out = {"graph": g.name, "part": PART, "clock_ns": CLOCK_NS, "frames": args.frames,
           "target_density": args.density, "layers": layers,
           "model_worst_cycles": worst, "model_expected_cycles": expected,
           "rtl_cycles_per_frame": rtl_cycles, "rtl_first_frame_latency": latency,
           "hls_model_cycles_per_frame": hls["cycles_per_frame"], "rtl_exact": exact,
           "estimate": {k: round(v) for k, v in res.as_dict().items()},
           "fps": fps, "fps_per_lut": per_lut, "fracbnn": FRACBNN,
           "fracbnn_fps_per_lut": theirs, "seconds": round(time.time() - t0, 1),
           "note": "a PG chain at CIFAR-10 ResNet-20 sizes without its shortcuts"}
    path = Path(__file__).parent / "results" / "fracbnn.json"
    old = json.loads(path.read_text()) if path.is_file() else {}
    path.write_text(json.dumps({**old, "chain": out}, indent=1) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
