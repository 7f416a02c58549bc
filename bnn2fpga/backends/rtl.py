"""RTL writer: SystemVerilog project for the hardware IR.

``write_project(graph, out_dir, options)`` writes into ``out_dir`` (OUT/rtl):

* the unit library ``bnn_*.sv`` (copied from ``bnn2fpga/rtl``), one module per unit;
* ``<top>.sv``: the generated top level (templates/rtl/top.sv.j2) chaining the units with
  AXI-stream handshakes: width converter -> sliding window -> MVTU / pool -> FIFO per layer;
* memory init files ``<top>_<layer>_{w,t}_pe<ppp>.mem`` next to the sources
  (bare names: ``$readmemh`` resolves them from the simulator's or synthesis tool's working
  directory, Vivado finds them once they are added to the project);
* ``filelist.f`` (sources in dependency order) and ``rtl_design.json`` (stream formats and
  units, read by the simulator ``bnn2fpga.sim.rtl``).

``options.top`` names the top module (and prefixes the memory files); ``options.clock_ns``
is recorded for the simulator's frames/s; ``options.control`` does not apply (the RTL top
is free-running, like an HLS top with ap_ctrl_none).

The plan (which units, which parameters) comes from the IR alone: folding, widths
(``Dense.acc_bits``) and thresholds are used as the passes left them.  Streams carry a
frame's codes flattened channels-last, ``lanes`` elements of ``bits`` bits per beat, element
i of a beat at bits [i*bits, (i+1)*bits) (``packing.pack_beats``).
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bnn2fpga import packing
from bnn2fpga.backends import CompileOptions
from bnn2fpga.ir import (
    Conv2D,
    Dense,
    Graph,
    IRError,
    MajorityPool2D,
    MaxPool2D,
    Node,
    Reshape,
    TensorType,
)
from bnn2fpga.reference import accumulator_bound
from bnn2fpga.resources import resource_path, template_env

# unit library in dependency order (a tool that reads files in order finds leaves first)
LIBRARY = ("bnn_adder_tree.sv", "bnn_xnor_popcount.sv", "bnn_uint_dot.sv", "bnn_mvtu.sv",
           "bnn_swu.sv", "bnn_pool.sv", "bnn_majority_pool.sv", "bnn_dwc_up.sv", "bnn_dwc_down.sv",
           "bnn_dwc_shift.sv", "bnn_dwc.sv", "bnn_fifo.sv", "bnn_frame_last.sv")
FIFO_DEPTH = 2  # the FIFO after every layer (see input_fifo_depth for dense inputs)
DESIGN_JSON = "rtl_design.json"
# the top's stream ports, <prefix>_TDATA/TVALID/TREADY (+ m_axis_TLAST): the names Vivado/Vitis
# HLS gives the HLS top's s_axis/m_axis arguments, so the two tops are interchangeable
IN_PORT, OUT_PORT = "s_axis", "m_axis"


@dataclass
class Stream:
    """An AXI-stream between units: ``lanes`` elements of ``bits`` bits per beat."""

    name: str
    lanes: int
    bits: int
    signed: bool = False
    user: bool = False  # carries TUSER = tap valid (sliding window -> consumer)

    @property
    def width(self) -> int:
        return self.lanes * self.bits


@dataclass
class Unit:
    """One unit instance of the generated top."""

    name: str            # instance name (also the name the hang detector reports)
    layer: str           # IR node it implements
    module: str
    params: dict[str, str]
    s: Stream
    m: Stream
    in_beats: int        # beats per frame on s and m
    out_beats: int


@dataclass
class Plan:
    top: str
    units: list[Unit] = field(default_factory=list)
    inp: Stream | None = None
    out: Stream | None = None
    mems: dict[str, list[str]] = field(default_factory=dict)  # file name -> hex lines
    frame_in_elems: int = 0
    frame_out_elems: int = 0


def ident(name: str) -> str:
    """A SystemVerilog identifier (and file-name stem) for an IR name."""
    s = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return s if re.match(r"[A-Za-z]", s) else f"n_{s}"


def sv_string(text: str) -> str:
    return '"' + text + '"'


def elem_bits(t: TensorType) -> int:
    return 1 if t.is_binary else int(t.bits)


def lanes_needed(graph: Graph, node: Node) -> int:
    """Elements per beat a node's first unit consumes (Reshape passes the stream on)."""
    if isinstance(node, Reshape):
        nxt = graph.consumers(node.name)
        return lanes_needed(graph, nxt[0]) if nxt else node.out.shape[-1]
    if isinstance(node, Dense):
        return node.simd
    if isinstance(node, (MaxPool2D, MajorityPool2D)):
        return node.out.channels
    raise IRError(f"the RTL backend has no unit for node {node.name!r} ({node.op}); run "
                  "the passes so that only hardware nodes remain")


def input_fifo_depth(node: Node, pe: int, simd: int) -> int:
    """Depth of the FIFO in front of ``node``'s MVTU at folding (pe, simd), 0 for none.

    An MVTU with one output pixel (a dense layer) takes its input vector only during its
    first neuron fold (FINN-style input caching) and replays it for the other NF - 1 folds.
    A FIFO of one whole vector (SF words of SIMD codes) right in front of it, behind the
    width converter, lets the producer write the next vector meanwhile, and the MVTU then
    reads it at one word per cycle: the pair runs at the slower one's folded rate instead
    of serialising.  Convs need none (their sliding window buffers rows, a whole frame
    when the window covers the input); nor does an MVTU with one neuron fold."""
    if not isinstance(node, Dense) or isinstance(node, Conv2D) or node.out_channels == pe:
        return 0
    return max(FIFO_DEPTH, node.fan_in // simd)


def frame_elems(t: TensorType) -> int:
    return int(np.prod(t.shape))


def hex_lines(words: np.ndarray, bits: int) -> list[str]:
    """Rows of 0/1 (element i = bit i) as fixed-width hex words."""
    return [packing.pack_bits_hex(w).rjust(max(1, -(-bits // 4)), "0") for w in words]


class _Planner:
    def __init__(self, graph: Graph, top: str) -> None:
        self.graph = graph
        self.plan = Plan(top=top)
        self.n_streams = 0

    def stream(self, lanes: int, bits: int, signed: bool = False, user: bool = False
               ) -> Stream:
        s = Stream(f"s{self.n_streams}", lanes, bits, signed, user)
        self.n_streams += 1
        return s

    def add(self, unit: Unit) -> Stream:
        self.plan.units.append(unit)
        return unit.m

    def convert(self, cur: Stream, lanes: int, layer: str, elems: int) -> Stream:
        """A width converter when the stream's lanes differ from what the next unit takes."""
        if cur.lanes == lanes:
            return cur
        m = self.stream(lanes, cur.bits, cur.signed)
        return self.add(Unit(f"{ident(layer)}_dwc", layer, "bnn_dwc",
                             {"IWB": str(cur.width), "OWB": str(m.width)}, cur, m,
                             elems // cur.lanes, elems // lanes))

    def fifo(self, cur: Stream, node: Node, beats: int, depth: int = FIFO_DEPTH,
             suffix: str = "fifo") -> Stream:
        m = self.stream(cur.lanes, cur.bits, cur.signed)
        return self.add(Unit(f"{ident(node.name)}_{suffix}", node.name, "bnn_fifo",
                             {"W": str(cur.width), "DEPTH": str(depth)}, cur, m,
                             beats, beats))

    def swu(self, cur: Stream, node: Conv2D | MaxPool2D | MajorityPool2D,
            in_shape: tuple[int, ...], pad_code: int) -> Stream:
        ih, iw, c = in_shape
        oh, ow = node.out.shape[0], node.out.shape[1]
        kh, kw = node.kernel
        taps = oh * ow * kh * kw * (c // cur.lanes)
        m = self.stream(cur.lanes, cur.bits, cur.signed, user=True)
        params = {"SIMD": cur.lanes, "EB": cur.bits, "C": c, "IH": ih, "IW": iw, "KH": kh,
                  "KW": kw, "SH": node.stride[0], "SW": node.stride[1], "PT": node.pads[0],
                  "PL": node.pads[2], "OH": oh, "OW": ow, "PAD_CODE": pad_code}
        return self.add(Unit(f"{ident(node.name)}_swu", node.name, "bnn_swu",
                             {k: str(v) for k, v in params.items()}, cur, m,
                             ih * iw * c // cur.lanes, taps))

    def matvec(self, cur: Stream, node: Dense, in_type: TensorType) -> Stream:
        pe, simd = node.pe, node.simd
        nf, sf = node.out_channels // pe, node.fan_in // simd
        bound = accumulator_bound(node, in_type)
        acc_w = node.acc_bits  # set by passes.assign_accumulator_widths
        if acc_w < 2 or (1 << (acc_w - 1)) - 1 < bound + 1:
            raise IRError(f"layer {node.name!r}: acc_bits={acc_w} cannot hold the worst-case "
                          f"accumulator {bound} and the never-on threshold {bound + 1}; run "
                          "the passes (assign_accumulator_widths)")
        top, name = self.plan.top, ident(node.name)
        wfile = f"{top}_{name}_w"
        wmem = packing.weight_memory(node.weights, pe, simd)
        for p in range(pe):
            self.plan.mems[f"{wfile}_pe{p:03d}.mem"] = hex_lines(wmem[p], simd)
        if node.thresholds is not None:
            nt = node.thresholds.shape[1]
            out_w = max(1, (nt).bit_length())
            if node.out.encoding == "uint":
                if node.out.bits < out_w:
                    raise IRError(f"layer {node.name!r}: {nt} thresholds need {out_w} output "
                                  f"bits, the IR declares {node.out.bits}")
            elif nt != 1:
                raise IRError(f"layer {node.name!r}: a {node.out.encoding} output takes one "
                              f"threshold per channel, got {nt}")
            clamped = np.clip(node.thresholds, -bound, bound + 1)
            tfile = f"{top}_{name}_t"
            tmem = packing.threshold_memory(clamped, pe)
            for p in range(pe):
                self.plan.mems[f"{tfile}_pe{p:03d}.mem"] = [
                    format(packing.codes_to_int(row, acc_w), f"0{-(-nt * acc_w // 4)}x")
                    for row in tmem[p]]
            out = self.stream(pe, out_w)
        else:
            nt, out_w, tfile = 0, acc_w, "none"
            out = self.stream(pe, acc_w, signed=True)
        masked = (isinstance(node, Conv2D) and in_type.encoding == "bipolar"
                  and node.pad == "zero")
        params = {"PE": str(pe), "SIMD": str(simd), "NF": str(nf), "SF": str(sf),
                  "IN_BITS": str(cur.bits), "IN_UINT": "0" if in_type.encoding == "bipolar"
                  else "1", "USE_TAP_VALID": "1" if masked else "0", "ACC_W": str(acc_w),
                  "NT": str(nt), "TW": str(acc_w), "OUT_W": str(out_w),
                  "WEIGHT_FILE": sv_string(wfile), "THRESH_FILE": sv_string(tfile)}
        pixels = node.out.shape[0] * node.out.shape[1] if isinstance(node, Conv2D) else 1
        return self.add(Unit(f"{name}_mvtu", node.name, "bnn_mvtu", params, cur, out,
                             pixels * sf, pixels * nf))

    def pool(self, cur: Stream, node: MaxPool2D) -> Stream:
        c = node.out.channels
        mask = np.zeros(c, dtype=np.uint8)
        mask[list(node.min_channels)] = 1
        oh, ow = node.out.shape[0], node.out.shape[1]
        kk = node.kernel[0] * node.kernel[1]
        m = self.stream(cur.lanes, cur.bits, cur.signed)
        params = {"SIMD": str(cur.lanes), "EB": str(cur.bits), "CG": str(c // cur.lanes),
                  "KK": str(kk), "SIGNED": "1" if cur.signed else "0",
                  "MIN_MASK": f"{c}'h{packing.pack_bits_hex(mask)}"}
        return self.add(Unit(f"{ident(node.name)}_pool", node.name, "bnn_pool", params, cur,
                             m, oh * ow * kk * (c // cur.lanes), oh * ow * (c // cur.lanes)))

    def majority_pool(self, cur: Stream, node: MajorityPool2D) -> Stream:
        c = node.out.channels
        oh, ow = node.out.shape[0], node.out.shape[1]
        kk = node.kernel[0] * node.kernel[1]
        m = self.stream(c, 1)
        return self.add(Unit(f"{ident(node.name)}_pool", node.name, "bnn_majority_pool",
                             {"C": str(c), "KK": str(kk)}, cur, m, oh * ow * kk, oh * ow))

    def run(self) -> Plan:
        g = self.graph
        inp = g.input
        if inp.out.encoding not in ("bipolar", "unipolar", "uint"):
            raise IRError(f"input {inp.name!r}: the RTL backend streams bipolar, unipolar or "
                          f"uint inputs, not {inp.out.encoding!r}")
        if len(g.nodes) < 2:
            raise IRError(f"graph {g.name!r} has no layers")
        cur = self.stream(lanes_needed(g, g.nodes[1]), elem_bits(inp.out))
        self.plan.inp = cur
        self.plan.frame_in_elems = frame_elems(inp.out)
        types = {inp.name: inp.out}
        for node in g.nodes[1:]:
            src = g.producer(node)
            in_type = types[src.name]
            types[node.name] = node.out
            elems = frame_elems(in_type)
            if isinstance(node, Reshape):
                continue
            cur = self.convert(cur, lanes_needed(g, node), node.name, elems)
            if isinstance(node, Dense):
                if isinstance(node, Conv2D):
                    if node.out.shape[-1] != node.out_channels or len(in_type.shape) != 3:
                        raise IRError(f"layer {node.name!r}: conv shapes do not match")
                    pad = node.pad
                    if pad == "zero":
                        pad_code = 0
                    elif isinstance(pad, int) and 0 <= pad < (1 << cur.bits):
                        pad_code = pad
                    else:
                        raise IRError(f"layer {node.name!r}: pad {pad!r} is not 'zero' or a "
                                      f"{cur.bits}-bit code")
                    cur = self.swu(cur, node, in_type.shape, pad_code)
                depth = input_fifo_depth(node, node.pe, node.simd)
                if depth:
                    cur = self.fifo(cur, node, node.fan_in // node.simd, depth, "in_fifo")
                cur = self.matvec(cur, node, in_type)
            elif isinstance(node, MaxPool2D):
                cur = self.swu(cur, node, in_type.shape, 0)
                cur = self.pool(cur, node)
            elif isinstance(node, MajorityPool2D):
                if in_type.encoding != "bipolar" or len(in_type.shape) != 3:
                    raise IRError(f"layer {node.name!r}: a majority pool takes a bipolar "
                                  f"(H, W, C) tensor, not {in_type.encoding} "
                                  f"{in_type.shape}")
                cur = self.swu(cur, node, in_type.shape, 0)
                cur = self.majority_pool(cur, node)
            else:
                raise IRError(f"the RTL backend has no unit for node {node.name!r} "
                              f"({node.op})")
            cur = self.fifo(cur, node, frame_elems(node.out) // cur.lanes)
        self.plan.out = cur
        self.plan.frame_out_elems = frame_elems(g.output.out)
        return self.plan


def plan_design(graph: Graph, top: str = "bnn_top") -> Plan:
    """The units, streams and memory images of ``graph`` (no files written)."""
    return _Planner(graph, ident(top)).run()


def byte_width(bits: int) -> int:
    """AXI-stream TDATA is a whole number of bytes."""
    return -(-bits // 8) * 8


def design_info(plan: Plan) -> dict[str, Any]:
    """What the simulator needs to know about the generated top (rtl_design.json)."""
    def stream_info(s: Stream, elems: int) -> dict[str, Any]:
        return {"lanes": s.lanes, "bits": s.bits, "signed": s.signed,
                "tdata_bits": byte_width(s.width), "beats_per_frame": elems // s.lanes}

    return {"format": "bnn2fpga-rtl", "version": 2, "top": plan.top,
            "clock": "ap_clk", "reset": "ap_rst_n", "reset_active_low": True,
            "in_port": IN_PORT, "out_port": OUT_PORT,
            "input": stream_info(plan.inp, plan.frame_in_elems),
            "output": stream_info(plan.out, plan.frame_out_elems),
            "units": [{"name": u.name, "layer": u.layer, "module": u.module,
                       "in_beats": u.in_beats, "out_beats": u.out_beats,
                       "in_stream": u.s.name, "out_stream": u.m.name}
                      for u in plan.units],
            "sources": [*LIBRARY, f"{plan.top}.sv"],
            "mem_files": sorted(plan.mems)}


def render_top(plan: Plan) -> str:
    units = [{"name": u.name, "module": u.module, "params": list(u.params.items()),
              "s": u.s.name, "m": u.m.name, "s_user": u.s.user, "m_user": u.m.user}
             for u in plan.units]
    streams = {u.s.name: u.s for u in plan.units} | {u.m.name: u.m for u in plan.units}
    return template_env().get_template("rtl/top.sv.j2").render(
        top=plan.top, units=units, in_port=IN_PORT, out_port=OUT_PORT,
        streams=[{"name": s.name, "width": s.width, "user": s.user} for s in
                 sorted(streams.values(), key=lambda s: int(s.name[1:]))],
        inp=plan.inp.name, out=plan.out.name, in_width=plan.inp.width,
        out_width=plan.out.width, in_tdata=byte_width(plan.inp.width),
        out_tdata=byte_width(plan.out.width),
        out_beats=plan.frame_out_elems // plan.out.lanes)


def write_project(graph: Graph, out_dir: Path, options: CompileOptions | None = None) -> None:
    """Write the SystemVerilog project of ``graph`` into ``out_dir`` (see module doc)."""
    options = options or CompileOptions()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plan = plan_design(graph, options.top)
    lib = resource_path("rtl")
    for name in LIBRARY:
        shutil.copyfile(lib / name, out_dir / name)
    (out_dir / f"{plan.top}.sv").write_text(render_top(plan))
    for name, lines in plan.mems.items():
        (out_dir / name).write_text("\n".join(lines) + "\n")
    info = design_info(plan)
    info["clock_ns"] = options.clock_ns
    info["graph"] = graph.name
    (out_dir / "filelist.f").write_text("\n".join(info["sources"]) + "\n")
    (out_dir / DESIGN_JSON).write_text(json.dumps(info, indent=1) + "\n")
