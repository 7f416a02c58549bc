"""Memory binding of the generated HLS project against the estimator, per memory.

    python bench/hls_binding.py [--part xc7z020clg400-1]

For FINN CNV-W1A1 at BNN-PYNQ's folding and LFC-W1A1 folded for 30,000 FPS (random weights,
bench/estimate_accuracy.py's graphs): every memory of every plan unit with the style and
BRAM18 count the estimator gives it (``estimate.memory_styles`` / ``map_memory``), and the
storage pragma the generated HLS top (or the unit's header specialisation it selects) gives
that memory.  A memory whose pragma does not name the estimator's style is a mismatch; the
script exits non-zero if there is one.  What Vivado/Vitis then builds is the pragma's
implementation (not synthesised here: no Vivado).

Prints a table; writes bench/results/hls_binding.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from estimate_accuracy import PART, cnv_graphs  # noqa: E402

from bnn2fpga.backends import CompileOptions  # noqa: E402
from bnn2fpga.backends.hls import write_project  # noqa: E402
from bnn2fpga.devices import get_device  # noqa: E402
from bnn2fpga.estimate import unit_memories  # noqa: E402
from bnn2fpga.estimate.calibration import load_calibration  # noqa: E402
from bnn2fpga.estimate.memory import map_memory  # noqa: E402
from bnn2fpga.plan import build_plan  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "hls_binding.json"
DESIGNS = ("cnv_w1a1_bnn_pynq_folding", "lfc_w1a1_auto_30000fps")
# the estimator's style -> the Vitis `impl=` (or storage template argument) that binds it
IMPL = {"logic": "lutram", "lutram": "lutram", "bram": "bram", "uram": "uram",
        "register": "register", "none": "none"}
STORAGE_ARG = {"BNN_STORAGE_REGISTER": "register", "BNN_STORAGE_LUTRAM": "lutram",
               "BNN_STORAGE_BRAM": "bram", "BNN_STORAGE_URAM": "uram",
               "BNN_STORAGE_AUTO": "none"}


def pragma_bindings(top_cpp: str) -> dict[str, str]:
    """{variable: impl} of every BIND_STORAGE in the generated top (Vitis branch)."""
    return {m.group(1): m.group(2) for m in re.finditer(
        r"BIND_STORAGE variable=(\S+) type=\S+ impl=(\w+)", top_cpp)}


def unit_call(top_cpp: str, unit: str) -> str:
    """The body of the generated function of plan unit ``unit``."""
    m = re.search(rf"void {re.escape(unit)}\(.*?\n}}\n", top_cpp, re.S)
    return m.group(0) if m else ""


def hls_binding(top_cpp: str, unit, memory: str) -> str:
    """How the generated project binds ``memory`` of ``unit``."""
    body = unit_call(top_cpp, unit.name)
    binds = pragma_bindings(top_cpp)
    if unit.kind == "fifo":
        bound = binds.get(unit.out, binds.get(unit.inp, "none"))
        return "register" if bound == "srl" else bound   # a shift-register FIFO
    if memory in ("weights", "thresholds"):
        suffix = "_w" if memory == "weights" else "_t.m"   # the writer's parameter names
        hit = [v for k, v in pragma_bindings(body).items() if k.endswith(suffix)]
        return hit[0] if hit else "none"
    if memory in ("input_buffer", "tap_valid", "line_buffer"):
        args = re.findall(r"BNN_STORAGE_\w+", body)
        return STORAGE_ARG[args[-1]] if args else "none"
    return "?"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", default=PART)
    args = ap.parse_args()
    device, calibration = get_device(args.part), load_calibration()
    graphs = cnv_graphs(np.random.default_rng(0))
    results, mismatches = {}, 0
    for name in DESIGNS:
        graph, _ = graphs[name]
        plan = build_plan(graph)
        with tempfile.TemporaryDirectory() as tmp:
            write_project(graph, Path(tmp), CompileOptions(part=args.part), plan)
            top_cpp = (Path(tmp) / "firmware" / f"{plan.top}.cpp").read_text()
        rows = []
        for unit in plan.instances():
            for spec in unit_memories(unit):
                mem = map_memory(spec, device, calibration)
                bound = hls_binding(top_cpp, unit, spec.name)
                want = IMPL[mem.style]
                ok = bound == want or (want == "none" and bound in ("none", "?"))
                mismatches += not ok
                rows.append({"unit": unit.name, "kind": unit.kind, "memory": spec.name,
                             "shape": f"{spec.count}x{spec.depth}x{spec.width}",
                             "style": mem.style, "bram18": mem.resources.bram18,
                             "hls_binding": bound, "match": ok})
        results[name] = {"memories": rows,
                         "bram18_estimate": sum(r["bram18"] for r in rows),
                         "bram18_bound_to_bram": sum(r["bram18"] for r in rows
                                                     if r["hls_binding"] == "bram"),
                         "mismatches": sum(not r["match"] for r in rows)}
        print(f"\n{name} on {args.part}")
        print(f"{'unit':<22}{'memory':<14}{'count x depth x width':<24}{'style':<10}"
              f"{'BRAM18':>7}  HLS binding")
        for r in rows:
            flag = "" if r["match"] else "  MISMATCH"
            print(f"{r['unit']:<22}{r['memory']:<14}{r['shape']:<24}{r['style']:<10}"
                  f"{r['bram18']:>7}  {r['hls_binding']}{flag}")
        print(f"BRAM18: estimate {results[name]['bram18_estimate']}, bound to BRAM by the "
              f"HLS project {results[name]['bram18_bound_to_bram']}; mismatches "
              f"{results[name]['mismatches']}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"part": args.part, "designs": results}, indent=1) + "\n")
    print(f"\nwrote {RESULTS}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
