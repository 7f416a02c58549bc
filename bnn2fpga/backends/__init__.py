"""Backends: each writes one part of a compiled project from the hardware IR.

A backend module exposes ``write_project(graph, out_dir, options, plan) -> None``, writing
into ``out_dir`` (a fresh subdirectory of the project being built; the caller makes the
whole project appear atomically).  Backends render the one hardware plan
(``bnn2fpga.plan``) and read the IR only for what the plan leaves to them (weight and
threshold images): nothing a pass or the plan computed is re-derived.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_PART = "xc7z020clg400-1"
DEFAULT_CLOCK_NS = 10.0


@dataclass(frozen=True)
class CompileOptions:
    part: str = DEFAULT_PART
    clock_ns: float = DEFAULT_CLOCK_NS
    top: str = "bnn_top"
    control: str = "ap_ctrl_none"  # or "axilite"


# name -> "module:function" of its ``write_project(graph, out_dir, options, plan)``
BACKENDS: dict[str, str] = {
    "hls": "bnn2fpga.backends.hls:write_project",
    "rtl": "bnn2fpga.backends.rtl:write_project",
}


def load_backend(name: str) -> Callable[..., None]:
    module_name, func = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module_name), func)
