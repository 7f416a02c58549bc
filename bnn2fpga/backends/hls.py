"""HLS backend: a Vivado/Vitis HLS project from the hardware IR.

``write_project(graph, out_dir, options)`` writes into ``out_dir`` (``OUT/hls``)::

    firmware/<top>.h, <top>.cpp     the dataflow top (AXI-stream in/out), one unit per call
    firmware/params/<layer>.h        weights, thresholds, pool min-masks of each layer
    firmware/bnn2fpga/               a copy of the header-only library (bnn2fpga/hls)
    <top>_test.cpp                   testbench: tb_data/inputs.txt -> compare expected.txt
    tb_data/                         a few random frames and their reference outputs
    build_prj.tcl, README.md         csim, csynth, cosim, export IP catalog
    manifest.json                    what the C simulation needs to drive the testbench

Everything textual comes from the Jinja2 templates in ``templates/hls``.  The units, their
parameters, the streams and their depths are the one hardware plan's (``bnn2fpga.plan``,
the same the RTL writer renders): each plan unit is a function named as in the plan, one
dataflow process, and each plan stream an ``hls::stream`` with the plan's FIFO depth.
Memories are bound where ``estimate.memory_styles`` maps them (weights, thresholds, MVTU
input buffers, FIFOs; ``ROM_BINDINGS``, ``FIFO_BINDINGS``, ``BUFFER_STORAGE``).  With
``control="axilite"`` the top takes a frame count ``numReps`` (s_axilite) and passes it to
every process, each one flushable loop over that many frames; ``ap_ctrl_none`` passes 1
(one frame per call of the free-running region).

Stream formats (one ``hls::stream<ap_uint<W>>`` per edge): a tensor is a sequence of elements
in channels-last raster order; a beat carries consecutive elements, element i at bits
[i*EB, (i+1)*EB) (EB = the tensor's bits; bit 1 = +1 for bipolar).  A conv's sliding window
feeds SIMD channels of one tap per beat; a matrix-vector unit emits PE channels of one pixel;
a max-pool takes and emits one pixel (all channels).  Where the producer's and the consumer's
elements per beat differ, a width converter sits between them.  The AXI ports carry the
plan's input and output streams (at most ``plan.AXIS_MAX_W`` bits of TDATA).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from bnn2fpga import reference
from bnn2fpga.backends import CompileOptions
from bnn2fpga.estimate.design import MemoryStyles, memory_styles
from bnn2fpga.ir import (
    Graph,
    IRError,
    graph_to_json,
)
from bnn2fpga.ops.pgconv2d import gate_memory
from bnn2fpga.ops.realvalued import channel_rom
from bnn2fpga.packing import (
    bits_to_int,
    int_weight_memory,
    pack_fields,
    threshold_memory,
    weight_memory,
)
from bnn2fpga.plan import Plan, Stream, Unit, build_plan, ident
from bnn2fpga.resources import resource_path, template_env
from bnn2fpga.units import UNITS

CONTROLS = ("ap_ctrl_none", "axilite")
LIB_DIR = "firmware/bnn2fpga"      # where the project keeps its copy of the HLS library
HLS_MIN_DEPTH = 2                  # the smallest hls::stream channel (the tool's default)
TB_FRAMES = 8                      # frames in tb_data for Vivado's csim/cosim
AP_INT_DEFAULT_MAX_W = 1024
AP_INT_LIMIT_W = 4096              # Vitis HLS accepts AP_INT_MAX_W up to 4096
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
ARRAY_PARTITION_LIMIT = 4096       # config_array_partition -maximum_size, at least (Vivado HLS)
COSIM_FRAMES = 2                   # frames build_prj.tcl's cosim_design runs by default
FRAMES_PER_CALL = 4                # frames per top call in the testbench (--control axilite)

# How the estimator's memory styles (estimate.memory_styles) bind in HLS, per kind of memory:
# style -> (Vitis HLS BIND_STORAGE type, impl; Vivado HLS RESOURCE core).  A ROM "in logic" is
# a distributed ROM (LUTs); a FIFO in registers is HLS's shift-register FIFO.  Vivado HLS has
# no UltraRAM FIFO core: such a FIFO is bound to block RAM there.
ROM_BINDINGS = {"logic": ("rom_1p", "lutram", "ROM_1P_LUTRAM"),
                "bram": ("rom_1p", "bram", "ROM_1P_BRAM")}
FIFO_BINDINGS = {"register": ("fifo", "srl", "FIFO_SRL"),
                 "lutram": ("fifo", "lutram", "FIFO_LUTRAM"),
                 "bram": ("fifo", "bram", "FIFO_BRAM"),
                 "uram": ("fifo", "uram", "FIFO_BRAM")}
# a RAM a unit declares itself (the MVTU's input buffer, the sliding window's line buffer):
# a BnnStorage template argument (bnn_common.h; mvtu.h's MvtuBuffer, swu.h's SwuBuffer)
BUFFER_STORAGE = {"none": "BNN_STORAGE_AUTO", "register": "BNN_STORAGE_REGISTER",
                  "lutram": "BNN_STORAGE_LUTRAM", "bram": "BNN_STORAGE_BRAM",
                  "uram": "BNN_STORAGE_URAM"}


def graph_fingerprint(graph: Graph) -> str:
    """sha256 of the graph's nodes (design.json without meta): ties a project to its graph."""
    text = json.dumps(graph_to_json(graph)["nodes"], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def hls_width(s: Stream) -> int:
    """Bits of an hls::stream beat: the plan's width, plus the tap-valid flag as the top bit
    (an hls::stream has no side channel; the RTL carries the flag as TUSER)."""
    return s.width + int(s.tap_valid)


def channel_depth(s: Stream) -> int:
    """The hls::stream FIFO depth of a plan stream: its FIFO's depth, and HLS's minimal
    channel (2, the tool's default) where the RTL connects two units directly."""
    return max(HLS_MIN_DEPTH, s.depth)


def port_io(s: Stream, shape: tuple[int, ...]) -> dict[str, Any]:
    """The geometry of a top-level AXI stream (the testbench's and the README's)."""
    size = int(np.prod(shape))
    return {"elems": s.lanes, "bits": s.bits, "beats": s.beats, "size": size,
            "axi_w": 8 * -(-s.width // 8), "signed": s.signed, "shape": list(shape)}


def binding(table: dict[str, tuple[str, str, str]], style: str, what: str
            ) -> dict[str, str] | None:
    """The storage pragmas' words of a memory mapped to ``style`` (None: nothing to bind)."""
    if style == "none":
        return None
    if style not in table:
        raise IRError(f"{what}: the estimator mapped it to {style!r}, which the HLS writer "
                      f"cannot bind; expected one of {sorted(table)}")
    kind, impl, core = table[style]
    return {"style": style, "type": kind, "impl": impl, "core": core}


def buffer_storage(styles: dict[str, str], memory: str, unit: str) -> str:
    """The BnnStorage argument of a unit's own RAM ``memory``, as the estimator mapped it."""
    style = styles.get(memory, "none")
    if style not in BUFFER_STORAGE:
        raise IRError(f"unit {unit!r} memory {memory!r}: the estimator mapped it to "
                      f"{style!r}; the HLS writer binds {sorted(BUFFER_STORAGE)}")
    return BUFFER_STORAGE[style]


def unit_context(graph: Graph, plan: Plan, u: Unit, top: str,
                 styles: dict[str, str]) -> dict[str, Any]:
    """Template context of one unit: the plan's parameters plus what the call needs
    (``styles``: its memories' styles, ``estimate.memory_styles``)."""
    src, dst = plan.stream(u.inp), plan.stream(u.out)
    ctx: dict[str, Any] = {"name": u.name, "kind": u.kind, "layer": u.layer,
                           "p": u.params, "src": src.name, "dst": dst.name,
                           "in_w": hls_width(src), "out_w": hls_width(dst),
                           "in_beats": u.in_beats, "out_beats": u.out_beats,
                           "masked": src.tap_valid, "styles": styles,
                           "ports": unit_ports(plan, u)}
    if u.kind == "swu":
        ctx.update(masked=dst.tap_valid,
                   lb_storage=buffer_storage(styles, "line_buffer", u.name))
    elif u.kind == "thermometer":
        ctx.update(pixels=u.out_beats,
                   thresholds=[int(t) for t in graph[u.layer].thresholds])
    elif u.kind in ("mvtu", "pg_mvtu"):
        node = graph[u.layer]
        p = u.params
        what = f"unit {u.name!r} memory"
        ctx.update(mw=node.fan_in, mh=node.out_channels, pixels=u.out_beats // p["NF"],
                   weights=f"{top}_{ident(u.layer)}_w",
                   thresholds=f"{top}_{ident(u.layer)}_t" if p["NT"] else "",
                   weights_bind=binding(ROM_BINDINGS, styles.get("weights", "none"),
                                        f"{what} 'weights'"),
                   thresholds_bind=binding(ROM_BINDINGS, styles.get("thresholds", "none"),
                                           f"{what} 'thresholds'"),
                   ibuf_storage=buffer_storage(styles, "input_buffer", u.name))
        if u.kind == "pg_mvtu":
            ctx.update(gates=f"{top}_{ident(u.layer)}_g")
    elif u.kind in ("pool", "majority_pool"):
        ctx.update(pixels=u.out_beats, min_mask=f"{top}_{ident(u.layer)}_min")
    elif u.kind in ("affine", "threshold"):
        ctx.update(table=f"{top}_{ident(u.layer)}_c",
                   table_bind=binding(ROM_BINDINGS, styles.get(
                       "constants" if u.kind == "affine" else "thresholds", "none"),
                       f"unit {u.name!r} memory"))
    return ctx


def unit_ports(plan: Plan, u: Unit) -> list[dict[str, Any]]:
    """The stream arguments of a unit's function: ``in``/``out``, or numbered where it has
    several inputs (a join: ``in0``, ``in1``) or outputs (a fork: ``out0``, ``out1``)."""
    def named(base: str, names: list[str]) -> list[dict[str, Any]]:
        return [{"arg": base if len(names) == 1 else f"{base}{k}", "stream": n,
                 "width": hls_width(plan.stream(n))} for k, n in enumerate(names)]

    return named("in", u.inputs) + named("out", u.outputs)


def stream_context(s: Stream, styles: MemoryStyles) -> dict[str, Any]:
    """Template context of one plan stream: its hls::stream width and depth and, for a
    stream with a FIFO, the FIFO's storage binding."""
    bind = None
    if s.depth:
        bind = binding(FIFO_BINDINGS, styles[s.fifo]["storage"], f"FIFO {s.fifo!r}")
    return {"name": s.name, "width": hls_width(s), "depth": channel_depth(s), "fifo": s.fifo,
            "bind": bind}


def partition_limit(units: list[Unit]) -> int:
    """``config_array_partition -maximum_size``: the largest array the design partitions
    completely (PE weight ROMs and accumulators, PE x NT thresholds, SIMD dot terms), and at
    least ``ARRAY_PARTITION_LIMIT``."""
    sizes = [ARRAY_PARTITION_LIMIT]
    for u in units:
        p = u.params
        if u.kind in ("mvtu", "pg_mvtu"):
            sizes += [p["PE"], p["SIMD"], p["PE"] * max(1, p["NT"])]
    return max(sizes)


def param_headers(graph: Graph, plan: Plan) -> list[dict[str, Any]]:
    """The parameter header of each MVTU (weights, thresholds) and max-pool (min mask)."""
    headers = []
    for u in plan.units:
        node = graph[u.layer]
        p = u.params
        if u.kind in ("mvtu", "pg_mvtu"):
            wb = p.get("WB", 1)
            digits = max(1, -(-p["SIMD"] * wb // 4))
            if wb > 1:      # integer weights, lane i at bits [i*WB, (i+1)*WB)
                imem = int_weight_memory(node.weights, p["PE"], p["SIMD"])
                words = [[format(pack_fields(w, wb), f"0{digits}x") for w in row]
                         for row in imem]
            else:
                mem = weight_memory(node.weights, p["PE"], p["SIMD"])  # (PE, NF*SF, SIMD)
                words = [[format(bits_to_int(w), f"0{digits}x") for w in row] for row in mem]
            header = {"kind": "matvec", "c_name": ident(u.layer), "layer": u.layer,
                      "simd": p["SIMD"], "word_bits": p["SIMD"] * wb, "pe": p["PE"],
                      "tiles": p["NF"] * p["SF"], "weights": words}
            if p["NT"]:
                header.update(nt=p["NT"], nf=p["NF"], tw=p["TW"], ob=p["OUT_W"],
                              thresholds=threshold_memory(node.thresholds, p["PE"]).tolist())
            if u.kind == "pg_mvtu":
                header.update(gates=gate_memory(node, p["PE"]).tolist(), acc_w=p["ACC_W"],
                              nf=p["NF"])
            headers.append(header)
        elif u.kind in ("affine", "threshold"):
            words, bits = channel_rom(node, u.kind, p)
            headers.append({"kind": "table", "c_name": ident(u.layer), "layer": u.layer,
                            "unit": u.kind, "pe": p["PE"], "nf": p["NF"], "bits": bits,
                            "words": [[format(w, f"0{max(1, -(-bits // 4))}x") for w in row]
                                      for row in words]})
        elif u.kind == "pool":
            c = p["SIMD"]
            mask = np.zeros(c, dtype=np.uint8)
            mask[list(node.min_channels)] = 1
            headers.append({"kind": "pool", "c_name": ident(u.layer), "layer": u.layer,
                            "c": c, "min_mask": format(bits_to_int(mask),
                                                       f"0{max(1, -(-c // 4))}x")})
    return headers


def plan_design(graph: Graph, options: CompileOptions, plan: Plan | None = None
                ) -> dict[str, Any]:
    """Template context: the plan's streams and units (in dataflow order), parameter
    headers and I/O formats."""
    if options.control not in CONTROLS:
        raise IRError(f"option control={options.control!r}: expected one of {CONTROLS}")
    if not _IDENT.match(options.top or ""):
        raise IRError(f"option top={options.top!r} is not a C identifier")
    if not options.clock_ns > 0:
        raise IRError(f"option clock_ns={options.clock_ns!r}: expected a positive period")
    plan = plan or build_plan(graph, options.top)
    top = options.top
    styles = memory_styles(plan, options.part)
    streams = [stream_context(s, styles) for s in plan.streams]
    units = [unit_context(graph, plan, u, top, styles[u.name]) for u in plan.units]
    params = param_headers(graph, plan)
    in_io = port_io(plan.input_stream, plan.input_shape)
    out_io = port_io(plan.output_stream, plan.output_shape)
    widths = [s["width"] for s in streams] + [in_io["axi_w"], out_io["axi_w"]]
    widths += [p["word_bits"] for p in params if p["kind"] == "matvec"]
    widths += [p["c"] for p in params if p["kind"] == "pool"]
    widths += [p["bits"] for p in params if p["kind"] == "table"]
    max_w = max(widths)
    if max_w > AP_INT_LIMIT_W:
        raise IRError(f"a stream or weight word of {max_w} bits exceeds the ap_int limit "
                      f"of {AP_INT_LIMIT_W}; lower SIMD/PE or the tensor width")
    # every unit's header (the ports' adapters come with the top's header)
    unit_headers = sorted(u.header for u in UNITS.values() if u.header and u.kind != "ports")
    return {"streams": streams, "units": units, "params": params, "in_io": in_io,
            "unit_headers": unit_headers,
            "out_io": out_io, "input": plan.input, "output": plan.output,
            "ap_int_max_w": max_w if max_w > AP_INT_DEFAULT_MAX_W else 0,
            "top": top, "part": options.part, "clock_ns": options.clock_ns,
            "control": options.control, "graph_name": graph.name,
            "partition_limit": partition_limit(plan.units), "cosim_frames": COSIM_FRAMES,
            "frames_per_call": FRAMES_PER_CALL if options.control == "axilite" else 1,
            "tb_frames": TB_FRAMES}


def _tb_frames(graph: Graph) -> tuple[np.ndarray, np.ndarray]:
    from bnn2fpga.testing import random_input_codes

    codes = random_input_codes(np.random.default_rng(0), graph, TB_FRAMES)
    return codes, reference.execute(graph, codes)[graph.output.name]


def write_codes(path: Path, codes: np.ndarray) -> None:
    """One frame per line, its codes flattened channels-last (the testbench's format)."""
    codes = np.asarray(codes, dtype=np.int64)
    rows = codes.reshape(len(codes), int(np.prod(codes.shape[1:])))
    path.write_text("".join(" ".join(map(str, r)) + "\n" for r in rows.tolist()))


def write_project(graph: Graph, out_dir: Path, options: CompileOptions,
                  plan: Plan | None = None) -> None:
    """Write the HLS project for ``graph`` into ``out_dir`` (see the module docstring)."""
    plan = plan_design(graph, options, plan)
    out = Path(out_dir)
    env = template_env()
    top = options.top
    (out / "firmware" / "params").mkdir(parents=True, exist_ok=True)
    (out / "tb_data").mkdir(exist_ok=True)
    lib = out / LIB_DIR
    if lib.exists():
        shutil.rmtree(lib)
    shutil.copytree(resource_path("hls"), lib, ignore=shutil.ignore_patterns("__pycache__"))

    def render(template: str, dest: Path, **extra: Any) -> None:
        dest.write_text(env.get_template(f"hls/{template}").render(**plan, **extra))

    for p in plan["params"]:
        render("params.h.j2", out / "firmware" / "params" / f"{p['c_name']}.h", p=p)
    render("top.h.j2", out / "firmware" / f"{top}.h")
    render("top.cpp.j2", out / "firmware" / f"{top}.cpp")
    render("testbench.cpp.j2", out / f"{top}_test.cpp")
    render("build_prj.tcl.j2", out / "build_prj.tcl")
    render("README.md.j2", out / "README.md")
    codes, expected = _tb_frames(graph)
    write_codes(out / "tb_data" / "inputs.txt", codes)
    write_codes(out / "tb_data" / "expected.txt", expected)
    manifest = {"format": "bnn2fpga-hls", "top": top, "graph": graph.name,
                "fingerprint": graph_fingerprint(graph), "input": plan["in_io"],
                "output": plan["out_io"], "lib_dir": LIB_DIR,
                "ap_int_max_w": plan["ap_int_max_w"],
                "sources": [f"firmware/{top}.cpp"], "testbench": f"{top}_test.cpp"}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
