"""IR -> IR passes.  Each is one small function named for what it does; ``lower_to_hardware``
runs them in order and records their names in ``graph.meta["passes"]``."""

from __future__ import annotations

from bnn2fpga.ir import Graph
from bnn2fpga.passes.io import (
    assign_accumulator_widths,
    fold_input_sign,
    fold_output_affine,
    set_input_format,
)
from bnn2fpga.passes.structure import (
    assign_folding,
    check_hardware_graph,
    lower_pad_values,
    propagate_types,
)
from bnn2fpga.passes.thresholds import fold_sign_into_thresholds, remove_redundant_signs


def lower_to_hardware(graph: Graph, *, input_scale: float | None = None,
                      input_bits: int | None = None,
                      folding: dict[str, tuple[int, int]] | None = None) -> Graph:
    """Float-stage graph (from a frontend) -> hardware IR, integers only.  Every pass that
    changes a node's type or wiring re-derives the types after it (``propagate_types``)."""
    steps = [
        ("fold_input_sign", fold_input_sign),
        ("set_input_format", lambda g: set_input_format(g, input_scale, input_bits)),
        ("propagate_types", propagate_types),
        ("fold_sign_into_thresholds", fold_sign_into_thresholds),  # + remove_redundant_signs
        ("fold_output_affine", fold_output_affine),
        ("lower_pad_values", lower_pad_values),
        ("assign_accumulator_widths", assign_accumulator_widths),
        ("assign_folding", lambda g: assign_folding(g, folding)),
        ("check_hardware_graph", check_hardware_graph),
    ]
    for name, step in steps:
        graph = step(graph)
        graph.meta.setdefault("passes", []).append(name)
    return graph


__all__ = [
    "assign_accumulator_widths", "assign_folding", "check_hardware_graph", "fold_input_sign",
    "fold_output_affine", "fold_sign_into_thresholds", "lower_pad_values", "lower_to_hardware",
    "propagate_types", "remove_redundant_signs", "set_input_format",
]
