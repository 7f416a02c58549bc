"""The report's real-valued paths: the agreement measured at compile (design.json meta) and
each FixedAffine's multipliers as DSPs or LUTs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from bnn2fpga import report as R
from bnn2fpga import testing
from bnn2fpga.architectures import lce_toy_model, randomize_batchnorm
from bnn2fpga.backends import CompileOptions
from bnn2fpga.compile import compile_model
from bnn2fpga.ir import FixedAffine
from bnn2fpga.ops.fixed_affine import affine_params
from bnn2fpga.project import write_project
from bnn2fpga.units.fixed_affine import uses_dsp


@pytest.fixture(scope="module")
def real_graph():
    tf.keras.utils.set_random_seed(0)
    model = randomize_batchnorm(lce_toy_model((16, 16, 3)), seed=1)
    x = np.random.default_rng(0).integers(0, 16, (24, 16, 16, 3)).astype(np.float32) / 16
    return compile_model(model, input_scale=1 / 16, input_bits=4, calibration=x)


def test_real_paths_summary(real_graph):
    rp = R.real_paths(real_graph)
    a = rp["agreement"]
    assert a is real_graph.meta["agreement"] and a["frames"] == 24
    assert set(a["sign_flips"]) == set(real_graph.meta["binarisations"])
    affines = [n for n in real_graph.nodes if isinstance(n, FixedAffine)]
    assert [f["name"] for f in rp["fixed_affines"]] == [n.name for n in affines] and affines
    for f, node in zip(rp["fixed_affines"], affines, strict=True):
        p = affine_params(node, real_graph.producer(node).out)
        assert f["multipliers"] == ("DSP" if uses_dsp(p) else "LUT")
        assert (f["dsp_per_lane"] > 0) == (f["multipliers"] == "DSP")
    json.dumps(rp)                                         # report.json holds it


def test_binary_graph_has_no_real_paths():
    assert R.real_paths(testing.random_cnn_graph(np.random.default_rng(0))) is None


def test_real_paths_in_report_json_and_html(tmp_path, real_graph):
    graph = testing.random_cnn_graph(np.random.default_rng(0))
    out = tmp_path / "out"
    write_project(graph, out, CompileOptions(part="xczu3eg-sbva484-1-e", clock_ns=4.0),
                  backends=("rtl",))
    json_path, html_path = R.write_report(out)
    assert json.loads(json_path.read_text())["real_paths"] is None
    assert 'id="agreement"' not in html_path.read_text()
    rep = json.loads(json_path.read_text())
    rep["real_paths"] = R.real_paths(real_graph)
    rep["real_paths"]["saturated"] = {"b1_add": [3, 100]}
    html = R.render_html(rep)
    a = rep["real_paths"]["agreement"]
    assert f"{100 * a['argmax_agreement']:.2f}%" in html
    for node, f in a["sign_flips"].items():
        assert f'<td class="name">{node}</td><td>{100 * f:.3f}%</td>' in html
    assert "b1_add: 3 of 100 values saturated" in html
    for f in rep["real_paths"]["fixed_affines"]:
        assert f'<td class="name">{f["name"]}</td>' in html
    assert 'id="fixed-affines"' in html
