"""The top's AXI-stream ports: the RTL top's TLAST counter (bnn_frame_last), the HLS top's
AXI adapters (axis.h) and the headers every HLS unit includes.  No plan unit and no
resources of its own."""

from __future__ import annotations

from bnn2fpga.units import UnitType

UNIT = UnitType(
    kind="ports", sv_files=("bnn_frame_last.sv",),
    hls_files=("axis.h", "bnn_common.h", "bnn_ap_types.h", "csim/ap_axi_sdata.h"),
    delay=lambda p: 0, features=lambda p, styles: {}, coefficients={})
