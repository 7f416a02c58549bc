"""The HLS project's cycles (the dataflow model, bnn2fpga.estimate.hls_schedule) against
the same plan's RTL in Verilator, before and after issue 14's sliding window.

    python bench/hls_rate.py [--frames 4] [--work /tmp/bnn2fpga_hls_rate]

Designs: FINN CNV-W1A1 at BNN-PYNQ's folding and LFC-W1A1 folded for 30,000 FPS (random
weights; bench/estimate_accuracy.py's graphs).  Each is written with the RTL backend and
simulated in Verilator (steady-state cycles per frame, first-frame latency), and the HLS
top of the same plan is modelled:

* issue: as the review found it: every stream 2 deep (no input-vector FIFOs) and the
  phase-by-phase sliding window (``units.swu.hls_process_phased``);
* before: input-vector FIFOs in front of the dense MVTUs only, the old window;
* batch, no conv FIFOs: hls/swu.h as it is, the convs' MVTUs fed straight by their
  windows and no window FIFOs (what the new window alone gives), one call of many frames;
* axilite (batch): the generated project with ``--control axilite``, one call of many
  frames (numReps): the plan as it is (input-vector FIFOs, ``plan.input_fifo_depth``, and
  window FIFOs, ``plan.window_fifo_depth``), every process one loop over the frames;
* ap_ctrl_none (one call per frame): the generated project as default, each process
  called once per frame (drains and restarts, ``hls_schedule.call_per_frame``), with the
  plan's window FIFOs;
* ap_ctrl_none, no window FIFOs: the same without the FIFOs in front of the windows;
* ap_ctrl_none, window FIFOs one row shorter: the smaller rule the FIFO size was chosen
  against.

FIFO bits: the conv input-vector FIFOs and window FIFOs the variant has beyond the plan
before issue 14 (tap-valid flags included).

Prints a table; writes bench/results/hls_rate.json.
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

from estimate_accuracy import CLOCK, cnv_graphs, simulate  # noqa: E402

from bnn2fpga.backends.hls import HLS_MIN_DEPTH  # noqa: E402
from bnn2fpga.estimate.hls_schedule import CALL_RESTART, unit_process  # noqa: E402
from bnn2fpga.estimate.hls_schedule import simulate as hls_simulate  # noqa: E402
from bnn2fpga.plan import FIFO_DEPTH, Plan, Unit, build_plan, fed_by_input  # noqa: E402
from bnn2fpga.units import HlsProcess  # noqa: E402
from bnn2fpga.units.swu import hls_process_phased  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "hls_rate.json"
DESIGNS = ("cnv_w1a1_bnn_pynq_folding", "lfc_w1a1_auto_30000fps")


def old_process(unit: Unit, frames: int) -> HlsProcess:
    """The units as before issue 14: the sliding window phase by phase, one call a frame."""
    if unit.kind == "swu":
        return hls_process_phased(unit.params, frames)
    return unit_process(unit, frames)


def conv_vector_fifos(plan: Plan) -> dict[str, int]:
    """Beats of the plan's FIFO of one input vector between a conv's window and its MVTU
    (``plan.input_fifo_depth``), per stream."""
    swus = {u.name for u in plan.units if u.kind == "swu"}
    return {u.inp: plan.stream(u.inp).depth for u in plan.units
            if u.kind == "mvtu" and plan.stream(u.inp).producer in swus
            and plan.stream(u.inp).depth}


def window_fifos(plan: Plan) -> dict[str, int]:
    """Beats of the plan's FIFO in front of each sliding window a unit feeds
    (``plan.window_fifo_depth``; the producer's own FIFO, where it merged, left out)."""
    out = {}
    for u in plan.units:
        s = plan.stream(u.inp)
        if u.kind == "swu" and not fed_by_input(plan, s):
            out[s.name] = s.depth - (0 if plan.unit(u.layer, "dwc") else FIFO_DEPTH)
    return out


def fifo_bits(plan: Plan, beats: dict[str, int]) -> int:
    """Bits of FIFOs of ``beats`` on the named streams (the tap-valid flag included)."""
    return int(sum((plan.stream(k).width + plan.stream(k).tap_valid) * d
                   for k, d in beats.items()))


def variants(plan: Plan) -> dict[str, tuple[dict, int]]:
    """name -> (simulate() keywords, FIFO bits added) of each modelled HLS project."""
    flat = {s.name: HLS_MIN_DEPTH for s in plan.streams}
    conv, win = conv_vector_fifos(plan), window_fifos(plan)
    no_win = {k: plan.stream(k).depth - d for k, d in win.items()}
    no_conv_fifos = {**{name: HLS_MIN_DEPTH for name in conv},
                     **{k: max(HLS_MIN_DEPTH, d) for k, d in no_win.items()}}
    shorter = {u.inp: -(u.params["IW"] * u.params["C"] // u.params["SIMD"])
               for u in plan.units if u.inp in win}
    bits_conv, bits_win = fifo_bits(plan, conv), fifo_bits(plan, win)
    return {"issue": ({"process_of": old_process, "depths": flat}, 0),
            "before": ({"process_of": old_process, "depths": no_conv_fifos}, 0),
            "batch, no conv FIFOs": ({"depths": no_conv_fifos}, 0),
            "axilite (batch)": ({}, bits_conv + bits_win),
            "ap_ctrl_none (1 call/frame)": ({"restart": CALL_RESTART}, bits_conv + bits_win),
            "  no window FIFOs": ({"restart": CALL_RESTART,
                                   "depths": {k: max(HLS_MIN_DEPTH, d)
                                              for k, d in no_win.items()}}, bits_conv),
            "  window FIFOs a row less": ({"restart": CALL_RESTART, "extra_depth": shorter},
                                          bits_conv + bits_win + fifo_bits(plan, shorter))}


def model_row(plan: Plan, frames: int, sim: dict) -> dict:
    rows = {}
    for name, (kw, bits) in variants(plan).items():
        t0 = time.time()
        s = hls_simulate(plan, frames, **kw)
        interval, latency = s.cycles_per_frame, s.first_frame_latency_cycles
        v_i, v_l = sim["steady_state_cycles_per_frame"], sim["first_frame_latency_cycles"]
        rows[name] = {"cycles_per_frame": interval, "first_frame_latency_cycles": latency,
                      "interval_error_pct": round(100 * (interval - v_i) / v_i, 3),
                      "latency_error_pct": round(100 * (latency - v_l) / v_l, 3),
                      "model_seconds": round(time.time() - t0, 2),
                      "fifo_bits_added": bits}
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--work", type=Path, default=Path("/tmp/bnn2fpga_hls_rate"))
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    graphs = cnv_graphs(np.random.default_rng(0))
    results = {}
    print(f"{'design':<27} {'HLS project':<27} {'cycles/frame':>12} {'Verilator':>10} "
          f"{'err':>8} | {'latency':>9} {'Verilator':>10} {'err':>8} | {'FIFO bits':>9}")
    for name in DESIGNS:
        graph, codes = graphs[name]
        print(f"{name}: Verilator, {args.frames} frames ...", file=sys.stderr)
        sim = simulate(name, graph, codes, args.frames, args.work)
        plan = build_plan(graph, name)
        rows = model_row(plan, args.frames, sim)
        results[name] = {"verilator": sim, "hls_model": rows,
                         "folding": {n.name: [n.pe, n.simd] for n in graph.matvec_nodes()}}
        for variant, r in rows.items():
            print(f"{name:<27} {variant:<27} {r['cycles_per_frame']:>12,.1f} "
                  f"{sim['steady_state_cycles_per_frame']:>10,.1f} "
                  f"{r['interval_error_pct']:>+7.2f}% | {r['first_frame_latency_cycles']:>9,} "
                  f"{sim['first_frame_latency_cycles']:>10,} {r['latency_error_pct']:>+7.2f}% | "
                  f"{r['fifo_bits_added']:>+9,}")
    RESULTS.write_text(json.dumps({"clock_ns": CLOCK, "frames": args.frames,
                                   "designs": results}, indent=1) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
