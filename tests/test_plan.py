"""The one hardware plan: both writers render exactly it, and compile writes it as
plan.json.  Every test design of the HLS and RTL layer tests is planned, rendered through
both writers, and the generated tops are read back and compared with the plan."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from test_hls_layers import CASES as HLS_CASES
from test_rtl_layers import _cases as rtl_cases

from bnn2fpga import testing
from bnn2fpga.backends import CompileOptions, hls, rtl
from bnn2fpga.ir import Conv2D, Dense, Graph
from bnn2fpga.plan import (
    FIFO_DEPTH,
    PORT_IN,
    PORT_OUT,
    Plan,
    build_plan,
    fed_by_input,
    input_fifo_depth,
    plan_to_json,
    window_fifo_depth,
)
from bnn2fpga.project import PLAN, write_project


def _designs() -> list[tuple[str, Graph]]:
    designs = [(f"hls_{name}", build(np.random.default_rng(seed)))
               for seed, (name, build) in enumerate(HLS_CASES.items())]
    return designs + [(f"rtl_{name}", graph) for name, graph in rtl_cases()]


DESIGNS = _designs()


def rtl_instances(text: str) -> dict[str, tuple[str, dict[str, str]]]:
    """instance name -> (module, parameters) of a generated RTL top."""
    found = {}
    for module, params, name in re.findall(r"^  (bnn_\w+) #\(\n(.*?)\n  \) (\w+) \(", text,
                                           re.S | re.M):
        found[name] = (module, dict(re.findall(r"\.(\w+)\(([^()]*)\)", params)))
    return found


def hls_streams(text: str) -> dict[str, tuple[int, int]]:
    """stream name -> (width, depth) of a generated HLS top."""
    widths = re.findall(r'^  hls::stream<ap_uint<(\d+)> > (\w+)\("\w+"\);', text, re.M)
    depths = dict(re.findall(r"#pragma HLS STREAM variable=(\w+) depth=(\d+)", text))
    return {name: (int(w), int(depths[name])) for w, name in widths}


def check_plan_is_connected(plan: Plan) -> None:
    names = {u.name for u in plan.units}
    for s in plan.streams:
        assert s.producer in names | {PORT_IN} and s.consumer in names | {PORT_OUT}, s
    for u in plan.units:
        assert plan.stream(u.inp).consumer == u.name and plan.stream(u.out).producer == u.name
    assert plan.input_stream.producer == PORT_IN and plan.output_stream.consumer == PORT_OUT


@pytest.mark.parametrize("name, graph", DESIGNS, ids=[n for n, _ in DESIGNS])
def test_both_writers_render_the_plan(tmp_path: Path, name: str, graph: Graph) -> None:
    plan = build_plan(graph, "top")
    check_plan_is_connected(plan)
    rtl.write_project(graph, tmp_path / "rtl", CompileOptions(top="top"), plan)
    hls.write_project(graph, tmp_path / "hls", CompileOptions(top="top"), plan)

    # RTL: every unit and stream FIFO under its plan name, with the plan's parameters
    sv = (tmp_path / "rtl" / "top.sv").read_text()
    found = rtl_instances(sv)
    assert list(found) == [u.name for u in plan.instances()]
    for u in plan.instances():
        module, params = found[u.name]
        assert module == u.module
        assert {k: int(params[k]) for k in u.params} == u.params, u.name
    for s in plan.streams:
        assert f"logic [{s.width - 1}:0] {s.name}_tdata;" in sv

    # HLS: the same units, as functions named as in the plan, called in the plan's order on
    # the plan's streams, which have the plan's widths and FIFO depths
    cpp = (tmp_path / "hls" / "firmware" / "top.cpp").read_text()
    calls = re.findall(r"^  top_units::(\w+)\((\w+), (\w+), 1\);", cpp, re.M)
    assert calls == [(u.name, u.inp, u.out) for u in plan.units]
    for u in plan.units:
        in_w, out_w = hls.hls_width(plan.stream(u.inp)), hls.hls_width(plan.stream(u.out))
        assert re.search(rf"^void {u.name}\(hls::stream<ap_uint<{in_w}> > &in, "
                         rf"hls::stream<ap_uint<{out_w}> > &out, unsigned numReps\)",
                         cpp, re.M), u.name
    streams = hls_streams(cpp)
    assert streams == {s.name: (hls.hls_width(s), max(hls.HLS_MIN_DEPTH, s.depth))
                       for s in plan.streams}

    # the FIFO in front of every sliding window a unit feeds (plan.window_fifo_depth): a
    # bnn_fifo of that depth in the RTL, the stream's depth in HLS
    for u in plan.units:
        if u.kind != "swu":
            continue
        s = plan.stream(u.inp)
        if fed_by_input(plan, s):
            assert s.depth in (0, FIFO_DEPTH), u.name
            continue
        want = window_fifo_depth(u.params) + (0 if plan.unit(u.layer, "dwc") else FIFO_DEPTH)
        assert s.depth == want and s.fifo, (u.name, s.depth, want)
        assert found[s.fifo][0] == "bnn_fifo" and int(found[s.fifo][1]["DEPTH"]) == want
        assert streams[s.name][1] == want


@pytest.mark.parametrize("name, graph", DESIGNS, ids=[n for n, _ in DESIGNS])
def test_dense_mvtus_have_a_whole_input_vector_of_fifo(name: str, graph: Graph) -> None:
    """The HLS MVTU (hls/mvtu.h) reads its input only during neuron fold 0 and replays it
    from its buffer for folds 1..NF-1.  Its producer keeps writing meanwhile because the
    stream in front holds a whole input vector (SF beats) plus the layer FIFO: so the
    producer never waits for the replay, and back-to-back dense layers run at the slower
    one's folded rate instead of the sum (see hls/README.md)."""
    plan = build_plan(graph, "top")
    cpp = hls.plan_design(graph, CompileOptions(top="top"), plan)
    depth = {s["name"]: s["depth"] for s in cpp["streams"]}
    for node in graph.matvec_nodes():
        mvtu = plan.unit(node.name, "mvtu")
        nf, sf = mvtu.params["NF"], mvtu.params["SF"]
        if isinstance(node, Conv2D) or nf == 1:
            continue
        assert input_fifo_depth(node, node.pe, node.simd) == max(2, sf)
        assert depth[mvtu.inp] >= sf, (node.name, depth[mvtu.inp], sf)


def test_plan_json_is_written_and_names_every_unit(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    graph = testing.random_cnn_graph(rng)
    dense = next(n for n in graph.matvec_nodes() if not isinstance(n, Conv2D))
    assert isinstance(dense, Dense)
    write_project(graph, tmp_path / "out", CompileOptions())
    data = json.loads((tmp_path / "out" / PLAN).read_text())
    assert data == plan_to_json(build_plan(graph))
    assert data["format"] == "bnn2fpga-plan"
    widths = {s["name"]: s["width"] for s in data["streams"]}
    for unit in data["units"]:
        assert set(unit) >= {"name", "kind", "params", "input_width", "output_width"}
        assert unit["input_width"] == widths[unit["input"]]
        assert unit["output_width"] == widths[unit["output"]]
    for s in data["streams"]:
        assert set(s) >= {"producer", "consumer", "width", "depth"}
    units = {u["name"] for u in data["units"]}
    assert {s["producer"] for s in data["streams"]} <= units | {PORT_IN}
    # both tops name every unit of plan.json
    sv = (tmp_path / "out" / "rtl" / "bnn_top.sv").read_text()
    cpp = (tmp_path / "out" / "hls" / "firmware" / "bnn_top.cpp").read_text()
    for name in units:
        assert f"  ) {name} (" in sv and f"void {name}(" in cpp


def test_a_pointwise_conv_has_no_sliding_window() -> None:
    """A 1x1 stride-1 unpadded conv's window is the identity: its MVTU reads the pixels
    directly, behind a FIFO of one pixel's SF words (it replays them for its neuron folds);
    a strided 1x1 conv keeps its window (it subsamples)."""
    rng = np.random.default_rng(3)
    pointwise = testing.random_conv_graph(rng, h=4, w=4, c=4, out_ch=6, k=1, pe=3, simd=2)
    plan = build_plan(pointwise)
    assert [u.kind for u in plan.layer_units("conv")] == ["mvtu"]
    mvtu = plan.unit("conv", "mvtu")
    assert plan.stream(mvtu.inp).depth == max(2, mvtu.params["SF"])   # fed by s_axis
    assert not plan.stream(mvtu.inp).tap_valid and mvtu.params["USE_TAP_VALID"] == 0
    strided = testing.random_conv_graph(rng, h=5, w=6, c=4, out_ch=4, k=1, stride=2, pe=4,
                                        simd=4)
    assert [u.kind for u in build_plan(strided).layer_units("conv")] == ["swu", "mvtu"]
