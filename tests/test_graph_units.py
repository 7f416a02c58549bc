"""Graphs with forks and joins (issue 12): the plan on DAGs (fork trees, add and concat
joins, skip FIFOs sized from the schedule), both writers rendering every stream and depth,
and the three engines bit-exact (reference, HLS C-sim, RTL in Verilator, under random
stalls too) at the cycle model's rate."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from bnn2fpga import fixed, folding, reference, testing
from bnn2fpga.backends import CompileOptions, hls, rtl
from bnn2fpga.estimate import estimate, hls_schedule
from bnn2fpga.ir import Add, Concat, Graph, IRError, TensorType
from bnn2fpga.passes import split_wide_joins
from bnn2fpga.plan import PORT_IN, PORT_OUT, Plan, build_plan, plan_to_json

FRAMES = 8


def triple_read_graph(rng: np.random.Generator) -> Graph:
    """A tensor read three times, twice by one join: a tree of two forks, Add(x, x)."""
    g = testing.residual_graph(rng, long_convs=1)
    short = g["short"]
    h, w, c = short.out.shape
    dbl = Add("dbl", ["short", "short"], TensorType.fixed((h, w, c), 8, 0), pe=4)
    out = Add("out", ["dbl", "short"], TensorType.fixed((h, w, c), 5, 1), pe=1)
    return Graph("triple", [g.input, short, dbl, out])


def wide_join_graph(rng: np.random.Generator, join: str) -> Graph:
    """A three-input Add (accumulators of different widths, one round-half-up shift) or
    Concat of three branches, as the frontend gives it; ``split_wide_joins`` makes chains."""
    inp = testing.input_node((5, 5, 2), "uint", 3)
    a = testing._conv(rng, "a", inp, 4, 3, "accumulator", pe=2, simd=2)
    b = testing._conv(rng, "b", inp, 4, 1, "accumulator", pe=4, simd=1)
    c = testing._conv(rng, "c", inp, 2 if join == "concat" else 4, 1, "accumulator",
                      pe=1, simd=2)
    if join == "concat":
        width = max(n.acc_bits for n in (a, b, c))
        for n in (a, b, c):
            n.acc_bits, n.out = width, TensorType(n.out.shape, "int", width)
        out = Concat("cat3", ["a", "b", "c"], TensorType((5, 5, 10), "int", width))
    else:
        out = Add("add3", ["a", "b", "c"], TensorType.fixed((5, 5, 4), 6, 1), pe=2)
    return Graph(f"wide_{join}", [inp, a, b, c, out])


def cases() -> list[tuple[str, Graph]]:
    rng = np.random.default_rng
    return [("add", testing.residual_graph(rng(0))),
            ("add_long", testing.residual_graph(rng(1), long_convs=3, pe=4, add_pe=1,
                                                 out_bits=5, out_frac=0)),
            ("concat", testing.residual_graph(rng(2), join="concat")),
            ("triple", triple_read_graph(rng(3))),
            ("wide_add", split_wide_joins(wide_join_graph(rng(5), "add"))),
            ("wide_concat", split_wide_joins(wide_join_graph(rng(6), "concat")))]


CASES = cases()
IDS = [n for n, _ in CASES]


def check_connected(plan: Plan) -> None:
    names = {u.name for u in plan.units}
    for s in plan.streams:
        assert s.producer in names | {PORT_IN} and s.consumer in names | {PORT_OUT}, s
    for u in plan.units:
        assert all(plan.stream(i).consumer == u.name for i in u.inputs)
        assert all(plan.stream(o).producer == u.name for o in u.outputs)
        assert u.inp == u.inputs[0] and u.out == u.outputs[0]


@pytest.mark.parametrize("name, graph", CASES, ids=IDS)
def test_plan_forks_joins_and_skip_fifos(name: str, graph: Graph) -> None:
    plan = build_plan(graph)
    check_connected(plan)
    reads = {n.name: sum(m.inputs.count(n.name) for m in graph.nodes) for n in graph.nodes}
    forks = [u for u in plan.units if u.kind == "fork"]
    assert len(forks) == sum(r - 1 for r in reads.values() if r > 1)
    for node in graph.nodes:
        if len(node.inputs) > 1:
            (join,) = [u for u in plan.layer_units(node.name) if u.kind in ("add", "concat")]
            assert len(join.inputs) == 2
    skips = [s for s in plan.streams if s.skip]
    assert skips and all(s.depth > 2 for s in skips) or name == "triple"
    doc = plan_to_json(plan)
    by_name = {u["name"]: u for u in doc["units"]}
    for u in plan.units:
        assert by_name[u.name]["inputs"] == u.inputs
        assert by_name[u.name]["outputs"] == u.outputs
    for s in doc["streams"]:
        assert s["depth"] == plan.stream(s["name"]).depth
        assert s.get("skip_fifo", False) == plan.stream(s["name"]).skip


@pytest.mark.parametrize("name, graph", CASES, ids=IDS)
def test_both_writers_render_every_stream_and_depth(tmp_path: Path, name: str,
                                                    graph: Graph) -> None:
    plan = build_plan(graph, "top")
    rtl.write_project(graph, tmp_path / "rtl", CompileOptions(top="top"), plan)
    hls.write_project(graph, tmp_path / "hls", CompileOptions(top="top"), plan)
    sv = (tmp_path / "rtl" / "top.sv").read_text()
    insts = re.findall(r"^  (bnn_\w+) #\(\n(.*?)\n  \) (\w+) \(", sv, re.S | re.M)
    assert [n for _, _, n in insts] == [u.name for u in plan.instances()]
    for (module, params, _), u in zip(insts, plan.instances(), strict=True):
        assert module == u.module
        found = dict(re.findall(r"\.(\w+)\(([^()]*)\)", params))
        assert {k: int(found[k]) for k in u.params} == u.params, u.name
    for s in plan.streams:
        assert f"logic [{s.width - 1}:0] {s.name}_tdata;" in sv
    for u in plan.units:   # every port of a fork or join on its stream's wire
        for k, i in enumerate(u.inputs):
            port = "s" if len(u.inputs) == 1 else f"s{k}"
            wire = f"{i}_f" if plan.stream(i).depth else i
            assert re.search(rf"{u.name} \((.(?!\n  \);))*\.{port}_tvalid\({wire}_tvalid\)",
                             sv, re.S), (u.name, port)
    cpp = (tmp_path / "hls" / "firmware" / "top.cpp").read_text()
    calls = re.findall(r"^  top_units::(\w+)\(([\w, ]+)\);", cpp, re.M)
    # streams in the plan's order, then the frame count (1 with ap_ctrl_none)
    assert calls == [(u.name, ", ".join(u.inputs + u.outputs + ["1"])) for u in plan.units]
    depths = dict(re.findall(r"#pragma HLS STREAM variable=(\w+) depth=(\d+)", cpp))
    assert {k: int(v) for k, v in depths.items()} == {
        s.name: max(hls.HLS_MIN_DEPTH, s.depth) for s in plan.streams}


def test_estimator_counts_the_skip_fifos() -> None:
    graph = CASES[0][1]
    plan = build_plan(graph)
    est = estimate(graph, part="xc7z020clg400-1", clock_ns=10.0, plan=plan)
    counted = {u.unit.name for layer in est.layers for u in layer.units}
    skips = [s.fifo for s in plan.streams if s.skip]
    assert skips and set(skips) <= counted
    assert {u.name for u in plan.units} <= counted


def test_add_aligns_rounds_and_saturates_as_fixed_py() -> None:
    """The reference add is fixed.py's: exact left shifts to the largest frac, one
    round-half-up shift, saturation (counted)."""
    x = TensorType.fixed((4,), 6, 3)
    y = TensorType((4,), "int", 5)
    node = Add("a", ["x", "y"], TensorType.fixed((4,), 5, 1))
    vx, vy = np.array([[5, -6, 31, -32]]), np.array([[1, -1, 15, -16]])
    with fixed.counting() as sat:
        got = reference.op_type(node).run_on(node, [x, y], [vx, vy])
    want = np.clip((vx + (vy << 3) + 2) >> 2, -16, 15)
    assert np.array_equal(got, want) and sat.counts["a"] == 2


def test_joins_of_more_than_two_inputs_are_refused_by_the_plan() -> None:
    g = wide_join_graph(np.random.default_rng(4), "concat")
    with pytest.raises(IRError, match="reads 3 tensors; its hardware unit takes 2"):
        build_plan(g)


@pytest.mark.parametrize("join", ["add", "concat"])
def test_split_wide_joins_keeps_every_result(join: str) -> None:
    """The chain of two-input joins computes what the three-input join did, bit for bit
    (partial sums exact, one rounding at the end), saturation included."""
    wide = wide_join_graph(np.random.default_rng(7), join)
    codes = testing.random_input_codes(np.random.default_rng(8), wide, 64)
    sat_wide, sat_split = fixed.Saturation(), fixed.Saturation()
    want = reference.execute(wide, codes, sat_wide)[wide.output.name]
    split = split_wide_joins(wide_join_graph(np.random.default_rng(7), join))
    assert [len(n.inputs) for n in split.nodes[4:]] == [2, 2]
    assert split.output.name == wide.output.name and split.output.out == wide.output.out
    got = reference.execute(split, codes, sat_split)[split.output.name]
    assert np.array_equal(got, want)
    assert {k: v for k, v in sat_split.counts.items() if v} == dict(sat_wide.counts)
    if join == "add":   # the case rounds and saturates, so the check can fail
        assert sat_wide.counts.get("add3", 0) > 0
        part = split["add3/join1"].out
        assert part.frac == 0 and part.bits == max(split["a"].acc_bits,
                                                   split["b"].acc_bits) + 1


def test_concat_takes_one_pixel_per_cycle() -> None:
    node = Concat("c", ["a", "b"], TensorType((3, 5, 6), "int", 4))
    assert folding.unit_cycles(node, (3, 5, 2)).worst == 15


# ---------------------------------------------------------------------------------------
# The engines (slow): RTL in Verilator under stalls, HLS C-sim, the HLS model
# ---------------------------------------------------------------------------------------


def _written(tmp_path: Path, backend: str, control: str = "ap_ctrl_none",
             plans: dict[str, Plan] | None = None) -> list[tuple[Path, Graph, np.ndarray]]:
    jobs = []
    for k, (name, graph) in enumerate(CASES):
        top = f"g_{name}"
        out = tmp_path / name
        plan = (plans or {}).get(name) or build_plan(graph, top)
        opts = CompileOptions(top=top, control=control)
        (rtl if backend == "rtl" else hls).write_project(graph, out / backend, opts, plan)
        codes = testing.random_input_codes(np.random.default_rng(50 + k), graph, FRAMES)
        jobs.append((out, graph, codes))
    return jobs


@pytest.mark.slow
def test_rtl_is_bit_exact_under_stalls_at_the_bottleneck_rate(tmp_path: Path) -> None:
    from bnn2fpga.sim.rtl import simulate_many

    jobs = _written(tmp_path, "rtl")
    for stall in (0.0, 0.3):
        results = simulate_many(jobs, tmp_path / "cache", stall_prob=stall, seed=3)
        for (_, graph, codes), res in zip(jobs, results, strict=True):
            want = reference.execute(graph, codes)[graph.output.name]
            assert np.array_equal(res.codes, want), (graph.name, stall)
            if stall == 0.0:
                interval = res.summary["steady_state_cycles_per_frame"]
                assert interval == folding.bottleneck(graph)[1], graph.name
                # the HLS model's processes (free-running loops) give the same interval
                sched = hls_schedule.simulate(build_plan(graph), FRAMES)
                assert sched.cycles_per_frame == interval, graph.name


def test_fork_room_counts_the_buffering_between_fork_and_reader() -> None:
    """FIFO depths, width converters' capacity and one beat per fork register, from the
    reader's input back to the first fork; None where no fork is on the way."""
    from bnn2fpga.estimate.schedule import fork_room
    from bnn2fpga.units.dwc import dwc_capacity_beats

    plan = build_plan(dict(CASES)["wide_add"])
    c_in = plan.unit("c", "mvtu").inp           # input -> fork -> FIFO -> c
    assert fork_room(plan, c_in) == (plan.input, plan.stream(c_in).depth + 1)
    b_dwc = plan.unit("b", "dwc")               # input -> fork -> fork -> dwc -> b
    fork_1 = plan.stream(b_dwc.inp).producer
    inner = next(u for u in plan.units if u.name == fork_1).inp
    want = (plan.stream(plan.unit("b", "mvtu").inp).depth
            + dwc_capacity_beats(b_dwc.params["IWB"], b_dwc.params["OWB"])
            + plan.stream(b_dwc.inp).depth + 1 + plan.stream(inner).depth + 1)
    assert fork_room(plan, plan.unit("b", "mvtu").inp) == (plan.input, want)
    assert fork_room(plan, plan.unit("a", "mvtu").inp) is None


def test_a_forked_tensor_waits_for_its_slowest_reader() -> None:
    """wide_add's input feeds a 1x1 conv of 4 cycles a pixel behind a 2-beat FIFO: the
    host's beats are held to that reader's pace (``fork_floor``), which delays the 3x3
    branch; the schedule is a fixed point of one pass and the floor."""
    from bnn2fpga.estimate import pixel_schedule
    from bnn2fpga.estimate.schedule import fork_floor, input_arrival, schedule_pass

    graph = dict(CASES)["wide_add"]
    plan = build_plan(graph)
    sched = pixel_schedule(graph, plan)
    free, _ = schedule_pass(graph, plan, None, {})
    assert sched["a"][0] > free["a"][0] and sched["add3"][-1] > free["add3"][-1]
    again, takes = schedule_pass(graph, plan, None, {"input": sched["input"]})
    assert all(np.array_equal(again[k], sched[k]) for k in sched)
    floor = fork_floor(plan, takes)["input"]
    held = sched["input"] > input_arrival(graph, plan)
    assert held.any() and np.array_equal(floor[held], sched["input"][held])
    assert np.all(floor <= sched["input"])


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="open: the first-frame schedule of a join is off "
                   "Verilator's by -1..+1 cycles (add +1, add_long -1, concat +1, triple "
                   "+1, wide_concat -1; wide_add exact since the schedule holds a forked "
                   "tensor to its slowest reader, fork_floor): not back-pressure, as deeper "
                   "fork FIFOs do not change them (bench/join_latency.py)")
def test_first_frame_latency_equals_the_schedule(tmp_path: Path) -> None:
    """The cycle model's first-frame latency (``pixel_schedule``) is exact against
    Verilator on graphs too, as it is on chains (tests/test_realvalued_units.py)."""
    from bnn2fpga.estimate import pixel_schedule
    from bnn2fpga.sim.rtl import simulate_many

    jobs = _written(tmp_path, "rtl")
    off = []
    for (_, graph, _), res in zip(jobs, simulate_many(jobs, tmp_path / "cache", seed=3),
                                  strict=True):
        lat = res.summary["first_frame_latency_cycles"]
        model = int(pixel_schedule(graph)[graph.output.name][-1])
        if lat != model:
            off.append(f"{graph.name}: Verilator {lat}, model {model}")
    assert not off, "; ".join(off)


@pytest.mark.slow
@pytest.mark.parametrize("control", ["ap_ctrl_none", "axilite"])
def test_hls_csim_is_bit_exact(tmp_path: Path, control: str) -> None:
    from bnn2fpga.sim.csim import simulate_many

    jobs = _written(tmp_path, "hls", control)
    for (_, graph, codes), res in zip(jobs, simulate_many(jobs), strict=True):
        assert np.array_equal(res.codes, reference.execute(graph, codes)[graph.output.name])


@pytest.mark.slow
def test_a_smaller_skip_fifo_slows_or_deadlocks(tmp_path: Path) -> None:
    """The schedule's skip depth runs at the bottleneck's rate; well below it the fork
    stalls the long branch: slower, then (the window waits for rows the fork cannot send)
    a deadlock, which the harness reports naming the fork."""
    from bnn2fpga.sim.rtl import RtlSimError, simulate

    name, graph = CASES[0]
    codes = testing.random_input_codes(np.random.default_rng(9), graph, FRAMES)
    chosen = {s.name: s.depth for s in build_plan(graph).streams if s.skip}
    outcomes = {}
    for scale in (1.0, 0.55, 0.35):
        plan = build_plan(graph, f"skip_{int(scale * 100)}")
        for s in plan.streams:
            if s.skip:
                s.depth = int(chosen[s.name] * scale)
        out = tmp_path / f"s{int(scale * 100)}"
        rtl.write_project(graph, out / "rtl", CompileOptions(top=plan.top), plan)
        try:
            res = simulate(out, graph, codes, cache_dir=tmp_path / "cache", hang_cycles=5000)
            assert np.array_equal(res.codes, reference.execute(graph, codes)[graph.output.name])
            outcomes[scale] = res.summary["steady_state_cycles_per_frame"]
        except RtlSimError as e:
            assert "fork" in str(e)
            outcomes[scale] = "hang"
    assert outcomes[1.0] == folding.bottleneck(graph)[1]
    assert outcomes[0.55] == "hang" or outcomes[0.55] > outcomes[1.0]
    assert outcomes[0.35] == "hang"


@pytest.mark.parametrize("name, graph", CASES, ids=IDS)
def test_generated_graph_designs_lint_clean(tmp_path: Path, name: str, graph: Graph) -> None:
    from bnn2fpga.sim import verilator as vl

    rtl.write_project(graph, tmp_path, CompileOptions(top=f"t_{name}"))
    sources = (tmp_path / "filelist.f").read_text().split()
    out = vl.lint([tmp_path / s for s in sources], f"t_{name}", tmp_path)
    assert "%Warning" not in out, out


def test_keras_three_input_joins_compile_and_plan() -> None:
    """A Keras Add and Concatenate of three tensors (float convs, calibrated) compile into
    chains of two-input joins that the plan builds; the reference follows Keras."""
    import tensorflow as tf

    from bnn2fpga.compile import compile_model

    tf.keras.utils.set_random_seed(0)
    x = tf.keras.Input((6, 6, 1))
    branches = [tf.keras.layers.Conv2D(4, k, padding="same", name=f"conv{k}")(x)
                for k in (1, 3, 5)]
    s = tf.keras.layers.Add(name="sum3")(branches)
    c = tf.keras.layers.Concatenate(name="cat3")([s, *branches[:2]])
    y = tf.keras.layers.Dense(3, name="fc")(tf.keras.layers.GlobalAveragePooling2D()(c))
    model = tf.keras.Model(x, y)
    frames = np.random.default_rng(0).integers(0, 16, (64, 6, 6, 1)) / 16
    graph = compile_model(model, input_scale=1 / 16, input_bits=4, calibration=frames)
    joins = [n for n in graph.nodes if isinstance(n, (Add, Concat))]
    assert sorted(n.name for n in joins) == ["cat3", "cat3/join1", "sum3", "sum3/join1"]
    assert all(len(n.inputs) == 2 for n in joins)
    build_plan(graph)
    assert graph.meta["agreement"]["argmax_agreement"] >= 0.95
    err = np.abs(reference.run(graph, frames) - model.predict(frames, verbose=0)).max()
    assert err < 0.05
