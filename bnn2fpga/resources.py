"""The one place that locates the non-Python files shipped with bnn2fpga.

The HLS library (``hls/``), the SystemVerilog library (``rtl/``), the Jinja2 templates
(``templates/``) and the Verilator harness sources (``sim/harness/``) live inside the package
so that a wheel carries them; every backend finds them through ``resource_path``.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

PACKAGE_DIR = Path(__file__).resolve().parent
_KNOWN = {"hls": "hls", "rtl": "rtl", "templates": "templates", "harness": "sim/harness"}


def resource_path(name: str) -> Path:
    """Directory of a shipped resource: 'hls', 'rtl', 'templates' or 'harness'."""
    if name not in _KNOWN:
        raise KeyError(f"unknown resource {name!r}; expected one of {sorted(_KNOWN)}")
    path = PACKAGE_DIR / _KNOWN[name]
    if not path.is_dir():
        raise FileNotFoundError(f"bnn2fpga resource directory {path} is missing; the "
                                "installation is incomplete (reinstall bnn2fpga)")
    return path


def template_env() -> jinja2.Environment:
    """Jinja2 environment over templates/ (strict: an undefined variable is an error)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(resource_path("templates"))),
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
        trim_blocks=True, lstrip_blocks=True)
