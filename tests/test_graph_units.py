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


def test_stream_tree_follows_the_plan_from_producer_to_readers() -> None:
    """wide_add's input: the host's stream, a fork tree of two forks, a down converter to
    the 1-lane 1x1 conv and FIFOs, parents first; an unforked tensor's is a chain."""
    from bnn2fpga.estimate.streams import stream_tree

    plan = build_plan(dict(CASES)["wide_add"])
    tree = stream_tree(plan, plan.input)
    assert tree[0].name == plan.input and tree[0].via == "root"
    assert [s.consumer for s in tree].count("fork") == 2
    leaves = {s.name for s in tree if s.consumer == "leaf"}
    assert leaves == {plan.unit(n, k).inp for n, k in (("a", "swu"), ("b", "mvtu"),
                                                       ("c", "mvtu"))}
    for k, s in enumerate(tree):
        assert s.depth == plan.stream(s.name).depth and s.beats == plan.stream(s.name).beats
        assert (s.parent is None) == (k == 0) and all(tree[c].parent == k for c in s.children)
        assert s.parent is None or s.parent < k
    (dwc,) = [s for s in tree if s.via in ("up", "down", "shift")]
    b_dwc = plan.unit("b", "dwc")
    assert dwc.name == b_dwc.out and dwc.ratio == b_dwc.params["IWB"] // b_dwc.params["OWB"]
    chain = stream_tree(plan, plan.unit("a", "mvtu").out)      # a -> add3/join1
    assert [s.consumer for s in chain] == ["leaf"]


def _tree(*streams: tuple) -> list:
    from bnn2fpga.estimate.streams import TreeStream

    tree = [TreeStream(name, depth, lanes, beats, parent, via, ratio, consumer)
            for name, depth, lanes, beats, parent, via, ratio, consumer in streams]
    for k, s in enumerate(tree):
        if s.parent is not None:
            tree[s.parent].children.append(k)
            s.below_dwc = tree[s.parent].below_dwc or tree[s.parent].consumer == "dwc"
    return tree


def test_a_fork_passes_a_beat_once_every_output_took_the_one_before() -> None:
    """Host (a beat a cycle) -> fork -> two readers without FIFOs; one takes a beat every
    10 cycles: the fork, and so the host and the other reader, follow it."""
    from bnn2fpga.estimate.streams import handshakes

    tree = _tree(("in", 0, 1, 4, None, "root", 1, "fork"),
                 ("fast", 0, 1, 4, 0, "fork", 1, "leaf"),
                 ("slow", 0, 1, 4, 0, "fork", 1, "leaf"))
    p, c, arrival = handshakes(tree, np.arange(1, 5), {"slow": np.array([10, 20, 30, 40])})
    assert list(p[0]) == [1, 10, 20, 30]          # the host waits for the fork
    assert list(p[2]) == [10, 20, 30, 40]         # the slow reader's takes
    assert list(arrival["fast"]) == [2, 11, 21, 31]


def test_a_down_converter_takes_a_word_per_r_cycles_and_holds_one_more() -> None:
    """A 4:1 down converter behind a fork, then a 2-deep FIFO: the holding register frees
    the cycle after the word register loads, which it does as the last slice of the word
    before leaves (so words enter at 2, 4, then every 4 cycles), and the slices leave one
    a cycle from two cycles after the first word's handshake."""
    from bnn2fpga.estimate.streams import handshakes

    tree = _tree(("in", 0, 4, 5, None, "root", 1, "fork"),
                 ("a", 0, 4, 5, 0, "fork", 1, "leaf"),
                 ("b", 0, 4, 5, 0, "fork", 1, "dwc"),
                 ("b_dwc", 2, 1, 20, 2, "down", 4, "leaf"))
    p, c, _ = handshakes(tree, np.arange(1, 6), {})
    assert list(p[2]) == [2, 4, 8, 12, 16]               # into the converter
    assert list(p[3][:10]) == [4, 5, 6, 7, 8, 9, 10, 11, 12, 13]
    assert list(p[0]) == [1, 2, 4, 8, 12]                # the host, a beat behind


def test_the_vectorised_timing_is_the_beat_level_one() -> None:
    """``streams.unhindered`` (no beat waits) gives ``handshakes``'s times wherever it
    answers, on the stream trees of the join graphs and of random graphs, with the readers'
    takes as scheduled and made later; both paths occur."""
    from bnn2fpga.estimate import streams
    from bnn2fpga.estimate.schedule import schedule_pass, stream_trees
    from bnn2fpga.testing_graphs import random_dag

    graphs = [g for _, g in CASES] + [random_dag(np.random.default_rng([1212, b]))
                                      for b in range(10)]
    answered = solved = 0
    for g in graphs:
        plan = build_plan(g)
        _, takes, offered, _ = schedule_pass(g, plan, None, {})
        for tensor, tree in stream_trees(g, plan).items():
            for late in (0, 1, 3):
                lt = {s.name: takes[(tensor, s.name)] + late * np.arange(s.beats)
                      for s in tree if (tensor, s.name) in takes}
                fast = streams.unhindered(tree, offered[tensor], lt)
                p, _, arrival = streams.handshakes(tree, offered[tensor], lt)
                solved += 1
                if fast is not None:
                    answered += 1
                    assert np.array_equal(fast[0], p[0]), (g.name, tensor, late)
                    assert fast[1].keys() == arrival.keys()
                    assert all(np.array_equal(fast[1][k], arrival[k]) for k in arrival)
    assert 0 < answered < solved


def test_a_stalled_unit_runs_in_its_own_time() -> None:
    """Beats valid at own times 10, 11, 20 leave at cycles 10, 15, 30: after beat 1 the
    unit is 4 cycles behind its own time, after beat 2 10."""
    from bnn2fpga.estimate.streams import Stalls

    st = Stalls(np.array([10, 11, 20]), np.array([10, 15, 30]))
    assert list(st.cycle(np.array([5, 10, 11, 12, 19, 20, 25]))) == [5, 10, 15, 16, 23, 30,
                                                                     35]
    # the first own time at or after a cycle (within a wait: the time it resumes)
    assert list(st.own_time(np.array([5, 10, 13, 15, 16, 24, 30, 35]))) == [5, 10, 11, 11,
                                                                          12, 20, 20, 25]


@pytest.mark.slow
def test_first_frame_latency_equals_the_schedule(tmp_path: Path) -> None:
    """The cycle model's first-frame latency (``pixel_schedule``) is exact against
    Verilator on graphs too, as it is on chains (tests/test_realvalued_units.py): forks
    that hold a producer to its slowest reader, converters that pace a branch.  The
    harness's timeline (each unit's first-frame output handshakes) has every beat, in
    order, and the model's last pixel of each join is its unit's last handshake."""
    from bnn2fpga.estimate import pixel_schedule
    from bnn2fpga.sim.rtl import simulate_many

    jobs = _written(tmp_path, "rtl")
    off = []
    for (_, graph, _), res in zip(jobs, simulate_many(jobs, tmp_path / "cache", seed=3,
                                                      timeline=True), strict=True):
        plan = build_plan(graph)
        lat = res.summary["first_frame_latency_cycles"]
        sched = pixel_schedule(graph, plan)
        if lat != int(sched[graph.output.name][-1]):
            off.append(f"{graph.name}: Verilator {lat}, model {sched[graph.output.name][-1]}")
        timeline = res.summary["unit_out_cycles"]
        for u in plan.instances():
            beats = timeline[u.name]
            assert len(beats) == u.out_beats and np.all(np.diff(beats) > 0), u.name
        for node in graph.nodes[1:]:
            if len(node.inputs) > 1 and node is not graph.output:
                (join,) = [u for u in plan.layer_units(node.name) if u.kind in ("add",
                                                                                "concat")]
                assert sched[node.name][-1] == timeline[join.name][-1], node.name
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
