"""The reference as a simulation engine (``--engine reference``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bnn2fpga import reference
from bnn2fpga.ir import Graph
from bnn2fpga.sim import SimResult


def simulate(project_dir: Path, graph: Graph, codes: np.ndarray, **_: object) -> SimResult:
    values = reference.execute(graph, codes)
    return SimResult(values[graph.output.name], {"engine": "reference"})
