"""The one hardware plan: which units implement a hardware graph, and how they connect.

``build_plan(graph)`` walks the hardware IR once and returns a typed ``Plan``:

* ``units``: in dataflow order, each with a ``kind`` (``dwc``, ``swu``, ``mvtu``, ``pool``,
  ``majority_pool``), integer ``params``, the IR layer it implements and its input and
  output streams;
* ``streams``: every edge between two units (or a unit and the top's ``s_axis``/``m_axis``
  ports), with its lanes, element bits, beats per frame and FIFO ``depth`` (0: a direct
  handshake; otherwise a FIFO of that many beats sits on the stream).

The RTL writer, the HLS writer, the estimator, the folding search and the report all read
this plan; none derives units of its own.  Memory images (weights, thresholds) are not part
of the plan: a writer renders them from the IR node when it writes files
(``packing.weight_memory`` / ``packing.threshold_memory``), so the folding search can build
plans for many foldings cheaply.  ``plan_to_json`` is what ``compile`` writes as
``OUT/plan.json``.

Micro-architecture (both writers realise it the same way):

* a width converter wherever a producer's lanes per beat differ from what the consumer takes
  (one unit, whatever the ratio of the widths);
* a sliding window in front of every conv's MVTU and every pool's reducer;
* a FIFO of ``FIFO_DEPTH`` beats behind every layer's last unit;
* a FIFO of one input vector in front of a dense MVTU with several neuron folds
  (``input_fifo_depth``), which keeps back-to-back dense layers from serialising;
* top-level AXI streams at most ``AXIS_MAX_W`` bits wide.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bnn2fpga.folding import folding_error
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
from bnn2fpga.units import UNITS

FIFO_DEPTH = 2           # the FIFO behind every layer (>= 2: one beat per cycle)
AXIS_MAX_W = 1024        # widest TDATA of the top's AXI streams
PORT_IN, PORT_OUT = "s_axis", "m_axis"
PLAN_FORMAT = "bnn2fpga-plan"
PLAN_VERSION = 1

@dataclass
class Stream:
    """An AXI-stream edge: ``lanes`` elements of ``bits`` bits per beat, ``beats`` per
    frame, from ``producer`` to ``consumer`` (unit names, or the top's ports)."""

    name: str
    producer: str
    consumer: str
    lanes: int
    bits: int
    beats: int
    signed: bool = False
    tap_valid: bool = False   # a valid flag rides along (a padded tap of a sliding window)
    depth: int = 0            # FIFO beats on this stream; 0 = direct handshake
    fifo: str = ""            # the FIFO's instance name (depth > 0)
    fifo_layer: str = ""      # the IR layer whose resources count the FIFO

    @property
    def width(self) -> int:
        return self.lanes * self.bits


@dataclass
class Unit:
    """One unit instance: ``module`` with integer ``params``, implementing IR ``layer``."""

    name: str
    module: str
    layer: str
    params: dict[str, int]
    kind: str = ""
    inp: str = ""             # input stream name
    out: str = ""             # output stream name
    in_beats: int = 0         # beats per frame on inp and out
    out_beats: int = 0


@dataclass
class Plan:
    top: str
    units: list[Unit] = field(default_factory=list)
    streams: list[Stream] = field(default_factory=list)
    input: str = ""           # name of the stream on s_axis
    output: str = ""          # name of the stream on m_axis
    input_shape: tuple[int, ...] = ()
    output_shape: tuple[int, ...] = ()

    def stream(self, name: str) -> Stream:
        for s in self.streams:
            if s.name == name:
                return s
        raise KeyError(name)

    def unit(self, layer: str, kind: str) -> Unit | None:
        """The unit of ``kind`` implementing ``layer`` (None if it has none)."""
        return next((u for u in self.units if u.layer == layer and u.kind == kind), None)

    def layer_units(self, layer: str) -> list[Unit]:
        return [u for u in self.units if u.layer == layer]

    @property
    def input_stream(self) -> Stream:
        return self.stream(self.input)

    @property
    def output_stream(self) -> Stream:
        return self.stream(self.output)

    def fifos(self) -> list[Unit]:
        """The FIFOs on the plan's streams, as units (the RTL instantiates them)."""
        return [fifo_unit(s) for s in self.streams if s.depth]

    def instances(self) -> list[Unit]:
        """Every instance of the RTL top in dataflow order: units, and each stream's FIFO
        right after the unit that produces into it."""
        by_producer: dict[str, list[Stream]] = {}
        for s in self.streams:
            if s.depth:
                by_producer.setdefault(s.producer, []).append(s)
        out = [fifo_unit(s) for s in by_producer.get(PORT_IN, [])]
        for u in self.units:
            out.append(u)
            out += [fifo_unit(s) for s in by_producer.get(u.name, [])]
        return out


def fifo_unit(s: Stream) -> Unit:
    """The FIFO that realises stream ``s``'s depth, as a unit (kind ``fifo``)."""
    return Unit(s.fifo, UNITS["fifo"].module, s.fifo_layer, {"W": s.width, "DEPTH": s.depth},
                "fifo", s.name, s.name, s.beats, s.beats)


def ident(name: str) -> str:
    """An identifier valid in SystemVerilog and C++ (and a file-name stem) for an IR name."""
    s = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return s if re.match(r"[A-Za-z]", s) else f"n_{s}"


def elem_bits(t: TensorType) -> int:
    """Bits of one streamed element of a tensor."""
    if t.is_binary:
        return 1
    if t.encoding in ("uint", "int"):
        return int(t.bits)
    raise IRError(f"a {t.encoding!r} tensor cannot be streamed in hardware; run the passes "
                  "(compile the model) first")


def input_fifo_depth(node: Node, pe: int, simd: int) -> int:
    """Beats of the FIFO in front of ``node``'s MVTU at folding (pe, simd), 0 for none.

    An MVTU with one output pixel (a dense layer) takes its input vector only during its
    first neuron fold (FINN-style input caching) and replays it for the other NF - 1 folds.
    A FIFO of one whole vector (SF words of SIMD codes) right in front of it lets the
    producer write the next vector meanwhile, and the MVTU then reads it at one word per
    cycle: the pair runs at the slower one's folded rate instead of serialising.  Convs need
    none (their sliding window buffers rows, a whole frame when the window covers the
    input); nor does an MVTU with one neuron fold."""
    if not isinstance(node, Dense) or isinstance(node, Conv2D) or node.out_channels == pe:
        return 0
    return max(FIFO_DEPTH, node.fan_in // simd)


def axis_lanes(lanes: int, bits: int) -> int:
    """Lanes per beat of a top-level AXI stream: ``lanes``, or its largest divisor that
    fits ``AXIS_MAX_W`` bits."""
    if lanes * bits <= AXIS_MAX_W:
        return lanes
    return max(d for d in range(1, lanes + 1) if lanes % d == 0 and (d == 1
                                                                     or d * bits <= AXIS_MAX_W))


def first_lanes(graph: Graph, node: Node, fold: dict[str, tuple[int, int]]) -> int:
    """Elements per beat that ``node``'s first unit consumes (a Reshape passes the stream
    on to its consumer)."""
    if isinstance(node, Reshape):
        nxt = graph.consumers(node.name)
        return first_lanes(graph, nxt[0], fold) if nxt else node.out.shape[-1]
    if isinstance(node, Dense):
        return fold[node.name][1]
    if isinstance(node, (MaxPool2D, MajorityPool2D)):
        return node.out.channels
    raise IRError(f"no hardware unit implements node {node.name!r} ({node.op}); run the "
                  "passes so that only hardware nodes remain")


def mvtu_params(node: Dense, in_type: TensorType, pe: int, simd: int) -> dict[str, int]:
    """bnn_mvtu / MatrixVectorActivate parameters of ``node`` at (pe, simd)."""
    bound = accumulator_bound(node, in_type)
    acc_w = node.acc_bits  # set by passes.assign_accumulator_widths
    if acc_w < 2 or (1 << (acc_w - 1)) - 1 < bound + 1:
        raise IRError(f"layer {node.name!r}: acc_bits={acc_w} cannot hold the worst-case "
                      f"accumulator {bound} and the never-on threshold {bound + 1}; run the "
                      "passes (assign_accumulator_widths)")
    nt = 0 if node.thresholds is None else int(node.thresholds.shape[1])
    if nt:
        out_w = max(1, nt.bit_length())
        if node.out.encoding == "uint" and node.out.bits < out_w:
            raise IRError(f"layer {node.name!r}: {nt} thresholds need {out_w} output bits, "
                          f"the IR declares {node.out.bits}")
        if node.out.encoding != "uint" and nt != 1:
            raise IRError(f"layer {node.name!r}: a {node.out.encoding} output takes one "
                          f"threshold per channel, got {nt}")
    else:
        out_w = acc_w
    return {"PE": pe, "SIMD": simd, "NF": node.out_channels // pe, "SF": node.fan_in // simd,
            "IN_BITS": elem_bits(in_type), "IN_UINT": int(in_type.encoding != "bipolar"),
            "USE_TAP_VALID": int(uses_tap_valid(node, in_type)), "ACC_W": acc_w, "NT": nt,
            "TW": acc_w, "OUT_W": out_w}


def uses_tap_valid(node: Node, in_type: TensorType) -> bool:
    """Whether the sliding window in front of ``node`` flags padded taps: a bipolar conv
    padded with zeros (a padded tap adds exactly 0, a value bipolar bits cannot hold), and a
    padded pool (a padded position is ignored).  Without padding no tap is ever invalid."""
    if not any(getattr(node, "pads", ())):
        return False
    if isinstance(node, Conv2D):
        return in_type.encoding == "bipolar" and node.pad == "zero"
    return isinstance(node, (MaxPool2D, MajorityPool2D))


def pad_code(node: Conv2D, bits: int) -> int:
    """The code a padded tap of ``node``'s window carries when it is not flagged invalid."""
    if node.pad == "zero":
        return 0
    if isinstance(node.pad, int) and 0 <= node.pad < (1 << bits):
        return node.pad
    raise IRError(f"layer {node.name!r}: pad {node.pad!r} is not 'zero' or a {bits}-bit code")


def swu_params(node: Conv2D | MaxPool2D | MajorityPool2D, in_shape: tuple[int, ...],
               simd: int, bits: int) -> dict[str, int]:
    """bnn_swu / SlidingWindow parameters for ``node``'s window over ``in_shape``."""
    if len(in_shape) != 3:
        raise IRError(f"layer {node.name!r}: a sliding window needs an (H, W, C) input, got "
                      f"{in_shape}")
    ih, iw, c = in_shape
    oh, ow = node.out.shape[0], node.out.shape[1]
    return {"SIMD": simd, "EB": bits, "C": c, "IH": ih, "IW": iw, "KH": node.kernel[0],
            "KW": node.kernel[1], "SH": node.stride[0], "SW": node.stride[1],
            "PT": node.pads[0], "PL": node.pads[2], "OH": oh, "OW": ow,
            "PAD_CODE": pad_code(node, bits) if isinstance(node, Conv2D) else 0}


class _Builder:
    """Walks the hardware graph in topological order and appends units and streams."""

    def __init__(self, graph: Graph, top: str, fold: dict[str, tuple[int, int]]) -> None:
        self.graph, self.fold = graph, fold
        self.plan = Plan(top=ident(top))
        self.names: set[str] = {PORT_IN, PORT_OUT, self.plan.top}
        self.cur: Stream | None = None

    def name(self, base: str) -> str:
        cand, k = base, 1
        while cand in self.names:
            cand, k = f"{base}_{k}", k + 1
        self.names.add(cand)
        return cand

    def open_stream(self, producer: str, lanes: int, bits: int, beats: int,
                    signed: bool = False, tap_valid: bool = False) -> Stream:
        s = Stream(self.name(f"{producer}_out" if producer != PORT_IN else "in"), producer, "",
                   lanes, bits, beats, signed, tap_valid)
        self.plan.streams.append(s)
        self.cur = s
        return s

    def add(self, kind: str, layer: str, params: dict[str, int], out_lanes: int,
            out_bits: int, out_beats: int, signed: bool = False, tap_valid: bool = False,
            suffix: str | None = None) -> Unit:
        src = self.cur
        assert src is not None
        unit = Unit(self.name(f"{ident(layer)}_{suffix or kind}"), UNITS[kind].module,
                    layer, params, kind, src.name, "", src.beats, out_beats)
        src.consumer = unit.name
        self.plan.units.append(unit)
        unit.out = self.open_stream(unit.name, out_lanes, out_bits, out_beats, signed,
                                    tap_valid).name
        return unit

    def add_fifo(self, layer: str, depth: int, suffix: str) -> None:
        """Give the current stream a FIFO of ``depth`` more beats (one FIFO per stream)."""
        s = self.cur
        assert s is not None
        if not s.depth:
            s.fifo, s.fifo_layer = self.name(f"{ident(layer)}_{suffix}"), layer
        else:   # two FIFOs back to back are one deeper FIFO, counted with the later layer
            s.fifo_layer = layer
        s.depth += depth

    def convert(self, lanes: int, layer: str, elems: int) -> None:
        """A width converter when the stream's lanes differ from what the next unit takes."""
        s = self.cur
        assert s is not None
        if s.lanes == lanes:
            return
        if elems % lanes:
            raise IRError(f"layer {layer!r}: {lanes} elements per beat do not divide the "
                          f"{elems} elements of its input")
        self.add("dwc", layer, {"IWB": s.width, "OWB": lanes * s.bits}, lanes, s.bits,
                 elems // lanes, s.signed)

    def run(self) -> Plan:
        g = self.graph
        if not g.is_hardware():
            raise IRError(f"graph {g.name!r} still has float-stage nodes; compile the model "
                          "(run the passes) before planning the hardware")
        if len(g.nodes) < 2:
            raise IRError(f"graph {g.name!r} has no layers")
        inp = g.input
        if inp.out.encoding not in ("bipolar", "unipolar", "uint"):
            raise IRError(f"input {inp.name!r}: the hardware streams bipolar, unipolar or "
                          f"uint inputs, not {inp.out.encoding!r}")
        bits = elem_bits(inp.out)
        lanes = axis_lanes(first_lanes(g, g.nodes[1], self.fold), bits)
        self.plan.input = self.open_stream(PORT_IN, lanes, bits, inp.out.size // lanes).name
        self.plan.input_shape = inp.out.shape
        for node in g.nodes[1:]:
            self.check_chain(node)
            if not isinstance(node, Reshape):
                self.lower(node, g.producer(node).out)
        s = self.cur
        assert s is not None
        self.convert(axis_lanes(s.lanes, s.bits), g.output.name, g.output.out.size)
        self.cur.consumer = PORT_OUT
        self.plan.output = self.cur.name
        self.plan.output_shape = g.output.out.shape
        return self.plan

    def check_chain(self, node: Node) -> None:
        """Forks and joins need units the plan does not have yet (stream fork, add,
        concat): refuse them naming the tensor."""
        if len(node.inputs) != 1:
            raise IRError(f"layer {node.name!r} ({node.op}) reads {len(node.inputs)} tensors "
                          f"{node.inputs}: nodes with several inputs (add, concat) are not "
                          "supported by the hardware yet")
        src = node.inputs[0]
        users = [n.name for n in self.graph.consumers(src)]
        if users != [node.name]:
            raise IRError(f"tensor {src!r} feeds {users}: a tensor read by several layers "
                          "(a residual or concat branch) is not supported by the hardware "
                          "yet; each tensor must feed exactly one layer")

    def lower(self, node: Node, in_type: TensorType) -> None:
        """Append the units of one IR node, fed by the current stream."""
        elems = in_type.size
        self.convert(first_lanes(self.graph, node, self.fold), node.name, elems)
        s = self.cur
        assert s is not None
        if isinstance(node, Dense):
            pe, simd = self.fold[node.name]
            if err := folding_error(node, pe, simd):
                raise IRError(f"invalid folding: {err}")
            params = mvtu_params(node, in_type, pe, simd)
            pixels = 1
            if isinstance(node, Conv2D):
                if node.out.shape[-1] != node.out_channels or len(in_type.shape) != 3:
                    raise IRError(f"layer {node.name!r}: conv shapes do not match")
                sp = swu_params(node, in_type.shape, simd, s.bits)
                pixels = node.out.shape[0] * node.out.shape[1]
                self.add("swu", node.name, sp, simd, s.bits,
                         pixels * node.kernel[0] * node.kernel[1] * (sp["C"] // simd),
                         s.signed, tap_valid=bool(params["USE_TAP_VALID"]))
            elif node.fan_in != in_type.size:
                raise IRError(f"layer {node.name!r}: fan-in {node.fan_in} != input size "
                              f"{in_type.size}")
            if depth := input_fifo_depth(node, pe, simd):
                self.add_fifo(node.name, depth, "in_fifo")
            signed = node.thresholds is None
            self.add("mvtu", node.name, params, pe, params["OUT_W"], pixels * params["NF"],
                     signed)
        elif isinstance(node, (MaxPool2D, MajorityPool2D)):
            majority = isinstance(node, MajorityPool2D)
            if majority and in_type.encoding != "bipolar":
                raise IRError(f"layer {node.name!r}: a majority pool takes a bipolar (H, W, C) "
                              f"tensor, not {in_type.encoding}")
            c = in_type.shape[-1]
            oh, ow = node.out.shape[0], node.out.shape[1]
            kk = node.kernel[0] * node.kernel[1]
            self.add("swu", node.name, swu_params(node, in_type.shape, c, s.bits), c,
                     s.bits, oh * ow * kk, s.signed, tap_valid=uses_tap_valid(node, in_type))
            if majority:
                self.add("majority_pool", node.name, {"C": c, "KK": kk}, c, 1, oh * ow,
                         suffix="pool")
            else:
                if any(not 0 <= ch < c for ch in node.min_channels):
                    raise IRError(f"layer {node.name!r}: min_channels {node.min_channels} "
                                  f"outside 0..{c - 1}")
                self.add("pool", node.name, {"SIMD": c, "EB": s.bits, "CG": 1, "KK": kk,
                                             "SIGNED": int(s.signed)},
                         c, s.bits, oh * ow, s.signed)
        else:
            raise IRError(f"no hardware unit implements node {node.name!r} ({node.op})")
        self.add_fifo(node.name, FIFO_DEPTH, "fifo")


def graph_folding(graph: Graph) -> dict[str, tuple[int, int]]:
    return {n.name: (n.pe, n.simd) for n in graph.matvec_nodes()}


def build_plan(graph: Graph, top: str = "bnn_top",
               fold: dict[str, tuple[int, int]] | None = None) -> Plan:
    """The hardware plan of ``graph`` at folding ``fold`` (default: the graph's own)."""
    return _Builder(graph, top, fold or graph_folding(graph)).run()


def layer_plan_units(graph: Graph, node: Dense, pe: int, simd: int) -> list[Unit]:
    """The units and FIFOs of one matrix-vector layer at (pe, simd), without the width
    converter in front of it (which depends on its neighbour's folding): what the folding
    search prices per layer.  The layer's input FIFO and output FIFO are counted apart, as
    in a plan whose layer has a width converter in front."""
    b = _Builder(graph, "layer", {**graph_folding(graph), node.name: (pe, simd)})
    in_type = graph.producer(node).out
    b.open_stream(PORT_IN, simd, elem_bits(in_type), in_type.size // simd)
    b.plan.input = b.cur.name
    b.lower(node, in_type)
    return [u for u in b.plan.instances() if u.kind != "dwc"]


def plan_to_json(plan: Plan) -> dict[str, Any]:
    """``OUT/plan.json``: the units in dataflow order and the streams between them."""
    def stream_json(s: Stream) -> dict[str, Any]:
        return {"name": s.name, "producer": s.producer, "consumer": s.consumer,
                "width": s.width, "lanes": s.lanes, "bits": s.bits, "signed": s.signed,
                "tap_valid": s.tap_valid, "beats_per_frame": s.beats, "depth": s.depth,
                **({"fifo": s.fifo} if s.depth else {})}

    return {"format": PLAN_FORMAT, "version": PLAN_VERSION, "top": plan.top,
            "input": plan.input, "output": plan.output,
            "input_shape": list(plan.input_shape), "output_shape": list(plan.output_shape),
            "units": [{"name": u.name, "kind": u.kind, "layer": u.layer,
                       "rtl_module": u.module, "hls_header": UNITS[u.kind].header,
                       "params": dict(u.params), "input": u.inp, "output": u.out,
                       "input_width": plan.stream(u.inp).width,
                       "output_width": plan.stream(u.out).width,
                       "in_beats": u.in_beats, "out_beats": u.out_beats}
                      for u in plan.units],
            "streams": [stream_json(s) for s in plan.streams]}
