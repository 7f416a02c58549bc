"""Resource-model coefficients: the units' built-in ones, replaced per module by the fit
``bench/calibrate.py`` writes to ``bnn2fpga/data/calibration.json``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from bnn2fpga.plan import Unit
from bnn2fpga.units import default_coefficients, unit_features

CALIBRATION_FILE = Path(__file__).resolve().parent.parent / "data" / "calibration.json"
# First-principles LUT6 / FF per feature, per unit (``bnn2fpga.units``; the register
# features ``ff_regs`` count the RTL's flip-flops, so their coefficient is 1)
DEFAULT_COEFFICIENTS = default_coefficients()

# ROM left in logic, per distinct column: LUTs per LUT6 of the structural count
# ``rom_lut6`` (one LUT6 up to 64 words, MUXF7/F8 trees above) plus LUTs per word (the
# MVTU reads its ROMs at a counter's next address; see ``rom_logic_luts``)
DEFAULT_MEMORY = {"rom_lut_per_bit": 0.07, "rom_lut_per_column": 1.0, "lutram_scale": 1.0}

@dataclass(frozen=True)
class Calibration:
    """LUT/FF coefficients per RTL module, memory coefficients, and where they came from."""

    coefficients: dict[str, dict[str, dict[str, float]]]
    memory: dict[str, float]
    source: str
    fit_error: dict[str, Any] = field(default_factory=dict)

    def linear(self, unit: Unit, resource: str, styles: dict[str, str] | None = None
               ) -> float:
        coefs = self.coefficients[unit.module][resource]
        feats = unit_features(unit, styles)
        return sum(c * feats.get(name, 0.0) for name, c in coefs.items())

def load_calibration(path: Path | None = None) -> Calibration:
    """Coefficients from ``path`` (default ``bnn2fpga/data/calibration.json``), with the
    built-in ones for every module the file does not cover."""
    return _load_calibration_cached(str(CALIBRATION_FILE if path is None else Path(path)))

@lru_cache(maxsize=4)
def _load_calibration_cached(path: str) -> Calibration:
    coefs = {k: {r: dict(v) for r, v in d.items()} for k, d in DEFAULT_COEFFICIENTS.items()}
    memory = dict(DEFAULT_MEMORY)
    if not Path(path).is_file():
        return Calibration(coefs, memory, "built-in defaults (no calibration.json)")
    data = json.loads(Path(path).read_text())
    for module, by_resource in data.get("coefficients", {}).items():
        coefs.setdefault(module, {}).update({r: dict(v) for r, v in by_resource.items()})
    memory.update(data.get("memory", {}))
    return Calibration(coefs, memory, data.get("source", path), data.get("fit_error", {}))
