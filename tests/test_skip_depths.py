"""The HLS skip-FIFO sizing without the full simulation (estimate.hls_schedule): the max-plus
engine gives the event-by-event run's times exactly, the sliding window's tiled process its
stepped flags, and ``hls_skip_depths`` (the frames a long run needs, solved alone) equals the
full simulation's need over the frames it reports; with the plan's depths the HLS model
neither deadlocks nor slows (its interval is the one with unbounded skip FIFOs).  On the
seeded random DAGs of ``testing_graphs.random_dag`` (those of tests/test_random_graphs.py,
windowed ones too) and the residual graphs of ``testing.residual_graph``."""

from __future__ import annotations

import numpy as np
import pytest

from bnn2fpga import testing
from bnn2fpga.estimate import hls_schedule as hs
from bnn2fpga.ir import IRError
from bnn2fpga.plan import build_plan
from bnn2fpga.testing_graphs import random_dag
from bnn2fpga.units import swu

# a long run's reported frames: the first frames and the pipeline's steady state (random
# graph [1212, 34] needs 9, 18, then 24 beats a frame)
LONG = 8


def _graphs() -> list[tuple[str, object]]:
    rng = np.random.default_rng
    out = [(f"g1212_{i}", random_dag(rng([1212, i]))) for i in [*range(12), 20, 34]]
    out += [(f"w1214_{i}", random_dag(rng([1214, i]), windowed=True)) for i in range(0, 30, 3)]
    out += [("residual_add", testing.residual_graph(rng(0))),
            ("residual_long", testing.residual_graph(rng(1), long_convs=3, pe=4, add_pe=1,
                                                     out_bits=5, out_frac=0)),
            ("residual_concat", testing.residual_graph(rng(2), join="concat"))]
    return out


GRAPHS = _graphs()
IDS = [n for n, _ in GRAPHS]


@pytest.mark.parametrize("name, graph", GRAPHS[:8], ids=IDS[:8])
@pytest.mark.parametrize("mode", ["free", "per_frame", "paced"])
def test_maxplus_engine_is_the_event_run(name, graph, mode):
    plan = build_plan(graph)
    kw = {"free": {}, "per_frame": {"restart": hs.CALL_RESTART},
          "paced": {"input_interval": hs.paced_interval(graph, plan)}}[mode]
    a = hs.simulate(plan, 4, engine="events", **kw)
    b = hs.simulate(plan, 4, engine="maxplus", **kw)
    assert a.frame_done == b.frame_done and a.first_in == b.first_in
    for s in a.writes:
        assert np.array_equal(a.writes[s], b.writes[s]), s
        assert np.array_equal(a.reads[s], b.reads[s]), s


def test_maxplus_engine_reports_a_deadlock_by_name():
    graph = testing.residual_graph(np.random.default_rng(1), long_convs=3, pe=4, add_pe=1,
                                   out_bits=5, out_frac=0)
    plan = build_plan(graph)
    small = {s.name: 1 for s in plan.streams if s.skip}
    with pytest.raises(IRError, match="deadlocks: .*fork"):
        hs.simulate(plan, 2, depths=small)


def test_tiled_window_process_is_the_stepped_one():
    params = []
    for _, g in GRAPHS:
        plan = build_plan(g)
        params += [{**u.params, "IN_BEATS": u.in_beats, "OUT_BEATS": u.out_beats}
                   for u in plan.units if u.kind == "swu"]
    assert len(params) > 20
    for p in params:
        for frames in (1, 3, 6):
            a, b = swu.hls_process(p, frames, tile=False), swu.hls_process(p, frames)
            assert a.iterations == b.iterations and a.shared == b.shared
            for x, y in ((a.at, b.at), (a.reads, b.reads), (a.writes, b.writes)):
                assert np.array_equal(x, y), p
            # the events a longer call shares are the same in it
            c = swu.hls_process(p, frames + 1)
            n = a.shared if a.shared is not None else len(a.at)
            assert np.array_equal(a.at[:n], c.at[:n]) and np.array_equal(a.reads[:n],
                                                                         c.reads[:n])


@pytest.mark.parametrize("name, graph", GRAPHS, ids=IDS)
def test_skip_depths_are_the_full_simulation_and_suffice(name, graph):
    plan = build_plan(graph)
    skips = [s for s in plan.streams if s.skip]
    if not skips:
        pytest.skip("no skip FIFO")
    depths = hs.hls_skip_depths(graph, plan)
    unbounded = {s.name: hs.UNBOUNDED for s in skips}
    paced = hs.paced_interval(graph, plan)
    # the full simulation (every process to the end of every frame), LONG frames reported
    full = hs.simulate(plan, LONG, extra_depth=unbounded, input_interval=paced)
    for s in skips:
        need = hs.backlogs(np.asarray(full.writes[s.name]), np.asarray(full.reads[s.name]))
        assert depths[s.name] == need[:LONG * s.beats].max(), s.name
        # the input's end (its last frames) needs no more than a long run
        assert hs.simulated_skip_depths(graph, plan)[s.name] >= depths[s.name]
        assert s.depth >= depths[s.name]
    # the plan's depths: no deadlock, and the rate (free host) and every frame's time
    # (paced host) of unbounded skip FIFOs
    for interval in (None, paced):
        got = hs.simulate(plan, 6, input_interval=interval)
        want = hs.simulate(plan, 6, input_interval=interval, extra_depth=unbounded)
        assert got.cycles_per_frame == want.cycles_per_frame
        if interval is not None:
            assert got.frame_done == want.frame_done
