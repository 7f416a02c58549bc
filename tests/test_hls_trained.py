"""HLS C simulation of the trained digits models (zoo) == the reference, on every digits
image: the QKeras MLP, the Larq CNN (max-pool, pad_values 0 and 1, stride 2) and the QKeras
CNN (majority pool from AveragePooling2D + sign)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from bnn2fpga import reference
from bnn2fpga.backends import CompileOptions
from bnn2fpga.backends.hls import write_project
from bnn2fpga.ir import Graph
from bnn2fpga.sim.csim import simulate

MODELS = ["mlp_graph", "cnn_graph", "qcnn_graph"]


def _csim(args: tuple[str, Graph, np.ndarray, Path]) -> tuple[str, np.ndarray, np.ndarray]:
    name, graph, x, root = args
    out = root / name
    (out / "hls").mkdir(parents=True)
    write_project(graph, out / "hls", CompileOptions(top=f"{name}_top"))
    codes = reference.quantize_input(graph.input, x.reshape((len(x), *graph.input.out.shape)))
    got = simulate(out, graph, codes).codes
    return name, got, reference.execute(graph, codes)[graph.output.name]


@pytest.fixture(scope="module")
def trained_csim(request: pytest.FixtureRequest, digits_all: np.ndarray,
                 tmp_path_factory: pytest.TempPathFactory
                 ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    root = tmp_path_factory.mktemp("hls_trained")
    jobs = [(name, request.getfixturevalue(name), digits_all, root) for name in MODELS]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return {name: (got, want) for name, got, want in pool.map(_csim, jobs)}


@pytest.mark.parametrize("name", MODELS)
def test_trained_model_csim_matches_reference(trained_csim, name: str) -> None:
    got, want = trained_csim[name]
    assert got.shape == want.shape and len(got) == 1797
    assert np.array_equal(got, want), f"{int(np.sum(got != want))} output codes differ"
