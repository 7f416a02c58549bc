"""Simulation speed: the compiled Verilator harness vs a per-cycle Python loop.

Both drive the SAME verilated model of one design (bnn2fpga.testing.random_cnn_graph by
default): the harness runs the whole stream in C++ (bnn2fpga/sim/harness); the Python loop
is the pyverilator style: a small C-ABI shared library exposing set/eval/get on the model,
called through ctypes once per signal per clock edge, exactly as the harness does per
cycle (set inputs, clk=0, eval, sample handshakes, clk=1, eval).

    python bench/sim_speed.py [--frames 2000] [--py-frames 20]

Prints a table and writes bench/results/sim_speed.json.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bnn2fpga import packing, reference, testing
from bnn2fpga.backends.rtl import write_project
from bnn2fpga.resources import resource_path
from bnn2fpga.sim import rtl as simrtl
from bnn2fpga.sim import verilator as vl

# C-ABI wrapper of the verilated model, built from the same ports.h the harness uses
PYV_CPP = r"""
#include <cstdint>
#include "verilated.h"
#include "wide.h"
#include "ports.h"
extern "C" {
static VerilatedContext* g_ctx = nullptr;
void* pyv_new() { if (!g_ctx) g_ctx = new VerilatedContext; return new Top(g_ctx); }
void pyv_delete(void* t) { delete static_cast<Top*>(t); }
void pyv_eval(void* t) { static_cast<Top*>(t)->eval(); }
void pyv_clock(void* t, int v) { set_clock(static_cast<Top*>(t), v); }
void pyv_reset(void* t, int on) { set_reset(static_cast<Top*>(t), on != 0); }
void pyv_set_in(void* t, const uint32_t* d, int valid) {
  set_in(static_cast<Top*>(t), 0, d, valid, 0);
}
int pyv_in_ready(void* t) { return in_ready(static_cast<Top*>(t), 0); }
void pyv_set_out_ready(void* t, int r) { set_out_ready(static_cast<Top*>(t), 0, r); }
int pyv_out_valid(void* t) { return out_valid(static_cast<Top*>(t), 0); }
void pyv_get_out(void* t, uint32_t* d) { get_out(static_cast<Top*>(t), 0, d); }
void pyv_get_dbg(void* t, uint32_t* iv, uint32_t* ir, uint32_t* ov, uint32_t* orr) {
  get_dbg(static_cast<Top*>(t), 0, iv, ir, ov, orr);
}
}
"""


def build_pyv(rtl: Path, info: dict, pipe: simrtl.Pipe, work: Path) -> Path:
    src = work / "src"
    src.mkdir(parents=True)
    name = f"{info['top']}_sim"  # the simulation wrapper exposes the units' handshakes
    (src / f"{name}.sv").write_text(simrtl.render_wrapper(name, [info]))
    (src / "ports.h").write_text(simrtl.render_ports(f"V{name}", [pipe]))
    harness = resource_path("harness")
    for f in ("wide.h", "lz4.h"):
        (src / f).write_text((harness / f).read_text())
    (src / "pyv.cpp").write_text(PYV_CPP)
    mdir = work / "obj"
    mdir.mkdir()
    args = ["--cc", "--exe", "--build", "-j", "2", "--top-module", name, "-Wno-fatal",
            "--Mdir", str(mdir), "-o", "libpyv.so", "-CFLAGS", f"-fPIC -I{src}",
            "-MAKEFLAGS", " ".join((*vl.OPT_FLAGS, *vl.LINK_FLAGS, "LDFLAGS=-shared")),
            *[str(rtl / s) for s in info["sources"]], str(src / f"{name}.sv"),
            str(src / "pyv.cpp")]
    vl.run(args, mdir, progress="building the ctypes model (Python loop)")
    return mdir / "libpyv.so"


def python_loop(lib_path: Path, rtl: Path, pipe: simrtl.Pipe, frames: int,
                duties: bool = False) -> dict:
    """Per-cycle Python loop through ctypes; returns cycles, seconds, outputs.

    ``duties``: also do what the harness does every cycle besides driving the streams:
    read the per-unit handshake vectors, count each unit's handshakes and watch for a hang
    (otherwise the loop is the bare minimum: drive, clock, sample)."""
    import os

    lib = ctypes.CDLL(str(lib_path))
    lib.pyv_new.restype = ctypes.c_void_p
    for name in ("pyv_eval", "pyv_clock", "pyv_reset", "pyv_set_in", "pyv_in_ready",
                 "pyv_set_out_ready", "pyv_out_valid", "pyv_get_out", "pyv_get_dbg"):
        getattr(lib, name).argtypes = [ctypes.c_void_p] + {
            "pyv_clock": [ctypes.c_int], "pyv_reset": [ctypes.c_int],
            "pyv_set_in": [ctypes.c_void_p, ctypes.c_int], "pyv_set_out_ready": [ctypes.c_int],
            "pyv_get_out": [ctypes.c_void_p],
            "pyv_get_dbg": [ctypes.c_void_p] * 4}.get(name, [])
    t = ctypes.c_void_p(lib.pyv_new())
    words = packing.pack_beats(pipe.codes[:frames], pipe.in_fmt.lanes, pipe.in_fmt.bits,
                               pipe.in_fmt.tdata_bits)
    beats_in = [np.ascontiguousarray(w) for w in words]
    zero = np.zeros(words.shape[1], dtype=np.uint32)
    obuf = np.zeros(pipe.out_fmt.words, dtype=np.uint32)
    optr = obuf.ctypes.data_as(ctypes.c_void_p)
    cwd = os.getcwd()
    os.chdir(rtl)  # the first eval runs the initial blocks: $readmemh finds the files here
    try:
        lib.pyv_reset(t, 1)
        for _ in range(8):
            lib.pyv_clock(t, 0)
            lib.pyv_eval(t)
            lib.pyv_clock(t, 1)
            lib.pyv_eval(t)
        lib.pyv_reset(t, 0)
    finally:
        os.chdir(cwd)
    lib.pyv_set_out_ready(t, 1)
    want = frames * pipe.out_fmt.beats_per_frame
    out, sent, cycles = [], 0, 0
    n_units = len(pipe.units)
    dbg = [np.zeros(max(1, -(-n_units // 32)), dtype=np.uint32) for _ in range(4)]
    dbg_ptr = [d.ctypes.data_as(ctypes.c_void_p) for d in dbg]
    fires_in, fires_out = [0] * n_units, [0] * n_units
    last_progress = 0
    start = time.perf_counter()
    while len(out) < want:
        d = beats_in[sent] if sent < len(beats_in) else zero
        lib.pyv_set_in(t, d.ctypes.data_as(ctypes.c_void_p), int(sent < len(beats_in)))
        lib.pyv_clock(t, 0)
        lib.pyv_eval(t)
        if sent < len(beats_in) and lib.pyv_in_ready(t):
            sent += 1
        if lib.pyv_out_valid(t):
            lib.pyv_get_out(t, optr)
            out.append(obuf.copy())
        if duties:
            lib.pyv_get_dbg(t, *dbg_ptr)
            iv, ir, ov, orr = (int(d[0]) for d in dbg)
            fin, fout = iv & ir, ov & orr
            for u in range(n_units):
                if fin >> u & 1:
                    fires_in[u] += 1
                if fout >> u & 1:
                    fires_out[u] += 1
            if fin or fout:
                last_progress = cycles
            elif cycles - last_progress > 100_000:
                raise RuntimeError("hang")
        lib.pyv_clock(t, 1)
        lib.pyv_eval(t)
        cycles += 1
    seconds = time.perf_counter() - start
    codes = packing.unpack_beats(np.array(out), pipe.out_fmt.lanes, pipe.out_fmt.bits,
                                 pipe.out_fmt.signed).reshape(frames, -1)
    return {"cycles": cycles, "seconds": seconds, "codes": codes}


DESIGNS = {
    # a whole small network: 14 units (window, MVTU, pool, width converters, FIFOs)
    "cnn": lambda rng: testing.random_cnn_graph(rng),
    # one small fully-parallel dense layer: the harness/loop overhead dominates
    "dense": lambda rng: testing.random_dense_graph(rng, fan_in=16, out_ch=8, pe=2, simd=4),
}


def measure(name: str, frames: int, py_frames: int) -> dict:
    rng = np.random.default_rng(0)
    graph = DESIGNS[name](rng)
    codes = testing.random_input_codes(rng, graph, frames)
    want = reference.execute(graph, codes)[graph.output.name].reshape(frames, -1)
    with tempfile.TemporaryDirectory(prefix="bnn2fpga-simspeed-") as tmp_s:
        tmp = Path(tmp_s)
        write_project(graph, tmp / "rtl")
        rtl = tmp / "rtl"
        info = json.loads((rtl / "rtl_design.json").read_text())
        pipe = simrtl.pipe_for(info, codes, prefix="p0_")
        simrtl.simulate(tmp, graph, codes[:2])  # build (cached) before timing
        start = time.perf_counter()
        res = simrtl.simulate(tmp, graph, codes)
        harness_s = time.perf_counter() - start
        assert np.array_equal(res.codes.reshape(frames, -1), want), "harness != reference"
        lib = build_pyv(rtl, info, pipe, tmp / "pyv")
        py = python_loop(lib, rtl, pipe, py_frames)
        assert np.array_equal(py["codes"], want[:py_frames]), "python loop != reference"
        pyd = python_loop(lib, rtl, pipe, py_frames, duties=True)
        assert np.array_equal(pyd["codes"], want[:py_frames]), "python loop != reference"
    rows = {
        "compiled harness (C++)": {"frames": frames, "cycles": res.summary["total_cycles"],
                                   "seconds": res.summary["sim_seconds"]},
        "harness, whole simulate() call": {"frames": frames,
                                           "cycles": res.summary["total_cycles"],
                                           "seconds": harness_s},
        "per-cycle Python loop (ctypes)": {"frames": py_frames, "cycles": py["cycles"],
                                           "seconds": py["seconds"]},
        "Python loop + harness duties": {"frames": py_frames, "cycles": pyd["cycles"],
                                         "seconds": pyd["seconds"]},
    }
    for r in rows.values():
        r["cycles_per_s"] = r["cycles"] / r["seconds"]
        r["frames_per_s"] = r["frames"] / r["seconds"]
    speedup = (rows["compiled harness (C++)"]["cycles_per_s"]
               / rows["per-cycle Python loop (ctypes)"]["cycles_per_s"])
    return {"design": name, "graph": graph.name, "units": len(info["units"]),
            "cycles_per_frame": res.summary["steady_state_cycles_per_frame"],
            "engines": rows, "speedup_cycles_per_s": speedup}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=2000, help="frames for the C++ harness")
    ap.add_argument("--py-frames", type=int, default=20, help="frames for the Python loop")
    ap.add_argument("--designs", default="dense,cnn", help="comma list of " + ",".join(DESIGNS))
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "sim_speed.json"))
    args = ap.parse_args()
    results = []
    for name in args.designs.split(","):
        frames = args.frames * (50 if name == "dense" else 1)  # dense frames are ~20 cycles
        py_frames = args.py_frames * (50 if name == "dense" else 1)
        results.append(measure(name, frames, py_frames))
    print(f"{'design':7s} {'engine':32s} {'frames':>7s} {'cycles':>10s} {'seconds':>8s} "
          f"{'Mcycles/s':>10s} {'frames/s':>10s} {'speed-up':>11s}")
    for r in results:
        py_rate = r["engines"]["per-cycle Python loop (ctypes)"]["cycles_per_s"]
        duty_rate = r["engines"]["Python loop + harness duties"]["cycles_per_s"]
        for k, (name, e) in enumerate(r["engines"].items()):
            if k == 0:
                up = (f"{e['cycles_per_s'] / py_rate:4.0f}x/"
                      f"{e['cycles_per_s'] / duty_rate:.0f}x")
            elif k == 1:
                up = f"{e['cycles_per_s'] / py_rate:4.0f}x"
            else:
                up = ""
            print(f"{r['design']:7s} {name:32s} {e['frames']:7d} {e['cycles']:10d} "
                  f"{e['seconds']:8.3f} {e['cycles_per_s'] / 1e6:10.3f} "
                  f"{e['frames_per_s']:10.1f} {up:>11s}")
    print("compiled harness = its cycle loop (timed inside the harness); whole simulate() "
          "call = + packing, process start, file I/O.  Speed-up vs the bare Python loop / vs "
          "the Python loop doing the harness's per-cycle duties (unit handshake counts, hang "
          "watch).  All engines run the same verilated model, built without tracing.")
    out = {"command": "python bench/sim_speed.py " + " ".join(sys.argv[1:]),
           "results": results,
           "machine": {"python": platform.python_version(), "cpu": platform.processor(),
                       "verilator": vl.version(),
                       "gxx": subprocess.run(["g++", "-dumpfullversion"], capture_output=True,
                                             text=True).stdout.strip()}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
