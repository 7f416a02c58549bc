"""Resource and throughput estimation of a hardware graph (one module per concern:
``resources``, ``calibration``, ``memory``, ``schedule``, ``design``; each unit's own
features, memories and delay live in ``bnn2fpga.units``).

Cycles come from ``bnn2fpga.folding`` (``node_cycles``, ``matvec_cycles``, ``bottleneck``):
the one cycle model the RTL realises.  This module only composes them: ``pixel_schedule``
places each unit's per-pixel steps in time (plus the RTL units' register stages) for the
first-frame latency, and ``serialisations`` finds pairs of units whose buffering cannot
decouple them (a dense MVTU replaying its input while its producer waits), which makes the
expected frame interval larger than the folding's bottleneck.

Resources are estimated per unit of the one hardware plan (``bnn2fpga.plan``: width
converter, sliding window, MVTU, pool, and each stream's FIFO), exactly what both writers
instantiate, from the units' own integer parameters.  Each unit has

* memories (``unit_memories``: MVTU weights/thresholds as ROMs, its input replay buffer, the
  sliding window's line buffer, FIFO storage), each mapped onto a primitive style -- ROM in
  logic, registers, LUTRAM, BRAM18, UltraRAM -- by ``map_memory`` (the style that uses the
  smallest fraction of the device), LUTRAM and ROM-in-logic counted as yosys maps them;
* logic, linear in structural features of what the RTL builds (``unit_features``: adder
  tree output bits, comparator and counter widths, the width converter's shifter selects,
  the sliding window's constant multipliers, ring arithmetic and padding logic, ...), and
  flip-flops from the RTL's register count (``ff_regs``).

The coefficients (logic per feature, ROM-in-logic cost) are fitted against yosys
``synth_xilinx`` of our own RTL units by ``bench/calibrate.py``, which writes
``bnn2fpga/data/calibration.json`` with its in-sample and leave-one-out error per unit;
built-in first-principles coefficients stand in for any unit the file does not cover.
"""

from __future__ import annotations

from bnn2fpga.estimate.calibration import (
    CALIBRATION_FILE,
    DEFAULT_COEFFICIENTS,
    DEFAULT_MEMORY,
    Calibration,
    load_calibration,
)
from bnn2fpga.estimate.design import (
    DesignEstimate,
    LayerEstimate,
    UnitEstimate,
    estimate,
    estimate_unit,
    layer_to_json,
    matvec_layer_cost,
    memory_styles,
)
from bnn2fpga.estimate.memory import (
    BRAM_WIDTHS,
    LUTRAM_LIBRARIES,
    RAM_STYLES,
    ROM_STYLES,
    Memory,
    allowed_styles,
    bank_luts,
    bank_mux_luts,
    bram18_count,
    bram_geometry,
    bram_luts,
    libmap_banking_cost,
    lutram_cell_luts,
    lutram_geometry,
    lutram_luts,
    map_memory,
    rom_logic_luts,
    rom_lut6,
    style_resources,
)
from bnn2fpga.estimate.resources import Resources, total
from bnn2fpga.estimate.schedule import (
    Serialisation,
    buffered_beats,
    input_arrival,
    needed_input_pixel,
    path_delay,
    pixel_schedule,
    producer_beats,
    serialisations,
    serialised_interval,
    steps_per_pixel,
    window_footprint,
)
from bnn2fpga.plan import Unit
from bnn2fpga.units import (
    MemorySpec,
    bits_for,
    clog2,
    distinct_columns,
    reg_max,
    unit_features,
    unit_memories,
)
from bnn2fpga.units.dwc import dwc_capacity_beats, dwc_delay, dwc_features, dwc_kind
from bnn2fpga.units.fifo import fifo_features
from bnn2fpga.units.majority_pool import majority_pool_features
from bnn2fpga.units.mvtu import adder_tree_bits, mvtu_features
from bnn2fpga.units.pool import pool_features
from bnn2fpga.units.swu import (
    swu_can_pad,
    swu_features,
    swu_lo_bits,
    swu_read_arithmetic,
    swu_row_zeros,
    swu_rows,
    swu_slot_bits,
)

__all__ = ["BRAM_WIDTHS", "CALIBRATION_FILE", "Calibration", "DEFAULT_COEFFICIENTS",
           "DEFAULT_MEMORY", "DesignEstimate", "LUTRAM_LIBRARIES", "LayerEstimate", "Memory",
           "MemorySpec", "RAM_STYLES", "ROM_STYLES", "Resources", "Serialisation", "Unit",
           "UnitEstimate", "adder_tree_bits", "allowed_styles", "bank_luts", "bank_mux_luts",
           "bits_for", "bram18_count", "bram_geometry", "bram_luts", "buffered_beats", "clog2",
           "distinct_columns", "dwc_capacity_beats", "dwc_delay", "dwc_features",
           "dwc_kind", "estimate", "estimate_unit", "fifo_features", "input_arrival",
           "layer_to_json", "libmap_banking_cost", "load_calibration", "lutram_cell_luts",
           "lutram_geometry", "lutram_luts", "majority_pool_features", "map_memory",
           "matvec_layer_cost", "memory_styles", "mvtu_features", "needed_input_pixel",
           "path_delay",
           "pixel_schedule", "pool_features", "producer_beats", "reg_max", "rom_logic_luts",
           "rom_lut6", "serialisations", "serialised_interval", "steps_per_pixel",
           "style_resources", "swu_can_pad", "swu_features", "swu_lo_bits", "swu_read_arithmetic",
           "swu_row_zeros", "swu_rows", "swu_slot_bits", "total", "unit_features",
           "unit_memories", "window_footprint"]
