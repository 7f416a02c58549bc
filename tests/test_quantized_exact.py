"""Models whose every real tensor is quantized by the model itself are exact: every
intermediate quantized tensor equals Keras's codes, argmax equals Keras's, and the HLS
C-sim and the RTL (Verilator) equal the reference.  The folds are proven by exhaustion
(``passes.quantizers``: the model's own layers run on every reachable accumulator
value)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from bnn2fpga import reference, testing
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
    testing.assert_outputs_match(model, graph, x)


def test_w1a2_design_json_round_trip(w1a2, digits):
    import json

    _, graph = w1a2
    back = graph_from_json(json.loads(json.dumps(graph_to_json(graph))))
    assert graphs_equal(back, graph)


@pytest.mark.slow
def test_w1a2_hardware_equals_reference(w1a2, digits, tmp_path):
    _, graph = w1a2
    x = digits.x_test[:12].reshape((12, 8, 8, 1))
    testing.assert_engines_agree(graph, x, tmp_path, "w1a2", stalls=(0.0, 0.3))


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
    testing.assert_outputs_match(model, graph, x)


@pytest.mark.slow
def test_quantized_model_hardware_equals_reference(quantized, digits, tmp_path):
    _, graph = quantized
    x = digits.x_test[:12].reshape((12, 8, 8, 1))
    testing.assert_engines_agree(graph, x, tmp_path, "qz", stalls=(0.3,))


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


# ---- a quantized residual stream ----------------------------------------------------------

@pytest.fixture(scope="module")
def qres(digits):
    from bnn2fpga.zoo import train_qkeras_residual

    model = train_qkeras_residual(data=digits)
    return model, compile_model(model)


def test_residual_model_learns(qres, digits):
    from bnn2fpga.zoo import keras_accuracy

    assert keras_accuracy(qres[0], digits.x_test, digits.y_test) > 0.9


def test_residual_stream_lowers_to_exact_units(qres):
    """The stream's uint codes (offset -4, step 1/2) enter each Add through an identity
    FixedAffine; the sum keeps step 1/2 in 7 bits (never saturates); every requantizer and
    every binarisation of the stream is a Threshold on codes, proven on each code."""
    from bnn2fpga.ir import Add, FixedAffine, Threshold

    _, graph = qres
    nodes = {n.name: n for n in graph.nodes}
    for block in ("b1", "b2"):
        add = nodes[f"{block}_add"]
        assert isinstance(add, Add) and (add.out.bits, add.out.frac) == (7, 1)
        for src in add.inputs:
            aff = nodes[src]
            assert isinstance(aff, FixedAffine) and graph.producer(aff).out.encoding == "uint"
            assert list(aff.add_in) == [-8] * 16 and list(aff.mul_pos) == [1] * 16
            assert aff.shift == 0
        req = nodes[f"{block}_s"]
        assert isinstance(req, Threshold) and graph.producer(req) is add
        assert req.thresholds.shape == (16, 15) and req.out.offset == -4.0
        assert graph.meta["exhaustive_checks"][req.name] == 16 * 128   # every 7-bit sum
    assert isinstance(nodes["b1_in"], Threshold) and nodes["b1_in"].out.encoding == "bipolar"
    assert nodes["b2_in"].out.bits == 2                                 # W1A2 branch
    checks = graph.meta["exhaustive_checks"]
    assert checks["b1_in"] == checks["b2_in"] == checks["head_q"] == 16 * 16  # 4-bit codes
    assert checks["b1_conv"] == 16 * (2 * 9 * 16 + 1)   # binary 3x3x16 accumulator
    assert not graph.meta.get("warnings")


def test_residual_model_equals_keras(qres, digits_all):
    """Every quantized tensor (stream, branches, sums, binarised and 2-bit inputs) has the
    model's codes on all 1797 digits; argmax equal, outputs within float32 rounding."""
    model, graph = qres
    x = digits_all.reshape((len(digits_all), 8, 8, 1))
    got = keras_code_mismatches(model, graph, x)
    assert set(got) >= {"conv0", "b1_in", "b1_conv", "b1_add", "b1_s", "b2_in", "b2_conv",
                        "b2_add", "b2_s", "head_q"}
    assert all(v == 0 for v in got.values()), got
    testing.assert_outputs_match(model, graph, x)


def test_residual_design_json_round_trip(qres):
    import json

    _, graph = qres
    back = graph_from_json(json.loads(json.dumps(graph_to_json(graph))))
    assert graphs_equal(back, graph)


@pytest.mark.slow
def test_residual_hardware_equals_reference(qres, digits, tmp_path):
    _, graph = qres
    x = digits.x_test[:12].reshape((12, 8, 8, 1))
    testing.assert_engines_agree(graph, x, tmp_path, "qres", stalls=(0.0, 0.3))


@pytest.fixture(scope="module")
def qres_gap(digits):
    """The same stream with a GlobalAveragePooling2D head (briefly trained: exactness, not
    accuracy, is tested)."""
    from bnn2fpga.zoo import train_qkeras_residual

    model = train_qkeras_residual(data=digits, epochs=2, head="gap")
    return model, compile_model(model)


def test_global_pool_of_quantized_codes_is_exact(qres_gap, digits_all):
    """GAP over 8x8 of 3-bit codes: the window sum with 6 more fraction bits (no rounding);
    its quantizer is a Threshold proven on all 2^11 sums; every code equals Keras's."""
    from bnn2fpga.ir import FixedAvgPool

    model, graph = qres_gap
    gap = graph["gap"]
    assert isinstance(gap, FixedAvgPool) and (gap.mul, gap.shift) == (1, 0)
    assert gap.out.frac == graph.producer(gap).out.frac + 6 and gap.out.bits == 11
    assert graph.meta["exhaustive_checks"]["gap_q"] == 16 * 2 ** 11
    x = digits_all.reshape((len(digits_all), 8, 8, 1))
    got = keras_code_mismatches(model, graph, x)
    assert {"gap", "gap_q", "b2_add"} <= set(got) and all(v == 0 for v in got.values()), got
    keras_out = model.predict(x, verbose=0)
    assert np.array_equal(reference.run(graph, x).argmax(-1), keras_out.argmax(-1))


@pytest.mark.slow
def test_global_pool_head_hardware_equals_reference(qres_gap, digits, tmp_path):
    _, graph = qres_gap
    x = digits.x_test[:8].reshape((8, 8, 8, 1))
    testing.assert_engines_agree(graph, x, tmp_path, "qgap", stalls=(0.3,), seed=5)


def test_pool_of_a_non_power_of_two_count_is_refused():
    """A mean of 3x3 quantized values is not exact in float32: refused, naming the layer."""
    from qkeras import QActivation, QConv2D, quantized_bits, quantized_relu

    from bnn2fpga.ir import IRError

    model = tf.keras.Sequential([
        tf.keras.layers.InputLayer(input_shape=(6, 6, 1)),
        QActivation(quantized_bits(5, 1, keep_negative=False), name="in_q"),
        QConv2D(4, 3, padding="same", kernel_quantizer=quantized_bits(4, 0, alpha=1),
                activation=quantized_relu(3, 1), use_bias=False, name="conv"),
        tf.keras.layers.AveragePooling2D(3, name="pool"),
        QActivation(quantized_relu(3, 1), name="q")])
    with pytest.raises(IRError, match="'pool'.*9 quantized values"):
        compile_model(model)


def test_inexact_quantizer_on_codes_warns_with_the_count():
    """A PReLU with negative slopes between the stream and a quantizer is not monotone in
    the stream's codes: no thresholds reproduce it; compile warns with the number of codes
    that differ, and that number is what the Threshold gets wrong on every code."""
    from qkeras import (
        QActivation,
        QBatchNormalization,
        QConv2D,
        QDense,
        quantized_bits,
        quantized_relu,
    )

    from bnn2fpga.ir import Threshold
    from bnn2fpga.ops import op_type

    tf.keras.utils.set_random_seed(1)
    slopes = [0.5 if c % 2 else -0.75 for c in range(4)]
    model = tf.keras.Sequential([
        tf.keras.layers.InputLayer(input_shape=(4, 4, 1)),
        QActivation(quantized_bits(5, 1, keep_negative=False), name="in_q"),
        QConv2D(4, 3, padding="same", kernel_quantizer=quantized_bits(4, 0, alpha=1),
                use_bias=False, name="conv"),
        QBatchNormalization(name="bn"),
        QActivation(quantized_bits(4, 2, alpha=1), name="s"),
        tf.keras.layers.PReLU(shared_axes=[1, 2], name="prelu",
                              alpha_initializer=tf.keras.initializers.Constant(slopes)),
        QActivation(quantized_relu(3, 1), name="q"),
        tf.keras.layers.Flatten(name="flat"),
        QDense(3, kernel_quantizer=quantized_bits(4, 0, alpha=1), name="fc")])
    graph = compile_model(model)
    (warning,) = graph.meta["warnings"]
    assert "'q'" in warning and "input code" in warning
    thr = graph["q"]
    assert isinstance(thr, Threshold)
    src = graph.producer(thr).out
    k = np.arange(16)
    values = (src.offset + src.step * k).astype(np.float32)
    x = np.repeat(values[:, None], 4, axis=1)
    layers = [model.get_layer(n) for n in ("prelu", "q")]
    want = x.reshape(16, 1, 1, 4)
    for layer in layers:
        want = layer(want)
    want = np.asarray(want).reshape(16, 4) / 0.25                # codes k, lo = 0
    got = op_type(thr).run_on(thr, [src], [k[:, None].repeat(4, axis=1)])
    differ = int((got != want).sum())
    assert differ > 0 and f"differ from the model on {differ} of 64 input code" in warning


def test_non_monotone_accumulator_quantizer_warns_with_the_count():
    """A quantizer behind an accumulator whose float decisions are not monotone (a made-up
    BatchNorm hook) keeps the best thresholds and warns with the number of accumulator
    values that differ: what the thresholds get wrong, counted on every value."""
    from bnn2fpga.ir import BatchNorm, Conv2D, Graph, Input, Quantize, TensorType
    from bnn2fpga.passes.quantizers import fold_quantizers_into_thresholds

    def q_eval(v: np.ndarray) -> np.ndarray:
        return (np.clip(np.round(v / 0.5), 0, 3) * 0.5).astype(np.float32)

    ones = np.ones(2, np.float32)
    graph = Graph("g", [
        Input("input", [], TensorType((1, 1, 4), "bipolar")),
        Conv2D("c", ["input"], TensorType((1, 1, 2), "int", 2),
               weights=np.ones((2, 4), np.int8)),
        BatchNorm("bn", ["c"], TensorType((1, 1, 2), "float", 32), gamma=ones,
                  beta=0 * ones, mean=0 * ones, var=ones,
                  evaluate=lambda v: (1.6 * np.cos(v) + 0.4).astype(np.float32)),
        Quantize("q", ["bn"], TensorType((1, 1, 2), "float", 32), step=0.5, lo=0, hi=3,
                 evaluate=q_eval)])
    graph = fold_quantizers_into_thresholds(graph)
    conv = graph["c"]
    d = np.arange(-4, 5)
    want = q_eval(1.6 * np.cos(d.astype(np.float32)) + 0.4) / 0.5
    acc = np.where(conv.weights[:, :1].T < 0, -d[:, None], d[:, None])   # flipped channels
    fit = (acc[..., None] >= conv.thresholds[None]).sum(-1)
    differ = int(np.sum(fit != want[:, None]))
    (warning,) = graph.meta["warnings"]
    assert differ > 0 and warning.startswith("layer 'q': the model's quantizer after 'c' is "
                                             "not a monotone staircase in the accumulator")
    assert f"differ from the model on {differ} of 18 accumulator values" in warning
