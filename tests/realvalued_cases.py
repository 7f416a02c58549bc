"""Random chains of the single-input real-valued units in the hardware IR, built directly
(no Keras): fixed-point affine (PReLU-like negative slopes), thresholds (negated channels,
several thresholds), multi-bit-weight MVTUs, average pools.  Shared by the RTL and HLS
tests of these units."""

from __future__ import annotations

import numpy as np

from bnn2fpga.ir import (
    Dense,
    FixedAffine,
    Graph,
    Input,
    Node,
    Reshape,
    TensorType,
    Threshold,
    signed_bits_for,
)
from bnn2fpga.reference import accumulator_bound
from bnn2fpga.testing import random_weights


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
        "affine_sign_dense": affine_threshold_chain(rng(6), pe_a=3, pe_t=2, tail="dense"),
    }
