"""Model -> hardware IR: frontend, then the passes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bnn2fpga.frontends import load_model, model_to_graph
from bnn2fpga.ir import Graph
from bnn2fpga.passes import lower_to_hardware


def compile_model(model: Any | str | os.PathLike[str], *, input_scale: float | None = None,
                  input_bits: int | None = None,
                  folding: dict[str, tuple[int, int]] | None = None,
                  name: str | None = None) -> Graph:
    """A trained Keras model (in memory, or a .h5/.keras file) -> hardware IR."""
    if isinstance(model, (str, os.PathLike)):
        name = name or Path(model).stem
        model = load_model(model)
    graph = model_to_graph(model, name)
    return lower_to_hardware(graph, input_scale=input_scale, input_bits=input_bits,
                             folding=folding)
