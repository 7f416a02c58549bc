"""Beat-level timing of a tensor's stream tree: the handshakes of every beat on the streams
from its producer, through ``bnn_fork`` (a tree of two-way forks), per-reader width
converters (``bnn_dwc``) and stream FIFOs (``bnn_fifo``), to each reader, given when the
producer offers each beat and when each reader takes it.

The first-frame schedule (``schedule.pixel_schedule``) is pixel-level and free-running:
each unit at its own pace once its input is there.  Back-pressure is what it leaves out: a
fork passes a beat on only once every output took the one before, so a slow reader holds
the producer and the other readers back; a down converter takes a word only every R
cycles; a full FIFO stops its writer.  This module follows those registers beat by beat
(``handshakes``; vectorised where nothing waits, ``unhindered``), and the schedule runs it
on every tensor's tree and repeats until the two agree.  For each stream: P[j], the cycle
beat j leaves the producer side (into the FIFO, if the stream has one) and C[j], the cycle
it enters the consumer; with no FIFO they are one handshake.

- FIFO of depth D (``bnn_fifo``: registered full/empty): C[j] >= P[j] + 1, and a full FIFO
  takes a beat the cycle after one left: P[j] >= C[j - D] + 1.
- fork: an output register per output; the input takes beat j once every output took beat
  j - 1 (in that cycle or earlier): C_in[j] >= P_k[j - 1]; P_k[j] >= C_in[j] + 1.
- down converter, R slices a word: the word register loads the held word i at
  L[i] = max(C_in[i] + 1, P_out[iR - 1]) (the cycle its previous word's last slice leaves),
  slice r leaves from L[i] + 1 + r, and the holding register takes word i + 1 from
  L[i] + 1.
- up converter, R beats a word: the word's last beat enters once the previous word left
  (C_in[wR + R - 1] >= P_out[w - 1] + 1); the word leaves from the cycle after.
- shift converter: an output beat leaves the cycle after the input beat holding its last
  element; an input beat enters once the buffer has room (its capacity,
  ``dwc_capacity_beats``): a bound, not the register-exact recursion of the others.
- one beat per cycle on every port.
- the producer offers beat j at ``offered[j]``; it is a pipeline that stalls as a whole
  while an output beat waits (``en = !m_tvalid || m_tready`` in every unit), which the
  schedule accounts for in its own time (``Stalls``).

Each constraint refers to the same beat upstream or to earlier beats, so one pass over the
beats in a dependency order gives the least solution (``solve``).  The plan places forks
right behind the producer and width converters behind the forks, per reader; a tree with a
fork behind a width converter is left out (``stream_tree``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bnn2fpga.plan import Plan
from bnn2fpga.units.dwc import dwc_capacity_beats, dwc_kind


@dataclass
class TreeStream:
    """One stream of a stream tree: how its beats come from its parent (``via``: "root",
    "fork", "up", "down" or "shift"; ``ratio`` R of an up/down converter) and what
    consumes it (``consumer``: "fork", "dwc" or "leaf")."""

    name: str
    depth: int
    lanes: int
    beats: int
    parent: int | None
    via: str
    ratio: int = 1
    consumer: str = "leaf"
    children: list[int] = field(default_factory=list)
    below_dwc: bool = False


def stream_tree(plan: Plan, root: str) -> list[TreeStream] | None:
    """The streams from ``root`` (a producer's output stream) to its readers (through forks
    and width converters; a chain is a tree of one leaf), parents first; None for a fork
    behind a width converter, which ``dependency_order`` does not cover (the planner puts
    forks right behind producers)."""
    units = {u.name: u for u in plan.units}
    tree: list[TreeStream] = []

    class ForkBehindConverter(Exception):
        pass

    def add(name: str, parent: int | None, via: str, ratio: int, below: bool) -> None:
        s = plan.stream(name)
        k = len(tree)
        node = TreeStream(name, s.depth, s.lanes, s.beats, parent, via, ratio,
                          below_dwc=below)
        tree.append(node)
        if parent is not None:
            tree[parent].children.append(k)
        unit = units.get(s.consumer)
        if unit is None or unit.kind not in ("fork", "dwc"):
            return
        node.consumer = unit.kind
        if unit.kind == "fork":
            if below:
                raise ForkBehindConverter
            for out in unit.outputs:
                add(out, k, "fork", 1, False)
            return
        iwb, owb = unit.params["IWB"], unit.params["OWB"]
        kind = dwc_kind(iwb, owb)
        ratio = owb // iwb if kind == "up" else iwb // owb if kind == "down" else 1
        add(unit.out, k, kind, ratio, True)

    try:
        add(root, None, "root", 1, False)
    except ForkBehindConverter:
        return None
    return tree


def dependency_order(tree: list[TreeStream]) -> list[tuple[int, int]]:
    """(stream, beat) pairs in an order where every constraint's right-hand side comes
    first: by the frame position the beat depends on forward (its last element, or a down
    converter's whole word), streams above the converters before those below, then by the
    beat's last element and the stream's depth in the tree."""
    keys, order = [], []
    depth = [0] * len(tree)
    word_end: list[np.ndarray] = [np.empty(0)] * len(tree)
    for k, s in enumerate(tree):
        end = (np.arange(s.beats) + 1) * s.lanes
        key = end
        if s.parent is not None:
            depth[k] = depth[s.parent] + 1
            key = np.maximum(end, word_end[s.parent][holder(tree, k)])
        word_end[k] = key
        keys.append(np.stack([key, np.full(s.beats, int(s.below_dwc)), end,
                              np.full(s.beats, depth[k])]))
        order += [(k, j) for j in range(s.beats)]
    key_all = np.concatenate(keys, axis=1)
    idx = np.lexsort(key_all[::-1])
    return [order[i] for i in idx]


def holder(tree: list[TreeStream], k: int) -> np.ndarray:
    """For each beat of stream ``k``, the parent beat that holds its last element (a last
    beat padded past the frame's end: the parent's last)."""
    s, parent = tree[k], tree[tree[k].parent]
    return np.minimum(((np.arange(s.beats) + 1) * s.lanes - 1) // parent.lanes,
                      parent.beats - 1)


def solve(tree: list[TreeStream], offered: np.ndarray,
          takes: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The root's handshakes and each leaf's arrivals (``handshakes``): vectorised when no
    beat waits on anything downstream (``unhindered``), the beat-level pass otherwise."""
    fast = unhindered(tree, offered, takes)
    if fast is not None:
        return fast
    p, _, arrival = handshakes(tree, offered, takes)
    return p[0], arrival


def paced(x: np.ndarray, gap: int = 1) -> np.ndarray:
    """The least times >= ``x`` at least ``gap`` apart (one beat per ``gap`` cycles)."""
    steps = gap * np.arange(len(x))
    return np.maximum.accumulate(x - steps) + steps


def unhindered(tree: list[TreeStream], offered: np.ndarray, takes: dict[str, np.ndarray]
               ) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
    """``handshakes``'s answer when it is the forward one: every beat moves as soon as it
    is there (through fork registers, FIFOs and converters), and each unit downstream
    (readers at ``takes``, fork outputs, converters' registers, full FIFOs) would have let
    it; None where some beat waits."""
    p: list[np.ndarray] = [np.empty(0)] * len(tree)
    c: list[np.ndarray] = [np.empty(0)] * len(tree)
    load: dict[int, np.ndarray] = {}
    for k, s in enumerate(tree):
        if s.via == "root":
            t = paced(offered.astype(np.int64))
        else:
            up = c[s.parent]
            if s.via == "fork":
                t = up + 1
            elif s.via == "down":
                r = s.ratio
                load[s.parent] = paced(up + 1, r)   # the word register, a word per R
                t = (load[s.parent][:, None] + 1 + np.arange(r)).ravel()
            else:        # up, shift: the beat holding the last element, a beat a cycle
                t = paced(up[holder(tree, k)] + 1)
        p[k] = t
        c[k] = t + 1 if s.depth else t
    arrival = {}
    for k in range(len(tree) - 1, -1, -1):   # children first: would anything wait?
        s = tree[k]
        need = c[k]
        if s.consumer == "leaf":
            if s.name in takes:
                need = np.maximum(need, takes[s.name])
        elif s.consumer == "fork":
            prev = np.max(np.stack([p[ch][:-1] for ch in s.children]), axis=0)
            need = np.maximum(need, np.concatenate([need[:1], prev]))
        else:
            (ch,) = s.children
            out = tree[ch]
            if out.via == "down":
                # the holding register frees when the word register loads
                need = np.maximum(need, np.concatenate([need[:1], load[k][:-1] + 1]))
                drained = np.concatenate([[need[0] + 1], p[ch][out.ratio - 1:-1:out.ratio]])
                if np.any(np.maximum(need + 1, drained) != load[k]):
                    return None
            elif out.via == "up":
                r = out.ratio
                last = np.arange(r - 1, s.beats, r)[1:]
                need = need.copy()
                need[last] = np.maximum(need[last], p[ch][:len(last)] + 1)
            else:
                return None      # the shift converter's room: the beat-level pass
        need = paced(need)
        if s.depth:     # the FIFO absorbs a late consumer unless it fills
            if s.beats > s.depth and np.any(p[k][s.depth:] < need[:-s.depth] + 1):
                return None
        elif not np.array_equal(need, c[k]):
            return None
        if s.consumer == "leaf":      # valid at the reader once the beat before left
            arrival[s.name] = np.maximum(c[k], np.concatenate([c[k][:1], need[:-1] + 1]))
    return p[0], arrival


def handshakes(tree: list[TreeStream], offered: np.ndarray, takes: dict[str, np.ndarray]
               ) -> tuple[list[np.ndarray], list[np.ndarray], dict[str, np.ndarray]]:
    """The least handshake times of every beat: ``offered``, when the producer has each
    beat of the root stream; ``takes``, leaf stream -> the earliest cycle its reader takes
    each beat (a leaf absent, or a beat at a value below its arrival: the reader takes it
    as it arrives).  Returns, per tree stream, P and C (the producer-side and
    consumer-side handshakes), and per leaf when each beat arrives at the reader (valid at
    its port, before the reader's own take)."""
    inf = np.iinfo(np.int64).min // 4
    p = [np.full(s.beats, inf, dtype=np.int64) for s in tree]
    c = [np.full(s.beats, inf, dtype=np.int64) for s in tree]
    load = {k: np.full(s.beats, inf, dtype=np.int64) for k, s in enumerate(tree)
            if s.consumer == "dwc" and tree[s.children[0]].via == "down"}
    arrival = {k: np.full(s.beats, inf, dtype=np.int64) for k, s in enumerate(tree)
               if s.consumer == "leaf"}
    for k, j in dependency_order(tree):
        s = tree[k]
        t = p[k][j - 1] + 1 if j else inf
        if s.via == "root":
            t = max(t, int(offered[j]))
        else:
            up = s.parent
            if s.via == "fork":
                t = max(t, c[up][j] + 1)
            elif s.via == "down":
                t = max(t, load[up][j // s.ratio] + 1 + j % s.ratio)
            elif s.via == "up":
                t = max(t, c[up][j * s.ratio + s.ratio - 1] + 1)
            else:   # shift: the input beat holding this beat's last element
                t = max(t, c[up][((j + 1) * s.lanes - 1) // tree[up].lanes] + 1)
        if s.depth and j >= s.depth:
            t = max(t, c[k][j - s.depth] + 1)
        p[k][j] = t
        h = t + 1 if s.depth else t
        if j:
            h = max(h, c[k][j - 1] + 1)
        if s.consumer == "leaf":
            arrival[k][j] = h
            take = takes.get(s.name)
            if take is not None:
                h = max(h, int(take[j]))
        elif s.consumer == "fork":
            if j:
                h = max(h, *(p[ch][j - 1] for ch in s.children))
        else:
            (ch,) = s.children
            out = tree[ch]
            if out.via == "down":
                r = out.ratio
                if j:
                    h = max(h, load[k][j - 1] + 1)
                h_load = max(h + 1, p[ch][j * r - 1] if j else inf)
                load[k][j] = h_load
            elif out.via == "up":
                r = out.ratio
                if j % r == r - 1 and j >= r:
                    h = max(h, p[ch][j // r - 1] + 1)
            else:
                cap = dwc_capacity_beats(s.lanes, out.lanes) * s.lanes
                need = (j + 1) * s.lanes - cap      # elements that must have left
                if need > 0:
                    h = max(h, p[ch][-(-need // out.lanes) - 1] + 1)
        if not s.depth:
            p[k][j] = h
        c[k][j] = h
    return p, c, {tree[k].name: a for k, a in arrival.items()}


class Stalls:
    """A stall-all unit (``en = !m_tvalid || m_tready``) in its own time: it runs its
    stall-free schedule, except that it stands still while an output beat is valid and
    not taken.  Beat k, valid at own time ``own[k]``, leaves at cycle ``handshakes[k]``;
    by then the unit has stood still max(0, max_(i <= k) handshakes[i] - own[i]) cycles
    in all (each wait starts where the one before ended), which delays everything it does
    from own time ``own[k]`` on.  ``cycle`` maps own times to cycles, ``own_time`` maps a
    cycle to the first own time at or after it."""

    def __init__(self, own: np.ndarray, handshakes: np.ndarray) -> None:
        self.own = np.maximum.accumulate(own)
        self.waited = np.maximum(0, np.maximum.accumulate(handshakes - self.own))
        self.at = self.own + self.waited        # the cycle of each beat's own time

    def cycle(self, times: np.ndarray) -> np.ndarray:
        k = np.searchsorted(self.own, times, side="right") - 1
        return times + np.where(k >= 0, self.waited[np.maximum(k, 0)], 0)

    def own_time(self, cycles: np.ndarray) -> np.ndarray:
        k = np.searchsorted(self.at, cycles, side="right") - 1     # the last beat begun
        t = cycles - np.where(k >= 0, self.waited[np.maximum(k, 0)], 0)
        nxt = np.append(self.own, np.iinfo(np.int64).max)[k + 1]
        return np.minimum(t, nxt)     # within a wait: the own time it ends at
