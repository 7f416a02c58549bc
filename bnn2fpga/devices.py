"""FPGA device database: the resources of the parts bnn2fpga targets.

Figures are the vendor product-table numbers (AMD/Xilinx DS190 for Zynq-7000, DS891 for
Zynq UltraScale+ MPSoC, DS962 for Alveo U250 / Virtex UltraScale+ VU13P).  Block RAM is
counted in 18 Kb halves (``bram18`` = 2 x the number of 36 Kb tiles) because that is the
granularity at which a memory can be placed; ``uram`` counts 288 Kb UltraRAM blocks.

A Vivado part string (``xc7z020clg400-1``, ``xczu3eg-sbva484-1-e``) maps to its device by
its longest matching device prefix; common board names map too (``pynq-z1``, ``ultra96v2``).
"""

from __future__ import annotations

from dataclasses import dataclass

from bnn2fpga.ir import IRError

RESOURCES = ("lut", "ff", "bram18", "uram", "dsp")


@dataclass(frozen=True)
class Device:
    """One FPGA die's programmable-logic resources."""

    name: str
    family: str            # "7series" or "ultrascale+": selects the calibration set
    lut: int
    ff: int
    bram18: int
    uram: int
    dsp: int
    lutram_per_lut: int = 64   # bits of distributed RAM one SLICEM LUT6 holds
    boards: tuple[str, ...] = ()

    def capacity(self) -> dict[str, int]:
        return {r: getattr(self, r) for r in RESOURCES}

    @property
    def bram36(self) -> int:
        return self.bram18 // 2

    @property
    def yosys_family(self) -> str:
        """``synth_xilinx -family`` of the die: its LUTRAM/BRAM library and cells."""
        return "xcup" if self.family == "ultrascale+" else "xc7"


DEVICES: dict[str, Device] = {d.name: d for d in (
    Device("xc7z010", "7series", lut=17_600, ff=35_200, bram18=120, uram=0, dsp=80,
           boards=("zybo-z7-10",)),
    Device("xc7z020", "7series", lut=53_200, ff=106_400, bram18=280, uram=0, dsp=220,
           boards=("pynq-z1", "pynq-z2", "zedboard")),
    Device("xczu3eg", "ultrascale+", lut=70_560, ff=141_120, bram18=432, uram=0, dsp=360,
           boards=("ultra96", "ultra96v2")),
    Device("xczu7ev", "ultrascale+", lut=230_400, ff=460_800, bram18=624, uram=96,
           dsp=1_728, boards=("zcu104",)),
    Device("xczu9eg", "ultrascale+", lut=274_080, ff=548_160, bram18=1_824, uram=0,
           dsp=2_520, boards=("zcu102",)),
    Device("xcu250", "ultrascale+", lut=1_728_000, ff=3_456_000, bram18=5_376, uram=1_280,
           dsp=12_288, boards=("u250", "alveo-u250")),
)}


def _normalise(part: str) -> str:
    return part.strip().lower().replace("_", "-")


def get_device(part: str) -> Device:
    """The device of a Vivado part string, a device name or a board name.

    Raises ``IRError`` naming the known devices when nothing matches."""
    key = _normalise(part)
    for device in DEVICES.values():
        if key in device.boards:
            return device
    # longest prefix first, so that a future "xc7z0201" could not shadow "xc7z020"
    for name in sorted(DEVICES, key=len, reverse=True):
        if key.startswith(name):
            return device_with_package_check(name, key)
    known = ", ".join(f"{d.name} ({'/'.join(d.boards)})" if d.boards else d.name
                      for d in DEVICES.values())
    raise IRError(f"unknown FPGA part {part!r}: bnn2fpga knows {known}; pass a part string "
                  "that starts with one of these device names (e.g. xc7z020clg400-1)")


def device_with_package_check(name: str, key: str) -> Device:
    """``DEVICES[name]``, refusing part strings where the device name runs on into more
    digits (``xc7z0200`` is not an ``xc7z020``)."""
    rest = key[len(name):]
    if rest[:1].isdigit():
        raise IRError(f"unknown FPGA part {key!r} (it is not a {name}: the device name "
                      f"continues with {rest[:1]!r})")
    return DEVICES[name]
