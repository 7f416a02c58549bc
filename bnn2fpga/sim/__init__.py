"""Simulation engines.  Each takes integer input codes (the host has already quantized the
float frames with ``reference.quantize_input``) and returns the output node's codes.

An engine module exposes ``simulate(project_dir, graph, codes, **options) -> SimResult``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

ENGINES: dict[str, str] = {
    "reference": "bnn2fpga.sim.reference_engine:simulate",
    "csim": "bnn2fpga.sim.csim:simulate",
    "rtl": "bnn2fpga.sim.rtl:simulate",
}


@dataclass
class SimResult:
    codes: np.ndarray                      # output codes, (N, *output_shape)
    summary: dict[str, Any] = field(default_factory=dict)  # engine-specific figures


def load_engine(name: str):
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")
    module_name, func = ENGINES[name].split(":")
    return getattr(importlib.import_module(module_name), func)
