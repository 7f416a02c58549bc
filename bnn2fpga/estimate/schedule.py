"""Cycles: the first-frame schedule (latency) and the pairs of units whose buffering
cannot decouple them (serialisation), from ``bnn2fpga.folding``'s cycle model and the
plan's units, FIFOs and register delays (``bnn2fpga.units``)."""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass

import numpy as np

from bnn2fpga import folding
from bnn2fpga.estimate import streams
from bnn2fpga.ir import (
    Conv2D,
    Dense,
    FixedAffine,
    FixedAvgPool,
    Graph,
    MajorityPool2D,
    MaxPool2D,
    Node,
    PGConv2D,
    Reshape,
    ThermometerEncode,
    Threshold,
)
from bnn2fpga.ops import pgconv2d as pg
from bnn2fpga.ops.window import has_window, is_pointwise
from bnn2fpga.plan import FIFO_DEPTH, Plan, build_plan, input_fifo_depth
from bnn2fpga.units import UNITS, unit_delay
from bnn2fpga.units.dwc import dwc_capacity_beats, dwc_pixel_beats
from bnn2fpga.units.swu import swu_rows

# units that stream one beat of PE lanes per cycle, each output pixel from its own input
ELEMENTWISE = (FixedAffine, Threshold)


def input_arrival(graph: Graph, plan: Plan, interval: float | None = None) -> np.ndarray:
    """Cycle (1 = first beat) at which each input pixel's last beat arrives, the host
    sending one beat per cycle on the plan's input stream (or a frame's beats spread over
    ``interval`` cycles)."""
    t = graph.input.out
    pixels = folding.out_pixels(graph.input)
    per_pixel = (t.channels if len(t.shape) == 3 else t.size) / plan.input_stream.lanes
    if interval is not None:
        per_pixel *= input_beat_gap(plan, interval)
    return np.ceil((np.arange(pixels) + 1) * per_pixel - 1e-9).astype(np.int64)

def input_beat_gap(plan: Plan, interval: float | None = None) -> float:
    """Cycles between the host's input beats: one per cycle, or a frame's beats spread over
    ``interval`` cycles."""
    return 1.0 if interval is None else interval / plan.input_stream.beats

def own_beats(plan: Plan, node: Node, per_pixel: float) -> np.ndarray:
    """Cycles of one output pixel's beats leaving ``node``'s last unit, relative to its
    last beat, for a unit that spaces them evenly over its ``per_pixel`` steps (an MVTU's
    neuron folds; the host's input)."""
    beats = pixel_beats(plan, node)
    return -np.arange(beats - 1, -1, -1) * max(1.0, per_pixel / beats)

def pixel_beats(plan: Plan, node: Node) -> int:
    """Beats per output pixel on the stream ``node``'s last unit drives."""
    unit = [u for u in plan.layer_units(node.name) if u.kind not in ("dwc", "fork")]
    s = plan.stream(unit[-1].out) if unit else plan.input_stream
    return s.beats // folding.out_pixels(node)

def path_delay(plan: Plan, stream: str) -> int:
    """Register stages from a beat entering ``stream`` to its consumer's main unit: one per
    FIFO on the way, plus each width converter's delay (``dwc_delay``)."""
    delay = 0
    while True:
        s = plan.stream(stream)
        delay += UNITS["fifo"].delay({}) if s.depth else 0
        dwc = next((u for u in plan.units if u.name == s.consumer and u.kind == "dwc"), None)
        if dwc is None:
            return delay
        delay += unit_delay(dwc)
        stream = dwc.out

def inner_fifo_delay(plan: Plan, layer: str) -> int:
    """Register stages of the FIFOs between a layer's own units (a conv's input-vector FIFO
    between its sliding window and its MVTU); those between the width converters and forks
    the plan gives the layer and its main units (in front of the first, behind the last)
    are the paths' (``input_delay``)."""
    main = {u.name for u in plan.layer_units(layer) if u.kind not in ("dwc", "fork")}
    return sum(UNITS["fifo"].delay({}) for u in plan.layer_units(layer) if u.name in main
               and plan.stream(u.out).depth and plan.stream(u.out).consumer in main)


MAX_FORK_PASSES = 400      # schedule passes before back-pressure that settles nowhere
UNSETTLED_PASSES = 50      # is taken as the slowest of the last of them


def pixel_schedule(graph: Graph, plan: Plan | None = None,
                   input_interval: float | None = None) -> dict[str, np.ndarray]:
    """Cycle at which each output pixel (raster order) of each node leaves its last unit,
    for the first frame entering an idle pipeline (1 = first input beat); the output
    node's entry is where the frame's beats reach the top's output port
    (``schedule_pass``).

    Back-pressure: a forked tensor reaches its readers no faster than the slowest takes
    it (``bnn_fork`` passes a beat on only once every output took the previous one), a
    down converter takes a word every R cycles, a full FIFO stops its writer.  Each pass
    (``schedule_pass``) gives when each producer offers each beat and when the readers take
    them (``take_beats``); the beat-level timing of each tensor's stream tree
    (``streams.solve``) then gives the producer's handshakes (its ``floor``; a producer
    whose beat waited stood still meanwhile, ``streams.Stalls``) and when each reader
    receives each beat, which the next pass uses; the passes repeat until nothing
    changes.  Where they cycle instead through the same few schedules, the slowest of the
    cycle is returned; where they wander without repeating (5 random graphs in 420:
    Verilator's latency on 2 of them, +4 to +13 cycles, at most 1.4%, on the others), the
    schedule most of the last passes give, with a warning."""
    plan = plan or build_plan(graph)
    trees = stream_trees(graph, plan)
    floor: dict[str, np.ndarray] = {}
    arrive: dict[tuple[str, str], np.ndarray] = {}
    held: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    seen: dict[bytes, int] = {}         # the passes' inputs so far, to find a cycle
    schedules: list[dict[str, np.ndarray]] = []
    for _ in range(MAX_FORK_PASSES):
        avail, takes, offered, own = schedule_pass(graph, plan, input_interval, floor,
                                                   arrive, held)
        new_floor, new_arrive = {}, {}
        for tensor, tree in trees.items():
            n = folding.out_pixels(graph[tensor])
            leaf_takes = {s.name: takes[(tensor, s.name)] for s in tree
                          if s.consumer == "leaf" and (tensor, s.name) in takes}
            root, leaves = streams.solve(tree, offered[tensor], leaf_takes)
            if tensor in own:
                held[tensor] = (own[tensor], root)
            new_floor[tensor] = last_beats(root, n)
            new_arrive.update({(tensor, name): beats for name, beats in leaves.items()})
        if same(new_floor, floor) and same(new_arrive, arrive):
            return avail
        floor, arrive = new_floor, new_arrive
        key = hashlib.sha1(b"".join(v.tobytes() for d in (floor, arrive)
                                    for v in d.values())).digest()
        if key in seen:
            # the passes cycle through the same schedules (each pass's waits move the
            # next one's) instead of settling: the slowest of them
            cycle = schedules[seen[key]:]
            return max(cycle, key=lambda a: int(a[graph.output.name][-1]))
        seen[key] = len(schedules)
        schedules.append(avail)
    # no repeat: the passes wander between schedules (or, if the latency only grows,
    # readers wait on each other through a fork: a deadlock, which the skip FIFOs are
    # sized to rule out); the one most of the last passes give, with a warning
    last = schedules[-UNSETTLED_PASSES:]
    ends = [int(a[graph.output.name][-1]) for a in last]
    common = max(set(ends), key=lambda e: (ends.count(e), e))
    warnings.warn(f"graph {graph.name!r}: the back-pressure schedule did not settle in "
                  f"{MAX_FORK_PASSES} passes; its last {len(last)} give first-frame latencies "
                  f"of {min(ends):,} to {max(ends):,} cycles, and the estimate takes the most "
                  f"common, {common:,}", stacklevel=2)
    return last[len(ends) - 1 - ends[::-1].index(common)]


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def leaving_streams(graph: Graph, plan: Plan) -> dict[str, str]:
    """Node -> the stream its last unit drives (a reshape's: its producer's)."""
    leaving = {graph.input.name: plan.input}
    for node in graph.nodes[1:]:
        if isinstance(node, Reshape):
            leaving[node.name] = leaving[graph.producer(node).name]
        else:
            main = [u for u in plan.layer_units(node.name) if u.kind not in ("dwc", "fork")]
            leaving[node.name] = main[-1].out
    return leaving


def stream_trees(graph: Graph, plan: Plan) -> dict[str, list[streams.TreeStream]]:
    """Tensor -> its stream tree (``streams.stream_tree``), where there is one and the
    pixel-level schedule's beats fit it (whole beats per pixel on every stream); other
    tensors' readers get them at the producer's time plus the path's delay."""
    out = {}
    for name, stream in leaving_streams(graph, plan).items():
        if any(t[0].name == stream for t in out.values()):
            continue            # a reshape's: its producer's tree
        tree = streams.stream_tree(plan, stream)
        n = folding.out_pixels(graph[name])
        if tree is not None and all(s.beats % n == 0 for s in tree):
            out[name] = tree
    return out


def input_take(node: Node, last: np.ndarray, per_pixel: int) -> np.ndarray | None:
    """Cycle at which ``node``'s first unit takes each input pixel's last beat, given its
    last step per output pixel (``last``): a join and an elementwise unit at that step, a
    pointwise MVTU during its first neuron fold (it replays the stored pixel for the
    others); None for a unit that takes its input as it arrives (a sliding window, a
    dense layer's vector)."""
    if len(node.inputs) > 1 or isinstance(node, ELEMENTWISE):
        return last
    if is_pointwise(node):
        nf = node.out_channels // node.pe
        return last - per_pixel + per_pixel // nf
    return None


def take_beats(plan: Plan, node: Node, stream: str, take: np.ndarray,
               last: np.ndarray) -> np.ndarray:
    """When ``node``'s first unit takes each beat of ``stream``, at the earliest: each
    pixel's last beat at ``take``; a pointwise MVTU reads a pixel's SIMD chunks one a cycle
    once it has finished the pixel before (``last``: its last step of each pixel);
    otherwise each beat but the last as it comes (the pixel-level schedule gives no bound
    for them)."""
    k = plan.stream(stream).beats // len(take)
    beats = np.full((len(take), k), np.iinfo(np.int64).min // 4)
    if is_pointwise(node) and len(take) > 1:
        beats[1:] = last[:-1, None] + 1 + np.arange(k)[None, :]
    beats[:, -1] = take
    return beats.ravel()


def schedule_pass(graph: Graph, plan: Plan, input_interval: float | None,
                  floor: dict[str, np.ndarray],
                  arrive: dict[tuple[str, str], np.ndarray] | None = None,
                  held: dict[str, tuple[np.ndarray, np.ndarray]] | None = None
                  ) -> tuple[dict[str, np.ndarray], dict[tuple[str, str], np.ndarray],
                             dict[str, np.ndarray]]:
    """One pass of ``pixel_schedule``, each forked tensor held back to ``floor`` and read
    at ``arrive`` ((tensor, stream into the reader) -> when each pixel's last beat arrives
    there; a pair absent: the producer's time plus ``input_delay``).  Also returns when the
    readers take each tensor's pixels (``input_take``: (tensor, stream into the reader) ->
    cycles) and, per node, when its last unit offers each beat (before ``floor``: what a
    stream tree's timing starts from).  ``held``: tensor -> its producer's offered
    beats and their handshakes in its stream tree: the producer, stalled while a beat waits,
    runs in its own time (``streams.Stalls``).

    A unit spends ``folding.node_cycles / out_pixels`` compute steps per output pixel, one
    per cycle.  Its last step for pixel p comes no earlier than ``per_pixel`` after the
    last step for pixel p-1, nor before the input p waits for has arrived plus what is left
    to do after it (the sliding window's read latency and tap burst, the neuron folds that
    replay the stored input).  Unit register stages and the FIFOs, width converters and
    forks of the plan's streams (``input_delay``) are then added (each unit's ``delay`` in
    ``bnn2fpga.units``).  An elementwise unit or average pool behind a width converter also
    waits for the converter's output beats that leave after the pixel's last input beat:
    the converter sends one beat per cycle, so a pixel whose beats came in a burst queues
    there (``converter_burst``, from each node's ``beat_pattern``), as do a dense layer
    and each input of a join.  A join (add, concat) takes beat b of pixel p once it has
    arrived on every input.  A stream tree's arrivals (``arrive``) hold all of that
    already, and a unit that stood still (``held``) runs its steps in its own time.

    ``input_interval``: the host spreads a frame's input beats over this many cycles (the
    pipeline's steady state at its bottleneck, ``paced_schedule``) instead of one per
    cycle."""
    arrive = arrive or {}
    avail: dict[str, np.ndarray] = {graph.input.name: input_arrival(graph, plan,
                                                                   input_interval)}
    takes: dict[tuple[str, str], np.ndarray] = {}
    offered: dict[str, np.ndarray] = {}
    own: dict[str, np.ndarray] = {}         # offered, in the unit's own time (``Stalls``)
    leaving = leaving_streams(graph, plan)
    # node -> when one output pixel's beats leave, relative to its last (``beat_pattern``)
    pattern = {graph.input.name: own_beats(plan, graph.input, pixel_beats(
        plan, graph.input) * input_beat_gap(plan, input_interval))}
    offered[graph.input.name] = offer(avail[graph.input.name], pattern[graph.input.name])
    if graph.input.name in floor:
        avail[graph.input.name] = np.maximum(avail[graph.input.name], floor[graph.input.name])
    for node in graph.nodes[1:]:
        if isinstance(node, Reshape):
            src = graph.producer(node)
            avail[node.name] = np.full(folding.out_pixels(node), avail[src.name][-1],
                                       dtype=np.int64)
            pattern[node.name] = (pattern[src.name] if len(avail[node.name]) ==
                                  len(avail[src.name]) else np.concatenate(
                [a - avail[src.name][-1] + pattern[src.name] for a in avail[src.name]]))
            offered[node.name] = offer(avail[node.name], pattern[node.name])
            if node.name in floor:
                avail[node.name] = np.maximum(avail[node.name], floor[node.name])
            continue
        main = [u for u in plan.layer_units(node.name) if u.kind not in ("dwc", "fork")]
        t_ins = [last_beats(arrive[(name, stream)], len(avail[name]))
                 if (name, stream) in arrive else avail[name] + input_delay(plan, stream)
                 for name, stream in zip(node.inputs, main[0].inputs, strict=True)]
        if len(node.inputs) > 1:        # a join: pixel p of every input, one pixel a step
            per_pixel = folding.node_cycles(node, graph[node.inputs[0]].out.shape) \
                // folding.out_pixels(node)
            # each input's last beat, queued in its width converter (``converter_burst``)
            t_ins = [t if (name, stream) in arrive
                     else t + converter_burst(plan, stream, pattern[name])
                     for t, name, stream in zip(t_ins, node.inputs, main[0].inputs,
                                                strict=True)]
            ready = np.max(np.stack(t_ins), axis=0)
        else:
            src = graph.producer(node)
            per_pixel = steps_per_pixel(node)
            lead = after_last_input(node, per_pixel) + inner_fifo_delay(plan, node.name)
            # (a stream tree's arrivals already hold the converter's queue); a sliding
            # window starts on a pixel's first beats, so only units that read the pixel
            # (or vector) itself wait for its last
            if (src.name, main[0].inputs[0]) not in arrive and (
                    isinstance(node, (*ELEMENTWISE, FixedAvgPool))
                    or isinstance(node, Dense) and not has_window(node)):
                lead += converter_burst(plan, main[0].inputs[0], pattern[src.name])
            needed = needed_input_pixel(node, src)
            # a window wholly in the top padding waits for no input at all
            ready = np.where(needed >= 0, t_ins[0][np.maximum(needed, 0)], 0) + lead
        # when each beat of each input arrives: a join takes beat b once it is there on
        # every input
        beats_in = [arrive[(name, stream)] if (name, stream) in arrive else offer(
            t, relative(converter_beats(plan, stream, pattern[name])))
            for t, name, stream in zip(t_ins, node.inputs, main[0].inputs, strict=True)
        ] if len(node.inputs) > 1 else []
        # a unit whose output waited in its stream tree stood still meanwhile: its steps
        # follow the tree's handshakes in its own time (``streams.Stalls``)
        stalls = streams.Stalls(*held[node.name]) if node.name in (held or {}) else None
        if stalls is not None:
            ready = stalls.own_time(ready - lead) + lead if len(node.inputs) == 1 \
                else stalls.own_time(ready)
        last = np.empty(len(ready), dtype=np.int64)
        prev = 0
        for i, r in enumerate(ready):
            prev = max(prev + per_pixel, int(r))
            last[i] = prev
        avail[node.name] = last + unit_delay(main[-1])      # (own time)
        pattern[node.name] = beat_pattern(plan, node, per_pixel,
                                          [pattern[i] for i in node.inputs])
        take = input_take(node, last, per_pixel)
        if take is not None:
            there = np.max(np.stack(beats_in), axis=0) if beats_in else None
            for name, stream in zip(node.inputs, main[0].inputs, strict=True):
                beats = take_beats(plan, node, stream, take, last)
                if stalls is not None:
                    beats = stalls.cycle(beats)
                if there is not None:
                    beats = np.maximum(beats, there)
                takes[(name, stream)] = beats
        own[node.name] = offer(avail[node.name], pattern[node.name])
        if len(node.inputs) > 1:    # a join's beat b leaves once it is there on every input
            arrived = np.max(np.stack(beats_in), axis=0).reshape(len(last), -1)
            within = arrived - arrived[:, -1:]
            own[node.name] = (avail[node.name][:, None] + within).ravel()
            pattern[node.name] = within[-1]
        offered[node.name] = own[node.name]
        if stalls is not None:  # the output register loads on an enabled cycle
            offered[node.name] = stalls.cycle(own[node.name] - 1) + 1
            k = len(own[node.name]) // len(avail[node.name])
            avail[node.name] = offered[node.name][k - 1::k]
        if node.name in floor:
            avail[node.name] = np.maximum(avail[node.name], floor[node.name])
    out = graph.output.name
    avail[out] = avail[out] + path_delay(plan, leaving[out])
    return avail, takes, offered, own


def last_beats(beats: np.ndarray, pixels: int) -> np.ndarray:
    """Each pixel's last beat of a frame's ``beats``."""
    k = len(beats) // pixels
    return beats[k - 1::k]

def relative(beats: np.ndarray) -> np.ndarray:
    return beats - beats[-1]

def offer(last: np.ndarray, pattern: np.ndarray) -> np.ndarray:
    """Cycle of every beat a unit offers: each pixel's last beat at ``last``, the others at
    ``pattern`` (relative to it) before."""
    return np.ceil(last[:, None] + pattern[None, :] - 1e-9).astype(np.int64).ravel()

def converter_beats(plan: Plan, stream: str, arrivals: np.ndarray) -> np.ndarray:
    """When one pixel's beats enter the unit that reads ``stream``, relative to the
    pixel's last beat leaving its producer (``arrivals``: the producer's beats, last 0),
    through the width converter that produces ``stream`` (``dwc_pixel_beats``), if any;
    FIFO and fork stages shift every beat alike and are left out."""
    s = plan.stream(stream)
    dwc = next((u for u in plan.units if u.name == s.producer and u.kind == "dwc"), None)
    if dwc is None:
        return arrivals
    return dwc_pixel_beats(dwc.params["IWB"], dwc.params["OWB"], arrivals)

def converter_burst(plan: Plan, stream: str, arrivals: np.ndarray) -> int:
    """Extra cycles a pixel spends in the width converter that produces ``stream`` (the
    stream into the node's first unit) after its last input beat, beyond the converter's
    ``dwc_delay`` (which ``input_delay`` counts): the output beats it can only send once
    that beat is in, and those still queued when the pixel's beats (``arrivals``, the
    producer's ``beat_pattern``) came faster than it sends them."""
    s = plan.stream(stream)
    dwc = next((u for u in plan.units if u.name == s.producer and u.kind == "dwc"), None)
    if dwc is None:
        return 0
    return max(0, int(np.ceil(converter_beats(plan, stream, arrivals)[-1] - 1e-9))
               - unit_delay(dwc))

def beat_pattern(plan: Plan, node: Node, per_pixel: int,
                 in_patterns: list[np.ndarray]) -> np.ndarray:
    """When one output pixel's beats leave ``node``'s last unit, relative to its last
    beat: an elementwise unit passes each beat on as it arrives through its input's width
    converter (``converter_beats``, one beat per cycle); other units space them evenly
    over their steps (``own_beats``; a join's, from its inputs', ``schedule_pass``)."""
    if isinstance(node, ELEMENTWISE):
        main = next(u for u in plan.layer_units(node.name) if u.kind not in ("dwc", "fork"))
        return relative(converter_beats(plan, main.inputs[0], in_patterns[0]))
    return own_beats(plan, node, per_pixel)

def input_delay(plan: Plan, stream: str) -> int:
    """Register stages from the unit that produces a node's input tensor to the unit that
    reads ``stream``: one per FIFO on the way, and each width converter's and fork's delay
    (``path_delay`` walked backwards, through forks)."""
    delay = 0
    while True:
        s = plan.stream(stream)
        delay += UNITS["fifo"].delay({}) if s.depth else 0
        prod = next((u for u in plan.units if u.name == s.producer), None)
        if prod is None or prod.kind not in ("dwc", "fork"):
            return delay
        delay += unit_delay(prod)
        stream = prod.inp


def paced_schedule(graph: Graph, plan: Plan) -> dict[str, np.ndarray]:
    """``pixel_schedule`` with the host sending a frame's input at the bottleneck's rate:
    every unit keeps up, so nothing back-pressures, and the times are the steady state's
    (within a frame).  One pass, no fork back-pressure (``estimate.streams``): these are the
    times the skip FIFOs are sized to allow (``skip_fifo_depths``), so that no fork
    holds a beat back."""
    _, interval = folding.bottleneck(graph)
    return schedule_pass(graph, plan, max(interval, plan.input_stream.beats), {})[0]


def skip_fifo_depths(graph: Graph, plan: Plan) -> dict[str, int]:
    """Beats of FIFO each join input stream needs (join inputs only, where more than its
    own FIFO): the skip branch's buffer.

    A fork writes a beat only when both its outputs take it; if the branch that bypasses a
    long path cannot hold what the fork sends before the join starts consuming, the fork
    stalls the long path, which deadlocks (a window waiting for rows the fork cannot send)
    or slows the pipeline.  In the paced schedule (``paced_schedule``: steady state at the
    bottleneck's rate, where nothing back-pressures) input k's pixel q reaches the join at
    a_k[q] and the join takes pixel p at c[p] (once it is there on every input); the
    pixels waiting on input k when the join takes pixel p are #{q : a_k[q] <= c[p]} - p.
    The depth is the largest such backlog in beats, plus ``FIFO_DEPTH`` beats for the
    handshake at full rate; an input of several beats per pixel gets it even when the
    backlog is the pixel itself (the other path may gather a whole pixel first).  The paced
    arrivals include every wait of the long path for the inputs it needs (a window's rows),
    so the depth also covers the dependency bound that rules out deadlock at any rate."""
    avail = paced_schedule(graph, plan)
    out: dict[str, int] = {}
    for node in graph.nodes[1:]:
        if len(node.inputs) < 2:
            continue
        join = next(u for u in plan.layer_units(node.name) if u.kind in ("add", "concat"))
        arrive = [avail[name] + input_delay(plan, stream)
                  for name, stream in zip(node.inputs, join.inputs, strict=True)]
        consume = np.max(np.stack(arrive), axis=0)
        for stream, a in zip(join.inputs, arrive, strict=True):
            waiting = np.searchsorted(np.sort(a), consume, side="right") \
                - np.arange(len(consume))
            per_pixel = plan.stream(stream).beats // len(consume)
            backlog = int(waiting.max()) * per_pixel
            # a pixel of several beats must fit as a whole too: the other input's path may
            # gather the pixel (a width converter to more lanes, a unit of more lanes)
            # before the join takes its first beat, while the fork holds each beat until
            # both sides took it (random graph seed [1212, 20])
            if backlog > per_pixel or per_pixel > 1:
                out[stream] = backlog + FIFO_DEPTH
    return out


def steps_per_pixel(node: Node) -> int:
    """Compute steps a unit spends per output pixel.  A conv or dense layer: its MVTU folds
    (OC/PE * fan_in/SIMD); its sliding window's writer, which can be slower (a stride
    larger than the kernel), shows in the input's arrival times instead.  A pool: the
    folded cycles of its window over the input its windows cover (``window_footprint``;
    the rows and columns no window uses are drained after the last output)."""
    if isinstance(node, PGConv2D):      # expected: MSB passes + the gated LSB passes
        return pg.pg_cycles(node, pg.lsb_passes(node)) // folding.out_pixels(node)
    if isinstance(node, ThermometerEncode):
        return 1
    if isinstance(node, Dense):
        return folding.matvec_cycles(node) // folding.out_pixels(node)
    if isinstance(node, ELEMENTWISE):   # one beat of PE lanes per cycle
        return node.out.shape[-1] // node.pe
    if isinstance(node, FixedAvgPool) and node.global_pool:  # one output a frame, paced
        return 1                                                # by its input
    return folding.node_cycles(node, window_footprint(node)) // folding.out_pixels(node)

def window_footprint(node: MaxPool2D | MajorityPool2D | FixedAvgPool) -> tuple[int, int, int]:
    """The part of a pool's input (H, W, C) that its windows cover."""
    oh, ow, c = node.out.shape
    kh, kw = node.kernel
    sh, sw = node.stride
    top, bottom, left, right = node.pads
    return ((oh - 1) * sh + kh - top - bottom, (ow - 1) * sw + kw - left - right, c)

def after_last_input(node: Node, per_pixel: int) -> int:
    """Steps a unit still takes for a pixel once the last input it waits for is there."""
    if isinstance(node, ThermometerEncode):
        return 0
    if isinstance(node, ELEMENTWISE):   # the pixel's last beat is its last step
        return 0
    if isinstance(node, FixedAvgPool) and node.global_pool:  # the frame's last pixel is
        return 0                                                # its last step
    if has_window(node) and isinstance(node, Conv2D):   # window read latency, then the
        return UNITS["swu"].delay({}) + per_pixel - 1    # pixel's whole work
    if isinstance(node, Dense):      # the remaining neuron folds replay the stored input
        # (a dense layer's vector, a pointwise conv's pixel)
        nf = node.out_channels // node.pe
        return (nf - 1) * (per_pixel // nf)
    return UNITS["swu"].delay({}) + per_pixel - 1      # pool: the window's taps

def needed_input_pixel(node: Node, src: Node) -> np.ndarray:
    """For each output pixel, the raster index of the last input pixel it waits for.

    A sliding window (convs and pools, ``bnn_swu``) starts output row oy once every input
    row it covers is complete, and its last output row waits for the whole input frame;
    a dense layer needs its whole input vector.  -1: an output row whose windows lie wholly
    in the top padding waits for no input."""
    n_out = folding.out_pixels(node)
    # each output pixel waits for its own input pixel
    if is_pointwise(node) or isinstance(node, (*ELEMENTWISE, ThermometerEncode)):
        return np.arange(n_out, dtype=np.int64)
    if len(src.out.shape) != 3 or not has_window(node):
        return np.full(n_out, folding.out_pixels(src) - 1, dtype=np.int64)
    h, w = src.out.shape[0], src.out.shape[1]
    oh, ow = node.out.shape[0], node.out.shape[1]
    kh, sh, top = node.kernel[0], node.stride[0], node.pads[0]
    oy = np.arange(oh)
    last_row = np.clip(oy * sh - top + max(kh, sh) - 1, -1, h - 1)
    last_row[-1] = h - 1
    return np.repeat(np.where(last_row >= 0, (last_row + 1) * w - 1, -1), ow)

@dataclass(frozen=True)
class Serialisation:
    """Two units whose steps cannot overlap across frames (see ``serialisations``)."""

    producer: str
    consumer: str
    interval_cycles: int
    buffered_beats: int
    producer_beats: int

    def message(self) -> str:
        return (f"layer {self.consumer!r} reads its whole input vector during its first "
                f"neuron fold only, and the {self.buffered_beats} beats of buffering in "
                f"front of it cannot hold the {self.producer_beats} output beats per frame "
                f"of layer {self.producer!r}: the two serialise, about "
                f"{self.interval_cycles:,} cycles per frame instead of the folding's "
                "bottleneck.  Deeper FIFOs (or a double-buffered MVTU input) would restore "
                "the folding's rate")

def serialisations(graph: Graph, plan: Plan | None = None) -> list[Serialisation]:
    """Pairs of units the RTL serialises, slowing the pipeline below ``folding.bottleneck``.

    An MVTU with one output pixel (a dense layer, or a conv whose window covers its whole
    input) takes its input vector only while computing its first neuron fold and replays it
    for the other NF-1 folds.  While it replays, its producer can only fill the buffers in
    between (FIFO, width converter, its own output register, spare sliding-window rows);
    when those cannot hold a frame of the producer's output, the producer stalls, and one
    frame costs the producer's cycles plus the consumer's replay, less what the buffers
    absorbed (``serialised_interval``)."""
    plan = plan or build_plan(graph)
    _, bottleneck_cycles = folding.bottleneck(graph)
    out = []
    for node in graph.nodes[1:]:
        prod = source_node(graph, node) if isinstance(node, Dense) else None
        if not isinstance(prod, (Dense, MaxPool2D)):
            continue
        lanes = prod.pe if isinstance(prod, Dense) else prod.out.channels
        dwc, swu = plan.unit(node.name, "dwc"), plan.unit(node.name, "swu")
        # the consumer's input FIFOs as the plan placed them: its input-vector FIFO, and the
        # FIFO in front of its window (less the producer's own FIFO where they merged)
        in_fifo = input_fifo_depth(node, node.pe, node.simd) * node.simd
        if swu:
            win = plan.stream(swu.inp)
            in_fifo += (win.depth - (0 if dwc else FIFO_DEPTH)) * win.lanes
        buffered = buffered_beats(lanes, dwc and dwc.params, swu and swu.params,
                                  in_fifo_elems=in_fifo)
        cycles = serialised_interval(node, node.pe, node.simd,
                                     folding.node_cycles(prod, graph.producer(prod).out.shape),
                                     producer_beats(prod, lanes), buffered)
        if cycles is not None and cycles > bottleneck_cycles:
            out.append(Serialisation(prod.name, node.name, cycles, buffered,
                                     producer_beats(prod, lanes)))
    return out

def producer_beats(prod: Node, lanes: int) -> int:
    """Output beats per frame of a unit emitting ``lanes`` channels per beat."""
    return folding.out_pixels(prod) * prod.out.channels // lanes

def buffered_beats(lanes: int, dwc: dict[str, int] | None, swu: dict[str, int] | None,
                   fifo_depth: int | None = None, in_fifo_elems: int = 0) -> int:
    """Producer beats the path into a consumer holds: the producer's FIFO (default the RTL
    writer's depth) and output register, the width converter (``dwc_capacity_beats``), the
    consumer's input FIFOs (``in_fifo_elems`` codes: ``plan.input_fifo_depth``, the
    window's ``plan.window_fifo_depth``)
    and the sliding window's spare rows."""
    beats = (FIFO_DEPTH if fifo_depth is None else fifo_depth) + 1
    if dwc:
        beats += dwc_capacity_beats(dwc["IWB"], dwc["OWB"])
    beats += in_fifo_elems // lanes
    if swu:  # ring rows that do not hold the current frame (the RTL's NROWS, swu_rows)
        spare_rows = max(0, swu_rows(swu) - swu["IH"])
        beats += spare_rows * swu["IW"] * swu["C"] // lanes
    return beats

def serialised_interval(node: Dense, pe: int, simd: int, producer_cycles: int,
                        beats: int, buffered: int) -> int | None:
    """Frame interval of producer + ``node`` at (pe, simd) when they serialise, or None
    when they do not (``node`` has several output pixels or one neuron fold, or the
    buffers hold a whole frame of the producer's beats)."""
    nf, sf = node.out_channels // pe, node.fan_in // simd
    if folding.out_pixels(node) != 1 or nf == 1 or buffered >= beats:
        return None
    return round(producer_cycles + (nf - 1) * sf - buffered * producer_cycles / beats)

def source_node(graph: Graph, node: Node) -> Node:
    """The unit-producing node upstream of ``node`` (Reshape is a no-op in hardware)."""
    src = graph.producer(node)
    while isinstance(src, Reshape):
        src = graph.producer(src)
    return src
