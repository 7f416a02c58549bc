// bnn2fpga HLS library: AXI4-Stream adapters at the top's ports.
//
//   TDATA = one internal beat of W bits at bits [0, W), zero-padded to AXI_W = 8*ceil(W/8).
//   TKEEP/TSTRB all ones, TUSER/TID/TDEST 0 (width 1: Vivado HLS 2020.x has no 0-width
//   side channels), TLAST = 1 on the last beat of each frame (BEATS beats per frame).
//   The input's TLAST is not checked: the design counts BEATS beats per frame.  numReps
//   frames per call, one flushable loop over them (LOOP_TRIPCOUNT: one frame).
// ap_axi_sdata.h comes with Vivado/Vitis HLS; bnn2fpga's C simulation uses the compatible
// stand-in in csim/ (never on the synthesis include path).
#ifndef BNN_AXIS_H
#define BNN_AXIS_H

#include "bnn_common.h"
#include "ap_axi_sdata.h"

template <unsigned W, unsigned AXI_W, unsigned BEATS>
void AxisToStream(hls::stream<ap_axiu<AXI_W, 1, 1, 1> > &in, hls::stream<ap_uint<W> > &out,
                  unsigned numReps) {
  static_assert(W <= AXI_W, "TDATA must hold the beat");
  for (unsigned i = 0; i < numReps * BEATS; i++) {
#pragma HLS PIPELINE II=1 enable_flush
#pragma HLS LOOP_TRIPCOUNT min=BEATS max=BEATS
    const ap_axiu<AXI_W, 1, 1, 1> b = in.read();
    out.write(ap_uint<W>(b.data(W - 1, 0)));
  }
}

template <unsigned W, unsigned AXI_W, unsigned BEATS>
void StreamToAxis(hls::stream<ap_uint<W> > &in, hls::stream<ap_axiu<AXI_W, 1, 1, 1> > &out,
                  unsigned numReps) {
  static_assert(W <= AXI_W, "TDATA must hold the beat");
  unsigned beat = 0;  // beat of the frame
  for (unsigned i = 0; i < numReps * BEATS; i++) {
#pragma HLS PIPELINE II=1 enable_flush
#pragma HLS LOOP_TRIPCOUNT min=BEATS max=BEATS
    ap_axiu<AXI_W, 1, 1, 1> b;
    b.data = in.read();
    b.keep = -1;
    b.strb = -1;
    b.user = 0;
    b.id = 0;
    b.dest = 0;
    b.last = (beat == BEATS - 1) ? 1 : 0;
    out.write(b);
    beat = (beat == BEATS - 1) ? 0u : beat + 1;
  }
}

#endif
