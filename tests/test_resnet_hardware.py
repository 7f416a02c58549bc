"""The trained Larq ResNet (zoo.train_larq_resnet: float stem, binary 3x3 convs on real
shortcuts, AvgPool2D + concat and float 1x1-conv shortcuts, RSign, RPReLU/PReLU, global
average pool, float Dense) all the way to hardware: compiled with calibration, planned with
both writers, and reference == Verilator (also under random stalls) == HLS C-sim bit for bit
on digits frames; the RTL at the cycle model's bottleneck, the HLS dataflow model at the
RTL's rate; the folding search on the DAG."""

from __future__ import annotations

import numpy as np
import pytest

from bnn2fpga import folding, reference
from bnn2fpga.backends import CompileOptions, hls, rtl
from bnn2fpga.compile import compile_model
from bnn2fpga.estimate import hls_schedule
from bnn2fpga.plan import build_plan

pytestmark = pytest.mark.slow

SCALE, BITS, FRAMES, TOP = 0.0625, 5, 40, "resnet_hw"


@pytest.fixture(scope="module")
def model(digits):
    from bnn2fpga.zoo import train_larq_resnet

    return train_larq_resnet(data=digits)


@pytest.fixture(scope="module")
def graph(model, digits):
    return compile_model(model, input_scale=SCALE, input_bits=BITS,
                         calibration=digits.x_train)


@pytest.fixture(scope="module")
def project(graph, digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("resnet_hw")
    plan = build_plan(graph, TOP)
    rtl.write_project(graph, out / "rtl", CompileOptions(top=TOP), plan)
    (out / "hls").mkdir()
    hls.write_project(graph, out / "hls", CompileOptions(top=TOP), plan)
    codes = reference.quantize_input(graph.input, digits.x_test[:FRAMES])
    return out, plan, codes, reference.execute(graph, codes)[graph.output.name]


@pytest.fixture(scope="module")
def rtl_runs(graph, project, tmp_path_factory):
    from bnn2fpga.sim.rtl import simulate_many

    out, _, codes, _ = project
    cache = tmp_path_factory.mktemp("resnet_hw_cache")
    return {stall: simulate_many([(out, graph, codes)], cache, stall_prob=stall, seed=7,
                                 name="resnet_sim")[0]
            for stall in (0.0, 0.3)}


def test_every_layer_has_units_in_the_plan(graph, project):
    _, plan, _, _ = project
    kinds = {u.kind for u in plan.units}
    assert {"swu", "mvtu", "affine", "threshold", "avgpool", "fork", "add",
            "concat"} <= kinds
    for node in graph.nodes[1:]:
        assert plan.layer_units(node.name), node.name
    # the windowed AvgPool2D shortcut: a sliding window and the summing reducer
    assert plan.unit("b2_pool", "swu") and plan.unit("b2_pool", "avgpool")
    assert any(s.skip for s in plan.streams)


@pytest.mark.parametrize("stall", [0.0, 0.3])
def test_rtl_equals_the_reference_on_digits(rtl_runs, project, stall):
    want = project[3]
    assert np.array_equal(rtl_runs[stall].codes, want)


def test_rtl_runs_at_the_bottleneck_and_the_hls_model_at_its_rate(graph, project, rtl_runs):
    _, plan, _, _ = project
    interval = rtl_runs[0.0].summary["steady_state_cycles_per_frame"]
    assert interval == folding.bottleneck(graph)[1]
    batch = hls_schedule.simulate(plan, 6).cycles_per_frame
    assert abs(batch - interval) <= 0.01 * interval, (batch, interval)
    per_frame = hls_schedule.hls_cycles(graph, plan)["cycles_per_frame"]
    assert abs(per_frame - interval) <= 0.01 * interval, (per_frame, interval)


def test_hls_csim_equals_the_reference_on_digits(graph, project, tmp_path_factory):
    from bnn2fpga.sim import csim

    out, _, codes, want = project
    (res,) = csim.simulate_many([(out, graph, codes)],
                                cache_dir=tmp_path_factory.mktemp("resnet_hw_csim"))
    assert np.array_equal(res.codes, want)


@pytest.mark.parametrize("fps", [20_000, 50_000])
def test_folding_search_on_the_resnet(graph, fps):
    from bnn2fpga.folding_search import apply_folding, budget_for, choose_folding

    fold = choose_folding(graph, target_fps=fps, clock_ns=10.0, part="xc7z020clg400-1")
    assert set(fold) == {n.name for n in graph.matvec_nodes()}
    folded = apply_folding(graph, fold)
    assert folding.bottleneck(folded)[1] <= budget_for(fps, 10.0)
    build_plan(folded)   # plans (and sizes its skip FIFOs) at the chosen folding


def test_unreachable_target_names_a_unit_no_folding_speeds_up(graph):
    from bnn2fpga.folding_search import choose_folding
    from bnn2fpga.ir import IRError

    with pytest.raises(IRError, match="b1_bn|b1_add|b1_rprelu|stem_bn|b1_rsign"):
        choose_folding(graph, target_fps=200_000, clock_ns=10.0, part="xc7z020clg400-1")


def test_cli_compile_simulate_report(model, digits, tmp_path):
    """compile (the .h5, --calibration, --target-fps), simulate --engine rtl under stalls,
    report: end to end from the command line."""
    import json

    from bnn2fpga.cli import main

    h5, xcal, x = tmp_path / "resnet.h5", tmp_path / "cal.npy", tmp_path / "x.npy"
    model.save(h5)
    np.save(xcal, digits.x_train)
    np.save(x, digits.x_test[:12])
    out = tmp_path / "out"
    assert main(["compile", str(h5), "-o", str(out), "--input-scale", str(SCALE),
                 "--input-bits", str(BITS), "--calibration", str(xcal),
                 "--target-fps", "50000"]) == 0
    assert (out / "hls").is_dir() and (out / "rtl").is_dir()
    plan = json.loads((out / "plan.json").read_text())
    assert any(u["kind"] == "avgpool" and u["layer"] == "b2_pool" for u in plan["units"])
    y_rtl, y_ref = tmp_path / "y_rtl.npy", tmp_path / "y_ref.npy"
    assert main(["simulate", str(out), "--input", str(x), "--output", str(y_rtl),
                 "--engine", "rtl", "--stall-prob", "0.3"]) == 0
    assert main(["simulate", str(out), "--input", str(x), "--output", str(y_ref)]) == 0
    assert np.array_equal(np.load(y_rtl), np.load(y_ref))
    assert main(["report", str(out)]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["interval_cycles"] <= 2000 and rep["fits"]
    assert rep["measured"]["rtl_sim"]["frames"] == 12
    skips = {f["stream"]: f["depth"] for f in rep["skip_fifos"]}
    assert skips and skips == {s["name"]: s["depth"] for s in plan["streams"]
                               if s.get("skip_fifo")}
    html = (out / "report.html").read_text()
    assert 'id="skip-fifos"' in html and all(name in html for name in skips)


def test_resnet_design_lints_clean(project):
    from bnn2fpga.sim import verilator as vl

    out = project[0] / "rtl"
    sources = (out / "filelist.f").read_text().split()
    assert "%Warning" not in vl.lint([out / s for s in sources], TOP, out)
