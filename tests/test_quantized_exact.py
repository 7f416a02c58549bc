"""Models whose every real tensor is quantized by the model itself are exact: every
intermediate quantized tensor equals Keras's codes, argmax equals Keras's, and the HLS
C-sim and the RTL (Verilator) equal the reference.  The folds are proven by exhaustion
(``passes.quantizers``: the model's own layers run on every reachable accumulator
value)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from bnn2fpga import reference
from bnn2fpga.backends import CompileOptions
from bnn2fpga.backends import hls as hls_backend
from bnn2fpga.backends import rtl as rtl_backend
from bnn2fpga.compile import compile_model
from bnn2fpga.ir import Dense, graph_from_json, graph_to_json, graphs_equal
from bnn2fpga.testing import keras_quantized_codes


def keras_code_mismatches(model, graph, x: np.ndarray) -> dict[str, int]:
    """Per quantized IR tensor: the elements whose code differs from the model's (value /
    step - lo), and the binary tensors' bits; all zero when exact."""
    values = reference.execute(graph, reference.quantize_input(graph.input, x))
    out: dict[str, int] = {}
    for node_name, (tensor, step, lo) in graph.meta.get("keras_quantized", {}).items():
        k = keras_quantized_codes(model, tensor, step, lo, x)
        out[node_name] = int(np.sum(values[node_name] != k))
    for node_name, layer in graph.meta.get("keras_activations", {}).items():
        probe = tf.keras.Model(model.inputs, model.get_layer(layer).output)
        bits = (probe.predict(x, verbose=0) >= 0).astype(np.int64)
        out[node_name] = int(np.sum(values[node_name] != bits))
    return out


@pytest.fixture(scope="module")
def w1a2(digits):
    from bnn2fpga.zoo import train_qkeras_w1a2

    model = train_qkeras_w1a2(data=digits)
    return model, compile_model(model)


def test_w1a2_learns(w1a2, digits):
    from bnn2fpga.zoo import keras_accuracy

    assert keras_accuracy(w1a2[0], digits.x_test, digits.y_test) > 0.6


def test_w1a2_folds_into_multi_thresholds(w1a2):
    _, graph = w1a2
    convs = {n.name: n for n in graph.nodes if isinstance(n, Dense)}
    for name in ("conv1", "conv2"):
        node = convs[name]
        assert node.thresholds.shape == (node.out_channels, 3)
        assert node.out.encoding == "uint" and node.out.bits == 2
    # conv2 reads the 2-bit codes: W1A2
    assert graph.producer(convs["conv2"]).out.bits == 2
    # bn1 channels 1 and 6 have negative gamma: folded by negating the weights
    assert graph.meta["exhaustive_checks"]["conv1"] == 16 * (2 * 9 * 31 + 1)


def test_w1a2_equals_keras(w1a2, digits_all):
    model, graph = w1a2
    x = digits_all.reshape((len(digits_all), 8, 8, 1))
    assert keras_code_mismatches(model, graph, x) == {"conv1": 0, "conv2": 0}
    keras_out = model.predict(x, verbose=0)
    ref_out = reference.run(graph, x)
    assert np.array_equal(ref_out.argmax(-1), keras_out.argmax(-1))
    tol = 8 * np.finfo(np.float32).eps * np.maximum(1.0, np.abs(keras_out))
    assert np.all(np.abs(ref_out - keras_out) <= tol)


def test_w1a2_design_json_round_trip(w1a2, digits):
    import json

    _, graph = w1a2
    back = graph_from_json(json.loads(json.dumps(graph_to_json(graph))))
    assert graphs_equal(back, graph)


@pytest.mark.slow
def test_w1a2_hardware_equals_reference(w1a2, digits, tmp_path):
    from bnn2fpga.sim import csim
    from bnn2fpga.sim.rtl import simulate_many

    _, graph = w1a2
    x = digits.x_test[:12].reshape((12, 8, 8, 1))
    codes = reference.quantize_input(graph.input, x)
    want = reference.execute(graph, codes)[graph.output.name]
    rtl_backend.write_project(graph, tmp_path / "rtl", CompileOptions(top="w1a2_rtl"))
    (tmp_path / "hls").mkdir()
    hls_backend.write_project(graph, tmp_path / "hls", CompileOptions(top="w1a2_hls"))
    for stall in (0.0, 0.3):
        (run,) = simulate_many([(tmp_path, graph, codes)], tmp_path / f"cache{stall}",
                               stall_prob=stall, seed=3, name="w1a2")
        assert np.array_equal(run.codes, want), f"RTL differs (stall {stall})"
    (res,) = csim.simulate_many([(tmp_path, graph, codes)], cache_dir=tmp_path / "csim")
    assert np.array_equal(res.codes, want), "C-sim differs"


@pytest.fixture(scope="module")
def quantized(digits):
    from bnn2fpga.zoo import train_qkeras_quantized

    model = train_qkeras_quantized(data=digits)
    return model, compile_model(model)


def test_quantized_model_learns(quantized, digits):
    from bnn2fpga.zoo import keras_accuracy

    assert keras_accuracy(quantized[0], digits.x_test, digits.y_test) > 0.9


def test_quantized_model_equals_keras(quantized, digits_all):
    """4-bit quantized_bits kernels on the first and last layers (multi-bit MVTUs), 2- and
    3-bit quantized_relu codes: every code and the argmax equal Keras's."""
    model, graph = quantized
    convs = {n.name: n for n in graph.nodes if isinstance(n, Dense)}
    assert convs["conv1"].weight_bits == 4 and convs["fc"].weight_bits == 4
    assert convs["conv2"].weight_bits == 1 and convs["conv2"].thresholds.shape[1] == 7
    x = digits_all.reshape((len(digits_all), 8, 8, 1))
    assert keras_code_mismatches(model, graph, x) == {"conv1": 0, "conv2": 0}
    keras_out = model.predict(x, verbose=0)
    ref_out = reference.run(graph, x)
    assert np.array_equal(ref_out.argmax(-1), keras_out.argmax(-1))
    tol = 8 * np.finfo(np.float32).eps * np.maximum(1.0, np.abs(keras_out))
    assert np.all(np.abs(ref_out - keras_out) <= tol)


@pytest.mark.slow
def test_quantized_model_hardware_equals_reference(quantized, digits, tmp_path):
    from bnn2fpga.sim import csim
    from bnn2fpga.sim.rtl import simulate_many

    _, graph = quantized
    x = digits.x_test[:12].reshape((12, 8, 8, 1))
    codes = reference.quantize_input(graph.input, x)
    want = reference.execute(graph, codes)[graph.output.name]
    rtl_backend.write_project(graph, tmp_path / "rtl", CompileOptions(top="qz_rtl"))
    (tmp_path / "hls").mkdir()
    hls_backend.write_project(graph, tmp_path / "hls", CompileOptions(top="qz_hls"))
    (run,) = simulate_many([(tmp_path, graph, codes)], tmp_path / "cache", stall_prob=0.3,
                           seed=3, name="qz")
    assert np.array_equal(run.codes, want), "RTL differs"
    (res,) = csim.simulate_many([(tmp_path, graph, codes)], cache_dir=tmp_path / "csim")
    assert np.array_equal(res.codes, want), "C-sim differs"


def test_quantizer_refusals():
    """A quantizer that does not follow an accumulator stays float and is refused with
    the layer named; a non-power-of-two kernel alpha is refused by the frontend."""
    from qkeras import QActivation, QDense, binary, quantized_bits, quantized_relu

    from bnn2fpga.frontends.keras import UnsupportedError

    model = tf.keras.Sequential([
        tf.keras.layers.InputLayer(input_shape=(16,)),
        QActivation(quantized_relu(4, 0), name="in_q"),
        QDense(8, kernel_quantizer=quantized_bits(4, 0, alpha="auto"), name="fc")])
    with pytest.raises(UnsupportedError, match="fc"):
        compile_model(model)
    model = tf.keras.Sequential([
        tf.keras.layers.InputLayer(input_shape=(16,)),
        QActivation(quantized_relu(4, 0), name="in_q"),
        QDense(8, kernel_quantizer=binary(), name="fc"),
        tf.keras.layers.ReLU(name="relu"),   # (a Flatten there: the quantizer is hoisted)
        QActivation(quantized_relu(2, 0), name="q2"),
        QDense(4, kernel_quantizer=binary(), name="fc2")])
    with pytest.raises(ValueError, match="q2|relu|fc"):
        compile_model(model)
