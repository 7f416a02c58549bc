"""Backends: each writes one part of a compiled project from the hardware IR.

A backend module exposes ``write_project(graph, out_dir, options) -> None``, writing into
``out_dir`` (a fresh subdirectory of the project being built; the caller makes the whole
project appear atomically).  Backends read the IR only: anything they need that a pass
computes (thresholds, folding, widths) comes from the graph, never re-derived.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bnn2fpga.ir import Graph

DEFAULT_PART = "xc7z020clg400-1"
DEFAULT_CLOCK_NS = 10.0


@dataclass(frozen=True)
class CompileOptions:
    part: str = DEFAULT_PART
    clock_ns: float = DEFAULT_CLOCK_NS
    top: str = "bnn_top"
    control: str = "ap_ctrl_none"  # or "axilite"


# name -> "module:function"; a backend whose module is missing is skipped with a note
BACKENDS: dict[str, str] = {
    "hls": "bnn2fpga.backends.hls:write_project",
    "rtl": "bnn2fpga.backends.rtl:write_project",
}


def load_backend(name: str) -> Callable[[Graph, Path, CompileOptions], None] | None:
    module_name, func = BACKENDS[name].split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name == module_name:
            return None
        raise
    return getattr(module, func)
