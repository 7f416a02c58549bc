"""OUT/rtl/create_project.tcl and the XDC, sourced by tclsh with the Vivado commands
stubbed: part, top, every source in filelist order, every .mem file, the clock period."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bnn2fpga import testing
from bnn2fpga.backends import CompileOptions
from bnn2fpga.backends.rtl import write_project
from bnn2fpga.ir import IRError

# add_files prints one FILE line per listed file, with its fileset
STUBS = r"""
proc create_project {args} { puts "CALL\tcreate_project\t[join $args \t]" }
proc add_files {args} {
    set fileset ""
    set files {}
    for {set i 0} {$i < [llength $args]} {incr i} {
        set a [lindex $args $i]
        if {$a eq "-fileset"} { incr i; set fileset [lindex $args $i]; continue }
        if {[string match -* $a]} continue
        foreach f $a { lappend files $f }
    }
    foreach f $files { puts "FILE\t$fileset\t$f" }
}
proc get_filesets {name} { return "FILESET:$name" }
proc current_project {} { return "PROJECT" }
proc set_property {args} { puts "CALL\tset_property\t[join $args \t]" }
proc update_compile_order {args} { puts "CALL\tupdate_compile_order\t[join $args \t]" }
proc get_ports {name} { return "PORT:$name" }
proc create_clock {args} { puts "CALL\tcreate_clock\t[join $args \t]" }
"""


def tclsh() -> str:
    path = shutil.which("tclsh")
    if path is None:
        pytest.skip("tclsh is not installed (CI: apt-get install tcl)")
    return path


def source(script: Path, cwd: Path) -> list[list[str]]:
    proc = subprocess.run([tclsh()], input=STUBS + f"source {{{script}}}\n", cwd=cwd,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return [line.split("\t") for line in proc.stdout.splitlines()
            if line.startswith(("CALL\t", "FILE\t"))]


def test_create_project_adds_sources_mems_part_top_and_clock(tmp_path: Path) -> None:
    graph = testing.random_cnn_graph(np.random.default_rng(0))
    out = tmp_path / "OUT" / "rtl"
    write_project(graph, out, CompileOptions(part="xczu3eg-sbva484-1-e", clock_ns=4.0,
                                             top="digits_top"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    calls = source(out / "create_project.tcl", elsewhere)   # from any directory
    rtl = out.resolve()
    create = next(c for c in calls if c[:2] == ["CALL", "create_project"])
    assert create[2:] == ["-force", "digits_top_rtl", str(rtl / "vivado"), "-part",
                          "xczu3eg-sbva484-1-e"]
    files = [(c[1], c[2]) for c in calls if c[0] == "FILE"]
    sources = (out / "filelist.f").read_text().split()
    assert [f for s, f in files if f.endswith(".sv")] == [str(rtl / s) for s in sources]
    assert all(s == "sources_1" for s, f in files if not f.endswith(".xdc"))
    mems = sorted(p.name for p in out.glob("*.mem"))
    assert mems and mems == json.loads((out / "rtl_design.json").read_text())["mem_files"]
    assert sorted(Path(f).name for s, f in files if f.endswith(".mem")) == mems
    assert all(Path(f).is_file() for _, f in files)
    assert ("constrs_1", str(rtl / "digits_top.xdc")) in files
    assert ["CALL", "set_property", "top", "digits_top", "FILESET:sources_1"] in calls
    clock = source(out / "digits_top.xdc", out)
    assert clock == [["CALL", "create_clock", "-period", "4.000", "-name", "ap_clk",
                      "PORT:ap_clk"]]


def test_create_project_defaults_and_a_design_without_memories(tmp_path: Path) -> None:
    from bnn2fpga.ir import Graph, MaxPool2D

    inp = testing.input_node((4, 4, 2), "bipolar", 1)
    pool = MaxPool2D("pool", ["input"], inp.out.with_shape((2, 2, 2)), kernel=(2, 2),
                     stride=(2, 2))
    graph = Graph("pool_only", [inp, pool])
    write_project(graph, tmp_path, CompileOptions())
    calls = source(tmp_path / "create_project.tcl", tmp_path)
    assert not [c for c in calls if c[0] == "FILE" and c[2].endswith(".mem")]
    create = next(c for c in calls if c[:2] == ["CALL", "create_project"])
    assert create[-2:] == ["-part", "xc7z020clg400-1"]
    assert source(tmp_path / "bnn_top.xdc", tmp_path)[0][3] == "10.000"


def test_bad_clock_is_named(tmp_path: Path) -> None:
    with pytest.raises(IRError, match="clock_ns"):
        write_project(testing.random_cnn_graph(np.random.default_rng(0)), tmp_path,
                      CompileOptions(clock_ns=-1.0))
