"""The reference reproduces the trained Keras models: outputs, argmax, and every
intermediate binary activation, on every digits image."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from bnn2fpga import reference, testing
from bnn2fpga.compile import compile_model
from bnn2fpga.ir import Conv2D, MaxPool2D, graph_from_json, graph_to_json, graphs_equal


def model_inputs(model, x: np.ndarray) -> np.ndarray:
    return x.reshape((len(x),) + tuple(model.input_shape[1:]))


def assert_activations_match(model, graph, x):
    """Every binary IR tensor equals the model's own binarised tensor, bit for bit."""
    x = model_inputs(model, x)
    codes = reference.quantize_input(graph.input, x)
    values = reference.execute(graph, codes)
    mapping = graph.meta["keras_activations"]
    assert len(mapping) >= 2
    for node_name, layer_name in mapping.items():
        probe = tf.keras.Model(model.inputs, model.get_layer(layer_name).output)
        keras_bits = (probe.predict(x, verbose=0) >= 0).astype(np.int64)
        ir_bits = values[node_name]
        assert ir_bits.shape == keras_bits.shape, node_name
        mismatches = int(np.sum(ir_bits != keras_bits))
        assert mismatches == 0, f"{node_name} vs {layer_name}: {mismatches} bits differ"


def test_qkeras_mlp_outputs(qkeras_mlp, mlp_graph, digits_all):
    testing.assert_outputs_match(qkeras_mlp, mlp_graph, digits_all)


def test_qkeras_mlp_activations(qkeras_mlp, mlp_graph, digits_all):
    assert_activations_match(qkeras_mlp, mlp_graph, digits_all)


def test_larq_cnn_outputs(larq_cnn, cnn_graph, digits_all):
    testing.assert_outputs_match(larq_cnn, cnn_graph, digits_all)


def test_larq_cnn_activations(larq_cnn, cnn_graph, digits_all):
    assert_activations_match(larq_cnn, cnn_graph, digits_all)


def test_qkeras_cnn_outputs(qkeras_cnn, qcnn_graph, digits_all):
    testing.assert_outputs_match(qkeras_cnn, qcnn_graph, digits_all)


def test_qkeras_cnn_activations(qkeras_cnn, qcnn_graph, digits_all):
    """Includes the majority pool that the binarised 'same' average pool became."""
    assert "avg" in qcnn_graph.meta["keras_activations"]
    assert_activations_match(qkeras_cnn, qcnn_graph, digits_all)


def test_models_learn(qkeras_mlp, qkeras_cnn, larq_cnn, digits):
    """The fixtures are real trained models, not chance-level ones."""
    from bnn2fpga.zoo import keras_accuracy

    assert keras_accuracy(qkeras_mlp, digits.x_test, digits.y_test) > 0.85
    assert keras_accuracy(qkeras_cnn, digits.x_test, digits.y_test) > 0.6
    assert keras_accuracy(larq_cnn, digits.x_test, digits.y_test) > 0.6


def test_larq_cnn_exercises_the_hard_cases(cnn_graph):
    convs = {n.name: n for n in cnn_graph.nodes if isinstance(n, Conv2D)}
    assert convs["conv1"].pad == "zero" and cnn_graph.input.out.encoding == "uint"
    assert convs["conv2"].pad == 1 and convs["conv2"].stride == (2, 2)
    assert convs["conv3"].pad == "zero"
    assert any(c.out_channels % 2 for c in convs.values())
    pool = next(n for n in cnn_graph.nodes if isinstance(n, MaxPool2D))
    # bn1 after the pool had gamma < 0 on channels 0, 3, 7: the pool became a min there
    assert pool.min_channels == (0, 3, 7)
    # zero gamma (bn1 channel 5, bn2 channel 4): constant channels, threshold at an extreme
    for name, channel in (("conv1", 5), ("conv2", 4)):
        node = convs[name]
        t = int(node.thresholds[channel, 0])
        assert t in (-node.fan_in * 31, node.fan_in * 31 + 1) if name == "conv1" else \
            t in (-node.fan_in, node.fan_in + 1)


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_model_files_load_with_custom_objects(tmp_path, qkeras_mlp, larq_cnn, mlp_graph,
                                              cnn_graph, suffix):
    for model, graph, kwargs in ((qkeras_mlp, mlp_graph, {}),
                                 (larq_cnn, cnn_graph, {"input_scale": 0.0625,
                                                        "input_bits": 5})):
        path = tmp_path / f"{model.name}{suffix}"
        model.save(path)
        loaded = compile_model(path, name=graph.name, **kwargs)
        assert graphs_equal(loaded, graph)


def test_design_json_round_trip(cnn_graph, mlp_graph, digits):
    for graph in (cnn_graph, mlp_graph):
        import json

        text = json.dumps(graph_to_json(graph))
        back = graph_from_json(json.loads(text))
        assert graphs_equal(back, graph)
        x = model_inputs_for(graph, digits.x_test[:64])
        assert np.array_equal(reference.run(back, x), reference.run(graph, x))


def model_inputs_for(graph, x):
    return x.reshape((len(x),) + graph.input.out.shape)


def test_qkeras_options_model(digits_all, digits):
    """quantized_relu input, alpha='auto_po2' kernel scales, biases, and a binary activation
    given as the layer's own activation: still bit-exact."""
    from qkeras import QActivation, QDense, binary, quantized_relu

    from bnn2fpga.zoo import _fit, _seed_everything

    _seed_everything(3)
    model = tf.keras.Sequential([
        tf.keras.layers.InputLayer(input_shape=(64,)),
        QActivation(quantized_relu(5, 1), name="in_q"),
        QDense(48, kernel_quantizer=binary(alpha="auto_po2"), use_bias=True, name="fc1"),
        tf.keras.layers.BatchNormalization(name="bn1"),
        QActivation(binary(), name="act1"),
        QDense(24, kernel_quantizer=binary(alpha="auto_po2"), use_bias=True,
               activation=binary(), name="fc2"),
        QDense(10, kernel_quantizer=binary(), use_bias=True, name="fc3"),
    ], name="qkeras_options")
    _fit(model, digits, epochs=4, flat=True)
    graph = compile_model(model)
    assert graph.input.out.bits == 5 and graph.input.quantizer == "round_half_even"
    x = digits_all.reshape(len(digits_all), 64)
    testing.assert_outputs_match(model, graph, x)
    assert_activations_match(model, graph, x)
