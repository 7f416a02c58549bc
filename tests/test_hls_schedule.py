"""The HLS project's modelled rate on the full-size designs (estimate.hls_schedule), as
generated in both control modes: FINN CNV-W1A1 at BNN-PYNQ's folding and LFC-W1A1 folded
for 30,000 FPS.  Verilator runs these designs at exactly their folding's bottleneck
(bench/hls_rate.py, bench/results/hls_rate.json: 32,768 and 2,560 cycles per frame), so
the model is held to the bottleneck here, without Verilator."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from bnn2fpga import folding
from bnn2fpga.estimate.hls_schedule import CALL_RESTART, hls_cycles, simulate
from bnn2fpga.plan import build_plan

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))


@pytest.fixture(scope="module")
def designs():
    from estimate_accuracy import cnv_graphs

    graphs = cnv_graphs(np.random.default_rng(0))
    return {n: graphs[n][0] for n in ("cnv_w1a1_bnn_pynq_folding", "lfc_w1a1_auto_30000fps")}


@pytest.mark.parametrize("name", ["cnv_w1a1_bnn_pynq_folding", "lfc_w1a1_auto_30000fps"])
def test_generated_project_runs_at_the_bottleneck_in_both_modes(designs, name):
    graph = designs[name]
    bottleneck = folding.bottleneck(graph)[1]
    c = hls_cycles(graph, control="axilite")
    assert c["batch_cycles_per_frame"] == bottleneck
    assert bottleneck <= c["cycles_per_frame"] <= 1.01 * bottleneck
    assert hls_cycles(graph)["cycles_per_frame"] == c["cycles_per_frame"]


def test_window_fifos_keep_one_call_per_frame_at_the_rate(designs):
    """Without the FIFOs in front of CNV's windows (plan.window_fifo_depth) one call per
    frame runs 12% slower; with them within 0.1%."""
    graph = designs["cnv_w1a1_bnn_pynq_folding"]
    plan = build_plan(graph)
    swus = {u.name for u in plan.units if u.kind == "swu"}
    fifos = {s.name: s.depth for s in plan.streams if s.consumer in swus and s.depth}
    assert len(fifos) == 7
    with_ = simulate(plan, restart=CALL_RESTART).cycles_per_frame
    # the producer's own 2-beat FIFO stays where there is no width converter
    without = simulate(plan, restart=CALL_RESTART,
                       depths={k: 2 for k in fifos}).cycles_per_frame
    assert with_ <= 1.001 * 32768 and without > 1.1 * 32768
