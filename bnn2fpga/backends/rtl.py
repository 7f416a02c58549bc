"""RTL writer: SystemVerilog project for the hardware IR.

``write_project(graph, out_dir, options)`` writes into ``out_dir`` (OUT/rtl):

* the unit library ``bnn_*.sv`` (copied from ``bnn2fpga/rtl``), one module per unit;
* ``<top>.sv``: the generated top level (templates/rtl/top.sv.j2) chaining the units with
  AXI-stream handshakes: width converter -> sliding window -> MVTU / pool -> FIFO per layer;
* memory init files ``<top>_<layer>_{w,t}_pe<ppp>.mem`` next to the sources
  (bare names: ``$readmemh`` resolves them from the simulator's or synthesis tool's working
  directory; ``create_project.tcl`` adds them to the Vivado project, which puts them there);
* ``filelist.f`` (sources in dependency order) and ``rtl_design.json`` (stream formats and
  units, read by the simulator ``bnn2fpga.sim.rtl``);
* ``create_project.tcl`` (a Vivado project: part ``options.part``, the top, the sources in
  filelist order, the ``.mem`` files as project memory files, which Vivado copies into its
  synthesis and simulation run directories) and ``<top>.xdc`` (ap_clk at
  ``options.clock_ns``).

``options.top`` names the top module (and prefixes the memory files); ``options.clock_ns``
is recorded for the simulator's frames/s and constrains ap_clk in the XDC; ``options.part``
is the Vivado project's part; ``options.control`` does not apply (the RTL top is
free-running, like an HLS top with ap_ctrl_none).

The units, their parameters, the streams and their FIFO depths come from the one hardware
plan (``bnn2fpga.plan.build_plan``); this module only renders it, adding the memory images
and file names.  Every instance is named as in the plan.  Streams carry a
frame's codes flattened channels-last, ``lanes`` elements of ``bits`` bits per beat, element
i of a beat at bits [i*bits, (i+1)*bits) (``packing.pack_beats``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from bnn2fpga import packing
from bnn2fpga.backends import CompileOptions
from bnn2fpga.ir import Graph, IRError
from bnn2fpga.ops.pgconv2d import gate_memory
from bnn2fpga.ops.realvalued import channel_rom
from bnn2fpga.plan import PORT_IN, PORT_OUT, Plan, Stream, Unit, build_plan, ident
from bnn2fpga.resources import resource_path, template_env
from bnn2fpga.units import UNITS, rtl_library

# unit library in dependency order (a tool that reads files in order finds leaves first)
LIBRARY = rtl_library()
DESIGN_JSON = "rtl_design.json"
VIVADO_TCL = "create_project.tcl"
# the top's stream ports, <prefix>_TDATA/TVALID/TREADY (+ m_axis_TLAST): the plan's port
# names, which Vivado/Vitis HLS also gives the HLS top's arguments (the tops interchange)
IN_PORT, OUT_PORT = PORT_IN, PORT_OUT


def sv_string(text: str) -> str:
    return '"' + text + '"'


def hex_lines(words: np.ndarray, bits: int) -> list[str]:
    """Rows of 0/1 (element i = bit i) as fixed-width hex words."""
    return [packing.pack_bits_hex(w).rjust(max(1, -(-bits // 4)), "0") for w in words]


def memory_files(graph: Graph, plan: Plan) -> dict[str, list[str]]:
    """The ``$readmemh`` images of every MVTU's weights and thresholds: file name -> lines."""
    mems: dict[str, list[str]] = {}
    for u in plan.units:
        if u.kind in CHANNEL_ROMS:      # per-channel constants (fixed_affine, threshold)
            words, bits = channel_rom(graph[u.layer], u.kind, u.params)
            for pe, row in enumerate(words):
                mems[f"{channel_file(plan, u)}_pe{pe:03d}.mem"] = [
                    format(w, f"0{max(1, -(-bits // 4))}x") for w in row]
        if u.kind not in ("mvtu", "pg_mvtu"):
            continue
        node = graph[u.layer]
        p = u.params
        if p.get("WB", 1) > 1:          # integer weights, lane i at [i*WB +: WB]
            imem = packing.int_weight_memory(node.weights, p["PE"], p["SIMD"])
            digits = -(-p["SIMD"] * p["WB"] // 4)
            for pe in range(p["PE"]):
                mems[f"{weight_file(plan, u)}_pe{pe:03d}.mem"] = [
                    format(packing.pack_fields(w, p["WB"]), f"0{digits}x") for w in imem[pe]]
        else:
            wmem = packing.weight_memory(node.weights, p["PE"], p["SIMD"])
            for pe in range(p["PE"]):
                mems[f"{weight_file(plan, u)}_pe{pe:03d}.mem"] = hex_lines(wmem[pe],
                                                                           p["SIMD"])
        if p["NT"]:
            tmem = packing.threshold_memory(node.thresholds, p["PE"])
            digits = -(-p["NT"] * p["TW"] // 4)
            for pe in range(p["PE"]):
                mems[f"{threshold_file(plan, u)}_pe{pe:03d}.mem"] = [
                    format(packing.codes_to_int(row, p["TW"]), f"0{digits}x")
                    for row in tmem[pe]]
        if u.kind == "pg_mvtu":
            gmem = gate_memory(node, p["PE"])
            for pe in range(p["PE"]):
                mems[f"{gate_file(plan, u)}_pe{pe:03d}.mem"] = [
                    format(packing.codes_to_int([g], p["ACC_W"]), f"0{-(-p['ACC_W'] // 4)}x")
                    for g in gmem[pe]]
    return mems


def gate_file(plan: Plan, unit: Unit) -> str:
    return f"{plan.top}_{ident(unit.layer)}_g"


# unit kind -> the SV parameter naming its per-channel ROM's init files
CHANNEL_ROMS = {"affine": "CONST_FILE", "threshold": "THRESH_FILE"}


def channel_file(plan: Plan, unit: Unit) -> str:
    return f"{plan.top}_{ident(unit.layer)}_c"


def weight_file(plan: Plan, unit: Unit) -> str:
    return f"{plan.top}_{ident(unit.layer)}_w"


def threshold_file(plan: Plan, unit: Unit) -> str:
    return f"{plan.top}_{ident(unit.layer)}_t" if unit.params["NT"] else "none"


def module_params(graph: Graph, plan: Plan, unit: Unit) -> list[tuple[str, str]]:
    """The SystemVerilog parameters of one instance: the plan's integers, plus the memory
    file names of an MVTU and the min-channel mask of a max-pool."""
    params = [(k, str(v)) for k, v in unit.params.items()]
    if unit.kind in ("mvtu", "pg_mvtu"):
        params += [("WEIGHT_FILE", sv_string(weight_file(plan, unit))),
                   ("THRESH_FILE", sv_string(threshold_file(plan, unit)))]
    if unit.kind == "pg_mvtu":
        params.append(("GATE_FILE", sv_string(gate_file(plan, unit))))
    elif unit.kind == "thermometer":
        t = [int(v) for v in graph[unit.layer].thresholds]
        word = sum(v << (9 * k) for k, v in enumerate(t))
        params.append(("THRESH", f"{9 * len(t)}'h{word:x}"))
    elif unit.kind in CHANNEL_ROMS:
        params.append((CHANNEL_ROMS[unit.kind], sv_string(channel_file(plan, unit))))
    elif unit.kind == "pool":
        node = graph[unit.layer]
        c = node.out.channels
        mask = np.zeros(c, dtype=np.uint8)
        mask[list(node.min_channels)] = 1
        params.append(("MIN_MASK", f"{c}'h{packing.pack_bits_hex(mask)}"))
    return params


def byte_width(bits: int) -> int:
    """AXI-stream TDATA is a whole number of bytes."""
    return -(-bits // 8) * 8


def consumer_side(plan: Plan, stream: str) -> str:
    """The wire a stream's consumer reads: the stream's own, or its FIFO's output."""
    return f"{stream}_f" if plan.stream(stream).depth else stream


def wiring(plan: Plan) -> list[tuple[Unit, str, str]]:
    """Every instance of the top with the wires its s_* and m_* ports connect to.  A FIFO
    sits on its stream: it reads the producer's side and drives the consumer's."""
    out = []
    for u in plan.instances():
        if u.kind == "fifo":
            out.append((u, u.inp, f"{u.out}_f"))
        else:
            out.append((u, consumer_side(plan, u.inp), u.out))
    return out


def design_info(plan: Plan) -> dict[str, Any]:
    """What the simulator needs to know about the generated top (rtl_design.json)."""
    def stream_info(s: Stream) -> dict[str, Any]:
        return {"lanes": s.lanes, "bits": s.bits, "signed": s.signed,
                "tdata_bits": byte_width(s.width), "beats_per_frame": s.beats}

    return {"format": "bnn2fpga-rtl", "version": 2, "top": plan.top,
            "clock": "ap_clk", "reset": "ap_rst_n", "reset_active_low": True,
            "in_port": IN_PORT, "out_port": OUT_PORT,
            "input": stream_info(plan.input_stream),
            "output": stream_info(plan.output_stream),
            "units": [{"name": u.name, "layer": u.layer, "module": u.module,
                       "in_beats": u.in_beats, "out_beats": u.out_beats,
                       "in_stream": s_wire, "out_stream": m_wire}
                      for u, s_wire, m_wire in wiring(plan)],
            "sources": [*LIBRARY, f"{plan.top}.sv"]}


def render_top(graph: Graph, plan: Plan) -> str:
    """The top module: every plan instance (units and stream FIFOs) under its plan name.  A
    FIFO on a stream with a tap-valid flag stores it as the top bit of each entry; a FIFO
    on a sliding window's stream whose flag does not matter drops it."""
    instances = []
    for u, s_wire, m_wire in wiring(plan):
        entry = {"name": u.name, "module": u.module, "params": module_params(graph, plan, u),
                 "s": s_wire, "m": m_wire, "s_data": f"{s_wire}_tdata",
                 "m_data": f"{m_wire}_tdata", "s_user": consumer_has_user(plan, u.inp),
                 "m_user": UNITS[u.kind].drives_tap_valid,
                 "takes_user": UNITS[u.kind].reads_tap_valid, "drop_user": False,
                 "ports": []}
        if len(u.inputs) > 1 or len(u.outputs) > 1:
            entry["ports"] = unit_ports(plan, u)
        if u.kind == "fifo" and window_drives(plan, u.inp):
            if plan.stream(u.inp).tap_valid:
                entry["s_data"] = f"{{{s_wire}_tuser, {s_wire}_tdata}}"
                entry["m_data"] = f"{{{m_wire}_tuser, {m_wire}_tdata}}"
            else:
                entry["drop_user"] = True
        instances.append(entry)
    wires: list[dict[str, Any]] = []
    for s in plan.streams:
        wires.append({"name": s.name, "width": s.width, "user": window_drives(plan, s.name)})
        if s.depth:
            wires.append({"name": f"{s.name}_f", "width": s.width,
                          "user": s.tap_valid})
    inp, out = plan.input_stream, plan.output_stream
    return template_env().get_template("rtl/top.sv.j2").render(
        top=plan.top, units=instances, in_port=IN_PORT, out_port=OUT_PORT, streams=wires,
        inp=inp.name, out=consumer_side(plan, out.name), in_width=inp.width,
        out_width=out.width, in_tdata=byte_width(inp.width),
        out_tdata=byte_width(out.width), out_beats=out.beats)


def unit_ports(plan: Plan, u: Unit) -> list[dict[str, str]]:
    """The stream ports of a unit of several inputs (a join: s0_*, s1_*) or outputs (a
    fork: m0_*, m1_*) and the wires they connect to."""
    def named(base: str, wires: list[str]) -> list[dict[str, str]]:
        return [{"prefix": base if len(wires) == 1 else f"{base}{k}", "wire": w}
                for k, w in enumerate(wires)]

    return (named("s", [consumer_side(plan, i) for i in u.inputs])
            + named("m", list(u.outputs)))


def window_drives(plan: Plan, stream: str) -> bool:
    """Whether ``stream`` has a TUSER (tap valid) wire: its producer is a sliding window,
    which always drives one."""
    s = plan.stream(stream)
    return any(u.name == s.producer and UNITS[u.kind].drives_tap_valid for u in plan.units)


def consumer_has_user(plan: Plan, stream: str) -> bool:
    """Whether the wire ``stream``'s consumer reads has a TUSER: the window's own, or a
    FIFO's output where the plan says the flag matters (a padded window)."""
    return plan.stream(stream).tap_valid if plan.stream(stream).depth else window_drives(
        plan, stream)


def write_project(graph: Graph, out_dir: Path, options: CompileOptions | None = None,
                  plan: Plan | None = None) -> None:
    """Write the SystemVerilog project of ``graph`` into ``out_dir`` (see module doc)."""
    options = options or CompileOptions()
    if not options.clock_ns > 0:
        raise IRError(f"option clock_ns={options.clock_ns!r}: expected a positive period")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plan = plan or build_plan(graph, options.top)
    lib = resource_path("rtl")
    for name in LIBRARY:
        shutil.copyfile(lib / name, out_dir / name)
    (out_dir / f"{plan.top}.sv").write_text(render_top(graph, plan))
    mems = memory_files(graph, plan)
    for name, lines in mems.items():
        (out_dir / name).write_text("\n".join(lines) + "\n")
    info = design_info(plan)
    info["mem_files"] = sorted(mems)
    info["clock_ns"] = options.clock_ns
    info["graph"] = graph.name
    (out_dir / "filelist.f").write_text("\n".join(info["sources"]) + "\n")
    (out_dir / DESIGN_JSON).write_text(json.dumps(info, indent=1) + "\n")
    env = template_env()
    context = {"top": plan.top, "graph_name": graph.name, "part": options.part,
               "clock_ns": options.clock_ns, "sources": info["sources"],
               "mem_files": info["mem_files"]}
    (out_dir / VIVADO_TCL).write_text(
        env.get_template("rtl/create_project.tcl.j2").render(**context))
    (out_dir / f"{plan.top}.xdc").write_text(env.get_template("rtl/top.xdc.j2").render(**context))
