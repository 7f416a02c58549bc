"""IR ops: one module per hardware op of the IR, holding what every tool knows of it.

An op module defines one ``OpType`` (FINN's ``CustomOp`` is the model): its invariants
(``check``), its output type (``infer``), its reference kernel (``run``), its cycle formula
(``cycles``, worst case and expected), its legal foldings where it has PE/SIMD, and its
lowering to hardware units (``lower``: the units it appends to the plan being built,
``first_lanes``: what its first unit consumes per beat).  The IR node dataclasses stay in
``bnn2fpga.ir`` (the data); ``OPS`` maps ``Node.op`` to the behaviour.  Adding an op is a
new module here, one line in ``_MODULES``, and its node class in ``ir.py``.

The reference (``bnn2fpga.reference``), the cycle model (``bnn2fpga.folding``), the plan
(``bnn2fpga.plan``) and the invariant check (``passes.check_hardware_graph``) dispatch
through ``op_type``; none has an ``isinstance`` chain of its own.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from bnn2fpga.ir import IRError, Node, TensorType

Folding = dict[str, tuple[int, int]]
FIFO_DEPTH = 2           # the FIFO behind every layer (>= 2: one beat per cycle)


@dataclass(frozen=True)
class Cycles:
    """Cycles per frame of a unit in steady state: ``worst`` bounds every frame; ``expected``
    is the mean over the data (equal to ``worst`` for units whose time does not depend on
    the data, as every unit's today)."""

    worst: int
    expected: int


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def out_pixels(node: Node) -> int:
    shape = node.out.shape
    return shape[0] * shape[1] if len(shape) == 3 else 1


@dataclass(frozen=True)
class OpType:
    """What the tools know of one hardware op.

    A single-input op (``arity`` 1) takes its input's type as ``TensorType`` and its codes
    as one array; an op of several inputs (``arity`` 0: two or more) takes a list of each,
    in ``Node.inputs`` order.  Callers go through ``check_on``/``infer_on``/``run_on``,
    which take lists either way."""

    op: str                                                   # Node.op
    check: Callable[[Node, Any], None]                        # raise IRError naming the node
    infer: Callable[[Node, Any], TensorType] | None           # None: set by the passes
    run: Callable[[Node, Any, Any], np.ndarray]
    cycles: Callable[[Node, tuple[int, ...]], Cycles]
    # lanes per beat its first unit consumes at folding ``fold``; None: it has no unit and
    # passes its input stream on (Reshape)
    first_lanes: Callable[[Node, Folding], int] | None
    lower: Callable[[Any, Node, Any], None]                   # (plan builder, node, input)
    arity: int = 1

    def _args(self, node: Node, items: list[Any]) -> Any:
        if self.arity == 1:
            if len(items) != 1:
                raise IRError(f"node {node.name!r} ({node.op}) takes one input, got "
                              f"{len(items)}")
            return items[0]
        if len(items) < 2:
            raise IRError(f"node {node.name!r} ({node.op}) takes two or more inputs, got "
                          f"{len(items)}")
        return list(items)

    def check_on(self, node: Node, ins: list[TensorType]) -> None:
        self.check(node, self._args(node, ins))

    def infer_on(self, node: Node, ins: list[TensorType]) -> TensorType | None:
        return None if self.infer is None else self.infer(node, self._args(node, ins))

    def run_on(self, node: Node, ins: list[TensorType], values: list[np.ndarray]
               ) -> np.ndarray:
        return self.run(node, self._args(node, ins), self._args(node, values))


# op name -> module of bnn2fpga.ops
_MODULES = {"dense": "dense", "conv2d": "conv2d", "maxpool2d": "maxpool",
            "majoritypool2d": "majority_pool", "reshape": "reshape", "add": "add",
            "concat": "concat", "fixed_affine": "fixed_affine", "threshold": "threshold",
            "fixed_avgpool": "fixed_avgpool", "thermometer": "thermometer",
            "pgconv2d": "pgconv2d"}

OPS: dict[str, OpType] = {
    op: importlib.import_module(f"bnn2fpga.ops.{mod}").OP for op, mod in _MODULES.items()}


def op_type(node: Node) -> OpType:
    """The behaviour of a hardware node; an IRError naming it for anything else."""
    try:
        return OPS[node.op]
    except KeyError:
        raise IRError(f"node {node.name!r} ({node.op}) is not a hardware op (known: "
                      f"{sorted(OPS)}); run the passes so that only hardware nodes "
                      "remain") from None
