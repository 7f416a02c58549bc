"""IR -> IR passes.  Each is one small function named for what it does; ``lower_to_hardware``
runs them in order and records their names in ``graph.meta["passes"]``."""

from __future__ import annotations

from bnn2fpga.ir import Graph, IRError
from bnn2fpga.passes.formats import DEFAULT_PRECISION, Formats, choose_formats
from bnn2fpga.passes.fracbnn import lower_pgconv2d, measure_gate_density
from bnn2fpga.passes.io import (
    assign_accumulator_widths,
    fold_input_sign,
    fold_output_affine,
    set_input_format,
)
from bnn2fpga.passes.joins import split_wide_joins
from bnn2fpga.passes.quantizers import (
    fold_quantizers_into_thresholds,
    hoist_quantizers_over_pools,
)
from bnn2fpga.passes.real import first_real_tensor, lower_real_paths
from bnn2fpga.passes.scaled_kernels import warn_inexact_input_scales, warn_inexact_kernel_scales
from bnn2fpga.passes.structure import (
    assign_folding,
    check_hardware_graph,
    lower_pad_values,
    propagate_types,
)
from bnn2fpga.passes.thresholds import fold_sign_into_thresholds, remove_redundant_signs

QUANTIZE_HINT = ("quantize it in the model (QKeras QDense/QConv2D/QActivation, Larq "
                 "QuantDense/QuantConv2D with sign quantizers)")


def refuse_real_tensors(graph: Graph) -> Graph:
    """Without formats, a real-valued tensor left after the binary folds is an error that
    names it and both ways to give its format."""
    node = first_real_tensor(graph)
    if node is None:
        return graph
    layer = node.name.split("/")[0]
    cls = (graph.meta.get("layer_classes") or {}).get(layer, node.op)
    raise IRError(f"the tensor of layer {layer!r} ({cls}) is real-valued: fixed point for it "
                  "is not supported without a format: give --calibration X.npy (formats "
                  "chosen from the range observed on those frames) or --formats F.json "
                  f"(formats per tensor), or {QUANTIZE_HINT}")


def lower_real(graph: Graph, ranges: dict[str, float] | None, formats: Formats | None,
               precision: int) -> Graph:
    """The real-valued paths to fixed point, with formats from calibration ranges and/or a
    formats file; without either, ``refuse_real_tensors``."""
    if first_real_tensor(graph) is None:
        return fold_output_affine(graph)
    if ranges is None and formats is None:
        return refuse_real_tensors(fold_output_affine(graph))
    graph = choose_formats(graph, ranges or {}, precision, overrides=formats)
    graph.meta["precision"] = precision
    return fold_output_affine(lower_real_paths(graph, precision))


def lower_to_hardware(graph: Graph, *, input_scale: float | None = None,
                      input_bits: int | None = None,
                      folding: dict[str, tuple[int, int]] | None = None,
                      ranges: dict[str, float] | None = None,
                      formats: Formats | None = None,
                      precision: int = DEFAULT_PRECISION) -> Graph:
    """Float-stage graph (from a frontend) -> hardware IR, integers only.  Every pass that
    changes a node's type or wiring re-derives the types after it (``propagate_types``).
    ``ranges`` (calibration, ``passes.formats.calibrate_ranges``) and ``formats``
    (overrides) give the real-valued tensors their fixed-point formats."""
    steps = [
        ("fold_input_sign", fold_input_sign),
        ("set_input_format", lambda g: set_input_format(g, input_scale, input_bits)),
        ("propagate_types", propagate_types),
        ("warn_inexact_kernel_scales", warn_inexact_kernel_scales),
        ("hoist_quantizers_over_pools", hoist_quantizers_over_pools),
        ("warn_inexact_input_scales", warn_inexact_input_scales),
        ("lower_pgconv2d", lower_pgconv2d),
        ("fold_quantizers_into_thresholds", fold_quantizers_into_thresholds),
        ("fold_sign_into_thresholds",  # + remove_redundant_signs
         lambda g: fold_sign_into_thresholds(g, leave_real=True)),
        ("lower_real_paths + fold_output_affine",
         lambda g: lower_real(g, ranges, formats, precision)),
        ("split_wide_joins", split_wide_joins),
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
    "fold_output_affine", "fold_quantizers_into_thresholds", "fold_sign_into_thresholds",
    "lower_pad_values", "lower_pgconv2d", "lower_to_hardware", "measure_gate_density",
    "propagate_types", "remove_redundant_signs", "set_input_format", "split_wide_joins",
]
