"""HLS backend: a Vivado/Vitis HLS project from the hardware IR.

``write_project(graph, out_dir, options)`` writes into ``out_dir`` (``OUT/hls``)::

    firmware/<top>.h, <top>.cpp     the dataflow top (AXI-stream in/out), one unit per call
    firmware/params/<layer>.h        weights, thresholds, pool min-masks of each layer
    firmware/bnn2fpga/               a copy of the header-only library (bnn2fpga/hls)
    <top>_test.cpp                   testbench: tb_data/inputs.txt -> compare expected.txt
    tb_data/                         a few random frames and their reference outputs
    build_prj.tcl, README.md         csim, csynth, cosim, export IP catalog
    manifest.json                    what the C simulation needs to drive the testbench

Everything textual comes from the Jinja2 templates in ``templates/hls``; this module only
decides the units, their template parameters and the stream between each pair of units.

Stream formats (one ``hls::stream<ap_uint<W>>`` per edge): a tensor is a sequence of elements
in channels-last raster order; a beat carries consecutive elements, element i at bits
[i*EB, (i+1)*EB) (EB = the tensor's bits; bit 1 = +1 for bipolar).  A conv's sliding window
feeds SIMD channels of one tap per beat; a matrix-vector unit emits PE channels of one pixel;
a max-pool takes and emits one pixel (all channels).  Where the producer's and the consumer's
elements per beat differ, a width converter sits between them (two, through the lcm, when
neither divides the other).  The AXI ports carry one input pixel (or the first dense layer's
SIMD elements) and the last unit's beat, narrowed to at most ``AXIS_MAX_W`` bits of TDATA.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bnn2fpga import reference
from bnn2fpga.backends import CompileOptions
from bnn2fpga.folding import divisors, folding_error
from bnn2fpga.ir import (
    Conv2D,
    Dense,
    Graph,
    Input,
    IRError,
    MajorityPool2D,
    MaxPool2D,
    Node,
    Reshape,
    TensorType,
    graph_to_json,
    signed_bits_for,
)
from bnn2fpga.packing import bits_to_int, threshold_memory, weight_memory
from bnn2fpga.resources import resource_path, template_env

CONTROLS = ("ap_ctrl_none", "axilite")
LIB_DIR = "firmware/bnn2fpga"      # where the project keeps its copy of the HLS library
STREAM_DEPTH = 2                   # a chain of blocking units never needs more to progress
TB_FRAMES = 8                      # frames in tb_data for Vivado's csim/cosim
AXIS_MAX_W = 1024                  # widest TDATA the top's AXI streams use
AP_INT_DEFAULT_MAX_W = 1024
AP_INT_LIMIT_W = 4096              # Vitis HLS accepts AP_INT_MAX_W up to 4096
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass
class Edge:
    """An internal stream: ``elems`` elements of ``bits`` bits per beat, ``total`` per frame."""

    stream: str
    elems: int
    bits: int
    total: int
    signed: bool = False

    @property
    def width(self) -> int:
        return self.elems * self.bits

    @property
    def beats(self) -> int:
        return self.total // self.elems


def graph_fingerprint(graph: Graph) -> str:
    """sha256 of the graph's nodes (design.json without meta): ties a project to its graph."""
    text = json.dumps(graph_to_json(graph)["nodes"], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _c_name(name: str, used: set[str]) -> str:
    base = re.sub(r"\W", "_", name) or "layer"
    if base[0].isdigit():
        base = "l_" + base
    candidate, k = base, 1
    while candidate in used:
        candidate, k = f"{base}_{k}", k + 1
    used.add(candidate)
    return candidate


def _element_bits(t: TensorType, layer: str) -> int:
    if t.encoding in ("bipolar", "unipolar"):
        return 1
    if t.encoding in ("uint", "int"):
        return int(t.bits)
    raise IRError(f"layer {layer!r}: a {t.encoding!r} tensor cannot be streamed in hardware; "
                  "run the passes (compile the model) first")


def _axis_elems(elems: int, bits: int) -> int:
    """Elements per AXI beat: ``elems``, or its largest divisor that fits AXIS_MAX_W bits."""
    if elems * bits <= AXIS_MAX_W:
        return elems
    return max(d for d in divisors(elems) if d == 1 or d * bits <= AXIS_MAX_W)


class _Planner:
    """Walks the (chain) graph and collects streams, units and parameter headers."""

    def __init__(self, graph: Graph, top: str) -> None:
        self.graph = graph
        self.top = top
        self.streams: list[dict[str, Any]] = []
        self.units: list[dict[str, Any]] = []
        self.params: list[dict[str, Any]] = []
        self.used: set[str] = {top, "s_axis", "m_axis"}

    # -- streams ------------------------------------------------------------------------
    def new_stream(self, hint: str, width: int) -> str:
        name = _c_name(f"{hint}_s", self.used)
        self.streams.append({"name": name, "width": width})
        return name

    def convert(self, edge: Edge, elems: int, hint: str) -> Edge:
        """``edge`` regrouped to ``elems`` elements per beat (0, 1 or 2 converters)."""
        if edge.elems == elems:
            return edge
        if edge.total % elems:
            raise IRError(f"layer {hint!r}: {elems} elements per beat do not divide the "
                          f"{edge.total} elements of its input")
        steps = [elems]
        if edge.elems % elems and elems % edge.elems:
            steps = [math.lcm(edge.elems, elems), elems]
        for step in steps:
            out = Edge(self.new_stream(f"{hint}_dwc", step * edge.bits), step, edge.bits,
                       edge.total, edge.signed)
            self.units.append({"kind": "dwc", "src": edge.stream, "dst": out.stream,
                               "in_w": edge.width, "out_w": out.width, "num_in": edge.beats})
            edge = out
        return edge

    # -- nodes --------------------------------------------------------------------------
    def input(self, node: Input) -> tuple[Edge, dict[str, Any]]:
        t = node.out
        bits = _element_bits(t, node.name)
        if len(t.shape) == 3:
            elems = t.shape[-1]
        else:
            first = next((n for n in self.graph.nodes[1:] if not isinstance(n, Reshape)), None)
            elems = first.simd if isinstance(first, Dense) and not isinstance(
                first, Conv2D) else t.size
        elems = _axis_elems(elems, bits)
        edge = Edge(self.new_stream("input", elems * bits), elems, bits, t.size)
        io = {"elems": elems, "bits": bits, "beats": edge.beats, "size": t.size,
              "axi_w": 8 * -(-edge.width // 8), "signed": False, "shape": list(t.shape)}
        self.units.append({"kind": "axis_in", "dst": edge.stream, "w": edge.width,
                           "axi_w": io["axi_w"], "beats": edge.beats})
        return edge, io

    def matvec(self, node: Dense, edge: Edge, in_type: TensorType, name: str) -> Edge:
        err = folding_error(node, node.pe, node.simd)
        if err:
            raise IRError(f"invalid folding: {err}")
        bound = reference.accumulator_bound(node, in_type)  # rejects unsupported encodings
        acc_w = node.acc_bits  # set by passes.assign_accumulator_widths
        if acc_w < signed_bits_for(bound + 1):
            raise IRError(f"layer {node.name!r}: acc_bits={node.acc_bits} cannot hold the "
                          f"accumulator bound {bound} and the never-on threshold "
                          f"{bound + 1}; run the passes (assign_accumulator_widths)")
        if isinstance(node, Conv2D):
            if len(in_type.shape) != 3 or node.fan_in != (
                    node.kernel[0] * node.kernel[1] * in_type.shape[-1]):
                raise IRError(f"layer {node.name!r}: fan-in {node.fan_in} does not match the "
                              f"kernel {node.kernel} over the input {in_type.shape}")
        elif node.fan_in != in_type.size:
            raise IRError(f"layer {node.name!r}: fan-in {node.fan_in} != input size "
                          f"{in_type.size}")
        ib = edge.bits
        pe, simd = node.pe, node.simd
        nf, sf = node.out_channels // pe, node.fan_in // simd
        bipolar = in_type.encoding == "bipolar"
        masked = False
        edge = self.convert(edge, simd, name)
        pixels = 1
        if isinstance(node, Conv2D):
            h, w, c = in_type.shape
            oh, ow = node.out.shape[0], node.out.shape[1]
            pixels = oh * ow
            if node.pad == "zero":
                pad_code = 0
                masked = bipolar and any(node.pads)
            else:
                if isinstance(node.pad, str) or int(node.pad) != node.pad:
                    raise IRError(f"layer {node.name!r}: pad={node.pad!r}; expected 'zero' or "
                                  "an integer input code")
                pad_code = int(node.pad)
                if not 0 <= pad_code < (1 << ib):
                    raise IRError(f"layer {node.name!r}: pad={node.pad!r} is not a {ib}-bit "
                                  "input code")
            if node.kernel != (1, 1) or node.stride != (1, 1) or any(node.pads):
                edge = self._window(edge, name, (h, w, c), simd, node.kernel, node.stride,
                                    node.pads, (oh, ow), masked, pad_code)
        lo, hi = -(1 << (acc_w - 1)), (1 << (acc_w - 1)) - 1
        header = {"kind": "matvec", "c_name": name, "layer": node.name,
                  "simd": simd, "pe": pe, "tiles": nf * sf,
                  "weights": self._weight_words(node)}
        if node.thresholds is not None:
            th = np.asarray(node.thresholds, dtype=np.int64)
            if th.ndim != 2 or th.shape[0] != node.out_channels or th.shape[1] < 1:
                raise IRError(f"layer {node.name!r}: thresholds of shape {th.shape}, expected "
                              f"({node.out_channels}, n >= 1)")
            if th.min() < lo or th.max() > hi:
                raise IRError(f"layer {node.name!r}: thresholds outside the {acc_w}-bit "
                              f"range of acc_bits; run the passes (assign_accumulator_widths)")
            nt = th.shape[1]
            ob = _element_bits(node.out, node.name)
            if nt >= (1 << ob):
                raise IRError(f"layer {node.name!r}: {nt} thresholds need "
                              f"{nt.bit_length()} output bits, the output has {ob}")
            header.update(nt=nt, nf=nf, tw=acc_w, ob=ob,
                          thresholds=threshold_memory(th, pe).tolist())
            act = {"kind": "threshold", "pe": pe, "nf": nf, "nt": nt, "tw": acc_w, "ob": ob}
            signed = False
        else:
            ob = _element_bits(node.out, node.name)
            if ob < signed_bits_for(bound):
                raise IRError(f"layer {node.name!r}: an accumulator output of {ob} bits "
                              f"cannot hold the bound {bound}")
            act = {"kind": "accumulator", "ob": ob}
            signed = True
        self.params.append(header)
        dst = self.new_stream(name, pe * ob)
        self.units.append({"kind": "mvtu", "layer": node.name, "c_name": name, "src": edge.stream,
                           "dst": dst, "mw": node.fan_in, "mh": node.out_channels,
                           "simd": simd, "pe": pe, "pixels": pixels, "acc_w": acc_w,
                           "dot": "xnor" if bipolar else "uint", "masked": masked,
                           "ib": ib, "act": act})
        return Edge(dst, pe, ob, node.out.size, signed)

    def _window(self, edge: Edge, name: str, hwc: tuple[int, int, int], simd: int,
                kernel: tuple[int, int], stride: tuple[int, int],
                pads: tuple[int, int, int, int], ohw: tuple[int, int], masked: bool,
                pad_code: int) -> Edge:
        h, w, c = hwc
        pt, _, pl, _ = pads
        dst = self.new_stream(f"{name}_swu", simd * edge.bits + int(masked))
        self.units.append({"kind": "swu", "src": edge.stream, "dst": dst, "h": h, "w": w,
                           "c": c, "simd": simd, "ib": edge.bits, "kh": kernel[0],
                           "kw": kernel[1], "sh": stride[0], "sw": stride[1], "pt": pt,
                           "pl": pl, "oh": ohw[0], "ow": ohw[1], "masked": masked,
                           "pad": pad_code})
        return Edge(dst, simd, edge.bits, ohw[0] * ohw[1] * kernel[0] * kernel[1] * c,
                    edge.signed)

    def _weight_words(self, node: Dense) -> list[list[str]]:
        mem = weight_memory(node.weights, node.pe, node.simd)  # (PE, NF*SF, SIMD) bits
        digits = max(1, -(-node.simd // 4))
        return [[format(bits_to_int(word), f"0{digits}x") for word in row] for row in mem]

    def pool(self, node: MaxPool2D | MajorityPool2D, edge: Edge, in_type: TensorType,
             name: str) -> Edge:
        """Sliding window (SIMD = C, MASKED when padded) + a max or majority reducer."""
        if len(in_type.shape) != 3:
            raise IRError(f"layer {node.name!r}: pooling needs an (H, W, C) input, got "
                          f"{in_type.shape}")
        h, w, c = in_type.shape
        oh, ow = node.out.shape[0], node.out.shape[1]
        masked = any(node.pads)
        majority = isinstance(node, MajorityPool2D)
        if majority and in_type.encoding != "bipolar":
            raise IRError(f"layer {node.name!r}: a majority pool needs a bipolar input, got "
                          f"{in_type.encoding!r}")
        edge = self.convert(edge, c, name)
        edge = self._window(edge, name, (h, w, c), c, node.kernel, node.stride, node.pads,
                            (oh, ow), masked, 0)
        unit = {"kind": "majority" if majority else "pool", "layer": node.name,
                "c_name": name, "src": edge.stream, "c": c, "ib": edge.bits,
                "signed": in_type.encoding == "int", "masked": masked,
                "taps": node.kernel[0] * node.kernel[1], "pixels": oh * ow}
        if not majority:
            if any(not 0 <= ch < c for ch in node.min_channels):
                raise IRError(f"layer {node.name!r}: min_channels {node.min_channels} "
                              f"outside 0..{c - 1}")
            mask = np.zeros(c, dtype=np.uint8)
            mask[list(node.min_channels)] = 1
            self.params.append({"kind": "pool", "c_name": name, "layer": node.name, "c": c,
                                "min_mask": format(bits_to_int(mask),
                                                   f"0{max(1, -(-c // 4))}x")})
        unit["dst"] = self.new_stream(name, c * edge.bits)
        self.units.append(unit)
        return Edge(unit["dst"], c, edge.bits, node.out.size, edge.signed)

    def run(self) -> dict[str, Any]:
        g = self.graph
        if not g.is_hardware():
            raise IRError(f"graph {g.name!r} still has float-stage nodes; compile the model "
                          "(run the passes) before writing the HLS project")
        if len(g.nodes) < 2:
            raise IRError(f"graph {g.name!r} has no layers to implement")
        edge, in_io = self.input(g.input)
        types = {g.input.name: g.input.out}
        prev: Node = g.input
        for node in g.nodes[1:]:
            users = [n.name for n in g.consumers(prev.name)]
            if node.inputs != [prev.name] or users != [node.name]:
                raise IRError(f"layer {prev.name!r} feeds {users}, layer {node.name!r} reads "
                              f"{node.inputs}: the HLS backend implements a chain of layers "
                              "(each layer feeds exactly the next one)")
            in_type = types[prev.name]
            name = _c_name(node.name, self.used)
            if isinstance(node, Dense):
                edge = self.matvec(node, edge, in_type, name)
            elif isinstance(node, (MaxPool2D, MajorityPool2D)):
                edge = self.pool(node, edge, in_type, name)
            elif isinstance(node, Reshape):
                if node.out.size != in_type.size:
                    raise IRError(f"layer {node.name!r}: reshape changes the size")
            else:
                raise IRError(f"layer {node.name!r}: the HLS backend has no unit for "
                              f"{node.op!r}")
            types[node.name] = node.out
            prev = node
        out_t = g.output.out
        edge = self.convert(edge, _axis_elems(edge.elems, edge.bits), "output")
        out_io = {"elems": edge.elems, "bits": edge.bits, "beats": edge.beats,
                  "size": out_t.size, "axi_w": 8 * -(-edge.width // 8),
                  "signed": edge.signed, "shape": list(out_t.shape)}
        self.units.append({"kind": "axis_out", "src": edge.stream, "w": edge.width,
                           "axi_w": out_io["axi_w"], "beats": edge.beats})
        widths = [s["width"] for s in self.streams] + [in_io["axi_w"], out_io["axi_w"]]
        widths += [p["simd"] for p in self.params if p["kind"] == "matvec"]
        widths += [p["c"] for p in self.params if p["kind"] == "pool"]
        max_w = max(widths)
        if max_w > AP_INT_LIMIT_W:
            raise IRError(f"a stream or weight word of {max_w} bits exceeds the ap_int limit "
                          f"of {AP_INT_LIMIT_W}; lower SIMD/PE or the tensor width")
        return {"streams": self.streams, "units": self.units, "params": self.params,
                "in_io": in_io, "out_io": out_io,
                "ap_int_max_w": max_w if max_w > AP_INT_DEFAULT_MAX_W else 0}


def plan_design(graph: Graph, options: CompileOptions) -> dict[str, Any]:
    """Template context: streams, units (in dataflow order), parameter headers, I/O formats."""
    if options.control not in CONTROLS:
        raise IRError(f"option control={options.control!r}: expected one of {CONTROLS}")
    if not _IDENT.match(options.top or ""):
        raise IRError(f"option top={options.top!r} is not a C identifier")
    if not options.clock_ns > 0:
        raise IRError(f"option clock_ns={options.clock_ns!r}: expected a positive period")
    plan = _Planner(graph, options.top).run()
    plan.update(top=options.top, part=options.part, clock_ns=options.clock_ns,
                control=options.control, graph_name=graph.name, depth=STREAM_DEPTH)
    return plan


def _tb_frames(graph: Graph) -> tuple[np.ndarray, np.ndarray]:
    from bnn2fpga.testing import random_input_codes

    codes = random_input_codes(np.random.default_rng(0), graph, TB_FRAMES)
    return codes, reference.execute(graph, codes)[graph.output.name]


def write_codes(path: Path, codes: np.ndarray) -> None:
    """One frame per line, its codes flattened channels-last (the testbench's format)."""
    codes = np.asarray(codes, dtype=np.int64)
    rows = codes.reshape(len(codes), int(np.prod(codes.shape[1:])))
    path.write_text("".join(" ".join(map(str, r)) + "\n" for r in rows.tolist()))


def write_project(graph: Graph, out_dir: Path, options: CompileOptions) -> None:
    """Write the HLS project for ``graph`` into ``out_dir`` (see the module docstring)."""
    plan = plan_design(graph, options)
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
    render("README.md.j2", out / "README.md", tb_frames=TB_FRAMES)
    codes, expected = _tb_frames(graph)
    write_codes(out / "tb_data" / "inputs.txt", codes)
    write_codes(out / "tb_data" / "expected.txt", expected)
    manifest = {"format": "bnn2fpga-hls", "top": top, "graph": graph.name,
                "fingerprint": graph_fingerprint(graph), "input": plan["in_io"],
                "output": plan["out_io"], "lib_dir": LIB_DIR,
                "ap_int_max_w": plan["ap_int_max_w"],
                "sources": [f"firmware/{top}.cpp"], "testbench": f"{top}_test.cpp"}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
