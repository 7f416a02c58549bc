// bnn2fpga HLS library: stream fork (the plan's "fork" unit): each beat of `in` written to
// both outputs (a tensor read by two layers; the plan builds a tree for more).
//
//   in, out0, out1 : BEATS beats of W bits per frame.
// numReps frames per call, as one flattened II=1 loop.
#ifndef BNN_FORK_H
#define BNN_FORK_H

#include "bnn_common.h"

template <unsigned W, unsigned BEATS>
void StreamFork(hls::stream<ap_uint<W> > &in, hls::stream<ap_uint<W> > &out0,
                hls::stream<ap_uint<W> > &out1, unsigned numReps) {
  for (unsigned i = 0; i < numReps * BEATS; i++) {
#pragma HLS PIPELINE II=1 enable_flush
#pragma HLS LOOP_TRIPCOUNT min=BEATS max=BEATS
    const ap_uint<W> x = in.read();
    out0.write(x);
    out1.write(x);
  }
}

#endif
