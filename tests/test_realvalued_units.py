"""The single-input real-valued units (fixed_affine, threshold, multi-bit MVTU, average
pool) in chains built directly in the hardware IR (tests/realvalued_cases.py): reference ==
Verilator (with and without random stalls) == HLS C-sim, bit for bit; the cycle model
(interval and first-frame latency) exact against Verilator; the HLS dataflow model at the
RTL's rate; every generated design lint clean; saturation exercised."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from bnn2fpga import fixed, folding, reference, testing
from bnn2fpga.backends import CompileOptions
from bnn2fpga.backends import hls as hls_backend
from bnn2fpga.backends import rtl as rtl_backend
from bnn2fpga.sim import csim
from bnn2fpga.sim import verilator as vl
from bnn2fpga.sim.rtl import simulate_many

sys.path.insert(0, str(Path(__file__).parent))
import realvalued_cases  # noqa: E402

pytestmark = pytest.mark.slow

FRAMES = 6
CASES = realvalued_cases.cases()


@pytest.fixture(scope="module")
def designs(tmp_path_factory):
    base = tmp_path_factory.mktemp("realvalued")
    rng = np.random.default_rng(11)
    out = []
    for name, graph in CASES.items():
        rtl_backend.write_project(graph, base / name / "rtl", CompileOptions(top=f"r_{name}"))
        (base / name / "hls").mkdir(parents=True)
        hls_backend.write_project(graph, base / name / "hls", CompileOptions(top=f"h_{name}"))
        out.append((name, base / name, graph, testing.random_input_codes(rng, graph, FRAMES)))
    return out


@pytest.fixture(scope="module")
def rtl_runs(designs, tmp_path_factory):
    cache = tmp_path_factory.mktemp("realvalued_cache")
    jobs = [(proj, g, codes) for _, proj, g, codes in designs]
    return {stall: simulate_many(jobs, cache, stall_prob=stall, seed=5, name="realvalued")
            for stall in (0.0, 0.3)}


def test_cases_saturate_somewhere():
    """At least one affine of the cases clips some of its outputs (the saturation path)."""
    clipped = 0
    rng = np.random.default_rng(1)
    for graph in CASES.values():
        sat = fixed.Saturation()
        reference.execute(graph, testing.random_input_codes(rng, graph, FRAMES), sat)
        clipped += sum(sat.counts.values())
    assert clipped > 0


@pytest.mark.parametrize("stall", [0.0, 0.3])
def test_rtl_equals_reference(designs, rtl_runs, stall):
    bad = [name for (name, _, g, codes), r in zip(designs, rtl_runs[stall], strict=True)
           if not np.array_equal(r.codes, reference.execute(g, codes)[g.output.name])]
    assert not bad, f"RTL differs from the reference (stall {stall}): {bad}"


def test_rtl_cycles_match_the_model(designs, rtl_runs):
    from bnn2fpga.estimate import pixel_schedule

    off = []
    for (name, _, g, _), r in zip(designs, rtl_runs[0.0], strict=True):
        interval = r.summary["steady_state_cycles_per_frame"]
        if abs(interval - folding.bottleneck(g)[1]) > 0.5:
            off.append(f"{name}: interval {interval} vs {folding.bottleneck(g)[1]}")
        lat, est = r.summary["first_frame_latency_cycles"], pixel_schedule(g)[g.output.name][-1]
        if lat != est:
            off.append(f"{name}: latency {lat} vs {est}")
    assert not off, "; ".join(off)


def test_hls_model_runs_at_the_rtl_rate(designs, rtl_runs):
    """Every design, those with a "shift" width converter included (hls/dwc.h's shift loop
    reads and writes in one iteration, as bnn_dwc_shift does)."""
    from bnn2fpga.estimate.hls_schedule import simulate
    from bnn2fpga.plan import build_plan
    from bnn2fpga.units.dwc import dwc_kind

    off, checked, shifts = [], 0, 0
    for (name, _, g, _), r in zip(designs, rtl_runs[0.0], strict=True):
        plan = build_plan(g)
        shifts += any(u.kind == "dwc" and dwc_kind(u.params["IWB"], u.params["OWB"])
                      == "shift" for u in plan.units)
        checked += 1
        sched = simulate(plan, FRAMES)
        interval = r.summary["steady_state_cycles_per_frame"]
        if abs(sched.cycles_per_frame - interval) > 0.01 * interval:
            off.append(f"{name}: HLS {sched.cycles_per_frame} vs RTL {interval}")
    assert checked >= 3 and shifts >= 1 and not off, "; ".join(off)


def test_generated_designs_lint_clean(designs):
    for name, proj, _, _ in designs:
        rtl = proj / "rtl"
        sources = (rtl / "filelist.f").read_text().split()
        out = vl.lint([rtl / s for s in sources], f"r_{name}", rtl)
        assert "%Warning" not in out, f"{name}:\n{out}"


def test_csim_equals_reference(designs, tmp_path_factory):
    jobs = [(proj, g, codes) for _, proj, g, codes in designs]
    results = csim.simulate_many(jobs, cache_dir=tmp_path_factory.mktemp("rv_csim"))
    bad = [name for (name, _, g, codes), r in zip(designs, results, strict=True)
           if not np.array_equal(r.codes, reference.execute(g, codes)[g.output.name])]
    assert not bad, f"C-sim differs from the reference: {bad}"
