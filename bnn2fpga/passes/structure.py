"""Passes over the graph's structure: pad codes, folding, and the final invariant check."""

from __future__ import annotations

from bnn2fpga.folding import default_folding, folding_error, refresh_gate_density
from bnn2fpga.ir import (
    AvgPool2D,
    BatchNorm,
    ChannelAffine,
    Conv2D,
    Graph,
    IRError,
    Sign,
    TensorType,
)
from bnn2fpga.ops import op_type


def lower_pad_values(graph: Graph) -> Graph:
    """A real pad value (Larq ``pad_values``) becomes the input tensor's code for it."""
    for node in graph.matvec_nodes():
        if not isinstance(node, Conv2D) or not isinstance(node.pad, float):
            continue
        t = graph.producer(node).out
        value = node.pad
        if t.encoding == "bipolar" and value in (1.0, -1.0):
            node.pad = int(value > 0)
        elif t.encoding == "uint":
            k = (value - t.offset) / t.scale
            if k != int(k) or not 0 <= k < (1 << t.bits):
                raise IRError(f"layer {node.name!r}: pad value {value} is not on its input's "
                              f"grid ({t.offset} + {t.scale!r} * k, 0 <= k < {1 << t.bits}): "
                              "a real-valued input is unsigned, so pad_values=-1 never is; "
                              "use pad_values=0, or for pad_values=1 an input format that "
                              "holds 1.0 (--input-scale/--input-bits)")
            node.pad = "zero" if k == 0 else int(k)
        else:
            raise IRError(f"layer {node.name!r}: pad value {value} on a {t.encoding} input; "
                          "supported: 0, and +1/-1 on a binary input")
    return graph


def assign_folding(graph: Graph, folding: dict[str, tuple[int, int]] | None = None) -> Graph:
    """Set (PE, SIMD) per binary layer: from ``folding`` where given, else the default."""
    folding = dict(folding or {})
    names = {n.name for n in graph.matvec_nodes()}
    unknown = sorted(set(folding) - names)
    if unknown:
        raise IRError(f"folding names unknown layers {unknown}; the binary layers are "
                      f"{sorted(names)}")
    chosen = {n.name: folding.get(n.name, default_folding(n)) for n in graph.matvec_nodes()}
    errors = [e for n in graph.matvec_nodes() if (e := folding_error(n, *chosen[n.name]))]
    if errors:  # validate everything before touching the graph
        raise IRError("invalid folding:\n  " + "\n  ".join(errors))
    for node in graph.matvec_nodes():
        node.pe, node.simd = (int(v) for v in chosen[node.name])
    return refresh_gate_density(graph)  # a PGConv2D's gate groups are PE lanes wide


def check_hardware_graph(graph: Graph) -> Graph:
    """Invariants every backend relies on.  Raises IRError naming the node."""
    for node in graph.nodes[1:]:
        where = f"node {node.name!r} ({node.op})"
        if isinstance(node, AvgPool2D):
            raise IRError(f"{where}: an average pool is supported on binary (±1) "
                          "activations followed by a binarisation (a majority vote); this "
                          "one is not followed by one or averages real values")
        if not type(node).hardware:
            raise IRError(f"{where} is a float operation that no pass could fold into the "
                          "hardware (it must sit between a binary layer and a binarisation, "
                          "or at the output)")
        op_type(node).check_on(node, [p.out for p in graph.producers(node)])
    if graph.input.out.encoding not in ("uint", "bipolar", "fixed"):
        raise IRError(f"input encoding {graph.input.out.encoding}: expected uint, bipolar or "
                      "fixed")
    return graph


def propagate_types(graph: Graph) -> Graph:
    """Re-derive every node's output type from its producer's, in one forward sweep.

    Pools and reshapes carry their producer's type; a sign is bipolar; a majority pool is
    bipolar; scale, bias, BatchNorm and average pool (float stage) are float32.  The input
    and the binary layers keep the types their passes gave them.  Every pass that rewires or
    re-types nodes runs this afterwards, so no pass patches its neighbours' types."""
    for node in graph.nodes[1:]:
        shape = node.out.shape
        if type(node).hardware:
            inferred = op_type(node).infer_on(node, [p.out for p in graph.producers(node)])
            if inferred is not None:
                node.out = inferred
        elif isinstance(node, Sign):
            node.out = TensorType(shape, "bipolar")
        elif isinstance(node, (ChannelAffine, BatchNorm, AvgPool2D)):
            node.out = TensorType(shape, "float", 32)
    return graph
