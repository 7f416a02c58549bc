"""The passes around signs and the graph's edges, on the chains users build: propagate_types
after every fold, the fold loop's redundant-sign removal, fold_input_sign through
Flatten/max-pool, fold_output_affine through a Flatten, and the warning for QKeras binary's
float32 arithmetic (tests/test_passes.py has every pass's basic contract)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import tensorflow as tf

from bnn2fpga import reference
from bnn2fpga.ir import (
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Graph,
    Input,
    IRError,
    MaxPool2D,
    Reshape,
    Sign,
    TensorType,
)
from bnn2fpga.passes import (
    fold_input_sign,
    fold_output_affine,
    fold_sign_into_thresholds,
    lower_to_hardware,
    propagate_types,
    remove_redundant_signs,
)

FLOAT = TensorType((4,), "float", 32)


def bn(name: str, src: str, shape: tuple[int, ...], rng: np.random.Generator) -> BatchNorm:
    c = shape[-1]
    return BatchNorm(name, [src], TensorType(shape, "float", 32),
                     gamma=rng.normal(size=c).astype(np.float32),
                     beta=rng.normal(size=c).astype(np.float32),
                     mean=rng.normal(size=c).astype(np.float32),
                     var=rng.uniform(0.5, 2, c).astype(np.float32))


def weights(rng: np.random.Generator, out: int, fan_in: int) -> np.ndarray:
    return (2 * rng.integers(0, 2, (out, fan_in)) - 1).astype(np.int8)


def sign_flatten_sign_graph(rng: np.random.Generator) -> Graph:
    """bipolar input -> dense -> BN -> sign -> Reshape -> sign -> dense (accumulator)."""
    return Graph("g", [
        Input("input", [], TensorType((6,), "bipolar")),
        Dense("fc1", ["input"], TensorType((4,), "int", 2), weights=weights(rng, 4, 6)),
        bn("bn1", "fc1", (4,), rng),
        Sign("act1", ["bn1"], FLOAT),
        Reshape("flat", ["act1"], TensorType((2, 2), "float", 32)),
        Reshape("flat2", ["flat"], TensorType((4,), "float", 32)),
        Sign("act2", ["flat2"], FLOAT),
        Dense("fc2", ["act2"], TensorType((3,), "int", 2), weights=weights(rng, 3, 4)),
    ])


def test_propagate_types_derives_every_node_from_its_producer():
    g = propagate_types(sign_flatten_sign_graph(np.random.default_rng(0)))
    enc = {n.name: n.out.encoding for n in g.nodes}
    assert enc == {"input": "bipolar", "fc1": "int", "bn1": "float", "act1": "bipolar",
                   "flat": "bipolar", "flat2": "bipolar", "act2": "bipolar", "fc2": "int"}
    assert g["flat"].out.shape == (2, 2)
    g["fc1"].out = TensorType((4,), "int", 5)  # a pass re-types a binary layer ...
    g["act1"].inputs = ["fc1"]                  # ... and rewires: the Reshape follows it
    g["flat"].inputs = ["fc1"]
    propagate_types(g)
    assert g["flat"].out == TensorType((2, 2), "int", 5)
    assert g["flat2"].out == TensorType((4,), "int", 5)


def test_remove_redundant_signs_needs_a_bipolar_producer():
    g = propagate_types(sign_flatten_sign_graph(np.random.default_rng(0)))
    remove_redundant_signs(g)
    assert [n.name for n in g.nodes if isinstance(n, Sign)] == ["act1"]  # act1 is on floats
    assert g["fc2"].inputs == ["flat2"]


def test_fold_loop_folds_a_sign_then_drops_the_one_behind_its_flatten():
    rng = np.random.default_rng(1)
    g = fold_sign_into_thresholds(sign_flatten_sign_graph(rng))
    assert [n.name for n in g.nodes] == ["input", "fc1", "flat", "flat2", "fc2"]
    assert g["fc1"].thresholds is not None
    assert g["flat"].out.encoding == g["flat2"].out.encoding == "bipolar"
    assert g.meta["keras_activations"] == {"fc1": "bn1"}


def test_double_sign_graph_matches_float():
    rng = np.random.default_rng(2)
    float_graph = sign_flatten_sign_graph(rng)
    w1, w2 = float_graph["fc1"].weights.copy(), float_graph["fc2"].weights.copy()
    norm = float_graph["bn1"]
    hw = lower_to_hardware(float_graph)
    x = (2 * rng.integers(0, 2, (64, 6)) - 1).astype(np.float32)
    s, t = norm.scale_shift()
    h = np.where((x @ w1.T) * s + t >= 0, 1, -1)
    assert np.array_equal(reference.run(hw, x), (h @ w2.T).astype(np.float32))


@pytest.mark.parametrize("between", [["flatten"], ["pool"], ["pool", "flatten"]])
def test_fold_input_sign_through_flatten_and_max_pool(between):
    rng = np.random.default_rng(3)
    nodes = [Input("input", [], TensorType((4, 4, 2), "float", 32))]
    shape = (4, 4, 2)
    for op in between:
        if op == "pool":
            shape = (2, 2, 2)
            nodes.append(MaxPool2D("pool", [nodes[-1].name], TensorType(shape, "float", 32)))
        else:
            shape = (int(np.prod(shape)),)
            nodes.append(Reshape("flat", [nodes[-1].name], TensorType(shape, "float", 32)))
    nodes.append(Sign("sign", [nodes[-1].name], TensorType(shape, "float", 32)))
    fan_in = int(np.prod(shape))
    w = weights(rng, 3, fan_in)
    if len(shape) == 1:
        nodes.append(Dense("fc", ["sign"], TensorType((3,), "int", 2), weights=w))
    else:
        nodes.append(Conv2D("fc", ["sign"], TensorType((1, 1, 3), "int", 2), weights=w,
                            kernel=(2, 2)))
    g = fold_input_sign(Graph("g", nodes))
    assert g.input.out.encoding == "bipolar" and g.input.quantizer == "sign"
    assert not any(isinstance(n, Sign) for n in g.nodes)
    assert all(n.out.encoding == "bipolar" for n in g.nodes[1:-1])
    hw = lower_to_hardware(g)
    x = rng.normal(size=(32, 4, 4, 2)).astype(np.float32)
    x[::3] = 0.0
    v = x.reshape(32, 2, 2, 2, 2, 2).max(axis=(2, 4)) if "pool" in between else x
    want = np.where(v.reshape(32, -1) >= 0, 1, -1) @ w.T
    assert np.array_equal(reference.run(hw, x).reshape(32, 3), want.astype(np.float32))


def test_fold_input_sign_leaves_an_average_pool_alone():
    g = Graph("g", [Input("input", [], TensorType((2, 2, 1), "float", 32)),
                    AvgPool2D("avg", ["input"], TensorType((1, 1, 1), "float", 32)),
                    Sign("sign", ["avg"], TensorType((1, 1, 1), "float", 32))])
    fold_input_sign(g)
    assert g.input.out.encoding == "float" and len(g.nodes) == 3


def conv_flatten_graph(rng: np.random.Generator, bn_after_flatten: bool) -> Graph:
    """bipolar input -> conv (2x2x3 out) -> [BN] -> Flatten -> [BN per feature]."""
    conv = Conv2D("conv", ["input"], TensorType((2, 2, 3), "int", 2),
                  weights=weights(rng, 3, 2 * 2 * 2), kernel=(2, 2))
    nodes = [Input("input", [], TensorType((3, 3, 2), "bipolar")), conv]
    if not bn_after_flatten:
        nodes.append(bn("bn", "conv", (2, 2, 3), rng))
    nodes.append(Reshape("flat", [nodes[-1].name], TensorType((12,), "float", 32)))
    if bn_after_flatten:
        nodes.append(bn("bn", "flat", (12,), rng))
    return Graph("g", nodes)


@pytest.mark.parametrize("bn_after_flatten", [False, True])
def test_fold_output_affine_through_a_flatten(bn_after_flatten):
    rng = np.random.default_rng(4)
    g = conv_flatten_graph(rng, bn_after_flatten)
    w, norm = g["conv"].weights.copy(), g["bn"]
    s, t = norm.scale_shift()
    alone = fold_output_affine(propagate_types(copy.deepcopy(g)))
    assert [n.name for n in alone.nodes] == ["input", "conv", "flat"]
    assert alone["flat"].out.encoding == "int" and alone["conv"].output_affine is not None
    hw = lower_to_hardware(g)
    assert [n.name for n in hw.nodes] == ["input", "conv", "flat"]
    a, _ = hw["conv"].output_affine
    assert a.size == (12 if bn_after_flatten else 3)  # per feature / per channel
    assert hw["flat"].out.encoding == "int" and hw["flat"].out.bits == hw["conv"].acc_bits
    x = (2 * rng.integers(0, 2, (16, 3, 3, 2)) - 1).astype(np.float64)
    patches = np.stack([x[:, i:i + 2, j:j + 2, :].reshape(16, -1)
                        for i in range(2) for j in range(2)], axis=1)   # (16, 4, 8)
    acc = patches @ w.T.astype(np.float64)                              # (16, 4, 3)
    want = acc.reshape(16, 12) * s + t if bn_after_flatten else (acc * s + t).reshape(16, 12)
    got = reference.run(hw, x.astype(np.float32))
    assert got.shape == (16, 12)
    assert np.allclose(got, want, rtol=1e-6, atol=1e-6)


def test_fold_output_affine_names_a_float_step_after_thresholds():
    rng = np.random.default_rng(5)
    g = sign_flatten_sign_graph(rng)
    g.nodes = g.nodes[:5]  # ends ... act1 -> flat
    g.nodes.append(bn("bn_out", "flat", (2, 2), rng))
    with pytest.raises(IRError, match="'bn_out'.*follow 'fc1'"):
        lower_to_hardware(g)


# ----------------------------------------------------------------------------------------
# QKeras binary(alpha=1) at |x| >= 2^24
# ----------------------------------------------------------------------------------------


def big_bn_model(gamma: float, quantizer: str):
    import larq as lq
    from qkeras import QActivation, QDense, binary

    kernel = {"kernel_quantizer": binary(alpha=1), "use_bias": False}
    if quantizer == "larq":
        tail = [lq.layers.QuantDense(2, input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                                     use_bias=False, name="act")]
    else:
        act = QActivation(binary(alpha=1) if quantizer == "binary(alpha=1)" else "binary",
                          name="act")
        tail = [act, QDense(2, **kernel)]
    model = tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=(8,)),
                                 QDense(4, name="fc", **kernel),
                                 tf.keras.layers.BatchNormalization(name="bn"), *tail])
    model.get_layer("bn").set_weights([np.full(4, gamma), np.array([0.3, -0.2, 0.1, 0.5]),
                                       np.zeros(4), np.ones(4)])
    return model


def compile_big(gamma: float, quantizer: str):
    from bnn2fpga.compile import compile_model

    model = big_bn_model(gamma, quantizer)
    return model, compile_model(model, input_scale=0.0625, input_bits=5)


def test_warns_where_qkeras_binary_leaves_plus_minus_one():
    from bnn2fpga.testing import keras_mismatches

    model, graph = compile_big(1e8, "binary(alpha=1)")
    warnings = [w for w in graph.meta.get("warnings", []) if "2^24" in w]
    assert len(warnings) == 1 and "'act'" in warnings[0] and "'fc'" in warnings[0]
    # the quirk is real: Keras's activation is not ±1 and its outputs differ; the design
    # binarises exactly (its bits are those of the BatchNorm's sign)
    x = (np.random.default_rng(0).integers(0, 32, (100, 8)) * 0.0625).astype(np.float32)
    act = tf.keras.Model(model.inputs, model.get_layer("act").output).predict(x, verbose=0)
    assert not np.all(np.abs(act) == 1)
    problems = keras_mismatches(model, graph, x)
    assert problems and all(p.startswith(("output", "argmax")) for p in problems)


@pytest.mark.parametrize("gamma, quantizer", [(1.0, "binary(alpha=1)"), (1e8, "binary"),
                                              (1e8, "larq")])
def test_no_float32_warning_where_the_binarisation_is_exact(gamma, quantizer):
    _, graph = compile_big(gamma, quantizer)
    assert not [w for w in graph.meta.get("warnings", []) if "2^24" in w]
