"""Property tests on random small layers: bit packing, threshold folding and padding, each
against a float implementation of the same layer."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bnn2fpga import packing, reference
from bnn2fpga.ir import (
    AvgPool2D,
    BatchNorm,
    ChannelAffine,
    Conv2D,
    Dense,
    Graph,
    Input,
    MaxPool2D,
    Sign,
    TensorType,
    conv_out_size,
    same_pads,
)
from bnn2fpga.passes import lower_to_hardware
from bnn2fpga.passes.thresholds import threshold_channels

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
seeds = st.integers(0, 2**32 - 1)

# ----------------------------------------------------------------------------------------
# packing
# ----------------------------------------------------------------------------------------


@SETTINGS
@given(st.lists(st.booleans(), min_size=1, max_size=300))
def test_pack_words_bit_i_is_element_i(bits):
    b = np.array(bits, dtype=np.uint8)
    words = packing.pack_words(b)
    for i, bit in enumerate(bits):
        assert (int(words[i // 64]) >> (i % 64)) & 1 == bit
    assert int(packing.popcount(words).sum()) == sum(bits)
    assert packing.pack_bits_hex(b) == format(packing.bits_to_int(b), "x").zfill(
        len(packing.pack_bits_hex(b)))
    assert np.array_equal(packing.unpack_bits_hex(packing.pack_bits_hex(b), len(bits)), b)


@SETTINGS
@given(st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=20))
def test_popcount_matches_python(values):
    words = np.array(values, dtype=np.uint64)
    assert packing.popcount(words).tolist() == [bin(v).count("1") for v in values]


@SETTINGS
@given(seeds, st.sampled_from([(1, 1), (2, 3), (4, 8), (8, 1)]), st.integers(1, 4),
       st.integers(1, 4))
def test_weight_memory_layout(seed, fold, nf, sf):
    pe, simd = fold
    rng = np.random.default_rng(seed)
    w = (2 * rng.integers(0, 2, (pe * nf, simd * sf)) - 1).astype(np.int8)
    mem = packing.weight_memory(w, pe, simd)
    assert mem.shape == (pe, nf * sf, simd)
    for row in range(pe * nf):
        for col in range(simd * sf):
            word = (row // pe) * sf + col // simd
            assert mem[row % pe, word, col % simd] == (w[row, col] > 0)


# ----------------------------------------------------------------------------------------
# float implementations of the same layers
# ----------------------------------------------------------------------------------------


def bn_float32(x: np.ndarray, bn: BatchNorm) -> np.ndarray:
    """Keras's non-fused BatchNorm inference in float32: x * s + (beta - mean * s)."""
    s = ((np.float32(1) / np.sqrt(bn.var + np.float32(bn.eps))) * bn.gamma).astype(np.float32)
    return (x * s + (bn.beta - bn.mean * s)).astype(np.float32)


def float_conv(x: np.ndarray, w: np.ndarray, k: int, stride: int, pads, pad_value: float
               ) -> np.ndarray:
    """Direct float convolution (N, H, W, C) x (O, k, k, C) with explicit padding."""
    n, h, wd, c = x.shape
    top, bottom, left, right = pads
    xp = np.full((n, h + top + bottom, wd + left + right, c), pad_value, dtype=np.float64)
    xp[:, top:top + h, left:left + wd] = x
    oh = conv_out_size(h, k, stride, top, bottom)
    ow = conv_out_size(wd, k, stride, left, right)
    out = np.zeros((n, oh, ow, w.shape[0]))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, i * stride:i * stride + k, j * stride:j * stride + k, :]
            out[:, i, j, :] = patch.reshape(n, -1) @ w.reshape(w.shape[0], -1).T
    return out


def random_bn(rng: np.random.Generator, channels: int, spread: float) -> BatchNorm:
    """BatchNorm with negative, zero and positive scales; crossings inside the range."""
    gamma = rng.normal(size=channels).astype(np.float32)
    gamma[rng.random(channels) < 0.2] = 0.0
    mean = (rng.normal(size=channels) * spread).astype(np.float32)
    return BatchNorm("bn", ["mv"], TensorType((channels,), "float", 32),
                     gamma=gamma, beta=rng.normal(size=channels).astype(np.float32),
                     mean=mean, var=rng.uniform(0.05, 4, channels).astype(np.float32),
                     eps=1e-3)


# ----------------------------------------------------------------------------------------
# threshold folding
# ----------------------------------------------------------------------------------------


@SETTINGS
@given(seeds, st.integers(1, 300), st.integers(1, 12), st.booleans())
def test_threshold_fold_exhaustive_over_accumulator_range(seed, fan_in, channels, bias):
    """For every reachable accumulator value, the folded (T, flip) decides exactly as the
    float32 chain (bias, BatchNorm, sign) does."""
    rng = np.random.default_rng(seed)
    dense = Dense("mv", ["input"], TensorType((channels,), "int", 2),
                  weights=np.ones((channels, fan_in), np.int8))
    bn = random_bn(rng, channels, spread=fan_in / 3)
    ops = [bn]
    b = None
    if bias:
        b = rng.normal(size=channels).astype(np.float32) * 3
        ops = [ChannelAffine("aff", ["mv"], bn.out, add=b), bn]
    sign = Sign("sign", ["bn"], bn.out)
    t, flip = threshold_channels(dense, TensorType((fan_in,), "bipolar"), ops, sign)
    d = np.arange(-fan_in, fan_in + 1)[:, None].repeat(channels, axis=1)
    x = d.astype(np.float32)
    if b is not None:
        x = (x + b).astype(np.float32)
    expected = bn_float32(x, bn) >= 0
    folded = np.where(flip, -d, d) >= t
    assert np.array_equal(folded, expected)
    # and away from ties, the same as exact (float64) arithmetic
    s, sh = bn.scale_shift()
    exact = (d + (0 if b is None else b.astype(np.float64))) * s + sh
    clear = np.abs(exact) > 1e-3
    assert np.array_equal(folded[clear], (exact >= 0)[clear])


@SETTINGS
@given(seeds, st.integers(1, 200), st.integers(1, 9), st.integers(1, 6))
def test_dense_layer_matches_float(seed, fan_in, channels, frames):
    """Bipolar input -> binary dense -> BN -> sign, through all passes, vs float."""
    rng = np.random.default_rng(seed)
    w = (2 * rng.integers(0, 2, (channels, fan_in)) - 1).astype(np.int8)
    bn = random_bn(rng, channels, spread=np.sqrt(fan_in))
    g = Graph("dense", [
        Input("input", [], TensorType((fan_in,), "bipolar")),
        Dense("mv", ["input"], TensorType((channels,), "int", 2), weights=w.copy()),
        bn, Sign("sign", ["bn"], bn.out)])
    hw = lower_to_hardware(g)
    x = (2 * rng.integers(0, 2, (frames, fan_in)) - 1).astype(np.float32)
    expected = np.where(bn_float32((x @ w.T.astype(np.float32)), bn) >= 0, 1.0, -1.0)
    assert np.array_equal(reference.run(hw, x), expected)


# ----------------------------------------------------------------------------------------
# padding, stride, max-pool before BatchNorm
# ----------------------------------------------------------------------------------------

conv_cases = st.fixed_dictionaries({
    "seed": seeds,
    "h": st.integers(1, 7), "w": st.integers(1, 7), "c": st.integers(1, 9),
    "o": st.integers(1, 7), "k": st.sampled_from([1, 2, 3]), "stride": st.sampled_from([1, 2]),
    "padding": st.sampled_from(["same", "valid"]),
    "pad_value": st.sampled_from([0.0, 1.0, -1.0]),
    "encoding": st.sampled_from(["bipolar", "uint"]),
    "pool": st.booleans(),
})


@SETTINGS
@given(conv_cases)
def test_conv_layer_matches_float(case):
    """Conv (pads 0/+1/-1, stride 1/2, same/valid, bipolar or 4-bit input) [-> max-pool]
    -> BN (negative, zero, positive scales) -> sign, through all passes, vs float."""
    rng = np.random.default_rng(case["seed"])
    h, w, c, o, k, stride = (case[key] for key in ("h", "w", "c", "o", "k", "stride"))
    if case["padding"] == "valid" and (k > h or k > w):
        return
    pads = same_pads(h, k, stride) + same_pads(w, k, stride) \
        if case["padding"] == "same" else (0, 0, 0, 0)
    oh, ow = conv_out_size(h, k, stride, pads[0], pads[1]), \
        conv_out_size(w, k, stride, pads[2], pads[3])
    pool = case["pool"] and oh >= 2 and ow >= 2
    bipolar = case["encoding"] == "bipolar"
    pad_value = case["pad_value"] if bipolar else max(case["pad_value"], 0.0)
    weights = (2 * rng.integers(0, 2, (o, k * k * c)) - 1).astype(np.int8)
    scale = 0.25
    in_type = TensorType((h, w, c), "bipolar") if bipolar else \
        TensorType((h, w, c), "uint", 4, scale)
    conv = Conv2D("mv", ["input"], TensorType((oh, ow, o), "int", 2), weights=weights.copy(),
                  kernel=(k, k), stride=(stride, stride), pads=pads,
                  pad="zero" if pad_value == 0.0 else pad_value)
    nodes = [Input("input", [], in_type), conv]
    if pool:
        nodes.append(MaxPool2D("pool", ["mv"], TensorType((oh // 2, ow // 2, o), "float", 32)))
    fan_in = k * k * c * (1 if bipolar else 15)
    bn = random_bn(rng, o, spread=np.sqrt(fan_in) * (1 if bipolar else scale * 4))
    bn.inputs = [nodes[-1].name]
    nodes += [bn, Sign("sign", ["bn"], bn.out)]
    hw = lower_to_hardware(Graph("conv", nodes))

    if bipolar:
        x = (2 * rng.integers(0, 2, (3, h, w, c)) - 1).astype(np.float32)
    else:
        x = (rng.integers(0, 16, (3, h, w, c)) * scale).astype(np.float32)
    acc = float_conv(x.astype(np.float64), weights.reshape(o, k, k, c), k, stride, pads,
                     pad_value).astype(np.float32)
    if pool:
        acc = acc[:, :oh // 2 * 2, :ow // 2 * 2, :]
        acc = acc.reshape(3, oh // 2, 2, ow // 2, 2, o).max(axis=(2, 4))
    expected = np.where(bn_float32(acc, bn) >= 0, 1.0, -1.0)
    assert np.array_equal(reference.run(hw, x), expected)


@SETTINGS
@given(seeds, st.integers(1, 7), st.integers(1, 7), st.integers(1, 5),
       st.sampled_from([1, 2, 3]), st.sampled_from([1, 2, 3]),
       st.sampled_from(["same", "valid"]))
def test_average_pool_then_sign_matches_float(seed, h, w, c, k, stride, padding):
    """avg-pool of ±1 values (Keras: padded positions excluded) then sign == majority pool."""
    if padding == "valid" and (k > h or k > w):
        return
    rng = np.random.default_rng(seed)
    pads = same_pads(h, k, stride) + same_pads(w, k, stride) \
        if padding == "same" else (0, 0, 0, 0)
    oh = conv_out_size(h, k, stride, pads[0], pads[1])
    ow = conv_out_size(w, k, stride, pads[2], pads[3])
    pool = AvgPool2D("avg", ["input"], TensorType((oh, ow, c), "float", 32), kernel=(k, k),
                     stride=(stride, stride), pads=pads)
    g = Graph("avg", [Input("input", [], TensorType((h, w, c), "bipolar")), pool,
                      Sign("sign", ["avg"], pool.out)])
    hw = lower_to_hardware(g)
    assert hw.nodes[-1].op == "majoritypool2d"
    x = (2 * rng.integers(0, 2, (4, h, w, c)) - 1).astype(np.float32)
    top, _, left, _ = pads
    expected = np.zeros((4, oh, ow, c), np.float32)
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * stride - top, j * stride - left
            win = x[:, max(r0, 0):min(r0 + k, h), max(c0, 0):min(c0 + k, w), :]
            avg = win.sum(axis=(1, 2)) / np.float32(win.shape[1] * win.shape[2])
            expected[:, i, j, :] = np.where(avg >= 0, 1.0, -1.0)
    assert np.array_equal(reference.run(hw, x), expected)
