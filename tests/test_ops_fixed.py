"""The fixed-point ops (bnn2fpga.ops: add, concat, fixed_affine, threshold, fixed_avgpool)
and their arithmetic (bnn2fpga.fixed), each against an independent float formula."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bnn2fpga import fixed
from bnn2fpga.ir import (
    Add,
    Concat,
    Dense,
    FixedAffine,
    FixedAvgPool,
    Graph,
    Input,
    IRError,
    TensorType,
    Threshold,
    graph_from_json,
    graph_to_json,
    graphs_equal,
)
from bnn2fpga.ops import op_type
from bnn2fpga.reference import execute

RNG = np.random.default_rng(7)


def codes(t: TensorType, n: int = 5) -> np.ndarray:
    lo, hi = t.code_range()
    return RNG.integers(lo, hi + 1, size=(n,) + t.shape)


def test_round_shift_is_round_half_up_and_exact_left():
    v = np.arange(-40, 41)
    for s in range(0, 5):
        want = np.floor(v / 2.0**s + 0.5).astype(np.int64)
        assert np.array_equal(fixed.round_shift(v, s), want)
    assert np.array_equal(fixed.round_shift(v, -3), v * 8)


def test_saturate_counts_inside_counting_block():
    t = TensorType.fixed((4,), 4, 1)          # codes -8..7
    with fixed.counting() as sat:
        y = fixed.saturate(np.array([-9, -8, 7, 30]), t, "n")
    assert y.tolist() == [-8, -8, 7, 7]
    assert sat.counts == {"n": 2} and sat.totals == {"n": 4}


def test_format_for_holds_the_range():
    for m in (0.0, 0.3, 1.0, 1.5, 7.99, 8.0, 100.0):
        t = fixed.format_for((3,), m, frac=4)
        lo, hi = t.code_range()
        assert hi * t.step >= m and lo * t.step <= -m
        smaller = TensorType.fixed((3,), max(2, t.bits - 1), 4) if t.bits - 1 > 4 else None
        if smaller is not None:
            assert smaller.code_range()[1] * smaller.step < m


def test_add_aligns_formats_and_rounds_once():
    a_t, b_t = TensorType.fixed((2, 2, 3), 8, 3), TensorType.fixed((2, 2, 3), 6, 5)
    out = TensorType.fixed((2, 2, 3), 9, 2)
    node = Add("add", ["a", "b"], out)
    a, b = codes(a_t), codes(b_t)
    got = op_type(node).run_on(node, [a_t, b_t], [a, b])
    real = a * 2.0**-3 + b * 2.0**-5
    want = np.clip(np.floor(real * 4 + 0.5), *out.code_range())
    assert np.array_equal(got, want)
    op_type(node).check_on(node, [a_t, b_t])
    with pytest.raises(IRError, match="input shapes differ"):
        op_type(node).check_on(node, [a_t, b_t.with_shape((2, 2, 4))])


def test_add_of_an_accumulator_counts_it_as_integer():
    a_t, b_t = TensorType((4,), "int", 6), TensorType.fixed((4,), 6, 2)
    out = TensorType.fixed((4,), 10, 1)
    node = Add("add", ["a", "b"], out)
    a, b = codes(a_t), codes(b_t)
    got = op_type(node).run_on(node, [a_t, b_t], [a, b])
    want = np.floor((a + b / 4.0) * 2 + 0.5)
    assert np.array_equal(got, want)


def test_fixed_affine_is_prelu_then_affine():
    src = TensorType.fixed((3, 3, 4), 8, 4)
    out = TensorType.fixed((3, 3, 4), 8, 3)
    mp, mn = np.array([16, 8, -5, 3]), np.array([4, 0, 7, -2])
    ai, ao = np.array([3, -7, 0, 1]), np.array([100, -3, 0, 9])
    node = FixedAffine("aff", ["x"], out, mul_pos=mp, mul_neg=mn, add_in=ai, add_out=ao,
                       shift=5, mul_bits=6)
    x = codes(src)
    got = op_type(node).run_on(node, [src], [x])
    u = x + ai
    p = u * np.where(u >= 0, mp, mn) + ao
    want = np.clip(np.floor(p / 32.0 + 0.5), *out.code_range())
    assert np.array_equal(got, want)
    op_type(node).check_on(node, [src])
    bad = FixedAffine("aff", ["x"], out, mul_pos=mp * 4, mul_neg=mn, add_in=ai, add_out=ao,
                      shift=5, mul_bits=6)
    with pytest.raises(IRError, match="6-bit signed range"):
        op_type(bad).check_on(bad, [src])


def test_threshold_counts_and_negates():
    src = TensorType.fixed((5, 3), 7, 2)
    t = np.array([[-3, 0, 4], [0, 0, 0], [10, 11, 12]])
    node = Threshold("thr", ["x"], TensorType((5, 3), "uint", 2), thresholds=t,
                     negate_channels=(1,))
    x = codes(src)
    got = op_type(node).run_on(node, [src], [x])
    xs = x.copy()
    xs[..., 1] *= -1
    want = sum((xs >= t[:, j]).astype(int) for j in range(3))
    assert np.array_equal(got, want)
    assert op_type(node).infer_on(node, [src]) == TensorType((5, 3), "uint", 2)
    sign = Threshold("s", ["x"], TensorType((5, 3), "bipolar"), thresholds=t[:, :1])
    assert op_type(sign).infer_on(sign, [src]).encoding == "bipolar"


def test_avgpool_and_global_pool_against_float_means():
    src = TensorType.fixed((4, 6, 2), 8, 3)
    x = codes(src)
    out = TensorType.fixed((2, 3, 2), 10, 4)
    # mean of 4 taps at frac 3 -> frac 4: sum * 2^(4-3) / 4 = sum * 8 >> 4
    node = FixedAvgPool("p", ["x"], out, kernel=(2, 2), stride=(2, 2), mul=8, shift=4)
    got = op_type(node).run_on(node, [src], [x])
    mean = x.reshape(5, 2, 2, 3, 2, 2).mean(axis=(2, 4)) * 2.0**-3
    assert np.array_equal(got, np.floor(mean * 16 + 0.5))
    g = FixedAvgPool("g", ["x"], TensorType.fixed((2,), 10, 3), kernel=(4, 6), stride=(1, 1),
                     mul=683, shift=14, global_pool=True)   # 683 / 2^14 ~ 1 / 24
    got = op_type(g).run_on(g, [src], [x])
    want = np.floor(x.sum(axis=(1, 2)) * 683 / 2.0**14 + 0.5)
    assert np.array_equal(got, want)
    assert np.abs(got - x.mean(axis=(1, 2))).max() <= 1


def test_concat_and_multibit_dense():
    a_t, b_t = TensorType.fixed((2, 2, 3), 6, 2), TensorType.fixed((2, 2, 1), 6, 2)
    node = Concat("c", ["a", "b"], TensorType.fixed((2, 2, 4), 6, 2))
    a, b = codes(a_t), codes(b_t)
    assert np.array_equal(op_type(node).run_on(node, [a_t, b_t], [a, b])[..., 3], b[..., 0])
    with pytest.raises(IRError, match="different types"):
        op_type(node).check_on(node, [a_t, TensorType.fixed((2, 2, 1), 6, 3)])
    src = TensorType.fixed((12,), 8, 4)
    w = RNG.integers(-8, 8, size=(5, 12)).astype(np.int8)
    d = Dense("d", ["x"], TensorType((5,), "int", 16), weights=w, weight_bits=4,
              output_affine=(np.ones(5), np.zeros(5)), acc_bits=16)
    x = codes(src)
    assert np.array_equal(op_type(d).run_on(d, [src], [x]), x @ w.T.astype(np.int64))
    op_type(d).check_on(d, [src])


def test_reference_runs_a_residual_dag_and_counts_saturation():
    """x -> affine -> add(x, affine(x)) -> threshold: the reference walks the DAG."""
    t = TensorType.fixed((3, 3, 2), 6, 2)
    ones, zeros = np.ones(2, np.int64), np.zeros(2, np.int64)
    nodes = [Input("input", [], t),
             FixedAffine("branch", ["input"], t, mul_pos=3 * ones, mul_neg=ones,
                         add_in=zeros, add_out=zeros, shift=1, mul_bits=4),
             Add("sum", ["input", "branch"], TensorType.fixed((3, 3, 2), 6, 2)),
             Threshold("sign", ["sum"], TensorType((3, 3, 2), "bipolar"),
                       thresholds=np.zeros((2, 1), np.int64))]
    g = Graph("res", nodes)
    x = codes(t, 50)
    sat = fixed.Saturation()
    vals = execute(g, x, sat)
    br = np.clip(np.floor(x * np.where(x >= 0, 3, 1) / 2 + 0.5), -32, 31)
    s = x + br
    assert np.array_equal(vals["sum"], np.clip(s, -32, 31))
    assert np.array_equal(vals["sign"], (np.clip(s, -32, 31) >= 0).astype(int))
    assert sat.counts["sum"] == int(((s < -32) | (s > 31)).sum()) > 0
    assert graphs_equal(g, graph_from_json(graph_to_json(g)))
    assert math.isclose(t.step, 0.25)


def test_threshold_and_affine_read_unsigned_codes():
    """uint codes (a model quantizer's k - lo) are read as they are, zero-extended: codes
    with the top bit set are large, not negative (IN_SIGNED = 0 for both units)."""
    from bnn2fpga.ops.fixed_affine import affine_params
    from bnn2fpga.ops.threshold import threshold_params

    src = TensorType((6, 2), "uint", 4, 0.5, -4.0)
    x = np.tile(np.arange(16)[:, None], (1, 2))
    t = np.array([[3, 8, 12], [-5, 0, 9]])
    thr = Threshold("thr", ["x"], TensorType((6, 2), "uint", 2), thresholds=t,
                    negate_channels=(1,))
    op_type(thr).check_on(thr, [src])
    got = op_type(thr).run_on(thr, [src], [x])
    assert np.array_equal(got[:, 0], (x[:, :1] >= t[0]).sum(-1))
    assert np.array_equal(got[:, 1], (-x[:, 1:] >= t[1]).sum(-1))
    assert threshold_params(thr, src)["IN_SIGNED"] == 0
    # identity to fixed point: (k - 8) * 1/2 with frac 1 is the code k - 8
    aff = FixedAffine("aff", ["x"], TensorType.fixed((6, 2), 5, 1),
                      mul_pos=np.ones(2, np.int64), mul_neg=np.ones(2, np.int64),
                      add_in=np.full(2, -8), add_out=np.zeros(2, np.int64), mul_bits=2)
    op_type(aff).check_on(aff, [src])
    assert np.array_equal(op_type(aff).run_on(aff, [src], [x]), x - 8)
    p = affine_params(aff, src)
    assert p["IN_SIGNED"] == 0 and p["UW"] >= 5
    assert affine_params(aff, TensorType.fixed((6, 2), 4, 0))["IN_SIGNED"] == 1
