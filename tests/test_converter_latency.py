"""The cycle model against Verilator where width converters join units of different PE:
real-valued chains (tests/realvalued_cases.py) over every PE combination of the divisors
of their channel count, first-frame latency (``estimate.pixel_schedule``) and interval
(``folding.bottleneck``) equal to the RTL's exactly; and the converter's per-beat timing
(``units.dwc.dwc_pixel_beats``) on its own."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import pytest

from bnn2fpga import folding, testing
from bnn2fpga.backends import CompileOptions
from bnn2fpga.backends import rtl as rtl_backend
from bnn2fpga.ir import Graph
from bnn2fpga.units.dwc import dwc_delay, dwc_pixel_beats

sys.path.insert(0, str(Path(__file__).parent))
import realvalued_cases as rc  # noqa: E402

FRAMES = 3
DIVISORS = (1, 2, 3, 6)


def sweep_cases() -> dict[str, Graph]:
    """uint codes -> Threshold (7 thresholds) -> FixedAffine -> Threshold, over the PEs
    of all three; without the first threshold; fixed -> FixedAffine -> Threshold (1 or 3
    thresholds); 12 channels (longer shift-converter bursts); a conv whose MVTU sends a
    pixel in one beat into a down converter (the burst an affine passes on)."""
    out: dict[str, Graph] = {}
    for i, (t, a, s) in enumerate(itertools.product(DIVISORS, repeat=3)):
        out[f"uint_t{t}_a{a}_s{s}"] = rc.uint_codes_chain(np.random.default_rng(100 + i),
                                                          pe_t=t, pe_a=a, pe_s=s)
    for i, (a, s) in enumerate(itertools.product(DIVISORS, repeat=2)):
        out[f"uaff_a{a}_s{s}"] = rc.uint_codes_chain(np.random.default_rng(300 + i), bits=4,
                                                     pe_a=a, pe_s=s, requant=False)
        out[f"fix_a{a}_t{s}"] = rc.affine_threshold_chain(np.random.default_rng(400 + i),
                                                          pe_a=a, pe_t=s, n=1 + 2 * (i % 2))
    for i, (a, t) in enumerate(((2, 1), (3, 2), (4, 2), (6, 3), (12, 1))):
        out[f"w12_a{a}_t{t}"] = rc.affine_threshold_chain(
            np.random.default_rng(600 + i), shape=(2, 3, 12), pe_a=a, pe_t=t, n=3)
    for i, (pe, k) in enumerate(((4, 3), (4, 1), (2, 1))):
        out[f"conv_p{pe}_k{k}"] = rc.int_conv_chain(
            np.random.default_rng(700 + i), shape=(3, 3, 3), pe=pe, simd=3, k=k, pe_bn=2,
            pe_sign=1)
    return out


CASES = sweep_cases()


@pytest.fixture(scope="module")
def rtl_runs(tmp_path_factory) -> dict[str, dict]:
    """Every case through one verilated build (``simulate_many``)."""
    from bnn2fpga.sim.rtl import simulate_many

    base = tmp_path_factory.mktemp("converter_latency")
    rng = np.random.default_rng(3)
    jobs = []
    for name, graph in CASES.items():
        rtl_backend.write_project(graph, base / name, CompileOptions(top=f"c_{name}"))
        jobs.append((base / name, graph, testing.random_input_codes(rng, graph, FRAMES)))
    results = simulate_many(jobs, base / "cache", name="converter_latency")
    return {name: r.summary for name, r in zip(CASES, results, strict=True)}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_latency_and_interval_equal_verilator(rtl_runs, name):
    from bnn2fpga.estimate import pixel_schedule

    graph, summary = CASES[name], rtl_runs[name]
    assert pixel_schedule(graph)[graph.output.name][-1] == \
        summary["first_frame_latency_cycles"]
    assert folding.bottleneck(graph)[1] == summary["steady_state_cycles_per_frame"]


@pytest.mark.parametrize("iwb,owb", [(6, 3), (21, 7), (8, 32), (6, 9), (4, 6)])
def test_last_beat_leaves_after_the_converter_delay(iwb, owb):
    """A pixel (one input beat; R for an up converter; lcm(IWB, OWB) bits for a shift
    converter to more bits) into an idle converter: its last output beat leaves
    ``dwc_delay`` after its last input beat."""
    beats_in = int(np.lcm(iwb, owb)) // iwb
    arrivals = np.arange(beats_in, dtype=float) * 5
    assert dwc_pixel_beats(iwb, owb, arrivals)[-1] - arrivals[-1] == dwc_delay(iwb, owb)


def test_shift_converter_sends_what_the_last_beat_completes():
    """9 -> 6 bits, a pixel of 2 input beats far apart: the first output beat leaves a
    cycle after the first input, the two the second input completes one per cycle."""
    assert list(dwc_pixel_beats(9, 6, np.array([0.0, 5.0]))) == [1, 6, 7]


@pytest.mark.parametrize("ratio,beats,gap,lag", [(2, 3, 1, 2), (3, 2, 1, 2), (2, 3, 2, 0),
                                                 (3, 4, 2, 3), (3, 4, 3, 0), (6, 1, 1, 0)])
def test_down_converter_queues_fast_beats(ratio, beats, gap, lag):
    """A down converter of R slices sends one per cycle: a pixel's beats ``gap`` cycles
    apart leave (R - gap)(beats - 1) cycles later than ``dwc_delay`` after the last, and
    one per cycle from the first."""
    arrivals = np.arange(beats, dtype=float) * gap
    out = dwc_pixel_beats(8 * ratio, 8, arrivals)
    assert out[-1] - arrivals[-1] == dwc_delay(8 * ratio, 8) + lag
    assert np.all(np.diff(out) >= 1) and out[0] == arrivals[0] + 2
