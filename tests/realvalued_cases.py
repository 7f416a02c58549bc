"""Random chains of the single-input real-valued units in the hardware IR, built directly
(no Keras): fixed-point affine (PReLU-like negative slopes), thresholds (negated channels,
several thresholds), multi-bit-weight MVTUs, average pools.  Shared by the RTL and HLS
tests of these units."""

from __future__ import annotations

import numpy as np

from bnn2fpga.ir import (
    Conv2D,
    Dense,
    FixedAffine,
    FixedAvgPool,
    Graph,
    Input,
    Node,
    Reshape,
    TensorType,
    Threshold,
    conv_out_size,
    same_pads,
    signed_bits_for,
)
from bnn2fpga.reference import accumulator_bound
from bnn2fpga.testing import random_thresholds, random_weights


def fixed_input(shape: tuple[int, ...], bits: int = 8, frac: int = 3) -> Input:
    return Input("input", [], TensorType.fixed(shape, bits, frac))


def random_affine(rng: np.random.Generator, name: str, src: Node, pe: int, out_bits: int,
                  mul_bits: int = 6, shift: int = 3) -> FixedAffine:
    """Per-channel affine with PReLU-like slopes, some negative (mul_neg < 0), offsets on
    both sides; the output narrower than the products so that some values saturate."""
    t = src.out
    c = t.channels
    lim = 1 << (mul_bits - 1)
    mul_pos = rng.integers(-lim, lim, c).astype(np.int64)
    mul_neg = rng.integers(-lim, lim, c).astype(np.int64)
    mul_pos[0], mul_neg[0] = lim - 1, -lim          # the extremes
    if c > 1:
        mul_neg[1] = 0                               # ReLU
    lo, hi = t.code_range()
    add_in = rng.integers(lo // 4, hi // 4 + 1, c).astype(np.int64)
    add_out = rng.integers(-(1 << (shift + 4)), 1 << (shift + 4), c).astype(np.int64)
    return FixedAffine(name, [src.name], TensorType.fixed(t.shape, out_bits, 2),
                       mul_pos=mul_pos, mul_neg=mul_neg, add_in=add_in, add_out=add_out,
                       shift=shift, mul_bits=mul_bits, pe=pe)


def random_threshold(rng: np.random.Generator, name: str, src: Node, pe: int, n: int = 1
                     ) -> Threshold:
    t = src.out
    c = t.channels
    lo, hi = t.code_range()
    th = np.sort(rng.integers(lo - 2, hi + 3, (c, n)), axis=1).astype(np.int64)
    neg = tuple(int(i) for i in np.flatnonzero(rng.integers(0, 2, c)))
    out = (TensorType(t.shape, "bipolar") if n == 1
           else TensorType(t.shape, "uint", max(1, n.bit_length())))
    return Threshold(name, [src.name], out, thresholds=th, negate_channels=neg, pe=pe)


def binary_dense(rng: np.random.Generator, name: str, src: Node, out_ch: int, pe: int,
                 simd: int) -> Dense:
    fan_in = src.out.size
    d = Dense(name, [src.name], TensorType((out_ch,), "int", 2),
              weights=random_weights(rng, out_ch, fan_in), pe=pe, simd=simd)
    bound = accumulator_bound(d, src.out)
    d.acc_bits = signed_bits_for(bound + 1)
    d.out = TensorType((out_ch,), "int", d.acc_bits)
    d.output_affine = (np.ones(out_ch), np.zeros(out_ch))
    return d


def int_matvec(rng: np.random.Generator, name: str, src: Node, out_ch: int, pe: int,
               simd: int, weight_bits: int, k: int = 0, stride: int = 1,
               padding: str = "same", threshold: bool = False) -> Dense:
    """A multi-bit-weight Dense (k = 0) or Conv2D (k x k): integer weights over the whole
    signed range (the extremes included), the int accumulator out, or thresholds on it."""
    t = src.out
    if k:
        h, w, c = t.shape
        if padding == "same":
            (pt, pb), (pl, pr) = same_pads(h, k, stride), same_pads(w, k, stride)
        else:
            pt = pb = pl = pr = 0
        oh, ow = conv_out_size(h, k, stride, pt, pb), conv_out_size(w, k, stride, pl, pr)
        fan_in, shape = k * k * c, (oh, ow, out_ch)
    else:
        fan_in, shape = t.size, (out_ch,)
    if weight_bits == 1:
        weights = random_weights(rng, out_ch, fan_in).astype(np.int64)
    else:
        lim = 1 << (weight_bits - 1)
        weights = rng.integers(-lim, lim, (out_ch, fan_in)).astype(np.int64)
        weights[0, 0], weights[-1, -1] = -lim, lim - 1
    common = dict(weights=weights, weight_bits=weight_bits, pe=pe, simd=simd)
    if k:
        d: Dense = Conv2D(name, [src.name], TensorType(shape, "int", 2), kernel=(k, k),
                          stride=(stride, stride), pads=(pt, pb, pl, pr), pad="zero", **common)
    else:
        d = Dense(name, [src.name], TensorType(shape, "int", 2), **common)
    bound = accumulator_bound(d, t)
    d.acc_bits = signed_bits_for(bound + 1)
    if threshold:
        d.thresholds = random_thresholds(rng, out_ch, bound // 8)
        d.out = TensorType(shape, "bipolar")
    else:
        d.out = TensorType(shape, "int", d.acc_bits)
        d.output_affine = (np.ones(out_ch), np.zeros(out_ch))
    return d


def int_conv_chain(rng: np.random.Generator, *, encoding: str = "uint", shape=(5, 5, 3),
                   weight_bits: int = 4, pe: int = 2, simd: int = 3, k: int = 3,
                   stride: int = 1, padding: str = "same", pe_bn: int = 2,
                   pe_sign: int = 4) -> Graph:
    """uint/fixed input -> multi-bit Conv2D (int accumulator) -> FixedAffine (PReLU-like)
    -> Threshold -> flatten -> binary Dense."""
    inp = (Input("input", [], TensorType(shape, "uint", 4, 1.0)) if encoding == "uint"
           else fixed_input(shape, 6, 2))
    conv = int_matvec(rng, "conv", inp, 4, pe, simd, weight_bits, k, stride, padding)
    aff = random_affine(rng, "bn", conv, pe_bn, 8, 6, 6)
    thr = random_threshold(rng, "sign", aff, pe_sign)
    flat = Reshape("flatten", [thr.name], thr.out.with_shape((thr.out.size,)))
    fc = binary_dense(rng, "fc", flat, 4, 2, 4)
    return Graph("int_conv_chain", [inp, conv, aff, thr, flat, fc])


def int_dense_chain(rng: np.random.Generator, *, fan_in: int = 12, weight_bits: int = 8,
                    pe: int = 1, simd: int = 4, threshold: bool = False) -> Graph:
    """fixed input -> FixedAffine -> multi-bit Dense (the float last layer)."""
    inp = fixed_input((fan_in,), 8, 4)
    aff = random_affine(rng, "bn", inp, 3 if fan_in % 3 == 0 else 1, 8, 5, 3)
    fc = int_matvec(rng, "fc", aff, 6, pe, simd, weight_bits, threshold=threshold)
    return Graph("int_dense_chain", [inp, aff, fc])


def global_pool_chain(rng: np.random.Generator, *, shape=(4, 3, 6), pe: int = 2,
                      mul: int = 683, shift: int = 11, weight_bits: int = 6) -> Graph:
    """fixed input -> FixedAffine -> FixedAvgPool (global) -> multi-bit Dense: the end of
    a residual network (GlobalAveragePooling2D, the float last layer)."""
    inp = fixed_input(shape)
    aff = random_affine(rng, "bn", inp, pe, 8, 5, 2)
    c = shape[-1]
    pool = FixedAvgPool("gap", [aff.name], TensorType.fixed((c,), 7, 2),
                        kernel=shape[:2], stride=(1, 1), mul=mul, shift=shift,
                        global_pool=True)
    fc = int_matvec(rng, "fc", pool, 4, 2, 3, weight_bits)
    return Graph("global_pool_chain", [inp, aff, pool, fc])


def window_pool_chain(rng: np.random.Generator, *, shape=(6, 6, 4), pe: int = 2,
                      kernel: int = 2, stride: int = 2, mul: int = 1, shift: int = 2,
                      out_bits: int = 8, tail: bool = False) -> Graph:
    """fixed input -> FixedAffine -> FixedAvgPool (unpadded windows: AveragePooling2D on a
    residual stream) [-> FixedAffine]; ``mul``/``shift`` set 1/(KH*KW) or a saturating
    gain."""
    inp = fixed_input(shape)
    aff = random_affine(rng, "bn", inp, pe, 8, 5, 2)
    h, w, c = shape
    oh, ow = conv_out_size(h, kernel, stride, 0, 0), conv_out_size(w, kernel, stride, 0, 0)
    pool = FixedAvgPool("pool", [aff.name], TensorType.fixed((oh, ow, c), out_bits, 2),
                        kernel=(kernel, kernel), stride=(stride, stride), mul=mul,
                        shift=shift)
    nodes: list[Node] = [inp, aff, pool]
    if tail:
        nodes.append(random_affine(rng, "after", pool, 1, 7, 4, 2))
    return Graph("window_pool_chain", nodes)


def affine_threshold_chain(rng: np.random.Generator, *, shape=(3, 4, 6), pe_a: int = 2,
                           pe_t: int = 3, n: int = 1, out_bits: int = 6,
                           tail: str = "none", shift: int = 3, mul_bits: int = 6) -> Graph:
    """fixed input -> FixedAffine -> Threshold [-> binary Dense]; ``tail`` "affine" ends at
    the affine (a signed output stream)."""
    inp = fixed_input(shape)
    aff = random_affine(rng, "affine", inp, pe_a, out_bits, mul_bits, shift)
    nodes: list[Node] = [inp, aff]
    if tail == "affine":
        return Graph("affine_chain", nodes)
    thr = random_threshold(rng, "sign", aff, pe_t, n)
    nodes.append(thr)
    if tail == "dense":
        flat = Reshape("flatten", [thr.name], thr.out.with_shape((thr.out.size,)))
        nodes += [flat, binary_dense(rng, "fc", flat, 4, 2, 6)]
    return Graph("affine_threshold", nodes)


def uint_codes_chain(rng: np.random.Generator, *, shape=(3, 4, 6), bits: int = 5,
                     pe_t: int = 2, pe_a: int = 3, pe_s: int = 1, n: int = 7,
                     requant: bool = True) -> Graph:
    """uint input codes (a model quantizer's k - lo, top bit set on half of them: read
    zero-extended, IN_SIGNED = 0) [-> Threshold of n thresholds (uint codes again)] ->
    FixedAffine on those unsigned codes -> Threshold on its fixed output."""
    inp = Input("input", [], TensorType(shape, "uint", bits, 0.5, -4.0))
    nodes: list[Node] = [inp]
    if requant:
        nodes.append(random_threshold(rng, "requant", inp, pe_t, n))
    aff = random_affine(rng, "to_fixed", nodes[-1], pe_a, 7, 5, 1)
    nodes += [aff, random_threshold(rng, "sign", aff, pe_s)]
    return Graph("uint_codes", nodes)


def cases() -> dict[str, Graph]:
    def rng(seed: int) -> np.random.Generator:
        return np.random.default_rng(5000 + seed)

    return {
        "affine_only_p1": affine_threshold_chain(rng(1), pe_a=1, tail="affine"),
        "affine_full_s0": affine_threshold_chain(rng(2), pe_a=6, tail="affine", shift=0,
                                                 mul_bits=2),
        "affine_wide_mul": affine_threshold_chain(rng(3), pe_a=3, tail="affine",
                                                  mul_bits=12, shift=7, out_bits=10),
        "affine_sign": affine_threshold_chain(rng(4), pe_a=2, pe_t=3),
        "affine_thr3": affine_threshold_chain(rng(5), pe_a=6, pe_t=1, n=3),
        "affine_sign_down": affine_threshold_chain(rng(7), pe_a=3, pe_t=2),
        "int_conv_uint_w4": int_conv_chain(rng(8)),
        "int_conv_fixed_w3_s2": int_conv_chain(rng(9), encoding="fixed", weight_bits=3,
                                               pe=4, simd=1, stride=2),
        "int_conv_fixed_w8_valid": int_conv_chain(rng(10), encoding="fixed", weight_bits=8,
                                                  pe=1, simd=3, padding="valid"),
        "int_pointwise_w2": int_conv_chain(rng(11), weight_bits=2, pe=4, simd=3, k=1),
        "int_dense_w8": int_dense_chain(rng(12)),
        "int_dense_w1_signed": int_dense_chain(rng(13), weight_bits=1, pe=3, simd=12),
        "int_dense_w5_thr": int_dense_chain(rng(14), weight_bits=5, pe=2, simd=6,
                                            threshold=True),
        "gap_p2": global_pool_chain(rng(15)),
        "gap_p3_saturating": global_pool_chain(rng(16), pe=3, mul=3000, shift=9,
                                               weight_bits=2),
        "gap_p6_noshift": global_pool_chain(rng(17), shape=(2, 2, 6), pe=6, mul=1,
                                            shift=0),
        "pool2_s2": window_pool_chain(rng(18)),
        "pool3_s1_tail": window_pool_chain(rng(19), shape=(5, 4, 3), pe=3, kernel=3,
                                           stride=1, mul=57, shift=9, tail=True),
        "pool2_s2_odd_saturating": window_pool_chain(rng(20), shape=(5, 7, 2), pe=1,
                                                     mul=700, shift=9, out_bits=6),
        "pool3_s2": window_pool_chain(rng(21), shape=(7, 7, 4), pe=4, kernel=3, stride=2,
                                      mul=455, shift=12),
        "affine_sign_dense": affine_threshold_chain(rng(6), pe_a=3, pe_t=2, tail="dense"),
        "uint_requant_affine": uint_codes_chain(rng(22)),
        "uint_affine_p6": uint_codes_chain(rng(23), bits=4, pe_a=6, requant=False),
    }
