"""The harness names the unit whose stream stopped when a design hangs, and writes an FST
trace on request."""

from __future__ import annotations

import re

import numpy as np
import pytest

from bnn2fpga import testing
from bnn2fpga.backends.rtl import write_project
from bnn2fpga.sim.rtl import RtlSimError, simulate

pytestmark = pytest.mark.slow


def break_output_valid(top_sv: str, unit: str) -> str:
    """Disconnect ``unit``'s m_tvalid: it keeps consuming input, nothing leaves it."""
    inst = top_sv.index(f") {unit} (")
    m = re.compile(r"\.m_tvalid\((\w+)_tvalid\)").search(top_sv, inst)
    stream = m.group(1)
    broken = top_sv[:m.start()] + ".m_tvalid()" + top_sv[m.end():]
    return broken.replace("endmodule", f"  assign {stream}_tvalid = 1'b0;\nendmodule")


def test_hang_names_the_stopped_unit(tmp_path):
    rng = np.random.default_rng(5)
    graph = testing.random_conv_graph(rng, h=4, w=4, c=2, out_ch=2, k=3, pool=True)
    write_project(graph, tmp_path / "rtl")
    top = tmp_path / "rtl" / "bnn_top.sv"
    top.write_text(break_output_valid(top.read_text(), "pool_pool"))
    codes = testing.random_input_codes(rng, graph, 3)
    trace = tmp_path / "hang.fst"
    with pytest.raises(RtlSimError) as e:
        simulate(tmp_path, graph, codes, hang_cycles=500, trace=trace)
    msg = str(e.value)
    assert "RTL simulation of bnn_top:" in msg, msg  # the design, not its sim wrapper
    assert "hang" in msg and "stopped unit: pool_pool" in msg, msg
    assert "consumed all its input" in msg, msg
    assert trace.is_file() and trace.stat().st_size > 100


def test_lz4_stand_in_writes_valid_blocks(tmp_path):
    """The harness's lz4.h (used by the FST writer) emits blocks the real liblz4 decodes."""
    import ctypes
    import ctypes.util
    import subprocess

    from bnn2fpga.resources import resource_path

    name = ctypes.util.find_library("lz4")
    if name is None:
        pytest.skip("no liblz4 on this machine to cross-check with")
    sizes = [0, 5, 14, 15, 16, 269, 270, 271, 100_000]
    (tmp_path / "t.cpp").write_text(
        '#include "lz4.h"\n#include <cstdio>\n#include <vector>\n'
        "int main() { for (int n : {" + ", ".join(map(str, sizes)) + "}) {\n"
        "  std::vector<char> s(n), d(LZ4_compressBound(n));\n"
        "  for (int i = 0; i < n; i++) s[i] = (char)(i * 7 + 3);\n"
        "  int m = LZ4_compress_default(s.data(), d.data(), n, (int)d.size());\n"
        '  char f[32]; std::snprintf(f, 32, "b%d.bin", n);\n'
        '  FILE* o = std::fopen(f, "wb"); std::fwrite(d.data(), 1, m, o); std::fclose(o);\n'
        "} }\n")
    subprocess.run(["g++", "-O1", f"-I{resource_path('harness')}", "t.cpp", "-o", "t"],
                   cwd=tmp_path, check=True)
    subprocess.run(["./t"], cwd=tmp_path, check=True)
    lib = ctypes.CDLL(name)
    for n in sizes:
        src = (tmp_path / f"b{n}.bin").read_bytes()
        dst = ctypes.create_string_buffer(max(n, 1))
        assert lib.LZ4_decompress_safe(src, dst, len(src), n) == n
        assert dst.raw[:n] == bytes((i * 7 + 3) & 255 for i in range(n))
