"""Larq DoReFa k-bit activations (``DoReFa(k_bit, mode="activations")``, larq-zoo's
DoReFaNet form W1Ak) into binary weights.

Behind a binary layer's accumulator and BatchNorm, a DoReFa quantizer folds into 2^k - 1
thresholds by exhaustion (``passes.quantizers``, the model's own layers and quantizer on
every accumulator value), and every code equals Keras's; on the model input it is the input
encoding; on a real-valued tensor it is a multi-threshold ``Threshold`` unit.  The codes
have the step 1/n (n = 2^k - 1), not a power of two: the next layer's float32 sums are
bounded, and ``passes.scaled_kernels.warn_inexact_input_scales`` counts the accumulator
values a fold may decide differently."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from bnn2fpga import reference, testing
from bnn2fpga.backends import CompileOptions
from bnn2fpga.compile import compile_model
from bnn2fpga.frontends.keras import UnsupportedError
from bnn2fpga.ir import (
    ChannelAffine,
    Dense,
    Input,
    Sign,
    TensorType,
    Threshold,
    graph_from_json,
    graph_to_json,
    graphs_equal,
)
from bnn2fpga.passes.scaled_kernels import count_ambiguous_inputs
from bnn2fpga.testing import keras_mismatches, keras_quantized_codes, randomise_weights
from bnn2fpga.zoo import DIGITS_INPUT_BITS, DIGITS_INPUT_SCALE


def code_mismatches(model, graph, x: np.ndarray) -> dict[str, int]:
    """Per folded DoReFa tensor (``meta["keras_quantized"]``), and the input codes: the
    elements whose code differs from Keras's."""
    values = reference.execute(graph, reference.quantize_input(graph.input, x))
    out = {}
    for node, (tensor, step, lo) in graph.meta["keras_quantized"].items():
        out[node] = int(np.sum(values[node] != keras_quantized_codes(model, tensor, step, lo,
                                                                      x)))
    return out


def first_input_codes(model, graph, x: np.ndarray) -> int:
    """Input codes that differ from the first layer's DoReFa input quantizer in Keras."""
    inp = graph.input
    want = keras_quantized_codes(model, f"{model.layers[0].name}/input_quantizer",
                                 inp.out.scale, 0, x)
    return int(np.sum(reference.quantize_input(inp, x) != want))


@pytest.fixture(scope="module", params=[2, 3], ids=["a2", "a3"])
def dorefa(request, digits):
    from bnn2fpga.zoo import train_larq_dorefa

    model = train_larq_dorefa(data=digits, k_bit=request.param)
    return request.param, model, compile_model(model)


def test_dorefa_learns(dorefa, digits):
    from bnn2fpga.zoo import keras_accuracy

    assert keras_accuracy(dorefa[1], digits.x_test, digits.y_test) > 0.8


def test_dorefa_folds_into_multi_thresholds(dorefa):
    k, model, graph = dorefa
    n = (1 << k) - 1
    assert isinstance(graph.input, Input) and graph.input.quantizer == "dorefa"
    assert graph.input.out.bits == k and graph.input.out.scale == 1.0 / n
    convs = {node.name: node for node in graph.nodes if isinstance(node, Dense)}
    for name in ("conv1", "conv2"):
        node = convs[name]
        assert node.thresholds.shape == (node.out_channels, n)
        assert node.out.encoding == "uint" and node.out.bits == k
        assert node.out.scale == 1.0 / n
        assert graph.producer(convs[name]).out.bits == k        # reads k-bit codes
    assert convs["conv3"].thresholds.shape == (24, 1)            # the sign of fc's input
    assert graph.meta["exhaustive_checks"]["conv1"] == 16 * (2 * 9 * n + 1)
    # bn1 channels 2 and 9 have a negative gamma: decreasing codes, weights negated
    kernel = np.asarray(model.get_layer("conv1").kernel).reshape(-1, 16).T
    keras_sign = np.where(kernel >= 0, 1, -1)
    negated = [c for c in range(16) if np.array_equal(convs["conv1"].weights[c],
                                                       -keras_sign[c])]
    assert negated == [2, 9]


def test_dorefa_equals_keras(dorefa, digits_all):
    """Every DoReFa code (the input's, conv1's and conv2's), every sign bit, the outputs and
    the argmax equal Keras's on all 1797 digits."""
    _, model, graph = dorefa
    assert first_input_codes(model, graph, digits_all) == 0
    assert code_mismatches(model, graph, digits_all) == {"conv1": 0, "conv2": 0}
    assert keras_mismatches(model, graph, digits_all) == []
    keras_out = model.predict(digits_all, verbose=0)
    assert np.array_equal(reference.run(graph, digits_all).argmax(-1), keras_out.argmax(-1))


def test_dorefa_inexact_folds_are_counted(dorefa):
    """Each layer reading 1/n codes has its fold checked against float32's summation bound;
    the few accumulator values that may differ are warned about, with their number."""
    _, _, graph = dorefa
    folds = graph.meta["inexact_folds"]
    assert set(folds) == {"conv1", "conv2", "conv3"}
    for differ, total in folds.values():
        assert total > 0 and differ <= total * 1e-3
    warned = [w for w in graph.meta.get("warnings", []) if "DoReFa" in w]
    assert len(warned) == sum(1 for d, _ in folds.values() if d)


def test_count_ambiguous_inputs_finds_a_tie():
    """A decision boundary exactly on an accumulator value d0 * (1/3) is counted; one half a
    step away from every accumulator value is not."""
    d0 = 5
    in_type = TensorType((4,), "uint", 2, 1.0 / 3.0)
    dense = Dense("fc", ["input"], TensorType((1,), "int", 8),
                  weights=np.ones((1, 4), np.int8))
    sign = Sign("s", ["fc/affine"], TensorType((1,), "bipolar"))
    bound = 4 * 3
    for shift, want in ((d0 / 3.0, 1), ((d0 + 0.5) / 3.0, 0)):
        affine = ChannelAffine("fc/affine", ["fc"], TensorType((1,), "float", 32),
                               add=np.array([-shift], np.float32))
        assert count_ambiguous_inputs(dense, in_type, [affine], sign) == (want, 2 * bound + 1)


def dorefa_forms_model(rng: np.random.Generator):
    """DoReFa as a standalone quantizer layer on the input and after a BatchNorm, and as an
    ``Activation``; the conv reading the 3-bit codes pads with 1.0 (code 7)."""
    import larq as lq

    layers = tf.keras.layers
    kernel = {"kernel_quantizer": "ste_sign", "kernel_constraint": "weight_clip",
              "use_bias": False}
    model = tf.keras.Sequential([
        layers.InputLayer(input_shape=(8, 8, 1)),
        lq.quantizers.DoReFa(k_bit=3, name="in_q"),
        lq.layers.QuantConv2D(8, 3, padding="same", name="conv1", **kernel),
        layers.BatchNormalization(name="bn1"),
        lq.quantizers.DoReFa(k_bit=2, name="q1"),
        lq.layers.QuantConv2D(12, 3, strides=2, padding="same", name="conv2", **kernel),
        layers.BatchNormalization(name="bn2"),
        layers.Activation(lq.quantizers.DoReFa(k_bit=3), name="q2"),
        lq.layers.QuantConv2D(10, 3, padding="same", pad_values=1.0, name="conv3",
                              **kernel),
        layers.BatchNormalization(name="bn3"),
        layers.Flatten(name="flatten"),
        lq.layers.QuantDense(10, input_quantizer="ste_sign", name="fc", **kernel),
        layers.BatchNormalization(name="bn_out"),
    ], name="dorefa_forms")
    randomise_weights(rng, model)
    return model


def test_dorefa_layer_and_activation_forms(digits_all):
    model = dorefa_forms_model(np.random.default_rng(4))
    graph = compile_model(model)
    assert graph.input.quantizer == "dorefa" and graph.input.out.bits == 3
    convs = {node.name: node for node in graph.nodes if isinstance(node, Dense)}
    assert convs["conv1"].thresholds.shape == (8, 3)
    assert convs["conv2"].thresholds.shape == (12, 7)
    assert graph.meta["keras_quantized"] == {"conv1": ["q1", 1.0 / 3.0, 0],
                                             "conv2": ["q2", 1.0 / 7.0, 0]}
    assert convs["conv3"].pad == 7
    assert code_mismatches(model, graph, digits_all) == {"conv1": 0, "conv2": 0}
    assert keras_mismatches(model, graph, digits_all) == []


def dorefanet_blocks_model(rng: np.random.Generator):
    """larq-zoo DoReFaNet's block order: conv, BatchNorm, MaxPool(3, 2), the
    next conv's DoReFa input quantizer; Flatten, then a QuantDense's DoReFa input."""
    import larq as lq

    layers = tf.keras.layers
    kernel = {"kernel_quantizer": "ste_sign", "kernel_constraint": "weight_clip",
              "use_bias": False}
    dorefa = {"input_quantizer": lq.quantizers.DoReFaQuantizer(k_bit=2)}
    model = tf.keras.Sequential([
        layers.InputLayer(input_shape=(8, 8, 1)),
        lq.layers.QuantConv2D(12, 3, padding="same", name="conv1", **dorefa, **kernel),
        layers.BatchNormalization(epsilon=1e-4, name="bn1"),
        layers.MaxPool2D(3, strides=2, padding="same", name="pool1"),
        lq.layers.QuantConv2D(16, 3, padding="same", name="conv2", **dorefa, **kernel),
        layers.BatchNormalization(epsilon=1e-4, name="bn2"),
        layers.Flatten(name="flatten"),
        lq.layers.QuantDense(10, name="fc", **dorefa, **kernel),
        layers.BatchNormalization(epsilon=1e-4, name="bn_out"),
    ], name="dorefanet_blocks")
    randomise_weights(rng, model)
    return model


def test_dorefa_behind_maxpool_and_flatten(digits_all):
    """The quantizer moves in front of the max-pool and the Flatten (exact: it is
    elementwise and non-decreasing) and folds; the pool then takes the max of k-bit codes."""
    model = dorefanet_blocks_model(np.random.default_rng(7))
    graph = compile_model(model)
    assert graph.meta["hoisted_quantizers"] == {"conv2/input_quantizer": "pool1",
                                                "fc/input_quantizer": "flatten"}
    convs = {node.name: node for node in graph.nodes if isinstance(node, Dense)}
    assert convs["conv1"].thresholds.shape == (12, 3)
    assert convs["conv2"].thresholds.shape == (16, 3)
    assert graph["pool1"].out.encoding == "uint" and graph["pool1"].out.bits == 2
    assert set(graph.meta["inexact_folds"]) == {"conv1", "conv2"}
    assert code_mismatches(model, graph, digits_all) == {"pool1": 0, "flatten": 0}
    # fc reads 1/3 codes: its outputs come from exact integer sums, Keras's from float32
    # sums; they differ by at most the summation bound the compiler states
    problems = keras_mismatches(model, graph, digits_all)
    assert all(p.startswith("output error") for p in problems), problems
    bound = graph.meta["inexact_outputs"]["fc"]
    a, _ = graph.output.output_affine
    keras_out = model.predict(digits_all, verbose=0)
    ref_out = reference.run(graph, digits_all)
    allowed = bound * np.abs(a) * 3 + 8 * np.finfo(np.float32).eps * np.maximum(
        1.0, np.abs(keras_out))
    assert np.all(np.abs(ref_out - keras_out) <= allowed)
    assert np.array_equal(ref_out.argmax(-1), keras_out.argmax(-1))


def test_dorefa_design_json_round_trip(dorefa):
    _, _, graph = dorefa
    back = graph_from_json(json.loads(json.dumps(graph_to_json(graph))))
    assert graphs_equal(back, graph)
    assert back.input.quantizer == "dorefa"


def test_dorefa_refusals():
    """DoReFa(mode='weights') is refused, as a kernel quantizer and as an activation, with
    the layer named and what is supported."""
    import larq as lq

    layers = tf.keras.layers
    model = tf.keras.Sequential([
        layers.InputLayer(input_shape=(16,)),
        lq.layers.QuantDense(8, input_quantizer="ste_sign",
                             kernel_quantizer=lq.quantizers.DoReFa(2, mode="weights"),
                             name="fc_w")])
    with pytest.raises(UnsupportedError, match=r"'fc_w'.*mode='weights'.*input_quantizer"):
        compile_model(model)
    model = tf.keras.Sequential([
        layers.InputLayer(input_shape=(16,)),
        lq.layers.QuantDense(8, input_quantizer=lq.quantizers.DoReFa(2, mode="weights"),
                             kernel_quantizer="ste_sign", name="fc_a")])
    with pytest.raises(UnsupportedError, match=r"'fc_a'.*mode='weights'.*activations"):
        compile_model(model)


@pytest.fixture(scope="module")
def dorefa_real(digits):
    """A float first conv: the first DoReFa quantizes a real-valued (fixed-point) tensor."""
    from bnn2fpga.zoo import train_larq_dorefa

    model = train_larq_dorefa(data=digits, k_bit=2, float_first=True)
    graph = compile_model(model, input_scale=DIGITS_INPUT_SCALE, input_bits=DIGITS_INPUT_BITS,
                          calibration=digits.x_train)
    return model, graph


def test_dorefa_on_a_real_tensor_is_a_threshold_unit(dorefa_real, digits):
    model, graph = dorefa_real
    node = graph["conv2/input_quantizer"]
    assert isinstance(node, Threshold) and node.thresholds.shape == (16, 3)
    assert node.out.encoding == "uint" and node.out.bits == 2 and node.out.scale == 1 / 3
    assert graph.producer(node).name == "conv1"      # on the float conv's accumulator
    x = digits.x_test
    values = reference.execute(graph, reference.quantize_input(graph.input, x))
    keras = keras_quantized_codes(model, "conv2/input_quantizer", 1 / 3, 0, x)
    assert np.mean(values[node.name] == keras) > 0.995
    agreement = graph.meta["agreement"]
    assert agreement["argmax_agreement"] >= 0.995
    assert 0 < agreement["code_flips"][node.name] < 0.005    # vs the float model's codes


@pytest.mark.slow
def test_dorefa_hardware_equals_reference(dorefa, digits, tmp_path):
    k, _, graph = dorefa
    testing.assert_engines_agree(graph, digits.x_test[:12], tmp_path, f"dorefa{k}")


@pytest.mark.slow
def test_dorefa_real_path_hardware_equals_reference(dorefa_real, digits, tmp_path):
    _, graph = dorefa_real
    testing.assert_engines_agree(graph, digits.x_test[:12], tmp_path, "dorefa_real")


@pytest.mark.slow
def test_dorefa_pooled_codes_hardware_equals_reference(digits, tmp_path):
    """Max-pools of 2-bit DoReFa codes (the hoisted quantizer) in RTL and C-sim."""
    graph = compile_model(dorefanet_blocks_model(np.random.default_rng(7)))
    testing.assert_engines_agree(graph, digits.x_test[:12], tmp_path, "dorefa_pool")


def test_dorefa_real_path_code_flips_in_report(dorefa_real, tmp_path):
    from bnn2fpga import report
    from bnn2fpga.project import write_project

    _, graph = dorefa_real
    out = tmp_path / "out"
    write_project(graph, out, CompileOptions(), backends=("rtl",))
    json_path, html_path = report.write_report(out)
    flips = json.loads(json_path.read_text())["real_paths"]["agreement"]["code_flips"]
    assert set(flips) == {"conv2/input_quantizer"}
    f = flips["conv2/input_quantizer"]
    assert f'<td class="name">conv2/input_quantizer</td><td>{100 * f:.3f}%</td>' in \
        html_path.read_text()
