"""Each pass in bnn2fpga/passes on its own: a small graph in, the pass's effect checked
against what it promises (the whole pipeline is tested through the frontends)."""

from __future__ import annotations

import numpy as np
import pytest

from bnn2fpga import testing
from bnn2fpga.ir import (
    AvgPool2D,
    BatchNorm,
    ChannelAffine,
    Conv2D,
    Dense,
    Graph,
    Input,
    IRError,
    MajorityPool2D,
    MaxPool2D,
    Reshape,
    Sign,
    TensorType,
)
from bnn2fpga.passes import (
    assign_accumulator_widths,
    assign_folding,
    check_hardware_graph,
    fold_input_sign,
    fold_output_affine,
    fold_sign_into_thresholds,
    lower_pad_values,
    lower_to_hardware,
    propagate_types,
    remove_redundant_signs,
    set_input_format,
)


def dense(name: str, src: str, weights: np.ndarray, out: TensorType | None = None) -> Dense:
    return Dense(name, [src], out or TensorType((weights.shape[0],), "float"),
                 weights=weights.astype(np.int8))


def float_input(shape: tuple[int, ...]) -> Input:
    return Input("input", [], TensorType(shape, "float"))


# ----------------------------------------------------------------------------------------
# io.py
# ----------------------------------------------------------------------------------------


def test_fold_input_sign_makes_the_input_bipolar():
    rng = np.random.default_rng(0)
    g = Graph("g", [float_input((8,)), Sign("sign", ["input"], TensorType((8,), "float")),
                    dense("fc", "sign", testing.random_weights(rng, 4, 8))])
    fold_input_sign(g)
    assert [n.name for n in g.nodes] == ["input", "fc"] and g["fc"].inputs == ["input"]
    assert g.input.out == TensorType((8,), "bipolar") and g.input.quantizer == "sign"
    # a float input not followed by a sign stays float
    g2 = Graph("g", [float_input((8,)), dense("fc", "input", testing.random_weights(rng, 4, 8))])
    fold_input_sign(g2)
    assert g2.input.out.encoding == "float" and len(g2.nodes) == 2


def test_set_input_format():
    rng = np.random.default_rng(0)

    def graph() -> Graph:
        return Graph("g", [float_input((8,)),
                           dense("fc", "input", testing.random_weights(rng, 4, 8))])

    g = set_input_format(graph(), 0.0625, 4)
    assert g.input.out == TensorType((8,), "uint", 4, 0.0625) and "warnings" not in g.meta
    g = set_input_format(graph(), 0.1, 4)  # not a power of two: allowed, with a warning
    assert g.input.out.scale == 0.1 and "not a power of two" in g.meta["warnings"][0]
    with pytest.raises(IRError, match="--input-scale S --input-bits B"):
        set_input_format(graph())
    with pytest.raises(IRError, match="go together"):
        set_input_format(graph(), 0.0625, None)
    with pytest.raises(IRError, match="--input-bits 17"):
        set_input_format(graph(), 0.0625, 17)
    quantized = graph()
    quantized.input.out = TensorType((8,), "uint", 4, 0.0625)  # the model's own quantizer
    assert set_input_format(quantized, 0.0625, 4).input.out.bits == 4
    with pytest.raises(IRError, match="model's own input quantizer"):
        set_input_format(quantized, 0.125, 4)


def test_fold_output_affine_moves_the_float_tail_to_the_host():
    """uint input of scale 1/4, then scale and bias: output = (acc/4) * mul + add."""
    rng = np.random.default_rng(1)
    mul, add = np.array([0.5, -2.0, 3.0], np.float32), np.array([1.0, 0.0, -0.25], np.float32)
    g = Graph("g", [Input("input", [], TensorType((6,), "uint", 2, 0.25)),
                    dense("fc", "input", testing.random_weights(rng, 3, 6)),
                    ChannelAffine("affine", ["fc"], TensorType((3,), "float"), mul=mul,
                                  add=add)])
    g["fc"].acc_bits = 6
    fold_output_affine(g)
    assert [n.name for n in g.nodes] == ["input", "fc"]
    a, b = g["fc"].output_affine
    acc = np.arange(-18, 19)
    np.testing.assert_allclose(a[None, :] * acc[:, None] + b[None, :],
                               (acc[:, None] * 0.25) * mul + add)
    assert g["fc"].out == TensorType((3,), "int", 6)


def test_fold_output_affine_refuses_a_tail_after_a_non_matvec():
    g = Graph("g", [Input("input", [], TensorType((4, 4, 2), "bipolar")),
                    MaxPool2D("pool", ["input"], TensorType((2, 2, 2), "bipolar")),
                    ChannelAffine("affine", ["pool"], TensorType((2, 2, 2), "float"))])
    with pytest.raises(IRError, match=r"\['affine'\] follow 'pool'"):
        fold_output_affine(g)


def test_assign_accumulator_widths():
    """fan-in 70 of bipolar inputs: |acc| <= 70, thresholds clipped to [-70, 71], which 8
    signed bits hold (7 would not: 71 > 63); an accumulator output of 3-bit uint codes over
    fan-in 10: |acc| <= 70 as well."""
    rng = np.random.default_rng(2)
    g = Graph("g", [Input("input", [], TensorType((70,), "bipolar")),
                    dense("fc", "input", testing.random_weights(rng, 3, 70),
                          TensorType((3,), "bipolar"))])
    g["fc"].thresholds = np.array([[-100], [5], [300]])
    assign_accumulator_widths(g)
    assert g["fc"].acc_bits == 8
    assert g["fc"].thresholds[:, 0].tolist() == [-70, 5, 71]
    g = Graph("g", [Input("input", [], TensorType((10,), "uint", 3)),
                    dense("fc", "input", testing.random_weights(rng, 3, 10),
                          TensorType((3,), "int", 2))])
    assign_accumulator_widths(g)
    assert g["fc"].acc_bits == 8 and g["fc"].out == TensorType((3,), "int", 8)


# ----------------------------------------------------------------------------------------
# thresholds.py
# ----------------------------------------------------------------------------------------


def test_fold_sign_into_thresholds_reproduces_the_float_chain():
    """Dense -> BatchNorm (one channel with a negative scale, one with zero) -> sign: the
    thresholded unit (weights of flipped channels negated) gives the float chain's bit for
    every input."""
    rng = np.random.default_rng(3)
    fan_in, ch = 24, 6
    w = testing.random_weights(rng, ch, fan_in)
    gamma = rng.uniform(0.5, 2.0, ch).astype(np.float32)
    gamma[1], gamma[4] = -1.3, 0.0
    bn = BatchNorm("bn", ["fc"], TensorType((ch,), "float"), gamma=gamma,
                   beta=rng.uniform(-3, 3, ch).astype(np.float32),
                   mean=rng.uniform(-5, 5, ch).astype(np.float32),
                   var=rng.uniform(0.5, 4, ch).astype(np.float32))
    g = Graph("g", [Input("input", [], TensorType((fan_in,), "bipolar")),
                    dense("fc", "input", w), bn, Sign("sign", ["bn"], TensorType((ch,), "float"))])
    fold_sign_into_thresholds(g)
    assert [n.name for n in g.nodes] == ["input", "fc"]
    fc = g["fc"]
    assert fc.out.encoding == "bipolar" and fc.thresholds.shape == (ch, 1)
    assert np.array_equal(fc.weights[1], -w[1]) and np.array_equal(fc.weights[0], w[0])
    x = rng.choice([-1, 1], size=(2000, fan_in))
    acc = (x @ w.T).astype(np.float32)
    want = (gamma * (acc - bn.mean) / np.sqrt(bn.var + np.float32(bn.eps)) + bn.beta) >= 0
    got = (x @ fc.weights.T.astype(np.int64)) >= fc.thresholds[:, 0]
    assert np.array_equal(got, want)


def test_fold_sign_through_a_max_pool_turns_flipped_channels_into_min():
    """conv -> max-pool -> scale (channel 1 negative) -> sign: channel 1's pool becomes a min
    over the flipped bits."""
    rng = np.random.default_rng(4)
    g = testing.random_conv_graph(rng, h=4, w=4, c=2, out_ch=3, k=3)
    conv = g.nodes[1]
    conv.thresholds, conv.out = None, TensorType(conv.out.shape, "float")
    shape = (2, 2, 3)
    g.nodes += [MaxPool2D("pool", ["conv"], TensorType(shape, "float")),
                ChannelAffine("scale", ["pool"], TensorType(shape, "float"),
                              mul=np.array([1.0, -1.0, 2.0], np.float32),
                              add=np.array([0.5, 0.5, -1.0], np.float32)),
                Sign("sign", ["scale"], TensorType(shape, "float"))]
    fold_sign_into_thresholds(g)
    assert [n.name for n in g.nodes] == ["input", "conv", "pool"]
    assert g["pool"].min_channels == (1,) and g["pool"].out.encoding == "bipolar"


def test_fold_sign_after_an_average_pool_is_a_majority_vote():
    g = Graph("g", [Input("input", [], TensorType((4, 4, 3), "bipolar")),
                    AvgPool2D("avg", ["input"], TensorType((2, 2, 3), "float")),
                    Reshape("flat", ["avg"], TensorType((12,), "float")),
                    Sign("sign", ["flat"], TensorType((12,), "float"))])
    fold_sign_into_thresholds(g)
    assert [(n.name, type(n)) for n in g.nodes] == [
        ("input", Input), ("avg", MajorityPool2D), ("flat", Reshape)]
    assert g["flat"].out == TensorType((12,), "bipolar") and g["flat"].inputs == ["avg"]
    g["input"].out = TensorType((4, 4, 3), "uint", 2)
    g.nodes[1:] = [AvgPool2D("avg", ["input"], TensorType((2, 2, 3), "float")),
                   Sign("sign", ["avg"], TensorType((2, 2, 3), "float"))]
    with pytest.raises(IRError, match="averages uint values"):
        fold_sign_into_thresholds(g)


def test_remove_redundant_signs():
    g = Graph("g", [Input("input", [], TensorType((8,), "bipolar")),
                    Sign("s1", ["input"], TensorType((8,), "float")),
                    dense("fc", "s1", testing.random_weights(np.random.default_rng(5), 4, 8)),
                    Sign("s2", ["fc"], TensorType((4,), "float"))])
    remove_redundant_signs(g)
    assert [n.name for n in g.nodes] == ["input", "fc", "s2"] and g["fc"].inputs == ["input"]


# ----------------------------------------------------------------------------------------
# structure.py
# ----------------------------------------------------------------------------------------


def conv_with_pad(in_type: TensorType, pad: float) -> Graph:
    rng = np.random.default_rng(6)
    c = in_type.shape[-1]
    conv = Conv2D("conv", ["input"], TensorType((4, 4, 2), "float"),
                  weights=testing.random_weights(rng, 2, 9 * c), kernel=(3, 3),
                  pads=(1, 1, 1, 1), pad=pad)
    return Graph("g", [Input("input", [], in_type), conv])


@pytest.mark.parametrize("in_type, pad, code", [
    (TensorType((4, 4, 2), "bipolar"), 1.0, 1),
    (TensorType((4, 4, 2), "bipolar"), -1.0, 0),
    (TensorType((4, 4, 2), "uint", 3, 0.25), 0.5, 2),
    (TensorType((4, 4, 2), "uint", 3, 0.25), 0.0, "zero"),
])
def test_lower_pad_values(in_type, pad, code):
    assert lower_pad_values(conv_with_pad(in_type, pad))["conv"].pad == code


@pytest.mark.parametrize("in_type, pad, match", [
    (TensorType((4, 4, 2), "uint", 3, 0.25), 0.3, "not on its input.s grid"),
    (TensorType((4, 4, 2), "uint", 3, 0.25), 2.0, "not on its input.s grid"),  # code 8 > 7
    (TensorType((4, 4, 2), "bipolar"), 0.5, "pad value 0.5 on a bipolar input"),
])
def test_lower_pad_values_refuses(in_type, pad, match):
    with pytest.raises(IRError, match=match):
        lower_pad_values(conv_with_pad(in_type, pad))


def test_assign_folding():
    g = testing.random_dense_graph(np.random.default_rng(7), fan_in=40, out_ch=8)
    assign_folding(g, {"dense": (4, 5)})
    assert (g["dense"].pe, g["dense"].simd) == (4, 5)
    with pytest.raises(IRError, match="SIMD=3 does not divide"):
        assign_folding(g, {"dense": (2, 3)})
    assert (g["dense"].pe, g["dense"].simd) == (4, 5)  # unchanged by a refused folding


def test_propagate_types():
    g = testing.random_conv_graph(np.random.default_rng(8), h=4, w=4, c=2, out_ch=2, k=3,
                                  pool=True)
    conv, pool = g.nodes[1], g.nodes[2]
    conv.out = TensorType(conv.out.shape, "uint", 2)
    pool.out = TensorType(pool.out.shape, "float")
    g.nodes.append(Reshape("flat", [pool.name], TensorType((pool.out.size,), "float")))
    propagate_types(g)
    assert pool.out == TensorType(pool.out.shape, "uint", 2)
    assert g["flat"].out == TensorType((pool.out.size,), "uint", 2)


def test_check_hardware_graph_names_the_broken_node():
    rng = np.random.default_rng(9)
    g = testing.random_dense_graph(rng, fan_in=40, out_ch=8, pe=2, simd=4)
    assert check_hardware_graph(g) is g
    node = g["dense"]
    node.acc_bits = 6   # 2^5 = 32 <= 40
    with pytest.raises(IRError, match=r"node 'dense' \(dense\): accumulator width 6"):
        check_hardware_graph(g)
    node.acc_bits = 7
    node.thresholds = np.array([[3, 1]] * 8)
    with pytest.raises(IRError, match="thresholds not ascending"):
        check_hardware_graph(g)
    g = Graph("g", [Input("input", [], TensorType((4, 4, 2), "bipolar")),
                    AvgPool2D("avg", ["input"], TensorType((2, 2, 2), "float"))])
    with pytest.raises(IRError, match=r"node 'avg' \(avgpool2d\): an average pool"):
        check_hardware_graph(g)


def test_lower_to_hardware_runs_the_passes_in_order():
    rng = np.random.default_rng(10)
    g = Graph("g", [float_input((8,)), Sign("sign", ["input"], TensorType((8,), "float")),
                    dense("fc", "sign", testing.random_weights(rng, 4, 8))])
    g = lower_to_hardware(g)
    assert g.meta["passes"][:2] == ["fold_input_sign", "set_input_format"]
    assert g.meta["passes"][-1] == "check_hardware_graph"
    assert g.input.out.encoding == "bipolar" and g["fc"].acc_bits == 5
