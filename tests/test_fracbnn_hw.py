"""FracBNN hardware (issue 13): the thermometer unit and the two-pass precision-gated unit,
on hardware-IR graphs built directly (uint 8 pixels -> ThermometerEncode -> binary conv with
3 thresholds -> PGConv2D layers -> binary dense with an output affine).

* reference == HLS C-sim == Verilator, bit for bit, also under random stalls, with random
  gate patterns (gate thresholds for several densities), padding same/valid, strides 1/2,
  odd channels, several PE/SIMD foldings, thresholds and accumulator outputs;
* the skipping is real in RTL: one PG layer as the bottleneck with gates for about 0%, 50%
  and 100% of groups on runs at the cycle model's expected figure (ops.pgconv2d.cycles, at
  the density measured on the frames of the interval) within 2%, and its first-frame
  latency with every gate off is below the one with every gate on;
* the HLS process model (units.pg_mvtu.hls_process) at those densities agrees too."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bnn2fpga import folding, reference
from bnn2fpga import testing_fracbnn as F
from bnn2fpga.backends import CompileOptions
from bnn2fpga.backends import hls as hls_backend
from bnn2fpga.backends import rtl as rtl_backend
from bnn2fpga.estimate import hls_schedule
from bnn2fpga.ir import Graph
from bnn2fpga.ops import pgconv2d as pg
from bnn2fpga.plan import build_plan
from bnn2fpga.sim import csim
from bnn2fpga.sim import verilator as vl
from bnn2fpga.sim.rtl import simulate_many

pytestmark = pytest.mark.slow

FRAMES = 4
STALL = 0.3


def _cases() -> list[tuple[str, Graph, dict[str, float]]]:
    """(name, graph, target gate density per PG layer)."""
    rng = np.random.default_rng
    return [
        ("chain_same_valid_s2", F.fracbnn_chain(
            rng(1), pgs=(dict(out_ch=6, pe=2, simd=4),
                         dict(out_ch=5, pe=1, simd=2, stride=2, padding="valid", nt=1))),
         {"pg1": 0.5, "pg2": 0.3}),
        ("chain_same_s2_acc", F.fracbnn_chain(
            rng(2), h=7, w=5, first=(6, 3, 8),
            pgs=(dict(out_ch=3, pe=3, simd=6, stride=2),
                 dict(out_ch=4, pe=2, simd=1, padding="valid", nt=0)), dense=None),
         {"pg1": 0.6, "pg2": 0.25}),
        ("chain_odd_full_fold", F.fracbnn_chain(
            rng(3), h=5, w=5, levels=4, first=(5, 5, 12),
            pgs=(dict(out_ch=7, pe=7, simd=5),
                 dict(out_ch=3, pe=1, simd=7, k=1, nt=3),
                 dict(out_ch=4, pe=4, simd=3, stride=2, nt=1)), dense=(3, 3, 1)),
         {"pg1": 0.8, "pg2": 0.5, "pg3": 0.1}),
        ("chain_all_on_all_off", F.fracbnn_chain(
            rng(4), h=4, w=6, pgs=(dict(out_ch=4, pe=2, simd=2),
                                   dict(out_ch=4, pe=1, simd=4, nt=1))),
         {"pg1": 1.0, "pg2": 0.0}),
    ]


@pytest.fixture(scope="module")
def designs(tmp_path_factory) -> list[tuple[str, Path, Graph, np.ndarray]]:
    base = tmp_path_factory.mktemp("fracbnn_hw")
    out = []
    for i, (name, g, targets) in enumerate(_cases()):
        codes = F.random_pixels(np.random.default_rng(50 + i), g, FRAMES)
        for layer, target in targets.items():
            F.set_gate_density(g, g[layer], codes, target)
        F.measure_densities(g, codes)
        rtl_backend.write_project(g, base / name / "rtl", CompileOptions(top=f"f_{name}"))
        hls_backend.write_project(g, base / name / "hls", CompileOptions(top=f"f_{name}"))
        out.append((name, base / name, g, codes))
    return out


@pytest.fixture(scope="module")
def rtl_runs(designs, tmp_path_factory) -> dict[float, list]:
    cache = tmp_path_factory.mktemp("fracbnn_hw_cache")
    jobs = [(proj, g, codes) for _, proj, g, codes in designs]
    return {s: simulate_many(jobs, cache, stall_prob=s, seed=5) for s in (0.0, STALL)}


def test_gate_patterns_are_mixed(designs):
    """The cases exercise groups gated on and off (not only the extremes)."""
    densities = [n.gate_density for _, _, g, _ in designs for n in F.pg_nodes(g)]
    assert min(densities) == 0.0 and max(densities) == 1.0
    assert sum(0.05 < d < 0.95 for d in densities) >= 5, densities


@pytest.mark.parametrize("stall", [0.0, STALL])
def test_rtl_equals_reference(designs, rtl_runs, stall):
    bad = []
    for (name, _, g, codes), res in zip(designs, rtl_runs[stall], strict=True):
        want = reference.execute(g, codes)[g.output.name]
        if res.codes.shape != want.shape or not np.array_equal(res.codes, want):
            bad.append(name)
    assert not bad, f"RTL differs from the reference (stall {stall}): {bad}"


def test_hls_csim_equals_reference(designs, tmp_path):
    jobs = [(proj, g, codes) for _, proj, g, codes in designs]
    results = csim.simulate_many(jobs, cache_dir=tmp_path / "csim")
    bad = [name for (name, _, g, codes), r in zip(designs, results, strict=True)
           if not np.array_equal(r.codes, reference.execute(g, codes)[g.output.name])]
    assert not bad, bad


def test_generated_designs_lint_clean(designs):
    for name, proj, _, _ in designs:
        rtl = proj / "rtl"
        sources = (rtl / "filelist.f").read_text().split()
        out = vl.lint([rtl / s for s in sources], f"f_{name}", rtl)
        assert "%Warning" not in out, f"{name}:\n{out}"


def test_input_stream_carries_bytes(designs):
    """The thermometer is on chip: the top's input beat is one pixel of 3 bytes."""
    for _, _, g, _ in designs:
        s = build_plan(g).input_stream
        assert (s.lanes, s.bits) == (3, 8)


# ---- skipping, measured ---------------------------------------------------------------

GATE_FRAMES = 6
TARGETS = (0.0, 0.5, 1.0)


def _bottleneck_chain(seed: int) -> Graph:
    """A PG layer (PE 1, SIMD 1) far slower than everything around it."""
    return F.fracbnn_chain(np.random.default_rng(seed), h=6, w=6, levels=8,
                           first=(4, 4, 24), pgs=(dict(out_ch=4, pe=1, simd=1, nt=1),),
                           dense=(3, 3, 48), name="pg_bottleneck")


@pytest.fixture(scope="module")
def gate_sweep(tmp_path_factory):
    base = tmp_path_factory.mktemp("fracbnn_gates")
    jobs, graphs = [], []
    for i, target in enumerate(TARGETS):
        g = _bottleneck_chain(7)
        g.name = f"pg_gate_{i}"
        codes = F.random_pixels(np.random.default_rng(9), g, GATE_FRAMES)
        F.set_gate_density(g, g["pg1"], codes, target)
        rtl_backend.write_project(g, base / g.name / "rtl", CompileOptions(top=f"g_{i}"))
        jobs.append((base / g.name, g, codes))
        graphs.append((g, codes))
    return graphs, simulate_many(jobs, base / "cache", stall_prob=0.0)


def test_cycles_fall_with_gate_density_and_match_the_model(gate_sweep):
    graphs, results = gate_sweep
    h = GATE_FRAMES // 2       # sim.rtl.cycle_summary's interval: frames h+1 .. end
    seen = []
    for (g, codes), res in zip(graphs, results, strict=True):
        assert np.array_equal(res.codes, reference.execute(g, codes)[g.output.name])
        node = g["pg1"]
        node.gate_density = F.measured_density(g, node, codes[h + 1:])
        in_shape = g.producer(node).out.shape
        model = folding.unit_cycles(node, in_shape)
        assert folding.bottleneck(g)[0] == "pg1"
        measured = res.summary["steady_state_cycles_per_frame"]
        assert abs(measured - model.expected) <= 0.02 * model.expected, \
            (node.gate_density, measured, model)
        assert model.worst == pg.pg_cycles(node, pg.groups(node))
        seen.append((node.gate_density, measured, res.summary["first_frame_latency_cycles"]))
    (d0, c0, l0), (d5, c5, _), (d1, c1, l1) = seen
    assert d0 == 0.0 and d1 == 1.0 and 0.4 <= d5 <= 0.6
    assert c0 < c5 < c1
    assert l0 < l1


def test_hls_process_model_follows_the_density(gate_sweep):
    """The dataflow schedule of the HLS project (each unit's hls_process; the PG unit's
    while loop takes SF per MSB pass and SF per LSB pass) gives the expected figure."""
    graphs, _ = gate_sweep
    for g, codes in graphs:
        node = g["pg1"]
        node.gate_density = F.measured_density(g, node, codes)
        model = folding.unit_cycles(node, g.producer(node).out.shape).expected
        plan = build_plan(g)
        cycles = hls_schedule.simulate(plan, 4).cycles_per_frame
        assert abs(cycles - model) <= 0.02 * model, (node.gate_density, cycles, model)
