"""Random supported Keras chains (QKeras, Larq and both mixed, built as a user would): how
many compile, how many the reference reproduces exactly (outputs and every binary
activation, ``testing.keras_mismatches``), and for a subset whether C-sim and Verilator RTL
equal the reference.

    python bench/random_chains.py [--cases 240] [--hw 24] [--seed 15]

Prints one row per library and one per chain feature, and writes
bench/results/random_chains.json (every case: its layers, status and any message).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

LIBRARIES = ("qkeras", "larq", "mixed")
SIGNS = ("QActivation(binary)",)


def is_sign(desc: str) -> bool:
    return desc in SIGNS or desc.endswith("+binary")


def features(layers: list[str]) -> list[str]:
    """The chain patterns of issue 15 that a case contains."""
    found = set()
    for prev, cur in zip(layers, layers[1:], strict=False):
        if is_sign(prev) and cur in ("Flatten", "Reshape"):
            found.add("sign -> Flatten/Reshape")
        if is_sign(prev) and cur in ("MaxPool", "AvgPool"):
            found.add("sign -> pool")
        if is_sign(prev) and (is_sign(cur) or "[ste_sign in]" in cur):
            found.add("double sign")
    if "[ste_sign in]" in layers[1] or (len(layers) > 2 and layers[1] in
                                        ("Flatten", "MaxPool", "Reshape")
                                        and any("[ste_sign in]" in d for d in layers[2:4])):
        found.add("Larq sign input" + (" behind Flatten/pool" if "[ste_sign in]"
                                       not in layers[1] else ""))
    last = max(i for i, d in enumerate(layers) if d.startswith(("Q", "Quant"))
               and not d.startswith(("QActivation", "quantized")))
    tail = layers[last + 1:]  # what follows the last binary layer
    if "Flatten" in tail and layers[last].startswith(("QConv2D", "QuantConv2D")):
        found.add("last conv -> Flatten")
        flat = tail.index("Flatten")
        if "BN" in tail[:flat]:
            found.add("final BN before Flatten")
        if "BN" in tail[flat:]:
            found.add("final BN after Flatten")
    return sorted(found)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=240)
    ap.add_argument("--hw", type=int, default=24, help="compiled cases also run on C-sim and RTL")
    ap.add_argument("--seed", type=int, default=15)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)

    from bnn2fpga import reference
    from bnn2fpga.compile import compile_model
    from bnn2fpga.testing import keras_mismatches, random_keras_chain

    rows, compiled = [], []
    start = time.perf_counter()
    for i in range(args.cases):
        library = LIBRARIES[i % 3]
        chain = random_keras_chain(np.random.default_rng([args.seed, i]), library)
        row = {"case": i, "library": library, "layers": chain.layers,
               "features": features(chain.layers), "compile": chain.compile_kwargs}
        try:
            graph = compile_model(chain.model, name=f"chain{i}", **chain.compile_kwargs)
        except Exception as e:  # noqa: BLE001 - a refusal is a result here
            row.update(status="refused", message=f"{type(e).__name__}: {e}")
        else:
            problems = keras_mismatches(chain.model, graph, chain.x)
            row.update(status="exact" if not problems else "differs", message="; ".join(problems),
                       warnings=graph.meta.get("warnings", []))
            compiled.append((row, graph, chain))
        rows.append(row)
    keras_s = time.perf_counter() - start

    if args.hw:
        run_engines(compiled[:args.hw], reference)

    print(f"{len(rows)} cases (seed {args.seed}), {keras_s:.0f} s for compile + Keras checks")
    print(f"{'':38s} {'cases':>6s} {'compiled':>9s} {'exact':>6s} {'csim=ref':>9s} "
          f"{'rtl=ref':>8s}")
    groups = [(lib, [r for r in rows if r["library"] == lib]) for lib in LIBRARIES]
    names = sorted({f for r in rows for f in r["features"]})
    groups += [(f"  {name}", [r for r in rows if name in r["features"]]) for name in names]
    groups.append(("all", rows))
    summary = {}
    for name, group in groups:
        counts = {"cases": len(group),
                  "compiled": sum(r["status"] != "refused" for r in group),
                  "exact": sum(r["status"] == "exact" for r in group),
                  "csim_equal": sum(r.get("csim") == "equal" for r in group),
                  "rtl_equal": sum(r.get("rtl") == "equal" for r in group),
                  "hw_cases": sum("csim" in r for r in group)}
        summary[name.strip()] = counts
        hw = counts["hw_cases"]
        print(f"{name:38s} {counts['cases']:6d} {counts['compiled']:9d} {counts['exact']:6d} "
              f"{counts['csim_equal']:5d}/{hw:<3d} {counts['rtl_equal']:4d}/{hw:<3d}")
    for r in rows:
        if r["status"] != "exact" or r.get("csim", "equal") != "equal" \
                or r.get("rtl", "equal") != "equal":
            print(f"case {r['case']} {r['status']}: {' '.join(r['layers'])}: {r['message']}")
    out = Path(__file__).parent / "results" / "random_chains.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"command": f"python bench/random_chains.py --cases {args.cases} "
                                          f"--hw {args.hw} --seed {args.seed}",
                               "summary": summary, "cases": rows}, indent=1))
    print(f"wrote {out}")


def run_engines(cases: list, reference) -> None:
    """C-sim and RTL of the compiled cases, one build per engine; marks each row."""
    from bnn2fpga.backends import CompileOptions
    from bnn2fpga.backends import hls as hls_backend
    from bnn2fpga.backends import rtl as rtl_backend
    from bnn2fpga.sim import csim, rtl

    root = Path(tempfile.mkdtemp(prefix="bench_chains_"))
    jobs = []
    for row, graph, chain in cases:
        out = root / f"chain{row['case']}"
        options = CompileOptions(top=f"chain{row['case']}_top")
        (out / "hls").mkdir(parents=True)
        hls_backend.write_project(graph, out / "hls", options)
        rtl_backend.write_project(graph, out / "rtl", options)
        x = chain.x.reshape((-1, *graph.input.out.shape))
        jobs.append((out, graph, reference.quantize_input(graph.input, x)))
    for engine, run in (("csim", lambda: csim.simulate_many(jobs, cache_dir=root / "c")),
                        ("rtl", lambda: rtl.simulate_many(jobs, root / "r", name="chains"))):
        results = run()
        for (row, _, _), (_, graph, codes), result in zip(cases, jobs, results, strict=True):
            want = reference.execute(graph, codes)[graph.output.name]
            row[engine] = "equal" if np.array_equal(result.codes, want) else "differs"


if __name__ == "__main__":
    main()
