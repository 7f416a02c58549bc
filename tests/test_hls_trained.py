"""HLS C simulation of the trained digits models (zoo) == the reference, on every digits
image: the QKeras MLP, the Larq CNN (max-pool, pad_values 0 and 1, stride 2) and the QKeras
CNN (majority pool from AveragePooling2D + sign)."""

from __future__ import annotations

import numpy as np
import pytest

from bnn2fpga import reference
from bnn2fpga.backends import CompileOptions
from bnn2fpga.backends.hls import write_project
from bnn2fpga.compile import compile_model
from bnn2fpga.ir import Graph
from bnn2fpga.sim.csim import simulate_many
from bnn2fpga.zoo import DIGITS_INPUT_BITS, DIGITS_INPUT_SCALE

MODELS = ["qkeras_mlp", "larq_cnn", "qkeras_cnn"]


def hardware_graph(name: str, model) -> Graph:
    """A fresh compile of the session's trained model (the shared graph fixtures are not
    used: other tests may re-fold them in place)."""
    if name == "larq_cnn":
        return compile_model(model, input_scale=DIGITS_INPUT_SCALE,
                             input_bits=DIGITS_INPUT_BITS)
    return compile_model(model)


@pytest.fixture(scope="module")
def trained_csim(request: pytest.FixtureRequest, digits_all: np.ndarray,
                 tmp_path_factory: pytest.TempPathFactory
                 ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The three models' projects, linked into one C simulation, run on every image."""
    root = tmp_path_factory.mktemp("hls_trained")
    jobs, want = [], {}
    for name in MODELS:
        graph = hardware_graph(name, request.getfixturevalue(name))
        out = root / name
        (out / "hls").mkdir(parents=True)
        write_project(graph, out / "hls", CompileOptions(top=f"{name}_top"))
        x = digits_all.reshape((len(digits_all), *graph.input.out.shape))
        codes = reference.quantize_input(graph.input, x)
        jobs.append((out, graph, codes))
        want[name] = reference.execute(graph, codes)[graph.output.name]
    sims = simulate_many(jobs, cache_dir=root / "cache")
    return {name: (sim.codes, want[name]) for name, sim in zip(MODELS, sims, strict=True)}


@pytest.mark.parametrize("name", MODELS)
def test_trained_model_csim_matches_reference(trained_csim, name: str) -> None:
    got, want = trained_csim[name]
    assert got.shape == want.shape and len(got) == 1797
    assert np.array_equal(got, want), f"{int(np.sum(got != want))} output codes differ"
