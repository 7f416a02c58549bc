"""C simulation of the generated HLS project with g++ (``--engine csim``), no Vivado needed.

The project's firmware and testbench are compiled against the ap_int/hls_stream headers that
hls4ml ships (located by ``ap_types_dir``, the one place that knows where they are) with
``-Wall -Wextra -Werror``, as one translation unit.  The executable is cached under
``OUT/.cache/csim/<hash>/``, the hash covering every source, the flags and the compiler: a
second run does not rebuild.  Frames go through the testbench in text files (one frame per
line), so the C++ side is the same testbench a Vivado user runs.

``simulate_many`` links several projects (distinct top names) into one executable: the
ap_types headers, most of the compile time, are then parsed once for all of them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from bnn2fpga.ir import Graph
from bnn2fpga.sim import SimResult

CXX = os.environ.get("CXX", "g++")
# -Wno-unknown-pragmas: the "#pragma HLS" lines are for the HLS tool; g++ would flag each one.
CXXFLAGS = ("-std=c++11", "-Wall", "-Wextra", "-Werror", "-Wno-unknown-pragmas")
DEFAULT_OPT = "-O1"  # compile time is the cost; -O1 runs the testbench fast enough
OPTIONS = ("opt", "cxx", "cache_dir")


class CSimError(RuntimeError):
    """The C simulation could not be built or run, or disagrees with its project."""


def ap_types_dir() -> Path:
    """Directory of hls4ml's ap_types (ap_int.h, hls_stream.h): the one locator."""
    try:
        import hls4ml
    except ImportError as e:
        raise CSimError("C simulation needs the ap_types headers shipped by hls4ml; "
                        "pip install hls4ml==1.3.0") from e
    path = Path(hls4ml.__file__).resolve().parent / "templates" / "vivado" / "ap_types"
    if not (path / "ap_int.h").is_file() or not (path / "hls_stream.h").is_file():
        raise CSimError(f"hls4ml at {path.parent} has no ap_types/ap_int.h; reinstall hls4ml")
    return path


def _ap_types_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hls4ml")
    except PackageNotFoundError:
        return "unknown"


@lru_cache(maxsize=4)
def _compiler_id(cxx: str) -> str:
    try:
        out = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        raise CSimError(f"C simulation needs a C++ compiler; {cxx!r} failed ({e})") from e
    return out.stdout.splitlines()[0] if out.stdout else cxx


def find_hls_dir(project_dir: Path) -> Path:
    """OUT/hls of a compiled project (OUT itself if it is the HLS directory)."""
    project_dir = Path(project_dir)
    for cand in (project_dir / "hls", project_dir):
        if (cand / "manifest.json").is_file():
            return cand
    raise CSimError(f"{str(project_dir)!r} holds no HLS project (no hls/manifest.json); "
                    "compile the model without skipping the hls backend")


@dataclass
class _Design:
    """One generated HLS project, as the C simulation sees it."""

    hls_dir: Path
    manifest: dict[str, Any]

    @classmethod
    def load(cls, project_dir: Path) -> _Design:
        hls_dir = find_hls_dir(project_dir).resolve()
        return cls(hls_dir, json.loads((hls_dir / "manifest.json").read_text()))

    @property
    def top(self) -> str:
        return self.manifest["top"]

    @property
    def firmware(self) -> Path:
        return self.hls_dir / self.manifest["sources"][0]

    @property
    def testbench(self) -> Path:
        return self.hls_dir / self.manifest["testbench"]

    def sources(self) -> list[Path]:
        files = sorted(p for p in (self.hls_dir / "firmware").rglob("*") if p.is_file())
        return files + [self.testbench]

    def check(self, graph: Graph, codes: np.ndarray) -> np.ndarray:
        from bnn2fpga.backends.hls import graph_fingerprint

        if self.manifest.get("fingerprint") != graph_fingerprint(graph):
            raise CSimError(f"the HLS project in {self.hls_dir} was generated from another "
                            f"design than graph {graph.name!r}; recompile the project")
        codes = np.asarray(codes)
        in_shape = tuple(self.manifest["input"]["shape"])
        if codes.ndim != len(in_shape) + 1 or codes.shape[1:] != in_shape:
            raise CSimError(f"input codes of shape {codes.shape}, expected (N, "
                            f"{', '.join(map(str, in_shape))})")
        if not np.issubdtype(codes.dtype, np.integer):
            raise CSimError(f"input codes must be integers (got {codes.dtype}); quantize the "
                            "frames with reference.quantize_input first")
        bits = self.manifest["input"]["bits"]
        lo = -(1 << (bits - 1)) if self.manifest["input"].get("signed") else 0
        top = lo + (1 << bits) - 1
        if codes.size and (codes.min() < lo or codes.max() > top):
            raise CSimError(f"input codes must lie in {lo}..{top}")
        return codes


def _options(options: dict[str, Any]) -> tuple[str, str]:
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise CSimError(f"unknown csim option(s) {sorted(unknown)}; known: "
                        f"{', '.join(OPTIONS)}")
    return options.get("opt", DEFAULT_OPT), options.get("cxx", CXX)


def build(designs: Sequence[_Design], cache_root: Path, *, opt: str = DEFAULT_OPT,
          cxx: str = CXX) -> tuple[Path, bool, float]:
    """Compile (or reuse) the csim executable of one design (its testbench's own main) or of
    several (a generated driver dispatching on the top name).
    Returns (path, was_cached, seconds)."""
    ap = ap_types_dir()
    batch = len(designs) > 1
    if batch and len({d.top for d in designs}) != len(designs):
        raise CSimError("designs linked into one C simulation need distinct top names")
    h = hashlib.sha256()
    h.update(json.dumps([_compiler_id(cxx), str(ap), _ap_types_version(), *CXXFLAGS, opt,
                         batch]).encode())
    for d in designs:
        for path in d.sources():
            h.update(str(path.relative_to(d.hls_dir)).encode() + b"\0" + path.read_bytes()
                     + b"\0")
    cache = cache_root / h.hexdigest()[:20]
    exe = cache / "csim"
    if exe.is_file():
        return exe, True, 0.0
    cache_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=cache_root))
    shim = designs[0].hls_dir / designs[0].manifest["lib_dir"] / "csim"
    flags = [*CXXFLAGS, opt, "-isystem", str(ap), "-I", str(shim)]
    flags += [arg for d in designs for arg in ("-I", str(d.hls_dir / "firmware"))]
    if batch:
        from bnn2fpga.resources import template_env

        driver = tmp / "csim_batch.cpp"
        driver.write_text(template_env().get_template("hls/csim_batch.cpp.j2").render(
            designs=[{"top": d.top, "firmware": str(d.firmware), "testbench": str(d.testbench)}
                     for d in designs],
            ap_int_max_w=max(d.manifest.get("ap_int_max_w", 0) for d in designs)))
        sources = [str(driver)]
    else:
        # one translation unit: the firmware through -include, then the testbench
        sources = ["-include", str(designs[0].firmware), str(designs[0].testbench)]
    cmd = [cxx, *flags, *sources, "-o", str(tmp / "csim")]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        where = ", ".join(str(d.hls_dir) for d in designs)
        raise CSimError(f"g++ failed to compile the HLS project(s) {where}:\n"
                        f"{' '.join(cmd)}\n{proc.stderr[-8000:]}")
    try:
        tmp.rename(cache)  # atomic: a concurrent build of the same hash keeps its own copy
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    return exe, False, seconds


def _run(exe: Path, design: _Design, codes: np.ndarray, batch: bool) -> np.ndarray:
    from bnn2fpga.backends.hls import write_codes

    out_shape = tuple(design.manifest["output"]["shape"])
    with tempfile.TemporaryDirectory(prefix="run-", dir=exe.parent) as run_dir:
        run = Path(run_dir)
        write_codes(run / "inputs.txt", codes)
        cmd = [str(exe), design.top, str(run)] if batch else [str(exe), str(run)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise CSimError(f"C simulation of {design.hls_dir} failed (exit "
                            f"{proc.returncode}):\n{proc.stderr[-4000:]}")
        text = (run / "csim_outputs.txt").read_text()
    values = np.array(text.split(), dtype=np.int64)
    n = len(codes)
    if values.size != n * int(np.prod(out_shape)):
        raise CSimError(f"C simulation wrote {values.size} output codes for {n} frames of "
                        f"shape {out_shape}")
    return values.reshape((n, *out_shape))


def simulate(project_dir: Path, graph: Graph, codes: np.ndarray, **options: Any) -> SimResult:
    """Run input codes (N, *input_shape) through the C simulation; output codes as
    ``reference.execute(graph, codes)[graph.output.name]``.

    Options: ``opt`` (g++ optimisation flag, default -O1), ``cxx`` (compiler), ``cache_dir``
    (default OUT/.cache/csim)."""
    return simulate_many([(project_dir, graph, codes)], **options)[0]


def simulate_many(jobs: Sequence[tuple[Path, Graph, np.ndarray]], **options: Any
                  ) -> list[SimResult]:
    """``simulate`` for several projects (distinct top names) built as one executable,
    cached under ``cache_dir`` (default: the first project's OUT/.cache/csim)."""
    opt, cxx = _options(options)
    if not jobs:
        return []
    designs = [_Design.load(project) for project, _, _ in jobs]
    inputs = [d.check(graph, codes) for d, (_, graph, codes) in zip(designs, jobs, strict=True)]
    cache_root = Path(options.get("cache_dir") or designs[0].hls_dir.parent / ".cache" / "csim")
    exe, cached, build_s = build(designs, cache_root, opt=opt, cxx=cxx)
    results = []
    for design, codes in zip(designs, inputs, strict=True):
        start = time.perf_counter()
        out = _run(exe, design, codes, batch=len(designs) > 1)
        summary = {"engine": "csim", "frames": len(codes), "cached_build": cached,
                   "build_seconds": round(build_s, 3),
                   "run_seconds": round(time.perf_counter() - start, 3),
                   "executable": str(exe), "designs_in_build": len(designs)}
        results.append(SimResult(out, summary))
    return results
