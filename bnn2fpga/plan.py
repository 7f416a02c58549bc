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

Micro-architecture (both writers realise it the same way; each op's own units come from its
``lower`` in ``bnn2fpga.ops``, the rest is this module's):

* a width converter wherever a producer's lanes per beat differ from what the consumer takes
  (one unit, whatever the ratio of the widths);
* a sliding window in front of every conv's MVTU (except a pointwise conv's: 1x1,
  stride 1, unpadded) and every pool's reducer;
* a FIFO of ``FIFO_DEPTH`` beats behind every layer's last unit;
* a fork (two-way; a tree of them for more readers) behind a layer whose tensor several
  layers read; a join (add, concat) reads one beat of each input per step, each input
  converted to the lanes the join takes;
* on every join input, a FIFO deep enough for the beats that arrive before the join can
  consume them (``estimate.schedule.skip_fifo_depths``, from the first-frame schedule): the
  skip branch's FIFO, so that a fork never stalls its long branch;
* a FIFO of one input vector (a conv: one output pixel's window; a pointwise conv: one
  pixel) in front of every MVTU with several neuron folds (``input_fifo_depth``), which
  keeps its producer writing while it replays the vector;
* a FIFO of the window's first input rows in front of every sliding window that a unit
  feeds (``ops.window.window_fifo_depth``), which keeps the producer writing while a
  window called once per frame (HLS, ``ap_ctrl_none``) ends one frame and refills;
* top-level AXI streams at most ``AXIS_MAX_W`` bits wide.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bnn2fpga.ir import Dense, Graph, IRError, Node, TensorType
from bnn2fpga.ops import FIFO_DEPTH, op_type
from bnn2fpga.ops.dense import elem_bits, input_fifo_depth
from bnn2fpga.ops.window import swu_params, window_fifo_depth
from bnn2fpga.units import UNITS

# the lowering rules live with each op (bnn2fpga.ops); the plan's users read them here too
__all__ = ["AXIS_MAX_W", "FIFO_DEPTH", "PORT_IN", "PORT_OUT", "Plan", "Stream", "Unit",
           "axis_lanes", "build_plan", "elem_bits", "fed_by_input", "first_lanes",
           "graph_folding", "ident", "input_fifo_depth", "layer_plan_units", "plan_to_json",
           "swu_params", "window_fifo_depth"]

JOIN_KINDS = ("add", "concat")   # units that read several streams
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
    skip: bool = False        # a join input whose depth the schedule set (a skip FIFO)

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
    inp: str = ""             # input stream name (the first, for a unit of several)
    out: str = ""             # output stream name (the first, for a fork)
    in_beats: int = 0         # beats per frame on inp and out
    out_beats: int = 0
    inputs: list[str] = field(default_factory=list)    # every input stream, in port order
    outputs: list[str] = field(default_factory=list)   # every output stream (a fork: N)

    def __post_init__(self) -> None:
        if not self.inputs and self.inp:
            self.inputs = [self.inp]
        if not self.outputs and self.out:
            self.outputs = [self.out]


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

    def instances(self) -> list[Unit]:
        """Every hardware instance in dataflow order: units, and each stream's FIFO right
        after the unit that produces into it (what the RTL top instantiates and the
        estimator prices)."""
        by_producer: dict[str, list[Stream]] = {}
        for s in self.streams:
            if s.depth:
                by_producer.setdefault(s.producer, []).append(s)
        out = [fifo_unit(s) for s in by_producer.get(PORT_IN, [])]
        for u in self.units:
            out.append(u)
            out += [fifo_unit(s) for s in by_producer.get(u.name, [])]
        return out


def fed_by_input(plan: Plan, s: Stream) -> bool:
    """Whether stream ``s`` carries the top's input (``s_axis``), through width converters
    only: its producer is the host, which offers a beat every cycle."""
    while s.producer != PORT_IN:
        prod = next(u for u in plan.units if u.name == s.producer)
        if prod.kind != "dwc":
            return False
        s = plan.stream(prod.inp)
    return True


def fifo_unit(s: Stream) -> Unit:
    """The FIFO that realises stream ``s``'s depth, as a unit (kind ``fifo``); it stores the
    tap-valid flag beside the data where the stream carries one."""
    return Unit(s.fifo, UNITS["fifo"].module, s.fifo_layer,
                {"W": s.width + int(s.tap_valid), "DEPTH": s.depth}, "fifo", s.name, s.name,
                s.beats, s.beats)


def ident(name: str) -> str:
    """An identifier valid in SystemVerilog and C++ (and a file-name stem) for an IR name."""
    s = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return s if re.match(r"[A-Za-z]", s) else f"n_{s}"


def axis_lanes(lanes: int, bits: int) -> int:
    """Lanes per beat of a top-level AXI stream: ``lanes``, or its largest divisor that
    fits ``AXIS_MAX_W`` bits."""
    if lanes * bits <= AXIS_MAX_W:
        return lanes
    return max(d for d in range(1, lanes + 1) if lanes % d == 0 and (d == 1
                                                                     or d * bits <= AXIS_MAX_W))


def first_lanes(graph: Graph, node: Node, fold: dict[str, tuple[int, int]]) -> int:
    """Elements per beat that ``node``'s first unit consumes (a node with no unit, a
    Reshape, passes the stream on to its consumer)."""
    lanes = op_type(node).first_lanes
    if lanes is None:
        nxt = graph.consumers(node.name)
        return first_lanes(graph, nxt[0], fold) if nxt else node.out.shape[-1]
    return lanes(node, fold)


class _Builder:
    """Walks the hardware graph in topological order and appends units and streams; each
    node's units are fed by the stream that carries its input tensor (a tensor read by
    several nodes, or a node with several inputs, is refused by ``check_chain`` until the
    plan has fork, add and concat units)."""

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
        unit.outputs = [unit.out]
        return unit

    def add_join(self, kind: str, layer: str, params: dict[str, int], srcs: list[Stream],
                 out_lanes: int, out_bits: int, out_beats: int, signed: bool = False) -> Unit:
        """A unit reading several streams (add, concat), one beat of each per step."""
        unit = Unit(self.name(f"{ident(layer)}_{kind}"), UNITS[kind].module, layer, params,
                    kind, srcs[0].name, "", srcs[0].beats, out_beats,
                    inputs=[s.name for s in srcs])
        for s in srcs:
            s.consumer = unit.name
        self.plan.units.append(unit)
        unit.out = self.open_stream(unit.name, out_lanes, out_bits, out_beats, signed).name
        unit.outputs = [unit.out]
        return unit

    def fork(self, src: Stream, tensor: str, layer: str, n: int) -> list[Stream]:
        """``n`` copies of stream ``src`` (``tensor``'s): a tree of two-way forks (``n - 1``
        units, counted with IR ``layer``), each output beat-for-beat the input."""
        if n == 1:
            return [src]
        unit = Unit(self.name(f"{ident(tensor)}_fork"), UNITS["fork"].module, layer,
                    {"W": src.width, "N": 2}, "fork", src.name, "", src.beats, src.beats)
        src.consumer = unit.name
        self.plan.units.append(unit)
        outs = [self.open_stream(unit.name, src.lanes, src.bits, src.beats, src.signed,
                                 src.tap_valid) for _ in range(2)]
        unit.out, unit.outputs = outs[0].name, [o.name for o in outs]
        half = n // 2
        return (self.fork(outs[0], tensor, layer, n - half)
                + self.fork(outs[1], tensor, layer, half))

    def add_fifo(self, layer: str, depth: int, suffix: str) -> None:
        """Give the current stream a FIFO of ``depth`` more beats (one FIFO per stream)."""
        s = self.cur
        assert s is not None
        if not s.depth:
            s.fifo, s.fifo_layer = self.name(f"{ident(layer)}_{suffix}"), layer
        else:   # two FIFOs back to back are one deeper FIFO, counted with the later layer
            s.fifo_layer = layer
        s.depth += depth

    def fed_by_input(self, s: Stream) -> bool:
        return fed_by_input(self.plan, s)

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
        if inp.out.encoding not in ("bipolar", "unipolar", "uint", "fixed", "int"):
            raise IRError(f"input {inp.name!r}: the hardware streams bipolar, unipolar, "
                          f"uint, fixed or int inputs, not {inp.out.encoding!r}")
        bits = elem_bits(inp.out)
        lanes = axis_lanes(first_lanes(g, g.nodes[1], self.fold), bits)
        self.plan.input = self.open_stream(PORT_IN, lanes, bits, inp.out.size // lanes,
                                           signed=inp.out.is_signed).name
        self.plan.input_shape = inp.out.shape
        # tensor -> the streams that carry it, one per read (a fork's outputs, in the order
        # of the reads)
        leaving: dict[str, list[Stream]] = {}
        self.branch(leaving, inp.name)
        for node in g.nodes[1:]:
            srcs = [leaving[i].pop(0) for i in node.inputs]
            ins = [g[i].out for i in node.inputs]
            if op_type(node).arity == 1:
                self.cur = srcs[0]
                self.lower(node, ins[0])
            else:
                self.lower_join(node, srcs, ins)
            self.branch(leaving, node.name)
        s = self.cur = leaving[g.output.name][0]
        assert s is not None
        self.convert(axis_lanes(s.lanes, s.bits), g.output.name, g.output.out.size)
        self.cur.consumer = PORT_OUT
        self.plan.output = self.cur.name
        self.plan.output_shape = g.output.out.shape
        return self.plan

    def branch(self, leaving: dict[str, list[Stream]], tensor: str) -> None:
        """The streams of ``tensor`` (the current stream): one per read by a later node,
        through forks where it has several (the graph's output has one, to m_axis)."""
        assert self.cur is not None
        reads = sum(n.inputs.count(tensor) for n in self.graph.nodes)
        if not reads and tensor != self.graph.output.name:
            raise IRError(f"layer {tensor!r}: its tensor is read by no layer and is not the "
                          f"graph's output ({self.graph.output.name!r}); the hardware has "
                          "one output stream")
        # a fork of the input counts with its first reader (the input has no resources)
        layer = tensor if tensor != self.graph.input.name else next(
            (n.name for n in self.graph.nodes if tensor in n.inputs), tensor)
        leaving[tensor] = self.fork(self.cur, tensor, layer, max(1, reads))

    def lower_join(self, node: Node, srcs: list[Stream], ins: list[TensorType]) -> None:
        """A node of several inputs (add, concat): each input stream through a width
        converter to the lanes its port takes (the op's ``lower`` says which), then its
        op's unit and a FIFO behind it."""
        op = op_type(node)
        op.lower(self, node, (srcs, ins))
        self.add_fifo(node.name, FIFO_DEPTH, "fifo")

    def converted(self, src: Stream, lanes: int, layer: str, elems: int) -> Stream:
        """``src`` through a width converter to ``lanes`` per beat (``convert``)."""
        self.cur = src
        self.convert(lanes, layer, elems)
        assert self.cur is not None
        return self.cur

    def lower(self, node: Node, in_type: TensorType) -> None:
        """Append the units of one IR node (its op's ``lower``), fed by the current stream
        through a width converter where needed, and a FIFO behind its last unit."""
        op = op_type(node)
        if op.first_lanes is None:      # no unit of its own: the stream passes on
            op.lower(self, node, in_type)
            return
        self.convert(op.first_lanes(node, self.fold), node.name, in_type.size)
        op.lower(self, node, in_type)
        self.add_fifo(node.name, FIFO_DEPTH, "fifo")


def graph_folding(graph: Graph) -> dict[str, tuple[int, int]]:
    return {n.name: (n.pe, n.simd) for n in graph.matvec_nodes()}


def build_plan(graph: Graph, top: str = "bnn_top",
               fold: dict[str, tuple[int, int]] | None = None) -> Plan:
    """The hardware plan of ``graph`` at folding ``fold`` (default: the graph's own)."""
    plan = _Builder(graph, top, fold or graph_folding(graph)).run()
    if any(u.kind in JOIN_KINDS for u in plan.units):
        from bnn2fpga.estimate.schedule import skip_fifo_depths

        for name, depth in skip_fifo_depths(graph, plan).items():
            s = plan.stream(name)
            if not s.depth:
                layer = next(u.layer for u in plan.units if u.name == s.consumer)
                s.fifo, s.fifo_layer = f"{name}_skip", layer
            s.depth = max(s.depth, depth)
            s.skip = True
    return plan


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
                **({"fifo": s.fifo} if s.depth else {}),
                **({"skip_fifo": True} if s.skip else {})}

    return {"format": PLAN_FORMAT, "version": PLAN_VERSION, "top": plan.top,
            "input": plan.input, "output": plan.output,
            "input_shape": list(plan.input_shape), "output_shape": list(plan.output_shape),
            "units": [{"name": u.name, "kind": u.kind, "layer": u.layer,
                       "rtl_module": u.module, "hls_header": UNITS[u.kind].header,
                       "params": dict(u.params), "input": u.inp, "output": u.out,
                       "inputs": list(u.inputs), "outputs": list(u.outputs),
                       "input_width": plan.stream(u.inp).width,
                       "output_width": plan.stream(u.out).width,
                       "in_beats": u.in_beats, "out_beats": u.out_beats}
                      for u in plan.units],
            "streams": [stream_json(s) for s in plan.streams]}
