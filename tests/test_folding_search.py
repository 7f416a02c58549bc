"""Automatic folding search and manual folding files."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from bnn2fpga import folding, testing
from bnn2fpga.devices import get_device
from bnn2fpga.estimate import estimate, load_calibration
from bnn2fpga.folding_search import (
    FoldingSearch,
    apply_folding,
    budget_for,
    choose_folding,
    load_folding_file,
    max_fps,
    objective_cost,
)
from bnn2fpga.ir import IRError

PART, CLOCK = "xc7z020clg400-1", 10.0


@pytest.fixture(scope="module")
def cnn():
    return testing.random_cnn_graph(np.random.default_rng(0))


def _check_legal(graph, fold):
    for node in graph.matvec_nodes():
        assert folding.folding_error(node, *fold[node.name]) is None


@pytest.mark.parametrize("fps", [2e4, 5e4, 1e5, 1.7e5])
def test_choose_folding_meets_the_target(cnn, fps):
    fold = choose_folding(cnn, target_fps=fps, clock_ns=CLOCK, part=PART)
    assert set(fold) == {n.name for n in cnn.matvec_nodes()}
    _check_legal(cnn, fold)
    folded = apply_folding(cnn, fold)
    assert folding.bottleneck(folded)[1] <= budget_for(fps, CLOCK)
    assert estimate(folded, part=PART, clock_ns=CLOCK).fps >= fps


@pytest.mark.parametrize("objective", ["balanced", "lut"])
def test_search_is_the_exact_minimum_over_all_foldings(cnn, objective):
    """Brute force over every legal (PE, SIMD) of every layer, each design estimated whole
    (width converters included)."""
    dev = get_device(PART)
    search = FoldingSearch(cnn, dev, PART, CLOCK, load_calibration(), objective)
    budget = budget_for(1e5, CLOCK)
    layers = cnn.matvec_nodes()
    table = [[(o.pe, o.simd) for o in search.options[n.name] if o.cycles <= budget]
             for n in layers]

    def cost(fold):
        design = search.design(fold)
        if design.expected_interval_cycles > budget:     # serialises: too slow
            return float("inf")
        return objective_cost(design.resources, dev, objective)

    best = min(cost({n.name: f for n, f in zip(layers, combo, strict=True)})
               for combo in itertools.product(*table))
    assert best < float("inf")
    fold = choose_folding(cnn, target_fps=1e5, clock_ns=CLOCK, part=PART, objective=objective)
    assert cost(fold) == pytest.approx(best, rel=1e-9)


def test_width_converters_are_part_of_the_objective():
    """Two dense layers back to back: the search avoids a costly width converter that a
    per-layer choice would create."""
    rng = np.random.default_rng(5)
    g = testing.random_dense_graph(rng, fan_in=64, out_ch=64)
    g2 = testing.random_dense_graph(rng, fan_in=64, out_ch=16)
    second = g2.nodes[1]
    second.name, second.inputs = "dense2", ["dense"]
    g.nodes.append(second)
    dev = get_device(PART)
    search = FoldingSearch(g, dev, PART, CLOCK, load_calibration(), "lut")
    def cost(fold, budget):
        design = search.design(fold)
        if design.expected_interval_cycles > budget:
            return float("inf")
        return objective_cost(design.resources, dev, "lut")

    for budget in (64, 256, 1024):
        fold = search.solve(budget)
        brute = min(cost({"dense": (a.pe, a.simd), "dense2": (b.pe, b.simd)}, budget)
                    for a in search.options["dense"] if a.cycles <= budget
                    for b in search.options["dense2"] if b.cycles <= budget)
        assert cost(fold, budget) == pytest.approx(brute, rel=1e-9)


def test_search_avoids_serialisation():
    """CNV's fc0 -> fc1 at 3,000 FPS: the folding-only choice would serialise to half the
    rate; the search picks foldings whose expected interval meets the target."""
    rng = np.random.default_rng(6)
    g = testing.random_dense_graph(rng, fan_in=256, out_ch=512)
    nxt = testing.random_dense_graph(rng, fan_in=512, out_ch=512).nodes[1]
    nxt.name, nxt.inputs = "dense2", ["dense"]
    g.nodes.append(nxt)
    fold = choose_folding(g, target_fps=3000, clock_ns=CLOCK, part=PART)
    design = estimate(apply_folding(g, fold), part=PART, clock_ns=CLOCK)
    assert design.expected_interval_cycles <= budget_for(3000, CLOCK)
    assert design.fps >= 3000


def test_unreachable_target_names_the_limiting_layer_and_the_max(cnn):
    with pytest.raises(IRError) as e:
        choose_folding(cnn, target_fps=1e9, clock_ns=CLOCK, part=PART)
    msg = str(e.value)
    assert "no folding exceeds" in msg and "FPS" in msg
    assert "'conv'" in msg or "'pool'" in msg


def test_too_big_for_the_device_says_what_fits():
    big = testing.random_dense_graph(np.random.default_rng(1), fan_in=1024, out_ch=1024)
    with pytest.raises(IRError) as e:
        choose_folding(big, target_fps=1e6, clock_ns=CLOCK, part="xc7z010")
    msg = str(e.value)
    assert "does not fit xc7z010" in msg and "the most that fits is" in msg
    fps, fold = max_fps(big, clock_ns=CLOCK, part="xc7z010")
    folded = apply_folding(big, fold)
    assert estimate(folded, part="xc7z010", clock_ns=CLOCK).resources.fits(
        get_device("xc7z010"))
    assert fps < 1e6
    # the reported maximum is reachable
    choose_folding(big, target_fps=fps, clock_ns=CLOCK, part="xc7z010")


def test_bad_arguments():
    g = testing.random_dense_graph(np.random.default_rng(2))
    with pytest.raises(IRError, match="positive"):
        choose_folding(g, target_fps=0, clock_ns=CLOCK, part=PART)
    with pytest.raises(IRError, match="unknown FPGA part"):
        choose_folding(g, target_fps=10, clock_ns=CLOCK, part="ep4ce22")
    with pytest.raises(IRError, match="objective"):
        choose_folding(g, target_fps=10, clock_ns=CLOCK, part=PART, objective="speed")


def test_pareto_front_is_sorted_and_undominated(cnn):
    search = FoldingSearch(cnn, get_device(PART), PART, CLOCK, load_calibration())
    for opts in search.front.values():
        cycles = [o.cycles for o in opts]
        costs = [o.cost for o in opts]
        assert cycles == sorted(cycles) and costs == sorted(costs, reverse=True)


# ---- manual folding files -------------------------------------------------------------


def _write(tmp_path, data, raw=None):
    path = tmp_path / "folding.json"
    path.write_text(raw if raw is not None else json.dumps(data))
    return path


def test_load_folding_file(cnn, tmp_path):
    path = _write(tmp_path, {"conv": {"pe": 3, "simd": 1}, "dense": {"simd": 4}})
    fold = load_folding_file(path, cnn)
    assert fold["conv"] == (3, 1)
    assert fold["dense"] == (cnn["dense"].pe, 4)      # a missing key keeps the graph's
    assert fold["conv2"] == (cnn["conv2"].pe, cnn["conv2"].simd)


@pytest.mark.parametrize("data, raw, match", [
    (None, '{"conv": {"pe": 2,}', r"not valid JSON: .* line 1, column"),
    ([1, 2], None, "must hold a JSON object"),
    ({"cnv": {"pe": 1}}, None, r"unknown layer 'cnv' \(did you mean 'conv'\?\)"),
    ({"pool": {"pe": 1}}, None, "'pool' is a maxpool2d node, which has no PE/SIMD"),
    ({"conv": {"pe": 4}}, None,
     r"PE=4 does not divide out_channels=6 \(valid PE: \[1, 2, 3, 6\]\)"),
    ({"conv2": {"simd": 4}}, None, r"SIMD=4 does not divide input channels=6"),
    ({"conv": {"pe": "2"}}, None, "pe must be a positive integer"),
    ({"conv": {"pe": 2, "lanes": 3}}, None, "expected"),
    ({"conv": 2}, None, "expected"),
])
def test_folding_file_errors(cnn, tmp_path, data, raw, match):
    with pytest.raises(IRError, match=match):
        load_folding_file(_write(tmp_path, data, raw), cnn)


def test_missing_folding_file(cnn, tmp_path):
    with pytest.raises(IRError, match="cannot read folding file"):
        load_folding_file(tmp_path / "nope.json", cnn)
