"""Joins of more than two tensors become chains of two-input joins, the arity of the
hardware's join units (``ops.realvalued.MAX_JOIN_INPUTS``).

An n-input ``Add`` sums its inputs exactly at the largest fraction width and rounds once;
the chain keeps that: every partial sum is an exact fixed-point tensor (the largest
fraction width of what it sums, one integer bit more than the widest of them), and only
the last add, which keeps the node's name and format, rounds and saturates.  A
``Concat`` splits without arithmetic.  So the reference's results do not change.
"""

from __future__ import annotations

from bnn2fpga.ir import Add, Concat, Graph, Node, TensorType
from bnn2fpga.ops.dense import elem_bits
from bnn2fpga.ops.realvalued import MAX_JOIN_INPUTS, frac_of


def exact_sum_type(a: TensorType, b: TensorType) -> TensorType:
    """The fixed-point format that holds every sum of a code of ``a`` and one of ``b``."""
    frac = max(frac_of(a), frac_of(b))
    ints = max(elem_bits(a) - frac_of(a), elem_bits(b) - frac_of(b)) + 1
    return TensorType.fixed(a.shape, ints + frac, frac)


def split_wide_joins(graph: Graph) -> Graph:
    """Every ``Add``/``Concat`` of more than two inputs -> a left-leaning chain of
    two-input nodes named ``<node>/join<k>``; the last keeps the node's name."""
    types = {n.name: n.out for n in graph.nodes}
    nodes: list[Node] = []
    for node in graph.nodes:
        if not isinstance(node, (Add, Concat)) or len(node.inputs) <= MAX_JOIN_INPUTS:
            nodes.append(node)
            continue
        first, *rest = node.inputs
        for k, src in enumerate(rest[:-1], 1):
            a, b = types[first], types[src]
            if isinstance(node, Add):
                part: Node = Add(f"{node.name}/join{k}", [first, src], exact_sum_type(a, b),
                                 pe=node.pe)
            else:
                shape = (*a.shape[:-1], a.shape[-1] + b.shape[-1])
                part = Concat(f"{node.name}/join{k}", [first, src], a.with_shape(shape))
            nodes.append(part)
            types[part.name] = part.out
            first = part.name
        node.inputs = [first, rest[-1]]
        nodes.append(node)
    graph.nodes = nodes
    return graph
