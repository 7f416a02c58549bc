"""RTL (Verilator) == reference on randomized single layers across foldings, with and
without random stalls on both stream sides; cycle counts match folding.bottleneck; every
generated design is `verilator --lint-only -Wall` clean.

All layers run side by side in ONE Verilator build (sim.rtl.simulate_many); the stall run
reuses it (stalls are a run-time option of the harness)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bnn2fpga import folding, reference, testing
from bnn2fpga.backends import CompileOptions
from bnn2fpga.backends.rtl import LIBRARY, write_project
from bnn2fpga.ir import (
    Conv2D,
    Dense,
    Graph,
    MajorityPool2D,
    MaxPool2D,
    Reshape,
    TensorType,
    conv_out_size,
    same_pads,
)
from bnn2fpga.resources import resource_path
from bnn2fpga.sim import verilator as vl
from bnn2fpga.sim.rtl import simulate_many

pytestmark = pytest.mark.slow

FRAMES = 8
STALL = 0.3


def _cases() -> list[tuple[str, Graph]]:
    """PE/SIMD of 1, a middle divisor and full; kernels 1 and 3; strides 1 and 2; 'same' and
    'valid'; pad zero and integer pads; uint input; accumulator output; max-pool with
    min channels; majority pools ('same'/'valid', kernels 2 and 3, strides 1 to 3, alone and
    behind a conv); a whole small CNN; width converters that split beats in 3 and 4; a
    CNV-like pipeline whose dense layers would serialise without FIFOs sized for them."""
    def rng(seed: int) -> np.random.Generator:
        return np.random.default_rng(1000 + seed)

    conv, dense = testing.random_conv_graph, testing.random_dense_graph
    return [
        ("dense_p1s1", dense(rng(1), fan_in=12, out_ch=6, pe=1, simd=1)),
        ("dense_p2s4", dense(rng(2), fan_in=12, out_ch=6, pe=2, simd=4)),
        ("dense_full", dense(rng(3), fan_in=12, out_ch=6, pe=6, simd=12)),
        ("dense_uint_acc", dense(rng(4), fan_in=10, out_ch=4, pe=2, simd=5, encoding="uint",
                                 bits=3, output="accumulator")),
        ("conv_k3_same_zero", conv(rng(5), h=6, w=5, c=4, out_ch=6, k=3, pe=2, simd=2)),
        ("conv_k3_same_pad1", conv(rng(6), h=5, w=6, c=4, out_ch=6, k=3, pad=1, pe=1,
                                   simd=4)),
        ("conv_k3_valid_s2", conv(rng(7), h=7, w=7, c=4, out_ch=6, k=3, stride=2,
                                  padding="valid", pe=6, simd=1)),
        ("conv_k3_same_s2_pad0", conv(rng(8), h=6, w=7, c=2, out_ch=4, k=3, stride=2, pad=0,
                                      pe=4, simd=2)),
        ("conv_k1_s1", conv(rng(9), h=4, w=4, c=4, out_ch=6, k=1, pe=3, simd=2)),
        ("conv_k1_s2", conv(rng(10), h=5, w=6, c=4, out_ch=4, k=1, stride=2, pe=4, simd=4)),
        ("conv_uint_same", conv(rng(11), h=6, w=6, c=3, out_ch=4, k=3, encoding="uint",
                                bits=4, pe=2, simd=3)),
        ("conv_uint_pad2_acc", conv(rng(12), h=5, w=5, c=2, out_ch=3, k=3, encoding="uint",
                                    bits=2, pad=2, pe=3, simd=1, output="accumulator")),
        ("conv_pool_min", conv(rng(13), h=6, w=6, c=4, out_ch=6, k=3, pool=True, pe=2,
                               simd=4)),
        ("conv_valid_pool", conv(rng(14), h=7, w=7, c=2, out_ch=4, k=3, padding="valid",
                                 pool=True, pe=1, simd=1)),
        ("cnn", testing.random_cnn_graph(rng(15))),
        ("multi_threshold_mlp", multi_threshold_mlp(rng(16))),
        ("down_converters", down_converter_pipeline(rng(17))),
        *[(f"fuzz_conv_{i}", testing.random_geometry_conv_graph(rng(100 + i)))
          for i in range(16)],
        *[(f"majority_k{k}_s{s}_{p}", majority_pool_graph(rng(200 + 10 * k + s), k, s, p))
          for k in (2, 3) for s in (1, 2, 3) for p in ("same", "valid")],
        ("majority_after_conv", majority_pool_graph(rng(230), 3, 2, "same", conv=True)),
        ("cnv_like", cnv_like(rng(300))),
    ]


def cnv_like(rng: np.random.Generator) -> Graph:
    """FINN CNV-W1A1's layer sequence shrunk for CI: uint input -> 3x3 valid convs -> max
    pool -> a conv whose window covers its input (one output pixel) -> three dense layers
    back to back with PE < out_channels, folded like BNN-PYNQ's (PE 1, small SIMD; the last
    dense layer is the bottleneck).  Each dense layer takes its input vector only in its
    first neuron fold: with 2-entry FIFOs the pairs serialise (about 2,470 cycles per frame
    instead of 2,048); a FIFO behind the producer holding one input vector left the first
    fold at the width converter's rate (2,078); the FIFO of one input vector in front of
    each MVTU, behind its width converter (plan.input_fifo_depth), gives the
    folding's rate exactly."""
    g = testing.random_conv_graph(rng, h=8, w=8, c=1, out_ch=8, k=3, padding="valid",
                                  encoding="uint", bits=4, pe=8, simd=1)
    g.nodes[-1].name = "conv0"
    layers = [("conv1", 8, 3, 4, 8), ("pool2", 0, 2, 0, 0), ("conv3", 16, 2, 4, 8)]
    for name, ch, k, pe, simd in layers:
        src = g.nodes[-1]
        h, w, c = src.out.shape
        oh, ow = h - k + 1, w - k + 1
        if not ch:
            g.nodes.append(MaxPool2D(name, [src.name], src.out.with_shape((h // 2, w // 2, c))))
            continue
        conv = Conv2D(name, [src.name], TensorType((oh, ow, ch), "int", 2),
                      weights=testing.random_weights(rng, ch, k * k * c), kernel=(k, k),
                      pe=pe, simd=simd)
        g.nodes.append(testing.finish_matvec(conv, src.out, rng, "threshold", (oh, ow, ch)))
    g.nodes[1].inputs = ["input"]
    g.nodes[2].inputs = ["conv0"]
    flat = Reshape("flatten", ["conv3"], g.nodes[-1].out.with_shape((16,)))
    g.nodes.append(flat)
    for name, fan_in, out, pe, simd, output in (("fc0", 16, 64, 1, 2, "threshold"),
                                                ("fc1", 64, 64, 1, 2, "threshold"),
                                                ("fc2", 64, 10, 2, 1, "accumulator")):
        append_dense(g, rng, name, fan_in, out, pe, simd, output)
    g.name = "cnv_like"
    return g


def majority_pool_graph(rng: np.random.Generator, k: int, stride: int, padding: str,
                        conv: bool = False) -> Graph:
    """Bipolar input (or a conv, PE < channels) -> MajorityPool2D k x k / stride, Keras
    'same' or 'valid' padding; odd sizes so that 'same' pads unevenly."""
    h, w = (int(v) for v in rng.integers(k + 2, 9, 2))
    c = int(rng.choice([1, 3, 5]))
    if conv:
        g = testing.random_conv_graph(rng, h=h, w=w, c=2, out_ch=c, k=3, pe=1, simd=2)
    else:
        g = Graph("majority", [testing.input_node((h, w, c), "bipolar")])
    src = g.nodes[-1]
    if padding == "same":
        (pt, pb), (pl, pr) = same_pads(h, k, stride), same_pads(w, k, stride)
    else:
        pt = pb = pl = pr = 0
    oh, ow = conv_out_size(h, k, stride, pt, pb), conv_out_size(w, k, stride, pl, pr)
    g.nodes.append(MajorityPool2D("avg", [src.name], TensorType((oh, ow, c), "bipolar"),
                                  kernel=(k, k), stride=(stride, stride),
                                  pads=(pt, pb, pl, pr)))
    return g


def append_dense(g: Graph, rng: np.random.Generator, name: str, fan_in: int, out: int,
                 pe: int, simd: int, output: str) -> None:
    """A random dense layer behind the graph's last node."""
    dense = Dense(name, [g.nodes[-1].name], TensorType((out,), "int", 2),
                  weights=testing.random_weights(rng, out, fan_in), pe=pe, simd=simd)
    g.nodes.append(testing.finish_matvec(dense, g.nodes[-1].out, rng, output, (out,)))


def down_converter_pipeline(rng: np.random.Generator) -> Graph:
    """conv (PE 6) -> conv (SIMD 2) -> flatten -> dense (PE 8) -> dense (SIMD 2): width
    converters that split each beat in 3 and in 4 (bnn_dwc_down), so the estimator's
    register stages for them (units.dwc.dwc_delay) are checked against the RTL's latency."""
    g = testing.random_conv_graph(rng, h=5, w=5, c=2, out_ch=6, k=3, pe=6, simd=2)
    src = g.nodes[-1]
    conv2 = Conv2D("conv2", [src.name], TensorType((3, 3, 4), "int", 2),
                   weights=testing.random_weights(rng, 4, 9 * 6), kernel=(3, 3), pe=1, simd=2)
    testing.finish_matvec(conv2, src.out, rng, "threshold", (3, 3, 4))
    flat = Reshape("flatten", ["conv2"], conv2.out.with_shape((36,)))
    g.nodes += [conv2, flat]
    for name, fan_in, out, pe, simd in (("fc0", 36, 8, 8, 4), ("fc1", 8, 4, 1, 2)):
        append_dense(g, rng, name, fan_in, out, pe, simd, "threshold")
    g.name = "down_converters"
    return g


def multi_threshold_mlp(rng: np.random.Generator) -> Graph:
    """Dense with 3 thresholds per channel (2-bit uint codes) -> Dense on those codes."""
    g = testing.random_dense_graph(rng, fan_in=12, out_ch=6, pe=3, simd=4)
    d1 = g.nodes[1]
    bound = reference.accumulator_bound(d1, g.input.out)
    d1.thresholds = testing.random_thresholds(rng, 6, bound, n=3)
    d1.out = TensorType((6,), "uint", 2)
    d2 = Dense("dense2", ["dense"], TensorType((4,), "int", 2),
               weights=testing.random_weights(rng, 4, 6), pe=2, simd=3)
    testing.finish_matvec(d2, d1.out, rng, "accumulator", (4,))
    g.nodes.append(d2)
    return g


@pytest.fixture(scope="session")
def rtl_layers(tmp_path_factory) -> list[tuple[str, Path, Graph, np.ndarray]]:
    base = tmp_path_factory.mktemp("rtl_layers")
    rng = np.random.default_rng(7)
    out = []
    for name, graph in _cases():
        write_project(graph, base / name / "rtl", CompileOptions(top=f"t_{name}"))
        out.append((name, base / name, graph, testing.random_input_codes(rng, graph, FRAMES)))
    return out


@pytest.fixture(scope="session")
def rtl_layer_runs(rtl_layers, tmp_path_factory) -> dict[float, list]:
    cache = tmp_path_factory.mktemp("rtl_layers_cache")
    designs = [(proj, g, codes) for _, proj, g, codes in rtl_layers]
    return {stall: simulate_many(designs, cache, stall_prob=stall, seed=3)
            for stall in (0.0, STALL)}


@pytest.mark.parametrize("stall", [0.0, STALL])
def test_rtl_equals_reference(rtl_layers, rtl_layer_runs, stall):
    bad = []
    for (name, _, graph, codes), result in zip(rtl_layers, rtl_layer_runs[stall],
                                               strict=True):
        want = reference.execute(graph, codes)[graph.output.name]
        if result.codes.shape != want.shape or not np.array_equal(result.codes, want):
            bad.append(name)
    assert not bad, f"RTL differs from the reference (stall {stall}) in: {bad}"


def test_rtl_interval_matches_bottleneck(rtl_layers, rtl_layer_runs):
    """Without stalls the steady-state frame interval is the slowest unit's folded cycle
    count (folding.node_cycles, the estimator's source), to the cycle: no pair of units
    serialises (input-vector FIFOs in front of dense layers, width converters at full
    rate).  The estimator's first-frame latency (estimate.pixel_schedule) is the RTL's, to
    the cycle."""
    from bnn2fpga.estimate import pixel_schedule

    off = []
    for (name, _, graph, _), result in zip(rtl_layers, rtl_layer_runs[0.0], strict=True):
        interval = result.summary["steady_state_cycles_per_frame"]
        _, cycles = folding.bottleneck(graph)
        if abs(interval - cycles) > 0.5:
            off.append(f"{name}: RTL interval {interval} vs model {cycles}")
        latency = result.summary["first_frame_latency_cycles"]
        est = pixel_schedule(graph)[graph.output.name][-1]
        if est != latency:
            off.append(f"{name}: RTL latency {latency} vs estimate {est}")
    assert not off, "; ".join(off)


def test_rtl_summary_fields(rtl_layer_runs):
    s = rtl_layer_runs[0.0][0].summary
    for key in ("first_frame_latency_cycles", "steady_state_cycles_per_frame",
                "total_cycles", "fps"):
        assert s[key] and s[key] > 0, key


def test_generated_designs_lint_clean(rtl_layers):
    """verilator --lint-only -Wall on every generated design: no warning at all."""
    for name, proj, _, _ in rtl_layers:
        rtl = proj / "rtl"
        sources = (rtl / "filelist.f").read_text().split()
        out = vl.lint([rtl / s for s in sources], f"t_{name}", rtl)
        assert "%Warning" not in out, f"{name}:\n{out}"


@pytest.mark.parametrize("module", [m[:-3] for m in LIBRARY])
def test_unit_modules_lint_clean_standalone(module, tmp_path):
    """Each unit is a standalone module (the estimator synthesizes them one by one)."""
    lib = resource_path("rtl")
    out = vl.lint([lib / m for m in LIBRARY], module, tmp_path)
    assert "%Warning" not in out, out


def test_hls_model_runs_at_the_rtl_rate(rtl_layers, rtl_layer_runs):
    """The HLS dataflow top of every design as generated (estimate.hls_schedule: its
    processes as the headers write them, the plan's stream depths, the window FIFOs
    included) against the same plan's RTL in Verilator, in both control modes.

    One call of many frames (axilite): steady-state cycles per frame within 1%.  One call
    per frame (ap_ctrl_none): within 1% plus what a call per frame costs by construction,
    ``call_overhead`` (each process drains and restarts; a window refills its first rows
    without emitting, which no FIFO hides when the window is the bottleneck): a few cycles
    per frame, which only the test designs' frames of a few dozen cycles notice
    (CNV-W1A1 and LFC-W1A1: tests/test_hls_schedule.py).  First-frame latency: never
    below the RTL's less the HLS top's extra stages, and where every sliding window reads
    the top's input, within 1% plus those stages (behind a slower unit a window's blocking
    reads hold its taps: hls/README.md); the first frame of a call per frame no later than
    the batch's."""
    from bnn2fpga.estimate.hls_schedule import (
        CALL_RESTART,
        call_overhead,
        extra_stages,
        simulate,
        windows_read_the_input,
    )
    from bnn2fpga.plan import build_plan

    off = []
    for (name, _, graph, _), result in zip(rtl_layers, rtl_layer_runs[0.0], strict=True):
        plan = build_plan(graph)
        interval = result.summary["steady_state_cycles_per_frame"]
        latency = result.summary["first_frame_latency_cycles"]
        stages = extra_stages(plan)
        batch = simulate(plan, FRAMES)
        per_frame = simulate(plan, FRAMES, restart=CALL_RESTART)
        if abs(batch.cycles_per_frame - interval) > 0.01 * interval:
            off.append(f"{name} (batch): HLS {batch.cycles_per_frame} vs RTL {interval} "
                       "cycles/frame")
        extra = call_overhead(plan)
        if not (interval - 0.01 * interval <= per_frame.cycles_per_frame
                <= interval + 0.01 * interval + extra):
            off.append(f"{name} (one call per frame): HLS {per_frame.cycles_per_frame} vs "
                       f"RTL {interval} cycles/frame (+{extra} for the calls)")
        for mode, sched in (("batch", batch), ("one call per frame", per_frame)):
            hls = sched.first_frame_latency_cycles
            if hls < latency - stages:
                off.append(f"{name} ({mode}): HLS latency {hls} below the RTL's {latency}")
        hls = batch.first_frame_latency_cycles
        if windows_read_the_input(plan) and hls > latency + stages + 0.01 * latency:
            off.append(f"{name}: HLS latency {hls} vs RTL {latency} (+{stages} stages)")
        if per_frame.first_frame_latency_cycles > hls:
            off.append(f"{name}: one call per frame, latency "
                       f"{per_frame.first_frame_latency_cycles} above the batch's {hls}")
    assert not off, "; ".join(off)
