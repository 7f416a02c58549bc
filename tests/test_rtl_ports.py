"""The RTL top has the HLS top's stream ports (as Vivado/Vitis HLS exports them) and no
others: ap_clk, ap_rst_n, <in>_TDATA/TVALID/TREADY and <out>_TDATA/TVALID/TREADY/TLAST."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from bnn2fpga import testing
from bnn2fpga.backends import CompileOptions
from bnn2fpga.project import write_project


def module_ports(sv: str, module: str) -> set[str]:
    """Port names of ``module`` in SystemVerilog text (ANSI header, one port a line)."""
    header = re.search(rf"^module {module} \((.*?)^\);", sv, re.S | re.M)
    assert header, f"no module {module} in the text"
    return {line.split()[-1].rstrip(",") for line in header.group(1).splitlines()
            if line.strip()}


def hls_stream_args(cpp: str, top: str) -> list[str]:
    """The argument names of the HLS top function ``top``."""
    sig = re.search(rf"^void {top}\((.*?)\)\s*\{{", cpp, re.S | re.M)
    assert sig, f"no function {top} in the text"
    return [a.split("&")[-1].strip() for a in sig.group(1).split(",")]


@pytest.mark.parametrize("top", ["bnn_top", "mynet"])
def test_rtl_top_ports_are_the_hls_tops(tmp_path, top):
    graph = testing.random_conv_graph(np.random.default_rng(3), h=4, w=4, c=2, out_ch=2, k=3,
                                      pool=True)
    out = tmp_path / "proj"
    write_project(graph, out, CompileOptions(top=top))
    s_axis, m_axis = hls_stream_args((out / "hls" / "firmware" / f"{top}.cpp").read_text(),
                                     top)
    ports = module_ports((out / "rtl" / f"{top}.sv").read_text(), top)
    assert ports == {"ap_clk", "ap_rst_n", *(f"{s_axis}_{a}" for a in ("TDATA", "TVALID",
                                                                       "TREADY")),
                     *(f"{m_axis}_{a}" for a in ("TDATA", "TVALID", "TREADY", "TLAST"))}
    info = json.loads((out / "rtl" / "rtl_design.json").read_text())
    assert (info["in_port"], info["out_port"]) == (s_axis, m_axis)


@pytest.mark.slow
def test_simulation_wrapper_lint_clean(tmp_path):
    """The wrapper that reads the units' handshakes by hierarchical reference (for the hang
    diagnosis) is `verilator --lint-only -Wall` clean around two designs, like the tops."""
    from bnn2fpga.backends.rtl import write_project as write_rtl
    from bnn2fpga.sim import verilator as vl
    from bnn2fpga.sim.rtl import render_wrapper

    rng = np.random.default_rng(4)
    infos, sources = [], {}
    for k, graph in enumerate([testing.random_conv_graph(rng, h=4, w=4, c=2, out_ch=2, k=3,
                                                          pool=True),
                               testing.random_dense_graph(rng, fan_in=40, out_ch=8)]):
        rtl = tmp_path / f"d{k}"
        write_rtl(graph, rtl, CompileOptions(top=f"top{k}"))
        infos.append(json.loads((rtl / "rtl_design.json").read_text()))
        sources |= {s: rtl / s for s in infos[-1]["sources"]}
    wrapper = tmp_path / "sim_wrap.sv"
    wrapper.write_text(render_wrapper("sim_wrap", infos))
    text = wrapper.read_text()
    first = infos[0]["units"][0]
    assert f"u_p0.{first['in_stream']}_tvalid" in text and "p1_dbg_out_ready" in text
    vl.lint([*sources.values(), wrapper], "sim_wrap", tmp_path / "d0")
