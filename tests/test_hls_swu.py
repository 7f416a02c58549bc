"""hls/swu.h's SlidingWindow on its own (g++ C simulation): a call of several frames emits
exactly what one call per frame emits (the schedule runs on across frames without changing
a tap), and its loop's schedule, iteration by iteration, is the one the HLS cycle model
runs (units.swu.hls_process).  Windows: every sliding window of the RTL layer test designs
(tests/test_rtl_layers.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import jinja2
import numpy as np
import pytest
from test_rtl_layers import _cases

from bnn2fpga.backends.hls import hls_width
from bnn2fpga.plan import build_plan
from bnn2fpga.resources import resource_path
from bnn2fpga.sim.csim import CXX, CXXFLAGS, ap_types_dir
from bnn2fpga.units.swu import hls_process

FRAMES = 3
ARGS = ("IH", "IW", "C", "SIMD", "EB", "KH", "KW", "SH", "SW", "PT", "PL", "OH", "OW")


def windows() -> list[dict]:
    """The sliding windows of the RTL layer designs, with their template arguments."""
    out = []
    for name, graph in _cases():
        plan = build_plan(graph)
        for u in plan.units:
            if u.kind != "swu":
                continue
            src, dst = plan.stream(u.inp), plan.stream(u.out)
            p = u.params
            args = ", ".join(str(p[k]) for k in ARGS)
            args += f", {'true' if dst.tap_valid else 'false'}, {p['PAD_CODE']}"
            out.append({"name": f"{name}.{u.name}", "params": p, "args": args,
                        "in_w": hls_width(src), "out_w": hls_width(dst),
                        "in_beats": u.in_beats, "out_beats": u.out_beats})
    return out


@pytest.fixture(scope="module")
def swu_run(tmp_path_factory) -> tuple[list[dict], dict[str, str], str]:
    cases = windows()
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "hls")),
                             keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    tmp = tmp_path_factory.mktemp("swu_frames")
    src = tmp / "swu_frames.cpp"
    src.write_text(env.get_template("swu_frames.cpp.j2").render(cases=cases, frames=FRAMES))
    exe = tmp / "swu_frames"
    cmd = [CXX, *CXXFLAGS, "-O1", "-isystem", str(ap_types_dir()), "-I",
           str(resource_path("hls")), str(src), "-o", str(exe)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    proc = subprocess.run([str(exe)], capture_output=True, text=True)
    traces = dict(line.split(" ", 1) for line in proc.stdout.splitlines()
                  if not line.startswith("MISMATCH"))
    return cases, traces, proc.stdout if proc.returncode else ""


def test_frames_of_one_call_equal_one_call_per_frame(swu_run):
    cases, traces, failures = swu_run
    assert len(cases) > 40 and len(traces) == len(cases)
    assert not failures, failures


def test_model_schedule_is_the_loop_as_written(swu_run):
    """Per iteration, the reads and emits of the C++ loop (FRAMES frames in one call) are
    those units.swu.hls_process gives the cycle model."""
    cases, traces, _ = swu_run
    for c in cases:
        proc = hls_process(c["params"], FRAMES)
        flags = np.zeros(proc.iterations, dtype=np.int64)
        flags[proc.at] = proc.reads.astype(int) + 2 * proc.writes.astype(int)
        model = "".join(map(str, flags))
        assert model == traces[c["name"]].strip(), c["name"]
