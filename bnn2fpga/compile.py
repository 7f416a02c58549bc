"""Model -> hardware IR: frontend, then the passes (with calibration for real paths)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from bnn2fpga.frontends import load_model, model_to_graph
from bnn2fpga.ir import Graph, IRError, PGConv2D
from bnn2fpga.passes import lower_to_hardware, measure_gate_density
from bnn2fpga.passes.formats import DEFAULT_PRECISION, Formats
from bnn2fpga.reference import quantize_input


def compile_model(model: Any | str | os.PathLike[str], *, input_scale: float | None = None,
                  input_bits: int | None = None,
                  folding: dict[str, tuple[int, int]] | None = None,
                  name: str | None = None, calibration: np.ndarray | None = None,
                  formats: Formats | None = None,
                  precision: int = DEFAULT_PRECISION) -> Graph:
    """A trained Keras model (in memory, or a .h5/.keras file) -> hardware IR.

    ``calibration``: float frames from which the formats of real-valued tensors are chosen
    (``precision`` fraction bits each); ``formats`` overrides them per tensor.  With
    calibration, the agreement of the design with the model on those frames is measured
    into ``graph.meta["agreement"]`` (``bnn2fpga.agreement``), and every PGConv2D's gate
    density on them (``passes.fracbnn.measure_gate_density``: the expected cycles)."""
    from bnn2fpga.agreement import measure_agreement, reference_run
    from bnn2fpga.floateval import evaluate_float

    if isinstance(model, (str, os.PathLike)):
        name = name or Path(model).stem
        model = load_model(model)
    graph = model_to_graph(model, name)
    float_values = ranges = None
    if calibration is not None:
        x = calibration_frames(calibration, graph.input.out.shape)
        float_values = evaluate_float(graph, x)
        ranges = {n: float(np.abs(v).max(initial=0.0)) for n, v in float_values.items()}
    graph = lower_to_hardware(graph, input_scale=input_scale, input_bits=input_bits,
                              folding=folding, ranges=ranges, formats=formats,
                              precision=precision)
    if calibration is not None:
        run = reference_run(graph, x)       # one reference run serves both measurements
        if any(isinstance(n, PGConv2D) for n in graph.nodes):
            measure_gate_density(graph, quantize_input(graph.input, x), run[0])
        keras_out = model.predict(x.reshape((len(x),) + tuple(model.input_shape[1:])),
                                  verbose=0)
        measure_agreement(graph, x, float_values, keras_out, run)
    return graph


def calibration_frames(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Calibration frames as (N, *shape) float32 (a flat (N, size) array is reshaped)."""
    x = np.asarray(x, np.float32)
    size = int(np.prod(shape))
    if x.ndim < 1 or len(x) == 0 or x[0].size != size:
        raise IRError(f"calibration frames of shape {x.shape} do not hold frames of the "
                      f"model's input shape {shape}; expected (N, {', '.join(map(str, shape))})")
    return x.reshape((len(x),) + tuple(shape))
