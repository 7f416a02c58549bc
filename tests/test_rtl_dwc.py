"""bnn_dwc (all three structures: up, down, general shift buffer) keeps the bit stream
unchanged under random stalls on both sides and moves one beat per cycle on its slower
side, over 24 width pairs (tests/rtl/tb_dwc.sv, one Verilator build)."""

from __future__ import annotations

import math
import re
import subprocess
from pathlib import Path

import pytest

from bnn2fpga.backends.rtl import LIBRARY
from bnn2fpga.estimate import dwc_kind
from bnn2fpga.resources import resource_path
from bnn2fpga.sim import verilator as vl

pytestmark = pytest.mark.slow

TB = Path(__file__).parent / "rtl" / "tb_dwc.sv"
BEATS = 300   # output beats per converter, as tb_dwc.sv


def test_dwc_stream_and_rate(tmp_path):
    lib = resource_path("rtl")
    sources = [lib / m for m in LIBRARY if m.startswith("bnn_dwc")] + [TB]
    exe = vl.build_testbench(sources, "tb_dwc", tmp_path / "obj")
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "$finish" in run.stdout, run.stdout + run.stderr
    pairs = re.findall(r"pair IWB=(\d+) OWB=(\d+) cycles=(\d+)", run.stdout)
    assert len(pairs) == 24
    kinds = set()
    for iwb, owb, cycles in ((int(a), int(b), int(c)) for a, b, c in pairs):
        kinds.add(dwc_kind(iwb, owb))
        # the slower side sets the rate: BEATS outputs need BEATS*OWB/IWB inputs
        ideal = math.ceil(BEATS * max(1.0, owb / iwb))
        assert ideal <= cycles <= ideal + 3, (iwb, owb, cycles, ideal)
    assert kinds == {"up", "down", "shift"}
