"""The unit registry (bnn2fpga.units): every library file belongs to exactly one unit, and
each unit's model is complete (module, header, memories, features, delay, sweep)."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

from bnn2fpga import estimate as E
from bnn2fpga.plan import Unit
from bnn2fpga.resources import resource_path
from bnn2fpga.units import UNITS, hls_library, rtl_library


def test_every_library_file_belongs_to_exactly_one_unit() -> None:
    rtl = sorted(p.name for p in resource_path("rtl").glob("*.sv"))
    hls_dir = resource_path("hls")
    hls = sorted(str(p.relative_to(hls_dir)) for p in hls_dir.rglob("*.h"))
    owners = Counter([*rtl_library(), *hls_library()])
    assert sorted(rtl_library()) == rtl
    assert sorted(hls_library()) == hls
    assert [f for f, n in owners.items() if n > 1] == []


@pytest.mark.parametrize("kind", list(UNITS))
def test_unit_names_its_module_and_header(kind: str) -> None:
    unit = UNITS[kind]
    assert unit.kind == kind
    text = (resource_path("rtl") / unit.sv_files[-1]).read_text()
    assert re.search(rf"^module {unit.module}\b", text, re.M), unit.module
    if unit.header:
        assert (resource_path("hls") / unit.header).is_file()
        if kind != "ports":   # the HLS top calls the unit through its own template
            assert (resource_path("templates") / "hls" / "units" / f"{kind}.j2").is_file()
    # the tap-valid flags the RTL writer wires are the module's own ports
    ports = re.search(rf"^module {unit.module}\b.*?\);", text, re.M | re.S).group(0)
    assert ("s_tuser" in ports) == unit.reads_tap_valid
    assert ("m_tuser" in ports) == unit.drives_tap_valid


@pytest.mark.parametrize("kind", [k for k, u in UNITS.items() if u.coefficients])
def test_unit_model_covers_its_sweep(kind: str) -> None:
    """Every sweep point of a unit has memories, features and a delay; the default
    coefficients name only features the unit computes; the calibration fits it."""
    unit = UNITS[kind]
    points = unit.sweep(np.random.default_rng(0))
    assert points, f"{kind}: no calibration sweep points"
    assert unit.module in E.load_calibration().coefficients
    named = {f for c in unit.coefficients.values() for f in c}
    seen: set[str] = set()
    for params in points:
        planned = Unit("u", unit.module, "cal", params, kind)
        seen |= set(E.unit_features(planned))
        for mem in E.unit_memories(planned):
            assert mem.depth >= 1 and mem.width >= 1
        assert unit.delay(params) >= 1
    assert named <= seen, sorted(named - seen)


def test_module_sources_follow_instantiations_only() -> None:
    """A unit's synthesis cache key hashes its module and what it instantiates, transitively
    (pg_mvtu -> xnor_popcount -> adder_tree), not the rest of the library."""
    from bnn2fpga.backends.rtl import LIBRARY
    from bnn2fpga.report import module_sources

    lib = {f: (resource_path("rtl") / f).read_text() for f in LIBRARY}

    def modules(m: str) -> set[str]:
        return {f for t in module_sources(m, lib) for f, x in lib.items() if x == t}

    assert modules("bnn_pg_mvtu") == {"bnn_pg_mvtu.sv", "bnn_xnor_popcount.sv",
                                      "bnn_adder_tree.sv"}
    assert modules("bnn_fixed_affine") == {"bnn_fixed_affine.sv"}
    assert {"bnn_dwc_up.sv", "bnn_dwc_down.sv", "bnn_dwc_shift.sv"} < modules("bnn_dwc")
