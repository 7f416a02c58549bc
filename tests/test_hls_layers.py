"""HLS C simulation == reference, bit for bit, on randomized layers and small networks.

Every design is written by the HLS backend and compiled with g++ -Wall -Wextra -Werror
(bnn2fpga.sim.csim); the designs are linked into one executable per core (simulate_many),
built once per module, then each case is its own test.

Coverage: PE and SIMD of 1, a middle divisor and full; kernels 1 and 3 (and a non-square
one); strides 1 and 2; 'same' and 'valid' padding with pad "zero" and pad code 1; fan-ins
that are not a multiple of 64; uint, unipolar and bipolar inputs; thresholded (1 and 3
thresholds) and accumulator outputs; max-pool with min_channels (unpadded and padded; over
bits, uint codes and signed accumulators); majority pool; width converters through an lcm;
words wider than 64 bits and streams wider than 1024 bits; 16 convolutions of random
geometry (asymmetric pads up to the kernel size, stride larger than the kernel).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from bnn2fpga import reference, testing
from bnn2fpga.backends import CompileOptions
from bnn2fpga.backends.hls import write_project
from bnn2fpga.ir import (
    Conv2D,
    Dense,
    Graph,
    Input,
    MajorityPool2D,
    MaxPool2D,
    TensorType,
    conv_out_size,
    same_pads,
)
from bnn2fpga.sim.csim import simulate_many

FRAMES = 3
Builder = Callable[[np.random.Generator], Graph]


def _conv_cases() -> dict[str, Builder]:
    """Kernel x stride x padding x pad value, with foldings, encodings and outputs rotated
    through the combinations (each of the 16 geometries once bipolar; half also as uint)."""
    foldings = [(1, 1), (3, 2), (6, 6), (1, 6), (6, 1), (2, 3)]
    cases: dict[str, Builder] = {}
    geometries = itertools.product([1, 3], [1, 2], ["same", "valid"], ["zero", 1])
    for i, (k, stride, padding, pad) in enumerate(geometries):
        encodings = ["bipolar"] + (["uint"] if i % 2 == 0 else [])
        for j, enc in enumerate(encodings):
            pe, simd = foldings[(i + 3 * j) % len(foldings)]
            output = "accumulator" if (i + j) % 3 == 2 else "threshold"
            pool = output == "threshold" and (i + j) % 4 == 1
            kwargs = dict(h=5 + (i + j) % 4, w=6 + (i % 2), c=6, out_ch=6, k=k, stride=stride,
                          padding=padding, pad=pad, encoding=enc,
                          bits=3 if enc == "uint" else 1, pe=pe, simd=simd, output=output,
                          pool=pool)
            name = (f"conv_k{k}_s{stride}_{padding}_pad{pad}_{enc}_pe{pe}_simd{simd}_{output}"
                    + ("_pool" if pool else ""))
            cases[name] = lambda rng, kw=kwargs: testing.random_conv_graph(rng, **kw)
    return cases


def _dense_cases() -> dict[str, Builder]:
    cases: dict[str, Builder] = {}
    for fan_in, out_ch, pe, simd, enc, output in [
        (70, 8, 1, 1, "bipolar", "threshold"),
        (70, 8, 4, 7, "bipolar", "accumulator"),
        (70, 8, 8, 70, "bipolar", "threshold"),
        (130, 6, 3, 13, "uint", "accumulator"),
        (100, 5, 5, 100, "uint", "threshold"),
        (200, 4, 2, 200, "bipolar", "threshold"),     # 200-bit weight words
        (1100, 200, 200, 1100, "bipolar", "accumulator"),  # 2400-bit stream, narrower AXI
    ]:
        kwargs = dict(fan_in=fan_in, out_ch=out_ch, pe=pe, simd=simd, encoding=enc,
                      bits=4 if enc == "uint" else 1, output=output)
        name = f"dense_{fan_in}x{out_ch}_pe{pe}_simd{simd}_{enc}_{output}"
        cases[name] = lambda rng, kw=kwargs: testing.random_dense_graph(rng, **kw)
    return cases


def multi_threshold_dense(rng: np.random.Generator) -> Graph:
    """Three thresholds per channel: a 2-bit output code."""
    g = testing.random_dense_graph(rng, fan_in=45, out_ch=6, pe=3, simd=9)
    node = g.output
    node.thresholds = testing.random_thresholds(rng, 6, node.fan_in, n=3)
    node.out = TensorType((6,), "uint", 2)
    return g


def unipolar_conv(rng: np.random.Generator) -> Graph:
    """{0, 1} activations (Si-BNN) into a padded conv: pad "zero" is the code 0."""
    g = testing.random_conv_graph(rng, h=5, w=5, c=4, out_ch=4, k=3, encoding="uint", bits=1,
                                  pe=2, simd=2)
    g.input.out = TensorType(g.input.out.shape, "unipolar")
    return g


def non_square_conv(rng: np.random.Generator) -> Graph:
    """Kernel (1, 3), stride (2, 1), padding only on the left/right."""
    inp = testing.input_node((7, 5, 4), "bipolar")
    oh, ow = conv_out_size(7, 1, 2, 0, 0), conv_out_size(5, 3, 1, 1, 1)
    conv = Conv2D("conv", ["input"], TensorType((oh, ow, 6), "int", 2),
                  weights=testing.random_weights(rng, 6, 3 * 4), kernel=(1, 3),
                  stride=(2, 1), pads=(0, 0, 1, 1), pad="zero", pe=3, simd=2)
    testing.finish_matvec(conv, inp.out, rng, "threshold", (oh, ow, 6))
    return Graph("non_square", [inp, conv])


def _pool_after_conv(rng: np.random.Generator, majority: bool) -> Graph:
    g = testing.random_conv_graph(rng, h=7, w=6, c=3, out_ch=6, k=3, pe=2, simd=3)
    conv = g.output
    (pt, pb), (pl, pr) = same_pads(7, 3, 2), same_pads(6, 3, 2)
    shape = (conv_out_size(7, 3, 2, pt, pb), conv_out_size(6, 3, 2, pl, pr), 6)
    if majority:
        pool = MajorityPool2D("avg", ["conv"], conv.out.with_shape(shape), kernel=(3, 3),
                              stride=(2, 2), pads=(pt, pb, pl, pr))
    else:
        pool = MaxPool2D("pool", ["conv"], conv.out.with_shape(shape), kernel=(3, 3),
                         stride=(2, 2), pads=(pt, pb, pl, pr), min_channels=(0, 2, 3))
    g.nodes.append(pool)
    return g


def dense_chain(rng: np.random.Generator) -> Graph:
    """PE=2 feeding SIMD=3: neither divides the other, so one shift converter
    (Dwc<..., DWC_SHIFT>, as the RTL's bnn_dwc_shift)."""
    inp = Input("input", [], TensorType((12,), "bipolar"))
    nodes: list = [inp]
    prev = inp
    for name, (fan_in, out_ch, pe, simd, output) in {
            "fc1": (12, 6, 2, 4, "threshold"), "fc2": (6, 10, 5, 3, "threshold"),
            "fc3": (10, 4, 4, 5, "accumulator")}.items():
        node = Dense(name, [prev.name], TensorType((out_ch,), "int", 2),
                     weights=testing.random_weights(rng, out_ch, fan_in), pe=pe, simd=simd)
        testing.finish_matvec(node, prev.out, rng, output, (out_ch,))
        nodes.append(node)
        prev = node
    return Graph("dense_chain", nodes)


def uint_pool_cnn(rng: np.random.Generator) -> Graph:
    """Max-pool over multi-bit codes: a 2-threshold conv (2-bit output) then a pool."""
    g = testing.random_conv_graph(rng, h=6, w=6, c=2, out_ch=4, k=3, pe=2, simd=1, pool=True)
    conv = g.nodes[1]
    conv.thresholds = testing.random_thresholds(rng, 4, conv.fan_in, n=2)
    conv.out = TensorType(conv.out.shape, "uint", 2)
    g.nodes[2].out = TensorType(g.nodes[2].out.shape, "uint", 2)
    return g


CASES: dict[str, Builder] = {
    **_conv_cases(),
    **_dense_cases(),
    "multi_threshold_dense": multi_threshold_dense,
    "unipolar_conv": unipolar_conv,
    "non_square_conv": non_square_conv,
    "maxpool_3x3_s2_same_min_channels": lambda rng: _pool_after_conv(rng, majority=False),
    "majority_pool_3x3_s2_same": lambda rng: _pool_after_conv(rng, majority=True),
    "dense_chain_lcm_converters": dense_chain,
    "uint_codes_maxpool": uint_pool_cnn,
    "signed_accumulator_maxpool": lambda rng: testing.random_conv_graph(
        rng, h=6, w=5, c=3, out_ch=4, k=3, pe=4, simd=3, output="accumulator", pool=True),
    "random_cnn_0": lambda rng: testing.random_cnn_graph(rng),
    "random_cnn_1": lambda rng: testing.random_cnn_graph(rng, h=9, w=7, c=2, bits=2),
    **{f"fuzz_conv_{i}": testing.random_geometry_conv_graph for i in range(16)},
}


def _prepare(seed: int, name: str, root: Path) -> tuple[Path, Graph, np.ndarray]:
    """Write case ``name``'s project (top ``t<seed>``); returns a csim job."""
    rng = np.random.default_rng(seed)
    graph = CASES[name](rng)
    out = root / name
    (out / "hls").mkdir(parents=True)
    write_project(graph, out / "hls", CompileOptions(top=f"t{seed}"))
    return out, graph, testing.random_input_codes(rng, graph, FRAMES)


@pytest.fixture(scope="module")
def csim_results(tmp_path_factory: pytest.TempPathFactory
                 ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """All cases linked into a few executables (one per core), built in parallel."""
    root = tmp_path_factory.mktemp("hls_layers")
    jobs = [_prepare(seed, name, root) for seed, name in enumerate(CASES)]
    workers = max(1, min(4, os.cpu_count() or 2))
    batches = [jobs[i::workers] for i in range(workers)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        done = list(pool.map(lambda b: simulate_many(b, cache_dir=root / "cache"), batches))
    results = {}
    for batch, sims in zip(batches, done, strict=True):
        for (out, graph, codes), sim in zip(batch, sims, strict=True):
            results[out.name] = (sim.codes, reference.execute(graph, codes)[graph.output.name])
    return results


def case_features(graph: Graph) -> set[str]:
    """What a case's graph exercises, read from the graph itself (not from its name)."""
    feats = {f"input {graph.input.out.encoding}"}
    for node in graph.nodes:
        if isinstance(node, Dense):
            kind = "conv" if isinstance(node, Conv2D) else "dense"
            n_thr = 0 if node.thresholds is None else node.thresholds.shape[-1]
            feats.add(f"{n_thr} thresholds")
            feats |= {f"{kind} pe1"} if node.pe == 1 else set()
            feats |= {"simd 1"} if node.simd == 1 else set()
            feats |= {"full pe"} if node.pe == node.out_channels else set()
            feats |= {"full simd"} if node.simd == node.fan_in else set()
            if 1 < node.pe < node.out_channels and 1 < node.simd < node.fan_in:
                feats.add("middle pe and simd")
            feats |= {"fan-in not a multiple of 64"} if node.fan_in % 64 else set()
            in_bits = graph.producer(node).out.bits
            feats |= {"word > 64 bits"} if node.simd * in_bits > 64 else set()
            feats |= {"stream > 1024 bits"} if node.simd * in_bits > 1024 else set()
            if isinstance(node, Conv2D):
                kh, kw = node.kernel
                feats |= {f"kernel {kh}x{kw}", f"stride {max(node.stride)}",
                          "padded" if any(node.pads) else "unpadded", f"pad {node.pad}"}
            prev = graph.producer(node)
            if isinstance(prev, Dense) and prev.pe % node.simd and node.simd % prev.pe:
                feats.add("converter through an lcm")  # neither width divides the other
        elif isinstance(node, MaxPool2D):
            feats |= {f"maxpool over {graph.producer(node).out.encoding}",
                      "maxpool padded" if any(node.pads) else "maxpool unpadded"}
            feats |= {"maxpool min_channels"} if node.min_channels else set()
        elif isinstance(node, MajorityPool2D):
            feats.add("majority pool")
    return feats


def test_cases_cover_what_the_module_docstring_lists() -> None:
    """Every feature the docstring promises is exercised by at least one case's graph."""
    seen: set[str] = set()
    for seed, name in enumerate(CASES):
        seen |= case_features(CASES[name](np.random.default_rng(seed)))
    want = {"input bipolar", "input uint", "input unipolar", "0 thresholds", "1 thresholds",
            "3 thresholds", "conv pe1", "dense pe1", "simd 1", "full pe", "full simd",
            "middle pe and simd", "fan-in not a multiple of 64", "word > 64 bits",
            "stream > 1024 bits", "kernel 1x1", "kernel 3x3", "kernel 1x3", "stride 1",
            "stride 2", "padded", "unpadded", "pad zero", "pad 1", "converter through an lcm",
            "maxpool over bipolar", "maxpool over uint", "maxpool over int", "maxpool padded",
            "maxpool unpadded", "maxpool min_channels", "majority pool"}
    assert want <= seen, f"no case exercises: {sorted(want - seen)}"


@pytest.mark.parametrize("name", list(CASES))
def test_csim_matches_reference(csim_results, name: str) -> None:
    got, want = csim_results[name]
    assert got.shape == want.shape
    bad = np.argwhere(got != want)
    assert bad.size == 0, (f"{len(bad)} output codes differ, first at {bad[0].tolist()}: "
                           f"csim {got[tuple(bad[0])]} != reference {want[tuple(bad[0])]}")
