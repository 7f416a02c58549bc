"""The harness drives RTL with Vivado/Vitis-HLS-style port names (s_axis_*/m_axis_* with
side channels, ap_ctrl_hs ap_start): a stand-in "exported" module wraps our own RTL."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from bnn2fpga import reference, testing
from bnn2fpga.backends.rtl import write_project
from bnn2fpga.sim.rtl import StreamFormat, hls_formats, simulate_hls_export

pytestmark = pytest.mark.slow

EXPORTED = """\
// stand-in for a Vitis HLS export of bnn_top(hls::stream<ap_axiu<..>> &s_axis, ... &m_axis)
module hls_top (
    input  wire ap_clk, input wire ap_rst_n, input wire ap_start,
    input  wire [{iw}:0] s_axis_TDATA, input wire s_axis_TVALID, output wire s_axis_TREADY,
    input  wire [{kw}:0] s_axis_TKEEP, input wire [{kw}:0] s_axis_TSTRB,
    input  wire [0:0] s_axis_TUSER, input wire [0:0] s_axis_TLAST,
    input  wire [0:0] s_axis_TID, input wire [0:0] s_axis_TDEST,
    output wire [{ow}:0] m_axis_TDATA, output wire m_axis_TVALID, input wire m_axis_TREADY,
    output wire [0:0] m_axis_TLAST
);
  wire run = ap_rst_n && ap_start;
  bnn_top u (.ap_clk(ap_clk), .ap_rst_n(run), .s_axis_TDATA(s_axis_TDATA),
             .s_axis_TVALID(s_axis_TVALID), .s_axis_TREADY(s_axis_TREADY),
             .m_axis_TDATA(m_axis_TDATA), .m_axis_TVALID(m_axis_TVALID),
             .m_axis_TREADY(m_axis_TREADY), .m_axis_TLAST(m_axis_TLAST));
endmodule
"""


def test_hls_style_ports(tmp_path):
    rng = np.random.default_rng(21)
    graph = testing.random_conv_graph(rng, h=5, w=5, c=2, out_ch=4, k=3, pe=2, simd=2)
    write_project(graph, tmp_path / "rtl")
    info = json.loads((tmp_path / "rtl" / "rtl_design.json").read_text())
    export = tmp_path / "impl" / "verilog"
    export.mkdir(parents=True)
    for f in (tmp_path / "rtl").iterdir():
        if f.suffix in (".sv", ".mem"):
            shutil.copy(f, export / f.name)
    iw, ow = info["input"]["tdata_bits"], info["output"]["tdata_bits"]
    (export / "hls_top.v").write_text(EXPORTED.format(iw=iw - 1, kw=iw // 8 - 1, ow=ow - 1))
    codes = testing.random_input_codes(rng, graph, 5)
    result = simulate_hls_export(
        tmp_path, graph, codes, export, top="hls_top", start="ap_start", stall_prob=0.2,
        in_fmt=StreamFormat.from_json(info["input"]),
        out_fmt=StreamFormat.from_json(info["output"]))
    assert np.array_equal(result.codes, reference.execute(graph, codes)[graph.output.name])


def test_cli_simulates_an_hls_export(tmp_path, capsys, qkeras_mlp, digits):
    """`bnn2fpga simulate OUT --engine rtl --hls-verilog DIR`: the export's formats come from
    the HLS manifest; a stand-in wraps our RTL (compiled under another top name)."""
    from bnn2fpga.cli import main

    model = tmp_path / "mlp.keras"
    qkeras_mlp.save(model)
    out = tmp_path / "proj"
    assert main(["compile", str(model), "-o", str(out), "--top", "inner"]) == 0
    in_fmt, out_fmt = hls_formats(out)
    export = tmp_path / "impl" / "verilog"
    export.mkdir(parents=True)
    for f in (out / "rtl").iterdir():
        if f.suffix in (".sv", ".mem"):
            shutil.copy(f, export / f.name)
    iw, ow = in_fmt.tdata_bits, out_fmt.tdata_bits
    text = EXPORTED.replace("module hls_top", "module exported").replace("bnn_top u", "inner u")
    (export / "exported.v").write_text(text.format(iw=iw - 1, kw=iw // 8 - 1, ow=ow - 1))
    x = digits.x_test[:20].reshape(20, 64)
    np.save(tmp_path / "x.npy", x)
    args = ["simulate", str(out), "--input", str(tmp_path / "x.npy"), "--engine", "rtl"]
    assert main([*args, "--output", str(tmp_path / "ref.npy")]) == 0
    assert main([*args, "--output", str(tmp_path / "hls.npy"), "--hls-verilog", str(export),
                 "--hls-top", "exported", "--start", "ap_start", "--stall-prob", "0.2"]) == 0
    assert np.array_equal(np.load(tmp_path / "hls.npy"), np.load(tmp_path / "ref.npy"))
