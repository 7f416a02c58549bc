"""Concat: channel concatenation of tensors of one type (``ir.Concat``)."""

from __future__ import annotations

import dataclasses

import numpy as np

from bnn2fpga.ir import Concat, IRError, TensorType
from bnn2fpga.ops import Cycles, OpType, out_pixels
from bnn2fpga.ops.realvalued import join_arity


def run(node: Concat, ins: list[TensorType], values: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.asarray(v, np.int64) for v in values], axis=-1)


def _kind(t: TensorType) -> tuple:
    return (t.encoding, t.bits, t.frac, t.scale, t.offset)


def check(node: Concat, ins: list[TensorType]) -> None:
    if len({_kind(t) for t in ins}) != 1:
        raise IRError(f"node {node.name!r} (concat): its inputs have different types "
                      f"{[_kind(t) for t in ins]}; the format pass aligns them first")
    if len({t.shape[:-1] for t in ins}) != 1:
        raise IRError(f"node {node.name!r} (concat): input shapes {[t.shape for t in ins]} "
                      "differ outside the channel axis")
    if node.out != infer(node, ins):
        raise IRError(f"node {node.name!r} (concat): output type {node.out} != "
                      f"{infer(node, ins)}")


def infer(node: Concat, ins: list[TensorType]) -> TensorType:
    shape = ins[0].shape[:-1] + (sum(t.channels for t in ins),)
    return dataclasses.replace(ins[0], shape=shape)


def lower(b, node: Concat, streams) -> None:
    """Beat format: one whole pixel per beat on every port.  Input k is converted to its
    C_k channels per beat; the ``concat`` unit reads one beat of each input and writes
    their concatenation (input 0 in the low lanes), one output pixel per cycle."""
    from bnn2fpga.ops.dense import elem_bits

    srcs, ins = streams
    join_arity(node)
    eb = elem_bits(ins[0])
    srcs = [b.converted(s, t.channels, node.name, t.size) for s, t in zip(srcs, ins,
                                                                           strict=True)]
    params = {f"W{k}": t.channels * eb for k, t in enumerate(ins)}
    b.add_join("concat", node.name, params, srcs, node.out.channels, eb, out_pixels(node),
               signed=ins[0].is_signed)


def cycles(node: Concat, in_shape: tuple[int, ...]) -> Cycles:
    """One output pixel per cycle."""
    return Cycles(out_pixels(node), out_pixels(node))


OP = OpType("concat", check=check, infer=infer, run=run, cycles=cycles,
            first_lanes=lambda node, fold: 1, lower=lower, arity=0)
