"""Resource vectors (LUT, FF, BRAM18, URAM, DSP) and their fractions of a device."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from bnn2fpga.devices import RESOURCES, Device


@dataclass
class Resources:
    """LUT, FF, BRAM18, URAM, DSP counts (floats while summing; round for display)."""

    lut: float = 0.0
    ff: float = 0.0
    bram18: float = 0.0
    uram: float = 0.0
    dsp: float = 0.0

    def __add__(self, other: Resources) -> Resources:
        return Resources(*(getattr(self, r) + getattr(other, r) for r in RESOURCES))

    def scaled(self, k: float) -> Resources:
        return Resources(*(getattr(self, r) * k for r in RESOURCES))

    def as_dict(self) -> dict[str, int]:
        return {r: int(round(getattr(self, r))) for r in RESOURCES}

    def fits(self, device: Device) -> bool:
        return all(getattr(self, r) <= getattr(device, r) for r in RESOURCES)

    def utilisation(self, device: Device) -> dict[str, float]:
        """Fraction of the device per resource (0 where none is used; inf where the device
        has none and some is used)."""
        out = {}
        for r in RESOURCES:
            used, cap = getattr(self, r), getattr(device, r)
            out[r] = used / cap if cap else (0.0 if used == 0 else math.inf)
        return out

    def cost(self, device: Device) -> float:
        """Summed fraction of the device used (the balanced objective)."""
        return sum(self.utilisation(device).values())

    def over(self, device: Device) -> list[str]:
        """The resources that exceed ``device``, as text ("LUT 61234 > 53200")."""
        return [f"{r.upper()} {getattr(self, r):.0f} > {getattr(device, r)}"
                for r in RESOURCES if getattr(self, r) > getattr(device, r)]

def total(items: Iterable[Resources]) -> Resources:
    out = Resources()
    for r in items:
        out = out + r
    return out
