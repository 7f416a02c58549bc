"""C simulation of the generated HLS project with g++ (``--engine csim``), no Vivado needed.

The project's firmware and testbench are compiled against the ap_int/hls_stream headers that
hls4ml ships (located by ``ap_types_dir``, the one place that knows where they are) with
``-Wall -Wextra -Werror``.  The executable is cached under ``OUT/.cache/csim/<hash>/``, the
hash covering every source, the flags and the compiler: a second run does not rebuild.
Frames go through the testbench in text files (one frame per line), so the C++ side is the
same testbench a Vivado user runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from bnn2fpga.ir import Graph
from bnn2fpga.sim import SimResult

CXX = os.environ.get("CXX", "g++")
# -Wno-unknown-pragmas: the "#pragma HLS" lines are for the HLS tool; g++ would flag each one.
CXXFLAGS = ("-std=c++11", "-Wall", "-Wextra", "-Werror", "-Wno-unknown-pragmas")
DEFAULT_OPT = "-O1"  # ap_types compile slowly; -O1 runs the testbench fast enough


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


def _sources(hls_dir: Path, manifest: dict[str, Any]) -> list[Path]:
    files = sorted(p for p in (hls_dir / "firmware").rglob("*") if p.is_file())
    return files + [hls_dir / manifest["testbench"]]


def build(hls_dir: Path, cache_root: Path, *, opt: str = DEFAULT_OPT, cxx: str = CXX
          ) -> tuple[Path, bool, float]:
    """Compile (or reuse) the csim executable. Returns (path, was_cached, seconds)."""
    manifest = json.loads((hls_dir / "manifest.json").read_text())
    ap = ap_types_dir()
    lib = hls_dir / manifest["lib_dir"]
    flags = [*CXXFLAGS, opt, "-isystem", str(ap), "-I", str(lib / "csim"),
             "-I", str(hls_dir / "firmware")]
    h = hashlib.sha256()
    h.update(json.dumps([_compiler_id(cxx), str(ap), *CXXFLAGS, opt]).encode())
    for path in _sources(hls_dir, manifest):
        h.update(str(path.relative_to(hls_dir)).encode() + b"\0" + path.read_bytes() + b"\0")
    cache = cache_root / h.hexdigest()[:20]
    exe = cache / "csim"
    if exe.is_file():
        return exe, True, 0.0
    cache_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=cache_root))
    start = time.perf_counter()
    # one translation unit (firmware via -include, then the testbench): the ap_types headers,
    # most of the compile time, are parsed once
    includes = [arg for src in manifest["sources"] for arg in ("-include", str(hls_dir / src))]
    cmd = [cxx, *flags, *includes, str(hls_dir / manifest["testbench"]), "-o", str(tmp / "csim")]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise CSimError(f"g++ failed to compile the HLS project {hls_dir}:\n"
                        f"{' '.join(cmd)}\n{proc.stderr[-8000:]}")
    try:
        tmp.rename(cache)  # atomic: a concurrent build of the same hash keeps its own copy
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    return exe, False, seconds


def simulate(project_dir: Path, graph: Graph, codes: np.ndarray, **options: Any) -> SimResult:
    """Run input codes (N, *input_shape) through the C simulation; output codes as
    ``reference.execute(graph, codes)[graph.output.name]``.

    Options: ``opt`` (g++ optimisation flag, default -O1), ``cxx`` (compiler), ``cache_dir``
    (default OUT/.cache/csim)."""
    from bnn2fpga.backends.hls import graph_fingerprint, write_codes

    unknown = set(options) - {"opt", "cxx", "cache_dir"}
    if unknown:
        raise CSimError(f"unknown csim option(s) {sorted(unknown)}; known: opt, cxx, cache_dir")
    hls_dir = find_hls_dir(project_dir)
    manifest = json.loads((hls_dir / "manifest.json").read_text())
    if manifest.get("fingerprint") != graph_fingerprint(graph):
        raise CSimError(f"the HLS project in {hls_dir} was generated from another design than "
                        f"graph {graph.name!r}; recompile the project")
    codes = np.asarray(codes)
    in_shape = tuple(manifest["input"]["shape"])
    if codes.ndim != len(in_shape) + 1 or codes.shape[1:] != in_shape:
        raise CSimError(f"input codes of shape {codes.shape}, expected (N, "
                        f"{', '.join(map(str, in_shape))})")
    if not np.issubdtype(codes.dtype, np.integer):
        raise CSimError(f"input codes must be integers (got {codes.dtype}); quantize the "
                        "frames with reference.quantize_input first")
    top = (1 << manifest["input"]["bits"]) - 1
    if codes.size and (codes.min() < 0 or codes.max() > top):
        raise CSimError(f"input codes must lie in 0..{top}")
    cache_root = Path(options.get("cache_dir") or hls_dir.parent / ".cache" / "csim")
    exe, cached, build_s = build(hls_dir, cache_root, opt=options.get("opt", DEFAULT_OPT),
                                 cxx=options.get("cxx", CXX))
    out_shape = tuple(manifest["output"]["shape"])
    n = len(codes)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="run-", dir=exe.parent) as run_dir:
        run = Path(run_dir)
        write_codes(run / "inputs.txt", codes)
        proc = subprocess.run([str(exe), str(run)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise CSimError(f"C simulation of {hls_dir} failed (exit {proc.returncode}):\n"
                            f"{proc.stderr[-4000:]}")
        text = (run / "csim_outputs.txt").read_text()
    values = np.array(text.split(), dtype=np.int64)
    if values.size != n * int(np.prod(out_shape)):
        raise CSimError(f"C simulation wrote {values.size} output codes for {n} frames of "
                        f"shape {out_shape}")
    summary = {"engine": "csim", "frames": n, "cached_build": cached,
               "build_seconds": round(build_s, 3),
               "run_seconds": round(time.perf_counter() - start, 3), "executable": str(exe)}
    return SimResult(values.reshape((n, *out_shape)), summary)
