"""The op registry (bnn2fpga.ops): every hardware node class has one op, and each op's
pieces agree with each other on random layers (kernel shape, type, cycles, lowering)."""

from __future__ import annotations

import numpy as np
import pytest

from bnn2fpga import ir, testing
from bnn2fpga.ops import OPS, op_type
from bnn2fpga.plan import build_plan


def test_every_hardware_node_class_has_one_op() -> None:
    classes = {cls.op for cls in ir._NODE_TYPES.values() if cls.hardware and cls is not ir.Input}
    assert classes == set(OPS)
    assert all(OPS[name].op == name for name in OPS)


def _graphs() -> list[ir.Graph]:
    rng = np.random.default_rng(11)
    return [testing.random_cnn_graph(rng), testing.random_conv_graph(rng, pool=True),
            testing.random_dense_graph(rng), *(testing.random_geometry_conv_graph(rng)
                                               for _ in range(6))]


@pytest.mark.parametrize("graph", _graphs(), ids=lambda g: g.name)
def test_each_op_agrees_with_itself(graph: ir.Graph) -> None:
    """Kernel output has the node's shape and its codes fit the node's type; the inferred
    type (where the op infers one) is the node's; the cycles bound its units' beats."""
    codes = testing.random_input_codes(np.random.default_rng(0), graph, 3)
    values = {graph.input.name: codes}
    plan = build_plan(graph)
    for node in graph.nodes[1:]:
        op = op_type(node)
        src = graph.producer(node).out
        op.check(node, src)
        out = op.run(node, src, values[node.inputs[0]])
        assert out.shape == (3, *node.out.shape), node.name
        if node.out.encoding != "int":
            lo, hi = node.out.code_range()
            assert out.min() >= lo and out.max() <= hi, node.name
        if op.infer is not None:
            assert op.infer(node, src) == node.out, node.name
        cycles = op.cycles(node, src.shape)
        assert cycles.expected <= cycles.worst
        # none of the op's own units moves more beats per frame than its cycles allow (a
        # width converter in front runs at its producer's rate)
        for unit in plan.layer_units(node.name):
            if unit.kind == "dwc":
                continue
            assert max(unit.in_beats, unit.out_beats) <= max(cycles.worst, 1), unit.name
        values[node.name] = out
