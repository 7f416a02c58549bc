"""Cycles of the generated HLS dataflow top: a token-level simulation of its processes.

The HLS top (``templates/hls/top.cpp.j2``) is one DATAFLOW region: ``AxisToStream``, one
process per unit of the plan (``bnn2fpga.plan``) and ``StreamToAxis``, connected by the
plan's streams as ``hls::stream`` channels of ``backends.hls.channel_depth`` beats (the
plan's FIFO depth; 2 where the RTL connects two units directly).  Each process is one II=1
pipelined loop as its header writes it (``bnn2fpga.units``: ``UnitType.hls_process``): each
iteration does its reads and its writes; a blocking read waits until the beat is in the
channel (a beat written in cycle w is readable from cycle w + 1), a blocking write until
the channel has room (a slot freed by a read in cycle r is writable from r + 1).  An
iteration reads when it issues and writes ``depth`` cycles later; one that would block on
its write is issued late enough not to (the pipeline stalls for it and everything after
it; a stall of an iteration's read does not hold the writes of iterations already in
flight: a flushable pipeline, or a loop that ends with the call).  Processes run free
and loop on across frames without a restart (one call of many frames: ``--control axilite``
with numReps frames, each header's loop over them flattened), or, with ``restart``, are
called once per frame (``ap_ctrl_none``: the top passes a frame count of 1), each call
draining its pipeline and restarting (``call_per_frame``).
The host offers one input beat per cycle and always takes the output, as the Verilator
harness does (``bnn2fpga.sim.rtl``).  Pipeline depths are the RTL units' register stages
(an assumption until csynth reports them).

Each process's iterations with I/O are scheduled as early as their constraints allow: the
least schedule, computed a whole process at a time as a max-plus scan, sweep after sweep
(``_solve``; ``engine="events"`` schedules event by event, the same times, tens of times
slower); a deadlock is reported by name.  FracBNN's ResNet-20 (201 processes, 1.7 M events
a frame) takes about 0.3 s a frame on the shared machine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bnn2fpga.backends.hls import channel_depth
from bnn2fpga.ir import Graph, IRError
from bnn2fpga.plan import (
    PORT_IN,
    PORT_OUT,
    Plan,
    Stream,
    Unit,
    build_plan,
    fed_by_input,
    window_fifo_depth,
)
from bnn2fpga.units import UNITS, HlsProcess, streaming_process

ADAPTER_DEPTH = 1      # AxisToStream / StreamToAxis: read, write (axis.h)
CALL_RESTART = 2       # cycles between two calls of a process (an assumption until csynth)
CONTROLS = ("ap_ctrl_none", "axilite")
ENGINES = ("maxplus", "events")

ProcessOf = Callable[[Unit, int], HlsProcess]


def unit_process(unit: Unit, frames: int) -> HlsProcess:
    """The HLS process of a plan unit for ``frames`` frames (its header's loop)."""
    make = UNITS[unit.kind].hls_process
    if make is None:
        raise IRError(f"unit {unit.name!r} ({unit.kind}) has no HLS process")
    return make({**unit.params, "IN_BEATS": unit.in_beats, "OUT_BEATS": unit.out_beats},
                frames)


class _Proc:
    """A process being scheduled: its events (arrays; lists for ``_advance``), the idle
    cycles before each."""

    def __init__(self, name: str, proc: HlsProcess, inp: str, out: str,
                 ins: list[str] | None = None, outs: list[str] | None = None) -> None:
        self.name, self.inp, self.out, self.depth = name, inp, out, proc.depth
        # every stream it reads (a join: each, one beat per read iteration) and writes
        # (a fork: each, one beat per write iteration)
        self.ins, self.outs = ins or [inp], outs or [out]
        self.shared = len(proc.at) if proc.shared is None else proc.shared
        self.at, self.rd, self.wr = proc.at, proc.reads, proc.writes
        # idle cycles (phase gaps) before each event, since the previous one
        self.gap = np.zeros(len(proc.at), dtype=np.int64)
        if len(proc.gaps):
            cum = np.concatenate([[0], np.cumsum(proc.gaps)])
            idx = np.searchsorted(proc.gap_at, proc.at, side="left")
            self.gap = np.diff(np.concatenate([[0], cum[idx]]))
        self.n_reads, self.n_writes = int(proc.reads.sum()), int(proc.writes.sum())
        self.k = 0          # next event
        self.t = 0          # issue cycle of the last scheduled event
        self.it = 0         # its iteration
        self.reads = 0
        self.writes = 0

    def as_lists(self) -> None:
        """The events as Python lists, for ``_advance`` (faster per element)."""
        self.at, self.rd, self.wr, self.gap = (np.asarray(x).tolist() for x in
                                               (self.at, self.rd, self.wr, self.gap))


def call_per_frame(one: HlsProcess, frames: int, restart: int = CALL_RESTART) -> HlsProcess:
    """``frames`` calls of the one-frame process ``one``: after each, the pipeline drains (its
    depth) and the function is entered again (``restart`` cycles, an assumption: csynth
    would tell)."""
    gap = HlsProcess(one.iterations, one.at, one.reads, one.writes, one.depth,
                     np.array([one.iterations - 1]), np.array([one.depth + restart]))
    return HlsProcess.repeat(gap, frames)


@dataclass
class HlsSchedule:
    """The simulated run: cycle of each frame's last output beat, of the first input beat,
    and the per-stream write/read times."""

    frames: int
    first_in: int
    frame_done: list[int]
    writes: dict[str, Sequence[int]]     # arrays (max-plus engine) or lists (events)
    reads: dict[str, Sequence[int]]

    @property
    def first_frame_latency_cycles(self) -> int:
        return self.frame_done[0] - self.first_in + 1

    @property
    def cycles_per_frame(self) -> float:
        """Steady-state interval, measured as ``sim.rtl.cycle_summary`` measures
        Verilator's (the second half of the frames)."""
        done = self.frame_done
        if len(done) < 2:
            return float(self.first_frame_latency_cycles)
        h = len(done) // 2 if len(done) >= 4 else 0
        return (done[-1] - done[h]) / (len(done) - 1 - h)

    def summary(self) -> dict[str, Any]:
        return {"engine": "hls_model", "frames": self.frames,
                "first_frame_latency_cycles": self.first_frame_latency_cycles,
                "steady_state_cycles_per_frame": self.cycles_per_frame}


def simulate(plan: Plan, frames: int = 4, process_of: ProcessOf = unit_process,
             extra_depth: dict[str, int] | None = None,
             depths: dict[str, int] | None = None, restart: int | None = None,
             input_interval: float | None = None, engine: str = "maxplus") -> HlsSchedule:
    """Run ``frames`` frames through the HLS top of ``plan``, followed by more that keep the
    input streaming, as in a long run (a sliding window emits a frame's last row while it
    reads the next frame's first rows: one frame more per window; they are not reported).
    ``process_of`` gives each unit's process (default: its header as written);
    ``extra_depth`` adds beats to named streams' channels (to model a FIFO the plan does
    not have), ``depths`` sets them (to model an older plan).  ``restart``: every process,
    the adapters included, is called once per frame and restarts after each call
    (``call_per_frame``); None: one call of all the frames.  ``input_interval``: the host
    offers a frame's beats spread over that many cycles (paced) instead of all at once.

    ``engine``: ``"events"`` schedules event by event (``_advance``); ``"maxplus"`` (the
    default) computes the same least schedule a whole process at a time (``_solve``):
    identical times, tens of times faster on large designs."""
    if frames < 1:
        raise ValueError("frames must be >= 1")
    if engine not in ENGINES:
        raise ValueError(f"engine={engine!r}: expected one of {ENGINES}")
    reported = frames
    frames += 1 + sum(u.kind == "swu" for u in plan.units)
    procs, depth, host = _top(plan, frames, process_of, extra_depth, depths, restart,
                              input_interval)
    if engine == "events":
        writes, reads = _run_events(procs, depth, host.tolist())
    else:
        writes, reads = _solve(procs, depth, host)
    beats = plan.output_stream.beats
    out_w = writes[PORT_OUT]
    done = [int(out_w[(f + 1) * beats - 1]) for f in range(reported)]
    return HlsSchedule(reported, int(reads[PORT_IN][0]), done, writes, reads)


def _top(plan: Plan, frames: int, process_of: ProcessOf = unit_process,
         extra_depth: dict[str, int] | None = None, depths: dict[str, int] | None = None,
         restart: int | None = None, input_interval: float | None = None
         ) -> tuple[list[_Proc], dict[str, int], np.ndarray]:
    """The top's processes for ``frames`` frames (``simulate``'s arguments), every
    channel's depth and the cycles at which the host offers the input beats."""
    extra = extra_depth or {}
    inp, outp = plan.input_stream, plan.output_stream
    def calls(make: Callable[[int], HlsProcess]) -> HlsProcess:
        return make(frames) if restart is None else call_per_frame(make(1), frames, restart)

    def adapter(beats: int) -> Callable[[int], HlsProcess]:
        return lambda n: streaming_process(beats, 1, 1, 0, 0, ADAPTER_DEPTH, n)

    procs = [_Proc("AxisToStream", calls(adapter(inp.beats)), PORT_IN, inp.name)]
    procs += [_Proc(u.name, calls(lambda n, u=u: process_of(u, n)), u.inp, u.out,
                    u.inputs, u.outputs)
              for u in plan.units]
    procs.append(_Proc("StreamToAxis", calls(adapter(outp.beats)), outp.name, PORT_OUT))
    depth = {s.name: (depths or {}).get(s.name, channel_depth(s)) + extra.get(s.name, 0)
             for s in plan.streams}
    unknown = (set(extra) | set(depths or {})) - set(depth)
    if unknown:
        raise KeyError(f"no such streams: {sorted(unknown)}")
    total_in = frames * inp.beats
    if input_interval is None:                 # the host offers every beat at once
        host = np.full(total_in, -1, dtype=np.int64)
    else:                                      # beat i offered at i * interval / beats
        per_beat = input_interval / inp.beats
        host = np.ceil(np.arange(total_in) * per_beat - 1e-9).astype(np.int64) - 1
    depth[PORT_OUT] = 1 << 62                  # the host always takes the output
    for p in procs:
        n_r, n_w = p.n_reads, p.n_writes
        want_in = frames * plan.stream(p.inp).beats if p.inp != PORT_IN else total_in
        want_out = frames * plan.stream(p.out).beats if p.out != PORT_OUT else n_w
        if (n_r, n_w) != (want_in, want_out):
            raise IRError(f"HLS process {p.name}: {n_r} reads / {n_w} writes for {frames} "
                          f"frames, its streams carry {want_in} / {want_out}")
    return procs, depth, host


def _run_events(procs: list[_Proc], depth: dict[str, int], host: list[int]
                ) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """Every process's events scheduled one by one, each process as far as it can go, in
    turns until all are done (a deadlock, when none can move, is reported by name)."""
    writes: dict[str, list[int]] = {s: [] for s in depth}
    reads: dict[str, list[int]] = {s: [] for s in depth}
    writes[PORT_IN], reads[PORT_IN], writes[PORT_OUT], reads[PORT_OUT] = host, [], [], []
    for p in procs:
        p.as_lists()
    while True:
        moved = False
        for p in procs:
            moved |= _advance(p, [writes[i] for i in p.ins], [reads[i] for i in p.ins],
                              [writes[o] for o in p.outs], [reads[o] for o in p.outs],
                              [depth[o] for o in p.outs])
        if all(p.k == len(p.at) for p in procs):
            return writes, reads
        if not moved:
            stuck = [f"{p.name} (event {p.k} of {len(p.at)})" for p in procs
                     if p.k < len(p.at)]
            raise IRError("the HLS dataflow deadlocks: " + ", ".join(stuck))


NEVER = -(1 << 60)      # no constraint (a time earlier than any)
UNKNOWN = 1 << 60       # an event past a truncated process's end: at or after this


def _solve(procs: list[_Proc], depth: dict[str, int], host: np.ndarray,
           run_on: bool = False) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The schedule ``_run_events`` finds, a process at a time.  A process's event k issues
    at t_k = max(t_{k-1} + C_k - C_{k-1}, b_k), C its unconstrained issue times (loop
    index plus idle gaps) and b_k the channels' bound (a read's beat written, a write's
    slot freed); so t = C + running max of max(b - C, 0), one numpy scan.  The bounds
    come from the other processes' times: the processes are solved in dataflow order, the
    writers' times of this sweep and the readers' of the last (none at first), sweep after
    sweep until no time changes.  Every bound is monotone in the times, so this is Kleene
    iteration from below: it converges to the least schedule, the one the event-by-event
    run builds.  A deadlock has no finite least schedule: the times grow past any bound
    (``_time_cap``) or keep changing (``MAX_SWEEPS``), and the event-by-event run names
    the stuck processes.

    ``run_on``: each process is the free-running loop of a longer run, known as far as a
    call of more frames has the same events (``HlsProcess.shared``: a window's last rows,
    emitted with no more frames to read, are not); an event bound by one past another
    process's known events is ``UNKNOWN``, and so is every event after it.  The least
    schedule with those bounds equals a longer run's wherever it is known: an event's time
    depends only on the events its bounds name, which are the same there."""
    tables = [_Table(p, run_on) for p in procs]
    writes: dict[str, np.ndarray] = {PORT_IN: host}
    # every read not solved yet: unconstrained (Kleene's bottom)
    reads: dict[str, np.ndarray] = {i: np.full(len(tab.r_ev), NEVER, dtype=np.int64)
                                    for p, tab in zip(procs, tables, strict=True)
                                    for i in p.ins}
    # a process is solved again only when a writer of its inputs or a reader of its
    # outputs changed times since (their versions)
    w_ver: dict[str, int] = {PORT_IN: 1}
    r_ver: dict[str, int] = {}
    seen: list[tuple[int, ...] | None] = [None] * len(procs)
    cap = _time_cap(tables, host)
    for _ in range(MAX_SWEEPS):
        moved = False
        for k, (p, tab) in enumerate(zip(procs, tables, strict=True)):
            now = tuple(w_ver.get(i, 0) for i in p.ins) + tuple(r_ver.get(o, 0)
                                                               for o in p.outs)
            if now == seen[k]:
                continue
            seen[k] = now
            t = tab.solve([writes[i] for i in p.ins],
                          [(reads.get(o), depth[o]) for o in p.outs])
            known = int(np.searchsorted(t, UNKNOWN // 2))    # t never decreases
            if known and t[known - 1] > cap:
                return _deadlock(procs, depth, host)
            r, w = t[tab.r_ev], t[tab.w_ev] + tab.depth
            for names, new, times, ver in ((p.ins, r, reads, r_ver),
                                           (p.outs, w, writes, w_ver)):
                for name in names:
                    old = times.get(name)
                    if old is None or not np.array_equal(old, new):
                        times[name] = new
                        ver[name] = ver.get(name, 0) + 1
                        moved = True
        if not moved:
            reads.setdefault(PORT_OUT, np.zeros(0, dtype=np.int64))
            return writes, reads
    return _deadlock(procs, depth, host)


# sweeps before the event-by-event run takes over (a deadlock's times grow a few cycles a
# sweep; designs converge in a few: at most 25 solves a process on 80 random DAGs)
MAX_SWEEPS = 1000


class _Table:
    """A process's events as arrays for ``_solve``: unconstrained issue times ``c``, the
    indices of its read and write events (``run_on``: those a longer run shares)."""

    def __init__(self, p: _Proc, run_on: bool = False) -> None:
        rd = np.asarray(p.rd, dtype=bool)
        n = p.shared if run_on else len(rd)
        at = np.asarray(p.at[:n], dtype=np.int64)
        self.c = at + np.cumsum(np.asarray(p.gap[:n], dtype=np.int64))
        self.r_ev = np.flatnonzero(rd[:n])
        self.w_ev = np.flatnonzero(np.asarray(p.wr[:n], dtype=bool))
        self.depth = p.depth

    def solve(self, in_writes: list[np.ndarray],
              outs: list[tuple[np.ndarray | None, int]]) -> np.ndarray:
        """Issue times given the input streams' write times and, per output stream, its
        reader's read times (None: no reader, the host) and channel depth; a read of a
        beat not written, or a write into a slot not freed, among the known events is
        ``UNKNOWN``."""
        c, r_ev, w_ev = self.c, self.r_ev, self.w_ev
        b = np.full(len(c), NEVER, dtype=np.int64)
        for w in in_writes:
            bound = np.full(len(r_ev), UNKNOWN, dtype=np.int64)
            m = min(len(w), len(r_ev))
            bound[:m] = w[:m] + 1
            b[r_ev] = np.maximum(b[r_ev], bound)
        for r, d in outs:
            if r is None or len(w_ev) <= d:
                continue
            bound = np.full(len(w_ev) - d, UNKNOWN, dtype=np.int64)
            m = min(len(r), len(bound))
            bound[:m] = r[:m] + 1 - self.depth
            b[w_ev[d:]] = np.maximum(b[w_ev[d:]], bound)
        return c + np.maximum.accumulate(np.maximum(b - c, 0))


def _time_cap(tables: list[_Table], host: np.ndarray) -> int:
    """A time no event of a schedule that exists reaches: every process's own span and
    one cycle per channel hop, all in sequence (a critical path uses each at most once)."""
    start = int(host.max(initial=0)) + 2
    return start + sum(int(t.c[-1]) + t.depth + 2 * (len(t.r_ev) + len(t.w_ev)) + 2
                       for t in tables if len(t.c))


def _deadlock(procs: list[_Proc], depth: dict[str, int], host: np.ndarray) -> tuple[
        dict[str, list[int]], dict[str, list[int]]]:
    """The event-by-event run, which names the stuck processes (or, should the bound have
    been wrong, finds the schedule)."""
    return _run_events(procs, depth, host.tolist())


def _advance(p: _Proc, in_ws: list[list[int]], in_rs: list[list[int]],
             out_ws: list[list[int]], out_rs: list[list[int]], out_depths: list[int]) -> bool:
    """Schedule as many of ``p``'s next events as the channels' known times allow (a read
    iteration reads every input stream, a write iteration writes every output)."""
    at, rd, wr, gap, d = p.at, p.rd, p.wr, p.gap, p.depth
    n = len(at)
    k = k0 = p.k
    t, it, nr, nw = p.t, p.it, p.reads, p.writes
    n_in = min(len(w) for w in in_ws)
    outs = list(zip(out_ws, out_rs, out_depths, strict=True))
    while k < n:
        a = at[k]
        tt = (a if k == 0 else t + a - it) + gap[k]
        r, w = rd[k], wr[k]
        if r:
            if nr >= n_in:
                break
            tt = max([tt] + [in_w[nr] + 1 for in_w in in_ws])
        if w:
            blocked = False
            for _, out_r, out_depth in outs:
                if nw >= out_depth:
                    if nw - out_depth >= len(out_r):
                        blocked = True
                        break
                    tt = max(tt, out_r[nw - out_depth] + 1 - d)
            if blocked:
                break
        if r:
            for in_r in in_rs:
                in_r.append(tt)
            nr += 1
        if w:
            for out_w, _, _ in outs:
                out_w.append(tt + d)
            nw += 1
        t, it = tt, a
        k += 1
    p.k, p.t, p.it, p.reads, p.writes = k, t, it, nr, nw
    return k > k0


def hls_cycles(graph: Graph, plan: Plan | None = None, frames: int = 4,
               control: str = "ap_ctrl_none") -> dict[str, float]:
    """The generated HLS project's expected steady-state cycles per frame and first-frame
    latency (the report's ``hls`` object) for its ``control`` mode.  ``cycles_per_frame``,
    ``first_frame_latency_cycles``: one frame per call, each process draining and
    restarting per frame (``ap_ctrl_none``, and ``axilite`` with numReps = 1; the
    s_axilite start/done handshake is not modelled).  With ``axilite`` also
    ``batch_cycles_per_frame`` and ``batch_first_frame_latency_cycles``: one call of many
    frames (numReps >= ``frames``), the processes running on across them."""
    if control not in CONTROLS:
        raise IRError(f"control={control!r}: expected one of {CONTROLS}")
    plan = plan or build_plan(graph)
    one = simulate(plan, frames, restart=CALL_RESTART)
    out = {"cycles_per_frame": one.cycles_per_frame,
           "first_frame_latency_cycles": one.first_frame_latency_cycles}
    if control == "axilite":
        batch = simulate(plan, frames)
        out.update(batch_cycles_per_frame=batch.cycles_per_frame,
                   batch_first_frame_latency_cycles=batch.first_frame_latency_cycles)
    return out


def call_overhead(plan: Plan) -> int:
    """Cycles per frame that one call per frame (``ap_ctrl_none``) may add to the rate of
    one call of many frames, by construction: a restart (the deepest process's pipeline
    drains, ``CALL_RESTART`` cycles to enter it again) and what a sliding window can no
    longer overlap within a call: its first rows (``plan.window_fifo_depth`` beats) are
    read before its first tap, and its last output row's taps follow its last read (run
    on, the next frame's first rows are read meanwhile).  Hidden behind a slower unit; not
    when the window is the bottleneck."""
    depths = [ADAPTER_DEPTH] + [unit_process(u, 1).depth for u in plan.units]
    refill = [window_fifo_depth(p) + p["OW"] * p["KH"] * p["KW"] * p["C"] // p["SIMD"]
              for p in (u.params for u in plan.units if u.kind == "swu")]
    return max(depths) + CALL_RESTART + max(refill, default=0)


def extra_stages(plan: Plan) -> int:
    """Cycles of first-frame latency the HLS top adds to the RTL's by construction: its two
    AXI adapter processes (a pipeline stage and a channel each) and a channel on every
    stream the RTL wires directly (plan depth 0; an hls::stream is a FIFO)."""
    return 2 * (ADAPTER_DEPTH + 1) + sum(s.depth == 0 for s in plan.streams)


def windows_read_the_input(plan: Plan) -> bool:
    """Whether every sliding window reads the top's input stream (through width converters
    only).  Such a window's producer is the host, which offers a beat every cycle; behind a
    unit that takes longer per row than the window does, a blocking read of the next rows
    holds the taps of the row being emitted (hls/README.md, "Sliding window")."""
    return all(fed_by_input(plan, plan.stream(u.inp)) for u in plan.units if u.kind == "swu")


_SKIP_DEPTHS: dict[str, dict[str, int]] = {}
UNBOUNDED = 1 << 40     # a channel no write ever fills


def paced_interval(graph: Graph, plan: Plan) -> int:
    """Cycles over which the host spreads a frame's input when a skip FIFO is sized: the
    bottleneck's (as ``estimate.schedule.paced_schedule`` paces the RTL)."""
    from bnn2fpga import folding

    return max(folding.bottleneck(graph)[1], plan.input_stream.beats)


def backlogs(writes: np.ndarray, reads: np.ndarray) -> np.ndarray:
    """Per write, the least channel depth D that lets it through unblocked: write i needs
    read i - D done before it, D >= i + 1 - #{reads before w_i}."""
    before = np.searchsorted(np.sort(reads), writes, side="left")
    return np.arange(len(writes)) + 1 - before


def hls_skip_depths(graph: Graph, plan: Plan, frames: int = 2) -> dict[str, int]:
    """Beats each skip FIFO (``Stream.skip``) needs in the HLS top so that its fork never
    stalls the long branch: the HLS processes' latencies differ from the RTL units' (an
    hls::stream on every direct connection, the windows' reads), so the RTL's paced
    schedule can leave a skip FIFO short in HLS (the Larq ResNet: 290 beats where HLS
    needs 309, and the pipeline runs at twice the bottleneck).  The top is solved with
    the host pacing its input at the bottleneck's rate (``paced_interval``) and every
    skip FIFO unbounded, as a long run (``_solve`` with ``run_on``: every process a
    free-running loop, so no frame is the input's last); the depth is the least that lets
    every write through unblocked (``backlogs``), so the schedule, and its rate, are the
    unbounded one's.  It is taken over the first ``frames`` frames and as many more as it
    takes for every skip FIFO's per-frame need to repeat in two frames in a row (the
    pipeline filling can take a few frames: random graph [1212, 34] needs 9, 18, then 24
    beats a frame), solving only as much of the run as those frames depend on.

    The input's end needs no more: there a process only drops iterations (a window's
    reads of the next frame), so every event comes no later than in the long run, whose
    schedule the depth leaves unblocked.  ``simulated_skip_depths`` is the full run of
    ``simulate``, which tests compare with this.  Memoised on the plan."""
    import hashlib
    import json

    from bnn2fpga.plan import plan_to_json

    key = hashlib.sha256(json.dumps([plan_to_json(plan), frames],
                                    sort_keys=True).encode()).hexdigest()
    if key in _SKIP_DEPTHS:
        return dict(_SKIP_DEPTHS[key])
    skips = [s for s in plan.streams if s.skip]
    per_frame = _run_on_backlogs(plan, skips, frames, paced_interval(graph, plan))
    out = {name: int(p.max(initial=0)) for name, p in per_frame.items()}
    _SKIP_DEPTHS[key] = out
    return dict(out)


def _run_on_backlogs(plan: Plan, skips: list[Stream], frames: int,
                     interval: int | None) -> dict[str, np.ndarray]:
    """Each skip stream's largest ``backlogs`` per frame, every skip FIFO unbounded, the
    host offering a frame over ``interval`` cycles (None: at once), for the first
    ``frames`` frames and more until the last two agree for every stream (at most
    ``limit``): ``_solve`` with ``run_on`` over enough frames of input that those frames'
    writes, and the reads before them, are known (``known_frames``; where they are not, a
    run longer by the frames missing and one, or by half)."""
    unbounded = {s.name: UNBOUNDED for s in skips}
    limit = 4 * (frames + 1 + sum(u.kind == "swu" for u in plan.units)) + 8
    k, n = max(frames, 2), max(frames, 2) + 2
    while True:
        procs, depth, host = _top(plan, n, extra_depth=unbounded, input_interval=interval)
        writes, reads = _solve(procs, depth, host, run_on=True)
        while True:
            have = min((known_frames(s, writes[s.name], reads[s.name]) for s in skips),
                       default=k)
            if have < k:
                break           # solve a longer run
            out = {s.name: backlogs(writes[s.name][:k * s.beats], reads[s.name][
                reads[s.name] < UNKNOWN // 2]).reshape(k, s.beats).max(axis=1)
                for s in skips}
            if k >= limit or all(p[-1] == p[-2] for p in out.values()):
                return out
            k += 1
        if n >= 2 * limit:
            raise IRError(f"plan {plan.top!r}: the skip FIFOs' first {k} frames are "
                          f"not known after {n} frames of input")
        n = min(max(n + k - have + 1, n * 3 // 2), 2 * limit)


def known_frames(s: Stream, writes: np.ndarray, reads: np.ndarray) -> int:
    """Leading frames of stream ``s`` whose write times are known, as are all its reads
    before the frame's last write (a read not known comes after the last known one)."""
    w = writes[s.beats - 1::s.beats]                    # each frame's last write
    frames = int(np.searchsorted(w, UNKNOWN // 2))      # times never decrease
    known = reads[reads < UNKNOWN // 2]
    if len(known) < len(reads):
        frames = min(frames, int(np.searchsorted(w, known[-1] if len(known) else NEVER,
                                                 side="right")))
    return frames


def simulated_skip_depths(graph: Graph, plan: Plan, frames: int = 2,
                          engine: str = "maxplus") -> dict[str, int]:
    """``hls_skip_depths`` from the full run of ``simulate`` (``frames`` frames and the
    ones that keep the input streaming, every one of them up to the input's end, all
    counted): what it was before it solved only the frames it needs (slower: for
    tests)."""
    skips = [s for s in plan.streams if s.skip]
    sched = simulate(plan, frames, extra_depth={s.name: UNBOUNDED for s in skips},
                     input_interval=paced_interval(graph, plan), engine=engine)
    return {s.name: int(backlogs(np.asarray(sched.writes[s.name]),
                                 np.asarray(sched.reads[s.name])).max(initial=0))
            for s in skips}
