"""HLS C simulation cost: g++ build (cold, cached, batched) and frames per second.

    python bench/hls_csim.py [--designs 12] [--frames 200]

Prints one table row per measurement.  Designs are the shared random graphs
(bnn2fpga.testing), so the numbers need no trained model.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from bnn2fpga import reference, testing
from bnn2fpga.backends import CompileOptions
from bnn2fpga.backends.hls import write_project
from bnn2fpga.sim.csim import simulate, simulate_many


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--designs", type=int, default=12)
    ap.add_argument("--frames", type=int, default=200)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench_hls_"))
    jobs = []
    for i in range(args.designs):
        rng = np.random.default_rng(i)
        graph = testing.random_cnn_graph(rng, h=8 + i % 4, w=8, c=1 + i % 3)
        out = root / f"d{i}"
        (out / "hls").mkdir(parents=True)
        write_project(graph, out / "hls", CompileOptions(top=f"t{i}"))
        jobs.append((out, graph, testing.random_input_codes(rng, graph, args.frames)))

    print(f"{'measurement':44s} {'seconds':>8s}")
    out, graph, codes = jobs[0]
    start = time.perf_counter()
    cold = simulate(out, graph, codes)
    print(f"{'one design, cold build + run':44s} {time.perf_counter() - start:8.2f}")
    start = time.perf_counter()
    warm = simulate(out, graph, codes)
    print(f"{'one design, cached build + run':44s} {time.perf_counter() - start:8.2f}")
    assert warm.summary["cached_build"] and np.array_equal(cold.codes, warm.codes)
    fps = len(codes) / max(warm.summary["run_seconds"], 1e-9)
    print(f"{'frames/s (random_cnn, testbench + text I/O)':44s} {fps:8.0f}")
    start = time.perf_counter()
    sims = simulate_many(jobs, cache_dir=root / "batch")
    seconds = time.perf_counter() - start
    print(f"{f'{len(jobs)} designs in one build + run':44s} {seconds:8.2f}")
    for (_, g, c), sim in zip(jobs, sims, strict=True):
        assert np.array_equal(sim.codes, reference.execute(g, c)[g.output.name])
    print(f"{'all outputs equal the reference':44s} {'yes':>8s}")


if __name__ == "__main__":
    main()
