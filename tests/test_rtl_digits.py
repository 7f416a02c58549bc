"""The trained digits models (QKeras MLP, Larq CNN, QKeras CNN with its majority pool)
compiled to RTL: Verilator output == reference on real digits inputs, with and without
random stalls, steady-state interval within 5% of folding.bottleneck (all models in one
build)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from bnn2fpga import folding, reference
from bnn2fpga.backends import CompileOptions
from bnn2fpga.backends.rtl import write_project
from bnn2fpga.sim import verilator as vl
from bnn2fpga.sim.rtl import simulate_many

pytestmark = pytest.mark.slow

FRAMES = 300


@pytest.fixture(scope="module")
def digits_designs(_mlp_graph, _cnn_graph, _qcnn_graph, digits_all, tmp_path_factory):
    base = tmp_path_factory.mktemp("rtl_digits")
    x = digits_all[:FRAMES]
    designs = []
    for name, graph in (("mlp", copy.deepcopy(_mlp_graph)), ("cnn", copy.deepcopy(_cnn_graph)),
                        ("qcnn", copy.deepcopy(_qcnn_graph))):
        write_project(graph, base / name / "rtl", CompileOptions(top=f"digits_{name}"))
        frames = x.reshape((len(x), *graph.input.out.shape))
        designs.append((base / name, graph, reference.quantize_input(graph.input, frames)))
    return base, designs


@pytest.mark.parametrize("stall", [0.0, 0.25])
def test_digits_models_rtl_equals_reference(digits_designs, stall):
    base, designs = digits_designs
    results = simulate_many(designs, base / ".cache", stall_prob=stall, seed=11,
                            name="digits_multi")
    assert any(n.op == "majoritypool2d" for n in designs[2][1].nodes)
    for (proj, graph, codes), result in zip(designs, results, strict=True):
        want = reference.execute(graph, codes)[graph.output.name]
        assert np.array_equal(result.codes, want), f"{proj.name}: RTL != reference"
        if stall == 0.0:
            _, cycles = folding.bottleneck(graph)
            interval = result.summary["steady_state_cycles_per_frame"]
            assert abs(interval - cycles) <= 0.05 * cycles, (proj.name, interval, cycles)


def test_digits_designs_lint_clean(digits_designs):
    _, designs = digits_designs
    for proj, _, _ in designs:
        rtl = proj / "rtl"
        sources = (rtl / "filelist.f").read_text().split()
        out = vl.lint([rtl / s for s in sources], f"digits_{proj.name}", rtl)
        assert "%Warning" not in out, f"{proj.name}:\n{out}"


def test_digits_hls_model_runs_at_the_rtl_rate(digits_designs):
    """The HLS dataflow model of each trained digits model (estimate.hls_schedule) against
    Verilator on the same plan: steady-state cycles per frame within 1%; first-frame
    latency never below the RTL's less the HLS top's extra stages."""
    from bnn2fpga.estimate.hls_schedule import extra_stages, simulate
    from bnn2fpga.plan import build_plan

    base, designs = digits_designs
    results = simulate_many([(p, g, c[:16]) for p, g, c in designs], base / ".cache",
                            name="digits_multi")
    for (proj, graph, _), result in zip(designs, results, strict=True):
        plan = build_plan(graph)
        sched = simulate(plan, 16)
        interval = result.summary["steady_state_cycles_per_frame"]
        assert abs(sched.cycles_per_frame - interval) <= 0.01 * interval, (
            proj.name, sched.cycles_per_frame, interval)
        latency = result.summary["first_frame_latency_cycles"]
        assert sched.first_frame_latency_cycles >= latency - extra_stages(plan), (
            proj.name, sched.first_frame_latency_cycles, latency)
