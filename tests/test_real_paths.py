"""Residual BNNs with real-valued paths: frontend, formats, fixed-point lowering, agreement."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import tensorflow as tf

from bnn2fpga import fixed, reference
from bnn2fpga.compile import compile_model
from bnn2fpga.floateval import evaluate_float
from bnn2fpga.frontends import model_to_graph
from bnn2fpga.ir import (
    Add,
    BatchNorm,
    Concat,
    FixedAffine,
    FixedAvgPool,
    FloatConv2D,
    Graph,
    Input,
    IRError,
    Sign,
    TensorType,
    Threshold,
    graph_from_json,
    graph_to_json,
    graphs_equal,
)
from bnn2fpga.passes import lower_to_hardware
from bnn2fpga.passes.formats import load_formats_file
from bnn2fpga.passes.real import affine_node, constant_multiplier, lower_sign, quantize_weights

SCALE, BITS = 0.0625, 5


@pytest.fixture(scope="module")
def resnet(digits):
    from bnn2fpga.zoo import train_larq_resnet

    return train_larq_resnet(data=digits)


@pytest.fixture(scope="module")
def resnet_graph(resnet, digits):
    return compile_model(resnet, input_scale=SCALE, input_bits=BITS,
                         calibration=digits.x_train)


def test_resnet_learns(resnet, digits):
    from bnn2fpga.zoo import keras_accuracy

    assert keras_accuracy(resnet, digits.x_test, digits.y_test) > 0.85


def test_resnet_lowers_to_fixed_point_ops(resnet_graph):
    ops = {n.op for n in resnet_graph.nodes}
    assert {"add", "concat", "fixed_affine", "threshold", "fixed_avgpool"} <= ops
    assert resnet_graph.is_hardware() and resnet_graph.meta["host_softmax"]
    assert resnet_graph["stem"].weight_bits == 14 and resnet_graph["fc"].weight_bits == 14
    assert isinstance(resnet_graph["b2_rsign"], Threshold)
    slopes = resnet_graph["b2_prelu"]
    assert isinstance(slopes, FixedAffine) and (slopes.mul_neg < 0).any()


def test_resnet_agreement_at_the_default_precision(resnet_graph):
    """The issue's targets, on the calibration frames: argmax >= 99.5%, flips < 0.5%."""
    a = resnet_graph.meta["agreement"]
    assert a["argmax_agreement"] >= 0.995, a
    assert sorted(a["sign_flips"]) == ["b1_rsign", "b2_rsign", "b3_rsign"]
    assert max(a["sign_flips"].values()) < 0.005, a["sign_flips"]


def test_resnet_reference_matches_keras_on_held_out_frames(resnet, resnet_graph, digits):
    y = reference.run(resnet_graph, digits.x_test)
    k = resnet.predict(digits.x_test, verbose=0)
    assert y.shape == k.shape and np.allclose(y.sum(-1), 1.0, atol=1e-5)
    assert np.mean(y.argmax(-1) == k.argmax(-1)) >= 0.99


def test_resnet_design_json_round_trip(resnet_graph, digits):
    back = graph_from_json(json.loads(json.dumps(graph_to_json(resnet_graph))))
    assert graphs_equal(back, resnet_graph)
    assert np.array_equal(reference.run(back, digits.x_test[:50]),
                          reference.run(resnet_graph, digits.x_test[:50]))


def test_float_evaluator_matches_keras(resnet, digits):
    values = evaluate_float(model_to_graph(resnet), digits.x_test)
    for name in ("b1_rsign", "b3_rsign"):
        probe = tf.keras.Model(resnet.inputs, resnet.get_layer(name).output)
        assert np.array_equal(probe.predict(digits.x_test, verbose=0) > 0, values[name] > 0)


def test_no_formats_names_the_first_real_tensor_and_both_options(resnet):
    with pytest.raises(IRError) as e:
        compile_model(resnet, input_scale=SCALE, input_bits=BITS)
    msg = str(e.value)
    assert "'stem' (Conv2D)" in msg and "--calibration" in msg and "--formats" in msg


def test_formats_file_overrides_and_saturation_is_counted(resnet, digits, tmp_path):
    path = tmp_path / "formats.json"
    path.write_text(json.dumps({"b1_add": [8, 6]}))   # +-2: far too narrow
    g = compile_model(resnet, input_scale=SCALE, input_bits=BITS, calibration=digits.x_train,
                      formats=load_formats_file(path))
    assert (g["b1_add"].out.bits, g["b1_add"].out.frac) == (8, 6)
    clipped, total = g.meta["agreement"]["saturation"]["b1_add"]
    assert 0 < clipped < total
    path.write_text(json.dumps({"nope": [8, 6]}))
    with pytest.raises(IRError, match="unknown tensors"):
        compile_model(resnet, input_scale=SCALE, input_bits=BITS, calibration=digits.x_train,
                      formats=load_formats_file(path))


def test_add_of_a_binarised_tensor_is_refused():
    import larq as lq

    inp = tf.keras.Input((8,))
    x = lq.layers.QuantDense(8, kernel_quantizer="ste_sign", name="d")(inp)
    s = lq.layers.QuantDense(8, input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                             name="e")(x)
    y = tf.keras.layers.Add(name="add")([x, s])
    model_to_graph(tf.keras.Model(inp, y))  # real + real: fine


# ---- passes on their own, random --------------------------------------------------------

@pytest.mark.parametrize("seed", range(5))
def test_quantize_weights_is_within_half_a_step(seed):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(6, 20)) * rng.uniform(0.01, 3, size=(6, 1))
    codes, steps = quantize_weights(w, 10)
    assert codes.min() >= -512 and codes.max() <= 511
    assert np.all(np.abs(codes * steps[:, None] - w) <= steps[:, None] / 2 + 1e-12)
    assert np.all(np.exp2(np.round(np.log2(steps))) == steps)


@pytest.mark.parametrize("seed", range(5))
def test_constant_multiplier(seed):
    rng = np.random.default_rng(seed)
    f = rng.normal(size=8) * 10 ** rng.uniform(-3, 2)
    mul, shift = constant_multiplier(f, 14)
    assert shift >= 0 and np.abs(mul).max() < 2 ** 13
    assert np.all(np.abs(mul * 2.0 ** -shift - f) <= 2.0 ** -(shift + 1))
    mul, shift = constant_multiplier(np.array([0.25, 1.5]), 8)  # exact where it can be
    assert mul.tolist() == [1, 6] and shift == 2


@pytest.mark.parametrize("seed", range(5))
def test_affine_node_follows_the_float_formula(seed):
    rng = np.random.default_rng(seed)
    c = 4
    src = TensorType.fixed((3, c), 12, 6)
    out = TensorType.fixed((3, c), 18, 8)  # holds +-512: no saturation
    a_pos, a_neg = rng.uniform(-2, 2, c), rng.uniform(-2, 2, c)
    b, s_in = rng.uniform(-1, 1, c), rng.uniform(-1, 1, c)
    node = affine_node("aff", "x", 2.0 ** -6, out, a_pos, a_neg, b, s_in, 16)
    codes = rng.integers(-2000, 2000, size=(50, 3, c))
    got = fixed.to_real(FixedAffine_run(node, src, codes), out)
    u = codes * 2.0 ** -6 + np.round(s_in * 64) / 64
    want = np.where(u >= 0, a_pos * u, a_neg * u) + b
    assert np.abs(got - want).max() <= 2.0 ** -8 + 1e-3 * np.abs(want).max()


def FixedAffine_run(node, src, codes):  # noqa: N802 - the op's reference kernel
    from bnn2fpga.ops import op_type

    return op_type(node).run_on(node, [src], [codes])


@pytest.mark.parametrize("seed", range(5))
def test_lower_sign_is_exact_over_every_code(seed):
    """sign(a x + b) on fixed x -> Threshold: exhaustively equal to the float decision on
    every code of the input (negative, zero and positive a)."""
    rng = np.random.default_rng(seed)
    c = 6
    t = TensorType.fixed((c,), 8, 4)
    bn = BatchNorm("bn", ["x"], TensorType((c,), "float"),
                   gamma=np.array([1, -1, 0, 2, -0.5, 0], np.float32) *
                   rng.uniform(0.5, 2, c).astype(np.float32),
                   beta=rng.uniform(-3, 3, c).astype(np.float32),
                   mean=rng.uniform(-3, 3, c).astype(np.float32),
                   var=rng.uniform(0.5, 2, c).astype(np.float32))
    g = Graph("g", [Input("x", [], t), bn, Sign("s", ["bn"], TensorType((c,), "float"))])
    lower_sign(g, g["s"])
    thr = g["s"]
    codes = np.arange(-128, 128)[:, None].repeat(c, axis=1)
    bits = FixedAffine_run(thr, t, codes)
    s, sh = bn.scale_shift()
    want = (codes / 16.0 * s + sh) >= 0
    assert np.array_equal(bits.astype(bool), want)


@pytest.mark.parametrize("seed", range(4))
def test_random_fork_add_concat_graph(seed):
    """A fork into BNs of different ranges, an add of differently formatted tensors, a
    concat that aligns them and an average pool: the lowered graph follows the float one
    within a few steps of the output format."""
    rng = np.random.default_rng(seed)
    h, c = 4, 3
    ft = TensorType((h, h, c), "float")

    def bn(name: str, src: str, scale: float) -> BatchNorm:
        return BatchNorm(name, [src], ft, gamma=(rng.uniform(0.5, 2, c) * scale)
                         .astype(np.float32), beta=rng.uniform(-1, 1, c).astype(np.float32),
                         mean=np.zeros(c, np.float32), var=np.ones(c, np.float32))

    from bnn2fpga.ir import AvgPool2D
    stem = FloatConv2D("stem", ["input"], ft, kernel=rng.normal(size=(c, c))
                       .astype(np.float32), bias=None)
    g = Graph("g", [Input("input", [], ft), stem, bn("a", "stem", 1.0), bn("b", "stem", 8.0),
                    Add("sum", ["a", "b"], ft),
                    Concat("cat", ["sum", "a"], TensorType((h, h, 2 * c), "float")),
                    AvgPool2D("pool", ["cat"], TensorType((2, 2, 2 * c), "float"))])
    x = rng.integers(0, 16, size=(20, h, h, c)) / 16.0
    values = evaluate_float(g, x)
    ranges = {n: float(np.abs(v).max()) for n, v in values.items()}
    hw = lower_to_hardware(g, input_scale=SCALE, input_bits=BITS, ranges=ranges, precision=8)
    assert isinstance(hw["cat"], Concat) and isinstance(hw["pool"], FixedAvgPool)
    assert hw["a"].out.frac == hw["sum"].out.frac
    y = reference.run(hw, x.astype(np.float32))
    # rounding of every tensor (2^-9 each) plus the stem's 10-bit weights (relative)
    bound = 4 * 2.0 ** -8 + math.ldexp(1, -9) + 0.01 * np.abs(values["pool"]).max()
    assert np.abs(y - values["pool"]).max() <= bound


def prelu_graph(rng, c: int, t: TensorType) -> Graph:
    """x -> BN -> RPReLU -> BN with negative, zero and positive BN scales and slopes."""
    from bnn2fpga.ir import FloatPReLU

    def bn(name, src, gamma):
        return BatchNorm(name, [src], TensorType(t.shape, "float"),
                         gamma=(gamma * rng.uniform(0.5, 2, c)).astype(np.float32),
                         beta=rng.uniform(-2, 2, c).astype(np.float32),
                         mean=rng.uniform(-2, 2, c).astype(np.float32),
                         var=rng.uniform(0.5, 2, c).astype(np.float32))
    signs = np.array([1, -1, 0, 1, -1, 1], np.float32)
    prelu = FloatPReLU("act", ["bn1"], TensorType(t.shape, "float"),
                       shift_in=rng.uniform(-1, 1, c).astype(np.float32),
                       slope=np.array([0.25, -0.3, 0.5, 0.0, 1.5, -1.0], np.float32),
                       shift_out=rng.uniform(-1, 1, c).astype(np.float32))
    return Graph("g", [Input("x", [], t), bn("bn1", "x", signs), prelu,
                       bn("bn2", "act", signs[::-1].copy())])


@pytest.mark.parametrize("seed", range(5))
def test_prelu_pieces_are_the_exact_lines_on_every_code(seed):
    """BN -> RPReLU -> BN as two lines meeting at an integer pivot: in exact arithmetic
    equal to the float function on every input code (negative, zero and positive scales
    and slopes), so only the final rounding and the multipliers' width remain."""
    from bnn2fpga.passes.real import chain_terms, prelu_pieces

    rng = np.random.default_rng(seed)
    c, step = 6, 2.0 ** -4
    g = prelu_graph(rng, c, TensorType.fixed((c,), 8, 4))
    a1, b1 = chain_terms([g["bn1"]])
    a3, b3 = chain_terms([g["bn2"]])
    act = g["act"]
    x0, mp, ap, mn, an = prelu_pieces(a1 * step, b1 + act.shift_in, act, a3, b3, -128, 127)
    x = np.arange(-128, 128)[:, None].repeat(c, axis=1)
    got = np.where(x >= x0, mp * (x - x0) + ap, mn * (x - x0) + an)
    z = a1 * x * step + b1 + act.shift_in
    want = a3 * (np.where(z >= 0, z, act.slope * z) + act.shift_out) + b3
    assert np.abs(got - want).max() < 1e-9 * (1 + np.abs(want).max())
    assert ((-128 <= x0) & (x0 <= 128)).all()


@pytest.mark.parametrize("seed", range(3))
def test_bn_prelu_bn_lowers_to_one_affine_within_its_rounding(seed):
    """The chain becomes one FixedAffine with two offsets (round trip through design JSON),
    within half an output step plus the multipliers' relative error on every code."""
    from bnn2fpga.ops.fixed_affine import affine_params
    from bnn2fpga.passes.real import lower_real_paths

    rng = np.random.default_rng(seed)
    c = 6
    t = TensorType.fixed((c,), 8, 4)
    g = prelu_graph(rng, c, t)
    g.meta["formats"] = {"bn2": (24, 10)}
    want_graph = prelu_graph(np.random.default_rng(seed), c, t)
    g = lower_real_paths(g, precision=14)
    assert [n.op for n in g.nodes] == ["input", "fixed_affine"]
    node = g.nodes[1]
    assert node.name == "bn2" and affine_params(node, t)["AO2"] == 1
    g2 = graph_from_json(json.loads(json.dumps(graph_to_json(g))))
    assert graphs_equal(g, g2)
    x = np.arange(-128, 128)[:, None].repeat(c, axis=1)
    got = fixed.to_real(FixedAffine_run(g2.nodes[1], t, x), node.out)
    a1, b1 = want_graph["bn1"].scale_shift()
    a3, b3 = want_graph["bn2"].scale_shift()
    act = want_graph["act"]
    z = a1 * x / 16.0 + b1 + act.shift_in
    want = a3 * (np.where(z >= 0, z, act.slope * z) + act.shift_out) + b3
    assert np.abs(got - want).max() <= 2.0 ** -11 + 2.0 ** -13 * np.abs(want).max()


def test_sign_of_a_float_conv_and_batchnorm_reads_its_accumulator():
    """Float Conv2D -> BatchNorm -> a Larq binary conv's input sign: the BN+sign becomes a
    Threshold on the float conv's integer accumulator, which then carries its real value
    (an output affine), as it does when the BN's output is read by another real op, and
    whose thresholds span the accumulator's worst case (its width is assigned later)."""
    import larq as lq

    from bnn2fpga.architectures import randomize_batchnorm

    tf.keras.utils.set_random_seed(0)
    inp = tf.keras.Input((6, 6, 3))
    x = tf.keras.layers.Conv2D(4, 3, padding="same", use_bias=False, name="c0")(inp)
    x = tf.keras.layers.BatchNormalization(name="bn0")(x)
    x = lq.layers.QuantConv2D(4, 3, padding="same", input_quantizer="approx_sign",
                              kernel_quantizer="ste_sign", use_bias=False, name="c1")(x)
    x = tf.keras.layers.BatchNormalization(name="bn1")(x)
    x = tf.keras.layers.GlobalAveragePooling2D(name="gap")(x)
    model = randomize_batchnorm(tf.keras.Model(inp, tf.keras.layers.Dense(3, name="fc")(x)))
    cal = np.random.default_rng(0).integers(0, 1 << BITS, (32, 6, 6, 3)) * SCALE
    g = compile_model(model, input_scale=SCALE, input_bits=BITS,
                      calibration=cal.astype(np.float32))
    (thr,) = [n for n in g.nodes if isinstance(n, Threshold)]
    assert g.producer(thr).name == "c0" and g["c0"].output_affine is not None
    # thresholds on the accumulator's full range (not clipped to a placeholder width)
    assert np.abs(thr.thresholds).max() > 1000, thr.thresholds.ravel()
    a = g.meta["agreement"]
    assert a["sign_flips"] and all(f < 0.005 for f in a["sign_flips"].values()), a
    assert a["argmax_agreement"] >= 0.95, a
