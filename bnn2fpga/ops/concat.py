"""Concat: channel concatenation of tensors of one type (``ir.Concat``)."""

from __future__ import annotations

import dataclasses

import numpy as np

from bnn2fpga.ir import Concat, IRError, TensorType
from bnn2fpga.ops import OpType
from bnn2fpga.ops.realvalued import elementwise_cycles, no_unit_yet


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


OP = OpType("concat", check=check, infer=infer, run=run,
            cycles=lambda node, in_shape: elementwise_cycles(node, in_shape),
            first_lanes=lambda node, fold: 1, lower=no_unit_yet, arity=0)
