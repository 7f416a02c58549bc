"""Cycle-accurate simulation of the RTL project with Verilator (``--engine rtl``).

``simulate(OUT, graph, codes)`` builds the design once (content-hash cache in
``OUT/.cache/rtl/<hash>/``), streams the N frames through the compiled C++ harness
(``bnn2fpga/sim/harness``) and returns the output codes plus a cycle summary.  The build key
covers the SystemVerilog sources, the harness and the Verilator version; the weight and
threshold memory files are read at run time (``$readmemh`` from the run directory), so new
weights of the same shape reuse the build.

Both build the design under a generated simulation wrapper (templates/rtl/sim_multi.sv.j2)
that reads every unit's stream handshakes by hierarchical reference, so a hang names the
stopped unit while the user's top has only its AXI-stream ports.  ``simulate_many`` runs
several designs side by side in one build (one stream pair per design): the tests use it to
check many random layers per build.
``run_ports`` is the general form used for RTL exported by Vivado/Vitis HLS (see
``bnn2fpga/sim/harness/README.md``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bnn2fpga import folding, packing
from bnn2fpga.backends.rtl import DESIGN_JSON
from bnn2fpga.ir import Graph
from bnn2fpga.resources import resource_path, template_env
from bnn2fpga.sim import SimResult
from bnn2fpga.sim import verilator as vl

HARNESS_FILES = ("harness.cpp", "wide.h", "lz4.h")
DEFAULT_CLOCK_NS = 10.0


class RtlSimError(RuntimeError):
    """The RTL simulation failed (hang, protocol error, wrong frame count)."""


@dataclass
class StreamFormat:
    """How a frame maps onto an AXI-stream: ``lanes`` codes of ``bits`` bits per beat."""

    lanes: int
    bits: int
    tdata_bits: int
    beats_per_frame: int
    signed: bool = False

    @property
    def words(self) -> int:
        return max(1, -(-self.tdata_bits // 32))

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> StreamFormat:
        return cls(int(d["lanes"]), int(d["bits"]), int(d["tdata_bits"]),
                   int(d["beats_per_frame"]), bool(d.get("signed", False)))


@dataclass
class Pipe:
    """One input/output stream pair of the simulated top and the frames to push through it.

    ``inp``/``out``: port-name prefixes (``<inp>_TDATA``...); ``dbg``: prefix of the
    simulation wrapper's per-unit handshake vectors (``<dbg>_in_valid``...) or None;
    ``units``: (name, in beats per frame, out beats per frame) in chain order, for the hang
    diagnosis."""

    inp: str
    out: str
    in_fmt: StreamFormat
    out_fmt: StreamFormat
    codes: np.ndarray
    dbg: str | None = None
    units: list[tuple[str, int, int]] = field(default_factory=list)
    in_tlast: bool = False
    in_tkeep: bool = False
    out_tlast: bool = True


# ----------------------------------------------------------------------------------------
# Build (cached)
# ----------------------------------------------------------------------------------------


def _digest(parts: list[bytes]) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(len(p).to_bytes(8, "little"))
        h.update(p)
    return h.hexdigest()[:20]


def build_harness(sources: list[Path], top: str, ports_h: str, cache_root: Path,
                  trace: bool = True) -> Path:
    """The harness executable for ``sources`` (cached by content)."""
    harness = resource_path("harness")
    cache_root = Path(cache_root).absolute()
    parts = [vl.version().encode(), top.encode(), ports_h.encode(), b"trace" if trace else b""]
    parts += [p.name.encode() + b"\0" + p.read_bytes() for p in sources]
    parts += [(harness / f).read_bytes() for f in HARNESS_FILES]
    parts += [" ".join(vl.OPT_FLAGS + vl.LINK_FLAGS).encode()]
    key = _digest(parts)
    mdir = Path(cache_root) / key
    exe = mdir / "obj" / "harness"
    if exe.is_file():
        return exe
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.tmp-", dir=_mkdir(cache_root)))
    try:
        src_dir = tmp / "src"
        src_dir.mkdir()
        for p in sources:
            shutil.copyfile(p, src_dir / p.name)
        for f in HARNESS_FILES:
            shutil.copyfile(harness / f, src_dir / f)
        (src_dir / "ports.h").write_text(ports_h)
        vl.build([src_dir / p.name for p in sources], top, tmp / "obj",
                 [src_dir / "harness.cpp"], [src_dir], trace=trace,
                 progress=f"building RTL simulator for {top} ({len(sources)} files)")
        try:
            os.rename(tmp, mdir)
        except OSError:  # built concurrently by another process: use theirs
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return exe


def _mkdir(p: Path) -> Path:
    Path(p).mkdir(parents=True, exist_ok=True)
    return Path(p)


def render_ports(cls: str, pipes: list[Pipe], clock: str = "ap_clk", reset: str = "ap_rst_n",
                 reset_active_low: bool = True, start: str | None = None) -> str:
    return template_env().get_template("rtl/harness_ports.h.j2").render(
        cls=cls, clock=clock, reset=reset, reset_active_low=reset_active_low, start=start,
        pipes=[{"inp": p.inp, "out": p.out, "dbg": p.dbg, "in_words": p.in_fmt.words,
                "out_words": p.out_fmt.words, "units": max(1, len(p.units)),
                "in_tlast": p.in_tlast, "in_tkeep": p.in_tkeep, "out_tlast": p.out_tlast}
               for p in pipes])


# ----------------------------------------------------------------------------------------
# Run
# ----------------------------------------------------------------------------------------


def run_ports(sources: list[Path], top: str, pipes: list[Pipe], run_dir: Path,
              cache_root: Path, *, stall_prob: float = 0.0, trace: str | Path | None = None,
              hang_cycles: int = 100_000, seed: int = 1, clock: str = "ap_clk",
              reset: str = "ap_rst_n", reset_active_low: bool = True,
              start: str | None = None, label: str | None = None, timeline: bool = False
              ) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Build (cached) and run the harness on ``top``; returns each pipe's output codes
    (frames, elements) and the harness's raw JSON.  ``run_dir`` is the working directory
    (where ``$readmemh`` finds the memory files); ``label`` names the design in errors
    (default ``top``; the user's top rather than its simulation wrapper); ``timeline``: each
    pipe's JSON also has ``timeline``, unit -> the cycles of its first frame's output
    handshakes."""
    label = label or top
    if not 0.0 <= stall_prob < 1.0:
        raise ValueError(f"stall_prob={stall_prob}: expected 0 <= p < 1")
    ports_h = render_ports(f"V{top}", pipes, clock, reset, reset_active_low, start)
    # tracing slows the model down even when off: a traced build only when asked for
    exe = build_harness([Path(s) for s in sources], top, ports_h, cache_root,
                        trace=bool(trace))
    with tempfile.TemporaryDirectory(prefix="bnn2fpga-rtlsim-") as tmp_s:
        tmp = Path(tmp_s)
        cfg = []
        for k, p in enumerate(pipes):
            frames = p.codes.shape[0]
            words = packing.pack_beats(p.codes, p.in_fmt.lanes, p.in_fmt.bits,
                                       p.in_fmt.tdata_bits)
            if words.shape[0] != frames * p.in_fmt.beats_per_frame:
                raise ValueError(f"pipe {k}: {words.shape[0]} input beats for {frames} frames "
                                 f"of {p.in_fmt.beats_per_frame} beats")
            words.tofile(tmp / f"in{k}.bin")
            cfg.append(f"pipe {tmp / f'in{k}.bin'} {tmp / f'out{k}.bin'} {frames} "
                       f"{p.in_fmt.beats_per_frame} {p.out_fmt.beats_per_frame}")
            cfg += [f"unit {k} {name} {ib} {ob}" for name, ib, ob in p.units]
        (tmp / "run.cfg").write_text("\n".join(cfg) + "\n")
        cmd = [str(exe), "--config", str(tmp / "run.cfg"), "--json", str(tmp / "result.json"),
               "--stall-prob", repr(float(stall_prob)), "--seed", str(int(seed)),
               "--hang-cycles", str(int(hang_cycles))]
        if trace:
            cmd += ["--trace", str(Path(trace).absolute())]
        if timeline:
            cmd.append("--timeline")
        proc = subprocess.run(cmd, cwd=run_dir, capture_output=True, text=True)
        if not (tmp / "result.json").is_file():
            raise RtlSimError(f"the RTL simulation of {label} failed (exit {proc.returncode}):\n"
                              f"{proc.stderr.strip() or proc.stdout.strip()}")
        if "%Warning" in proc.stderr or "%Error" in proc.stderr:  # e.g. a missing .mem
            raise RtlSimError(f"the RTL simulation of {label} reported problems (run directory "
                              f"{run_dir}):\n{proc.stderr.strip()[-3000:]}")
        result = json.loads((tmp / "result.json").read_text())
        if result["error"]:
            raise RtlSimError(f"RTL simulation of {label}: {result['error']}")
        if proc.returncode != 0:
            raise RtlSimError(f"the RTL simulation of {label} exited with {proc.returncode}: "
                              f"{proc.stderr.strip()}")
        outputs = []
        for k, p in enumerate(pipes):
            frames = p.codes.shape[0]
            raw = np.fromfile(tmp / f"out{k}.bin", dtype="<u4")
            beats = frames * p.out_fmt.beats_per_frame
            if raw.size != beats * p.out_fmt.words:
                raise RtlSimError(f"pipe {k}: {raw.size // p.out_fmt.words} output beats, "
                                  f"expected {beats}")
            codes = packing.unpack_beats(raw.reshape(beats, p.out_fmt.words), p.out_fmt.lanes,
                                         p.out_fmt.bits, p.out_fmt.signed)
            outputs.append(codes.reshape(frames, -1))
    return outputs, result


def cycle_summary(pipe_result: dict[str, Any], frames: int, clock_ns: float,
                  graph: Graph | None = None) -> dict[str, Any]:
    """First-frame latency, steady-state interval, total cycles and frames/s; with the
    harness's ``timeline``, ``unit_out_cycles``: unit -> its first frame's output
    handshakes, counted as the latency is (1 = the first input beat's cycle)."""
    done = pipe_result["frame_done"]
    first = pipe_result["first_in"]
    latency = done[0] - first + 1 if done else None
    if len(done) >= 2:
        h = len(done) // 2 if len(done) >= 4 else 0
        interval = (done[-1] - done[h]) / (len(done) - 1 - h)
    else:
        interval = float(latency) if latency else None
    summary: dict[str, Any] = {
        "engine": "rtl", "frames": frames, "first_frame_latency_cycles": latency,
        "steady_state_cycles_per_frame": interval,
        "total_cycles": (done[-1] - first + 1) if done else None,
        "clock_ns": clock_ns,
        "fps": (1e9 / (interval * clock_ns)) if interval else None,
    }
    if graph is not None:
        name, cycles = folding.bottleneck(graph)
        summary["bottleneck"] = {"unit": name, "cycles_per_frame": cycles}
    if "timeline" in pipe_result:
        summary["unit_out_cycles"] = {u: np.asarray(c, dtype=np.int64) - first + 1
                                      for u, c in pipe_result["timeline"].items()}
    return summary


def run_conditions(frames: int, stall_prob: float, seed: int, trace: str | Path | None,
                   design: str) -> dict[str, Any]:
    """What a run's cycle figures depend on (rtl_sim.json "conditions"): the report compares
    them with the estimate only for a run without stalls."""
    return {"design": design, "frames": int(frames), "stall_prob": float(stall_prob),
            "seed": int(seed), "trace": bool(trace)}


def rtl_dir_of(project_dir: Path) -> Path:
    p = Path(project_dir)
    if (p / DESIGN_JSON).is_file():
        return p
    if (p / "rtl" / DESIGN_JSON).is_file():
        return p / "rtl"
    raise FileNotFoundError(f"{p} holds no RTL project ({DESIGN_JSON} in it or in rtl/); "
                            "compile it with the rtl backend")


def _load_info(rtl_dir: Path) -> dict[str, Any]:
    info = json.loads((rtl_dir / DESIGN_JSON).read_text())
    if info.get("format") != "bnn2fpga-rtl":
        raise RtlSimError(f"{rtl_dir / DESIGN_JSON} is not a bnn2fpga RTL design description")
    if info.get("version", 1) < 2:
        raise RtlSimError(f"{rtl_dir / DESIGN_JSON} was written by an older bnn2fpga (RTL "
                          "ports in_*/out_*/dbg_*); recompile the model")
    return info


def render_wrapper(name: str, infos: list[dict[str, Any]]) -> str:
    """The simulation wrapper ``name`` around the designs ``infos`` (rtl_design.json each):
    pipe k's ports prefixed with ``p<k>_``, plus its units' handshakes as ``p<k>_dbg_*``."""
    def ports(i: dict[str, Any]) -> list[str]:
        return [f"{i['in_port']}_{a}" for a in ("TDATA", "TVALID", "TREADY")] + \
               [f"{i['out_port']}_{a}" for a in ("TDATA", "TVALID", "TREADY", "TLAST")]

    return template_env().get_template("rtl/sim_multi.sv.j2").render(
        name=name, pipes=[{"index": k, "top": i["top"], "units": i["units"], "ports": ports(i),
                           "in_port": i["in_port"], "out_port": i["out_port"],
                           "in_tdata": i["input"]["tdata_bits"],
                           "out_tdata": i["output"]["tdata_bits"]}
                          for k, i in enumerate(infos)])


def _write_if_changed(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically unless it already holds it."""
    if not (path.is_file() and path.read_text() == text):
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    return path


def _check_codes(graph: Graph, codes: np.ndarray) -> np.ndarray:
    codes = np.asarray(codes)
    want = graph.input.out.shape
    if codes.ndim != len(want) + 1 or codes.shape[1:] != want:
        raise ValueError(f"input codes have shape {codes.shape}; the design expects "
                         f"(N, {', '.join(map(str, want))})")
    if codes.shape[0] < 1:
        raise ValueError("no frames to simulate")
    return codes.astype(np.int64)


def pipe_for(info: dict[str, Any], codes: np.ndarray, prefix: str) -> Pipe:
    """Pipe of design ``info`` in a simulation wrapper whose ports for it start ``prefix``."""
    return Pipe(inp=f"{prefix}{info['in_port']}", out=f"{prefix}{info['out_port']}",
                in_fmt=StreamFormat.from_json(info["input"]),
                out_fmt=StreamFormat.from_json(info["output"]), codes=codes,
                dbg=f"{prefix}dbg",
                units=[(u["name"], u["in_beats"], u["out_beats"]) for u in info["units"]])


def default_hang_cycles(graph: Graph) -> int:
    return max(20_000, 4 * folding.bottleneck(graph)[1])


def simulate(project_dir: Path, graph: Graph, codes: np.ndarray, *, stall_prob: float = 0.0,
             trace: str | Path | None = None, hang_cycles: int | None = None,
             clock_ns: float | None = None, seed: int = 1, cache_dir: Path | None = None,
             **_: object) -> SimResult:
    """Simulate the RTL of project OUT (``project_dir``) on integer input codes (N, *shape).

    Returns the output codes (bit-identical to ``reference.execute``) and a summary: first
    frame latency, steady-state cycles per frame, total cycles and frames/s at
    ``clock_ns`` (default: the compile's clock)."""
    rtl_dir = rtl_dir_of(Path(project_dir).absolute())
    info = _load_info(rtl_dir)
    codes = _check_codes(graph, codes)
    cache_root = Path(cache_dir) if cache_dir else rtl_dir.parent / ".cache" / "rtl"
    name = f"{info['top']}_sim"
    wrapper = _write_if_changed(_mkdir(cache_root / "wrap") / f"{name}.sv",
                                render_wrapper(name, [info]))
    pipe = pipe_for(info, codes, prefix="p0_")
    outputs, result = run_ports([*(rtl_dir / s for s in info["sources"]), wrapper], name,
                                [pipe], rtl_dir, cache_root, stall_prob=stall_prob, trace=trace,
                                hang_cycles=hang_cycles or default_hang_cycles(graph),
                                seed=seed, label=info["top"])
    out_shape = graph.output.out.shape
    clock = clock_ns or info.get("clock_ns") or DEFAULT_CLOCK_NS
    summary = cycle_summary(result["pipes"][0], codes.shape[0], clock, graph)
    summary["conditions"] = run_conditions(codes.shape[0], stall_prob, seed, trace,
                                           f"bnn2fpga RTL ({info['top']})")
    summary["sim_seconds"] = result.get("sim_seconds")
    return SimResult(outputs[0].reshape((codes.shape[0], *out_shape)), summary)


def simulate_many(designs: list[tuple[Path, Graph, np.ndarray]], cache_dir: Path, *,
                  stall_prob: float = 0.0, hang_cycles: int | None = None, seed: int = 1,
                  clock_ns: float = DEFAULT_CLOCK_NS, name: str = "sim_multi",
                  timeline: bool = False) -> list[SimResult]:
    """Simulate several RTL projects (each written with a distinct ``top``) in ONE build:
    a generated wrapper instantiates every top with its own stream pair.  ``timeline``:
    each summary has ``unit_out_cycles`` (``cycle_summary``)."""
    infos, pipes, sources = [], [], {}
    cache_dir = Path(cache_dir).absolute()
    run_dir = _mkdir(cache_dir / "run" / name)
    for k, (proj, graph, codes) in enumerate(designs):
        rtl_dir = rtl_dir_of(Path(proj).absolute())
        info = _load_info(rtl_dir)
        if any(i["top"] == info["top"] for i in infos):
            raise ValueError(f"two designs have the top {info['top']!r}; write each with a "
                             "distinct CompileOptions.top")
        infos.append(info)
        for s in info["sources"]:
            sources[s] = rtl_dir / s
        for m in info["mem_files"]:
            shutil.copyfile(rtl_dir / m, run_dir / m)
        pipes.append(pipe_for(info, _check_codes(graph, codes), prefix=f"p{k}_"))
    _write_if_changed(run_dir / f"{name}.sv", render_wrapper(name, infos))
    hang = hang_cycles or max(default_hang_cycles(g) for _, g, _ in designs)
    outputs, result = run_ports([*sources.values(), run_dir / f"{name}.sv"], name, pipes,
                                run_dir, cache_dir / "build", stall_prob=stall_prob,
                                hang_cycles=hang, seed=seed, timeline=timeline)
    results = []
    for k, (_, graph, codes) in enumerate(designs):
        summary = cycle_summary(result["pipes"][k], codes.shape[0], clock_ns, graph)
        results.append(SimResult(outputs[k].reshape((codes.shape[0], *graph.output.out.shape)),
                                 summary))
    return results


def hls_formats(project_dir: Path) -> tuple[StreamFormat, StreamFormat]:
    """The AXI-stream formats of the HLS top, from OUT/hls/manifest.json."""
    path = Path(project_dir) / "hls" / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: compile the project with the hls backend "
                                "or pass in_fmt/out_fmt")
    man = json.loads(path.read_text())

    def fmt(io: dict[str, Any]) -> StreamFormat:
        return StreamFormat(int(io["elems"]), int(io["bits"]), int(io["axi_w"]),
                            int(io["beats"]), bool(io.get("signed", False)))

    return fmt(man["input"]), fmt(man["output"])


def simulate_hls_export(project_dir: Path, graph: Graph, codes: np.ndarray,
                        verilog_dir: Path, *, top: str | None = None,
                        in_port: str = "s_axis", out_port: str = "m_axis",
                        clock: str = "ap_clk", reset: str = "ap_rst_n",
                        reset_active_low: bool = True, start: str | None = None,
                        in_tlast: bool = True, out_tlast: bool = True,
                        in_fmt: StreamFormat | None = None, out_fmt: StreamFormat | None = None,
                        stall_prob: float = 0.0, trace: str | Path | None = None,
                        hang_cycles: int | None = None, seed: int = 1,
                        clock_ns: float | None = None) -> SimResult:
    """Simulate the Verilog that Vivado/Vitis HLS exported from the bnn2fpga HLS top
    (``solution/impl/verilog`` or ``syn/verilog``) with the same harness.

    The exported ports are ``<in_port>_TDATA/TVALID/TREADY/TLAST`` (and TKEEP/TSTRB/TUSER/
    TID/TDEST, left at 0) and ``<out_port>_*``: the argument names of the HLS top
    (``s_axis``/``m_axis``); a tool that renames them (e.g. ``in`` -> ``in_r``) is handled by
    passing the exported names.  ``start``: hold this port at 1 (``ap_start`` for
    ``ap_ctrl_hs``; ``ap_ctrl_none`` has none).  Stream formats default to the HLS
    manifest.  There are no per-unit debug ports: a hang names no unit."""
    verilog_dir = Path(verilog_dir).absolute()
    project_dir = Path(project_dir).absolute()
    sources = sorted(p for p in verilog_dir.iterdir() if p.suffix in (".v", ".sv"))
    if not sources:
        raise FileNotFoundError(f"no .v/.sv files in {verilog_dir}")
    top = top or graph.meta.get("top") or "bnn_top"
    if in_fmt is None or out_fmt is None:
        fi, fo = hls_formats(project_dir)
        in_fmt, out_fmt = in_fmt or fi, out_fmt or fo
    codes = _check_codes(graph, codes)
    pipe = Pipe(inp=in_port, out=out_port, in_fmt=in_fmt, out_fmt=out_fmt, codes=codes,
                in_tlast=in_tlast, out_tlast=out_tlast)
    outputs, result = run_ports(sources, top, [pipe], verilog_dir,
                                Path(project_dir) / ".cache" / "hls_rtl",
                                stall_prob=stall_prob, trace=trace,
                                hang_cycles=hang_cycles or default_hang_cycles(graph),
                                seed=seed, clock=clock, reset=reset,
                                reset_active_low=reset_active_low, start=start)
    summary = cycle_summary(result["pipes"][0], codes.shape[0],
                            clock_ns or graph.meta.get("clock_ns") or DEFAULT_CLOCK_NS, graph)
    summary["conditions"] = run_conditions(codes.shape[0], stall_prob, seed, trace,
                                           f"HLS export ({top} in {verilog_dir})")
    summary["sim_seconds"] = result.get("sim_seconds")
    return SimResult(outputs[0].reshape((codes.shape[0], *graph.output.out.shape)), summary)

